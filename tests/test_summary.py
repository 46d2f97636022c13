"""Tests of jinit.trees._summary: per-leaf statistics, expected laws from rules, and flags."""

from __future__ import annotations

import functools
import io
import json
import math
import re

import equinox as eqx
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from rich.console import Console

import jinit
from jinit.laws._elementwise import Uniform
from jinit.trees._summary import summary
from jinit.trees._summary_types import Summary, SummaryRow


class _MLP(nn.Module):
    kinit: object
    widths: tuple[int, ...] = (48, 64, 64, 10)

    @nn.compact
    def __call__(self, x):
        for i, w in enumerate(self.widths):
            x = nn.Dense(w, kernel_init=self.kinit, name=f"d{i}")(x)
            x = nn.relu(x) if i < len(self.widths) - 1 else x
        return x


SHAPES = {"d0": (32, 48), "d1": (48, 64), "d2": (64, 64), "d3": (64, 10)}


def _params_per_seed(init, seeds=1, dtype=jnp.float32):
    """The ``_MLP`` params tree (same paths and shapes), one per seed (fresh dicts)."""
    return [jax.tree.map(lambda x: x, p) for p in _cached_params(init, seeds, dtype)]


@functools.lru_cache
def _cached_params(init, seeds, dtype):
    # Eager draws: the per-shape random kernels compile once and are shared by all initialisers.
    out = []
    for seed in range(seeds):
        keys = jax.random.split(jax.random.key(seed), len(SHAPES))
        out.append(
            {
                name: {"kernel": init(k, shape, dtype), "bias": jnp.zeros(shape[1], dtype)}
                for k, (name, shape) in zip(keys, SHAPES.items(), strict=True)
            }
        )
    return out


def _linen_params(init):
    return _params_per_seed(init)[0]


def test_linen_params_tree_has_the_expected_paths():
    # flax's own lecun_normal (jax's sampler) must match jinit's law of the same name
    model = _MLP(jax.nn.initializers.lecun_normal())
    params = model.init(jax.random.key(0), jnp.ones((1, 32)))["params"]
    s = summary(params, rules=[("*/kernel", jinit.lecun_normal()), ("*/bias", jinit.zeros)])
    assert s.paths == [f"d{i}/{leaf}" for i in range(4) for leaf in ("bias", "kernel")]
    assert s.ok and [r.shape for r in s][1::2] == list(SHAPES.values())


# Fresh inits whose law is known: a correct init must raise no flag, for any of a few seeds.
FRESH = [
    ("he_normal", jinit.he_normal()),
    ("glorot_uniform", jinit.glorot_uniform()),
    ("truncated_normal", jinit.truncated_normal(0.05)),
    ("orthogonal", jinit.orthogonal(1.3)),
]


@pytest.mark.parametrize("name,init", FRESH, ids=[c[0] for c in FRESH])
def test_fresh_init_has_no_flags(name, init):
    rules = [("*/kernel", init), ("*/bias", jinit.zeros)]
    for seed, params in enumerate(_params_per_seed(init, seeds=3)):
        s = summary(params, rules=rules)
        assert s.ok, (name, seed, [(r.path, r.flags, r.z_std) for r in s.flagged])
        for r in s:
            assert r.expected_std is not None
            if r.path.endswith("kernel"):
                # the sample std is close to the law's std (640 entries at least: < 10 %)
                assert abs(r.std / r.expected_std - 1) < 0.1, (name, r)
                assert abs(r.z_std) < 6


def _mutate(path, fn):
    def apply(params):
        mod, leaf = path.split("/")
        params = jax.tree.map(lambda x: x, params)
        params[mod][leaf] = fn(params[mod][leaf])
        return params

    return apply


def _dup_column(w):
    return w.at[:, 7].set(w[:, 3])


