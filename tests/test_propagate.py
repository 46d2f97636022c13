"""Propagation sweeps: measured statistics vs mean-field theory, and the engine's invariances.

Tolerances:

* ReLU forward second moments are unbiased at any width (E[relu(h)²] = E[h²]/2 holds
  conditionally on the previous layer, and the recursion is linear), so the seed mean must be
  within ``K_SE = 6`` standard errors of the prediction (SE from the seeds).
* Everything else goes through :func:`assert_matches_theory`, whose tolerance is the sampling
  error plus the theory's own finite-width fluctuation squared (the O(Σ 1/n) bias bound).
* Invariances (chunking, device count, processes) compare per-seed values bit for bit between
  layouts with the same number of seeds per device. That number is the batch dimension of every
  vmapped matmul, and XLA picks another kernel blocking (so another float32 rounding, which also
  differs between CPUs) for another batch: 1 and 2 seeds per device already differ in the last
  bit of a gradient norm here. With it held fixed, every layout runs the same per-device
  program on the same inputs, so any seed that gets another key, or a result written to the
  wrong row, shows as a difference.
* The manual backward pass (reverse ``lax.scan`` of per-layer VJPs, weights regenerated from
  their keys) is checked against ``jax.grad`` of the same network unrolled in Python, with the
  same keys, evaluated in float64; the tolerance is the float32 rounding bound of that
  computation (``tests/rounding.py``), which holds for any blocking of the engine's program.
"""

from __future__ import annotations

import json
import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from rounding import assert_within, evaluate, excess

import jinit
from jinit.sweeps import _statistics as sweep_stats
from jinit.sweeps._assertions import assert_matches_theory, assert_stable_propagation
from jinit.sweeps._cnn import cnn
from jinit.sweeps._flax_models import linen_model, nnx_model
from jinit.sweeps._mlp import mlp
from jinit.sweeps._propagate import sweep
from jinit.sweeps._sweep_result import SweepResult, summarise
from jinit.sweeps._transformer import transformer

SEED = 20240611
K_SE = 6.0


@pytest.fixture(scope="module")
def relu_sweep() -> SweepResult:
    """He / Glorot / N(0, 0.01²) / zeros through a ReLU MLP of width 128 and depth 6."""
    inits = {
        "he": jinit.he_normal(),
        "glorot": jinit.glorot_uniform(),
        "small": jinit.normal(0.01),
        "zeros": jinit.zeros,
    }
    return sweep(mlp(128, 6), inits, seeds=48, batch=128, seed=SEED, chunk_size=16)


@pytest.fixture(scope="module")
def exploding() -> SweepResult:
    # N(0, 1) weights, width 64: E[h²] grows ×32 per layer and overflows float32 by layer ~25.
    return sweep(mlp(64, 30), {"big": jinit.normal(1.0)}, seeds=4, batch=16, seed=SEED)


# ---------------------------------------------------------------------------------------------
# Against theory
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("quantity", ["preact.second_moment", "act.second_moment"])
@pytest.mark.parametrize("label", ["he", "glorot", "small"])
def test_relu_forward_is_unbiased(relu_sweep, label, quantity):
    s = relu_sweep.summary(label, quantity)
    pred = relu_sweep.prediction(label, quantity)
    chex.assert_shape(s.mean, (6,))
    assert np.all(np.isfinite(pred))
    for j in range(6):
        chex.assert_scalar_in(
            float(s.mean[j]), float(pred[j] - K_SE * s.se[j]), float(pred[j] + K_SE * s.se[j])
        )


def test_relu_stack_matches_theory(relu_sweep):
    assert_matches_theory(relu_sweep)  # forward and backward, default tolerances


