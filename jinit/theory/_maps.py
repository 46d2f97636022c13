"""The signal-propagation maps: q-map, c-map, χ, fixed points, depth scales, phase and the
critical line (Poole et al. 2016; Schoenholz et al. 2017)."""

from __future__ import annotations

import functools
import math
import numbers
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jinit.theory._activations import (
    RULE_1D,
    Activation,
    float_dtype,
    resolve_activation,
    resolve_checked,
)
from jinit.theory._gaussian import (
    as_float,
    expect1,
    gaussian_cross_moment,
    gaussian_derivative_second_moment,
    gaussian_second_moment,
    moment_kernel,
    moments_jit,
)

# ---------------------------------------------------------------------------------------------
# q-map, c-map, χ, fixed points, depth scales, phase, critical line
# ---------------------------------------------------------------------------------------------


def q_map(activation, q, sigma_w2, sigma_b2):
    r"""The length map: next-layer pre-activation variance from this layer's.

    .. math::
        q^{l+1} = \sigma_w^2\,\mathbb E_z\big[\varphi(\sqrt{q^l} z)^2\big] + \sigma_b^2,

    for weights of variance :math:`\sigma_w^2/N` and biases of variance :math:`\sigma_b^2`
    (Poole et al. 2016). Jittable, broadcast over all array arguments.

    Examples:
      >>> from jinit import theory
      >>> print(f"{float(theory.q_map('relu', 1.0, 2.0, 0.0)):.6f}")
      1.000000

    References:
      Poole et al. (2016), *Exponential expressivity in deep neural networks through transient
      chaos*.
    """
    api = "q_map"
    resolve_checked(api, "sigma_w2", sigma_w2, kind="variance")
    resolve_checked(api, "sigma_b2", sigma_b2, kind="variance")
    resolve_checked(api, "q", q, kind="variance")
    return sigma_w2 * gaussian_second_moment(activation, q) + sigma_b2


def _chi_q_at(act: Activation, q, sigma_w2):
    """Slope of the q-map: σ_w² d/dq E[φ(√q z)²] = σ_w² E[φ(x) φ'(x) x] / q, x = √q z."""
    dtype = float_dtype()
    floor = float(np.finfo(dtype).tiny) ** 0.5
    qe = jnp.maximum(jnp.asarray(q, dtype), floor)

    def one(qq):
        (val,) = expect1(
            (lambda x: act.fn(x) * act.derivative(x) * x,), act.kinks, 0.0, jnp.sqrt(qq)
        )
        return val / qq

    return sigma_w2 * jnp.vectorize(one)(qe)


_DIVERGED = 1e30  # a q-map iterate beyond this is taken as divergence (q* = inf)


def _fixed_point(step, x0, lo, hi, max_iter: int):
    """Newton-accelerated fixed-point iteration x <- F(x) (jittable; step -> (F(x), F'(x)))."""
    dtype = float_dtype()
    rtol = 1e-13 if dtype == np.float64 else 1e-6
    atol = rtol * 1e-8
    x0 = jnp.asarray(x0, dtype)

    def cond(state):
        i, _, done = state
        return (i < max_iter) & ~done

    def body(state):
        i, x, _ = state
        fx, slope = step(x)
        newton = x + (fx - x) / jnp.where(slope < 1, 1 - slope, 1)
        use = (slope < 1 - 1e-3) & (newton >= lo) & (newton <= hi) & jnp.isfinite(newton)
        x_new = jnp.clip(jnp.where(use, newton, fx), lo, hi)
        x_new = jnp.where(x_new > _DIVERGED, jnp.inf, x_new)
        done = (jnp.abs(x_new - x) <= rtol * jnp.abs(x_new) + atol) | ~jnp.isfinite(x_new)
        return i + 1, x_new, done

    _, x, _ = jax.lax.while_loop(cond, body, (jnp.int32(0), x0, jnp.bool_(False)))
    return x


