"""Per-parameter summaries of a parameter tree, with the red flags of a broken initialisation.

The JAX answer to PyTorch's habit of printing every ``named_parameters()`` to check an
initialisation: :func:`summary` lists every array leaf with its shape, dtype, mean and standard
deviation, the standard deviation it should have when the initialiser is known, and flags:

* ``zeros`` — a weight matrix (rank >= 2, not named ``bias``/``b``) that is all zeros where
  something says it should be random (see *Zero leaves*);
* ``identical-units`` — two or more output units with exactly the same weights (the symmetry
  bug of a zero/constant init or a copied neuron: such units get the same gradient and stay
  identical forever);
* ``non-finite`` — inf or NaN entries;
* ``std-off`` / ``mean-off`` — the sample std (mean) is too far from the law's;
* ``outlier`` — without any expected law (no rule), a weight whose scale is more than
  ``outlier_ratio`` (30) times off the median of its peers: the other leaves of rank >= 2 with
  the same last path component (``kernel``, ``weight``, ``embedding``...), compared as
  :math:`s\\sqrt{n}` with :math:`n` the one of 1, fan_in, fan_out, fan_avg (from each leaf's
  layout) that makes the peers most alike (a He, LeCun, Glorot or fixed-std init gives equal
  values). Needs >= 3 non-constant peers. Deliberate scalings stay well inside the ratio: GPT-2's
  residual :math:`1/\\sqrt{2N}` is 10x at N = 50 blocks, a ×100 typo is flagged.

**Zero leaves.** Models zero-initialise some weights on purpose (ViT's ``head`` kernel and
``cls`` token, a zero-init residual branch, a Fixup classifier, ReZero gates), so an all-zero
weight is flagged ``zeros`` (and ``identical-units``) only when

1. its expected law (``rules``/``expected``) is random: the rule says it should not be zero;
   a deterministic law (``jinit.zeros``) silences both flags; or
2. without an expected law, the same layer of another block is random: a leaf with the same
   path once the block indices are folded (digits in every component but the layer's own name
   and the parameter: ``encoderblock_1/MlpBlock_0/Dense_1/kernel`` is a twin of
   ``encoderblock_0/MlpBlock_0/Dense_1/kernel``; equinox's ``layers/2/weight`` of
   ``layers/0/weight``) has entries that are not all equal, so this copy lost its init.

Otherwise the zero leaf is taken as initialised so on purpose: no flag, and its ``note`` says
"all zeros, as initialised". A single layer zeroed by mistake with no twin (the only ``head``)
cannot be told from a deliberate zero init without a rule: pass ``rules=`` to check it.

**Layouts.** Laws are evaluated with each leaf's :class:`jinit.Layout` (read from an nnx or
equinox module, or given as ``layouts=``), so a DenseGeneral/attention kernel ``(d, heads,
head_dim)`` is judged with fan_in = d, as its layer draws it, and ``identical-units`` compares
the units along its output axes.

**The std test.** For :math:`n` i.i.d. entries with variance :math:`\\sigma^2` and fourth central
moment :math:`\\mu_4`, the unbiased sample variance has (Cramér 1946, §27.4)

.. math::
    \\operatorname{Var}(s^2) = \frac{\\mu_4}{n} - \frac{\\sigma^4 (n-3)}{n(n-1)}
    \approx \frac{\\mu_4 - \\sigma^4}{n},

so :math:`z = (s^2 - \\sigma^2)/\\sqrt{\\operatorname{Var}(s^2)}` is about standard normal (the
law gives :math:`\\mu_4` exactly: :math:`3\\sigma^4` for a normal, :math:`9\\sigma^4/5` for a
uniform...). A leaf is flagged when :math:`|z| > 6` *and* the std is more than 1 % off: at
:math:`|z| > 6` a correct initialisation is flagged with probability about
:math:`2\\cdot 10^{-9}` per leaf under the normal approximation; the right skew of
:math:`s^2` makes it larger for small leaves (exact :math:`\\chi^2` values for normal entries:
:math:`5\\cdot 10^{-4}` at 4 entries, :math:`7\\cdot 10^{-5}` at 10, :math:`5\\cdot 10^{-7}` at
100, :math:`10^{-8}` at 1000), still rare for a whole model, while a 10 % error in the std of a
64×64 normal kernel gives :math:`z \approx 9.5` and a 2× error :math:`z \approx 140`; the 1 %
floor keeps huge leaves from being flagged for differences far below anything that matters in
training. Orthogonal matrices are not i.i.d., but their sample variance is *less* variable than
i.i.d. entries', so the test stays conservative. The mean is tested the same way with
:math:`\\operatorname{Var}(\bar x) \approx \\max(s, \\sigma)^2/n` (the larger of the sample and
expected std, so a mis-scaled leaf is flagged ``std-off`` only).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jinit._core._checks import check_real
from jinit._core._layout import Layout, default_layout, follows_default, is_ambiguous
from jinit._core._layouts import tree_layouts
from jinit._core._paths import named_leaves
from jinit.trees._leaf_checks import check_layouts, resolve_layouts, warn_ambiguous
from jinit.trees._summary_stats import (
    check_expectation,
    check_summary_rules,
    expect_from,
    min_unit_len,
    pattern_text,
    rule_matches,
    summary_stats,
)
from jinit.trees._summary_types import BIAS_NAMES, OUTLIER_RATIO, SUMMARY_API, Summary, SummaryRow

# ---------------------------------------------------------------------------------------------
# summary()
# ---------------------------------------------------------------------------------------------


def _leaves_of(tree: Any) -> tuple[list[tuple[str, jax.Array]], int, dict[str, Layout]]:
    """Named array leaves, the default unit axis (-1: Flax/haiku (in, out); 0: equinox) and the
    layouts the tree itself says (nnx and equinox modules)."""
    default_axis = -1
    known = tree_layouts(tree)
    try:
        from flax import nnx

        if isinstance(tree, nnx.Module):
            tree = nnx.state(tree, nnx.Param)
    except ImportError:  # pragma: no cover - flax is a dependency
        pass
    # equinox is not a dependency: an equinox module can only exist once equinox is imported,
    # so look it up among the loaded modules instead of importing it.
    eqx = sys.modules.get("equinox")
    if eqx is not None and isinstance(tree, eqx.Module):
        default_axis = 0  # equinox stores weights as (out, in, ...)
    out = []
    for path, value, _ in named_leaves(tree):
        if jax.dtypes.issubdtype(value.dtype, jax.dtypes.prng_key):
            continue
        # numpy leaves stay numpy (a float64 leaf is summarised as float64, even with x64 off)
        out.append((path, value if isinstance(value, np.ndarray) else jnp.asarray(value)))
    return out, default_axis, known


def summary(
    params: Any,
    *,
    rules: Any = None,
    expected: Mapping[str, Any] | None = None,
    unit_axis: int | None = None,
    z_threshold: float = 6.0,
    rel_floor: float = 0.01,
    layouts: Mapping[str, Layout | str | None] | None = None,
    outlier_ratio: float | None = OUTLIER_RATIO,
) -> Summary:
    r"""Summarises every array of a parameter tree and flags a broken initialisation.

    Works on linen ``params`` dicts (or whole ``variables``), ``nnx.State``, nnx modules (their
    ``nnx.Param`` state; pass ``nnx.state(model)`` for everything), haiku dicts and equinox
    modules; any pytree of arrays. Leaves of more than 2**18 entries are summarised by one
    jitted pass each on their device (compiled once per shape and dtype, in float32 or wider),
    smaller ones on the host in float64 (faster than compiling a program per shape).

    The expected law of a leaf comes from ``expected[path]`` if present, else from the first
    rule of ``rules`` whose pattern matches the path. A value may be a jinit initialiser (its
    law for the leaf's shape and dtype, :func:`jinit.law`), a jinit law, or a float std
    (normal law assumed for the test). See the module docstring for the z-test and why the
    default threshold is :math:`|z| > 6` plus a 1 % floor.

    Laws are those of the leaf's layer (:class:`jinit.Layout`, read from nnx/equinox modules or
    given as ``layouts=``; jax's default for unknown layers, with a ``UserWarning`` for rank >= 3
    leaves outside convolutions). ``identical-units`` compares the units along the layout's
    output axes, or along ``unit_axis`` when given or when the layer is unknown (the output
    axis: -1 for Flax and haiku ``(in, out)`` kernels, 0 for equinox/PyTorch ``(out, in)``;
    ``None`` chooses 0 for equinox modules, -1 otherwise) exactly, for leaves of rank >= 2
    whose units have at least 64 bits of entries (2 for float32, 4 for bfloat16). ``zeros``
    fires for all-zero leaves of rank >= 2 (zero biases are normal, also the rank-2 ``bias``
    of an attention projection) whose expected law is random or, without a law, whose twin in
    another block is random; a zero leaf with neither (ViT's zero ``head``) is a deliberate
    zero init: no flag, a note (module docstring, *Zero leaves*). Both flags are silenced
    when the expected law is deterministic (e.g. a rule says ``jinit.zeros``).

    Args:
      params: the tree.
      rules: ordered ``(pattern, initialiser)`` pairs (or a dict); patterns are
        :func:`jinit.reinit` globs on the '/'-joined path (``*`` also matches ``/``), or
        compiled ``re`` patterns (full match). First match wins.
      expected: ``{path: initialiser | law | std}`` for exact paths; overrides ``rules``.
      unit_axis: the axis of output units (see above).
      z_threshold: :math:`|z|` above which a std or mean is flagged (> 0).
      rel_floor: minimum relative deviation of the std (and of the mean, in units of the
        std) to flag (>= 0).
      layouts: ``{path or glob: Layout | einsum str | None}`` for leaves whose layer the tree
        does not say (a linen params dict: ``jinit.layouts(model, x)``); see
        :func:`jinit.reinit`. nnx and equinox modules give their own.
      outlier_ratio: the factor (> 1) beyond which a leaf without an expected law is flagged
        ``outlier`` against its peers (module docstring); ``None`` turns the check off.

    Returns:
      A :class:`Summary` (rows, ``.flagged``, ``.ok``, ``.print()``, ``.to_dict()``).

    A leaf with inf/NaN entries is flagged ``non-finite``; its ``n_nonfinite`` counts them, its
    ``note`` says how many are NaN, and its mean and std are those of the finite entries (NaN,
    shown as ``-``, when there are none: never a made-up 0).

    Raises:
      TypeError: malformed ``rules``/``expected`` (a value that is not an initialiser, law or
        std), a non-int ``unit_axis``.
      ValueError: ``expected`` names a path that is not in the tree, a negative or non-finite
        expected std, ``unit_axis`` out of range for a leaf of rank >= 2 (named), bad
        thresholds, a tree without array leaves.

    Examples:
      >>> import jax, jax.numpy as jnp, jinit, flax.linen as nn
      >>> from jinit import summary
      >>> params = nn.Dense(64, kernel_init=jinit.he_normal()).init(
      ...     jax.random.key(0), jnp.ones((1, 128)))["params"]
      >>> s = summary(params, rules=[("*kernel", jinit.he_normal())])
      >>> s.ok, round(s["kernel"].expected_std, 4)
      (True, 0.125)
      >>> params["kernel"] = jnp.zeros((128, 64))
      >>> summary(params, rules=[("*kernel", jinit.he_normal())])["kernel"].flags
      ('zeros', 'identical-units', 'std-off')

    References:
      Cramér, "Mathematical Methods of Statistics", 1946, §27.4 (variance of the sample
      variance).
    """
    z_threshold = check_real(SUMMARY_API, "z_threshold", z_threshold, positive=True)
    rel_floor = check_real(SUMMARY_API, "rel_floor", rel_floor, nonneg=True)
    outlier_ratio = _check_outlier_ratio(outlier_ratio)
    given_layouts = check_layouts(SUMMARY_API, layouts)
    rule_list = check_summary_rules(rules)
    expected = _check_expected(expected)
    _check_unit_axis_type(unit_axis)
    leaves, default_axis, known = _leaves_of(params)
    if not leaves:
        raise ValueError(
            f"`{SUMMARY_API}` found no array leaves in `params` (got a {type(params).__name__}). "
            "Pass a parameter tree such as `variables['params']`, an `nnx.State`, an nnx module "
            "or an equinox module."
        )
    leaf_layouts = resolve_layouts(SUMMARY_API, None, leaves, {**known, **given_layouts})
    explicit_axis = unit_axis is not None
    unit_axis = int(default_axis if unit_axis is None else unit_axis)
    _check_unit_axis_range(leaves, unit_axis)
    _check_expected_paths(expected, [p for p, _ in leaves])

    axes = [_units_of(x, leaf_layouts.get(p), unit_axis, explicit_axis) for p, x in leaves]
    stats = [summary_stats(x, a) for (_, x), a in zip(leaves, axes, strict=True)]
    guessed = _guessed_layouts(leaves, leaf_layouts, expected, rule_list)
    random_twins = _random_twins([p for p, _ in leaves], stats)
    tests = (z_threshold, rel_floor)
    rows = []
    for (path, x), st in zip(leaves, stats, strict=True):
        lay = leaf_layouts.get(path)
        exp, source, note = _expectation(path, x, lay, expected, rule_list)
        if path in guessed:
            note = _join(
                note, "layer unknown: fans by jax's default (in -2, out -1); pass `layouts=`"
            )
        rows.append(_row(path, x, st, lay, exp, source, note, random_twins, tests))
    if outlier_ratio is not None:
        rows = _flag_outliers(rows, leaf_layouts, outlier_ratio)
    return Summary(tuple(rows), z_threshold, rel_floor, unit_axis)


# ---------------------------------------------------------------------------------------------
# summary(): argument checks
# ---------------------------------------------------------------------------------------------


def _check_outlier_ratio(outlier_ratio: Any) -> float | None:
    if outlier_ratio is None:
        return None
    outlier_ratio = check_real(SUMMARY_API, "outlier_ratio", outlier_ratio, positive=True)
    if outlier_ratio <= 1:
        raise ValueError(
            f"`{SUMMARY_API}` needs `outlier_ratio` > 1 (a factor off the peers' median); got "
            f"{outlier_ratio!r}. Pass e.g. 30, or None to turn the check off."
        )
    return outlier_ratio


def _check_expected(expected: Any) -> dict[str, Any]:
    if expected is not None and not isinstance(expected, Mapping):
        raise TypeError(
            f"`{SUMMARY_API}` needs `expected` to be a dict {{path: initialiser | law | std}}; got "
            f"{type(expected).__name__}."
        )
    out = dict(expected or {})
    for k, v in out.items():
        if not isinstance(k, str):
            raise TypeError(
                f"`{SUMMARY_API}` needs the keys of `expected` to be '/'-joined paths (str); got "
                f"{k!r}."
            )
        out[k] = check_expectation(f"expected[{k!r}]", v)
    return out


def _check_unit_axis_type(unit_axis: Any) -> None:
    if unit_axis is not None and (
        isinstance(unit_axis, bool | np.bool_) or not isinstance(unit_axis, int | np.integer)
    ):
        raise TypeError(
            f"`{SUMMARY_API}` needs `unit_axis` to be an int or None; got {unit_axis!r} of type "
            f"{type(unit_axis).__name__}. Pass -1 for Flax (in, out) kernels or 0 for equinox/"
            f"PyTorch (out, in) weights."
        )


def _check_unit_axis_range(leaves: Sequence[tuple[str, jax.Array]], unit_axis: int) -> None:
    for path, x in leaves:
        if x.ndim >= 2 and not -x.ndim <= unit_axis < x.ndim:
            raise ValueError(
                f"`{SUMMARY_API}` got `unit_axis={unit_axis}`, which is out of range for {path!r} "
                f"of shape {tuple(x.shape)} (rank {x.ndim}; valid axes {-x.ndim}..{x.ndim - 1}). "
                f"The unit axis is checked on every leaf of rank >= 2: pass -1 for Flax (in, out) "
                f"kernels or 0 for equinox/PyTorch (out, in) weights."
            )


def _check_expected_paths(expected: Mapping[str, Any], paths: Sequence[str]) -> None:
    unknown = [k for k in expected if k not in paths]
    if unknown:
        hints = {k: difflib.get_close_matches(k, paths, n=1) for k in unknown}
        hint = "; ".join(
            f"{k!r} (did you mean {v[0]!r}?)" if v else repr(k) for k, v in hints.items()
        )
        raise ValueError(
            f"`{SUMMARY_API}`: `expected` names path(s) not in the tree: {hint}. Paths are "
            f"'/'-joined, e.g. {paths[:3]}."
        )


# ---------------------------------------------------------------------------------------------
# summary(): one row per leaf
# ---------------------------------------------------------------------------------------------


def _join(note: str, more: str) -> str:
    return f"{note}; {more}" if note else more


def _units_of(
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


def _guessed_layouts(leaves, leaf_layouts, expected, rule_list) -> set[str]:
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


def _expectation(path, x, lay, expected, rule_list) -> tuple[Any, str | None, str]:
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


def _row(path, x, st, lay, exp, source, note, random_twins, tests) -> SummaryRow:
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
        note = _join(bad_note, note) if note else bad_note
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
            note = _join(
                note,
                "all zeros, as initialised (no rule expects a random law and the same layer "
                "of no other block is random: a deliberate zero init such as a zero head); "
                "pass rules= to check it",
            )
        else:
            flags.append("zeros")
            if exp is None:
                note = _join(
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


def _random_twins(paths: Sequence[str], stats: Sequence[Mapping[str, Any]]) -> dict[str, str]:
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


def _flag_outliers(
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
