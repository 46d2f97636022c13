"""One row of :func:`summary` per leaf: the expected law from ``expected`` or the rules, the
unit axes, the ``zeros`` / ``identical-units`` / ``non-finite`` flags, the z-tests of the std and
mean, and the ``outlier`` flag against peers (the rules are in the module docstring of
:mod:`jinit.trees._summary`)."""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import numpy as np

from jinit._core._layout import Layout, default_layout, follows_default, is_ambiguous
from jinit.trees._leaf_checks import warn_ambiguous
from jinit.trees._summary_stats import (
    expect_from,
    min_unit_len,
    pattern_text,
    rule_matches,
)
from jinit.trees._summary_types import BIAS_NAMES, SUMMARY_API, SummaryRow

# ---------------------------------------------------------------------------------------------
# summary(): one row per leaf
# ---------------------------------------------------------------------------------------------


def join_note(note: str, more: str) -> str:
    return f"{note}; {more}" if note else more


def units_of(
    x: jax.Array, lay: Layout | None, unit_axis: int, explicit: bool
) -> int | tuple[int, ...] | None:
    """The axes of output units whose rows ``identical-units`` compares (None: not checked)."""
    if x.ndim < 2:
        return None
    unit = lay.out_axes if lay is not None and not explicit else (unit_axis,)
    n_units = math.prod(x.shape[a] for a in unit)
    if n_units >= 2 and x.size // n_units >= min_unit_len(np.dtype(x.dtype)):
        return unit if len(unit) > 1 else unit[0]
    return None


def guessed_layouts(leaves, leaf_layouts, expected, rule_list) -> set[str]:
    """Paths of rank >= 3 leaves without a known layer whose fans follow jax's default guess
    (warned about once, naming them)."""
    doubtful = []
    for path, x in leaves:
        if leaf_layouts.get(path) is None and x.ndim >= 3:
            init = expected.get(path)
            if path not in expected:
                init = next((i for pat, i in rule_list if rule_matches(pat, path)), None)
            doubtful.append((path, tuple(x.shape), init))
    warn_ambiguous(SUMMARY_API, doubtful, stacklevel=4)
    return {p for p, shape, init in doubtful if follows_default(init) and is_ambiguous(p, shape)}


def expectation(path, x, lay, expected, rule_list) -> tuple[Any, str | None, str]:
    """``(expected law or None, where it came from, note)`` for the leaf at ``path``."""
    shape, dtype = tuple(x.shape), np.dtype(x.dtype)
    exp, source, note = None, None, ""
    if path in expected:
        exp, source = expect_from(expected[path], shape, dtype, lay), "expected"
    else:
        for pattern, init in rule_list:
            if rule_matches(pattern, path):
                exp = expect_from(init, shape, dtype, lay)
                source = f"rule {pattern_text(pattern)}"
                break
    if isinstance(exp, str):
        exp, note = None, exp
    elif exp is not None and exp.note:
        note = exp.note
    return exp, source, note


def leaf_row(path, x, st, lay, exp, source, note, random_twins, tests) -> SummaryRow:
    shape, dtype = tuple(x.shape), np.dtype(x.dtype)
    n_bad, n_nan = int(st["n_nonfinite"]), int(st["n_nan"])
    n = int(x.size) - n_bad
    mean = float(st["mean"]) if n >= 1 else math.nan
    std = float(st["std"]) if n >= 2 else math.nan
    dup = int(st["duplicate_units"]) if "duplicate_units" in st else None
    if n_bad:
        what = f"{n_nan} NaN, {n_bad - n_nan} infinite"
        bad_note = (
            f"all {x.size} entries are non-finite ({what}): no statistics"
            if n == 0
            else f"{n_bad} of {x.size} entries are non-finite ({what}); mean and std are "
            f"those of the {n} finite entries"
        )
        note = join_note(bad_note, note) if note else bad_note
    flags, note = _structure_flags(path, x, st, exp, dup, note, random_twins)
    if n_bad:
        flags.append("non-finite")
    z_std = z_mean = None
    if exp is not None and n > 0:
        z_std, z_mean, off = _moment_tests(exp, n, mean, std, *tests)
        flags += off
    return SummaryRow(
        path=path,
        shape=shape,
        dtype=dtype.name if dtype.names is None else str(dtype),
        size=int(x.size),
        mean=mean,
        std=std,
        max_abs=float(st["max_abs"]) if n >= 1 else math.nan,
        n_nonfinite=n_bad,
        duplicate_units=dup,
        expected_mean=None if exp is None else exp.mean,
        expected_std=None if exp is None else math.sqrt(exp.var),
        law=None if exp is None else exp.text,
        source=source,
        z_std=z_std,
        z_mean=z_mean,
        flags=tuple(flags),
        note=note,
        layout=lay,
    )


