"""One fan/layout convention for every kernel, whichever jinit tool touches it (issue 11 §1, §5).

For every Flax layer type (linen and nnx) and the equinox layers, one table row says how to
build the layer with a given ``kernel_init`` and what its kernel's fans are. Each row checks:

* ``jinit.layouts`` reads the layout, whose fans are the row's;
* ``kernel_init=init`` and ``jinit.reinit`` agree: bit for bit where the layer's own call is
  right (Dense, DenseGeneral/attention without batch dims, Conv, ConvTranspose), else the
  initialiser told the layout (``init.for_layout(...)``) gives the layer what ``reinit`` draws;
* ``jinit.law(init, shape, layout=)`` has variance 2/fan_in (He) and the drawn kernel's sample
  variance agrees with it (``summary``'s z-test: |z| <= 6, a false failure rate below 1e-8 per
  leaf for these sizes, module docstring of jinit.trees._summary);
* ``jinit.summary`` flags nothing on the correct model and flags ``std-off`` when the kernel is
  scaled by 2 (z > 30 at these sizes).
"""

from __future__ import annotations

import math
import warnings

import equinox as eqx
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import jinit
from jinit._core._checks import AxisError
from jinit._core._layout import Layout, retarget
from tests.bad_input import check_raises, params

KEY = jax.random.key(0)
HE = jinit.he_normal()
REST = jinit.Rule("*", None, fallback=True)  # keep every other leaf


def _fixed(init, key):
    """A kernel_init that ignores the layer's key and draws with ``key`` (to compare bits)."""

    def kernel_init(_, shape, dtype=jnp.float32):
        return init(key, shape, dtype)

    return kernel_init


