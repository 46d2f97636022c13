"""Forward-only sweeps (``sweep(gradients=False)``, ``jinit sweep --no-gradients``) and the
cache-sized chunks of CPU sweeps.

Tolerance: a forward-only sweep is another XLA program than the full one (no backward scan,
nothing saved), so XLA may fuse and block its reductions differently. Every forward statistic
is a float32 (or wider) mean over at most ``batch · width`` values of one layer, whose
reordered sum moves by at most ~``log2(n) · 2⁻²⁴`` relative (< 2e-6 for n ≤ 2¹⁶ here); the
activations feeding it are computed by the same per-layer operations on the same keys. We
allow ``RTOL = 1e-5``. Counts (dead and distinct units, non-finite entries) are compared with
the same tolerance: a flip there would need a rounding difference at an exact zero or at the
1e-3 identity threshold, which the inputs below do not approach.
"""

from __future__ import annotations

import json

import flax.linen as nn
import jax
import numpy as np
import pytest
from typer.testing import CliRunner

import jinit
from jinit._core import _seeds
from jinit.cli import app
from jinit.sweeps import _statistics
from jinit.sweeps._assertions import assert_matches_theory

RTOL = 1e-5
GRADIENT_QUANTITIES = ("grad.second_moment", "grad.nonfinite", "grad_output.second_moment")


def _linen():
    def build(init):
        class Net(nn.Module):
            @nn.compact
            def __call__(self, x):
                for _ in range(3):
                    x = nn.tanh(nn.Dense(16, kernel_init=init)(x))
                return x

        return Net()

    return jinit.linen_model(build, lambda key, batch, dtype: jax.random.normal(key, (batch, 8)))


NETWORKS = {
    "mlp": lambda: jinit.mlp(64, 4),
    "mlp-residual-ln": lambda: jinit.mlp(32, 3, residual=True, layernorm=True),
    "cnn": lambda: jinit.cnn(8, 3),
    "transformer": lambda: jinit.transformer(16, 2, heads=2, seq_len=8),
    "linen": _linen,
}


@pytest.fixture(scope="module", params=list(NETWORKS))
def pair(request):
    net = NETWORKS[request.param]()
    kw = {"seeds": 6, "batch": 16, "chunk_size": 2, "seed": 3}
    inits = {"he": jinit.he_normal(), "small": jinit.normal(0.05)}
    # no theory: these tests compare measurements (the traced theory is tested elsewhere)
    kw["theory"] = False
    return jinit.sweep(net, inits, **kw), jinit.sweep(net, inits, gradients=False, **kw)


def test_forward_statistics_equal_the_full_sweeps(pair):
    full, fwd = pair
    assert fwd.config.gradients is False and full.config.gradients is True
    assert not fwd.gradients and full.gradients
    for label in full.labels:
        measured = set(fwd.per_seed[label])
        assert measured == {
            q for q in full.per_seed[label] if not q.startswith(("grad", "param_grad"))
        }
        assert not measured & set(GRADIENT_QUANTITIES)
        for q in measured:
            np.testing.assert_allclose(
                fwd.per_seed[label][q], full.per_seed[label][q], rtol=RTOL, atol=0, err_msg=q
            )
        assert fwd.verdicts(label) == full.verdicts(label)


def test_exports_and_plots_leave_out_gradients(pair, tmp_path):
    from jinit import plot

    _, fwd = pair
    layer = fwd.to_dict()["initializers"][0]["layers"][0]["measured"]
    assert "second_moment" in layer and "nonfinite_seeds" in layer
    assert not {"grad_second_moment", "grad_nonfinite_seeds", "param_grad_norm"} & set(layer)
    fwd.to_csv(tmp_path / "r.csv")
    assert "grad." not in (tmp_path / "r.csv").read_text()
    written = plot.save_all(fwd, tmp_path / "figs", layer=1)
    assert sorted(written) == ["depth_profile", "histogram"]
    assert not (tmp_path / "figs" / "gradient_profile.png").exists()
    with pytest.raises(ValueError, match=r"gradient_profile` needs a sweep that measured"):
        plot.gradient_profile(fwd)


def test_asking_a_forward_only_sweep_for_gradients_says_why():
    fwd = jinit.sweep(jinit.mlp(64, 3), jinit.he_normal(), seeds=8, batch=64, gradients=False)
    assert_matches_theory(fwd)  # default quantities: the forward ones only
    with pytest.raises(ValueError, match=r"forward only \(`gradients=False`\)"):
        assert_matches_theory(fwd, quantities=["grad.second_moment"])
    with pytest.raises(KeyError, match=r"ran forward only"):
        fwd.summary(fwd.labels[0], "grad.second_moment")
    assert fwd.nonfinite_seeds(fwd.labels[0], "backward").tolist() == [0, 0, 0]


@pytest.mark.parametrize("flag", ["gradients", "theory"])
@pytest.mark.parametrize("bad", [1, "no", None, np.float32(0)])
def test_flags_must_be_bools(flag, bad):
    with pytest.raises(TypeError, match=rf"`sweep` needs `{flag}` to be True or False"):
        jinit.sweep(jinit.mlp(8, 2), jinit.he_normal(), seeds=2, **{flag: bad})


