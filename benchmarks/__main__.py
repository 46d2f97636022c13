"""Runs the issue-6 benchmarks W1-W5 and regenerates ``benchmarks/RESULTS.md``.

    python -m benchmarks                 # everything (~10 min on a quiet 2-core machine)
    python -m benchmarks --quick         # small sizes: a smoke test (~1-2 min)
    python -m benchmarks --only w1,w5    # a subset (prefixes of the workload names)

Each workload writes ``benchmarks/results/<name>.json``; RESULTS.md is rebuilt from every record
present, so a partial run keeps the other workloads' latest figures. The older scripts
``benchmarks/calibration.py`` and ``benchmarks/stats_speed.py`` are run on their own.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path

from benchmarks import _common as C


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes: a smoke test")
    ap.add_argument("--only", default="", help="comma-separated workload prefixes, e.g. w1,w3")
    ap.add_argument("--results", default=str(C.RESULTS), help="directory of the JSON records")
    args = ap.parse_args(argv)
    only = [x.strip() for x in args.only.split(",") if x.strip()]
    names = [n for n in C.WORKLOADS if not only or any(n.startswith(o) for o in only)]
    if not names:
        ap.error(f"--only {args.only!r} matches none of {', '.join(C.WORKLOADS)}")
    res = Path(args.results)
    md = C.RESULTS_MD if res == C.RESULTS else res.parent / "RESULTS.md"
    t0 = time.perf_counter()
    for name in names:
        print(f"== {name}{' (quick)' if args.quick else ''}", flush=True)
        mod = importlib.import_module(f"benchmarks.{name}")
        rec = mod.run(args.quick)
        C.save(rec, res)
        C.write_results_md(res, md)
        for g in rec["goals"]:
            verdict = {True: "met", False: "MISSED", None: "-"}[g["met"]]
            print(f"   [{verdict}] {g['goal']}: {g['measured']}", flush=True)
        print(f"   {rec['elapsed_s']:.0f} s", flush=True)
    print(f"all done in {time.perf_counter() - t0:.0f} s; wrote {md}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