def q_star(activation, sigma_w2, sigma_b2, *, q0=1.0, max_iter: int = 500):
    r"""The fixed point of the q-map reached from ``q0``: the depth-asymptotic variance.

    Iterates :math:`q \leftarrow \sigma_w^2 \mathbb E[\varphi(\sqrt q z)^2] + \sigma_b^2` from
    ``q0`` with Newton acceleration where the map is contracting, so it returns the *stable*
    fixed point the forward pass converges to (e.g. the non-zero one of tanh with
    :math:`\sigma_w^2 > 1, \sigma_b^2 = 0`). Returns ``inf`` when the map diverges (an
    iterate beyond 1e30, e.g. relu with :math:`\sigma_w^2 > 2`), and the last iterate after
    ``max_iter`` steps at exactly critical points, where convergence is only algebraic.
    Jittable and vmappable over ``sigma_w2``, ``sigma_b2`` and ``q0``.

    Examples:
      >>> from jinit import theory
      >>> print(f"{float(theory.q_star('relu', 1.5, 0.1)):.6f}")  # σ_b² / (1 - σ_w²/2)
      0.400000
    """
    act = resolve_activation("q_star", activation)
    max_iter = _check_iter("q_star", max_iter)
    resolve_checked("q_star", "sigma_w2", sigma_w2, kind="variance")
    resolve_checked("q_star", "sigma_b2", sigma_b2, kind="variance")
    resolve_checked("q_star", "q0", q0, kind="variance")
    return _q_star_kernel(act, max_iter, *as_float(sigma_w2, sigma_b2, q0))


@functools.partial(jax.jit, static_argnums=(0, 1))
def _q_star_kernel(act, max_iter, sigma_w2, sigma_b2, q0):
    def one(sw, sb, q_init):
        def step(q):
            return q_map(act, q, sw, sb), _chi_q_at(act, q, sw)

        return _fixed_point(step, q_init, 0.0, jnp.inf, max_iter)

    return jnp.vectorize(one)(sigma_w2, sigma_b2, q0)


def _check_iter(api: str, max_iter: Any) -> int:
    if isinstance(max_iter, bool) or not isinstance(max_iter, numbers.Integral) or max_iter < 1:
        raise ValueError(f"`{api}` needs `max_iter` to be a positive int; got {max_iter!r}.")
    return int(max_iter)


def c_map(activation, c, q, sigma_w2, sigma_b2):
    r"""The correlation map between two inputs of equal variance ``q``.

    .. math::
        c^{l+1} = \frac{\sigma_w^2\,\mathbb E[\varphi(u)\varphi(v)] + \sigma_b^2}
        {\sigma_w^2\,\mathbb E[\varphi(\sqrt q z)^2] + \sigma_b^2},
        \qquad \operatorname{corr}(u, v) = c^l,\ \operatorname{Var} u = \operatorname{Var} v = q,

    usually evaluated at ``q = q*`` (Poole et al. 2016). Jittable, broadcast over arrays.

    Examples:
      >>> from jinit import theory
      >>> print(f"{float(theory.c_map('tanh', 1.0, 0.5, 1.5, 0.05)):.6f}")
      1.000000
    """
    api = "c_map"
    resolve_checked(api, "c", c, kind="correlation")
    resolve_checked(api, "q", q, kind="variance")
    resolve_checked(api, "sigma_w2", sigma_w2, kind="variance")
    resolve_checked(api, "sigma_b2", sigma_b2, kind="variance")
    num = sigma_w2 * gaussian_cross_moment(activation, q, c) + sigma_b2
    return num / q_map(activation, q, sigma_w2, sigma_b2)


def _chi_c_at(act: Activation, c, q, sigma_w2, sigma_b2):
    """Slope of the c-map at c: σ_w² q E[φ'(u)φ'(v)] / q_map(q) (Price's theorem)."""
    dd = gaussian_cross_moment(act, q, c, derivative=True)
    return sigma_w2 * q * dd / q_map(act, q, sigma_w2, sigma_b2)


