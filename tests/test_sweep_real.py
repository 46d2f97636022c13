"""Sweeps of real models (tests/real_models.py: Flax's lm1b decoder and ImageNet ResNet-18, tiny
configurations) and of the built-in transformer: honest verdicts on the residual stream, module
paths as layer names, BatchNorm in training mode, sharding annotations under a user mesh, and
one compiled program for all initialisers.

Tolerances: per-seed values are compared bit for bit only between runs with the same per-device
program (same seeds per device, see tests/test_propagate.py); statistical bounds are stated
where used. Sizes are tiny: the whole file runs a handful of small compiles.
"""

from __future__ import annotations

import dataclasses
from functools import partial

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import real_models as rm
from bad_input import check_raises, params
from rounding import C_FN, assert_within, evaluate, excess

import jinit
from jinit import plot
from jinit.sweeps._assertions import assert_matches_theory, assert_stable_propagation
from jinit.sweeps._flax_models import linen_model, nnx_model
from jinit.sweeps._propagate import prepare_sweep, run_sweep, sweep
from jinit.sweeps._transformer import transformer

N_DEV = len(jax.local_devices())
# XLA's optimisation passes cost more than they save on a one-off test compile
_FAST = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


# ---------------------------------------------------------------------------------------------
# The built-in transformer: the residual stream is judged
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gpt() -> jinit.SweepResult:
    """GPT-2's N(0, 0.02²) and He through 4 pre-LN blocks (one compiled program for both)."""
    inits = {"gpt2": jinit.normal(0.02), "he": jinit.he_normal()}
    net = transformer(32, 4, 4, seq_len=8)
    # measurements only: the traced theory is tested below on a smaller transformer and in
    # tests/test_propagate.py (here it would add seconds per initialiser)
    return sweep(net, inits, seeds=4, batch=4, seed=3, compiler_options=_FAST, theory=False)


def test_transformer_verdicts_judge_the_residual_stream(gpt):
    assert gpt.judged["forward"] == "output.second_moment"
    # N(0, 0.02²): each block adds ~d·(0.02²)·O(1) to a unit stream: it stays ~1 -> stable
    # (the MLP activation, which LayerNorm keeps at ~0.007, used to call it "vanishing").
    assert gpt.verdicts("gpt2") == ["stable"] * 4
    assert_stable_propagation(gpt, 0.5, 2.0, inits="gpt2")
    stream = gpt.summary("gpt2", "output.second_moment").mean
    assert np.all((stream > 0.9) & (stream < 1.2))
    assert np.all(gpt.summary("gpt2", "act.second_moment").mean < 0.05)  # the flat MLP hidden
    # He: each block adds ~3.5 to the stream's second moment: 1 -> ~15 over 4 blocks, past the
    # band's 10 -> exploding; the MLP activation (~0.9) would have called it stable.
    he = gpt.summary("he", "output.second_moment").mean
    assert np.all(np.diff(he) > 1.0) and he[-1] > 10
    assert gpt.verdicts("he")[0] == "stable" and gpt.verdicts("he")[-1] == "exploding"
    assert np.all(gpt.summary("he", "act.second_moment").mean > 0.5)
    with pytest.raises(AssertionError, match=r"he layer 4: output.second_moment"):
        assert_stable_propagation(gpt, 0.5, 10.0)


def test_transformer_gradients_have_no_cliff(gpt):
    """The probe loss sits on the output stream: dL/dx^L = v, so its per-unit second moment is
    E[v²] = 1 up to sampling (4 seeds x 4 x 8 x 32 = 4096 values: SE 0.022; 6 SE), and no layer
    is 3-4 orders of magnitude off the others just because the loss sits inside it."""
    assert gpt.config["loss"].startswith("<v, x^L>")
    for label in gpt.labels:
        g_stream = gpt.summary(label, "grad_output.second_moment").mean
        assert abs(g_stream[-1] - 1.0) < 6 * np.sqrt(2 / 4096)
        g_h = gpt.summary(label, "grad.second_moment").mean
        assert g_h.max() / g_h.min() < 10, (label, g_h)
    # N(0, 0.02²) blocks are near the identity: the stream gradient stays ~1 at every block
    g = gpt.summary("gpt2", "grad_output.second_moment").mean
    assert np.all(np.abs(g - 1.0) < 0.1)