def test_classic_lesson(relu_sweep):
    """He keeps E[x²] at the input's 1, Glorot halves it per layer, N(0, 0.01²) collapses."""
    he = relu_sweep.summary("he", "act.second_moment")
    gl = relu_sweep.summary("glorot", "act.second_moment")
    small = relu_sweep.summary("small", "act.second_moment")
    # He: E[x_l²] = 1 exactly in expectation; 6 SE.
    assert np.all(np.abs(he.mean - 1.0) <= K_SE * he.se)
    # Glorot uniform on a square layer has variance 1/n: E[x_l²] = 2^-l; 6 SE.
    assert np.all(np.abs(gl.mean - 0.5 ** np.arange(1, 7)) <= K_SE * gl.se)
    # N(0, 0.01²): factor 128·1e-4/2 = 0.0064 per layer.
    assert small.mean[-1] < 1e-12
    assert relu_sweep.verdicts("he") == ["stable"] * 6
    assert relu_sweep.verdicts("small") == ["vanishing"] * 6
    assert relu_sweep.verdicts("glorot")[:3] == ["stable"] * 3
    assert relu_sweep.verdicts("glorot")[-1] == "vanishing"


@pytest.mark.parametrize(
    "net, init",
    [
        (mlp(128, 5, "tanh"), jinit.glorot_normal()),
        (mlp(128, 5, "tanh"), jinit.variance_scaling(1.5, "fan_in", "normal")),
        (mlp(128, 5, "relu", residual=True, layernorm=True), jinit.he_normal()),
    ],
    ids=["tanh-glorot", "tanh-1.5", "relu-preLN-residual"],
)
def test_matches_theory(net, init):
    r = sweep(net, init, seeds=24, batch=96, seed=SEED, bias_init=jinit.normal(0.1))
    assert r.predicted[r.labels[0]] is not None
    assert_matches_theory(r)


def test_builtin_transformer_matches_traced_theory():
    """The built-in transformer has no closed form: its layers are traced as the sweep runs
    them (softmax attention drawn), and every quantity matches, biases drawn by bias_init."""
    net = jinit.transformer(32, 3, 2, seq_len=8)
    r = sweep(net, jinit.lecun_normal(), seeds=16, batch=16, seed=SEED, bias_init=jinit.normal(0.1))
    label = r.labels[0]
    assert r.notes[label] == "" and r.predicted[label] is not None
    assert_matches_theory(
        r,
        quantities=[
            "output.second_moment",
            "grad_output.second_moment",
            "preact.second_moment",
            "act.second_moment",
            "grad.second_moment",
        ],
    )


def test_matches_theory_can_fail(relu_sweep):
    """A prediction 20 % off (well beyond SE and the finite-width term) must be rejected."""
    bad = SweepResult(
        relu_sweep.config,
        {"he": relu_sweep.per_seed["he"]},
        {"he": {k: v * 1.2 for k, v in relu_sweep.predicted["he"].items()}},
    )
    with pytest.raises(AssertionError, match="he layer 1"):
        assert_matches_theory(bad)


def test_stable_propagation_assertion(relu_sweep):
    assert_stable_propagation(relu_sweep, 0.5, 2.0, inits="he")
    with pytest.raises(AssertionError, match="small layer 1"):
        assert_stable_propagation(relu_sweep, 0.5, 2.0, inits=["he", "small"])
    with pytest.raises(ValueError, match="unknown initialiser"):
        assert_stable_propagation(relu_sweep, 0.5, 2.0, inits="nope")


# ---------------------------------------------------------------------------------------------
# Per-seed statistics
# ---------------------------------------------------------------------------------------------


def test_zero_init_symmetry_flag(relu_sweep):
    d = relu_sweep.per_seed
    assert np.all(d["zeros"]["distinct_units"] == 1)
    assert np.all(relu_sweep.identical_units("zeros"))
    assert np.all(d["he"]["distinct_units"] == 128)
    assert not np.any(relu_sweep.identical_units("he"))


def test_constant_init_and_dead_units():
    r = sweep(
        mlp(32, 3),
        {"const": jinit.constant(0.1)},
        seeds=2,
        batch=16,
        bias_init=jinit.constant(-100.0),
    )
    # A constant kernel makes every unit compute the same function (with an equal bias) ...
    assert np.all(r.per_seed["const"]["distinct_units"] == 1)
    # ... and a bias of -100 kills every ReLU unit on every example.
    np.testing.assert_array_equal(r.per_seed["const"]["dead_fraction"], 1.0)
    assert r.predicted["const"] is None and "not zero-mean" in r.notes["const"]


