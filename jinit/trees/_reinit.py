r"""Re-initialise a whole parameter tree by ordered (pattern, initialiser) rules: ``jinit.reinit``.

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
import fnmatch
import hashlib
import inspect
import re
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import jax
import jax.numpy as jnp
import numpy as np

from jinit._core import _layouts as layouts_mod
from jinit._core._checks import PRNGKey, check_key
from jinit._core._layouts import Layout
from jinit._core._paths import (
    is_box,
    is_shape,
    named_leaves,
    path_str,
    sharding_annotations,
    unbox,
)
from jinit._core._paths import is_nnx_module as _is_nnx_module
from jinit.initializers._base import Initializer

__all__ = [
    "Contextual",
    "LeafInfo",
    "ReinitRecord",
    "ReinitTable",
    "contextual",
    "path_key",
    "reinit",
]

_API = "jinit.reinit"


# ---------------------------------------------------------------------------------------------
# Context-aware initialisers
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class LeafInfo:
    """What a :func:`contextual` initialiser sees about the leaf it draws.

    Attributes:
      path: the leaf's '/'-joined path, e.g. ``"encoder/Dense_0/bias"``.
      shape: the leaf's shape (the result must have it).
      dtype: the dtype to draw in: the leaf's own, or float32 (complex64) for a float64
        (complex128) leaf while ``jax_enable_x64`` is off. The result is returned in the
        leaf's own dtype.
      value: the leaf's current array (before re-initialisation).
      siblings: the other array leaves of the same parent (the path without its last component),
        by last component, with their *current* values: for ``"Dense_0/bias"`` that is
        ``{"kernel": <Dense_0/kernel>}``. Values are never the re-initialised ones, so the result
        does not depend on the order in which leaves are drawn.
      layout: the leaf's :class:`jinit.Layout` bound to its shape (which axes are input,
        output, batch, receptive field, and how its layer calls ``kernel_init``) when its layer
        is known (an nnx or equinox module, or ``reinit(..., layouts=)``), else ``None``;
        :attr:`effective_layout` falls back to jax's default for rank >= 2.
    """

    path: str
    shape: tuple[int, ...]
    dtype: np.dtype
    value: Any
    siblings: Mapping[str, Any]
    layout: Layout | None = None

    @property
    def effective_layout(self) -> Layout | None:
        """:attr:`layout`, or jax's default (in -2, out -1, rest receptive field) for a leaf of
        rank >= 2 whose layer is unknown; ``None`` for rank < 2."""
        if self.layout is not None:
            return self.layout
        return layouts_mod.default_layout(self.shape)

    @property
    def name(self) -> str:
        """The last path component (``"bias"`` for ``"Dense_0/bias"``)."""
        return self.path.rpartition("/")[2]

    @property
    def parent(self) -> str:
        """The path without its last component (``""`` at the top level)."""
        return self.path.rpartition("/")[0]


@dataclasses.dataclass(frozen=True)
class Contextual:
    """A context-aware initialiser ``fn(key, leaf: LeafInfo) -> array``; see :func:`contextual`.

    If ``fn`` has a method ``describe(leaf: LeafInfo) -> str`` (e.g. naming the plain initialiser
    it resolves to for that leaf), :class:`ReinitTable` shows it for each leaf it drew.
    """

    fn: Callable[[PRNGKey, LeafInfo], Any]

    def __call__(self, key: PRNGKey, leaf: LeafInfo) -> Any:
        return self.fn(key, leaf)

    def __repr__(self) -> str:
        name = getattr(self.fn, "__qualname__", None) or repr(self.fn)
        return f"jinit.contextual({name})"


def contextual(fn: Callable[[PRNGKey, LeafInfo], Any]) -> Contextual:
    r"""Marks ``fn(key, leaf)`` as a :func:`reinit` initialiser that sees its leaf's context.

    A plain initialiser is called ``init(key, shape, dtype)`` and knows nothing else. Some need
    more: PyTorch's ``nn.Linear`` bias is :math:`U(\pm 1/\sqrt{\mathrm{fan\_in}})` with the fan-in
    of the *kernel* next to it (He et al., 2015, as implemented in ``torch.nn.Linear``). A
    contextual initialiser gets a :class:`LeafInfo` (path, shape, dtype, current value, and the
    sibling arrays under the same parent) and returns an array of ``leaf.shape``.

    Args:
      fn: a callable ``fn(key, leaf: LeafInfo) -> array``.

    Returns:
      A :class:`Contextual` to use as the initialiser of a :func:`reinit` rule.

    Raises:
      TypeError: ``fn`` is not callable.

    Examples:
      >>> import math, jax, jax.numpy as jnp, jinit
      >>> def torch_bias(key, leaf):
      ...     fan_in = leaf.siblings["kernel"].shape[0]  # Dense kernel (in, out)
      ...     bound = 1 / math.sqrt(fan_in)
      ...     return jax.random.uniform(key, leaf.shape, leaf.dtype, -bound, bound)
      >>> params = {"Dense_0": {"kernel": jnp.zeros((400, 3)), "bias": jnp.zeros(3)}}
      >>> new = jinit.reinit(params, jax.random.key(0), [
      ...     ("*/kernel", jinit.torch.linear_weight()),
      ...     ("*/bias", jinit.contextual(torch_bias)),
      ... ])
      >>> b = new["Dense_0"]["bias"]
      >>> bool((jnp.abs(b) <= 1 / 20).all()), bool((b != 0).all())
      (True, True)
    """
    if isinstance(fn, Contextual):
        return fn
    if not callable(fn):
        raise TypeError(
            f"`jinit.contextual` needs a callable `fn(key, leaf)`; got {fn!r} of type "
            f"{type(fn).__name__}. Pass a function such as `lambda key, leaf: ...`."
        )
    return Contextual(fn)


# ---------------------------------------------------------------------------------------------
# Keys
# ---------------------------------------------------------------------------------------------


def _path_hash(path: str) -> int:
    """A 32-bit hash of ``path``, stable across processes and Python versions (SHA-256)."""
    return int.from_bytes(hashlib.sha256(path.encode("utf-8")).digest()[:4], "little")


def path_key(key: PRNGKey, path: str) -> PRNGKey:
    """The key :func:`reinit` draws the leaf at ``path`` with: ``fold_in(key, hash32(path))``.

    ``hash32`` is the first 4 bytes (little-endian) of the SHA-256 of the UTF-8 path: stable
    across processes and machines (unlike Python's salted ``hash``), and depending on nothing but
    the path, so the leaf's values do not change when other leaves are added, removed or renamed.

    Args:
      key: the key passed to :func:`reinit`.
      path: a '/'-joined leaf path.

    Returns:
      A key of the same kind as ``key``.

    Examples:
      >>> import jax, jinit
      >>> import jax.numpy as jnp
      >>> k, init = jax.random.key(0), jinit.normal(1.0)
      >>> new = jinit.reinit({"a": {"w": jnp.zeros(3)}}, k, [("a/w", init)])
      >>> bool((new["a"]["w"] == init(jinit.path_key(k, "a/w"), (3,))).all())
      True
    """
    key = check_key("jinit.path_key", key)
    if not isinstance(path, str):
        raise TypeError(f"`jinit.path_key` needs `path` to be a str; got {path!r}.")
    return jax.random.fold_in(key, np.uint32(_path_hash(path)))


# ---------------------------------------------------------------------------------------------
# Rules
# ---------------------------------------------------------------------------------------------


@runtime_checkable
class SelfCheckingRules(Protocol):
    """Rules that check the tree before :func:`reinit` draws anything (a
    :class:`jinit.recipes.Recipe` raises when one of its defining rules matches no path)."""

    def check_paths(self, paths: Sequence[str], *, regex: bool) -> None: ...


def tree_paths(params: Any) -> list[str]:
    """The '/'-joined paths of the array leaves :func:`reinit` would draw."""
    tree = params
    if _is_nnx_module(params):
        from flax import nnx

        tree = nnx.state(params, nnx.Param)
    return [p for p, _, _ in named_leaves(tree, shapes=True)]


class Rule(tuple):
    """A ``(pattern, init)`` rule of :func:`reinit` that may be marked as a fallback.

    It *is* a ``(pattern, init)`` pair (unpacks, compares and ``dict()``-converts like one);
    ``Rule(pattern, init, fallback=True)`` marks a catch-all (recipes end with
    ``Rule("*kernel", ..., fallback=True)``) that is allowed to lose every leaf to earlier rules,
    so ``strict`` does not report it as shadowed.

    Examples:
      >>> import jinit
      >>> rule = jinit.Rule("*bias", jinit.zeros, fallback=True)
      >>> pattern, init = rule
      >>> pattern, rule.fallback
      ('*bias', True)
    """

    fallback: bool

    def __new__(cls, pattern: str, init: Any, fallback: bool = False) -> Rule:
        if not isinstance(pattern, str):
            raise TypeError(
                f"`jinit.Rule` needs `pattern` to be a str (a glob such as '*/kernel', or a regex "
                f"for `reinit(regex=True)`); got {pattern!r} of type {type(pattern).__name__}."
            )
        if not isinstance(fallback, bool | np.bool_):
            raise TypeError(
                f"`jinit.Rule` needs `fallback` to be a bool; got {fallback!r} of type "
                f"{type(fallback).__name__}. Pass `fallback=True` for a catch-all rule."
            )
        self = super().__new__(cls, (pattern, init))
        self.fallback = bool(fallback)
        return self

    @property
    def pattern(self) -> str:
        return self[0]

    @property
    def init(self) -> Any:
        return self[1]

    def __repr__(self) -> str:
        extra = ", fallback=True" if self.fallback else ""
        return f"Rule({self[0]!r}, {self[1]!r}{extra})"

    def __reduce__(self):
        return (Rule, (self[0], self[1], self.fallback))


@dataclasses.dataclass(frozen=True)
class CheckedRule:
    index: int
    pattern: str
    init: Any  # an initialiser, a Contextual, or None (keep)
    match: Callable[[str], bool]
    fallback: bool = False


def glob_matcher(pattern: str) -> Callable[[str], bool]:
    """fnmatch (case-sensitive) where ``*`` also spans '/'; a leading ``*/`` may match nothing."""
    rx = re.compile(fnmatch.translate(pattern))
    if pattern.startswith("*/"):
        top = re.compile(fnmatch.translate(pattern[2:]))
        return lambda p: rx.match(p) is not None or top.match(p) is not None
    return lambda p: rx.match(p) is not None


def _check_init(api: str, i: int, pattern: str, init: Any) -> Any:
    where = f"rule {i} ({pattern!r})"
    if init is None or isinstance(init, Contextual):
        return init
    if not callable(init):
        raise TypeError(
            f"`{api}` needs each rule's initialiser to be callable as `init(key, shape, dtype)`, "
            f"a `jinit.contextual(fn)`, or None (keep the leaf); {where} has {init!r} of type "
            f"{type(init).__name__}. Pass e.g. `jinit.he_normal()`."
        )
    if inspect.isfunction(init) and (getattr(init, "__module__", "") or "").startswith("jinit"):
        raise TypeError(
            f"`{api}`: {where} has `{init.__name__}`, which builds an initialiser rather than "
            f"being one. Call it: `jinit.{init.__name__}(...)`."
        )
    try:
        sig = inspect.signature(init)
    except (TypeError, ValueError):  # builtins without a signature: trust them
        return init
    try:
        sig.bind(None, None, None)
    except TypeError:
        try:
            sig.bind(None, None)
        except TypeError:
            hint = ""
        else:
            hint = (
                " It takes two arguments: if it is a context-aware initialiser `fn(key, leaf)`, "
                "wrap it as `jinit.contextual(fn)`."
            )
        raise TypeError(
            f"`{api}`: {where} has {init!r}, which cannot be called as `init(key, shape, "
            f"dtype)`.{hint}"
        ) from None
    return init


def check_rules(api: str, rules: Any, regex: bool) -> tuple[CheckedRule, ...]:
    if isinstance(rules, Mapping):
        rules = list(rules.items())
    if isinstance(rules, (str, bytes)) or not isinstance(rules, Sequence):
        raise TypeError(
            f"`{api}` needs `rules` to be an ordered sequence of (pattern, initialiser) pairs; "
            f"got {rules!r} of type {type(rules).__name__}. Pass e.g. "
            f'`[("*/kernel", jinit.he_normal()), ("*/bias", jinit.zeros)]`.'
        )
    if len(rules) == 2 and isinstance(rules[0], str) and not isinstance(rules[1], str):
        raise TypeError(
            f"`{api}` needs `rules` to be a sequence of (pattern, initialiser) pairs; got a single "
            f"pair {tuple(rules)!r}. Wrap it in a list: `[({rules[0]!r}, init)]`."
        )
    out = []
    for i, rule in enumerate(rules):
        fallback = getattr(rule, "fallback", False) if isinstance(rule, Rule) else False
        if not isinstance(rule, (tuple, list)) or len(rule) != 2:
            raise TypeError(
                f"`{api}` needs each rule to be a (pattern, initialiser) pair or a `jinit.Rule`; "
                f"rule {i} is {rule!r}. Write it as `(pattern, init)`, e.g. "
                f"`('*/kernel', jinit.he_normal())`."
            )
        pattern, init = rule
        if not isinstance(pattern, str):
            raise TypeError(
                f"`{api}` needs each rule's pattern to be a str; rule {i} has {pattern!r} of type "
                f"{type(pattern).__name__}. Pass a glob such as '*/kernel'"
                + (" or a regex such as r'.*/kernel'." if regex else ".")
            )
        if regex:
            try:
                compiled = re.compile(pattern)
            except re.error as e:
                raise ValueError(
                    f"`{api}` (regex=True): rule {i} has the pattern {pattern!r}, which is not a "
                    f"valid regular expression ({e}). Fix it, or pass a glob with regex=False."
                ) from None
            match = _regex_matcher(compiled)
        else:
            match = glob_matcher(pattern)
        out.append(
            CheckedRule(i, pattern, _check_init(api, i, pattern, init), match, bool(fallback))
        )
    return tuple(out)


def _regex_matcher(rx: re.Pattern) -> Callable[[str], bool]:
    return lambda p: rx.fullmatch(p) is not None


# ---------------------------------------------------------------------------------------------
# Explanation table
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ReinitRecord:
    """Which rule initialised one leaf.

    Attributes:
      path: the leaf's path.
      shape: its shape.
      dtype: its dtype name.
      rule: the index of the winning rule, or None if no rule matched (the leaf is kept).
      pattern: the winning rule's pattern, or None.
      init: the winning rule's initialiser (None for no rule, or a rule that keeps the leaf).
      also_matched: indices of later rules that matched the path too but lost to ``rule``.
      detail: what a contextual initialiser resolved to for this leaf, if it says (else None).
      kept_because: why a matched leaf was kept although its rule has an initialiser (a
        fallback rule skipping an integer/bool leaf), else None.
      note: a remark on how the leaf was drawn (e.g. drawn in float32 because ``jax_enable_x64``
        is off, stored as float64), else None.
      layout: the leaf's :class:`jinit.Layout` when its layer is known (else None).
    """

    path: str
    shape: tuple[int, ...]
    dtype: str
    rule: int | None
    pattern: str | None
    init: Any
    also_matched: tuple[int, ...] = ()
    detail: str | None = None
    kept_because: str | None = None
    note: str | None = None
    layout: Layout | None = None

    @property
    def action(self) -> str:
        """``"unmatched (kept)"``, ``"kept"``, ``"kept (<why>)"``, or the initialiser's repr (or
        its ``detail``), followed by the ``note`` in brackets if there is one."""
        if self.rule is None:
            return "unmatched (kept)"
        if self.init is None:
            return "kept"
        if self.kept_because:
            return f"kept ({self.kept_because})"
        text = self.detail or repr(self.init)
        return f"{text} [{self.note}]" if self.note else text


@dataclasses.dataclass(frozen=True)
class ReinitTable(Sequence):
    """What :func:`reinit` did (``explain=True``): one :class:`ReinitRecord` per array leaf.

    A sequence of records in tree order; ``str``/``repr`` print an aligned table followed by the
    rules that initialised no leaf (matching nothing, or shadowed by earlier rules).

    Attributes:
      records: one record per array leaf.
      rules: the rules as given, ``(pattern, initialiser)`` pairs.
      unused: indices of rules that matched no path at all.
      shadowed: indices of rules that matched some paths, all taken by earlier rules.
      non_array: ``(path, type name)`` of the leaves that are not arrays (Python scalars,
        strings, functions such as equinox activations): :func:`reinit` keeps them as they are.
    """

    records: tuple[ReinitRecord, ...]
    rules: tuple[tuple[str, Any], ...]
    unused: tuple[int, ...]
    shadowed: tuple[int, ...]
    non_array: tuple[tuple[str, str], ...] = ()

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i):
        return self.records[i]

    def __iter__(self) -> Iterator[ReinitRecord]:
        return iter(self.records)

    def by_path(self) -> dict[str, ReinitRecord]:
        """The records keyed by path."""
        return {r.path: r for r in self.records}

    def __str__(self) -> str:
        rows = [("path", "shape", "dtype", "rule", "initialiser")]
        for r in self.records:
            rule = "-" if r.rule is None else f"{r.rule}: {r.pattern}"
            rows.append((r.path, str(r.shape), r.dtype, rule, r.action))
        widths = [max(len(row[c]) for row in rows) for c in range(4)]
        lines = [
            "  ".join(x.ljust(w) for x, w in zip(row[:4], widths, strict=True)) + "  " + row[4]
            for row in rows
        ]
        lines = [ln.rstrip() for ln in lines]
        for i in self.shadowed:
            lines.append(
                f"rule {i} ({self.rules[i][0]!r}) is shadowed: earlier rules took its leaves"
            )
        for i in self.unused:
            lines.append(f"rule {i} ({self.rules[i][0]!r}) matched no leaf")
        if self.non_array:
            shown = ", ".join(f"{p} ({t})" for p, t in self.non_array[:8])
            more = f" and {len(self.non_array) - 8} more" if len(self.non_array) > 8 else ""
            lines.append(f"non-array leaves kept as they are: {shown}{more}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"ReinitTable({len(self.records)} leaves, {len(self.rules)} rules)\n{self}"


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
    key = check_key(_API, key)
    for name, flag in (("strict", strict), ("regex", regex), ("explain", explain)):
        if not isinstance(flag, (bool, np.bool_)):
            raise TypeError(f"`{_API}` needs `{name}` to be a bool; got {flag!r}.")
    compiled = check_rules(_API, rules, bool(regex))
    given = check_layouts(_API, layouts)
    if isinstance(rules, SelfCheckingRules):  # e.g. a recipe: its defining rules must match
        rules.check_paths(tree_paths(params), regex=bool(regex))
    return reinit_rules(
        params, key, compiled, strict=bool(strict), explain=bool(explain), layouts=given
    )


def check_layouts(api: str, layouts: Any) -> dict[str, Layout | None]:
    """Validates a ``layouts=`` argument: ``{path or glob: Layout | einsum str | None}``."""
    if layouts is None:
        return {}
    if not isinstance(layouts, Mapping):
        raise TypeError(
            f"`{api}` needs `layouts` to be a dict {{path or glob: jinit.Layout}} (e.g. "
            f"`jinit.layouts(model, x)`); got {type(layouts).__name__}."
        )
    out: dict[str, Layout | None] = {}
    for k, v in layouts.items():
        if not isinstance(k, str):
            raise TypeError(f"`{api}` needs the keys of `layouts` to be paths (str); got {k!r}.")
        out[k] = None if v is None else layouts_mod.as_layout(api, v)
    return out


def resolve_layouts(
    api: str, tree: Any, leaves: Sequence[tuple[str, Any]], given: Mapping[str, Layout | None]
) -> dict[str, Layout | None]:
    """The layout of each leaf (bound to its shape): ``given`` (exact path, then the first
    matching glob), else what the module says (nnx/equinox), else ``None``."""
    found = layouts_mod.tree_layouts(tree)
    globs = [(k, glob_matcher(k), v) for k, v in given.items() if any(c in k for c in "*?[")]
    out: dict[str, Layout | None] = {}
    for p, a in leaves:
        shape = tuple(a.shape)
        if p in given:
            lay = given[p]
        elif p.startswith("params/") and p[len("params/") :] in given:
            lay = given[p[len("params/") :]]
        else:
            lay = next((v for k, m, v in globs if m(p)), layouts_mod.lookup(found, p))
        if lay is not None:
            if lay.shape is not None and lay.shape != shape:
                raise ValueError(
                    f"`{api}`: the layout given for {p!r} is for shape {lay.shape}, but the "
                    f"leaf has shape {shape}. Pass layouts of this tree (e.g. "
                    f"`jinit.layouts(model, x)` for the model that made it)."
                )
            try:
                lay = lay.bind(shape)
            except (ValueError, IndexError) as e:
                raise ValueError(
                    f"`{api}`: the layout {lay!r} does not fit {p!r} of shape {shape}: {e}"
                ) from None
        out[p] = lay
    return out


def reinit_rules(
    params: Any,
    key: PRNGKey,
    rules: tuple[CheckedRule, ...],
    *,
    strict: bool,
    explain: bool,
    api: str = _API,
    shadow_checked: int | None = None,
    layouts: Mapping[str, Layout | None] | None = None,
) -> Any:
    """:func:`reinit` on checked rules; only rules < ``shadow_checked`` may not be shadowed."""
    layouts = dict(layouts or {})
    if _is_nnx_module(params):
        from flax import nnx

        known = layouts_mod.tree_layouts(params)
        clone = nnx.clone(params)
        _, state, _ = nnx.split(clone, nnx.Param, ...)
        new_state, table = _reinit_tree(
            state, key, rules, strict, api, shadow_checked, {**known, **layouts}
        )
        nnx.update(clone, new_state)
        return (clone, table) if explain else clone
    new, table = _reinit_tree(params, key, rules, strict, api, shadow_checked, layouts)
    return (new, table) if explain else new


def _fmt_leaves(items: Sequence[tuple[str, Any]], limit: int = 20) -> str:
    shown = [f"  {p} {tuple(a.shape)} {a.dtype}" for p, a in items[:limit]]
    if len(items) > limit:
        shown.append(f"  ... and {len(items) - limit} more")
    return "\n".join(shown)


def _fmt_rules(rules: Sequence[CheckedRule]) -> str:
    if not rules:
        return "  (no rules)"
    return "\n".join(f"  {r.index}: {r.pattern!r} -> {r.init!r}" for r in rules)


def _reinit_tree(params, key, rules, strict, api, shadow_checked, given=None):
    leaves = named_leaves(params, shapes=True)
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

    # Match every path against every rule (for the shadow check), keep the first.
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
    unmatched = [(p, a) for p, a, _ in leaves if winners[p] is None]
    limit = len(rules) if shadow_checked is None else shadow_checked
    shadowed = [r for r in rules if matched[r.index] and not won[r.index]]
    if strict:
        problems = []
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

    _check_leaf_kinds(api, leaves, winners)
    _check_shape_leaves(api, leaves, winners)
    leaf_layouts = resolve_layouts(api, params, [(p, a) for p, a, _ in leaves], given or {})
    _warn_ambiguous(api, leaves, winners, leaf_layouts)

    annotated = sharding_annotations(params)
    siblings: dict[str, dict[str, Any]] = {}
    for p, a, _ in leaves:
        parent, _, name = p.rpartition("/")
        siblings.setdefault(parent, {})[name] = a

    new_values: dict[str, Any] = {}
    records = []
    narrowed: list[tuple[str, str]] = []
    for p, a, box in leaves:
        rule = winners[p]
        detail = kept_because = note = None
        if rule is not None and rule.init is not None and not is_float_dtype(a.dtype):
            kept_because = f"{np.dtype(a.dtype).name} leaf: fallback rules skip non-float leaves"
        elif rule is not None and rule.init is not None:
            parent, _, name = p.rpartition("/")
            info = LeafInfo(
                p,
                tuple(a.shape),
                draw_dtype(a.dtype),
                a,
                {k: v for k, v in siblings[parent].items() if k != name},
                leaf_layouts.get(p),
            )
            value = draw_leaf(api, rule, path_key(key, p), info, annotated.get(p))
            new_values[p] = value if box is None else box(value)
            if isinstance(rule.init, Contextual) and hasattr(rule.init.fn, "describe"):
                detail = str(rule.init.fn.describe(info))
            if info.dtype != np.dtype(a.dtype):
                note = f"drawn in {info.dtype.name}: jax_enable_x64 is off"
                narrowed.append((p, np.dtype(a.dtype).name))
        records.append(
            ReinitRecord(
                path=p,
                shape=tuple(a.shape),
                dtype=str(a.dtype),
                rule=None if rule is None else rule.index,
                pattern=None if rule is None else rule.pattern,
                init=None if rule is None else rule.init,
                also_matched=also[p],
                detail=detail,
                kept_because=kept_because,
                note=note,
                layout=leaf_layouts.get(p),
            )
        )
    if narrowed:
        warnings.warn(
            f"`{api}`: {len(narrowed)} leaf/leaves have a 64-bit dtype while jax_enable_x64 is off "
            f"({', '.join(f'{p} ({d})' for p, d in narrowed[:5])}"
            f"{' ...' if len(narrowed) > 5 else ''}): jax cannot draw in 64 bits, so they were "
            f"drawn in 32 bits and stored in their own 64-bit dtype (values of float32 "
            f'precision). For 64-bit draws, run `jax.config.update("jax_enable_x64", True)` '
            f"first; to silence this, cast those leaves to float32.",
            UserWarning,
            stacklevel=4,
        )

    def replace(keypath, leaf):
        return new_values.get(path_str(keypath), leaf)

    new = jax.tree_util.tree_map_with_path(replace, params, is_leaf=is_box)
    table = ReinitTable(
        records=tuple(records),
        rules=tuple((r.pattern, r.init) for r in rules),
        unused=tuple(r.index for r in rules if not matched[r.index]),
        shadowed=tuple(r.index for r in shadowed),
        non_array=_non_array_leaves(params),
    )
    return new, table


def is_float_dtype(dtype: Any) -> bool:
    """Real or complex floating (what initialisers draw); False for ints, bools and PRNG keys."""
    return jax.dtypes.issubdtype(dtype, np.inexact)


def draw_dtype(dtype: Any) -> np.dtype:
    """The dtype a leaf of ``dtype`` is drawn in: its own, or its 32-bit twin (float32,
    complex64) for a 64-bit leaf while ``jax_enable_x64`` is off (jax has no 64-bit arrays then)."""
    return np.dtype(jax.dtypes.canonicalize_dtype(dtype))


def _non_array_leaves(tree: Any) -> tuple[tuple[str, str], ...]:
    flat, _ = jax.tree_util.tree_flatten_with_path(tree, is_leaf=is_box)
    out = []
    for keypath, leaf in flat:
        value = unbox(leaf)
        if not isinstance(value, jax.Array | np.ndarray) and not is_shape(value):
            out.append((path_str(keypath), type(value).__name__))
    return tuple(out)


def _check_leaf_kinds(api: str, leaves, winners) -> None:
    """Raises when a (non-fallback) rule would draw float weights into an int/bool/key leaf."""
    bad = [
        (p, a, winners[p])
        for p, a, _ in leaves
        if winners[p] is not None
        and winners[p].init is not None
        and not winners[p].fallback
        and not is_float_dtype(a.dtype)
    ]
    if not bad:
        _check_complex_support(api, leaves, winners)
        return
    lines = [
        f"  {p} ({np.dtype(a.dtype).name}, shape {tuple(a.shape)}) matched by rule "
        f"{r.index} ({r.pattern!r} -> {r.init!r})"
        for p, a, r in bad[:10]
    ]
    if len(bad) > 10:
        lines.append(f"  ... and {len(bad) - 10} more")
    p0 = bad[0][0]
    raise ValueError(
        f"`{api}`: {len(bad)} leaf/leaves that are not floating point (step counters, "
        f"BatchNorm counts, RNG keys, masks) are matched by a rule that would draw float "
        f"weights into them, which their dtype cannot hold:\n" + "\n".join(lines) + "\n"
        f"Exclude them from the pattern, keep them with a rule placed first such as "
        f"`({p0!r}, None)`, mark a catch-all as `jinit.Rule(pattern, init, fallback=True)` "
        f"(fallback rules skip non-float leaves), or pass only the parameters (e.g. "
        f"`nnx.state(model, nnx.Param)`)."
    )


def _check_shape_leaves(api: str, leaves, winners) -> None:
    """Raises when a shape-only leaf (``jax.ShapeDtypeStruct``) would be kept: no array to keep."""
    bad = [
        (p, a)
        for p, a, _ in leaves
        if is_shape(a) and (winners[p] is None or winners[p].init is None)
    ]
    if not bad:
        return
    shown = ", ".join(f"{p} {tuple(a.shape)} {np.dtype(a.dtype).name}" for p, a in bad[:5])
    raise ValueError(
        f"`{api}`: {len(bad)} leaf/leaves are shapes only (`jax.ShapeDtypeStruct`, from "
        f"`jax.eval_shape`) and no rule draws them ({shown}{' ...' if len(bad) > 5 else ''}), so "
        f"there is no array to keep. Give them a rule with an initialiser (e.g. "
        f"`('*', jinit.zeros)` last), or start from real arrays."
    )


def _warn_ambiguous(api: str, leaves, winners, leaf_layouts) -> None:
    """Warns when a fan-dependent jinit initialiser draws a rank >= 3 leaf whose layer is unknown
    and whose path does not say it is a convolution (see :func:`warn_ambiguous`)."""
    warn_ambiguous(
        api,
        [
            (p, tuple(a.shape), winners[p].init)
            for p, a, _ in leaves
            if leaf_layouts.get(p) is None and winners[p] is not None
        ],
        stacklevel=5,
    )


def warn_ambiguous(api: str, items: Sequence[tuple[str, tuple[int, ...], Any]], stacklevel: int):
    """Warns about the ``(path, shape, init)`` items without a layout where a fan-dependent
    jinit initialiser meets a rank >= 3 leaf whose path does not say it is a convolution: jax's
    default (-2 in, -1 out, rest receptive field) reads an output axis of a DenseGeneral/
    attention/einsum kernel (d_model, heads, head_dim) as receptive field."""
    doubtful = [
        (p, shape, init)
        for p, shape, init in items
        if init is not None
        and layouts_mod.follows_default(init)
        and layouts_mod.is_ambiguous(p, shape)
    ]
    if not doubtful:
        return
    lines = []
    for p, shape, init in doubtful[:5]:
        f = layouts_mod.default_layout(shape).fans()
        lines.append(f"  {p} {shape} with {init!r}: fan_in {f.fan_in:g}, fan_out {f.fan_out:g}")
    if len(doubtful) > 5:
        lines.append(f"  ... and {len(doubtful) - 5} more")
    p0, shape0, _ = doubtful[0]
    warnings.warn(
        f"`{api}`: {len(doubtful)} leaf/leaves of rank >= 3 outside a convolution have no known "
        f"layer, so their fans follow jax's default (input axis -2, output axis -1, every other "
        f"axis receptive field), which is wrong for DenseGeneral/attention/einsum kernels such "
        f"as (d_model, heads, head_dim):\n" + "\n".join(lines) + "\n"
        f"Pass the layouts: `layouts=jinit.layouts(model, x)` (linen), the nnx/equinox module "
        f"itself instead of its state, or e.g. `layouts={{{p0!r}: "
        f"jinit.Layout.dense_general(1, {len(shape0) - 1})}}` (`jinit.Layout.dense()` if it "
        f"is a convolution).",
        UserWarning,
        stacklevel=stacklevel,
    )


def _check_complex_support(api: str, leaves, winners) -> None:
    """Raises when a jinit initialiser with a real law only is given a complex leaf."""
    for p, a, _ in leaves:
        r = winners[p]
        if (
            r is not None
            and isinstance(r.init, Initializer)
            and not r.init.supports_complex
            and jax.dtypes.issubdtype(a.dtype, np.complexfloating)
        ):
            raise ValueError(
                f"`{api}`: rule {r.index} ({r.pattern!r} -> {r.init!r}) matches {p!r}, a "
                f"{np.dtype(a.dtype).name} leaf, but {r.init!r} has a real law only (drawing it "
                f"would leave every imaginary part zero). Use an initialiser whose law covers "
                f"complex numbers (`jinit.normal`, `jinit.variance_scaling` and its presets, "
                f"`jinit.orthogonal`), or give {p!r} another rule."
            )


def _kind(dtype: Any) -> str:
    if jax.dtypes.issubdtype(dtype, np.complexfloating):
        return "complex"
    if jax.dtypes.issubdtype(dtype, np.floating):
        return "real floating"
    return "non-float"


def draw_leaf(api: str, rule: CheckedRule, key, info: LeafInfo, annotation: Any = None) -> Any:
    """Draws one leaf with ``info.dtype`` and returns it in the leaf's exact dtype.

    A numpy leaf stays a numpy array (so a float64 leaf keeps float64 even with x64 off); a jax
    leaf is placed with its sharding (eagerly; under ``jit`` where the tracer's type carries it,
    i.e. on a mesh with Explicit axes); a ``jax.ShapeDtypeStruct`` leaf becomes an array of its
    shape and dtype, with its ``sharding`` if it has one. A leaf with a :class:`jinit.Layout`
    is drawn as its layer draws it (:func:`jinit._core._layouts.draw`). A draw of the wrong kind
    (a complex draw for a real leaf, a real or integer one for a complex leaf, an integer one for
    a float leaf) raises instead of being cast; a float draw of another precision is rounded to
    the leaf's. Where the leaf's own sharding is unknown (a tracer on an Auto mesh, a struct
    without one), the Flax box's sharding ``annotation`` places it (:func:`_annotated`).
    """
    path, shape, dtype, old = info.path, info.shape, info.dtype, info.value
    leaf_dtype = np.dtype(old.dtype)
    where = f"rule {rule.index} ({rule.pattern!r} -> {rule.init!r})"
    try:
        if isinstance(rule.init, Contextual):
            out = rule.init(key, info)
        elif info.layout is not None:
            out = layouts_mod.draw(rule.init, key, info.layout, dtype)
        else:
            out = rule.init(key, shape, dtype)
    except Exception as e:
        if hasattr(e, "add_note"):  # Python >= 3.11
            e.add_note(f"{api}: while drawing {path!r} {shape} {leaf_dtype.name} with {where}")
        raise
    if isinstance(out, np.ndarray | np.generic | int | float | complex) and not isinstance(
        out, bool
    ):
        out = np.asarray(out)
    elif isinstance(out, jax.Array):
        pass
    else:
        raise TypeError(
            f"`{api}`: {where} returned {type(out).__name__} for {path!r}, not an array. An "
            f"initialiser must return an array of the shape and dtype it is given."
        )
    if out.shape != shape:
        raise ValueError(
            f"`{api}`: {where} returned shape {out.shape} for {path!r}, whose shape is {shape}. "
            f"An initialiser must return the shape it is given (a contextual one: `leaf.shape`)."
        )
    got, want = _kind(out.dtype), _kind(leaf_dtype)
    if got != want:
        lost = {
            ("complex", "real floating"): "casting would drop the imaginary parts",
            ("real floating", "complex"): "its imaginary parts would all be zero",
        }.get((got, want), f"casting would turn {got} values into {want} ones")
        raise ValueError(
            f"`{api}`: {where} returned {np.dtype(out.dtype).name} values for {path!r}, a "
            f"{leaf_dtype.name} leaf: {lost}. An initialiser must return the dtype it is given "
            f"({dtype.name}); use one whose law covers {want} numbers, or give the leaf "
            f"another rule."
        )
    if is_shape(old):
        out = jnp.asarray(out).astype(dtype)
        known = _concrete(api, path, getattr(old, "sharding", None), out)
        return _place(out, known or _annotated(api, path, shape, annotation, out))
    if isinstance(old, np.ndarray):
        if not isinstance(out, jax.core.Tracer):
            return np.asarray(out).astype(leaf_dtype, copy=False)
        if dtype != leaf_dtype:
            raise ValueError(
                f"`{api}`: {path!r} is a numpy {leaf_dtype.name} leaf drawn under a jax "
                f"transformation (jit/vmap) while jax_enable_x64 is off, so it cannot be "
                f"returned as {leaf_dtype.name}. Call reinit outside the transformation, run "
                f'`jax.config.update("jax_enable_x64", True)`, or cast the leaf to float32.'
            )
    if isinstance(out, np.ndarray):
        out = jnp.asarray(out.astype(dtype, copy=False))
    if out.dtype != dtype:
        out = out.astype(dtype)
    if isinstance(old, jax.core.Tracer):
        return _place(out, _traced_sharding(old) or _annotated(api, path, shape, annotation, out))
    if isinstance(old, jax.Array):
        return _place(out, old.sharding)
    return out


def _traced_sharding(x: Any) -> Any:
    """The sharding a traced leaf is known to have: its type's sharding on a mesh with Explicit
    axes (jax's sharding in types); ``None`` otherwise (on an Auto mesh a tracer carries no
    partition spec: pass ``out_shardings`` to ``jit`` or use ``jax.eval_shape`` structs with a
    sharding)."""
    try:
        sharding = jax.typeof(x).sharding
    except AttributeError:  # pragma: no cover - older jax
        return None
    mesh = getattr(sharding, "mesh", None)
    if mesh is None or mesh.empty:
        return None
    if not any(t == jax.sharding.AxisType.Explicit for t in mesh.axis_types):
        return None
    return sharding


def _concrete(api: str, path: str, sharding: Any, out: Any) -> Any:
    """``sharding`` usable for ``out``: a struct's sharding on an ``AbstractMesh`` (from
    ``jax.eval_shape`` / ``nnx.eval_shape`` under ``jax.set_mesh``) is put on the concrete mesh set
    with ``jax.set_mesh`` when the array is eager; without that mesh, a ValueError says so."""
    mesh = getattr(sharding, "mesh", None)
    if not isinstance(mesh, jax.sharding.AbstractMesh) or isinstance(out, jax.core.Tracer):
        return sharding
    concrete = jax.sharding.get_mesh()
    if concrete is None or getattr(concrete, "empty", True) or concrete.abstract_mesh != mesh:
        raise ValueError(
            f"`{api}`: {path!r} is a shape struct sharded on an abstract mesh {mesh} and no "
            f"matching concrete mesh is set, so it cannot be placed on devices. Call `{api}` "
            f"inside `with jax.set_mesh(mesh):` (the mesh the shapes were traced under)."
        )
    return jax.sharding.NamedSharding(concrete, sharding.spec)


def _annotated(api: str, path: str, shape: tuple[int, ...], annotation: Any, out: Any) -> Any:
    """The sharding a Flax box's annotation (:func:`jinit._core._paths.sharding_annotation`) gives
    a new leaf: a ``NamedSharding`` as it is; a ``PartitionSpec`` on the mesh the caller set with
    ``jax.set_mesh`` (traced: its abstract mesh; eager: the mesh itself). ``None`` without an
    annotation or a mesh (nothing says where the leaf lives). An annotation naming axes the
    mesh lacks, or more axes than the leaf has, raises a ValueError naming the leaf."""
    from jax.sharding import NamedSharding, PartitionSpec

    if annotation is None or isinstance(annotation, NamedSharding):
        return annotation
    traced = isinstance(out, jax.core.Tracer)
    mesh = jax.sharding.get_abstract_mesh() if traced else jax.sharding.get_mesh()
    if mesh is None or getattr(mesh, "empty", True):
        return None
    spec = annotation if isinstance(annotation, PartitionSpec) else PartitionSpec(*annotation)
    named = [n for entry in spec for n in (entry if isinstance(entry, tuple) else (entry,))]
    missing = [n for n in named if n is not None and n not in mesh.axis_names]
    if missing or len(spec) > len(shape):
        why = (
            f"names axes {missing} that the mesh {tuple(mesh.axis_names)} lacks (logical names? "
            f"map them with `flax.linen.logical_axis_rules` or the variable's `sharding_rules`)"
            if missing
            else f"has {len(spec)} entries for a rank-{len(shape)} leaf"
        )
        raise ValueError(
            f"`{api}`: the sharding annotation {spec} of {path!r} {shape} {why}. Fix the "
            f"annotation, or call `{api}` on a tree without sharding metadata."
        )
    return NamedSharding(mesh, spec)


def _place(out: Any, sharding: Any) -> Any:
    """``out`` laid out with ``sharding`` (eagerly ``device_put``; traced a reshard on a mesh
    with Explicit axes, else a sharding constraint); unchanged for ``None``."""
    if sharding is None:
        return out
    if isinstance(out, jax.core.Tracer):
        mesh = getattr(sharding, "mesh", None)
        if mesh is not None and any(t == jax.sharding.AxisType.Explicit for t in mesh.axis_types):
            return jax.sharding.reshard(out, sharding)
        return jax.lax.with_sharding_constraint(out, sharding)
    if getattr(out, "sharding", None) != sharding:
        return jax.device_put(out, sharding)
    return out
