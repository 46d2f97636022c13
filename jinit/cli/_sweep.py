"""``jinit sweep``: the classic initialisation experiment, with seeds and theory.

With no arguments: an MLP of width 512 and depth 10 with ReLU, batch 1000, initialisers
``normal(stddev=0.01)``, ``glorot_uniform`` and ``he_normal``, 256 seeds. Prints a table per
initialiser and writes ``results.json``, ``results.csv``, ``depth_profile.png``,
``histogram.png`` and ``gradient_profile.png`` (not with ``--no-gradients``) into ``--out``.

Initialiser specs (``--inits``) are parsed with :mod:`ast`, never evaluated: a spec is a name
(``he_normal``, ``torch.kaiming_uniform``) or a call of one with literal arguments
(``normal(stddev=0.01)``, ``variance_scaling(2.0, "fan_in", "normal")``). Names resolve in the
public ``jinit`` namespace, then in the catalogue.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from jinit.cli._console import progress_bar, wide_console
from jinit.cli._specs import parse_init_specs

DEFAULT_INITS = "normal(stddev=0.01), glorot_uniform, he_normal"
_ARCH_DEFAULTS = {
    # arch: (activation, width, batch, depth)
    "mlp": ("relu", 512, 1000, 10),
    "cnn": ("relu", 64, 64, 10),
    "transformer": ("gelu", 128, 16, 4),
}
_VERDICT_STYLE = {"vanishing": "yellow", "stable": "green", "exploding": "bold red"}


# ---------------------------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------------------------


def set_devices(n: int | None, option: str = "--devices") -> None:
    """Checks ``--devices`` and asks JAX for that many CPU devices, before JAX starts.

    ``None``: one CPU device per core (at most 8), so the seed chunks run on every core (each
    device has its own thread for the element-wise work; matmuls are multi-threaded either way).
    A count must be >= 1 and at most what the platform gives: the local accelerators, or on CPU
    one device per core (forced host devices beyond the core count only slow the work down;
    devices that already exist, e.g. from ``XLA_FLAGS`` or an earlier JAX start, are accepted).

    Raises:
      typer.BadParameter: a count < 1 or more devices than the platform gives.
    """
    import os

    if n is not None and n < 1:
        raise typer.BadParameter(
            f"needs at least 1 device; got devices={n}. Leave --devices out to use every local "
            f"device (on CPU one per core).",
            param_hint=option,
        )
    import jax

    cores = os.cpu_count() or 1
    want = max(1, min(cores, 8)) if n is None else n
    if want <= cores:
        try:
            current = jax.config.jax_num_cpu_devices
            # the default never overrides a count set explicitly (e.g. by a test harness)
            if current < want and (n is not None or current < 1):
                jax.config.update("jax_num_cpu_devices", want)
        except (RuntimeError, ValueError, AttributeError):
            pass  # JAX has started: the devices that exist are checked below
    if n is None:
        return
    local = jax.local_devices()
    if n <= len(local):
        return
    platform = local[0].platform
    if platform != "cpu":
        reason = f"only {len(local)} local {platform} device(s) exist"
        most = len(local)
    elif n > cores:
        reason = (
            f"this machine has {cores} CPU core(s), and forced host devices beyond the core "
            f"count only slow the work down"
        )
        most = max(cores, len(local)) if len(local) >= cores else cores
    else:
        reason = (
            f"only {len(local)} CPU device(s) exist in this process (JAX started before "
            f"--devices could create more)"
        )
        most = len(local)
    raise typer.BadParameter(
        f"got devices={n}, but {reason}. Use --devices {most} or fewer.", param_hint=option
    )


def require(module: str, command: str, why: str, alternative: str = "") -> None:
    """Imports ``module`` or ends ``command`` (exit 1) with the exact install command."""
    import importlib

    try:
        importlib.import_module(module)
    except ImportError as e:
        package = {"sklearn": "scikit-learn"}.get(module, module)
        Console(stderr=True).print(
            f"[bold red]error:[/bold red] `{command}` needs {package} {why}, but it cannot be "
            f"imported ({e}). Install it with: python -m pip install {package}{alternative}",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(code=1) from None


def at_least(value: int | None, minimum: int, option: str) -> None:
    if value is not None and value < minimum:
        raise typer.BadParameter(f"needs an int >= {minimum}; got {value}.", param_hint=option)


def check_seed(value: int, option: str) -> int:
    if not -(2**63) <= value < 2**63:
        raise typer.BadParameter(
            f"needs a seed that fits in a signed 64-bit integer (what jax.random.key takes); "
            f"got {value}.",
            param_hint=option,
        )
    return value


def _prepare_sweep_cmd(
    *,
    arch: str,
    activation: str | None,
    width: int | None,
    depth: int | None,
    batch: int | None,
    seeds: int,
    inits: str,
    bias_init: str,
    dtype: str,
    devices: int | None,
    seed: int,
    chunk_size: int | None,
    layer: int | None,
    layernorm: bool,
    residual: bool,
    kernel_size: int | None,
    padding: str | None,
    plots: bool,
    gradients: bool = True,
):
    """Checks every option of ``jinit sweep`` and prepares the sweep (nothing compiled).

    Returns ``(plan, dtype, layer)``; raises ``typer.BadParameter`` (exit 2) naming the option.
    """
    if arch not in _ARCH_DEFAULTS:
        raise typer.BadParameter(
            f"unknown architecture {arch!r}; use mlp, cnn or transformer.", param_hint="--arch"
        )
    for value, option in (
        (width, "--width"),
        (depth, "--depth"),
        (batch, "--batch"),
        (seeds, "--seeds"),
        (chunk_size, "--chunk-size"),
        (kernel_size, "--kernel-size"),
        (devices, "--devices"),
    ):
        at_least(value, 1, option)
    d_act, d_width, d_batch, d_depth = _ARCH_DEFAULTS[arch]
    width = d_width if width is None else width
    depth = d_depth if depth is None else depth
    batch = d_batch if batch is None else batch
    activation = d_act if activation is None else activation
    check_seed(seed, "--seed")
    _check_arch_options(arch, width, layernorm, residual, kernel_size, padding)
    layer = _check_layer(layer, depth)
    dt = _sweep_dtype(dtype)
    net = _network(arch, width, depth, activation, layernorm, residual, kernel_size, padding)
    init_map, b_init = _sweep_inits(inits, bias_init)
    if plots:
        require("matplotlib", "jinit sweep", "for the PNG figures", " (or pass --no-plots)")
    set_devices(devices)
    kwargs = {"seeds": seeds, "batch": batch, "seed": seed, "chunk_size": chunk_size}
    kwargs["gradients"] = gradients
    plan = _prepare_in_dtype(net, init_map, dt, bias_init=b_init, devices=devices, **kwargs)
    return plan, dt, layer


def _check_layer(layer: int | None, depth: int) -> int:
    """The layer of the histogram (``--layer``): 1 to the depth, default min(5, depth)."""
    if layer is not None and not 1 <= layer <= depth:
        raise typer.BadParameter(
            f"needs a layer from 1 to the depth ({depth}); got {layer}.", param_hint="--layer"
        )
    return min(5, depth) if layer is None else layer


def _check_arch_options(arch, width, layernorm, residual, kernel_size, padding) -> None:
    """Options that apply to one architecture only, and the transformer's head count."""
    for given, option, only in (
        (layernorm, "--layernorm", "mlp"),
        (residual, "--residual", "mlp"),
        (kernel_size is not None, "--kernel-size", "cnn"),
        (padding is not None, "--padding", "cnn"),
    ):
        if given and arch != only:
            raise typer.BadParameter(
                f"applies to --arch {only} only; got --arch {arch}, for which it would be "
                f"ignored. Drop {option}.",
                param_hint=option,
            )
    if padding is not None and padding not in ("circular", "same"):
        raise typer.BadParameter(
            f"needs circular or same; got {padding!r}.", param_hint="--padding"
        )
    if arch == "transformer" and width % 4:
        raise typer.BadParameter(
            f"the transformer has 4 attention heads, so d_model must be a multiple of 4; got "
            f"{width}. Use e.g. --width {max(4, width // 4 * 4)}.",
            param_hint="--width",
        )


