"""W5, statistics: one default ``jinit.testing.assert_follows_law`` call on (512, 512).

``assert_follows_law(jinit.he_normal(), (512, 512), key=k)`` with every default (16 seeds, 4.2 M
values, ``alpha = 1e-6``), in a fresh process with one CPU device per core (as ``jinit sweep``
runs): the first call traces and compiles the statistics sweep (and runs the unrolled
sampler's one-off self-check), later calls with new keys reuse it; the steady state is the
median of the repeats. Each call is synchronous (the statistics come back to the host), so no
extra ``block_until_ready`` is needed. Issue 6 sets no target; the README quoted 0.67 s
steady state and ≈ 3.5 s compile on this machine.

Beside it, the first call of an initialiser in a fresh process (JAX already started):
``jinit.he_normal()(key, (512, 512))`` against ``jax.nn.initializers.he_normal()``, each in its
own process, median of three processes: jinit's first call includes that self-check.

    python benchmarks/w5_stats.py [--quick]
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any

if __package__ in (None, ""):  # run as a script
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))

from benchmarks import _common as C

_STATS = """
import json
from benchmarks import _common as C
C.use_all_cores()
import jax, jinit
from jinit.testing import assert_follows_law, default_seeds
jax.numpy.ones(3).block_until_ready()  # the runtime started, as in any session
init, shape = jinit.he_normal(), {shape}
first = C.timed(lambda: assert_follows_law(init, shape, key=0))
steady = [C.timed(lambda i=i: assert_follows_law(init, shape, key=i + 1)) for i in range({repeats})]
print(json.dumps(dict(first=first, steady=steady, seeds=default_seeds(shape))))
"""

_FIRST_INIT = """
import json
from benchmarks import _common as C
import jax
jax.numpy.ones(3).block_until_ready()  # the runtime started, as in any session
import jinit
init, key = {make}, jax.random.key(0)
first, second = (C.timed(lambda: init(key, {shape})) for _ in range(2))
print(json.dumps(dict(first=first, second=second)))
"""


def run(quick: bool = False) -> dict[str, Any]:
    t0 = time.perf_counter()
    machine = C.machine_info()
    shape = (128, 128) if quick else (512, 512)
    repeats = 2 if quick else 7
    got = C.run_subprocess(_STATS.format(shape=shape, repeats=repeats))
    first, steady, seeds = got["first"], got["steady"], got["seeds"]
    values = seeds * math.prod(shape)
    med = C.median(steady)
    rows = [
        {
            "call": f"assert_follows_law(he_normal(), {shape})",
            "seeds": seeds,
            "values": values,
            "first_call_s": first,
            "compile_s": first - med,
            "steady_median_s": med,
            "steady_min_s": min(steady),
            "values_per_s": values / med,
        }
    ]
    makes = {"jinit": "jinit.he_normal()", "jax": "jax.nn.initializers.he_normal()"}
    firsts = {}
    for name, make in makes.items():
        runs = [
            C.run_subprocess(_FIRST_INIT.format(make=make, shape=shape))
            for _ in range(1 if quick else 3)
        ]
        firsts[name] = {
            "first_s": C.median([r["first"] for r in runs]),
            "second_s": C.median([r["second"] for r in runs]),
        }
    goals = [
        C.goal(
            "W5",
            f"default assert_follows_law on {shape}: compile vs steady state",
            f"compile ≈ {first - med:.2f} s, steady {med:.3f} s ({values / med / 1e6:.0f} M "
            f"values/s, {seeds} seeds)",
            None,
            "issue 6 sets no target for W5",
        ),
        C.goal(
            "W5",
            f"first he_normal() call on {shape} in a fresh process (JAX started)",
            f"jinit {firsts['jinit']['first_s']:.2f} s (self-check included), "
            f"jax {firsts['jax']['first_s']:.2f} s; second call jinit "
            f"{firsts['jinit']['second_s'] * 1e3:.1f} ms, "
            f"jax {firsts['jax']['second_s'] * 1e3:.1f} ms",
            None,
            "no target: a one-off cost per process",
        ),
    ]
    return {
        "name": "w5_stats",
        "title": "W5 — statistics: a default assert_follows_law call",
        "machine": machine,
        "params": {
            "shape": "×".join(map(str, shape)),
            "repeats": repeats,
            "quick": quick,
            "devices": C.cores(),
        },
        "first_initialiser_call": firsts,
        "rows": rows,
        "columns": [
            ("call", "call"),
            ("seeds", "seeds"),
            ("values", "values"),
            ("compile_s", "compile (s)"),
            ("steady_median_s", "steady median (s)"),
            ("steady_min_s", "steady min (s)"),
            ("values_per_s", "values/s"),
        ],
        "goals": goals,
        "notes": [],
        "elapsed_s": time.perf_counter() - t0,
    }


def main(argv: list[str] | None = None) -> int:
    return C.main_for(run, argv, __doc__)


if __name__ == "__main__":
    sys.exit(main())
