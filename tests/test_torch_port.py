"""``init_like_torch`` against torch 2.13's own module defaults.

The Flax parameter shapes come from real linen layers (``jax.eval_shape`` of their ``init``);
the torch side builds the corresponding ``torch.nn`` modules under ``SEEDS`` torch seeds and pools
their default-initialised weights. Per parameter: a two-sample KS test (jinit draws from one
``jax.jit(jax.vmap(...))`` over ``SEEDS`` keys vs the pooled torch draws) at ``ALPHA`` = 1e-3
(seeds are fixed, so the outcome is deterministic; 13 tests at 1e-3 would all pass with
probability ~0.99 for a correct port under fresh seeds), plus exact checks of the bound
``1/sqrt(fan_in)`` on both sides. A negative control shows the KS test rejects the Conv law on a
ConvTranspose kernel (the torch fan_in quirk).
"""

from __future__ import annotations

import functools
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from scipy import stats

import jinit
from jinit.torch._port import init_like_torch
from jinit.trees._explain import ReinitTable

torch = pytest.importorskip("torch")
tnn = torch.nn

SEEDS = 128
ALPHA = 1e-3
KEY = jax.random.key(42)

# XLA's CPU backend optimisations take ~1 s per random draw of a new shape to compile; the values'
# law does not depend on them, so the samplers here compile without (10x faster).
fast_jit = functools.partial(jax.jit, compiler_options={"xla_backend_optimization_level": 0})


def _shapes(module, *inputs):
    return jax.eval_shape(module.init, jax.random.key(0), *inputs)["params"]


def _flax_params():
    x4 = jnp.ones((1, 5, 5, 4))
    tree = {
        "linear": _shapes(nn.Dense(6), jnp.ones((1, 12))),
        "conv": _shapes(nn.Conv(6, (3, 3)), x4),
        "conv_grouped": _shapes(nn.Conv(6, (3, 3), feature_group_count=2), x4),
        "conv1d": _shapes(nn.Conv(6, (5,)), jnp.ones((1, 7, 4))),
        "deconv": _shapes(nn.ConvTranspose(8, (3, 3)), x4),
        # (*k, out, in): the Conv rule's fan_in is already torch's out * prod(k)
        "deconv_t": _shapes(nn.ConvTranspose(8, (3, 3), transpose_kernel=True), x4),
        "embed": _shapes(nn.Embed(10, 5), jnp.ones((1,), jnp.int32)),
        "norm": _shapes(nn.LayerNorm(), jnp.ones((1, 6))),
    }
    return jax.tree.map(lambda s: jnp.full(s.shape, 7.0, s.dtype), tree)


TORCH_MODULES = {
    "linear": lambda: tnn.Linear(12, 6),
    "conv": lambda: tnn.Conv2d(4, 6, 3),
    "conv_grouped": lambda: tnn.Conv2d(4, 6, 3, groups=2),
    "conv1d": lambda: tnn.Conv1d(4, 6, 5),
    "deconv": lambda: tnn.ConvTranspose2d(4, 8, 3),
    "embed": lambda: tnn.Embedding(10, 5),
    "norm": lambda: tnn.LayerNorm(6),
}

# flax leaf, torch module, torch parameter, torch fan_in (None: no bound)
KS_CASES = [
    ("linear/kernel", "linear", "weight", 12),
    ("linear/bias", "linear", "bias", 12),
    ("conv/kernel", "conv", "weight", 4 * 9),
    ("conv/bias", "conv", "bias", 4 * 9),
    ("conv_grouped/kernel", "conv_grouped", "weight", 2 * 9),
    ("conv_grouped/bias", "conv_grouped", "bias", 2 * 9),
    ("conv1d/kernel", "conv1d", "weight", 4 * 5),
    ("conv1d/bias", "conv1d", "bias", 4 * 5),
    ("deconv/kernel", "deconv", "weight", 8 * 9),  # torch: out_channels * prod(k)
    ("deconv/bias", "deconv", "bias", 8 * 9),
    ("deconv_t/kernel", "deconv", "weight", 8 * 9),
    ("deconv_t/bias", "deconv", "bias", 8 * 9),
    ("embed/embedding", "embed", "weight", None),
]
MODULE_TYPES = {"deconv": "conv_transpose"}


@pytest.fixture(scope="module")
def torch_samples():
    pooled: dict[tuple[str, str], list[np.ndarray]] = {}
    with torch.no_grad():
        for seed in range(SEEDS):
            torch.manual_seed(seed)
            for name, build in TORCH_MODULES.items():
                for pname, p in build().named_parameters():
                    pooled.setdefault((name, pname), []).append(p.numpy().ravel().copy())
    return {k: np.concatenate(v).astype(np.float64) for k, v in pooled.items()}


