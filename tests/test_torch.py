"""jinit.torch against torch 2.13 itself: same laws in Flax layouts, same structure, same errors.

Random initialisers: >= 100k draws from jinit and from torch (torch layout, seeded generator),
the torch sample transposed to the Flax layout, two-sample KS with p > 1e-4 (fixed seeds, so
each case is deterministic; under a correct implementation a case fails with probability 1e-4).
"""

from __future__ import annotations

import math
import pathlib
import warnings

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats
import torch

import jinit
import jinit.torch as jt
from jinit.catalogue import entries
from jinit.laws import _laws as laws
from jinit.torch._base import NONLINEARITIES

SEED = 0
P_MIN = 1e-4  # KS / chi-square p-value threshold
TI = torch.nn.init


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    # Small torch ops (one QR per orthogonal_ call) are ~50x slower with the default thread pool
    # on a 2-core machine shared with XLA.
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def torch_shape(flax_shape):
    """Flax (in, out) / (*k, in, out) -> torch (out, in) / (out, in, *k)."""
    *k, i, o = flax_shape
    return (o, i, *k)


def to_flax(t) -> np.ndarray:
    """A torch (out, in, *k) array transposed to the Flax layout (*k, in, out)."""
    a = t.detach().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)
    return np.transpose(a, (*range(2, a.ndim), 1, 0))


def draw(init, shape, n_keys=1, dtype=jnp.float32) -> np.ndarray:
    """One eager draw (n_keys=1: XLA kernels are cached by shape, so eager calls on the shared
    shapes compile once), or ``n_keys`` draws under ``jit(vmap)`` over split keys."""
    key = jax.random.key(SEED)
    if n_keys == 1:
        return np.asarray(init(key, shape, dtype))
    keys = jax.random.split(key, n_keys)
    return np.asarray(jax.jit(jax.vmap(lambda k: init(k, shape, dtype)))(keys))


def torch_draw(fn, shape, dtype=torch.float32, **kwargs) -> np.ndarray:
    t = torch.empty(shape, dtype=dtype)
    fn(t, generator=torch.Generator().manual_seed(SEED), **kwargs)
    return t.numpy()


def assert_same_law(x, y):
    p = scipy.stats.ks_2samp(np.ravel(x), np.ravel(y)).pvalue
    assert p > P_MIN, f"KS two-sample p = {p:.2e}"


def assert_law_cdf(x, law):
    """One-sample KS of the jinit draws against the law's CDF."""
    p = scipy.stats.kstest(np.ravel(x), lambda v: np.asarray(law.cdf(v), np.float64)).pvalue
    assert p > P_MIN, f"KS against {law.summary()}: p = {p:.2e}"


def assert_bounds(x, law):
    """Samples stay in the law's support and come close to every finite bound it can reach."""
    x = np.ravel(x).astype(np.float64)
    lo, hi = law.support
    if not (math.isfinite(lo) or math.isfinite(hi)):
        return
    # float32 rounding of the sampler's scale: a few ulp, far below 1e-6 relative.
    tol = 1e-6 * max(abs(v) for v in (lo, hi) if math.isfinite(v))
    assert x.min() >= lo - tol and x.max() <= hi + tol, (x.min(), x.max(), lo, hi)
    width = (hi - lo) if math.isfinite(hi - lo) else law.std
    eps = 1e-3 * width
    for bound, near in ((hi, x >= hi - eps), (lo, x <= lo + eps)):
        if not math.isfinite(bound):
            continue
        inside = hi - eps if bound == hi else lo + eps
        mass = float(law.cdf(inside)) if bound == lo else 1 - float(law.cdf(inside))
        # With >= 20 expected samples within eps of the bound, seeing none has prob. <= e^-20.
        if x.size * mass >= 20:
            assert near.any(), f"no sample within {eps:.3g} of the bound {bound}"


# ---------------------------------------------------------------------------------------------
# calculate_gain
# ---------------------------------------------------------------------------------------------

GAIN_CASES = [
    *[(name, None) for name in NONLINEARITIES],
    ("leaky_relu", 10),
    ("leaky_relu", 0.2),
    ("leaky_relu", 0),
    ("leaky_relu", -0.5),
    ("leaky_relu", math.sqrt(5)),
    ("relu", True),  # param is ignored by every name but leaky_relu, in torch too
]


