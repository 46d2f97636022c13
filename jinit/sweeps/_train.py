"""Training sweeps: does a network *train* under a given initialisation?

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
:math:`\\mathcal L = -\frac1B\\sum_i \\log \\mathrm{softmax}(f(x_i))_{y_i}`. A model that ignores
its input can do no better than the entropy of the label distribution, :math:`\\log C` for
:math:`C` balanced classes (2.303 for the ten digits), with accuracy :math:`1/C`: that is what
a *stalled* initialisation shows.

Why initialisations stall. In a ReLU MLP of width :math:`n` with i.i.d. weights of variance
:math:`\\sigma_w^2` and zero biases, the second moment of the activations is multiplied by
:math:`n\\sigma_w^2/2` per layer (He et al., 2015). He initialisation
(:math:`\\sigma_w^2 = 2/n`) keeps it constant; :math:`\\mathcal N(0, 0.01^2)` with :math:`n = 64`
multiplies it by :math:`3.2\\cdot 10^{-3}` per layer, so after 20 layers the signal (and the
gradient reaching the early layers) is :math:`\\sim 10^{-50}`, below float32's smallest number.
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
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jinit._core._checks import check_int
from jinit._core._seeds import SeedPlan, check_devices
from jinit.initializers._basic import zeros
from jinit.sweeps._mlp import MLP
from jinit.sweeps._sweep_checks import check_progress
from jinit.sweeps._train_checks import (
    RoleSpec,
    check_train_memory,
    describe_spec,
    divisors,
    probe_model,
    train_root_key,
)
from jinit.sweeps._train_data import METRICS, Dataset, check_data
from jinit.sweeps._train_models import (
    CustomModel,
    MLPClassifier,
    Opaque,
    draw_params,
    init_label,
    normalize_inits,
    resolve_roles,
    run_segment,
    start_rows,
)
from jinit.sweeps._train_results import TrainResult

# ---------------------------------------------------------------------------------------------
# The sweep
# ---------------------------------------------------------------------------------------------


_DEFAULT_OPTIMIZER = optax.adam(1e-3)  # one object, so repeated calls reuse the compiled loop
_MAX_SEGMENTS = 20  # progress reports per run at most
_TARGET_EVALS = 25  # default number of evaluations (besides step 0)


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
        eval_every = min(divisors(steps), key=lambda d: (abs(steps // d - _TARGET_EVALS), d))
    eval_every = check_int(api, "eval_every", eval_every, minimum=1)
    if steps % eval_every:
        near = sorted(divisors(steps), key=lambda d: abs(d - eval_every))[:3]
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
    root, key_record = train_root_key(api, key)
    ds = check_data(api, data)
    inits = normalize_inits(api, inits)
    check_progress(api, progress)
    bias_init = zeros if bias_init is None else bias_init
    for name, fn in (("bias_init", bias_init), ("readout_init", readout_init)):
        if fn is not None and not callable(fn):
            raise TypeError(
                f"`{api}` needs `{name}` to be None or a `(key, shape, dtype)` initialiser such "
                f"as `jinit.zeros`; got {fn!r} of type {type(fn).__name__}."
            )

    if isinstance(model, MLP):
        net: Any = MLPClassifier(model, int(np.prod(ds.x_train.shape[1:])), ds.n_classes)
        specs = {
            label: tuple(sorted(resolve_roles(api, label, v, bias_init, readout_init).items()))
            for label, v in inits.items()
        }
        spec_repr = {label: describe_spec(v) for label, v in inits.items()}
        init_spec = {label: RoleSpec(s) for label, s in specs.items()}
    elif isinstance(model, tuple) and len(model) == 2 and all(callable(f) for f in model):
        net = CustomModel(*model)
        init_spec = {label: Opaque(v) for label, v in inits.items()}
        spec_repr = {label: init_label(v) for label, v in inits.items()}
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
    param_bytes = max(probe_model(api, net, label, init_spec[label], ds, root) for label in labels)
    check_train_memory(
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
        seg = min(d for d in divisors(n_evals) if n_evals // d <= _MAX_SEGMENTS)
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
                        np.asarray, draw_params(k, model=net, spec=init_spec[label])
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
        state, m0 = start_rows(params, dkeys, data_dev, model=net, optimizer=opt)
        state = engine.put(state)  # the loop's input sharding, every call
        results[rows[:valid], 0] = np.asarray(m0)[:valid]
        for s in range(n_seg):
            periods = jnp.arange(s * seg, (s + 1) * seg, dtype=jnp.int32)
            state, m = run_segment(
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
        "bias_init": init_label(bias_init),
        "readout_init": "swept" if readout_init is None else init_label(readout_init),
        "devices": n_dev,
        "platform": devs[0].platform,
        "chunk_size": chunk,
        "chance_loss": math.log(c),
        "chance_accuracy": 1.0 / c,
        "elapsed_seconds": round(time.perf_counter() - t0, 2),
    }
    return TrainResult(config, np.arange(n_evals + 1) * eval_every, curves, spec_repr)
