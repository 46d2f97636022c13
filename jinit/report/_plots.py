"""Figures of propagation sweeps (matplotlib, no pyplot: figures render with Agg and never touch
the global backend).

* :func:`depth_profile`: a per-layer statistic (activation std by default) on a log axis, one
  line per initialiser (seed median), its 5-95 % seed band, and the mean-field prediction
  dashed: the textbook figure "activation std across 10 ReLU layers for N(0, 0.01²), Xavier
  and He", with seeds instead of a single draw;
* :func:`activation_histogram`: the distribution of activations at one layer, per initialiser;
* :func:`gradient_profile`: the per-unit second moment of the gradient w.r.t. each layer's
  pre-activation.

The public home of these functions is :mod:`jinit.plot`.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from jinit._core._atomic import (
    atomic_savefig,
    check_file_target,
    check_folder_target,
    ensure_run_id,
)

__all__ = ["activation_histogram", "depth_profile", "gradient_profile", "save_all"]

_LABELS = {
    "act.std": "activation std",
    "act.second_moment": "activation second moment E[x²]",
    "preact.std": "pre-activation std",
    "preact.second_moment": "pre-activation second moment E[h²]",
    "grad.second_moment": "gradient second moment E[(∂L/∂h)²]",
    "output.second_moment": "layer output second moment",
    "output.std": "residual stream std",
    "grad_output.second_moment": "gradient second moment E[(∂L/∂x)²] of the layer output",
}


def _judged(result) -> dict[str, str]:
    judged = getattr(result, "judged", None)
    return (
        dict(judged)
        if judged
        else {"forward": "act.second_moment", "backward": "grad.second_moment", "std": "act.std"}
    )


def _title(result, what: str) -> str:
    c = result.config
    return f"{what}\n{c['network']} · batch {c['batch']} · {c['seeds']} seeds · {c['dtype']}"


def _colors(n: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    return [cmap(i % 10) for i in range(n)]


def _check_path(path, api: str) -> None:
    """Validates a figure's ``path`` before any drawing (see ``check_file_target``)."""
    if path is not None:
        check_file_target(path, api, example="figure.png")


def _save(fig: Figure, result, path) -> None:
    """Saves ``fig`` atomically; a PNG carries the result's run id (``jinit_run_id``)."""
    if path is not None:
        atomic_savefig(fig, path, run_id=ensure_run_id(result.config))


def _profile(result, quantity: str, ylabel: str, title: str, path) -> Figure:
    fig = Figure(figsize=(8.0, 5.0), layout="constrained")
    ax = fig.add_subplot()
    layers = np.arange(1, result.n_layers + 1)
    notes = []
    theory_drawn = False
    for label, color in zip(result.labels, _colors(len(result.labels)), strict=True):
        s = result.summary(label, quantity)
        pred = result.prediction(label, quantity)
        pos = np.isfinite(s.q50) & (s.q50 > 0)
        bad = result.nonfinite_seeds(
            label, "backward" if quantity.startswith("grad") else "forward"
        )
        tag = label
        if not np.any(pos):
            zero = np.all(np.nan_to_num(s.q50, nan=1.0) == 0)
            notes.append(f"{label}: {'identically 0' if zero else 'no finite positive value'}")
            tag += " (≡ 0, not shown)" if zero else " (not finite)"
        if np.any(bad):
            tag += f" [inf/NaN from layer {int(np.argmax(bad > 0)) + 1}]"
        ax.plot(layers[pos], s.q50[pos], "o-", color=color, lw=2, ms=4, label=tag)
        band = pos & np.isfinite(s.q05) & np.isfinite(s.q95) & (s.q05 > 0)
        if np.any(band):
            ax.fill_between(layers[band], s.q05[band], s.q95[band], color=color, alpha=0.18, lw=0)
        pp = np.isfinite(pred) & (pred > 0)
        if np.any(pp):
            theory_drawn = True
            ax.plot(
                layers[pp], pred[pp], ls=(0, (4, 3)), color="black", lw=1.2, alpha=0.85, zorder=5
            )
    ax.set_yscale("log")
    ax.set_xlabel("layer")
    ax.set_ylabel(ylabel)
    ticks = layers if result.n_layers <= 20 else np.linspace(1, result.n_layers, 11, dtype=int)
    ax.set_xticks(ticks)
    names = result.config.get("layer_names")
    if names:  # Flax models: the module paths
        ax.set_xticklabels(
            [f"{t} {names[t - 1]}" for t in ticks], rotation=35, ha="right", fontsize=7
        )
    ax.grid(True, which="major", alpha=0.3)
    ax.grid(True, which="minor", alpha=0.08)
    handles, labels = ax.get_legend_handles_labels()
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles.append(Patch(color="gray", alpha=0.25, label="5–95 % of seeds"))
    if theory_drawn:  # no legend entry for a line that is not there
        handles.append(
            Line2D([], [], color="black", ls=(0, (4, 3)), lw=1.2, label="mean-field theory")
        )
    ax.legend(handles=handles, loc="best", fontsize=9, framealpha=0.85)
    ax.set_title(_title(result, title), fontsize=11)
    _save(fig, result, path)
    return fig