def test_exploding_init_is_reported_not_raised(exploding, tmp_path):
    fwd = exploding.nonfinite_seeds("big", "forward")
    assert fwd[0] == 0 and fwd[-1] == 4  # finite at first, every seed overflows later
    # the gradient grows x32 per layer backwards too: it overflows at the first layers
    assert exploding.nonfinite_seeds("big", "backward")[0] == 4
    bwd = exploding.nonfinite_seeds("big", "backward")
    assert np.all(exploding.nonfinite_seeds("big") >= np.maximum(fwd, bwd))
    assert exploding.verdicts("big")[-1] == "exploding"
    s = exploding.summary("big", "act.second_moment")
    assert s.n_finite[-1] == 0 and np.isnan(s.mean[-1])
    exploding.to_json(tmp_path / "r.json")  # strict JSON: non-finite numbers become null
    doc = json.loads((tmp_path / "r.json").read_text())
    last = doc["initializers"][0]["layers"][-1]
    assert last["measured"]["nonfinite_seeds"] == 4
    assert last["measured"]["second_moment"]["mean"] is None
    exploding.to_csv(tmp_path / "r.csv")
    with pytest.raises(AssertionError, match="inf/NaN"):
        assert_stable_propagation(exploding, 1e-3, 1e30)


def _unrolled_reference(net, init, bias_init, batch, seed, s):
    """Per-layer grad second moments and kernel-gradient norms by plain `jax.grad`, in float64.

    Same key derivation as the engine: seed key fold_in(key(seed), s); parameters, input and
    cotangent from fold_in(·, 0 / 1 / 2); layer l from fold_in(params key, l). Returns the
    float64 values and the float32 rounding bound of each (``tests/rounding.py``: the
    forward and backward passes' inner products, elementwise operations and XLA
    transcendentals, propagated by their exact sensitivities), as ``(g2, norms), bounds``.
    """
    key = jax.random.fold_in(jax.random.key(seed), s)
    kp, kx, kv = (jax.random.fold_in(key, i) for i in range(3))
    x0 = jax.random.normal(kx, (batch, *net.input_shape()), jnp.float32)
    params = [
        net.layer_params(jax.random.fold_in(kp, i), init, bias_init, jnp.float32)
        for i in range(net.depth)
    ]

    def run(params, probes, x0):
        # probes: (on h^l, on the carry's last leaf after layer l: the engine's grad_output)
        carry = net.initial_carry(x0)
        hs = []
        for p, (pr, po) in zip(params, probes, strict=True):
            h, aux = net.pre(p, carry)
            h = h + pr
            carry, _ = net.post(p, h, carry, aux)
            leaves, tdef = jax.tree_util.tree_flatten(carry)
            carry = jax.tree_util.tree_unflatten(tdef, [*leaves[:-1], leaves[-1] + po])
            hs.append(h)
        # the probe loss sits on the network output (the stream) or on h^L
        return jax.tree_util.tree_leaves(carry)[0] if net.loss_on_output else hs[-1], hs, carry

    _, hs, carry = jax.eval_shape(run, params, [(0.0, 0.0)] * net.depth, x0)
    y_shape = jax.tree_util.tree_leaves(carry)[0].shape if net.loss_on_output else hs[-1].shape
    v = jax.random.normal(kv, y_shape, jnp.float32)
    out_shape = jax.tree_util.tree_leaves(carry)[-1].shape
    probes = [(jnp.zeros(h.shape, jnp.float32), jnp.zeros(out_shape, jnp.float32)) for h in hs]

    def stats(params, probes, x0, v):
        loss = lambda p, pr: jnp.sum(v * run(p, pr, x0)[0])  # noqa: E731
        gp, gh = jax.grad(loss, argnums=(0, 1))(params, probes)
        # squared norms: sqrt is applied below (its derivative is infinite at a zero norm)
        return (
            [jnp.mean(g * g) for g, _ in gh],
            [jnp.mean(g * g) for _, g in gh],
            [{n: jnp.sum(g[n] * g[n]) for n in g} for g in gp],
        )

    (g2, go2, sq), (b_g2, b_go2, b_sq) = evaluate(stats, params, probes, x0, v)
    names = [sp.name for sp in net.param_specs()]
    norms = {n: np.sqrt([q[n] for q in sq]) for n in names}
    # |√Ŝ - √S| ≤ b_S / (√S + √(S - b_S)) ≤ b_S / √S, plus the float32 sqrt's own rounding
    b_norms = {
        n: np.array([b[n] for b in b_sq]) / np.maximum(norms[n], 1e-300) + 16 * 2.0**-24 * norms[n]
        for n in names
    }
    return (np.array(g2), np.array(go2), norms), (np.array(b_g2), np.array(b_go2), b_norms)


