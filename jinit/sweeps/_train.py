r"""Training sweeps: does a network *train* under a given initialisation?

Propagation statistics (:func:`jinit.sweep`) say what an initialisation does to the signal at
step 0; :func:`train_sweep` answers the question that matters: train the same model under
several initialisers with optax, for many seeds at once, and compare the loss and accuracy
curves.

How it runs. The per-seed training loop is a ``lax.scan`` over evaluation periods, each a
``lax.scan`` over ``eval_every`` optimiser steps followed by an evaluation on the full train and
test splits. The loop is ``jax.vmap``-ed over the rows ``(initialiser, seed)`` and compiled
**once for all initialisers** (they differ only in the initial parameters, which a small
per-initialiser ``jit(vmap(init))`` draws), with the row axis sharded over the local devices.

Randomness. Seed :math:`s` uses ``k_s = fold_in(key, s)`` for every initialiser (common random
numbers): the parameters are drawn from ``fold_in(k_s, 0)`` and the minibatches of period
:math:`p` from ``fold_in(fold_in(k_s, 1), p)``, so two initialisers see the same minibatch
sequence and the results do not depend on ``chunk_size`` or on how the run is split for
progress reports. Minibatches are ``batch_size`` i.i.d. uniform draws (with replacement) of
training examples.

The loss is the mean softmax cross-entropy
:math:`\mathcal L = -\frac1B\sum_i \log \mathrm{softmax}(f(x_i))_{y_i}`. A model that ignores
its input can do no better than the entropy of the label distribution, :math:`\log C` for
:math:`C` balanced classes (2.303 for the ten digits), with accuracy :math:`1/C`: that is what
a *stalled* initialisation shows.

Why initialisations stall. In a ReLU MLP of width :math:`n` with i.i.d. weights of variance
:math:`\sigma_w^2` and zero biases, the second moment of the activations is multiplied by
:math:`n\sigma_w^2/2` per layer (He et al., 2015). He initialisation
(:math:`\sigma_w^2 = 2/n`) keeps it constant; :math:`\mathcal N(0, 0.01^2)` with :math:`n = 64`
multiplies it by :math:`3.2\cdot 10^{-3}` per layer, so after 20 layers the signal (and the
gradient reaching the early layers) is :math:`\sim 10^{-50}`, below float32's smallest number.
All-zero weights give every unit the same function and zero gradients (the symmetry random
initialisation exists to break). Orthogonal weights (Saxe et al., 2014) preserve norms in the
linear part; under ReLU they halve the second moment per layer, which Adam's per-parameter
normalisation of the update (Kingma & Ba, 2015) compensates in practice.

References:
  Glorot & Bengio, "Understanding the difficulty of training deep feedforward neural
  networks", 2010.
  Saxe, McClelland & Ganguli, "Exact solutions to the nonlinear dynamics of learning in deep
  linear neural networks", 2014.
  He, Zhang, Ren & Sun, "Delving Deep into Rectifiers", 2015.
  Kingma & Ba, "Adam: A Method for Stochastic Optimization", 2015.
  Alpaydin & Kaynak, "Optical Recognition of Handwritten Digits" (UCI), 1998: the 8×8 digits
  that scikit-learn bundles as ``load_digits``.

Examples:
  A toy problem (the label is the sign of ``x₀ + x₁``); ``digits()`` gives the real one.

  >>> import numpy as np
  >>> import jinit
  >>> from jinit import Dataset, train_sweep
  >>> x = np.random.default_rng(0).normal(size=(256, 8)).astype(np.float32)
  >>> y = (x[:, 0] + x[:, 1] > 0).astype(np.int32)
  >>> data = Dataset(x[:192], y[:192], x[192:], y[192:], "toy")
  >>> r = train_sweep(jinit.mlp(16, 2), {"he": jinit.he_normal(), "zeros": jinit.zeros},
  ...                 data, seeds=2, steps=200, eval_every=50)
  >>> r.curves["he"]["test.accuracy"].shape  # (seeds, evaluations incl. step 0)
  (2, 5)
  >>> bool(r.final("he", "test.accuracy").mean() > 0.75), r.verdict("zeros")
  (True, 'stalls')
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jinit._core import _output as output
from jinit._core._checks import check_int
from jinit._core._seeds import SeedPlan, check_devices, refuse_rbg
from jinit.initializers._basic import zeros
from jinit.sweeps._networks import MLP, activation_fn, layer_norm
from jinit.sweeps._propagate import (
    check_fits,
    check_progress,
    check_seed,
    device_memory_available,
    fmt_bytes,
    host_memory_available,
)
from jinit.sweeps._statistics import check_init_output, wrap_init_error

__all__ = ["CurveSummary", "Dataset", "TrainResult", "digits", "train_sweep"]

#: The metrics recorded at every evaluation, each an array ``(seeds, evaluations)``.
METRICS: tuple[str, ...] = ("train.loss", "train.accuracy", "test.loss", "test.accuracy")

#: Roles of a per-initialiser rule mapping for the built-in MLP.
ROLES: tuple[str, ...] = ("input", "hidden", "readout", "bias")

_DEFAULT_OPTIMIZER = optax.adam(1e-3)  # one object, so repeated calls reuse the compiled loop
_MAX_SEGMENTS = 20  # progress reports per run at most
_TARGET_EVALS = 25  # default number of evaluations (besides step 0)


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------


class Dataset(NamedTuple):
    """A classification data set with a fixed train/test split.

    Attributes:
      x_train: training inputs, ``(n_train, ...)`` floats.
      y_train: training labels, ``(n_train,)`` ints in ``[0, n_classes)``.
      x_test: test inputs, ``(n_test, ...)``.
      y_test: test labels, ``(n_test,)``.
      name: a name for reports and plots.
      n_classes: the number of classes (``None``: one more than the largest label).
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    name: str = "data"
    n_classes: int | None = None