def _sweep_dtype(dtype: str):
    import jax.numpy as jnp
    import numpy as np

    from jinit.sweeps._sweep_checks import check_float_dtype

    try:
        dt = np.dtype(jnp.dtype(dtype))
    except TypeError:
        raise typer.BadParameter(
            f"unknown dtype {dtype!r}; use float32, bfloat16, float16 or float64.",
            param_hint="--dtype",
        ) from None
    if dt != np.float64:
        try:
            check_float_dtype("jinit sweep", dt)
        except (TypeError, ValueError) as e:
            raise typer.BadParameter(str(e), param_hint="--dtype") from None
    return dt


def _network(arch, width, depth, activation, layernorm, residual, kernel_size, padding):
    from jinit.sweeps._cnn import cnn
    from jinit.sweeps._mlp import mlp
    from jinit.sweeps._network_base import activation_fn
    from jinit.sweeps._transformer import transformer

    try:
        activation_fn(activation, "jinit sweep")
    except (TypeError, ValueError) as e:
        raise typer.BadParameter(str(e), param_hint="--activation") from None
    if arch == "mlp":
        return mlp(width, depth, activation, layernorm=layernorm, residual=residual)
    if arch == "cnn":
        return cnn(
            width,
            depth,
            3 if kernel_size is None else kernel_size,
            activation,
            padding="circular" if padding is None else padding,
        )
    return transformer(width, depth, activation=activation)


