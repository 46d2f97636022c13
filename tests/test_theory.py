"""Tests of jinit.theory: Gaussian moments against closed forms and scipy quadrature, gains, the
q/c-maps and their fixed points, the edge of chaos, and whole-stack MLP predictions (against a
hand-written recursion and against Monte Carlo networks)."""

import math
import warnings

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate

from jinit import theory

# Closed forms and quad oracles are compared at this absolute/relative level (the brief's bar);
# the kink-aware rules reach ~1e-15, so 1e-9 leaves room only for the oracle's own error.
TOL = 1e-9

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


# ---------------------------------------------------------------------------------------------
# Independent scalar (math-module) definitions of every known activation, for the quad oracles
# ---------------------------------------------------------------------------------------------


def _sig(x):
    return 1 / (1 + math.exp(-x)) if x >= 0 else math.exp(x) / (1 + math.exp(x))


def _softplus(x):
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


def _gelu_tanh(x):
    a, b = math.sqrt(2 / math.pi), 0.044715
    return 0.5 * x * (1 + math.tanh(a * (x + b * x**3)))


def _gelu_tanh_d(x):
    a, b = math.sqrt(2 / math.pi), 0.044715
    t = math.tanh(a * (x + b * x**3))
    return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * a * (1 + 3 * b * x * x)


def _mish_d(x):
    t = math.tanh(_softplus(x))
    return t + x * (1 - t * t) * _sig(x)


# name -> (φ, φ', kinks)
SCALAR = {
    "relu": (lambda x: max(x, 0.0), lambda x: float(x > 0), (0.0,)),
    "leaky_relu": (lambda x: x if x >= 0 else 0.01 * x, lambda x: 1.0 if x > 0 else 0.01, (0.0,)),
    "elu": (
        lambda x: x if x > 0 else math.expm1(x),
        lambda x: 1.0 if x > 0 else math.exp(x),
        (0.0,),
    ),
    "selu": (
        lambda x: SELU_SCALE * (x if x > 0 else SELU_ALPHA * math.expm1(x)),
        lambda x: SELU_SCALE * (1.0 if x > 0 else SELU_ALPHA * math.exp(x)),
        (0.0,),
    ),
    "gelu": (
        lambda x: 0.5 * x * (1 + math.erf(x / math.sqrt(2))),
        lambda x: (
            0.5 * (1 + math.erf(x / math.sqrt(2)))
            + x * math.exp(-x * x / 2) / math.sqrt(2 * math.pi)
        ),
        (),
    ),
    "gelu_tanh": (_gelu_tanh, _gelu_tanh_d, ()),
    "silu": (lambda x: x * _sig(x), lambda x: _sig(x) * (1 + x * (1 - _sig(x))), ()),
    "tanh": (math.tanh, lambda x: 1 - math.tanh(x) ** 2, ()),
    "sigmoid": (_sig, lambda x: _sig(x) * (1 - _sig(x)), ()),
    "softplus": (_softplus, _sig, ()),
    "erf": (math.erf, lambda x: 2 / math.sqrt(math.pi) * math.exp(-x * x), ()),
    "linear": (lambda x: x, lambda x: 1.0, ()),
    "abs": (abs, lambda x: math.copysign(1.0, x), (0.0,)),
    "relu6": (lambda x: min(max(x, 0.0), 6.0), lambda x: float(0 < x < 6), (0.0, 6.0)),
    "hard_tanh": (lambda x: min(max(x, -1.0), 1.0), lambda x: float(abs(x) < 1), (-1.0, 1.0)),
    "hard_sigmoid": (
        lambda x: min(max(x + 3, 0.0), 6.0) / 6,
        lambda x: 1 / 6 if abs(x) < 3 else 0.0,
        (-3.0, 3.0),
    ),
    "hard_silu": (
        lambda x: x * min(max(x + 3, 0.0), 6.0) / 6,
        lambda x: 1.0 if x >= 3 else (0.0 if x <= -3 else (2 * x + 3) / 6),
        (-3.0, 3.0),
    ),
    "mish": (lambda x: x * math.tanh(_softplus(x)), _mish_d, ()),
}


def _quad(g, points, lo=-12.0, hi=12.0):
    """∫ g(z) φ(z) dz on [lo, hi] split at the points (scipy QUADPACK, adaptive)."""
    edges = [lo, *sorted(p for p in points if lo < p < hi), hi]
    total = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a QUADPACK warning would make the oracle unreliable
        for a, b in zip(edges[:-1], edges[1:], strict=True):
            val, _ = integrate.quad(
                lambda z: g(z) * math.exp(-z * z / 2) / math.sqrt(2 * math.pi),
                a,
                b,
                epsabs=1e-12,  # far below TOL, and reachable without roundoff warnings
                epsrel=1e-11,
                limit=200,
            )
            total += val
    return total


