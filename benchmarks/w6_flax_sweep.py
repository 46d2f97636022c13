"""W6, sweeping a real Flax model: Flax's ImageNet ResNet-18 (linen, BatchNorm in training mode).

``jinit.sweep(jinit.linen_model(ResNet-18), {he_normal, glorot_uniform, normal(0.01)})`` with a
tiny width (the model definition is ``tests/real_models.py``'s faithful copy of Flax's
``examples/imagenet/models.py``), each variant in a fresh subprocess:

* **per-initialiser programs** (``one_program=False``: what jinit did before issue 11): the
  network is traced and compiled once per initialiser;
* **one program** (the default): the initialisers are the branches of a ``lax.switch`` on a
  traced index, so the network is compiled once for all of them;
* **one program, fast compile**: the same with ``compiler_options={"xla_backend_optimization_level":
  0, "xla_llvm_disable_expensive_passes": True}`` (one-off sweeps of big models).

Compile time and run time are the ``SweepResult.compile_seconds`` / ``run_seconds`` fields
(compile: ``jit(...).lower(...).compile()``; run: every chunk of every initialiser, including
the host copies); the probe (abstract trace of every initialiser before any compile) is timed
apart as ``prepare``.

    python benchmarks/w6_flax_sweep.py [--quick]
"""

from __future__ import annotations

import sys
import time
from typing import Any

if __package__ in (None, ""):  # run as a script
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))

from benchmarks import _common as C

_RUN = """
import dataclasses, json, sys, time
sys.path.insert(0, "tests")
import jax
jax.config.update("jax_num_cpu_devices", {devices})
from functools import partial
import flax.linen as nn
import jinit
import real_models as rm
from jinit.sweeps._flax_models import linen_model
from jinit.sweeps._propagate import prepare_sweep, run_sweep

def build(init):
    return rm.ResNet(stage_sizes={stages}, block_cls=rm.ResNetBlock, num_classes=10,
                     num_filters={filters}, conv=partial(nn.Conv, kernel_init=init),
                     bn_axis_name=None)

sample = lambda k, b, dt: jax.random.normal(k, (b, {image}, {image}, 3), dt)
model = linen_model(build, sample, name="resnet18", apply_kwargs={{"mutable": ["batch_stats"]}})
inits = {{"he": jinit.he_normal(), "glorot": jinit.glorot_uniform(), "small": jinit.normal(0.01)}}
t0 = time.perf_counter()
plan = prepare_sweep(model, inits, seeds={seeds}, batch={batch}, devices={devices},
                     compiler_options={options})
plan = dataclasses.replace(plan, one_program={one})
prepare = time.perf_counter() - t0
r = run_sweep(plan)
total = time.perf_counter() - t0
print(json.dumps(dict(prepare_s=prepare, compile_s=r.compile_seconds, run_s=r.run_seconds,
                      total_s=total, programs=r.config["compiled_programs"],
                      layers=r.n_layers)))
"""

_FAST = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


def run(quick: bool = False) -> dict[str, Any]:
    t0 = time.perf_counter()
    machine = C.machine_info()
    params = {
        "stages": [1, 1, 1, 1] if quick else [2, 2, 2, 2],
        "filters": 4 if quick else 8,
        "image": 16 if quick else 32,
        "seeds": 4,
        "batch": 8,
        "devices": 2,
    }
    variants = [
        ("per-initialiser programs (before)", False, None),
        ("one program (default)", True, None),
        ("one program, fast compile", True, _FAST),
    ]
    rows = []
    for name, one, options in variants:
        code = _RUN.format(one=one, options=repr(options), **params)
        m = C.run_subprocess(code, timeout=3600)
        rows.append({"variant": name, **m})
    before, after = rows[0], rows[1]
    speedup = before["total_s"] / after["total_s"]
    goals = [
        C.goal(
            "W6",
            "ResNet-18 sweep of 3 initialisers: one compile, not one per initialiser",
            f"{before['programs']} → {after['programs']} program(s); compile "
            f"{before['compile_s']:.0f} → {after['compile_s']:.0f} s; total "
            f"{before['total_s']:.0f} → {after['total_s']:.0f} s ({speedup:.1f}×)",
            after["programs"] == 1 and after["compile_s"] < before["compile_s"],
            "compile time dominates (vmapped convolutions with per-seed kernels); the run "
            "itself takes seconds",
        )
    ]
    stages = "-".join(map(str, params["stages"]))
    return {
        "name": "w6_flax_sweep",
        "title": "W6 — sweeping Flax's ImageNet ResNet (BatchNorm, training mode), "
        f"stages {stages}, {params['filters']} filters, {params['image']}² images",
        "machine": machine,
        "params": {**params, "quick": quick},
        "rows": rows,
        "columns": [
            ("variant", "variant"),
            ("programs", "compiled programs"),
            ("prepare_s", "prepare (s)"),
            ("compile_s", "compile (s)"),
            ("run_s", "run (s)"),
            ("total_s", "total (s)"),
        ],
        "goals": goals,
        "notes": [
            f"{params['seeds']} seeds of batch {params['batch']} on {params['devices']} CPU "
            "devices, 3 initialisers (he_normal, glorot_uniform, normal(0.01)); each variant "
            "in a fresh process.",
        ],
        "elapsed_s": time.perf_counter() - t0,
    }


def main(argv: list[str] | None = None) -> int:
    return C.main_for(run, argv, __doc__)


if __name__ == "__main__":
    sys.exit(main())
