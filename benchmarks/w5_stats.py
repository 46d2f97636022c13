"""W5, statistics: one default ``jinit.testing.assert_follows_law`` call on (512, 512).

``assert_follows_law(jinit.he_normal(), (512, 512), key=k)`` with every default (16 seeds, 4.2 M
values, ``alpha = 1e-6``): the first call traces and compiles the statistics sweep (timed on
its own), later calls with new keys reuse it; the steady state is the median of the repeats.
Each call is synchronous (the statistics come back to the host), so no extra
``block_until_ready`` is needed. Issue 6 sets no target; the README quoted 0.67 s steady state
and ≈ 3.5 s compile on this machine.

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


def run(quick: bool = False) -> dict[str, Any]:
    import jinit
    from jinit.testing import assert_follows_law, default_seeds

    t0 = time.perf_counter()
    machine = C.machine_info()
    shape = (128, 128) if quick else (512, 512)
    repeats = 2 if quick else 7
    init = jinit.he_normal()
    rows = []
    first = C.timed(lambda: assert_follows_law(init, shape, key=0))
    steady = [
        C.timed(lambda i=i: assert_follows_law(init, shape, key=i + 1)) for i in range(repeats)
    ]
    seeds = default_seeds(shape)
    values = seeds * math.prod(shape)
    med = C.median(steady)
    rows.append(
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
    )
    goals = [
        C.goal(
            "W5",
            f"default assert_follows_law on {shape}: compile vs steady state",
            f"compile ≈ {first - med:.2f} s, steady {med:.3f} s ({values / med / 1e6:.0f} M "
            f"values/s, {seeds} seeds)",
            None,
            "issue 6 sets no target for W5",
        )
    ]
    return {
        "name": "w5_stats",
        "title": "W5 — statistics: a default assert_follows_law call",
        "machine": machine,
        "params": {"shape": "×".join(map(str, shape)), "repeats": repeats, "quick": quick},
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