def test_a_sweep_without_theory_measures_the_same_and_says_why_nothing_is_predicted():
    kw = {"seeds": 4, "batch": 16, "seed": 1}
    with_theory = jinit.sweep(jinit.mlp(16, 3), jinit.he_normal(), **kw)
    without = jinit.sweep(jinit.mlp(16, 3), jinit.he_normal(), theory=False, **kw)
    label = without.labels[0]
    assert with_theory.predicted[label] is not None and without.predicted[label] is None
    assert "theory=False" in without.notes[label]
    for q in with_theory.per_seed[label]:
        np.testing.assert_array_equal(without.per_seed[label][q], with_theory.per_seed[label][q])
    with pytest.raises(AssertionError, match=r"theory=False"):
        assert_matches_theory(without)


def test_cli_no_gradients(tmp_path):
    out = tmp_path / "o"
    args = ["sweep", "--width", "32", "--depth", "3", "--batch", "16", "--seeds", "4"]
    res = CliRunner().invoke(app, [*args, "--no-gradients", "--out", str(out)])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())  # the console wraps the captions
    assert "forward only (--no-gradients)" in text and "grad²" not in text
    assert sorted(p.name for p in out.iterdir()) == [
        "depth_profile.png",
        "histogram.png",
        "results.csv",
        "results.json",
    ]
    assert json.loads((out / "results.json").read_text())["config"]["gradients"] is False


class _Dev:
    def __init__(self, platform: str):
        self.platform = platform


@pytest.mark.parametrize(
    ("platforms", "working_set", "expected"),
    [
        (["cpu"], 1, None),  # filled in below: L2 bytes per device
        (["cpu", "cpu"], 10**12, 2),  # bigger than any cache: one seed per device
        (["cpu"], 0, None),
        (["gpu"], 1000, None),  # accelerators: the memory plan decides
        (["cpu", "tpu"], 1000, None),
        ([], 1000, None),
    ],
)
def test_cache_chunk(platforms, working_set, expected):
    devs = [_Dev(p) for p in platforms]
    got = _seeds.cache_chunk(devs, working_set)
    l2 = _seeds.l2_cache_bytes()
    assert l2 > 0
    if platforms == ["cpu"]:  # L2 // max(working_set, 1), at least 1 per device
        expected = max(1, _seeds._CACHE_FACTOR * l2 // max(working_set, 1))
    assert got == expected


@pytest.mark.parametrize(
    ("width", "batch", "gradients", "expected"),
    [
        # input carry + pre-activation + output carry (3 x batch x width) + W and b, float32
        (64, 256, False, 4 * (3 * 256 * 64 + 64 * 64 + 64)),
        (64, 256, True, 8 * (3 * 256 * 64 + 64 * 64 + 64)),  # + their cotangents
        (512, 1000, False, 4 * (3 * 1000 * 512 + 512 * 512 + 512)),
    ],
)
def test_layer_working_set(width, batch, gradients, expected):
    got = _statistics.layer_working_set(jinit.mlp(width, 3), batch, np.dtype("float32"), gradients)
    assert got == expected


@pytest.mark.parametrize(("gradients", "fastest"), [(False, range(16, 21)), (True, range(4, 9))])
def test_chunks_fall_where_w2_ran_fastest(monkeypatch, gradients, fastest):
    """W2 (MLP 64 x 20, batch 256, 2 devices) on a host with 2 MiB of L2 per core ran fastest
    at 16-20 seeds per chunk forward only and 4-8 with gradients (``_seeds._CACHE_FACTOR``);
    the rule puts its chunks there (the old one chose 56 for both)."""
    monkeypatch.setattr(_seeds, "l2_cache_bytes", lambda: 2 * 1024**2)
    ws = _statistics.layer_working_set(jinit.mlp(64, 20), 256, np.dtype("float32"), gradients)
    assert _seeds.cache_chunk([_Dev("cpu")] * 2, ws) in fastest


def test_default_cpu_chunks_follow_the_layer_working_set():
    """A small network gets more seeds per call than a wide one, both within the cache rule."""
    small = jinit.sweep(jinit.mlp(16, 2), jinit.he_normal(), seeds=64, batch=16)
    wide = jinit.sweep(jinit.mlp(512, 2), jinit.he_normal(), seeds=8, batch=512)
    n_dev = small.config.devices
    assert wide.config.chunk_size == n_dev  # 2 MB per seed and layer: one seed per device
    assert small.config.chunk_size > wide.config.chunk_size


def test_gradients_get_smaller_cpu_chunks_than_forward_only():
    """The backward step touches twice the forward's bytes (values and cotangents), so a
    sweep with gradients puts fewer seeds in a chunk where the cache allows more than one."""
    net, seeds, batch = jinit.mlp(64, 2), 64, 256
    fwd = jinit.sweep(net, jinit.he_normal(), seeds=seeds, batch=batch, gradients=False)
    full = jinit.sweep(net, jinit.he_normal(), seeds=seeds, batch=batch)
    devs = jax.devices()[: fwd.config.devices]
    ws = {g: _statistics.layer_working_set(net, batch, np.dtype("float32"), g) for g in (0, 1)}
    cached = {g: min(seeds, _seeds.cache_chunk(devs, ws[g])) for g in (0, 1)}
    assert full.config.chunk_size <= fwd.config.chunk_size
    if cached[1] < cached[0]:
        assert full.config.chunk_size < fwd.config.chunk_size
