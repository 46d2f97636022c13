"""Rules for :func:`reinit`: :class:`Rule` (a glob or regex pattern and an initialiser, optionally a
fallback), context-aware initialisers that see the leaf's path and layer, and the per-path keys."""

from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import inspect
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import jax
import numpy as np

from jinit._core._checks import PRNGKey, check_key
from jinit._core._layout import Layout, default_layout
from jinit._core._paths import is_nnx_module as _is_nnx_module
from jinit._core._paths import (
    named_leaves,
)

REINIT_API = "jinit.reinit"


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
        return default_layout(self.shape)

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


def path_hash(path: str) -> int:
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
    return jax.random.fold_in(key, np.uint32(path_hash(path)))


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


def glob_escape(path: str) -> str:
    """A glob that matches ``path`` only (its ``*``, ``?`` and ``[`` as character classes)."""
    return "".join(f"[{ch}]" if ch in "*?[" else ch for ch in path)


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
