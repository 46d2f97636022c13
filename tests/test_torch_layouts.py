"""torch/equinox layouts (issue 11 §1-2): ``jinit.torch.*(layout=...)`` and ``init_like_torch``
on the layer's own layout, checked against torch 2.13's own fan computation and modules.

Exact checks only (no sampling statistics): fans equal torch's ``_calculate_fan_in_and_fan_out``
as integers; bounds and stds equal torch's formulas up to float32 rounding of the scale (the
sampler multiplies by a float32 scalar: relative error <= 2**-23 per rounding, 4 roundings at
most, so ``rel=1e-6``); draws of ``init_like_torch`` are bit-identical to the initialiser it
names, called with the leaf's key (``jinit.path_key``), so each leaf's law is the named one.

Speed: models are abstract (``eval_shape``: no draws to build them) and the draws a test needs
are made in one program per group of cases, compiled at low XLA optimisation (``fast_jit``); a
redraw compared bit for bit is made in the same program as the draw it checks.
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from real_models import _eqx_cnn_class, fast_jit

import jinit
import jinit.torch as jt

torch = pytest.importorskip("torch")
eqx = pytest.importorskip("equinox")
tnn = torch.nn

K = jax.random.key(0)
KEY = jax.random.key(7)
SQRT5 = math.sqrt(5)
REL = 1e-6  # float32 rounding of the scale (see the module docstring)


def torch_fans(shape) -> tuple[int, int]:
    return tnn.init._calculate_fan_in_and_fan_out(torch.empty(shape))


# --- jinit.torch.*(layout="torch") -------------------------------------------------------------

TORCH_SHAPES = [(6, 4), (1, 7), (6, 4, 3), (6, 2, 3, 5), (2, 3, 4, 5, 6)]


@pytest.mark.parametrize("shape", TORCH_SHAPES, ids=str)
def test_torch_layout_fans_are_torchs(shape):
    fi, fo = torch_fans(shape)
    for init in (jt.kaiming_uniform(layout="torch"), jt.xavier_normal(layout="torch")):
        assert init.fans(shape) == (fi, fo)
    # the Flax layout of the same weight (transposed) gives the same fans by default
    flax_shape = (*shape[2:], shape[1], shape[0])
    assert jt.kaiming_uniform().fans(flax_shape) == (fi, fo)


@pytest.mark.parametrize("shape", TORCH_SHAPES, ids=str)
def test_torch_layout_laws_are_torchs(shape):
    fi, fo = torch_fans(shape)
    gain = math.sqrt(2.0 / (1 + 5))  # torch's leaky_relu gain for a = sqrt(5)
    cases = [
        (jt.xavier_uniform(2.0, layout="torch"), "bound", 2.0 * math.sqrt(6.0 / (fi + fo))),
        (jt.xavier_normal(layout="torch"), "std", math.sqrt(2.0 / (fi + fo))),
        (jt.kaiming_uniform(a=SQRT5, layout="torch"), "bound", gain * math.sqrt(3.0 / fi)),
        (jt.kaiming_normal(mode="fan_out", layout="torch"), "std", math.sqrt(2.0) / math.sqrt(fo)),
        (jt.linear_weight(layout="torch"), "bound", 1 / math.sqrt(fi)),
        (jt.conv_weight(layout="torch"), "bound", 1 / math.sqrt(fi)),
    ]
    for init, what, want in cases:
        law = jinit.law(init, shape)
        got = law.support[1] if what == "bound" else law.std
        assert got == pytest.approx(want, rel=REL), (init, shape)


@pytest.mark.parametrize("shape", TORCH_SHAPES, ids=str)
def test_layout_names_are_the_same_across_the_api(shape):
    """'torch' and 'flax' mean the same in every ``layout=``: ``jinit.he_normal(layout=)``,
    ``jinit.variance_scaling(layout=)``, ``.for_layout``, ``jinit.law(layout=)`` and
    ``jinit.torch.*``: torch's fans for 'torch', the default axes (in -2, out -1) for 'flax'."""
    fi, fo = torch_fans(shape)
    he = jinit.he_normal(layout="torch")
    assert he.fans(shape) == (fi, fo) == jt.kaiming_normal(layout="torch").fans(shape)
    assert jinit.law(he, shape).variance == pytest.approx(2.0 / fi, rel=REL)
    vs = jinit.variance_scaling(1.0, "fan_avg", "uniform", layout="torch")
    assert jinit.law(vs, shape).support[1] == pytest.approx(math.sqrt(6 / (fi + fo)), rel=REL)
    by_law = jinit.law(jinit.lecun_normal(), shape, layout="torch")
    assert by_law.variance == pytest.approx(1.0 / fi, rel=REL)
    assert jinit.he_normal().for_layout("torch").fans(shape) == (fi, fo)
    # 'flax' is the default: the same initialiser (equal, so the same draw), and the same fans
    # as jax's on the flax-transposed shape
    assert jinit.he_normal(layout="flax") == jinit.he_normal()
    flax_shape = (*shape[2:], shape[1], shape[0])
    assert jinit.law(jinit.he_normal(), flax_shape, layout="flax").variance == pytest.approx(
        2.0 / fi, rel=REL
    )


