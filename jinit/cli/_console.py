"""The CLI's terminal output: a console wide enough for the tables and the progress bar the
long commands share (rich is imported here, at the CLI's start-up only)."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


def wide_console() -> Console:
    """A console for the progress and tables; in logs and pipes at least 110 columns wide."""
    console = Console()
    if not console.is_terminal:  # logs and pipes: wide enough for the tables
        console = Console(width=max(console.width, 110))
    return console


def progress_bar(console: Console, unit: str) -> Progress:
    """A progress bar counting ``unit`` (e.g. ``"chunks"``), with elapsed and remaining time."""
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(unit),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    )
