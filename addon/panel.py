"""The "Motion" tab in the 3D viewport's sidebar: connection, prompt, artist controls, Generate; then
the candidates, their keys and placement, and Apply to my rig."""
import bpy

from . import candidates, keyframes, operators, request, session

STATUS_ICONS = {'INFO': 'INFO', 'WARNING': 'ERROR', 'ERROR': 'CANCEL'}


class SOPO_PT_motion(bpy.types.Panel):
    bl_idname = "SOPO_PT_motion"
    bl_label = "Text to Motion"
    bl_space_type = 'VIEW_3D'
    bl_region_type = 'UI'
    bl_category = "Motion"

    def draw(self, context):
        layout = self.layout
        props = context.scene.sopo_motion
        text, icon = session.connection_row()
        row = layout.row(align=True)
        row.label(text=text, icon=icon)
        row.operator(operators.SOPO_OT_check_server.bl_idname, text="", icon='FILE_REFRESH')

        layout.prop(props, "prompt", text="")
        col = layout.column(align=True)
        col.use_property_split = True
        col.prop(props, "count")
        row = col.row(align=True)
        row.active = props.keep == 'NONE' and not props.use_end_pose  # else the length comes from the controls
        row.prop(props, "seconds")
        row = col.row(align=True)
        row.prop(props, "seed")
        row.prop(props, "random_seed", text="", icon='FILE_REFRESH')
        col.prop(props, "guidance")
        col.prop(props, "model", icon='FILE_3D')
        draw_controls(layout.box(), context)

        row = layout.row(align=True)
        row.scale_y = 1.4
        if session.generating():
            row.operator(operators.SOPO_OT_cancel.bl_idname, text="Cancel", icon='X')
        else:
            row.operator(operators.SOPO_OT_generate.bl_idname, text="Generate", icon='PLAY')

        status = session.state().status
        box = layout.box()
        if status.progress is not None and session.generating() and hasattr(box, "progress"):
            box.progress(factor=status.progress, type='BAR', text=status.text)
        else:
            box.label(text=status.text, icon=STATUS_ICONS.get(status.level, 'INFO'))
        warning = session.confidence_warning(props.candidates)
        if warning:
            box.label(text=warning, icon='ERROR')
        waiting = session.state().outbox
        if waiting is not None and len(waiting):
            row = box.row()
            row.label(text=f"{session.plural(len(waiting), 'pick')} waiting for the server", icon='SORTTIME')
            row.operator(operators.SOPO_OT_send_picks.bl_idname, text="", icon='FILE_REFRESH')


def draw_controls(box, context) -> None:
    """The "Controls" box: what the next Generate pins, loops, follows or keeps (request.py says how)."""
    props = context.scene.sopo_motion
    scene = context.scene
    box.label(text="Controls", icon='CON_ARMATURE')
    col = box.column(align=True)
    row = col.row(align=True)
    row.prop(props, "use_start_pose")
    if props.use_start_pose:
        row.label(text=f"frame {scene.frame_current}")
    row = col.row(align=True)
    row.prop(props, "use_end_pose")
    sub = row.row(align=True)
    sub.active = props.use_end_pose
    sub.prop(props, "end_frame", text="")
    if request.uses_rig(props):
        rig = request.active_armature(context)
        col.label(text=f"Pose of: {rig.name}" if rig else "Pose of: (select your rig or a candidate)",
                  icon='ARMATURE_DATA' if rig else 'ERROR')
        if props.use_end_pose and props.keep == 'NONE':
            start = request.first_frame(scene, props)
            seconds = (props.end_frame - start) / keyframes.scene_fps(scene)
            col.label(text=f"Frames {start:g}-{props.end_frame}: {seconds:.1f} s" if seconds > 0
                      else f"End frame {props.end_frame} is not after frame {start:g}",
                      icon='TIME' if seconds > 0 else 'ERROR')
    col.prop(props, "loop")
    row = col.row(align=True)
    row.prop(props, "use_path")
    sub = row.row(align=True)
    sub.active = props.use_path
    sub.prop(props, "path_curve", text="", icon='CURVE_DATA')
    if props.use_path:
        col.prop(props, "path_speed")
    col.prop(props, "keep")
    if props.keep != 'NONE':
        source = request.source_candidate(context)
        col.label(text=f"From: {source.name}" if source else "From: (pick or select a candidate)",
                  icon='ARMATURE_DATA' if source else 'ERROR')
    col.prop(props, "foot_cleanup")