def digits(*, test_size: int = 360, seed: int = 0) -> Dataset:
    r"""scikit-learn's bundled 8×8 handwritten digits, standardised, with a fixed split.

    1797 images of 64 pixels (values 0..16) in 10 nearly balanced classes, read from the copy
    that ships with scikit-learn (``sklearn.datasets.load_digits``; nothing is downloaded). A
    permutation drawn with ``numpy.random.default_rng(seed)`` puts ``test_size`` images in the
    test split. Each pixel is standardised with the *training* mean :math:`\mu_j` and std
    :math:`s_j`: :math:`x_j \mapsto (x_j-\mu_j)/s_j` (:math:`s_j := 1` for pixels that are
    constant on the training split).

    Args:
      test_size: number of test images (1..1796).
      seed: seed of the split.

    Returns:
      A :class:`Dataset` named ``"digits"`` with float32 inputs ``(n, 64)`` and int32 labels.

    Raises:
      ImportError: scikit-learn is not installed.
      ValueError: a ``test_size`` outside 1..1796.

    Examples:
      >>> from jinit import digits
      >>> d = digits()
      >>> d.x_train.shape, d.x_test.shape, d.n_classes
      ((1437, 64), (360, 64), 10)
      >>> round(float(d.x_train.mean()), 6), round(float(d.x_train[:, 20].std()), 6)
      (0.0, 1.0)
    """
    api = "digits"
    test_size = check_int(api, "test_size", test_size, minimum=1)
    seed = check_int(api, "seed", seed, minimum=0)
    load_digits = _load_digits(api)
    raw = load_digits()
    x = np.asarray(raw.data, np.float64)
    y = np.asarray(raw.target, np.int32)
    if test_size >= len(x):
        raise ValueError(
            f"`{api}` needs 1 <= `test_size` < {len(x)} (the data set has {len(x)} images); "
            f"got {test_size}. The default is 360 (20 %)."
        )
    perm = np.random.default_rng(seed).permutation(len(x))
    test, train = perm[:test_size], perm[test_size:]
    mu = x[train].mean(axis=0)
    sd = x[train].std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)

    def standardise(a: np.ndarray) -> np.ndarray:
        return ((a - mu) / sd).astype(np.float32)

    return Dataset(standardise(x[train]), y[train], standardise(x[test]), y[test], "digits", 10)