@pytest.mark.parametrize(
    "net",
    [
        mlp(16, 3, "tanh", residual=True, layernorm=True),
        cnn(4, 2, 3, image_size=5),
        transformer(8, 1, 2, mlp_ratio=2, seq_len=3),
    ],
    ids=["mlp-res-ln", "cnn", "transformer"],
)
def test_backward_matches_jax_grad(net):
    batch, s = 3, 1  # seed index 1 of 2
    init, bias_init = jinit.lecun_normal(), jinit.normal(0.1)
    r = sweep(net, init, seeds=2, batch=batch, seed=SEED, bias_init=bias_init)
    d = r.per_seed[r.labels[0]]
    (g2, go2, norms), (b_g2, b_go2, b_norms) = _unrolled_reference(
        net, init, bias_init, batch, SEED, s
    )
    assert_within(d["grad.second_moment"][s], g2, b_g2, "grad.second_moment")
    assert_within(d["grad_output.second_moment"][s], go2, b_go2, "grad_output.second_moment")
    for name, ref in norms.items():
        got = d[f"param_grad_norm.{name}"][s]
        assert_within(got, ref, b_norms[name], f"param_grad_norm.{name}")
        if np.any(ref > 0):  # sensitivity: a 0.1 % error in a gradient norm is caught
            assert excess(got, ref * 1.001, b_norms[name]) > 1
    assert excess(d["grad.second_moment"][s], g2 * 1.001, b_g2) > 1
    if net.kind == "transformer":
        # the loss sits on the residual stream: dL/dx^L = v, whose mean square is not 0
        assert go2[-1] > 0 and r.config["loss"].startswith("<v, x^L>")
        assert r.config["units"] == 16  # the MLP hidden layer is the pre-activation
    # E[h¹²] = fan_in · Var(w) · E[x²] + Var(b) = 1.01: the circular CNN and MLP read unit
    # inputs; the transformer's MLP reads LayerNorm's output, whose mean square is
    # 1 - eps/Var(x) (eps = 1e-6), hence the looser bound there
    rtol = 1e-5 if net.kind == "transformer" else 1e-7
    np.testing.assert_allclose(r.prediction(r.labels[0], "preact.second_moment")[0], 1.01, rtol)


# ---------------------------------------------------------------------------------------------
# Engine invariances
# ---------------------------------------------------------------------------------------------

_SMALL = mlp(32, 3)


def _per_seed(r: SweepResult) -> dict[str, np.ndarray]:
    return r.per_seed[r.labels[0]]


N_DEV = len(jax.local_devices())  # 4 (tests/conftest.py), or JINIT_TEST_DEVICES


@pytest.fixture(scope="module")
def layouts() -> dict[str, SweepResult]:
    """The same 8 seeds in four layouts, two with 2 seeds per device and two with 1.

    ``c2d1``: chunks of 2 on 1 device (4 chunks); ``c2nd``: chunks of 2·N_DEV on N_DEV devices
    (1 chunk); ``c1d1``: chunks of 1 on 1 device (8 chunks); ``c1nd``: chunks of N_DEV - 1
    on N_DEV devices, rounded up to N_DEV (one seed per device).
    """
    run = lambda chunk, dev: sweep(
        _SMALL, jinit.he_normal(), seeds=8, batch=8, chunk_size=chunk, devices=dev
    )
    out = {"c2d1": run(2, 1), "c1d1": run(1, 1)}
    if N_DEV >= 2:
        out |= {"c2nd": run(2 * N_DEV, N_DEV), "c1nd": run(N_DEV - 1, N_DEV)}
    return out