class SOPO_PT_candidates(bpy.types.Panel):
    bl_idname = "SOPO_PT_candidates"
    bl_label = "Candidates"
    bl_space_type = 'VIEW_3D'
    bl_region_type = 'UI'
    bl_category = "Motion"
    bl_parent_id = SOPO_PT_motion.bl_idname

    @classmethod
    def poll(cls, context):
        return bool(candidates.collections(context.scene)) or context.scene.sopo_motion.candidates is not None

    def draw(self, context):
        layout = self.layout
        collection = context.scene.sopo_motion.candidates
        objects = candidates.candidate_objects(collection)
        if collection is not None:
            layout.label(text=collection.get("sopo_prompt", collection.name), icon='TEXT')
            picked = collection.get("sopo_picked")
            col = layout.column(align=True)
            for i, obj in enumerate(objects):
                row = col.row(align=True)
                row.label(text=f"{i + 1}  {obj.name}", icon='CHECKMARK' if picked == i else 'ARMATURE_DATA')
                if picked is None:
                    row.operator(operators.SOPO_OT_pick.bl_idname, text="Pick").index = i
            if picked is None:
                layout.operator(operators.SOPO_OT_pick.bl_idname, text="None Are Good", icon='X').index = -1
            elif picked == -1:
                layout.label(text="None were good: noted", icon='CHECKMARK')
        layout.operator(operators.SOPO_OT_clear_candidates.bl_idname, icon='TRASH')


class SOPO_PT_keys(bpy.types.Panel):
    bl_idname = "SOPO_PT_keys"
    bl_label = "Keys and Placement"
    bl_space_type = 'VIEW_3D'
    bl_region_type = 'UI'
    bl_category = "Motion"
    bl_parent_id = SOPO_PT_motion.bl_idname
    bl_options = {'DEFAULT_CLOSED'}

    def draw(self, context):
        layout = self.layout
        props = context.scene.sopo_motion
        layout.use_property_split = True
        layout.prop(props, "timing")
        layout.prop(props, "in_place")
        layout.prop(props, "use_trim")
        row = layout.row(align=True)
        row.active = props.use_trim
        row.prop(props, "trim_start")
        row.prop(props, "trim_end")
        layout.prop(props, "hide_earlier")
        row = layout.row(align=True)
        row.operator(operators.SOPO_OT_update_candidates.bl_idname, icon='FILE_REFRESH')
        row.operator(operators.SOPO_OT_retime.bl_idname, icon='TIME')


class SOPO_PT_apply(bpy.types.Panel):
    bl_idname = "SOPO_PT_apply"
    bl_label = "Apply to My Rig"
    bl_space_type = 'VIEW_3D'
    bl_region_type = 'UI'
    bl_category = "Motion"
    bl_parent_id = SOPO_PT_motion.bl_idname
    bl_options = {'DEFAULT_CLOSED'}

    def draw(self, context):
        layout = self.layout
        props = context.scene.sopo_motion
        layout.use_property_split = True
        layout.prop(props, "bone_map")
        if props.bone_map == 'FILE':
            layout.prop(props, "bone_map_file")
        layout.prop(props, "feet_on_floor")
        row = layout.row()
        row.active = props.feet_on_floor
        row.prop(props, "lock_feet")
        layout.prop(props, "action_name")
        layout.prop(props, "keep_previous")
        source = operators.source_candidate(context)
        target = context.active_object
        layout.label(text=f"From: {source.name if source else '(pick or select a candidate)'}")
        layout.label(text=f"To: {target.name if target and target.type == 'ARMATURE' else '(select your rig)'}")
        layout.operator(operators.SOPO_OT_apply_to_rig.bl_idname, text="Apply to My Rig", icon='ARMATURE_DATA')


classes = (SOPO_PT_motion, SOPO_PT_candidates, SOPO_PT_keys, SOPO_PT_apply)
