"""Operators: Generate, Cancel, Pick, Send waiting picks, Check server, Clear candidates, Update
candidates, Re-time to the scene's frame rate, Apply to my rig (and an internal notifier).

None of them waits for the server: they queue work for `session` and return. Failures that
are known at once are reported with `self.report` and cancel the operator.
"""
import random

import bpy
from bpy.props import BoolProperty, EnumProperty, IntProperty, StringProperty

from . import bone_maps, candidates, keyframes, preferences, request, retarget, session
from .client import ClientError
from .constraints import ControlError
from .outbox import OutboxError


class SOPO_OT_generate(bpy.types.Operator):
    """Generate motion candidates for the prompt (with the panel's controls) on the motion server"""
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
        try:
            plan = request.plan(context)  # the artist controls read from the scene, checked as the server would
        except ControlError as exc:
            session.set_status(str(exc), 'ERROR')
            self.report({'ERROR'}, str(exc))
            return {'CANCELLED'}
        if props.random_seed:
            props.seed = random.randrange(0, 2**31)
        try:
            session.generate(context.scene, props.prompt.strip(), props.count, plan.seconds, props.seed,
                             props.guidance, props.model.strip(), constraints=plan.constraints,
                             foot_cleanup=props.foot_cleanup, first_frame=plan.first_frame, anchor=plan.anchor,
                             pinned_seconds=plan.pinned_seconds)
        except ClientError as exc:
            session.set_status(str(exc), 'ERROR')
            self.report({'ERROR'}, str(exc))
            return {'CANCELLED'}
        controls = f", {', '.join(plan.constraints.names())}" if plan.constraints is not None else ""
        self.report({'INFO'}, f"Generating {session.plural(props.count, 'candidate')} (seed {props.seed}{controls})")
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
    for i, obj in enumerate(objects):
        if i == chosen:
            continue
        if mode == 'DELETE':
            candidates.remove_candidate(obj)
        else:
            candidates.set_hidden(candidates.parts_of(obj), True)
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


class SOPO_OT_check_server(bpy.types.Operator):
    """Say hello to the server now: is it reachable, which model, how fast does it answer"""
    bl_idname = "sopo.check_server"
    bl_label = "Check Server"
    bl_options = {'REGISTER'}

    def execute(self, context):
        if not session.check_connection():
            self.report({'ERROR'}, session.state().connection.error)
            return {'CANCELLED'}
        return {'FINISHED'}


class SOPO_OT_clear_candidates(bpy.types.Operator):
    """Delete every candidate that was not picked (of every request in this scene); picked motions stay"""
    bl_idname = "sopo.clear_candidates"
    bl_label = "Clear Candidates"
    bl_options = {'REGISTER', 'UNDO'}

    @classmethod
    def poll(cls, context):
        if not candidates.collections(context.scene):
            cls.poll_message_set("No candidates in this scene")
            return False
        return True

    def execute(self, context):
        removed, kept = candidates.clear(context.scene)
        self.report({'INFO'}, f"Deleted {session.plural(removed, 'candidate')}; kept {kept} picked")
        return {'FINISHED'}


class SOPO_OT_update_candidates(bpy.types.Operator):
    """Key the latest candidates again with the panel's keys, in place and trim settings"""
    bl_idname = "sopo.update_candidates"
    bl_label = "Update Candidates"
    bl_options = {'REGISTER', 'UNDO'}

    @classmethod
    def poll(cls, context):
        if not candidates.candidate_objects(context.scene.sopo_motion.candidates):
            cls.poll_message_set("Generate candidates first")
            return False
        return True

    def execute(self, context):
        collection = context.scene.sopo_motion.candidates
        shape = session.shape_of(context.scene, candidates.first_frame_of(collection, context.scene))
        count = candidates.rekey(context.scene, collection, shape)
        self.report({'INFO'}, f"Keyed {session.plural(count, 'candidate')} again")
        return {'FINISHED'}


class SOPO_OT_retime(bpy.types.Operator):
    """After changing the scene's frame rate: key every candidate and every applied motion again so it
    lasts as long as before (and, with whole frames, has one key per frame)"""
    bl_idname = "sopo.retime"
    bl_label = "Re-time to Scene FPS"
    bl_options = {'REGISTER', 'UNDO'}

    def execute(self, context):
        done, actions = candidates.retime(context.scene)
        fps = keyframes.scene_fps(context.scene)
        self.report({'INFO'}, f"Re-timed {session.plural(done, 'candidate')} and "
                              f"{session.plural(actions, 'applied action')} to {fps:g} fps")
        return {'FINISHED'}


source_candidate = request.source_candidate  # the picked candidate, else a selected one (the panel shows it)


class SOPO_OT_apply_to_rig(bpy.types.Operator):
    """Transfer the picked (or selected) candidate's motion onto the active armature as an Action"""
    bl_idname = "sopo.apply_to_rig"
    bl_label = "Apply Motion to Rig"
    bl_options = {'REGISTER', 'UNDO'}

    bone_map: EnumProperty(name="Bone map", items=bone_maps.ENUM_ITEMS, default='AUTO')
    bone_map_file: StringProperty(name="Map file", subtype='FILE_PATH')
    feet_on_floor: BoolProperty(name="Feet on floor", default=True)
    lock_feet: BoolProperty(name="Lock feet", default=True)
    action_name: StringProperty(name="Action")
    keep_previous: BoolProperty(name="Keep previous", default=False)

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
        self.feet_on_floor, self.lock_feet = props.feet_on_floor, props.lock_feet
        self.action_name, self.keep_previous = props.action_name, props.keep_previous
        return self.execute(context)

    def execute(self, context):
        target, source = context.active_object, source_candidate(context)
        try:
            result = retarget.apply_to_rig(context.scene, source, target, self.bone_map,
                                           bpy.path.abspath(self.bone_map_file), feet_on_floor=self.feet_on_floor,
                                           lock_feet=self.lock_feet, name=self.action_name,
                                           keep_previous=self.keep_previous)
        except (bone_maps.BoneMapError, retarget.RetargetError) as exc:
            self.report({'ERROR'}, str(exc))
            return {'CANCELLED'}
        feet = ""
        if self.feet_on_floor and not any("feet not put" in w for w in result.warnings):
            feet = f"; hips moved {100.0 * result.height_offset:+.1f} cm to put the feet on the floor"
        self.report({'INFO'}, f"Keyed {len(result.mapping)} bones of {target.name} as '{result.action.name}'{feet}")
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
        layout.operator(SOPO_OT_check_server.bl_idname)
        layout.operator(SOPO_OT_clear_candidates.bl_idname)
        layout.operator(SOPO_OT_update_candidates.bl_idname)
        layout.operator(SOPO_OT_retime.bl_idname)
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


classes = (SOPO_OT_generate, SOPO_OT_cancel, SOPO_OT_pick, SOPO_OT_send_picks, SOPO_OT_check_server,
           SOPO_OT_clear_candidates, SOPO_OT_update_candidates, SOPO_OT_retime, SOPO_OT_apply_to_rig,
           SOPO_OT_notify, SOPO_MT_motion)
