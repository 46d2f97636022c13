"""Signals: SIGINT/SIGTERM deferred while an output folder commits, and the CLI's clean exits
(one line, status 128 + signal) through :func:`run_cli`; a layer of :mod:`jinit._core._output`."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

from jinit._core._atomic import JINIT_FILES

# ---------------------------------------------------------------------------------------------
# Signals: deferral during commits, clean exits in the CLI
# ---------------------------------------------------------------------------------------------


_SIGNALS = tuple(s for s in (signal.SIGINT, getattr(signal, "SIGTERM", None)) if s is not None)
_defer_depth = 0
_pending: int | None = None
_cli_installed = False
_exiting = False
_ACTIVE: Any = None  # the CLI command's output folder, for the exit line


def set_active_folder(folder: Any) -> None:
    """Makes ``folder`` (an open output folder, or None) the one the exit line reports, closing
    the previously active one."""
    global _ACTIVE
    if _ACTIVE is not None and _ACTIVE is not folder:
        _ACTIVE.close()
    _ACTIVE = folder


def _cli_handler(signum: int, frame: Any) -> None:
    """The CLI's SIGINT/SIGTERM handler: ends the process right here (deferred in a commit).

    It does not raise: an exception raised from a signal handler can land in a garbage
    collector or ``__del__`` callback, which prints "Exception ignored" and carries on, or in
    a library's ``except BaseException``; exiting from the handler cannot be lost.
    """
    global _pending
    if _exiting:
        return
    if _defer_depth:
        _pending = signum
        return
    _exit_interrupted(signum)


def _deferring_handler(signum: int, frame: Any) -> None:
    global _pending
    _pending = signum


@contextlib.contextmanager
def deferred_signals() -> Iterator[None]:
    """SIGINT/SIGTERM received inside the block take effect when it ends (main thread only).

    Under the CLI's handlers the deferred signal then ends the process; elsewhere the
    previous handlers are restored and the signal is raised again (``KeyboardInterrupt`` for
    SIGINT with Python's default handler).
    """
    global _defer_depth, _pending
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved: dict[int, Any] = {}
    if not _cli_installed and _defer_depth == 0:
        for s in _SIGNALS:
            old = signal.getsignal(s)
            if old is None:  # installed from C: leave it alone
                continue
            saved[s] = old
            signal.signal(s, _deferring_handler)
    _defer_depth += 1
    try:
        yield
    finally:
        _defer_depth -= 1
        for s, old in saved.items():
            signal.signal(s, old)
        if _defer_depth == 0 and _pending is not None:
            sig, _pending = _pending, None
            if _cli_installed:
                _cli_handler(sig, None)
            else:
                signal.raise_signal(sig)


def _out_in_argv() -> str | None:
    """The ``--out`` given on the command line (before the command has parsed it)."""
    args = sys.argv[1:]
    for i, a in enumerate(args):
        if a == "--out" and i + 1 < len(args):
            return args[i + 1]
        if a.startswith("--out="):
            return a[len("--out=") :]
    return None


def _exit_line(signum: int | None = None) -> str:
    folder = _ACTIVE
    if folder is None:  # interrupted before the command opened its --out: nothing touched
        out = _out_in_argv()
        if not out:
            return "interrupted; nothing written"
        try:
            kept = os.path.isdir(out) and any(n in JINIT_FILES for n in os.listdir(out))
        except OSError:
            kept = False
        if kept:
            return f"interrupted; previous results in {out} kept"
        return f"interrupted; nothing written to {out}"
    if folder.committed:
        return f"interrupted; new results written to {folder.given}"
    if folder.had_previous:
        return f"interrupted; previous results in {folder.given} kept"
    return f"interrupted; nothing written to {folder.given}"


def _exit_interrupted(signum: int) -> NoReturn:
    """Cleans up the active output folder, prints one line and ends the process at once.

    Runs inside the signal handler, between two bytecodes of the main thread: the output
    folder's own steps (open, commit, close) defer signals, so it is never half-updated here.
    """
    global _exiting
    _exiting = True
    for s in _SIGNALS:
        with contextlib.suppress(Exception):
            signal.signal(s, signal.SIG_IGN)
    if _ACTIVE is not None:
        with contextlib.suppress(Exception):
            _ACTIVE.close()
    line = _exit_line(signum)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # e.g. a reentrant flush: the line still goes out
            stream.flush()
    show_cursor = ""
    with contextlib.suppress(Exception):
        if os.isatty(2):
            show_cursor = "\x1b[?25h"  # a progress bar may have hidden the cursor
    with contextlib.suppress(OSError):
        os.write(2, (show_cursor + line + "\n").encode("utf-8", "replace"))
    # os._exit: no interpreter teardown while XLA's threads may still run (that crashed).
    os._exit(128 + signum)


def _install_cli_handlers() -> None:
    global _cli_installed
    if threading.current_thread() is not threading.main_thread():
        return
    for s in _SIGNALS:
        signal.signal(s, _cli_handler)
    _cli_installed = True


def started_as_cli(argv: list[str] | None = None) -> bool:
    """Whether this process is the ``jinit`` command (``jinit ...`` or ``python -m jinit.cli``).

    Examples:
      >>> from jinit._core._signals import started_as_cli
      >>> started_as_cli(["python", "-X", "dev", "-m", "jinit.cli", "sweep"])
      True
      >>> started_as_cli(["python", "script.py", "-m", "jinit.cli"])
      False
    """
    if argv is None:
        argv = list(getattr(sys, "orig_argv", None) or [])
        if not argv:
            return False
    args = iter(argv[1:])
    for a in args:
        if a == "-m":
            return next(args, "") in ("jinit.cli", "jinit")
        if a.startswith("-m"):
            return a[2:] in ("jinit.cli", "jinit")
        if a in ("-X", "-W", "-Q"):
            next(args, None)
            continue
        if a.startswith("-") and a not in ("-", "-c"):
            continue
        break  # a script path, "-c" or "-": not -m
    script = os.path.basename(sys.argv[0]) if sys.argv else ""
    return os.path.splitext(script)[0] == "jinit"


def guard_cli_start() -> None:
    """Installs the CLI's signal handlers if this process is the ``jinit`` command.

    Called first thing when ``jinit`` is imported, so that Ctrl-C while jax is still importing
    (seconds on a small machine) ends the command with the same clean line and status as later.
    Does nothing in any other program.
    """
    if started_as_cli():
        _install_cli_handlers()


def run_cli(app: Callable[[], Any]) -> None:
    """Runs the typer ``app`` with clean SIGINT/SIGTERM handling (see the module docstring)."""
    _install_cli_handlers()
    try:
        app()
    finally:
        if _ACTIVE is not None:
            _ACTIVE.close()


def test_gate(point: str) -> None:
    """Test hook: with ``JINIT_TEST_GATE=<dir>:<point>``, waits at ``point`` until
    ``<dir>/<point>.go`` exists (after writing ``<dir>/<point>.waiting``), at most 120 s.

    Used by tests/test_faults.py to interrupt a run exactly before or inside its commit.
    """
    spec = os.environ.get("JINIT_TEST_GATE")
    if not spec:
        return
    folder, _, name = spec.rpartition(":")
    if name != point:
        return
    with open(os.path.join(folder, point + ".waiting"), "w") as f:
        f.write(str(os.getpid()))
    deadline = time.monotonic() + 120
    go = os.path.join(folder, point + ".go")
    while not os.path.exists(go) and time.monotonic() < deadline:
        time.sleep(0.02)
