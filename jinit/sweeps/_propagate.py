"""Propagation sweeps: measured vs predicted activation and gradient statistics over seeds.

A sweep draws, for every seed, fresh parameters and a fresh input batch, runs the network
forward and backward, and records per layer :math:`l`:

* pre-activation :math:`h^l` and activation :math:`a^l=\varphi(h^l)`: second moment, mean, std;
* the fraction of dead units (activation zero on every example of the batch) and the number of
  distinct units (a zero or constant initialisation makes every unit compute the same function:
  the symmetry that random initialisation exists to break);
* the layer output :math:`x^l` (the residual stream of a residual stack): second moment, mean,
  std;
* the per-unit second moment of :math:`g^l = \\partial\\mathcal L/\\partial h^l` for the probe
  loss :math:`\\mathcal L = \\langle v, y\rangle` (below), the second moment of
  :math:`\\partial\\mathcal L/\\partial x^l`, and the Frobenius norm of the gradient of every
  parameter;
* the number of non-finite entries (an exploding initialisation is reported, never a crash).

Gradient normalisation. The probe loss is :math:`\\mathcal L = \\langle v, y\rangle =
\\sum_i v_i y_i` with :math:`v\\sim\\mathcal N(0, I)` drawn per seed, independent of the network,
on one tensor :math:`y`: the last pre-activation :math:`h^L` for plain stacks (the convention of
:func:`jinit.theory.predict_mlp`), the network output :math:`x^L` for the transformer (the
residual stream after the last block), the model output for Flax models. Then
:math:`\\partial\\mathcal L/\\partial y = v`, so the reported per-unit second moment is
:math:`\\mathbb E[v_i^2] = 1` exactly at :math:`y`: every gradient figure is the factor by which
the backward pass has amplified (> 1) or attenuated (< 1) a unit-variance error signal between
the output and that tensor. For a linear map :math:`y = xW` (fan-in :math:`n_{in}`, fan-out
:math:`n_{out}`), :math:`\\mathbb E[(\\partial\\mathcal L/\\partial x_j)^2] = n_{out}\\mathrm{Var}
(W)`, e.g. 1 for LeCun-in with square layers. No quantity is rescaled per layer. Putting
:math:`\\mathcal L` on :math:`h^L` of a transformer (inside the last block's MLP) would make the
last row 1 and every earlier row :math:`\approx n_{out}\\mathrm{Var}(W_2)\\,\\mathbb E[\varphi'^2]`
(:math:`\\sim 10^{-3}` for :math:`\\mathcal N(0, 0.02^2)`): a cliff that says where the loss sits,
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

import dataclasses
import time
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from jinit._core._checks import check_int, check_real
from jinit._core._seeds import (
    CompiledCache,
    SeedPlan,
    check_devices,
    linalg_safe_devices,
    root_key,
)
from jinit.sweeps._configs import sweep_config
from jinit.sweeps._flax_helpers import check_flag
from jinit.sweeps._network_base import Network
from jinit.sweeps._statistics import builtin_seed_fn, keeps_params
from jinit.sweeps._sweep_checks import (
    check_compiler_options,
    check_float_dtype,
    check_progress,
    check_seed,
    normalize_inits,
    own_mesh,
)
from jinit.sweeps._sweep_plan import (
    check_bias_init,
    check_network,
    check_seed_count,
    plan_chunk_size,
    probe_network,
)
from jinit.sweeps._sweep_result import SweepResult
from jinit.sweeps._sweep_theory import predict

# ---------------------------------------------------------------------------------------------
# The sweep: plan and run
# ---------------------------------------------------------------------------------------------


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
    gradients: bool = True,
    theory: bool = True,
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
      gradients: also run the backward pass of the probe loss and record the gradient
        quantities (``grad.*``, ``grad_output.*``, ``param_grad_norm.*``). ``False`` records
        the forward statistics only (the textbook experiment): no backward pass, nothing saved
        for one, so a sweep runs about 3× fewer matmuls and fits bigger chunks; the forward
        statistics are those of the full sweep up to float rounding.
      theory: compute the mean-field predictions (``SweepResult.prediction``). ``False``
        skips them (each note says so): the traced theory of a deep Flax model with attention
        costs about a second per block and initialiser, more than the sweep where seeds are
        few.

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
    theory = check_flag("sweep", "theory", theory)
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
        gradients=gradients,
    )
    return run_sweep(dataclasses.replace(plan, theory=theory))


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
    gradients: bool = True
    theory: bool = True


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
    gradients: bool = True,
) -> SweepPlan:
    """Checks every argument of :func:`sweep` (same signature) and probes every initialiser
    abstractly, without compiling anything; :func:`run_sweep` runs the returned plan.

    Raises:
      ValueError, TypeError: as :func:`sweep`.
    """
    # Every argument is checked, and every initialiser probed (abstractly), before any compile.
    api = "sweep"
    is_builtin = check_network(api, network)
    seeds = check_seed_count(api, seeds)
    seed = check_seed(api, "seed", seed)
    batch = network.default_batch() if batch is None else check_int(api, "batch", batch, minimum=1)
    if chunk_size is not None:
        chunk_size = check_int(api, "chunk_size", chunk_size, minimum=1)
    sample_size = check_int(api, "sample_size", sample_size, minimum=1)
    input_second_moment = check_real(api, "input_second_moment", input_second_moment, positive=True)
    dtype = check_float_dtype(api, dtype)
    gradients = check_flag(api, "gradients", gradients)
    bias_init = check_bias_init(api, network, bias_init, is_builtin)
    inits = normalize_inits(inits, api)
    check_progress(api, progress)
    devs = linalg_safe_devices(check_devices(api, devices), list(inits.values()))
    # the root key lives on the sweep's own seed mesh, whatever mesh the caller has set
    with own_mesh(Mesh(np.array(devs), ("seeds",))):
        root = root_key(api, seed, key_impl)

    per_seed, out_bytes, working = probe_network(
        api, network, inits, bias_init, batch, dtype, sample_size, root, devs, gradients
    )
    sizes = (per_seed, out_bytes, len(inits), sample_size, working)
    chunk_size = plan_chunk_size(api, devs, seeds, batch, chunk_size, *sizes)
    engine = SeedPlan.create(devs, seeds, chunk_size)
    return SweepPlan(
        network,
        inits,
        seeds,
        batch,
        bias_init,
        dtype,
        seed,
        devs,
        engine.chunk,
        engine.n_chunks,
        sample_size,
        input_second_moment,
        root,
        progress,
        compiler_options=check_compiler_options(api, compiler_options),
        gradients=gradients,
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


def _group_seed_fn(
    plan: SweepPlan,
    init: Callable[..., Any],
    counter: list,
    names: list,
    root: jax.Array,
    exact_stats: bool,
) -> Callable[[jax.Array], Any]:
    """The per-seed function of ``plan.network`` drawing its parameters with ``init``, its
    seeds' keys folded from ``root``; its statistics exact, or one-pass stds and flags."""
    network = plan.network
    args = (
        init,
        plan.bias_init,
        plan.batch,
        plan.dtype,
        plan.sample_size,
        plan.input_second_moment,
        root,
        counter,
    )
    if isinstance(network, Network):
        keep = keeps_params(network, plan.batch, plan.dtype)
        return builtin_seed_fn(
            network, *args, keep_params=keep, gradients=plan.gradients, exact_stats=exact_stats
        )
    return network.seed_fn(
        *args, names_out=names, gradients=plan.gradients, exact_stats=exact_stats
    )


