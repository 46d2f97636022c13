"""``jinit sweep``: the classic initialisation experiment, with seeds and theory.

With no arguments: an MLP of width 512 and depth 10 with ReLU, batch 1000, initialisers
``normal(stddev=0.01)``, ``glorot_uniform`` and ``he_normal``, 256 seeds. Prints a table per
initialiser and writes ``results.json``, ``results.csv``, ``depth_profile.png``,
``histogram.png`` and ``gradient_profile.png`` into ``--out``.

Initialiser specs (``--inits``) are parsed with :mod:`ast`, never evaluated: a spec is a name
(``he_normal``, ``torch.kaiming_uniform``) or a call of one with literal arguments
(``normal(stddev=0.01)``, ``variance_scaling(2.0, "fan_in", "normal")``). Names resolve in the
public ``jinit`` namespace, then in the catalogue.
"""

from __future__ import annotations

import ast
import sys
import time
import typing
from pathlib import Path
from typing import Any

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from jinit.cli import app

DEFAULT_INITS = "normal(stddev=0.01), glorot_uniform, he_normal"
_ARCH_DEFAULTS = {
    # arch: (activation, width, batch, depth)
    "mlp": ("relu", 512, 1000, 10),
    "cnn": ("relu", 64, 64, 10),
    "transformer": ("gelu", 128, 16, 4),
}
_VERDICT_STYLE = {"vanishing": "yellow", "stable": "green", "exploding": "bold red"}


# ---------------------------------------------------------------------------------------------
# Safe spec parsing
# ---------------------------------------------------------------------------------------------


def _returns_initializer(fn) -> bool:
    from jinit._src.base import Initializer

    try:
        ret = typing.get_type_hints(fn).get("return")
    except Exception:  # unresolvable annotations: not a builder we know
        return False
    return isinstance(ret, type) and issubclass(ret, Initializer)


def _resolve_name(parts: list[str], spec: str):
    """``(object, is_builder)`` for a dotted public name: an initialiser instance or a builder.

    Looks in the public ``jinit`` namespace first, then in the catalogue (e.g.
    ``torch.kaiming_uniform``). Anything that is neither an initialiser nor a builder of one
    (``fans``, ``law``, modules, classes) is refused.
    """
    import jinit
    from jinit._src.base import Initializer
    from jinit._src.catalogue import entries

    for p in parts:
        if not p.isidentifier() or p.startswith("_"):
            raise ValueError(
                f"`--inits` spec {spec!r}: {p!r} is not a public name. Use names such as "
                f"'he_normal' or 'normal(stddev=0.01)'."
            )
    if parts[0] == "jinit":
        parts = parts[1:]
    if not parts:
        raise ValueError(f"`--inits` spec {spec!r} names no initialiser.")
    dotted = ".".join(parts)
    obj: Any = jinit
    for p in parts:
        obj = getattr(obj, p, None)
        if obj is None:
            break
    if isinstance(obj, Initializer):
        return obj, False
    if obj is not None and callable(obj) and not isinstance(obj, type):
        if _returns_initializer(obj):
            return obj, True
        raise ValueError(
            f"`--inits` spec {spec!r}: {dotted!r} is not an initialiser. See `jinit list`."
        )
    for e in entries():
        if e.name == dotted:
            module = sys.modules.get(getattr(e.build, "__module__", ""), None)
            builder = getattr(module, parts[-1], None) if module is not None else None
            if isinstance(builder, Initializer):
                return builder, False
            if callable(builder) and not isinstance(builder, type):
                return builder, True
            return e.build, True  # zero-argument catalogue builder
    raise ValueError(
        f"`--inits` spec {spec!r}: unknown initialiser {dotted!r}. See `jinit list` for names."
    )


def _literal(node: ast.AST, spec: str):
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise ValueError(
            f"`--inits` spec {spec!r}: arguments must be literals (numbers, strings, tuples); "
            f"got {ast.unparse(node)!r}."
        ) from None