def test_layout_name_errors_across_the_api():
    for call, api in [
        (lambda: jinit.he_normal(layout="Torch"), "he_normal"),
        (lambda: jinit.he_normal().for_layout("troch"), "he_normal.for_layout"),
        (lambda: jinit.law(jinit.he_normal(), (4, 3), layout="flx"), "jinit.law"),
    ]:
        with pytest.raises(ValueError, match=rf"^`{api}` got `layout=.*'flax'.*'torch'"):
            call()
    with pytest.raises(ValueError, match=r"both `layout="):
        jinit.he_normal(0, 1, layout="torch")


def test_flax_default_is_bit_identical():
    """layout='flax' (the default) builds the very initialiser of before layouts existed: equal
    and equal-hashing (so the same compiled draw, the same bits), with the same repr and law."""
    for build in (jt.xavier_uniform, jt.kaiming_normal, jt.linear_weight, jt.orthogonal, jt.dirac):
        a, b = build(), build(layout="flax")
        assert a == b and hash(a) == hash(b) and repr(a) == repr(b)
        assert a.layout is None
    law = jinit.law(jt.linear_weight(layout="flax"), (3, 3, 4, 8))
    assert law.support[1] == pytest.approx(1 / 6, rel=REL)  # fan_in = 3 * 3 * 4


def test_orthogonal_torch_layout_is_orthogonal_in_torchs_view():
    shapes = [(4, 2, 3), (8, 2, 2, 1), (3, 5)]
    draws = fast_jit(lambda k: [jt.orthogonal(2.0, layout="torch")(k, s) for s in shapes], K)
    for shape, w in zip(shapes, draws, strict=True):
        w = np.asarray(w, np.float64)
        m = w.reshape(shape[0], -1)  # torch's view: out x (in * prod(k))
        gram = m @ m.T if m.shape[0] <= m.shape[1] else m.T @ m
        np.testing.assert_allclose(gram, 4 * np.eye(gram.shape[0]), atol=1e-5)
        # and the law says the same view
        assert jinit.law(jt.orthogonal(2.0, layout="torch"), shape).column_axis == 0


@pytest.mark.parametrize("shape,groups", [((6, 4, 3), 1), ((6, 2, 3, 3), 3), ((4, 4, 3, 3, 3), 2)])
def test_dirac_torch_layout_equals_torch(shape, groups):
    t = torch.empty(shape)
    tnn.init.dirac_(t, groups=groups)
    w = jt.dirac(groups, layout="torch")(K, shape)
    np.testing.assert_array_equal(np.asarray(w), t.numpy())


def test_sparse_torch_layout_zeros_per_column_as_torch():
    t = torch.empty(8, 3)
    tnn.init.sparse_(t, 0.25)
    w = np.asarray(jt.sparse(0.25, layout="torch")(K, (8, 3)))
    assert (w == 0).sum(axis=0).tolist() == (t.numpy() == 0).sum(axis=0).tolist() == [2, 2, 2]


