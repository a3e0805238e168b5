"""The layer rule of docs/design.md, checked on the source: every `import` and `from ... import` under src/dgm,
function-level ones included, relative ones resolved.

* ``models/``, ``nn/``, ``data/``, ``objectives/`` import nothing from ``training/``, ``metrics/``, ``bench/`` or
  ``cli``; ``runs.py`` and ``checkpoint.py`` import nothing from ``training/``, ``metrics/``, ``bench/`` or ``cli``;
* no module of dgm is in an import cycle. Importing a name from a package (``from ..models import MODELS``) is an
  edge to its ``__init__``; importing a submodule (``from . import checkpoint``) is an edge to that submodule.
"""
from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, Iterable, List, Set

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
LOWER = ("dgm.models", "dgm.nn", "dgm.data", "dgm.objectives", "dgm.runs", "dgm.checkpoint")
UPPER = ("dgm.training", "dgm.metrics", "dgm.figures", "dgm.bench", "dgm.cli")


def _modules(src: Path) -> Dict[str, Path]:
    out = {}
    for f in sorted((src / "dgm").rglob("*.py")):
        parts = list(f.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = f
    return out


def _targets(name: str, path: Path, tree: ast.AST, known: Set[str]) -> Set[str]:
    """The dgm modules that module ``name`` (file ``path``) imports, anywhere in its body."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            bases = [a.name for a in node.names]
            found.update(b for b in bases if b in known)
            found.update(b.rpartition(".")[0] for b in bases if b not in known and b.rpartition(".")[0] in known)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            for a in node.names:
                sub = f"{mod}.{a.name}"
                if sub in known:  # a submodule
                    found.add(sub)
                elif mod in known:  # a name defined in a module or a package's __init__
                    found.add(mod)
    found.discard(name)
    return found


def import_graph(src: Path = SRC) -> Dict[str, Set[str]]:
    mods = _modules(src)
    return {m: _targets(m, p, ast.parse(p.read_text(), str(p)), set(mods)) for m, p in mods.items()}


def _inside(module: str, layers: Iterable[str]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in layers)


def upward_imports(graph: Dict[str, Set[str]]) -> List[str]:
    return sorted(f"{m} -> {t}" for m, ts in graph.items() if _inside(m, LOWER) for t in ts if _inside(t, UPPER))


def cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on: Set[str] = set()
    out: List[List[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


# -- the checker can fail: a synthetic package with an upward import and a cycle ------------------------
def _write(root: Path, files: Dict[str, str]) -> None:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)


def test_checker_finds_upward_imports_and_cycles(tmp_path):
    _write(tmp_path, {
        "dgm/__init__.py": "from .models import MODELS\n",
        "dgm/models/__init__.py": "from .base import MODELS\nfrom . import vq\n",
        "dgm/models/base.py": "MODELS = {}\n",
        "dgm/models/vq.py": "def f():\n    from ..training.run import load\n    return load\n",
        "dgm/training/__init__.py": "",
        "dgm/training/run.py": "from ..models import MODELS\nimport dgm.metrics.nll\n",
        "dgm/metrics/__init__.py": "",
        "dgm/metrics/nll.py": "from dgm.models.base import MODELS\n",
    })
    g = import_graph(tmp_path)
    assert g["dgm.models.vq"] == {"dgm.training.run"}  # function-level and relative, resolved
    assert g["dgm.models"] == {"dgm.models.base", "dgm.models.vq"}
    assert g["dgm.training.run"] == {"dgm.models", "dgm.metrics.nll"}
    assert upward_imports(g) == ["dgm.models.vq -> dgm.training.run"]
    assert cycles(g) == [["dgm.models", "dgm.models.vq", "dgm.training.run"]]


def test_checker_passes_a_layered_package(tmp_path):
    _write(tmp_path, {
        "dgm/__init__.py": "from .runs import load\n",
        "dgm/runs.py": "from .models import build\ndef load():\n    return build()\n",
        "dgm/models/__init__.py": "from .base import build\n",
        "dgm/models/base.py": "def build():\n    return 1\n",
        "dgm/training/run.py": "from ..runs import load\nfrom .. import runs\n",
    })
    g = import_graph(tmp_path)
    assert g["dgm.training.run"] == {"dgm.runs"}
    assert upward_imports(g) == [] and cycles(g) == []


# -- the rule, on dgm itself -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def graph():
    return import_graph()


def test_the_graph_sees_dgm(graph):
    assert {"dgm.runs", "dgm.checkpoint", "dgm.models.vqvae", "dgm.training.run", "dgm.bench.modes"} <= set(graph)
    assert "dgm.runs" in graph["dgm.training.run"] and "dgm.checkpoint" in graph["dgm.runs"]


def test_lower_layers_never_import_upward(graph):
    assert upward_imports(graph) == []


# Cycles known and waiting for a fix (none now); a listed cycle that is gone fails, so the list cannot go stale.
PENDING: List[List[str]] = []


def test_no_import_cycles(graph):
    found = cycles(graph)
    assert [c for c in found if c not in PENDING] == []
    assert [c for c in PENDING if c not in found] == [], "a pending cycle is gone: delete it from PENDING"
