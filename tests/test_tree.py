"""``reinit``: rule matching, first-rule-wins, strictness, stable per-path keys, every tree kind.

Trees: linen params (inner dict and ``{"params": ...}``), ``nnx.State`` (split and state),
``nnx.Module`` (cloned, input untouched), haiku-style dicts, equinox modules. Laws of the
re-initialised leaves are checked with a KS test against ``jinit.law`` over seeds drawn in one
``jax.jit(jax.vmap(...))``.
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
from flax import nnx
from jax.sharding import NamedSharding, PartitionSpec
from scipy import stats

import jinit
from jinit.trees._explain import ReinitTable
from jinit.trees._reinit import reinit
from jinit.trees._rules import LeafInfo, contextual, path_key

KEY = jax.random.key(0)

# XLA's CPU backend optimisations take ~1 s per random draw of a new shape to compile; the values'
# law does not depend on them, so the samplers here compile without (10x faster).
fast_jit = functools.partial(jax.jit, compiler_options={"xla_backend_optimization_level": 0})


def _same(a, b) -> bool:
    return bool(np.array_equal(np.asarray(a), np.asarray(b)))


def _params():
    return {
        "Dense_0": {"kernel": jnp.ones((4, 8)), "bias": jnp.ones(8)},
        "Dense_1": {"kernel": jnp.ones((8, 8)), "bias": jnp.ones(8)},
        "head": {"kernel": jnp.ones((8, 2)), "bias": jnp.ones(2)},
    }


def _torch_bias(key, leaf: LeafInfo):
    fan_in = leaf.siblings["kernel"].shape[0]
    bound = 1 / math.sqrt(fan_in)
    return jax.random.uniform(key, leaf.shape, leaf.dtype, -bound, bound)


# ---------------------------------------------------------------------------------------------
# Matching
# ---------------------------------------------------------------------------------------------

GLOB_CASES = [
    # pattern, path, matches
    ("*/kernel", "Dense_0/kernel", True),
    ("*/kernel", "encoder/layer_3/attn/kernel", True),
    ("*/kernel", "kernel", True),  # a leading */ also matches at the top level
    ("*/kernel", "Dense_0/kernel_scale", False),
    ("*/kernel", "Dense_0/my_kernel", False),
    ("*kernel", "Dense_0/my_kernel", True),
    ("Dense_?/bias", "Dense_1/bias", True),
    ("Dense_?/bias", "Dense_10/bias", False),
    ("Dense_0/kernel", "params/Dense_0/kernel", False),  # whole-path match
    ("*/Dense_0/kernel", "params/Dense_0/kernel", True),
    ("*/Dense_0/kernel", "Dense_0/kernel", True),
    ("encoder/*/kernel", "encoder/layer_3/attn/kernel", True),  # * spans '/'
    ("encoder/*/kernel", "decoder/layer_3/attn/kernel", False),
    ("layer_[0-2]/*", "layer_2/w", True),
    ("layer_[0-2]/*", "layer_3/w", False),
    ("*/Kernel", "Dense_0/kernel", False),  # case-sensitive
]

REGEX_CASES = [
    (r".*/kernel", "Dense_0/kernel", True),
    (r"kernel", "Dense_0/kernel", False),  # full match
    (r"(Dense|head)_?\d*/bias", "Dense_12/bias", True),
    (r"(Dense|head)_?\d*/bias", "head/bias", True),
    (r"(Dense|head)_?\d*/bias", "conv/bias", False),
]


def _matches(pattern: str, path: str, regex: bool) -> bool:
    tree = {}
    node = tree
    *parents, name = path.split("/")
    for p in parents:
        node = node.setdefault(p, {})
    node[name] = jnp.ones(2)
    _, table = reinit(tree, KEY, [(pattern, jinit.zeros)], strict=False, regex=regex, explain=True)
    return table[0].rule == 0


@pytest.mark.parametrize("pattern,path,expected", GLOB_CASES)
def test_glob(pattern, path, expected):
    assert _matches(pattern, path, regex=False) is expected


@pytest.mark.parametrize("pattern,path,expected", REGEX_CASES)
def test_regex(pattern, path, expected):
    assert _matches(pattern, path, regex=True) is expected


def test_first_rule_wins_and_each_leaf_drawn_once():
    calls: list[tuple[str, tuple]] = []

    def spy(tag):
        def init(key, shape, dtype):
            calls.append((tag, tuple(shape)))
            return jnp.full(shape, {"zeros": 0.0, "he": 5.0, "bias": 2.0}[tag], dtype)

        return init

    rules = [("head/kernel", spy("zeros")), ("*/kernel", spy("he")), ("*", spy("bias"))]
    new, table = reinit(_params(), KEY, rules, explain=True)
    assert len(calls) == 6  # one draw per leaf, none overwritten
    assert float(new["head"]["kernel"].max()) == 0.0
    assert float(new["Dense_0"]["kernel"].min()) == 5.0
    assert float(new["head"]["bias"].min()) == 2.0
    rec = table.by_path()
    assert rec["head/kernel"].rule == 0 and rec["head/kernel"].also_matched == (1, 2)
    assert rec["Dense_1/kernel"].rule == 1 and rec["Dense_1/kernel"].also_matched == (2,)


def test_tutorial_bug_later_rule_never_overwrites():
    """The tutorial ``init_weights``: Xavier then zeros on the next line. Here zeros can't win."""
    rules = [("*/kernel", jinit.glorot_uniform()), ("*/kernel", jinit.zeros), ("*/bias", None)]
    with pytest.raises(ValueError, match=r"rule 1 \('\*/kernel'\) matches .* rule\(s\) \[0\]"):
        reinit(_params(), KEY, rules)
    new, table = reinit(_params(), KEY, rules, strict=False, explain=True)
    for layer in ("Dense_0", "Dense_1", "head"):
        assert float(jnp.abs(new[layer]["kernel"]).min()) > 0  # the Xavier draw survived
    assert table.shadowed == (1,)
    assert "rule 1 ('*/kernel') is shadowed" in str(table)


