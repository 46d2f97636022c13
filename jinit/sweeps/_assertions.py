"""Assertions on sweep results (re-exported in :mod:`jinit.testing`):
:func:`assert_stable_propagation` and :func:`assert_matches_theory`, with the tolerance rule
(standard error plus finite-width fluctuation) they share."""

from __future__ import annotations

import difflib
import math
from collections.abc import Sequence
from typing import Any

import jax.numpy as jnp
import numpy as np

from jinit._core._checks import check_real

#: The per-layer quantities of a sweep (``SweepResult.per_seed[label][name]``, shape
#: ``(seeds, layers)``), all computed per seed over the whole batch.
from jinit.sweeps._sweep_result import SweepResult

# ---------------------------------------------------------------------------------------------
# Assertions (re-exported in jinit.testing)
# ---------------------------------------------------------------------------------------------


def _check_result(api: str, result: Any) -> SweepResult:
    if not isinstance(result, SweepResult):
        raise TypeError(
            f"`{api}` needs `result` to be the `SweepResult` that `jinit.sweep` returns; got "
            f"{result!r:.80} of type {type(result).__name__}."
        )
    return result


def _select(api: str, result: SweepResult, inits) -> list[str]:
    if inits is None:
        return result.labels
    if isinstance(inits, str):
        labels = [inits]
    elif isinstance(inits, Sequence) and all(isinstance(x, str) for x in inits):
        labels = list(inits)
    else:
        raise TypeError(
            f"`{api}` needs `inits` to be None, a label or a list of labels (str); got "
            f"{inits!r} of type {type(inits).__name__}. The sweep's labels are {result.labels}."
        )
    missing = [x for x in labels if x not in result.per_seed]
    if missing or not labels:
        raise ValueError(
            f"`{api}` got unknown initialiser label(s) {missing} in `inits`; the sweep has "
            f"{result.labels}."
        )
    return labels


def _check_quantity(api: str, name: str, result: SweepResult, quantity: Any) -> str:
    known = sorted({q for label in result.labels for q in result.quantities(label)})
    if not isinstance(quantity, str) or quantity not in known:
        close = difflib.get_close_matches(quantity, known, n=1) if isinstance(quantity, str) else []
        hint = f" Did you mean {close[0]!r}?" if close else ""
        if not result.gradients and isinstance(quantity, str) and quantity.startswith("grad"):
            hint = " The sweep ran forward only (`gradients=False`): sweep with gradients=True."
        raise ValueError(
            f"`{api}` got `{name}={quantity!r}`, which the sweep did not record.{hint} Use one "
            f"of {', '.join(known)}."
        )
    return quantity


def assert_stable_propagation(
    result: SweepResult,
    low: float,
    high: float,
    *,
    quantity: str | None = None,
    inits=None,
) -> None:
    """Asserts every layer's seed-mean ``quantity`` lies in ``[low, high]`` with no inf/NaN.

    Args:
      result: a :class:`SweepResult`.
      low: smallest allowed seed mean (e.g. 0.5 for "at most halved").
      high: largest allowed seed mean.
      quantity: the summarised quantity. Default: what the sweep's verdicts judge
        (``result.judged["forward"]``): the activation second moment of a plain stack, the
        residual stream's (``"output.second_moment"``) of a residual one (:func:`jinit.transformer`,
        a residual :func:`jinit.mlp`), where LayerNorm keeps the activations flat whatever the
        initialisation. Also e.g. ``"preact.second_moment"``, ``"grad.second_moment"``,
        ``"act.std"``.
      inits: a label or labels to check (default all).

    Raises:
      AssertionError: listing every offending initialiser and layer.

    Examples:
      >>> import jinit
      >>> from jinit import mlp
      >>> from jinit.testing import assert_stable_propagation
      >>> from jinit import sweep
      >>> r = sweep(mlp(64, 3), jinit.he_normal(), seeds=4, batch=32)
      >>> assert_stable_propagation(r, 0.5, 2.0)
    """
    api = "assert_stable_propagation"
    result = _check_result(api, result)
    low = check_real(api, "low", low)
    high = check_real(api, "high", high)
    if low > high:
        raise ValueError(
            f"`{api}` needs `low` <= `high`; got low={low:g}, high={high:g}. Swap them."
        )
    if quantity is None:
        quantity = result.judged["forward"]
    quantity = _check_quantity(api, "quantity", result, quantity)
    failures = []
    for label in _select(api, result, inits):
        s = result.summary(label, quantity)
        bad = result.nonfinite_seeds(label)
        for j in range(result.n_layers):
            m = s.mean[j]
            if bad[j]:
                failures.append(f"{label} layer {j + 1}: {bad[j]} seed(s) with inf/NaN")
            elif not (low <= m <= high):
                failures.append(
                    f"{label} layer {j + 1}: {quantity} seed mean {m:.4g} ± {s.se[j]:.2g} (SE) "
                    f"outside [{low:g}, {high:g}]"
                )
    if failures:
        raise AssertionError(
            f"unstable propagation ({len(failures)} layer(s)):\n  " + "\n  ".join(failures)
        )


def _fluctuation_of(quantity: str) -> str:
    head = quantity.split(".", 1)[0]
    names = {
        "preact": "preact.fluctuation",
        "grad": "grad.fluctuation",
        "grad_output": "grad_output.fluctuation",
    }
    return names.get(head, "fluctuation")


