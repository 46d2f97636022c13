"""W2, many small networks: MLP width 64, depth 20, batch 256, 2000 seeds.

The same contenders as W1 (:mod:`benchmarks.w1_textbook`): a numpy loop, a torch loop (best of
``cores`` threads and 1 thread), ``jinit.sweep`` (forward + backward + statistics), its
forward-only mode, the peers' forward work written as ``jit(vmap(scan))`` with a jinit
initialiser, and a torch loop doing the full sweep's work (forward + backward). The loops' cost
per seed is constant, so they run on a subset of the seeds each round (their seeds/s is what is
compared); jinit runs all 2000 seeds. Goals of issue 13: forward ≥ 2× the best loop, full
sweep ≥ 1.5× the torch forward + backward loop.

    python benchmarks/w2_small_nets.py [--quick]
"""

from __future__ import annotations

import sys
import time
from typing import Any

if __package__ in (None, ""):  # run as a script
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))

from benchmarks import _common as C
from benchmarks.w1_textbook import COLUMNS, mlp_experiment, mlp_goals, roofline_note


def run(quick: bool = False) -> dict[str, Any]:
    t0 = time.perf_counter()
    C.use_all_cores()  # one CPU device per core, before anything starts jax
    machine = C.machine_info()
    if quick:
        params = dict(width=32, depth=4, batch=32, seeds=16, repeats=1, quick=True)
        peer_seeds = {"numpy": 16, "torch": 16}
    else:
        params = dict(width=64, depth=20, batch=256, seeds=2000, repeats=4, quick=False)
        peer_seeds = {"numpy": 400, "torch": 200}
    exp = mlp_experiment(
        workload="W2",
        width=params["width"],
        depth=params["depth"],
        batch=params["batch"],
        seeds=params["seeds"],
        peer_seeds=peer_seeds,
        repeats=params["repeats"],
    )
    return {
        "name": "w2_small_nets",
        "title": "W2 — many small networks (MLP 64×20, batch 256, 2000 seeds)",
        "machine": machine,
        "params": params,
        "rows": exp["rows"],
        "columns": COLUMNS,
        "goals": mlp_goals("W2", exp, 2.0, None, full_ratio=1.5),
        "roofline": exp["roofline"],
        "raw": {k: v for k, v in exp.items() if k not in ("rows", "roofline")},
        "notes": [
            roofline_note(exp["roofline"], params),
            f"The loops ran {peer_seeds['numpy']} (numpy) and {peer_seeds['torch']} (torch) "
            "seeds per round; their per-seed cost does not depend on the seed count.",
        ],
        "elapsed_s": time.perf_counter() - t0,
    }


def main(argv: list[str] | None = None) -> int:
    return C.main_for(run, argv, __doc__)


if __name__ == "__main__":
    sys.exit(main())