def _dotted(node: ast.AST, spec: str) -> list[str]:
    if isinstance(node, ast.Name):
        return [node.id]
    if isinstance(node, ast.Attribute):
        return [*_dotted(node.value, spec), node.attr]
    raise ValueError(
        f"`--inits` spec {spec!r}: expected a name or a call of a name, got {ast.unparse(node)!r}."
    )


def _build(node: ast.AST, spec: str):
    if isinstance(node, (ast.Name, ast.Attribute)):
        obj, is_builder = _resolve_name(_dotted(node, spec), spec)
        return _call(obj, [], {}, spec) if is_builder else obj
    if isinstance(node, ast.Call):
        if any(isinstance(a, ast.Starred) for a in node.args) or any(
            k.arg is None for k in node.keywords
        ):
            raise ValueError(f"`--inits` spec {spec!r}: * and ** arguments are not allowed.")
        obj, is_builder = _resolve_name(_dotted(node.func, spec), spec)
        if not is_builder:
            raise ValueError(
                f"`--inits` spec {spec!r}: {ast.unparse(node.func)!r} is already an "
                f"initialiser; write it without parentheses."
            )
        args = [_literal(a, spec) for a in node.args]
        kwargs = {k.arg: _literal(k.value, spec) for k in node.keywords}
        return _call(obj, args, kwargs, spec)
    raise ValueError(
        f"`--inits` spec {spec!r}: expected a name or a call such as 'normal(stddev=0.01)'."
    )


def _call(builder, args, kwargs, spec: str):
    try:
        init = builder(*args, **kwargs)
    except (TypeError, ValueError) as e:
        raise ValueError(f"`--inits` spec {spec!r}: {e}") from None
    if not callable(init):
        raise ValueError(f"`--inits` spec {spec!r} is not an initialiser (got {init!r}).")
    return init