# (case, mutation, mutated path, flags expected on that path)
CRAFTED = [
    (
        "zeros",
        _mutate("d1/kernel", jnp.zeros_like),
        "d1/kernel",
        {"zeros", "identical-units", "std-off"},
    ),
    ("constant", _mutate("d1/kernel", lambda w: jnp.full_like(w, 0.1)), "d1/kernel", None),
    ("dup-column", _mutate("d2/kernel", _dup_column), "d2/kernel", {"identical-units"}),
    ("nan", _mutate("d0/kernel", lambda w: w.at[2, 5].set(jnp.nan)), "d0/kernel", {"non-finite"}),
    ("inf-bias", _mutate("d0/bias", lambda b: b.at[0].set(jnp.inf)), "d0/bias", {"non-finite"}),
    ("10x", _mutate("d2/kernel", lambda w: 10 * w), "d2/kernel", {"std-off"}),
    ("0.1x", _mutate("d3/kernel", lambda w: 0.1 * w), "d3/kernel", {"std-off"}),
    ("1.5x", _mutate("d1/kernel", lambda w: 1.5 * w), "d1/kernel", {"std-off"}),
    ("shifted", _mutate("d1/kernel", lambda w: w + 0.1), "d1/kernel", {"mean-off"}),
    ("const-bias", _mutate("d1/bias", lambda b: b + 0.3), "d1/bias", {"mean-off"}),
    (
        "noisy-bias",
        _mutate("d1/bias", lambda b: b + jnp.linspace(-1, 1, b.size)),
        "d1/bias",
        {"std-off"},
    ),
]


@pytest.mark.parametrize("case,mutate,path,flags", CRAFTED, ids=[c[0] for c in CRAFTED])
def test_flags_fire_on_crafted_trees(case, mutate, path, flags):
    params = mutate(_linen_params(jinit.he_normal()))
    s = summary(params, rules=[("*/kernel", jinit.he_normal()), ("*/bias", jinit.zeros)])
    got = set(s[path].flags)
    if flags is None:  # a constant kernel: all columns equal, and the std is 0 (not He's)
        flags = {"identical-units", "std-off", "mean-off"}
    assert got == flags, (case, s[path])
    others = [(r.path, r.flags) for r in s if r.path != path and r.flags]
    assert not others, (case, others)


def test_flags_without_rules():
    """Without expectations only the law-free flags can fire, and a fresh tree has none."""
    params = _linen_params(jinit.he_normal())
    assert summary(params).ok
    params["d1"]["kernel"] = params["d1"]["kernel"].at[:, 1].set(params["d1"]["kernel"][:, 0])
    params["d2"]["kernel"] = params["d2"]["kernel"] * 10
    s = summary(params)
    assert [r.path for r in s.flagged] == ["d1/kernel"]
    assert s["d1/kernel"].duplicate_units == 1
    assert s["d2/kernel"].expected_std is None and s["d2/kernel"].z_std is None


def test_duplicate_count_and_unit_axis():
    """Duplicates are counted along the unit axis only; rows (inputs) are a different axis."""
    w = jax.random.normal(jax.random.key(3), (16, 12))
    w = w.at[:, 5].set(w[:, 0]).at[:, 9].set(w[:, 0]).at[:, 11].set(w[:, 2])
    s = summary({"k": w})
    assert s["k"].duplicate_units == 3 and s["k"].flags == ("identical-units",)
    rows = jax.random.normal(jax.random.key(4), (16, 12)).at[3].set(0.0).at[7].set(0.0)
    assert summary({"k": rows}).ok  # duplicated rows of a Flax (in, out) kernel: inputs
    assert summary({"k": rows}, unit_axis=0)["k"].flags == ("identical-units",)


def test_rule_matching_first_match_wins_and_expected_overrides():
    params = _linen_params(jinit.he_normal())
    rules = [
        ("d0/*", jinit.normal(0.5)),
        (re.compile(r"d[12]/kernel"), jinit.he_normal()),
        ("*/kernel", jinit.lecun_normal()),
        ("*", jinit.zeros),
    ]
    s = summary(params, rules=rules, expected={"d3/kernel": 0.25})
    assert s["d0/kernel"].source == "rule d0/*" and s["d0/bias"].source == "rule d0/*"
    assert s["d0/kernel"].expected_std == pytest.approx(0.5)
    assert s["d1/kernel"].source == "rule re:d[12]/kernel"
    assert s["d1/kernel"].expected_std == pytest.approx(math.sqrt(2 / 48))
    assert s["d1/bias"].source == "rule *" and s["d1/bias"].expected_std == 0
    assert s["d3/kernel"].source == "expected"
    assert s["d3/kernel"].expected_std == pytest.approx(0.25)
    # he_normal draws: d0 (N(0, 0.5^2) expected) and d3 (0.25 vs sqrt(2/64)) are off; d1/d2 fine
    assert {r.path for r in s.flagged} == {"d0/kernel", "d0/bias", "d3/kernel"}
    # a rule dict works too
    assert summary(params, rules={"*/kernel": jinit.he_normal()})["d2/kernel"].z_std is not None


