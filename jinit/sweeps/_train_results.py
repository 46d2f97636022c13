"""What :func:`train_sweep` returns: :class:`TrainResult` (per-row curves on the host) and its
summaries (:class:`CurveSummary`), tables and exports."""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np

from jinit._core._atomic import atomic_file, atomic_savefig, check_file_target, ensure_run_id
from jinit._core._output import OutputFolder
from jinit.sweeps._configs import TrainConfig
from jinit.sweeps._train_data import METRICS

# ---------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------


class CurveSummary(NamedTuple):
    """Across-seed summary of one metric, each field an array over evaluations.

    ``mean`` and ``std`` (ddof 1) are over the seeds whose value is finite; the quantiles are
    the 5/25/50/75/95 % seed quantiles; ``n_finite`` counts the finite seeds.
    """

    mean: np.ndarray
    std: np.ndarray
    q05: np.ndarray
    q25: np.ndarray
    q50: np.ndarray
    q75: np.ndarray
    q95: np.ndarray
    n_finite: np.ndarray


def _summarise(x: np.ndarray) -> CurveSummary:
    x = np.asarray(x, np.float64)
    cols = x.shape[1]
    out = {k: np.full(cols, np.nan) for k in CurveSummary._fields if k != "n_finite"}
    n_fin = np.zeros(cols, np.int64)
    for j in range(cols):
        col = x[:, j][np.isfinite(x[:, j])]
        n_fin[j] = col.size
        if not col.size:
            continue
        out["mean"][j] = col.mean()
        out["std"][j] = col.std(ddof=1) if col.size > 1 else 0.0
        qs = np.quantile(col, [0.05, 0.25, 0.5, 0.75, 0.95])
        out["q05"][j], out["q25"][j], out["q50"][j], out["q75"][j], out["q95"][j] = qs
    return CurveSummary(n_finite=n_fin, **out)


def _json_list(a: np.ndarray) -> list:
    return [
        _json_list(v) if isinstance(v, np.ndarray) else (float(v) if math.isfinite(v) else None)
        for v in a
    ]


def _jsonable(x: Any) -> Any:
    if isinstance(x, Mapping):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, (float, np.floating)):
        return float(x) if math.isfinite(x) else None
    if isinstance(x, (str, int, bool)) or x is None:
        return x
    return str(x)