def _quad1(fn, kinks, q, shift=0.0):
    r = math.sqrt(q)
    return _quad(lambda z: fn(shift + r * z), [(k - shift) / r for k in kinks])


def _quad2(f, kinks, q1, q2, c):
    """E[f(u) f(v)] by nested quad: inner over z2 split at the v-kinks, outer at the u-kinks."""
    r1, r2, s = math.sqrt(q1), math.sqrt(q2), math.sqrt(1 - c * c)

    def inner(z1):
        pts = [(k / r2 - c * z1) / s for k in kinks]
        return _quad(lambda z2: f(r2 * (c * z1 + s * z2)), pts)

    # the outer integrand is smooth apart from the u-kinks; near-kinks of the inner one sit at
    # z1 = k / (r2 c), which we also split at.
    pts = [k / r1 for k in kinks] + [k / (r2 * c) for k in kinks if c != 0]
    return _quad(lambda z1: f(r1 * z1) * inner(z1), pts)


# ---------------------------------------------------------------------------------------------
# Closed-form oracles (float64)
# ---------------------------------------------------------------------------------------------


def _arccos_kernel(q1, q2, c):
    """Cho & Saul (2009): E[relu(u) relu(v)]."""
    return np.sqrt(q1 * q2) / (2 * np.pi) * (np.sqrt(1 - c**2) + (np.pi - np.arccos(c)) * c)


def _erf_kernel(q1, q2, c):
    """E[erf(u) erf(v)] = (2/π) arcsin(2 c √(q1 q2) / √((1 + 2 q1)(1 + 2 q2)))."""
    return 2 / np.pi * np.arcsin(2 * c * np.sqrt(q1 * q2) / np.sqrt((1 + 2 * q1) * (1 + 2 * q2)))


def _leaky_kernel(q, c, a):
    """a² q c + a (1 - a) q c + (1 - a)² E[relu relu]; DKS's normalised C-map times E[φ²]."""
    return a * q * c + (1 - a) ** 2 * _arccos_kernel(q, q, c)


QS = np.array([0.05, 0.5, 1.0, 4.0, 25.0])
CS = np.array([-1.0, -0.999999, -0.9, -0.3, 0.0, 0.4, 0.9, 0.99, 0.999999, 1.0])


@pytest.mark.parametrize(
    "name, derivative, oracle",
    [
        ("relu", False, lambda q1, q2, c: _arccos_kernel(q1, q2, c)),
        ("relu", True, lambda q1, q2, c: (np.pi - np.arccos(c)) / (2 * np.pi)),
        ("erf", False, _erf_kernel),
        (
            "abs",
            False,
            lambda q1, q2, c: 2 * np.sqrt(q1 * q2) / np.pi * (np.sqrt(1 - c**2) + c * np.arcsin(c)),
        ),
    ],
)
def test_cross_moment_closed_forms(name, derivative, oracle):
    with jax.enable_x64(True):
        q1, c = np.meshgrid(QS, CS, indexing="ij")
        q2 = q1[::-1]  # unequal variances too
        got = np.asarray(theory.gaussian_cross_moment(name, q1, c, q2=q2, derivative=derivative))
    assert got.dtype == np.float64 and got.shape == q1.shape
    want = oracle(q1, q2, c)
    scale = 1 if derivative or name == "erf" else np.sqrt(q1 * q2)  # homogeneous of degree 1
    np.testing.assert_allclose(got / scale, want / scale, rtol=0, atol=TOL)


@pytest.mark.parametrize("slope", [-0.5])
def test_leaky_relu_kernel(slope):
    with jax.enable_x64(True):
        act = theory.activation("leaky_relu", negative_slope=slope)
        got = np.asarray(theory.gaussian_cross_moment(act, 1.7, CS))
        m2 = float(theory.gaussian_second_moment(act, 1.7))
    np.testing.assert_allclose(got, _leaky_kernel(1.7, CS, slope), rtol=0, atol=TOL)
    assert abs(m2 - 1.7 * (1 + slope**2) / 2) < TOL


def test_relu_moments_and_selu_fixed_point():
    with jax.enable_x64(True):
        q = np.array([0.0, 1e-6, 1.0, 3.0, 1e4])
        m2 = np.asarray(theory.gaussian_second_moment("relu", q))
        m1 = np.asarray(theory.gaussian_mean("relu", q))
        d2 = np.asarray(theory.gaussian_derivative_second_moment("relu", q[1:]))
        selu_m1 = float(theory.gaussian_mean("selu", 1.0))
        selu_m2 = float(theory.gaussian_second_moment("selu", 1.0))
    np.testing.assert_allclose(m2, q / 2, rtol=TOL, atol=0)  # E[relu(z)²] = 1/2, scaled
    np.testing.assert_allclose(m1, np.sqrt(q / (2 * np.pi)), rtol=TOL, atol=0)
    np.testing.assert_allclose(d2, 0.5, rtol=0, atol=TOL)
    assert abs(selu_m1) < TOL  # SELU's constants make N(0, 1) a fixed point
    assert abs(selu_m2 - 1) < TOL