def _structure_flags(path, x, st, exp, dup, note, random_twins) -> tuple[list[str], str]:
    """``zeros`` and ``identical-units`` (with their notes): see the module docstring."""
    flags = []
    deterministic = exp is not None and (exp.m4 is None or exp.var == 0)
    # A bias of rank >= 2 (DenseGeneral/attention (heads, head_dim)) is zero by convention:
    # only a law saying otherwise makes its zeros or repeated units suspicious.
    bias = path.rpartition("/")[2] in BIAS_NAMES and not (exp and exp.var > 0)
    matrix = x.ndim >= 2 and not bias
    all_zero = bool(st["all_zero"]) and x.size > 0
    # A zero leaf is an error only where something says it should be random: its law, or
    # the same layer of another block (module docstring, "Zero leaves").
    deliberate_zero = all_zero and exp is None and path not in random_twins
    if all_zero and (matrix or (exp and exp.var > 0)) and not deterministic:
        if deliberate_zero:
            note = join_note(
                note,
                "all zeros, as initialised (no rule expects a random law and the same layer "
                "of no other block is random: a deliberate zero init such as a zero head); "
                "pass rules= to check it",
            )
        else:
            flags.append("zeros")
            if exp is None:
                note = join_note(
                    note, f"all zeros while the same layer {random_twins[path]!r} is random"
                )
    if dup and not deterministic and not bias and not deliberate_zero:
        flags.append("identical-units")
    return flags, note


def _moment_tests(exp, n: int, mean: float, std: float, z_threshold: float, rel_floor: float):
    """``(z_std, z_mean, flags)``: the std and mean of ``n`` finite entries against the law
    (module docstring: z-tests with the fourth moment, a relative floor; exact tolerances for
    deterministic laws)."""
    z_std = z_mean = None
    sigma = math.sqrt(exp.var)
    if exp.m4 is None or exp.var == 0:
        tol = rel_floor * max(sigma, abs(exp.mean)) + 1e-6
        std_off = n >= 2 and abs(std - sigma) > tol
        mean_off = abs(mean - exp.mean) > tol
    elif n < 2:  # one finite entry: no sample std, a z-test of the mean against sigma
        z_mean = (mean - exp.mean) / sigma if sigma > 0 else None
        std_off = False
        mean_off = (
            z_mean is not None
            and abs(z_mean) > z_threshold
            and abs(mean - exp.mean) > rel_floor * sigma
        )
    else:
        s2, v = std * std, exp.var
        var_s2 = exp.m4 / n - v * v * (n - 3) / (n * (n - 1))
        z_std = (s2 - v) / math.sqrt(max(var_s2, 1e-300))
        # max(s, sigma): a mis-scaled leaf is flagged std-off, not also mean-off.
        z_mean = (mean - exp.mean) / (max(std, sigma) / math.sqrt(n))
        std_off = abs(z_std) > z_threshold and abs(std / sigma - 1) > rel_floor
        mean_off = abs(z_mean) > z_threshold and abs(mean - exp.mean) > rel_floor * max(std, sigma)
    return z_std, z_mean, ["std-off"] * std_off + ["mean-off"] * mean_off