def test_layout_errors():
    with pytest.raises(ValueError, match=r"`jinit.torch.xavier_uniform` got `layout='troch'`"):
        jt.xavier_uniform(layout="troch")
    with pytest.raises(TypeError, match=r"`jinit.torch.orthogonal` needs `layout`"):
        jt.orthogonal(layout=3)
    with pytest.raises(ValueError, match=r"one input axis, one output axis"):
        jt.orthogonal(layout=jinit.Layout.dense_general(1, 2))(K, (4, 2, 3))


# --- init_like_torch on equinox modules (torch layout already) --------------------------------


_EQX_TORCH = {
    "Linear": lambda: tnn.Linear(12, 5),
    "Conv1d": lambda: tnn.Conv1d(4, 6, 5),
    "Conv2d-groups": lambda: tnn.Conv2d(4, 6, 3, groups=2),
    "Conv3d": lambda: tnn.Conv3d(2, 3, 2),
    "ConvTranspose2d": lambda: tnn.ConvTranspose2d(4, 6, 3),
    "ConvTranspose2d-groups": lambda: tnn.ConvTranspose2d(4, 6, 3, groups=2),
}


class _Layers(eqx.Module):
    """The equinox layers of the checks below in one module (one program draws them all)."""

    layers: dict
    mlp: eqx.nn.MLP
    embedding: eqx.nn.Embedding
    norm: eqx.nn.LayerNorm


def _eqx_layers() -> _Layers:
    k = jax.random.key(3)
    layers = {
        "Linear": eqx.nn.Linear(12, 5, key=k),
        "Conv1d": eqx.nn.Conv1d(4, 6, 5, key=k),
        "Conv2d-groups": eqx.nn.Conv2d(4, 6, 3, groups=2, key=k),
        "Conv3d": eqx.nn.Conv3d(2, 3, 2, key=k),
        "ConvTranspose2d": eqx.nn.ConvTranspose2d(4, 6, 3, key=k),
        "ConvTranspose2d-groups": eqx.nn.ConvTranspose2d(4, 6, 3, groups=2, key=k),
    }
    # the MLP(784, 10, 128, 3) (tests/real_models.py eqx_mlp's defaults)
    mlp = eqx.nn.MLP(784, 10, 128, 3, key=k)
    return _Layers(layers, mlp, eqx.nn.Embedding(50, 8, key=k), eqx.nn.LayerNorm(6))


_EQX: dict = {}


def _eqx_drawn() -> dict:
    """``init_like_torch`` of the abstract :class:`_Layers` (its LayerNorm concrete, with weight
    3 and bias 2 that must be reset) and its explain table; in the same program, each leaf
    redrawn with the initialiser the table names and the leaf's key. Computed once."""
    if not _EQX:
        abstract = eqx.filter_eval_shape(_eqx_layers)
        norm = eqx.nn.LayerNorm(6)
        norm = eqx.tree_at(lambda m: (m.weight, m.bias), norm, (jnp.full(6, 3.0), jnp.full(6, 2.0)))
        abstract = eqx.tree_at(lambda m: m.norm, abstract, norm)
        tables = []

        def program(key):
            new, table = jinit.torch.init_like_torch(abstract, key, explain=True)
            tables.append(table)
            again = {
                r.path: _named_initialiser(r)(jinit.path_key(key, r.path), r.shape)
                for r in table.records
                if r.path.startswith(("layers/", "embedding/"))
            }
            return eqx.filter(new, eqx.is_array), again

        new, again = fast_jit(program, KEY)
        _EQX.update(new=new, again=again, records={r.path: r for r in tables[0].records})
    return _EQX


