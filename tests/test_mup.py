"""µP: width multipliers, initialisation, learning-rate scaling and the coordinate check."""

from __future__ import annotations

import json
import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import jinit
from jinit import mup
from jinit.trees._reinit import reinit
from jinit.trees._rules import path_key


def _mlp(n: int, d_in: int = 8, n_out: int = 10, expand: int = 1) -> dict:
    """A Flax-layout MLP parameter tree (ShapeDtypeStruct leaves)."""
    s = jax.ShapeDtypeStruct
    return {
        "in": {"kernel": s((d_in, n), jnp.float32), "bias": s((n,), jnp.float32)},
        "h": {"kernel": s((n, expand * n), jnp.float32), "bias": s((expand * n,), jnp.float32)},
        "out": {"kernel": s((expand * n, n_out), jnp.float32), "bias": s((n_out,), jnp.float32)},
    }


def _one(shape, base, **kw):
    p = {"w": jax.ShapeDtypeStruct(shape, jnp.float32)}
    b = {"w": jax.ShapeDtypeStruct(base, jnp.float32)}
    return mup.width_info(p, b, **kw)["w"]


# ---------------------------------------------------------------------------------------------
# Width multipliers and kinds: expected values worked out by hand from the shapes.
# ---------------------------------------------------------------------------------------------

KIND_CASES = [
    # name, shape, base shape, kwargs, kind, fan_in_mult, fan_out_mult
    ("dense hidden", (256, 256), (64, 64), {}, "hidden", 4.0, 4.0),
    ("dense expansion", (256, 1024), (64, 128), {}, "hidden", 4.0, 8.0),
    ("dense input", (8, 256), (8, 64), {}, "input", 1.0, 4.0),
    ("dense readout", (256, 10), (64, 10), {}, "output", 4.0, 1.0),
    ("conv hidden", (3, 3, 64, 128), (3, 3, 16, 32), {}, "hidden", 4.0, 4.0),
    ("conv stem", (7, 7, 3, 96), (7, 7, 3, 32), {}, "input", 1.0, 3.0),
    ("conv head", (1, 1, 128, 5), (1, 1, 32, 5), {}, "output", 4.0, 1.0),
    ("flax embed", (1000, 512), (1000, 128), {}, "input", 1.0, 4.0),
    ("bias", (512,), (128,), {}, "vector", 1.0, 4.0),
    ("fixed bias", (10,), (10,), {}, "finite", 1.0, 1.0),
    ("scalar", (), (), {}, "finite", 1.0, 1.0),
    (
        "torch (out, in) hidden",
        (1024, 256),
        (128, 64),
        {"in_axis": -1, "out_axis": -2},
        "hidden",
        4.0,
        8.0,
    ),
    (
        "torch readout via axes",
        (10, 256),
        (10, 64),
        {"axes": [("w", (-1, -2))]},
        "output",
        4.0,
        1.0,
    ),
]


@pytest.mark.parametrize(
    "shape,base,kw,kind,mi,mo", [c[1:] for c in KIND_CASES], ids=[c[0] for c in KIND_CASES]
)
def test_width_info_kinds_and_multipliers(shape, base, kw, kind, mi, mo):
    info = _one(shape, base, **kw)
    assert info.kind == kind
    assert info.fan_in_mult == pytest.approx(mi, rel=1e-12)
    assert info.fan_out_mult == pytest.approx(mo, rel=1e-12)


def test_delta_params_keep_kinds_at_base_width():
    base = _mlp(32)
    without = mup.width_info(base, base)
    assert {i.kind for i in without.values()} == {"finite"}
    with_delta = mup.width_info(base, base, delta_params=_mlp(64))
    assert {p: i.kind for p, i in with_delta.items()} == {
        "h/bias": "vector",
        "h/kernel": "hidden",
        "in/bias": "vector",
        "in/kernel": "input",
        "out/bias": "finite",
        "out/kernel": "output",
    }
    assert all(i.fan_in_mult == 1.0 == i.fan_out_mult for i in with_delta.values())


