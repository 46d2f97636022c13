"""The ``jinit`` command line: a thin layer over the public API.

``list`` and ``check`` are defined here; ``sweep``, ``train`` and ``init-bench`` are defined in
their own modules (which never import this one) and registered on :data:`app` below.
"""

from __future__ import annotations

from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from jinit.cli import _init_bench as _cli_init_bench
from jinit.cli import _sweep as _cli_sweep
from jinit.cli import _train as _cli_train

app = typer.Typer(
    name="jinit",
    help="jinit: JAX/Flax weight initialisation with exact laws, seed sweeps and assertions.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """jinit: JAX/Flax weight initialisation with exact laws, seed sweeps and assertions."""


@app.command("list")
def list_cmd(
    family: str = typer.Option(None, "--family", "-f", help="Only this family."),
    shape: str = typer.Option(
        None, "--shape", help="Also evaluate each law's std for this shape, e.g. 256,128."
    ),
) -> None:
    """Print the catalogue: name, family, law summary (and the std for --shape)."""
    import jinit
    from jinit.catalogue import entries

    parsed = _parse_shape(shape) if shape is not None else None
    table = Table(title="jinit catalogue", show_lines=False)
    table.add_column("name", style="bold cyan", no_wrap=True)
    table.add_column("family", style="magenta")
    table.add_column("law", overflow="fold")
    table.add_column("dtypes", style="dim")
    if parsed is not None:
        table.add_column(f"std @ {parsed}", justify="right")
    rows = 0
    for e in entries():
        if family is not None and e.family != family:
            continue
        cells = [e.name, e.family, e.law, e.dtypes]
        if parsed is not None:
            try:
                lw = jinit.law(e.build(), parsed)
                cells.append(f"{lw.variance**0.5:.6g}")
            except (ValueError, TypeError) as err:
                cells.append(f"[dim]n/a ({str(err).split(';')[0][:40]}…)[/dim]")
        table.add_row(*cells)
        rows += 1
    if not rows:
        families = sorted({e.family for e in entries()})
        raise typer.BadParameter(
            f"no initialiser in family {family!r}; families are {', '.join(families)}.",
            param_hint="--family",
        )
    Console().print(table)


def _parse_shape(text: str) -> tuple[int, ...]:
    try:
        dims = tuple(int(p) for p in text.replace("x", ",").split(",") if p.strip())
    except ValueError:
        raise typer.BadParameter(
            f"expected comma-separated ints such as 256,128; got {text!r}", param_hint="--shape"
        ) from None
    if not dims or any(d < 0 for d in dims):
        raise typer.BadParameter(
            f"expected non-negative dims such as 256,128; got {text!r}", param_hint="--shape"
        )
    return dims


@app.command("check")
def check_cmd(
    name: str = typer.Argument(
        ..., help="A catalogue name (see `jinit list`), e.g. he_normal or torch.kaiming_uniform."
    ),
    param: list[str] = typer.Option(  # noqa: B008
        None,
        "--param",
        "-p",
        help="A hyper-parameter k=v, repeatable. Values are Python literals (ast.literal_eval); "
        "bare words are strings: --param mode=fan_out --param scale=2.0.",
    ),
    shape: str = typer.Option(
        None, "--shape", help="The shape to draw, e.g. 256,128 (default: the entry's example)."
    ),
    dtype: str = typer.Option(None, "--dtype", help="e.g. float32, bfloat16, complex64."),
    seeds: int = typer.Option(
        None, "--seeds", help="Number of seeds (default: max(16, ceil(2^18 / n)), at most 4096)."
    ),
    key: int = typer.Option(0, "--key", help="The base key is jax.random.key(KEY)."),
    alpha: float = typer.Option(
        1e-6, "--alpha", help="Family-wise false-alarm rate of all the checks together."
    ),
) -> None:
    """Draw NAME for many seeds and check it against its exact law (exit status 1 on FAIL)."""
    from jinit.testing import check_law

    init, parsed_shape, parsed_dtype = _check_inputs(name, param, shape, dtype)
    _check_numbers(seeds, alpha, key)
    try:
        report = check_law(
            init, parsed_shape, dtype=parsed_dtype, seeds=seeds, key=key, alpha=alpha
        )
    except (TypeError, ValueError) as err:
        raise typer.BadParameter(str(err)) from None
    _print_check_report(report)
    if not report.passed:
        raise typer.Exit(code=1)


def _check_inputs(
    name: str, param: list[str] | None, shape: str | None, dtype: str | None
) -> tuple[Any, tuple[int, ...], Any]:
    """``(initialiser, shape, dtype or None)`` from NAME, ``--param``, ``--shape``, ``--dtype``."""
    import jax.numpy as jnp
    import numpy as np

    from jinit.catalogue import lookup

    try:
        entry = lookup("jinit check", name)
    except ValueError as err:
        raise typer.BadParameter(str(err).removeprefix("`jinit check`: ")) from None
    params = _parse_params(param or [])
    init = _build(entry, params)
    parsed_shape = _parse_shape(shape) if shape is not None else tuple(entry.example_shape)
    parsed_dtype = None
    if dtype is not None:
        try:
            parsed_dtype = np.dtype(jnp.dtype(dtype))
        except TypeError:
            raise typer.BadParameter(
                f"{dtype!r} is not a dtype; use e.g. float32, bfloat16, complex64",
                param_hint="--dtype",
            ) from None
    return init, parsed_shape, parsed_dtype


def _check_numbers(seeds: int | None, alpha: float, key: int) -> None:
    """Checks ``--seeds``, ``--alpha`` and ``--key`` (exit 2 naming the option)."""
    if seeds is not None and seeds < 1:
        raise typer.BadParameter(f"needs at least 1 seed; got {seeds}", param_hint="--seeds")
    if not 0 < alpha < 1:
        raise typer.BadParameter(f"needs 0 < alpha < 1; got {alpha}", param_hint="--alpha")
    if not -(2**63) <= key < 2**63:
        raise typer.BadParameter(
            f"needs a seed that fits in a signed 64-bit integer (what jax.random.key takes); "
            f"got {key}.",
            param_hint="--key",
        )


def _print_check_report(report: Any) -> None:
    """Prints the table of checks, the notes worth reading, the settings and PASS or FAIL."""
    table = Table(title=report.title, title_justify="left")
    table.add_column("check", style="bold", no_wrap=True)
    for column in ("measured", "expected", "tolerance", "SE off"):
        table.add_column(column, justify="right", no_wrap=True)
    table.add_column("result", justify="center", no_wrap=True)
    for c in report.checks:
        verdict = "[green]PASS[/green]" if c.passed else "[bold red]FAIL[/bold red]"
        tol = "±" + _fmt(c.tolerance)
        table.add_row(c.name, _fmt(c.measured), _fmt(c.expected), tol, _fmt(c.se_off, 3), verdict)
    console = Console()
    console.print(table)
    for c in report.checks:
        if c.note and (not c.passed or c.name.startswith("KS")):
            console.print(f"  {c.name}: {c.note}", style="dim")
    console.print(
        f"{report.seeds} seeds, {report.count:,} values; family-wise alpha {report.alpha:g} "
        f"(Bonferroni over {report.num_tests} statistical checks, each at alpha/(2k)). "
        f"Reproduce: {report.reproduce}",
        style="dim",
    )
    console.print("[green]PASS[/green]" if report.passed else "[bold red]FAIL[/bold red]")


def _fmt(x: float, digits: int = 5) -> str:
    import math

    if isinstance(x, float) and math.isnan(x):
        return "—"
    return f"{x:.{digits}g}"


def _parse_params(items: list[str]) -> dict:
    """``k=v`` pairs; values via ``ast.literal_eval`` (no eval), bare words kept as strings."""
    import ast

    out = {}
    for item in items:
        k, sep, v = item.partition("=")
        k = k.strip()
        if not sep or not k.isidentifier():
            raise typer.BadParameter(
                f"expected k=v with k a parameter name, e.g. scale=2.0; got {item!r}",
                param_hint="--param",
            )
        try:
            out[k] = ast.literal_eval(v.strip())
        except (ValueError, SyntaxError):
            out[k] = v.strip()
    return out


def _build(entry, params: dict):
    """The entry's initialiser, built with ``params`` through its public builder."""
    from jinit.catalogue import public_builder

    if not params:
        return entry.build()
    builder = public_builder(entry)
    if builder is None:
        raise typer.BadParameter(
            f"{entry.name!r} takes no parameters; drop --param", param_hint="--param"
        )
    try:
        return builder(**params)
    except (TypeError, ValueError) as err:
        raise typer.BadParameter(str(err), param_hint="--param") from None


# the long commands live in their own modules, which know nothing of `app`
app.command("sweep")(_cli_sweep.sweep_cmd)
app.command("train")(_cli_train.train_cmd)
app.command("init-bench")(_cli_init_bench.init_bench_cmd)


def main() -> None:
    """The console-script entry point: runs :data:`app` with clean interrupts.

    SIGINT (Ctrl-C) and SIGTERM end any command with one line on stderr (``interrupted;
    nothing written to <out>`` or ``interrupted; previous results in <out> kept``) and exit
    status 130 (SIGINT) or 143 (SIGTERM); a commit of results in progress finishes first. See
    :mod:`jinit._core._output`.
    """
    from jinit._core._signals import run_cli

    run_cli(app)