def test_specific_rule_first_overrides():
    rules = [("head/*", jinit.zeros), ("*/kernel", jinit.he_normal()), ("*/bias", jinit.ones)]
    new = reinit(_params(), KEY, rules)
    assert _same(new["head"]["kernel"], np.zeros((8, 2)))
    assert _same(new["head"]["bias"], np.zeros(2))
    assert _same(new["Dense_0"]["bias"], np.ones(8))
    assert float(jnp.std(new["Dense_1"]["kernel"])) > 0.1


# ---------------------------------------------------------------------------------------------
# Strictness and explain
# ---------------------------------------------------------------------------------------------


def test_strict_lists_unmatched_leaves_and_rules():
    with pytest.raises(ValueError) as e:
        reinit(_params(), KEY, [("*/kernel", jinit.he_normal())])
    msg = str(e.value)
    for path in ("Dense_0/bias", "Dense_1/bias", "head/bias"):
        assert path in msg
    assert "Dense_0/kernel" not in msg.split("Rules:")[0]
    assert "'*/kernel' -> jinit.he_normal()" in msg and "strict=False" in msg


def test_non_strict_keeps_unmatched_leaves():
    params = _params()
    new, table = reinit(params, KEY, [("*/kernel", jinit.zeros)], strict=False, explain=True)
    for layer in params:
        assert new[layer]["bias"] is params[layer]["bias"]
        assert _same(new[layer]["kernel"], np.zeros(params[layer]["kernel"].shape))
    assert [r.action for r in table if r.path.endswith("bias")] == ["unmatched (kept)"] * 3


def test_none_keeps_a_leaf_under_strict():
    params = _params()
    new = reinit(params, KEY, [("head/*", None), ("*", jinit.zeros)])
    assert new["head"]["kernel"] is params["head"]["kernel"]
    assert float(jnp.abs(new["Dense_0"]["kernel"]).max()) == 0.0


def test_rule_matching_nothing_is_reported_not_an_error():
    rules = [("*/kernel", jinit.zeros), ("*/embedding", jinit.ones), ("*/bias", jinit.zeros)]
    _, table = reinit(_params(), KEY, rules, explain=True)
    assert table.unused == (1,) and table.shadowed == ()
    assert "rule 1 ('*/embedding') matched no leaf" in str(table)


def test_explain_table():
    _, table = reinit(
        _params(), KEY, {"head/bias": jinit.bias_prior(0.01), "*": jinit.zeros}, explain=True
    )
    assert isinstance(table, ReinitTable) and len(table) == 6
    assert [r.path for r in table] == [
        "Dense_0/bias",
        "Dense_0/kernel",
        "Dense_1/bias",
        "Dense_1/kernel",
        "head/bias",
        "head/kernel",
    ]
    text = str(table).splitlines()
    assert text[0].split() == ["path", "shape", "dtype", "rule", "initialiser"]
    row = next(line for line in text if line.startswith("head/bias"))
    assert row.split() == ["head/bias", "(2,)", "float32", "0:", "head/bias"] + [
        "jinit.bias_prior(p=0.01)"
    ]
    assert repr(table).startswith("ReinitTable(6 leaves, 2 rules)\n")


