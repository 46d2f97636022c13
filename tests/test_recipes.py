"""Tests of jinit.recipes: each recipe on a concrete small Flax model, against the paper.

Every expected standard deviation below is written from the paper's (or reference code's)
formula and the model's own dimensions, independently of the recipe code. Leaves are drawn for
S seeds with one ``jax.vmap(reinit)`` per model and recipe (see ``draw``); a leaf's variance, pooled
over its entries and the seeds (n draws), must be within 6 standard errors (sqrt(2/n) relative)
of the formula's. Exact values (zeros, ones, identities, priors) are compared exactly.
"""

from __future__ import annotations

import functools
import math

import equinox as eqx
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import real_models as RM
import scipy.linalg
from bad_input import check_raises, params
from flax import nnx

import jinit
import jinit.recipes as R
from jinit._core._paths import named_leaves
from jinit.trees._reinit import reinit

SEEDS = 4
D, HEADS, DH, D_FF, VOCAB = 32, 4, 4, 64, 64  # qkv_features = HEADS * DH = 16 != D
QKV = HEADS * DH
# std of N(0, s²) truncated to ±3s, without correction: s * sqrt(1 - 6 φ(3) / (2Φ(3) - 1)).
TRUNC3 = math.sqrt(1 - 6 * math.exp(-4.5) / math.sqrt(2 * math.pi) / math.erf(3 / math.sqrt(2)))


# ---------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------


class Block(nn.Module):
    """Pre-LN block: attn (flax MHA, DenseGeneral kernels), fc1/fc2; optional cross-attention."""

    cross: bool = False
    gate: bool = False

    @nn.compact
    def __call__(self, x, memory=None):
        mha = dict(num_heads=HEADS, qkv_features=QKV)
        h = nn.MultiHeadDotProductAttention(**mha, name="attn")(nn.LayerNorm(name="ln1")(x))
        if self.gate:
            h = h * self.param("alpha", nn.initializers.ones, ())
        x = x + h
        if self.cross:
            ca = nn.MultiHeadDotProductAttention(**mha, name="cross_attn")
            x = x + ca(nn.LayerNorm(name="ln_c")(x), memory)
        h = nn.Dense(D_FF, name="fc1")(nn.LayerNorm(name="ln2")(x))
        h = nn.Dense(D, name="fc2")(jax.nn.gelu(h))
        if self.gate:
            h = h * self.param("alpha_mlp", nn.initializers.ones, ())
        return x + h


class LM(nn.Module):
    n_layers: int
    gate: bool = False

    @nn.compact
    def __call__(self, tokens):
        x = nn.Embed(VOCAB, D, name="wte")(tokens)
        for i in range(self.n_layers):
            x = Block(gate=self.gate, name=f"block_{i}")(x)
        return nn.Dense(VOCAB, name="head")(nn.LayerNorm(name="ln_f")(x))


class Seq2Seq(nn.Module):
    n_enc: int
    n_dec: int

    @nn.compact
    def __call__(self, src, tgt):
        class Stack(nn.Module):
            n: int
            cross: bool

            @nn.compact
            def __call__(self, tokens, memory=None):
                x = nn.Embed(VOCAB, D, name="embed")(tokens)
                for i in range(self.n):
                    x = Block(cross=self.cross, name=f"block_{i}")(x, memory)
                return x

        memory = Stack(self.n_enc, False, name="encoder")(src)
        y = Stack(self.n_dec, True, name="decoder")(tgt, memory)
        return nn.Dense(VOCAB, name="head")(y)


def zeros_like_abstract(tree):
    """numpy zeros shaped like an abstract tree: models are never run to get their params."""
    return jax.tree.map(lambda v: np.zeros(v.shape, v.dtype), tree)


@functools.cache
def lm_params(n_layers: int, gate: bool = False):
    tokens = jax.ShapeDtypeStruct((1, 4), jnp.int32)
    return zeros_like_abstract(jax.eval_shape(LM(n_layers, gate).init, jax.random.key(0), tokens))[
        "params"
    ]


@functools.cache
def seq2seq_params(n_enc: int, n_dec: int):
    t = jax.ShapeDtypeStruct((1, 4), jnp.int32)
    abstract = jax.eval_shape(Seq2Seq(n_enc, n_dec).init, jax.random.key(0), t, t)
    return zeros_like_abstract(abstract)["params"]


def nnx_zeros(ctor):
    """An nnx module built abstractly (nnx.eval_shape), with zero numpy parameters."""
    graphdef, params = nnx.split(nnx.eval_shape(ctor), nnx.Param)
    return nnx.merge(graphdef, zeros_like_abstract(params))


class NnxBlock(nnx.Module):
    def __init__(self, rngs):
        self.attn = nnx.MultiHeadAttention(
            num_heads=HEADS, in_features=D, qkv_features=QKV, decode=False, rngs=rngs
        )
        self.fc1 = nnx.Linear(D, D_FF, rngs=rngs)
        self.fc2 = nnx.Linear(D_FF, D, rngs=rngs)
        self.norm = nnx.LayerNorm(D, rngs=rngs)


class NnxLM(nnx.Module):
    def __init__(self, n_layers, rngs):
        self.embed = nnx.Embed(VOCAB, D, rngs=rngs)
        self.blocks = nnx.List([NnxBlock(rngs) for _ in range(n_layers)])
        self.head = nnx.Linear(D, VOCAB, rngs=rngs)


class Res(nn.Module):
    """A residual block of m Dense layers, with Fixup's scalar biases and multiplier."""

    m: int
    width: int
    scalars: bool = True

    @nn.compact
    def __call__(self, x):
        h = x
        for j in range(1, self.m + 1):
            if self.scalars:
                h = h + self.param(f"bias{j}a", nn.initializers.ones, ())
            h = nn.Dense(self.width, use_bias=not self.scalars, name=f"dense{j}")(h)
            if j < self.m:
                h = jax.nn.relu(h)
        if self.scalars:
            h = h * self.param("scale", nn.initializers.zeros, ())
            h = h + self.param("bias_out", nn.initializers.ones, ())
        return jax.nn.relu(x + h)


class ResMLP(nn.Module):
    """stem, n residual blocks of m Dense layers, head."""

    n_blocks: int
    m: int
    width: int = 32
    fixup_scalars: bool = True

    @nn.compact
    def __call__(self, x):
        x = nn.Dense(self.width, name="stem")(x)
        for b in range(self.n_blocks):
            x = Res(self.m, self.width, self.fixup_scalars, name=f"block_{b}")(x)
        return nn.Dense(10, name="head")(x)


def resmlp_params(n_blocks, m, fixup_scalars=True, d_in=20):
    model = ResMLP(n_blocks, m, fixup_scalars=fixup_scalars)
    x = jax.ShapeDtypeStruct((1, d_in), jnp.float32)
    return model, zeros_like_abstract(jax.eval_shape(model.init, jax.random.key(0), x))["params"]


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def draw(params, rules, seeds: int = SEEDS) -> dict[str, np.ndarray]:
    """{path: array of shape (seeds, *leaf shape)}, one vmap(reinit) over seeds.

    Not jitted on purpose: a model's ~50 leaves make a large program whose XLA compile (~10 s
    CPU) is paid by every recipe, while eager dispatch compiles each (primitive, shape) once for
    the whole file, and all these models share their shapes.
    """
    keys = jax.random.split(jax.random.key(1234), seeds)
    out = jax.vmap(lambda k: reinit(params, k, rules))(keys)
    return {p: np.asarray(a, np.float64) for p, a, _ in named_leaves(out)}