# (id, framework, builder(kernel_init) -> nnx module or (linen module, x), kernel path,
#  (fan_in, fan_out), whether the layer's own kernel_init call gives the right fans)
CASES = [
    (
        "nnx-Linear",
        "nnx",
        lambda ki: nnx.Linear(48, 40, kernel_init=ki, rngs=nnx.Rngs(0)),
        "kernel",
        (48, 40),
        True,
    ),
    (
        "nnx-LinearGeneral-multi",
        "nnx",
        lambda ki: nnx.LinearGeneral(
            (8, 6), (4, 10), axis=(-2, -1), kernel_init=ki, rngs=nnx.Rngs(0)
        ),
        "kernel",
        (48, 40),
        True,
    ),
    (
        "nnx-LinearGeneral-batch",
        "nnx",
        lambda ki: nnx.LinearGeneral(48, 40, batch_axis={0: 3}, kernel_init=ki, rngs=nnx.Rngs(0)),
        "kernel",
        (48, 40),
        False,
    ),
    (
        "nnx-Einsum-bd,dhk",
        "nnx",
        lambda ki: nnx.Einsum("bd,dhk->bhk", (48, 4, 10), kernel_init=ki, rngs=nnx.Rngs(0)),
        "kernel",
        (48, 40),
        False,
    ),
    (
        "nnx-Einsum-bhk,hkd",
        "nnx",
        lambda ki: nnx.Einsum("bhk,hkd->bd", (4, 12, 40), kernel_init=ki, rngs=nnx.Rngs(0)),
        "kernel",
        (48, 40),
        False,
    ),
    (
        "nnx-Einsum-experts",
        "nnx",
        lambda ki: nnx.Einsum("ebd,edf->ebf", (3, 48, 40), kernel_init=ki, rngs=nnx.Rngs(0)),
        "kernel",
        (48, 40),
        False,
    ),
    (
        "nnx-Conv1d",
        "nnx",
        lambda ki: nnx.Conv(16, 12, (3,), kernel_init=ki, rngs=nnx.Rngs(0)),
        "kernel",
        (48, 36),
        True,
    ),
    (
        "nnx-Conv2d",
        "nnx",
        lambda ki: nnx.Conv(8, 12, (3, 3), kernel_init=ki, rngs=nnx.Rngs(0)),
        "kernel",
        (72, 108),
        True,
    ),
    (
        "nnx-Conv3d",
        "nnx",
        lambda ki: nnx.Conv(6, 8, (2, 2, 2), kernel_init=ki, rngs=nnx.Rngs(0)),
        "kernel",
        (48, 64),
        True,
    ),
    (
        "nnx-ConvTranspose",
        "nnx",
        lambda ki: nnx.ConvTranspose(8, 12, (3, 3), kernel_init=ki, rngs=nnx.Rngs(0)),
        "kernel",
        (72, 108),
        True,
    ),
    (
        "nnx-ConvTranspose-transposed",
        "nnx",
        lambda ki: nnx.ConvTranspose(
            8, 12, (3, 3), transpose_kernel=True, kernel_init=ki, rngs=nnx.Rngs(0)
        ),
        "kernel",
        (72, 108),
        False,
    ),
    (
        "nnx-Embed",
        "nnx",
        lambda ki: nnx.Embed(60, 48, embedding_init=ki, rngs=nnx.Rngs(0)),
        "embedding",
        (48, 60),
        False,
    ),
    (
        "nnx-MultiHeadAttention",
        "nnx",
        lambda ki: nnx.MultiHeadAttention(
            4, 48, qkv_features=40, decode=False, kernel_init=ki, rngs=nnx.Rngs(0)
        ),
        "query/kernel",
        (48, 40),
        True,
    ),
    (
        "nnx-MultiHeadAttention-out",
        "nnx",
        lambda ki: nnx.MultiHeadAttention(
            4, 48, qkv_features=40, decode=False, kernel_init=ki, rngs=nnx.Rngs(0)
        ),
        "out/kernel",
        (40, 48),
        True,
    ),
    (
        "linen-Dense",
        "linen",
        lambda ki: (nn.Dense(40, kernel_init=ki), jnp.ones((1, 48))),
        "kernel",
        (48, 40),
        True,
    ),
    (
        "linen-DenseGeneral-multi",
        "linen",
        lambda ki: (nn.DenseGeneral((4, 10), axis=(-2, -1), kernel_init=ki), jnp.ones((1, 8, 6))),
        "kernel",
        (48, 40),
        True,
    ),
    (
        "linen-DenseGeneral-batch",
        "linen",
        lambda ki: (nn.DenseGeneral(40, batch_dims=(0,), kernel_init=ki), jnp.ones((3, 2, 48))),
        "kernel",
        (48, 40),
        False,
    ),
    (
        "linen-Einsum",
        "linen",
        lambda ki: (nn.Einsum((48, 4, 10), "bd,dhk->bhk", kernel_init=ki), jnp.ones((2, 48))),
        "kernel",
        (48, 40),
        False,
    ),
    (
        "linen-Conv1d",
        "linen",
        lambda ki: (nn.Conv(12, (3,), kernel_init=ki), jnp.ones((1, 8, 16))),
        "kernel",
        (48, 36),
        True,
    ),
    (
        "linen-Conv2d",
        "linen",
        lambda ki: (nn.Conv(12, (3, 3), kernel_init=ki), jnp.ones((1, 6, 6, 8))),
        "kernel",
        (72, 108),
        True,
    ),
    (
        "linen-Conv3d",
        "linen",
        lambda ki: (nn.Conv(8, (2, 2, 2), kernel_init=ki), jnp.ones((1, 4, 4, 4, 6))),
        "kernel",
        (48, 64),
        True,
    ),
    (
        "linen-ConvTranspose",
        "linen",
        lambda ki: (nn.ConvTranspose(12, (3, 3), kernel_init=ki), jnp.ones((1, 6, 6, 8))),
        "kernel",
        (72, 108),
        True,
    ),
    (
        "linen-Embed",
        "linen",
        lambda ki: (nn.Embed(60, 48, embedding_init=ki), jnp.zeros((2,), jnp.int32)),
        "embedding",
        (48, 60),
        False,
    ),
    (
        "linen-MultiHeadDotProductAttention",
        "linen",
        lambda ki: (
            nn.MultiHeadDotProductAttention(4, qkv_features=40, kernel_init=ki),
            jnp.ones((1, 3, 48)),
        ),
        "query/kernel",
        (48, 40),
        True,
    ),
]


# Eager random draws of rank >= 3 compile for ~10-30 s of CPU each on XLA:CPU's default
# optimisation; the statistical draws below run as one program compiled at low optimisation
# (integer random bits are identical at any level; see tests/real_models.py).
_FAST = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


def fast_jit(fn, *args):
    return jax.jit(fn).lower(*args).compile(_FAST)(*args)