def test_nnx_state_paths_and_kinds():
    class Net(nnx.Module):
        def __init__(self, n: int, rngs: nnx.Rngs):
            self.emb = nnx.Embed(50, n, rngs=rngs)
            self.lin = nnx.Linear(n, n, rngs=rngs)
            self.norm = nnx.LayerNorm(n, rngs=rngs)
            self.head = nnx.Linear(n, 3, rngs=rngs)

    state = nnx.state(Net(64, nnx.Rngs(0)), nnx.Param)
    base = nnx.state(nnx.eval_shape(lambda: Net(16, nnx.Rngs(0))), nnx.Param)
    kinds = {p: i.kind for p, i in mup.width_info(state, base).items()}
    assert kinds == {
        "emb/embedding": "input",
        "head/bias": "finite",
        "head/kernel": "output",
        "lin/bias": "vector",
        "lin/kernel": "hidden",
        "norm/bias": "vector",
        "norm/scale": "vector",
    }


# ---------------------------------------------------------------------------------------------
# Learning rates (Tensor Programs V Table 3, mup.MuAdam / MuSGD), values by hand.
# ---------------------------------------------------------------------------------------------

# MLP 8 -> n -> 2n -> 10 at n = 128, base n = 32: in m_out = 4; h m_in = 4, m_out = 4 (2n/2n_b);
# with an expansion of the hidden layer only in the target: see the second table.
LR_CASES = [
    (
        "adam",
        {
            "in/kernel": 1,
            "in/bias": 1,
            "h/kernel": 1 / 4,
            "h/bias": 1,
            "out/kernel": 1 / 4,
            "out/bias": 1,
        },
    ),
    (
        "sgd",
        {
            "in/kernel": 4,
            "in/bias": 4,
            "h/kernel": 1,
            "h/bias": 4,
            "out/kernel": 1 / 4,
            "out/bias": 1,
        },
    ),
]


@pytest.mark.parametrize("optimizer,expected", LR_CASES, ids=[c[0] for c in LR_CASES])
def test_lr_multipliers_table(optimizer, expected):
    got = mup.lr_multipliers(_mlp(128, expand=2), _mlp(32, expand=2), optimizer)
    assert got.keys() == expected.keys()
    for p, v in expected.items():
        assert got[p] == pytest.approx(v, rel=1e-12), p


def test_lr_multipliers_unequal_width_ratios():
    # hidden (n, 4n) with base (n_b, n_b): m_in = 4, m_out = 16 -> SGD m_out / m_in = 4.
    params = {"h": jax.ShapeDtypeStruct((128, 512), jnp.float32)}
    base = {"h": jax.ShapeDtypeStruct((32, 32), jnp.float32)}
    assert mup.lr_multipliers(params, base, "sgd") == {"h": 4.0}
    assert mup.lr_multipliers(params, base, "adam") == {"h": 0.25}


@pytest.mark.parametrize("name", ["adam", "sgd"])
def test_optimizer_matches_multi_transform(name):
    """mup.adam/sgd == optax.multi_transform with a learning rate per parameter (independent)."""
    params = {
        "in": jnp.full((4, 64), 0.3),
        "h": jnp.full((64, 64), -0.2),
        "out": jnp.full((64, 3), 0.1),
        "b": jnp.full((64,), 0.5),
    }
    base = {"in": jnp.zeros((4, 16)), "h": jnp.zeros((16, 16)), "out": jnp.zeros((16, 3))}
    base["b"] = jnp.zeros((16,))
    lr = 0.05
    by_hand = {  # m = 4 for every width axis
        "adam": {"in": 1.0, "h": 0.25, "out": 0.25, "b": 1.0},
        "sgd": {"in": 4.0, "h": 1.0, "out": 0.25, "b": 4.0},
    }[name]
    make = {"adam": optax.adam, "sgd": optax.sgd}[name]
    reference = optax.multi_transform(
        {k: make(lr * m) for k, m in by_hand.items()}, {k: k for k in params}
    )
    tx = getattr(mup, name)(lr, params, base)

    def loss(p):
        x = jnp.linspace(-1.0, 1.0, 4)
        h = jnp.tanh(x @ p["in"] + p["b"]) @ p["h"]
        return jnp.sum((jnp.tanh(h) @ p["out"] - 1.0) ** 2)

    def run(opt):
        def step(carry, _):
            p, s = carry
            u, s = opt.update(jax.grad(loss)(p), s, p)
            return (optax.apply_updates(p, u), s), None

        return jax.lax.scan(step, (params, opt.init(params)), None, length=3)[0][0]

    ours, ref, plain = jax.jit(lambda: (run(tx), run(reference), run(make(lr))))()
    chex.assert_trees_all_close(ours, ref, rtol=2e-6, atol=1e-7)
    assert not np.allclose(ours["h"], plain["h"])  # the scaling does something


