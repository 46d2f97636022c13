"""``jinit init-bench``: initialise a Llama-style decoder at scale, with
:func:`jinit.init_sharded` and with Flax's own ``jax.jit(model.init, out_shardings=...)``.

Each (contender, depth) runs in a fresh Python process with ``--devices`` forced CPU host
devices on a ``(devices // 2, 2)`` mesh ``("data", "model")`` (so its host memory peak is its
own), and reports: the time to trace the abstract model (``jax.eval_shape(model.init)``, the
same for both), the time to lower and compile the initialisation (Flax: ``model.init`` under
``jit``; jinit: all its groups' programs), wall time from the abstract trace to sharded
parameters, each device's peak (XLA's memory analysis: Flax's program, or jinit's largest
group temporaries on top of the device's parameter shards) over its shard of the parameters,
and the process's host memory growth (its peak RSS, ``VmHWM``, first reset to the current RSS
through ``/proc/self/clear_refs``) over the parameters' bytes. On CPU the
host devices live in host memory, so that growth includes every device's shards. A second
initialisation with another key (the first parameters kept, the programs compiled) reports the
growth without the compiler's memory (``host_again_over_params``) and its time (``again_s``:
Flax's compiled program called again, jinit's group programs taken from its cache).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from typing import Any

import typer
from rich import box
from rich.table import Table

from jinit._core._atomic import atomic_file, check_file_target
from jinit.cli._console import wide_console
from jinit.cli._decoder import RULES, decoder

CONTENDERS = ("jinit", "flax")


def _maxrss_bytes() -> int:
    """The process's peak resident set in bytes: Linux's ``VmHWM`` (the high-water mark that
    ``/proc/self/clear_refs`` resets), else ``ru_maxrss``. ``ru_maxrss`` is not used on Linux:
    it also keeps the peak recorded when any thread exited, which the reset does not clear, so
    a growth read from it after a reset can be 0."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024  # kB
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def _reset_peak() -> tuple[bool, int]:
    """Resets the process's peak RSS to its current RSS (Linux ``/proc/self/clear_refs``), so
    a growth read from :func:`_maxrss_bytes` is this step's own; without it an earlier, higher
    peak (a transient of JAX's start) hides the growth. Returns (whether it was reset, the
    peak RSS now, in bytes)."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
    except OSError:
        return False, _maxrss_bytes()
    return True, _maxrss_bytes()


def _shard_bytes_per_device(params: Any) -> int:
    """The largest total of parameter shards any one device holds."""
    import jax

    per: dict[int, int] = {}
    for leaf in jax.tree.leaves(params):
        for s in leaf.addressable_shards:
            per[s.device.id] = per.get(s.device.id, 0) + s.data.nbytes
    return max(per.values())


def _again(init: Any) -> tuple[int, float]:
    """``(peak RSS growth, seconds)`` of ``init(key)`` run again with another key, the first
    parameters still held: its programs are compiled (Flax's executable, jinit's cached group
    programs), so this is what the initialisation itself holds and takes (the first call also
    holds the compiler's memory)."""
    import jax

    before = _reset_peak()[1]
    t0 = time.perf_counter()
    jax.block_until_ready(init(jax.random.key(1)))
    return _maxrss_bytes() - before, time.perf_counter() - t0


def _flax_init(model: Any, abstract: Any, key: Any, tokens: Any, mesh: Any) -> tuple:
    """Flax's own ``jax.jit(model.init, out_shardings=...)``: ``(params, compile seconds,
    device peak bytes, the compiled init as a function of the key)``."""
    import flax.linen as nn
    import jax

    shardings = nn.get_sharding(abstract, mesh)
    t1 = time.perf_counter()
    compiled = jax.jit(model.init, out_shardings=shardings).lower(key, tokens).compile()
    compile_s = time.perf_counter() - t1
    params = jax.block_until_ready(compiled(key, tokens))
    m = compiled.memory_analysis()
    device_peak = int(m.output_size_in_bytes + m.temp_size_in_bytes)
    return params, compile_s, device_peak, lambda k: compiled(k, tokens)


def measure(config: dict[str, Any]) -> dict[str, Any]:
    """One measurement in this (fresh) process; ``config``: contender, layers, width, ffn,
    vocab, heads, dtype, devices."""
    import jax

    jax.config.update("jax_num_cpu_devices", int(config["devices"]))
    import flax.linen as nn
    import jax.numpy as jnp

    from jinit import init_sharded as init

    n = int(config["devices"])
    mesh = jax.make_mesh((max(n // 2, 1), 2 if n > 1 else 1), ("data", "model"))
    keys = ("layers", "width", "ffn", "vocab", "heads")
    model = decoder(*(int(config[k]) for k in keys), jnp.dtype(config["dtype"]))
    tokens = jnp.zeros((1, 8), jnp.int32)
    key = jax.random.key(0)
    jax.block_until_ready(tokens)
    peak_reset, base = _reset_peak()
    t0 = time.perf_counter()
    abstract = jax.eval_shape(model.init, key, tokens)
    trace_s = time.perf_counter() - t0
    if config["contender"] == "flax":
        params, compile_s, device_peak, again = _flax_init(model, abstract, key, tokens, mesh)
    else:
        params, table = init(abstract, key, RULES, mesh=mesh, explain=True)
        params = jax.block_until_ready(params)
        compile_s = table.compile_seconds
        device_peak = None
        again = lambda k: init(abstract, k, RULES, mesh=mesh)  # noqa: E731
    wall_s = time.perf_counter() - t0
    host = _maxrss_bytes() - base
    host_again, again_s = _again(again)
    leaves = jax.tree.leaves(nn.unbox(params))
    total = sum(x.nbytes for x in leaves)
    shard = _shard_bytes_per_device(nn.unbox(params))
    if device_peak is None:
        device_peak = shard + (table.peak_temp_bytes or 0)
    return {
        **config,
        "params": sum(x.size for x in leaves),
        "param_bytes": total,
        "shard_bytes": shard,
        "trace_s": trace_s,
        "compile_s": compile_s,
        "wall_s": wall_s,
        "again_s": again_s,
        "device_peak_bytes": device_peak,
        "device_peak_over_shard": device_peak / shard,
        "host_growth_bytes": host,
        "host_over_params": host / total,
        "host_again_bytes": host_again,
        "host_again_over_params": host_again / total,
        "peak_reset": peak_reset,
        "groups": None if config["contender"] == "flax" else table.groups,
        "leaf_table": str(table)
        if config.get("leaves") and config["contender"] == "jinit"
        else None,
    }


def run_config(config: dict[str, Any], timeout: float = 1800) -> dict[str, Any]:
    """:func:`measure` in a fresh Python process; its JSON line back."""
    proc = subprocess.run(
        [sys.executable, "-m", "jinit.cli._init_bench", json.dumps(config)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"jinit init-bench: the {config['contender']} run at {config['layers']} layers "
            f"failed:\n{proc.stderr[-3000:]}"
        )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _parse_layers(text: str) -> list[int]:
    try:
        out = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        out = []
    if not out or any(v < 1 for v in out):
        raise typer.BadParameter(
            f"expected positive integers separated by commas, e.g. 12,48,96; got {text!r}",
            param_hint="--layers",
        )
    return out


def check_config(width: int, ffn: int, vocab: int, heads: int, devices: int, dtype: str) -> None:
    """Refuses sizes the mesh cannot split evenly, before any process starts."""
    import numpy as np

    if devices < 1 or (devices > 1 and devices % 2):
        raise typer.BadParameter(
            f"needs 1 or an even number of devices; got {devices}", param_hint="--devices"
        )
    data = max(devices // 2, 1)
    for name, v in (("width", width), ("ffn", ffn), ("vocab", vocab)):
        if v < 1 or v % (2 * data):
            raise typer.BadParameter(
                f"must be a positive multiple of {2 * data} (the mesh splits it over data × "
                f"model); got {v}",
                param_hint=f"--{name}",
            )
    if heads < 1 or width % heads:
        raise typer.BadParameter(f"must divide --width {width}; got {heads}", param_hint="--heads")
    try:
        ok = np.dtype(dtype).kind == "f" or dtype == "bfloat16"
    except TypeError:
        ok = dtype == "bfloat16"
    if not ok:
        raise typer.BadParameter(
            f"expected a float dtype (float32, bfloat16); got {dtype!r}", param_hint="--dtype"
        )


def init_bench_cmd(
    layers: str = typer.Option("12,48,96", help="Depths to initialise, comma-separated."),
    width: int = typer.Option(256, help="Model width."),
    ffn: int = typer.Option(None, help="MLP hidden size (default: 8/3 × width, rounded)."),
    vocab: int = typer.Option(4096, help="Vocabulary size."),
    heads: int = typer.Option(4, help="Attention heads."),
    devices: int = typer.Option(8, help="Forced CPU host devices (1 or even)."),
    dtype: str = typer.Option("float32", help="Parameter dtype (param_dtype)."),
    out: str = typer.Option(None, help="Also write the rows as JSON to this file."),
    leaves: bool = typer.Option(
        False, "--leaves", help="Also print jinit's per-leaf table for the deepest model."
    ),
) -> None:
    """Initialise a Llama-style decoder sharded over devices: jinit.init_sharded vs Flax's
    jax.jit(model.init, out_shardings=...), each run in a fresh process."""
    depths = _parse_layers(layers)
    ffn = ffn if ffn is not None else 2 * devices * math.ceil(8 * width / 3 / (2 * devices))
    check_config(width, ffn, vocab, heads, devices, dtype)
    if out is not None:
        try:
            out = check_file_target(out, "jinit init-bench", "--out", example="rows.json")
        except (TypeError, ValueError, PermissionError) as err:
            raise typer.BadParameter(str(err), param_hint="--out") from None
    console = wide_console()
    rows = []
    for n in depths:
        for contender in CONTENDERS:
            console.print(f"[dim]{contender}: {n} layers …[/dim]")
            config = {"contender": contender, "layers": n, "width": width, "ffn": ffn}
            config |= {"vocab": vocab, "heads": heads, "dtype": dtype, "devices": devices}
            config["leaves"] = leaves and contender == "jinit" and n == max(depths)
            rows.append(run_config(config))
    for r in rows:
        text = r.pop("leaf_table", None)
        if text:
            console.print(text, markup=False, highlight=False, soft_wrap=True)
    console.print(results_table(rows))
    if out is not None:
        with atomic_file(out) as f:
            json.dump(rows, f, indent=2)
        console.print(f"wrote {out}")


def results_table(rows: list[dict[str, Any]]) -> Table:
    """The rows as a rich table, one line per (depth, contender)."""
    table = Table(
        title="jinit init-bench (times in s; memory: peak growth ÷ the bytes held)",
        caption="again: a second initialisation with another key, its programs compiled",
        box=box.SIMPLE_HEAD,
    )
    cols = ("layers", "contender", "params", "trace", "compile", "wall", "again")
    cols += ("device÷shard", "host÷params", "again÷params")
    for col in cols:
        table.add_column(col, justify="right", no_wrap=True)
    for r in rows:
        table.add_row(
            str(r["layers"]),
            r["contender"],
            f"{r['params'] / 1e6:.1f} M",
            f"{r['trace_s']:.2f}",
            f"{r['compile_s']:.2f}",
            f"{r['wall_s']:.2f}",
            f"{r['again_s']:.2f}",
            f"{r['device_peak_over_shard']:.2f}",
            f"{r['host_over_params']:.2f}",
            f"{r['host_again_over_params']:.2f}",
        )
    return table


if __name__ == "__main__":
    print(json.dumps(measure(json.loads(sys.argv[1]))))
