"""What :func:`sweep` returns: :class:`SweepResult` (per-seed, per-layer statistics on the host,
with predictions where theory covers the network), its summaries, tables and JSON/CSV exports,
and the names of the measured quantities."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np

from jinit._core._atomic import atomic_file, check_file_target, ensure_run_id
from jinit.sweeps._configs import SweepConfig
from jinit.sweeps._statistics import JUDGE_ACTIVATION

#: The per-layer quantities of a sweep (``SweepResult.per_seed[label][name]``, shape
#: ``(seeds, layers)``), all computed per seed over the whole batch.
QUANTITIES: dict[str, str] = {
    "preact.second_moment": "E[h²] of the pre-activation",
    "preact.mean": "mean of the pre-activation",
    "preact.std": "std of the pre-activation",
    "act.second_moment": "E[a²] of the activation a = φ(h) (φ(LN(h)) with LayerNorm)",
    "act.mean": "mean of the activation",
    "act.std": "std of the activation",
    "output.second_moment": "E[x²] of the layer output (the residual stream if any)",
    "output.mean": "mean of the layer output",
    "output.std": "std of the layer output",
    "dead_fraction": "fraction of units whose activation is 0 on every example",
    "distinct_units": "number of distinct units (1: every unit computes the same function)",
    "grad.second_moment": "E[(∂L/∂h)²] per unit, L = <v, y>, v ~ N(0, I) (config['loss'])",
    "grad_output.second_moment": "E[(∂L/∂x)²] per unit of the layer output (the residual "
    "stream of a transformer; NaN for Flax models)",
    "param_grad_norm.<name>": "Frobenius norm of ∂L/∂(parameter <name>) of the layer",
    "nonfinite": "number of inf/NaN entries of h and a",
    "grad.nonfinite": "number of inf/NaN entries of ∂L/∂h",
}


# ---------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------


class Summary(NamedTuple):
    """Across-seed summary of one quantity, each field an array over layers."""

    mean: np.ndarray
    se: np.ndarray
    q05: np.ndarray
    q50: np.ndarray
    q95: np.ndarray
    n_finite: np.ndarray


def summarise(x: np.ndarray) -> Summary:
    """Seed mean, standard error, 5/50/95 % quantiles over the finite seeds of ``x[seed, layer]``.

    Examples:
      >>> import numpy as np
      >>> from jinit.sweeps._sweep_result import summarise
      >>> s = summarise(np.array([[1.0, np.inf], [3.0, 2.0]]))
      >>> s.mean.tolist(), s.n_finite.tolist()
      ([2.0, 2.0], [2, 1])
    """
    x = np.asarray(x, np.float64)
    n_layers = x.shape[1]
    out = {k: np.full(n_layers, np.nan) for k in ("mean", "se", "q05", "q50", "q95")}
    n_fin = np.zeros(n_layers, np.int64)
    for j in range(n_layers):
        col = x[:, j][np.isfinite(x[:, j])]
        n_fin[j] = col.size
        if col.size == 0:
            continue
        out["mean"][j] = col.mean()
        out["se"][j] = col.std(ddof=1) / math.sqrt(col.size) if col.size > 1 else np.nan
        out["q05"][j], out["q50"][j], out["q95"][j] = np.quantile(col, [0.05, 0.5, 0.95])
    return Summary(n_finite=n_fin, **out)


def _json_float(x) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def _summary_dict(s: Summary, j: int) -> dict[str, float | None]:
    return {k: _json_float(getattr(s, k)[j]) for k in ("mean", "se", "q05", "q50", "q95")}


@dataclasses.dataclass
class SweepResult:
    """Per-seed statistics of a propagation sweep, with predictions and summaries.

    Attributes:
      config: the configuration (architecture, batch, seeds, dtype, devices, chunk size, ...),
        a :class:`SweepConfig` (a mapping is converted; unknown keys are refused).
      per_seed: ``{init label: {quantity: array (seeds, layers)}}``; ``"act.sample"`` holds
        ``(seeds, layers, k)`` activation values for histograms.
      predicted: ``{init label: {quantity: array (layers,)}}`` (``None`` when theory does not
        apply; the reason is in ``notes``).
      notes: ``{init label: str}``, e.g. why there is no prediction.
      specs: ``{init label: repr of the initialiser}``.
      compile_seconds: wall time spent tracing and compiling (one program for all the
        initialisers of a sweep; see :func:`sweep`).
      run_seconds: wall time spent running the compiled program and copying results to the
        host, for all initialisers (the sweep's total is the sum of the two).
    """

    config: SweepConfig
    per_seed: dict[str, dict[str, np.ndarray]]
    predicted: dict[str, dict[str, np.ndarray] | None]
    notes: dict[str, str] = dataclasses.field(default_factory=dict)
    specs: dict[str, str] = dataclasses.field(default_factory=dict)
    compile_seconds: float = math.nan
    run_seconds: float = math.nan

    def __post_init__(self) -> None:
        self.config = SweepConfig.from_mapping(self.config, "`jinit.SweepResult`'s `config`")

    @property
    def judged(self) -> dict[str, str]:
        """What the verdicts judge: ``{"forward", "backward", "std", "what"}`` (see
        :meth:`jinit.sweeps._network_base.Network.judged`): the activation of a plain stack, the
        residual stream of a residual one."""
        return dict(self.config.get("judged") or JUDGE_ACTIVATION)

    @property
    def gradients(self) -> bool:
        """Whether the gradient quantities were measured (``sweep(gradients=True)``)."""
        return self.config.get("gradients", True) is not False

    @property
    def layer_names(self) -> list[str]:
        """One name per layer: the module path for Flax models (``"Block_0/Dense_1"``; a
        module called twice gets ``"#1"`` on its second call), ``"layer l"`` otherwise."""
        names = self.config.get("layer_names")
        return list(names) if names else [f"layer {j + 1}" for j in range(self.n_layers)]

    @property
    def labels(self) -> list[str]:
        return list(self.per_seed)

    @property
    def n_layers(self) -> int:
        return int(self.config["layers"])

    @property
    def n_seeds(self) -> int:
        return int(self.config["seeds"])

    def quantities(self, label: str) -> list[str]:
        """The per-layer quantities recorded for ``label`` (keys of :meth:`summary`)."""
        return [q for q in self.per_seed[label] if q not in ("act.sample", "units")]

    def summary(self, label: str, quantity: str) -> Summary:
        """Across-seed :class:`Summary` of ``quantity`` for initialiser ``label``."""
        try:
            data = self.per_seed[label][quantity]
        except KeyError:
            hint = (
                " This sweep ran forward only (`gradients=False`): run it with "
                "`gradients=True` to measure gradients."
                if self.config.get("gradients") is False and quantity.startswith(_GRADIENT_PREFIXES)
                else ""
            )
            raise KeyError(
                f"`SweepResult.summary` has no {quantity!r} for {label!r}; labels are "
                f"{self.labels}, quantities "
                f"{self.quantities(label) if label in self.per_seed else []}.{hint}"
            ) from None
        return summarise(data)

    def prediction(self, label: str, quantity: str) -> np.ndarray:
        """The predicted ``quantity`` per layer (NaN where there is no prediction)."""
        pred = self.predicted.get(label)
        if pred is None or quantity not in pred:
            return np.full(self.n_layers, np.nan)
        return np.asarray(pred[quantity], np.float64)

    def nonfinite_seeds(self, label: str, which: str = "any") -> np.ndarray:
        """Per layer, how many seeds produced a non-finite value (inf/NaN) at that layer.

        Args:
          label: the initialiser.
          which: ``"forward"`` (pre-activations and activations), ``"backward"`` (gradients)
            or ``"any"``.
        """
        d = self.per_seed[label]
        fwd = d["nonfinite"] > 0
        for q in ("preact.second_moment", "act.second_moment"):
            fwd |= ~np.isfinite(d[q])
        bwd = d["grad.nonfinite"] > 0 if "grad.nonfinite" in d else np.zeros_like(fwd)
        if "grad.second_moment" in d:  # absent from a forward-only sweep (gradients=False)
            bwd |= ~np.isfinite(d["grad.second_moment"])
        bad = {"forward": fwd, "backward": bwd, "any": fwd | bwd}[which]
        return bad.sum(axis=0).astype(np.int64)

    def identical_units(self, label: str) -> np.ndarray:
        """Per layer: True when every seed has fewer distinct units than units (broken symmetry
        was never broken: zero or constant initialisation)."""
        d = self.per_seed[label]["distinct_units"]
        units = self.config.get("units")
        if units is None:  # Flax models: per-layer unit counts recorded with the statistics
            units = self.per_seed[label]["units"]
        return np.all(d < units, axis=0)

    def verdicts(self, label: str, low: float | None = None, high: float | None = None):
        r"""Per layer ``"vanishing"``, ``"stable"`` or ``"exploding"``.

        The seed mean of the judged second moment (:attr:`judged`: the activation
        :math:`\mathbb E[\varphi(h^l)^2]` of a plain stack, the residual stream
        :math:`\mathbb E[(x^l)^2]` of a residual one), relative to the input second moment, is
        compared with ``[low, high]`` (defaults ``config["stable_band"]``, i.e. 0.1 and 10: the
        std within a factor ~3.2); a layer with non-finite values is ``"exploding"``.
        """
        lo, hi = self.config.get("stable_band", (0.1, 10.0))
        lo = lo if low is None else low
        hi = hi if high is None else high
        ratio = (
            self.summary(label, self.judged["forward"]).mean / self.config["input_second_moment"]
        )
        bad = self.nonfinite_seeds(label, "forward")
        out = []
        for j in range(self.n_layers):
            if bad[j] > 0 or not np.isfinite(ratio[j]) or ratio[j] > hi:
                out.append("exploding")
            elif ratio[j] < lo:
                out.append("vanishing")
            else:
                out.append("stable")
        return out

    # -- export ---------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict (non-finite numbers become ``None``; counts say how many)."""
        inits = [self._init_dict(label) for label in self.labels]
        timing = {
            "compile_seconds": _json_float(self.compile_seconds),
            "run_seconds": _json_float(self.run_seconds),
        }
        return {"config": _jsonable(self.config), "timing": timing, "initializers": inits}

    def _init_dict(self, label: str) -> dict[str, Any]:
        """The :meth:`to_dict` entry of initialiser ``label``: its spec, note and layers."""
        summ = {q: self.summary(label, q) for q in self.quantities(label)}
        bad = self.nonfinite_seeds(label, "forward")
        bad_grad = self.nonfinite_seeds(label, "backward")
        ident = self.identical_units(label)
        verdicts = self.verdicts(label)
        names = self.layer_names
        layers = []
        for j in range(self.n_layers):
            layers.append(
                {
                    "layer": j + 1,
                    "name": names[j],
                    "measured": _measured_dict(summ, j, int(bad[j]), int(bad_grad[j])),
                    "predicted": self._predicted_dict(label, j),
                    "verdict": verdicts[j],
                    "identical_units": bool(ident[j]),
                }
            )
        return {
            "name": label,
            "initializer": self.specs.get(label, label),
            "note": self.notes.get(label, ""),
            "layers": layers,
        }

    def _predicted_dict(self, label: str, j: int) -> dict[str, float | None] | None:
        """The predictions at layer ``j`` under their JSON names (None without a prediction)."""
        if self.predicted.get(label) is None:
            return None
        return {k: _json_float(self.prediction(label, q)[j]) for k, q in _PREDICTED_JSON.items()}

    def to_json(self, path: str | os.PathLike) -> None:
        """Writes :meth:`to_dict` as JSON (strict: no NaN/Infinity tokens), atomically.

        The file is written to a temporary file beside ``path`` and moved over it when complete
        (:func:`jinit._core._atomic.atomic_file`): an interrupt never leaves a partial file. The
        config gets a ``run_id`` (kept if present), which :meth:`to_csv` and the figures of
        :mod:`jinit.plot` write too, so files of one result can be matched.

        Raises:
          TypeError: ``path`` is not a str or os.PathLike.
          ValueError: ``path`` is a folder, or its folder does not exist.
          PermissionError: its folder is not writable.
        """
        target = check_file_target(path, "`jinit.SweepResult.to_json`")
        ensure_run_id(self.config)
        text = json.dumps(self.to_dict(), indent=1, allow_nan=False) + "\n"
        with atomic_file(target) as f:
            f.write(text)

    def to_csv(self, path: str | os.PathLike) -> None:
        """Writes one row per (initialiser, layer, quantity): the summary and the prediction.

        Columns: ``init, layer, layer_name, quantity, mean, se, q05, q50, q95, finite_seeds,
        nonfinite_seeds, predicted, run_id`` (``layer_name`` as in :attr:`layer_names`,
        ``run_id`` as in :meth:`to_json`). Written atomically, like :meth:`to_json`, with the
        same errors.
        """
        target = check_file_target(path, "`jinit.SweepResult.to_csv`", example="results.csv")
        run_id = ensure_run_id(self.config)
        cols = ["init", "layer", "layer_name", "quantity", "mean", "se", "q05", "q50", "q95"]
        cols += ["finite_seeds", "nonfinite_seeds", "predicted", "run_id"]
        rows = []
        names = self.layer_names
        for label in self.labels:
            bad_f = self.nonfinite_seeds(label, "forward")
            bad_b = self.nonfinite_seeds(label, "backward")
            for q in self.quantities(label):
                if q.endswith("nonfinite"):
                    continue
                bad = bad_b if q.startswith(("grad", "param_grad")) else bad_f
                s = self.summary(label, q)
                pred = self.prediction(label, q)
                for j in range(self.n_layers):
                    vals = [s.mean[j], s.se[j], s.q05[j], s.q50[j], s.q95[j]]
                    rows.append(
                        [label, j + 1, names[j], q, *(_csv_float(v) for v in vals)]
                        + [int(s.n_finite[j]), int(bad[j]), _csv_float(pred[j]), run_id]
                    )
        with atomic_file(target, newline="") as f:
            w = csv.writer(f)
            w.writerow(cols)
            w.writerows(rows)

    def __repr__(self) -> str:
        return (
            f"SweepResult({self.config.get('network', '?')}, inits={self.labels}, "
            f"seeds={self.n_seeds}, layers={self.n_layers})"
        )


# the quantities of the backward pass (absent from a forward-only sweep)
_GRADIENT_PREFIXES = ("grad.", "grad_output.", "param_grad_norm.")

# the predicted quantities of `SweepResult.to_dict`: {JSON name: quantity}
_PREDICTED_JSON = {
    "second_moment": "act.second_moment",
    "std": "act.std",
    "mean": "act.mean",
    "preact_second_moment": "preact.second_moment",
    "preact_std": "preact.std",
    "output_second_moment": "output.second_moment",
    "output_std": "output.std",
    "grad_second_moment": "grad.second_moment",
    "fluctuation": "fluctuation",
    "preact_fluctuation": "preact.fluctuation",
    "grad_fluctuation": "grad.fluctuation",
}


def _measured_dict(summ: dict[str, Summary], j: int, bad: int, bad_grad: int) -> dict[str, Any]:
    """The measured summaries at layer ``j`` for :meth:`SweepResult.to_dict`."""
    return {
        "second_moment": _summary_dict(summ["act.second_moment"], j),
        "std": _summary_dict(summ["act.std"], j),
        "mean": _summary_dict(summ["act.mean"], j),
        "preact_second_moment": _summary_dict(summ["preact.second_moment"], j),
        "preact_std": _summary_dict(summ["preact.std"], j),
        "output_second_moment": _summary_dict(summ["output.second_moment"], j),
        **({"output_std": _summary_dict(summ["output.std"], j)} if "output.std" in summ else {}),
        **(_grad_dict(summ, j) if "grad.second_moment" in summ else {}),
        "dead_fraction": _summary_dict(summ["dead_fraction"], j),
        "distinct_units": _summary_dict(summ["distinct_units"], j),
        **(
            {
                "param_grad_norm": {
                    q.split(".", 1)[1]: _summary_dict(summ[q], j)
                    for q in summ
                    if q.startswith("param_grad_norm.")
                }
            }
            if "grad.second_moment" in summ
            else {}
        ),
        "nonfinite_seeds": bad,
        **({"grad_nonfinite_seeds": bad_grad} if "grad.second_moment" in summ else {}),
        "finite_seeds": int(summ["act.second_moment"].n_finite[j]),
    }


def _grad_dict(summ: dict[str, Summary], j: int) -> dict[str, Any]:
    """The gradient summaries at layer ``j`` (sweeps run with ``gradients=True``)."""
    return {
        "grad_second_moment": _summary_dict(summ["grad.second_moment"], j),
        "grad_output_second_moment": _summary_dict(summ["grad_output.second_moment"], j),
    }


def _csv_float(x) -> str:
    x = float(x)
    return (
        repr(x) if math.isfinite(x) else ("nan" if math.isnan(x) else ("inf" if x > 0 else "-inf"))
    )


def _jsonable(x):
    if isinstance(x, Mapping):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        return _json_float(x)
    if isinstance(x, (str, int, bool)) or x is None:
        return x
    return str(x)