@pytest.mark.parametrize(("name", "param"), GAIN_CASES)
def test_calculate_gain_matches_torch_exactly(name, param):
    got = jt.calculate_gain(name, param)
    assert isinstance(got, float)
    assert got == float(TI.calculate_gain(name, param))


def test_calculate_gain_documented_values():
    assert jt.calculate_gain("leaky_relu") == 1.4141428569978354
    assert jt.calculate_gain("leaky_relu", 10) == math.sqrt(2 / 101)
    assert jt.calculate_gain("selu") == 0.75
    assert jt.calculate_gain("tanh") == 5 / 3


@pytest.mark.parametrize(("name", "param"), [("gelu", None), ("leaky_relu", True), ("ReLU", None)])
def test_calculate_gain_errors_like_torch(name, param):
    with pytest.raises(ValueError):
        TI.calculate_gain(name, param)
    with pytest.raises(ValueError, match=r"`jinit\.torch\.calculate_gain`") as e:
        jt.calculate_gain(name, param)
    if param is None:  # the message lists the supported names
        assert all(repr(n) in str(e.value) for n in ("linear", "conv_transpose3d", "selu"))


# ---------------------------------------------------------------------------------------------
# Element-wise random initialisers: KS against torch, bounds, law against torch's formula
# ---------------------------------------------------------------------------------------------


def _kaiming_std(torch_shape_, a, mode, nonlinearity):
    fan_in, fan_out = TI._calculate_fan_in_and_fan_out(torch.empty(torch_shape_))
    fan = fan_in if mode.lower() == "fan_in" else fan_out
    return TI.calculate_gain(nonlinearity, a) / math.sqrt(fan)


def _xavier_std(torch_shape_, gain):
    fan_in, fan_out = TI._calculate_fan_in_and_fan_out(torch.empty(torch_shape_))
    return gain * math.sqrt(2.0 / (fan_in + fan_out))


DENSE = (300, 400)  # Flax (in, out): 120k entries; torch (400, 300)
CONV = (3, 3, 64, 192)  # Flax HWIO: 110,592 entries, fan_in 576, fan_out 1728
CONV1D = (5, 96, 256)  # fan_in 480, fan_out 1280