@pytest.mark.parametrize("name", sorted(SCALAR))
def test_one_dim_moments_match_quad(name):
    fn, dfn, kinks = SCALAR[name]
    q = np.array([0.25, 1.0, 7.0, 7.0])
    shift = np.array([0.0, 0.0, 0.0, -0.8])  # the last one: a biased pre-activation
    with jax.enable_x64(True):
        got_m1 = np.asarray(theory.gaussian_mean(name, q, shift=shift))
        got_m2 = np.asarray(theory.gaussian_second_moment(name, q, shift=shift))
        got_d2 = np.asarray(theory.gaussian_derivative_second_moment(name, q, shift=shift))
    for i in range(len(q)):
        want = (
            _quad1(fn, kinks, q[i], shift[i]),
            _quad1(lambda x: fn(x) ** 2, kinks, q[i], shift[i]),
            _quad1(lambda x: dfn(x) ** 2, kinks, q[i], shift[i]),
        )
        for g, w in zip((got_m1[i], got_m2[i], got_d2[i]), want, strict=True):
            assert abs(g - w) <= TOL * max(1.0, abs(w)), (name, q[i], shift[i], g, w)


@pytest.mark.parametrize(
    "name, q1, q2, c, derivative",
    [
        ("tanh", 2.0, 2.0, 0.6, False),
        ("tanh", 0.7, 1.9, -0.85, True),
        ("hard_tanh", 3.0, 3.0, 0.95, False),
        ("relu6", 20.0, 9.0, -0.4, False),
        ("elu", 1.3, 2.5, 0.3, True),
    ],
)
def test_cross_moment_matches_nested_quad(name, q1, q2, c, derivative):
    fn, dfn, kinks = SCALAR[name]
    with jax.enable_x64(True):
        got = float(theory.gaussian_cross_moment(name, q1, c, q2=q2, derivative=derivative))
    want = _quad2(dfn if derivative else fn, kinks, q1, q2, c)
    assert abs(got - want) <= TOL * max(1.0, abs(want)), (got, want)


def test_cross_moment_limits_c_equal_one_and_zero():
    # c = 1: E[φ(u)²]; c = 0: E[φ]². Checks the parallel-lines and perpendicular cases.
    with jax.enable_x64(True):
        for name in ("relu6", "tanh"):
            q = np.full(2, 2.3)
            m1 = float(theory.gaussian_mean(name, q)[0])
            m2 = float(theory.gaussian_second_moment(name, q)[0])
            k = np.asarray(theory.gaussian_cross_moment(name, q, np.array([1.0, 0.0])))
            assert abs(k[0] - m2) < TOL and abs(k[1] - m1**2) < TOL, name


def test_declared_kinks_matter():
    # A kink away from the static grid: without declaring it the rule converges only slowly.
    shifted = lambda x: jnp.maximum(x - 0.3, 0) ** 2  # noqa: E731
    want = _quad1(lambda x: max(x - 0.3, 0.0) ** 2, (0.3,), 1.0)
    with jax.enable_x64(True):
        blind = float(theory.gaussian_expectation(shifted, 1.0))
        told = float(theory.gaussian_expectation(shifted, 1.0, kinks=(0.3,)))
    assert abs(told - want) < 1e-11  # the oracle's own tolerance
    assert abs(blind - want) > 1e-9


@jax.enable_x64(False)  # whatever the session's default, this test is about float32
def test_float32_mode_is_accurate_to_1e6():
    q, c = np.meshgrid(QS, CS, indexing="ij")
    got = theory.gaussian_cross_moment("relu", q, c)
    got_erf = theory.gaussian_cross_moment("erf", q, c)
    assert got.dtype == jnp.float32 and got_erf.dtype == jnp.float32
    # float32 rounding of ~1e3 summed terms: a few ulps of 6e-8 relative.
    np.testing.assert_allclose(np.asarray(got) / q, _arccos_kernel(q, q, c) / q, rtol=0, atol=1e-6)
    np.testing.assert_allclose(np.asarray(got_erf), _erf_kernel(q, q, c), rtol=0, atol=1e-6)
    assert (
        abs(float(theory.gaussian_second_moment("tanh", 1.0)) - 1 / theory.gain("tanh") ** 2) < 1e-6
    )