def assert_std(x: np.ndarray, std: float, path: str, bound: float | None = None):
    """Pooled second moment within 6 standard errors of std² (mean 0 known); optional max."""
    n = x.size
    ratio = float(np.mean(x**2)) / std**2
    tol = 6 * math.sqrt(2 / n)
    assert abs(ratio - 1) < tol, f"{path}: variance / formula = {ratio:.4f} (tol {tol:.3f})"
    assert abs(float(np.mean(x))) < 6 * std / math.sqrt(n), f"{path}: mean {np.mean(x):.3g}"
    if bound is not None:
        assert float(np.max(np.abs(x))) <= bound * (1 + 1e-6), f"{path}: exceeds {bound}"


def check_leaves(values: dict[str, np.ndarray], expected):
    """``expected(path, shape) -> ('std', s[, bound]) | ('const', c)`` for every leaf."""
    assert values
    for path, x in values.items():
        exp = expected(path, x.shape[1:])
        if exp[0] == "std":
            assert_std(x, exp[1], path, exp[2] if len(exp) > 2 else None)
        else:
            np.testing.assert_array_equal(x, np.full_like(x, exp[1]), err_msg=path)


def xavier(shape_in: int, shape_out: int) -> float:
    return math.sqrt(2 / (shape_in + shape_out))


def attn_fans(path: str, shape) -> tuple[int, int]:
    """(fan_in, fan_out) of the model's kernels, written out per role."""
    if path.endswith(("query/kernel", "key/kernel", "value/kernel")):
        return D, QKV  # (D, HEADS, DH)
    if path.endswith("out/kernel"):
        return QKV, D  # (HEADS, DH, D)
    return shape[0], shape[1]  # Dense (in, out)


def common(path: str):
    """Biases 0, LayerNorm scales 1."""
    if path.endswith("bias"):
        return ("const", 0.0)
    if path.endswith("scale"):
        return ("const", 1.0)
    return None


# ---------------------------------------------------------------------------------------------
# GPT-2 and OLMo
# ---------------------------------------------------------------------------------------------


def test_gpt2_linen_stack():
    L = 3
    values = draw(lm_params(L), R.gpt2(L))

    def expected(path, shape):
        if c := common(path):
            return c
        if path.endswith(("attn/out/kernel", "fc2/kernel")):
            return ("std", 0.02 / math.sqrt(2 * L))  # Radford et al. 2019 / nanoGPT c_proj
        return ("std", 0.02)  # every other kernel and the embedding

    check_leaves(values, expected)


def test_gpt2_nnx_state():
    L = 2
    state = nnx.state(nnx_zeros(lambda: NnxLM(L, nnx.Rngs(0))), nnx.Param)
    values = draw(state, R.gpt2(L))

    def expected(path, shape):
        if path.endswith(("bias", "scale")):
            return ("const", 0.0 if path.endswith("bias") else 1.0)
        if path.endswith(("attn/out/kernel", "fc2/kernel")):
            return ("std", 0.02 / math.sqrt(2 * L))
        return ("std", 0.02)

    check_leaves(values, expected)
    assert "blocks/1/attn/out/kernel" in values


def _olmo_expected(variant: str, L: int):
    s = 0.02

    def expected(path, shape):
        if c := common(path):
            return c
        i = int(path.split("block_")[1].split("/")[0]) if "block_" in path else None
        fan_in, _ = attn_fans(path, shape)
        if path.endswith(("attn/out/kernel", "fc2/kernel")):
            sigma = {
                # allenai/OLMo OLMoBlock.reset_parameters: 1/sqrt(2 * in_features * (layer_id + 1))
                "mitchell": 1 / math.sqrt(2 * fan_in * (i + 1)),
                "full_megatron": s / math.sqrt(2 * L),
                "llama": s / math.sqrt(2 * L),
                "llama_depth": s / math.sqrt(2 * (i + 1)),  # OLMo-core InitMethod.llama_depth
            }[variant]
        elif path.endswith("head/kernel"):
            sigma = 1 / math.sqrt(D)  # final ff_out: d_model ** -0.5
        elif path.endswith("embedding"):
            if variant.startswith("llama"):
                return ("std", 1.0)  # OLMo-core: nn.init.normal_(embedding), untruncated
            sigma = 1 / math.sqrt(D) if variant == "mitchell" else s
        else:  # input projections q/k/v, fc1
            sigma = 1 / math.sqrt(D) if variant == "mitchell" else s
        return ("std", sigma * TRUNC3, 3 * sigma)

    return expected


@pytest.mark.parametrize("variant", ["mitchell", "full_megatron", "llama", "llama_depth"])
def test_olmo_variants(variant):
    L = 3
    check_leaves(draw(lm_params(L), R.olmo(L, variant)), _olmo_expected(variant, L))


def test_olmo_mitchell_nnx_block_names():
    L = 2
    model = nnx_zeros(lambda: NnxLM(L, nnx.Rngs(0)))
    names = R.TransformerNames(block="blocks/{i}")
    state = nnx.state(model, nnx.Param)
    values = draw(state, R.olmo(L, "mitchell", names=names))
    for i in range(L):
        x = values[f"blocks/{i}/fc2/kernel"]
        sigma = 1 / math.sqrt(2 * D_FF * (i + 1))
        assert_std(x, sigma * TRUNC3, f"fc2 {i}", 3 * sigma)


def test_olmo_per_layer_needs_block_names():
    model = nnx_zeros(lambda: NnxLM(2, nnx.Rngs(0)))
    state = nnx.state(model, nnx.Param)
    names = R.TransformerNames(block="block_{i}")
    with pytest.raises(ValueError, match="not inside a block named like 'block_"):
        jax.eval_shape(
            lambda k: reinit(state, k, R.olmo(2, "mitchell", names=names)), jax.random.key(0)
        )
    with pytest.raises(ValueError, match="is in layer 2, but the recipe was built with"):
        jax.eval_shape(
            lambda k: reinit(lm_params(3), k, R.olmo(2, "llama_depth")), jax.random.key(0)
        )


# ---------------------------------------------------------------------------------------------
# T5
# ---------------------------------------------------------------------------------------------


def test_t5_mesh_tf_variances():
    L = 2
    values = draw(lm_params(L), R.t5(d_kv=DH))

    def expected(path, shape):
        if c := common(path):
            return c
        if path.endswith("embedding"):
            return ("std", 1.0)
        if path.endswith("query/kernel"):
            return ("std", (D * DH) ** -0.5)  # q ~ N(0, (d_model d_kv)^-1)
        if path.endswith(("key/kernel", "value/kernel")):
            return ("std", D**-0.5)  # k, v ~ N(0, d_model^-1)
        if path.endswith("attn/out/kernel"):
            return ("std", (HEADS * DH) ** -0.5)  # o ~ N(0, (n_heads d_kv)^-1)
        if path.endswith("fc1/kernel"):
            return ("std", D**-0.5)  # wi ~ N(0, d_model^-1)
        if path.endswith("fc2/kernel"):
            return ("std", D_FF**-0.5)  # wo ~ N(0, d_ff^-1)
        if path.endswith("head/kernel"):
            return ("std", D**-0.5)
        raise AssertionError(path)

    check_leaves(values, expected)


def test_t5x_truncated_normal_laws():
    """t5x's variance-scaling truncated normals: same variances, cut at ±2 (corrected) stds."""
    rules = dict(R.t5(d_kv=DH, distribution="truncated_normal"))
    cases = [
        ("*/query/kernel", (D, HEADS, DH), (D * DH) ** -0.5),
        ("*/value/kernel", (D, HEADS, DH), D**-0.5),
        ("*kernel", (HEADS, DH, D), QKV**-0.5),
        ("*kernel", (D_FF, D), D_FF**-0.5),
    ]
    for pattern, shape, std in cases:
        law = jinit.law(rules[pattern], shape)
        assert isinstance(law, jinit.laws.TruncatedNormal), pattern
        assert law.std == pytest.approx(std, rel=1e-6), pattern


