r"""Propagation sweeps: measured vs predicted activation and gradient statistics over seeds.

A sweep draws, for every seed, fresh parameters and a fresh input batch, runs the network
forward and backward, and records per layer :math:`l`:

* pre-activation :math:`h^l` and activation :math:`a^l=\varphi(h^l)`: second moment, mean, std;
* the fraction of dead units (activation zero on every example of the batch) and the number of
  distinct units (a zero or constant initialisation makes every unit compute the same function:
  the symmetry that random initialisation exists to break);
* the layer output :math:`x^l` (the residual stream of a residual stack): second moment, mean,
  std;
* the per-unit second moment of :math:`g^l = \partial\mathcal L/\partial h^l` for the probe
  loss :math:`\mathcal L = \langle v, y\rangle` (below), the second moment of
  :math:`\partial\mathcal L/\partial x^l`, and the Frobenius norm of the gradient of every
  parameter;
* the number of non-finite entries (an exploding initialisation is reported, never a crash).

Gradient normalisation. The probe loss is :math:`\mathcal L = \langle v, y\rangle =
\sum_i v_i y_i` with :math:`v\sim\mathcal N(0, I)` drawn per seed, independent of the network,
on one tensor :math:`y`: the last pre-activation :math:`h^L` for plain stacks (the convention of
:func:`jinit.theory.predict_mlp`), the network output :math:`x^L` for the transformer (the
residual stream after the last block), the model output for Flax models. Then
:math:`\partial\mathcal L/\partial y = v`, so the reported per-unit second moment is
:math:`\mathbb E[v_i^2] = 1` exactly at :math:`y`: every gradient figure is the factor by which
the backward pass has amplified (> 1) or attenuated (< 1) a unit-variance error signal between
the output and that tensor. For a linear map :math:`y = xW` (fan-in :math:`n_{in}`, fan-out
:math:`n_{out}`), :math:`\mathbb E[(\partial\mathcal L/\partial x_j)^2] = n_{out}\mathrm{Var}
(W)`, e.g. 1 for LeCun-in with square layers. No quantity is rescaled per layer. Putting
:math:`\mathcal L` on :math:`h^L` of a transformer (inside the last block's MLP) would make the
last row 1 and every earlier row :math:`\approx n_{out}\mathrm{Var}(W_2)\,\mathbb E[\varphi'^2]`
(:math:`\sim 10^{-3}` for :math:`\mathcal N(0, 0.02^2)`): a cliff that says where the loss sits,
not how gradients propagate; hence the loss on the stream.

The names are listed in :data:`QUANTITIES`. The per-seed function is
``jax.jit(jax.vmap(...))``-compiled once per initialiser, run over chunks of seeds (memory does
not grow with the seed count) and sharded over the seed axis across devices, including the
devices of other processes under ``jax.distributed``. Seed ``s`` always uses the key
``fold_in(key(seed), s)``, so the statistics do not depend on the chunk size, the device count or
the process count beyond float rounding.

Built-in architectures (:mod:`jinit.sweeps._networks`) scan over depth and draw each layer's
weights from its key inside the scan; the backward pass (a reverse scan of per-layer VJPs)
reuses them when a layer's parameters are no bigger than its saved activations (drawing is a
quarter of a sweep's CPU time with threefry) and otherwise draws them again, so a wide network
with a small batch is never held whole. Flax models (:func:`linen_model`, :func:`nnx_model`) are
run whole.

References:
  Poole et al., "Exponential expressivity in deep neural networks through transient chaos", 2016.
  Schoenholz et al., "Deep Information Propagation", 2017.
  Hanin & Nica, "Products of Many Large Random Matrices and Gradients in Deep Neural Networks",
  2019.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from jinit._core import _output as output
from jinit._core._checks import check_int, check_real
from jinit._core._seeds import SeedPlan, check_devices, root_key
from jinit.initializers._basic import zeros
from jinit.sweeps._flax_models import FlaxModel
from jinit.sweeps._networks import Network, SweepModel, weight_law_moments
from jinit.sweeps._statistics import (
    JUDGE_ACTIVATION,
    builtin_seed_fn,
    keeps_params,
    probe_builtin,
    saved_bytes_of,
    stat_dtype,
)
from jinit.theory._predict import predict_mlp

_DEFAULT_BUDGET = 512 * 2**20  # bytes of saved activations per compiled chunk
_MAX_CHUNK = 64

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
      >>> from jinit.sweeps._propagate import summarise
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
      config: the configuration (architecture, batch, seeds, dtype, devices, chunk size, ...).
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

    config: dict[str, Any]
    per_seed: dict[str, dict[str, np.ndarray]]
    predicted: dict[str, dict[str, np.ndarray] | None]
    notes: dict[str, str] = dataclasses.field(default_factory=dict)
    specs: dict[str, str] = dataclasses.field(default_factory=dict)
    compile_seconds: float = math.nan
    run_seconds: float = math.nan

    @property
    def judged(self) -> dict[str, str]:
        """What the verdicts judge: ``{"forward", "backward", "std", "what"}`` (see
        :meth:`jinit.sweeps._networks.Network.judged`): the activation of a plain stack, the
        residual stream of a residual one."""
        return dict(self.config.get("judged") or JUDGE_ACTIVATION)

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
            raise KeyError(
                f"`SweepResult.summary` has no {quantity!r} for {label!r}; labels are "
                f"{self.labels}, quantities "
                f"{self.quantities(label) if label in self.per_seed else []}."
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
        inits = []
        for label in self.labels:
            d = self.per_seed[label]
            summ = {q: self.summary(label, q) for q in self.quantities(label)}
            bad = self.nonfinite_seeds(label, "forward")
            bad_grad = self.nonfinite_seeds(label, "backward")
            ident = self.identical_units(label)
            verdicts = self.verdicts(label)
            names = self.layer_names
            layers = []
            for j in range(self.n_layers):
                measured = {
                    "second_moment": _summary_dict(summ["act.second_moment"], j),
                    "std": _summary_dict(summ["act.std"], j),
                    "mean": _summary_dict(summ["act.mean"], j),
                    "preact_second_moment": _summary_dict(summ["preact.second_moment"], j),
                    "preact_std": _summary_dict(summ["preact.std"], j),
                    "output_second_moment": _summary_dict(summ["output.second_moment"], j),
                    **(
                        {"output_std": _summary_dict(summ["output.std"], j)}
                        if "output.std" in summ
                        else {}
                    ),
                    "grad_second_moment": _summary_dict(summ["grad.second_moment"], j),
                    "grad_output_second_moment": _summary_dict(
                        summ["grad_output.second_moment"], j
                    ),
                    "dead_fraction": _summary_dict(summ["dead_fraction"], j),
                    "distinct_units": _summary_dict(summ["distinct_units"], j),
                    "param_grad_norm": {
                        q.split(".", 1)[1]: _summary_dict(summ[q], j)
                        for q in summ
                        if q.startswith("param_grad_norm.")
                    },
                    "nonfinite_seeds": int(bad[j]),
                    "grad_nonfinite_seeds": int(bad_grad[j]),
                    "finite_seeds": int(summ["act.second_moment"].n_finite[j]),
                }
                pred = {
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
                predicted = (
                    {k: _json_float(self.prediction(label, q)[j]) for k, q in pred.items()}
                    if self.predicted.get(label) is not None
                    else None
                )
                layers.append(
                    {
                        "layer": j + 1,
                        "name": names[j],
                        "measured": measured,
                        "predicted": predicted,
                        "verdict": verdicts[j],
                        "identical_units": bool(ident[j]),
                    }
                )
            del d
            inits.append(
                {
                    "name": label,
                    "initializer": self.specs.get(label, label),
                    "note": self.notes.get(label, ""),
                    "layers": layers,
                }
            )
        timing = {
            "compile_seconds": _json_float(self.compile_seconds),
            "run_seconds": _json_float(self.run_seconds),
        }
        return {"config": _jsonable(self.config), "timing": timing, "initializers": inits}

    def to_json(self, path: str | os.PathLike) -> None:
        """Writes :meth:`to_dict` as JSON (strict: no NaN/Infinity tokens), atomically.

        The file is written to a temporary file beside ``path`` and moved over it when complete
        (:func:`jinit._core._output.atomic_file`): an interrupt never leaves a partial file. The
        config gets a ``run_id`` (kept if present), which :meth:`to_csv` and the figures of
        :mod:`jinit.plot` write too, so files of one result can be matched.

        Raises:
          TypeError: ``path`` is not a str or os.PathLike.
          ValueError: ``path`` is a folder, or its folder does not exist.
          PermissionError: its folder is not writable.
        """
        target = output.check_file_target(path, "`jinit.SweepResult.to_json`")
        output.ensure_run_id(self.config)
        text = json.dumps(self.to_dict(), indent=1, allow_nan=False) + "\n"
        with output.atomic_file(target) as f:
            f.write(text)

    def to_csv(self, path: str | os.PathLike) -> None:
        """Writes one row per (initialiser, layer, quantity): the summary and the prediction.

        Columns: ``init, layer, layer_name, quantity, mean, se, q05, q50, q95, finite_seeds,
        nonfinite_seeds, predicted, run_id`` (``layer_name`` as in :attr:`layer_names`,
        ``run_id`` as in :meth:`to_json`). Written atomically, like :meth:`to_json`, with the
        same errors.
        """
        target = output.check_file_target(path, "`jinit.SweepResult.to_csv`", example="results.csv")
        run_id = output.ensure_run_id(self.config)
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
        with output.atomic_file(target, newline="") as f:
            w = csv.writer(f)
            w.writerow(cols)
            w.writerows(rows)

    def __repr__(self) -> str:
        return (
            f"SweepResult({self.config.get('network', '?')}, inits={self.labels}, "
            f"seeds={self.n_seeds}, layers={self.n_layers})"
        )


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


# ---------------------------------------------------------------------------------------------
# Theory
# ---------------------------------------------------------------------------------------------


def predict(network, init, bias_init=None, *, dtype=None, input_second_moment: float = 1.0):
    """Mean-field prediction for ``network`` initialised by ``init`` (weights) and ``bias_init``.

    Reads each layer's weight variance from ``jinit.law(init, shape)`` (estimated from a draw for
    other callables) and calls :func:`jinit.theory.predict_mlp`.

    Returns:
      ``(prediction, note)``: a dict of per-layer arrays (``preact.second_moment``,
      ``act.second_moment``, ``act.mean``, ``act.std``, ``preact.std``, ``grad.second_moment``,
      ``fluctuation``), or ``None`` with the reason in ``note``.
    """
    api = "predict"
    if not isinstance(network, SweepModel):
        raise TypeError(
            f"`{api}` needs `network` to be a built-in architecture such as `jinit.mlp(...)`; "
            f"got {network!r} of type {type(network).__name__}."
        )
    check_callable(api, "init", init, "a `(key, shape, dtype)` initialiser", optional=False)
    check_callable(api, "bias_init", bias_init, "None or a `(key, shape, dtype)` initialiser")
    if dtype is not None:
        dtype = check_float_dtype(api, dtype)
    input_second_moment = check_real(api, "input_second_moment", input_second_moment, positive=True)
    bias_init = zeros if bias_init is None else bias_init
    ti = network.theory_inputs()
    if ti is None:
        return None, network.theory_note
    spec = ti.weight
    mean, var, exact = weight_law_moments(init, spec.shape, dtype)
    # exact laws: zero mean up to rounding; estimated: within 6 standard errors of 0
    tol = 1e-6 if exact else 6.0 / math.sqrt(math.prod(spec.shape))
    if abs(mean) <= tol * math.sqrt(max(var, 0.0)):
        mean = 0.0
    if mean != 0:
        return None, "weights are not zero-mean: mean-field theory does not apply"
    n_layers = len(ti.widths) - 1
    bvar = bmean = 0.0
    bias_specs = [s for s in network.param_specs() if s.role == "bias"]
    if bias_specs:
        bmean, bvar, _ = weight_law_moments(bias_init, bias_specs[0].shape, dtype)
    wv = [var * ti.weight_multiplier] * n_layers
    try:
        p = predict_mlp(
            ti.activation,
            wv,
            [bvar] * n_layers,
            tuple(ti.widths),
            input_second_moment,
            residual=ti.residual,
            layernorm=ti.layernorm,
            bias_mean=[bmean] * n_layers,
        )
    except (ValueError, NotImplementedError, TypeError) as e:
        return None, f"no prediction: {e}"
    pre = np.asarray(p.preact_second_moment, np.float64)
    act = np.asarray(p.act_second_moment, np.float64)
    amean = np.asarray(p.act_mean, np.float64)
    out = {
        "preact.second_moment": pre,
        "act.second_moment": act,
        "act.mean": amean,
        "act.std": np.sqrt(np.maximum(act - amean**2, 0.0)),
        "output.second_moment": pre if ti.residual else act,
        "grad.second_moment": np.asarray(p.grad_second_moment, np.float64),
        "fluctuation": np.asarray(p.fluctuation, np.float64),
        "preact.fluctuation": np.asarray(p.preact_fluctuation, np.float64),
        "grad.fluctuation": np.asarray(p.grad_fluctuation, np.float64),
    }
    if not ti.residual:
        out["output.std"] = out["act.std"]
    if bmean == 0:
        out["preact.mean"] = np.zeros_like(pre)
        out["preact.std"] = np.sqrt(np.maximum(pre, 0.0))
        if ti.residual:  # the stream is the pre-activation
            out["output.std"] = out["preact.std"]
    notes = []
    if not exact:
        notes.append("weight variance estimated from a draw")
    if ti.approximate:
        notes.append("approximate (zero padding)")
    return out, "; ".join(notes)


# ---------------------------------------------------------------------------------------------
# The sweep
# ---------------------------------------------------------------------------------------------


def _label(init) -> str:
    r = repr(init)
    return r[len("jinit.") :] if r.startswith("jinit.") else r


def normalize_inits(inits, api: str = "sweep") -> dict[str, Any]:
    """``{label: initializer}`` from a mapping, a sequence or a single initialiser."""
    if isinstance(inits, Mapping):
        out = {str(k): v for k, v in inits.items()}
    elif callable(inits):
        out = {_label(inits): inits}
    elif isinstance(inits, Sequence) and not isinstance(inits, str):
        out = {}
        for v in inits:
            out[_label(v)] = v
    else:
        raise TypeError(
            f"`{api}` needs `inits` to be an initialiser, a sequence of initialisers or a "
            f"mapping name -> initialiser; got {inits!r} of type {type(inits).__name__}. Pass "
            f"e.g. `jinit.he_normal()` or `{{'he': jinit.he_normal()}}`."
        )
    if not out:
        raise ValueError(
            f"`{api}` needs at least one initialiser in `inits`; got none. Pass e.g. "
            f"`jinit.he_normal()`."
        )
    for k, v in out.items():
        if not callable(v):
            raise TypeError(
                f"`{api}` needs every initialiser to be a `(key, shape, dtype)` callable; "
                f"{k!r} is {v!r} of type {type(v).__name__}. Pass e.g. `jinit.he_normal()`."
            )
    return out


# ---------------------------------------------------------------------------------------------
# Argument checks shared with training sweeps (all run before any compile)
# ---------------------------------------------------------------------------------------------

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_MAX_SEEDS = 2**32  # seed indices are folded into the key as uint32


def check_seed(api: str, name: str, value: Any) -> int:
    """An int seed that ``jax.random.key`` accepts (a signed 64-bit integer)."""
    value = check_int(api, name, value)
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise ValueError(
            f"`{api}` needs `{name}` to fit in a signed 64-bit integer (what `jax.random.key` "
            f"takes); got {value}. Pass a seed between {_INT64_MIN} and {_INT64_MAX}."
        )
    return value


def check_callable(api: str, name: str, value: Any, what: str, *, optional: bool = True):
    """``value`` unchanged if callable (or ``None`` when ``optional``); else a TypeError."""
    if (value is None and optional) or callable(value):
        return value
    raise TypeError(
        f"`{api}` needs `{name}` to be {what}; got {value!r} of type {type(value).__name__}."
    )


def check_float_dtype(api: str, dtype: Any) -> np.dtype:
    """A real floating dtype that JAX has enabled, at least 16 bits wide (default float32)."""
    if dtype is None:
        return np.dtype(jnp.float32)
    try:
        dt = np.dtype(jnp.dtype(dtype))
    except TypeError:
        raise TypeError(
            f"`{api}` needs `dtype` to be a floating dtype such as `jnp.float32`; got "
            f"{dtype!r}, which is not a dtype. Use float32, bfloat16, float16 or float64."
        ) from None
    if not jnp.issubdtype(dt, jnp.floating):
        raise TypeError(
            f"`{api}` needs a real floating `dtype` (the parameters and activations are "
            f"real numbers); got dtype {dt.name}. Use float32, bfloat16, float16 or float64."
        )
    if dt.itemsize < 2:
        raise TypeError(
            f"`{api}` needs a floating `dtype` of at least 16 bits; got dtype {dt.name}, whose "
            f"range and precision cannot carry activations through a network (values overflow "
            f"to NaN or round to 0). Use bfloat16, float16 or float32."
        )
    if np.dtype(jax.dtypes.canonicalize_dtype(dt)) != dt:
        raise ValueError(
            f"`{api}` got `dtype={dt.name}`, which JAX does not enable by default. Run "
            f"`jax.config.update('jax_enable_x64', True)` first (`jinit sweep --dtype float64` "
            f"does it for you)."
        )
    return dt


def check_progress(api: str, progress: Any):
    return check_callable(
        api, "progress", progress, "None or a callable progress(done, total)", optional=True
    )


def fmt_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} PiB"  # pragma: no cover


def host_memory_available() -> int | None:
    """Bytes of host memory available to this process (Linux ``MemAvailable``, else the
    physical memory), or ``None`` when unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


