"""Shared helpers of the issue-6 benchmarks: machine record, timing, medians, JSON, RESULTS.md.

Every workload module ``benchmarks/w*_*.py`` has ``run(quick: bool) -> dict`` returning a
*record*::

    {"name": "w1_textbook", "title": ..., "machine": machine_info(), "params": {...},
     "rows": [{...}, ...],          # one per measured variant (seeds/s, ratios, ...)
     "columns": [(key, header), ...],  # which row fields the Markdown table shows
     "goals": [goal(...), ...],     # the issue's goals, met or missed, with the reason
     "notes": [str, ...], "elapsed_s": float}

``save(record)`` writes ``benchmarks/results/<name>.json``; ``write_results_md()`` rebuilds
``benchmarks/RESULTS.md`` from every ``results/w*.json`` present, so running one script updates
its part of the table and ``python -m benchmarks`` regenerates all of it.

Timing rules (issue 6): warm-up first (compilation is timed on its own), every timed region ends
with ``jax.block_until_ready`` (or a host copy, which waits too), repeats are summarised by their
median, and peers are measured in the same process, interleaved round by round, so their ratio
survives a noisy machine. Each timed call starts after a quiet pause (``SETTLE_S``), and the
order of the contenders is shuffled per round: a jax call made right after a numpy/torch call
ran ~1.8x slower while their worker threads still spun, which biased every ratio against the
contender that always came second.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
RESULTS_MD = HERE / "RESULTS.md"
WORKLOADS = (
    "w1_textbook",
    "w2_small_nets",
    "w3_init_throughput",
    "w4_scaling",
    "w5_stats",
    "w6_flax_sweep",
    "w7_init_at_scale",
)


# ---------------------------------------------------------------------------------------------
# Machine
# ---------------------------------------------------------------------------------------------


def cpu_model() -> str:
    """The CPU model name (``/proc/cpuinfo`` on Linux, ``platform.processor()`` elsewhere)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cores() -> int:
    """CPU cores this process may use (the affinity mask, else ``os.cpu_count()``)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _version(mod: str) -> str | None:
    try:
        m = __import__(mod)
    except ImportError:
        return None
    return getattr(m, "__version__", "?")


def machine_info() -> dict[str, Any]:
    """CPU model, cores, load, library versions and JAX devices of this process."""
    import jax

    info: dict[str, Any] = {
        "cpu_model": cpu_model(),
        "cores": cores(),
        "cpu_count": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "numpy": _version("numpy"),
        "jax": jax.__version__,
        "jaxlib": _version("jaxlib"),
        "torch": _version("torch"),
        "jinit": _version("jinit"),
        "devices": [str(d) for d in jax.devices()],
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "threefry_partitionable": bool(jax.config.jax_threefry_partitionable),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    try:
        import torch

        info["torch_threads"] = torch.get_num_threads()
    except ImportError:
        pass
    return info


def setup_torch() -> Any:
    """Imports torch with one intra-op thread per core (the issue's rule); ``None`` if absent."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(cores())
    return torch


# ---------------------------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------------------------


def use_all_cores() -> bool:
    """Gives jax one CPU device per core, as ``jinit sweep`` does, if jax has not started yet
    (the count is fixed when the first JAX operation runs); True if it took effect."""
    import jax

    try:
        jax.config.update("jax_num_cpu_devices", cores())
    except RuntimeError:  # backends already initialised: keep what the process has
        return False
    return True


def block(x: Any) -> Any:
    """Waits for every JAX array in ``x`` (no-op for numpy / torch / Python values)."""
    import jax

    return jax.block_until_ready(x)


#: seconds to wait before each timed call: numpy's, torch's and XLA's worker threads keep
#: spinning for a while after a call, and a jax call started meanwhile ran ~1.8x slower here
SETTLE_S = 0.25


def timed(fn: Callable[[], Any], settle: float = SETTLE_S) -> float:
    """Seconds ``fn()`` takes, its result waited for with ``block_until_ready``, after
    ``settle`` untimed seconds of quiet (so the previous contender's threads do not steal the
    cores of this one)."""
    time.sleep(settle)
    t0 = time.perf_counter()
    block(fn())
    return time.perf_counter() - t0


def median(xs: Sequence[float]) -> float:
    return float(statistics.median(xs)) if xs else math.nan


def summary(times: Sequence[float]) -> dict[str, float]:
    """Median, min, max and count of a list of durations (seconds)."""
    return {
        "median_s": median(times),
        "min_s": float(min(times)) if times else math.nan,
        "max_s": float(max(times)) if times else math.nan,
        "n": len(times),
    }


def interleaved(
    fns: dict[str, Callable[[], Any]], repeats: int, warmup: int = 1
) -> dict[str, list[float]]:
    """Times each ``fns[name]()`` ``repeats`` times in rounds (every contender once per round,
    in an order shuffled per round so none always runs after the same one), after ``warmup``
    untimed rounds, so slow phases of a shared machine hit every contender alike."""
    for _ in range(warmup):
        for f in fns.values():
            block(f())
    out: dict[str, list[float]] = {k: [] for k in fns}
    for i in range(repeats):
        for k in shuffled(list(fns), i):
            out[k].append(timed(fns[k]))
    return out


def shuffled(items: list[Any], round_index: int) -> list[Any]:
    """``items`` in the order of round ``round_index`` (a fixed, seeded shuffle per round)."""
    order = list(items)
    random.Random(1000 + round_index).shuffle(order)
    return order


def paired_ratio(num: Sequence[float], den: Sequence[float]) -> float:
    """Median over rounds of ``num[i] / den[i]`` (times of two contenders in the same round)."""
    return median([a / b for a, b in zip(num, den, strict=False) if b > 0])


# ---------------------------------------------------------------------------------------------
# Goals and records
# ---------------------------------------------------------------------------------------------


def goal(
    workload: str, target: str, measured: str, met: bool | None, reason: str = ""
) -> dict[str, Any]:
    """One goal of issue 6: ``met`` is True / False, or None when the issue sets no target."""
    return {
        "workload": workload,
        "goal": target,
        "measured": measured,
        "met": met,
        "reason": reason,
    }


def _clean(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if hasattr(x, "item") and not isinstance(x, (str, bytes)):
        try:
            x = x.item()
        except (TypeError, ValueError):
            return str(x)
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, (str, int, bool)) or x is None:
        return x
    return str(x)


def save(record: dict[str, Any], results: Path = RESULTS) -> Path:
    """Writes ``record`` to ``results/<name>.json`` (strict JSON: non-finite numbers → null)."""
    results.mkdir(parents=True, exist_ok=True)
    path = results / f"{record['name']}.json"
    path.write_text(json.dumps(_clean(record), indent=1, allow_nan=False) + "\n", encoding="utf-8")
    return path


def load_records(results: Path = RESULTS) -> list[dict[str, Any]]:
    """The saved workload records present in ``results``, in workload order."""
    out = []
    for name in WORKLOADS:
        p = results / f"{name}.json"
        if p.exists():
            out.append(json.loads(p.read_text(encoding="utf-8")))
    return out


def fmt(x: Any, digits: int = 3) -> str:
    """A compact cell: numbers to ``digits`` significant figures, None as an em dash."""
    if x is None:
        return "—"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, float):
        if not math.isfinite(x):
            return "—"
        if x != 0 and (abs(x) >= 1e6 or abs(x) < 1e-3):
            return f"{x:.{digits - 1}e}"
        return f"{x:.{digits}g}" if abs(x) < 10**digits else f"{x:,.0f}"
    return str(x)


