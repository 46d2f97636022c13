"""Training sweeps: He trains and zeros stalls on the digits, seeds, keys, JSON, CLI, errors.

The runs are small (an MLP with 8 hidden layers of width 32, 150 Adam steps, 4 seeds); runs that
share a model, sizes and optimiser reuse one compiled training loop.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from typer.testing import CliRunner

import jinit
from jinit.cli import app
from jinit.sweeps._train import train_sweep
from jinit.sweeps._train_checks import RoleSpec
from jinit.sweeps._train_data import METRICS, Dataset, digits
from jinit.sweeps._train_models import MLPClassifier, resolve_roles
from jinit.sweeps._train_results import TrainResult

LOG10 = math.log(10.0)
MODEL = jinit.mlp(32, 8)  # 8 hidden ReLU layers of width 32
INITS = {"he": jinit.he_normal(), "small": jinit.normal(0.01), "zeros": jinit.zeros}
RUN = dict(seeds=4, steps=150, eval_every=25)


def _need_sklearn():
    pytest.importorskip("sklearn", reason="the digits data set ships with scikit-learn")


@pytest.fixture(scope="module")
def data():
    _need_sklearn()
    return digits()


@pytest.fixture(scope="module")
def result(data):
    return train_sweep(MODEL, INITS, data, key=0, **RUN)


# ---------------------------------------------------------------------------------------------
# The digits data
# ---------------------------------------------------------------------------------------------


def test_digits_split_is_fixed_standardised_and_disjoint(data):
    assert data.x_train.shape == (1437, 64) and data.x_test.shape == (360, 64)
    assert data.x_train.dtype == np.float32 and data.y_train.dtype == np.int32
    np.testing.assert_allclose(data.x_train.mean(axis=0), 0.0, atol=1e-5)
    sd = data.x_train.std(axis=0)
    assert np.all((np.abs(sd - 1) < 1e-4) | (sd == 0))  # constant pixels stay 0
    assert np.bincount(data.y_train, minlength=10).min() > 100  # all ten classes present
    again = digits()
    np.testing.assert_array_equal(again.x_test, data.x_test)
    train_rows = {r.tobytes() for r in data.x_train}
    overlap = sum(r.tobytes() in train_rows for r in data.x_test)
    assert overlap < 5  # a handful of exact duplicate images exist in the raw data


# ---------------------------------------------------------------------------------------------
# Training outcomes
# ---------------------------------------------------------------------------------------------


def test_curves_shapes_and_steps(result):
    assert result.labels == list(INITS)
    assert result.steps.tolist() == [0, 25, 50, 75, 100, 125, 150]
    for label in INITS:
        for m in METRICS:
            assert result.curves[label][m].shape == (4, 7)
            assert np.all(np.isfinite(result.curves[label][m]))
    assert result.config["chance_loss"] == pytest.approx(LOG10)


def test_he_trains(result):
    loss0 = result.curves["he"]["train.loss"][:, 0]
    loss = result.final("he", "train.loss")
    train_acc = result.final("he", "train.accuracy")
    test_acc = result.final("he", "test.accuracy")
    assert np.all(loss < 0.2 * loss0), (loss0, loss)
    assert np.median(loss) < 0.5, loss
    assert np.all(train_acc > 0.85) and np.all(test_acc > 0.75), (train_acc, test_acc)
    assert test_acc.mean() > 0.8
    assert result.verdict("he") == "trains"


@pytest.mark.parametrize("label", ["small", "zeros"])
def test_tiny_and_zero_initialisations_stall_at_chance(result, label):
    loss = result.curves[label]["train.loss"]
    np.testing.assert_allclose(loss, LOG10, atol=0.01)  # from step 0 to the end
    test_acc = result.final(label, "test.accuracy")
    assert np.all(test_acc < 0.15), test_acc
    assert result.verdict(label) == "stalls"


def test_seeds_are_independent(result):
    he0 = result.curves["he"]["test.loss"][:, 0]  # different parameters at step 0
    assert len(np.unique(he0)) == 4, he0
    curves = result.curves["he"]["train.loss"]
    for i in range(4):
        for j in range(i + 1, 4):
            assert not np.allclose(curves[i], curves[j], rtol=1e-3), (i, j)
    # all-zero parameters are the same for every seed: identical step-0 metrics
    z0 = result.curves["zeros"]["test.loss"][:, 0]
    np.testing.assert_array_equal(z0, z0[0])


def test_summary_bands_bracket_the_seeds(result):
    s = result.summary("he", "test.accuracy")
    x = result.curves["he"]["test.accuracy"]
    np.testing.assert_allclose(s.mean, x.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(s.std, x.std(axis=0, ddof=1), rtol=1e-12)
    assert np.all(x.min(axis=0) <= s.q05) and np.all(s.q05 <= s.q50)
    assert np.all(s.q50 <= s.q95) and np.all(s.q95 <= x.max(axis=0))
    assert s.n_finite.tolist() == [4] * 7


def test_same_key_same_result_other_key_differs(data, result):
    again = train_sweep(MODEL, INITS, data, key=jax.random.key(0), **RUN)
    other = train_sweep(MODEL, INITS, data, key=1, **RUN)
    for label in INITS:
        for m in METRICS:
            np.testing.assert_array_equal(again.curves[label][m], result.curves[label][m])
    assert not np.allclose(other.curves["he"]["train.loss"], result.curves["he"]["train.loss"])


# Chunking and progress segments. What a row computes depends on the number of rows per device:
# it is the batch dimension of every vmapped matmul, and XLA:CPU picks another kernel blocking,
# so another float32 rounding, for another batch (and another one again on a CPU with other
# vector units). Training amplifies rounding: on a 2-core AMD EPYC one He curve of the run
# above moved by 4e-4 after 150 steps between 3 and 1 rows per device, and a rounding-sized
# (1 ulp) change of the initial parameters moved it by anything from 1e-8 to 5e-4 depending on
# its direction (a ReLU unit that switches on or off), so no tolerance follows from the
# computation for late training steps. These tests therefore compare runs of identical
# blocking, which are equal bit for bit on any machine: one row per device on both sides, and
# the same compiled loop body. Any row that gets another initialiser, seed, parameters,
# minibatches or evaluation slot then shows as a difference.
N_DEV = len(jax.local_devices())
SHORT = dict(steps=50, eval_every=25)


def test_chunks_do_not_change_results(data):
    """Chunks of one row per device equal per-initialiser runs of one row per device.

    The chunked run has ``seeds`` rows per initialiser and chunks of ``N_DEV`` rows, which
    straddle the initialisers (3 seeds, 4 devices: chunks he0-2+small0, small1-2+zeros0-1,
    zeros2 + padding), so a chunk that takes its seeds, keys or parameters from its own row
    numbers, or writes its rows to the wrong place, differs from the reference. The references
    are per-initialiser runs of ``seeds + 1`` seeds: their first ``seeds`` rows must be the
    chunked run's, so the seed order cannot depend on the number of seeds either. Both sides
    report progress, so both are split into the same segments (one evaluation period each).
    """
    seeds = 3 if N_DEV % 3 else 2
    calls = []
    chunked = train_sweep(
        MODEL,
        INITS,
        data,
        key=0,
        seeds=seeds,
        chunk_size=N_DEV,
        progress=lambda d, t: calls.append((d, t)),
        **SHORT,
    )
    assert chunked.config["chunk_size"] == N_DEV
    for label, init in INITS.items():
        ref = train_sweep(
            MODEL,
            {label: init},
            data,
            key=0,
            seeds=seeds + 1,
            chunk_size=N_DEV,
            progress=lambda d, t: None,
            **SHORT,
        )
        for m in METRICS:
            np.testing.assert_array_equal(
                chunked.curves[label][m], ref.curves[label][m][:seeds], err_msg=f"{label} {m}"
            )
    # ceil(3·seeds / N_DEV) chunks of 2 one-period segments; total = chunks x 50 steps
    n_chunks = -(-len(INITS) * seeds // N_DEV)
    total = n_chunks * SHORT["steps"]
    assert calls == [(0, total)] + [(25 * k, total) for k in range(1, 2 * n_chunks + 1)]


def test_progress_segments_do_not_change_results(data):
    """A run split into segments for progress reports equals the unsplit run, bit for bit.

    Each segment is one compiled ``lax.scan`` over evaluation periods, so splitting changes the
    scan's trip count and nothing inside the loop body (the same rows per device, shapes and
    operations). With 24 evaluations the progress run has 12 segments of 2 periods, so both
    scans stay loops (a trip count of 1 would let XLA inline the body into its caller and fuse
    it differently). Periods that restart in each segment (the same minibatches again), state
    that is not carried over, or curves written to the wrong columns all show.
    """
    model, inits = jinit.mlp(16, 3), {"he": jinit.he_normal()}
    kw = dict(seeds=2, steps=24, eval_every=1, key=3)
    whole = train_sweep(model, inits, data, **kw)
    calls = []
    split = train_sweep(model, inits, data, progress=lambda d, t: calls.append((d, t)), **kw)
    assert calls == [(0, 24)] + [(2 * k, 24) for k in range(1, 13)]
    for m in METRICS:
        np.testing.assert_array_equal(split.curves["he"][m], whole.curves["he"][m], err_msg=m)
    loss = whole.curves["he"]["train.loss"]
    assert np.all(loss[:, -1] < loss[:, 0])  # it trains: the segments carry real updates


# ---------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------


def test_mlp_roles_and_forward_by_hand():
    """Constant initialisers per role; a linear 2-layer net computed by hand."""
    net = MLPClassifier(jinit.mlp(2, 2, "linear"), in_features=3, n_classes=2)
    rules = {
        "input": jinit.constant(1.0),
        "hidden": jinit.constant(2.0),
        "readout": jinit.constant(3.0),
        "bias": jinit.constant(0.5),
    }
    roles = resolve_roles("t", "rules", rules, jinit.zeros, None)
    p = net.init(jax.random.key(0), RoleSpec(tuple(sorted(roles.items()))))
    assert p["input"]["kernel"].shape == (3, 2) and np.all(p["input"]["kernel"] == 1.0)
    assert p["hidden"]["kernel"].shape == (1, 2, 2) and np.all(p["hidden"]["kernel"] == 2.0)
    assert p["readout"]["kernel"].shape == (2, 2) and np.all(p["readout"]["kernel"] == 3.0)
    assert np.all(p["input"]["bias"] == 0.5) and np.all(p["hidden"]["bias"] == 0.5)
    assert np.all(p["readout"]["bias"] == 0.0)
    x = jnp.array([[1.0, 2.0, 3.0]])
    h1 = 6.0 + 0.5  # sum(x) * 1 + b
    h2 = 2 * (2.0 * h1) + 0.5  # two units of h1, weight 2
    np.testing.assert_allclose(net(p, x), [[2 * 3.0 * h2, 2 * 3.0 * h2]], rtol=1e-6)
    # defaults: one initialiser for input, hidden and readout; bias_init for the biases
    roles = resolve_roles("t", "he", jinit.he_normal(), jinit.zeros, jinit.glorot_uniform())
    assert roles["input"] == roles["hidden"] == jinit.he_normal()
    assert roles["readout"] == jinit.glorot_uniform() and roles["bias"] is jinit.zeros


def test_custom_flax_model_and_optimizer_are_used(data):
    import flax.linen as nn

    class Linear(nn.Module):
        kernel_init: object = jinit.zeros

        @nn.compact
        def __call__(self, x):
            return nn.Dense(10, kernel_init=self.kernel_init)(x)

    seen = []

    def init_fn(key, init):
        seen.append(init)
        return Linear(init).init(key, jnp.zeros((1, 64)))["params"]

    def apply_fn(params, x):
        return Linear().apply({"params": params}, x)

    calls = []
    sgd = optax.sgd(0.1)

    def opt_init(params):
        calls.append("init")
        return sgd.init(params)

    def opt_update(updates, state, params=None):
        calls.append("update")
        return sgd.update(updates, state, params)

    opt = optax.GradientTransformation(opt_init, opt_update)
    inits = {"lecun": jinit.lecun_normal(), "zeros": jinit.zeros}
    r = train_sweep(
        (init_fn, apply_fn), inits, data, seeds=2, steps=100, eval_every=50, optimizer=opt
    )
    assert seen == list(inits.values()) and all(
        a is b for a, b in zip(seen, inits.values(), strict=True)
    )
    assert "init" in calls and "update" in calls and r.config["optimizer"] == "custom optax"
    for label in inits:  # a linear softmax classifier trains from zeros too (convex loss)
        assert np.all(r.final(label, "test.accuracy") > 0.85), r.final(label, "test.accuracy")
    assert r.config["model"].startswith("custom model")


# ---------------------------------------------------------------------------------------------
# Saving, loading, plotting
# ---------------------------------------------------------------------------------------------


def test_json_round_trip_keeps_nan_and_everything(result, tmp_path):
    curves = {k: {m: a.copy() for m, a in v.items()} for k, v in result.curves.items()}
    curves["he"]["test.loss"][1, 2] = np.nan
    r = TrainResult(dict(result.config), result.steps, curves, dict(result.specs))
    text = r.to_json()
    assert "NaN" not in text and json.loads(text)["curves"]["he"]["test.loss"][1][2] is None
    back = TrainResult.from_json(text)
    assert back.labels == r.labels and back.specs == r.specs and back.config == r.config
    np.testing.assert_array_equal(back.steps, r.steps)
    for label in r.labels:
        for m in METRICS:
            np.testing.assert_array_equal(back.curves[label][m], r.curves[label][m])
    written = r.save(tmp_path / "out")
    loaded = TrainResult.load(written["json"])
    np.testing.assert_array_equal(loaded.curves["he"]["train.loss"], r.curves["he"]["train.loss"])
    assert Path(written["png"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    final = json.loads(text)["final"]
    assert final["zeros"]["verdict"] == "stalls" and final["he"]["verdict"] == "trains"
    assert final["he"]["test.accuracy"]["mean"] == pytest.approx(
        r.final("he", "test.accuracy").mean()
    )


def test_plot_has_a_curve_and_band_per_init(result):
    fig = result.plot()
    ax_loss, ax_acc = fig.axes
    assert ax_loss.get_yscale() == "log"
    labels = [t.get_text() for t in ax_loss.get_legend().get_texts()]
    assert labels[:3] == list(INITS)
    assert len(ax_acc.collections) == 3  # one 5-95 % band per initialiser
    assert ax_acc.lines[0].get_ydata()[-1] == pytest.approx(
        result.final("he", "test.accuracy").mean()
    )


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------

runner = CliRunner()


def test_cli_tiny_run_writes_png_json_and_prints_table(tmp_path):
    _need_sklearn()
    # 2 inits x 2 seeds = 4 rows (one per device, in one-period progress segments): the model and
    # shapes of test_chunks_do_not_change_results, whose compiled loop is reused
    out = tmp_path / "train"
    res = runner.invoke(
        app,
        [
            "train",
            *("--depth", "8", "--width", "32", "--steps", "150", "--eval-every", "25"),
            *("--seeds", "2", "--inits", "he_normal, zeros", "--out", str(out)),
        ],
    )
    assert res.exit_code == 0, res.output
    flat = " ".join(res.output.split())
    for text in ("he_normal", "zeros", "test acc.", "mean ± std", "trains", "stalls", "150/150"):
        assert text in flat, text
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    saved = TrainResult.load(out / "results.json")
    assert saved.labels == ["he_normal", "zeros"]
    assert saved.config["optimizer"] == "adam(learning_rate=0.001)"
    assert saved.curves["zeros"]["test.accuracy"].shape == (2, 7)
    assert np.all(saved.final("he_normal", "test.accuracy") > 0.75)


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--inits", "he_normal, no_such_init"], "no_such_init"),
        (["--inits", "normal(stddev=x)"], "literal"),
        (["--steps", "0"], "--steps"),
        (["--seeds", "0"], "--seeds"),
        (["--depth", "0"], "--depth"),
        (["--steps", "10", "--eval-every", "3"], "--eval-every"),
        (["--lr", "-1"], "--lr"),
        (["--activation", "nope"], "nope"),
    ],
)
def test_cli_bad_input(args, needle, tmp_path):
    res = runner.invoke(app, ["train", "--out", str(tmp_path), *args])
    assert res.exit_code == 2, res.output
    flat = " ".join(res.output.replace("│", " ").split())  # undo rich's box and line wrapping
    assert needle in flat
    assert not (tmp_path / "results.json").exists()


# ---------------------------------------------------------------------------------------------
# Errors of train_sweep (raised before anything is compiled)
# ---------------------------------------------------------------------------------------------


WRONG = (ValueError, "(2, 3); got (2, 5)")  # a custom model with 5 logits for 3 classes


def _bad_data(kind):
    x, y = np.zeros((10, 4), np.float32), np.arange(10) % 3
    return {
        "float labels": (x, y.astype(float), x, y),
        "length mismatch": (x, y[:5], x, y),
        "feature mismatch": (x, y, x[:, :3], y),
        "negative label": (x, y - 1, x, y),
        "not data": "digits",
        "n_classes too small": Dataset(x, y, x, y, "d", 2),
    }[kind]


@pytest.mark.parametrize(
    "kwargs, exc, needle",
    [
        ({"steps": 0}, ValueError, "`steps` >= 1"),
        ({"seeds": 0}, ValueError, "`seeds` >= 1"),
        ({"batch_size": 0}, ValueError, "`batch_size` >= 1"),
        ({"steps": 10, "eval_every": 3}, ValueError, "divide"),
        ({"steps": 2.5}, TypeError, "`steps` to be an int"),
        ({"optimizer": "adam"}, TypeError, "GradientTransformation"),
        ({"key": "zero"}, TypeError, "`key`"),
        ({"devices": 99}, ValueError, "devices=99"),
        ({"model": "mlp"}, TypeError, "`model`"),
        ({"model": (lambda k, i: {"w": jnp.zeros((4, 5))}, lambda p, x: x @ p["w"])}, *WRONG),
        ({"inits": {}}, ValueError, "at least one"),
        ({"inits": {"r": {"hiden": jinit.he_normal()}}}, ValueError, "'hidden'"),
        ({"inits": {"x": 3.0}}, TypeError, "callable"),
        ({"data": "float labels"}, TypeError, "y_train"),
        ({"data": "length mismatch"}, ValueError, "labels"),
        ({"data": "feature mismatch"}, ValueError, "same shape"),
        ({"data": "negative label"}, ValueError, "[0, n_classes)"),
        ({"data": "not data"}, TypeError, "jinit.Dataset"),
        ({"data": "n_classes too small"}, ValueError, "n_classes=2"),
    ],
)
def test_train_sweep_bad_input(kwargs, exc, needle):
    x, y = np.zeros((10, 4), np.float32), np.arange(10) % 3
    args = {"model": jinit.mlp(4, 2), "inits": jinit.he_normal(), "data": (x, y, x, y)}
    kw = dict(kwargs)
    for name in ("model", "inits", "data"):
        if name in kw:
            args[name] = _bad_data(kw.pop(name)) if name == "data" else kw.pop(name)
    with pytest.raises(exc, match=None) as info:
        train_sweep(args["model"], args["inits"], args["data"], **kw)
    assert needle in str(info.value)
    assert "train_sweep" in str(info.value)
