"""Speed of the seed sweep: ``assert_follows_law`` on a (512, 512) float32 initialiser.

The first call compiles the sweep (timed on its own); later calls with new keys reuse it. We
report the median of ``--repeats`` steady-state calls, each ending with the host having every
statistic (the sweep returns host arrays, so each call is synchronous). Writes
``benchmarks/results/stats_speed.json`` and prints a Markdown table.

    python benchmarks/stats_speed.py
    python benchmarks/stats_speed.py --devices 4      # four forced host devices, as the tests
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shape", default="512,512")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--devices", type=int, default=0, help="force this many host devices")
    ap.add_argument("--inits", default="he_normal,he_uniform,normal,orthogonal")
    ap.add_argument("--out", default=str(RESULTS / "stats_speed.json"))
    args = ap.parse_args(argv)

    import jax

    if args.devices:
        jax.config.update("jax_num_cpu_devices", args.devices)

    import jinit
    from jinit.testing import assert_follows_law, default_seeds, init_stats

    shape = tuple(int(d) for d in args.shape.split(","))
    builders = {
        "he_normal": jinit.he_normal,
        "he_uniform": jinit.he_uniform,
        "normal": lambda: jinit.normal(0.02),
        "orthogonal": jinit.orthogonal,
        "glorot_uniform": jinit.glorot_uniform,
    }
    rows = []
    for name in [n for n in args.inits.split(",") if n]:
        init = builders[name]()
        t0 = time.perf_counter()
        assert_follows_law(init, shape, key=0)  # compiles the sweep
        first = time.perf_counter() - t0
        steady = []
        for i in range(args.repeats):
            t0 = time.perf_counter()
            assert_follows_law(init, shape, key=i + 1)
            steady.append(time.perf_counter() - t0)
        sweep_only = []
        for i in range(args.repeats):
            t0 = time.perf_counter()
            init_stats(init, shape, key=100 + i)
            sweep_only.append(time.perf_counter() - t0)
        med = statistics.median(steady)
        rows.append(
            {
                "init": name,
                "shape": list(shape),
                "dtype": "float32",
                "seeds": default_seeds(shape),
                "values": default_seeds(shape) * int(__import__("math").prod(shape)),
                "first_call_s": round(first, 3),
                "compile_s": round(first - med, 3),
                "assert_median_s": round(med, 3),
                "assert_min_s": round(min(steady), 3),
                "init_stats_median_s": round(statistics.median(sweep_only), 3),
            }
        )
        print(
            f"{name}: first call {first:.2f} s (compile ≈ {first - med:.2f} s), "
            f"assert_follows_law median {med:.3f} s, init_stats median "
            f"{statistics.median(sweep_only):.3f} s",
            flush=True,
        )
    meta = {
        "jax": jax.__version__,
        "devices": [str(d) for d in jax.local_devices()],
        "cpu_count": os.cpu_count(),
        "load_average": os.getloadavg(),
        "machine": platform.machine(),
        "python": sys.version.split()[0],
        "repeats": args.repeats,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    print()
    print("| init | shape | seeds | values | compile (s) | assert_follows_law median (s) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['init']} | {tuple(r['shape'])} | {r['seeds']} | {r['values']:,} | "
            f"{r['compile_s']:.2f} | {r['assert_median_s']:.3f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