@pytest.fixture(scope="module")
def small_he() -> jinit.SweepResult:
    """He through 2 pre-LN blocks of a small transformer, with its traced theory."""
    net = transformer(16, 2, 2, seq_len=4)
    return sweep(net, {"he": jinit.he_normal()}, seeds=4, batch=4, compiler_options=_FAST)


def test_transformer_matches_its_traced_theory(small_he):
    """The built-in transformer's layers are predicted by the traced theory (attention drawn):
    every layer's seed mean lies within the sweep's own tolerance."""
    assert small_he.predicted["he"] is not None, small_he.notes
    assert_matches_theory(small_he)
    # He's stream grows block by block in theory too (the verdict above is not a fluke)
    assert np.all(np.diff(small_he.prediction("he", "output.second_moment")) > 1.0)


def test_matches_theory_fails_when_nothing_was_predicted():
    """U[0, 0.1) is not zero-mean: mean-field theory does not apply, and agreement with a theory
    that made no prediction is never asserted vacuously."""
    inits = {"u": jinit.uniform(0.1), "u2": jinit.uniform(0.2)}
    r = sweep(jinit.mlp(16, 3), inits, seeds=2, batch=4, compiler_options=_FAST)
    assert r.predicted["u"] is None and "not zero-mean" in r.notes["u"]
    with pytest.raises(AssertionError, match=r"nothing was predicted.*not zero-mean"):
        assert_matches_theory(r)
    with pytest.raises(AssertionError, match=r"u: no prediction"):
        assert_matches_theory(r, inits="u")


def test_one_program_and_its_timing(gpt):
    assert gpt.config["compiled_programs"] == 1
    assert gpt.config["traces"] == {"gpt2": 1, "he": 1}
    assert gpt.compile_seconds > 0 and gpt.run_seconds > 0
    doc = gpt.to_dict()
    assert doc["timing"]["compile_seconds"] == pytest.approx(gpt.compile_seconds)


def test_transformer_figures_show_the_stream_and_its_theory(gpt, small_he):
    fig = plot.depth_profile(small_he)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "mean-field theory" in labels and "residual stream std" in ax.get_ylabel()
    fig = plot.depth_profile(gpt)  # without a prediction: no theory line
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "mean-field theory" not in labels
    fig = plot.gradient_profile(gpt)
    assert "residual stream" in fig.axes[0].get_title()


# ---------------------------------------------------------------------------------------------
# Flax's lm1b decoder (nnx, with_partitioning) under a user mesh
# ---------------------------------------------------------------------------------------------

_LM1B = rm.lm1b_config(num_layers=1, emb_dim=16, qkv_dim=16, mlp_dim=32, max_len=8)


def _lm1b_build(init, rngs):
    # the source's training axis rules: every kernel annotated for the ('data', 'fsdp', 'tensor')
    # mesh, which the sweep's seed mesh does not have
    cfg = _LM1B.replace(kernel_init=init, axis_rules=rm.LM1B_MESH_RULES)
    return rm.TransformerLM(cfg, rngs=rngs)


def _tokens(key, batch, dtype):
    del dtype
    return jax.random.randint(key, (batch, _LM1B.max_len), 1, _LM1B.vocab_size)


@pytest.fixture(scope="module")
def lm1b_runs() -> dict[str, jinit.SweepResult]:
    model = nnx_model(_lm1b_build, _tokens, name="lm1b")
    inits = {"xavier": jinit.glorot_uniform()}
    run = partial(sweep, model, inits, seeds=4, batch=2, seed=5, compiler_options=_FAST)
    out = {}
    with jax.set_mesh(rm.lm1b_mesh()):  # the user's mesh, as lm1b's train.py sets it
        out["d1"] = run(devices=1, chunk_size=1)
        if N_DEV >= 4:
            out["d4"] = run(devices=4, chunk_size=4)
    return out