def _sweep_inits(inits: str, bias_init: str):
    """``({spec: initialiser}, the bias initialiser)`` from ``--inits`` and ``--bias-init``."""
    try:
        init_map = parse_init_specs(inits)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--inits") from None
    try:
        bias_map = parse_init_specs(bias_init)
    except ValueError as e:
        raise typer.BadParameter(
            str(e).replace("--inits", "--bias-init"), param_hint="--bias-init"
        ) from None
    if len(bias_map) != 1:
        raise typer.BadParameter(
            f"needs exactly one initialiser spec; got {len(bias_map)}: {', '.join(bias_map)}.",
            param_hint="--bias-init",
        )
    (b_init,) = bias_map.values()
    return init_map, b_init


def _prepare_in_dtype(net, init_map, dt, **kwargs):
    """:func:`jinit.sweeps._propagate.prepare_sweep`, with 64-bit jax switched on for float64
    (and back off when preparing fails); errors become a usage error."""
    import jax
    import numpy as np

    from jinit.sweeps._propagate import prepare_sweep

    x64_was = bool(jax.config.jax_enable_x64)
    if dt == np.float64 and not x64_was:
        jax.config.update("jax_enable_x64", True)
    try:
        return prepare_sweep(net, init_map, dtype=dt, **kwargs)
    except (ValueError, TypeError) as e:
        if dt == np.float64 and not x64_was:
            jax.config.update("jax_enable_x64", False)
        raise typer.BadParameter(cli_words(str(e))) from None


def cli_words(message: str) -> str:
    """An API message in the CLI's words: keyword arguments become the options."""
    for kw, option in (
        ("`chunk_size=", "`--chunk-size "),
        ("`chunk_size`", "`--chunk-size`"),
        ("`batch_size`", "`--batch-size`"),
        ("`batch`", "`--batch`"),
        ("`seeds`", "`--seeds`"),
        ("leave it None", "leave it out"),
    ):
        message = message.replace(kw, option)
    return message


def _fmt(x: float, digits: int = 4) -> str:
    if x != x:  # NaN
        return "–"
    return f"{x:.{digits}g}"


def _caption(result, judged: dict[str, str], grads: bool) -> str:
    """The table's caption: what the verdict judges and what the gradients are of."""
    return escape(
        f"verdict: {judged['what']} E[x²] / input E[x²] within "
        f"[{result.config.get('stable_band', (0.1, 10.0))[0]:g}, "
        f"{result.config.get('stable_band', (0.1, 10.0))[1]:g}]"
        + (
            f"; gradients of L = {result.config.get('loss', '<v, y>').split(' (')[0]}"
            if grads
            else "; forward only (--no-gradients)"
        )
    )


def _table(result, label: str) -> Table:
    import numpy as np

    judged = result.judged
    std = result.summary(label, judged["std"])
    grads = result.gradients
    grad = result.summary(label, judged["backward"]) if grads else None
    dead = result.summary(label, "dead_fraction")
    p_std = result.prediction(label, judged["std"])
    p_grad = result.prediction(label, judged["backward"])
    stream = judged["what"] == "residual stream"
    named = "layer_names" in result.config
    verdicts = result.verdicts(label)
    bad = result.nonfinite_seeds(label)
    ident = result.identical_units(label)
    note = result.notes.get(label, "")
    table = Table(
        title=f"[bold]{label}[/bold]" + (f"  [dim]({note})[/dim]" if note else ""),
        title_justify="left",
        caption=_caption(result, judged, grads),
        caption_justify="left",
        box=box.SIMPLE_HEAD,
        padding=(0, 1),
    )
    table.add_column("layer", justify="right")
    if named:
        table.add_column("module", overflow="fold")
    what = "stream std" if stream else "std"
    table.add_column(f"pred. {what}", justify="right")
    table.add_column(f"meas. {what} ± SE", justify="right")
    table.add_column("5–95 % seeds", justify="right", style="dim")
    if grads:
        table.add_column(("stream " if stream else "") + "grad² pred/meas", justify="right")
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
            *([result.layer_names[j]] if named else []),
            _fmt(p_std[j], 3),
            f"{_fmt(std.mean[j], 3)} ± {_fmt(std.se[j], 1)}",
            f"{_fmt(std.q05[j], 2)}–{_fmt(std.q95[j], 2)}",
            *([f"{_fmt(p_grad[j], 2)}/{_fmt(grad.mean[j], 2)}"] if grads else []),
            f"{100 * dead.mean[j]:.0f}%" if np.isfinite(dead.mean[j]) else "–",
            f"[{_VERDICT_STYLE[v]}]{v}[/]{extra}",
        )
    return table


