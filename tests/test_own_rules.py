"""``jinit.own_rules``: each parameter drawn with its own layer's initialiser, called as the
layer calls it (DenseGeneral's flattening, with_partitioning's box, nnx constructor arguments),
with jinit's per-path keys; the same bits from ``reinit`` and ``init_sharded``; repeated blocks
stacked into one program; what it cannot cover is named, never guessed."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax.sharding import PartitionSpec as P

import jinit

KEY = jax.random.key(3)
N_DEV = len(jax.devices())


class Block(nn.Module):
    d: int = 16

    @nn.compact
    def __call__(self, x):
        h = nn.LayerNorm()(x)
        h = nn.DenseGeneral((2, self.d // 2), kernel_init=nn.initializers.lecun_normal())(h)
        h = nn.gelu(h.reshape(*h.shape[:-2], self.d))
        part = nn.with_partitioning(nn.initializers.orthogonal(), (None, "model"))
        return x + nn.Dense(self.d, kernel_init=part, name="out")(h)


class Model(nn.Module):
    layers: int = 3
    d: int = 16

    @nn.compact
    def __call__(self, tokens):
        x = nn.Embed(50, self.d)(tokens)
        for _ in range(self.layers):
            x = Block(self.d)(x)
        return nn.Dense(4, name="head")(x)


TOKENS = jnp.zeros((2, 6), jnp.int32)


def _abstract(model):
    return jax.eval_shape(model.init, jax.random.key(0), TOKENS)


def _flat(tree) -> dict[str, np.ndarray]:
    tree = nn.unbox(tree)
    return {
        "/".join(str(getattr(k, "key", k)) for k in kp): np.asarray(v)
        for kp, v in jax.tree_util.tree_flatten_with_path(tree)[0]
    }


def test_every_linen_parameter_gets_its_layers_own_call():
    """Each leaf is the layer's own ``init_fn(path_key, *args)``: DenseGeneral's flattening
    wrapper, the Embed and LayerNorm defaults, with_partitioning's box removed."""
    model = Model()
    rules = jinit.own_rules(model, TOKENS)
    assert len(rules) == 1 + 3 * 6 + 2 and rules.unmatched == {}
    assert repr(rules) == "OwnRules(21 parameters of the linen Model)"
    got = _flat(jinit.reinit(_abstract(model), KEY, rules))
    lecun, zeros = nn.initializers.lecun_normal(), nn.initializers.zeros
    d = 16
    cases = {  # path -> the layer's own call with jinit's key for that path
        "params/head/kernel": lambda k: lecun(k, (d, 4)),
        "params/Block_1/LayerNorm_0/scale": lambda k: jnp.ones((d,)),
        "params/Block_2/out/bias": lambda k: zeros(k, (d,)),
        "params/Embed_0/embedding": lambda k: nn.initializers.variance_scaling(
            1.0, "fan_in", "normal", out_axis=0
        )(k, (50, d)),
        # DenseGeneral draws the flat (in, prod(out)) kernel and reshapes it
        "params/Block_0/DenseGeneral_0/kernel": lambda k: lecun(k, (d, d)).reshape(d, 2, d // 2),
        "params/Block_1/out/kernel": lambda k: nn.initializers.orthogonal()(k, (d, d)),
    }
    for path, call in cases.items():
        want = np.asarray(call(jinit.path_key(KEY, path)))
        np.testing.assert_allclose(got[path], want, rtol=2e-6, atol=2e-7, err_msg=path)


def test_dense_general_keeps_flax_flattened_fans():
    """The law is the layer's: DenseGeneral(4 x 32 out) from 64 inputs has variance 1/64
    (fan-in of the flat (64, 128) call), not 1/(64*4) as a call with the stored shape gives."""

    class Wide(nn.Module):
        @nn.compact
        def __call__(self, x):
            init = nn.initializers.variance_scaling(1.0, "fan_in", "normal")
            return nn.DenseGeneral((4, 32), kernel_init=init, use_bias=False)(x)

    x = jnp.ones((1, 64))
    rules = jinit.own_rules(Wide(), x)
    w = _flat(jinit.reinit(jax.eval_shape(Wide().init, KEY, x), KEY, rules))
    w = w["params/DenseGeneral_0/kernel"]
    assert w.shape == (64, 4, 32)
    # 8192 normal entries: the sample variance is within 5 standard errors (sqrt(2/n)) of 1/64
    np.testing.assert_allclose(w.var() * 64, 1.0, atol=5 * np.sqrt(2 / w.size))


def test_repeated_blocks_are_stacked_whatever_the_depth():
    """Equal layers' own initialisers compare equal (even closures made anew per layer), so
    init_sharded draws each kind of parameter of the blocks in one program at any depth."""
    groups = []
    for layers in (2, 6):
        model = Model(layers=layers)
        mesh = jax.make_mesh((1,), ("model",), devices=jax.devices()[:1])
        rules = jinit.own_rules(model, TOKENS)
        _, table = jinit.init_sharded(_abstract(model), KEY, rules, mesh=mesh, explain=True)
        groups.append(table.groups)
        assert len(table.leaves) == 1 + 6 * layers + 2
    assert groups[0] == groups[1] <= 10


@pytest.mark.skipif(N_DEV < 4, reason="needs 4 devices")
def test_init_sharded_equals_reinit_with_own_rules():
    """The same bits from the eager reinit and the stacked, sharded init (each own initialiser
    runs as one jitted call in both), placed by the model's own partitioning annotations."""
    model = Model()
    rules = jinit.own_rules(model, TOKENS)
    mesh = jax.make_mesh((1, 4), ("data", "model"), devices=jax.devices()[:4])
    sharded = jinit.init_sharded(_abstract(model), KEY, rules, mesh=mesh)
    plain = _flat(jinit.reinit(_abstract(model), KEY, rules))
    flat = _flat(sharded)
    assert flat.keys() == plain.keys()
    for path in plain:
        np.testing.assert_array_equal(flat[path], plain[path], err_msg=path)
    kernel = nn.unbox(sharded)["params"]["Block_0"]["out"]["kernel"]
    assert kernel.sharding.spec == P(None, "model")


def _nnx_model():
    class Custom(nnx.Module):
        def __init__(self, rngs):
            self.lin = nnx.Linear(8, 16, kernel_init=jinit.orthogonal(), rngs=rngs)
            self.gen = nnx.LinearGeneral(16, (2, 8), rngs=rngs)
            self.norm = nnx.LayerNorm(16, rngs=rngs)
            self.table = nnx.Param(jnp.zeros((3, 3)))  # no *_init argument names it

    return Custom(nnx.Rngs(0))


def test_nnx_constructor_arguments_are_read():
    rules = jinit.own_rules(_nnx_model)
    assert {r.pattern for r in rules} == {
        "*/lin/kernel",
        "*/lin/bias",
        "*/gen/kernel",
        "*/gen/bias",
        "*/norm/scale",
        "*/norm/bias",
    }
    assert "no `table_init`" in rules.unmatched["table"]
    model = _nnx_model()
    with pytest.raises(ValueError, match="table"):  # strict: a leaf without a rule is named
        jinit.reinit(model, KEY, rules)
    new = jinit.reinit(model, KEY, [*rules, ("table", None)])
    w = np.asarray(new.lin.kernel[...])
    np.testing.assert_allclose(w @ w.T, np.eye(8), atol=1e-5)  # orthogonal rows, as asked
    want = jinit.orthogonal()(jinit.path_key(KEY, "lin/kernel"), (8, 16))
    np.testing.assert_allclose(w, np.asarray(want), rtol=2e-6, atol=2e-7)
    # LinearGeneral calls its kernel_init flat, (16, 16), then reshapes: jinit's layout does
    gen = np.asarray(new.gen.kernel[...])
    flat = nnx.initializers.lecun_normal()(jinit.path_key(KEY, "gen/kernel"), (16, 16))
    np.testing.assert_allclose(gen, np.asarray(flat).reshape(16, 2, 8), rtol=2e-6, atol=2e-7)


def test_lifted_scan_parameters_are_named_not_guessed():
    class Scanned(nn.Module):
        @nn.compact
        def __call__(self, x):
            layer = nn.scan(
                lambda m, c, _: (nn.Dense(4)(c), None),
                variable_axes={"params": 0},
                split_rngs={"params": True},
                length=3,
            )
            return layer(self, x, None)[0]

    x = jnp.ones((2, 4))
    rules = jinit.own_rules(Scanned(), x)
    assert rules.unmatched and all("nn.scan" in why for why in rules.unmatched.values())


BAD = [
    (lambda: jinit.own_rules(_nnx_model()), TypeError, "built nnx module"),
    (lambda: jinit.own_rules(42), TypeError, "got 42 of type int"),
    (lambda: jinit.own_rules(lambda: 3), TypeError, "returned 3"),
    (lambda: jinit.own_rules(_nnx_model, 1), TypeError, "with inputs"),
]


@pytest.mark.parametrize("call, err, match", BAD)
def test_bad_models_are_refused(call, err, match):
    with pytest.raises(err, match=match):
        call()


def test_another_models_tree_is_refused_before_drawing():
    rules = jinit.own_rules(Model(), TOKENS)
    other = {"params": {"x": {"kernel": jax.ShapeDtypeStruct((3, 3), jnp.float32)}}}
    with pytest.raises(ValueError, match="matches none of the tree's paths"):
        jinit.reinit(other, KEY, rules)
    with pytest.raises(ValueError, match="regex=False"):
        jinit.init_sharded(_abstract(Model()), KEY, rules, regex=True)