def test_rule_whose_initialiser_has_no_law_for_the_shape():
    params = _linen_params(jinit.he_normal())
    s = summary(params, rules=[("*", jinit.orthogonal())])  # orthogonal needs rank >= 2
    assert s["d0/bias"].expected_std is None and "no law" in s["d0/bias"].note
    assert s["d0/kernel"].expected_std is not None
    s = summary(params, rules=[("*", jax.nn.initializers.he_normal())])
    assert s["d0/kernel"].expected_std is None and "law" in s["d0/kernel"].note


@pytest.mark.parametrize(
    "kwargs,exc,match",
    [
        ({"rules": [("*", jinit.zeros, 1)]}, TypeError, "pair"),
        ({"rules": [(1, jinit.zeros)]}, TypeError, "pattern"),
        ({"rules": "*/kernel"}, TypeError, "list of"),
        ({"expected": {"d1/kernels": 0.1}}, ValueError, "d1/kernel"),
        ({"expected": [0.1]}, TypeError, "dict"),
        ({"z_threshold": 0}, ValueError, "z_threshold"),
        ({"unit_axis": 1.5}, TypeError, "unit_axis"),
    ],
)
def test_bad_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        summary(_linen_params(jinit.he_normal()), **kwargs)


def test_deterministic_expectations_silence_symmetry_flags():
    """A rule saying zeros/identity (ZerO, Fixup's last layer) makes a zero kernel expected."""
    params = _linen_params(jinit.he_normal())
    params["d3"]["kernel"] = jnp.zeros_like(params["d3"]["kernel"])
    rules = [("d3/kernel", jinit.zeros), ("*/kernel", jinit.he_normal()), ("*", jinit.zeros)]
    assert summary(params, rules=rules).ok
    rules = [("d3/kernel", jinit.constant(0.5))] + rules[1:]
    s = summary(params, rules=rules)
    assert set(s["d3/kernel"].flags) == {"mean-off"}  # std 0 is right, the value is not


def test_nnx_module_and_state():
    class Net(nnx.Module):
        def __init__(self, rngs):
            self.l1 = nnx.Linear(32, 64, kernel_init=jinit.he_normal(), rngs=rngs)
            self.l2 = nnx.Linear(64, 64, kernel_init=jinit.zeros, rngs=rngs)
            self.norm = nnx.LayerNorm(64, rngs=rngs)

    net = Net(nnx.Rngs(0))
    rules = [("*/kernel", jinit.he_normal()), ("*/bias", jinit.zeros), ("norm/scale", jinit.ones)]
    for tree in (net, nnx.state(net), nnx.state(net, nnx.Param)):
        s = summary(tree, rules=rules)
        assert s.paths == [
            "l1/bias",
            "l1/kernel",
            "l2/bias",
            "l2/kernel",
            "norm/bias",
            "norm/scale",
        ]
        assert {r.path: set(r.flags) for r in s.flagged} == {
            "l2/kernel": {"zeros", "identical-units", "std-off"}
        }


def test_haiku_style_dict():
    k1, k2 = jax.random.split(jax.random.key(0))
    params = {
        "mlp/~/linear_0": {"w": jinit.lecun_normal()(k1, (32, 64)), "b": jnp.zeros(64)},
        "mlp/~/linear_1": {"w": jinit.lecun_normal()(k2, (64, 64)), "b": jnp.zeros(64)},
    }
    s = summary(params, rules=[("*/w", jinit.lecun_normal()), ("*/b", jinit.zeros)])
    assert s.paths == [
        "mlp/~/linear_0/b",
        "mlp/~/linear_0/w",
        "mlp/~/linear_1/b",
        "mlp/~/linear_1/w",
    ]
    assert s.ok
    params["mlp/~/linear_1"]["w"] = params["mlp/~/linear_1"]["w"] * 3
    assert [r.path for r in summary(params, rules=[("*/w", jinit.lecun_normal())]).flagged] == [
        "mlp/~/linear_1/w"
    ]


