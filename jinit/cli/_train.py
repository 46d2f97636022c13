"""``jinit train``: does a deep network train under each initialisation? (real data, seeds)

With no arguments: scikit-learn's bundled 8×8 digits (standardised, fixed 1437/360 split), an
MLP with 20 hidden ReLU layers of width 64, Adam (learning rate 1e-3, batch 128) for 500 steps,
8 seeds for each of ``he_normal``, ``orthogonal``, ``normal(stddev=0.01)`` and ``zeros``. Prints
a table of the final losses and accuracies (mean ± std over seeds) and writes ``results.json``
and ``curves.png`` into ``--out``.

Initialiser specs (``--inits``) are parsed as in ``jinit sweep``: names or calls with literal
arguments, never evaluated (:func:`jinit.cli._specs.parse_init_specs`).
"""

from __future__ import annotations

import math
import time
from typing import Any

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from jinit.cli._console import progress_bar, wide_console

DEFAULT_INITS = "he_normal, orthogonal, normal(stddev=0.01), zeros"
_VERDICT_STYLE = {
    "trains": "green",
    "partial": "yellow",
    "stalls": "bold red",
    "diverged": "bold magenta",
}


def _mean_std(values) -> str:
    import numpy as np

    v = np.asarray(values, np.float64)
    fin = v[np.isfinite(v)]
    if not fin.size:
        return "–"
    std = fin.std(ddof=1) if fin.size > 1 else 0.0
    bad = f" [dim]({v.size - fin.size} NaN)[/dim]" if fin.size < v.size else ""
    return f"{fin.mean():.3f} ± {std:.3f}{bad}"


def _pct(values) -> str:
    import numpy as np

    v = np.asarray(values, np.float64)
    fin = v[np.isfinite(v)]
    if not fin.size:
        return "–"
    std = fin.std(ddof=1) if fin.size > 1 else 0.0
    return f"{100 * fin.mean():.1f} ± {100 * std:.1f} %"


def results_table(result) -> Table:
    """The final-evaluation table of a :class:`jinit.TrainResult` (one row per initialiser).

    Examples:
      >>> import numpy as np
      >>> from jinit.cli._train import results_table
      >>> from jinit.sweeps._train_data import METRICS
      >>> from jinit.sweeps._train_results import TrainResult
      >>> curves = {"he": {m: np.array([[2.3, 0.1], [2.3, 0.2]]) for m in METRICS}}
      >>> r = TrainResult({"chance_loss": float(np.log(10)), "steps": 10}, np.array([0, 10]),
      ...                 curves, {"he": "he_normal()"})
      >>> results_table(r).row_count
      1
    """
    c = result.config
    chance = c.get("chance_accuracy")
    title = f"after {c.get('steps', '?')} steps, {result.n_seeds} seeds (mean ± std over seeds)"
    if chance:
        title += f"; chance: loss {c['chance_loss']:.3f}, accuracy {100 * chance:.0f} %"
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, padding=(0, 1))
    table.add_column("initialiser", style="bold cyan", no_wrap=True)
    table.add_column("train loss", justify="right")
    table.add_column("test loss", justify="right")
    table.add_column("train acc.", justify="right")
    table.add_column("test acc.", justify="right", style="bold")
    table.add_column("verdict", no_wrap=True)
    for label in result.labels:
        v = result.verdict(label)
        table.add_row(
            label,
            _mean_std(result.final(label, "train.loss")),
            _mean_std(result.final(label, "test.loss")),
            _pct(result.final(label, "train.accuracy")),
            _pct(result.final(label, "test.accuracy")),
            f"[{_VERDICT_STYLE[v]}]{v}[/]",
        )
    return table


def _prepare_train_cmd(
    *,
    inits: str,
    seeds: int,
    steps: int,
    depth: int,
    width: int,
    activation: str,
    batch_size: int,
    lr: float,
    eval_every: int | None,
    seed: int,
    devices: int | None,
):
    """Checks the options of ``jinit train`` that need the library and prepares the training
    sweep (nothing compiled). Returns ``(plan, {spec: initialiser}, data)``; raises
    ``typer.BadParameter`` (exit 2) naming the option."""
    from jinit.cli._specs import parse_init_specs
    from jinit.cli._sweep import cli_words, set_devices
    from jinit.sweeps._mlp import mlp
    from jinit.sweeps._network_base import activation_fn

    try:
        activation_fn(activation, "jinit train")
    except (ValueError, TypeError) as e:
        raise typer.BadParameter(str(e), param_hint="--activation") from None
    try:
        init_map = parse_init_specs(inits)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--inits") from None
    set_devices(devices)

    import optax

    from jinit.sweeps._train import prepare_train
    from jinit.sweeps._train_data import digits

    data = digits()
    try:
        plan = prepare_train(
            mlp(width, depth, activation),
            init_map,
            data,
            seeds=seeds,
            steps=steps,
            batch_size=batch_size,
            optimizer=None if lr == 1e-3 else optax.adam(lr),
            eval_every=eval_every,
            key=seed,
            devices=devices,
        )
    except (ValueError, TypeError) as e:
        raise typer.BadParameter(cli_words(str(e))) from None
    return plan, init_map, data