def test_jit_vmap_and_broadcasting():
    with jax.enable_x64(True):
        qs = jnp.linspace(0.1, 5.0, 7)
        cs = jnp.linspace(-0.9, 0.9, 5)
        f = jax.jit(jax.vmap(lambda q: theory.gaussian_second_moment("tanh", q)))
        batched = np.asarray(f(qs))
        looped = np.array([float(theory.gaussian_second_moment("tanh", float(q))) for q in qs])
        np.testing.assert_allclose(batched, looped, rtol=1e-13)
        g = jax.jit(
            jax.vmap(
                jax.vmap(lambda q, c: theory.gaussian_cross_moment("relu", q, c), (None, 0)),
                (0, None),
            )
        )
        grid = np.asarray(g(qs, cs))
        chex.assert_shape(grid, (7, 5))
        q64, c64 = np.asarray(qs)[:, None], np.asarray(cs)[None, :]
        np.testing.assert_allclose(grid, _arccos_kernel(q64, q64, c64), atol=TOL)
        # broadcasting without vmap gives the same grid
        direct = np.asarray(theory.gaussian_cross_moment("relu", qs[:, None], cs[None, :]))
        np.testing.assert_allclose(direct, grid, rtol=1e-13)
        # jax.grad through the quadrature: d/dq E[relu(√q z)²] = 1/2
        dq = float(jax.grad(lambda q: theory.gaussian_second_moment("relu", q))(1.3))
        assert abs(dq - 0.5) < TOL


# ---------------------------------------------------------------------------------------------
# Activation records
# ---------------------------------------------------------------------------------------------

KINKS = {name: kinks for name, (_, _, kinks) in SCALAR.items()}


@pytest.mark.parametrize("name", sorted(SCALAR))
def test_activation_table_derivatives_and_kinks(name):
    act = theory.activation(name)
    assert act.name == name and act.kinks == KINKS[name]
    xs = np.array([-7.3, -2.9, -1.2, -0.4, 0.35, 0.9, 1.7, 3.4, 5.6, 6.3])
    with jax.enable_x64(True):
        evaluate = jax.jit(lambda x: (jax.vmap(jax.grad(act.fn))(x), act.derivative(x), act(x)))
        auto, exact, vals = (np.asarray(a) for a in evaluate(jnp.asarray(xs)))
    np.testing.assert_allclose(exact, auto, rtol=1e-12, atol=1e-14)  # away from the kinks
    np.testing.assert_allclose(vals, [SCALAR[name][0](x) for x in xs], rtol=1e-12, atol=1e-14)


def test_activation_aliases_params_and_equality():
    assert theory.activation("swish") == theory.activation("silu")
    assert theory.activation("identity") == theory.activation("linear")
    assert theory.activation("hard_swish").name == "hard_silu"
    a = theory.activation("leaky_relu", negative_slope=0.2)
    assert a == theory.activation("leaky_relu", negative_slope=0.2)
    assert a != theory.activation("leaky_relu")
    assert hash(a) == hash(theory.activation("leaky_relu", negative_slope=0.2))
    assert a.params == (("negative_slope", 0.2),)
    assert theory.activation("elu", alpha=0.5)(-1e9) == pytest.approx(-0.5)
    assert theory.activation(a) is a
    for name in theory.ACTIVATION_NAMES:
        assert isinstance(theory.activation(name), theory.Activation)
    # well-known jax callables carry their kinks
    assert theory.activation(jax.nn.relu).kinks == (0.0,)
    assert theory.activation(jax.nn.relu6).kinks == (0.0, 6.0)
    assert theory.activation(jax.nn.gelu).name == "gelu_tanh"  # jax's default is approximate
    # user callables: kinks declared, derivative by autodiff; equal records for the same fn
    f = lambda x: jnp.abs(x - 1.0)  # noqa: E731
    u = theory.activation(f, kinks=(1.0,), name="shifted_abs")
    assert u == theory.activation(f, kinks=[1.0], name="shifted_abs")
    assert float(u.derivative(3.0)) == 1.0 and float(u.derivative(0.0)) == -1.0
    with jax.enable_x64(True):
        # usable as a jit static argument (hashable)
        assert (
            abs(float(theory.gaussian_mean(u, 1.0)) - _quad1(lambda x: abs(x - 1), (1,), 1.0)) < TOL
        )


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (
            lambda: theory.activation("relu7"),
            ValueError,
            r"`activation` does not know the activation 'relu7'",
        ),
        (lambda: theory.activation("relu", alpha=1.0), ValueError, r"unknown parameter"),
        (lambda: theory.activation("relu", kinks=(0.0,)), TypeError, r"only for callables"),
        (lambda: theory.activation(3), TypeError, r"needs a name"),
        (lambda: theory.activation("elu", alpha="big"), TypeError, r"`alpha`"),
        (lambda: theory.activation(jnp.tanh, kinks=("a",)), TypeError, r"`kinks`"),
        (lambda: theory.activation(jnp.tanh, kinks=(math.inf,)), ValueError, r"finite"),
        (lambda: theory.gaussian_mean(1.0, 1.0), TypeError, r"`gaussian_mean`"),
        (lambda: theory.gaussian_mean("relu", 1.0, rule=(0, 3)), ValueError, r"`rule`"),
    ],
)
def test_activation_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