def device_memory_available(devs: Sequence[Any]) -> tuple[int | None, bool]:
    """``(bytes, shared)``: memory one device may use and whether the devices share it (CPU
    devices all live in host memory); ``(None, False)`` when unknown."""
    if devs[0].platform == "cpu":
        return host_memory_available(), True
    try:
        stats = devs[0].memory_stats() or {}
    except Exception:  # a backend without memory statistics
        stats = {}
    limit = stats.get("bytes_limit")
    if limit is None:
        return None, False
    return int(limit) - int(stats.get("bytes_in_use", 0)), False


def check_fits(api: str, need: int, avail: int | None, where: str, detail: str, fix: str) -> None:
    """Refuses, before any work, a run whose estimated memory ``need`` exceeds ``avail``.

    The estimates count only the arrays the run must hold (a lower bound of what XLA uses), so
    a refusal is never a false alarm.
    """
    if avail is not None and need > avail:
        raise ValueError(
            f"`{api}` would need about {fmt_bytes(need)} of {where} memory ({detail}), more "
            f"than the {fmt_bytes(avail)} available. {fix}"
        )


def sweep(
    network,
    inits,
    *,
    seeds: int = 64,
    batch: int | None = None,
    bias_init=None,
    dtype=None,
    seed: int = 0,
    devices=None,
    chunk_size: int | None = None,
    sample_size: int = 256,
    input_second_moment: float = 1.0,
    key_impl: str | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    compiler_options: Mapping[str, Any] | None = None,
) -> SweepResult:
    r"""Measures signal propagation through ``network`` for each initialiser, over seeds.

    For seed :math:`s` the key ``fold_in(key(seed), s)`` draws the parameters (layer :math:`l`
    from ``fold_in(·, l)``, inside a ``lax.scan``), an input batch with i.i.d.
    :math:`\mathcal N(0, \text{input\_second\_moment})` entries and a cotangent
    :math:`v\sim\mathcal N(0, I)` on the last pre-activation. Seeds are processed in chunks by
    ``jax.jit(jax.vmap(per_seed))`` (traced once per initialiser), the seed axis sharded over
    ``devices``. The same keys are used for every initialiser (common random numbers).

    Args:
      network: a built-in architecture (:func:`jinit.mlp`, :func:`jinit.cnn`,
        :func:`jinit.transformer`) or a Flax adapter (:func:`jinit.linen_model`,
        :func:`jinit.nnx_model`).
      inits: an initialiser, a sequence of them, or a mapping ``label -> initialiser`` (any
        ``(key, shape, dtype)`` callable; jinit's carry a law, others have their variance
        estimated from a draw for the prediction).
      seeds: number of seeds.
      batch: examples per seed (default: the architecture's, 1000 for the MLP).
      bias_init: initialiser of the biases (default ``jinit.zeros``).
      dtype: parameter and activation dtype (default float32); statistics are accumulated in
        at least float32.
      seed: the root seed.
      devices: ``None`` (every device of the job: the local ones, or under
        ``jax.distributed`` those of all processes), a count (the first ``n`` local devices) or
        a list. Across processes each one computes its shard of every chunk and receives all
        results (on CPU, set ``jax_cpu_collectives_implementation='gloo'`` before
        ``jax.distributed.initialize``).
      chunk_size: seeds per compiled call (rounded up to a multiple of the device count;
        default: as many as fit in ~512 MiB of saved activations, at most 64, balanced so
        that the chunks are equally filled).
      sample_size: activation values kept per seed and layer (for histograms).
      input_second_moment: second moment of the input entries.
      key_impl: PRNG implementation of the seed keys (default jax's, threefry); ``rbg`` keys
        are refused (under ``vmap`` they do not give per-seed streams).
      progress: optional callback ``progress(label, chunks_done, chunks_total)``, called with
        ``chunks_done=0`` before an initialiser's first (compiling) chunk and after each chunk.
      compiler_options: XLA options of the one compile (``jax.stages.Lowered.compile``), e.g.
        ``{"xla_backend_optimization_level": 0}`` for a big model swept once, where XLA's
        optimisation passes cost more time than they save (results then differ from the
        default compile's in float rounding only).

    All initialisers share ONE compiled program: the network is traced and compiled once, each
    initialiser selected by a traced index (``lax.switch``), so compile time does not grow with
    the number of initialisers. ``SweepResult.compile_seconds`` and ``run_seconds`` report the
    two apart.

    Returns:
      A :class:`SweepResult`.

    Raises:
      ValueError: bad sizes, too many devices, an unknown or rbg key implementation, an
        initialiser that returns the wrong shape, or a run that cannot fit in memory (the
        estimate and the fix are in the message).
      TypeError: an argument of the wrong type, an initialiser that is not callable or returns
        the wrong dtype.

    Every argument is checked, and every initialiser is probed once with ``jax.eval_shape`` on
    the network's real parameter shapes, before anything is compiled.

    Examples:
      >>> import jinit
      >>> from jinit import mlp
      >>> from jinit import sweep
      >>> r = sweep(mlp(64, 3), jinit.he_normal(), seeds=4, batch=32)
      >>> r.summary("he_normal()", "act.second_moment").mean.shape
      (3,)
    """
    plan = prepare_sweep(
        network,
        inits,
        seeds=seeds,
        batch=batch,
        bias_init=bias_init,
        dtype=dtype,
        seed=seed,
        devices=devices,
        chunk_size=chunk_size,
        sample_size=sample_size,
        input_second_moment=input_second_moment,
        key_impl=key_impl,
        progress=progress,
        compiler_options=compiler_options,
    )
    return run_sweep(plan)


