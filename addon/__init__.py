"""SoPo Motion: type a prompt, get N candidate motions from the motion server, pick the best.

Each module lists its Blender classes in a `classes` tuple and may have its own
`register`/`unregister` for what is not a class (Scene properties, menu entries).
"""
import bpy

from . import operators, panel, preferences, properties, session

MODULES = (preferences, properties, operators, panel)


def register():
    for module in MODULES:
        for cls in module.classes:
            bpy.utils.register_class(cls)
        if hasattr(module, "register"):
            module.register()
    session.start()


def unregister():
    session.stop()
    for module in reversed(MODULES):
        if hasattr(module, "unregister"):
            module.unregister()
        for cls in reversed(module.classes):
            bpy.utils.unregister_class(cls)