def spy(key, shape, dtype=jnp.float32):
    """A deterministic 'initialiser' whose values depend on the key, the call shape and the
    position (no random draw, so no compile): two results are equal only if both were called
    with the same key and shape and reshaped the same way."""
    k = jax.random.key_data(key).reshape(-1)[-1].astype(jnp.float32)
    flat = jnp.arange(math.prod(shape), dtype=jnp.float32) * (1 + shape[-1]) + k % 1009
    return flat.reshape(shape).astype(dtype)


def _build(framework, builder, kernel_init):
    """(params tree, layouts, getter of a leaf by path)."""
    if framework == "nnx":
        model = builder(kernel_init)
        return nnx.state(model, nnx.Param), jinit.layouts(model), _leaf
    module, x = builder(kernel_init)
    return module.init(jax.random.key(1), x)["params"], jinit.layouts(module, x), _leaf


def _leaf(tree, path):
    from jinit._core._paths import named_leaves

    return np.asarray(dict((p, a) for p, a, _ in named_leaves(tree))[path])


@pytest.mark.parametrize(
    "framework,builder,path,fans,right", [pytest.param(*c[1:], id=c[0]) for c in CASES]
)
def test_layer_layout_reinit_law_summary(framework, builder, path, fans, right):
    k = jinit.path_key(KEY, path)
    tree, lays, get = _build(framework, builder, _fixed(spy, k))
    lay = lays[path]
    assert tuple(lay.fans()) == tuple(float(f) for f in fans)
    shape = lay.shape

    # reinit calls an initialiser exactly as the layer calls its kernel_init (same key and call
    # shape, same reshape): bit for bit.
    new = jinit.reinit(tree, KEY, [(path, spy), REST], layouts=lays)
    assert np.array_equal(get(new, path), get(tree, path))
    # A jinit initialiser is used as it is where the layer's own call gives the layout's fans
    # (so reinit == kernel_init=HE bit for bit), else told the layout: kernel_init=
    # HE.for_layout(lay) then draws what reinit draws.
    if right:
        assert retarget(HE, lay) is HE
    else:
        assert retarget(HE, lay) == HE.for_layout(lay)
        assert tuple(jinit.fans(lay.call_shape())) != tuple(lay.fans())

    # The law with the layout: He's variance 2 / fan_in.
    lw = jinit.law(HE, shape, layout=lay)
    assert math.isclose(lw.variance, 2 / fans[0], rel_tol=1e-6)

    # A real draw agrees with the law (summary's z-test: |z| <= 6) and summary flags nothing.
    drawn = fast_jit(lambda t: jinit.reinit(t, KEY, [(path, HE), REST], layouts=lays), tree)
    row = jinit.summary(drawn, rules=[(path, HE)], layouts=lays)[path]
    assert row.flags == (), (row, lay)
    assert abs(row.z_std) <= 6
    assert math.isclose(row.expected_std, math.sqrt(lw.variance), rel_tol=1e-9)

    # A kernel scaled by 2 is flagged.
    sb = jinit.summary({path: 2 * get(drawn, path)}, rules=[(path, HE)], layouts={path: lay})
    assert "std-off" in sb[path].flags


def test_kernel_init_and_reinit_bit_identical_he():
    # The issue's route pair with the real He initialiser, on the attention projections whose
    # layer draws the flat (in, out) shape: reinit == the layer's kernel_init=HE, bit for bit.
    path = "query/kernel"
    k = jinit.path_key(KEY, path)
    mha = nnx.MultiHeadAttention(4, 32, decode=False, kernel_init=_fixed(HE, k), rngs=nnx.Rngs(0))
    new = jinit.reinit(mha, KEY, [(path, HE), REST])
    assert np.array_equal(np.asarray(new.query.kernel[...]), np.asarray(mha.query.kernel[...]))


EQX = [
    ("eqx-Linear", lambda: eqx.nn.Linear(48, 40, key=KEY), "weight", (48, 40)),
    ("eqx-Conv2d", lambda: eqx.nn.Conv2d(8, 12, 3, key=KEY), "weight", (72, 108)),
    ("eqx-ConvTranspose1d", lambda: eqx.nn.ConvTranspose1d(16, 12, 3, key=KEY), "weight", (48, 36)),
    ("eqx-Embedding", lambda: eqx.nn.Embedding(60, 48, key=KEY), "weight", (48, 60)),
    ("eqx-MLP", lambda: eqx.nn.MLP(48, 10, 40, 2, key=KEY), "layers/1/weight", (40, 40)),
]


