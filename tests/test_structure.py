"""The package's shape, as docs/architecture.md ("Data flows one way", "Layout") states it: the
folders are the layers and import only downwards, no import cycle anywhere (inside a package
too), one name per function, no private name taken from another module, every error under one
base, the flat layout's module names nowhere but in core/legacy.py, the package's own imports at
the top of a file unless a comment says what importing them costs, and a layout drawing that
names every module that exists and nothing else.

The import graph is read from the source (every import, those inside functions included;
``if TYPE_CHECKING:`` blocks excluded), so a lazy import cannot hide a back-arrow."""

import ast
import collections
import importlib
import inspect
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "urm_models"

#: lowest first: a folder (or the top-level cli.py) may import its own layer and the layers below it
LAYERS = [
    ("core", {"core"}),
    ("data", {"data"}),
    ("analysis", {"features", "models", "segments", "evaluation", "experiments"}),
    ("serve", {"serve"}),
    ("jobs", {"jobs"}),
    ("cli", {"cli"}),
]
#: the mark of a function-level import of the package's own modules, with what importing it costs
LAZY = "lazy:"


def _modules(src: Path = SRC) -> dict[str, Path]:
    out = {}
    for path in src.rglob("*.py"):
        parts = path.relative_to(src.parent).with_suffix("").parts
        out[".".join(parts).removesuffix(".__init__")] = path
    return out


def _typing_only(tree) -> set[int]:
    return {
        id(node)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
        for node in ast.walk(block)
    }


def _resolve(name: str, path: Path, node: ast.ImportFrom) -> str:
    """The absolute module an ``from ... import`` names."""
    module = node.module or ""
    if node.level:
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        base = package.split(".")[: len(package.split(".")) - node.level + 1]
        module = ".".join(base + ([module] if module else []))
    return module


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _typing_only(tree)
    found = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom):
            module = _resolve(name, path, node)
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
    """The folder a module lives in (``core``, ``models``, ...), or ``cli``; ``""`` for the package itself."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan)."""
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
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
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in list(graph):
        if v not in index:
            visit(v)
    return cycles


def test_every_folder_is_a_layer():
    placed = set().union(*(rooms for _, rooms in LAYERS))
    rooms = {p.name for p in SRC.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    rooms |= {p.stem for p in SRC.glob("*.py") if p.name != "__init__.py"}
    assert rooms == placed, (
        f"folders without a layer, or layers without a folder (docs/architecture.md too): {rooms ^ placed}"
    )


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
    """No module reaches itself through the imports of others, a package's __init__ included."""
    assert not _cycles(graph), f"import cycles: {_cycles(graph)}"


def test_no_cycle_between_packages(graph):
    """The analysis packages share a layer; between them the arrows run one way too."""
    rooms = collections.defaultdict(set)
    for a, targets in graph.items():
        rooms[_room(a)] |= {_room(b) for b in targets if _room(b) != _room(a) and _room(b)}
    assert not _cycles(dict(rooms)), f"packages importing each other: {_cycles(dict(rooms))}"


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


def _private_reaches(name: str, path: Path, known: set[str]) -> list[str]:
    """``from m import _x`` (``_x`` not a module) and ``m._x`` on a module ``m`` of the package."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    hits, modules = [], set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            module = _resolve(name, path, node)
            if not module.startswith("urm_models"):
                continue
            for alias in node.names:
                full = f"{module}.{alias.name}"
                if full in known:
                    modules.add(alias.asname or alias.name)
                elif alias.name.startswith("_"):
                    hits.append(f"{name}:{node.lineno} imports {alias.name} from {module}")
        elif isinstance(node, ast.Import):
            modules |= {a.asname or a.name for a in node.names if a.name.startswith("urm_models")}
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in modules
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
        ):
            hits.append(f"{name}:{node.lineno} reads {node.value.id}.{node.attr}")
    return hits


def test_no_module_takes_a_private_name_of_another():
    """What a module shares is public (within the package, a private module such as
    models/_base.py is enough); a leading underscore means "this module's own"."""
    mods = _modules()
    hits = [h for name, path in mods.items() for h in _private_reaches(name, path, set(mods))]
    assert not hits, "private names taken across modules:\n" + "\n".join(hits)


def test_the_package_imports_its_own_modules_at_the_top(graph):
    """A function-level import of the package's own modules hides what a file depends on; one is
    kept only where importing at the top would cost every other caller, and says so
    (``# lazy: ...`` on the line above or on the import)."""
    mods = _modules()
    hits = []
    for name, path in mods.items():
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        tree = ast.parse(text)
        top = {id(n) for n in tree.body}
        skip = _typing_only(tree)
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)) or id(node) in top or id(node) in skip:
                continue
            targets = [_resolve(name, path, node)] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
            if not any(t.startswith("urm_models") for t in targets):
                continue
            # the comment stands on the import, or above it or above the imports right before it
            above = node.lineno - 2
            while (
                above >= 0 and re.match(r"\s*(from |import |\)|[\w, ]+,?$)", lines[above]) and LAZY not in lines[above]
            ):
                above -= 1
            if not any(LAZY in line for line in lines[max(above, 0) : node.end_lineno]):
                hits.append(f"{name}:{node.lineno} {lines[node.lineno - 1].strip()}")
    assert not hits, f"function-level imports of the package without a '# {LAZY} <cost>' comment:\n" + "\n".join(hits)