@pytest.fixture(scope="module")
def jinit_samples():
    params = _flax_params()
    draw = fast_jit(jax.vmap(lambda k: init_like_torch(params, k, module_types=MODULE_TYPES)))
    out = draw(jax.random.split(KEY, SEEDS))
    return {
        f"{m}/{leaf}": np.asarray(v, np.float64).reshape(SEEDS, -1)
        for m, leaves in out.items()
        for leaf, v in leaves.items()
    }


@pytest.mark.parametrize("path,module,pname,fan_in", KS_CASES, ids=[c[0] for c in KS_CASES])
def test_matches_torch(path, module, pname, fan_in, torch_samples, jinit_samples):
    ours = jinit_samples[path]
    theirs = torch_samples[module, pname]
    assert ours.size == theirs.size  # same number of elements per module
    assert not np.array_equal(ours[0], ours[1])  # keys differ across seeds
    p = stats.ks_2samp(ours.ravel(), theirs).pvalue
    assert p > ALPHA, f"{path}: KS p = {p:.2e} vs torch {module}.{pname}"
    if fan_in is not None:
        bound = 1 / math.sqrt(fan_in)
        for x in (ours, theirs):  # the bound is torch's and ours, and nearly reached
            assert np.abs(x).max() <= bound * (1 + 1e-6)
            assert np.abs(x).max() >= bound * (1 - 10 / x.size)
    else:
        assert abs(ours.std() - 1) < 5 / math.sqrt(2 * ours.size)


def test_layernorm_exact(torch_samples, jinit_samples):
    np.testing.assert_array_equal(torch_samples["norm", "weight"], np.ones(6 * SEEDS))
    np.testing.assert_array_equal(jinit_samples["norm/scale"].ravel(), np.ones(6 * SEEDS))
    np.testing.assert_array_equal(torch_samples["norm", "bias"], np.zeros(6 * SEEDS))
    np.testing.assert_array_equal(jinit_samples["norm/bias"].ravel(), np.zeros(6 * SEEDS))


def test_conv_transpose_needs_module_types(torch_samples):
    """Negative control: without ``module_types`` a ConvTranspose kernel gets the Conv law
    (fan_in = in * prod(k) = 36, not torch's 72), and the KS test rejects it."""
    params = {"deconv": _flax_params()["deconv"]}
    draw = fast_jit(jax.vmap(lambda k: init_like_torch(params, k)))
    ours = np.asarray(draw(jax.random.split(KEY, SEEDS))["deconv"]["kernel"]).ravel()
    assert stats.ks_2samp(ours, torch_samples["deconv", "weight"]).pvalue < 1e-6
    assert np.abs(ours).max() > 1 / math.sqrt(72)


def test_batchnorm_variables():
    """Full linen variables: params and batch_stats, as torch's BatchNorm2d resets them."""
    bn = nn.BatchNorm(use_running_average=True)
    shapes = jax.eval_shape(bn.init, jax.random.key(0), jnp.ones((1, 4, 4, 3)))
    variables = jax.tree.map(lambda s: jnp.full(s.shape, 7.0, s.dtype), shapes)
    new = init_like_torch(variables, KEY)
    t = tnn.BatchNorm2d(3)
    expected = {
        ("params", "scale"): t.weight,
        ("params", "bias"): t.bias,
        ("batch_stats", "mean"): t.running_mean,
        ("batch_stats", "var"): t.running_var,
    }
    for (col, leaf), ref in expected.items():
        np.testing.assert_array_equal(np.asarray(new[col][leaf]), ref.detach().numpy())


def test_nnx_module_and_conv3d():
    class Net(nnx.Module):
        def __init__(self, rngs):
            self.conv = nnx.Conv(2, 4, (2, 3, 3), rngs=rngs)
            self.linear = nnx.Linear(4, 50, rngs=rngs)
            self.norm = nnx.LayerNorm(50, rngs=rngs)

    model = Net(nnx.Rngs(0))
    graphdef = nnx.graphdef(model)
    new = nnx.merge(graphdef, fast_jit(lambda k: nnx.state(init_like_torch(model, k)))(KEY))
    fan_conv = 2 * 2 * 3 * 3
    for w, fan in ((new.conv.kernel, fan_conv), (new.conv.bias, fan_conv), (new.linear.bias, 4)):
        m = float(jnp.abs(w[...]).max()) * math.sqrt(fan)
        assert 0.5 < m <= 1, m
    # Linear bias bound is 1/sqrt(4), not the 1/sqrt(50) of its own width: most exceed the latter.
    assert float(jnp.mean(jnp.abs(new.linear.bias[...]) > 1 / math.sqrt(50))) > 0.5
    np.testing.assert_array_equal(np.asarray(new.norm.scale[...]), np.ones(50))


