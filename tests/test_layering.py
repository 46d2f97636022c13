"""The package's shape, enforced: layers as folders, dependencies pointing one way.

The import graph over ``jinit/`` (every ``import`` statement, at module level or inside a
function) must have no cycle; an implementation module may import only from its own area or
from an area in a lower layer of :data:`LAYERS`; and no module imports a ``_private`` name
from another module. Façades (the public modules that re-export an area: ``jinit``, each
area's ``__init__``, ``jinit.plot``, ``jinit._cli_guard``) may re-export from any area, but
still take part in the cycle check.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "jinit"

# bottom-up: an area may import from its own layer's areas only if listed in ALLOWED_SIDEWAYS
LAYERS: list[tuple[str, ...]] = [
    ("_core",),
    ("laws",),
    ("initializers",),
    ("stats", "theory"),
    ("testing", "trees"),
    ("torch",),
    ("catalogue",),
    ("recipes", "mup"),
    ("sweeps",),
    ("report",),
    ("cli",),
]
RANK = {area: i for i, layer in enumerate(LAYERS) for area in layer}
FACADES = {"jinit", "jinit.plot", "jinit._cli_guard"} | {f"jinit.{a}" for a in RANK}


def _modules() -> dict[str, Path]:
    out = {}
    for p in sorted(PKG.rglob("*.py")):
        parts = p.relative_to(PKG.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = p
    return out


MODULES = _modules()


def _imports(name: str, path: Path) -> list[tuple[str, str | None, int]]:
    """``(module, imported name or None, line)`` of every jinit import in ``path``."""
    out = []
    is_pkg = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(a.name, None, node.lineno) for a in node.names if a.name.startswith("jinit")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_pkg else name.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if not mod.startswith("jinit"):
                continue
            for a in node.names:
                sub = f"{mod}.{a.name}"
                out.append(
                    (sub, None, node.lineno) if sub in MODULES else (mod, a.name, node.lineno)
                )
    return out


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _private_attributes(name: str, path: Path) -> list[tuple[str, str, int]]:
    """``(module, name, line)`` of every ``alias._private`` where ``alias`` is a jinit module
    imported under that name (``from jinit.stats import _stats as S``; ``S._plan(...)``)."""
    tree = ast.parse(path.read_text(), str(path))
    aliases = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("jinit"):
            for a in node.names:
                if f"{node.module}.{a.name}" in MODULES:
                    aliases[a.asname or a.name] = f"{node.module}.{a.name}"
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name in MODULES and a.asname:
                    aliases[a.asname] = a.name
    return [
        (aliases[node.value.id], node.attr, node.lineno)
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id in aliases
        and node.attr.startswith("_")
        and not node.attr.startswith("__")
    ]


def _area(name: str) -> str | None:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in RANK else None


def test_every_module_belongs_to_an_area():
    stray = [m for m in MODULES if m not in FACADES and _area(m) is None]
    assert not stray, f"modules outside the layered areas: {stray}; add them to an area"


def test_no_import_cycles():
    graph = {m: sorted({t for t, _, _ in GRAPH[m] if t in MODULES and t != m}) for m in MODULES}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for t in graph[m]:
            if state.get(t) == 1:
                cycle = stack[stack.index(t) :] + [t]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if t not in state:
                visit(t)
        stack.pop()
        state[m] = 2

    for m in graph:
        if m not in state:
            visit(m)


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m not in FACADES))
def test_imports_point_down(module):
    here = RANK[_area(module)]
    bad = []
    for target, _, line in GRAPH[module]:
        area = _area(target)
        if target == "jinit" or target in FACADES - {f"jinit.{_area(module)}"}:
            if _area(module) != "cli":  # the CLI calls the public API
                bad.append(f"line {line}: {target} (a façade; import the implementation)")
        elif area is not None and RANK[area] > here:
            bad.append(f"line {line}: {target} (layer {RANK[area]} > {here})")
        elif area is not None and RANK[area] == here and area != _area(module):
            bad.append(f"line {line}: {target} (same layer, another area)")
    assert not bad, f"{module} imports upward:\n" + "\n".join(bad)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_private_names_across_modules(module):
    bad = [
        f"line {line}: {name} from {target}"
        for target, name, line in GRAPH[module]
        if name is not None and name.startswith("_") and target != module
    ]
    bad += [
        f"line {line}: {target}.{name}"
        for target, name, line in _private_attributes(module, MODULES[module])
        if target != module
    ]
    assert not bad, f"{module} imports private names of other modules:\n" + "\n".join(bad)


def test_the_layer_table_is_complete():
    areas = {p.name for p in PKG.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert areas == set(RANK), f"areas on disk {sorted(areas)} vs LAYERS {sorted(RANK)}"


# ---------------------------------------------------------------------------------------------
# Public homes: what a public module exports says so, and its docs teach only public paths
# ---------------------------------------------------------------------------------------------

PUBLIC = [
    "jinit",
    "jinit.laws",
    "jinit.torch",
    "jinit.recipes",
    "jinit.mup",
    "jinit.theory",
    "jinit.testing",
    "jinit.catalogue",
    "jinit.plot",
]


def _exports():
    import importlib
    import inspect

    for name in PUBLIC:
        mod = importlib.import_module(name)
        for attr in mod.__all__:
            obj = getattr(mod, attr)
            if inspect.isclass(obj) or inspect.isfunction(obj):
                yield name, attr, obj


@pytest.mark.parametrize("public", PUBLIC)
def test_exports_name_a_public_home(public):
    """``obj.__module__`` of every exported class and function is a public module that has it
    under the same name (so repr, help, tracebacks and pickles never show a private path)."""
    import importlib

    bad = []
    for mod, attr, obj in _exports():
        if mod != public:
            continue
        home = obj.__module__
        private = any(p.startswith("_") for p in home.split(".")[1:])
        if private or getattr(importlib.import_module(home), attr, None) is not obj:
            bad.append(f"{mod}.{attr}: __module__ = {home!r}")
    assert not bad, "\n".join(bad)


def test_public_docstrings_teach_public_paths():
    import inspect
    import re

    private = re.compile(r"jinit\.(?:_core|[a-z]+\._[a-z])[\w.]*")
    bad = [
        f"{mod}.{attr}: {hit}"
        for mod, attr, obj in _exports()
        for hit in private.findall(inspect.getdoc(obj) or "")
    ]
    assert not bad, "public docstrings name private modules:\n" + "\n".join(bad)


# ---------------------------------------------------------------------------------------------
# Imports inside functions: only the heavy third-party modules `import jinit` does not load
# ---------------------------------------------------------------------------------------------

# flax, matplotlib, rich, scikit-learn and typer cost seconds to import and most uses of jinit
# never need them; fcntl exists only on POSIX. Everything else is imported at module level.
LAZY = ("flax", "matplotlib", "rich", "sklearn", "typer", "fcntl")


def _function_imports(path: Path) -> list[tuple[int, str]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for sub in ast.walk(node):
                if isinstance(sub, ast.Import):
                    out += [(sub.lineno, a.name) for a in sub.names]
                elif isinstance(sub, ast.ImportFrom):
                    out.append((sub.lineno, "." * sub.level + (sub.module or "")))
    return out


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _area(m) != "cli"))
def test_function_level_imports_are_only_the_lazy_ones(module):
    bad = [
        f"line {line}: {mod}"
        for line, mod in _function_imports(MODULES[module])
        if mod.split(".")[0] not in LAZY
    ]
    assert not bad, f"{module} imports inside functions (hoist them):\n" + "\n".join(bad)


def test_import_jinit_leaves_the_lazy_modules_unloaded():
    import subprocess
    import sys

    code = f"import sys, jinit; print(' '.join(m for m in {LAZY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() in ("", "fcntl"), f"`import jinit` loads {out.stdout.strip()}"


def test_import_jinit_leaves_jax_unstarted():
    """No array is made at import time: the CLI (and users) can still choose the CPU device
    count, which JAX fixes when its backend starts."""
    import subprocess
    import sys

    code = (
        "import jinit, jax, jinit.cli; jax.config.update('jax_num_cpu_devices', 2); "
        "print(len(jax.devices('cpu')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "2", out.stderr[-2000:]


# ---------------------------------------------------------------------------------------------
# Size: modules and functions a reader can hold in their head
# ---------------------------------------------------------------------------------------------

MAX_MODULE_LINES = 550
DATA_MODULES = {"jinit.catalogue._catalogue"}  # the catalogue's tables of entries
MAX_FUNCTION_LINES = 60
# Functions allowed over MAX_FUNCTION_LINES code lines, each capped at its size (none today:
# an entry must come with a reason; the test fails when a listed function is split or gone).
LONG_FUNCTIONS: dict[str, int] = {}


def _code_lines(src: list[str], node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Lines of ``node`` that are not blank, comments or its docstring."""
    doc = range(0)
    first = node.body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
        if isinstance(first.value.value, str):
            doc = range(first.lineno, first.end_lineno + 1)
    return sum(
        1
        for i in range(node.lineno, node.end_lineno + 1)
        if i not in doc and src[i - 1].strip() and not src[i - 1].strip().startswith("#")
    )