# ---------------------------------------------------------------------------------------------
# DeepNorm
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "n, m, convention",
    [(2, 0, "paper"), (0, 3, "paper"), (2, 3, "paper"), (2, 3, "torchscale")],
)
def test_deepnorm_constants(n, m, convention):
    c = R.deepnorm_constants(n, m, convention=convention)
    if m == 0:  # encoder-only: alpha (2N)^(1/4), beta (8N)^(-1/4)
        assert c[:2] == pytest.approx(((2 * n) ** 0.25, (8 * n) ** -0.25))
        assert c.decoder_alpha is None and c.decoder_beta is None
    elif n == 0:
        assert c[2:] == pytest.approx(((2 * m) ** 0.25, (8 * m) ** -0.25))
        assert c.encoder_alpha is None
    else:
        x = (n**4 * m) ** 0.0625
        assert c.encoder_alpha == pytest.approx(0.81 * x)
        assert c.decoder_alpha == pytest.approx((3 * m) ** 0.25)
        assert c.decoder_beta == pytest.approx((12 * m) ** -0.25)
        if convention == "paper":
            assert c.encoder_beta == pytest.approx(0.87 * x**-1)
        else:  # torchscale: p.data.div_(init_scale), init_scale = (N^4 M)^(1/16) / 1.15
            init_scale = math.pow(math.pow(n, 4) * m, 0.0625) / 1.15
            assert c.encoder_beta == pytest.approx(1 / init_scale)


def _deepnorm_expected(beta_of):
    def expected(path, shape):
        if c := common(path):
            return c
        if path.endswith("embedding"):
            return ("std", 1.0)
        fi, fo = attn_fans(path, shape)
        if path.endswith("head/kernel"):
            return ("std", xavier(fi, fo))
        beta = beta_of(path)
        if path.endswith(("query/kernel", "key/kernel")):
            return ("std", xavier(fi, fo))  # xavier_normal_(gain=1)
        return ("std", beta * xavier(fi, fo))  # ffn, v_proj, out_proj: xavier_normal_(gain=β)

    return expected


EXTRA = [("*embedding", jinit.normal(1.0)), ("*head/kernel", jinit.xavier_normal())]


@pytest.mark.parametrize("convention", ["paper", "torchscale"])
def test_deepnorm_encoder_decoder(convention):
    n, m = 2, 3
    values = draw(seq2seq_params(n, m), R.deepnorm(n, m, convention=convention) + EXTRA)
    x = (n**4 * m) ** (1 / 16)
    beta_enc = 0.87 / x if convention == "paper" else 1.15 / x
    beta_dec = (12 * m) ** -0.25

    def beta_of(path):
        return beta_enc if path.startswith("encoder/") else beta_dec

    check_leaves(values, _deepnorm_expected(beta_of))


def test_deepnorm_decoder_only():
    m = 3
    values = draw(lm_params(m), R.deepnorm(decoder_layers=m) + EXTRA)
    check_leaves(values, _deepnorm_expected(lambda path: (8 * m) ** -0.25))


# ---------------------------------------------------------------------------------------------
# T-Fixup
# ---------------------------------------------------------------------------------------------


def test_tfixup_encoder_decoder():
    n, m = 2, 3
    values = draw(seq2seq_params(n, m), R.tfixup(n, m))

    def expected(path, shape):
        if c := common(path):
            return c
        enc = path.startswith("encoder/")
        if path.endswith("embedding"):  # N(0, d^-1) × (9N)^(-1/4) or (9M)^(-1/4)
            return ("std", D**-0.5 * (9 * (n if enc else m)) ** -0.25)
        if path.endswith("head/kernel"):
            return ("std", D**-0.5)  # fairseq embed_out: normal(std=d^-0.5)
        fi, fo = attn_fans(path, shape)
        g = 1.0
        if path.endswith(("value/kernel", "out/kernel", "fc1/kernel", "fc2/kernel")):
            g = 0.67 * n**-0.25 if enc else (9 * m) ** -0.25
        std = g * xavier(fi, fo)  # Xavier uniform: U(±√3 std)
        return ("std", std, math.sqrt(3) * std)

    check_leaves(values, expected)


def test_tfixup_decoder_only_uses_decoder_constants():
    m = 2
    values = draw(lm_params(m), R.tfixup(decoder_layers=m), seeds=4)
    x = values["block_1/fc2/kernel"]
    assert_std(x, (9 * m) ** -0.25 * xavier(D_FF, D), "fc2")
    assert_std(values["wte/embedding"], D**-0.5 * (9 * m) ** -0.25, "wte")


# ---------------------------------------------------------------------------------------------
# Fixup, ZerO, SkipInit/ReZero
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("m", [2, 3])
def test_fixup_resmlp(m):
    n_blocks, width, d_in = 4, 32, 20
    _, params = resmlp_params(n_blocks, m, d_in=d_in)
    values = draw(params, R.fixup(n_blocks, m, layer="*block*/dense{j}/kernel"))

    def expected(path, shape):
        if path.endswith("head/kernel") or path.endswith(f"dense{m}/kernel"):
            return ("const", 0.0)  # classifier and last layer of each branch
        if "/bias" in path:
            return ("const", 0.0)  # scalar biases and layer biases
        if path.endswith("scale"):
            return ("const", 1.0)  # scalar multiplier
        if path.startswith("stem/"):
            return ("std", math.sqrt(2 / d_in))  # He
        # other branch layers: He × L^(-1/(2m-2))
        return ("std", math.sqrt(2 / width) * n_blocks ** (-1 / (2 * m - 2)))

    check_leaves(values, expected)


def test_fixup_blocks_are_identity_at_init():
    model, params = resmlp_params(3, 2)
    new = reinit(params, jax.random.key(0), R.fixup(3, 2, layer="*block*/dense{j}/kernel"))
    x = jax.random.normal(jax.random.key(2), (5, 20))
    y, state = jax.jit(lambda p, x: model.apply({"params": p}, x, capture_intermediates=True))(
        new, x
    )
    np.testing.assert_array_equal(np.asarray(y), 0.0)  # zero classifier
    inter = state["intermediates"]
    outs = [np.asarray(inter[f"block_{b}"]["__call__"][0]) for b in range(3)]
    np.testing.assert_array_equal(outs[1], outs[0])  # relu(x + 0) = x for x >= 0
    np.testing.assert_array_equal(outs[2], outs[1])


def _hadamard_block(n_in, n_out):
    p = 1 << (max(n_out, 1) - 1).bit_length()
    return scipy.linalg.hadamard(p)[:n_in, :n_out] / math.sqrt(p)


def test_zerO_resmlp_exact():
    _, params = resmlp_params(2, 2, fixup_scalars=False, d_in=20)
    values = draw(params, R.zerO(2, layer="*block*/dense{j}/kernel"), seeds=2)
    for path, x in values.items():
        assert (x[0] == x[1]).all(), f"{path}: ZerO is deterministic"
        w = x[0]
        if path.endswith("dense2/kernel") or path.endswith("bias"):
            np.testing.assert_array_equal(w, 0.0, err_msg=path)
        elif path.endswith("dense1/kernel"):
            np.testing.assert_array_equal(w, np.eye(32), err_msg=path)  # in == out: I
        elif path == "stem/kernel":  # 20 -> 32 widening: H_p[:in, :out] / sqrt(p), p = 32
            np.testing.assert_allclose(w, _hadamard_block(20, 32), atol=1e-7, err_msg=path)
        elif path == "head/kernel":  # 32 -> 10 narrowing: partial identity
            np.testing.assert_array_equal(w, np.eye(32, 10), err_msg=path)
        else:
            raise AssertionError(path)