def _assert_same_bits(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_traced_once_over_many_chunks(layouts):
    r = layouts["c2d1"]
    assert r.config["chunks"] == 4
    assert r.config["traces"] == {"he_normal()": 1}
    assert _per_seed(r)["act.second_moment"].shape == (8, 3)


@pytest.mark.skipif(N_DEV < 2, reason="needs 2 or more devices")
def test_chunk_size_does_not_change_results(layouts):
    """4 chunks of 2 seeds on 1 device = 1 chunk of 2·N_DEV seeds on N_DEV devices."""
    assert layouts["c2nd"].config["chunks"] == 1
    _assert_same_bits(_per_seed(layouts["c2d1"]), _per_seed(layouts["c2nd"]))


@pytest.mark.skipif(N_DEV < 2, reason="needs 2 or more devices")
def test_device_count_does_not_change_results(layouts):
    one, many = layouts["c1d1"], layouts["c1nd"]
    assert many.config["devices"] == N_DEV and one.config["devices"] == 1
    assert many.config["chunk_size"] == N_DEV  # rounded up to a multiple of the device count
    _assert_same_bits(_per_seed(one), _per_seed(many))


CACHE_CASES = [
    # (changed argument, whether the second sweep reuses the first's compiled program)
    ({"seed": 7}, True),
    ({"seeds": 7}, True),  # 4 chunks of 2 either way
    ({"batch": 16}, False),
    ({"gradients": False}, False),
    ({"bias_init": jinit.constant(0.1)}, False),
]


@pytest.mark.parametrize("change, reused", CACHE_CASES)
def test_compiled_programs_are_reused_across_calls(change, reused):
    """A second sweep differing only in ``seed`` or ``seeds`` runs the first's compiled
    program: no trace, no compile, and the same bits as a sweep compiled afresh."""
    from jinit.sweeps._propagate import _PROGRAMS

    base = dict(seeds=8, batch=8, chunk_size=2, devices=1, seed=0)
    _PROGRAMS.clear()
    sweep(_SMALL, jinit.he_normal(), **base)
    second = sweep(_SMALL, jinit.he_normal(), **(base | change))
    assert (_PROGRAMS.hits, _PROGRAMS.misses) == ((1, 1) if reused else (0, 2))
    _PROGRAMS.clear()
    fresh = sweep(_SMALL, jinit.he_normal(), **(base | change))
    if reused:  # a lookup, not a compile
        assert second.compile_seconds < fresh.compile_seconds
    _assert_same_bits(_per_seed(second), _per_seed(fresh))


# ---------------------------------------------------------------------------------------------
# Flax models
# ---------------------------------------------------------------------------------------------


def _linen_mlp():
    import flax.linen as nn

    class MLP(nn.Module):
        kernel_init: object

        @nn.compact
        def __call__(self, x):
            for _ in range(3):
                x = nn.relu(nn.Dense(64, kernel_init=self.kernel_init)(x))
            return x

    return MLP


def _nnx_mlp():
    from flax import nnx

    class MLP(nnx.Module):
        def __init__(self, init, rngs):
            self.layers = nnx.List(
                [nnx.Linear(64, 64, kernel_init=init, rngs=rngs) for _ in range(3)]
            )

        def __call__(self, x):
            for layer in self.layers:
                x = nnx.relu(layer(x))
            return x

    return MLP


def _sample(key, batch, dtype):
    return jax.random.normal(key, (batch, 64), dtype)


@pytest.mark.parametrize("kind", ["linen", "nnx"])
def test_flax_models(kind):
    if kind == "linen":
        cls = _linen_mlp()
        model = linen_model(lambda init: cls(init), _sample)
    else:
        model = nnx_model(_nnx_mlp(), _sample)
    inits = {"he": jinit.he_normal()} | ({"zeros": jinit.zeros} if kind == "linen" else {})
    r = sweep(model, inits, seeds=16, batch=64)
    # traced theory (issue 15): relu + He keeps E[h²] = 2 E[x²]; the data's E[x²] is estimated
    # from 4096 standard normal examples of 64 features (relative SE 0.0022; 1 % is 4.5 SE)
    assert r.n_layers == 3
    np.testing.assert_allclose(r.prediction("he", "preact.second_moment"), 2.0, rtol=0.01)
    jinit.testing.assert_matches_theory(r, inits="he")
    if kind == "linen":  # zero kernels (and biases): every output is exactly 0
        np.testing.assert_array_equal(r.prediction("zeros", "preact.second_moment"), 0.0)
    s = r.summary("he", "preact.second_moment")
    # Dense outputs are the pre-activations: E[h²] = 2 at every layer (ReLU, He); 6 SE.
    assert np.all(np.abs(s.mean - 2.0) <= K_SE * s.se)
    # cotangent on the model output relu(h³): E[g²] = P(h > 0) = 1/2 at the last layer; 6 SE
    g = r.summary("he", "grad.second_moment")
    chex.assert_scalar_in(float(g.mean[-1]), 0.5 - K_SE * g.se[-1], 0.5 + K_SE * g.se[-1])
    if kind == "linen":
        assert np.all(r.per_seed["zeros"]["distinct_units"] == 1)
    assert {"param_grad_norm.kernel", "param_grad_norm.bias"} <= set(r.quantities("he"))
    doc = r.to_dict()  # per-layer unit counts come from the captured layers
    assert [ly["identical_units"] for ly in doc["initializers"][-1]["layers"]] == [
        kind == "linen"
    ] * 3


def test_flax_model_argument_checks():
    with pytest.raises(TypeError, match="linen_model"):
        linen_model(42, _sample)
    with pytest.raises(TypeError, match="sample_input"):
        nnx_model(_nnx_mlp(), None)
    with pytest.raises(TypeError, match="layers"):
        linen_model(lambda i: i, _sample, layers=3)


# ---------------------------------------------------------------------------------------------
# Results, export, arguments
# ---------------------------------------------------------------------------------------------


def test_json_schema(relu_sweep, tmp_path):
    relu_sweep.to_json(tmp_path / "r.json")
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["config"]["seeds"] == 48 and doc["config"]["layers"] == 6
    assert [i["name"] for i in doc["initializers"]] == ["he", "glorot", "small", "zeros"]
    layer = doc["initializers"][0]["layers"][0]
    for q in ("second_moment", "std", "grad_second_moment"):
        assert set(layer["measured"][q]) == {"mean", "se", "q05", "q50", "q95"}
    assert set(layer["measured"]["param_grad_norm"]) == {"kernel", "bias"}
    assert layer["predicted"]["second_moment"] == pytest.approx(1.0)  # He, relu: E[x²] = 1
    assert layer["predicted"]["std"] == pytest.approx(math.sqrt(1 - 1 / math.pi))
    assert layer["verdict"] == "stable" and layer["identical_units"] is False


def test_csv_schema(relu_sweep, tmp_path):
    relu_sweep.to_csv(tmp_path / "r.csv")
    lines = (tmp_path / "r.csv").read_text().splitlines()
    head = lines[0].split(",")
    assert head == [
        "init",
        "layer",
        "layer_name",
        "quantity",
        "mean",
        "se",
        "q05",
        "q50",
        "q95",
        "finite_seeds",
        "nonfinite_seeds",
        "predicted",
        "run_id",
    ]
    rows = [ln.split(",") for ln in lines[1:]]
    he_m2 = [r for r in rows if r[0] == "he" and r[3] == "act.second_moment"]
    assert [int(r[1]) for r in he_m2] == list(range(1, 7))
    assert [r[2] for r in he_m2] == [f"layer {j}" for j in range(1, 7)]
    assert float(he_m2[0][-2]) == pytest.approx(1.0)  # predicted
    assert {r[-1] for r in rows} == {relu_sweep.config["run_id"]}  # one run id, as in to_json


def test_summarise_edge_cases():
    s = summarise(np.array([[1.0, np.nan, 2.0], [3.0, np.nan, np.inf]]))
    np.testing.assert_array_equal(s.n_finite, [2, 0, 1])
    assert s.mean[0] == 2.0 and np.isnan(s.mean[1]) and np.isnan(s.se[2])


@pytest.mark.parametrize(
    "kwargs, err, match",
    [
        ({"seeds": 0}, ValueError, "seeds"),
        ({"devices": 99}, ValueError, "devices=99"),
        ({"key_impl": "rbg"}, ValueError, "rbg"),
        ({"inits": [3]}, TypeError, "callable"),
        ({"inits": {}}, ValueError, "at least one"),
        ({"dtype": jnp.int32}, TypeError, "floating"),
        ({"dtype": jnp.float64}, ValueError, "jax_enable_x64"),
        ({"network": "mlp"}, TypeError, "built-in architecture"),
    ],
)
def test_bad_arguments(kwargs, err, match):
    args = {"network": _SMALL, "inits": jinit.he_normal(), "seeds": 2, "batch": 4} | kwargs
    with pytest.raises(err, match=match):
        sweep(args.pop("network"), args.pop("inits"), **args)


def test_foreign_initialiser_variance_is_estimated():
    r = sweep(_SMALL, {"jax": jax.nn.initializers.he_normal()}, seeds=2, batch=4)
    assert "estimated" in r.notes["jax"]
    np.testing.assert_allclose(r.prediction("jax", "preact.second_moment"), 2.0, rtol=0.05)


def test_stat_helpers():
    h = jnp.array([[1.0, 1.0, 2.0, 0.0], [3.0, 3.0, 1.0, 0.0]])
    assert float(sweep_stats._distinct_units(h, np.float32)) == 3  # columns 0 and 1 coincide
    assert float(sweep_stats._dead_fraction(jax.nn.relu(h - 2.5))) == 0.5


# ---------------------------------------------------------------------------------------------
# Multi-process (jax.distributed on loopback)
# ---------------------------------------------------------------------------------------------

_WORKER = """
import sys
import jax

pid, port, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
jax.config.update("jax_num_cpu_devices", 2)
jax.config.update("jax_cpu_collectives_implementation", "gloo")
jax.distributed.initialize(f"127.0.0.1:{port}", num_processes=2, process_id=pid)
import numpy as np
import jinit
from jinit.sweeps._networks import mlp
from jinit.sweeps._propagate import sweep

r = sweep(mlp(16, 2), jinit.he_normal(), seeds=6, batch=4, chunk_size=4)
d = r.per_seed[r.labels[0]]
np.savez(out, processes=r.config["processes"], devices=r.config["devices"], **d)
jax.distributed.shutdown()
"""


def test_two_processes_match_one(tmp_path):
    """Two processes x 2 CPU devices on 127.0.0.1 give every process the one-process result."""
    import socket
    import subprocess
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    outs = [tmp_path / f"p{i}.npz" for i in range(2)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, str(i), port, str(outs[i])],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for i in range(2)
    ]
    logs = [p.communicate(timeout=300)[0].decode(errors="replace") for p in procs]
    for p, log in zip(procs, logs, strict=True):
        assert p.returncode == 0, log[-3000:]
    # one seed per device on both sides (chunks of 4 over the 2 x 2 devices; chunks of N_DEV
    # over N_DEV local ones): the same per-device program, so the same bits
    single = _per_seed(sweep(mlp(16, 2), jinit.he_normal(), seeds=6, batch=4, chunk_size=N_DEV))
    for out in outs:
        got = dict(np.load(out))
        assert int(got.pop("processes")) == 2 and int(got.pop("devices")) == 4
        _assert_same_bits(got, single)


def test_lapack_initialisers_sweep_on_one_cpu_device():
    """XLA's CPU runtime can deadlock running QR (orthogonal) in one program sharded over
    several host devices (seen with 2 and 4 devices, 2+ seeds per device): such sweeps run on
    one device; others keep every device."""
    if len(jax.devices()) < 2 or jax.devices()[0].platform != "cpu":
        pytest.skip("needs several CPU devices")
    net = jinit.mlp(16, 2, "tanh")
    r = sweep(net, {"o": jinit.orthogonal()}, seeds=8, batch=8, chunk_size=4)
    assert r.config["devices"] == 1 and r.per_seed["o"]["act.second_moment"].shape == (8, 2)
    r = sweep(net, {"l": jinit.lecun_normal()}, seeds=8, batch=8, chunk_size=4)
    assert r.config["devices"] == len(jax.devices())