# ---------------------------------------------------------------------------------------------
# Gains
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, want",
    [
        ("relu", math.sqrt(2)),
        ("tanh", 1.5925374197),
        ("gelu", 1.5335304412),
        ("silu", 1.6765324703),
        ("selu", 1.0),
        ("linear", 1.0),
        ("leaky_relu", math.sqrt(2 / (1 + 0.01**2))),
    ],
)
def test_gain(name, want):
    # the published values carry 10 decimals: compare to 1e-10 (relu/selu/linear are exact)
    assert abs(theory.gain(name) - want) < 1e-9


@pytest.mark.parametrize(
    "name, gamma",
    [
        ("gelu", 1.7015043497085571),
        ("silu", 1.7881293296813965),
        ("tanh", 1.5939117670059204),
        ("softplus", 1.9203323125839233),
        ("sigmoid", 4.803835391998291),
        ("elu", 1.2716004848480225),
    ],
)
def test_nfnets_gamma_regression(name, gamma):
    # NFNets' γ = 1/std(φ(z)) are empirical (measured agreement 3-9e-4 relative): rtol 2e-3.
    with jax.enable_x64(True):
        var = (
            float(theory.gaussian_second_moment(name, 1.0))
            - float(theory.gaussian_mean(name, 1.0)) ** 2
        )
    assert abs(1 / math.sqrt(var) / gamma - 1) < 2e-3
    if name == "tanh":  # and the exact relu value NFNets is 6e-4 off from
        with jax.enable_x64(True):
            m1, m2 = theory.gaussian_mean("relu", 1.0), theory.gaussian_second_moment("relu", 1.0)
        exact = 1 / math.sqrt(0.5 - 1 / (2 * math.pi))
        assert abs(1 / math.sqrt(float(m2) - float(m1) ** 2) - exact) < TOL


# ---------------------------------------------------------------------------------------------
# q-map, c-map, fixed points, phase, critical line
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sw, sb", [(1.5, 0.1), (1.0, 0.5), (1.9, 0.02)])
def test_relu_maps_closed_form(sw, sb):
    with jax.enable_x64(True):
        qs = float(theory.q_star("relu", sw, sb))
        s = theory.depth_scales("relu", sw, sb)
        c1 = float(theory.chi1("relu", sw, sb))
        cm = float(theory.c_map("relu", 0.3, qs, sw, sb))
    assert abs(qs - sb / (1 - sw / 2)) < TOL * qs
    assert abs(c1 - sw / 2) < TOL and abs(float(s.chi_c) - sw / 2) < TOL
    assert abs(float(s.chi_q) - sw / 2) < TOL  # homogeneous: the q-map is linear
    assert abs(float(s.xi_c) + 1 / math.log(sw / 2)) < 1e-7 * float(s.xi_c)
    assert float(s.c_star) == 1.0
    want = (sw * _arccos_kernel(qs, qs, 0.3) + sb) / qs
    assert abs(cm - want) < TOL


def test_tanh_fixed_points_and_depth_scales():
    with jax.enable_x64(True):
        # ordered: Schoenholz et al.'s example, q* = 0.418, χ₁ = 0.939 (reference notebook)
        s = theory.depth_scales("tanh", 1.5, 0.05)
        qs = float(s.q_star)
        assert abs(float(theory.q_map("tanh", qs, 1.5, 0.05)) - qs) < 1e-12
        assert abs(qs - 0.418) < 5e-4 and abs(float(s.chi_c) - 0.939) < 5e-4
        # χ_q is the slope of the q-map at q*: central finite difference, error O(h²) ~ 1e-10
        h = 1e-5
        fd = (
            float(theory.q_map("tanh", qs + h, 1.5, 0.05))
            - float(theory.q_map("tanh", qs - h, 1.5, 0.05))
        ) / (2 * h)
        assert abs(float(s.chi_q) - fd) < 1e-8
        assert abs(float(s.xi_q) + 1 / math.log(fd)) < 1e-6
        # chaotic: a stable c* < 1 with a contracting slope
        ch = theory.depth_scales("tanh", 4.0, 0.05)
        cs = float(ch.c_star)
        assert 0 < cs < 1
        assert abs(float(theory.c_map("tanh", cs, float(ch.q_star), 4.0, 0.05)) - cs) < 1e-12
        assert 0 < float(ch.chi_c) < 1 and math.isfinite(float(ch.xi_c))
        assert float(theory.chi1("tanh", 4.0, 0.05)) > 1
        # odd φ without bias in the chaotic phase: c* = 0
        assert abs(float(theory.c_star("tanh", 3.0, 0.0))) < 1e-12
        # c = 1 is always a fixed point of the c-map
        assert abs(float(theory.c_map("tanh", 1.0, qs, 1.5, 0.05)) - 1) < 1e-12


