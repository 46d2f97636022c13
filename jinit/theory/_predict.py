"""Whole-stack predictions of the mean-field theory (:func:`jinit.theory.predict_mlp`)."""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import numpy as np

from jinit.theory._activations import resolve_activation
from jinit.theory._gaussian import moments_jit, pair_moments_jit
from jinit.theory._maps import host_scalar

# ---------------------------------------------------------------------------------------------
# Whole-stack predictions
# ---------------------------------------------------------------------------------------------


class Prediction(NamedTuple):
    r"""Mean-field prediction for an MLP, one entry per layer (float64 numpy arrays, length L).

    Attributes:
      preact_second_moment: E[(h^l)²] per unit.
      act_second_moment: E[(x^l)²], x^l = φ(h^l) (φ(LN(h^l)) with LayerNorm).
      act_mean: E[x^l] per unit.
      grad_second_moment: E[(∂L/∂h^l)²] per unit, with unit cotangent second moment on h^L.
      fluctuation: relative finite-width std of one seed's activation second moment at layer
        l (Hanin & Nica 2019 for relu; a kurtosis-based approximation otherwise).
      preact_fluctuation: the same for the pre-activation second moment.
      grad_fluctuation: the same for the gradient second moment (approximation).
    """

    preact_second_moment: np.ndarray
    act_second_moment: np.ndarray
    act_mean: np.ndarray
    grad_second_moment: np.ndarray
    fluctuation: np.ndarray
    preact_fluctuation: np.ndarray
    grad_fluctuation: np.ndarray


def _per_layer(api: str, name: str, value: Any, n_layers: int) -> np.ndarray:
    if isinstance(value, jax.core.Tracer):
        raise TypeError(f"`{api}` runs on the host; `{name}` cannot be a traced value.")
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise TypeError(
            f"`{api}` needs `{name}` to be a number or a sequence of {n_layers} numbers; got "
            f"{value!r}."
        ) from e
    if arr.ndim == 0:
        arr = np.full(n_layers, float(arr))
    if arr.shape != (n_layers,):
        raise ValueError(
            f"`{api}` needs `{name}` to have one entry per layer ({n_layers}, from `widths`); "
            f"got shape {arr.shape}."
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"`{api}` needs finite `{name}`; got {arr.tolist()}.")
    return arr


def _mix(single: float, pair: float, batch: int) -> float:
    """Noise of a batch average: 1/B of the single-input part, the rest from input pairs."""
    return single / batch + (1 - 1 / batch) * pair


