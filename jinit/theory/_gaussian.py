"""Gaussian expectations by quadrature: the core rules, the public expectations
(:func:`jinit.theory.gaussian_expectation` and friends) and the gain."""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jinit.theory._activations import (
    BOX,
    INV_SQRT_2PI,
    RULE_1D,
    RULE_2D,
    Activation,
    ArrayLike,
    check_kinks,
    float_dtype,
    resolve_activation,
    resolve_checked,
)

# ---------------------------------------------------------------------------------------------
# Quadrature core
# ---------------------------------------------------------------------------------------------


def _grid(panels: int) -> np.ndarray:
    """Static cut points: ``panels`` equal panels on [-4, 4], graded panels out to ±10."""
    centre = np.linspace(-4.0, 4.0, panels + 1)
    tail = np.array([4.5, 5.0, 5.5, 6.0, 7.0, 8.0, 9.0, BOX])
    return np.unique(np.concatenate([-tail, centre, tail]))


def _rule_nodes(edges, nodes: int, dtype):
    """Gauss-Legendre nodes and weights on each interval of sorted ``edges`` (..., E)."""
    x, w = np.polynomial.legendre.leggauss(nodes)
    x = jnp.asarray((x + 1) / 2, dtype)
    w = jnp.asarray(w / 2, dtype)
    a, b = edges[..., :-1, None], edges[..., 1:, None]
    pts = a + (b - a) * x
    wts = (b - a) * w
    shape = (*edges.shape[:-1], -1)
    return pts.reshape(shape), wts.reshape(shape)


def _density(z):
    return jnp.exp(-0.5 * z * z) * INV_SQRT_2PI


def _cuts_with_grid(cuts, panels: int, dtype):
    """Sorted union of the static grid and traced cut points (..., K) clipped to the box."""
    grid = jnp.asarray(_grid(panels), dtype)
    cuts = jnp.clip(cuts, -BOX, BOX)
    grid = jnp.broadcast_to(grid, (*cuts.shape[:-1], grid.shape[0]))
    return jnp.sort(jnp.concatenate([grid, cuts], axis=-1), axis=-1)


def expect1(fns, kinks, loc, scale, rule=RULE_1D):
    """E[f(loc + scale z)] for each f in ``fns`` (scalars; scale >= 0)."""
    dtype = float_dtype()
    loc = jnp.asarray(loc, dtype)
    scale = jnp.asarray(scale, dtype)
    k = jnp.asarray(np.asarray(kinks, np.float64), dtype)
    pos = scale > 0
    # With scale == 0 the integrand is constant in z and any split is exact.
    t = jnp.where(pos, (k - loc) / jnp.where(pos, scale, 1), jnp.where(k >= loc, BOX, -BOX))
    z, w = _rule_nodes(_cuts_with_grid(t, rule[0], dtype), rule[1], dtype)
    dw = w * _density(z)
    x = loc + scale * z
    return tuple(jnp.sum(jnp.asarray(f(x), dtype) * dw) for f in fns)


