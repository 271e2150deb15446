"""The add-on's one PropertyGroup, on every Scene as `scene.sopo_motion`."""
import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, PointerProperty, StringProperty

from . import bone_maps, callbacks


class SOPO_PG_motion(bpy.types.PropertyGroup):
    prompt: StringProperty(name="Prompt", default="", description="What the character should do")
    count: IntProperty(name="Candidates", default=4, min=1, max=8,
                       description="How many different motions to generate for this prompt")
    seconds: FloatProperty(name="Seconds", default=6.0, min=0.5, max=10.0, step=50, precision=1,
                           description="Length of each motion (with End at frame N or Keep, the controls set it)")
    seed: IntProperty(name="Seed", default=0, min=0, description="Seed for reproducible results")
    random_seed: BoolProperty(name="Random", default=True, description="Use a new random seed each time")
    guidance: FloatProperty(name="Guidance", default=2.5, min=0.0, max=20.0,
                            description="Classifier-free guidance: higher follows the prompt more closely")
    model: StringProperty(name="Model", default="", search=callbacks.model_search,
                          description="Checkpoint on the server (empty: the server's loaded model)")
    # Artist controls (request.py, constraints.py)
    use_start_pose: BoolProperty(name="Start from the current pose", default=False,
                                 description="The motion starts in the selected armature's pose and place at the "
                                             "current frame: the candidates start where the rig stands, keyed from "
                                             "the current frame on")
    use_end_pose: BoolProperty(name="End at the pose at frame", default=False,
                               description="The motion ends in the selected armature's pose and place at this frame "
                                           "(it lasts from the current frame to it; Seconds is not used)")
    end_frame: IntProperty(name="Frame", default=120, description="The frame whose pose the motion ends in")
    loop: BoolProperty(name="Loop", default=False,
                       description="A cycle: the last frame continues into the first (pose and velocity)")
    use_path: BoolProperty(name="Follow path", default=False,
                           description="The hips follow the curve from its first point to its last, the body facing "
                                       "along it")
    path_curve: PointerProperty(type=bpy.types.Object, name="Path", poll=callbacks.is_curve,
                                description="A curve object with one spline (drawn on the floor)")
    path_speed: FloatProperty(name="Speed", default=0.0, min=0.0, max=15.0, unit='VELOCITY',
                              description="Walk the path at this speed (0: the motion's own pace, reaching the "
                                          "path's end at the motion's end)")
    keep: EnumProperty(
        name="Keep", default='NONE',
        items=(('NONE', "Nothing", "Make the whole body anew"),
               ('UPPER', "Upper body", "Keep the picked candidate's spine, head and arms exactly; make the legs anew"),
               ('LOWER', "Lower body", "Keep the picked candidate's legs and hips (and its path) exactly; make the "
                                       "upper body anew")),
        description="Keep half of the picked candidate's body exactly and make the rest anew (as long as it)")
    foot_cleanup: BoolProperty(name="Clean up foot contacts", default=True,
                               description="The server pins the feet while they touch the floor and lifts bodies "
                                           "out of it (off: the raw sampled motion)")
    candidates: PointerProperty(type=bpy.types.Collection, name="Candidates",
                                description="The collection of the latest generated candidates")
    bone_map: EnumProperty(name="Bone map", default='AUTO', items=bone_maps.ENUM_ITEMS,
                           description="How SMPL joints map onto the target rig's bones")
    bone_map_file: StringProperty(name="Map file", default="", subtype='FILE_PATH',
                                  description="JSON object {smpl_joint: rig_bone} for the 'From file' map")
    # Keys and placement of the candidates (shaping.py, candidates.py)
    timing: EnumProperty(
        name="Keys", default='FRAMES',
        items=(('FRAMES', "Whole frames", "One key on every scene frame: the motion resampled to the scene's "
                                          "frame rate (rotations slerped)"),
               ('SOURCE', "Source timing", "The motion's own samples (20 per second), on fractional frames")),
        description="Where the candidates' keys sit")
    in_place: BoolProperty(name="In place", default=False,
                           description="Remove the horizontal root motion (for game cycles): the pelvis stays "
                                       "over its start")
    use_trim: BoolProperty(name="Trim", default=False, description="Keep only a frame range of the motion")
    trim_start: IntProperty(name="From", default=1,
                            description="First frame to keep (frames of the whole motion as it first played)")
    trim_end: IntProperty(name="To", default=120,
                          description="Last frame to keep (frames of the whole motion as it first played)")
    hide_earlier: BoolProperty(name="Hide earlier candidates", default=True,
                               description="When new candidates arrive, hide the unpicked ones of earlier requests")
    # Apply to my rig (retarget.py)
    feet_on_floor: BoolProperty(name="Feet on floor", default=True,
                                description="Put the rig's feet on the floor where the motion's feet are down, "
                                            "at the height they have in the rig's rest pose")
    lock_feet: BoolProperty(name="Lock feet", default=True,
                            description="Pin each foot in place while it is down (leg IK), so it does not slide")
    action_name: StringProperty(name="Action", default="",
                                description="Name of the rig's new Action (empty: the rig's name and the prompt)")
    keep_previous: BoolProperty(name="Keep previous", default=False,
                                description="Keep the rig's previous Action from this add-on (with a fake user) "
                                            "instead of replacing it")


def register():
    bpy.types.Scene.sopo_motion = PointerProperty(type=SOPO_PG_motion)


def unregister():
    del bpy.types.Scene.sopo_motion


classes = (SOPO_PG_motion,)
