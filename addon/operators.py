"""Operators: Generate, Cancel, Pick, Send waiting picks, Apply to my rig (and an internal notifier).

None of them waits for the server: they queue work for `session` and return. Failures that
are known at once are reported with `self.report` and cancel the operator.
"""
import random

import bpy
from bpy.props import EnumProperty, IntProperty, StringProperty

from . import bone_maps, candidates, preferences, retarget, session
from .client import ClientError
from .outbox import OutboxError


class SOPO_OT_generate(bpy.types.Operator):
    """Generate motion candidates for the prompt on the motion server"""
    bl_idname = "sopo.generate"
    bl_label = "Generate Motion"
    bl_options = {'REGISTER', 'UNDO'}

    @classmethod
    def poll(cls, context):
        props = context.scene.sopo_motion
        if session.generating():
            cls.poll_message_set("A generation is running")
            return False
        if not props.prompt.strip():
            cls.poll_message_set("Type a prompt first")
            return False
        return True

    def execute(self, context):
        props = context.scene.sopo_motion
        if props.random_seed:
            props.seed = random.randrange(0, 2**31)
        try:
            session.generate(context.scene, props.prompt.strip(), props.count, props.seconds, props.seed,
                             props.guidance, props.model.strip())
        except ClientError as exc:
            session.set_status(str(exc), 'ERROR')
            self.report({'ERROR'}, str(exc))
            return {'CANCELLED'}
        self.report({'INFO'}, f"Generating {props.count} candidates (seed {props.seed})")
        return {'FINISHED'}


class SOPO_OT_cancel(bpy.types.Operator):
    """Stop the running generation"""
    bl_idname = "sopo.cancel"
    bl_label = "Cancel Generation"
    bl_options = {'REGISTER'}

    @classmethod
    def poll(cls, context):
        return session.generating()

    def execute(self, context):
        session.cancel()
        self.report({'INFO'}, "Generation cancelled")
        return {'FINISHED'}


def _current_request(context):
    collection = context.scene.sopo_motion.candidates
    if collection is None or candidates.REQUEST_KEY not in collection:
        return None, []
    return collection, candidates.candidate_objects(collection)


class SOPO_OT_pick(bpy.types.Operator):
    """Tell the server which candidate is best (or that none is), so it can learn from it"""
    bl_idname = "sopo.pick"
    bl_label = "Pick Candidate"
    bl_options = {'REGISTER', 'UNDO'}

    index: IntProperty(name="Candidate", default=-1, min=-1, max=7,
                       description="Candidate number from 0, or -1 for 'none are good'")

    @classmethod
    def poll(cls, context):
        collection, objects = _current_request(context)
        if not objects:
            cls.poll_message_set("Generate candidates first")
            return False
        if "sopo_picked" in collection:
            cls.poll_message_set("This request has been answered already")
            return False
        return True

    def execute(self, context):
        collection, objects = _current_request(context)
        count = len(objects)
        chosen = None if self.index < 0 else self.index
        if chosen is not None and chosen >= count:
            self.report({'ERROR'}, f"There is no candidate {chosen + 1} (this request has {count})")
            return {'CANCELLED'}
        try:
            session.pick(collection[candidates.REQUEST_KEY], chosen, count)
        except (ClientError, OutboxError, OSError) as exc:
            self.report({'ERROR'}, f"The pick could not be recorded: {exc}")
            return {'CANCELLED'}
        collection["sopo_picked"] = -1 if chosen is None else chosen
        if chosen is not None:
            _keep_only(context, collection, objects, chosen, preferences.get(context).unpicked)
        self.report({'INFO'}, "None are good: noted" if chosen is None else f"Picked candidate {chosen + 1}")
        return {'FINISHED'}


def _keep_only(context, collection, objects, chosen, mode):
    """Hide or delete the candidates (with their bodies and labels) other than `chosen`."""
    if mode == 'KEEP':
        return
    drop = [obj for i, obj in enumerate(objects) if i != chosen]
    drop += [child for obj in drop for child in obj.children]
    drop += [obj for obj in collection.objects if obj.type == 'FONT' and obj.data.body != str(chosen + 1)]
    for obj in drop:
        if mode == 'DELETE':
            bpy.data.objects.remove(obj)
        else:
            if obj.name in context.view_layer.objects:
                obj.hide_set(True)
            obj.hide_render = True
    keeper = objects[chosen]
    if keeper.name in context.view_layer.objects:
        context.view_layer.objects.active = keeper