def test_scale_by_mup_on_nnx_state():
    class Net(nnx.Module):
        def __init__(self, n: int, rngs: nnx.Rngs):
            self.a = nnx.Linear(4, n, rngs=rngs)
            self.b = nnx.Linear(n, 2, rngs=rngs)

    state = nnx.state(Net(32, nnx.Rngs(0)), nnx.Param)
    base = nnx.state(nnx.eval_shape(lambda: Net(8, nnx.Rngs(0))), nnx.Param)
    tx = mup.scale_by_mup(mup.lr_multipliers(state, base))
    ones = jax.tree.map(jnp.ones_like, state)
    u, _ = tx.update(ones, tx.init(state))
    got = {p: float(np.unique(np.asarray(v))[0]) for p, v, _ in jinit._core._paths.named_leaves(u)}
    assert got == {"a/bias": 1.0, "a/kernel": 1.0, "b/bias": 1.0, "b/kernel": 0.25}


# ---------------------------------------------------------------------------------------------
# Initialisation
# ---------------------------------------------------------------------------------------------

SEEDS = 16


def _stats(params, base, **kw):
    """Per-leaf (std, max |x|) over SEEDS µP initialisations (one jit)."""
    keys = jax.random.split(
        jax.random.key(1), SEEDS
    )  # threefry: rbg keys under vmap are not independent
    draws = jax.jit(jax.vmap(lambda k: mup.init(params, base, k, **kw)))(keys)
    return {
        p: (float(jnp.std(v)), float(jnp.max(jnp.abs(v))))
        for p, v, _ in jinit._core._paths.named_leaves(draws)
    }


INIT_CASES = [
    # SP kernel rule, readout, expected std per kernel at n = 512, base n = 64 (m = 8), d_in = 8
    (
        "lecun zero",
        jinit.lecun_normal(),
        "zero",
        {"in/kernel": 1 / math.sqrt(8), "h/kernel": 1 / math.sqrt(512), "out/kernel": 0.0},
    ),
    (
        "lecun scaled",
        jinit.lecun_normal(),
        "scaled",
        {"in/kernel": 1 / math.sqrt(8), "h/kernel": 1 / math.sqrt(512), "out/kernel": 1 / 8 / 8},
    ),
    (
        "constant std",
        jinit.normal(0.02),
        "scaled",
        {"in/kernel": 0.02, "h/kernel": 0.02 / math.sqrt(8), "out/kernel": 0.02 / 8},
    ),
    (
        "uniform fan_avg",
        jinit.glorot_uniform(),
        "scaled",  # SP(base) var 2/(fi_b + fo_b), / m^p
        {
            "in/kernel": math.sqrt(2 / 72),
            "h/kernel": math.sqrt(2 / 128 / 8),
            "out/kernel": math.sqrt(2 / 74) / 8,
        },
    ),
]