@pytest.mark.parametrize("name", list(_EQX_TORCH))
def test_equinox_layer_matches_torch_module(name):
    """Weight and bias bounds are those of the same torch module (torch's own fans on its own
    weight, which for ConvTranspose is (in, out/groups, *k), not equinox's (out, in/groups,
    *k)); the draws are the named initialisers' bits."""
    drawn = _eqx_drawn()
    module, tmod = drawn["new"].layers[name], _EQX_TORCH[name]()
    fan_in, _ = tnn.init._calculate_fan_in_and_fan_out(tmod.weight)
    bound = 1 / math.sqrt(fan_in)
    assert module.weight.shape == tuple(_eqx_layers_shapes()[name])
    assert float(jnp.abs(module.weight).max()) <= bound * (1 + REL)
    assert float(jnp.abs(module.bias).max()) <= bound * (1 + REL)
    for leaf in ("weight", "bias"):
        path = f"layers/{name}/{leaf}"
        init = _named_initialiser(drawn["records"][path])
        value = getattr(module, leaf)
        assert jinit.law(init, value.shape).support[1] == pytest.approx(bound, rel=REL)
        np.testing.assert_array_equal(np.asarray(drawn["again"][path]), np.asarray(value))


def _eqx_layers_shapes() -> dict:
    abstract = eqx.filter_eval_shape(_eqx_layers)
    return {name: layer.weight.shape for name, layer in abstract.layers.items()}


def _named_initialiser(record):
    """The initialiser the explain table names for a leaf (a jinit.torch repr), rebuilt."""
    text = record.detail
    return eval(text, {"jinit": jinit, "Layout": jinit.Layout})  # noqa: S307 - our own reprs


def test_equinox_embedding_and_layernorm():
    drawn = _eqx_drawn()
    record = drawn["records"]["embedding/weight"]
    assert record.shape == (50, 8) and _named_initialiser(record) == jt.embedding()
    np.testing.assert_array_equal(
        np.asarray(drawn["new"].embedding.weight), np.asarray(drawn["again"]["embedding/weight"])
    )
    norm = drawn["new"].norm  # was weight 3, bias 2
    assert norm.weight.tolist() == [1.0] * 6 and norm.bias.tolist() == [0.0] * 6


def test_equinox_mlp_he_would_differ_but_torch_law_is_per_layer():
    """The issue's MLP(784, 10, 128, 3): each layer's bound is 1/sqrt(its own in_features)."""
    new = _eqx_drawn()["new"].mlp
    for layer, fan_in in zip(new.layers, (784, 128, 128, 128), strict=True):
        m = float(jnp.abs(layer.weight).max()) * math.sqrt(fan_in)
        assert 0.99 < m <= 1 + REL  # 1e3+ uniform draws reach 99% of the bound
        assert float(jnp.abs(layer.bias).max()) * math.sqrt(fan_in) <= 1 + REL


def test_equinox_tutorial_cnn_against_torch_modules():
    """The equinox tutorial CNN (tests/real_models.py), abstract: its rules and laws need no
    draw (``init_like_torch`` traced under ``jax.eval_shape``)."""
    model = eqx.filter_eval_shape(lambda: _eqx_cnn_class()(jax.random.key(0)))
    tables = []
    jax.eval_shape(lambda: tables.append(jinit.torch.init_like_torch(model, KEY, explain=True)[1]))
    table = tables[0]
    torch_layers = {
        "layers/0": tnn.Conv2d(1, 3, 4),
        "layers/4": tnn.Linear(1728, 512),
        "layers/6": tnn.Linear(512, 64),
        "layers/8": tnn.Linear(64, 10),
    }
    records = {r.path: r for r in table.records}
    for prefix, tmod in torch_layers.items():
        fan_in, _ = tnn.init._calculate_fan_in_and_fan_out(tmod.weight)
        for leaf in ("weight", "bias"):
            path = f"{prefix}/{leaf}"
            init = _named_initialiser(records[path])
            shape = records[path].shape
            # torch layout, no transposition (equinox's conv bias is (out, 1, 1))
            assert math.prod(shape) == getattr(tmod, leaf).numel()
            if leaf == "weight":
                assert shape == tuple(tmod.weight.shape)
            want = 1 / math.sqrt(fan_in)
            assert jinit.law(init, shape).support[1] == pytest.approx(want, rel=REL), path


# --- Flax layers: the layer's own layout --------------------------------------------------------