def test_q_star_special_cases_and_vmap():
    with jax.enable_x64(True):
        assert math.isinf(float(theory.q_star("relu", 3.0, 0.0)))  # exploding forward pass
        assert float(theory.q_star("relu", 1.0, 0.0)) < 1e-12  # vanishing to 0
        # tanh without bias, σ_w² > 1: the stable non-zero fixed point, not the unstable 0
        qs = float(theory.q_star("tanh", 2.0, 0.0))
        assert qs > 0.1 and abs(float(theory.q_map("tanh", qs, 2.0, 0.0)) - qs) < 1e-12
        sw = jnp.linspace(0.5, 3.0, 6)
        batched = np.asarray(jax.jit(jax.vmap(lambda w: theory.q_star("tanh", w, 0.1)))(sw))
        looped = [float(theory.q_star("tanh", float(w), 0.1)) for w in sw]
        np.testing.assert_allclose(batched, looped, rtol=1e-12)
    # float32 gives the same fixed point to float32 accuracy
    with jax.enable_x64(False):
        f32 = float(theory.q_star("tanh", 1.5, 0.05))
    assert abs(f32 - qs_ref_tanh()) < 1e-5


def qs_ref_tanh():
    with jax.enable_x64(True):
        return float(theory.q_star("tanh", 1.5, 0.05))


@pytest.mark.parametrize(
    "name, sw, sb, want",
    [
        ("relu", 2.0, 0.0, "critical"),
        ("relu", 1.5, 0.1, "ordered"),
        ("relu", 3.0, 0.0, "chaotic"),  # the q-map diverges; χ₁ = 1.5 at any q
        ("tanh", 1.0, 0.5, "ordered"),
        ("tanh", 4.0, 0.05, "chaotic"),
        ("tanh", theory.gain("tanh") ** 2, 0.0, "chaotic"),  # gain is not criticality
    ],
)
def test_phase(name, sw, sb, want):
    assert theory.phase(name, sw, sb) == want


@pytest.mark.parametrize("name, q", [("tanh", 1 / 32), ("tanh", 1.0), ("erf", 0.3), ("selu", 1.0)])
def test_critical_point_round_trip(name, q):
    sw, sb = theory.critical_point(name, q)
    assert sb >= 0
    with jax.enable_x64(True):
        assert abs(float(theory.chi1(name, sw, sb, q=q)) - 1) < 1e-12
        assert abs(float(theory.q_map(name, q, sw, sb)) - q) < 1e-12
        assert abs(float(theory.q_star(name, sw, sb, q0=q)) - q) < 1e-9
    assert theory.phase(name, sw, sb) == "critical"


def test_critical_point_relu_and_errors():
    sw, sb = theory.critical_point("relu", 0.7)
    assert abs(sw - 2) < TOL and sb == 0.0  # He initialisation, for any q*
    with pytest.raises(ValueError, match=r"`critical_point`: 'sigmoid' has no critical point"):
        theory.critical_point("sigmoid", 1.0)
    with pytest.raises(ValueError, match=r"`q_star` > 0"):
        theory.critical_point("tanh", 0.0)
    with pytest.raises(ValueError, match=r"`phase` needs a finite non-negative `sigma_w2`"):
        theory.phase("tanh", -1.0, 0.0)


# ---------------------------------------------------------------------------------------------
# Whole-stack predictions
# ---------------------------------------------------------------------------------------------


def _reference_recursion(name, wv, bv, bm, widths, residual, layernorm):
    """The documented recursions, written out again with the scalar public functions."""
    with jax.enable_x64(True):
        L = len(widths) - 1
        x2, v, m = 1.0, 0.0, 0.0
        pre, a2, am, d2, var = [], [], [], [], []
        for i in range(L):
            branch = widths[i] * wv[i] * x2 + bv[i]
            v, m = (v + branch, m + bm[i]) if residual and i > 0 else (branch, bm[i])
            qq, sh = (1.0, 0.0) if layernorm else (v, m)
            x2 = float(theory.gaussian_second_moment(name, qq, shift=sh))
            pre.append(v + m * m)
            var.append(v)
            a2.append(x2)
            am.append(float(theory.gaussian_mean(name, qq, shift=sh)))
            d2.append(float(theory.gaussian_derivative_second_moment(name, qq, shift=sh)))
        g = [1.0] * L
        for i in range(L - 2, -1, -1):
            t = widths[i + 2] * wv[i + 1] * d2[i] / (var[i] if layernorm else 1.0)
            g[i] = g[i + 1] * ((1 + t) if residual else t)
    return [np.array(a) for a in (pre, a2, am, g)]