def predict_mlp(
    activation,
    weight_var,
    bias_var,
    widths: Sequence[int],
    input_second_moment: float = 1.0,
    *,
    residual: bool = False,
    layernorm: bool = False,
    bias_mean=0.0,
    batch_size: int = 1,
    input_correlation: float = 0.0,
    random_input: bool = False,
    random_cotangent: bool = False,
) -> Prediction:
    r"""Mean-field prediction of forward and backward second moments through an MLP.

    The network (layers l = 1..L, widths ``(n_0, ..., n_L)``) is

    .. math::
        h^1 = W^1 x + b^1,\qquad x^l = \varphi(\tilde h^l),\qquad
        h^{l+1} = W^{l+1} x^l + b^{l+1}\ \ [+\ h^l \text{ if residual}],

    with :math:`\tilde h^l = h^l`, or with ``layernorm=True`` :math:`\tilde h^l =
    \mathrm{LN}(h^l) = (h^l - \bar h^l)/\operatorname{std}(h^l)` over the units (LayerNorm
    without affine, as at initialisation). With ``residual=True`` the block is
    :math:`h^{l+1} = h^l + W^{l+1}\varphi(\tilde h^l) + b^{l+1}` for l >= 1 (the first layer has
    no skip; a pre-LN block when combined with ``layernorm``), so every layer after the first
    needs the same width. Weights are zero-mean with variance ``weight_var[l]`` per entry (e.g.
    ``jinit.law(init, shape).variance``, 2/fan_in for ``he_normal``); biases have variance
    ``bias_var[l]`` and mean ``bias_mean[l]``.

    In the mean-field limit each unit is :math:`h^l \sim \mathcal N(m^l, v^l)` with

    .. math::
        v^l &= n_{l-1}\,\sigma^2_{w,l}\,\mathbb E[(x^{l-1})^2] + \sigma^2_{b,l}\ [+\, v^{l-1}],
        \qquad m^l = \mu_{b,l}\ [+\, m^{l-1}],\\
        \mathbb E[(x^0)^2] &= \text{input\_second\_moment},\qquad
        \mathbb E[(x^l)^2] = \mathbb E[\varphi(m^l + \sqrt{v^l} z)^2]
        \quad(\mathbb E[\varphi(z)^2] \text{ with LayerNorm}),

    and ``preact_second_moment`` is :math:`v^l + (m^l)^2` (before LN). Backward, with
    :math:`g^l = \mathbb E[(\partial L/\partial h^l)^2]` per unit and gradient independence
    (Schoenholz et al. 2017):

    .. math::
        g^L = 1,\qquad g^l = g^{l+1}\,\big([1 +]\ n_{l+1}\,\sigma^2_{w,l+1}\,
        \mathbb E[\varphi'(\tilde h^l)^2]\ [/\,v^l]_{\mathrm{LN}}\big),

    where ``[1 +]`` applies with ``residual`` and ``/ v^l`` (the LN Jacobian's scale) with
    ``layernorm``. These are infinite-width values; at width n they carry O(1/n) biases per
    layer (largest with LayerNorm, whose empirical std makes E[1/std²] > 1/v).

    **Finite-width fluctuation** (relative std of one seed's per-layer second moment, averaged
    over the units and a batch of ``batch_size`` inputs whose pairwise correlation starts at
    ``input_correlation``). With the excess kurtosis :math:`\kappa_l = \mathbb E[\varphi^4] /
    \mathbb E[\varphi^2]^2 - 1`, the log-slope :math:`\gamma_l = d\ln\mathbb E[\varphi^2]/d\ln
    v`, and the variances V of log second moments propagated by the delta method through
    independent layers:

    .. math::
        V^{act}_l = \gamma_l^2 V^{q}_l + \bar\kappa_l/n_l,\qquad
        V^{q}_{l+1} = \rho_{l+1}^2 V^{act}_l,\qquad \rho_{l+1} = 1 - \sigma^2_{b,l+1}/v^{l+1},
        \qquad \bar\kappa_l = \kappa_l / B + (1 - 1/B)\,\kappa^{pair}_l,

    where :math:`\kappa^{pair}_l = \mathbb E[\varphi(u)^2\varphi(u')^2]/\mathbb E[\varphi^2]^2 -
    1` for two inputs at the layer's correlation :math:`c^l` (tracked with the c-map), and
    ``fluctuation`` is :math:`\sqrt{e^{V^{act}_l} - 1}`. For relu without bias, a single input
    and a fixed input (the defaults; κ = 5, γ = ρ = 1) this is exactly Hanin & Nica's
    :math:`\sqrt{e^{5\sum_{k\le l} 1/n_k} - 1}`. For anything else it is an approximation,
    first order in 1/n. Its other parts:

    * the pre-activation adds the chi-square noise of the fresh weights,
      :math:`V^{pre}_l = V^q_l + \bar\kappa^h_l/n_l`, with :math:`\kappa^h = 2` for centred h;
    * residual streams add branch and cross terms;
    * LayerNorm sets γ = 0 and removes the first two Hermite components of φ² from κ, because
      it fixes Σĥ and Σĥ²;
    * ``grad_fluctuation`` uses :math:`V^g_l = V^g_{l+1} + \bar\kappa'_l/n_l` with
      :math:`\kappa' = 3\,\mathbb E[\varphi'^4]/\mathbb E[\varphi'^2]^2 - 1` (relu: 5). With
      ``residual`` this is weighted by the branch share, plus a cross term; with LayerNorm the
      noise of the empirical std is added. It ignores forward-backward correlations;
    * ``random_input`` and ``random_cotangent`` add the sampling noise of a Gaussian input and
      cotangent.

    Checked against Monte Carlo (width 256, 6 layers: relu, tanh, residual, LayerNorm, batch 1
    and 64): agreement is within about 20 %.

    Args:
      activation: a name, callable or :class:`Activation`.
      weight_var: per-layer weight variance (length L, or a scalar for every layer).
      bias_var: per-layer bias variance (length L or scalar).
      widths: ``(n_0, n_1, ..., n_L)``: the input width, then each layer's output width.
      input_second_moment: E[x_i²] of the input entries.
      residual: add the skip connection described above.
      layernorm: normalise each pre-activation over the units before φ.
      bias_mean: per-layer bias mean (length L or scalar); 0 for the usual zero-mean bias.
      batch_size: inputs averaged in each seed's statistic (fluctuations only); 1 gives the
        single-input fluctuation.
      input_correlation: correlation between two distinct inputs (fluctuations only; 0 for
        independent inputs).
      random_input: the input entries are redrawn i.i.d. Gaussian per seed; adds their
        sampling noise to the fluctuations (relative variance 2/(n_0 B) for independent
        inputs).
      random_cotangent: the cotangent on h^L is i.i.d. standard normal per seed; adds its
        sampling noise 2/(n_L B) to ``grad_fluctuation``.

    Returns:
      A :class:`Prediction` of float64 numpy arrays of length L.

    Raises:
      ValueError: inconsistent lengths, negative variances, or residual with unequal widths.
      TypeError: arguments of the wrong type.

    Examples:
      >>> from jinit import theory
      >>> p = theory.predict_mlp("relu", 2 / 512, 0.0, (512, 512, 512, 512))
      >>> p.preact_second_moment, p.grad_second_moment
      (array([2., 2., 2.]), array([1., 1., 1.]))
      >>> print(p.fluctuation.round(4))  # sqrt(exp(5 l / 512) - 1)
      [0.0991 0.1404 0.1724]

    References:
      Poole et al. (2016), *Exponential expressivity in deep neural networks through transient
      chaos*; Schoenholz et al. (2017), *Deep Information Propagation* (backward recursion);
      Hanin & Nica (2019), *Products of Many Large Random Matrices and Gradients in Deep Neural
      Networks*; Hanin (2018), *Which Neural Net Architectures Give Rise to Exploding and
      Vanishing Gradients?*
    """
    api = "predict_mlp"
    act = resolve_activation(api, activation)
    ws = _check_widths(api, widths)
    n_layers = len(ws) - 1
    wv = _per_layer(api, "weight_var", weight_var, n_layers)
    bv = _per_layer(api, "bias_var", bias_var, n_layers)
    bm = _per_layer(api, "bias_mean", bias_mean, n_layers)
    for name, arr in (("weight_var", wv), ("bias_var", bv)):
        if np.any(arr < 0):
            raise ValueError(f"`{api}` needs non-negative `{name}`; got {arr.tolist()}.")
    x2 = host_scalar(api, "input_second_moment", input_second_moment)
    rho_in = host_scalar(api, "input_correlation", input_correlation, nonneg=False)
    if not -1 <= rho_in <= 1:
        raise ValueError(f"`{api}` needs `input_correlation` in [-1, 1]; got {rho_in!r}.")
    batch = _check_batch_size(api, batch_size)
    _check_flags(api, ws, residual, layernorm, random_input, random_cotangent)

    # Exploding or vanishing stacks overflow to inf (or give nan): reported, never raised.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        return _predict_mlp(
            act,
            ws,
            wv,
            bv,
            bm,
            x2,
            rho_in,
            batch,
            residual,
            layernorm,
            random_input,
            random_cotangent,
        )


