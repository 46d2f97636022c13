"""The :class:`Recipe` type (rules plus the defining roles that must match) and the argument
checks and rule builders every recipe module shares."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from typing import Any

from jinit._core._checks import (
    check_int,
)
from jinit.trees._rules import glob_matcher

Rules = list[tuple[str, Any]]
Patterns = str | Sequence[str]

RECIPES_PREFIX = "jinit.recipes."


# ---------------------------------------------------------------------------------------------
# Validation helpers
# ---------------------------------------------------------------------------------------------


def check_patterns(
    api: str, name: str, value: Any, *, allow_empty: bool = False
) -> tuple[str, ...]:
    """A glob or a sequence of globs, as a tuple of non-empty strings."""
    if isinstance(value, str):
        value = (value,)
    if not isinstance(value, Sequence) or not all(isinstance(v, str) and v for v in value):
        raise TypeError(
            f"`{api}` needs `{name}` to be a glob pattern (str) or a sequence of them; got "
            f"{value!r}. Pass e.g. `{name}='*fc2/kernel'` or "
            f"`{name}=('*fc2/kernel', '*w2/kernel')`."
        )
    if not value and not allow_empty:
        raise ValueError(f"`{api}` needs at least one pattern in `{name}`; got an empty sequence.")
    return tuple(value)


def check_layers(api: str, name: str, value: Any, *, minimum: int = 1) -> int:
    return check_int(api, name, value, minimum=minimum)


def rules_for(patterns: Sequence[str], init: Any) -> Rules:
    return [(p, init) for p in patterns]


def scoped(scope: str, patterns: Sequence[str]) -> tuple[str, ...]:
    """The patterns restricted to paths under a component named ``scope`` (``""``: no scope)."""
    if not scope:
        return tuple(patterns)
    return tuple(f"*{scope}/{p}" if p.startswith("*") else f"*{scope}/*{p}" for p in patterns)


# ---------------------------------------------------------------------------------------------
# Recipes: rules that know which of them define the recipe
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Need:
    """A defining role of a recipe: at least one of ``patterns`` must match a parameter path."""

    api: str  # the public recipe, e.g. "jinit.recipes.gpt2"
    call: str  # how it was called, e.g. "gpt2(n_layers=4)"
    role: str  # e.g. "mlp_out (residual projection, N(0, (0.02/√(2L))²))"
    patterns: tuple[str, ...]
    fix: str  # the option that renames the role


class Recipe(list):
    """The rules of a recipe (a ``list`` of ``(pattern, initialiser)`` pairs) and its defining
    roles, which :func:`jinit.reinit` checks.

    A recipe is used exactly as a list of rules (index it, iterate it, concatenate it). In
    addition, ``reinit`` raises a ValueError when one of its defining roles (:attr:`needs`: the
    residual projections of :func:`gpt2`, the zero last layers of :func:`fixup`, ...) matches no
    parameter path, rather than letting the recipe's fallback rules (``*kernel`` ...) draw those
    layers silently with another law. The message names the recipe, the roles and their patterns,
    a sample of the paths seen and the option that renames the role.

    ``recipe + rules``, ``rules + recipe`` and ``recipe + recipe`` are recipes with the defining
    roles of every recipe involved; slicing or ``list(recipe)`` gives plain rules (no check).

    Examples:
      >>> import jax, jax.numpy as jnp, jinit
      >>> params = {"block_0": {"attn": {"out": {"kernel": jnp.zeros((8, 8))}},
      ...                       "mlp": {"w2": {"kernel": jnp.zeros((16, 8))}}}}
      >>> try:
      ...     jinit.reinit(params, jax.random.key(0), jinit.recipes.gpt2(1))
      ... except ValueError as e:
      ...     print(str(e).splitlines()[1].split(":")[0])
        mlp_out (residual projection N(0, (0.02/√(2·1))²))
      >>> names = jinit.recipes.TransformerNames(mlp_out="*w2/kernel")
      >>> new = jinit.reinit(params, jax.random.key(0), jinit.recipes.gpt2(1, names=names))
      >>> round(float(new["block_0"]["mlp"]["w2"]["kernel"].std()), 2)  # 0.02 / √2
      0.01
    """

    needs: tuple[Need, ...]

    def __init__(self, rules: Any = (), needs: Sequence[Need] = ()):
        super().__init__(rules)
        self.needs = tuple(needs)

    def __add__(self, other: Any) -> Recipe:
        if not isinstance(other, list):
            return NotImplemented
        return Recipe([*self, *other], self.needs + getattr(other, "needs", ()))

    def __radd__(self, other: Any) -> Recipe:
        if not isinstance(other, list):
            return NotImplemented
        return Recipe([*other, *self], getattr(other, "needs", ()) + self.needs)

    def __iadd__(self, other: Any) -> Recipe:
        self.extend(other)
        self.needs = self.needs + tuple(getattr(other, "needs", ()))
        return self

    def __reduce__(self):
        return (Recipe, (list(self), self.needs))

    def missing(self, paths: Sequence[str]) -> list[Need]:
        """The defining roles none of whose patterns matches any of ``paths``."""
        out = []
        for need in self.needs:
            matchers = [glob_matcher(p) for p in need.patterns]
            if not any(m(path) for m in matchers for path in paths):
                out.append(need)
        return out

    def check_paths(self, paths: Sequence[str], *, regex: bool = False) -> None:
        """Raises if a defining role matches none of ``paths`` (the parameter paths of the
        tree): called by :func:`jinit.reinit` before any draw."""
        if not self.needs:
            return
        first = self.needs[0]
        if regex:
            raise ValueError(
                f"`{first.api}`: a recipe's patterns are globs, but `jinit.reinit` was called "
                f"with regex=True. Call it with regex=False (the default), or pass "
                f"`list(recipe)` to treat the patterns as regular expressions without the "
                f"recipe's checks."
            )
        if not paths:
            return  # reinit itself reports an empty tree
        missing = self.missing(paths)
        if not missing:
            return
        api, call = missing[0].api, missing[0].call
        roles = "\n".join(
            f"  {n.role}: {', '.join(repr(p) for p in n.patterns)}"
            + ("" if n.api == api else f" (from {n.call})")
            for n in missing
        )
        fixes = list(dict.fromkeys(n.fix for n in missing))
        raise ValueError(
            f"`{api}` ({call}): its defining rules matched no parameter, so its fallback rules "
            f"would have drawn those layers with another law:\n{roles}\n"
            f"Paths in the tree (a sample):\n{_sample_paths(paths)}\n"
            f"Name the layers: pass {' or '.join(fixes)}."
        )


def _sample_paths(paths: Sequence[str], limit: int = 20) -> str:
    """Up to ``limit`` paths, kernels first, one per layer name with the block indices folded
    (digits folded in every component but the last two: the layer and its parameter)."""

    def fold(p: str) -> str:
        parts = p.split("/")
        return "/".join([re.sub(r"\d+", "#", c) for c in parts[:-2]] + parts[-2:])

    seen: dict[str, str] = {}
    for p in sorted(paths, key=lambda q: (not q.endswith(("kernel", "weight")), q)):
        seen.setdefault(fold(p), p)
    shown = list(seen.values())[:limit]
    more = len(paths) - len(shown)
    lines = [f"    {p}" for p in shown]
    if more > 0:
        lines.append(f"    ... ({len(paths)} paths in all)")
    return "\n".join(lines)


def call_repr(name: str, **kwargs: Any) -> str:
    return f"{name}(" + ", ".join(f"{k}={v!r}" for k, v in kwargs.items()) + ")"


def defining_role(api: str, call: str, role: str, patterns: Sequence[str], fix: str) -> list[Need]:
    """A defining role, or none when its patterns are empty (the user said it is absent)."""
    return [Need(api, call, role, tuple(patterns), fix)] if patterns else []
