"""Built-in sweep architectures: shapes, layer maths against direct formulas, argument checks.

The layer functions are compared with independent float64 implementations (numpy formulas for
the MLP, attention and LayerNorm; ``lax.conv_general_dilated`` for the CNN). The tolerance is the
float32 rounding bound of the network's own computation, derived per element by
``tests/rounding.py`` (``γ_n Σ|xᵢwᵢ|`` for every inner product of ``n`` terms, ``u|v|`` per
elementwise operation, ``16u|v|`` per XLA transcendental, propagated through the layers by the
exact sensitivities): it holds for any CPU, blocking or XLA version, and it is small enough that
a transposed kernel or a 1 % activation gain error fails it (checked below).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from rounding import assert_within, evaluate, excess

import jinit
from jinit import theory
from jinit.sweeps._cnn import cnn
from jinit.sweeps._mlp import mlp
from jinit.sweeps._network_base import ParamSpec, activation_fn
from jinit.sweeps._networks import weight_law_moments
from jinit.sweeps._transformer import transformer

KEY = jax.random.key(20240611)


def _normal(i, shape):
    return np.random.default_rng(i).standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize(
    "net, specs, input_shape",
    [
        (mlp(8, 3), [("kernel", (8, 8), "weight"), ("bias", (8,), "bias")], (8,)),
        (mlp(8, 3, bias=False), [("kernel", (8, 8), "weight")], (8,)),
        (
            cnn(4, 2, 5, image_size=7),
            [("kernel", (5, 5, 4, 4), "weight"), ("bias", (4,), "bias")],
            (7, 7, 4),
        ),
        (transformer(8, 2, 2, mlp_ratio=3, seq_len=5), None, (5, 8)),
    ],
    ids=["mlp", "mlp-nobias", "cnn", "transformer"],
)
def test_specs_and_shapes(net, specs, input_shape):
    if specs is not None:
        assert [tuple(s) for s in net.param_specs()] == specs
    assert net.input_shape() == input_shape
    assert all(isinstance(s, ParamSpec) for s in net.param_specs())
    # shapes only (jax.eval_shape: nothing is compiled or run)
    gen = lambda k: net.layer_params(k, jinit.he_normal(), jinit.zeros, "float32")  # noqa: E731
    p = jax.eval_shape(gen, KEY)
    assert {k: v.shape for k, v in p.items()} == {s.name: s.shape for s in net.param_specs()}
    x = jax.ShapeDtypeStruct((2, *input_shape), jnp.float32)
    h, aux = jax.eval_shape(net.pre, p, jax.eval_shape(net.initial_carry, x))
    carry, a = jax.eval_shape(net.post, p, h, jax.eval_shape(net.initial_carry, x), aux)
    assert a.shape == h.shape
    assert jax.tree_util.tree_structure(carry) == jax.tree_util.tree_structure(net.initial_carry(x))


@pytest.mark.parametrize("padding", ["circular", "same"])
@pytest.mark.parametrize("k", [1, 2, 3])
def test_cnn_layer_is_a_convolution(padding, k):
    net = cnn(3, 1, k, "linear", padding=padding, image_size=6)
    x, w, b = _normal(0, (2, 6, 6, 3)), _normal(1, (k, k, 3, 3)), _normal(2, (3,))
    p = {"kernel": w, "bias": b}
    h, _ = jax.jit(net.pre)(p, x)
    dn = ("NHWC", "HWIO", "NHWC")
    if padding == "circular":
        lo, hi = (k - 1) // 2, k // 2
        xp = jnp.pad(x, ((0, 0), (lo, hi), (lo, hi), (0, 0)), mode="wrap")
        ref = jax.lax.conv_general_dilated(xp, w, (1, 1), "VALID", dimension_numbers=dn)
    else:
        ref = jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=dn)
    ref = ref + b
    # the float64 value of the layer and the rounding bound of any float32 evaluation of it
    val, bound = evaluate(lambda p, x: net.pre(p, x)[0], p, x)
    assert_within(h, val, bound, "jinit's layer")
    assert_within(ref, val, bound, "lax.conv_general_dilated")  # another float32 blocking
    assert excess(h, val + 1e-3 * np.abs(val).max(), bound) > 1  # sensitivity of the bound


@pytest.mark.parametrize("residual", [False, True])
@pytest.mark.parametrize("layernorm", [False, True])
def test_mlp_follows_the_theory_convention(residual, layernorm):
    """h¹ = x⁰W¹+b¹, hˡ = [hˡ⁻¹ +] xˡ⁻¹Wˡ + bˡ, xˡ = φ(LN?(hˡ)) — unrolled by hand in numpy."""
    net = mlp(6, 3, "tanh", residual=residual, layernorm=layernorm)
    x0 = _normal(0, (4, 6))
    gen = jax.jit(lambda k: net.layer_params(k, jinit.lecun_normal(), jinit.normal(0.5), "f4"))
    ps = [gen(jax.random.fold_in(KEY, i)) for i in range(3)]
    pre, post = jax.jit(net.pre), jax.jit(net.post)

    def run(ps, x0, pre=net.pre, post=net.post):
        carry, out = net.initial_carry(x0), []
        for p in ps:
            h, aux = pre(p, carry)
            carry, a = post(p, h, carry, aux)
            out.append((h, a))
        return out

    got = run(ps, jnp.asarray(x0), pre, post)  # float32, one jitted layer at a time
    _, bound = evaluate(run, ps, x0)  # rounding bound of the float32 network, accumulated

    def numpy_ref(ps, gain=1.0, transpose=False):
        x, h_prev, out = np.asarray(x0, np.float64), np.zeros((4, 6)), []
        for p in ps:
            w = np.asarray(p["kernel"], np.float64)
            ref_h = x @ (w.T if transpose else w) + np.asarray(p["bias"], np.float64)
            ref_h = ref_h + h_prev if residual else ref_h
            z = ref_h
            if layernorm:
                z = (z - z.mean(-1, keepdims=True)) / np.sqrt(z.var(-1, keepdims=True) + 1e-6)
            ref_a = gain * np.tanh(z)
            out.append((ref_h, ref_a))
            x, h_prev = ref_a, ref_h
        return out

    assert_within(got, numpy_ref(ps), bound, "MLP vs numpy")
    # the bound is tight enough to catch a transposed kernel or a 1 % gain error
    assert excess(got, numpy_ref(ps, transpose=True), bound) > 1
    assert excess(got, numpy_ref(ps, gain=1.01), bound) > 1


def test_transformer_block_against_numpy():
    """Pre-LN block (attention, residual, LayerNorm, ReLU MLP) against float64 numpy."""
    net = transformer(8, 1, 2, mlp_ratio=2, seq_len=3, activation="relu")
    gen = jax.jit(lambda k: net.layer_params(k, jinit.glorot_normal(), jinit.normal(0.3), "f4"))
    p = gen(KEY)
    x = _normal(5, (2, 3, 8))
    h, aux = jax.jit(net.pre)(p, x)
    out, a = jax.jit(net.post)(p, h, x, aux)
    P = {k: np.asarray(v, np.float64) for k, v in p.items()}
    xn = np.asarray(x, np.float64)

    def ln(v, s, b):
        return (v - v.mean(-1, keepdims=True)) / np.sqrt(v.var(-1, keepdims=True) + 1e-6) * s + b

    z = ln(xn, P["ln1_scale"], P["ln1_bias"])
    q, k, v = (
        (z @ P[n]).reshape(2, 3, 2, 4).transpose(0, 2, 1, 3) for n in ("query", "key", "value")
    )
    logits = q @ k.transpose(0, 1, 3, 2) / math.sqrt(4)
    w = np.exp(logits - logits.max(-1, keepdims=True))
    w /= w.sum(-1, keepdims=True)
    att = (w @ v).transpose(0, 2, 1, 3).reshape(2, 3, 8)
    mid = xn + att @ P["out"] + P["out_bias"]
    ref_h = ln(mid, P["ln2_scale"], P["ln2_bias"]) @ P["mlp_in"] + P["mlp_in_bias"]
    ref_out = mid + np.maximum(ref_h, 0) @ P["mlp_out"] + P["mlp_out_bias"]

    def block(p, x):
        h, aux = net.pre(p, x)
        out, a = net.post(p, h, x, aux)
        return h, out, a

    _, bound = evaluate(block, p, x)  # rounding bound of the float32 block
    ref = (ref_h, ref_out, np.maximum(ref_h, 0))
    assert_within((h, out, a), ref, bound, "transformer block vs numpy")
    # sensitivity: 1 % off in the MLP's second matrix is caught
    bad = mid + np.maximum(ref_h, 0) @ (1.01 * P["mlp_out"]) + P["mlp_out_bias"]
    assert excess(out, bad, bound[1]) > 1


@pytest.mark.parametrize("name", ["relu", "tanh", "gelu", "selu", "silu", "linear", "swish"])
def test_activation_is_the_theory_one(name):
    x = jnp.linspace(-3, 3, 13)
    np.testing.assert_allclose(
        activation_fn(name)(x), theory.activation(name).fn(x), rtol=1e-6, atol=1e-7
    )


@pytest.mark.parametrize(
    "build, err, match",
    [
        (lambda: mlp(0, 3), ValueError, "`mlp` needs `width` >= 1"),
        (lambda: mlp(8, 3, "nope"), ValueError, "'nope' is not a known activation"),
        (lambda: mlp(8.5, 3), TypeError, "`mlp` needs `width` to be an int"),
        (lambda: cnn(8, 3, padding="reflect"), ValueError, "`cnn` needs `padding`"),
        (lambda: cnn(8, 0), ValueError, "`cnn` needs `depth` >= 1"),
        (lambda: transformer(10, 2, 4), ValueError, "divisible by `heads`"),
        (lambda: transformer(8, 2, 2, seq_len=0), ValueError, "`seq_len` >= 1"),
    ],
)
def test_bad_arguments(build, err, match):
    with pytest.raises(err, match=match):
        build()


@pytest.mark.parametrize(
    "init, shape, var, exact",
    [
        (jinit.he_normal(), (64, 64), 2 / 64, True),
        (jinit.glorot_uniform(), (3, 3, 16, 16), 2 / (144 + 144), True),
        (jinit.orthogonal(), (64, 64), 1 / 64, True),
        (jinit.delta_orthogonal(), (3, 3, 16, 16), 1 / 16 / 9, True),
        # a foreign callable: one draw of 64·64 entries, variance SE ≈ var·sqrt(2/4096) → 6 SE
        (jax.nn.initializers.lecun_normal(), (64, 64), 1 / 64, False),
    ],
    ids=["he", "glorot-conv", "orthogonal", "delta-orthogonal", "jax-foreign"],
)
def test_weight_law_moments(init, shape, var, exact):
    mean, v, is_exact = weight_law_moments(init, shape)
    assert is_exact == exact
    rtol = 1e-6 if exact else 6 * math.sqrt(2 / math.prod(shape))  # exact: f32-rounded scale
    np.testing.assert_allclose(v, var, rtol=rtol)
    assert abs(mean) <= (1e-12 if exact else 6 * math.sqrt(var / math.prod(shape)))


def test_config_and_describe():
    net = mlp(16, 4, "gelu", layernorm=True, residual=True)
    assert net.config() == {
        "arch": "mlp",
        "width": 16,
        "depth": 4,
        "activation": "gelu",
        "bias": True,
        "layernorm": True,
        "residual": True,
    }
    assert net.describe() == "MLP width 16, depth 4, gelu, bias, LayerNorm, residual"
    assert hash(net) == hash(mlp(16, 4, "gelu", layernorm=True, residual=True))
    assert net.theory_inputs().widths == (16,) * 5
    assert cnn(8, 2, 3).theory_inputs().weight_multiplier == 9.0
    assert transformer().theory_inputs() is None
