"""build.py: two validated extension zips, each with the vendored shared/ and pyzmq wheels for every
platform, and version ranges Blender's own code accepts for the right Python."""
from __future__ import annotations

import importlib.util
import tomllib
import zipfile

import pytest

from bpy_support import built_zips

import build

PLATFORM_WHEELS = ("manylinux", "win_amd64", "macosx")


def blender_ext():
    spec = importlib.util.spec_from_file_location("blender_ext", build.blender_ext())
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def accepted(ext, manifest: dict, blender: tuple, python: tuple) -> bool:
    wheels = [w.rsplit("/", 1)[-1] for w in manifest.get("wheels", [])]
    item = {k: manifest[k] for k in ("blender_version_min", "blender_version_max", "platforms") if k in manifest}
    item["python_versions"] = sorted(".".join(map(str, v)) for v in ext.python_versions_from_wheels(wheels))
    return not ext.repository_filter_skip(item=item, filter_blender_version=blender, filter_python_version=python,
                                         filter_platform="linux-x64", skip_message_fn=None, error_fn=print)


@pytest.fixture(scope="module")
def zips():
    return built_zips()


def test_zips_hold_the_addon_shared_and_wheels_for_every_platform(zips):
    assert [z.name for z in zips] == ["sopo_motion-0.1.0.zip", "sopo_motion-0.1.0-blender5.1.zip"]
    for path, tag in zip(zips, ("cp311-cp311", "cp312-abi3")):
        names = zipfile.ZipFile(path).namelist()
        for module in ("__init__.py", "session.py", "client.py", "vendored.py", "shared/__init__.py",
                       "shared/protocol.py", "shared/skeleton.py", "shared/rotations.py", "shared/motion.py"):
            assert module in names, (path.name, module)
        wheels = [n for n in names if n.endswith(".whl")]
        assert all(tag in w for w in wheels), wheels
        for platform in PLATFORM_WHEELS:
            assert any(platform in w for w in wheels), (path.name, platform)
        assert not [n for n in names if "__pycache__" in n]


def test_each_zip_installs_only_where_its_wheels_work(zips):
    ext = blender_ext()
    old, new = (tomllib.loads(zipfile.ZipFile(z).read("blender_manifest.toml").decode()) for z in zips)
    assert accepted(ext, old, (4, 2, 0), (3, 11, 0)) and accepted(ext, old, (5, 0, 1), (3, 11, 0))
    assert not accepted(ext, old, (5, 1, 0), (3, 13, 0))
    assert accepted(ext, new, (5, 1, 0), (3, 13, 0)) and not accepted(ext, new, (5, 0, 1), (3, 11, 0))
    # Why two zips: with both wheel sets in one, Blender reads "Python 3.11 only" and 5.1 refuses it.
    mixed = dict(new, wheels=old["wheels"] + new["wheels"])
    assert not accepted(ext, mixed, (5, 1, 0), (3, 13, 0))
