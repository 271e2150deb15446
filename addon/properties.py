"""The add-on's one PropertyGroup, on every Scene as `scene.sopo_motion`."""
import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, PointerProperty, StringProperty

from . import bone_maps, session


def _model_search(self, context, edit_text):
    """Suggest the checkpoints the server listed in its last hello_ok."""
    return [name for name in session.server_models() if edit_text.lower() in name.lower()]


class SOPO_PG_motion(bpy.types.PropertyGroup):
    prompt: StringProperty(name="Prompt", default="", description="What the character should do")
    count: IntProperty(name="Candidates", default=4, min=1, max=8,
                       description="How many different motions to generate for this prompt")
    seconds: FloatProperty(name="Seconds", default=6.0, min=0.5, max=10.0, step=50, precision=1,
                           description="Length of each motion")
    seed: IntProperty(name="Seed", default=0, min=0, description="Seed for reproducible results")
    random_seed: BoolProperty(name="Random", default=True, description="Use a new random seed each time")
    guidance: FloatProperty(name="Guidance", default=2.5, min=0.0, max=20.0,
                            description="Classifier-free guidance: higher follows the prompt more closely")
    model: StringProperty(name="Model", default="", search=_model_search,
                          description="Checkpoint on the server (empty: the server's loaded model)")
    candidates: PointerProperty(type=bpy.types.Collection, name="Candidates",
                                description="The collection of the latest generated candidates")
    bone_map: EnumProperty(name="Bone map", default='AUTO', items=bone_maps.ENUM_ITEMS,
                           description="How SMPL joints map onto the target rig's bones")
    bone_map_file: StringProperty(name="Map file", default="", subtype='FILE_PATH',
                                  description="JSON object {smpl_joint: rig_bone} for the 'From file' map")


def register():
    bpy.types.Scene.sopo_motion = PointerProperty(type=SOPO_PG_motion)


def unregister():
    del bpy.types.Scene.sopo_motion


classes = (SOPO_PG_motion,)
