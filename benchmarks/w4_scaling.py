"""W4, scaling of ``jinit.sweep``: memory vs seeds, compile time vs depth, speed vs devices.

* **Peak memory vs seeds** (64 → 4096): each seed count runs in a fresh subprocess
  (``jinit.sweep(jinit.mlp(128, 10), he, batch=256)``, default chunking); the peak resident set
  (``VmRSS`` sampled every 2 ms while the sweep runs) minus the resident set after importing
  and warming JAX is the sweep's peak.
  With chunking it stays flat; the only growth is the per-seed results on the host (listed:
  ``seeds × layers × (quantities + sample_size)`` float32). For contrast a few counts run
  *unchunked* (``chunk_size=seeds``), where it grows linearly. JAX's CPU devices report no
  ``memory_stats()``, hence the RSS.
* **Compile time vs depth** (10 → 200): ``jinit.sweep(jinit.mlp(64, depth), ...)`` with two
  chunks; compile ≈ first chunk − second chunk. Scanning over depth keeps it flat; for contrast
  the same forward + gradient written as a Python loop (unrolled) under ``jax.jit``.
* **Throughput vs host devices** (1, 2): subprocesses with
  ``XLA_FLAGS=--xla_force_host_platform_device_count=N``; the sweep shards the seed axis over the
  devices; steady-state seeds/s from the chunk times.

    python benchmarks/w4_scaling.py [--quick]
"""

from __future__ import annotations

import sys
import time
from typing import Any

if __package__ in (None, ""):  # run as a script
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))

from benchmarks import _common as C

_MEMORY = """
import json, threading, time
import jax, numpy as np, jinit
net = jinit.mlp({width}, {depth})
init = jinit.variance_scaling(2.0, "fan_in", "normal")
def rss_kib():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS"))
jinit.sweep(net, init, seeds=2, batch=8)  # warm JAX up (runtime, thread pools)
warm_chunk = None
if {compiled}:  # compile the measured sweep's chunk program first, on at most 64 seeds
    warm_chunk = jinit.sweep(net, init, seeds=min({seeds}, 64), batch={batch}).config["chunk_size"]
base = rss_kib()
peak, done = [base], threading.Event()
def sample():  # the resident set every 2 ms while the sweep runs (compilation included)
    while not done.is_set():
        peak[0] = max(peak[0], rss_kib())
        time.sleep(0.002)
th = threading.Thread(target=sample, daemon=True)
th.start()
t0 = time.perf_counter()
r = jinit.sweep(net, init, seeds={seeds}, batch={batch}, chunk_size={chunk})
dt = time.perf_counter() - t0
done.set(); th.join()
res = sum(a.nbytes for d in r.per_seed.values() for a in d.values())
print(json.dumps(dict(base_kib=base, peak_kib=max(peak[0], rss_kib()), seconds=dt,
                      result_bytes=res, chunk_size=r.config["chunk_size"],
                      chunks=r.config["chunks"], warm_chunk=warm_chunk)))
"""

_PY_HEAP = """
import json, tracemalloc
import jax, numpy as np, jinit
net = jinit.mlp({width}, {depth})
init = jinit.variance_scaling(2.0, "fan_in", "normal")
jinit.sweep(net, init, seeds=2, batch=8)
tracemalloc.start()
r = jinit.sweep(net, init, seeds={seeds}, batch={batch})
res = sum(a.nbytes for d in r.per_seed.values() for a in d.values())
print(json.dumps(dict(py_peak=tracemalloc.get_traced_memory()[1], result_bytes=res)))
"""

_DEVICES = """
import json, time
import jax, numpy as np, jinit
net = jinit.mlp({width}, {depth}, bias=False)
init = jinit.variance_scaling(2.0, "fan_in", "normal")
stamps = []
r = jinit.sweep(net, init, seeds={seeds}, batch={batch}, chunk_size={chunk},
                progress=lambda l, c, n: stamps.append(time.perf_counter()))
d = np.diff(stamps)
print(json.dumps(dict(devices=len(jax.devices()), chunk_size=r.config["chunk_size"],
                      first_s=float(d[0]), steady_s=[float(x) for x in d[1:]])))
"""