def test_rezero_composes_with_gpt2():
    L = 2
    values = draw(lm_params(L, gate=True), R.rezero(("*alpha", "*alpha_mlp")) + R.gpt2(L))

    def expected(path, shape):
        if path.endswith(("alpha", "alpha_mlp")):
            return ("const", 0.0)  # x + 0 · F(x): every block starts as the identity
        if c := common(path):
            return c
        if path.endswith(("attn/out/kernel", "fc2/kernel")):
            return ("std", 0.02 / math.sqrt(2 * L))
        return ("std", 0.02)

    check_leaves(values, expected)
    assert values["block_1/alpha"].shape == (SEEDS,)
    assert R.skipinit() == [("*skip_gain", jinit.zeros)]


# ---------------------------------------------------------------------------------------------
# Recurrent: IRNN, LSTM, chrono
# ---------------------------------------------------------------------------------------------


def _linen_cell_params(cell, n_in=16):
    x = jax.ShapeDtypeStruct((1, n_in), jnp.float32)
    carry = cell.initialize_carry(jax.random.key(1), x.shape)
    return zeros_like_abstract(jax.eval_shape(cell.init, jax.random.key(0), carry, x))["params"]


@pytest.mark.parametrize("flavour", ["linen", "nnx"])
def test_irnn_simple_cell(flavour):
    H, n_in = 32, 16
    if flavour == "linen":
        params = _linen_cell_params(nn.SimpleCell(H), n_in)
    else:
        params = nnx.state(nnx_zeros(lambda: nnx.SimpleCell(n_in, H, rngs=nnx.Rngs(0))))
    values = draw(params, R.irnn())
    for path, x in values.items():
        if path.endswith("h/kernel"):
            np.testing.assert_array_equal(x, np.broadcast_to(np.eye(H), x.shape), err_msg=path)
        elif path.endswith("i/kernel"):
            assert_std(x, 0.001, path)
        else:
            np.testing.assert_array_equal(x, 0.0, err_msg=path)


@pytest.mark.parametrize("flavour", ["linen", "nnx"])
def test_lstm_forget_bias_one(flavour):
    H, n_in = 16, 24
    if flavour == "linen":
        params = _linen_cell_params(nn.LSTMCell(H), n_in)
    else:
        params = nnx.state(nnx_zeros(lambda: nnx.LSTMCell(n_in, H, rngs=nnx.Rngs(0))))
    values = draw(params, R.lstm(), seeds=4)
    assert len(values) == 12
    for path, x in values.items():
        gate = path.split("/")[-2]
        if path.endswith("bias"):
            np.testing.assert_array_equal(x, 1.0 if gate == "hf" else 0.0, err_msg=path)
        elif gate.startswith("h"):  # orthogonal recurrent kernels: K K^T = I
            for k in x:
                np.testing.assert_allclose(k @ k.T, np.eye(H), atol=1e-5, err_msg=path)
        else:  # lecun_normal input kernels: variance 1/fan_in
            assert_std(x, n_in**-0.5, path)


def _check_chrono(b_f, b_i, t_max):
    np.testing.assert_array_equal(b_i, -b_f)
    u = np.exp(b_f)  # ~ U(1, t_max - 1)
    assert u.min() >= 1 - 1e-5 and u.max() <= t_max - 1 + 1e-4
    n, half = u.size, (t_max - 2) / 2
    sd = (t_max - 2) / math.sqrt(12)
    assert abs(u.mean() - (1 + half)) < 6 * sd / math.sqrt(n)
    assert abs(np.mean(u < 1 + half) - 0.5) < 6 * 0.5 / math.sqrt(n)


def test_chrono_flax_lstm_cell():
    H, t_max = 64, 30.0
    params = _linen_cell_params(nn.LSTMCell(H))
    keys = jax.random.split(jax.random.key(0), SEEDS)
    new = jax.jit(jax.vmap(lambda k: R.chrono(params, k, t_max)))(keys)
    _check_chrono(np.asarray(new["hf"]["bias"]), np.asarray(new["hi"]["bias"]), t_max)
    for g in ("hg", "ho"):
        np.testing.assert_array_equal(
            new[g]["bias"], np.broadcast_to(params[g]["bias"], (SEEDS, H))
        )
    np.testing.assert_array_equal(new["ii"]["kernel"][3], params["ii"]["kernel"])  # kept


def test_chrono_nnx_module():
    cell = nnx_zeros(lambda: nnx.LSTMCell(8, 16, rngs=nnx.Rngs(0)))
    new = R.chrono(cell, jax.random.key(0), 10.0)
    b_f = np.asarray(new.hf.bias.get_value())
    np.testing.assert_array_equal(np.asarray(new.hi.bias.get_value()), -b_f)
    assert (b_f >= 0).all() and (b_f <= math.log(9) + 1e-6).all()


@pytest.mark.parametrize("order", ["ifgo", "igfo"])
def test_packed_lstm_biases(order):
    H, t_max = 128, 40.0
    b = np.asarray(R.lstm_bias(gate_order=order)(jax.random.key(0), (2, 4 * H)))
    blocks = {g: b[:, k * H : (k + 1) * H] for k, g in enumerate(order)}
    np.testing.assert_array_equal(blocks["f"], 1.0)
    for g in "igo":
        np.testing.assert_array_equal(blocks[g], 0.0)
    c = np.asarray(R.chrono_bias(t_max, order)(jax.random.key(1), (4 * H,)))
    blocks = {g: c[k * H : (k + 1) * H] for k, g in enumerate(order)}
    _check_chrono(blocks["f"], blocks["i"], t_max)
    np.testing.assert_array_equal(np.concatenate([blocks["g"], blocks["o"]]), 0.0)


# ---------------------------------------------------------------------------------------------
# RetinaNet
# ---------------------------------------------------------------------------------------------


class RetinaHead(nn.Module):
    """detectron2's RetinaNetHead names, with 1x1 convolutions written as Dense layers."""

    @nn.compact
    def __call__(self, x):
        a, k = 9, 4
        outs = []
        for branch, n_out in (("cls", a * k), ("bbox", 4 * a)):
            h = x
            for j in range(2):
                h = jax.nn.relu(nn.Dense(32, name=f"{branch}_subnet_{j}")(h))
            outs.append(nn.Dense(n_out, name="cls_score" if branch == "cls" else "bbox_pred")(h))
        return outs


def test_recipe_fallbacks_keep_counters():
    """A recipe's catch-all rules (fallbacks) skip integer leaves such as a quantised kernel;
    a step counter no rule matches is kept by `strict=False` or a `(path, None)` rule."""
    quantised = jnp.arange(32, dtype=jnp.int8).reshape(8, 4)
    params = {
        "block_0": {
            "attn": {"out": {"kernel": jnp.zeros((8, 8))}},
            "fc2": {"kernel": jnp.zeros((8, 8)), "bias": jnp.ones(8)},
        },
        "head": {"kernel": jnp.zeros((8, 4))},
        "quant": {"kernel": quantised},
        "opt": {"count": jnp.array(11, jnp.int32)},
    }
    rules = jinit.recipes.gpt2(1) + [("opt/count", None)]
    new = jinit.reinit(params, jax.random.key(0), jinit.recipes.gpt2(1), strict=False)
    assert int(new["opt"]["count"]) == 11 and new["opt"]["count"].dtype == jnp.int32
    assert new["quant"]["kernel"].dtype == jnp.int8
    assert bool((new["quant"]["kernel"] == quantised).all())
    assert new["block_0"]["fc2"]["bias"].tolist() == [0.0] * 8
    assert float(jnp.abs(new["head"]["kernel"]).max()) > 0
    again = jinit.reinit(params, jax.random.key(0), rules)
    assert jax.tree.all(jax.tree.map(lambda a, b: bool((a == b).all()), new, again))