def _check_widths(api: str, widths: Any) -> list[int]:
    """``widths`` as a list of positive ints ``(n_0, ..., n_L)`` with at least one layer."""
    if isinstance(widths, (str, bytes)) or not isinstance(widths, (Sequence, np.ndarray)):
        raise TypeError(f"`{api}` needs `widths` to be a sequence of ints; got {widths!r}.")
    ws = []
    for n in widths:
        if isinstance(n, (bool, np.bool_)) or not isinstance(n, (numbers.Integral, np.integer)):
            raise TypeError(f"`{api}` needs `widths` to hold ints; got {tuple(widths)!r}.")
        if n < 1:
            raise ValueError(f"`{api}` needs positive `widths`; got {tuple(widths)!r}.")
        ws.append(int(n))
    if len(ws) < 2:
        raise ValueError(
            f"`{api}` needs `widths` = (n_0, n_1, ..., n_L) with at least one layer; got "
            f"{tuple(ws)!r}."
        )
    return ws


def _check_batch_size(api: str, batch_size: Any) -> int:
    """``batch_size`` as an int >= 1."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral):
        raise TypeError(f"`{api}` needs `batch_size` to be an int; got {batch_size!r}.")
    batch = int(batch_size)
    if batch < 1:
        raise ValueError(f"`{api}` needs `batch_size` >= 1; got {batch}.")
    return batch


def _check_flags(
    api: str, ws: list[int], residual: Any, layernorm: Any, random_input: Any, random_cotangent: Any
) -> None:
    """Checks the bool options, and equal widths after the first layer with ``residual``."""
    for name, flag in (
        ("residual", residual),
        ("layernorm", layernorm),
        ("random_input", random_input),
        ("random_cotangent", random_cotangent),
    ):
        if not isinstance(flag, (bool, np.bool_)):
            raise TypeError(f"`{api}` needs `{name}` to be a bool; got {flag!r}.")
    if residual and len(set(ws[1:])) > 1:
        raise ValueError(
            f"`{api}` with `residual=True` adds h^l to h^(l+1), so every layer after the first "
            f"needs the same width; got widths {tuple(ws)!r}."
        )


class _Forward(NamedTuple):
    """Per-layer forward quantities of :func:`_predict_mlp` (float64 arrays of length L)."""

    var: np.ndarray  # v^l
    mean: np.ndarray  # m^l
    cov: np.ndarray  # covariance of h^l between two inputs
    a2: np.ndarray  # E[φ²]
    amean: np.ndarray  # E[φ]
    d2: np.ndarray  # E[φ'²]
    phiphi: np.ndarray  # E[φ(u) φ(u')] between two inputs (batch > 1)
    gamma: np.ndarray  # d ln E[φ²] / d ln v
    k_act: np.ndarray
    k_act_pair: np.ndarray
    k_d: np.ndarray
    k_d_pair: np.ndarray


def _predict_mlp(
    act, ws, wv, bv, bm, x2, rho_in, batch, residual, layernorm, random_input, random_cotangent
) -> Prediction:
    fw = _forward(act, ws, wv, bv, bm, x2, rho_in, batch, residual, layernorm)
    pre = fw.var + fw.mean**2
    grad, steps = _backward(ws, wv, fw, residual, layernorm)
    v_act, v_pre, v_scale = _forward_fluctuations(
        ws, wv, bv, fw, pre, rho_in, batch, residual, random_input
    )
    v_grad = _grad_fluctuations(
        ws, fw, steps, v_scale, batch, residual, layernorm, random_cotangent
    )
    return Prediction(pre, fw.a2, fw.amean, grad, _rel(v_act), _rel(v_pre), _rel(v_grad))


def _forward(
    act: Any,
    ws: list[int],
    wv: np.ndarray,
    bv: np.ndarray,
    bm: np.ndarray,
    x2: float,
    rho_in: float,
    batch: int,
    residual: bool,
    layernorm: bool,
) -> _Forward:
    """Forward mean-field recursion: per-layer moments, kurtoses and pair terms."""
    L = len(ws) - 1
    var, mean, cov = np.zeros(L), np.zeros(L), np.zeros(L)
    a2, amean, d2, phiphi = np.zeros(L), np.zeros(L), np.zeros(L), np.zeros(L)
    gamma = np.zeros(L)
    k_act, k_act_pair = np.zeros(L), np.zeros(L)
    k_d, k_d_pair = np.zeros(L), np.zeros(L)
    xab = x2 * rho_in  # E[x_a x_b] between two inputs
    with jax.enable_x64(True):
        norm = np.asarray(moments_jit(act, 1.0, 0.0)) if layernorm else None
        for i in range(L):
            scale = ws[i] * wv[i]
            if residual and i > 0:
                v = var[i - 1] + scale * x2 + bv[i]
                k = cov[i - 1] + scale * xab + bv[i]
                m = mean[i - 1] + bm[i]
            else:
                v, k, m = scale * x2 + bv[i], scale * xab + bv[i], bm[i]
            c = min(max(k / v, -1.0), 1.0) if v > 0 else 1.0
            mv, mm = (1.0, 0.0) if layernorm else (v, m)
            mom = norm if layernorm else np.asarray(moments_jit(act, v, m))
            e1, e2, ed2, e4, eff, ed4, a_1, a_2 = (np.float64(t) for t in mom)
            var[i], mean[i], cov[i] = v, m, k
            a2[i], amean[i], d2[i] = e2, e1, ed2
            gamma[i] = 0.0 if (layernorm or e2 <= 0 or v <= 0) else eff / e2
            # LayerNorm fixes sum(ĥ) and sum(ĥ²), removing the 1st and 2nd Hermite components
            # of φ² from the noise of the unit average.
            h1, h2 = (a_1**2, a_2**2 / 2) if layernorm else (0.0, 0.0)
            k_act[i] = (e4 - e2**2 - h1 - h2) / e2**2 if e2 > 0 else 0.0
            k_d[i] = 3 * ed4 / ed2**2 - 1 if ed2 > 0 else 0.0
            if batch > 1:
                pp, p22, pd22 = (np.float64(t) for t in pair_moments_jit(act, mv, mm, c))
                phiphi[i] = pp
                k_act_pair[i] = (p22 - e2**2 - h1 * c - h2 * c * c) / e2**2 if e2 > 0 else 0.0
                k_d_pair[i] = pd22 / ed2**2 - 1 if ed2 > 0 else 0.0
            x2, xab = e2, phiphi[i]
    return _Forward(var, mean, cov, a2, amean, d2, phiphi, gamma, k_act, k_act_pair, k_d, k_d_pair)


def _backward(
    ws: list[int], wv: np.ndarray, fw: _Forward, residual: bool, layernorm: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Backward second moments ``grad`` and each layer's Jacobian factor ``steps``."""
    L = len(ws) - 1
    grad = np.ones(L)
    steps = np.zeros(L)
    for i in range(L - 2, -1, -1):
        step = ws[i + 2] * wv[i + 1] * fw.d2[i]
        if layernorm:  # d LN(h)/dh scales by 1/std(h); 0/0 (zero weights) stays 0
            step = step / fw.var[i] if fw.var[i] > 0 else (np.inf if step > 0 else 0.0)
        steps[i] = step
        grad[i] = grad[i + 1] * ((1 + step) if residual else step)
    return grad, steps


