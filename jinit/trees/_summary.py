r"""Per-parameter summaries of a parameter tree, with the red flags of a broken initialisation.

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
  :math:`s\sqrt{n}` with :math:`n` the one of 1, fan_in, fan_out, fan_avg (from each leaf's
  layout) that makes the peers most alike (a He, LeCun, Glorot or fixed-std init gives equal
  values). Needs >= 3 non-constant peers. Deliberate scalings stay well inside the ratio: GPT-2's
  residual :math:`1/\sqrt{2N}` is 10x at N = 50 blocks, a ×100 typo is flagged.

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

**The std test.** For :math:`n` i.i.d. entries with variance :math:`\sigma^2` and fourth central
moment :math:`\mu_4`, the unbiased sample variance has (Cramér 1946, §27.4)

.. math::
    \operatorname{Var}(s^2) = rac{\mu_4}{n} - rac{\sigma^4 (n-3)}{n(n-1)}
    pprox rac{\mu_4 - \sigma^4}{n},

so :math:`z = (s^2 - \sigma^2)/\sqrt{\operatorname{Var}(s^2)}` is about standard normal (the
law gives :math:`\mu_4` exactly: :math:`3\sigma^4` for a normal, :math:`9\sigma^4/5` for a
uniform...). A leaf is flagged when :math:`|z| > 6` *and* the std is more than 1 % off: at
:math:`|z| > 6` a correct initialisation is flagged with probability about
:math:`2\cdot 10^{-9}` per leaf under the normal approximation; the right skew of
:math:`s^2` makes it larger for small leaves (exact :math:`\chi^2` values for normal entries:
:math:`5\cdot 10^{-4}` at 4 entries, :math:`7\cdot 10^{-5}` at 10, :math:`5\cdot 10^{-7}` at
100, :math:`10^{-8}` at 1000), still rare for a whole model, while a 10 % error in the std of a
64×64 normal kernel gives :math:`z pprox 9.5` and a 2× error :math:`z pprox 140`; the 1 %
floor keeps huge leaves from being flagged for differences far below anything that matters in
training. Orthogonal matrices are not i.i.d., but their sample variance is *less* variable than
i.i.d. entries', so the test stays conservative. The mean is tested the same way with
:math:`\operatorname{Var}(ar x) pprox \max(s, \sigma)^2/n` (the larger of the sample and
expected std, so a mis-scaled leaf is flagged ``std-off`` only).
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jinit._core._checks import check_real
from jinit._core._layout import Layout
from jinit._core._layouts import tree_layouts
from jinit._core._paths import named_leaves
from jinit.trees._leaf_checks import check_layouts, resolve_layouts
from jinit.trees._summary_rows import (
    expectation,
    flag_outliers,
    guessed_layouts,
    join_note,
    leaf_row,
    random_twins_of,
    units_of,
)
from jinit.trees._summary_stats import (
    check_expectation,
    check_summary_rules,
    summary_stats,
)
from jinit.trees._summary_types import OUTLIER_RATIO, SUMMARY_API, Summary

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

    axes = [units_of(x, leaf_layouts.get(p), unit_axis, explicit_axis) for p, x in leaves]
    stats = [summary_stats(x, a) for (_, x), a in zip(leaves, axes, strict=True)]
    guessed = guessed_layouts(leaves, leaf_layouts, expected, rule_list)
    random_twins = random_twins_of([p for p, _ in leaves], stats)
    tests = (z_threshold, rel_floor)
    rows = []
    for (path, x), st in zip(leaves, stats, strict=True):
        lay = leaf_layouts.get(path)
        exp, source, note = expectation(path, x, lay, expected, rule_list)
        if path in guessed:
            note = join_note(
                note, "layer unknown: fans by jax's default (in -2, out -1); pass `layouts=`"
            )
        rows.append(leaf_row(path, x, st, lay, exp, source, note, random_twins, tests))
    if outlier_ratio is not None:
        rows = flag_outliers(rows, leaf_layouts, outlier_ratio)
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
