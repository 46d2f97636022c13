"""``--inits`` / ``--bias-init`` specs: ``"he_normal, normal(stddev=0.01)"`` parsed with :mod:`ast`
(names and calls with literal arguments, never evaluated), names resolved in the public ``jinit``
namespace and the catalogue."""

from __future__ import annotations

import ast
import typing
from typing import Any

# ---------------------------------------------------------------------------------------------
# Safe spec parsing
# ---------------------------------------------------------------------------------------------


def _returns_initializer(fn) -> bool:
    from jinit.initializers._base import Initializer

    try:
        ret = typing.get_type_hints(fn).get("return")
    except Exception:  # unresolvable annotations: not a builder we know
        return False
    return isinstance(ret, type) and issubclass(ret, Initializer)


def _resolve_name(parts: list[str], spec: str):
    """``(object, is_builder)`` for a dotted public name: an initialiser instance or a builder.

    Looks in the public ``jinit`` namespace first, then in the catalogue (e.g.
    ``torch.kaiming_uniform``). Anything that is neither an initialiser nor a builder of one
    (``fans``, ``law``, modules, classes) is refused.
    """
    import jinit
    from jinit.catalogue import lookup, public_builder
    from jinit.initializers._base import Initializer

    for p in parts:
        if not p.isidentifier() or p.startswith("_"):
            raise ValueError(
                f"`--inits` spec {spec!r}: {p!r} is not a public name. Use names such as "
                f"'he_normal' or 'normal(stddev=0.01)'."
            )
    if parts[0] == "jinit":
        parts = parts[1:]
    if not parts:
        raise ValueError(f"`--inits` spec {spec!r} names no initialiser.")
    dotted = ".".join(parts)
    obj: Any = jinit
    for p in parts:
        obj = getattr(obj, p, None)
        if obj is None:
            break
    if isinstance(obj, Initializer):
        return obj, False
    if obj is not None and callable(obj) and not isinstance(obj, type):
        if _returns_initializer(obj):
            return obj, True
        raise ValueError(
            f"`--inits` spec {spec!r}: {dotted!r} is not an initialiser. See `jinit list`."
        )
    try:
        entry = lookup("--inits", dotted)
    except ValueError:
        raise ValueError(
            f"`--inits` spec {spec!r}: unknown initialiser {dotted!r}. See `jinit list` for names."
        ) from None
    builder = public_builder(entry)
    return (builder, True) if builder is not None else (entry.build, True)


def _literal(node: ast.AST, spec: str):
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise ValueError(
            f"`--inits` spec {spec!r}: arguments must be literals (numbers, strings, tuples); "
            f"got {ast.unparse(node)!r}."
        ) from None


def _dotted(node: ast.AST, spec: str) -> list[str]:
    if isinstance(node, ast.Name):
        return [node.id]
    if isinstance(node, ast.Attribute):
        return [*_dotted(node.value, spec), node.attr]
    raise ValueError(
        f"`--inits` spec {spec!r}: expected a name or a call of a name, got {ast.unparse(node)!r}."
    )


def _build(node: ast.AST, spec: str):
    if isinstance(node, (ast.Name, ast.Attribute)):
        obj, is_builder = _resolve_name(_dotted(node, spec), spec)
        return _call(obj, [], {}, spec) if is_builder else obj
    if isinstance(node, ast.Call):
        if any(isinstance(a, ast.Starred) for a in node.args) or any(
            k.arg is None for k in node.keywords
        ):
            raise ValueError(f"`--inits` spec {spec!r}: * and ** arguments are not allowed.")
        obj, is_builder = _resolve_name(_dotted(node.func, spec), spec)
        if not is_builder:
            raise ValueError(
                f"`--inits` spec {spec!r}: {ast.unparse(node.func)!r} is already an "
                f"initialiser; write it without parentheses."
            )
        args = [_literal(a, spec) for a in node.args]
        kwargs = {k.arg: _literal(k.value, spec) for k in node.keywords}
        return _call(obj, args, kwargs, spec)
    raise ValueError(
        f"`--inits` spec {spec!r}: expected a name or a call such as 'normal(stddev=0.01)'."
    )


def _call(builder, args, kwargs, spec: str):
    try:
        init = builder(*args, **kwargs)
    except (TypeError, ValueError) as e:
        raise ValueError(f"`--inits` spec {spec!r}: {e}") from None
    if not callable(init):
        raise ValueError(f"`--inits` spec {spec!r} is not an initialiser (got {init!r}).")
    return init


def parse_init_specs(text: str) -> dict[str, Any]:
    """Parses ``"he_normal, orthogonal, normal(stddev=0.01)"`` into ``{spec: initializer}``.

    Only names and calls with literal arguments are accepted (parsed with :mod:`ast`, never
    evaluated); names resolve in the public ``jinit`` namespace and the catalogue.

    Raises:
      ValueError: a syntax error, a non-literal argument, a private or unknown name.

    Examples:
      >>> from jinit.cli._specs import parse_init_specs
      >>> list(parse_init_specs("he_normal, normal(stddev=0.01)"))
      ['he_normal', 'normal(stddev=0.01)']
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError("`--inits` needs at least one initialiser, e.g. 'he_normal'.")
    try:
        tree = ast.parse(f"[{text}]", mode="eval")
    except SyntaxError as e:
        raise ValueError(
            f"`--inits` {text!r} is not a comma-separated list of specs: {e.msg}."
        ) from None
    if not isinstance(tree.body, ast.List):  # pragma: no cover - "[...]" always parses to List
        raise ValueError(f"`--inits` {text!r} is not a list of specs.")
    out: dict[str, Any] = {}
    for node in tree.body.elts:
        spec = ast.unparse(node)
        init = _build(node, spec)
        if not callable(init):
            raise ValueError(f"`--inits` spec {spec!r} is not an initialiser (got {init!r}).")
        out[spec] = init
    if not out:
        raise ValueError("`--inits` needs at least one initialiser, e.g. 'he_normal'.")
    return out