def _eqx(ctor):
    arrays, static = eqx.partition(eqx.filter_eval_shape(ctor), eqx.is_array)
    return eqx.combine(fast_jit(lambda: eqx.filter(ctor(), eqx.is_array)), static)


@pytest.mark.parametrize("ctor,path,fans", [pytest.param(*c[1:], id=c[0]) for c in EQX])
def test_equinox_layouts(ctor, path, fans):
    model = _eqx(ctor)
    lay = jinit.layouts(model)[path]
    assert lay.layer.startswith("equinox.nn.") and lay.call == "raw"
    assert tuple(lay.fans()) == tuple(float(f) for f in fans)
    # torch layout (out, in, *k): He is told the layout (unless square, where it changes nothing)
    assert retarget(HE, lay) == (HE if fans[0] == fans[1] else HE.for_layout(lay))
    new = jinit.reinit(model, KEY, [(path, spy), REST])
    assert np.array_equal(_leaf(new, path), np.asarray(spy(jinit.path_key(KEY, path), lay.shape)))
    arrays, static = eqx.partition(model, eqx.is_array)
    drawn = eqx.combine(
        fast_jit(
            lambda a: eqx.filter(
                jinit.reinit(eqx.combine(a, static), KEY, [(path, HE), REST]), eqx.is_array
            ),
            arrays,
        ),
        static,
    )
    row = jinit.summary(drawn, rules=[(path, HE)])[path]
    assert row.flags == () and abs(row.z_std) <= 6
    assert math.isclose(row.expected_std**2, 2 / fans[0], rel_tol=1e-6)


def test_issue_numbers_mha_query_both_routes():
    # nnx.MultiHeadAttention(d=64, 4 heads): query (64, 4, 16); He: std sqrt(2/64) = 0.1768.
    mha = nnx.MultiHeadAttention(4, 64, decode=False, kernel_init=HE, rngs=nnx.Rngs(0))
    new = jinit.reinit(mha, KEY, [("*kernel", HE), ("*bias", jinit.zeros)])
    law_std = math.sqrt(
        jinit.law(HE, (64, 4, 16), layout=jinit.layouts(mha)["query/kernel"]).variance
    )
    assert math.isclose(law_std, math.sqrt(2 / 64), rel_tol=1e-6)
    for m in (mha, new):
        s = jinit.summary(m, rules=[("*kernel", HE), ("*bias", jinit.zeros)])
        assert s.ok, s
        assert math.isclose(s["query/kernel"].expected_std, law_std, rel_tol=1e-9)
    # and without rules, no false outlier
    assert jinit.summary(new).ok


def test_issue_numbers_eqx_mlp():
    m = eqx.nn.MLP(784, 10, 128, 3, key=KEY)
    new = jinit.reinit(m, KEY, [("*weight", HE), ("*bias", jinit.zeros)])
    want = [math.sqrt(2 / 784), math.sqrt(2 / 128), math.sqrt(2 / 128), math.sqrt(2 / 128)]
    assert [round(w, 4) for w in want] == [0.0505, 0.125, 0.125, 0.125]
    s = jinit.summary(new, rules=[("*weight", HE), ("*bias", jinit.zeros)])
    assert s.ok, s
    for i, w in enumerate(want):
        assert math.isclose(s[f"layers/{i}/weight"].expected_std, w, rel_tol=1e-6)


def test_einsum_for_layout_as_kernel_init():
    init = HE.for_layout("bd,dhk->bhk")
    e = nnx.Einsum("bd,dhk->bhk", (64, 4, 16), kernel_init=init, rngs=nnx.Rngs(0))
    assert math.isclose(jinit.law(init, (64, 4, 16)).variance, 2 / 64, rel_tol=1e-6)
    assert jinit.summary(e, rules=[("kernel", HE)]).ok
    # the plain initialiser on the raw shape reads fan_in = 4 * 64 and is flagged
    wrong = nnx.Einsum("bd,dhk->bhk", (64, 4, 16), kernel_init=HE, rngs=nnx.Rngs(0))
    assert "std-off" in jinit.summary(wrong, rules=[("kernel", HE)])["kernel"].flags
    assert repr(init).startswith("jinit.he_normal().for_layout(jinit.Layout(")


