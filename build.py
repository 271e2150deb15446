"""Build the SoPo Motion Blender extension: `python build.py`.

Makes, validated by Blender's own extension tool (`blender_ext.py`, shipped in the `bpy`
module):
  dist/sopo_motion-<version>.zip            Blender 4.2 to 5.0 (Python 3.11): cp311 pyzmq wheels
  dist/sopo_motion-<version>-blender5.1.zip Blender 5.1 and later (Python 3.13): cp312-abi3 wheels
Each holds addon/, a copy of shared/ as the add-on's subpackage `shared` (see addon/vendored.py)
and pyzmq wheels for Linux x86_64, Windows x64 and macOS arm64/x86_64, fetched once with
`pip download` into .cache/wheels/.

Why two zips: Blender derives an extension's Python versions from its wheels, and cp311 beside
abi3 wheels reads as "3.11 only", which Blender 5.1 refuses to install. `--check-python`
shows this with Blender's own code.
"""
from __future__ import annotations

import argparse
import importlib.util
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent
ADDON = ROOT / "addon"
SHARED = ROOT / "shared"
WHEEL_CACHE = ROOT / ".cache" / "wheels"
STAGE = ROOT / "build" / "extension"
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")

# (pip platform tag, Blender platform); pyzmq's macOS wheels are universal2 (one file for both).
PLATFORMS = (
    ("manylinux_2_28_x86_64", "linux-x64"),
    ("win_amd64", "windows-x64"),
    ("macosx_11_0_arm64", "macos-arm64"),
    ("macosx_10_15_x86_64", "macos-x64"),
)


@dataclass(frozen=True)
class Variant:
    suffix: str  # added to the zip's name
    python: str  # pip --python-version
    abi: str  # pip --abi
    blender_min: str
    blender_max: str  # exclusive; "" for none


VARIANTS = (
    Variant("", "3.11", "cp311", "4.2.0", "5.1.0"),
    Variant("-blender5.1", "3.13", "abi3", "5.1.0", ""),
)


def pyzmq_pin() -> str:
    """The pyzmq version pinned in pyproject.toml (the add-on ships the same)."""
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for dep in deps:
        if dep.replace(" ", "").startswith("pyzmq=="):
            return dep.split("==", 1)[1].strip()
    raise SystemExit("pyproject.toml pins no pyzmq==VERSION")