def depth_profile(result, path: str | os.PathLike | None = None, *, quantity: str | None = None):
    """Per-layer ``quantity`` (seed median, 5-95 % band, theory dashed) on a log axis.

    The dashed theory line and its legend entry appear only where there is a prediction. Flax
    models' layers are labelled by their module paths.

    Args:
      result: a :class:`jinit.SweepResult`.
      path: where to save a PNG (optional).
      quantity: default: the std of what the verdicts judge (``result.judged["std"]``):
        ``"act.std"`` for a plain stack, ``"output.std"`` (the residual stream) for a residual
        one; or ``"act.second_moment"``, ``"preact.std"``, ``"preact.second_moment"``, ...

    Returns:
      The matplotlib ``Figure``.
    """
    _check_path(path, "`jinit.plot.depth_profile`")
    if quantity is None:
        quantity = _judged(result)["std"]
    ylabel = _LABELS.get(quantity, quantity) + " (seed median)"
    return _profile(
        result, quantity, ylabel, f"Signal propagation: {_LABELS.get(quantity, quantity)}", path
    )


def gradient_profile(result, path: str | os.PathLike | None = None):
    """Per-layer gradient second moment (seed median, 5-95 % band, theory dashed), log axis.

    The loss is ⟨v, y⟩ with v ~ N(0, I) (``result.config["loss"]``: y is the last
    pre-activation of a plain stack, the network output of a transformer, the model output of a
    Flax model), so the figure is exactly 1 per unit at y. Shown: the gradient the verdicts
    judge (``result.judged["backward"]``): w.r.t. each layer's pre-activation, or w.r.t. the
    residual stream after each block of a transformer.

    Args:
      result: a :class:`jinit.SweepResult`.
      path: where to save a PNG (optional).

    Returns:
      The matplotlib ``Figure``.
    """
    _check_path(path, "`jinit.plot.gradient_profile`")
    if not result.gradients:
        raise ValueError(
            "`jinit.plot.gradient_profile` needs a sweep that measured gradients; this one ran "
            "forward only (`gradients=False`). Sweep with `gradients=True` (`jinit sweep "
            "--gradients`)."
        )
    quantity = _judged(result)["backward"]
    if quantity == "grad.second_moment":
        ylabel = "E[(∂L/∂h)²] per unit (seed median)"
        title = "Backward signal: gradient w.r.t. each layer's pre-activation"
    else:
        ylabel = "E[(∂L/∂x)²] per unit (seed median)"
        title = "Backward signal: gradient w.r.t. the residual stream after each block"
    return _profile(result, quantity, ylabel, title, path)


