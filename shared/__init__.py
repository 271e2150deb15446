"""Code shared by the Blender add-on and the motion server: numpy and the standard library only."""
