"""The package's shape, as docs/architecture.md ("Data flows one way") states it: layers that
import only downwards, no import cycle, one name per function, no test double in production code.

The import graph is read from the source (every import, those inside functions included;
``if TYPE_CHECKING:`` blocks excluded), so a lazy import cannot hide a back-arrow."""

import ast
import collections
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "urm_models"

#: lowest first; a room may import its own layer and the layers below it
LAYERS = [
    ("core", {"core"}),
    ("data", {"data"}),
    ("analysis", {"features", "models", "segments", "experiments", "evaluation"}),
    ("serve", {"serve"}),
    ("jobs", {"jobs"}),
    ("cli", {"cli"}),
]


def _modules() -> dict[str, Path]:
    out = {}
    for path in SRC.rglob("*.py"):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        out[".".join(parts).removesuffix(".__init__")] = path
    return out


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = {
        id(node)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
        for node in ast.walk(block)
    }
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([module] if module else []))
            for alias in node.names:
                full = f"{module}.{alias.name}"
                found.add(full if full in known else module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return {m for m in found if m in known and m != name}


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    mods = _modules()
    return {name: _imports(name, path, set(mods)) for name, path in mods.items()}


def _room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_every_room_has_a_layer(graph):
    placed = set().union(*(rooms for _, rooms in LAYERS))
    rooms = {_room(m) for m in graph} - {""}
    assert rooms <= placed, f"rooms without a layer (add them to LAYERS and docs/architecture.md): {rooms - placed}"


def test_imports_only_run_downwards(graph):
    level = {room: i for i, (_, rooms) in enumerate(LAYERS) for room in rooms}
    back = sorted(
        f"{a} -> {b}"
        for a, targets in graph.items()
        for b in targets
        if _room(a) and _room(b) and level[_room(b)] > level[_room(a)]
    )
    assert not back, "imports that run back up the layers:\n" + "\n".join(back)


def test_no_import_cycle(graph):
    """No module reaches itself through the imports of others (Tarjan's strongly connected
    components); a package importing its own parts in its __init__ is not a cycle."""
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            top = min(component, key=len)
            if len(component) > 1 and not all(c.startswith(top) for c in component):
                cycles.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    assert not cycles, f"import cycles: {cycles}"


def test_one_name_per_function():
    """A public function or class name is defined once in the package: two functions of one
    name (with different arguments) are a trap for the reader."""
    where = collections.defaultdict(list)
    for name, path in _modules().items():
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_"):
                where[node.name].append(name)
    twice = {n: m for n, m in where.items() if len(m) > 1}
    assert not twice, f"public names defined in several modules: {twice}"


def test_no_test_double_in_production_code():
    hits = [
        f"{path.relative_to(SRC.parent)}:{i}"
        for path in SRC.rglob("*.py")
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if "unittest" in line and "import" in line
    ]
    assert not hits, f"production code imports unittest (mock): {hits}"


def test_the_checks_see_a_back_arrow_and_a_cycle(tmp_path):
    """The graph reader itself: a lazy import inside a function counts, a TYPE_CHECKING one does not."""
    pkg = tmp_path / "urm_models"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "paths.py").write_text("def f():\n    from .cli import main\n")
    (pkg / "cli.py").write_text(
        "from typing import TYPE_CHECKING\nfrom . import paths\nif TYPE_CHECKING:\n    from . import io\n"
    )
    (pkg / "io.py").write_text("")
    known = {"urm_models", "urm_models.paths", "urm_models.cli", "urm_models.io"}
    assert _imports("urm_models.paths", pkg / "paths.py", known) == {"urm_models.cli"}
    assert _imports("urm_models.cli", pkg / "cli.py", known) == {"urm_models.paths"}