def memory_vs_seeds(quick: bool) -> list[dict[str, Any]]:
    if quick:
        cfg = dict(width=32, depth=3, batch=32)
        counts, unchunked = [16, 64], [16]
    else:
        cfg = dict(width=128, depth=10, batch=256)
        counts, unchunked = [64, 256, 1024, 4096], [64, 256]
    rows = []
    for seeds, chunk in [(s, "None") for s in counts] + [(s, str(s)) for s in unchunked]:
        out = C.run_subprocess(_MEMORY.format(seeds=seeds, chunk=chunk, compiled=False, **cfg))
        rows.append(
            {
                "seeds": seeds,
                "mode": "chunked (default)" if chunk == "None" else "unchunked",
                "chunk_size": out["chunk_size"],
                "chunks": out["chunks"],
                "sweep_peak_MiB": (out["peak_kib"] - out["base_kib"]) / 1024,
                "process_peak_MiB": out["peak_kib"] / 1024,
                "results_MiB": out["result_bytes"] / 2**20,
                "seeds_per_s": seeds / out["seconds"],
            }
        )
        if chunk == "None":
            # again with the chunk program compiled before the measurement: the compiler's
            # memory (the same program for every seed count, and the noisiest part of the
            # peak) is left out, so the growth with seeds is what the sweep itself holds
            warm = C.run_subprocess(_MEMORY.format(seeds=seeds, chunk=chunk, compiled=True, **cfg))
            if warm["warm_chunk"] != out["chunk_size"]:
                raise RuntimeError(
                    f"W4: the warm-up ran chunks of {warm['warm_chunk']}, not "
                    f"{out['chunk_size']}: the program was not the same"
                )
            rows[-1]["compiled_peak_MiB"] = (warm["peak_kib"] - warm["base_kib"]) / 1024
        print(f"  W4 memory {rows[-1]}", flush=True)
    # the Python heap (numpy included) during the largest chunked sweep, with tracemalloc:
    # separates jinit's own host arrays from the native memory of the XLA runtime
    out = C.run_subprocess(_PY_HEAP.format(seeds=counts[-1], **cfg))
    rows[len(counts) - 1]["python_heap_peak_MiB"] = out["py_peak"] / 2**20
    print(f"  W4 python heap {out}", flush=True)
    return rows


def _unrolled_compile(depth: int, width: int, batch: int) -> float:
    """Compile time of forward + weight gradient of a Python-unrolled MLP (the contrast)."""
    import jax
    import jax.numpy as jnp

    import jinit

    init = jinit.variance_scaling(2.0, "fan_in", "normal")

    def loss(key):
        x = jax.random.normal(jax.random.fold_in(key, depth), (batch, width))
        ws = [init(jax.random.fold_in(key, i), (width, width)) for i in range(depth)]

        def f(ws):
            h = x
            for w in ws:
                h = jax.nn.relu(h @ w)
            return jnp.sum(h)

        return jax.grad(f)(ws)

    f = jax.jit(jax.vmap(loss))
    keys = jax.random.split(jax.random.key(0), 2)
    t0 = time.perf_counter()
    f.lower(keys).compile()
    return time.perf_counter() - t0


def compile_vs_depth(quick: bool) -> list[dict[str, Any]]:
    import numpy as np

    import jinit

    depths = [2, 8] if quick else [10, 50, 100, 200]
    init = jinit.variance_scaling(2.0, "fan_in", "normal")
    rows = []
    for depth in depths:
        stamps: list[float] = []
        jinit.sweep(
            jinit.mlp(64, depth),
            init,
            seeds=4,
            batch=32,
            chunk_size=2,
            progress=lambda label, done, total, st=stamps: st.append(time.perf_counter()),
        )
        d = np.diff(stamps)
        rows.append(
            {
                "depth": depth,
                "sweep_compile_s": float(d[0] - d[1]),
                "sweep_chunk_s": float(d[1]),
                "unrolled_compile_s": _unrolled_compile(depth, 64, 32),
            }
        )
        print(f"  W4 compile {rows[-1]}", flush=True)
    return rows


def throughput_vs_devices(quick: bool) -> list[dict[str, Any]]:
    import os

    if quick:
        cfgs = {"MLP 32×3": dict(width=32, depth=3, batch=32, seeds=16, chunk=8)}
    else:
        cfgs = {
            "W1: MLP 512×10, batch 1000": dict(width=512, depth=10, batch=1000, seeds=24, chunk=8),
            "W2: MLP 64×20, batch 256": dict(width=64, depth=20, batch=256, seeds=512, chunk=128),
        }
    rows = []
    for name, cfg in cfgs.items():
        base = None
        for n in (1, 2):
            flags = os.environ.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={n}"
            out = C.run_subprocess(_DEVICES.format(**cfg), env={"XLA_FLAGS": flags.strip()})
            rate = out["chunk_size"] / C.median(out["steady_s"])
            base = rate if base is None else base
            rows.append(
                {
                    "network": name,
                    "devices": out["devices"],
                    "chunk_size": out["chunk_size"],
                    "seeds_per_s": rate,
                    "speedup": rate / base,
                    "compile_plus_first_chunk_s": out["first_s"],
                }
            )
            print(f"  W4 devices {rows[-1]}", flush=True)
    return rows