def blender_ext() -> Path:
    """Blender's extension command-line tool inside the installed `bpy` module."""
    spec = importlib.util.find_spec("bpy")
    if spec is None or spec.origin is None:
        raise SystemExit("the bpy module is needed to validate the extension: pip install -e '.[test]'")
    found = sorted(Path(spec.origin).parent.glob("*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
    if not found:
        raise SystemExit(f"blender_ext.py not found in {Path(spec.origin).parent}")
    return found[-1]


def fetch_wheels(variant: Variant, version: str) -> list[Path]:
    """pyzmq wheels for every platform (downloaded once, then read from the cache)."""
    wheels = {}
    for pip_platform, _ in PLATFORMS:
        folder = WHEEL_CACHE / f"pyzmq-{version}" / f"{variant.abi}-{pip_platform}"
        if not list(folder.glob("pyzmq-*.whl")):
            folder.mkdir(parents=True, exist_ok=True)
            cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:", "--no-deps",
                   "--platform", pip_platform, "--python-version", variant.python, "--implementation", "cp",
                   "--abi", variant.abi, f"pyzmq=={version}", "--dest", str(folder)]
            print("fetching", f"pyzmq=={version}", variant.abi, pip_platform, flush=True)
            subprocess.run(cmd, check=True)
        for wheel in folder.glob("pyzmq-*.whl"):
            wheels[wheel.name] = wheel
    return [wheels[name] for name in sorted(wheels)]


def manifest_text(variant: Variant, wheels: list[Path]) -> str:
    """addon/blender_manifest.toml with this zip's Blender range, platforms and wheels."""
    lines = [f'blender_version_min = "{variant.blender_min}"']
    if variant.blender_max:
        lines.append(f'blender_version_max = "{variant.blender_max}"')
    lines.append("platforms = [" + ", ".join(f'"{p}"' for _, p in PLATFORMS) + "]")
    if wheels:
        lines.append("wheels = [\n" + "".join(f'  "./wheels/{w.name}",\n' for w in wheels) + "]")
    text = (ADDON / "blender_manifest.toml").read_text()
    text, count = re.subn(r'(?m)^blender_version_min = .*$', lambda _: "\n".join(lines), text)
    if count != 1:
        raise SystemExit("addon/blender_manifest.toml needs one blender_version_min line")
    return text


def stage(variant: Variant, wheels: list[Path]) -> Path:
    """build/extension/<variant>: the add-on, shared/ as its subpackage, the wheels, the manifest."""
    folder = STAGE / variant.abi
    if folder.exists():
        shutil.rmtree(folder)
    shutil.copytree(ADDON, folder, ignore=IGNORE)
    shutil.copytree(SHARED, folder / "shared", ignore=IGNORE)
    check_relative_imports(folder / "shared")
    if wheels:
        (folder / "wheels").mkdir()
        for wheel in wheels:
            shutil.copy2(wheel, folder / "wheels" / wheel.name)
    (folder / "blender_manifest.toml").write_text(manifest_text(variant, wheels))
    return folder


def check_relative_imports(folder: Path) -> None:
    """The vendored shared/ must import itself relatively: there is no top-level `shared` in Blender."""
    for path in folder.glob("*.py"):
        if re.search(r"(?m)^\s*(from shared[. ]|import shared\b)", path.read_text()):
            raise SystemExit(f"{path.relative_to(STAGE)} imports `shared` absolutely; use relative imports")


def run_blender_ext(*args: str) -> None:
    subprocess.run([sys.executable, str(blender_ext()), *args], check=True)


def build(with_wheels: bool = True, out_dir: Path = ROOT / "dist") -> list[Path]:
    manifest = tomllib.loads((ADDON / "blender_manifest.toml").read_text())
    version = pyzmq_pin()
    out_dir.mkdir(parents=True, exist_ok=True)
    zips = []
    for variant in VARIANTS:
        wheels = fetch_wheels(variant, version) if with_wheels else []
        source = stage(variant, wheels)
        target = out_dir / f"{manifest['id']}-{manifest['version']}{variant.suffix}.zip"
        target.unlink(missing_ok=True)
        run_blender_ext("build", "--source-dir", str(source), "--output-filepath", str(target))
        run_blender_ext("validate", str(target))
        zips.append(target)
    return zips


def check_python(zips: list[Path]) -> None:
    """Ask Blender's own code which Python versions each zip (and one mixing both) would accept."""
    spec = importlib.util.spec_from_file_location("blender_ext", blender_ext())
    ext = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ext)
    import zipfile
    names = {z.name: [Path(n).name for n in zipfile.ZipFile(z).namelist() if n.endswith(".whl")] for z in zips}
    names["(cp311 and abi3 in one zip)"] = [n for wheels in names.values() for n in wheels]
    for label, wheels in names.items():
        versions = sorted(".".join(map(str, v)) for v in ext.python_versions_from_wheels(wheels)) if wheels else []
        verdict = {}
        for py in ((3, 11, 0), (3, 13, 0)):
            skip = ext.repository_filter_skip(item={"python_versions": versions} if versions else {},
                                              filter_blender_version=(5, 0, 1), filter_python_version=py,
                                              filter_platform="linux-x64", skip_message_fn=None,
                                              error_fn=print)
            verdict[f"{py[0]}.{py[1]}"] = "refused" if skip else "ok"
        print(f"{label}: python_versions={versions} {verdict}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-wheels", action="store_true",
                        help="leave pyzmq out (only for a Blender whose Python already has it)")
    parser.add_argument("--out", type=Path, default=ROOT / "dist", help="output folder (default dist/)")
    parser.add_argument("--check-python", action="store_true",
                        help="also print which Python versions Blender accepts for each zip")
    args = parser.parse_args(argv)
    zips = build(with_wheels=not args.no_wheels, out_dir=args.out)
    if args.check_python:
        check_python(zips)
    print("\nBuilt and validated:")
    for path in zips:
        print(f"  {path}  ({path.stat().st_size / 1e6:.1f} MB)")
    print("Install in Blender: Edit > Preferences > Get Extensions > Install from Disk "
          f"({zips[0].name} for Blender 4.2-5.0, {zips[-1].name} for 5.1+)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