@dataclasses.dataclass
class TrainResult:
    """Loss and accuracy curves of a training sweep, per initialiser and seed.

    Attributes:
      config: the run's configuration (model, data, seeds, steps, batch size, optimiser, ...,
        ``chance_loss`` = log C and ``chance_accuracy`` = 1/C), a :class:`TrainConfig` (a
        mapping is converted; unknown keys are refused).
      steps: ``(evaluations,)`` the optimiser step of each evaluation, starting at 0.
      curves: ``{label: {metric: array (seeds, evaluations)}}`` for the metrics in
        :data:`METRICS` (``"train.loss"``, ``"train.accuracy"``, ``"test.loss"``,
        ``"test.accuracy"``), measured on the full splits.
      specs: ``{label: repr of the initialiser or rules}``.
    """

    config: dict[str, Any]
    steps: np.ndarray
    curves: dict[str, dict[str, np.ndarray]]
    specs: dict[str, str]

    def __post_init__(self) -> None:
        self.config = TrainConfig.from_mapping(self.config, "`jinit.TrainResult`'s `config`")

    @property
    def labels(self) -> list[str]:
        """The initialisers' labels, in the order they were given."""
        return list(self.curves)

    @property
    def n_seeds(self) -> int:
        return int(next(iter(self.curves.values()))["train.loss"].shape[0])

    def _get(self, label: str, metric: str) -> np.ndarray:
        if label not in self.curves:
            raise KeyError(f"no initialiser {label!r} in this result; labels are {self.labels}.")
        if metric not in self.curves[label]:
            raise KeyError(f"no metric {metric!r}; metrics are {list(METRICS)}.")
        return self.curves[label][metric]

    def summary(self, label: str, metric: str) -> CurveSummary:
        """Seed mean, std and quantiles of ``metric`` at every evaluation.

        Examples:
          >>> import numpy as np
          >>> from jinit import TrainResult
          >>> r = TrainResult({}, np.array([0, 10]),
          ...                 {"a": {"train.loss": np.array([[2.0, 1.0], [2.0, 3.0]])}}, {})
          >>> r.summary("a", "train.loss").mean.tolist()
          [2.0, 2.0]
        """
        return _summarise(self._get(label, metric))

    def final(self, label: str, metric: str) -> np.ndarray:
        """``(seeds,)``: ``metric`` at the last evaluation."""
        return np.asarray(self._get(label, metric)[:, -1])

    def verdict(self, label: str) -> str:
        r"""``"trains"``, ``"partial"``, ``"stalls"`` or ``"diverged"`` for ``label``.

        From the seed median :math:`m` of the final training loss relative to the chance loss
        :math:`\log C`: trains if :math:`m < 0.5\log C`, stalls if :math:`m > 0.9\log C`,
        partial in between; diverged if more than half of the seeds end non-finite.
        """
        final = self.final(label, "train.loss")
        finite = final[np.isfinite(final)]
        if finite.size * 2 < final.size:
            return "diverged"
        chance = float(self.config.get("chance_loss", math.log(10)))
        m = float(np.median(finite))
        if m < 0.5 * chance:
            return "trains"
        return "stalls" if m > 0.9 * chance else "partial"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (non-finite values as ``null``)."""
        return {
            "config": _jsonable(self.config),
            "steps": [int(s) for s in self.steps],
            "specs": dict(self.specs),
            "curves": {
                label: {m: _json_list(np.asarray(a, np.float64)) for m, a in c.items()}
                for label, c in self.curves.items()
            },
            "final": {
                label: {
                    m: {
                        "mean": _jsonable(float(s.mean[-1])),
                        "std": _jsonable(float(s.std[-1])),
                        "q05": _jsonable(float(s.q05[-1])),
                        "q50": _jsonable(float(s.q50[-1])),
                        "q95": _jsonable(float(s.q95[-1])),
                    }
                    for m in c
                    for s in [self.summary(label, m)]
                }
                | {"verdict": self.verdict(label)}
                for label, c in self.curves.items()
            },
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TrainResult:
        """The inverse of :meth:`to_dict` (``null`` becomes NaN)."""
        try:
            curves = {
                label: {
                    m: np.array(
                        [[np.nan if v is None else v for v in row] for row in a], np.float64
                    )
                    for m, a in c.items()
                }
                for label, c in d["curves"].items()
            }
            return cls(
                dict(d["config"]), np.asarray(d["steps"], np.int64), curves, dict(d["specs"])
            )
        except (KeyError, TypeError) as e:
            raise ValueError(
                f"`TrainResult.from_dict` needs the keys config, steps, specs and curves written "
                f"by `to_dict`; reading failed with {type(e).__name__}: {e}."
            ) from None

    def to_json(self, path: str | os.PathLike | None = None) -> str:
        """The result as JSON text; also written to ``path`` if given.

        A file is written atomically (a temporary file beside ``path``, moved over it when
        complete: an interrupt never leaves a partial file), and the config then gets a
        ``run_id`` (kept if present), which :meth:`plot` also stamps into its PNG.

        Raises:
          TypeError: ``path`` is not a str or os.PathLike.
          ValueError: ``path`` is a folder, or its folder does not exist.
          PermissionError: its folder is not writable.
        """
        target = None
        if path is not None:
            target = check_file_target(path, "`jinit.TrainResult.to_json`")
            ensure_run_id(self.config)
        text = json.dumps(self.to_dict(), indent=1)
        if target is not None:
            with atomic_file(target) as f:
                f.write(text)
        return text

    @classmethod
    def from_json(cls, text: str) -> TrainResult:
        """Reads JSON text written by :meth:`to_json`."""
        return cls.from_dict(json.loads(text))

    @classmethod
    def load(cls, path: str | os.PathLike) -> TrainResult:
        """Reads a file written by :meth:`to_json` or :meth:`save`."""
        with open(path, encoding="utf-8") as f:
            return cls.from_json(f.read())

    def save(self, directory: str | os.PathLike, *, plot: bool = True) -> dict[str, str]:
        """Writes ``results.json`` (and ``curves.png`` if ``plot``) into ``directory``, as a set.

        ``directory`` (created if missing) receives both files at once, as ``jinit train
        --out`` does (:class:`jinit._core._output.OutputFolder`): after any interruption it holds
        the complete old set or the complete new one, both files with the same ``run_id``.
        A folder that also holds other files gets the two files moved in one by one
        (``results.json`` last); nothing else in it is touched.

        Raises:
          TypeError: ``directory`` is not a str or os.PathLike.
          ValueError: ``directory`` is an existing file, or another jinit run is writing it.
          PermissionError: it cannot be created or written.
        """
        with OutputFolder.open(
            directory,
            command="jinit.TrainResult.save",
            subject="`jinit.TrainResult.save` needs `directory` to be",
            param="directory",
        ) as folder:
            self.config["run_id"] = folder.run_id

            def fill(stage) -> None:
                self.to_json(stage / "results.json")
                if plot:
                    self.plot(stage / "curves.png")

            folder.write(fill)
        out = {"json": os.path.join(directory, "results.json")}
        if plot:
            out["png"] = os.path.join(directory, "curves.png")
        return out

    def plot(self, path: str | os.PathLike | None = None):
        """Loss (log scale) and accuracy curves: seed means with 5–95 % seed bands per init.

        Solid lines: training loss and test accuracy (shaded bands); dashed: test loss and
        training accuracy. Dotted grey: the chance level (log C and 1/C).

        Args:
          path: where to save a PNG (optional).

        Returns:
          The matplotlib ``Figure`` (rendered with Agg; pyplot is not used).
        """
        from matplotlib import colormaps
        from matplotlib.figure import Figure
        from matplotlib.lines import Line2D

        fig = Figure(figsize=(11.0, 4.6), layout="constrained")
        ax_loss, ax_acc = fig.subplots(1, 2)
        cmap = colormaps["tab10"]
        steps = np.asarray(self.steps)
        for i, label in enumerate(self.labels):
            color = cmap(i % 10)
            for ax, solid, dashed in (
                (ax_loss, "train.loss", "test.loss"),
                (ax_acc, "test.accuracy", "train.accuracy"),
            ):
                s = self.summary(label, solid)
                ok = np.isfinite(s.mean)
                # Earlier curves drawn thicker, so identical curves (two stalled inits) show both.
                lw = max(1.2, 3.2 - 0.6 * i)
                ax.plot(steps[ok], s.mean[ok], color=color, lw=lw, label=label)
                band = ok & np.isfinite(s.q05) & np.isfinite(s.q95)
                ax.fill_between(steps[band], s.q05[band], s.q95[band], color=color, alpha=0.2, lw=0)
                d = self.summary(label, dashed)
                ok = np.isfinite(d.mean)
                ax.plot(steps[ok], d.mean[ok], color=color, lw=1.2, ls="--", alpha=0.8)
        chance_loss = self.config.get("chance_loss")
        chance_acc = self.config.get("chance_accuracy")
        if chance_loss:
            ax_loss.axhline(chance_loss, color="gray", ls=":", lw=1.2)
        if chance_acc:
            ax_acc.axhline(chance_acc, color="gray", ls=":", lw=1.2)
        ax_loss.set_yscale("log")
        ax_loss.set_ylabel("cross-entropy loss")
        ax_acc.set_ylabel("accuracy")
        ax_acc.set_ylim(0.0, 1.02)
        for ax in (ax_loss, ax_acc):
            ax.set_xlabel("optimiser step")
            ax.grid(True, alpha=0.3)
        handles, _ = ax_loss.get_legend_handles_labels()
        handles += [
            Line2D([], [], color="black", lw=2, label="train (loss) / test (acc.): seed mean"),
            Line2D([], [], color="black", lw=1.2, ls="--", label="test (loss) / train (acc.)"),
            Line2D([], [], color="gray", ls=":", label="chance"),
        ]
        ax_loss.legend(handles=handles, fontsize=8, loc="lower left", framealpha=0.85)
        ax_loss.set_title("loss (shaded: 5–95 % of seeds)", fontsize=10)
        ax_acc.set_title("accuracy", fontsize=10)
        c = self.config
        fig.suptitle(
            f"{c.get('data', 'data')} · {c.get('model', 'model')} · {c.get('seeds', '?')} seeds · "
            f"{c.get('optimizer', '')} · batch {c.get('batch_size', '?')}",
            fontsize=11,
        )
        if path is not None:
            target = check_file_target(path, "`jinit.TrainResult.plot`", example="curves.png")
            atomic_savefig(fig, target, run_id=ensure_run_id(self.config))
        return fig

    def __repr__(self) -> str:
        return (
            f"TrainResult({len(self.labels)} initialisers × {self.n_seeds} seeds, "
            f"{int(self.steps[-1])} steps, {len(self.steps)} evaluations)"
        )