class SOPO_OT_send_picks(bpy.types.Operator):
    """Try now to send the picks waiting in the outbox"""
    bl_idname = "sopo.send_picks"
    bl_label = "Send Waiting Picks"
    bl_options = {'REGISTER'}

    @classmethod
    def poll(cls, context):
        box = session.state().outbox
        return box is not None and len(box) > 0

    def execute(self, context):
        sent = session.flush_outbox()
        self.report({'INFO'}, f"Sending {sent} waiting pick(s)")
        return {'FINISHED'}


def source_candidate(context):
    """The candidate to transfer: the picked one, else a selected candidate, else None."""
    collection, objects = _current_request(context)
    picked = collection.get("sopo_picked", -1) if collection is not None else -1
    if 0 <= picked < len(objects):
        return objects[picked]
    for obj in context.selected_objects:
        if obj.type == 'ARMATURE' and candidates.CANDIDATE_KEY in obj:
            return obj
    return None


class SOPO_OT_apply_to_rig(bpy.types.Operator):
    """Transfer the picked (or selected) candidate's motion onto the active armature as an Action"""
    bl_idname = "sopo.apply_to_rig"
    bl_label = "Apply Motion to Rig"
    bl_options = {'REGISTER', 'UNDO'}

    bone_map: EnumProperty(name="Bone map", items=bone_maps.ENUM_ITEMS, default='AUTO')
    bone_map_file: StringProperty(name="Map file", subtype='FILE_PATH')

    @classmethod
    def poll(cls, context):
        target = context.active_object
        if target is None or target.type != 'ARMATURE' or candidates.CANDIDATE_KEY in target:
            cls.poll_message_set("Select your rig (an armature that is not a candidate)")
            return False
        if source_candidate(context) is None:
            cls.poll_message_set("Pick a candidate first (or select one)")
            return False
        return True

    def invoke(self, context, event):
        props = context.scene.sopo_motion
        self.bone_map, self.bone_map_file = props.bone_map, props.bone_map_file
        return self.execute(context)

    def execute(self, context):
        target, source = context.active_object, source_candidate(context)
        try:
            result = retarget.apply_to_rig(context.scene, source, target, self.bone_map,
                                           bpy.path.abspath(self.bone_map_file))
        except (bone_maps.BoneMapError, retarget.RetargetError) as exc:
            self.report({'ERROR'}, str(exc))
            return {'CANCELLED'}
        self.report({'INFO'}, f"Keyed {len(result.mapping)} bones of {target.name} as '{result.action.name}'")
        for warning in result.warnings:
            self.report({'WARNING'}, warning)
        return {'FINISHED'}


class SOPO_OT_notify(bpy.types.Operator):
    """Report a message from the background poll (internal)"""
    bl_idname = "sopo.notify"
    bl_label = "SoPo Motion Message"
    bl_options = {'INTERNAL'}

    level: EnumProperty(items=(('INFO', "Info", ""), ('WARNING', "Warning", ""), ('ERROR', "Error", "")))
    message: StringProperty()

    def execute(self, context):
        self.report({self.level}, self.message)
        return {'FINISHED'}


class SOPO_MT_motion(bpy.types.Menu):
    """The operators in one menu, so F3 search finds them"""
    bl_idname = "SOPO_MT_motion"
    bl_label = "SoPo Motion"

    def draw(self, context):
        layout = self.layout
        layout.operator(SOPO_OT_generate.bl_idname)
        layout.operator(SOPO_OT_cancel.bl_idname)
        layout.operator(SOPO_OT_pick.bl_idname, text="None Are Good").index = -1
        layout.operator(SOPO_OT_send_picks.bl_idname)
        layout.operator(SOPO_OT_apply_to_rig.bl_idname)


def _menu_entry(self, context):
    self.layout.menu(SOPO_MT_motion.bl_idname)


MENUS = ("VIEW3D_MT_object", "VIEW3D_MT_pose")


def register():
    for name in MENUS:
        getattr(bpy.types, name).append(_menu_entry)


def unregister():
    for name in MENUS:
        getattr(bpy.types, name).remove(_menu_entry)


classes = (SOPO_OT_generate, SOPO_OT_cancel, SOPO_OT_pick, SOPO_OT_send_picks, SOPO_OT_apply_to_rig,
           SOPO_OT_notify, SOPO_MT_motion)