#: compiled chunk programs kept across calls: a sweep of the same network, initialisers,
#: batch, dtype, chunk and devices (any ``seeds`` count or ``seed``) compiles once
_PROGRAMS = CompiledCache(8)


@dataclasses.dataclass
class _Program:
    """A compiled chunk program, how often its per-seed function was traced and the layer
    names its trace found (Flax models)."""

    compiled: Any
    counter: list
    names: list


def _program_key(plan: SweepPlan, group: list[str], exact_stats: bool = False) -> tuple:
    """Everything that shapes the trace of a group's chunk program (not the seeds or ``seed``:
    the root key is an argument)."""
    options = plan.compiler_options
    return (
        plan.network,
        tuple(plan.inits[label] for label in group),
        plan.bias_init,
        plan.batch,
        plan.dtype.str,
        plan.sample_size,
        plan.input_second_moment,
        plan.gradients,
        plan.chunk_size,
        tuple(plan.devs),
        None if options is None else tuple(sorted(options.items())),
        str(jax.random.key_impl(plan.root)),
        exact_stats,
    )


def _compile_group(
    plan: SweepPlan, engine: SeedPlan, group: list[str], exact_stats: bool = False
) -> _Program:
    """Compiles the chunk program ``vmap(per-seed function)`` over a chunk of seed indices,
    with the index of the initialiser and the root key's data as replicated, unbatched
    arguments (so one program serves every initialiser of the group and every ``seed``).
    Without ``exact_stats`` its stds are one-pass and its non-finite counts are flags
    (:func:`_recheck_flagged`)."""
    counter, which, names = [0], [None], []
    init = _switch_init([plan.inits[label] for label in group], which)
    impl = jax.random.key_impl(plan.root)

    def fn(idx, w, root_data):
        which[0] = w
        root = jax.random.wrap_key_data(root_data, impl=impl)
        return _group_seed_fn(plan, init, counter, names, root, exact_stats)(idx)

    data = jax.random.key_data(plan.root)
    jitted = jax.jit(
        jax.vmap(fn, in_axes=(0, None, None)),
        in_shardings=(engine.sharding, engine.replicated, engine.replicated),
        out_shardings=engine.sharding,
    )
    compiled = jitted.lower(
        jax.ShapeDtypeStruct((plan.chunk_size,), jnp.uint32, sharding=engine.sharding),
        jax.ShapeDtypeStruct((), jnp.int32, sharding=engine.replicated),
        jax.ShapeDtypeStruct(data.shape, data.dtype, sharding=engine.replicated),
    ).compile(compiler_options=plan.compiler_options)
    return _Program(compiled, counter, names)