def test_einsum_parsing():
    cases = {
        "bd,dhk->bhk": ((0,), (1, 2), ()),
        "bhk,hkd->bd": ((0, 1), (2,), ()),
        "ebd,edf->ebf": ((1,), (2,), (0,)),
        "...d,dk->...k": ((0,), (1,), ()),
        "bd,dk->b": ((0,), (), ()),
    }
    for eq, (i, o, b) in cases.items():
        lay = Layout.einsum(eq)
        assert (lay.in_axes, lay.out_axes, lay.batch_axes) == (i, o, b), eq
    # a kernel letter seen nowhere else is summed over: receptive field
    assert Layout.einsum("bd,dk->b").bind((4, 3)).receptive_axes() == (1,)


def test_bare_dict_ambiguity_warns_and_layouts_silence_it():
    p = {
        "attn": {"query": {"kernel": jnp.zeros((64, 4, 16))}},
        "Conv_0": {"kernel": jnp.zeros((3, 3, 4, 8))},
    }
    with pytest.warns(UserWarning, match=r"attn/query/kernel.*\n.*|layouts="):
        jinit.reinit(p, KEY, [("*kernel", HE)])
    lays = {"*query/kernel": Layout.dense_general(1, 2)}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        new = jinit.reinit(p, KEY, [("*kernel", HE)], layouts=lays)
    q = new["attn"]["query"]["kernel"]
    want = HE(jinit.path_key(KEY, "attn/query/kernel"), (64, 64)).reshape(64, 4, 16)
    assert np.array_equal(np.asarray(q), np.asarray(want))


def test_linen_layouts_keys_match_params_with_and_without_prefix():
    module, x = nn.MultiHeadDotProductAttention(4, qkv_features=32), jnp.ones((1, 3, 32))
    lays = jinit.layouts(module, x)
    variables = module.init(KEY, x)
    a = jinit.reinit(variables, KEY, [("*kernel", HE), REST], layouts=lays)
    b = jinit.reinit(
        variables["params"],
        KEY,
        [("params/*kernel", HE), ("*kernel", HE), REST],
        layouts=lays,
    )
    s = jinit.summary(a, rules=[("*kernel", HE)], layouts=lays)
    assert s.ok, s
    assert a["params"]["query"]["kernel"].shape == b["query"]["kernel"].shape == (32, 4, 8)


def test_linen_layouts_take_abstract_and_concrete_inputs():
    # The inputs are eval_shape arguments (not closed over), so jax.ShapeDtypeStruct works
    # (it failed with "float() argument must be ... not 'ShapeDtypeStruct'"), static keyword
    # options such as train=False stay Python values, and concrete arrays give the same table.
    class Net(nn.Module):
        @nn.compact
        def __call__(self, x, *, train: bool):
            x = nn.Conv(8, (3, 3))(x)
            x = nn.Dropout(0.5, deterministic=not train)(x)
            return nn.DenseGeneral((2, 4), axis=(-2, -1))(x.reshape(x.shape[0], 6, -1))

    abstract = jax.ShapeDtypeStruct((2, 6, 6, 3), jnp.float32)
    a = jinit.layouts(Net(), abstract, train=False)
    b = jinit.layouts(Net(), jnp.zeros((2, 6, 6, 3)), train=False)
    assert a == b
    assert a["Conv_0/kernel"].fans() == (27.0, 72.0)
    assert a["DenseGeneral_0/kernel"].shape == (6, 48, 2, 4)
    assert a["DenseGeneral_0/kernel"].fans() == (288.0, 8.0)
    mha = nn.MultiHeadDotProductAttention(4, qkv_features=16)
    c = jinit.layouts(mha, jax.ShapeDtypeStruct((1, 3, 8), jnp.float32))
    assert c["query/kernel"].shape == (8, 4, 4) and c["query/kernel"].fans() == (8.0, 16.0)


def test_stacked_layers_get_batch_axes():
    class Block(nn.Module):
        @nn.compact
        def __call__(self, x, _):
            return nn.DenseGeneral((2, 8), kernel_init=HE)(x).reshape(x.shape), None

    class Stack(nn.Module):
        @nn.compact
        def __call__(self, x):
            scan = nn.scan(
                Block, variable_axes={"params": 0}, split_rngs={"params": True}, length=3
            )
            return scan(name="layers")(x, None)[0]

    lays = jinit.layouts(Stack(), jnp.ones((1, 16)))
    lay = lays["layers/DenseGeneral_0/kernel"]
    assert lay.shape == (3, 16, 2, 8)
    assert lay.batch_axes == (0,) and lay.in_axes == (1,) and lay.out_axes == (2, 3)
    assert tuple(lay.fans()) == (16.0, 16.0)


