"""The ``jinit`` command line: a thin layer over the public API.

Subcommands register themselves on :data:`app`; each lives next to the code it drives.
"""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

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
    from jinit._src.catalogue import entries

    parsed = _parse_shape(shape) if shape else None
    table = Table(title="jinit catalogue", show_lines=False)
    table.add_column("name", style="bold cyan", no_wrap=True)
    table.add_column("family", style="magenta")
    table.add_column("law", overflow="fold")
    table.add_column("dtypes", style="dim")
    if parsed is not None:
        table.add_column(f"std @ {parsed}", justify="right")
    rows = 0
    for e in entries():
        if family and e.family != family:
            continue
        cells = [e.name, e.family, e.law, e.dtypes]
        if parsed is not None:
            try:
                lw = jinit.law(e.build(), parsed)
                cells.append(f"{lw.variance ** 0.5:.6g}")
            except (ValueError, TypeError) as err:
                cells.append(f"[dim]n/a ({str(err).split(';')[0][:40]}…)[/dim]")
        table.add_row(*cells)
        rows += 1
    if not rows:
        raise typer.BadParameter(f"no initialiser in family {family!r}", param_hint="--family")
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


def main() -> None:  # console-script entry point
    app()


if __name__ == "__main__":
    main()