def _load_digits(api: str):
    """``sklearn.datasets.load_digits``, or an ImportError with the exact install command."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as e:
        raise ImportError(
            f"`{api}` reads the 8×8 digits bundled with scikit-learn, which is not installed in "
            f"this Python ({e}). Install it with `python -m pip install scikit-learn`."
        ) from e
    return load_digits


def _check_data(api: str, data: Any) -> Dataset:
    if isinstance(data, Dataset):
        ds = data
    elif isinstance(data, Sequence) and not isinstance(data, str) and len(data) == 4:
        ds = Dataset(*data)
    else:
        raise TypeError(
            f"`{api}` needs `data` to be a `jinit.Dataset` (e.g. `jinit.digits()`) or a tuple "
            f"(x_train, y_train, x_test, y_test); got {type(data).__name__}."
        )
    arrays = {}
    for name in ("x_train", "y_train", "x_test", "y_test"):
        a = np.asarray(getattr(ds, name))
        if name.startswith("y"):
            if a.ndim != 1 or not np.issubdtype(a.dtype, np.integer):
                raise TypeError(
                    f"`{api}` needs `data.{name}` to be a 1-D array of integer class labels; got "
                    f"dtype {a.dtype} and shape {a.shape}."
                )
        elif a.ndim < 2 or not np.issubdtype(a.dtype, np.number):
            raise TypeError(
                f"`{api}` needs `data.{name}` to be a numeric array (examples, features...); got "
                f"dtype {a.dtype} and shape {a.shape}."
            )
        elif np.iscomplexobj(a) or not np.all(np.isfinite(a)):
            bad = "complex values" if np.iscomplexobj(a) else f"{np.sum(~np.isfinite(a))} inf/NaN"
            raise ValueError(
                f"`{api}` needs finite real inputs; `data.{name}` has {bad} (shape {a.shape}). "
                f"Clean or impute them first: every loss would otherwise be NaN."
            )
        arrays[name] = a
    for split in ("train", "test"):
        nx, ny = len(arrays[f"x_{split}"]), len(arrays[f"y_{split}"])
        if nx != ny or nx == 0:
            raise ValueError(
                f"`{api}` needs as many {split} labels as {split} inputs, at least one; got "
                f"{nx} inputs and {ny} labels."
            )
    if arrays["x_train"].shape[1:] != arrays["x_test"].shape[1:]:
        raise ValueError(
            f"`{api}` needs train and test inputs of the same shape per example; got "
            f"{arrays['x_train'].shape[1:]} and {arrays['x_test'].shape[1:]}."
        )
    top = int(max(arrays["y_train"].max(), arrays["y_test"].max())) + 1
    low = int(min(arrays["y_train"].min(), arrays["y_test"].min()))
    n_classes = top if ds.n_classes is None else check_int(api, "n_classes", ds.n_classes)
    if low < 0 or top > n_classes or n_classes < 2:
        raise ValueError(
            f"`{api}` needs labels in [0, n_classes) with n_classes >= 2; got labels in "
            f"[{low}, {top - 1}] and n_classes={n_classes}."
        )
    return Dataset(
        arrays["x_train"].astype(np.float32),
        arrays["y_train"].astype(np.int32),
        arrays["x_test"].astype(np.float32),
        arrays["y_test"].astype(np.int32),
        str(ds.name),
        n_classes,
    )


# ---------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _MLPClassifier:
    """``jinit.mlp(width, depth, ...)`` as a classifier: input layer, hidden stack, readout.

    Layer 1 maps the ``in_features`` inputs to ``width`` units, layers 2..depth are the scanned
    ``width × width`` stack of :class:`jinit.sweeps._networks.MLP` (same residual/LayerNorm
    conventions), and a dense readout maps ``width`` to ``n_classes`` logits. Hashable, so the
    compiled loop is cached across calls.
    """

    net: MLP
    in_features: int
    n_classes: int

    def describe(self) -> str:
        n = self.net
        extras = [n.activation] + ["LayerNorm"] * n.layernorm + ["residual"] * n.residual
        return f"MLP {self.in_features}→{n.width}×{n.depth}→{self.n_classes}, {', '.join(extras)}"

    def init(self, key: jax.Array, roles: Mapping[str, Any]) -> dict[str, Any]:
        # Few RNG call sites on purpose: XLA:CPU compile time grows with each threefry.
        n = self.net
        w, c = n.width, self.n_classes
        k_in, k_hidden, k_out, k_bias = jax.random.split(key, 4)

        def f32(x):
            return jnp.asarray(x, jnp.float32)

        params: dict[str, Any] = {
            "input": {"kernel": f32(roles["input"](k_in, (self.in_features, w)))},
            "hidden": {},
            "readout": {
                "kernel": f32(roles["readout"](k_out, (w, c))),
                "bias": jnp.zeros((c,), jnp.float32),
            },
        }
        n_hidden = n.depth - 1
        if n_hidden:
            keys = jax.random.split(k_hidden, n_hidden)
            params["hidden"]["kernel"] = jax.vmap(lambda k: f32(roles["hidden"](k, (w, w))))(keys)
        else:
            params["hidden"]["kernel"] = jnp.zeros((0, w, w), jnp.float32)
        if n.bias:
            keys = jax.random.split(k_bias, n.depth)
            biases = jax.vmap(lambda k: f32(roles["bias"](k, (w,))))(keys)
            params["input"]["bias"] = biases[0]
            params["hidden"]["bias"] = biases[1:]
        return params

    def __call__(self, params: Mapping[str, Any], x: jax.Array) -> jax.Array:
        n = self.net
        phi = activation_fn(n.activation)
        p = params["input"]
        h = x.reshape(x.shape[0], -1) @ p["kernel"]
        if n.bias:
            h = h + p["bias"]
        a = phi(layer_norm(h) if n.layernorm else h)
        carry = (h, a) if n.residual else a

        def layer(carry, lp):
            h, aux = n.pre(lp, carry)
            carry, _ = n.post(lp, h, carry, aux)
            return carry, None

        carry, _ = jax.lax.scan(layer, carry, params["hidden"])
        a = carry[1] if n.residual else carry
        return a @ params["readout"]["kernel"] + params["readout"]["bias"]


@dataclasses.dataclass(frozen=True, eq=False)
class _CustomModel:
    """A user model ``(init_fn, apply_fn)``; hashed by the identity of the two functions."""

    init_fn: Callable[..., Any]
    apply_fn: Callable[..., jax.Array]

    def __hash__(self) -> int:
        return hash((self.init_fn, self.apply_fn))

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, _CustomModel)
            and other.init_fn is self.init_fn
            and other.apply_fn is self.apply_fn
        )

    def describe(self) -> str:
        name = getattr(self.apply_fn, "__qualname__", type(self.apply_fn).__name__)
        return f"custom model {name}"

    def init(self, key: jax.Array, spec: Any) -> Any:
        return self.init_fn(key, spec.value if isinstance(spec, _Opaque) else spec)

    def __call__(self, params: Any, x: jax.Array) -> jax.Array:
        return self.apply_fn(params, x)


def _resolve_roles(api: str, label: str, spec: Any, bias_init, readout_init) -> dict[str, Any]:
    """``{role: initialiser}`` for the built-in MLP from an initialiser or a role mapping."""
    if isinstance(spec, Mapping):
        unknown = sorted(set(map(str, spec)) - set(ROLES))
        if unknown or "hidden" not in spec:
            raise ValueError(
                f"`{api}`: the rules of {label!r} must be a mapping with a 'hidden' initialiser "
                f"and optionally 'input', 'readout', 'bias' (roles {', '.join(ROLES)}); got keys "
                f"{sorted(map(str, spec))}."
            )
        roles = {
            "hidden": spec["hidden"],
            "input": spec.get("input", spec["hidden"]),
            "readout": spec.get("readout", readout_init or spec["hidden"]),
            "bias": spec.get("bias", bias_init),
        }
    else:
        roles = {"hidden": spec, "input": spec, "readout": readout_init or spec, "bias": bias_init}
    for role, init in roles.items():
        if not callable(init):
            raise TypeError(
                f"`{api}`: the {role} initialiser of {label!r} must be a `(key, shape, dtype)` "
                f"callable such as `jinit.he_normal()`; got {init!r}."
            )
    return roles


def _label(init: Any) -> str:
    r = repr(init)
    return r[len("jinit.") :] if r.startswith("jinit.") else r


def _normalize_inits(api: str, inits: Any) -> dict[str, Any]:
    if isinstance(inits, Mapping):
        out = {str(k): v for k, v in inits.items()}
    elif callable(inits):
        out = {_label(inits): inits}
    elif isinstance(inits, Sequence) and not isinstance(inits, str):
        out = {_label(v): v for v in inits}
    else:
        raise TypeError(
            f"`{api}` needs `inits` to be an initialiser, a sequence of them or a mapping "
            f"name -> initialiser (or name -> role rules); got {inits!r}."
        )
    if not out:
        raise ValueError(f"`{api}` needs at least one initialiser in `inits`; got none.")
    return out


# ---------------------------------------------------------------------------------------------
# The compiled pieces
# ---------------------------------------------------------------------------------------------


def _metrics(model, params, x, y) -> tuple[jax.Array, jax.Array]:
    logits = model(params, x).astype(jnp.float32)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
    acc = jnp.mean(jnp.argmax(logits, axis=-1) == y)
    return loss, acc.astype(jnp.float32)


def _evaluate(model, params, data) -> jax.Array:
    """``(4,)``: train loss, train accuracy, test loss, test accuracy."""
    x_tr, y_tr, x_te, y_te = data
    return jnp.stack([*_metrics(model, params, x_tr, y_tr), *_metrics(model, params, x_te, y_te)])


@functools.partial(jax.jit, static_argnames=("model", "spec"))
def _init_params(key, *, model, spec):
    """One seed's initial parameters (not vmapped: a vmapped threefry compiles ~3x slower)."""
    return model.init(key, spec)