def test_equinox_module_units_are_rows():
    model = eqx.nn.MLP(16, 8, 32, 2, key=jax.random.key(0))
    # equinox Linear: weight (out, in) and bias ~ U(+-1/sqrt(in)): torch's default
    torch_w = jinit.variance_scaling(1 / 3, "fan_in", "uniform", in_axis=-1, out_axis=-2)
    expected = {
        f"layers/{i}/bias": Uniform(-1 / math.sqrt(n), 1 / math.sqrt(n))
        for i, n in enumerate([16, 32, 32])
    }
    s = summary(model, rules=[("*/weight", torch_w)], expected=expected)
    assert s.unit_axis == 0 and s.ok, [(r.path, r.flags, r.z_std) for r in s.flagged]
    assert s["layers/1/weight"].expected_std == pytest.approx(1 / math.sqrt(3 * 32))
    w = model.layers[1].weight
    bad = eqx.tree_at(lambda m: m.layers[1].weight, model, w.at[4].set(w[0]))
    s = summary(bad, rules=[("*/weight", torch_w)], expected=expected)
    assert [(r.path, r.flags) for r in s.flagged] == [("layers/1/weight", ("identical-units",))]


def test_bfloat16_fresh_init_not_flagged():
    init = jinit.he_normal()
    for params in _params_per_seed(init, seeds=2, dtype=jnp.bfloat16):
        s = summary(params, rules=[("*/kernel", init), ("*/bias", jinit.zeros)])
        assert s.ok, [(r.path, r.flags) for r in s.flagged]
        assert s["d1/kernel"].dtype == "bfloat16"


def test_statistics_match_numpy():
    w = np.asarray(jax.random.normal(jax.random.key(7), (20, 30))) * 0.3 + 0.05
    w[1, 2] = np.nan
    r = summary({"w": jnp.asarray(w)})["w"]
    finite = w[np.isfinite(w)]
    assert r.n_nonfinite == 1 and r.size == 600 and r.shape == (20, 30)
    np.testing.assert_allclose(r.mean, finite.mean(), rtol=1e-5)
    np.testing.assert_allclose(r.std, finite.std(ddof=1), rtol=1e-5)
    np.testing.assert_allclose(r.max_abs, np.abs(finite).max(), rtol=1e-6)


@pytest.mark.parametrize("shape", [(16, 16), (520, 520)], ids=["host", "device"])
def test_all_nan_leaf_is_flagged_without_made_up_statistics(shape):
    """Small leaves are summarised on the host, large ones (> 2**18 entries) on the device."""
    x = jnp.full(shape, jnp.nan).at[0, 0].set(jnp.inf)
    s = summary({"w": x, "b": jnp.ones(3)}, rules=[("w", jinit.he_normal()), ("b", jinit.ones)])
    r = s["w"]
    assert r.flags == ("non-finite",) and not s.ok and s.flagged == [r]
    assert r.n_nonfinite == x.size
    assert math.isnan(r.mean) and math.isnan(r.std) and math.isnan(r.max_abs)
    assert r.z_std is None and r.z_mean is None
    assert r.note.startswith(f"all {x.size} entries are non-finite ({x.size - 1} NaN, 1 infinite)")
    d = r.to_dict()
    assert d["mean"] is None and d["std"] is None and d["max_abs"] is None
    line = next(ln for ln in str(s).splitlines() if ln.strip().startswith("w "))
    assert line.split()[2:4] == ["-", "-"] and "non-finite" in line


def test_numpy_float64_leaf_summarised_in_float64():
    w = np.random.default_rng(0).normal(size=(8, 8)) * 1e-3 + 1.0  # needs float64 to resolve
    r = summary({"w": w})["w"]
    assert r.dtype == "float64"
    assert r.mean == pytest.approx(w.mean(), rel=1e-12)  # float32 would be ~1e-8 off
    assert r.std == pytest.approx(w.std(ddof=1), rel=1e-9)