def test_every_error_derives_from_one_base():
    """Every error class of the package is in core/errors.py, under UrmError, and keeps a builtin
    base (ValueError or RuntimeError), so ``except UrmError`` catches the package's refusals and
    no ``except ValueError`` changed meaning. Private control flow (models/_base.py's _StopEarly,
    never raised out of the optimiser) is not an error of the package."""
    from urm_models.core import errors

    found = {}
    for name in _modules():
        module = importlib.import_module(name)
        for cls_name, cls in inspect.getmembers(module, inspect.isclass):
            if (
                cls.__module__ == name
                and issubclass(cls, Exception)
                and not issubclass(cls, Warning)
                and not cls_name.startswith("_")
            ):
                found[cls_name] = cls
    assert set(found) == set(errors.__all__), set(found) ^ set(errors.__all__)
    for cls in found.values():
        assert cls.__module__ == "urm_models.core.errors", cls
        if cls is not errors.UrmError:
            assert issubclass(cls, errors.UrmError) and issubclass(cls, ValueError | RuntimeError), cls


def _files_that_import(pattern: str):
    for folder in ("src", "tests", "benchmarks", "scripts", "notebooks", "docs"):
        for path in (ROOT / folder).rglob("*"):
            if path.suffix in (".py", ".ipynb", ".md") and "legacy" not in path.name and "legacy" not in path.parts[-2]:
                yield path
    for name in ("README.md", "Makefile", "pyproject.toml"):
        yield ROOT / name


def test_nothing_uses_the_flat_layouts_names():
    """core/legacy.py keeps old champions loading; the project itself says where things are now."""
    from urm_models.core.legacy import MODULES

    old_leaf = {m.rsplit(".", 1)[0]: set() for m in MODULES}
    for m in MODULES:
        old_leaf[m.rsplit(".", 1)[0]].add(m.rsplit(".", 1)[1])
    dotted = re.compile(
        r"\b(" + "|".join(re.escape(m) for m in sorted(MODULES, key=len, reverse=True)) + r")\b(?!\.\w*/)"
    )
    from_import = re.compile(r"from (urm_models(?:\.\w+)*) import \(?([\w, \n]+)")
    hits = []
    for path in _files_that_import(""):
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".ipynb":
            text = "".join("".join(c["source"]) for c in json.loads(text)["cells"])
        for m in dotted.finditer(text):
            hits.append(f"{path.relative_to(ROOT)}: {m.group(1)}")
        for m in from_import.finditer(text):
            names = {n.strip().split(" as ")[0] for n in m.group(2).split(",")}
            if old := names & old_leaf.get(m.group(1), set()):
                hits.append(f"{path.relative_to(ROOT)}: from {m.group(1)} import {sorted(old)}")
    assert not hits, "the flat layout's module names:\n" + "\n".join(sorted(set(hits)))


def _layout() -> dict[str, str]:
    """docs/architecture.md's layout drawing: path -> its description."""
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    block = text.split("## Layout", 1)[1].split("```", 2)[1]
    entries, stack, last = {}, [], None
    for line in block.splitlines()[1:]:
        m = re.match(r"^( *)(\S+)(.*)$", line)
        if not m:
            continue
        indent, token, rest = len(m.group(1)), m.group(2), m.group(3)
        if indent % 2 == 0 and (token.endswith("/") or re.fullmatch(r"[\w.]+\.py", token) or "/" in token):
            depth = indent // 2
            stack = stack[:depth]
            path = "".join(stack) + token
            if token.endswith("/"):
                stack.append(token)
            entries[path] = rest.strip()
            last = path
        elif last:
            entries[last] += " " + line.strip()
    return entries


