"""The bridge from a sweep to :mod:`jinit.theory`: :func:`predict` turns a network and its
initialisers into per-layer predictions of the measured quantities."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from jinit._core._checks import check_real
from jinit.initializers._basic import zeros
from jinit.sweeps._flax_models import FlaxModel
from jinit.sweeps._flax_theory import flax_prediction
from jinit.sweeps._network_base import SweepModel
from jinit.sweeps._network_theory import traced_prediction
from jinit.sweeps._networks import settled_mean, weight_law_moments

#: The per-layer quantities of a sweep (``SweepResult.per_seed[label][name]``, shape
#: ``(seeds, layers)``), all computed per seed over the whole batch.
from jinit.sweeps._sweep_checks import check_callable, check_float_dtype
from jinit.theory._predict import predict_mlp

# ---------------------------------------------------------------------------------------------
# Theory
# ---------------------------------------------------------------------------------------------


def predict(
    network,
    init,
    bias_init=None,
    *,
    dtype=None,
    input_second_moment: float = 1.0,
    batch: int | None = None,
):
    """Mean-field prediction for ``network`` initialised by ``init`` (weights) and ``bias_init``.

    For the built-in MLP and CNN: reads each layer's weight variance from
    ``jinit.law(init, shape)`` (estimated from a draw for other callables) and calls
    :func:`jinit.theory.predict_mlp`. For a Flax model (:func:`jinit.linen_model`,
    :func:`jinit.nnx_model`): traces the model and propagates the moments through its own
    computation (:mod:`jinit.theory._graph`), one prediction per layer, NaN with a reason in
    the note where the theory does not cover the layer.

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
    if isinstance(network, FlaxModel):
        return _flax(network, init, dtype, batch)
    bias_init = zeros if bias_init is None else bias_init
    ti = network.theory_inputs()
    if ti is None:  # no closed form (the transformer): its traced layers
        batch = network.default_batch() if batch is None else batch
        dt = np.float32 if dtype is None else dtype
        try:
            return traced_prediction(network, init, bias_init, dt, batch, input_second_moment)
        except Exception as e:  # noqa: BLE001 - the reason goes to the result's note
            return None, f"{network.theory_note} (traced theory failed: {type(e).__name__}: {e})"
    spec = ti.weight
    mean, var, exact = weight_law_moments(init, spec.shape, dtype)
    mean = settled_mean(mean, var, math.prod(spec.shape), exact)
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
    return _prediction_arrays(p, ti.residual, bmean), _prediction_note(exact, ti.approximate)


def _flax(network, init, dtype, batch):
    """:func:`flax_prediction`, its failures reported in the note (never raised: the sweep's
    measurements stand without a prediction)."""
    batch = network.default_batch() if batch is None else batch
    try:
        return flax_prediction(network, init, np.float32 if dtype is None else dtype, batch)
    except Exception as e:  # noqa: BLE001 - the reason goes to the result's note
        return None, f"no prediction: the theory's trace failed ({type(e).__name__}: {e})"


def _prediction_arrays(p: Any, residual: bool, bmean: float) -> dict[str, np.ndarray]:
    """The per-layer predicted quantities (float64) from :func:`predict_mlp`'s result ``p``."""
    pre = np.asarray(p.preact_second_moment, np.float64)
    act = np.asarray(p.act_second_moment, np.float64)
    amean = np.asarray(p.act_mean, np.float64)
    out = {
        "preact.second_moment": pre,
        "act.second_moment": act,
        "act.mean": amean,
        "act.std": np.sqrt(np.maximum(act - amean**2, 0.0)),
        "output.second_moment": pre if residual else act,
        "grad.second_moment": np.asarray(p.grad_second_moment, np.float64),
        "fluctuation": np.asarray(p.fluctuation, np.float64),
        "preact.fluctuation": np.asarray(p.preact_fluctuation, np.float64),
        "grad.fluctuation": np.asarray(p.grad_fluctuation, np.float64),
    }
    if not residual:
        out["output.std"] = out["act.std"]
    if bmean == 0:
        out["preact.mean"] = np.zeros_like(pre)
        out["preact.std"] = np.sqrt(np.maximum(pre, 0.0))
        if residual:  # the stream is the pre-activation
            out["output.std"] = out["preact.std"]
    return out


def _prediction_note(exact: bool, approximate: bool) -> str:
    """The caveats of a prediction: an estimated weight variance, an approximate network."""
    notes = []
    if not exact:
        notes.append("weight variance estimated from a draw")
    if approximate:
        notes.append("approximate (zero padding)")
    return "; ".join(notes)
