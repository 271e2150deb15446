"""The Python callbacks of the add-on's bpy properties (update, poll, search), in a module that imports nothing.

Every `update=`, `poll=` and `search=` given to a property lives here, and imports what it needs when called.
Why: Blender keeps a property's callbacks past `unregister_class`, until Blender itself is torn down; the
bpy 4.2 Python module (`pip install bpy`) tears Blender down only when the `bpy` module object is freed. A
callback whose module globals hold `bpy` (any add-on module that does `import bpy`) keeps it alive past the
interpreter's end; Blender's C++ static destructors then free its Python classes without Python and the
process dies with SIGSEGV at exit (tests/test_addon_exit.py checks a clean exit). These globals hold no module.
"""


def connection_changed(self, context) -> None:
    """Server address, keys or answer time changed: check the (new) server now."""
    from . import session

    session.address_changed()


def smpl_changed(self, context) -> None:
    """The SMPL model file, betas or gender changed: load the body again."""
    from . import body

    body.reload(self)


def model_search(self, context, edit_text: str) -> list[str]:
    """Suggest the checkpoints the server listed in its last hello_ok."""
    from . import session

    return [name for name in session.server_models() if edit_text.lower() in name.lower()]


def is_curve(self, obj) -> bool:
    """A path must be a curve object."""
    return obj.type == 'CURVE'
