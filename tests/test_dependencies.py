"""Every third-party module jinit imports is a declared runtime dependency, or a guarded extra.

A user who runs ``pip install jinit`` (no extras) must be able to run every CLI command and import
every public module. The test parses each file under ``jinit/`` with :mod:`ast` and checks each
``import`` of a module outside the standard library and jinit itself: its distribution must be
listed in ``pyproject.toml``'s ``[project] dependencies``, unless the import sits in a ``try:``
whose ``except ImportError`` handler either raises an error that names the ``pip install``
command or quietly skips a feature that only applies to objects of that library (equinox
modules can only exist where equinox is installed).
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "jinit"


def _norm(name: str) -> str:
    """PEP 503 normalised distribution name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(req: str) -> str:
    return _norm(re.split(r"[\s;<>=!~\[(]", req.strip(), maxsplit=1)[0])


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def runtime_dependencies() -> set[str]:
    return {_requirement_name(r) for r in _pyproject()["project"]["dependencies"]}


# Import name -> distribution name, for installed distributions (sklearn -> scikit-learn).
_DISTS = importlib.metadata.packages_distributions()
_KNOWN = {"sklearn": "scikit-learn", "PIL": "pillow", "yaml": "pyyaml"}


def distribution_of(module: str) -> str:
    top = module.split(".")[0]
    if top in _DISTS:
        return _norm(_DISTS[top][0])
    return _norm(_KNOWN.get(top, top))


def _catches_import_error(handler: ast.ExceptHandler) -> bool:
    names = []
    t = handler.type
    for node in t.elts if isinstance(t, ast.Tuple) else [t]:
        if isinstance(node, ast.Name):
            names.append(node.id)
    return bool({"ImportError", "ModuleNotFoundError"} & set(names))


def _handler_is_clear(handler: ast.ExceptHandler) -> bool:
    """Re-raises with a message naming ``pip install``, or skips quietly (``pass``)."""
    if all(isinstance(s, ast.Pass) for s in handler.body):
        return True
    text = ast.unparse(handler)
    return "raise" in text and "pip install" in text


def third_party_imports() -> list[tuple[str, int, str, bool]]:
    """``(file, line, module, guarded)`` for every non-stdlib, non-jinit import under jinit/."""
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        guarded: set[int] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Try):
                handlers = [h for h in node.handlers if _catches_import_error(h)]
                if handlers and all(_handler_is_clear(h) for h in handlers):
                    for stmt in node.body:
                        guarded.update(id(n) for n in ast.walk(stmt))
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                for stmt in node.body:
                    guarded.update(id(n) for n in ast.walk(stmt))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for m in modules:
                top = m.split(".")[0]
                if top in sys.stdlib_module_names or top == "jinit":
                    continue
                rel = str(path.relative_to(ROOT))
                out.append((rel, node.lineno, m, id(node) in guarded))
    return out


def test_the_scan_sees_the_known_imports():
    """The scan itself works: it finds imports we know are there."""
    found = {distribution_of(m) for _, _, m, _ in third_party_imports()}
    assert {"jax", "numpy", "flax", "typer", "rich", "matplotlib", "scikit-learn"} <= found


def test_every_unguarded_third_party_import_is_a_runtime_dependency():
    declared = runtime_dependencies()
    missing = [
        f"{f}:{line}: import {m} (distribution {distribution_of(m)!r})"
        for f, line, m, guarded in third_party_imports()
        if not guarded and distribution_of(m) not in declared
    ]
    assert not missing, (
        "jinit imports modules whose distribution is not in pyproject.toml's runtime "
        "dependencies (a plain `pip install jinit` would fail):\n" + "\n".join(missing)
    )


def test_cli_needs_are_runtime_dependencies():
    """What the default commands need (plots, the digits data) comes with `pip install jinit`."""
    declared = runtime_dependencies()
    for dist in ("matplotlib", "scikit-learn", "typer", "rich", "jax", "flax", "optax", "chex"):
        assert dist in declared, f"{dist} must be a runtime dependency"


def test_torch_is_pinned_where_it_is_a_dependency():
    """torch only as a test dependency, pinned to the local CPU build (others pull CUDA)."""
    project = _pyproject()["project"]
    assert "torch" not in runtime_dependencies()
    for extra, reqs in project.get("optional-dependencies", {}).items():
        for r in reqs:
            if _requirement_name(r) == "torch":
                assert r.replace(" ", "") == "torch==2.13.0", (extra, r)


def test_guard_rule_rejects_an_unguarded_or_silent_import(tmp_path):
    """The rule itself: an unguarded import and a handler that hides the failure are caught."""
    bad = ast.parse(
        "import not_a_dep\n"
        "try:\n    import other_dep\nexcept ImportError:\n    other_dep = None\n"
        "try:\n    import third_dep\n"
        "except ImportError as e:\n    raise ImportError('pip install third-dep') from e\n"
    )
    tries = [n for n in ast.walk(bad) if isinstance(n, ast.Try)]
    assert [_handler_is_clear(t.handlers[0]) for t in tries] == [False, True]