# (id, jinit init, torch fn, torch kwargs, Flax shape, torch's std of the law or None)
ELEMENTWISE = [
    ("uniform", jt.uniform(), TI.uniform_, {}, DENSE, None),
    ("uniform_ab", jt.uniform(-3.0, 0.5), TI.uniform_, dict(a=-3.0, b=0.5), DENSE, None),
    ("normal", jt.normal(), TI.normal_, {}, DENSE, 1.0),
    ("normal_shift", jt.normal(2.0, 0.5), TI.normal_, dict(mean=2.0, std=0.5), DENSE, 0.5),
    ("trunc", jt.trunc_normal(), TI.trunc_normal_, {}, DENSE, None),
    (
        "trunc_shifted",
        jt.trunc_normal(0.5, 2.0, -1.0, 3.0),
        TI.trunc_normal_,
        dict(mean=0.5, std=2.0, a=-1.0, b=3.0),
        DENSE,
        None,
    ),
    # Bounds +-2 absolute with std 0.02: +-100 sigma, in effect untruncated.
    ("trunc_std002", jt.trunc_normal(std=0.02), TI.trunc_normal_, dict(std=0.02), DENSE, None),
    # Mass 0.067 < 0.3: torch's uniform-proposal rejection branch; jinit works in the far tail.
    (
        "trunc_tail",
        jt.trunc_normal(0.0, 1.0, 1.5, 4.0),
        TI.trunc_normal_,
        dict(mean=0.0, std=1.0, a=1.5, b=4.0),
        DENSE,
        None,
    ),
    ("xavier_u", jt.xavier_uniform(), TI.xavier_uniform_, {}, DENSE, _xavier_std((400, 300), 1)),
    (
        "xavier_u_conv",
        jt.xavier_uniform(5 / 3),
        TI.xavier_uniform_,
        dict(gain=5 / 3),
        CONV,
        _xavier_std(torch_shape(CONV), 5 / 3),
    ),
    ("xavier_n", jt.xavier_normal(), TI.xavier_normal_, {}, DENSE, _xavier_std((400, 300), 1)),
    (
        "xavier_n_conv",
        jt.xavier_normal(2.0),
        TI.xavier_normal_,
        dict(gain=2.0),
        CONV1D,
        _xavier_std(torch_shape(CONV1D), 2.0),
    ),
    (
        "kaiming_u",
        jt.kaiming_uniform(),
        TI.kaiming_uniform_,
        {},
        DENSE,
        _kaiming_std((400, 300), 0, "fan_in", "leaky_relu"),
    ),
    (
        "kaiming_u_sqrt5",
        jt.kaiming_uniform(a=math.sqrt(5)),
        TI.kaiming_uniform_,
        dict(a=math.sqrt(5)),
        CONV,
        _kaiming_std(torch_shape(CONV), math.sqrt(5), "fan_in", "leaky_relu"),
    ),
    (
        "kaiming_u_relu_out",
        jt.kaiming_uniform(mode="fan_out", nonlinearity="relu"),
        TI.kaiming_uniform_,
        dict(mode="fan_out", nonlinearity="relu"),
        CONV,
        _kaiming_std(torch_shape(CONV), 0, "fan_out", "relu"),
    ),
    (
        "kaiming_u_leaky02_out",
        jt.kaiming_uniform(0.2, "FAN_OUT"),
        TI.kaiming_uniform_,
        dict(a=0.2, mode="FAN_OUT"),
        DENSE,
        _kaiming_std((400, 300), 0.2, "fan_out", "leaky_relu"),
    ),
    (
        "kaiming_u_tanh",
        jt.kaiming_uniform(nonlinearity="tanh"),
        TI.kaiming_uniform_,
        dict(nonlinearity="tanh"),
        CONV1D,
        _kaiming_std(torch_shape(CONV1D), 0, "fan_in", "tanh"),
    ),
    (
        "kaiming_n",
        jt.kaiming_normal(),
        TI.kaiming_normal_,
        {},
        DENSE,
        _kaiming_std((400, 300), 0, "fan_in", "leaky_relu"),
    ),
    (
        "kaiming_n_relu_out",
        jt.kaiming_normal(mode="fan_out", nonlinearity="relu"),
        TI.kaiming_normal_,
        dict(mode="fan_out", nonlinearity="relu"),
        CONV,
        _kaiming_std(torch_shape(CONV), 0, "fan_out", "relu"),
    ),
    (
        "kaiming_n_selu",
        jt.kaiming_normal(nonlinearity="selu"),
        TI.kaiming_normal_,
        dict(nonlinearity="selu"),
        CONV1D,
        _kaiming_std(torch_shape(CONV1D), 0, "fan_in", "selu"),
    ),
]


@pytest.mark.parametrize(
    ("init", "torch_fn", "kwargs", "shape", "torch_std"),
    [c[1:] for c in ELEMENTWISE],
    ids=[c[0] for c in ELEMENTWISE],
)
def test_elementwise_law_matches_torch(init, torch_fn, kwargs, shape, torch_std):
    x = draw(init, shape)
    t = to_flax(torch_draw(torch_fn, torch_shape(shape), **kwargs))
    chex.assert_shape(x, shape)
    assert t.shape == x.shape and x.size >= 100_000
    assert_same_law(x, t)
    law = jinit.law(init, shape)
    assert_law_cdf(x, law)
    assert_bounds(x, law)
    assert_bounds(t, law)  # torch's own samples respect (and reach) the same bounds
    if torch_std is not None:  # the law's std against torch's formula; float32 rounding only
        chex.assert_scalar_in(float(law.std / torch_std), 1 - 1e-6, 1 + 1e-6)


def test_layout_matters_for_fans():
    # Guard against a vacuous KS: torch's sample *not* transposed (fans swapped) is rejected.
    init = jt.kaiming_uniform(mode="fan_out", nonlinearity="relu")
    x = draw(init, CONV)
    t = torch_draw(TI.kaiming_uniform_, CONV, mode="fan_out", nonlinearity="relu")
    assert scipy.stats.ks_2samp(x.ravel(), t.ravel()).pvalue < 1e-10