def test_lm1b_sweeps_under_a_user_mesh(lm1b_runs):
    r = lm1b_runs["d1"]
    names = r.layer_names
    assert names[:6] == [
        "decoder/encoderdecoderblock_0/attention/query",
        "decoder/encoderdecoderblock_0/attention/key",
        "decoder/encoderdecoderblock_0/attention/value",
        "decoder/encoderdecoderblock_0/attention/out",
        "decoder/encoderdecoderblock_0/mlp/linear1",
        "decoder/encoderdecoderblock_0/mlp/linear2",
    ]
    assert names[-1] == "decoder/logitdense" and r.n_layers == 7
    # module paths in every output: JSON, CSV, table
    doc = r.to_dict()
    assert [ly["name"] for ly in doc["initializers"][0]["layers"]] == names
    for label in r.labels:
        assert np.all(r.nonfinite_seeds(label) == 0)


# Gradient statistics of 1 and 4 devices: XLA partitions the backward pass of the 4-device
# program differently (its contractions are summed in another order: observed ~1e-7 relative
# here), so they agree to float32 rounding, not bit for bit. The tolerance is derived from the
# computation (tests/rounding.py): each seed's model is rebuilt from the engine's keys, its
# gradient statistics evaluated in float64 with the first-order bound of every float32
# evaluation (any summation order or blocking), and both runs must lie within that bound.