def run(quick: bool = False) -> dict[str, Any]:
    t0 = time.perf_counter()
    machine = C.machine_info()
    mem = memory_vs_seeds(quick)
    comp = compile_vs_depth(quick)
    dev = throughput_vs_devices(quick)

    chunked = [r for r in mem if r["mode"].startswith("chunked")]
    lo, hi = chunked[0], chunked[-1]
    # flat: the sweep's peak grows by no more than the results it returns plus 25 % noise
    growth = hi["sweep_peak_MiB"] - lo["sweep_peak_MiB"]
    allowed = (hi["results_MiB"] - lo["results_MiB"]) + 0.25 * max(lo["sweep_peak_MiB"], 1.0)
    results_growth = hi["results_MiB"] - lo["results_MiB"]
    compiled_beyond = hi["compiled_peak_MiB"] - lo["compiled_peak_MiB"] - results_growth
    c_lo, c_hi = comp[0], comp[-1]
    comp_ratio = c_hi["sweep_compile_s"] / max(c_lo["sweep_compile_s"], 1e-9)
    unrolled_ratio = c_hi["unrolled_compile_s"] / max(c_lo["unrolled_compile_s"], 1e-9)
    by_net: dict[str, list[dict[str, Any]]] = {}
    for r in dev:
        by_net.setdefault(r["network"], []).append(r)
    speedups = ", ".join(f"{k}: {v[-1]['speedup']:.2f}×" for k, v in by_net.items())
    goals = [
        C.goal(
            "W4",
            f"peak memory flat in seeds ({lo['seeds']} → {hi['seeds']}, chunked)",
            f"{lo['sweep_peak_MiB']:.0f} → {hi['sweep_peak_MiB']:.0f} MiB (results on the host: "
            f"{lo['results_MiB']:.1f} → {hi['results_MiB']:.1f} MiB); with the program compiled "
            f"first {lo['compiled_peak_MiB']:.0f} → {hi['compiled_peak_MiB']:.0f} MiB",
            growth <= allowed,
            f"{growth - results_growth:.0f} MiB of growth beyond the returned results, against "
            f"{compiled_beyond:.0f} MiB when the chunk program is compiled before the sweep (the "
            f"compiler's memory is the same for every seed count but varies by tens of MiB "
            f"between identical runs); the Python heap (numpy included, tracemalloc) peaks at "
            f"{hi.get('python_heap_peak_MiB', float('nan')):.1f} MiB during the "
            f"{hi['seeds']}-seed sweep, its {hi['results_MiB']:.1f} MiB of results and little "
            f"else; the rest is the XLA runtime's own memory"
            if growth > allowed
            else "device-side memory is one chunk; only the returned results grow (with the "
            f"program compiled first, {compiled_beyond:.0f} MiB beyond them)",
        ),
        C.goal(
            "W4",
            f"compile time flat in depth ({c_lo['depth']} → {c_hi['depth']}, scan)",
            f"{c_lo['sweep_compile_s']:.2f} → {c_hi['sweep_compile_s']:.2f} s "
            f"({comp_ratio:.2f}×; unrolled: {c_lo['unrolled_compile_s']:.2f} → "
            f"{c_hi['unrolled_compile_s']:.2f} s, {unrolled_ratio:.1f}×)",
            comp_ratio <= 1.5,
            "lax.scan over layers: one layer body is compiled whatever the depth",
        ),
        C.goal(
            "W4",
            "throughput vs host devices (1 → 2)",
            speedups,
            None,
            "XLA's CPU backend already runs big matmuls on all cores with one device; "
            "2 devices split the seed axis (each device one thread pool) — helps when the "
            "per-seed ops are small (RNG, statistics, small matmuls)",
        ),
    ]
    rows = (
        [{"part": "memory", **r} for r in mem]
        + [{"part": "compile", **r} for r in comp]
        + [{"part": "devices", **r} for r in dev]
    )
    return {
        "name": "w4_scaling",
        "title": "W4 — scaling of jinit.sweep",
        "machine": machine,
        "params": {"quick": quick},
        "rows": rows,
        "columns": [
            ("part", "part"),
            ("seeds", "seeds"),
            ("mode", "mode"),
            ("chunk_size", "chunk"),
            ("sweep_peak_MiB", "sweep peak RSS (MiB)"),
            ("compiled_peak_MiB", "same, program compiled (MiB)"),
            ("results_MiB", "results (MiB)"),
            ("python_heap_peak_MiB", "Python heap peak (MiB)"),
            ("depth", "depth"),
            ("sweep_compile_s", "sweep compile (s)"),
            ("unrolled_compile_s", "unrolled compile (s)"),
            ("network", "network"),
            ("devices", "devices"),
            ("seeds_per_s", "seeds/s"),
            ("speedup", "speedup"),
        ],
        "goals": goals,
        "notes": [
            "Memory rows: MLP 128×10, batch 256 (quick: 32×3, batch 32), one fresh process each; "
            "`sweep peak RSS` = peak resident set sampled during the sweep call (compilation "
            "included) minus the resident set before it; `same, program compiled`: the same "
            "sweep in a process that ran the same chunk program on ≤ 64 seeds first (so "
            "the compiler's memory, equal for every seed count, is not in the peak).",
            "Compile rows: MLP width 64, batch 32; unrolled = the same forward + gradient as a "
            "Python loop under jit(vmap) (no statistics), compile only.",
        ],
        "elapsed_s": time.perf_counter() - t0,
    }


def main(argv: list[str] | None = None) -> int:
    return C.main_for(run, argv, __doc__)


if __name__ == "__main__":
    sys.exit(main())