def sweep_cmd(
    ctx: typer.Context,
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
    dtype: str = typer.Option("float32", "--dtype", help="float32, bfloat16, float16 or float64."),
    devices: int = typer.Option(
        None,
        "--devices",
        help="Local devices to shard seeds over (default all; on CPU one per core).",
    ),
    out: str = typer.Option("jinit-sweep", "--out", help="Output directory."),
    seed: int = typer.Option(0, "--seed", help="Root seed."),
    chunk_size: int = typer.Option(None, "--chunk-size", help="Seeds per compiled call."),
    layer: int = typer.Option(
        None, "--layer", help="Layer of the activation histogram (default 5, or the last)."
    ),
    layernorm: bool = typer.Option(False, "--layernorm", help="MLP: LayerNorm before φ."),
    residual: bool = typer.Option(False, "--residual", help="MLP: residual stream."),
    kernel_size: int = typer.Option(None, "--kernel-size", help="CNN kernel size (default 3)."),
    padding: str = typer.Option(None, "--padding", help="CNN padding: circular (default) or same."),
    plots: bool = typer.Option(True, "--plots/--no-plots", help="Write the PNG figures."),
    gradients: bool = typer.Option(
        True,
        "--gradients/--no-gradients",
        help="Also run the backward pass (gradient statistics); --no-gradients: forward only.",
    ),
) -> None:
    """Activation and gradient statistics through a deep network over seeds, vs theory.

    Without options: the classic experiment, a 10-layer ReLU MLP of width 512 with
    normal(stddev=0.01), glorot_uniform and he_normal, 256 seeds of 1000 examples.
    """
    # Every option is checked (and every initialiser probed) before --out is touched and
    # before anything is compiled.
    options = {k: v for k, v in ctx.params.items() if k != "out"}
    plan, dt, layer = _prepare_sweep_cmd(**options)
    from jinit._core._cli_out import prepare_cli_out

    out_folder = prepare_cli_out(out, "jinit sweep")  # validated and locked, before work
    console = wide_console()
    result, elapsed = _run_with_progress(plan, dt, seeds, console)
    _finish_sweep(result, elapsed, console, out_folder, out, plots, layer)


def _run_with_progress(plan: Any, dt: Any, seeds: int, console: Console) -> tuple[Any, float]:
    """Runs the prepared sweep under a progress bar; ``(result, elapsed seconds)``."""
    from jinit.sweeps._propagate import run_sweep

    net, init_map, batch = plan.network, plan.inits, plan.batch
    console.print(
        f"[bold]jinit sweep[/bold]: {net.describe()}; batch {batch}, {seeds} seeds, "
        f"{len(init_map)} initialiser(s), {dt.name}"
    )
    t0 = time.perf_counter()
    with progress_bar(console, "chunks") as progress:
        task = progress.add_task("compiling…", total=None)
        order = list(init_map)

        def report(label: str, done: int, total: int) -> None:
            k = order.index(label)
            desc = f"{label} (compiling)" if done == 0 else label
            progress.update(
                task, total=total * len(order), completed=k * total + done, description=desc
            )

        result = run_sweep(plan, progress=report)
    elapsed = time.perf_counter() - t0
    result.config["elapsed_seconds"] = round(elapsed, 2)
    return result, elapsed


def _finish_sweep(
    result: Any,
    elapsed: float,
    console: Console,
    out_folder: Any,
    out: str,
    plots: bool,
    layer: int,
) -> None:
    """Prints the tables, writes the results (and the figures) into ``--out`` and says so."""
    from jinit._core._cli_out import write_cli_out

    for label in result.labels:
        console.print(_table(result, label))
    result.config["run_id"] = out_folder.run_id  # in results.json, results.csv and the PNGs

    def fill(stage: Path) -> None:  # the whole set, built beside --out, then swapped in
        result.to_json(stage / "results.json")
        result.to_csv(stage / "results.csv")
        if plots:
            from jinit import plot

            plot.save_all(result, stage, layer=layer)

    written = write_cli_out(out_folder, fill)
    c = result.config
    console.print(
        f"{c['seeds']} seeds × {len(result.labels)} initialisers on {c['devices']} "
        f"{c['platform']} device(s), chunks of {c['chunk_size']}: {elapsed:.1f} s "
        f"(compile {result.compile_seconds:.1f} s for {c['compiled_programs']} program(s), run "
        f"{result.run_seconds:.1f} s). Wrote {', '.join(written)} to {out.rstrip('/')}/"
    )