def _run_chunks(
    engine: SeedPlan,
    plan: SweepPlan,
    compiled: Any,
    index: int,
    label: str = "",
    progress: Callable[[str, int, int], None] | None = None,
    rows: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Runs every chunk of seeds (or of the seed indices ``rows``) for the initialiser
    ``index``; returns its per-seed results."""
    w = engine.put_replicated(np.asarray(index, np.int32))
    root = engine.put_replicated(np.asarray(jax.random.key_data(plan.root)))
    return engine.run(
        lambda block: compiled(engine.put(block.index), w, root),
        rows,
        on_chunk=None if progress is None else (lambda c: progress(label, c, engine.n_chunks)),
    )


_COUNTS = ("nonfinite", "grad.nonfinite")


def _recheck_flagged(
    engine: SeedPlan, plan: SweepPlan, group: list[str], index: int, out: dict[str, np.ndarray]
) -> float:
    """Replaces the rows of the flagged seeds in ``out`` (one initialiser's per-seed results)
    by exact ones, in place; returns the seconds spent compiling. The chunk program counts 0
    for a layer whose means of squares are finite and whose one-pass stds are well conditioned,
    and flags the others NaN (:func:`~jinit.sweeps._statistics.forward_stats`); the flagged
    seeds alone run again through a program that counts every non-finite entry and takes
    two-pass stds (compiled only then), and their whole rows are taken from it."""
    names = [n for n in _COUNTS if n in out]
    flagged = [np.isnan(out[n].reshape(len(out[n]), -1)).any(axis=1) for n in names]
    rows = np.flatnonzero(np.any(flagged, axis=0)).astype(np.uint32)
    if rows.size == 0:
        return 0.0
    t0 = time.perf_counter()
    program = _PROGRAMS.get(
        _program_key(plan, group, exact_stats=True),
        lambda: _compile_group(plan, engine, group, exact_stats=True),
    )
    compile_s = time.perf_counter() - t0
    sub = SeedPlan.create(engine.devices, rows.size, engine.chunk)
    exact = _run_chunks(sub, plan, program.compiled, index, rows=rows)
    for n, values in exact.items():
        if n in out:
            out[n][rows] = values
    return compile_s


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
    engine = SeedPlan.create(plan.devs, plan.seeds, plan.chunk_size)
    labels = list(plan.inits)
    groups = [labels] if plan.one_program else [[label] for label in labels]

    per_seed_out: dict[str, dict[str, np.ndarray]] = {}
    traces: dict[str, int] = {}
    layer_names: list[tuple[str, ...]] = []
    compile_s = run_s = 0.0
    with own_mesh(engine.mesh):
        for group in groups:
            if progress is not None:
                progress(group[0], 0, plan.n_chunks)  # the first initialiser's call also compiles
            t0 = time.perf_counter()
            program = _PROGRAMS.get(
                _program_key(plan, group), lambda g=group: _compile_group(plan, engine, g)
            )
            compile_s += time.perf_counter() - t0
            if not isinstance(plan.network, Network):
                layer_names = program.names
            for i, label in enumerate(group):
                t0 = time.perf_counter()
                if progress is not None and i > 0:
                    progress(label, 0, plan.n_chunks)
                per_seed_out[label] = _run_chunks(
                    engine, plan, program.compiled, i, label, progress
                )
                recompile_s = _recheck_flagged(engine, plan, group, i, per_seed_out[label])
                compile_s += recompile_s
                run_s += time.perf_counter() - t0 - recompile_s
                traces[label] = program.counter[0]
    predicted: dict[str, dict[str, np.ndarray] | None] = {}
    notes: dict[str, str] = {}
    specs = {label: repr(init) for label, init in plan.inits.items()}
    for label, init in plan.inits.items():
        if not plan.theory:
            predicted[label], notes[label] = None, "no prediction: the sweep ran with theory=False"
            continue
        predicted[label], notes[label] = predict(
            plan.network,
            init,
            plan.bias_init,
            dtype=plan.dtype,
            input_second_moment=plan.input_second_moment,
            batch=plan.batch,
        )

    n_layers = next(iter(per_seed_out.values()))["act.second_moment"].shape[1]
    config = sweep_config(plan, n_layers, traces, len(groups))
    if layer_names:
        config.layer_names = ["/".join(n) for n in layer_names]
    return SweepResult(
        config,
        per_seed_out,
        predicted,
        notes,
        specs,
        compile_seconds=compile_s,
        run_seconds=run_s,
    )
