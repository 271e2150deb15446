"""Where the add-on finds the project's `shared/` package (skeleton, rotations, motion, protocol,
constraints, body_model).

One scheme, two layouts:
- the built extension (build.py) carries a copy of `shared/` as the subpackage `<add-on>.shared`;
- a source checkout (tests, server/bench/blender.py) has no such folder and uses the repository's
  top-level `shared` package, which `pip install -e .` puts on the path.
Add-on modules import `shared` modules only through this file.
"""
from pathlib import Path

if (Path(__file__).parent / "shared" / "__init__.py").is_file():
    from .shared import body_model, constraints, motion, protocol, rotations, skeleton
else:
    from shared import body_model, constraints, motion, protocol, rotations, skeleton

__all__ = ("body_model", "constraints", "motion", "protocol", "rotations", "skeleton")