@dataclasses.dataclass(frozen=True, eq=False)
class SweepPlan:
    """The checked arguments of :func:`sweep` (made by :func:`prepare_sweep`), ready to run."""

    network: Any
    inits: dict[str, Any]
    seeds: int
    batch: int
    bias_init: Any
    dtype: np.dtype
    seed: int
    devs: list
    chunk_size: int
    n_chunks: int
    sample_size: int
    input_second_moment: float
    root: jax.Array
    progress: Callable[[str, int, int], None] | None
    #: one compiled program for all initialisers (False: one per initialiser, as before; the
    #: two give bit-identical results where XLA blocks the per-seed work the same way)
    one_program: bool = True
    compiler_options: dict[str, Any] | None = None


def prepare_sweep(
    network,
    inits,
    *,
    seeds: int = 64,
    batch: int | None = None,
    bias_init=None,
    dtype=None,
    seed: int = 0,
    devices=None,
    chunk_size: int | None = None,
    sample_size: int = 256,
    input_second_moment: float = 1.0,
    key_impl: str | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    compiler_options: Mapping[str, Any] | None = None,
) -> SweepPlan:
    """Checks every argument of :func:`sweep` (same signature) and probes every initialiser
    abstractly, without compiling anything; :func:`run_sweep` runs the returned plan.

    Raises:
      ValueError, TypeError: as :func:`sweep`.
    """
    # Every argument is checked, and every initialiser probed (abstractly), before any compile.
    api = "sweep"
    is_builtin = isinstance(network, Network)
    if not (is_builtin or isinstance(network, FlaxModel)):
        raise TypeError(
            f"`{api}` needs `network` to be a built-in architecture (`jinit.mlp`, `jinit.cnn`, "
            f"`jinit.transformer`) or a Flax adapter (`jinit.linen_model`, `jinit.nnx_model`); "
            f"got {network!r} of type {type(network).__name__}."
        )
    seeds = check_int(api, "seeds", seeds, minimum=1)
    if seeds > _MAX_SEEDS:
        raise ValueError(
            f"`{api}` needs `seeds` <= 2**32 (seed indices are folded into the key as uint32); "
            f"got {seeds}. Split the work over several `seed` values."
        )
    seed = check_seed(api, "seed", seed)
    batch = network.default_batch() if batch is None else check_int(api, "batch", batch, minimum=1)
    if chunk_size is not None:
        chunk_size = check_int(api, "chunk_size", chunk_size, minimum=1)
    sample_size = check_int(api, "sample_size", sample_size, minimum=1)
    input_second_moment = check_real(api, "input_second_moment", input_second_moment, positive=True)
    dtype = check_float_dtype(api, dtype)
    if bias_init is not None and not is_builtin:
        raise ValueError(
            f"`{api}` got `bias_init={bias_init!r}` for the {network.describe()}, whose biases "
            f"come from the model's own `bias_init`; it would be ignored. Drop `bias_init`, or "
            f"pass the initialiser to the model's layers in `build`."
        )
    bias_init = zeros if bias_init is None else bias_init
    check_callable(
        api, "bias_init", bias_init, "a `(key, shape, dtype)` initialiser such as `jinit.zeros`"
    )
    inits = normalize_inits(inits, api)
    check_progress(api, progress)
    devs = check_devices(api, devices)
    n_dev = len(devs)
    # the root key lives on the sweep's own seed mesh, whatever mesh the caller has set
    with _own_mesh(Mesh(np.array(devs), ("seeds",))):
        root = root_key(api, seed, key_impl)

    sdt = stat_dtype(dtype)
    if is_builtin:
        probe_builtin(api, network, inits, bias_init, dtype, root)
        per_seed = saved_bytes_of(network, batch, dtype)
        n_values = min(sample_size, batch * math.prod(network.input_shape()))
        per_layer_out = (15 + len(network.param_specs())) * sdt.itemsize + 4 * n_values
        out_bytes = network.depth * per_layer_out
    else:
        with _own_mesh(Mesh(np.array(devs), ("seeds",))):
            network.check_input(api, batch, dtype, root)
            per_seed = network.saved_bytes(batch, dtype)
            out_bytes = network.probe_all(api, inits, batch, dtype, sample_size, root)
    avail, shared = device_memory_available(devs)
    where = "host" if shared else f"{devs[0].platform} device"
    check_fits(
        api,
        per_seed,
        avail,
        where,
        f"one seed's saved activations with batch={batch}",
        "Lower `batch`" + ("." if shared else " or use a device with more memory."),
    )
    if chunk_size is not None:
        per_call = -(-chunk_size // (1 if shared else n_dev)) * per_seed
        fits = max(1, (avail or 0) // max(per_seed, 1)) * (1 if shared else n_dev)
        check_fits(
            api,
            per_call,
            avail,
            where,
            f"chunk_size={chunk_size} seeds × {fmt_bytes(per_seed)} each"
            + ("" if shared else f" over {n_dev} devices"),
            f"Pass `chunk_size={fits}` or less, or leave it None to size chunks to memory.",
        )
    check_fits(
        api,
        seeds * out_bytes * (len(inits) + 1),
        host_memory_available(),
        "host",
        f"the per-seed results of {seeds} seeds × {len(inits)} initialiser(s), "
        f"{fmt_bytes(out_bytes)} each with sample_size={sample_size}",
        "Use fewer `seeds` (or a smaller `sample_size`) per call and pool the results.",
    )

    if chunk_size is None:
        chunk_size = max(1, min(_MAX_CHUNK, _DEFAULT_BUDGET // max(per_seed, 1)))
        chunk_size = min(chunk_size, seeds)
        # balanced chunks: as few chunks as the budget allows, equally filled (70 seeds run as
        # 2 x 35, not 64 + 64 with 58 padding seeds)
        chunk_size = -(-seeds // -(-seeds // chunk_size))
    engine = SeedPlan.create(devs, seeds, chunk_size)
    chunk_size, n_chunks = engine.chunk, engine.n_chunks

    return SweepPlan(
        network,
        inits,
        seeds,
        batch,
        bias_init,
        dtype,
        seed,
        devs,
        chunk_size,
        n_chunks,
        sample_size,
        input_second_moment,
        root,
        progress,
        compiler_options=_check_compiler_options(api, compiler_options),
    )


def _switch_init(fns: list, which: list) -> Callable[..., Any]:
    """One initialiser that draws with ``fns[which[0]]``; ``which[0]`` is a traced int32 set
    before tracing. With one initialiser it is that initialiser's own call (no conditional);
    otherwise a ``lax.switch`` whose branches are the initialisers, so one compiled program
    serves them all (the index is not batched under ``vmap``: the switch stays a conditional)."""

    def init(key, shape, dtype=jnp.float32, *args, **kwargs):
        if len(fns) == 1:
            return fns[0](key, shape, dtype, *args, **kwargs)
        branches = [(lambda k, f=f: f(k, shape, dtype, *args, **kwargs)) for f in fns]
        return jax.lax.switch(which[0], branches, key)

    return init


def run_sweep(plan: SweepPlan, progress: Callable[[str, int, int], None] | None = None):
    """Runs a :class:`SweepPlan` from :func:`prepare_sweep`; ``progress`` (if given) replaces
    the plan's callback. Returns the :class:`SweepResult`.

    All initialisers run through ONE compiled program: the per-seed function takes the
    initialiser's index as a traced (unbatched) argument and draws every parameter through a
    ``lax.switch`` over the initialisers (:func:`_switch_init`), so the network is traced and
    compiled once whatever the number of initialisers. The compile time and the run time are
    measured apart (``SweepResult.compile_seconds``, ``run_seconds``).
    """
    progress = check_progress("run_sweep", progress) or plan.progress
    network, inits, seeds, batch = plan.network, plan.inits, plan.seeds, plan.batch
    bias_init, dtype, seed, devs = plan.bias_init, plan.dtype, plan.seed, plan.devs
    chunk_size, n_chunks, sample_size = plan.chunk_size, plan.n_chunks, plan.sample_size
    input_second_moment, root, n_dev = plan.input_second_moment, plan.root, len(plan.devs)
    engine = SeedPlan.create(devs, seeds, chunk_size)
    mesh, sharding, replicated = engine.mesh, engine.sharding, engine.replicated
    labels = list(inits)
    groups = [labels] if plan.one_program else [[label] for label in labels]

    per_seed_out: dict[str, dict[str, np.ndarray]] = {}
    predicted: dict[str, dict[str, np.ndarray] | None] = {}
    notes: dict[str, str] = {}
    traces: dict[str, int] = {}
    specs: dict[str, str] = {}
    layer_names: list[tuple[str, ...]] = []
    compile_s = run_s = 0.0
    with _own_mesh(mesh):
        for group in groups:
            counter = [0]
            which: list[Any] = [None]
            init = _switch_init([inits[label] for label in group], which)
            if isinstance(network, Network):
                fn0 = builtin_seed_fn(
                    network,
                    init,
                    bias_init,
                    batch,
                    dtype,
                    sample_size,
                    input_second_moment,
                    root,
                    counter,
                    keep_params=keeps_params(network, batch, dtype),
                )
            else:
                names: list[tuple[str, ...]] = []
                fn0 = network.seed_fn(
                    init,
                    bias_init,
                    batch,
                    dtype,
                    sample_size,
                    input_second_moment,
                    root,
                    counter,
                    names_out=names,
                )

            def fn(idx, w, fn0=fn0, which=which):
                which[0] = w
                return fn0(idx)

            jitted = jax.jit(
                jax.vmap(fn, in_axes=(0, None)),
                in_shardings=(sharding, replicated),
                out_shardings=sharding,
            )
            if progress is not None:
                progress(group[0], 0, n_chunks)  # the first initialiser's call also compiles
            t0 = time.perf_counter()
            compiled = jitted.lower(
                jax.ShapeDtypeStruct((chunk_size,), jnp.uint32, sharding=sharding),
                jax.ShapeDtypeStruct((), jnp.int32, sharding=replicated),
            ).compile(compiler_options=plan.compiler_options)
            compile_s += time.perf_counter() - t0
            if not isinstance(network, Network):
                layer_names = names
            for i, label in enumerate(group):
                t0 = time.perf_counter()
                w = engine.put_replicated(np.asarray(i, np.int32))
                chunks: list[dict[str, np.ndarray]] = []
                if progress is not None and i > 0:
                    progress(label, 0, n_chunks)
                for c, block in enumerate(engine.blocks()):
                    out = engine.fetch(compiled(engine.put(block.index), w), block.valid)
                    chunks.append(out)
                    if progress is not None:
                        progress(label, c + 1, n_chunks)
                per_seed_out[label] = {
                    k: np.concatenate([ch[k] for ch in chunks]) for k in chunks[0]
                }
                run_s += time.perf_counter() - t0
                traces[label] = counter[0]
    for label, init in inits.items():
        specs[label] = repr(init)
        pred, note = predict(
            network, init, bias_init, dtype=dtype, input_second_moment=input_second_moment
        )
        predicted[label] = pred
        notes[label] = note

    first = next(iter(per_seed_out.values()))
    n_layers = first["act.second_moment"].shape[1]
    units = network.units()
    config = {
        "network": network.describe(),
        "architecture": network.config(),
        "layers": n_layers,
        "units": units,
        "batch": batch,
        "seeds": seeds,
        "seed": seed,
        "dtype": dtype.name,
        "devices": n_dev,
        "platform": devs[0].platform,
        "processes": len({d.process_index for d in devs}),
        "chunk_size": chunk_size,
        "chunks": n_chunks,
        "input_second_moment": input_second_moment,
        "bias_init": repr(bias_init),
        "key_impl": str(jax.random.key_impl(root)),
        "loss": network.loss_description(),
        "judged": network.judged(),
        "stable_band": (0.1, 10.0),
        "traces": traces,
        "compiled_programs": len(groups),
    }
    if layer_names:
        config["layer_names"] = ["/".join(n) for n in layer_names]
    return SweepResult(
        config,
        per_seed_out,
        predicted,
        notes,
        specs,
        compile_seconds=compile_s,
        run_seconds=run_s,
    )


# ---------------------------------------------------------------------------------------------
# Assertions (re-exported in jinit.testing)
# ---------------------------------------------------------------------------------------------


def _check_result(api: str, result: Any) -> SweepResult:
    if not isinstance(result, SweepResult):
        raise TypeError(
            f"`{api}` needs `result` to be the `SweepResult` that `jinit.sweep` returns; got "
            f"{result!r:.80} of type {type(result).__name__}."
        )
    return result


def _select(api: str, result: SweepResult, inits) -> list[str]:
    if inits is None:
        return result.labels
    if isinstance(inits, str):
        labels = [inits]
    elif isinstance(inits, Sequence) and all(isinstance(x, str) for x in inits):
        labels = list(inits)
    else:
        raise TypeError(
            f"`{api}` needs `inits` to be None, a label or a list of labels (str); got "
            f"{inits!r} of type {type(inits).__name__}. The sweep's labels are {result.labels}."
        )
    missing = [x for x in labels if x not in result.per_seed]
    if missing or not labels:
        raise ValueError(
            f"`{api}` got unknown initialiser label(s) {missing} in `inits`; the sweep has "
            f"{result.labels}."
        )
    return labels


def _check_quantity(api: str, name: str, result: SweepResult, quantity: Any) -> str:
    known = sorted({q for label in result.labels for q in result.quantities(label)})
    if not isinstance(quantity, str) or quantity not in known:
        import difflib

        close = difflib.get_close_matches(quantity, known, n=1) if isinstance(quantity, str) else []
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"`{api}` got `{name}={quantity!r}`, which the sweep did not record.{hint} Use one "
            f"of {', '.join(known)}."
        )
    return quantity


def assert_stable_propagation(
    result: SweepResult,
    low: float,
    high: float,
    *,
    quantity: str | None = None,
    inits=None,
) -> None:
    """Asserts every layer's seed-mean ``quantity`` lies in ``[low, high]`` with no inf/NaN.

    Args:
      result: a :class:`SweepResult`.
      low: smallest allowed seed mean (e.g. 0.5 for "at most halved").
      high: largest allowed seed mean.
      quantity: the summarised quantity. Default: what the sweep's verdicts judge
        (``result.judged["forward"]``): the activation second moment of a plain stack, the
        residual stream's (``"output.second_moment"``) of a residual one (:func:`jinit.transformer`,
        a residual :func:`jinit.mlp`), where LayerNorm keeps the activations flat whatever the
        initialisation. Also e.g. ``"preact.second_moment"``, ``"grad.second_moment"``,
        ``"act.std"``.
      inits: a label or labels to check (default all).

    Raises:
      AssertionError: listing every offending initialiser and layer.

    Examples:
      >>> import jinit
      >>> from jinit import mlp
      >>> from jinit.testing import assert_stable_propagation
      >>> from jinit import sweep
      >>> r = sweep(mlp(64, 3), jinit.he_normal(), seeds=4, batch=32)
      >>> assert_stable_propagation(r, 0.5, 2.0)
    """
    api = "assert_stable_propagation"
    result = _check_result(api, result)
    low = check_real(api, "low", low)
    high = check_real(api, "high", high)
    if low > high:
        raise ValueError(
            f"`{api}` needs `low` <= `high`; got low={low:g}, high={high:g}. Swap them."
        )
    if quantity is None:
        quantity = result.judged["forward"]
    quantity = _check_quantity(api, "quantity", result, quantity)
    failures = []
    for label in _select(api, result, inits):
        s = result.summary(label, quantity)
        bad = result.nonfinite_seeds(label)
        for j in range(result.n_layers):
            m = s.mean[j]
            if bad[j]:
                failures.append(f"{label} layer {j + 1}: {bad[j]} seed(s) with inf/NaN")
            elif not (low <= m <= high):
                failures.append(
                    f"{label} layer {j + 1}: {quantity} seed mean {m:.4g} ± {s.se[j]:.2g} (SE) "
                    f"outside [{low:g}, {high:g}]"
                )
    if failures:
        raise AssertionError(
            f"unstable propagation ({len(failures)} layer(s)):\n  " + "\n  ".join(failures)
        )


def _fluctuation_of(quantity: str) -> str:
    head = quantity.split(".", 1)[0]
    return {"preact": "preact.fluctuation", "grad": "grad.fluctuation"}.get(head, "fluctuation")


def assert_matches_theory(
    result: SweepResult,
    *,
    quantities: Sequence[str] = ("preact.second_moment", "act.second_moment", "grad.second_moment"),
    k: float = 6.0,
    bias: float = 1.0,
    inits=None,
) -> None:
    r"""Asserts the measured seed means agree with the mean-field prediction.

    At layer :math:`l` with prediction :math:`p_l`, finite-width fluctuation :math:`f_l`
    (relative std of one seed's value) and seed count :math:`S`, the allowed deviation is

    .. math::
        k\,\max\!\left(\mathrm{SE}_l,\ |p_l|\,f_l/\sqrt S\right) + \mathrm{bias}\cdot f_l^2\,|p_l|,

    the first term the sampling error of the seed mean, the second a bound on the finite-width
    bias of the mean (of the order of the variance, :math:`O(\sum_l 1/n_l)`). The fluctuation is
    the prediction's own, for the pre-activation, the activation or the gradient.

    Args:
      result: a :class:`SweepResult`.
      quantities: which quantities to compare.
      k: number of standard errors allowed.
      bias: multiplier of the finite-width bias term (0 for the sampling error alone).
      inits: a label or labels to check (default: every initialiser with a prediction).

    Raises:
      AssertionError: listing every offending initialiser, layer and quantity; also when
        nothing was predicted (no selected initialiser has a prediction: e.g. a transformer or a
        Flax model, which mean-field theory does not cover), when a named initialiser has no
        prediction, when a requested quantity is predicted at no layer, or when a selected
        initialiser has inf/NaN seeds. Agreement is never asserted vacuously.
    """
    api = "assert_matches_theory"
    result = _check_result(api, result)
    if isinstance(quantities, str):
        quantities = (quantities,)
    if not isinstance(quantities, Sequence) or not quantities:
        raise TypeError(
            f"`{api}` needs `quantities` to be a non-empty list of quantity names such as "
            f"('act.second_moment',); got {quantities!r}."
        )
    quantities = [_check_quantity(api, "quantities", result, q) for q in quantities]
    k = check_real(api, "k", k, positive=True)
    bias = check_real(api, "bias", bias, nonneg=True)
    failures = []
    labels = _select(api, result, inits)
    if inits is None:
        with_pred = [x for x in labels if result.predicted.get(x) is not None]
        if not with_pred:
            why = "; ".join(f"{x}: {result.notes.get(x) or 'no prediction'}" for x in labels)
            raise AssertionError(
                f"`{api}`: nothing was predicted for the {result.config.get('network', '?')}, so "
                f"there is no theory to match ({why}). Use `assert_stable_propagation` to bound "
                f"the statistics instead, or sweep an architecture with a mean-field prediction "
                f"(`jinit.mlp`, `jinit.cnn`)."
            )
        labels = with_pred
    for label in labels:
        if result.predicted.get(label) is None:
            failures.append(f"{label}: no prediction ({result.notes.get(label, '')})")
            continue
        for q in quantities:
            if not np.any(np.isfinite(result.prediction(label, q))):
                failures.append(f"{label} {q}: no prediction at any layer")
                continue
            bad = result.nonfinite_seeds(label, "backward" if q.startswith("grad") else "forward")
            s = result.summary(label, q)
            p = result.prediction(label, q)
            f = np.nan_to_num(result.prediction(label, _fluctuation_of(q)), nan=0.0)
            for j in range(result.n_layers):
                if not np.isfinite(p[j]):
                    continue
                if bad[j]:
                    failures.append(f"{label} layer {j + 1}: {bad[j]} seed(s) with inf/NaN")
                    continue
                n = max(int(s.n_finite[j]), 1)
                se = s.se[j] if np.isfinite(s.se[j]) else 0.0
                tol = k * max(se, abs(p[j]) * f[j] / math.sqrt(n)) + bias * f[j] ** 2 * abs(p[j])
                if not abs(s.mean[j] - p[j]) <= tol:
                    failures.append(
                        f"{label} layer {j + 1} {q}: measured {s.mean[j]:.5g} ± {se:.2g} (SE), "
                        f"predicted {p[j]:.5g}, allowed ±{tol:.2g}"
                    )
    if failures:
        raise AssertionError(
            f"sweep disagrees with theory ({len(failures)} case(s)):\n  " + "\n  ".join(failures)
        )


@contextlib.contextmanager
def _own_mesh(mesh: Mesh | None):
    """The sweep's context: its own 1-D seed mesh instead of any mesh the caller set, and (for
    nnx models) no eager sharding of variables, so a model's sharding annotations, written for
    the caller's mesh, are dropped instead of referring to axes the sweep's mesh lacks."""
    import sys

    with contextlib.ExitStack() as stack:
        if mesh is not None:
            stack.enter_context(jax.set_mesh(mesh))
        if "flax.nnx" in sys.modules:
            from flax import nnx

            stack.enter_context(nnx.use_eager_sharding(False))
        yield


def _check_compiler_options(api: str, options: Any) -> dict[str, Any] | None:
    if options is None:
        return None
    if not isinstance(options, Mapping) or not all(isinstance(k, str) for k in options):
        raise TypeError(
            f"`{api}` needs `compiler_options` to be None or a dict of XLA option names to "
            f"values; got {options!r} of type {type(options).__name__}. Pass e.g. "
            f"`{{'xla_backend_optimization_level': 0}}`."
        )
    return dict(options)
