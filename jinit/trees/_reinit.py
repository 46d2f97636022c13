"""Re-initialise a whole parameter tree by ordered (pattern, initialiser) rules: ``jinit.reinit``.

PyTorch users re-initialise a model with ``model.apply(init_weights)``; :func:`reinit` is the
functional JAX version. It addresses every array leaf by its '/'-joined path (see
:mod:`jinit._core._paths`: ``"Dense_0/kernel"`` in a linen params dict, ``"linear1/kernel"`` in an
``nnx.State``, ``"mlp/~/linear_0/w"`` in a haiku dict, ``"layers/0/weight"`` in an equinox
module), gives each leaf to the **first** rule whose pattern matches, and draws it with a key
derived from the path alone, so:

* a leaf is initialised exactly once (a later rule can never overwrite an earlier one, unlike the
  tutorial ``init_weights`` that draws Xavier weights and zeroes them on the next line);
* adding, removing or renaming a layer changes no other layer's values;
* the result does not depend on the order of the tree or of the leaves.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jinit._core._checks import PRNGKey, check_key
from jinit._core._layout import Layout
from jinit._core._layouts import tree_layouts
from jinit._core._paths import (
    is_box,
    named_leaves,
    path_str,
    sharding_annotations,
)
from jinit._core._paths import is_nnx_module as _is_nnx_module
from jinit.trees._draw import draw_leaf
from jinit.trees._explain import ReinitRecord, ReinitTable
from jinit.trees._leaf_checks import (
    check_layouts,
    check_leaf_kinds,
    check_shape_leaves,
    draw_dtype,
    is_float_dtype,
    non_array_leaves,
    resolve_layouts,
    warn_ambiguous_leaves,
)
from jinit.trees._rules import (
    REINIT_API,
    CheckedRule,
    Contextual,
    LeafInfo,
    SelfCheckingRules,
    check_rules,
    path_key,
    tree_paths,
)

# ---------------------------------------------------------------------------------------------
# reinit
# ---------------------------------------------------------------------------------------------


def reinit(
    params: Any,
    key: PRNGKey,
    rules: Sequence[tuple[str, Any]] | Mapping[str, Any],
    *,
    strict: bool = True,
    regex: bool = False,
    explain: bool = False,
    layouts: Mapping[str, Layout | str | None] | None = None,
) -> Any:
    r"""Re-initialises every array leaf of a parameter tree by the first rule matching its path.

    Each array leaf has a '/'-joined path (``"Dense_0/kernel"``; with a linen
    ``{"params": ...}`` dict, ``"params/Dense_0/kernel"``). The rules are tried in order and the
    **first** whose pattern matches the path draws the leaf, once:

    .. math::
        w_{\mathrm{path}} \leftarrow \mathrm{init}_{r(\mathrm{path})}\big(
        \mathrm{fold\_in}(\mathrm{key}, h(\mathrm{path})),\ \mathrm{shape},\ \mathrm{dtype}\big),
        \qquad r(\mathrm{path}) = \min\{\, i : \mathrm{pattern}_i \text{ matches path} \,\},

    with :math:`h` the first 32 bits of the path's SHA-256 (see :func:`path_key`). So the values
    of a leaf depend only on ``key``, its path, its rule, shape and dtype: adding or renaming
    another layer, or re-ordering the tree, changes nothing else.

    Patterns are globs (:func:`fnmatch.fnmatchcase`, case-sensitive) matched against the **whole**
    path, where ``*`` matches any characters *including* '/', so ``"*/kernel"`` matches
    ``"Dense_0/kernel"`` and ``"encoder/layer_3/attn/kernel"``; ``?`` is one character and
    ``[...]`` a character class. A pattern starting with ``*/`` also matches at the top level
    (``"*/kernel"`` matches ``"kernel"``, the kernel of an ``nnx.Linear`` given alone). With
    ``regex=True`` patterns are regular expressions and must match the whole path
    (:func:`re.fullmatch`).

    An initialiser is any ``init(key, shape, dtype) -> array`` (a jinit initialiser, a
    ``jax.nn.initializers`` one, or a function), a :func:`contextual` ``fn(key, leaf)`` that also
    sees the leaf's path, value and siblings, or ``None`` to keep the leaf as it is. It is called
    with the leaf's dtype; its result must have the leaf's shape and, outside ``jit``, is placed
    with the leaf's sharding.

    **Dtypes are kept exactly, never cast across kinds.** Each new leaf has its old leaf's dtype
    (and a numpy leaf stays a numpy array). A float draw of another precision is rounded to the
    leaf's (a float32 draw into a bfloat16 leaf), but a draw of the wrong kind raises: a complex
    draw into a real leaf (its imaginary parts would be dropped), a real or integer draw into a
    complex leaf. Integer, bool and PRNG-key leaves (step counters, BatchNorm counts, masks) are
    not weights: a rule that matches one raises a ValueError naming it, unless the rule is a
    ``Rule(..., fallback=True)`` catch-all, which skips such leaves (``explain`` shows them as
    kept). A float64/complex128 numpy leaf while ``jax_enable_x64`` is off (jax has no 64-bit
    arrays then) is drawn in float32/complex64 and returned in its own 64-bit dtype, with a
    ``UserWarning`` and a note in ``explain``; run ``jax.config.update("jax_enable_x64", True)``
    for 64-bit draws. Leaves that are not arrays (Python scalars, strings, functions; ``None``
    is an empty subtree) are kept as they are and listed by ``explain``.

    Accepted trees: linen params dicts (the ``{"params": ...}`` variables or the inner dict),
    haiku dicts (``{"mlp/~/linear_0": {"w": ..., "b": ...}}``), ``nnx.State`` (from
    ``nnx.split``/``nnx.state``; ``nnx.Variable`` boxes and their metadata are kept), any other
    pytree such as an equinox module (array leaves are replaced where they are; non-array leaves
    are kept), and an ``nnx.Module``: its ``nnx.Param`` leaves are re-initialised in a clone, which
    is returned (the input module is not modified; other variables such as batch statistics are
    copied unchanged). A tree from :func:`jax.eval_shape` (``jax.ShapeDtypeStruct`` leaves) is
    accepted too: every such leaf must be drawn by a rule, and becomes an array of its shape and
    dtype (with the struct's ``sharding`` if it has one).

    **Layouts: an initialiser means what it means in the layer.** Each leaf whose layer is known
    (an nnx or equinox module, or ``layouts=``; see :func:`jinit.layouts` and
    :class:`jinit.Layout`) is drawn as that layer draws ``kernel_init=init``: with the shape the
    layer calls its initialiser with (the flat ``(∏in, ∏out)`` of a DenseGeneral/LinearGeneral/
    attention kernel) and reshaped, so a leaf is bit-identical with the layer's own draw where
    the layer's call gives the right fans; fan-based jinit initialisers are told the layout
    where it does not (an einsum kernel, an embedding, a torch-layout equinox weight, batch
    dims), so fan_in is the contracted size. Other initialisers see the layer's call shape only.
    Leaves of unknown layers follow jax's convention (in -2, out -1, the rest receptive field);
    a rank >= 3 one outside a convolution drawn by a fan-based jinit initialiser gets a
    ``UserWarning`` naming it and the fix.

    **Shardings.** A jax leaf's sharding is kept: eagerly, and under ``jit`` where the traced
    leaf's type carries it (meshes with Explicit axes). Under ``jit`` on an all-Auto mesh a traced
    array carries no partition spec, so a leaf in a Flax box takes the sharding its annotation
    asks for (``nnx.with_partitioning`` metadata, ``nn.Partitioned``, ``nn.LogicallyPartitioned``
    with the logical axis rules in context), on the annotation's mesh or the one set with
    ``jax.set_mesh`` — as Flax places it when it creates the variable; the same holds for a
    ``jax.ShapeDtypeStruct`` leaf without a sharding. A bare traced array on an all-Auto mesh
    says nothing about where it lives: give ``jit`` its ``out_shardings`` (or start from sharded
    ``jax.ShapeDtypeStruct`` leaves).

    Args:
      params: the parameter tree (or an ``nnx.Module``).
      key: a PRNG key.
      rules: ordered ``(pattern, initialiser)`` pairs (a dict is taken in insertion order).
      strict: if True (default), raise when an array leaf matches no rule, and when a rule is
        shadowed (it matches some leaves but earlier rules took all of them — the tutorial bug
        of a later rule meant to override an earlier one), unless it is a
        ``Rule(..., fallback=True)`` catch-all. Rules matching no path at all are not
        an error (rule sets may cover layers a model lacks); ``explain`` lists them. If False,
        unmatched leaves are kept unchanged.
      regex: patterns are regular expressions (full match) instead of globs.
      explain: also return a :class:`ReinitTable` saying which rule drew which leaf.
      layouts: ``{path or glob: Layout | einsum str | None}`` for leaves whose layer the tree
        does not say (a linen params dict: pass ``jinit.layouts(model, x)``); exact paths
        first, then globs in order; they override the layouts read from an nnx/equinox module.
        ``None`` for a path means "no layout" (jax's default).

    Returns:
      The re-initialised tree, of the same structure and type as ``params``; with
      ``explain=True``, the pair ``(new_params, table)``.

    Raises:
      TypeError: malformed rules (not pairs, a non-str pattern, a non-callable initialiser), a bad
        key.
      ValueError: an invalid regex, unmatched leaves or shadowed rules under ``strict``, an
        initialiser returning the wrong shape or a dtype of the wrong kind, a non-fallback rule
        matching an integer/bool leaf, two leaves with the same path.

    Warns:
      UserWarning: float64/complex128 numpy leaves drawn in 32 bits because x64 is off; rank
        >= 3 leaves of unknown layers drawn with fan-based initialisers (see above).

    Examples:
      >>> import jax, jax.numpy as jnp, jinit
      >>> params = {"Dense_0": {"kernel": jnp.ones((4, 8)), "bias": jnp.ones(8)},
      ...           "head": {"kernel": jnp.ones((8, 2)), "bias": jnp.ones(2)}}
      >>> new, table = jinit.reinit(params, jax.random.key(0), [
      ...     ("head/bias", jinit.bias_prior(0.01)),
      ...     ("*/kernel", jinit.he_normal()),
      ...     ("*/bias", jinit.zeros),
      ... ], explain=True)
      >>> print(table)
      path            shape   dtype    rule            initialiser
      Dense_0/bias    (8,)    float32  2: */bias       jinit.zeros
      Dense_0/kernel  (4, 8)  float32  1: */kernel     jinit.he_normal()
      head/bias       (2,)    float32  0: head/bias    jinit.bias_prior(p=0.01)
      head/kernel     (8, 2)  float32  1: */kernel     jinit.he_normal()
      >>> round(float(new["head"]["bias"][0]), 3)  # -log((1 - p) / p)
      -4.595
    """
    key = check_key(REINIT_API, key)
    for name, flag in (("strict", strict), ("regex", regex), ("explain", explain)):
        if not isinstance(flag, (bool, np.bool_)):
            raise TypeError(f"`{REINIT_API}` needs `{name}` to be a bool; got {flag!r}.")
    compiled = check_rules(REINIT_API, rules, bool(regex))
    given = check_layouts(REINIT_API, layouts)
    if isinstance(rules, SelfCheckingRules):  # e.g. a recipe: its defining rules must match
        rules.check_paths(tree_paths(params), regex=bool(regex))
    return reinit_rules(
        params, key, compiled, strict=bool(strict), explain=bool(explain), layouts=given
    )


# ---------------------------------------------------------------------------------------------
# The tree walk
# ---------------------------------------------------------------------------------------------


def reinit_rules(
    params: Any,
    key: PRNGKey,
    rules: tuple[CheckedRule, ...],
    *,
    strict: bool,
    explain: bool,
    api: str = REINIT_API,
    shadow_checked: int | None = None,
    layouts: Mapping[str, Layout | None] | None = None,
) -> Any:
    """:func:`reinit` on checked rules; only rules < ``shadow_checked`` may not be shadowed."""
    layouts = dict(layouts or {})
    new, table = on_params(
        params,
        layouts,
        lambda tree, lay: _reinit_tree(tree, key, rules, strict, api, shadow_checked, lay),
    )
    return (new, table) if explain else new


def on_params(params: Any, layouts: Mapping[str, Any], fn: Any) -> tuple[Any, Any]:
    """``fn(tree, layouts) -> (new tree, table)`` on ``params``; for an ``nnx.Module``, on the
    ``nnx.Param`` state of a clone (with the layouts its layers know, ``layouts`` first), which is
    updated and returned (the input module is not modified)."""
    if not _is_nnx_module(params):
        return fn(params, layouts)
    from flax import nnx

    clone = nnx.clone(params)
    _, state, _ = nnx.split(clone, nnx.Param, ...)
    new_state, table = fn(state, {**tree_layouts(params), **layouts})
    nnx.update(clone, new_state)
    return clone, table


def _fmt_leaves(items: Sequence[tuple[str, Any]], limit: int = 20) -> str:
    shown = [f"  {p} {tuple(a.shape)} {a.dtype}" for p, a in items[:limit]]
    if len(items) > limit:
        shown.append(f"  ... and {len(items) - limit} more")
    return "\n".join(shown)


def _fmt_rules(rules: Sequence[CheckedRule]) -> str:
    if not rules:
        return "  (no rules)"
    return "\n".join(f"  {r.index}: {r.pattern!r} -> {r.init!r}" for r in rules)


@dataclasses.dataclass(frozen=True)
class TreePlan:
    """What :func:`plan_tree` decided for a tree: its leaves ``(path, array or struct, box)``,
    the rule each leaf goes to (and the later rules that also matched), the rules matched and
    shadowed, each leaf's layout and Flax sharding annotation."""

    leaves: list[tuple[str, Any, Any]]
    winners: dict[str, CheckedRule | None]
    also: dict[str, tuple[int, ...]]
    matched: list[int]
    shadowed: list[CheckedRule]
    layouts: dict[str, Layout | None]
    annotated: dict[str, Any]
    siblings: dict[str, dict[str, Any]]

    def drawn(self, p: str, a: Any) -> bool:
        """Whether leaf ``p`` is drawn (a rule with an initialiser, and a float leaf)."""
        rule = self.winners[p]
        return rule is not None and rule.init is not None and is_float_dtype(a.dtype)

    def info(self, p: str, a: Any) -> LeafInfo:
        """The :class:`LeafInfo` leaf ``p`` is drawn with (its siblings' current values)."""
        parent, _, name = p.rpartition("/")
        others = {k: v for k, v in self.siblings[parent].items() if k != name}
        return LeafInfo(p, tuple(a.shape), draw_dtype(a.dtype), a, others, self.layouts.get(p))


def plan_tree(params, rules, strict, api, shadow_checked=None, given=None) -> TreePlan:
    """Matches every leaf of ``params`` to its rule and runs every check that needs no draw
    (paths, strictness, leaf kinds, shape structs, layouts): the first half of :func:`reinit`,
    shared with :func:`jinit.init_sharded`."""
    leaves = named_leaves(params, shapes=True)
    _check_leaf_paths(api, params, leaves, strict)
    winners, also, matched, won = _match_rules(leaves, rules)
    shadowed = [r for r in rules if matched[r.index] and not won[r.index]]
    if strict:
        limit = len(rules) if shadow_checked is None else shadow_checked
        _check_strict(api, leaves, rules, winners, shadowed, limit)
    check_leaf_kinds(api, leaves, winners)
    check_shape_leaves(api, leaves, winners)
    leaf_layouts = resolve_layouts(api, params, [(p, a) for p, a, _ in leaves], given or {})
    warn_ambiguous_leaves(api, leaves, winners, leaf_layouts)
    siblings: dict[str, dict[str, Any]] = {}
    for p, a, _ in leaves:
        parent, _, name = p.rpartition("/")
        siblings.setdefault(parent, {})[name] = a
    annotated = sharding_annotations(params)
    return TreePlan(leaves, winners, also, matched, shadowed, leaf_layouts, annotated, siblings)


def _reinit_tree(params, key, rules, strict, api, shadow_checked, given=None):
    plan = plan_tree(params, rules, strict, api, shadow_checked, given)
    new_values: dict[str, Any] = {}
    records = []
    narrowed: list[tuple[str, str]] = []
    for p, a, box in plan.leaves:
        rule, lay = plan.winners[p], plan.layouts.get(p)
        detail = kept_because = note = None
        if rule is not None and rule.init is not None and not is_float_dtype(a.dtype):
            kept_because = f"{np.dtype(a.dtype).name} leaf: fallback rules skip non-float leaves"
        elif plan.drawn(p, a):
            info = plan.info(p, a)
            value = draw_leaf(api, rule, path_key(key, p), info, plan.annotated.get(p))
            new_values[p] = value if box is None else box(value)
            if isinstance(rule.init, Contextual) and hasattr(rule.init.fn, "describe"):
                detail = str(rule.init.fn.describe(info))
            if info.dtype != np.dtype(a.dtype):
                note = f"drawn in {info.dtype.name}: jax_enable_x64 is off"
                narrowed.append((p, np.dtype(a.dtype).name))
        records.append(record(p, a, rule, plan.also[p], detail, kept_because, note, lay))
    if narrowed:
        warn_narrowed(api, narrowed)

    def replace(keypath, leaf):
        return new_values.get(path_str(keypath), leaf)

    new = jax.tree_util.tree_map_with_path(replace, params, is_leaf=is_box)
    table = ReinitTable(
        records=tuple(records),
        rules=tuple((r.pattern, r.init) for r in rules),
        unused=tuple(r.index for r in rules if not plan.matched[r.index]),
        shadowed=tuple(r.index for r in plan.shadowed),
        non_array=non_array_leaves(params),
    )
    return new, table


def _check_leaf_paths(api: str, params: Any, leaves, strict: bool) -> None:
    """A strict call needs array leaves; every call needs distinct paths."""
    if not leaves and strict:
        raise ValueError(
            f"`{api}` found no array leaves in `params` (got a {type(params).__name__}). Pass a "
            f"parameter tree such as `variables['params']`, an `nnx.State` or an equinox module."
        )
    seen: dict[str, int] = {}
    for p, _, _ in leaves:
        seen[p] = seen.get(p, 0) + 1
    dupes = [p for p, n in seen.items() if n > 1]
    if dupes:
        raise ValueError(
            f"`{api}` found several leaves with the same path {dupes[:5]} (e.g. a key 'a/b' next "
            f"to a nested 'a' -> 'b'), so rules cannot tell them apart. Rename the keys."
        )


def _match_rules(leaves, rules):
    """Every path against every rule (for the shadow check); the first match wins.

    Returns ``(winner per path, later matches per path, leaves matched per rule, leaves won
    per rule)``."""
    winners: dict[str, CheckedRule | None] = {}
    also: dict[str, tuple[int, ...]] = {}
    matched = [0] * len(rules)
    won = [0] * len(rules)
    for p, _, _ in leaves:
        hits = [r for r in rules if r.match(p)]
        for r in hits:
            matched[r.index] += 1
        winners[p] = hits[0] if hits else None
        also[p] = tuple(r.index for r in hits[1:])
        if hits:
            won[hits[0].index] += 1
    return winners, also, matched, won


def _check_strict(api: str, leaves, rules, winners, shadowed, limit: int) -> None:
    """strict=True: every leaf matched by a rule, no rule (before ``limit``) always shadowed."""
    problems = []
    unmatched = [(p, a) for p, a, _ in leaves if winners[p] is None]
    if unmatched:
        hint = ""
        if any(not jnp.issubdtype(a.dtype, jnp.inexact) for _, a in unmatched):
            hint = (
                " Non-float leaves (RNG state, counters) are not parameters: pass only the "
                "parameters, e.g. `nnx.state(model, nnx.Param)` or the nnx model itself."
            )
        problems.append(
            f"{len(unmatched)} array leaf/leaves matched no rule:\n{_fmt_leaves(unmatched)}\n"
            f"Add a rule for them (`(pattern, None)` keeps a leaf as it is), or pass "
            f"strict=False to keep every unmatched leaf.{hint}"
        )
    bad = [r for r in shadowed if r.index < limit and not r.fallback]
    if bad:
        lines = []
        for r in bad:
            taken = [p for p, _, _ in leaves if r.match(p)]
            firsts = sorted({winners[p].index for p in taken})
            lines.append(
                f"  rule {r.index} ({r.pattern!r}) matches {taken[:5]} but rule(s) {firsts} "
                f"come first"
            )
        problems.append(
            "some rules never apply, because the first matching rule wins and earlier rules "
            "take all their leaves:\n" + "\n".join(lines) + "\nPut the more specific rule "
            "first, remove it, or mark a catch-all as `jinit.Rule(pattern, init, "
            "fallback=True)`."
        )
    if problems:
        raise ValueError(
            f"`{api}` (strict=True): " + "\n".join(problems) + f"\nRules:\n{_fmt_rules(rules)}"
        )


def record(p, a, rule, also, detail, kept_because, note, layout) -> ReinitRecord:
    return ReinitRecord(
        path=p,
        shape=tuple(a.shape),
        dtype=str(a.dtype),
        rule=None if rule is None else rule.index,
        pattern=None if rule is None else rule.pattern,
        init=None if rule is None else rule.init,
        also_matched=also,
        detail=detail,
        kept_because=kept_because,
        note=note,
        layout=layout,
    )


def warn_narrowed(api: str, narrowed: list[tuple[str, str]]) -> None:
    warnings.warn(
        f"`{api}`: {len(narrowed)} leaf/leaves have a 64-bit dtype while jax_enable_x64 is off "
        f"({', '.join(f'{p} ({d})' for p, d in narrowed[:5])}"
        f"{' ...' if len(narrowed) > 5 else ''}): jax cannot draw in 64 bits, so they were "
        f"drawn in 32 bits and stored in their own 64-bit dtype (values of float32 "
        f'precision). For 64-bit draws, run `jax.config.update("jax_enable_x64", True)` '
        f"first; to silence this, cast those leaves to float32.",
        UserWarning,
        stacklevel=5,
    )