# ---------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------


def _two_arg(key, leaf):
    return jnp.zeros(leaf.shape)


BAD = [
    ("non-str pattern", dict(rules=[(3, jinit.zeros)]), TypeError, r"pattern to be a str.*rule 0"),
    ("non-callable", dict(rules=[("*", 0.5)]), TypeError, r"rule 0 \('\*'\) has 0.5"),
    ("builder", dict(rules=[("*", jinit.he_normal)]), TypeError, r"Call it: `jinit.he_normal"),
    ("2-arg fn", dict(rules=[("*", _two_arg)]), TypeError, r"jinit.contextual\(fn\)"),
    ("bad regex", dict(rules=[("(*", jinit.zeros)], regex=True), ValueError, "regular expr"),
    ("not pairs", dict(rules=[("*", jinit.zeros, 1)]), TypeError, r"rule 0 is"),
    ("single pair", dict(rules=("*", jinit.zeros)), TypeError, r"Wrap it in a list"),
    ("rules str", dict(rules="*/kernel"), TypeError, r"ordered sequence"),
    ("strict int", dict(rules=[("*", jinit.zeros)], strict=1), TypeError, r"`strict` to be a bool"),
    ("bad key", dict(rules=[("*", jinit.zeros)], key=0), TypeError, r"jinit.reinit.*PRNG key"),
    (
        "wrong shape",
        dict(rules=[("*", lambda k, s, d: jnp.zeros((3,)))]),
        ValueError,
        r"returned shape \(3,\) for 'Dense_0/bias', whose shape is \(8,\)",
    ),
    (
        "not an array",
        dict(rules=[("*", lambda k, s, d: "zeros")]),
        TypeError,
        r"returned str for 'Dense_0/bias', not an array",
    ),
    ("empty tree", dict(params={}, rules=[("*", jinit.zeros)]), ValueError, "no array leaves"),
]