def test_nnx_attention_is_torch_linear_with_contracted_fan_in():
    """The issue's MHA (d=64, 4 heads): q/k/v kernels (64, 4, 16) bound 1/sqrt(64) = 0.125
    (not 1/sqrt(4) nor the Conv1d reading 0.0625); the draw is the layer's own flat
    ``kernel_init=jinit.torch.linear_weight()`` draw, reshaped."""
    abstract = nnx.eval_shape(lambda: nnx.MultiHeadAttention(4, 64, decode=False, rngs=nnx.Rngs(0)))
    graphdef, state = nnx.split(abstract)
    names = ("query", "out")

    def program(key):
        new = jinit.torch.init_like_torch(nnx.merge(graphdef, state), key)
        ws = {n: (getattr(new, n).kernel[...], getattr(new, n).bias[...]) for n in names}
        again = {n: jt.linear_weight()(jinit.path_key(key, f"{n}/kernel"), (64, 64)) for n in names}
        return ws, again

    ws, again = fast_jit(program, KEY)
    for name in names:
        w, b = ws[name]
        assert w.shape == ((64, 4, 16) if name == "query" else (4, 16, 64))
        np.testing.assert_array_equal(np.asarray(w), np.asarray(again[name]).reshape(w.shape))
        assert 0.99 * 0.125 < float(jnp.abs(w).max()) <= 0.125 * (1 + REL)
        assert float(jnp.abs(b).max()) <= 0.125 * (1 + REL)  # fan_in 64 for both


def test_linen_attention_needs_layouts_then_uses_them():
    class Net(nn.Module):
        @nn.compact
        def __call__(self, x):
            return nn.MultiHeadDotProductAttention(4)(x)

    net, x = Net(), jnp.ones((1, 3, 64))
    params = jax.eval_shape(net.init, K, x)["params"]
    with pytest.raises(
        ValueError,
        match=r"cannot tell whether .*MultiHeadDotProductAttention_0/\w+/kernel.* Conv1d",
    ):
        jinit.torch.init_like_torch(params, KEY)
    lays = jinit.layouts(net, x)
    new = fast_jit(lambda k: jinit.torch.init_like_torch(params, k, layouts=lays), KEY)
    q = new["MultiHeadDotProductAttention_0"]["query"]["kernel"]
    assert 0.99 * 0.125 < float(jnp.abs(q).max()) <= 0.125 * (1 + REL)


def test_linen_dense_general_batch_dims_and_conv_transpose_by_layout():
    class Net(nn.Module):
        @nn.compact
        def __call__(self, x, y):
            a = nn.DenseGeneral((2, 3), axis=-1, batch_dims=0)(x)  # kernel (5, 7, 2, 3)
            b = nn.ConvTranspose(6, (3, 3))(y)  # kernel (3, 3, 4, 6): torch fan = 6 * 9
            return a, b

    net = Net()
    x, y = jnp.ones((5, 2, 7)), jnp.ones((1, 4, 4, 4))
    params = jax.eval_shape(net.init, K, x, y)["params"]
    lays, tables = jinit.layouts(net, x, y), []

    def program(key):
        new, table = jinit.torch.init_like_torch(params, key, layouts=lays, explain=True)
        tables.append(table)
        return new

    new = fast_jit(program, KEY)
    records = {r.path: r for r in tables[0].records}
    dg = _named_initialiser(records["DenseGeneral_0/kernel"])
    assert jinit.law(dg, (5, 7, 2, 3)).support[1] == pytest.approx(1 / math.sqrt(7), rel=REL)
    ct = _named_initialiser(records["ConvTranspose_0/kernel"])
    want = 1 / math.sqrt(
        tnn.init._calculate_fan_in_and_fan_out(tnn.ConvTranspose2d(4, 6, 3).weight)[0]
    )
    assert jinit.law(ct, (3, 3, 4, 6)).support[1] == pytest.approx(want, rel=REL)
    assert float(jnp.abs(new["ConvTranspose_0"]["bias"]).max()) <= want * (1 + REL)