def _verdict(met: bool | None) -> str:
    return {True: "**met**", False: "**missed**", None: "(no target)"}[met]


def render_markdown(records: Sequence[dict[str, Any]]) -> str:
    """RESULTS.md: the goal table (all workloads) then one table per workload."""
    lines = [
        "# jinit benchmarks (issue 6)",
        "",
        "Generated by `python -m benchmarks` (or one `benchmarks/w*_*.py` script) from "
        "`benchmarks/results/w*.json`; do not edit by hand.",
        "",
    ]
    if records:
        m = records[0]["machine"]
        lines += [
            f"Machine: {m.get('cpu_model')}, {m.get('cores')} cores, load average "
            f"{m.get('load_average')} at the start of {records[0]['name']}; Python "
            f"{m.get('python')}, numpy {m.get('numpy')}, jax {m.get('jax')}, torch "
            f"{m.get('torch')} ({m.get('torch_threads')} threads); devices {m.get('devices')}.",
            "",
        ]
        hosts: dict[str, list[str]] = {}
        for r in records:
            hosts.setdefault(str(r["machine"].get("cpu_model")), []).append(r["name"])
        if len(hosts) > 1:  # records kept from runs on different machines
            where = "; ".join(f"{', '.join(n)} on {h}" for h, n in hosts.items())
            lines += [
                f"The records come from {len(hosts)} machines ({where}); each section names its "
                "own. Ratios compare contenders measured in one run on one machine.",
                "",
            ]
        lines += [
            "Times are medians of repeats after warm-up; compile time is reported apart from "
            "steady-state time; peers run in the same process, interleaved, so ratios hold on a "
            "noisy machine (absolute figures do not).",
            "",
        ]
    lines += [
        "## Goals",
        "",
        "| workload | goal | measured | verdict | reason |",
        "|---|---|---|---|---|",
    ]
    for r in records:
        for g in r.get("goals", []):
            lines.append(
                f"| {g['workload']} | {g['goal']} | {g['measured']} | {_verdict(g['met'])} | "
                f"{g.get('reason', '')} |"
            )
    for r in records:
        lines += ["", f"## {r['title']}", ""]
        p = r.get("params", {})
        if p:
            lines.append("Parameters: " + ", ".join(f"{k}={v}" for k, v in p.items()) + ".")
            lines.append("")
        cols = r.get("columns") or [(k, k) for k in (r["rows"][0] if r.get("rows") else {})]
        lines.append("| " + " | ".join(h for _, h in cols) + " |")
        lines.append("|" + "---|" * len(cols))
        for row in r.get("rows", []):
            lines.append("| " + " | ".join(fmt(row.get(k)) for k, _ in cols) + " |")
        for n in r.get("notes", []):
            lines += ["", n]
        lines += [
            "",
            f"Run time {r.get('elapsed_s', 0):.0f} s{' (quick mode)' if p.get('quick') else ''} "
            f"on {r['machine'].get('cpu_model')} ({str(r['machine'].get('date', ''))[:10]}); "
            f"load average at start {r['machine'].get('load_average')}.",
        ]
    return "\n".join(lines) + "\n"