@pytest.mark.parametrize("kwargs,exc,match", [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_input(kwargs, exc, match):
    kwargs = {"params": _params(), "key": KEY, **kwargs}
    with pytest.raises(exc, match=match) as e:
        reinit(kwargs.pop("params"), kwargs.pop("key"), kwargs.pop("rules"), **kwargs)
    assert "jinit.reinit" in str(e.value)


def test_duplicate_paths():
    with pytest.raises(ValueError, match="same path"):
        reinit({"a/b": jnp.ones(2), "a": {"b": jnp.ones(2)}}, KEY, [("*", jinit.zeros)])


def test_contextual_rejects_non_callable():
    with pytest.raises(TypeError, match="jinit.contextual.*callable"):
        contextual(3)


# ---------------------------------------------------------------------------------------------
# Keys: deterministic, stable under edits of other layers, order-free
# ---------------------------------------------------------------------------------------------

RULES = [("*/kernel", jinit.he_normal()), ("*/bias", jinit.normal(1.0))]


def test_deterministic_and_key_dependent():
    a = reinit(_params(), KEY, RULES)
    b = reinit(_params(), jax.random.key(0), RULES)
    c = reinit(_params(), jax.random.key(1), RULES)
    for x, y, z in zip(jax.tree.leaves(a), jax.tree.leaves(b), jax.tree.leaves(c), strict=True):
        assert _same(x, y) and not _same(x, z)


def test_leaves_differ_from_each_other():
    new = reinit(_params(), KEY, RULES)
    assert not _same(new["Dense_1"]["kernel"][:4, :2], new["head"]["kernel"][:4])
    assert not _same(new["Dense_0"]["bias"], new["Dense_1"]["bias"])


@pytest.mark.parametrize("edit", ["add", "remove", "rename", "reorder"])
def test_other_layers_unchanged_by_edits(edit):
    base = _params()
    edited = dict(_params())
    if edit == "add":
        edited["extra"] = {"kernel": jnp.ones((8, 8)), "bias": jnp.ones(8)}
    elif edit == "remove":
        del edited["Dense_1"]
    elif edit == "rename":
        edited["Dense_9"] = edited.pop("Dense_1")
    else:
        edited = dict(reversed(list(edited.items())))
    a = reinit(base, KEY, RULES)
    b = reinit(edited, KEY, RULES)
    for layer in ("Dense_0", "head"):
        for leaf in ("kernel", "bias"):
            assert _same(a[layer][leaf], b[layer][leaf]), (edit, layer, leaf)
    if edit == "rename":  # the renamed layer draws new values
        assert not _same(a["Dense_1"]["kernel"], b["Dense_9"]["kernel"])


def test_documented_key_derivation():
    new = reinit(_params(), KEY, RULES)
    expected = jinit.he_normal()(path_key(KEY, "Dense_1/kernel"), (8, 8))
    assert _same(new["Dense_1"]["kernel"], expected)


def test_raw_uint32_key():
    new = reinit(_params(), jax.random.PRNGKey(3), RULES)
    assert new["head"]["kernel"].shape == (8, 2)


def test_jit_matches_eager():
    params = _params()
    rules = [("*/kernel", jinit.torch.linear_weight()), ("*/bias", contextual(_torch_bias))]
    eager = reinit(params, KEY, rules)
    jitted = fast_jit(lambda p, k: reinit(p, k, rules))(params, KEY)
    for x, y in zip(jax.tree.leaves(eager), jax.tree.leaves(jitted), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-6, atol=0)


# ---------------------------------------------------------------------------------------------
# dtypes and shardings
# ---------------------------------------------------------------------------------------------


def test_dtypes_preserved_and_passed():
    params = {
        "a": {"kernel": jnp.ones((4, 4), jnp.bfloat16), "bias": jnp.ones(4, jnp.float16)},
        "b": {"kernel": jnp.ones((4, 4), jnp.float32)},
    }
    seen = {}

    def spy(key, shape, dtype):
        seen[tuple(shape), jnp.dtype(dtype).name] = True
        return jnp.zeros(shape, jnp.float32)  # wrong dtype: cast to the leaf's

    new = reinit(params, KEY, [("a/kernel", jinit.he_normal()), ("*", spy)])
    assert new["a"]["kernel"].dtype == jnp.bfloat16
    assert new["a"]["bias"].dtype == jnp.float16
    assert new["b"]["kernel"].dtype == jnp.float32
    assert set(seen) == {((4,), "float16"), ((4, 4), "float32")}


def test_numpy_float64_leaf_stays_float64_with_x64_off():
    """x64 off: drawn in float32 (the same values as a float32 leaf), returned as numpy float64,
    with a warning and a note in the table; the float32 neighbour is unaffected."""
    params = {"w": np.zeros((3, 4)), "v": jnp.zeros((3, 4))}
    with pytest.warns(UserWarning, match=r"w \(float64\).*jax_enable_x64"):
        new, table = reinit(params, KEY, [("*", jinit.normal())], explain=True)
    assert type(new["w"]) is np.ndarray and new["w"].dtype == np.float64
    want = jinit.normal()(path_key(KEY, "w"), (3, 4), jnp.float32)
    assert _same(new["w"], np.asarray(want).astype(np.float64))
    assert new["v"].dtype == jnp.float32
    rec = table.by_path()
    assert rec["w"].note == "drawn in float32: jax_enable_x64 is off" and rec["v"].note is None
    assert "[drawn in float32: jax_enable_x64 is off]" in str(table)


def test_numpy_leaves_stay_numpy_and_x64_draws_in_float64():
    params = {"w": np.zeros((3, 4), np.float32)}
    new = reinit(params, KEY, [("*", jinit.normal())])
    assert type(new["w"]) is np.ndarray and new["w"].dtype == np.float32
    with jax.enable_x64(True):
        new = reinit({"w": np.zeros((3, 4))}, KEY, [("*", jinit.normal())])
        want = jinit.normal()(path_key(KEY, "w"), (3, 4), jnp.float64)
        assert new["w"].dtype == np.float64 and _same(new["w"], want)


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16, jnp.complex64])
def test_low_precision_and_complex_leaves_keep_their_dtype(dtype):
    params = {"w": jnp.zeros((16, 16), dtype)}
    new = reinit(params, KEY, [("*", jinit.he_normal())])
    assert new["w"].dtype == dtype
    assert _same(new["w"], jinit.he_normal()(path_key(KEY, "w"), (16, 16), dtype))
    if dtype == jnp.complex64:  # a complex law: real and imaginary parts both drawn
        assert bool((jnp.imag(new["w"]) != 0).any()) and bool((jnp.real(new["w"]) != 0).any())