@pytest.mark.parametrize(
    "name, residual, layernorm",
    [("tanh", False, False), ("gelu", True, False), ("relu6", False, True), ("elu", True, True)],
)
def test_predict_mlp_matches_recursion(name, residual, layernorm):
    widths = (30, 64, 64, 64, 64) if residual else (30, 80, 50, 120, 10)
    wv = [1.7 / w for w in widths[:-1]]
    bv = [0.05, 0.0, 0.1, 0.02]
    bm = [0.1, -0.2, 0.0, 0.3]
    p = theory.predict_mlp(
        name, wv, bv, widths, residual=residual, layernorm=layernorm, bias_mean=bm
    )
    want = _reference_recursion(name, wv, bv, bm, widths, residual, layernorm)
    got = (p.preact_second_moment, p.act_second_moment, p.act_mean, p.grad_second_moment)
    for g, w in zip(got, want, strict=True):
        assert g.dtype == np.float64 and g.shape == (4,)
        np.testing.assert_allclose(g, w, rtol=1e-12)
    for f in (p.fluctuation, p.preact_fluctuation, p.grad_fluctuation):
        assert f.shape == (4,) and np.all(np.isfinite(f)) and np.all(f >= 0)


def test_predict_mlp_relu_he_and_hanin_nica():
    widths = (100, 64, 128, 32, 256, 64)
    wv = [2 / n for n in widths[:-1]]
    p = theory.predict_mlp("relu", wv, 0.0, widths, input_second_moment=1.5)
    np.testing.assert_allclose(p.preact_second_moment, 3.0, rtol=1e-12)
    np.testing.assert_allclose(p.act_second_moment, 1.5, rtol=1e-12)
    # backward, fan-in scaling leaves the width ratios: g^l = n_L / n_l
    np.testing.assert_allclose(p.grad_second_moment, widths[-1] / np.array(widths[1:]), rtol=1e-12)
    want = np.sqrt(np.expm1(5 * np.cumsum([1 / n for n in widths[1:]])))  # Hanin & Nica 2019
    np.testing.assert_allclose(p.fluctuation, want, rtol=1e-9)
    # the gradient of the naive N(0, 0.01²) init vanishes layer by layer by 512·1e-4/2
    q = theory.predict_mlp("relu", 1e-4, 0.0, (512,) * 11)
    np.testing.assert_allclose(q.preact_second_moment[1:] / q.preact_second_moment[:-1], 0.0256)
    np.testing.assert_allclose(q.grad_second_moment[:-1] / q.grad_second_moment[1:], 0.0256)


@pytest.mark.parametrize("residual, layernorm", [(False, False), (True, False), (True, True)])
def test_predict_mlp_degenerate_stacks_do_not_warn(residual, layernorm):
    # zero init (symmetric, dead) and a hugely exploding init: numbers or inf, no warnings
    zero = theory.predict_mlp(
        "tanh", 0.0, 0.0, (32,) * 6, residual=residual, layernorm=layernorm, batch_size=4
    )
    assert np.all(zero.preact_second_moment == 0)
    # zero weights block the gradient, except along the skip connections
    assert np.all(zero.grad_second_moment[:-1] == (1.0 if residual else 0.0))
    boom = theory.predict_mlp("relu", 1.0, 0.0, (64,) * 90, residual=residual, batch_size=4)
    assert np.isinf(boom.preact_second_moment[-1]) or boom.preact_second_moment[-1] > 1e100


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({"widths": (10,)}, ValueError, r"at least one layer"),
        ({"widths": (10, 20.0)}, TypeError, r"hold ints"),
        ({"weight_var": [0.1, 0.1]}, ValueError, r"one entry per layer \(1"),
        ({"weight_var": -0.1}, ValueError, r"non-negative `weight_var`"),
        ({"bias_var": np.nan}, ValueError, r"finite `bias_var`"),
        ({"widths": (10, 20, 30), "weight_var": 0.1, "residual": True}, ValueError, r"same width"),
        ({"layernorm": 1}, TypeError, r"`layernorm` to be a bool"),
        ({"batch_size": 0}, ValueError, r"`batch_size` >= 1"),
        ({"input_correlation": 2.0}, ValueError, r"\[-1, 1\]"),
    ],
)
def test_predict_mlp_errors(kwargs, exc, match):
    args = {"activation": "relu", "weight_var": 0.1, "bias_var": 0.0, "widths": (10, 20)}
    args.update(kwargs)
    with pytest.raises(exc, match=r"`predict_mlp`.*" + match):
        theory.predict_mlp(**args)


