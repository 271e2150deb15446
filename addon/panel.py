"""The "Motion" tab in the 3D viewport's sidebar."""
import bpy

from . import candidates, operators, session

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
        layout.prop(props, "prompt", text="")
        col = layout.column(align=True)
        col.use_property_split = True
        col.prop(props, "count")
        col.prop(props, "seconds")
        row = col.row(align=True)
        row.prop(props, "seed")
        row.prop(props, "random_seed", text="", icon='FILE_REFRESH')
        col.prop(props, "guidance")
        col.prop(props, "model", icon='FILE_3D')

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
        waiting = session.state().outbox
        if waiting is not None and len(waiting):
            row = box.row()
            row.label(text=f"{len(waiting)} pick(s) waiting for the server", icon='SORTTIME')
            row.operator(operators.SOPO_OT_send_picks.bl_idname, text="", icon='FILE_REFRESH')


class SOPO_PT_candidates(bpy.types.Panel):
    bl_idname = "SOPO_PT_candidates"
    bl_label = "Candidates"
    bl_space_type = 'VIEW_3D'
    bl_region_type = 'UI'
    bl_category = "Motion"
    bl_parent_id = SOPO_PT_motion.bl_idname

    @classmethod
    def poll(cls, context):
        return context.scene.sopo_motion.candidates is not None

    def draw(self, context):
        layout = self.layout
        collection = context.scene.sopo_motion.candidates
        objects = candidates.candidate_objects(collection)
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
        source = operators.source_candidate(context)
        target = context.active_object
        layout.label(text=f"From: {source.name if source else '(pick or select a candidate)'}")
        layout.label(text=f"To: {target.name if target and target.type == 'ARMATURE' else '(select your rig)'}")
        layout.operator(operators.SOPO_OT_apply_to_rig.bl_idname, text="Apply to My Rig", icon='ARMATURE_DATA')


classes = (SOPO_PT_motion, SOPO_PT_candidates, SOPO_PT_apply)