def test_fallback_rules_skip_integer_leaves_and_explain_says_so():
    params = {
        "bn": {"scale": jnp.zeros(4), "count": jnp.array(7, jnp.int32)},
        "mask": jnp.array([True, False]),
        "dense": {"kernel": jnp.zeros((4, 4))},
    }
    rules = [
        ("*/kernel", jinit.he_normal()),
        jinit.Rule("*", jinit.ones, fallback=True),
    ]
    new, table = reinit(params, KEY, rules, explain=True)
    assert int(new["bn"]["count"]) == 7 and new["bn"]["count"].dtype == jnp.int32
    assert new["mask"].tolist() == [True, False]
    assert new["bn"]["scale"].tolist() == [1.0] * 4
    rec = table.by_path()
    assert rec["bn/count"].rule == 1 and rec["bn/count"].kept_because
    assert rec["bn/count"].action == "kept (int32 leaf: fallback rules skip non-float leaves)"
    assert "kept (bool leaf" in str(table)
    # the same catch-all without fallback=True refuses, naming the leaves and the fix
    with pytest.raises(ValueError, match=r"(?s)bn/count \(int32.*mask \(bool.*fallback=True"):
        reinit(params, KEY, [("*/kernel", jinit.he_normal()), ("*", jinit.ones)])


def test_non_array_leaves_are_kept_and_listed():
    def act(x):
        return x

    params = {"w": jnp.zeros(3), "temperature": 1.5, "name": "mlp", "act": act, "n": None}
    new, table = reinit(params, KEY, [("*", jinit.ones)], explain=True)
    assert new["temperature"] == 1.5 and new["name"] == "mlp" and new["act"] is act
    assert new["n"] is None and new["w"].tolist() == [1.0, 1.0, 1.0]
    assert dict(table.non_array) == {"temperature": "float", "name": "str", "act": "function"}
    assert "non-array leaves kept as they are: act (function), name (str)" in str(table)


def test_dtype_kind_is_never_silently_cast():
    """Float draws of another precision are rounded; other kinds raise (no leaf written)."""
    params = {"a": jnp.zeros(4, jnp.bfloat16), "b": jnp.zeros(4)}
    new = reinit(params, KEY, [("*", lambda k, s, d: np.full(s, 1 / 3))])  # numpy float64
    assert new["a"].dtype == jnp.bfloat16 and float(new["a"][0]) == float(jnp.bfloat16(1 / 3))
    for bad in (jnp.complex64, jnp.int32, jnp.bool_):
        with pytest.raises(ValueError, match="float32 leaf"):
            reinit({"b": jnp.zeros(4)}, KEY, [("*", lambda k, s, d, t=bad: jnp.ones(s, t))])


FOUR = pytest.mark.skipif(len(jax.devices()) < 4, reason="needs 4 devices (JINIT_TEST_DEVICES < 4)")


@FOUR
def test_sharding_preserved():
    mesh = jax.sharding.Mesh(np.array(jax.devices()[:4]).reshape(2, 2), ("x", "y"))
    sharded = NamedSharding(mesh, PartitionSpec("x", "y"))
    params = _params()
    params["Dense_1"]["kernel"] = jax.device_put(params["Dense_1"]["kernel"], sharded)
    new = reinit(params, KEY, RULES)
    assert new["Dense_1"]["kernel"].sharding == sharded
    assert len(new["Dense_1"]["kernel"].addressable_shards) == 4
    assert new["Dense_0"]["kernel"].sharding == params["Dense_0"]["kernel"].sharding
    plain = reinit(_params(), KEY, RULES)
    assert _same(new["Dense_1"]["kernel"], plain["Dense_1"]["kernel"])


def _auto_mesh():
    return jax.make_mesh((2, 2), ("data", "model"), axis_types=(jax.sharding.AxisType.Auto,) * 2)


_KINIT = nn.initializers.lecun_normal()
_ANN_RULES = [("*kernel", jinit.he_normal()), ("*bias", jinit.zeros)]


def _nnx_annotated():
    return nnx.Linear(
        8, 16, kernel_init=nnx.with_partitioning(_KINIT, (None, "model")), rngs=nnx.Rngs(0)
    )


class _LinenAnnotated(nn.Module):
    logical: bool

    @nn.compact
    def __call__(self, x):
        if self.logical:
            init = nn.with_logical_partitioning(_KINIT, ("embed", "mlp"))
        else:
            init = nn.with_partitioning(_KINIT, ("data", "model"))
        return nn.Dense(16, kernel_init=init)(x)