def assert_matches_theory(
    result: SweepResult,
    *,
    quantities: Sequence[str] | None = None,
    k: float = 6.0,
    bias: float = 1.0,
    inits=None,
) -> None:
    r"""Asserts the measured seed means agree with the mean-field prediction.

    At layer :math:`l` with prediction :math:`p_l`, finite-width fluctuation :math:`f_l`
    (relative std of one seed's value) and seed count :math:`S`, the allowed deviation is

    .. math::
        k\,\max\!\left(\mathrm{SE}_l,\ |p_l|\,f_l/\sqrt S\right) + \mathrm{bias}\cdot f_l^2\,|p_l|
        + 64\,\varepsilon\,|p_l|,

    the first term the sampling error of the seed mean, the second a bound on the finite-width
    bias of the mean (of the order of the variance, :math:`O(\sum_l 1/n_l)`), the third the
    measurement's own rounding in the model's dtype (:math:`\varepsilon` its machine epsilon: an
    exact prediction such as a LayerNorm output's unit mean square is met up to rounding). The
    fluctuation is the prediction's own, for the pre-activation, the activation or the
    gradient.

    Args:
      result: a :class:`SweepResult`.
      quantities: which quantities to compare. Default: ``preact.second_moment``,
        ``act.second_moment`` and, when the sweep measured gradients, ``grad.second_moment``.
      k: number of standard errors allowed.
      bias: multiplier of the finite-width bias term (0 for the sampling error alone).
      inits: a label or labels to check (default: every initialiser with a prediction).

    Raises:
      AssertionError: listing every offending initialiser, layer and quantity; also when
        nothing was predicted (no selected initialiser has a prediction: e.g. weights that
        are not zero-mean, or a Flax model whose every layer depends on something the traced
        theory does not cover, such as token mixing; the notes say what), when a named
        initialiser has no prediction, when a requested quantity is predicted at no layer, or
        when a selected initialiser has inf/NaN seeds. Agreement is never asserted vacuously.
    """
    api = "assert_matches_theory"
    result = _check_result(api, result)
    quantities = _check_quantities(api, result, quantities)
    k = check_real(api, "k", k, positive=True)
    bias = check_real(api, "bias", bias, nonneg=True)
    failures = []
    for label in _labels_to_match(api, result, inits):
        if result.predicted.get(label) is None:
            failures.append(f"{label}: no prediction ({result.notes.get(label, '')})")
            continue
        for q in quantities:
            failures += _theory_failures(result, label, q, k, bias)
    if failures:
        raise AssertionError(
            f"sweep disagrees with theory ({len(failures)} case(s)):\n  " + "\n  ".join(failures)
        )


def _check_quantities(api: str, result: SweepResult, quantities: Any) -> list[str]:
    """The ``quantities`` of :func:`assert_matches_theory` as a list of recorded names."""
    if quantities is None:
        quantities = ("preact.second_moment", "act.second_moment")
        quantities += ("grad.second_moment",) if result.gradients else ()
    if isinstance(quantities, str):
        quantities = (quantities,)
    if not isinstance(quantities, Sequence) or not quantities:
        raise TypeError(
            f"`{api}` needs `quantities` to be a non-empty list of quantity names such as "
            f"('act.second_moment',); got {quantities!r}."
        )
    return [_check_quantity(api, "quantities", result, q) for q in quantities]


def _labels_to_match(api: str, result: SweepResult, inits: Any) -> list[str]:
    """The labels to compare: those named, or (default) every one with a prediction (or raises)."""
    labels = _select(api, result, inits)
    if inits is None:
        with_pred = [x for x in labels if result.predicted.get(x) is not None]
        if not with_pred:
            why = "; ".join(f"{x}: {result.notes.get(x) or 'no prediction'}" for x in labels)
            raise AssertionError(
                f"`{api}`: nothing was predicted for the {result.config.get('network', '?')}, so "
                f"there is no theory to match ({why}). Use `assert_stable_propagation` to bound "
                f"the statistics instead, or sweep an architecture with a mean-field prediction "
                f"(`jinit.mlp`, `jinit.cnn`, a Flax model the traced theory covers)."
            )
        labels = with_pred
    return labels


_ROUNDING_EPS = 64


def _theory_failures(result: SweepResult, label: str, q: str, k: float, bias: float) -> list[str]:
    """The layers where the seed mean of ``q`` for ``label`` misses its prediction."""
    if not np.any(np.isfinite(result.prediction(label, q))):
        return [f"{label} {q}: no prediction at any layer"]
    failures = []
    # the measured statistic's own rounding: each value rounded in the model's dtype (a few
    # eps through a layer), their mean of squares summed pairwise (<= log2(N) eps, N < 2^40)
    rounding = _ROUNDING_EPS * float(jnp.finfo(result.config.get("dtype", "float32")).eps)
    bad = result.nonfinite_seeds(label, "backward" if q.startswith("grad") else "forward")
    s = result.summary(label, q)
    p = result.prediction(label, q)
    f = np.nan_to_num(result.prediction(label, _fluctuation_of(q)), nan=0.0)
    for j in range(result.n_layers):
        if not np.isfinite(p[j]):
            continue
        if bad[j]:
            failures.append(f"{label} layer {j + 1}: {bad[j]} seed(s) with inf/NaN")
            continue
        n = max(int(s.n_finite[j]), 1)
        se = s.se[j] if np.isfinite(s.se[j]) else 0.0
        tol = k * max(se, abs(p[j]) * f[j] / math.sqrt(n)) + bias * f[j] ** 2 * abs(p[j])
        tol += rounding * abs(p[j])  # an exact prediction (a LayerNorm's output) met in float
        if not abs(s.mean[j] - p[j]) <= tol:
            failures.append(
                f"{label} layer {j + 1} {q}: measured {s.mean[j]:.5g} ± {se:.2g} (SE), "
                f"predicted {p[j]:.5g}, allowed ±{tol:.2g}"
            )
    return failures