def _lm1b_reference(s: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Seed ``s`` of the lm1b sweep by plain ``jax.grad``, in float64, with its rounding bound.

    Same key derivation as the engine: key fold_in(key(5), s); parameters, tokens and cotangent
    from fold_in(·, 0 / 1 / 2); the loss <v, logits>; gradients at each layer's output (a zero
    added there) and at the layers' parameters. Returns ``{quantity: (values, bounds)}`` for
    ``grad.second_moment`` and ``param_grad_norm.kernel`` / ``.bias`` (NaN: no such parameter),
    one entry per layer in call order. The parameters and ``v`` are inputs computed by another
    program (the engine's), which may contract their final multiply-add into one rounding or
    not (uniform parameters: 2 u) and evaluate the normal's erfinv polynomial differently
    (``v``: C_FN u): both enter the bound like the result of an operation.
    """
    from flax import nnx

    from jinit._core._flax import nnx_layer_calls

    key = jax.random.fold_in(jax.random.key(5), s)
    kp, kx, kv = (jax.random.fold_in(key, i) for i in range(3))
    tokens = _tokens(kx, 2, jnp.float32)
    with nnx.use_eager_sharding(False):  # the annotations are for a mesh not set here
        model = _lm1b_build(jinit.glorot_uniform(), nnx.Rngs(kp))
    is_layer = lambda m: type(m).__name__ in ("Linear", "LinearGeneral")  # noqa: E731
    layers = {tuple(map(str, p)) for p, m in nnx.iter_modules(model) if is_layer(m)}
    own = lambda path, x: isinstance(x, nnx.Param) and tuple(map(str, path[:-1])) in layers  # noqa: E731
    graphdef, lp, rest = nnx.split(model, own, ...)
    lp = jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), lp)

    def run(lp, probes, paths):
        m = nnx.merge(graphdef, lp, rest, copy=True)

        def hook(path, args, out):
            paths.append(path)
            return out + probes[len(paths) - 1]

        with nnx_layer_calls(m, is_layer, hook):
            return m(tokens)

    paths: list[tuple[str, ...]] = []
    zero = [0.0] * len(layers)
    y = jax.eval_shape(lambda lp: run(lp, zero, paths), lp)
    shapes = []
    jax.eval_shape(lambda lp: run(lp, _Recorder(shapes), []), lp)
    v = jax.random.normal(kv, y.shape, jnp.float32)

    def stats(lp, v):
        probes = [jnp.zeros(sh, jnp.float32) for sh in shapes]
        loss = lambda lp, pr: jnp.sum(v * run(lp, pr, []))  # noqa: E731
        g_lp, g_h = jax.grad(loss, argnums=(0, 1))(lp, probes)
        flat = {tuple(map(str, k)): g for k, g in nnx.to_flat_state(g_lp)}
        # squared norms: the square root is taken below (its derivative is infinite at zero)
        sq = [
            {n: jnp.sum(flat[p + (n,)] ** 2) for n in ("kernel", "bias") if p + (n,) in flat}
            for p in paths
        ]
        return [jnp.mean(g * g) for g in g_h], sq

    (g2, sq), (b_g2, b_sq) = evaluate(stats, lp, v, arg_ulps=(2, C_FN))
    out = {"grad.second_moment": (np.array(g2), np.array(b_g2))}
    for name in ("kernel", "bias"):
        norm = np.array([np.sqrt(q[name]) if name in q else np.nan for q in sq])
        b_sq_n = np.array([b[name] if name in b else np.nan for b in b_sq])
        # |√Ŝ - √S| ≤ b_S / √S, plus the float32 square root's own rounding
        out[f"param_grad_norm.{name}"] = (norm, b_sq_n / norm + C_FN * 2.0**-24 * norm)
    return out


class _Recorder:
    """A probe list that records the shape of each layer output it is added to."""

    def __init__(self, shapes: list):
        self.shapes = shapes

    def __getitem__(self, i):
        return _ShapeProbe(self.shapes)


class _ShapeProbe:
    def __init__(self, shapes: list):
        self.shapes = shapes

    def __radd__(self, out):
        self.shapes.append(out.shape)
        return out


@pytest.mark.skipif(N_DEV < 4, reason="needs 4 devices")
def test_lm1b_four_devices_give_the_same_results(lm1b_runs):
    """Chunks of 1 seed on 1 device and of 4 seeds on 4 devices (one seed per device each):
    forward statistics bit for bit, gradients within the float32 rounding bound of the float64
    reference (above), which a 0.1 % error or another seed's row would leave."""
    one, four = lm1b_runs["d1"], lm1b_runs["d4"]
    assert four.config["devices"] == 4 and four.config["chunks"] == 1
    label = "xavier"
    for q, a in one.per_seed[label].items():
        if not q.startswith(("grad", "param_grad")):
            np.testing.assert_array_equal(a, four.per_seed[label][q], err_msg=f"{label} {q}")
    grads = ("grad.second_moment", "param_grad_norm.kernel", "param_grad_norm.bias")
    assert {q for q in one.per_seed[label] if q.startswith(("grad.s", "param_grad"))} == set(grads)
    for s in range(4):
        ref = _lm1b_reference(s)
        for q in grads:
            val, bound = ref[q]
            has = ~np.isnan(val)
            assert has.any() and np.all(np.isnan(one.per_seed[label][q][s]) == ~has), q
            for run in (one, four):
                got = run.per_seed[label][q][s][has]
                assert_within(got, val[has], bound[has], f"seed {s} {q}")
            # sensitivity: a 0.1 % error and the next seed's row are both caught
            assert excess(got, val[has] * 1.001, bound[has]) > 1
            assert excess(run.per_seed[label][q][(s + 1) % 4][has], val[has], bound[has]) > 1


def test_lm1b_blocks_judge_the_residual_stream():
    """With ``layers=`` the block type and ``residual=True`` each row is a decoder block and the
    verdicts judge its output, the residual stream: the token embedding N(0, 1) enters at
    E[x²] ~ 1 (+ the sinusoid's 1/2); He kernels add ~2 per block (relu MLP), N(0, 0.02²) ~0."""
    cfg = _LM1B.replace(num_layers=2)
    model = nnx_model(
        lambda init, rngs: rm.TransformerLM(cfg.replace(kernel_init=init), rngs=rngs),
        _tokens,
        layers=rm.EncoderDecoder1DBlock,
        residual=True,
        name="lm1b blocks",
    )
    inits = {"small": jinit.normal(0.02), "he": jinit.he_normal()}
    r = sweep(model, inits, seeds=2, batch=2, compiler_options=_FAST)
    assert r.layer_names == [
        "decoder/encoderdecoderblock_0",
        "decoder/encoderdecoderblock_1",
    ]
    assert r.judged["forward"] == "output.second_moment"
    small = r.summary("small", "output.second_moment").mean
    he = r.summary("he", "output.second_moment").mean
    assert np.all((small > 1.0) & (small < 2.0)), small
    assert he[1] > he[0] > small[0] + 1.0, he
    assert r.verdicts("small") == ["stable", "stable"]


def test_lm1b_without_a_mesh_also_sweeps():
    """flax refuses to create such annotated variables without a mesh (eager sharding); the
    sweep drops the annotations, so no mesh is needed."""
    model = nnx_model(_lm1b_build, _tokens, name="lm1b")
    plan = prepare_sweep(model, jinit.glorot_uniform(), seeds=1, batch=2, devices=1)
    assert plan.network is model  # probed (traced abstractly) without an error


# ---------------------------------------------------------------------------------------------
# Flax's ImageNet ResNet-18 (linen, BatchNorm)
# ---------------------------------------------------------------------------------------------


def _resnet_build(init):
    return rm.ResNet(
        stage_sizes=[2, 2, 2, 2],
        block_cls=rm.ResNetBlock,
        num_classes=4,
        num_filters=2,
        conv=partial(nn.Conv, kernel_init=init),
        bn_axis_name=None,
    )


def _images(key, batch, dtype):
    return jax.random.normal(key, (batch, 16, 16, 3), dtype)


def test_resnet_batchnorm_needs_apply_kwargs_before_compiling():
    model = linen_model(_resnet_build, _images, name="resnet18")
    check_raises(
        lambda: prepare_sweep(model, jinit.he_normal(), seeds=2, batch=4),
        ValueError,
        [r"'batch_stats'", r"BatchNorm in training mode", r"apply_kwargs=\{'mutable'"],
    )


def _resnet_rows(module) -> bool:
    """Rows: the stem conv, the convs of the first block and of the first strided block (with
    its projection). The whole ResNet-18 runs; only these calls are recorded (fewer rows of
    statistics to compile)."""
    path = tuple(module.path)
    return isinstance(module, nn.Conv) and (
        path == ("conv_init",) or path[:1] in (("ResNetBlock_0",), ("ResNetBlock_2",))
    )


@pytest.fixture(scope="module")
def resnet() -> jinit.SweepResult:
    inits = {"he": jinit.he_normal(), "small": jinit.normal(0.01)}
    model = linen_model(
        _resnet_build,
        _images,
        name="resnet18",
        layers=_resnet_rows,
        apply_kwargs={"mutable": ["batch_stats"]},
    )
    return sweep(model, inits, seeds=2, batch=4, seed=7, compiler_options=_FAST)


def test_resnet_sweeps_in_training_mode(resnet):
    r = resnet
    assert r.layer_names == [
        "conv_init",
        "ResNetBlock_0/Conv_0",
        "ResNetBlock_0/Conv_1",
        "ResNetBlock_2/Conv_0",
        "ResNetBlock_2/Conv_1",
        "ResNetBlock_2/conv_proj",
    ]
    # the input of ResNetBlock_0/Conv_1 is relu(BN(h)) of Conv_0's output h: in training mode
    # BN standardises each channel over the batch, whatever the kernels' scale, so E[a²] is
    # ~1/2 for N(0, 0.01²) as for He, although h itself is ~1e-4 (in inference mode, with the
    # initial running statistics 0 and 1, E[a²] would be ~E[h²]/2)
    j = r.layer_names.index("ResNetBlock_0/Conv_0")
    for label in ("he", "small"):
        m2 = r.summary(label, "act.second_moment").mean[j]
        assert 0.25 < m2 < 0.75, (label, m2)
    assert r.summary("small", "preact.second_moment").mean[j] < 1e-2
    assert r.config["compiled_programs"] == 1
    assert r.config["architecture"]["apply_kwargs"] == {"mutable": "['batch_stats']"}


def test_nnx_batchnorm_in_training_mode():
    """nnx BatchNorm updates its statistics in place during the sweep's trace; ``apply_kwargs``
    reaches the model call. Training mode: relu(BN(h)) has E[a²] ~ 1/2 even for N(0, 0.01²)
    kernels; inference mode (initial running statistics 0 and 1): E[h²]/2 = 8·1e-4/2, tiny."""
    from flax import nnx

    class Net(nnx.Module):
        def __init__(self, init, rngs):
            self.a = nnx.Linear(8, 16, kernel_init=init, rngs=rngs)
            self.bn = nnx.BatchNorm(16, rngs=rngs)
            self.b = nnx.Linear(16, 8, kernel_init=init, rngs=rngs)

        def __call__(self, x, train=True):
            self.bn.use_running_average = not train
            return self.b(nnx.relu(self.bn(self.a(x))))

    sample = lambda k, b, dt: jax.random.normal(k, (b, 8), dt)  # noqa: E731
    small = jinit.normal(0.01)
    run = partial(sweep, inits=small, seeds=2, batch=16, compiler_options=_FAST)
    train = run(nnx_model(Net, sample))
    infer = run(nnx_model(Net, sample, apply_kwargs={"train": False}))
    assert 0.25 < train.summary(train.labels[0], "act.second_moment").mean[0] < 0.75
    assert infer.summary(infer.labels[0], "act.second_moment").mean[0] < 1e-2


def test_resnet_table_names_modules(resnet):
    from rich.console import Console

    from jinit.cli._sweep import _table

    console = Console(width=200, record=True)
    console.print(_table(resnet, "he"))
    text = console.export_text()
    assert "ResNetBlock_0/Conv_1" in text and "conv_init" in text


# ---------------------------------------------------------------------------------------------
# One program for all initialisers = one program per initialiser, bit for bit
# ---------------------------------------------------------------------------------------------


def test_one_program_matches_per_initialiser_programs():
    """The shared program draws through a lax.switch over the initialisers; the per-seed work
    (same seeds per device) is otherwise the same program, so the bits are the same."""
    inits = {"orth": jinit.orthogonal(), "u": jinit.uniform(0.3)}
    net = jinit.mlp(16, 3, "tanh")
    plan = prepare_sweep(net, inits, seeds=2, batch=8, devices=1, compiler_options=_FAST)
    shared = run_sweep(plan)
    alone = run_sweep(dataclasses.replace(plan, one_program=False))
    assert shared.config["compiled_programs"] == 1 and alone.config["compiled_programs"] == 2
    assert shared.config["traces"] == {"orth": 1, "u": 1}
    for label in inits:
        for q, a in shared.per_seed[label].items():
            np.testing.assert_array_equal(a, alone.per_seed[label][q], err_msg=f"{label} {q}")


# ---------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------

_S = _images

ROWS = [
    (
        "linen-apply-kwargs-not-dict",
        lambda: linen_model(_resnet_build, _S, apply_kwargs=["train"]),
        TypeError,
        [r"`apply_kwargs`", r"\['train'\]", r"'mutable': \['batch_stats'\]"],
    ),
    (
        "linen-apply-kwargs-rngs",
        lambda: linen_model(_resnet_build, _S, apply_kwargs={"rngs": {"dropout": 0}}),
        ValueError,
        [r"'rngs'", r"every seed", r"deterministic"],
    ),
    (
        "linen-apply-kwargs-mutable-int",
        lambda: linen_model(_resnet_build, _S, apply_kwargs={"mutable": 3}),
        TypeError,
        [r"apply_kwargs\['mutable'\]", r"got 3", r"batch_stats"],
    ),
    (
        "nnx-apply-kwargs-mutable",
        lambda: nnx_model(_lm1b_build, _tokens, apply_kwargs={"mutable": ["batch_stats"]}),
        ValueError,
        [r"`nnx_model`", r"'mutable'", r"in place"],
    ),
]


@pytest.mark.parametrize(("call", "exc", "patterns"), params(ROWS))
def test_bad_input(call, exc, patterns):
    check_raises(call, exc, patterns)
