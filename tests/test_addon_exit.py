"""A bpy process with the installed extension exits cleanly, enabled or disabled (the bpy 4.2 module used to die
with SIGSEGV at exit: see addon/callbacks.py), and every property callback lives where that cannot come back."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import types

import pytest

from bpy_support import MODULE, ROOT, addon, bpy  # noqa: F401 (fixtures)

SESSION = """
import json, sys
import bpy, addon_utils
addon_utils.enable({module!r}, default_set=True)
prefs = bpy.context.preferences.addons[{module!r}].preferences
prefs.server_address = "tcp://127.0.0.1:9"  # an update callback runs
props = bpy.context.scene.sopo_motion
props.prompt = "a person walks"
print(json.dumps({{"enabled": {module!r} in bpy.context.preferences.addons, "prompt": props.prompt}}))
if {disable!r}:
    addon_utils.disable({module!r}, default_set=True)
"""


@pytest.mark.parametrize("disable", [True, False], ids=["disabled", "still-enabled"])
def test_a_bpy_process_with_the_extension_exits_cleanly(addon, disable):
    script = SESSION.format(module=MODULE, disable=disable)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                         env=dict(os.environ), cwd=str(ROOT))
    assert run.returncode == 0, (run.returncode, run.stderr[-3000:])
    assert json.loads(run.stdout.strip().splitlines()[-1]) == {"enabled": True, "prompt": "a person walks"}


def test_property_callbacks_hold_no_module(addon):
    """Blender keeps a property's callbacks until it is torn down; a callback whose globals reach `bpy` keeps the
    bpy 4.2 module from tearing Blender down before Python ends. So every callback is in addon/callbacks.py,
    whose globals hold no module, also after each callback ran."""
    callbacks = addon.module("callbacks")
    classes = [addon.module("properties").SOPO_PG_motion, addon.module("preferences").SOPO_AddonPreferences]
    found = []
    for cls in classes:
        for name, prop in cls.__annotations__.items():
            for key, value in getattr(prop, "keywords", {}).items():
                if callable(value) and not isinstance(value, type):
                    found.append((cls.__name__, name, key, value))
    assert {key for *_, key, _ in found} >= {"update", "poll", "search"}
    assert [f[:3] for f in found if f[3].__module__ != callbacks.__name__] == []
    addon.prefs.smpl_betas = ""  # runs callbacks.smpl_changed
    addon.prefs.server_address = "tcp://127.0.0.1:9"  # callbacks.connection_changed
    assert callbacks.model_search(None, bpy.context, "") == []
    assert not [k for k, v in vars(callbacks).items() if isinstance(v, types.ModuleType)]