@pytest.mark.parametrize(
    ("init", "torch_fn", "kwargs"),
    [
        (jt.normal(std=0.7), TI.normal_, dict(std=0.7)),
        (jt.kaiming_normal(nonlinearity="relu"), TI.kaiming_normal_, dict(nonlinearity="relu")),
        (jt.xavier_normal(1.5), TI.xavier_normal_, dict(gain=1.5)),
        (jt.embedding(), TI.normal_, {}),
    ],
    ids=["normal", "kaiming_normal", "xavier_normal", "embedding"],
)
def test_complex_normal_matches_torch(init, torch_fn, kwargs):
    x = draw(init, DENSE, dtype=jnp.complex64)
    t = to_flax(torch_draw(torch_fn, (400, 300), dtype=torch.complex64, **kwargs))
    assert x.dtype == np.complex64
    assert_same_law(x.real, t.real)
    assert_same_law(x.imag, t.imag)
    law = jinit.law(init, DENSE, jnp.complex64)
    assert isinstance(law, laws.ComplexNormal)
    assert_law_cdf(np.abs(x), law)  # the law's CDF is that of |z|


# ---------------------------------------------------------------------------------------------
# Orthogonal
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "gain"), [((16, 4), 1.0), ((4, 16), 2.5), ((3, 3, 8, 16), 1.0), ((3, 3, 16, 4), 2.5)]
)
def test_orthogonal_gram(shape, gain):
    init = jt.orthogonal(gain)
    law = jinit.law(init, shape)
    assert isinstance(law, laws.OrthogonalLaw)
    # float32 QR: entries of Q accurate to ~1e-6, Gram entries to ~n * 1e-7 (times gain^2).
    w = draw(init, shape)
    chex.assert_scalar_in(float(law.gram_error(jnp.asarray(w))), 0.0, 1e-5 * gain**2)
    # torch's sample transposed to Flax satisfies the same identity.
    t = to_flax(torch_draw(TI.orthogonal_, torch_shape(shape), gain=gain))
    chex.assert_scalar_in(float(law.gram_error(jnp.asarray(t))), 0.0, 1e-5 * gain**2)


def test_orthogonal_entry_law_matches_torch():
    # One entry per matrix, 100k independent matrices on each side (entries of one matrix are
    # dependent). Flax (2, 3, 4) <-> torch (4, 3, 2): a 6 x 4 matrix, entries live on S^5.
    shape, n = (2, 3, 4), 100_000
    init = jt.orthogonal(1.5)
    x = draw(init, shape, n_keys=n)[:, 1, 2, 3]
    g = torch.Generator().manual_seed(SEED)
    with torch.inference_mode():  # less per-call overhead; same draws
        buf = torch.empty((n, *torch_shape(shape)))
        for i in range(n):
            TI.orthogonal_(buf[i], gain=1.5, generator=g)
    assert_same_law(x, buf[:, 3, 2, 1].numpy())  # torch (o, i, k) = (3, 2, 1) is Flax [1, 2, 3]
    law = jinit.law(init, shape)
    # Variance gain^2 / max(rows, cols); SE of a sample variance ~ sqrt(m4 - v^2) / sqrt(n).
    se = math.sqrt(law.fourth_moment - law.variance**2) / math.sqrt(n)
    chex.assert_scalar_in(float(np.mean(x**2)), law.variance - 6 * se, law.variance + 6 * se)


def _haar_statistics(w: np.ndarray) -> dict[str, np.ndarray]:
    """Scalars of each matrix (leading axis) that a wrong sign convention or a non-Haar
    construction would shift: a missing sign correction makes the corner entry always
    negative; a fixed sign pattern biases the trace and the diagonal."""
    k = min(w.shape[1:])
    out = {
        "trace": np.einsum("nii->n", w[:, :k, :k]),
        "first corner": w[:, 0, 0],
        "last corner": w[:, k - 1, k - 1],
        "off corner": w[:, 0, -1],
        "row sum": w[:, -1, :].sum(axis=1),
    }
    if w.shape[1] == w.shape[2]:
        out["det"] = np.linalg.det(w.astype(np.float64))
    return out