def test_retinanet_prior_bias():
    x = jax.ShapeDtypeStruct((1, 32), jnp.float32)
    params = zeros_like_abstract(jax.eval_shape(RetinaHead().init, jax.random.key(0), x))["params"]
    values = draw(params, R.retinanet(0.01), seeds=4)
    for path, x in values.items():
        if path == "cls_score/bias":
            b = -math.log((1 - 0.01) / 0.01)  # Lin et al. 2017
            np.testing.assert_allclose(x, b, rtol=1e-6)
            np.testing.assert_allclose(1 / (1 + np.exp(-x)), 0.01, rtol=1e-5)
        elif path.endswith("bias"):
            np.testing.assert_array_equal(x, 0.0, err_msg=path)
        else:
            assert_std(x, 0.01, path)


# ---------------------------------------------------------------------------------------------
# fan_scaled and errors
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, shape, var",
    [
        (dict(layout="in_first"), (32, 4, 8), 1 / 32),
        (dict(layout="out_last"), (4, 8, 32), 1 / 32),
        (dict(mode="fan_avg", layout="in_first"), (32, 4, 8), 2 / 64),
        (dict(mode="fan_out"), (50, 16), 1 / 16),
        (dict(scale=2.0, distribution="uniform"), (64, 16), 2 / 64),
    ],
)
def test_fan_scaled_layouts(kwargs, shape, var):
    """The law (sampling is checked on the models above)."""
    law = jinit.law(R.fan_scaled(**kwargs), shape)
    assert law.variance == pytest.approx(var, rel=1e-6)


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda: R.gpt2(0), ValueError, "n_layers` >= 1"),
        (lambda: R.gpt2(2.0), TypeError, "n_layers` to be an int"),
        (lambda: R.olmo(2, "mitchel"), ValueError, "Did you mean 'mitchell'"),
        (lambda: R.olmo(2, init_std=0.0), ValueError, "init_std` > 0"),
        (lambda: R.t5(0), ValueError, "d_kv` >= 1"),
        (lambda: R.deepnorm(), ValueError, "encoder_layers` or `decoder_layers` >= 1"),
        (lambda: R.deepnorm(2, 2, convention="fairseq"), ValueError, "convention"),
        (lambda: R.tfixup(-1, 2), ValueError, "encoder_layers` >= 0"),
        (lambda: R.fixup(4, 1), ValueError, "branch_layers` >= 2"),
        (lambda: R.fixup(4, 2, layer="*conv/kernel"), ValueError, "placeholder '{j}'"),
        (lambda: R.zerO(2, layer=3), ValueError, "placeholder '{j}'"),
        (lambda: R.rezero(()), ValueError, "at least one pattern"),
        (lambda: R.skipinit(3), TypeError, "glob pattern"),
        (lambda: R.irnn(input_stddev=-1.0), ValueError, "input_stddev"),
        (lambda: R.lstm_bias(gate_order="ifgx"), ValueError, "permutation of 'ifgo'"),
        (lambda: R.lstm_bias()(jax.random.key(0), (6,)), ValueError, "size 4H"),
        (lambda: R.chrono_bias(2.0), ValueError, "t_max` > 2"),
        (lambda: R.chrono({"a": jnp.zeros(3)}, jax.random.key(0), 9.0), ValueError, "hf/bias"),
        (
            lambda: R.chrono({"hf": {"bias": jnp.zeros(3)}}, jax.random.key(0), 9.0),
            ValueError,
            "no input-gate bias",
        ),
        (lambda: R.retinanet(1.0), ValueError, "strictly between 0 and 1"),
        (lambda: R.TransformerNames(block="blk"), ValueError, "placeholder"),
        (lambda: R.TransformerNames(query=["*q", 1]), TypeError, "glob pattern"),
        (lambda: R.gpt2(2, names={"query": "*q"}), TypeError, "TransformerNames"),
        (lambda: R.fan_scaled(distribution="uniform", cutoff=3.0), ValueError, "cutoff"),
        (lambda: R.fan_scaled(layout="first"), ValueError, "layout"),
        (lambda: R.fan_scaled()(jax.random.key(0), (8,)), ValueError, "rank >= 2"),
    ],
)
def test_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


# ---------------------------------------------------------------------------------------------
# Real models (tests/real_models.py: Flax's lm1b/wmt/ImageNet examples, ViT) and misses
# ---------------------------------------------------------------------------------------------


@functools.cache
def real(name: str):
    """(params or module, example input) of a real model, built once for the file."""
    if name == "lm1b_nnx":
        return RM.flax_lm1b_nnx(num_layers=4)
    if name == "lm1b_linen":
        (_, variables), x = RM.flax_lm1b_linen(num_layers=2, unbox=True)
        return variables["params"], x
    if name == "wmt":
        (_, variables), x = RM.flax_wmt_encoder(num_layers=2)
        return variables["params"], x
    if name == "resnet18":
        (module, variables), x = RM.flax_resnet18()
        return (module, variables), x
    raise KeyError(name)


def draw_loop(tree, rules, seeds: int = SEEDS) -> dict[str, np.ndarray]:
    """{path: (seeds, *shape)} by eager reinit per seed (works for nnx modules on a mesh)."""
    out: dict[str, list] = {}
    for s in range(seeds):
        new = reinit(tree, jax.random.key(1000 + s), rules)
        if isinstance(new, nnx.Module):
            new = nnx.state(new, nnx.Param)
        for p, a, _ in named_leaves(new):
            out.setdefault(p, []).append(np.asarray(a, np.float64))
    return {p: np.stack(v) for p, v in out.items()}


def test_gpt2_on_flax_lm1b_nnx_scales_linear2_and_out():
    """The issue's case: gpt2(4) on Flax's lm1b decoder (linear1/linear2, nnx attention) scales
    both residual projections of every block to 0.02/sqrt(2*4) = 0.02/sqrt(8)."""
    model, _ = real("lm1b_nnx")
    values = draw_loop(model, R.gpt2(4))
    residual = [p for p in values if p.endswith(("attention/out/kernel", "mlp/linear2/kernel"))]
    assert len(residual) == 8  # 4 blocks x (out, linear2)

    def expected(path, shape):
        if path.endswith("bias"):
            return ("const", 0.0)
        if path.endswith("scale"):
            return ("const", 1.0)
        if path in residual:
            return ("std", 0.02 / math.sqrt(8))  # Radford et al. 2019: 0.02 / sqrt(2 n_layer)
        return ("std", 0.02)  # q/k/v, linear1, logitdense, output_embed

    check_leaves(values, expected)


def test_gpt2_on_flax_lm1b_linen_dense_names():
    params_, _ = real("lm1b_linen")
    values = draw_loop(params_, R.gpt2(2), seeds=2)
    residual = ("MultiHeadDotProductAttention_0/out/kernel", "MlpBlock_0/Dense_1/kernel")
    assert sum(p.endswith(residual) for p in values) == 4  # 2 blocks x (out, Dense_1)
    for path, x in values.items():
        if path.endswith(residual):
            assert_std(x, 0.02 / math.sqrt(4), path)  # 0.02 / sqrt(2 n_layer)
        elif path.endswith(("kernel", "embedding")):
            assert_std(x, 0.02, path)


