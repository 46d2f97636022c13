"""Checks on the leaves :func:`reinit` draws, all before any draw: layouts given or inferred,
float and complex dtypes, non-array leaves, shapes an initialiser cannot draw, ambiguous layouts."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import numpy as np

from jinit._core._layout import Layout, as_layout, default_layout, follows_default, is_ambiguous
from jinit._core._layouts import lookup, tree_layouts
from jinit._core._paths import (
    is_box,
    is_shape,
    path_str,
    unbox,
)
from jinit.initializers._base import Initializer
from jinit.trees._rules import glob_matcher

# ---------------------------------------------------------------------------------------------
# Layouts
# ---------------------------------------------------------------------------------------------


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
        out[k] = None if v is None else as_layout(api, v)
    return out


def resolve_layouts(
    api: str, tree: Any, leaves: Sequence[tuple[str, Any]], given: Mapping[str, Layout | None]
) -> dict[str, Layout | None]:
    """The layout of each leaf (bound to its shape): ``given`` (exact path, then the first
    matching glob), else what the module says (nnx/equinox), else ``None``."""
    found = tree_layouts(tree)
    globs = [(k, glob_matcher(k), v) for k, v in given.items() if any(c in k for c in "*?[")]
    out: dict[str, Layout | None] = {}
    for p, a in leaves:
        shape = tuple(a.shape)
        if p in given:
            lay = given[p]
        elif p.startswith("params/") and p[len("params/") :] in given:
            lay = given[p[len("params/") :]]
        else:
            lay = next((v for k, m, v in globs if m(p)), lookup(found, p))
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


# ---------------------------------------------------------------------------------------------
# Leaf checks
# ---------------------------------------------------------------------------------------------


def is_float_dtype(dtype: Any) -> bool:
    """Real or complex floating (what initialisers draw); False for ints, bools and PRNG keys."""
    return jax.dtypes.issubdtype(dtype, np.inexact)


def draw_dtype(dtype: Any) -> np.dtype:
    """The dtype a leaf of ``dtype`` is drawn in: its own, or its 32-bit twin (float32,
    complex64) for a 64-bit leaf while ``jax_enable_x64`` is off (jax has no 64-bit arrays then)."""
    return np.dtype(jax.dtypes.canonicalize_dtype(dtype))


def non_array_leaves(tree: Any) -> tuple[tuple[str, str], ...]:
    flat, _ = jax.tree_util.tree_flatten_with_path(tree, is_leaf=is_box)
    out = []
    for keypath, leaf in flat:
        value = unbox(leaf)
        if not isinstance(value, jax.Array | np.ndarray) and not is_shape(value):
            out.append((path_str(keypath), type(value).__name__))
    return tuple(out)


def check_leaf_kinds(api: str, leaves, winners) -> None:
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


def check_shape_leaves(api: str, leaves, winners) -> None:
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


def warn_ambiguous_leaves(api: str, leaves, winners, leaf_layouts) -> None:
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
        if init is not None and follows_default(init) and is_ambiguous(p, shape)
    ]
    if not doubtful:
        return
    lines = []
    for p, shape, init in doubtful[:5]:
        f = default_layout(shape).fans()
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


def dtype_kind(dtype: Any) -> str:
    if jax.dtypes.issubdtype(dtype, np.complexfloating):
        return "complex"
    if jax.dtypes.issubdtype(dtype, np.floating):
        return "real floating"
    return "non-float"