@pytest.mark.parametrize("shape", [(4, 4), (5, 3), (3, 5)])
def test_orthogonal_from_reflectors_has_the_law_of_jax_haar_sampler(shape):
    """``jinit.torch.orthogonal`` draws its Householder reflectors directly (no QR): the
    matrices have the law of ``jax.random.orthogonal`` (QR of a Gaussian matrix, sign
    corrected), compared over 20 000 matrices on statistics that see the signs and the joint
    structure, not one entry alone."""
    n = 20_000
    ours = draw(jt.orthogonal(), shape, n_keys=n)
    keys = jax.random.split(jax.random.key(SEED + 1), n)
    ref = jax.jit(jax.vmap(lambda k: jax.random.orthogonal(k, shape[0], (), jnp.float32, shape[1])))
    theirs = np.asarray(ref(keys))
    a, b = _haar_statistics(ours), _haar_statistics(theirs)
    for name in a:
        p = scipy.stats.ks_2samp(a[name], b[name]).pvalue
        assert p > P_MIN, f"{shape} {name}: KS two-sample p = {p:.2e}"


@pytest.mark.parametrize("shape", [(64, 32), (5, 3), (96, 96), (1000, 7), (3, 3, 16, 8)])
def test_orthogonal_from_reflectors_keeps_its_bits_under_vmap(shape):
    """Its column norms are summed in a fixed order and its reflectors scaled by a reciprocal,
    so a vmapped draw has the bits of one draw per key (a plain reduction, or a division by a
    broadcast that XLA rewrites in one program only, would differ in the last bit)."""
    init = jt.orthogonal(1.5)
    keys = jax.random.split(jax.random.key(SEED), 3)
    batched = np.asarray(jax.jit(jax.vmap(lambda k: init(k, shape)))(keys))
    for i, k in enumerate(keys):
        assert batched[i].tobytes() == np.asarray(init(k, shape)).tobytes(), i


# ---------------------------------------------------------------------------------------------
# Sparse
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "sparsity"),
    [((64, 30), 0.1), ((64, 30), 0.0), ((64, 30), 1.0), ((64, 30), 0.5), ((6000, 25), 0.28)],
)
def test_sparse_zero_counts_match_torch(shape, sparsity):
    init = jt.sparse(sparsity, std=0.05)
    w = draw(init, shape)
    torch.manual_seed(SEED)  # torch's randperm ignores `generator`
    t = to_flax(torch_draw(TI.sparse_, torch_shape(shape), sparsity=sparsity, std=0.05))
    torch_zeros = (t == 0).sum(axis=1)  # per input unit (a torch column)
    law = jinit.law(init, shape)
    assert isinstance(law, laws.SparseLaw) and law.axis == 1
    assert len(set(torch_zeros.tolist())) == 1
    assert law.zeros_per_unit == torch_zeros[0] == math.ceil(sparsity * shape[1])
    np.testing.assert_array_equal((w == 0).sum(axis=1), torch_zeros)


def test_sparse_float_ceil_quirk():
    # 0.28 * 25 = 7.000000000000001 in floats: torch zeroes 8 of 25, and so does jinit.
    assert jinit.law(jt.sparse(0.28), (10, 25)).zeros_per_unit == 8


def test_sparse_values_and_positions():
    shape = (6000, 25)  # 150k entries, 102k non-zeros
    init = jt.sparse(0.28, std=0.05)
    w = draw(init, shape)
    torch.manual_seed(SEED)
    t = to_flax(torch_draw(TI.sparse_, torch_shape(shape), sparsity=0.28, std=0.05))
    assert_same_law(w[w != 0], t[t != 0])
    assert_law_cdf(w[w != 0], jinit.law(init, shape).nonzero)
    # Zero positions are uniform over the 25 outputs: chi-square on the per-output counts.
    counts = (w == 0).sum(axis=0)
    assert scipy.stats.chisquare(counts).pvalue > P_MIN


# ---------------------------------------------------------------------------------------------
# eye and dirac: exact structure
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(3, 5), (5, 3), (4, 4)])
def test_eye_is_torch_transposed(shape):
    w = draw(jt.eye(), shape)
    t = to_flax(TI.eye_(torch.empty(torch_shape(shape))))
    np.testing.assert_array_equal(w, t)
    np.testing.assert_array_equal(jinit.law(jt.eye(), shape).value, t)


DIRAC_CASES = [
    ((3, 3, 4, 6), 1),  # in < out
    ((4, 4, 8, 6), 1),  # even k: centre k // 2 = 2
    ((3, 8, 6), 1),  # 1-D
    ((2, 3, 4, 5, 6), 1),  # 3-D, mixed even/odd k
    ((3, 3, 4, 6), 3),  # 2 outputs per group < 4 inputs per group
    ((4, 4, 1, 6), 3),  # 2 outputs per group > 1 input per group
    ((4, 2, 6), 3),  # 1-D, even k
    ((2, 2, 3, 3, 9), 3),  # 3-D, even k
]