def _annotated_case(kind):
    """(run, kernel-of-result, expected spec) for one kind of annotated tree under an Auto mesh."""
    key = jax.random.key(3)
    if kind == "nnx-module-nnx.jit":
        model = _nnx_annotated()
        run = lambda: nnx.jit(lambda m: reinit(m, key, _ANN_RULES))(model)  # noqa: E731
        return run, lambda out: out.kernel.get_value(), PartitionSpec(None, "model")
    if kind == "nnx-state-jax.jit":
        state = nnx.state(_nnx_annotated(), nnx.Param)
        run = lambda: fast_jit(lambda s: reinit(s, key, _ANN_RULES))(state)  # noqa: E731
        return run, lambda out: out["kernel"].get_value(), PartitionSpec(None, "model")
    if kind == "nnx-eval_shape-eager":
        state = nnx.state(nnx.eval_shape(_nnx_annotated), nnx.Param)
        run = lambda: reinit(state, key, _ANN_RULES)  # noqa: E731
        return run, lambda out: out["kernel"].get_value(), PartitionSpec(None, "model")
    logical = kind == "linen-logical-jax.jit"
    params = _LinenAnnotated(logical).init(jax.random.key(1), jnp.ones((1, 8)))["params"]
    run = lambda: fast_jit(lambda t: reinit(t, key, _ANN_RULES))(params)  # noqa: E731
    spec = PartitionSpec("data", "model")
    return run, lambda out: out["Dense_0"]["kernel"].unbox(apply_constraint=False), spec


@FOUR
@pytest.mark.parametrize(
    "kind",
    [
        "nnx-module-nnx.jit",
        "nnx-state-jax.jit",
        "nnx-eval_shape-eager",
        "linen-partitioned-jax.jit",
        "linen-logical-jax.jit",
    ],
)
def test_annotated_shardings_kept_under_jit_on_auto_mesh(kind):
    # On an all-Auto mesh a traced leaf carries no partition spec: without the Flax annotation
    # the new kernel would come back replicated (P()), as it did before.
    mesh = _auto_mesh()
    with jax.set_mesh(mesh), nn.logical_axis_rules([("embed", "data"), ("mlp", "model")]):
        run, kernel, spec = _annotated_case(kind)
        out = kernel(run())
    assert out.sharding.spec == spec, out.sharding
    assert len(out.addressable_shards) == 4
    assert {s.data.shape for s in out.addressable_shards} == {
        tuple(n // (2 if s else 1) for n, s in zip((8, 16), spec, strict=True))
    }
    path = "Dense_0/kernel" if kind.startswith("linen") else "kernel"
    ref = jinit.he_normal()(path_key(jax.random.key(3), path), (8, 16))
    # another program (sharded, perhaps another fusion) rounds the truncated normal's erfinv
    # transform differently: a handful of float32 ops and one transcendental, <= 16 ulp each
    np.testing.assert_allclose(np.asarray(out), np.asarray(ref), rtol=64 * 2**-23, atol=1e-7)


@FOUR
def test_annotation_errors_are_named():
    mesh = _auto_mesh()

    class Bad(nn.Module):
        @nn.compact
        def __call__(self, x):
            init = nn.with_partitioning(_KINIT, ("oops", "model"))
            return nn.Dense(16, kernel_init=init)(x)

    params = Bad().init(jax.random.key(1), jnp.ones((1, 8)))["params"]
    with jax.set_mesh(mesh), pytest.raises(ValueError, match=r"'Dense_0/kernel'.*\['oops'\]"):
        fast_jit(lambda t: reinit(t, KEY, _ANN_RULES))(params)
    with jax.set_mesh(mesh):
        state = nnx.state(nnx.eval_shape(_nnx_annotated), nnx.Param)
    with pytest.raises(ValueError, match=r"abstract mesh.*jax.set_mesh"):
        reinit(state, KEY, _ANN_RULES)


# ---------------------------------------------------------------------------------------------
# Tree kinds
# ---------------------------------------------------------------------------------------------


class _LinenMLP(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Dense(16)(x))
        return nn.Dense(3, name="head")(x)


@pytest.mark.parametrize("wrapped", [False, True], ids=["inner", "variables"])
def test_linen(wrapped):
    model = _LinenMLP()
    shapes = jax.eval_shape(model.init, jax.random.key(1), jnp.ones((1, 5)))
    variables = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)
    tree = variables if wrapped else variables["params"]
    rules = [("*/kernel", jinit.torch.linear_weight()), ("*/bias", contextual(_torch_bias))]
    new, table = reinit(tree, KEY, rules, explain=True)
    prefix = "params/" if wrapped else ""
    assert [r.path for r in table][:2] == [prefix + "Dense_0/bias", prefix + "Dense_0/kernel"]
    params = new["params"] if wrapped else new
    assert jax.tree.structure(new) == jax.tree.structure(tree)
    assert float(jnp.abs(params["Dense_0"]["bias"]).max()) <= 1 / math.sqrt(5)
    assert float(jnp.abs(params["head"]["bias"]).max()) <= 1 / math.sqrt(16)
    # Dense_0's 16 biases use fan_in 5, not the 16 of the layer after it.
    assert float(jnp.abs(params["Dense_0"]["bias"]).max()) > 1 / math.sqrt(16)


