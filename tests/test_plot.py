"""Figures: built from a synthetic SweepResult (no compilation), checked for what a reader needs:
a log axis, labelled axes, one legend entry per initialiser plus the band and the theory, the
configuration in the title, and graceful handling of all-zero and non-finite initialisers.
"""

from __future__ import annotations

import numpy as np
import pytest

from jinit import plot
from jinit.sweeps._sweep_result import SweepResult

L, S, K = 6, 20, 64


def _fake_result() -> SweepResult:
    rng = np.random.default_rng(0)
    per_seed, predicted = {}, {}
    for label, scale in (("he", 1.0), ("small", 0.05), ("zeros", 0.0), ("boom", 40.0)):
        growth = scale ** np.arange(1, L + 1) if label in ("small", "boom") else np.ones(L)
        m2 = growth * np.exp(0.1 * rng.standard_normal((S, L))) * (scale > 0)
        if label == "boom":
            m2[:, -2:] = np.inf
        d = {
            "act.second_moment": m2,
            "act.std": np.sqrt(m2),
            "preact.second_moment": 2 * m2,
            "grad.second_moment": m2[:, ::-1].copy(),
            "distinct_units": np.full((S, L), 1.0 if scale == 0 else 32.0),
            "nonfinite": np.where(np.isfinite(m2), 0.0, 5.0),
            "grad.nonfinite": np.zeros((S, L)),
        }
        relu = np.maximum(rng.standard_normal((S, L, K)), 0)
        std = np.sqrt(np.where(np.isfinite(m2), m2, np.nan))  # overflowed layers: NaN samples
        d["act.sample"] = relu * std[..., None]
        per_seed[label] = d
        predicted[label] = (
            None
            if label == "zeros"
            else {"act.std": np.sqrt(growth), "grad.second_moment": growth[::-1].copy()}
        )
    config = {
        "network": "MLP width 32, depth 6, relu, bias",
        "batch": 16,
        "seeds": S,
        "layers": L,
        "dtype": "float32",
        "units": 32,
        "input_second_moment": 1.0,
    }
    return SweepResult(config, per_seed, predicted)


@pytest.fixture(scope="module")
def result() -> SweepResult:
    return _fake_result()


def _legend_texts(fig):
    return [t.get_text() for t in fig.axes[0].get_legend().get_texts()]


def test_depth_profile(result, tmp_path):
    fig = plot.depth_profile(result, tmp_path / "d.png")
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    assert ax.get_xlabel() == "layer" and "activation std" in ax.get_ylabel()
    assert "MLP width 32, depth 6" in ax.get_title() and "20 seeds" in ax.get_title()
    texts = _legend_texts(fig)
    assert texts[0] == "he" and texts[1] == "small"
    assert "zeros (≡ 0, not shown)" in texts
    assert any(t.startswith("boom") and "inf/NaN from layer 5" in t for t in texts)
    assert {"5–95 % of seeds", "mean-field theory"} <= set(texts)
    assert (tmp_path / "d.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_gradient_profile(result, tmp_path):
    fig = plot.gradient_profile(result, tmp_path / "g.png")
    ax = fig.axes[0]
    assert ax.get_yscale() == "log" and "∂L/∂h" in ax.get_ylabel()
    assert "gradient" in ax.get_title()
    # one measured line per initialiser with a positive value, plus the dashed predictions
    assert len(ax.get_lines()) == 4 + 3
    assert (tmp_path / "g.png").stat().st_size > 10_000


@pytest.mark.parametrize("layer, shown", [(5, 5), (0, 1), (99, L)])
def test_activation_histogram(result, tmp_path, layer, shown):
    fig = plot.activation_histogram(result, layer, tmp_path / "h.png")
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in visible] == ["he", "small", "zeros", "boom"]
    assert all(ax.get_xlabel() == f"activation value at layer {shown}" for ax in visible)
    notes = [t.get_text() for ax in visible for t in ax.texts]
    assert any("exact zeros" in t for t in notes)  # relu-like samples: ~50 % exact zeros
    assert "all values exactly 0" in notes  # the zero initialiser
    assert f"Activations at layer {shown}" in fig.get_suptitle()


def test_save_all(result, tmp_path):
    paths = plot.save_all(result, tmp_path / "out", layer=2)
    assert sorted(p.split("/")[-1] for p in paths.values()) == [
        "depth_profile.png",
        "gradient_profile.png",
        "histogram.png",
    ]
    for p in paths.values():
        with open(p, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_no_theory_entry_without_theory_and_module_names():
    """A result with no prediction (a Flax model) draws no theory line, so its legend has no
    theory entry; its layers are labelled by their module paths."""
    r = _fake_result()
    r.predicted = dict.fromkeys(r.predicted)
    names = [f"block_{j}/Dense_0" for j in range(L)]
    r.config["layer_names"] = names
    fig = plot.depth_profile(r)
    texts = _legend_texts(fig)
    assert "mean-field theory" not in texts and "5–95 % of seeds" in texts
    ticks = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert ticks == [f"{j + 1} {n}" for j, n in enumerate(names)]
    assert "mean-field theory" not in _legend_texts(plot.gradient_profile(r))


def test_residual_stream_is_the_default_quantity():
    r = _fake_result()
    for label in r.labels:
        r.per_seed[label]["output.std"] = 3 * r.per_seed[label]["act.std"]
    r.config["judged"] = {
        "forward": "output.second_moment",
        "backward": "grad.second_moment",
        "std": "output.std",
        "what": "residual stream",
    }
    fig = plot.depth_profile(r)
    ax = fig.axes[0]
    assert "residual stream std" in ax.get_ylabel()
    he = r.summary("he", "output.std").q50
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), he)