def train_cmd(
    inits: str = typer.Option(
        DEFAULT_INITS, "--inits", help='Comma-separated specs, e.g. "he_normal, orthogonal".'
    ),
    seeds: int = typer.Option(8, "--seeds", help="Seeds per initialiser."),
    steps: int = typer.Option(500, "--steps", help="Adam steps."),
    depth: int = typer.Option(20, "--depth", help="Hidden layers of the MLP."),
    width: int = typer.Option(64, "--width", help="Units per hidden layer."),
    activation: str = typer.Option("relu", "--activation", help="relu, tanh, gelu, ..."),
    batch_size: int = typer.Option(128, "--batch-size", help="Training examples per step."),
    lr: float = typer.Option(1e-3, "--lr", help="Adam learning rate."),
    eval_every: int = typer.Option(
        None, "--eval-every", help="Steps between evaluations (must divide --steps)."
    ),
    seed: int = typer.Option(0, "--seed", help="Root seed."),
    devices: int = typer.Option(
        None, "--devices", help="Devices to shard the runs over (default: on CPU one per core)."
    ),
    out: str = typer.Option("jinit-train", "--out", help="Output directory."),
    plots: bool = typer.Option(True, "--plots/--no-plots", help="Write curves.png."),
) -> None:
    """Train a deep MLP on the digits under each initialiser, over seeds; curves and table.

    Without options: 20 hidden ReLU layers of width 64 on scikit-learn's bundled 8×8 digits,
    Adam 1e-3, 500 steps of batch 128, 8 seeds each of he_normal, orthogonal,
    normal(stddev=0.01) and zeros. He and orthogonal train (test accuracy > 90 %); the small
    normal and zeros stall at chance (loss log 10, accuracy ~10 %).
    """
    # Every option is checked (and every initialiser probed) before --out is touched and
    # before anything is compiled.
    _check_train_options(seeds, steps, depth, width, batch_size, eval_every, devices, lr, seed)
    _require_train_modules(plots)
    plan, init_map, data = _prepare_train_cmd(
        inits=inits,
        seeds=seeds,
        steps=steps,
        depth=depth,
        width=width,
        activation=activation,
        batch_size=batch_size,
        lr=lr,
        eval_every=eval_every,
        seed=seed,
        devices=devices,
    )
    from jinit._core._cli_out import prepare_cli_out

    out_folder = prepare_cli_out(out, "jinit train")  # validated and locked, before work
    console = wide_console()
    console.print(
        f"[bold]jinit train[/bold]: digits ({len(data.y_train)} train / {len(data.y_test)} test), "
        f"MLP {depth} hidden layers × {width} {activation}; Adam {lr:g}, batch {batch_size}, "
        f"{steps} steps; {seeds} seeds × {len(init_map)} initialiser(s)"
    )
    result, elapsed = _train_with_progress(plan, console)
    result.config["optimizer"] = f"adam(learning_rate={lr:g})"
    result.config["elapsed_seconds"] = round(elapsed, 2)
    console.print(results_table(result))
    result.config["run_id"] = out_folder.run_id  # in results.json and curves.png
    written = _write_train_out(result, out_folder, plots)
    c = result.config
    console.print(
        f"{seeds} seeds × {len(result.labels)} initialisers on {c['devices']} {c['platform']} "
        f"device(s): {elapsed:.1f} s. Wrote {', '.join(written)} to {out.rstrip('/')}/"
    )


def _check_train_options(
    seeds: int,
    steps: int,
    depth: int,
    width: int,
    batch_size: int,
    eval_every: int | None,
    devices: int | None,
    lr: float,
    seed: int,
) -> None:
    """Checks the counts, the learning rate, ``--eval-every`` and the seed (exit 2)."""
    from jinit.cli._sweep import at_least, check_seed

    for name, value in (
        ("--seeds", seeds),
        ("--steps", steps),
        ("--depth", depth),
        ("--width", width),
        ("--batch-size", batch_size),
        ("--eval-every", eval_every),
        ("--devices", devices),
    ):
        at_least(value, 1, name)
    if not (math.isfinite(lr) and lr > 0):
        raise typer.BadParameter(
            f"needs a positive, finite learning rate such as 1e-3; got {lr}", param_hint="--lr"
        )
    if eval_every is not None and steps % eval_every:
        divisors = [d for d in range(1, steps + 1) if steps % d == 0]
        near = sorted(divisors, key=lambda d: abs(d - eval_every))[:3]
        raise typer.BadParameter(
            f"needs a divisor of --steps ({steps}); got {eval_every}. Use e.g. "
            f"{', '.join(map(str, sorted(near)))}.",
            param_hint="--eval-every",
        )
    check_seed(seed, "--seed")


def _require_train_modules(plots: bool) -> None:
    """Ends the command (exit 1) when scikit-learn, or matplotlib for the plot, is missing."""
    from jinit.cli._sweep import require

    require("sklearn", "jinit train", "for the 8×8 digits data set")
    if plots:
        require("matplotlib", "jinit train", "for curves.png", " (or pass --no-plots)")


def _train_with_progress(plan: Any, console: Console) -> tuple[Any, float]:
    """Runs the prepared training under a progress bar; ``(result, elapsed seconds)``."""
    from jinit.sweeps._train import run_train

    t0 = time.perf_counter()
    with progress_bar(console, "steps") as progress:
        task = progress.add_task("drawing parameters, compiling…", total=None)

        def report(done: int, total: int) -> None:
            desc = "drawing parameters, compiling…" if done == 0 else "training"
            progress.update(task, total=total, completed=done, description=desc)

        result = run_train(plan, progress=report)
    return result, time.perf_counter() - t0


def _write_train_out(result: Any, out_folder: Any, plots: bool) -> list[str]:
    """Writes ``results.json`` (and ``curves.png``) into ``--out``; the names written."""
    from jinit._core._cli_out import write_cli_out

    def fill(stage) -> None:  # the whole set, built beside --out, then swapped in
        result.to_json(stage / "results.json")
        if plots:
            result.plot(stage / "curves.png")

    return write_cli_out(out_folder, fill)