@functools.partial(jax.jit, static_argnames=("model", "optimizer"))
def _start(params, data_keys, data, *, model, optimizer):
    """Per row: the training state ``(params, optimiser state, data key)`` and step-0 metrics."""

    def one(p, k):
        return (p, optimizer.init(p), k), _evaluate(model, p, data)

    return jax.vmap(one)(params, data_keys)


@functools.partial(jax.jit, static_argnames=("model", "optimizer", "batch_size", "eval_every"))
def _segment(state, periods, data, *, model, optimizer, batch_size, eval_every):
    """Runs the periods ``periods`` (each ``eval_every`` steps + an evaluation) for every row."""
    x_tr, y_tr = data[0], data[1]

    def loss_fn(params, idx):
        return _metrics(model, params, x_tr[idx], y_tr[idx])[0]

    def one(row):
        def period(carry, p):
            params, opt_state, dkey = carry
            idx = jax.random.randint(
                jax.random.fold_in(dkey, p), (eval_every, batch_size), 0, x_tr.shape[0]
            )

            def step(c, i):
                params, opt_state = c
                grads = jax.grad(loss_fn)(params, i)
                updates, opt_state = optimizer.update(grads, opt_state, params)
                return (optax.apply_updates(params, updates), opt_state), None

            (params, opt_state), _ = jax.lax.scan(step, (params, opt_state), idx)
            return (params, opt_state, dkey), _evaluate(model, params, data)

        return jax.lax.scan(period, row, periods)

    return jax.vmap(one)(state)


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
        ``chance_loss`` = log C and ``chance_accuracy`` = 1/C).
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
            target = output.check_file_target(path, "`jinit.TrainResult.to_json`")
            output.ensure_run_id(self.config)
        text = json.dumps(self.to_dict(), indent=1)
        if target is not None:
            with output.atomic_file(target) as f:
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
        with output.OutputFolder.open(
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
            target = output.check_file_target(
                path, "`jinit.TrainResult.plot`", example="curves.png"
            )
            output.atomic_savefig(fig, target, run_id=output.ensure_run_id(self.config))
        return fig

    def __repr__(self) -> str:
        return (
            f"TrainResult({len(self.labels)} initialisers × {self.n_seeds} seeds, "
            f"{int(self.steps[-1])} steps, {len(self.steps)} evaluations)"
        )


# ---------------------------------------------------------------------------------------------
# The sweep
# ---------------------------------------------------------------------------------------------


def _spec_repr(v: Any) -> str:
    if isinstance(v, Mapping):
        return "{" + ", ".join(f"{k}: {_label(f)}" for k, f in v.items()) + "}"
    return _label(v)


def _cache_key(f: Any) -> tuple[str, Any]:
    """Value identity for hashable initialisers (equal builders share a compiled function)."""
    try:
        hash(f)
    except TypeError:
        return ("id", id(f))
    return ("value", f)


@dataclasses.dataclass(frozen=True, eq=False)
class _RoleSpec:
    """``(role, initialiser)`` pairs, a static jit argument; ``spec["hidden"]`` in the model."""

    pairs: tuple[tuple[str, Any], ...]

    def __getitem__(self, role: str) -> Any:
        return dict(self.pairs)[role]

    def _key(self) -> tuple:
        return tuple((r, _cache_key(f)) for r, f in self.pairs)

    def __hash__(self) -> int:
        return hash(self._key())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, _RoleSpec):
            return False
        try:
            return bool(self._key() == other._key())
        except Exception:  # an initialiser whose == is not a bool (array fields)
            return all(a is b for (_, a), (_, b) in zip(self.pairs, other.pairs, strict=True))


@dataclasses.dataclass(frozen=True, eq=False)
class _Opaque:
    """A user's spec for a custom model, hashed by identity (it may not be hashable)."""

    value: Any

    def __hash__(self) -> int:
        return id(self.value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Opaque) and other.value is self.value