def _expect2(f, g, kf, kg, q1, q2, c, rule=RULE_2D, loc1=0.0, loc2=0.0):
    """E[f(u) g(v)], u = m1 + √q1 z1, v = m2 + √q2 (c z1 + √(1-c²) z2); kinks kf, kg."""
    dtype = float_dtype()
    q1, q2, c, loc1, loc2 = (jnp.asarray(a, dtype) for a in (q1, q2, c, loc1, loc2))
    c = jnp.clip(c, -1, 1)
    s = jnp.sqrt(jnp.maximum(1 - c * c, 0))
    r1, r2 = jnp.sqrt(jnp.maximum(q1, 0)), jnp.sqrt(jnp.maximum(q2, 0))
    theta = jnp.arctan2(s, c)  # angle of the normal (c, s) of the v-lines, in [0, π]
    psi = jnp.where(c >= 0, theta / 2, (theta - jnp.pi) / 2)  # bisector of the two normals
    cp, sp = jnp.cos(psi), jnp.sin(psi)
    sign = jnp.where(c >= 0, 1.0, -1.0).astype(dtype)
    big = 4 * BOX  # offset of a kink line at infinity (q = 0): outside the box after clipping

    def offsets(k, loc, r):
        k = jnp.asarray(np.asarray(k, np.float64), dtype) - loc
        pos = r > 0
        return jnp.where(pos, k / jnp.where(pos, r, 1), jnp.where(k >= 0, big, -big))

    # Each kink line reads alpha x + beta y = t in the frame rotated by psi; |beta/alpha| <= 1.
    ta = offsets(kf, loc1, r1)
    tb = sign * offsets(kg, loc2, r2)
    alpha_a, beta_a = cp, -sp
    alpha_b, beta_b = sign * (c * cp + s * sp), sign * (s * cp - c * sp)
    n_a, n_b = len(kf), len(kg)
    alphas = jnp.concatenate([jnp.full((n_a,), alpha_a), jnp.full((n_b,), alpha_b)])
    betas = jnp.concatenate([jnp.full((n_a,), beta_a), jnp.full((n_b,), beta_b)])
    ts = jnp.concatenate([ta, tb])

    # Outer cuts: y where a u-line crosses a v-line (parallel lines never cross).
    det = alpha_a * beta_b - alpha_b * beta_a
    nz = det != 0
    y_cross = (alpha_a * tb[None, :] - alpha_b * ta[:, None]) / jnp.where(nz, det, 1)
    y_cross = jnp.where(nz, y_cross, BOX).reshape(-1)
    y, wy = _rule_nodes(_cuts_with_grid(y_cross, rule[0], dtype), rule[1], dtype)
    wy = wy * _density(y)

    # Inner cuts: x on every kink line at this y (sorted; the order is fixed between crossings).
    x_cuts = (ts[None, :] - betas[None, :] * y[:, None]) / alphas[None, :]
    x, wx = _rule_nodes(_cuts_with_grid(x_cuts, rule[0], dtype), rule[1], dtype)
    wx = wx * _density(x)
    z1 = x * cp - y[:, None] * sp
    z2 = x * sp + y[:, None] * cp
    u = loc1 + r1 * z1
    v = loc2 + r2 * (c * z1 + s * z2)
    vals = jnp.asarray(f(u), dtype) * jnp.asarray(g(v), dtype)
    return jnp.sum(jnp.sum(vals * wx, axis=-1) * wy)


def _check_rule(api: str, rule: Any, default: tuple[int, int]) -> tuple[int, int]:
    if rule is None:
        return default
    ok = (
        isinstance(rule, (tuple, list))
        and len(rule) == 2
        and all(isinstance(r, numbers.Integral) and not isinstance(r, bool) for r in rule)
        and all(int(r) >= 1 for r in rule)
    )
    if not ok:
        raise ValueError(
            f"`{api}` needs `rule` to be (panels, nodes) with two positive ints; got {rule!r}. "
            f"The default is {default}."
        )
    return int(rule[0]), int(rule[1])


@dataclasses.dataclass(frozen=True)
class _Power:
    """x -> fn(x) ** power (hashable, so kernels keyed by it hit the jit cache)."""

    fn: Callable
    power: int

    def __call__(self, x):
        y = self.fn(x)
        return y if self.power == 1 else y**self.power


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _kernel1(f, kinks, rule, q, shift):
    return jnp.vectorize(lambda qq, mu: expect1((f,), kinks, mu, jnp.sqrt(qq), rule)[0])(q, shift)


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _kernel2(f, kinks, rule, q, q2, c):
    return jnp.vectorize(lambda a, b, cc: _expect2(f, f, kinks, kinks, a, b, cc, rule))(q, q2, c)


def as_float(*args):
    dtype = float_dtype()
    return [jnp.asarray(a, dtype) for a in args]


_ALL_MOMENTS = tuple(range(8))


