"""The statistics behind :func:`summary` (one jit for the whole tree, small leaves on the host)
and the expected law of each leaf: from the user's rules, a law, a std or the bias convention."""

from __future__ import annotations

import dataclasses
import functools
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jinit._core._checks import has_law
from jinit._core._layout import Layout, retarget
from jinit.laws import _laws as laws_mod
from jinit.trees._rules import glob_matcher
from jinit.trees._summary_types import SUMMARY_API

# ---------------------------------------------------------------------------------------------
# Statistics (one jit for the whole tree)
# ---------------------------------------------------------------------------------------------


def min_unit_len(dtype: np.dtype) -> int:
    """Shortest unit checked for duplicates: >= 64 bits of entries, so exact collisions of
    random units (probability about 2^-(bits of entropy)) are negligible even for bfloat16."""
    return max(2, 64 // (8 * dtype.itemsize))


def _stat_dtype(dtype: np.dtype, xp: Any):
    complex_ = jnp.issubdtype(dtype, jnp.complexfloating)
    if xp is np:  # host: always double precision
        return np.complex128 if complex_ else np.float64
    if complex_:
        return jnp.promote_types(dtype, jnp.complex64)
    if jnp.issubdtype(dtype, jnp.floating):
        return jnp.promote_types(dtype, jnp.float32)
    return jnp.float32


def _leaf_stats(x: Any, unit_axis: int | tuple[int, ...] | None, xp: Any = jnp) -> dict[str, Any]:
    """Moments, non-finite count, all-zero and duplicate-unit count of one leaf.

    Written once for ``xp = jnp`` (traced under jit) and ``xp = np`` (host, small leaves).
    """
    xs = x.astype(_stat_dtype(x.dtype, xp))
    finite = xp.isfinite(xs)
    n = xp.sum(finite)
    xz = xp.where(finite, xs, 0)
    mean = xp.sum(xz) / xp.maximum(n, 1)
    dev = xp.where(finite, xs - mean, 0)
    var = xp.sum(xp.abs(dev) ** 2) / xp.maximum(n - 1, 1)
    out = {
        "mean": xp.abs(mean) if xp.iscomplexobj(mean) else mean,
        "std": xp.sqrt(var),
        "max_abs": xp.max(xp.abs(xz)) if x.size else 0.0,
        "n_nonfinite": x.size - n,
        "n_nan": xp.sum(xp.isnan(xs)),
        "all_zero": xp.all(xs == 0),
    }
    if unit_axis is not None:
        axes = (unit_axis,) if isinstance(unit_axis, int) else tuple(unit_axis)
        m = xp.moveaxis(xs, axes, tuple(range(-len(axes), 0)))
        n_units = math.prod(m.shape[-len(axes) :])
        m = m.reshape(-1, n_units)  # (entries per unit, units); the upcast is exact
        # Sort units by a random projection: identical units get equal projections and end up
        # adjacent; then compare adjacent units exactly (one pass, no n_units^2 comparisons).
        r = np.random.default_rng(0).standard_normal((m.shape[0], 1)).astype(np.float32)
        mr = m.real + 0.5 * m.imag if xp.iscomplexobj(m) else m
        proj = xp.sum(mr * r, axis=0)
        ms = m[:, xp.argsort(proj)]
        out["duplicate_units"] = xp.sum(xp.all(ms[:, 1:] == ms[:, :-1], axis=0))
    return out


# Small leaves are summarised on the host with numpy: compiling an XLA program per leaf shape
# costs ~0.1-0.5 s of CPU, far more than the statistics of a leaf of a few thousand entries.
# Larger leaves get one jitted pass each on their device, compiled once per (shape, dtype, axis).
_HOST_MAX_SIZE = 1 << 18
_leaf_stats_jit = jax.jit(_leaf_stats, static_argnums=1)


def summary_stats(
    x: jax.Array | np.ndarray, unit_axis: int | tuple[int, ...] | None
) -> dict[str, Any]:
    if x.size <= _HOST_MAX_SIZE or isinstance(x, np.ndarray):
        return _leaf_stats(np.asarray(jax.device_get(x)), unit_axis, np)
    return jax.device_get(_leaf_stats_jit(x, unit_axis))


# ---------------------------------------------------------------------------------------------
# Expected laws
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Expect:
    mean: float
    var: float
    m4: float | None  # fourth central moment; None: deterministic (compare with rel_floor only)
    text: str
    note: str = ""


def _moments(lw: Any, shape: tuple[int, ...]) -> _Expect:
    text = lw.summary() if hasattr(lw, "summary") else repr(lw)
    mean = float(abs(lw.mean))
    var = float(lw.variance)
    if isinstance(lw, laws_mod.DeterministicLaw):
        return _Expect(mean, var, None, text)
    if isinstance(lw, laws_mod.ElementwiseLaw | laws_mod.OrthogonalLaw):
        return _Expect(mean, var, float(lw.fourth_moment), text)
    if isinstance(lw, laws_mod.DeltaOrthogonalLaw):
        frac = math.prod(shape[-2:]) / math.prod(shape)  # share of entries at the centre
        return _Expect(0.0, var, lw.inner.fourth_moment * frac, text)
    if isinstance(lw, laws_mod.SparseLaw) and lw.nonzero.mean == 0:
        return _Expect(0.0, var, (1 - lw.fraction_zero) * lw.nonzero.fourth_moment, text)
    return _Expect(mean, var, 3 * var * var, text, "fourth moment assumed normal")


def expect_from(
    value: Any, shape: tuple[int, ...], dtype: np.dtype, layout: Layout | None = None
) -> _Expect | str:
    """The expectation ``value`` (initialiser, law or std) gives for a leaf, or why none.

    With a ``layout``, an initialiser's law is the one its layer draws: the initialiser told the
    layout (:func:`jinit._core._layouts.retarget`) at the layer's call shape."""
    if isinstance(value, laws_mod.Law):
        return _moments(value, shape)
    if isinstance(value, int | float) and not isinstance(value, bool):
        std = float(value)
        if not (math.isfinite(std) and std >= 0):
            return f"expected std {value!r} is not a finite number >= 0"
        return _Expect(0.0, std * std, 3 * std**4, f"std {std:g} (normal assumed)")
    if has_law(value):
        call_shape = shape
        if layout is not None:
            value, call_shape = retarget(value, layout), layout.call_shape()
        try:
            lw = value.law(call_shape, dtype)
        except (ValueError, TypeError) as e:
            return f"{value!r} has no law for shape {shape}: {e}"
        return _moments(lw, call_shape)
    return f"{value!r} carries no law (use a jinit initialiser, a jinit law or a std)"


def rule_matches(pattern: Any, path: str) -> bool:
    """The same matching as :func:`jinit.reinit`: a regex fully, or a glob where ``*`` spans '/'
    and a leading ``*/`` may also match at the top level."""
    if isinstance(pattern, re.Pattern):
        return pattern.fullmatch(path) is not None
    return _cached_glob(pattern)(path)


_cached_glob = functools.lru_cache(maxsize=1024)(glob_matcher)


def check_summary_rules(rules: Any) -> list[tuple[Any, Any]]:
    if rules is None:
        return []
    items = list(rules.items()) if isinstance(rules, Mapping) else rules
    if isinstance(items, str) or not isinstance(items, Sequence):
        raise TypeError(
            f"`{SUMMARY_API}` needs `rules` to be a list of (pattern, initialiser) pairs; got "
            f"{type(rules).__name__}. Example: `rules=[('*/kernel', jinit.he_normal())]`."
        )
    out = []
    for i, rule in enumerate(items):
        if (
            not isinstance(rule, tuple | list)
            or len(rule) != 2
            or not isinstance(rule[0], str | re.Pattern)
        ):
            raise TypeError(
                f"`{SUMMARY_API}` needs each rule to be a (pattern, initialiser) pair with a glob "
                f"string or compiled regex pattern; rule {i} is {rule!r}. Example: `('*/kernel', "
                "jinit.he_normal())`."
            )
        out.append((rule[0], check_expectation(f"rules[{i}] ({rule[0]!r})", rule[1])))
    return out


def check_expectation(where: str, value: Any) -> Any:
    """An expectation must be None, a jinit law, a std (finite, >= 0) or an initialiser."""
    if value is None or isinstance(value, laws_mod.Law) or callable(value):
        return value
    if isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool | np.bool_
    ):
        if not (math.isfinite(float(value)) and float(value) >= 0):
            raise ValueError(
                f"`{SUMMARY_API}` needs the expected std of {where} to be a finite number >= 0; "
                f"got {value!r}. Pass the standard deviation the leaf should have, e.g. 0.02."
            )
        return float(value)
    raise TypeError(
        f"`{SUMMARY_API}` needs {where} to be a jinit initialiser, a jinit law or a std (float); "
        f"got {value!r} of type {type(value).__name__}. Pass e.g. `jinit.he_normal()` or 0.02."
    )


def pattern_text(p: Any) -> str:
    return f"re:{p.pattern}" if isinstance(p, re.Pattern) else p