def chi1(activation, sigma_w2, sigma_b2, *, q=None):
    r"""χ₁: the slope of the c-map at c = 1, i.e. the mean squared singular value of a layer.

    .. math::
        \chi_1 = \sigma_w^2\,\mathbb E_z\big[\varphi'(\sqrt{q^*} z)^2\big].

    χ₁ < 1 is the ordered phase (inputs collapse, gradients vanish), χ₁ > 1 the chaotic phase
    (inputs decorrelate, gradients explode), χ₁ = 1 the edge of chaos (Schoenholz et al. 2017).
    ``q`` defaults to :func:`q_star`. Jittable, broadcast over arrays.

    Examples:
      >>> from jinit import theory
      >>> print(f"{float(theory.chi1('relu', 2.0, 0.0)):.6f}")
      1.000000

    References:
      Schoenholz et al. (2017), *Deep Information Propagation*.
    """
    act = resolve_activation("chi1", activation)
    resolve_checked("chi1", "sigma_w2", sigma_w2, kind="variance")
    resolve_checked("chi1", "sigma_b2", sigma_b2, kind="variance")
    if q is not None:
        resolve_checked("chi1", "q", q, kind="variance")
    if q is None:
        q = q_star(act, sigma_w2, sigma_b2)  # may be inf (a diverging q-map): not re-checked
    return sigma_w2 * moment_kernel(act, RULE_1D, (2,), *as_float(q, 0.0))[..., 0]


def c_star(activation, sigma_w2, sigma_b2, *, q=None, c0=0.0, max_iter: int = 500):
    r"""The stable fixed point of the c-map reached from ``c0`` (1 in the ordered phase).

    Iterates :func:`c_map` at ``q`` (default :func:`q_star`) with Newton acceleration where the
    map is contracting. In the ordered phase this is ``c* = 1``; in the chaotic phase the
    stable ``c* < 1`` (0 for odd φ without bias). Jittable, vmappable.

    Examples:
      >>> from jinit import theory
      >>> print(f"{float(theory.c_star('tanh', 1.2, 0.1)):.6f}")
      1.000000
    """
    act = resolve_activation("c_star", activation)
    max_iter = _check_iter("c_star", max_iter)
    resolve_checked("c_star", "sigma_w2", sigma_w2, kind="variance")
    resolve_checked("c_star", "sigma_b2", sigma_b2, kind="variance")
    resolve_checked("c_star", "c0", c0, kind="correlation")
    if q is not None:
        resolve_checked("c_star", "q", q, kind="variance")
    if q is None:
        q = q_star(act, sigma_w2, sigma_b2, max_iter=max_iter)
    return _c_star_kernel(act, max_iter, *as_float(sigma_w2, sigma_b2, q, c0))


@functools.partial(jax.jit, static_argnums=(0, 1))
def _c_star_kernel(act, max_iter, sigma_w2, sigma_b2, q, c0):
    def one(sw, sb, qq, cc):
        def step(x):
            return c_map(act, x, qq, sw, sb), _chi_c_at(act, x, qq, sw, sb)

        return _fixed_point(step, cc, -1.0, 1.0, max_iter)

    return jnp.vectorize(one)(sigma_w2, sigma_b2, q, c0)


class DepthScales(NamedTuple):
    """Fixed points, slopes and depth scales of the q- and c-maps (see :func:`depth_scales`)."""

    q_star: jax.Array
    c_star: jax.Array
    chi_q: jax.Array
    chi_c: jax.Array
    xi_q: jax.Array
    xi_c: jax.Array


def _xi(chi):
    safe = jnp.where((chi > 0) & (chi < 1), chi, 0.5)
    return jnp.where((chi > 0) & (chi < 1), -1.0 / jnp.log(safe), jnp.where(chi <= 0, 0.0, jnp.inf))


