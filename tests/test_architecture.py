"""seglib's layout: imports run one way, from the label table up, and no module grows into a room of its own.

The layers below are the module map of the README's "Architecture" section: a module may import only modules of
lower layers (inside a function too: a cycle hidden in a function body is still a cycle). A new module must be
placed in a layer here, which is the moment to decide what it may depend on.
"""

import ast
from pathlib import Path

import pytest

SEGLIB = Path(__file__).resolve().parents[1] / "seglib"

LAYERS = (
    ("labels", "safeio", "backends", "lifetime"),   # the label table; file safety; the Keras backend; child processes
    ("masks",),                                     # mask formats, 34 -> 8, nearest resize, category shares
    ("cityscapes", "metrics", "modelio", "viz"),    # folder layout; numpy scores; the model's contract; pictures
    ("profiles", "synthetic"),                      # run profiles; the generated street scenes
    ("datasets",),                                  # which dataset, data folder, runs folder, trained models
    ("augment", "prepare", "models", "losses", "keras_metrics", "features",
     "notebook"),                                   # ...; a chapter's first cell: profile, data folder, times
    ("data", "bench", "modern"),                    # input pipelines; timing; keras-hub's models
    ("results",),                                   # results files, spreads, outcome sentences
    ("train",),                                     # fitting, saved runs, evaluation
    ("predict",),                                   # the one prediction path
    ("experiments", "export", "webapp"),
    ("backend_probe", "exercises"),                 # every tool on each backend; the exercises' answer key
)
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}
#: Longest module, in lines: past this a module holds more than one idea.
MAX_LINES = 600


def _modules() -> dict[str, Path]:
    """``{"masks": path, "synthetic.scene": path, ...}`` for every module of seglib (packages included)."""
    found = {}
    for path in sorted(SEGLIB.rglob("*.py")):
        parts = path.relative_to(SEGLIB).with_suffix("").parts
        if parts == ("__init__",):
            continue
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _imports(name: str, path: Path) -> set[str]:
    """The seglib modules ``name`` imports anywhere in its file (``from seglib import x`` -> ``x``; relative
    imports resolved), as dotted names below ``seglib``."""
    package = name.split(".")[:-1] if path.name != "__init__.py" else name.split(".")
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name.removeprefix("seglib.") for alias in node.names if alias.name.startswith("seglib.")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from . import x / from .x import y
                base = package[:len(package) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            elif node.module == "seglib":
                module = ""
            elif node.module and node.module.startswith("seglib."):
                module = node.module.removeprefix("seglib.")
            else:
                continue
            if node.module in (None, "seglib") or (node.level and not node.module):
                found |= {".".join(filter(None, (module, alias.name))) for alias in node.names}
            else:
                found.add(module)
    return {target for target in found if target and target != name}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    graph = {}
    for name, path in modules.items():
        targets = set()
        for target in _imports(name, path):
            while target not in known and "." in target:  # from seglib.synthetic import make_scene -> synthetic
                target = target.rsplit(".", 1)[0]
            if target in known:
                targets.add(target)
        graph[name] = targets - {name}
    return graph


def _top(name: str) -> str:
    return name.split(".")[0]


def test_the_import_parser_reads_every_form():
    """The parser itself, on a module written for it: every import form it must understand, by hand."""
    source = SEGLIB / "synthetic" / "render.py"
    found = _imports("synthetic.render", source)
    assert "labels" in found or "masks" in found  # render draws with the label table
    assert {target for target in found if target.startswith("synthetic")} <= {"synthetic.geometry",
                                                                               "synthetic.textures",
                                                                               "synthetic.scene"}


def test_every_module_has_a_layer():
    unplaced = sorted({_top(name) for name in _modules()} - set(RANK))
    assert not unplaced, f"place {unplaced} in a layer of tests/test_architecture.py (and the README's map)"


def _upward(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    """The imports of ``graph`` from a module to one of its own layer or above (within a package: allowed)."""
    return [(name, target) for name, targets in sorted(graph.items()) for target in sorted(targets)
            if _top(name) != _top(target) and RANK[_top(target)] >= RANK[_top(name)]]


def test_imports_run_one_way():
    upward = [f"seglib.{name} imports seglib.{target}" for name, target in _upward(_graph())]
    assert not upward, "imports against the layers: " + "; ".join(upward)


def test_no_import_cycle():
    graph, state, cycles = _graph(), {}, []

    def visit(name, path):
        state[name] = "open"
        for target in sorted(graph[name]):
            if state.get(target) == "open":
                cycles.append(" -> ".join(path[path.index(target):] + [target]) if target in path else target)
            elif target not in state:
                visit(target, path + [target])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert not cycles, f"import cycles: {cycles}"


def test_the_layers_catch_an_upward_import():
    """The rule fails where it should: a layout module that imported the run profiles (the cycle this layout
    removed), or two modules of one layer importing each other, are reported."""
    graph = _graph()
    graph["cityscapes"] = graph["cityscapes"] | {"profiles"}
    graph["metrics"] = graph["metrics"] | {"viz"}
    assert _upward(graph) == [("cityscapes", "profiles"), ("metrics", "viz")]


@pytest.mark.parametrize("name", sorted(_modules()))
def test_no_module_is_a_room_of_its_own(name):
    lines = len(_modules()[name].read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"seglib/{name} has {lines} lines; split it by concern (at most {MAX_LINES})"


def test_every_package_is_installed():
    """``pip install`` (Colab installs seglib from git) ships only the packages pyproject.toml lists."""
    import tomllib

    listed = set(tomllib.loads((SEGLIB.parent / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    packages = {".".join(("seglib",) + path.parent.relative_to(SEGLIB).parts) for path in SEGLIB.rglob("__init__.py")}
    assert packages == listed