@pytest.mark.parametrize(("shape", "groups"), DIRAC_CASES)
def test_dirac_is_torch_transposed(shape, groups):
    init = jt.dirac(groups)
    w = draw(init, shape)
    t = to_flax(TI.dirac_(torch.empty(torch_shape(shape)), groups=groups))
    np.testing.assert_array_equal(w, t)
    np.testing.assert_array_equal(jinit.law(init, shape).value, t)
    assert init.centre(shape) == tuple(k // 2 for k in shape[:-2])


def test_dirac_centre_differs_from_delta_orthogonal_for_even_k():
    w = draw(jt.dirac(), (4, 4, 8, 8))
    assert float(abs(w[2, 2]).sum()) == 8.0 and float(abs(w[1, 1]).sum()) == 0.0
    d = draw(jinit.delta_orthogonal(), (4, 4, 8, 8))
    assert float(abs(d[2, 2]).sum()) == 0.0 and float(abs(d[1, 1]).sum()) > 0


# ---------------------------------------------------------------------------------------------
# Layer defaults against freshly constructed torch modules
# ---------------------------------------------------------------------------------------------


def test_linear_weight_matches_nn_linear():
    torch.manual_seed(SEED)
    layer = torch.nn.Linear(300, 400)
    t = to_flax(layer.weight)
    w = draw(jt.linear_weight(), (300, 400))
    assert_same_law(w, t)
    law = jinit.law(jt.linear_weight(), (300, 400))
    # U(+-1/sqrt(fan_in)): std 1/sqrt(3 fan_in), not sqrt(2/fan_in).
    chex.assert_scalar_in(float(law.support[1] * math.sqrt(300)), 1 - 1e-6, 1 + 1e-6)
    chex.assert_scalar_in(float(law.std * math.sqrt(3 * 300)), 1 - 1e-6, 1 + 1e-6)
    assert_bounds(w, law)
    assert_bounds(t, law)


def test_conv_weight_matches_nn_conv2d_grouped():
    torch.manual_seed(SEED)
    layer = torch.nn.Conv2d(96, 384, 3, groups=2)  # weight (384, 48, 3, 3), fan_in 432
    t = to_flax(layer.weight)
    shape = (3, 3, 48, 384)
    assert t.shape == shape
    w = draw(jt.conv_weight(), shape)
    assert_same_law(w, t)
    law = jinit.law(jt.conv_weight(), shape)
    chex.assert_scalar_in(float(law.support[1] * math.sqrt(432)), 1 - 1e-6, 1 + 1e-6)
    assert_bounds(w, law)
    assert_bounds(t, law)


@pytest.mark.parametrize(
    ("make_layer", "init"),
    [
        (lambda: torch.nn.Linear(7, 20_000), jt.linear_bias(7)),
        # fan_in of the grouped conv weight (20000, 2, 3, 3) is 2 * 3 * 3 = 18, from jinit.fans.
        (
            lambda: torch.nn.Conv2d(4, 20_000, 3, groups=2),
            jt.conv_bias(jinit.fans((3, 3, 2, 20_000)).fan_in),
        ),
    ],
    ids=["linear", "conv2d_groups2"],
)
def test_bias_matches_torch_layer(make_layer, init):
    torch.manual_seed(SEED)
    t = np.concatenate([make_layer().bias.detach().numpy() for _ in range(5)])  # 100k
    b = draw(init, (100_000,))
    assert_same_law(b, t)
    law = jinit.law(init, (100_000,))
    assert_bounds(b, law)
    assert_bounds(t, law)
    chex.assert_scalar_in(float(law.support[1]), init.bound * (1 - 1e-6), init.bound * (1 + 1e-6))


def test_bias_fan_in_zero_is_zero_like_torch():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch: "zero-element tensors is a no-op"
        layer = torch.nn.Linear(0, 5)
    assert not layer.bias.detach().numpy().any()
    assert not draw(jt.linear_bias(0), (5,)).any()
    assert jinit.law(jt.linear_bias(0), (5,)).variance == 0.0


def test_embedding_matches_nn_embedding():
    torch.manual_seed(SEED)
    t = torch.nn.Embedding(1000, 128).weight.detach().numpy()  # same layout in Flax
    w = draw(jt.embedding(), (1000, 128))
    assert_same_law(w, t)
    assert_law_cdf(w, jinit.law(jt.embedding(), (1000, 128)))


def test_flax_nnx_linear_port():
    from flax import nnx

    layer = nnx.Linear(
        300,
        400,
        kernel_init=jt.linear_weight(),
        bias_init=jt.linear_bias(300),
        rngs=nnx.Rngs(SEED),
    )
    bound = 1 / math.sqrt(300)
    for p in (layer.kernel[...], layer.bias[...]):
        chex.assert_scalar_in(float(jnp.abs(p).max()), 0.9 * bound, bound * (1 + 1e-6))


# ---------------------------------------------------------------------------------------------
# Bad input, repr, catalogue
# ---------------------------------------------------------------------------------------------

BUILD_ERRORS = [
    (lambda: jt.uniform(1.0, 0.0), ValueError, "uniform", "`a` <= `b`"),
    (lambda: jt.normal(std=-1.0), ValueError, "normal", "`std` >= 0"),
    (lambda: jt.trunc_normal(std=0.0), ValueError, "trunc_normal", "`std` > 0"),
    (lambda: jt.trunc_normal(a=1.0, b=1.0), ValueError, "trunc_normal", "`a` < `b`"),
    (lambda: jt.trunc_normal(a=float("nan")), ValueError, "trunc_normal", "nan"),
    (lambda: jt.trunc_normal(a=50.0, b=60.0), ValueError, "trunc_normal", "no probability"),
    (lambda: jt.xavier_uniform(gain=-1.0), ValueError, "xavier_uniform", "`gain` >= 0"),
    (lambda: jt.xavier_normal(gain="1"), TypeError, "xavier_normal", "`gain`"),
    (lambda: jt.kaiming_uniform(mode="fan_avg"), ValueError, "kaiming_uniform", "'fan_out'"),
    (lambda: jt.kaiming_normal(nonlinearity="gelu"), ValueError, "kaiming_normal", "'selu'"),
    (lambda: jt.kaiming_normal(a=True), ValueError, "kaiming_normal", "`a`"),
    (lambda: jt.orthogonal(gain=float("inf")), ValueError, "orthogonal", "finite"),
    (lambda: jt.sparse(1.5), ValueError, "sparse", "[0, 1]"),
    (lambda: jt.sparse(-0.1), ValueError, "sparse", "`sparsity` >= 0"),
    (lambda: jt.dirac(0), ValueError, "dirac", "`groups` >= 1"),
    (lambda: jt.dirac(1.5), TypeError, "dirac", "`groups`"),
    (lambda: jt.linear_bias(-1), ValueError, "linear_bias", "`fan_in` >= 0"),
    (lambda: jt.conv_bias(2.5), TypeError, "conv_bias", "whole number"),
]


@pytest.mark.parametrize(("build", "exc", "fn", "fragment"), BUILD_ERRORS)
def test_build_errors(build, exc, fn, fragment):
    with pytest.raises(exc) as e:
        build()
    msg = str(e.value)
    assert f"`jinit.torch.{fn}`" in msg and fragment in msg, msg


# (jinit init, Flax shape, torch fn + kwargs on the torch-layout equivalent, or None)
CALL_ERRORS = [
    (jt.kaiming_uniform(), (5,), lambda t: TI.kaiming_uniform_(t)),
    (jt.kaiming_normal(), (5,), lambda t: TI.kaiming_normal_(t)),
    (jt.xavier_uniform(), (5,), lambda t: TI.xavier_uniform_(t)),
    (jt.xavier_normal(), (), lambda t: TI.xavier_normal_(t)),
    (jt.linear_weight(), (5,), lambda t: TI.kaiming_uniform_(t, a=math.sqrt(5))),
    (jt.conv_weight(), (5,), lambda t: TI.kaiming_uniform_(t, a=math.sqrt(5))),
    (jt.orthogonal(), (5,), lambda t: TI.orthogonal_(t)),
    (jt.sparse(0.1), (5,), lambda t: TI.sparse_(t, 0.1)),
    (jt.sparse(0.1), (2, 3, 4), lambda t: TI.sparse_(t, 0.1)),
    (jt.eye(), (2, 3, 4), lambda t: TI.eye_(t)),
    (jt.eye(), (5,), lambda t: TI.eye_(t)),
    (jt.dirac(), (3, 4), lambda t: TI.dirac_(t)),
    (jt.dirac(), (1, 1, 1, 1, 2, 2), lambda t: TI.dirac_(t)),
    (jt.dirac(4), (3, 3, 2, 6), lambda t: TI.dirac_(t, groups=4)),
]


@pytest.mark.parametrize(("init", "shape", "torch_call"), CALL_ERRORS)
def test_call_errors_where_torch_raises(init, shape, torch_call):
    with pytest.raises(ValueError):
        torch_call(torch.empty(torch_shape(shape) if len(shape) >= 2 else shape))
    with pytest.raises(ValueError, match=rf"`jinit\.{init.api}`"):
        init(jax.random.key(0), shape)
    with pytest.raises(ValueError, match=rf"`jinit\.{init.api}`"):
        jinit.law(init, shape)


@pytest.mark.parametrize(
    ("init", "dtype"),
    [
        (jt.uniform(), jnp.complex64),
        (jt.kaiming_uniform(), jnp.complex64),
        (jt.orthogonal(), jnp.complex64),
        (jt.trunc_normal(), jnp.complex64),
        (jt.normal(mean=1.0), jnp.complex64),
        (jt.normal(), jnp.int32),
    ],
)
def test_dtype_errors(init, dtype):
    with pytest.raises(TypeError, match=rf"`jinit\.{init.api}`"):
        init(jax.random.key(0), (4, 3), dtype)


def test_repr_equality_and_hash():
    a = jt.kaiming_uniform(a=math.sqrt(5))
    assert repr(a) == "jinit.torch.kaiming_uniform(a=2.23606797749979)"
    assert a == jt.kaiming_uniform(a=math.sqrt(5)) and hash(a) == hash(
        jt.kaiming_uniform(2.23606797749979)
    )
    assert jt.kaiming_normal(mode="FAN_OUT") == jt.kaiming_normal(mode="fan_out")
    assert repr(jt.linear_weight()) == "jinit.torch.linear_weight()"
    assert repr(jt.conv_bias(144.0)) == "jinit.torch.conv_bias(fan_in=144)"
    assert repr(jt.trunc_normal(std=0.02)) == "jinit.torch.trunc_normal(std=0.02)"
    assert repr(jt.embedding()) == "jinit.torch.embedding()"
    assert jt.linear_weight() != jt.conv_weight()


def test_public_module_is_torch_free_and_complete():
    import jinit.torch as public

    src = pathlib.Path(public.__file__).read_text()
    assert "import torch" not in src
    for name in public.__all__:
        assert callable(getattr(public, name))


def test_catalogue_entries():
    rows = [e for e in entries() if e.name.startswith("torch.")]
    names = {e.name for e in rows}
    tree_tools = {"calculate_gain", "init_like_torch"}  # helpers, not initialisers
    assert names == {"torch." + n for n in jt.__all__ if n not in tree_tools}
    for e in rows:
        assert e.family == "torch"
        init = e.build()
        assert isinstance(init, jinit.Initializer) and init.family == "torch"
        assert repr(init).startswith("jinit." + e.name + "(")
        # Abstract evaluation: traces the sampler without compiling (sampling is tested above).
        out = jax.eval_shape(lambda k, i=init, e=e: i(k, e.example_shape), jax.random.key(0))
        assert out.shape == e.example_shape and out.dtype == jnp.float32
        jinit.law(init, e.example_shape)


@pytest.mark.parametrize(
    "init", [jt.normal(2.0, 0.3), jt.trunc_normal(0.5, 2.0, -1.0, 3.0)], ids=["normal", "trunc"]
)
def test_jit_vmap_and_eager_give_the_same_bits(init):
    key, shape = jax.random.key(3), (64, 32)
    # 1-ulp differences (FMA contraction of x * std + mean under jit) would fail this.
    eager = np.asarray(init(key, shape))
    vm = np.asarray(jax.jit(jax.vmap(lambda k: init(k, shape)))(key[None]))[0]
    np.testing.assert_array_equal(eager, vm)