_DIGITS = re.compile(r"\d+")


def _twin_key(path: str) -> str:
    """``path`` with the block indices folded: digits in every component but the layer's own
    name and the parameter (``encoderblock_1/MlpBlock_0/Dense_1/kernel`` ->
    ``encoderblock_#/MlpBlock_#/Dense_1/kernel``); a purely numeric layer name is a list index
    and is folded too (equinox ``layers/2/weight`` -> ``layers/#/weight``)."""
    parts = path.split("/")
    keep = 1 if len(parts) >= 2 and parts[-2].isdigit() else 2
    head, tail = parts[: len(parts) - keep], parts[len(parts) - keep :]
    return "/".join([_DIGITS.sub("#", c) for c in head] + tail)


def random_twins_of(paths: Sequence[str], stats: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """{path: a random twin} for every leaf that has one: another leaf with the same
    :func:`_twin_key` (the same layer in another block) whose entries are not all equal."""
    groups: dict[str, list[tuple[str, bool]]] = {}
    for p, st in zip(paths, stats, strict=True):
        sd = float(st["std"])
        groups.setdefault(_twin_key(p), []).append((p, math.isfinite(sd) and sd > 0))
    out: dict[str, str] = {}
    for members in groups.values():
        randoms = [p for p, r in members if r]
        for p, _ in members:
            twin = next((q for q in randoms if q != p), None)
            if twin is not None:
                out[p] = twin
    return out


def _scale_candidates(row: SummaryRow, layout: Layout | None) -> dict[str, float] | None:
    """log(s·sqrt(n)) for n in 1, fan_in, fan_out, fan_avg; None if the leaf cannot be compared."""
    if len(row.shape) < 2 or row.size < 8 or not (math.isfinite(row.std) and row.std > 0):
        return None
    lay = layout if layout is not None else default_layout(row.shape)
    try:
        f = lay.fans(row.shape)
    except ValueError:
        return None
    log_s = math.log(row.std)
    return {
        "1": log_s,
        "fan_in": log_s + 0.5 * math.log(f.fan_in),
        "fan_out": log_s + 0.5 * math.log(f.fan_out),
        "fan_avg": log_s + 0.5 * math.log((f.fan_in + f.fan_out) / 2),
    }


def flag_outliers(
    rows: list[SummaryRow], leaf_layouts: Mapping[str, Layout | None], ratio: float
) -> list[SummaryRow]:
    """Flags ``outlier`` on leaves without an expected law whose scale is > ``ratio`` times off
    the median of their peers (same last path component), under the fan scaling that makes the
    peers most alike (smallest median absolute deviation of the logs)."""
    groups: dict[str, list[tuple[int, dict[str, float]]]] = {}
    for i, r in enumerate(rows):
        cand = _scale_candidates(r, leaf_layouts.get(r.path))
        if cand is not None:
            groups.setdefault(r.path.rpartition("/")[2], []).append((i, cand))
    out = list(rows)
    limit = math.log(ratio)
    for role, members in groups.items():
        if len(members) < 3:
            continue
        best = None
        for mode in ("1", "fan_in", "fan_out", "fan_avg"):
            vals = [c[mode] for _, c in members]
            med = float(np.median(vals))
            mad = float(np.median([abs(v - med) for v in vals]))
            if best is None or mad < best[0]:
                best = (mad, mode, med)
        _, mode, med = best
        for i, c in members:
            r = out[i]
            off = c[mode] - med
            if abs(off) <= limit or r.expected_std is not None:
                continue
            scaled = "" if mode == "1" else f", compared as std·√{mode}"
            text = (
                f"scale {math.exp(abs(off)):.3g}x {'above' if off > 0 else 'below'} the median of "
                f"its {len(members) - 1} peers '*/{role}'{scaled} (outlier_ratio {ratio:g})"
            )
            out[i] = dataclasses.replace(
                r, flags=(*r.flags, "outlier"), note=f"{r.note}; {text}" if r.note else text
            )
    return out