def activation_histogram(
    result, layer: int = 5, path: str | os.PathLike | None = None, *, bins: int = 60
):
    """Histogram of activation values at ``layer`` (pooled over seeds), one panel per initialiser.

    Each panel has its own x range (initialisers differ by orders of magnitude), shows the
    fraction of exact zeros (dead ReLU outputs) and the std.

    Args:
      result: a :class:`jinit.SweepResult`.
      layer: the layer (1-based; clipped to the depth).
      path: where to save a PNG (optional).
      bins: number of histogram bins.

    Returns:
      The matplotlib ``Figure``.
    """
    _check_path(path, "`jinit.plot.activation_histogram`")
    layer = int(min(max(layer, 1), result.n_layers))
    n = len(result.labels)
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(4.2 * cols, 3.4 * rows + 0.6), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for i, (label, color) in enumerate(zip(result.labels, _colors(n), strict=True)):
        ax = axes[i // cols][i % cols]
        vals = np.asarray(result.per_seed[label]["act.sample"][:, layer - 1, :], np.float64)
        vals = vals[np.isfinite(vals)]
        ax.set_title(label, fontsize=10)
        ax.set_xlabel(f"activation value at layer {layer}")
        ax.set_ylabel("density")
        if vals.size == 0:
            ax.text(0.5, 0.5, "no finite values", ha="center", transform=ax.transAxes)
            continue
        zero = float(np.mean(vals == 0))
        nz = vals[vals != 0]
        if nz.size == 0:
            ax.text(0.5, 0.5, "all values exactly 0", ha="center", transform=ax.transAxes)
            continue
        lo, hi = np.quantile(nz, [0.001, 0.999])
        if lo == hi:
            lo, hi = lo - 0.5 * abs(lo) - 1e-30, hi + 0.5 * abs(hi) + 1e-30
        ax.hist(nz, bins=bins, range=(lo, hi), density=True, color=color, alpha=0.75)
        ax.ticklabel_format(axis="x", style="sci", scilimits=(-3, 3))
        txt = f"std {np.std(vals):.3g}\nexact zeros {100 * zero:.1f} %"
        ax.text(
            0.97,
            0.95,
            txt,
            ha="right",
            va="top",
            transform=ax.transAxes,
            fontsize=9,
            bbox={"boxstyle": "round", "fc": "white", "alpha": 0.8},
        )
    for j in range(n, rows * cols):
        axes[j // cols][j % cols].set_visible(False)
    fig.suptitle(
        _title(result, f"Activations at layer {layer} (non-zero values; pooled over seeds)"),
        fontsize=11,
    )
    _save(fig, result, path)
    return fig


def save_all(result, out_dir: str | os.PathLike, *, layer: int = 5) -> dict[str, Any]:
    """Writes ``depth_profile.png``, ``histogram.png`` and ``gradient_profile.png`` to ``out_dir``.

    ``out_dir`` is created if missing. Each file is written atomically (a temporary file beside
    it, moved over it when complete) and carries the result's run id as PNG metadata
    (``jinit_run_id``, the ``run_id`` of ``results.json``/``results.csv`` written from the same
    result).

    Returns:
      ``{name: path}`` of the files written.

    Raises:
      TypeError: ``out_dir`` is not a str or os.PathLike.
      ValueError: ``out_dir`` is an existing file or goes through one.
      PermissionError: ``out_dir`` cannot be created or written.

    A forward-only sweep (``gradients=False``) has no ``gradient_profile.png``.

    Examples:
      >>> import os, tempfile
      >>> import jinit
      >>> from jinit import plot
      >>> from jinit import mlp
      >>> from jinit import sweep
      >>> r = sweep(mlp(16, 2), jinit.he_normal(), seeds=2, batch=8)
      >>> paths = plot.save_all(r, tempfile.mkdtemp(), layer=1)
      >>> sorted(os.path.basename(p) for p in paths.values())
      ['depth_profile.png', 'gradient_profile.png', 'histogram.png']
    """
    check_folder_target(out_dir, "`jinit.plot.save_all`", "out_dir")
    os.makedirs(out_dir, exist_ok=True)
    paths = {
        "depth_profile": os.path.join(out_dir, "depth_profile.png"),
        "histogram": os.path.join(out_dir, "histogram.png"),
        "gradient_profile": os.path.join(out_dir, "gradient_profile.png"),
    }
    if not result.gradients:
        del paths["gradient_profile"]
    depth_profile(result, paths["depth_profile"])
    activation_histogram(result, layer, paths["histogram"])
    if result.gradients:
        gradient_profile(result, paths["gradient_profile"])
    return paths