def _sizes_in(node: ast.AST, src: list[str], prefix: str) -> dict[str, int]:
    out = {}
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
            name = f"{prefix}{child.name}"
            out[name] = _code_lines(src, child)
            out |= _sizes_in(child, src, f"{name}.")
        elif isinstance(child, ast.ClassDef):
            out |= _sizes_in(child, src, f"{prefix}{child.name}.")
    return out


def _function_sizes() -> dict[str, int]:
    sizes = {}
    for module, path in MODULES.items():
        if module not in DATA_MODULES:
            text = path.read_text()
            found = _sizes_in(ast.parse(text), text.splitlines(), "")
            sizes |= {f"{module}:{name}": n for name, n in found.items()}
    return sizes


def test_modules_are_short():
    long = {
        m: n
        for m, p in MODULES.items()
        if m not in DATA_MODULES and (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert not long, f"modules over {MAX_MODULE_LINES} lines (split them): {long}"


def test_functions_are_short():
    sizes = _function_sizes()
    grown = {
        f: n
        for f, n in sizes.items()
        if n > MAX_FUNCTION_LINES and n > LONG_FUNCTIONS.get(f, MAX_FUNCTION_LINES)
    }
    assert not grown, f"functions over {MAX_FUNCTION_LINES} code lines (split them): {grown}"
    stale = {f: sizes.get(f) for f in LONG_FUNCTIONS if sizes.get(f, 0) <= MAX_FUNCTION_LINES}
    assert not stale, f"split or gone: delete from LONG_FUNCTIONS: {stale}"