def test_reinit_from_eval_shape_and_sharding():
    mesh = jax.make_mesh((len(jax.devices()),), ("x",))
    sh = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("x"))
    n = len(jax.devices())
    shapes = {
        "Dense_0": {
            "kernel": jax.ShapeDtypeStruct((4 * n, 8), jnp.float32, sharding=sh),
            "bias": jax.ShapeDtypeStruct((8,), jnp.bfloat16),
        }
    }
    new = jinit.reinit(shapes, KEY, [("*kernel", HE), ("*bias", jinit.zeros)])
    k = new["Dense_0"]["kernel"]
    assert isinstance(k, jax.Array) and k.shape == (4 * n, 8) and k.sharding == sh
    assert new["Dense_0"]["bias"].dtype == jnp.bfloat16
    ref = HE(jinit.path_key(KEY, "Dense_0/kernel"), (4 * n, 8))
    assert np.array_equal(np.asarray(k), np.asarray(ref))
    ref = HE(jinit.path_key(KEY, "kernel"), (4 * n, 8))
    # eager sharded arrays keep their sharding; under jit on a mesh with Explicit axes too
    arrays = {"kernel": jax.device_put(jnp.zeros((4 * n, 8)), sh)}
    assert jinit.reinit(arrays, KEY, [("*", HE)])["kernel"].sharding == sh
    emesh = jax.make_mesh((n,), ("x",), axis_types=(jax.sharding.AxisType.Explicit,))
    esh = jax.sharding.NamedSharding(emesh, jax.sharding.PartitionSpec("x", None))
    with jax.set_mesh(emesh):
        earr = {"kernel": jax.device_put(jnp.zeros((4 * n, 8)), esh)}
        out = jax.jit(lambda t: jinit.reinit(t, KEY, [("*", HE)]))(earr)["kernel"]
    assert out.sharding == esh
    # the same draw compiled: equal up to XLA's rounding of the truncated-normal transform (a
    # handful of float32 ops and one transcendental, <= 16 ulp each; tests/rounding.py)
    np.testing.assert_allclose(np.asarray(out), np.asarray(ref), rtol=64 * 2**-23, atol=1e-7)
    # kept shape-only leaves would be no arrays at all
    with pytest.raises(ValueError, match=r"`jinit.reinit`.*ShapeDtypeStruct"):
        jinit.reinit(shapes, KEY, [("*kernel", HE)], strict=False)


def test_summary_outlier_without_rules():
    m = eqx.nn.MLP(64, 10, 48, 3, key=KEY)
    assert jinit.summary(m).ok
    bad = eqx.tree_at(lambda t: t.layers[2].weight, m, m.layers[2].weight * 100)
    s = jinit.summary(bad)
    assert [r.path for r in s.flagged] == ["layers/2/weight"]
    assert s["layers/2/weight"].flags == ("outlier",)
    assert "above the median" in s["layers/2/weight"].note
    small = eqx.tree_at(lambda t: t.layers[0].weight, m, m.layers[0].weight / 100)
    assert [r.path for r in jinit.summary(small).flagged] == ["layers/0/weight"]
    assert jinit.summary(bad, outlier_ratio=None).ok