def test_user_rules_first_and_explain():
    params = _flax_params()
    tables = []

    def draw(key):
        new, table = init_like_torch(
            params,
            key,
            module_types=MODULE_TYPES,
            rules=[("embed/*", jinit.normal(0.02)), ("linear/bias", None), ("*/foo", None)],
            explain=True,
        )
        tables.append(table)
        return new

    new = fast_jit(draw)(KEY)
    (table,) = tables
    assert isinstance(table, ReinitTable)
    rec = table.by_path()
    assert rec["embed/embedding"].rule == 0 and float(jnp.std(new["embed"]["embedding"])) < 0.1
    assert rec["linear/bias"].rule == 1
    np.testing.assert_array_equal(np.asarray(new["linear"]["bias"]), np.full(6, 7.0))
    # The table names what each torch rule resolved to for the leaf.
    expected = {
        "deconv/kernel": jinit.torch.kaiming_uniform(a=math.sqrt(5), mode="fan_out"),
        "deconv/bias": jinit.torch.conv_bias(8 * 9),  # torch's transposed fan_in
        "conv_grouped/bias": jinit.torch.conv_bias(2 * 9),
        "conv1d/kernel": jinit.torch.conv_weight(),
        "linear/kernel": jinit.torch.linear_weight(),
        "norm/scale": jinit.ones,
        "norm/bias": jinit.zeros,
    }
    for path, init in expected.items():
        assert rec[path].action == repr(init), path
    assert table.unused == (2,)  # the user's unused rule; unused built-in rules are not listed


def test_user_rule_shadowed_by_own_rule_is_an_error():
    with pytest.raises(ValueError, match=r"rule 1 \('linear/kernel'\)"):
        init_like_torch(
            _flax_params(), KEY, rules=[("*/kernel", jinit.zeros), ("linear/kernel", jinit.ones)]
        )


BAD = [
    (
        "unknown leaf",
        {"Dense_0": {"kernel": jnp.ones((3, 2)), "pos_emb": jnp.ones((4, 2))}},
        {},
        ValueError,
        r"matched no rule:\n  Dense_0/pos_emb \(4, 2\)",
    ),
    (
        "rank-1 kernel",
        {"m": {"kernel": jnp.ones(3)}},
        {},
        ValueError,
        r"'m/kernel' of shape \(3,\).*Give it a rule",
    ),
    (
        "bias alone",
        {"m": {"bias": jnp.ones(3)}},
        {},
        ValueError,
        r"module_types=\{'m': 'norm'\}",
    ),
    (
        "pattern matches nothing",
        {"params": {"ConvTranspose_0": {"kernel": jnp.ones((2, 2, 3, 4))}}},
        {"module_types": {"ConvTranspose_0": "conv_transpose"}},
        ValueError,
        r"matches no module.*'\*/ConvTranspose_0'",
    ),
    (
        "bad kind",
        {"m": {"kernel": jnp.ones((3, 2))}},
        {"module_types": {"m": "deconv"}},
        ValueError,
        r"one of 'linear', 'conv', 'conv_transpose'",
    ),
    (
        "kind vs rank",
        {"m": {"kernel": jnp.ones((3, 2))}},
        {"module_types": {"m": "conv_transpose"}},
        ValueError,
        r"kind is 'conv_transpose', whose kernels have rank 3 or 4 or 5",
    ),
    (
        "module_types not a mapping",
        {"m": {"kernel": jnp.ones((3, 2))}},
        {"module_types": "m"},
        TypeError,
        r"mapping",
    ),
    ("bad key", {"m": {"kernel": jnp.ones((3, 2))}}, {"key": 3}, TypeError, "PRNG key"),
]


@pytest.mark.parametrize("params,kwargs,exc,match", [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_input(params, kwargs, exc, match):
    kwargs = dict(kwargs)
    key = kwargs.pop("key", KEY)
    with pytest.raises(exc, match=match) as e:
        init_like_torch(params, key, **kwargs)
    assert "jinit.torch.init_like_torch" in str(e.value)


def test_user_fallback_rule_keeps_its_flag():
    """A user catch-all marked fallback=True may lose every leaf (not reported as shadowed)."""
    params = {"Dense_0": {"kernel": jnp.zeros((3, 2)), "bias": jnp.zeros(2)}}
    rules = [("*/kernel", jinit.zeros), jinit.Rule("*kernel", jinit.ones, fallback=True)]
    new = init_like_torch(params, jax.random.key(0), rules=rules)
    assert float(jnp.abs(new["Dense_0"]["kernel"]).max()) == 0.0
    with pytest.raises(ValueError, match="never apply"):
        init_like_torch(params, jax.random.key(0), rules=[r[:2] for r in rules])


def test_non_strict_keeps_unknown():
    params = {"Dense_0": {"kernel": jnp.ones((3, 2)), "pos_emb": jnp.ones((4, 2))}}
    new = init_like_torch(params, KEY, strict=False)
    assert new["Dense_0"]["pos_emb"] is params["Dense_0"]["pos_emb"]
    assert float(jnp.abs(new["Dense_0"]["kernel"]).max()) <= 1 / math.sqrt(3)
