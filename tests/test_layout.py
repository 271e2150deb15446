"""The import rules of DESIGN.md section 2, checked from every module's imports (ast; imports inside functions too).

- ``shared/`` imports only the standard library, numpy and itself;
- ``addon/`` never imports ``server`` or torch; no server package imports ``addon`` (the add-on
  benchmark, ``server/bench/blender.py``, may);
- inside ``server/``: data knows no model, eval, align or service; model no eval, align or
  service; eval no align or service; service no align; no package imports a CLI module
  (``server/*.py``) or a benchmark (``server/bench``); CLIs and benchmarks may import anything;
- no import cycle between the server's packages (the CLIs count as one top layer).

A failure names the file and line of each offending import.
"""
from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ("shared", "addon", "server")
PACKAGES = ("data", "model", "eval", "align", "service", "bench")   # server/<package>/
LIBRARY = ("data", "model", "eval", "align", "service")            # may import no CLI module and no bench
CLI = "cli"                                                          # server/*.py: the commands users type
FORBIDDEN = {                                                        # package -> packages it must not import
    "data": ("model", "eval", "align", "service"),
    "model": ("eval", "align", "service"),
    "eval": ("align", "service"),
    "service": ("align",),
}
SHARED_ALLOWED = ("numpy", "shared")


@dataclass(frozen=True)
class Import:
    path: str     # the importing file, relative to the repository: "server/model/inference.py"
    line: int
    module: str   # absolute dotted target; for `from a import b` it is "a.b"

    def where(self) -> str:
        return f"{self.path}:{self.line}"