def test_partly_non_finite_leaf_note_counts_and_finite_statistics():
    w = jnp.array([1.0, 2.0, jnp.nan, jnp.inf, -jnp.inf, 3.0])
    r = summary({"w": w})["w"]
    assert r.flags == ("non-finite",) and r.n_nonfinite == 3
    assert r.mean == pytest.approx(2.0) and r.std == pytest.approx(1.0)
    assert r.note == (
        "3 of 6 entries are non-finite (1 NaN, 2 infinite); mean and std are those of the 3 "
        "finite entries"
    )


def test_single_entry_has_no_sample_std():
    s = summary({"t": jnp.array(0.5)}, expected={"t": jinit.constant(0.5)})
    r = s["t"]
    assert math.isnan(r.std) and r.mean == 0.5 and r.flags == () and s.ok
    r = summary({"t": jnp.array(40.0)}, expected={"t": 1.0})["t"]
    assert r.flags == ("mean-off",) and r.z_mean == pytest.approx(40.0)


def test_unit_axis_is_checked_on_matrices_only():
    """Biases (rank 1) have no units: unit_axis=1 is valid for a tree of (in, out) kernels."""
    params = _linen_params(jinit.he_normal())
    assert summary(params, unit_axis=1).unit_axis == 1
    with pytest.raises(ValueError, match=r"unit_axis=2.*'d0/kernel'.*rank 2"):
        summary(params, unit_axis=2)


def test_z_statistic_is_calibrated_over_seeds():
    """z_std of a correct init is ~N(0, 1): check its mean and spread over 48 seeds."""
    init = jinit.glorot_uniform()
    keys = jax.random.split(jax.random.key(1), 48)
    ws = np.asarray(jax.jit(jax.vmap(lambda k: init(k, (24, 40))))(keys))
    zs = np.array([summary({"w": w}, expected={"w": init}).rows[0].z_std for w in ws])
    assert abs(zs.mean()) < 0.5 and 0.6 < zs.std() < 1.5, (zs.mean(), zs.std())


def test_printing_and_json():
    params = _linen_params(jinit.he_normal())
    params["d1"]["kernel"] = jnp.zeros_like(params["d1"]["kernel"])
    params["d2"]["kernel"] = params["d2"]["kernel"].at[0, 0].set(jnp.nan)
    s = summary(params, rules=[("*/kernel", jinit.he_normal())])
    assert isinstance(s, Summary) and all(isinstance(r, SummaryRow) for r in s)
    buf = io.StringIO()
    console = Console(file=buf, width=160, color_system=None)
    console.print(s)  # via __rich__
    s.print(console=console)
    out = buf.getvalue()
    for path in s.paths:
        assert out.count(path) == 2
    assert "zeros, identical-units" in out and "non-finite" in out and "2 flagged" in out
    text = str(s)
    assert "d1/kernel" in text and "identical-units" in text and "48×64" in text
    d = json.loads(json.dumps(s.to_dict(), allow_nan=False))
    assert d["n_params"] == sum(int(np.prod(r["shape"])) for r in d["rows"])
    row = next(r for r in d["rows"] if r["path"] == "d1/kernel")
    assert row["flags"] == ["zeros", "identical-units", "std-off"] and row["shape"] == [48, 64]
    with pytest.raises(KeyError, match="d1/kernel"):
        s["d1/kernal"]


def test_device_and_host_paths_agree(monkeypatch):
    """Large leaves take a jitted pass, small ones numpy: both give the same rows."""
    from jinit.trees import _summary_stats as summary_mod

    k1, k2, k3 = jax.random.split(jax.random.key(5), 3)
    w = jax.random.normal(k1, (40, 24)).at[:, 3].set(0.5).at[:, 9].set(0.5).at[2, 2].set(jnp.inf)
    tree = {
        "w": w,
        "bf": jinit.he_uniform()(k2, (32, 16), jnp.bfloat16),
        "c": jinit.orthogonal()(k3, (8, 8), jnp.complex64),
        "n": jnp.arange(6, dtype=jnp.int32),
    }
    rules = [("bf", jinit.he_uniform()), ("c", jinit.orthogonal())]
    host = summary(tree, rules=rules)
    monkeypatch.setattr(summary_mod, "_HOST_MAX_SIZE", -1)
    device = summary(tree, rules=rules)
    assert host.paths == device.paths
    for a, b in zip(host, device, strict=True):
        assert (a.flags, a.n_nonfinite, a.duplicate_units) == (
            b.flags,
            b.n_nonfinite,
            b.duplicate_units,
        )
        np.testing.assert_allclose(
            [a.mean, a.std, a.max_abs], [b.mean, b.std, b.max_abs], rtol=1e-5, atol=1e-7
        )
    assert host["w"].duplicate_units == 1 and set(host["w"].flags) == {
        "identical-units",
        "non-finite",
    }
    assert not host["c"].flags and not host["bf"].flags and not host["n"].flags