class _NNXNet(nnx.Module):
    def __init__(self, rngs):
        self.linear1 = nnx.Linear(5, 16, rngs=rngs)
        self.bn = nnx.BatchNorm(16, rngs=rngs)
        self.head = nnx.Linear(16, 3, rngs=rngs)
        self.drop = nnx.Dropout(0.5, rngs=rngs)  # holds RNG state (not parameters)

    def __call__(self, x):
        return self.head(self.bn(self.linear1(x)))


NNX_RULES = [("*/kernel", jinit.zeros), ("*/scale", jinit.constant(2.0)), ("*/bias", jinit.ones)]


@pytest.mark.parametrize("how", ["split", "state"])
def test_nnx_state(how):
    model = _NNXNet(nnx.Rngs(0))
    if how == "split":
        graphdef, state, rest = nnx.split(model, nnx.Param, ...)
    else:
        state = nnx.state(model, nnx.Param)
    new = reinit(state, KEY, NNX_RULES)
    assert type(new) is type(state)
    assert isinstance(new["linear1"]["kernel"], nnx.Param)
    assert _same(new["linear1"]["kernel"][...], np.zeros((5, 16)))
    assert _same(new["bn"]["scale"][...], np.full(16, 2.0))
    assert not _same(model.linear1.kernel[...], np.zeros((5, 16)))  # input untouched
    if how == "split":
        rebuilt = nnx.merge(graphdef, new, rest)
        assert _same(rebuilt.head.bias[...], np.ones(3))


def test_nnx_full_state_strict_reports_batch_stats():
    model = _NNXNet(nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"bn/mean.*\n.*bn/var.*\n.*drop/rngs/count") as e:
        reinit(nnx.state(model), KEY, NNX_RULES)
    assert "nnx.state(model, nnx.Param)" in str(e.value)


def _host(x):
    if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
        x = jax.random.key_data(x)
    return np.asarray(x)


def test_nnx_module():
    model = _NNXNet(nnx.Rngs(0))
    before = jax.tree.map(_host, nnx.state(model))
    new = reinit(model, KEY, NNX_RULES)
    assert type(new) is _NNXNet and new is not model
    assert _same(new.linear1.kernel[...], np.zeros((5, 16)))
    assert _same(new.head.bias[...], np.ones(3))
    assert new.bn.mean is not model.bn.mean  # batch stats copied, not shared
    after = jax.tree.map(_host, nnx.state(model))
    jax.tree.map(lambda a, b: np.testing.assert_array_equal(a, b), before, after)
    assert new(jnp.ones((2, 5))).shape == (2, 3)
    # Same values as re-initialising the Param state.
    state = reinit(nnx.state(model, nnx.Param), KEY, NNX_RULES)
    assert _same(new.bn.scale[...], state["bn"]["scale"][...])


def test_haiku_dict_with_contextual_bias():
    params = {
        "mlp/~/linear_0": {"w": jnp.zeros((100, 8)), "b": jnp.zeros(8)},
        "mlp/~/linear_1": {"w": jnp.zeros((8, 4)), "b": jnp.zeros(4)},
    }
    seen = {}

    def bias(key, leaf):
        seen[leaf.path] = (leaf.parent, leaf.name, sorted(leaf.siblings))
        bound = 1 / math.sqrt(leaf.siblings["w"].shape[0])
        return jax.random.uniform(key, leaf.shape, leaf.dtype, -bound, bound)

    rules = [("mlp/~/linear_*/w", jinit.torch.linear_weight()), ("*/b", contextual(bias))]
    new = reinit(params, KEY, rules)
    assert seen["mlp/~/linear_0/b"] == ("mlp/~/linear_0", "b", ["w"])
    assert float(jnp.abs(new["mlp/~/linear_0"]["b"]).max()) <= 0.1
    assert float(jnp.abs(new["mlp/~/linear_1"]["b"]).max()) > 0.1  # bound 1/sqrt(8)