def depth_scales(activation, sigma_w2, sigma_b2, *, max_iter: int = 500) -> DepthScales:
    r"""Depth scales over which lengths and correlations reach their fixed points.

    .. math::
        \chi_q = \frac{\partial q^{l+1}}{\partial q^l}\Big|_{q^*}
               = \frac{\sigma_w^2}{q^*}\,\mathbb E[\varphi(x)\varphi'(x)\,x],\qquad
        \chi_c = \sigma_w^2\,\mathbb E[\varphi'(u)\varphi'(v)]\big|_{c^*},\qquad
        \xi_q = -\frac{1}{\ln \chi_q},\quad \xi_c = -\frac{1}{\ln \chi_c},

    with :math:`x \sim \mathcal N(0, q^*)`, (u, v) at correlation c* (Schoenholz et al. 2017).
    In the ordered phase c* = 1 and χ_c = χ₁; ξ_c diverges at the edge of chaos. A slope
    ``>= 1`` (no contraction) gives an infinite depth scale. Jittable, vmappable.

    Returns:
      :class:`DepthScales` ``(q_star, c_star, chi_q, chi_c, xi_q, xi_c)``.

    Examples:
      >>> from jinit import theory
      >>> s = theory.depth_scales("relu", 1.5, 0.1)
      >>> print(f"{float(s.chi_c):.4f} {float(s.xi_c):.4f}")
      0.7500 3.4761

    References:
      Schoenholz et al. (2017), *Deep Information Propagation*.
    """
    act = resolve_activation("depth_scales", activation)
    max_iter = _check_iter("depth_scales", max_iter)
    resolve_checked("depth_scales", "sigma_w2", sigma_w2, kind="variance")
    resolve_checked("depth_scales", "sigma_b2", sigma_b2, kind="variance")
    sw, sb = as_float(sigma_w2, sigma_b2)
    shape = jnp.broadcast_shapes(sw.shape, sb.shape)
    sw, sb = jnp.broadcast_to(sw, shape).reshape(-1), jnp.broadcast_to(sb, shape).reshape(-1)
    out = _depth_scales_kernel(act, max_iter, sw, sb)
    return DepthScales(*(o.reshape(shape) for o in out))


@functools.partial(jax.jit, static_argnums=(0, 1))
def _depth_scales_kernel(act, max_iter, sigma_w2, sigma_b2):
    def one(sw, sb):
        qs = _q_star_kernel(act, max_iter, sw, sb, jnp.ones_like(sw))
        c1 = sw * gaussian_derivative_second_moment(act, qs)

        def chaotic(_):
            cs = _c_star_kernel(act, max_iter, sw, sb, qs, jnp.zeros_like(sw))
            return cs, sw * gaussian_cross_moment(act, qs, cs, derivative=True)

        def ordered(_):
            return jnp.ones_like(c1), c1

        cs, chi_c = jax.lax.cond(c1 > 1, chaotic, ordered, None)
        chi_q = _chi_q_at(act, qs, sw)
        return DepthScales(qs, cs, chi_q, chi_c, _xi(chi_q), _xi(chi_c))

    return jax.vmap(one)(sigma_w2, sigma_b2)


def host_scalar(api: str, name: str, value: Any, *, nonneg: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, np.ndarray, jax.Array)):
        raise TypeError(f"`{api}` needs `{name}` to be a real number; got {value!r}.")
    if isinstance(value, jax.core.Tracer):
        raise TypeError(f"`{api}` runs on the host; `{name}` cannot be a traced value.")
    if np.ndim(value) != 0:
        raise TypeError(f"`{api}` needs a scalar `{name}`; got shape {np.shape(value)}.")
    x = float(value)
    if not math.isfinite(x) or (nonneg and x < 0):
        raise ValueError(
            f"`{api}` needs a finite{' non-negative' if nonneg else ''} `{name}`; got {x!r}."
        )
    return x