def test_the_layout_drawing_names_every_module_and_only_modules_that_exist():
    entries = _layout()
    missing = [p for p in entries if not (ROOT / p).exists()]
    assert not missing, f"docs/architecture.md's layout names paths that do not exist: {missing}"
    unnamed = []
    for path in SRC.rglob("*.py"):
        rel = str(path.relative_to(ROOT))
        folder = str(path.parent.relative_to(ROOT)) + "/"
        if path.name == "__init__.py" and path.parent != SRC:
            continue
        if rel not in entries and not re.search(rf"(?<![\w/]){re.escape(path.name)}", entries.get(folder, "")):
            unnamed.append(rel)
    assert not unnamed, f"modules the layout drawing does not name: {unnamed}"


def test_every_python_path_the_docs_name_exists():
    files = {str(p.relative_to(ROOT)) for p in ROOT.rglob("*.py") if ".venv" not in p.parts and ".tools" not in p.parts}
    files |= {str(p.relative_to(ROOT)) for p in (ROOT / "notebooks").glob("*.ipynb")}
    gone = []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for m in re.finditer(r"(?<![\w/.-])((?:[\w-]+/)*[\w-]+\.(?:py|ipynb))\b", doc.read_text(encoding="utf-8")):
            name = m.group(1)
            if name not in files and not any(f.endswith("/" + name) for f in files):
                gone.append(f"{doc.name}: {name}")
    assert not gone, f"paths the docs name that do not exist: {gone}"


def test_no_test_double_in_production_code():
    hits = [
        f"{path.relative_to(SRC.parent)}:{i}"
        for path in SRC.rglob("*.py")
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if "unittest" in line and "import" in line
    ]
    assert not hits, f"production code imports unittest (mock): {hits}"


def test_the_checks_see_what_they_are_for(tmp_path):
    """The readers themselves, on a made-up package: a lazy import inside a function counts, a
    TYPE_CHECKING one does not; a package's __init__ in a loop is a cycle; a private name taken
    across modules is seen, as import and as attribute; an unmarked lazy import is seen."""
    pkg = tmp_path / "urm_models"
    (pkg / "core").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "core" / "__init__.py").write_text("from . import paths\n")
    (pkg / "core" / "paths.py").write_text("def f():\n    from .. import cli\n    return cli._main\n")
    (pkg / "cli.py").write_text(
        "from typing import TYPE_CHECKING\nfrom .core import paths\nfrom .core.io import _POLICY\n"
        "if TYPE_CHECKING:\n    from .core import io\n"
    )
    (pkg / "core" / "io.py").write_text("import urm_models.core\n")
    mods = _modules(pkg)
    known = set(mods)
    g = {n: _imports(n, p, known) for n, p in mods.items()}
    assert g["urm_models.core.paths"] == {"urm_models.cli"}
    assert g["urm_models.cli"] == {"urm_models.core.paths", "urm_models.core.io"}
    assert any({"urm_models.core", "urm_models.core.io"} <= set(c) for c in _cycles(g))  # __init__ <-> io
    assert _room("urm_models.core.paths") == "core" and _room("urm_models.cli") == "cli"
    reaches = _private_reaches("urm_models.cli", pkg / "cli.py", known)
    reaches += _private_reaches("urm_models.core.paths", pkg / "core" / "paths.py", known)
    assert any("_POLICY" in h for h in reaches) and any("cli._main" in h for h in reaches)


def test_the_time_unit_defaults_are_decided_once():
    """No signature writes a time unit of its own: a ``freq`` (or ``cohort_freq``) parameter
    defaults to ``core.units.FREQ`` or ``REPORT_FREQ`` (or None), the one place that decides them
    (before: 33 signatures wrote "W", one "D")."""
    literal = []
    for name, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            args = node.args.posonlyargs + node.args.args + node.args.kwonlyargs
            defaults = [None] * (len(node.args.posonlyargs + node.args.args) - len(node.args.defaults))
            defaults += node.args.defaults + node.args.kw_defaults
            for arg, default in zip(args, defaults, strict=True):
                if arg.arg.endswith("freq") and isinstance(default, ast.Constant) and default.value is not None:
                    literal.append(f"{name}.{node.name}({arg.arg}={default.value!r})")
    assert not literal, f"time units written as literals: {literal}"


def test_today_is_decided_in_one_place():
    """``date.today()``, ``Timestamp.today()`` and ``Timestamp.now()`` appear only in core/clock.py,
    in no other module and no notebook: before, "today" was decided in five places under two
    rules (a date, a time)."""
    pattern = re.compile(r"date\.today\(\)|Timestamp\.(today|now)\(\)|Timestamp\(\"(today|now)\"\)")
    found = [
        name
        for name, path in _modules().items()
        if name != "urm_models.core.clock" and pattern.search(path.read_text(encoding="utf-8"))
    ]
    found += [p.name for p in sorted((ROOT / "notebooks").glob("*.ipynb")) if pattern.search(p.read_text())]
    assert not found, f"modules and notebooks that decide today for themselves: {found}"