def write_results_md(results: Path = RESULTS, out: Path = RESULTS_MD) -> Path:
    """Regenerates ``RESULTS.md`` from the records in ``results``."""
    out.write_text(render_markdown(load_records(results)), encoding="utf-8")
    return out


def run_subprocess(code: str, env: dict[str, str] | None = None, timeout: float = 600) -> Any:
    """Runs ``python -c code`` (which must print one JSON line last) and returns the parsed
    line; the environment is this one plus ``env``."""
    full = dict(os.environ)
    full.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env=full,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=str(HERE.parent),
    )
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark subprocess failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main_for(run: Callable[[bool], dict[str, Any]], argv: Sequence[str] | None, doc: str) -> int:
    """The ``main`` of one workload script: ``--quick``, run, save JSON, rebuild RESULTS.md."""
    import argparse

    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes: a smoke test")
    ap.add_argument("--results", default=str(RESULTS), help="directory of the JSON records")
    args = ap.parse_args(argv)
    rec = run(args.quick)
    res = Path(args.results)
    path = save(rec, res)
    md = write_results_md(res, res.parent / "RESULTS.md" if res != RESULTS else RESULTS_MD)
    print(f"wrote {path} and {md}")
    for g in rec["goals"]:
        print(f"  {g['goal']}: {g['measured']} -> {_verdict(g['met'])} {g.get('reason', '')}")
    return 0