def phase(activation, sigma_w2: float, sigma_b2: float, *, tol: float = 1e-6) -> str:
    r"""``"ordered"`` (χ₁ < 1), ``"chaotic"`` (χ₁ > 1) or ``"critical"``
    (:math:`|\chi_1 - 1| \le` ``tol``).

    χ₁ is evaluated at the stable fixed point q* (:func:`q_star`); when the q-map diverges
    (relu with :math:`\sigma_w^2 > 2`) at :math:`q = 10^6`, the large-q limit. Host-level,
    float64.

    Examples:
      >>> from jinit import theory
      >>> theory.phase("relu", 2.0, 0.0), theory.phase("tanh", 1.0, 0.5)
      ('critical', 'ordered')
    """
    act = resolve_activation("phase", activation)
    sw = host_scalar("phase", "sigma_w2", sigma_w2)
    sb = host_scalar("phase", "sigma_b2", sigma_b2)
    tol = host_scalar("phase", "tol", tol)
    with jax.enable_x64(True):
        qs = float(q_star(act, sw, sb))
        if not math.isfinite(qs):
            qs = 1e6
        c1 = float(chi1(act, sw, sb, q=qs))
    if abs(c1 - 1) <= tol:
        return "critical"
    return "ordered" if c1 < 1 else "chaotic"


class CriticalPoint(NamedTuple):
    """Weight and bias variances on the edge of chaos (see :func:`critical_point`)."""

    sigma_w2: float
    sigma_b2: float


def critical_point(activation, q_star: float) -> CriticalPoint:
    r"""(σ_w², σ_b²) on the edge of chaos with pre-activation fixed point ``q_star``.

    Solves χ₁ = 1 and q* = q_map(q*):

    .. math::
        \sigma_w^2 = \frac{1}{\mathbb E[\varphi'(\sqrt{q^*} z)^2]},\qquad
        \sigma_b^2 = q^* - \sigma_w^2\,\mathbb E[\varphi(\sqrt{q^*} z)^2]

    (the recipe of Xiao et al. 2018's reference notebook, which uses q* = 1/depth for tanh).
    Homogeneous activations (relu, leaky_relu, abs, linear) give σ_b² = 0: for relu
    (2, 0), He initialisation, whatever q*. Host-level, float64.

    Raises:
      ValueError: when σ_b² would be negative (no critical point with fixed point q*:
        sigmoid, softplus, whose large mean already exceeds q*), or for an invalid q*.

    Examples:
      >>> from jinit import theory
      >>> sw2, sb2 = theory.critical_point("relu", 1.0)
      >>> print(f"{sw2:.6f} {sb2:.6f}")
      2.000000 0.000000

    References:
      Schoenholz et al. (2017), *Deep Information Propagation*; Pennington et al. (2017),
      *Resurrecting the sigmoid in deep learning through dynamical isometry*; Xiao et al.
      (2018), *Dynamical Isometry and a Mean Field Theory of CNNs*.
    """
    api = "critical_point"
    act = resolve_activation(api, activation)
    qs = host_scalar(api, "q_star", q_star)
    if not qs > 0:
        raise ValueError(f"`{api}` needs `q_star` > 0; got {qs!r}. Pass e.g. `q_star=1.0`.")
    with jax.enable_x64(True):
        mom = np.asarray(moments_jit(act, qs, 0.0))
    m2, d2 = float(mom[1]), float(mom[2])
    if not d2 > 0:
        raise ValueError(
            f"`{api}`: E[φ'(√q* z)²] = {d2!r} for {act.name!r} at q* = {qs!r}; no weight variance "
            f"makes χ₁ = 1."
        )
    sw = 1.0 / d2
    sb = qs - sw * m2
    if sb < -1e-12 * qs:
        raise ValueError(
            f"`{api}`: {act.name!r} has no critical point with q* = {qs!r}: it needs "
            f"σ_w² = {sw:.6g}, which alone gives σ_w² E[φ²] = {sw * m2:.6g} > q*, i.e. a "
            f"negative bias variance σ_b² = {sb:.6g}. Try a larger `q_star` or a zero-mean "
            f"activation."
        )
    return CriticalPoint(sw, max(sb, 0.0))