def _moments(act: Activation, v, m, rule=RULE_1D, which=_ALL_MOMENTS):
    """E over h ~ N(m, v) of (a selection of): φ, φ², φ'², φ⁴, φφ'(h-m), φ'⁴, φ²(h-m),
    φ²((h-m)² - v)."""
    f, d = act.fn, act.derivative
    fns = (
        f,
        lambda x: f(x) ** 2,
        lambda x: d(x) ** 2,
        lambda x: f(x) ** 4,
        lambda x: f(x) * d(x) * (x - m),
        lambda x: d(x) ** 4,
        lambda x: f(x) ** 2 * (x - m),
        lambda x: f(x) ** 2 * ((x - m) ** 2 - v),
    )
    chosen = tuple(fns[i] for i in which)
    return jnp.stack(expect1(chosen, act.kinks, m, jnp.sqrt(jnp.maximum(v, 0)), rule))


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def moment_kernel(act, rule, which, q, shift):
    """The moments ``which`` of :func:`_moments`, broadcast over q and shift (last axis)."""
    one = functools.partial(_moments, act, rule=rule, which=which)
    return jnp.vectorize(one, signature="(),()->(k)")(q, shift)


def moments_jit(act, v, m):
    return moment_kernel(act, RULE_1D, _ALL_MOMENTS, *as_float(v, m))


# ---------------------------------------------------------------------------------------------
# Public Gaussian expectations
# ---------------------------------------------------------------------------------------------


def gaussian_expectation(
    f: Callable | str | Activation,
    q: ArrayLike,
    *,
    shift: ArrayLike = 0.0,
    kinks: Sequence[float] | None = None,
    rule: tuple[int, int] | None = None,
) -> jax.Array:
    r"""E[f(shift + √q z)] for z ~ N(0, 1), with f split at its kinks.

    .. math::
        \mathbb E[f(\mu + \sqrt q z)] = \int f(\mu + \sqrt q z)\,
        \frac{e^{-z^2/2}}{\sqrt{2\pi}}\,dz,

    computed with composite Gauss–Legendre on ``|z| <= 10`` cut at ``z = (k - μ)/√q`` for each
    kink ``k``. Jittable, and broadcast (vmapped) over the shapes of ``q`` and ``shift``.

    Args:
      f: an element-wise function, or an activation name / :class:`Activation` (whose kinks
        are then used).
      q: variance(s) ``>= 0``.
      shift: mean(s) μ of the Gaussian argument.
      kinks: break points of ``f`` (default: the activation's, or none for a plain callable).
      rule: ``(panels, nodes)``: equal panels on ``|z| <= 4`` (graded ones beyond) and
        Gauss–Legendre nodes per panel; default ``(32, 20)``.

    Returns:
      An array of the broadcast shape of ``q`` and ``shift`` (float64 under x64, else float32).

    Examples:
      >>> from jinit import theory
      >>> print(f"{float(theory.gaussian_expectation(lambda x: x**4, 2.0)):.6f}")
      12.000000
    """
    api = "gaussian_expectation"
    if isinstance(f, (str, Activation)):
        act = resolve_activation(api, f)
        fn, k = act.fn, act.kinks if kinks is None else check_kinks(api, kinks)
    elif callable(f):
        fn, k = f, () if kinks is None else check_kinks(api, kinks)
    else:
        raise TypeError(f"`{api}` needs a callable `f`; got {f!r} of type {type(f).__name__}.")
    q, shift = resolve_checked(api, "q", q, kind="variance"), resolve_checked(api, "shift", shift)
    return _kernel1(fn, k, _check_rule(api, rule, RULE_1D), *as_float(q, shift))


def gaussian_mean(
    activation: str | Callable | Activation,
    q: ArrayLike,
    *,
    shift: ArrayLike = 0.0,
    rule: tuple[int, int] | None = None,
) -> jax.Array:
    r"""E[φ(shift + √q z)], z ~ N(0, 1): the mean of an activation (jittable, vmappable).

    Same quadrature and arguments as :func:`gaussian_expectation`.

    Examples:
      >>> import math
      >>> from jinit import theory
      >>> print(f"{float(theory.gaussian_mean('relu', 1.0)) * math.sqrt(2 * math.pi):.6f}")
      1.000000
    """
    act = resolve_activation("gaussian_mean", activation)
    r = _check_rule("gaussian_mean", rule, RULE_1D)
    q = resolve_checked("gaussian_mean", "q", q, kind="variance")
    shift = resolve_checked("gaussian_mean", "shift", shift)
    return moment_kernel(act, r, (0,), *as_float(q, shift))[..., 0]