def test_equinox_module():
    mlp = eqx.nn.MLP(5, 3, 8, 2, key=jax.random.key(0))
    rules = [("layers/*/weight", jinit.zeros), ("layers/*/bias", jinit.ones)]
    new, table = reinit(mlp, KEY, rules, explain=True)
    assert type(new) is eqx.nn.MLP and new.activation is mlp.activation
    assert [r.path for r in table][:2] == ["layers/0/weight", "layers/0/bias"]
    assert _same(new.layers[1].weight, np.zeros((8, 8)))
    assert _same(new.layers[2].bias, np.ones(3))
    assert not _same(mlp.layers[1].weight, np.zeros((8, 8)))
    assert _same(new(jnp.ones(5)), np.ones(3))


# ---------------------------------------------------------------------------------------------
# Laws of re-initialised leaves (seeds vmapped in one jit)
# ---------------------------------------------------------------------------------------------

SEEDS = 32
LAW_CASES = [
    # rule initialiser, leaf path, shape
    (jinit.he_normal(), "Dense_1/kernel", (64, 32)),
    (jinit.torch.linear_weight(), "Dense_1/kernel", (64, 32)),
    (jinit.orthogonal(), "Dense_1/kernel", (32, 32)),
    (jinit.torch.linear_bias(64), "Dense_1/bias", (32,)),
]


@pytest.mark.parametrize("init,path,shape", LAW_CASES, ids=lambda x: repr(x)[:40])
def test_laws(init, path, shape):
    params = {"Dense_1": {"kernel": jnp.ones((64, 32)), "bias": jnp.ones(32)}, "x": jnp.ones(3)}
    if len(shape) == 2:
        params["Dense_1"]["kernel"] = jnp.ones(shape)
    rules = [(path, init)]
    draw = fast_jit(jax.vmap(lambda k: reinit(params, k, rules, strict=False)))
    out = draw(jax.random.split(KEY, SEEDS))
    layer, leaf = path.split("/")
    x = np.asarray(out[layer][leaf], np.float64)
    assert x.shape == (SEEDS, *shape)
    assert np.all(x[0] != x[1])  # independent seeds
    law = jinit.law(init, shape)
    if type(law).__name__ == "Haar" or not hasattr(law, "cdf"):
        gram = np.einsum("sij,sik->sjk", x, x)
        np.testing.assert_allclose(gram, np.broadcast_to(np.eye(shape[1]), gram.shape), atol=1e-4)
    else:
        p = stats.kstest(x.ravel(), law.cdf).pvalue
        assert p > 1e-4, p
        lo, hi = law.support
        assert lo <= x.min() and x.max() <= hi
    np.testing.assert_array_equal(np.asarray(out["x"]), np.ones((SEEDS, 3)))


def test_contextual_bias_law():
    """torch Linear bias U(±1/sqrt(fan_in)) with fan_in read from the sibling kernel."""
    params = {"Dense_0": {"kernel": jnp.ones((48, 16)), "bias": jnp.ones(16)}}
    rules = [("*/bias", contextual(_torch_bias))]
    draw = fast_jit(jax.vmap(lambda k: reinit(params, k, rules, strict=False)))
    x = np.asarray(draw(jax.random.split(KEY, 64))["Dense_0"]["bias"]).ravel()
    b = 1 / math.sqrt(48)
    assert stats.kstest(x, stats.uniform(-b, 2 * b).cdf).pvalue > 1e-4
    assert np.abs(x).max() <= b and np.abs(x).max() > 0.95 * b


@pytest.mark.parametrize("fallback,raises", [(False, True), (True, False)])
def test_a_fallback_rule_may_lose_every_leaf_but_a_plain_one_may_not(fallback, raises):
    params = {"Dense_0": {"kernel": jnp.ones((4, 3)), "bias": jnp.ones(3)}}
    rules = [
        ("*/kernel", jinit.he_normal()),
        ("*/bias", jinit.zeros),
        jinit.Rule("*", jinit.ones, fallback=fallback),
    ]
    if raises:
        with pytest.raises(ValueError, match="never apply"):
            jinit.reinit(params, jax.random.key(0), rules)
    else:
        new, table = jinit.reinit(params, jax.random.key(0), rules, explain=True)
        assert float(jnp.abs(new["Dense_0"]["bias"]).max()) == 0.0
        assert 2 in table.shadowed