def _forward_fluctuations(
    ws: list[int],
    wv: np.ndarray,
    bv: np.ndarray,
    fw: _Forward,
    pre: np.ndarray,
    rho_in: float,
    batch: int,
    residual: bool,
    random_input: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Variances of the log activation, pre-activation and empirical-variance second moments."""
    L = len(ws) - 1
    var, mean, cov, a2, phiphi, gamma = fw.var, fw.mean, fw.cov, fw.a2, fw.phiphi, fw.gamma
    k_act, k_act_pair = fw.k_act, fw.k_act_pair
    v_act, v_pre, v_scale = np.zeros(L), np.zeros(L), np.zeros(L)
    v_in = _mix(2.0, 2.0 * rho_in**2, batch) / ws[0] if random_input else 0.0
    vs = 0.0  # residual stream
    for i in range(L):
        n = ws[i + 1]
        v, m, k, s2 = var[i], mean[i], cov[i], pre[i]
        c = min(max(k / v, -1.0), 1.0) if v > 0 else 1.0
        noise_act = _mix(k_act[i], k_act_pair[i], batch) / n
        if residual and i > 0 and s2 > 0:
            s_prev, v_prev, m_prev = pre[i - 1], var[i - 1], mean[i - 1]
            branch = ws[i] * wv[i] * a2[i - 1]
            g_prev = gamma[i - 1] * s_prev / v_prev if v_prev > 0 else 0.0
            c_phi = phiphi[i - 1] / a2[i - 1] if (batch > 1 and a2[i - 1] > 0) else 1.0
            c_h = (cov[i - 1] + m_prev**2) / s_prev if s_prev > 0 else 1.0
            noise_a = _mix(k_act[i - 1], k_act_pair[i - 1], batch) / ws[i]
            noise_w = _mix(2.0, 2.0 * c_phi**2, batch) / n
            cross = 4 * s_prev * branch * _mix(1.0, c_h * c_phi, batch) / (n * s2**2)
            vs = ((s_prev + branch * g_prev) / s2) ** 2 * vs
            vs += (branch / s2) ** 2 * (noise_a + noise_w) + cross
            v_pre[i] = vs
            vq = vs * (s2 / v) ** 2 if v > 0 else 0.0
        else:
            prev = v_act[i - 1] if i > 0 else v_in
            vq = ((v - bv[i]) / v) ** 2 * prev if v > 0 else 0.0
            kh = (2 * v * v + 4 * m * m * v) / s2**2 if s2 > 0 else 0.0
            kh_pair = (2 * k * k + 4 * m * m * k) / s2**2 if s2 > 0 else 0.0
            v_pre[i] = (v / s2) ** 2 * vq + _mix(kh, kh_pair, batch) / n if s2 > 0 else 0.0
            vs = v_pre[i]
        v_act[i] = gamma[i] ** 2 * vq + noise_act
        v_scale[i] = vq + _mix(2.0, 2.0 * c * c, batch) / n  # of the empirical variance of h
    return v_act, v_pre, v_scale


def _grad_fluctuations(
    ws: list[int],
    fw: _Forward,
    steps: np.ndarray,
    v_scale: np.ndarray,
    batch: int,
    residual: bool,
    layernorm: bool,
    random_cotangent: bool,
) -> np.ndarray:
    """Variances of the log gradient second moments, accumulated backward from the output."""
    L = len(ws) - 1
    v_grad = np.zeros(L)
    v_grad[L - 1] = 2.0 / (ws[L] * batch) if random_cotangent else 0.0
    for i in range(L - 2, -1, -1):
        n = ws[i + 1]
        noise = _mix(fw.k_d[i], fw.k_d_pair[i], batch) / n
        if layernorm:
            noise += v_scale[i]
        if residual:
            t = steps[i]
            share = t / (1 + t) if np.isfinite(t) else 1.0
            cross = 4 * t / ((1 + t) ** 2 * n * batch) if np.isfinite(t) else 0.0
            v_grad[i] = v_grad[i + 1] + share**2 * noise + cross
        else:
            v_grad[i] = v_grad[i + 1] + noise
    return v_grad


def _rel(vv: np.ndarray) -> np.ndarray:
    """Relative std ``sqrt(exp(V) - 1)`` of a quantity whose log has variance ``V``."""
    return np.sqrt(np.expm1(np.maximum(vv, 0.0)))