def test_t5_on_flax_wmt_encoder():
    """T5 on wmt's Encoder1DBlock (MultiHeadDotProductAttention_0, MlpBlock_0/Dense_0, _1):
    d_model 32, 4 heads of d_kv 8, d_ff 64; fans per role written out here."""
    params_, _ = real("wmt")
    values = draw_loop(params_, R.t5(d_kv=8), seeds=2)

    def expected(path, shape):
        if c := common(path):
            return c
        if path.endswith("query/kernel"):
            return ("std", (32 * 8) ** -0.5)  # (d_model d_kv)^-1/2
        if path.endswith(("key/kernel", "value/kernel")):
            return ("std", 32**-0.5)
        if path.endswith("out/kernel"):
            return ("std", (4 * 8) ** -0.5)  # (h d_kv)^-1/2
        if path.endswith("Dense_0/kernel"):
            return ("std", 32**-0.5)
        if path.endswith("Dense_1/kernel"):
            return ("std", 64**-0.5)
        if path.endswith("embedding"):
            return ("std", 1.0)
        raise AssertionError(path)

    check_leaves(values, expected)


def test_fixup_on_flax_resnet18_preset_keeps_zero_gamma():
    """Flax ImageNet ResNet-18: preset='flax_resnet' zeroes Conv_1 (0-based, the branch's last
    conv) and the Dense_0 classifier, scales Conv_0 by 8^(-1/2), He on conv_init/conv_proj, and
    keeps BatchNorm gammas as Flax initialised them (zeros on each block's BatchNorm_1)."""
    (_, variables), _ = real("resnet18")
    p = variables["params"]
    new = reinit(p, jax.random.key(0), R.fixup(8, 2, preset="flax_resnet"))
    flat_old = {q: np.asarray(a) for q, a, _ in named_leaves(p)}
    flat = {q: np.asarray(a, np.float64) for q, a, _ in named_leaves(new)}
    for path, w in flat.items():
        if path.endswith("Conv_1/kernel") or path == "Dense_0/kernel":
            np.testing.assert_array_equal(w, 0.0, err_msg=path)
        elif path.endswith("scale"):
            np.testing.assert_array_equal(w, flat_old[path], err_msg=path)  # kept, not 1
        elif path.endswith("bias"):
            np.testing.assert_array_equal(w, 0.0, err_msg=path)
    for b in range(8):
        assert (flat[f"ResNetBlock_{b}/BatchNorm_1/scale"] == 0).all()  # Flax's zero_init
        assert (flat[f"ResNetBlock_{b}/BatchNorm_0/scale"] == 1).all()
    # Conv_0 of the 8 blocks: He x 8^(-1/2); pooled over blocks of equal fan_in.
    for b in range(8):
        w = flat[f"ResNetBlock_{b}/Conv_0/kernel"]
        fan_in = w.shape[0] * w.shape[1] * w.shape[2]
        assert_std(w[None], math.sqrt(2 / fan_in) * 8**-0.5, f"block {b} Conv_0")
    stem = flat["conv_init/kernel"]
    assert_std(stem[None], math.sqrt(2 / (7 * 7 * 3)), "conv_init")


def test_index_base_picks_the_right_conv():
    """1-based {j} under Flax naming would zero Conv_2 (absent) and scale Conv_1: it raises;
    index_base=0 zeroes Conv_1 and scales Conv_0."""
    (_, variables), _ = real("resnet18")
    p = variables["params"]
    wrong = R.fixup(8, 2, layer="*Block_*/Conv_{j}/kernel", classifier="*/Dense_0/kernel")
    with pytest.raises(ValueError, match=r"last layer of each branch.*Conv_2"):
        reinit(p, jax.random.key(0), wrong)
    right = R.fixup(
        8, 2, layer="*Block_*/Conv_{j}/kernel", index_base=0, classifier="*/Dense_0/kernel"
    )
    assert [r[0] for r in right[:3]] == [
        "*Block_*/Conv_1/kernel",
        "*/Dense_0/kernel",
        "*Block_*/Conv_0/kernel",
    ]
    z = R.zerO(2, preset="flax_resnet")
    assert z[0][0] == "*Block_*/Conv_1/kernel"


def test_transformer_names_index_base_one():
    names = R.TransformerNames(block="layer_{i}", index_base=1)
    assert names.layer_index("encoder/layer_1/attn/out/kernel") == 0
    assert names.layer_index("encoder/layer_12/attn/out/kernel") == 11
    assert R.TransformerNames().layer_index("decoder/encoderdecoderblock_3/mlp/linear2/kernel") == 3
    assert R.TransformerNames().layer_index("head/kernel") is None
    params_ = {
        f"layer_{i}": {
            "attn": {"out": {"kernel": jnp.zeros((8, 8))}},
            "fc2": {"kernel": jnp.zeros((16, 8))},
        }
        for i in (1, 2)
    }
    new = reinit(
        params_,
        jax.random.key(0),
        R.olmo(
            2, "llama_depth", names=R.TransformerNames(block="layer_{i}", index_base=1, head=())
        ),
    )
    # layer_2 is the 0-based block 1: T(0.02/sqrt(2*2)), so |w| <= 3 * 0.01.
    assert float(jnp.abs(new["layer_2"]["fc2"]["kernel"]).max()) <= 3 * 0.02 / 2 + 1e-9
    assert float(jnp.abs(new["layer_1"]["fc2"]["kernel"]).max()) > 3 * 0.02 / 2


def test_recipe_survives_concatenation():
    r = R.gpt2(2)
    assert isinstance(r + [("x", None)], R.Recipe)
    assert isinstance([("x", None)] + r, R.Recipe)
    both = R.rezero() + r
    assert isinstance(both, R.Recipe) and len(both.needs) == 3
    assert not isinstance(r[:2], R.Recipe)  # a slice is plain rules: no check
    import pickle

    back = pickle.loads(pickle.dumps(r))
    assert back == r and back.needs == r.needs


def _lm1b_tree():
    return nnx.state(real("lm1b_nnx")[0], nnx.Param)


def _resnet_params():
    return real("resnet18")[0][1]["params"]


