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
from jinit.sweeps._configs import TrainConfig
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


def _check_sizes(
    api: str, seeds: Any, steps: Any, batch_size: Any, eval_every: Any, chunk_size: Any
) -> tuple[int, int, int, int, int | None]:
    """The checked counts: seeds, steps, batch size, evaluation period and chunk size."""
    seeds = check_int(api, "seeds", seeds, minimum=1)
    steps = check_int(api, "steps", steps, minimum=1)
    batch_size = check_int(api, "batch_size", batch_size, minimum=1)
    eval_every = _check_schedule(api, steps, eval_every)
    if chunk_size is not None:
        chunk_size = check_int(api, "chunk_size", chunk_size, minimum=1)
    if seeds > 2**32:
        raise ValueError(
            f"`{api}` needs `seeds` <= 2**32 (seed indices are folded into the key as uint32); "
            f"got {seeds}. Split the work over several keys."
        )
    return seeds, steps, batch_size, eval_every, chunk_size


def _check_schedule(api: str, steps: int, eval_every: int | None) -> int:
    """``eval_every`` (about ``_TARGET_EVALS`` evaluations when None); it must divide ``steps``."""
    if eval_every is None:
        eval_every = min(divisors(steps), key=lambda d: (abs(steps // d - _TARGET_EVALS), d))
    eval_every = check_int(api, "eval_every", eval_every, minimum=1)
    if steps % eval_every:
        near = sorted(divisors(steps), key=lambda d: abs(d - eval_every))[:3]
        raise ValueError(
            f"`{api}` needs `eval_every` to divide `steps`; got steps={steps}, "
            f"eval_every={eval_every}. Use e.g. eval_every in {sorted(near)}."
        )
    return eval_every


def _check_optimizer(api: str, optimizer: Any) -> optax.GradientTransformation:
    """The optax optimiser (Adam at 1e-3 when None)."""
    opt = _DEFAULT_OPTIMIZER if optimizer is None else optimizer
    if not isinstance(opt, optax.GradientTransformation):
        raise TypeError(
            f"`{api}` needs `optimizer` to be an optax GradientTransformation such as "
            f"`optax.adam(1e-3)`; got {optimizer!r}."
        )
    return opt


def _check_role_inits(api: str, bias_init: Any, readout_init: Any) -> Any:
    """The biases' initialiser (``zeros`` when None); both must be None or callables."""
    bias_init = zeros if bias_init is None else bias_init
    for name, fn in (("bias_init", bias_init), ("readout_init", readout_init)):
        if fn is not None and not callable(fn):
            raise TypeError(
                f"`{api}` needs `{name}` to be None or a `(key, shape, dtype)` initialiser such "
                f"as `jinit.zeros`; got {fn!r} of type {type(fn).__name__}."
            )
    return bias_init


def _build_model(
    api: str, model: Any, inits: dict[str, Any], ds: Any, bias_init: Any, readout_init: Any
) -> tuple[Any, dict[str, Any], dict[str, str]]:
    """The trainable model, each initialiser's spec and its description."""
    if isinstance(model, MLP):
        net: Any = MLPClassifier(model, int(np.prod(ds.x_train.shape[1:])), ds.n_classes)
        specs = {
            label: tuple(sorted(resolve_roles(api, label, v, bias_init, readout_init).items()))
            for label, v in inits.items()
        }
        spec_repr = {label: describe_spec(v) for label, v in inits.items()}
        return net, {label: RoleSpec(s) for label, s in specs.items()}, spec_repr
    if isinstance(model, tuple) and len(model) == 2 and all(callable(f) for f in model):
        net = CustomModel(*model)
        init_spec = {label: Opaque(v) for label, v in inits.items()}
        return net, init_spec, {label: init_label(v) for label, v in inits.items()}
    raise TypeError(
        f"`{api}` needs `model` to be `jinit.mlp(width, depth, ...)` or a pair "
        f"(init_fn, apply_fn) of callables; got {model!r} of type {type(model).__name__}."
    )


def _plan_rows(
    api: str,
    net: Any,
    ds: Any,
    init_spec: dict[str, Any],
    seeds: int,
    root: jax.Array,
    devices: Any,
    chunk_size: int | None,
    batch_size: int,
    n_evals: int,
) -> tuple[list, SeedPlan]:
    """The devices and the chunk plan of the (initialiser, seed) rows, after probing every
    initialiser abstractly and checking the memory of one compiled call and of the results."""
    devs = check_devices(api, devices, allow_global=False)
    labels = list(init_spec)
    n_rows = len(labels) * seeds
    engine = SeedPlan.create(
        devs, n_rows, n_rows if chunk_size is None else min(chunk_size, n_rows)
    )
    # Before any compile: every initialiser probed abstractly, the logits' shape checked, and
    # the memory of one compiled call and of the kept results estimated.
    param_bytes = max(probe_model(api, net, label, init_spec[label], ds, root) for label in labels)
    check_train_memory(
        api, net, ds, devs, param_bytes, n_rows, engine.chunk, chunk_size, batch_size, n_evals
    )
    return devs, engine


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
    seeds, steps, batch_size, eval_every, chunk_size = _check_sizes(
        api, seeds, steps, batch_size, eval_every, chunk_size
    )
    opt = _check_optimizer(api, optimizer)
    root, key_record = train_root_key(api, key)
    ds = check_data(api, data)
    inits = normalize_inits(api, inits)
    check_progress(api, progress)
    bias_init = _check_role_inits(api, bias_init, readout_init)
    net, init_spec, spec_repr = _build_model(api, model, inits, ds, bias_init, readout_init)
    n_evals = steps // eval_every
    devs, engine = _plan_rows(
        api, net, ds, init_spec, seeds, root, devices, chunk_size, batch_size, n_evals
    )
    return TrainPlan(
        t0=t0,
        model=model,
        net=net,
        ds=ds,
        labels=list(init_spec),
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
        n_rows=len(init_spec) * seeds,
        chunk=engine.chunk,
        n_chunks=engine.n_chunks,
        progress=progress,
    )


def _draw_rows(api: str, plan: TrainPlan, rows: np.ndarray, drawn: dict, param_keys: list) -> Any:
    """The stacked initial parameters of ``rows`` (row r: initialiser r // seeds, seed
    r % seeds); each initialiser's per-seed parameters are drawn once, on first use, into
    ``drawn`` (host arrays)."""
    seeds, labels = plan.seeds, plan.labels
    for i in sorted(set((rows // seeds).tolist())):
        label = labels[i]
        if label in drawn:
            continue
        try:
            drawn[label] = [
                jax.tree_util.tree_map(
                    np.asarray, draw_params(k, model=plan.net, spec=plan.init_spec[label])
                )
                for k in param_keys
            ]
        except (TypeError, ValueError) as e:
            kind = TypeError if isinstance(e, TypeError) else ValueError
            raise kind(f"`{api}`: initialising {label!r} failed: {e}") from e
    trees = [drawn[labels[r // seeds]][r % seeds] for r in rows]
    return jax.tree_util.tree_map(lambda *xs: np.stack(xs), *trees)


def _train_config(plan: TrainPlan) -> TrainConfig:
    """The ``TrainResult.config`` of a run of ``plan``."""
    ds, net, model, c = plan.ds, plan.net, plan.model, plan.ds.n_classes
    return TrainConfig(
        data=ds.name,
        n_train=int(len(ds.y_train)),
        n_test=int(len(ds.y_test)),
        n_classes=c,
        model=net.describe(),
        architecture=model.config() if isinstance(model, MLP) else net.describe(),
        seeds=plan.seeds,
        steps=plan.steps,
        batch_size=plan.batch_size,
        eval_every=plan.eval_every,
        optimizer="adam(learning_rate=0.001)" if plan.optimizer is None else "custom optax",
        key=plan.key_record,
        bias_init=init_label(plan.bias_init),
        readout_init="swept" if plan.readout_init is None else init_label(plan.readout_init),
        devices=len(plan.devs),
        platform=plan.devs[0].platform,
        chunk_size=plan.chunk,
        chance_loss=math.log(c),
        chance_accuracy=1.0 / c,
        elapsed_seconds=round(time.perf_counter() - plan.t0, 2),
    )


def run_train(plan: TrainPlan, progress: Callable[[int, int], None] | None = None) -> TrainResult:
    """Runs a :class:`TrainPlan` from :func:`prepare_train`; ``progress`` (if given) replaces
    the plan's callback. Returns the :class:`TrainResult`."""
    api = "train_sweep"
    progress = check_progress("run_train", progress) or plan.progress
    net, opt, seeds, eval_every = plan.net, plan.opt, plan.seeds, plan.eval_every
    engine = SeedPlan.create(plan.devs, plan.n_rows, plan.chunk, axis="rows")
    data_dev = engine.put_replicated(
        (plan.ds.x_train, plan.ds.y_train, plan.ds.x_test, plan.ds.y_test)
    )

    n_evals = plan.steps // eval_every
    seg = n_evals
    if progress is not None:
        seg = min(d for d in divisors(n_evals) if n_evals // d <= _MAX_SEGMENTS)
    total = plan.n_chunks * plan.steps
    if progress is not None:
        progress(0, total)

    # Row r = (initialiser r // seeds, seed r % seeds); padding rows repeat the last one.
    # Keys are derived eagerly and rows are assembled on the host (no compiles for either).
    seed_keys = [jax.random.fold_in(plan.root, s) for s in range(seeds)]
    param_keys = [jax.random.fold_in(k, 0) for k in seed_keys]
    data_keys = np.stack(
        [np.asarray(jax.random.key_data(jax.random.fold_in(k, 1))) for k in seed_keys]
    )
    key_impl = jax.random.key_impl(seed_keys[0])
    drawn: dict[str, list] = {}  # label -> per-seed initial params (host arrays)
    results = np.full((plan.n_rows, n_evals + 1, len(METRICS)), np.nan, np.float32)
    done = 0
    for block in engine.blocks():
        rows, valid = block.index.astype(np.int64), block.valid
        params = engine.put(_draw_rows(api, plan, rows, drawn, param_keys))
        dkeys = jax.random.wrap_key_data(engine.put(data_keys[rows % seeds]), impl=key_impl)
        state, m0 = start_rows(params, dkeys, data_dev, model=net, optimizer=opt)
        state = engine.put(state)  # the loop's input sharding, every call
        results[rows[:valid], 0] = np.asarray(m0)[:valid]
        for s in range(n_evals // seg):
            periods = jnp.arange(s * seg, (s + 1) * seg, dtype=jnp.int32)
            state, m = run_segment(
                state,
                engine.put_replicated(periods),
                data_dev,
                model=net,
                optimizer=opt,
                batch_size=plan.batch_size,
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
        for i, label in enumerate(plan.labels)
    }
    config = _train_config(plan)
    return TrainResult(config, np.arange(n_evals + 1) * eval_every, curves, plan.spec_repr)