@pytest.mark.parametrize(
    "sp,readout,expected", [c[1:] for c in INIT_CASES], ids=[c[0] for c in INIT_CASES]
)
def test_rules_std_follows_the_table(sp, readout, expected):
    params, base = _mlp(512), _mlp(64)
    rules = dict(
        mup.rules(params, base, sp_rules=[("*bias", jinit.zeros), ("*", sp)], readout=readout)
    )
    for p, want in expected.items():
        layer, name = p.split("/")
        lw = jinit.law(rules[p], params[layer][name].shape)
        if want == 0.0:
            assert isinstance(lw, jinit.laws.DeterministicLaw) and not np.any(lw.value), p
        else:
            assert lw.std == pytest.approx(want, rel=1e-6), (p, lw.std, want)
    for p in ("in/bias", "h/bias", "out/bias"):
        assert rules[p] == jinit.zeros


def test_init_samples_follow_the_table():
    """Empirical std of µP draws over seeds (one jit) against the hand-computed table."""
    sp, readout, expected = INIT_CASES[2][1:]  # constant std: every kernel is rescaled
    stats = _stats(
        _mlp(512), _mlp(64), sp_rules=[("*bias", jinit.zeros), ("*", sp)], readout=readout
    )
    for p, want in expected.items():  # >= 16 * 4096 samples: std within ~0.5 % (1 sigma)
        assert stats[p][0] == pytest.approx(want, rel=0.03), (p, stats[p][0], want)
    for p in ("in/bias", "h/bias", "out/bias"):
        assert stats[p][1] == 0.0


@pytest.mark.parametrize("readout", ["zero", "scaled"])
def test_base_width_mup_law_equals_sp_law(readout):
    """At base width (kinds from a delta model) every µP initialiser has its SP law."""
    sp = [("*bias", jinit.normal(0.1)), ("*", jinit.he_uniform())]
    base = _mlp(32)
    r = mup.rules(base, base, sp_rules=sp, readout=readout, delta_params=_mlp(64))
    for pattern, ini in r:
        sp_ini = sp[0][1] if pattern.endswith("bias") else sp[1][1]
        shape = base[pattern.split("/")[0]][pattern.split("/")[1]].shape
        if readout == "zero" and pattern == "out/kernel":
            assert ini == jinit.zeros
            continue
        assert jinit.law(ini, shape) == jinit.law(sp_ini, shape), pattern


def test_rules_match_reinit_and_init_bitwise():
    params = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), _mlp(96))
    base = _mlp(32)
    key = jax.random.key(3, impl="rbg")
    sp = [("*bias", jinit.zeros), ("*", jinit.normal(0.02))]
    direct = mup.init(params, base, key, sp_rules=sp, readout="scaled")
    via_reinit = reinit(params, key, mup.rules(params, base, sp_rules=sp, readout="scaled"))
    chex.assert_trees_all_equal(direct, via_reinit)
    # the hidden kernel is the SP draw (same key) times 1/sqrt(3): mup.scaled samples c * init
    h_sp = jinit.normal(0.02)(path_key(key, "h/kernel"), (96, 96))
    np.testing.assert_allclose(direct["h"]["kernel"], h_sp / math.sqrt(3), rtol=1e-6)


def test_init_keeps_nnx_boxes_and_dtypes():
    class Net(nnx.Module):
        def __init__(self, n: int, rngs: nnx.Rngs):
            self.a = nnx.Linear(4, n, rngs=rngs, param_dtype=jnp.bfloat16)
            self.b = nnx.Linear(n, 2, rngs=rngs)

    model = Net(64, nnx.Rngs(0))
    base = nnx.state(nnx.eval_shape(lambda: Net(16, nnx.Rngs(0))), nnx.Param)
    new = mup.init(nnx.state(model, nnx.Param), base, jax.random.key(0))
    assert isinstance(new["a"]["kernel"], nnx.Param)
    assert new["a"]["kernel"][...].dtype == jnp.bfloat16
    nnx.update(model, new)
    assert float(jnp.abs(model.b.kernel[...]).max()) == 0.0  # zero readout
    assert float(jnp.abs(model.a.kernel[...]).max()) > 0.0


