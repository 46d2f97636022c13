"""The CLI's ``--out``: an :class:`~jinit._core._output.OutputFolder` opened, locked and repaired
before any work, closed however the command ends, and written with one error line on OS errors."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jinit._core._output import OutputFolder
from jinit._core._signals import set_active_folder

# ---------------------------------------------------------------------------------------------
# The CLI's --out
# ---------------------------------------------------------------------------------------------


def _call_on_close(fn: Callable[[], Any]) -> bool:
    """Registers ``fn`` on the current click context (typer's vendored click or click)."""
    for module in ("typer._click.globals", "click"):
        try:
            mod = __import__(module, fromlist=["get_current_context"])
            ctx = mod.get_current_context(silent=True)
        except Exception:
            continue
        if ctx is not None:
            ctx.call_on_close(fn)
            return True
    return False


def prepare_cli_out(out: str, command: str) -> OutputFolder:
    """The ``--out`` of a CLI command: validated, locked and repaired before any work.

    Problems become a usage error (exit status 2) naming ``--out`` and the fix. The folder is
    closed when the command ends, however it ends.
    """
    import typer

    set_active_folder(None)  # a previous command in this process (tests): never keep its lock
    try:
        folder = OutputFolder.open(out, command=command, subject="--out needs", param="out")
    except (ValueError, TypeError, OSError) as e:
        raise typer.BadParameter(str(e)) from None
    set_active_folder(folder)
    _call_on_close(folder.close)
    return folder


def write_cli_out(folder: OutputFolder, fill: Callable[[Path], Any]) -> list[str]:
    """:meth:`OutputFolder.write` for a command: an OS error (disk full, permissions changed)
    ends it with one line and exit status 1, the previous results kept."""
    import typer

    try:
        return folder.write(fill)
    except OSError as e:
        kept = "previous results kept" if folder.had_previous else "nothing written"
        print(
            f"error: could not write the results to {folder.given}: {e}; {kept}.", file=sys.stderr
        )
        raise typer.Exit(code=1) from None