def _check_logits(api: str, model: Any, params: Any, ds: Dataset) -> None:
    """The model maps a batch ``(b, ...)`` to ``(b, n_classes)`` logits (checked by tracing)."""
    x = jax.ShapeDtypeStruct((2, *ds.x_train.shape[1:]), jnp.float32)
    try:
        out = jax.eval_shape(model, params, x)
    except Exception as e:  # a user model that fails on the data's shape
        raise ValueError(
            f"`{api}`: the model fails on a batch of shape {x.shape}: {type(e).__name__}: {e}"
        ) from e
    shape = getattr(out, "shape", None)
    if shape != (2, ds.n_classes):
        raise ValueError(
            f"`{api}` needs the model to map a batch (b, ...) to logits (b, n_classes) = "
            f"(2, {ds.n_classes}); got {shape} for a batch of shape {x.shape}. Give the model "
            f"{ds.n_classes} outputs or set `Dataset.n_classes`."
        )


def _nbytes(tree: Any) -> int:
    leaves = jax.tree_util.tree_leaves(tree)
    return sum(math.prod(t.shape) * np.dtype(t.dtype).itemsize for t in leaves)


def _probe_model(api: str, net: Any, label: str, spec: Any, ds: Dataset, key: jax.Array) -> int:
    """Draws ``label``'s parameters abstractly (``jax.eval_shape``), checks every initialiser of
    the built-in MLP on its real shape and the model's logits; returns the parameters' bytes."""
    if isinstance(net, _MLPClassifier):
        roles = dict(spec.pairs)
        n, w = net.net, net.net.width
        shapes = [("input", (net.in_features, w))]
        shapes += [("hidden", (w, w))] if n.depth > 1 else []
        shapes += [("readout", (w, net.n_classes))] + ([("bias", (w,))] if n.bias else [])
        for role, shape in shapes:
            who = f"the {role} initialiser of {label!r}"
            part = "bias" if role == "bias" else "kernel"
            where = f"the {role} {part} of shape {shape} in the {net.describe()}"
            fn = roles[role]
            try:
                out = jax.eval_shape(lambda k, fn=fn, shape=shape: fn(k, shape), key)
            except Exception as e:
                raise wrap_init_error(api, who, where, e) from e
            dt = getattr(out, "dtype", None)
            if dt is not None and hasattr(out, "shape") and tuple(out.shape) == shape:
                if not jnp.issubdtype(dt, jnp.floating):
                    raise TypeError(
                        f"`{api}`: {who} returned dtype {np.dtype(dt).name} for {where}; "
                        f"expected a real floating dtype (the MLP trains in float32)."
                    )
                continue
            check_init_output(api, who, out, shape, jnp.float32, where)
    try:
        # The jitted drawer's own trace, which the real draws then reuse (no second trace).
        params = _init_params.eval_shape(key, model=net, spec=spec)
    except Exception as e:
        kind = TypeError if isinstance(e, TypeError) else ValueError
        raise kind(
            f"`{api}`: initialising {label!r} with the {net.describe()} failed: "
            f"{type(e).__name__}: {e}"
        ) from e
    if not jax.tree_util.tree_leaves(params):
        raise ValueError(
            f"`{api}`: the model's `init_fn(key, spec)` returned no arrays for {label!r} (got "
            f"{params!r:.80}); it must return the parameters, a pytree of arrays."
        )
    _check_logits(api, net, params, ds)
    return _nbytes(params)