def test_init_keeps_integer_leaves_and_numpy_float64():
    """Counters are not weights: rules keep them (None); a numpy float64 leaf stays float64."""
    params = {"h": np.zeros((64, 64)), "step": jnp.array(3, jnp.int32)}
    base = {"h": np.zeros((16, 16)), "step": jnp.array(0, jnp.int32)}
    assert mup.rules(params, base)[1] == ("step", None)
    with pytest.warns(UserWarning, match=r"h \(float64\).*jax_enable_x64"):
        new = mup.init(params, base, jax.random.key(0))
    assert int(new["step"]) == 3 and new["step"].dtype == jnp.int32
    assert type(new["h"]) is np.ndarray and new["h"].dtype == np.float64
    as32 = mup.init({"h": jnp.zeros((64, 64))}, {"h": base["h"]}, jax.random.key(0))["h"]
    np.testing.assert_array_equal(new["h"], np.asarray(as32).astype(np.float64))


def test_scaled_initializer_law_and_repr():
    ini = mup.scaled(jinit.truncated_normal(1.0), 0.25)
    lw = jinit.law(ini, (8, 8))
    assert lw.std == pytest.approx(0.25 * jinit.law(jinit.truncated_normal(1.0), (8, 8)).std)
    assert repr(ini).startswith("jinit.mup.scaled(")
    assert ini == mup.scaled(jinit.truncated_normal(1.0), 0.25)  # hashable hyper-parameters
    x = jax.jit(jax.vmap(lambda k: ini(k, (8, 8))))(jax.random.split(jax.random.key(0), 256))
    assert float(jnp.std(x)) == pytest.approx(lw.std, rel=0.03)


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------

ERROR_CASES = [
    (
        "other paths",
        lambda: mup.width_info(_mlp(64), {"in": _mlp(32)["in"]}),
        ValueError,
        "same parameters",
    ),
    (
        "rank",
        lambda: mup.width_info({"w": jnp.zeros((4, 4))}, {"w": jnp.zeros(4)}),
        ValueError,
        "same ranks",
    ),
    ("receptive field", lambda: _one((5, 5, 8, 8), (3, 3, 8, 8)), ValueError, "neither `in_axis`"),
    (
        "delta disagrees",
        lambda: mup.width_info(_mlp(64), _mlp(32), delta_params=_mlp(32)),
        ValueError,
        "delta_params",
    ),
    (
        "readout",
        lambda: mup.rules(_mlp(64), _mlp(32), readout="zeros"),
        ValueError,
        "Did you mean 'zero'",
    ),
    (
        "jax init",
        lambda: mup.rules(_mlp(64), _mlp(32), sp_rules=[("*", jax.nn.initializers.lecun_normal())]),
        TypeError,
        "jinit initialisers",
    ),
    (
        "no rule",
        lambda: mup.rules(_mlp(64), _mlp(32), sp_rules=[("*kernel", jinit.lecun_normal())]),
        ValueError,
        "no rule",
    ),
    ("optimizer", lambda: mup.lr_multipliers(_mlp(64), _mlp(32), "adamw"), ValueError, "optimizer"),
    ("multipliers", lambda: mup.scale_by_mup([1.0]), TypeError, "mapping"),
    (
        "missing multiplier",
        lambda: mup.scale_by_mup({"a": 1.0}).update({"b": jnp.ones(2)}, None),
        ValueError,
        "no multiplier",
    ),
    ("widths", lambda: mup.coord_check((64, 32)), ValueError, "increasing"),
    ("empty tree", lambda: mup.width_info({}, {}), ValueError, "found no array"),
    (
        "data shape",
        lambda: mup.coord_check((8, 16), data=(np.zeros((4, 3)), np.zeros(5))),
        ValueError,
        "data=",
    ),
]


@pytest.mark.parametrize(
    "fn,exc,match", [c[1:] for c in ERROR_CASES], ids=[c[0] for c in ERROR_CASES]
)
def test_errors_name_the_function_and_the_fix(fn, exc, match):
    with pytest.raises(exc, match=match) as e:
        fn()
    assert "jinit.mup." in str(e.value)