def test_zero_leaves_flagged_only_where_something_says_random():
    """ViT zero-initialises its `head` kernel and `cls` token on purpose: no flag, a note. The
    same model with one block's Dense_1 zeroed (its twin in the other block is random) is
    flagged on that leaf only; a rule that expects a random head flags the head."""
    from tests import real_models as rm

    (module, variables), x = rm.vit(num_layers=2)
    p = variables["params"]
    lays = jinit.layouts(module, x, train=False)
    s = summary(p, layouts=lays)
    assert s.ok, s.flagged
    for path in ("head/kernel", "cls"):
        assert s[path].flags == () and "all zeros, as initialised" in s[path].note, s[path]

    bad_path = "Transformer/encoderblock_1/MlpBlock_0/Dense_1/kernel"
    bad = jax.tree.map(lambda a: a, p)
    bad["Transformer"]["encoderblock_1"]["MlpBlock_0"]["Dense_1"]["kernel"] = jnp.zeros((64, 32))
    s = summary(bad, layouts=lays)
    assert [(r.path, set(r.flags)) for r in s.flagged] == [(bad_path, {"zeros", "identical-units"})]
    assert "encoderblock_0/MlpBlock_0/Dense_1/kernel" in s[bad_path].note

    s = summary(p, rules=[("head/kernel", jinit.lecun_normal())], layouts=lays)
    assert [(r.path, set(r.flags)) for r in s.flagged] == [
        ("head/kernel", {"zeros", "identical-units", "std-off"})
    ]
    assert summary(p, rules=[("head/kernel", jinit.zeros)], layouts=lays).ok


def test_zero_leaf_twins_fold_block_indices_and_list_indices():
    from jinit.trees._summary_rows import _twin_key

    assert _twin_key("encoderblock_1/MlpBlock_0/Dense_1/kernel") == (
        "encoderblock_#/MlpBlock_#/Dense_1/kernel"
    )
    assert _twin_key("decoder/layers/3/mlp/linear2/kernel") == "decoder/layers/#/mlp/linear2/kernel"
    assert _twin_key("ResNetBlock_2/Conv_1/kernel") == "ResNetBlock_#/Conv_1/kernel"
    assert _twin_key("layers/2/weight") == "layers/#/weight"  # equinox MLP: list index
    assert _twin_key("head/kernel") == "head/kernel"
    # Fixup-style zero last conv of every block: twins all zero -> deliberate, not flagged;
    # one block's first conv zeroed among random twins -> flagged.
    k = jax.random.split(jax.random.key(0), 3)
    tree = {
        f"Block_{b}": {
            "Conv_0": {"kernel": jax.random.normal(k[b], (3, 3, 8, 8))},
            "Conv_1": {"kernel": jnp.zeros((3, 3, 8, 8))},
        }
        for b in range(3)
    }
    assert summary(tree).ok
    tree["Block_1"]["Conv_0"]["kernel"] = jnp.zeros((3, 3, 8, 8))
    assert [r.path for r in summary(tree).flagged] == ["Block_1/Conv_0/kernel"]
    # equinox MLP whose middle layer lost its init
    mlp = eqx.nn.MLP(16, 4, 32, 3, key=jax.random.key(1))
    mlp = eqx.tree_at(lambda m: m.layers[1].weight, mlp, jnp.zeros((32, 32)))
    assert [r.path for r in summary(mlp).flagged] == ["layers/1/weight"]