MISS_ROWS = [
    (
        "gpt2-fairseq-only-names",
        lambda: reinit(
            _lm1b_tree(),
            jax.random.key(0),
            R.gpt2(4, names=R.TransformerNames(mlp_out="*fc2/kernel")),
        ),
        ValueError,
        [
            "`jinit.recipes.gpt2`",
            r"gpt2\(n_layers=4\)",
            "mlp_out",
            r"\*fc2/kernel",
            "linear2/kernel",
            r"TransformerNames\(mlp_out=",
        ],
    ),
    (
        "fixup-default-names-on-flax-resnet",
        lambda: reinit(_resnet_params(), jax.random.key(0), R.fixup(8, 2)),
        ValueError,
        [
            "`jinit.recipes.fixup`",
            "last layer of each branch",
            "conv2/kernel",
            "classifier",
            "ResNetBlock_0/Conv_0/kernel",
            "preset='flax_resnet'",
            "index_base",
        ],
    ),
    (
        "zerO-default-names-on-flax-resnet",
        lambda: reinit(_resnet_params(), jax.random.key(0), R.zerO(2)),
        ValueError,
        ["`jinit.recipes.zerO`", "conv2/kernel", "preset='flax_resnet'"],
    ),
    (
        "t5-renamed-attention",
        lambda: reinit(
            {"attn": {"q": {"kernel": jnp.zeros((8, 2, 4))}}}, jax.random.key(0), R.t5(4)
        ),
        ValueError,
        ["`jinit.recipes.t5`", "query", "key", "value", "attn/q/kernel"],
    ),
    (
        "olmo-no-head",
        lambda: reinit(
            _lm1b_tree(),
            jax.random.key(0),
            R.olmo(4, names=R.TransformerNames(head="*lm_head/kernel")),
        ),
        ValueError,
        ["`jinit.recipes.olmo`", "head", "lm_head", "logitdense/kernel"],
    ),
    (
        "deepnorm-wrong-scope",
        lambda: reinit(_lm1b_tree(), jax.random.key(0), R.deepnorm(2, 4)),
        ValueError,
        ["`jinit.recipes.deepnorm`", "in 'encoder'", r"\*encoder/"],
    ),
    (
        "rezero-after-gpt2-names-both",
        lambda: reinit(_lm1b_tree(), jax.random.key(0), R.gpt2(4) + R.rezero()),
        ValueError,
        ["`jinit.recipes.rezero`", "gates", r"\*alpha"],
    ),
    (
        "retinanet-no-cls",
        lambda: reinit(
            {"head": {"kernel": jnp.zeros((4, 2)), "bias": jnp.zeros(2)}},
            jax.random.key(0),
            R.retinanet(),
        ),
        ValueError,
        ["`jinit.recipes.retinanet`", "classification bias", "cls_score/bias", "cls_bias="],
    ),
    (
        "lstm-no-cell",
        lambda: reinit({"Dense_0": {"kernel": jnp.zeros((4, 2))}}, jax.random.key(0), R.lstm()),
        ValueError,
        ["`jinit.recipes.lstm`", "hf/bias", "LSTMCell"],
    ),
    (
        "recipe-with-regex",
        lambda: reinit({"gate": jnp.zeros(3)}, jax.random.key(0), R.skipinit("gate"), regex=True),
        ValueError,
        ["`jinit.recipes.skipinit`", "globs", "regex=False"],
    ),
    (
        "index-base-two",
        lambda: R.fixup(4, 2, index_base=2),
        ValueError,
        ["`jinit.recipes.fixup`", "index_base", "0 or 1", "2"],
    ),
    (
        "names-index-base-bool",
        lambda: R.TransformerNames(index_base=True),
        ValueError,
        ["`jinit.recipes.TransformerNames`", "index_base", "True"],
    ),
    (
        "fixup-unknown-preset",
        lambda: R.fixup(4, 2, preset="torchvision"),
        ValueError,
        ["`jinit.recipes.fixup`", "preset", "flax_resnet"],
    ),
]


@pytest.mark.parametrize("call, exc, patterns", params(MISS_ROWS))
def test_recipes_never_silently_miss(call, exc, patterns):
    check_raises(call, exc, patterns)


# ---------------------------------------------------------------------------------------------
# Every transformer recipe on ViT (linen, layouts read by jinit.layouts) and on an equinox
# (torch-layout) transformer: each leaf's law from its own layer's fans.
# ---------------------------------------------------------------------------------------------
#
# Fans below are written out per role from each model's dimensions (not from jinit):
# ViT (tests/real_models.py `vit`): d = 32, 4 heads of 8, mlp 64, 4x4 patches of 3 channels, 10
# classes, 2 blocks; the patch-embedding Conv `embedding/kernel` (4, 4, 3, 32) has fan_in
# 4*4*3 = 48 (a fallback rule's in_first reading gave 4), fan_out 4*4*32 = 512; the learned
# position table `pos_embedding` (1, 17, 32) is the recipes' embedding, width d = 32.
# Equinox: d = 32, 4 heads of qk_size 4 (query_proj weight (16, 32): fan_in 32, fan_out 16; a
# Flax reading of the (out, in) weight would give fan_in 16), mlp 64, vocab 64, 2 blocks.
# Each leaf's second moment is checked by `assert_std` (6 standard errors of the normal's
# sqrt(2/n): conservative for the uniform and truncated laws, whose x² has a smaller variance).

VIT_FANS = {
    "query": (32, 32),
    "key": (32, 32),
    "value": (32, 32),
    "attn_out": (32, 32),
    "mlp_in": (32, 64),
    "mlp_out": (64, 32),
    "head": (32, 10),
    "other": (48, 512),  # the patch conv, reached by the recipes' fallback rule
    "embed": (32, None),  # features
}
EQX_FANS = {
    "query": (32, 16),
    "key": (32, 16),
    "value": (32, 16),
    "attn_out": (16, 32),
    "mlp_in": (32, 64),
    "mlp_out": (64, 32),
    "head": (32, 64),
    "embed": (32, None),
}
EQX_NAMES = dict(
    block="blocks/{i}",
    query="*query_proj/weight",
    key="*key_proj/weight",
    value="*value_proj/weight",
    attn_out="*output_proj/weight",
    mlp_in="*linear1/weight",
    mlp_out="*linear2/weight",
    embed="*embed/weight",
    head="*head/weight",
    norm="*norm*/weight",
    kernel="*weight",
)


def _vit_role(path: str) -> str | None:
    for suffix, role in (
        ("query/kernel", "query"),
        ("key/kernel", "key"),
        ("value/kernel", "value"),
        ("out/kernel", "attn_out"),
        ("Dense_0/kernel", "mlp_in"),
        ("Dense_1/kernel", "mlp_out"),
        ("head/kernel", "head"),
        ("embedding/kernel", "other"),
        ("pos_embedding", "embed"),
        ("scale", "norm"),
        ("bias", "bias"),
    ):
        if path.endswith(suffix):
            return role
    return None  # cls


def _eqx_role(path: str) -> str | None:
    for suffix, role in (
        ("query_proj/weight", "query"),
        ("key_proj/weight", "key"),
        ("value_proj/weight", "value"),
        ("output_proj/weight", "attn_out"),
        ("linear1/weight", "mlp_in"),
        ("linear2/weight", "mlp_out"),
        ("head/weight", "head"),
        ("embed/weight", "embed"),
        ("bias", "bias"),
    ):
        if path.endswith(suffix):
            return role
    return "norm" if "norm" in path else None


L_VIT = 2  # blocks in both models
S_OLMO = 0.02


def _recipe_law(recipe: str, role: str, fi: int, fo: int | None, i: int | None, dkv: int):
    """('std', s[, bound]) | 'keep' for a role under a recipe, from the papers' formulas."""
    L = L_VIT

    def t(sigma):  # OLMo: N(0, sigma²) cut at ±3 sigma, not renormalised
        return ("std", sigma * TRUNC3, 3 * sigma)

    if role == "bias":
        return ("const", 0.0)
    if role == "norm":
        return ("const", 1.0)
    if recipe == "gpt2":
        return ("std", 0.02 / math.sqrt(2 * L) if role in ("attn_out", "mlp_out") else 0.02)
    if recipe == "mitchell":
        if role in ("attn_out", "mlp_out"):
            return t(1 / math.sqrt(2 * fi * (i + 1)))
        return t(1 / math.sqrt(fi))  # embed: fi = d; head: fi = d
    if recipe in ("full_megatron", "llama", "llama_depth"):
        if role == "head":
            return t(1 / math.sqrt(fi))
        if role == "embed":
            return t(S_OLMO) if recipe == "full_megatron" else ("std", 1.0)
        if role in ("attn_out", "mlp_out"):
            n = 2 * (i + 1) if recipe == "llama_depth" else 2 * L
            return t(S_OLMO / math.sqrt(n))
        return t(S_OLMO)
    if recipe == "t5":  # d_kv = the model's head dim
        if role == "embed":
            return ("std", 1.0)
        return ("std", 1 / math.sqrt(fi * (dkv if role == "query" else 1)))
    if recipe == "deepnorm":  # encoder-only, N = L: beta = (8N)^(-1/4)
        beta = (8 * L) ** -0.25
        if role in ("value", "attn_out", "mlp_in", "mlp_out"):
            return ("std", beta * math.sqrt(2 / (fi + fo)))
        if role in ("query", "key"):
            return ("std", math.sqrt(2 / (fi + fo)))
        return "keep"
    if recipe == "tfixup":  # encoder-only, N = L: Xavier uniform x 0.67 N^(-1/4)
        g = 0.67 * L**-0.25
        if role in ("value", "attn_out", "mlp_in", "mlp_out"):
            x = g * math.sqrt(2 / (fi + fo))
            return ("std", x, x * math.sqrt(3))
        if role in ("query", "key"):
            x = math.sqrt(2 / (fi + fo))
            return ("std", x, x * math.sqrt(3))
        if role == "embed":
            return ("std", (9 * L) ** -0.25 / math.sqrt(fi))
        if role == "head":
            return ("std", 1 / math.sqrt(fi))
        return "keep"
    raise AssertionError(recipe)