def gaussian_second_moment(
    activation: str | Callable | Activation,
    q: ArrayLike,
    *,
    shift: ArrayLike = 0.0,
    rule: tuple[int, int] | None = None,
) -> jax.Array:
    r"""E[φ(shift + √q z)²], z ~ N(0, 1) (jittable, vmappable over q and shift).

    Same quadrature and arguments as :func:`gaussian_expectation`.

    Examples:
      >>> from jinit import theory
      >>> print(f"{float(theory.gaussian_second_moment('relu', 1.0)):.6f}")
      0.500000
    """
    act = resolve_activation("gaussian_second_moment", activation)
    r = _check_rule("gaussian_second_moment", rule, RULE_1D)
    q = resolve_checked("gaussian_second_moment", "q", q, kind="variance")
    shift = resolve_checked("gaussian_second_moment", "shift", shift)
    return moment_kernel(act, r, (1,), *as_float(q, shift))[..., 0]


def gaussian_derivative_second_moment(
    activation: str | Callable | Activation,
    q: ArrayLike,
    *,
    shift: ArrayLike = 0.0,
    rule: tuple[int, int] | None = None,
) -> jax.Array:
    r"""E[φ'(shift + √q z)²], z ~ N(0, 1): the per-layer gradient gain (jittable, vmappable).

    Same quadrature and arguments as :func:`gaussian_expectation`; φ' jumps at the kinks.

    Examples:
      >>> from jinit import theory
      >>> print(f"{float(theory.gaussian_derivative_second_moment('relu', 3.0)):.6f}")
      0.500000
    """
    act = resolve_activation("gaussian_derivative_second_moment", activation)
    r = _check_rule("gaussian_derivative_second_moment", rule, RULE_1D)
    q = resolve_checked("gaussian_derivative_second_moment", "q", q, kind="variance")
    shift = resolve_checked("gaussian_derivative_second_moment", "shift", shift)
    return moment_kernel(act, r, (2,), *as_float(q, shift))[..., 0]


def gaussian_cross_moment(
    activation: str | Callable | Activation,
    q: ArrayLike,
    c: ArrayLike,
    *,
    q2: ArrayLike | None = None,
    derivative: bool = False,
    rule: tuple[int, int] | None = None,
) -> jax.Array:
    r"""E[φ(u)φ(v)] for centred Gaussians u, v of variances q, q2 and correlation c.

    .. math::
        \mathbb E[\varphi(u)\varphi(v)],\qquad u = \sqrt{q}\,z_1,\quad
        v = \sqrt{q_2}\,\big(c z_1 + \sqrt{1 - c^2}\, z_2\big).

    With ``derivative=True`` it is E[φ'(u)φ'(v)] (the slope of the c-map, by Price's
    theorem). The 2-D integral is split along the kink lines of both factors (see the module
    docstring), so it is exact for kinked φ and at any ``c`` in [-1, 1]. Jittable, broadcast
    (vmapped) over ``q``, ``c`` and ``q2``.

    Args:
      activation: a name, callable or :class:`Activation`.
      q: variance of u (``>= 0``).
      c: correlation in [-1, 1] (clipped).
      q2: variance of v; defaults to ``q``.
      derivative: integrate φ' instead of φ.
      rule: ``(panels, nodes)`` in each direction, as in :func:`gaussian_expectation`;
        default ``(16, 12)``.

    Returns:
      An array of the broadcast shape of ``q``, ``c`` and ``q2``.

    Examples:
      >>> import math
      >>> from jinit import theory
      >>> k = float(theory.gaussian_cross_moment("relu", 1.0, 0.0))  # arc-cosine kernel, c=0
      >>> print(f"{k * 2 * math.pi:.6f}")
      1.000000

    References:
      Cho & Saul (2009), *Kernel Methods for Deep Learning* (the relu closed form).
    """
    api = "gaussian_cross_moment"
    act = resolve_activation(api, activation)
    r = _check_rule(api, rule, RULE_2D)
    f = act.derivative if derivative else act.fn
    q = resolve_checked(api, "q", q, kind="variance")
    c = resolve_checked(api, "c", c, kind="correlation")
    q2 = q if q2 is None else resolve_checked(api, "q2", q2, kind="variance")
    return _kernel2(f, act.kinks, r, *as_float(q, q2, c))


