"""Add-on preferences: where the server is, how long to wait, CURVE keys, what Pick does, and
the artist's own SMPL model file for a real body (read locally: see body.py)."""
import bpy
from bpy.props import EnumProperty, FloatProperty, IntProperty, StringProperty

from . import body, callbacks
from .client import ClientError, Curve

DEFAULT_ADDRESS = "tcp://127.0.0.1:5555"


class SOPO_AddonPreferences(bpy.types.AddonPreferences):
    bl_idname = __package__

    server_address: StringProperty(
        name="Server address", default=DEFAULT_ADDRESS, update=callbacks.connection_changed,
        description="ZeroMQ endpoint of `python server/serve.py` (tcp://HOST:PORT)")
    reach_timeout: FloatProperty(
        name="Answer within", default=1.5, min=0.2, max=60.0, unit='TIME_ABSOLUTE', update=callbacks.connection_changed,
        description="A server that says nothing for this long after a hello is reported unreachable "
                    "(a Generate sent to it fails, a Pick waits in the outbox)")
    timeout: FloatProperty(
        name="Timeout", default=30.0, min=0.2, max=600.0, unit='TIME_ABSOLUTE',
        description="Seconds of silence from a server that answered before a request is sent again")
    retries: IntProperty(
        name="Retries", default=2, min=0, max=20,
        description="How many times a silent request is sent again before giving up")
    server_key: StringProperty(
        name="Server public key", default="", update=callbacks.connection_changed,
        description="CURVE public key of the server (the 40-character Z85 key in its server.key); "
                    "needed when the server is bound beyond this computer")
    client_key_file: StringProperty(
        name="Client key file", default="", subtype='FILE_PATH', update=callbacks.connection_changed,
        description="This computer's CURVE key pair (NAME.key_secret made by server/make_keys.py)")
    unpicked: EnumProperty(
        name="After a pick", default='HIDE',
        items=(('HIDE', "Hide the others", "Hide the candidates that were not picked"),
               ('DELETE', "Delete the others", "Delete the candidates that were not picked"),
               ('KEEP', "Keep all", "Leave every candidate as it is")),
        description="What happens to the other candidates when one is picked")
    smpl_model_path: StringProperty(
        name="SMPL model", default="", subtype='FILE_PATH', update=callbacks.smpl_changed,
        description="Your SMPL model file (.npz, e.g. SMPL_NEUTRAL.npz or AMASS's SMPL-H model.npz) or a folder "
                    "holding one: candidates then get this body instead of capsules. Read on this computer, "
                    "never sent; a .pkl must be converted once (python -m server.data.body_model --to-npz)")
    smpl_betas: StringProperty(
        name="Betas", default="", update=callbacks.smpl_changed,
        description="Body shape: the SMPL betas separated by commas (e.g. 1.5, -0.3); empty for the template body")
    smpl_gender: EnumProperty(
        name="Gender", default='NEUTRAL', items=body.GENDER_ITEMS, update=callbacks.smpl_changed,
        description="Which model to use when the SMPL model path is a folder")

    def draw(self, context):
        layout = self.layout
        layout.use_property_split = True
        col = layout.column()
        col.prop(self, "server_address")
        row = col.row(align=True)
        row.prop(self, "timeout")
        row.prop(self, "retries")
        col.prop(self, "reach_timeout")
        col.prop(self, "server_key")
        col.prop(self, "client_key_file")
        col.prop(self, "unpicked")
        col = layout.column(heading="Body")
        col.prop(self, "smpl_model_path")
        col.prop(self, "smpl_betas")
        col.prop(self, "smpl_gender")
        text, icon = body.describe(self)
        col.label(text=text, icon=icon)


def get(context=None) -> SOPO_AddonPreferences:
    """This add-on's preferences (it must be enabled)."""
    context = context or bpy.context
    addon = context.preferences.addons.get(__package__)
    if addon is None:
        raise RuntimeError(f"the add-on {__package__} is not enabled")
    return addon.preferences


def curve_keys(prefs) -> Curve | None:
    """CURVE keys from the preferences, None when no server key is set; ClientError when incomplete."""
    server_key = prefs.server_key.strip()
    if not server_key:
        return None
    if len(server_key) != 40:
        raise ClientError("the server public key must be the 40-character Z85 key from server.key")
    path = bpy.path.abspath(prefs.client_key_file) if prefs.client_key_file else ""
    if not path:
        raise ClientError("a CURVE server key needs a client key file (NAME.key_secret from server/make_keys.py)")
    import zmq.auth
    try:
        public, secret = zmq.auth.load_certificate(path)
    except (OSError, ValueError) as exc:
        raise ClientError(f"cannot read the client key file {path}: {exc}") from None
    if secret is None:
        raise ClientError(f"{path} holds no secret key: use the NAME.key_secret file")
    return Curve(server_key.encode("ascii"), public, secret)


classes = (SOPO_AddonPreferences,)