# ---------------------------------------------------------------------------------------------
# Coordinate check: µP flat in width, SP drifts (thresholds from measurements, see below)
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def coord():
    # Measured (2 seeds, seeds 0 and 1 of the batch): µP |slope| <= 0.03 for every layer and
    # step; SP readout slope 0.47..0.61 after steps 1..3, SP last hidden layer 0.10..0.23.
    return mup.coord_check((32, 64, 128, 256), depth=2, steps=3, seeds=2, batch=32)


def test_coord_check_mup_flat_sp_grows(coord):
    assert coord.values["µP"].shape == (4, 4, 2, 3)  # steps + 1, widths, seeds, layers
    for layer in coord.layers:
        for t in range(coord.steps + 1):
            if layer == "Dense_2" and t == 0:  # zero readout: exactly 0 at every width
                assert np.all(coord.scale("µP", layer)[0] == 0.0)
                continue
            assert abs(coord.slope("µP", layer, t)) < 0.1, (layer, t)
    for t in range(1, coord.steps + 1):
        assert coord.slope("SP", "Dense_2", t) > 0.3, t
    assert coord.slope("SP", "Dense_1") > coord.slope("µP", "Dense_1") + 0.1
    # both start from the same SP initialisation of the hidden layers: no drift at t = 0
    assert abs(coord.slope("SP", "Dense_1", 0)) < 0.1


def test_coord_check_base_width_mup_is_sp():
    r = mup.coord_check((16, 32), depth=1, steps=2, seeds=1, batch=8, readout="scaled")
    np.testing.assert_array_equal(r.values["µP"][:, 0], r.values["SP"][:, 0])
    assert not np.array_equal(r.values["µP"][:, 1], r.values["SP"][:, 1])


def test_coord_check_json_and_plot(coord, tmp_path):
    d = coord.to_dict()
    json.dumps(d)
    assert d["µP"]["Dense_2"]["slope_per_step"][0] is None  # log of 0: no slope
    assert len(d["SP"]["Dense_0"]["scale"]) == coord.steps + 1
    path = tmp_path / "coord.png"
    fig = mup.plot_coord_check(coord, path)
    assert len(fig.axes) == 2 * len(coord.layers)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_width_info_on_flax_lm1b_attention_kernels():
    """Flax's lm1b decoder (tests/real_models.py) at d_model 64 / 8 heads against 32 / 4 heads
    (head_dim 8 fixed): q/k/v (d, heads, head_dim) and out (heads, head_dim, d) are hidden
    weights with fan multipliers 2 (DenseGeneral fans), not an axis error; linear1/linear2
    hidden, the embedding table an input weight, logitdense the readout."""
    import real_models as RM

    def state(width, heads):
        m, _ = RM.flax_lm1b_nnx(
            num_layers=1, emb_dim=width, qkv_dim=width, mlp_dim=2 * width, num_heads=heads
        )
        return jax.eval_shape(lambda: nnx.state(m, nnx.Param))

    info = mup.width_info(state(64, 8), state(32, 4))
    blk = "decoder/encoderdecoderblock_0/"
    for name in ("query", "key", "value", "out"):
        i = info[f"{blk}attention/{name}/kernel"]
        assert (i.kind, i.fan_in_mult, i.fan_out_mult) == ("hidden", 2.0, 2.0), name
    assert info[f"{blk}mlp/linear1/kernel"].kind == "hidden"
    assert info[f"{blk}mlp/linear2/kernel"].kind == "hidden"
    assert info["decoder/output_embed/embedding"].kind == "input"
    assert info["decoder/logitdense/kernel"].kind == "output"
    # An explicit override still wins over the attention default (here: jax's 2-D default,
    # under which d_model is neither fan axis, so width_info refuses).
    with pytest.raises(ValueError, match="changes size along axes"):
        mup.width_info(state(64, 8), state(32, 4), axes=[("*query/kernel", (-2, -1))])