# ---------------------------------------------------------------------------------------------
# Monte Carlo: the predictions describe real finite networks
# ---------------------------------------------------------------------------------------------


def _simulate(name, wv, bv, bm, widths, residual, batch, seeds):
    """Per seed: fresh Gaussian weights, biases, input batch and normal cotangent on h^L."""
    act = theory.activation(name)
    L = len(widths) - 1
    shapes = [(batch, widths[0]), (batch, widths[-1])]
    shapes += [s for i in range(L) for s in (widths[i : i + 2], (widths[i + 1],))]
    sizes = [math.prod(s) for s in shapes]
    offsets = np.cumsum([0, *sizes])

    def one(key):
        # one threefry call per seed (each random call costs a second of XLA compile time)
        flat = jax.random.normal(key, (int(offsets[-1]),))
        x, ct, *wb = [
            flat[o : o + n].reshape(s) for o, n, s in zip(offsets, sizes, shapes, strict=False)
        ]
        ws = [wb[2 * i] * math.sqrt(wv[i]) for i in range(L)]
        bs = [bm[i] + math.sqrt(bv[i]) * wb[2 * i + 1] for i in range(L)]

        def forward(deltas):
            hs, xs = [], []
            h = x @ ws[0] + bs[0] + deltas[0]
            for i in range(L):
                if i > 0:
                    h = (h if residual else 0.0) + xs[-1] @ ws[i] + bs[i] + deltas[i]
                hs.append(h)
                xs.append(act.fn(h))
            return h, (hs, xs)

        zeros = [jnp.zeros((batch, n)) for n in widths[1:]]
        _, vjp, (hs, xs) = jax.vjp(forward, zeros, has_aux=True)
        (gs,) = vjp(ct)
        return (
            jnp.stack([jnp.mean(t**2) for t in hs]),
            jnp.stack([jnp.mean(t**2) for t in xs]),
            jnp.stack([jnp.mean(t) for t in xs]),
            jnp.stack([jnp.mean(t**2) for t in gs]),
        )

    keys = jax.random.split(jax.random.key(20240607), seeds)
    return [np.asarray(o, np.float64) for o in jax.jit(jax.vmap(one))(keys)]


@pytest.mark.parametrize(
    "name, residual, widths, wv, bv, bm",
    [
        (
            "tanh",
            False,
            (96, 160, 96, 128, 64),
            [1.5 / 96, 1.5 / 160, 1.5 / 96, 1.5 / 128],
            [0.05] * 4,
            [0.1] * 4,
        ),
        (
            "relu",
            True,
            (96, 128, 128, 128, 128),
            [2 / 96, 0.5 / 128, 0.5 / 128, 0.5 / 128],
            [0.01] * 4,
            [0.0] * 4,
        ),
    ],
)
def test_predict_mlp_matches_monte_carlo(name, residual, widths, wv, bv, bm):
    seeds, batch = 128, 32
    meas = _simulate(name, wv, bv, bm, widths, residual, batch, seeds)
    p = theory.predict_mlp(
        name,
        wv,
        bv,
        widths,
        residual=residual,
        bias_mean=bm,
        batch_size=batch,
        random_input=True,
        random_cotangent=True,
    )
    preds = (p.preact_second_moment, p.act_second_moment, p.act_mean, p.grad_second_moment)
    for label, m, pred in zip(("pre", "act", "mean", "grad"), meas, preds, strict=True):
        mean, se = m.mean(0), m.std(0, ddof=1) / math.sqrt(seeds)
        # 6 standard errors of the seed mean; the O(1/n) mean-field bias is below 1 SE here.
        assert np.all(np.abs(mean - pred) <= 6 * se), (label, mean, pred, se)
    # The predicted finite-width fluctuation against the measured spread across seeds. The
    # std of S samples has a relative standard error of about sqrt((kurt - 1) / (4 S)); the
    # prediction is first order in 1/n, so we allow 6 SE plus 20 % (the documented accuracy).
    for m, pf in (
        (meas[0], p.preact_fluctuation),
        (meas[1], p.fluctuation),
        (meas[3][:, :-1], p.grad_fluctuation[:-1]),
    ):
        cv = m.std(0, ddof=1) / m.mean(0)
        z = (m - m.mean(0)) / m.std(0)
        rel_se = np.sqrt((np.mean(z**4, 0) - 1) / (4 * seeds))
        assert np.all(np.abs(cv / pf - 1) <= 0.2 + 6 * rel_se), (cv, pf)