# ---------------------------------------------------------------------------------------------
# Gain
# ---------------------------------------------------------------------------------------------


def gain(activation: str | Callable | Activation) -> float:
    r"""Weight-std multiplier that keeps the pre-activation second moment at 1 (zero bias).

    With weights of variance :math:`g^2/\mathrm{fan\_in}` and no bias, the q-map is
    :math:`q \mapsto g^2\,\mathbb E[\varphi(\sqrt q z)^2]`; ``q = 1`` is a fixed point iff

    .. math::
        g = 1 / \sqrt{\mathbb E[\varphi(z)^2]},\qquad z \sim \mathcal N(0, 1).

    Computed in float64. Compare ``torch.nn.init.calculate_gain``:

    ===============  ==========================  =====================================
    activation       ``jinit.theory.gain``       ``torch.nn.init.calculate_gain``
    ===============  ==========================  =====================================
    linear           1                           1
    relu             √2 = 1.41421356             √2
    leaky_relu(a)    √(2/(1+a²))                 √(2/(1+a²))
    tanh             1.5925374197                5/3 = 1.6667
    selu             1                           3/4
    sigmoid          1.8462285                   1
    gelu             1.5335304412                (unsupported)
    silu             1.6765324703                (unsupported)
    ===============  ==========================  =====================================

    They agree where the second moment is exactly homogeneous (linear, relu, leaky_relu). The
    others differ because torch's values are rules of thumb, not solutions of a second-moment
    condition: tanh's 5/3 and sigmoid's 1 come with no derivation, and selu's 3/4 was "found
    empirically" (pytorch/pytorch PR 50664; torch itself recommends ``'linear'`` for
    self-normalising nets, which matches the exact value 1 here).
    The values here are exact for a unit second moment; they do not make the network critical
    (tanh at this gain has χ₁ ≈ 1.18, slightly chaotic; see :func:`critical_point`).

    Args:
      activation: a name, callable or :class:`Activation`.

    Returns:
      The gain as a Python float.

    Examples:
      >>> from jinit import theory
      >>> print(f"{theory.gain('relu'):.10f}")
      1.4142135624
      >>> print(f"{theory.gain('tanh'):.10f}")
      1.5925374197
    """
    act = resolve_activation("gain", activation)
    with jax.enable_x64(True):
        m2 = float(moment_kernel(act, RULE_1D, (1,), *as_float(1.0, 0.0))[0])
    if not m2 > 0 or not math.isfinite(m2):
        raise ValueError(
            f"`gain` needs E[φ(z)²] to be positive and finite; got {m2!r} for {act.name!r}."
        )
    return 1.0 / math.sqrt(m2)


# ---------------------------------------------------------------------------------------------
# Moments used by the host-level functions (one jitted call per activation and precision)
# ---------------------------------------------------------------------------------------------


def _pair_moments(act: Activation, v, m, c):
    """E over (u, w) ~ N(m, v) at correlation c of: φ(u)φ(w), φ(u)²φ(w)², φ'(u)²φ'(w)²."""
    f, d = act.fn, act.derivative
    k = act.kinks
    return jnp.stack(
        [
            _expect2(f, f, k, k, v, v, c, RULE_2D, m, m),
            _expect2(_Power(f, 2), _Power(f, 2), k, k, v, v, c, RULE_2D, m, m),
            _expect2(_Power(d, 2), _Power(d, 2), k, k, v, v, c, RULE_2D, m, m),
        ]
    )


pair_moments_jit = jax.jit(_pair_moments, static_argnums=0)