def parse_init_specs(text: str) -> dict[str, Any]:
    """Parses ``"he_normal, orthogonal, normal(stddev=0.01)"`` into ``{spec: initializer}``.

    Only names and calls with literal arguments are accepted (parsed with :mod:`ast`, never
    evaluated); names resolve in the public ``jinit`` namespace and the catalogue.

    Raises:
      ValueError: a syntax error, a non-literal argument, a private or unknown name.

    Examples:
      >>> from jinit._src.cli_sweep import parse_init_specs
      >>> list(parse_init_specs("he_normal, normal(stddev=0.01)"))
      ['he_normal', 'normal(stddev=0.01)']
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError("`--inits` needs at least one initialiser, e.g. 'he_normal'.")
    try:
        tree = ast.parse(f"[{text}]", mode="eval")
    except SyntaxError as e:
        raise ValueError(
            f"`--inits` {text!r} is not a comma-separated list of specs: {e.msg}."
        ) from None
    if not isinstance(tree.body, ast.List):  # pragma: no cover - "[...]" always parses to List
        raise ValueError(f"`--inits` {text!r} is not a list of specs.")
    out: dict[str, Any] = {}
    for node in tree.body.elts:
        spec = ast.unparse(node)
        init = _build(node, spec)
        if not callable(init):
            raise ValueError(f"`--inits` spec {spec!r} is not an initialiser (got {init!r}).")
        out[spec] = init
    if not out:
        raise ValueError("`--inits` needs at least one initialiser, e.g. 'he_normal'.")
    return out


# ---------------------------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------------------------


def _set_devices(n: int | None) -> None:
    """Asks for ``n`` CPU devices (default: one per core, at most 8) if JAX has not started yet.

    On CPU, one device per core lets the seed chunks run on every core (each device has its own
    thread for the element-wise work; matmuls are multi-threaded either way). No-op on other
    platforms and once JAX's backends exist.
    """
    import os

    import jax

    if n is None:
        n = max(1, min(os.cpu_count() or 1, 8))

    try:
        if jax.config.jax_num_cpu_devices < n:
            jax.config.update("jax_num_cpu_devices", n)
    except (RuntimeError, ValueError, AttributeError):
        pass  # backends already initialised: sweep() reports if n is too large


def _fmt(x: float, digits: int = 4) -> str:
    if x != x:  # NaN
        return "–"
    return f"{x:.{digits}g}"


def _table(result, label: str) -> Table:
    import numpy as np

    std = result.summary(label, "act.std")
    grad = result.summary(label, "grad.second_moment")
    dead = result.summary(label, "dead_fraction")
    p_std = result.prediction(label, "act.std")
    p_grad = result.prediction(label, "grad.second_moment")
    verdicts = result.verdicts(label)
    bad = result.nonfinite_seeds(label)
    ident = result.identical_units(label)
    note = result.notes.get(label, "")
    table = Table(
        title=f"[bold]{label}[/bold]" + (f"  [dim]({note})[/dim]" if note else ""),
        title_justify="left",
        box=box.SIMPLE_HEAD,
        padding=(0, 1),
    )
    table.add_column("layer", justify="right")
    table.add_column("pred. std", justify="right")
    table.add_column("meas. std ± SE", justify="right")
    table.add_column("5–95 % seeds", justify="right", style="dim")
    table.add_column("grad² pred/meas", justify="right")
    table.add_column("dead", justify="right")
    table.add_column("verdict", no_wrap=True)
    for j in range(result.n_layers):
        v = verdicts[j]
        extra = ""
        if bad[j]:
            extra = f" ({bad[j]} inf/NaN)"
        elif ident[j]:
            extra = " (units identical)"
        table.add_row(
            str(j + 1),
            _fmt(p_std[j], 3),
            f"{_fmt(std.mean[j], 3)} ± {_fmt(std.se[j], 1)}",
            f"{_fmt(std.q05[j], 2)}–{_fmt(std.q95[j], 2)}",
            f"{_fmt(p_grad[j], 2)}/{_fmt(grad.mean[j], 2)}",
            f"{100 * dead.mean[j]:.0f}%" if np.isfinite(dead.mean[j]) else "–",
            f"[{_VERDICT_STYLE[v]}]{v}[/]{extra}",
        )
    return table


@app.command("sweep")
def sweep_cmd(
    arch: str = typer.Option("mlp", "--arch", help="Architecture: mlp, cnn or transformer."),
    activation: str = typer.Option(
        None, "--activation", help="Activation (default relu; gelu for the transformer)."
    ),
    width: int = typer.Option(
        None, "--width", help="Units (MLP), channels (CNN) or d_model (transformer)."
    ),
    depth: int = typer.Option(None, "--depth", help="Number of layers (default 10; 4 blocks)."),
    batch: int = typer.Option(None, "--batch", help="Examples per seed (default 1000 for mlp)."),
    seeds: int = typer.Option(256, "--seeds", help="Number of seeds."),
    inits: str = typer.Option(
        DEFAULT_INITS, "--inits", help='Comma-separated specs, e.g. "he_normal, orthogonal".'
    ),
    bias_init: str = typer.Option("zeros", "--bias-init", help="Spec of the bias initialiser."),
    dtype: str = typer.Option("float32", "--dtype", help="float32, float64 or bfloat16."),
    devices: int = typer.Option(
        None,
        "--devices",
        help="Local devices to shard seeds over (default all; on CPU one per core).",
    ),
    out: str = typer.Option("jinit-sweep", "--out", help="Output directory."),
    seed: int = typer.Option(0, "--seed", help="Root seed."),
    chunk_size: int = typer.Option(None, "--chunk-size", help="Seeds per compiled call."),
    layer: int = typer.Option(5, "--layer", help="Layer of the activation histogram."),
    layernorm: bool = typer.Option(False, "--layernorm", help="MLP: LayerNorm before φ."),
    residual: bool = typer.Option(False, "--residual", help="MLP: residual stream."),
    kernel_size: int = typer.Option(3, "--kernel-size", help="CNN kernel size."),
    padding: str = typer.Option("circular", "--padding", help="CNN padding: circular or same."),
    plots: bool = typer.Option(True, "--plots/--no-plots", help="Write the PNG figures."),
) -> None:
    """Activation and gradient statistics through a deep network over seeds, vs theory.

    Without options: the classic experiment, a 10-layer ReLU MLP of width 512 with
    normal(stddev=0.01), glorot_uniform and he_normal, 256 seeds of 1000 examples.
    """
    _set_devices(devices)
    if dtype in ("float64", "f8", "double"):
        import jax

        jax.config.update("jax_enable_x64", True)

    import jax.numpy as jnp

    from jinit._src import networks
    from jinit._src.propagate import sweep

    console = Console()
    if not console.is_terminal:  # logs and pipes: wide enough for the tables
        console = Console(width=max(console.width, 110))
    if arch not in _ARCH_DEFAULTS:
        raise typer.BadParameter(
            f"unknown architecture {arch!r}; use mlp, cnn or transformer", param_hint="--arch"
        )
    d_act, d_width, d_batch, d_depth = _ARCH_DEFAULTS[arch]
    activation = activation or d_act
    width = width or d_width
    depth = depth or d_depth
    batch = batch or d_batch
    try:
        if arch == "mlp":
            net = networks.mlp(width, depth, activation, layernorm=layernorm, residual=residual)
        elif arch == "cnn":
            net = networks.cnn(width, depth, kernel_size, activation, padding=padding)
        else:
            net = networks.transformer(width, depth, activation=activation)
    except (ValueError, TypeError) as e:
        raise typer.BadParameter(str(e)) from None
    try:
        init_map = parse_init_specs(inits)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--inits") from None
    try:
        (b_init,) = parse_init_specs(bias_init).values()
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--bias-init") from None
    try:
        dt = jnp.dtype(dtype)
    except TypeError:
        raise typer.BadParameter(f"unknown dtype {dtype!r}", param_hint="--dtype") from None

    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    console.print(
        f"[bold]jinit sweep[/bold]: {net.describe()}; batch {batch}, {seeds} seeds, "
        f"{len(init_map)} initialiser(s), {dt.name}"
    )
    t0 = time.perf_counter()
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("chunks"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("compiling…", total=None)
        order = list(init_map)

        def report(label: str, done: int, total: int) -> None:
            k = order.index(label)
            desc = f"{label} (compiling)" if done == 0 else label
            progress.update(
                task, total=total * len(order), completed=k * total + done, description=desc
            )

        try:
            result = sweep(
                net,
                init_map,
                seeds=seeds,
                batch=batch,
                bias_init=b_init,
                dtype=dt,
                seed=seed,
                devices=devices,
                chunk_size=chunk_size,
                progress=report,
            )
        except (ValueError, TypeError) as e:
            raise typer.BadParameter(str(e)) from None
    elapsed = time.perf_counter() - t0
    out_dir = Path(out)
    result.config["elapsed_seconds"] = round(elapsed, 2)

    for label in result.labels:
        console.print(_table(result, label))
    out_dir.mkdir(parents=True, exist_ok=True)
    result.to_json(out_dir / "results.json")
    result.to_csv(out_dir / "results.csv")
    written = ["results.json", "results.csv"]
    if plots:
        from jinit import plot

        plot.save_all(result, out_dir, layer=layer)
        written += ["depth_profile.png", "histogram.png", "gradient_profile.png"]
    c = result.config
    console.print(
        f"{c['seeds']} seeds × {len(result.labels)} initialisers on {c['devices']} "
        f"{c['platform']} device(s), chunks of {c['chunk_size']}: {elapsed:.1f} s. "
        f"Wrote {', '.join(written)} to {out_dir}/"
    )