def _check_train_memory(
    api: str,
    net: Any,
    ds: Dataset,
    devs: list,
    param_bytes: int,
    n_rows: int,
    chunk: int,
    chunk_size: int | None,
    batch_size: int,
    n_evals: int,
) -> None:
    """Refuses a training sweep that cannot fit in memory, with the estimate and the fix."""
    # Per row: parameters, gradients and two optimiser moments; for the built-in MLP also the
    # activations saved for the backward pass of one step (depth x batch x width, x and h).
    per_row = 4 * param_bytes
    if isinstance(net, _MLPClassifier):
        per_row += 2 * 4 * net.net.depth * batch_size * net.net.width
    data_bytes = sum(a.nbytes for a in (ds.x_train, ds.y_train, ds.x_test, ds.y_test))
    avail, shared = device_memory_available(devs)
    where = "host" if shared else f"{devs[0].platform} device"
    if avail is not None:
        avail = max(avail - data_bytes, 0)
    check_fits(
        api,
        per_row,
        avail,
        where,
        "one (initialiser, seed) row: parameters, gradients, optimiser state"
        + (f" and the activations of a batch of {batch_size}" if per_row > 4 * param_bytes else ""),
        "Use a smaller model or `batch_size`.",
    )
    # Host: every row's initial parameters, one chunk of stacked ones, and the curves.
    host = (n_rows + chunk) * param_bytes + n_rows * (n_evals + 1) * len(METRICS) * 4
    check_fits(
        api,
        host,
        host_memory_available(),
        "host",
        f"the initial parameters and curves of {n_rows} rows (initialiser, seed)",
        "Use fewer `seeds` or initialisers per call.",
    )
    per_call = -(-chunk // (1 if shared else len(devs))) * per_row
    fits = max(1, (avail or 0) // max(per_row, 1)) * (1 if shared else len(devs))
    check_fits(
        api,
        per_call,
        avail,
        where,
        f"{chunk} rows (initialiser, seed) per compiled call × {fmt_bytes(per_row)} each"
        + ("" if shared else f" over {len(devs)} devices"),
        f"Pass `chunk_size={fits}` or less"
        + (" (the default runs every row at once)." if chunk_size is None else "."),
    )


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def _root_key(api: str, key: Any) -> tuple[jax.Array, Any]:
    if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
        seed = check_seed(api, "key", key)
        return jax.random.key(seed), seed
    if isinstance(key, (jax.Array, np.ndarray)):
        dt = key.dtype
        if (jax.dtypes.issubdtype(dt, jax.dtypes.prng_key) and key.shape == ()) or (
            dt == np.uint32 and key.shape in ((2,), (4,))
        ):
            typed = jax.dtypes.issubdtype(dt, jax.dtypes.prng_key)
            if typed:
                refuse_rbg(api, str(jax.random.key_impl(key)), "Pass e.g. `key=0`.")
            data = jax.random.key_data(key) if typed else key
            return key, np.asarray(data).tolist()
    raise TypeError(
        f"`{api}` needs `key` to be an int seed or a single JAX PRNG key; got {key!r}. Pass e.g. "
        f"`key=0` or `key=jax.random.key(0)`."
    )


def train_sweep(
    model: Any,
    inits: Any,
    data: Any,
    *,
    seeds: int = 8,
    steps: int = 500,
    batch_size: int = 128,
    optimizer: optax.GradientTransformation | None = None,
    eval_every: int | None = None,
    key: int | jax.Array = 0,
    bias_init: Callable[..., jax.Array] | None = None,
    readout_init: Callable[..., jax.Array] | None = None,
    devices: int | Sequence[Any] | None = None,
    chunk_size: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> TrainResult:
    r"""Trains ``model`` under each initialiser for ``seeds`` seeds at once; returns the curves.

    For every row (initialiser, seed) the parameters are drawn, then ``steps`` optimiser steps
    on minibatches of ``batch_size`` training examples minimise the softmax cross-entropy; every
    ``eval_every`` steps (and at step 0) the loss and accuracy on the whole train and test
    splits are recorded. The loop is a ``lax.scan`` inside one ``jax.jit(jax.vmap(...))``
    shared by all initialisers (it is compiled once per model, optimiser and sizes, and reused
    by later calls with the same ones), the rows sharded over ``devices``. Seed :math:`s`
    uses the same key ``fold_in(key, s)`` under every initialiser, so they see the same
    minibatches.

    Args:
      model: ``jinit.mlp(width, depth, activation, ...)`` (see below), or a pair
        ``(init_fn, apply_fn)``: ``init_fn(key, spec) -> params`` receives a value of ``inits``
        as it was given (an initialiser, rules, anything) and ``apply_fn(params, x) -> logits``
        maps a batch ``(b, ...)`` to ``(b, n_classes)``; both must be jittable.
      inits: an initialiser, a sequence of them, or a mapping ``label -> initialiser``. For the
        built-in MLP a value may also be a mapping of roles ``{"hidden": init, "input": init,
        "readout": init, "bias": init}`` ('hidden' required; the others default to the hidden
        one, ``readout_init`` and ``bias_init``).
      data: a :class:`Dataset` (e.g. :func:`digits`) or ``(x_train, y_train, x_test, y_test)``
        with integer labels.
      seeds: seeds per initialiser.
      steps: optimiser steps.
      batch_size: training examples per step (drawn uniformly with replacement).
      optimizer: an optax ``GradientTransformation`` (default ``optax.adam(1e-3)``). Pass the
        same object again to reuse the compiled loop.
      eval_every: steps between evaluations; must divide ``steps`` (default: the divisor that
        gives closest to 25 evaluations).
      key: an int seed or a JAX PRNG key.
      bias_init: initialiser of the MLP's biases (default zeros; the readout bias is zero).
      readout_init: initialiser of the MLP's readout kernel (default: the swept initialiser).
      devices: local devices to shard the rows over: ``None`` (all), a count, or a list.
      chunk_size: rows ``(initialiser, seed)`` per compiled call (default: all at once).
      progress: optional ``progress(steps_done, steps_total)``, called with 0 before the first
        (compiling) call and after every segment of the run; the run is then split into up to
        20 segments (the results do not change).

    Returns:
      A :class:`TrainResult`.

    Raises:
      TypeError: a model, initialiser, data set, optimiser, key or device list of the wrong
        kind, or an initialiser that returns a non-floating array.
      ValueError: sizes < 1, ``eval_every`` not dividing ``steps``, inconsistent or non-finite
        data, too many devices, an initialiser that returns the wrong shape, a model whose
        logits do not have ``n_classes`` columns, or a run that cannot fit in memory (the
        estimate and the fix are in the message).

    Every argument is checked, every initialiser probed with ``jax.eval_shape`` on its real
    shapes and the memory estimated before anything is compiled.

    The built-in MLP. ``jinit.mlp(width, depth, activation, bias=..., layernorm=...,
    residual=...)`` becomes a classifier with ``depth`` hidden layers of ``width`` units:
    layer 1 maps the inputs' features to ``width``, layers 2..depth are ``width × width``
    (scanned over depth), and a dense readout gives ``n_classes`` logits. Every hidden kernel
    (the input layer's included) is drawn by the swept initialiser, in Flax layout
    ``(fan_in, fan_out)``; the parameters are
    ``{"input": {"kernel", "bias"}, "hidden": {"kernel": (depth-1, w, w), "bias"},
    "readout": {"kernel", "bias"}}``.

    Examples:
      >>> import numpy as np
      >>> import jinit
      >>> from jinit import Dataset, train_sweep
      >>> x = np.random.default_rng(0).normal(size=(256, 8)).astype(np.float32)
      >>> y = (x[:, 0] + x[:, 1] > 0).astype(np.int32)
      >>> data = Dataset(x[:192], y[:192], x[192:], y[192:], "toy")
      >>> rules = {"hidden": jinit.orthogonal(), "readout": jinit.zeros}
      >>> r = train_sweep(jinit.mlp(16, 2), {"orthogonal": rules, "zeros": jinit.zeros}, data,
      ...                 seeds=2, steps=200, eval_every=50)
      >>> r.labels, r.steps.tolist(), r.verdict("orthogonal")
      (['orthogonal', 'zeros'], [0, 50, 100, 150, 200], 'trains')
    """
    plan = prepare_train(
        model,
        inits,
        data,
        seeds=seeds,
        steps=steps,
        batch_size=batch_size,
        optimizer=optimizer,
        eval_every=eval_every,
        key=key,
        bias_init=bias_init,
        readout_init=readout_init,
        devices=devices,
        chunk_size=chunk_size,
        progress=progress,
    )
    return run_train(plan)


@dataclasses.dataclass(frozen=True, eq=False)
class TrainPlan:
    """The checked arguments of :func:`train_sweep` (made by :func:`prepare_train`)."""

    t0: float
    model: Any
    net: Any
    ds: Dataset
    labels: list[str]
    init_spec: dict[str, Any]
    spec_repr: dict[str, str]
    seeds: int
    steps: int
    batch_size: int
    eval_every: int
    opt: Any
    optimizer: Any
    root: jax.Array
    key_record: Any
    bias_init: Any
    readout_init: Any
    devs: list
    n_rows: int
    chunk: int
    n_chunks: int
    progress: Any


def prepare_train(
    model: Any,
    inits: Any,
    data: Any,
    *,
    seeds: int = 8,
    steps: int = 500,
    batch_size: int = 128,
    optimizer: optax.GradientTransformation | None = None,
    eval_every: int | None = None,
    key: int | jax.Array = 0,
    bias_init: Callable[..., jax.Array] | None = None,
    readout_init: Callable[..., jax.Array] | None = None,
    devices: int | Sequence[Any] | None = None,
    chunk_size: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> TrainPlan:
    """Checks every argument of :func:`train_sweep` (same signature), probes every initialiser
    and the model abstractly and estimates the memory, without compiling anything;
    :func:`run_train` runs the returned plan.

    Raises:
      ValueError, TypeError: as :func:`train_sweep`.
    """
    api = "train_sweep"
    t0 = time.perf_counter()
    seeds = check_int(api, "seeds", seeds, minimum=1)
    steps = check_int(api, "steps", steps, minimum=1)
    batch_size = check_int(api, "batch_size", batch_size, minimum=1)
    if eval_every is None:
        eval_every = min(_divisors(steps), key=lambda d: (abs(steps // d - _TARGET_EVALS), d))
    eval_every = check_int(api, "eval_every", eval_every, minimum=1)
    if steps % eval_every:
        near = sorted(_divisors(steps), key=lambda d: abs(d - eval_every))[:3]
        raise ValueError(
            f"`{api}` needs `eval_every` to divide `steps`; got steps={steps}, "
            f"eval_every={eval_every}. Use e.g. eval_every in {sorted(near)}."
        )
    if chunk_size is not None:
        chunk_size = check_int(api, "chunk_size", chunk_size, minimum=1)
    opt = _DEFAULT_OPTIMIZER if optimizer is None else optimizer
    if not isinstance(opt, optax.GradientTransformation):
        raise TypeError(
            f"`{api}` needs `optimizer` to be an optax GradientTransformation such as "
            f"`optax.adam(1e-3)`; got {optimizer!r}."
        )
    if seeds > 2**32:
        raise ValueError(
            f"`{api}` needs `seeds` <= 2**32 (seed indices are folded into the key as uint32); "
            f"got {seeds}. Split the work over several keys."
        )
    root, key_record = _root_key(api, key)
    ds = _check_data(api, data)
    inits = _normalize_inits(api, inits)
    check_progress(api, progress)
    bias_init = zeros if bias_init is None else bias_init
    for name, fn in (("bias_init", bias_init), ("readout_init", readout_init)):
        if fn is not None and not callable(fn):
            raise TypeError(
                f"`{api}` needs `{name}` to be None or a `(key, shape, dtype)` initialiser such "
                f"as `jinit.zeros`; got {fn!r} of type {type(fn).__name__}."
            )

    if isinstance(model, MLP):
        net: Any = _MLPClassifier(model, int(np.prod(ds.x_train.shape[1:])), ds.n_classes)
        specs = {
            label: tuple(sorted(_resolve_roles(api, label, v, bias_init, readout_init).items()))
            for label, v in inits.items()
        }
        spec_repr = {label: _spec_repr(v) for label, v in inits.items()}
        init_spec = {label: _RoleSpec(s) for label, s in specs.items()}
    elif isinstance(model, tuple) and len(model) == 2 and all(callable(f) for f in model):
        net = _CustomModel(*model)
        init_spec = {label: _Opaque(v) for label, v in inits.items()}
        spec_repr = {label: _label(v) for label, v in inits.items()}
    else:
        raise TypeError(
            f"`{api}` needs `model` to be `jinit.mlp(width, depth, ...)` or a pair "
            f"(init_fn, apply_fn) of callables; got {model!r} of type {type(model).__name__}."
        )

    devs = check_devices(api, devices, allow_global=False)
    labels = list(inits)
    n_rows = len(labels) * seeds
    engine = SeedPlan.create(
        devs, n_rows, n_rows if chunk_size is None else min(chunk_size, n_rows)
    )
    chunk, n_chunks = engine.chunk, engine.n_chunks
    # Before any compile: every initialiser probed abstractly, the logits' shape checked, and
    # the memory of one compiled call and of the kept results estimated.
    param_bytes = max(_probe_model(api, net, label, init_spec[label], ds, root) for label in labels)
    _check_train_memory(
        api, net, ds, devs, param_bytes, n_rows, chunk, chunk_size, batch_size, steps // eval_every
    )
    return TrainPlan(
        t0=t0,
        model=model,
        net=net,
        ds=ds,
        labels=labels,
        init_spec=init_spec,
        spec_repr=spec_repr,
        seeds=seeds,
        steps=steps,
        batch_size=batch_size,
        eval_every=eval_every,
        opt=opt,
        optimizer=optimizer,
        root=root,
        key_record=key_record,
        bias_init=bias_init,
        readout_init=readout_init,
        devs=devs,
        n_rows=n_rows,
        chunk=chunk,
        n_chunks=n_chunks,
        progress=progress,
    )


def run_train(plan: TrainPlan, progress: Callable[[int, int], None] | None = None) -> TrainResult:
    """Runs a :class:`TrainPlan` from :func:`prepare_train`; ``progress`` (if given) replaces
    the plan's callback. Returns the :class:`TrainResult`."""
    api = "train_sweep"
    progress = check_progress("run_train", progress) or plan.progress
    t0 = plan.t0
    model = plan.model
    net = plan.net
    ds = plan.ds
    labels = plan.labels
    init_spec = plan.init_spec
    spec_repr = plan.spec_repr
    seeds = plan.seeds
    steps = plan.steps
    batch_size = plan.batch_size
    eval_every = plan.eval_every
    opt = plan.opt
    optimizer = plan.optimizer
    root = plan.root
    key_record = plan.key_record
    bias_init = plan.bias_init
    readout_init = plan.readout_init
    devs = plan.devs
    n_rows = plan.n_rows
    chunk = plan.chunk
    n_chunks = plan.n_chunks
    n_dev = len(devs)
    engine = SeedPlan.create(devs, n_rows, chunk, axis="rows")
    data_dev = engine.put_replicated((ds.x_train, ds.y_train, ds.x_test, ds.y_test))

    n_evals = steps // eval_every
    seg = n_evals
    if progress is not None:
        seg = min(d for d in _divisors(n_evals) if n_evals // d <= _MAX_SEGMENTS)
    n_seg = n_evals // seg
    total = n_chunks * steps
    if progress is not None:
        progress(0, total)

    # Row r = (initialiser r // seeds, seed r % seeds); padding rows repeat the last one.
    # Keys are derived eagerly and rows are assembled on the host (no compiles for either).
    seed_keys = [jax.random.fold_in(root, s) for s in range(seeds)]
    param_keys = [jax.random.fold_in(k, 0) for k in seed_keys]
    data_keys = np.stack(
        [np.asarray(jax.random.key_data(jax.random.fold_in(k, 1))) for k in seed_keys]
    )
    key_impl = jax.random.key_impl(seed_keys[0])
    drawn: dict[str, list] = {}  # label -> per-seed initial params (host arrays)
    results = np.full((n_rows, n_evals + 1, len(METRICS)), np.nan, np.float32)
    done = 0
    for block in engine.blocks():
        rows, valid = block.index.astype(np.int64), block.valid
        for i in sorted(set((rows // seeds).tolist())):
            label = labels[i]
            if label in drawn:
                continue
            try:
                drawn[label] = [
                    jax.tree_util.tree_map(
                        np.asarray, _init_params(k, model=net, spec=init_spec[label])
                    )
                    for k in param_keys
                ]
            except (TypeError, ValueError) as e:
                kind = TypeError if isinstance(e, TypeError) else ValueError
                raise kind(f"`{api}`: initialising {label!r} failed: {e}") from e
        trees = [drawn[labels[r // seeds]][r % seeds] for r in rows]
        params = jax.tree_util.tree_map(lambda *xs: np.stack(xs), *trees)
        params = engine.put(params)
        dkeys = jax.random.wrap_key_data(engine.put(data_keys[rows % seeds]), impl=key_impl)
        state, m0 = _start(params, dkeys, data_dev, model=net, optimizer=opt)
        state = engine.put(state)  # the loop's input sharding, every call
        results[rows[:valid], 0] = np.asarray(m0)[:valid]
        for s in range(n_seg):
            periods = jnp.arange(s * seg, (s + 1) * seg, dtype=jnp.int32)
            state, m = _segment(
                state,
                engine.put_replicated(periods),
                data_dev,
                model=net,
                optimizer=opt,
                batch_size=batch_size,
                eval_every=eval_every,
            )
            state = engine.put(state)
            results[rows[:valid], 1 + s * seg : 1 + (s + 1) * seg] = np.asarray(m)[:valid]
            done += seg * eval_every
            if progress is not None:
                progress(done, total)
        del state

    curves = {
        label: {
            m: results[i * seeds : (i + 1) * seeds, :, j].astype(np.float64)
            for j, m in enumerate(METRICS)
        }
        for i, label in enumerate(labels)
    }
    c = ds.n_classes
    config = {
        "data": ds.name,
        "n_train": int(len(ds.y_train)),
        "n_test": int(len(ds.y_test)),
        "n_classes": c,
        "model": net.describe(),
        "architecture": model.config() if isinstance(model, MLP) else net.describe(),
        "seeds": seeds,
        "steps": steps,
        "batch_size": batch_size,
        "eval_every": eval_every,
        "optimizer": "adam(learning_rate=0.001)" if optimizer is None else "custom optax",
        "key": key_record,
        "bias_init": _label(bias_init),
        "readout_init": "swept" if readout_init is None else _label(readout_init),
        "devices": n_dev,
        "platform": devs[0].platform,
        "chunk_size": chunk,
        "chance_loss": math.log(c),
        "chance_accuracy": 1.0 / c,
        "elapsed_seconds": round(time.perf_counter() - t0, 2),
    }
    return TrainResult(config, np.arange(n_evals + 1) * eval_every, curves, spec_repr)