def _make_recipe(recipe: str, names, dkv: int):
    if recipe == "gpt2":
        return R.gpt2(L_VIT, names=names)
    if recipe == "t5":
        return R.t5(d_kv=dkv, names=names)
    if recipe == "deepnorm":
        return R.deepnorm(encoder_layers=L_VIT, names=names)
    if recipe == "tfixup":
        return R.tfixup(encoder_layers=L_VIT, names=names)
    return R.olmo(L_VIT, recipe, names=names)


RECIPES = ["gpt2", "mitchell", "full_megatron", "llama", "llama_depth", "t5", "deepnorm", "tfixup"]


class EqxBlock(eqx.Module):
    norm1: eqx.nn.LayerNorm
    attn: eqx.nn.MultiheadAttention
    norm2: eqx.nn.LayerNorm
    linear1: eqx.nn.Linear
    linear2: eqx.nn.Linear

    def __init__(self, key):
        k1, k2, k3 = jax.random.split(key, 3)
        self.norm1, self.norm2 = eqx.nn.LayerNorm(32), eqx.nn.LayerNorm(32)
        self.attn = eqx.nn.MultiheadAttention(4, 32, qk_size=4, vo_size=4, key=k1)
        self.linear1 = eqx.nn.Linear(32, 64, key=k2)
        self.linear2 = eqx.nn.Linear(64, 32, key=k3)


class EqxLM(eqx.Module):
    """A pre-LN decoder in equinox's torch layout: Embedding, blocks, norm, head."""

    embed: eqx.nn.Embedding
    blocks: list
    norm_f: eqx.nn.LayerNorm
    head: eqx.nn.Linear

    def __init__(self, key):
        ks = jax.random.split(key, 4)
        self.embed = eqx.nn.Embedding(64, 32, key=ks[0])
        self.blocks = [EqxBlock(k) for k in ks[1:3]]
        self.norm_f = eqx.nn.LayerNorm(32)
        self.head = eqx.nn.Linear(32, 64, key=ks[3])


@functools.cache
def vit_model():
    (module, variables), x = RM.vit(num_layers=L_VIT)
    return variables["params"], jinit.layouts(module, x, train=False)


@functools.cache
def eqx_model():
    return RM._eqx_build(lambda: EqxLM(jax.random.key(0)))


def _check_model(values, old, role_of, fans_of, recipe, names, dkv):
    seen = set()
    for path, x in values.items():
        role = role_of(path)
        idx = names.layer_index(path)
        if role is None or role == "other" and recipe in ("deepnorm", "tfixup"):
            exp = "keep"
        else:
            fi, fo = fans_of.get(role, (None, None))
            exp = _recipe_law(recipe, role, fi, fo, idx, dkv)
        seen.add(role)
        if exp == "keep":
            np.testing.assert_array_equal(x, np.broadcast_to(old[path], x.shape), err_msg=path)
        elif exp[0] == "const":
            np.testing.assert_array_equal(x, np.full_like(x, exp[1]), err_msg=path)
        else:
            assert_std(x, exp[1], f"{recipe}: {path}", exp[2] if len(exp) > 2 else None)
    return seen


@pytest.mark.parametrize("recipe", RECIPES)
def test_every_recipe_on_vit_uses_each_layers_fans(recipe):
    p, lay = vit_model()
    names = R.TransformerNames()
    rules = _make_recipe(recipe, names, 8) + [
        jinit.Rule("*", None, fallback=True)
    ]  # keep cls (and, for some, the conv)
    keys = jax.random.split(jax.random.key(7), SEEDS)
    out = jax.vmap(lambda k: reinit(p, k, rules, layouts=lay))(keys)
    values = {q: np.asarray(a, np.float64) for q, a, _ in named_leaves(out)}
    old = {q: np.asarray(a, np.float64) for q, a, _ in named_leaves(p)}
    seen = _check_model(values, old, _vit_role, VIT_FANS, recipe, names, 8)
    assert {"query", "attn_out", "mlp_out", "head", "other", "embed", None} <= seen


def test_vit_without_layouts_warns_and_conv_fallback_is_jax_default():
    """A bare ViT params dict (no layouts=): olmo 'mitchell' still draws the patch conv with
    fan_in 4*4*3 = 48 (its fallback reads jax's default, not in_first), and reinit warns that
    the rank-4 `embedding/kernel` outside a 'conv'-named module has no known layer."""
    p, _ = vit_model()
    rules = R.olmo(L_VIT, "mitchell") + [("cls", None)]
    keys = jax.random.split(jax.random.key(3), SEEDS)
    with pytest.warns(UserWarning, match=r"embedding/kernel \(4, 4, 3, 32\).*fan_in 48"):
        out = jax.vmap(lambda k: reinit(p, k, rules))(keys)
    w = np.asarray(out["embedding"]["kernel"], np.float64)
    assert_std(w, TRUNC3 / math.sqrt(48), "embedding/kernel", 3 / math.sqrt(48))


@pytest.mark.parametrize("recipe", RECIPES)
def test_every_recipe_on_equinox_torch_layout(recipe):
    model = eqx_model()
    names = R.TransformerNames(**EQX_NAMES)
    rules = _make_recipe(recipe, names, 4) + [jinit.Rule("*", None, fallback=True)]
    keys = jax.random.split(jax.random.key(11), SEEDS)
    out = jax.vmap(lambda k: reinit(model, k, rules))(keys)
    old = {q: np.asarray(a, np.float64) for q, a, _ in named_leaves(model)}
    # (vmap turns the module's static floats, e.g. dropout p, into arrays: compare old leaves)
    values = {q: np.asarray(a, np.float64) for q, a, _ in named_leaves(out) if q in old}
    seen = _check_model(values, old, _eqx_role, EQX_FANS, recipe, names, 4)
    assert {"query", "attn_out", "mlp_in", "mlp_out", "head", "embed", "norm"} <= seen


def test_fan_scaled_with_layout_replaces_the_role_rule():
    conv = jinit.Layout.dense("flax.linen.Conv").bind((4, 4, 3, 32))
    f = R.fan_scaled(1.0, layout="in_first")
    assert f.fans((4, 4, 3, 32)) == (4, 4 * 3 * 32)  # the role's rule alone
    g = f.with_layout(conv)
    assert g.fans((4, 4, 3, 32)) == (48, 512)
    assert jinit.law(f, (4, 4, 3, 32), layout=conv).std == pytest.approx(48**-0.5, rel=1e-6)
    # Same fan on the call shape: the initialiser itself (bit-identical draws).
    q = jinit.Layout.dense_general(1, 2).bind((32, 4, 8))
    assert f.with_layout(q) == f
    emb = jinit.Layout.embed("flax.linen.Embed").bind((64, 32))
    assert R.fan_scaled(layout="embed").with_layout(emb) == R.fan_scaled(layout="embed")
    torch = jinit.Layout.torch().bind((16, 32))
    assert R.fan_scaled().with_layout(torch).fans((16, 32)) == (32, 16)
