"""Built-in architectures for propagation sweeps: MLP, CNN and a pre-LN transformer stack.

Each architecture is a stack of ``depth`` identical layers, so a sweep can run it with
``lax.scan`` over depth and generate every layer's weights *inside* the scan body from a
per-layer key (``fold_in(key, layer)``). Compile time therefore does not grow with depth and a
whole network is never held in memory: only one layer's weights exist at a time.

A layer is split into two functions so the sweep can differentiate it cheaply:

* ``pre(params, x) -> (h, aux)``: everything up to the layer's *pre-activation* ``h`` (the
  quantity mean-field theory tracks), plus ``aux``, any other tensor ``post`` needs;
* ``post(params, h, x, aux) -> (x_out, a)``: the layer output ``x_out`` (the next layer's input)
  and its *activation* ``a = φ(h)``.

Conventions (the ones of :func:`jinit.theory.predict_mlp`): the input ``x⁰`` has i.i.d.
entries of second moment ``input_second_moment``; layer ``l = 1..L`` computes
``hˡ = xˡ⁻¹ Wˡ + bˡ`` and ``xˡ = φ(hˡ)``. Weights follow the Flax layout ``(fan_in, fan_out)``
(``(k, k, c_in, c_out)`` for convolutions), so every jinit initialiser sees the fans it expects.

Examples:
  >>> from jinit import mlp
  >>> net = mlp(width=64, depth=3)
  >>> net.describe()
  'MLP width 64, depth 3, relu, bias'
  >>> [(s.name, s.shape) for s in net.param_specs()]
  [('kernel', (64, 64)), ('bias', (64,))]
"""

from __future__ import annotations

import math

import jax
import numpy as np

from jinit._core._checks import has_law
from jinit.sweeps._cnn import cnn
from jinit.sweeps._mlp import mlp
from jinit.sweeps._transformer import transformer

# ---------------------------------------------------------------------------------------------
# Architectures by name, weight moments
# ---------------------------------------------------------------------------------------------


ARCHITECTURES = {"mlp": mlp, "cnn": cnn, "transformer": transformer}


def settled_mean(mean: float, var: float, size: int, exact: bool) -> float:
    """``mean``, or 0 where it is zero up to its error: rounding for an exact law, 6 standard
    errors of a mean over ``size`` drawn entries for one estimated from a draw."""
    tol = 1e-6 if exact else 6.0 / math.sqrt(max(size, 1))
    return 0.0 if abs(mean) <= tol * math.sqrt(max(var, 0.0)) else mean


def weight_law_moments(init, shape: tuple[int, ...], dtype=None) -> tuple[float, float, bool]:
    """``(mean, variance, exact)`` of the entries ``init(key, shape)`` draws.

    Read from ``jinit.law`` for jinit initialisers (``exact=True``); any other
    ``(key, shape, dtype)`` callable is estimated from one draw (``exact=False``).
    """
    if has_law(init):
        lw = init.law(shape, dtype)
        mean = getattr(lw, "mean", None)
        var = getattr(lw, "variance", None)
        if mean is None and hasattr(lw, "inner"):  # delta-orthogonal: zero off-centre
            inner = lw.inner
            frac = 1.0 / math.prod(shape[:-2])
            return 0.0, frac * inner.variance, True
        if var is not None:
            return float(np.real(mean)), float(var), True
    w = np.asarray(init(jax.random.key(12345), shape, dtype), np.float64)
    return float(w.mean()), float(w.var()), False
