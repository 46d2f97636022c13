"""The typed configurations of sweep and training results (:class:`SweepConfig`,
:class:`TrainConfig`): what a run was, as named fields, readable by attribute and, for code and
JSON written against the dicts they replace, as mappings (see :mod:`jinit._core._record`)."""

from __future__ import annotations

import dataclasses
from typing import Any

import jax

from jinit._core._record import UNSET, Record


@dataclasses.dataclass(eq=False, repr=False)
class SweepConfig(Record):
    """The configuration of a :class:`jinit.SweepResult` (``result.config``).

    Every field is optional (a hand-made result may set a few); :func:`jinit.sweep` sets all
    but ``layer_names`` (Flax models only), ``elapsed_seconds`` (``jinit sweep``) and
    ``run_id`` (set when the result is saved). Read ``config.seeds`` or ``config["seeds"]``.

    Attributes:
      network: the network's description, e.g. ``'MLP width 512, depth 10, relu, bias'``.
      architecture: the network's own configuration (a JSON-ready dict).
      layers: number of recorded layers.
      units: units per layer (``None`` when layers differ).
      batch: examples per seed.
      seeds: number of seeds.
      seed: the root seed.
      dtype: the parameters' dtype name.
      devices: devices the seeds were sharded over.
      platform: their platform (``'cpu'``, ``'gpu'``, ``'tpu'``).
      processes: processes those devices belong to.
      chunk_size: seeds per compiled call.
      chunks: compiled calls per initialiser.
      input_second_moment: :math:`\\mathbb E[x^2]` of the input.
      bias_init: repr of the biases' initialiser.
      key_impl: the PRNG implementation of the seeds' keys.
      loss: the probe loss the gradients are measured for.
      judged: what the verdicts judge (see :attr:`jinit.SweepResult.judged`).
      stable_band: ``(low, high)`` band of the stability verdict.
      traces: ``{label: times the per-seed function was traced}``.
      compiled_programs: programs compiled (1: one for all initialisers).
      gradients: whether the backward pass ran (``False``: forward statistics only).
      layer_names: the recorded layers' module paths (Flax models).
      elapsed_seconds: wall time of the whole command (``jinit sweep``).
      run_id: the id stamped into every file written from the result.
    """

    network: str = UNSET
    architecture: dict[str, Any] = UNSET
    layers: int = UNSET
    units: int | None = UNSET
    batch: int = UNSET
    seeds: int = UNSET
    seed: int = UNSET
    dtype: str = UNSET
    devices: int = UNSET
    platform: str = UNSET
    processes: int = UNSET
    chunk_size: int = UNSET
    chunks: int = UNSET
    input_second_moment: float = UNSET
    bias_init: str = UNSET
    key_impl: str = UNSET
    loss: str = UNSET
    judged: dict[str, str] = UNSET
    stable_band: tuple[float, float] = UNSET
    traces: dict[str, int] = UNSET
    compiled_programs: int = UNSET
    gradients: bool = UNSET
    layer_names: list[str] = UNSET
    elapsed_seconds: float = UNSET
    run_id: str = UNSET


@dataclasses.dataclass(eq=False, repr=False)
class TrainConfig(Record):
    """The configuration of a :class:`jinit.TrainResult` (``result.config``).

    Every field is optional (a hand-made result may set a few); :func:`jinit.train_sweep` sets
    all but ``run_id`` (set when the result is saved). Read ``config.steps`` or
    ``config["steps"]``.

    Attributes:
      data: the dataset's name.
      n_train: training examples.
      n_test: test examples.
      n_classes: number of classes C.
      model: the model's description.
      architecture: the model's own configuration.
      seeds: seeds per initialiser.
      steps: optimiser steps.
      batch_size: examples per step.
      eval_every: steps between evaluations.
      optimizer: the optimiser's description.
      key: the root key (an int seed, or the key's data).
      bias_init: the biases' initialiser.
      readout_init: the read-out's initialiser (``'swept'``: the swept one).
      devices: devices the rows were sharded over.
      platform: their platform.
      chunk_size: rows per compiled call.
      chance_loss: :math:`\\log C`, the loss of a uniform guess.
      chance_accuracy: :math:`1/C`.
      elapsed_seconds: wall time of the run.
      run_id: the id stamped into every file written from the result.
    """

    data: str = UNSET
    n_train: int = UNSET
    n_test: int = UNSET
    n_classes: int = UNSET
    model: str = UNSET
    architecture: dict[str, Any] = UNSET
    seeds: int = UNSET
    steps: int = UNSET
    batch_size: int = UNSET
    eval_every: int = UNSET
    optimizer: str = UNSET
    key: Any = UNSET
    bias_init: str = UNSET
    readout_init: str = UNSET
    devices: int = UNSET
    platform: str = UNSET
    chunk_size: int = UNSET
    chance_loss: float = UNSET
    chance_accuracy: float = UNSET
    elapsed_seconds: float = UNSET
    run_id: str = UNSET


def sweep_config(plan: Any, n_layers: int, traces: dict[str, int], n_programs: int) -> SweepConfig:
    """The ``SweepResult.config`` of a run of ``plan`` (a ``SweepPlan`` that compiled
    ``n_programs`` programs, their per-seed functions traced ``traces`` times)."""
    network, devs = plan.network, plan.devs
    return SweepConfig(
        network=network.describe(),
        architecture=network.config(),
        layers=n_layers,
        units=network.units(),
        batch=plan.batch,
        seeds=plan.seeds,
        seed=plan.seed,
        dtype=plan.dtype.name,
        devices=len(devs),
        platform=devs[0].platform,
        processes=len({d.process_index for d in devs}),
        chunk_size=plan.chunk_size,
        chunks=plan.n_chunks,
        input_second_moment=plan.input_second_moment,
        bias_init=repr(plan.bias_init),
        key_impl=str(jax.random.key_impl(plan.root)),
        loss=network.loss_description(),
        judged=network.judged(),
        stable_band=(0.1, 10.0),
        traces=traces,
        compiled_programs=n_programs,
        gradients=plan.gradients,
    )