def module_name(path: str) -> str:
    """'server/model/inference.py' -> 'server.model.inference'; a package's __init__.py -> the package."""
    parts = list(Path(path).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_in(source: str, path: str) -> list[Import]:
    """Every import statement of ``source`` (read as the file ``path``), relative ones made absolute."""
    name = module_name(path)
    package = name if Path(path).name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(source, filename=path)):
        if isinstance(node, ast.Import):
            found += [Import(path, node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - (node.level - 1)] if package else []
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                found.append(Import(path, node.lineno, base if alias.name == "*" else f"{base}.{alias.name}".strip(".")))
    return found


def server_layer(module: str) -> str | None:
    """The layer of a ``server...`` module: a package name, "cli" for server/*.py, None otherwise."""
    parts = module.split(".")
    if parts[0] != "server" or len(parts) < 2:
        return None
    if parts[1] in PACKAGES:
        return parts[1]
    return None if parts[1] == "checkpoints" else CLI


def _is_stdlib(top: str) -> bool:
    return top in sys.stdlib_module_names


def violations(imports: list[Import]) -> list[str]:
    """The broken rules, one line per import statement: 'FILE:LINE: ... imports MODULE (rule)'."""
    out, seen = [], set()
    for imp in imports:
        if (imp.path, imp.line) in seen:   # `from a import b, c`: one line is enough
            continue
        before = len(out)
        top = imp.module.split(".")[0]
        where = imp.path.split("/")[0]
        if where == "shared" and not (_is_stdlib(top) or top in SHARED_ALLOWED):
            out.append(f"{imp.where()}: shared/ imports {imp.module} (shared/ may import only the standard "
                       f"library and numpy)")
        elif where == "addon" and top in ("server", "torch"):
            out.append(f"{imp.where()}: addon/ imports {imp.module} (the add-on never imports server/ or torch)")
        elif where == "server":
            source, target = server_layer(module_name(imp.path)), server_layer(imp.module)
            if top == "addon" and source in LIBRARY:
                out.append(f"{imp.where()}: server/{source} imports {imp.module} (server packages never import "
                           f"addon/)")
            elif source in FORBIDDEN and target in FORBIDDEN[source]:
                out.append(f"{imp.where()}: server/{source} imports {imp.module} (server/{source} must not "
                           f"import {', '.join(FORBIDDEN[source])})")
            elif source in LIBRARY and target in (CLI, "bench"):
                kind = "a benchmark" if target == "bench" else "a CLI module"
                out.append(f"{imp.where()}: server/{source} imports {kind}, {imp.module} (packages never import "
                           f"the CLIs or the benchmarks)")
        if len(out) > before:
            seen.add((imp.path, imp.line))
    return out


def violations_in_source(source: str, path: str) -> list[str]:
    """The rules applied to one source text as if it were the file ``path`` (for synthetic checks)."""
    return violations(imports_in(source, path))


def package_edges(imports: list[Import]) -> dict[tuple[str, str], list[Import]]:
    """(importing layer, imported layer) -> the imports that make that edge, between different server layers."""
    edges: dict[tuple[str, str], list[Import]] = {}
    for imp in imports:
        source, target = server_layer(module_name(imp.path)), server_layer(imp.module)
        if source and target and source != target:
            edges.setdefault((source, target), []).append(imp)
    return edges


def cycles(edges) -> list[list[str]]:
    """Strongly connected components of more than one layer (Tarjan), each sorted."""
    graph: dict[str, set[str]] = {}
    for a, b in edges:
        graph.setdefault(a, set()).add(b)
        graph.setdefault(b, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def scan() -> list[Import]:
    """The imports of every module under shared/, addon/ and server/."""
    imports = []
    for top in SCANNED:
        for file in sorted((ROOT / top).rglob("*.py")):
            rel = file.relative_to(ROOT).as_posix()
            imports += imports_in(file.read_text(encoding="utf-8"), rel)
    return imports


@pytest.fixture(scope="module")
def tree_imports() -> list[Import]:
    return scan()


def test_the_scan_reads_every_module(tree_imports):
    files = {imp.path for imp in tree_imports}
    expected = {f.relative_to(ROOT).as_posix() for top in SCANNED for f in (ROOT / top).rglob("*.py")
                if imports_in(f.read_text(encoding="utf-8"), "x.py")}
    assert files == expected and len(files) > 50
    layers = {server_layer(module_name(p)) for p in files}
    assert set(PACKAGES) | {CLI} <= layers
    # imports inside functions are read too (generate.py imports its model code lazily)
    assert any(i.path == "server/model/inference.py" and i.module.startswith("server.model") for i in tree_imports)


def test_the_tree_follows_the_import_rules(tree_imports):
    broken = violations(tree_imports)
    assert not broken, "import rules broken (DESIGN.md section 2):\n" + "\n".join(broken)


def test_no_import_cycle_between_server_packages(tree_imports):
    edges = package_edges(tree_imports)
    found = cycles(edges)
    detail = [f"{a} -> {b}: " + ", ".join(sorted({i.where() for i in imps})[:3])
              for cycle in found for (a, b), imps in sorted(edges.items()) if a in cycle and b in cycle]
    assert not found, f"import cycles between server packages {found}:\n" + "\n".join(detail)


@pytest.mark.parametrize("path, source, expected", [
    ("shared/x.py", "import json\nimport numpy as np\nfrom . import skeleton\nfrom shared.motion import Motion\n", None),
    ("shared/x.py", "import json\n\ndef f():\n    import torch\n", "shared/x.py:4: shared/ imports torch"),
    ("shared/x.py", "from server.model import features\n", "shared/x.py:1: shared/ imports server.model.features"),
    ("addon/x.py", "import bpy\nfrom . import client\nfrom .shared import protocol\n", None),
    ("addon/x.py", "import bpy\nfrom server.service.client import MotionClient\n", "addon/x.py:2: addon/ imports server"),
    ("addon/x.py", "def f():\n    import torch.nn\n", "addon/x.py:2: addon/ imports torch.nn"),
    ("server/data/x.py", "from server.data.corpus import Corpus\nfrom shared.motion import Motion\n", None),
    ("server/data/x.py", "def f():\n    from server.model.features import x\n", "server/data/x.py:2: server/data imports"),
    ("server/model/x.py", "from ..eval import metrics\n", "server/model/x.py:1: server/model imports server.eval.metrics"),
    ("server/model/networks/x.py", "from ...service import client\n", "server/model/networks/x.py:1: server/model"),
    ("server/eval/x.py", "from server.model.inference import MotionGenerator\nfrom server.data import corpus\n", None),
    ("server/eval/x.py", "import server.align.sopo\n", "server/eval/x.py:1: server/eval imports server.align.sopo"),
    ("server/service/x.py", "from server.eval.render import render_strip\n", None),
    ("server/service/x.py", "from server.align import artist\n", "server/service/x.py:1: server/service imports"),
    ("server/align/x.py", "from server.service.picks import PicksStore\nfrom server.eval import reward\n", None),
    ("server/align/x.py", "def f():\n    from server.simulate_picks import main\n", "server/align/x.py:2: server/align imports a CLI"),
    ("server/align/x.py", "from server import finetune\n", "server/align/x.py:1: server/align imports a CLI"),
    ("server/eval/x.py", "from server.bench import latency\n", "server/eval/x.py:1: server/eval imports a benchmark"),
    ("server/x.py", "from server.align import artist\nfrom server.bench import latency\nimport torch\n", None),
    ("server/bench/x.py", "from server.service.client import MotionClient\nfrom server import serve\n", None),
    ("server/service/x.py", "from addon import client\n", "server/service/x.py:1: server/service imports addon.client"),
    ("server/bench/x.py", "from addon import keyframes\n", None),
    ("server/align/x.py", "from server.simulate_picks import a, b\n", "server/align/x.py:1: server/align imports a CLI"),
])
def test_a_synthetic_violation_is_named_with_its_file_and_line(path, source, expected):
    found = violations_in_source(source, path)
    if expected is None:
        assert found == []
    else:
        assert len(found) == 1 and found[0].startswith(expected), found


def test_relative_imports_resolve_against_the_importing_package():
    assert [i.module for i in imports_in("from .checkpoint import read_config\nfrom . import diffusion\n"
                                         "from ..data.corpus import Corpus\n", "server/model/inference.py")] == [
        "server.model.checkpoint.read_config", "server.model.diffusion", "server.data.corpus.Corpus"]
    assert [i.module for i in imports_in("from .networks import mld\n", "server/model/__init__.py")] == [
        "server.model.networks.mld"]


def test_the_cycle_finder_finds_a_synthetic_cycle_and_only_that():
    assert cycles({("model", "data"): [], ("eval", "model"): [], ("align", "eval"): []}) == []
    assert cycles({("model", "data"): [], ("data", "eval"): [], ("eval", "model"): [], ("align", "eval"): []}) == [
        ["data", "eval", "model"]]
    imports = imports_in("from server.eval import metrics\n", "server/model/x.py") + \
        imports_in("from server.model import features\n", "server/eval/y.py")
    assert cycles(package_edges(imports)) == [["eval", "model"]]