ERRORS = [
    (
        "layouts-of-a-dict",
        lambda: jinit.layouts({"kernel": jnp.zeros((2, 3))}),
        TypeError,
        [r"`jinit\.layouts`", r"dict", r"jinit\.layouts\(linen_model, x\)"],
    ),
    (
        "layouts-linen-without-inputs",
        lambda: jinit.layouts(nn.Dense(3)),
        TypeError,
        [r"`jinit\.layouts`", r"example inputs", r"jinit\.layouts\(model, x\)"],
    ),
    (
        "layout-bad-call",
        lambda: Layout((0,), (1,), call="weird"),
        ValueError,
        [r"`jinit\.Layout`", r"'weird'", r"'raw'"],
    ),
    (
        "layout-flat-wrong-order",
        lambda: Layout((1,), (0,), call="flat", shape=(3, 4)),
        ValueError,
        [r"`jinit\.Layout`", r"call='flat'", r"batch, in, out"],
    ),
    (
        "layout-axis-out-of-range",
        lambda: Layout((3,), (0,)).bind((2, 3)),
        AxisError,
        [r"`jinit\.Layout`", r"in_axes", r"rank 2"],
    ),
    (
        "einsum-bad-equation",
        lambda: Layout.einsum("bd,dk"),
        ValueError,
        [r"`jinit\.Layout\.einsum`", r"'bd,dk'", r"'bd,dhk->bhk'"],
    ),
    (
        "for_layout-with-axes",
        lambda: jinit.he_normal(in_axis=0).for_layout("bd,dk->bk"),
        ValueError,
        [r"`he_normal\.for_layout`", r"explicit axes", r"without axes"],
    ),
    (
        "law-uncalled-factory",
        lambda: jinit.law(jinit.he_normal, (3, 4)),
        TypeError,
        [r"`jinit\.law`", r"jinit\.he_normal", r"Call it: `jinit\.he_normal\(\)`"],
    ),
    (
        "law-layout-wrong-rank",
        lambda: jinit.law(HE, (3, 4), layout=Layout.dense_general(1, 2)),
        ValueError,
        [r"`jinit\.law`", r"shape \(3, 4\)"],
    ),
    (
        "reinit-layouts-not-dict",
        lambda: jinit.reinit({"w": jnp.zeros((2, 2))}, KEY, [("*", HE)], layouts=[1]),
        TypeError,
        [r"`jinit\.reinit`", r"`layouts`", r"jinit\.layouts\(model, x\)"],
    ),
    (
        "reinit-layout-wrong-shape",
        lambda: jinit.reinit(
            {"w": jnp.zeros((2, 2))}, KEY, [("*", HE)], layouts={"w": Layout.dense().bind((3, 3))}
        ),
        ValueError,
        [r"`jinit\.reinit`", r"'w'", r"\(3, 3\)", r"\(2, 2\)"],
    ),
    (
        "summary-outlier-ratio",
        lambda: jinit.summary({"w": jnp.ones((2, 2))}, outlier_ratio=1),
        ValueError,
        [r"`jinit\.summary`", r"`outlier_ratio` > 1", r"None"],
    ),
]


@pytest.mark.parametrize("call,exc,patterns", params(ERRORS))
def test_errors(call, exc, patterns):
    check_raises(call, exc, patterns)


def test_real_models_summary_outliers_and_layouts():
    # Flax's ImageNet ResNet-18 (linen, BatchNorm, zero-init last norm scale), the lm1b decoder
    # (nnx, partitioned params) and equinox's MNIST CNN, as their authors initialise them:
    # no flag without rules; one kernel scaled x100 (or /100) is the only one flagged.
    from tests import real_models as rm

    (resnet, variables), x = rm.flax_resnet18()
    p = variables["params"]
    assert jinit.summary(p).ok
    lays = jinit.layouts(resnet, x)
    assert lays["conv_init/kernel"].layer == "flax.linen.Conv"
    assert lays["Dense_0/kernel"].fans() == jinit.fans(p["Dense_0"]["kernel"].shape)
    path = "ResNetBlock_3/Conv_1/kernel"
    bad = jinit.reinit(p, KEY, [(path, lambda k, s, d: 100 * _leaf(p, path)), REST])
    s = jinit.summary(bad, layouts=lays)
    assert [(r.path, r.flags) for r in s.flagged] == [(path, ("outlier",))]

    lm, _ = rm.flax_lm1b_nnx()
    assert jinit.summary(lm).ok
    lay = jinit.layouts(lm)
    q = [k for k in lay if k.endswith("attention/query/kernel")]
    assert q and all(lay[k].call == "flat" and lay[k].fans().fan_in == 32 for k in q)
    state = nnx.state(lm, nnx.Param)
    small = jinit.reinit(state, KEY, [(q[0], lambda k, s, d: _leaf(state, q[0]) / 100), REST])
    s = jinit.summary(small, layouts=lay)
    assert [(r.path, r.flags) for r in s.flagged] == [(q[0], ("outlier",))]

    cnn, _ = rm.eqx_mnist_cnn()
    assert jinit.summary(cnn).ok
    assert all(v.in_axes == (1,) for v in jinit.layouts(cnn).values())
