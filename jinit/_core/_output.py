"""Crash-safe outputs: atomic files, whole-set commits of an output folder, clean interrupts.

Three layers, each usable alone:

* :func:`atomic_file`: one file, written to a hidden temporary file in the same folder, flushed,
  ``fsync``-ed and moved over the target with :func:`os.replace` (atomic on POSIX and Windows).
  A reader sees the old file or the new one, never a prefix; an interrupt removes the
  temporary file. Every writer of jinit (``SweepResult.to_json``/``to_csv``,
  ``TrainResult.to_json``, the figures) goes through it.
* :class:`OutputFolder`: the ``--out`` folder of a command, receiving the command's whole set of
  files (``results.json``, ``results.csv``, the PNGs) at once. The set is built in a hidden
  staging folder beside ``--out`` and the two folders are swapped atomically (Linux
  ``renameat2(RENAME_EXCHANGE)``; elsewhere a two-rename fallback that the next run repairs),
  so after any interruption, SIGKILL included, ``--out`` holds the complete old set or the
  complete new set. A folder holding files jinit did not write is never swapped: the new files
  are moved in one by one (``results.json`` last) and nothing else is touched; every file then
  carries the run id, so a reader can tell a mixed set. An ``fcntl.flock`` on a lock file
  beside ``--out`` refuses a second run on the same folder up front (the OS releases it when a
  run dies, so a stale lock never blocks).
* :func:`run_cli`: the console entry point's wrapper. SIGINT and SIGTERM end a command with one
  line (``interrupted; nothing written to <out>`` / ``interrupted; previous results in <out>
  kept``) and exit status 130 / 143 (128 + the signal number, as a shell reports), through
  :func:`os._exit` so that the interpreter's teardown never runs with XLA's worker threads
  alive (which crashed with SIGSEGV). Signals are deferred while a commit is in progress.

The run id (:func:`new_run_id`) of a set is stored in ``results.json`` (``config.run_id``), in
the ``run_id`` column of ``results.csv`` and in the ``jinit_run_id`` text chunk of every PNG.

Examples:
  >>> import json, os, tempfile
  >>> from pathlib import Path
  >>> from jinit._core._output import OutputFolder, atomic_file
  >>> d = tempfile.mkdtemp()
  >>> with atomic_file(os.path.join(d, "a.txt")) as f:
  ...     _ = f.write("hello")
  >>> Path(d, "a.txt").read_text()
  'hello'
  >>> out = OutputFolder.open(os.path.join(d, "run"), command="example")
  >>> def fill(stage):
  ...     with atomic_file(stage / "results.json") as f:
  ...         json.dump({"run_id": out.run_id}, f)
  >>> out.write(fill)
  ['results.json']
  >>> out.close()
  >>> sorted(os.listdir(d))  # the staging folder and the lock file are gone
  ['a.txt', 'run']
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import secrets
import shutil
import signal
import stat
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, NoReturn

__all__ = [
    "JINIT_FILES",
    "OutputFolder",
    "atomic_file",
    "atomic_savefig",
    "check_file_target",
    "check_folder_target",
    "deferred_signals",
    "ensure_run_id",
    "new_run_id",
    "prepare_cli_out",
    "run_cli",
]

#: Every file name a jinit command writes into its output folder.
JINIT_FILES = frozenset(
    {
        "results.json",
        "results.csv",
        "depth_profile.png",
        "histogram.png",
        "gradient_profile.png",
        "curves.png",
    }
)
#: Prefix of jinit's hidden entries inside a folder (temporary files, staging, lock).
HIDDEN = ".jinit-"


# ---------------------------------------------------------------------------------------------
# Run ids and single atomic files
# ---------------------------------------------------------------------------------------------


def new_run_id() -> str:
    """A fresh run id: UTC time and 32 random bits, e.g. ``'20250101T120000Z-1a2b3c4d'``."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(4)


def ensure_run_id(config: dict) -> str:
    """``config["run_id"]``, created with :func:`new_run_id` if missing (so that every file
    written from one result carries the same id)."""
    rid = config.get("run_id")
    if not isinstance(rid, str) or not rid:
        rid = config["run_id"] = new_run_id()
    return rid


def _fsync_dir(folder: str | os.PathLike) -> None:
    """Makes renames in ``folder`` durable (no-op where directories cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_file(
    path: str | os.PathLike, mode: str = "w", *, encoding: str = "utf-8", newline: str | None = None
) -> Iterator[IO[Any]]:
    """Opens a temporary file beside ``path``; on success it atomically becomes ``path``.

    The temporary file (``.jinit-tmp-<pid>-<random>-<name>`` in the same folder, hence on the
    same filesystem) is flushed and ``fsync``-ed, then moved over ``path`` with
    :func:`os.replace`; the folder is ``fsync``-ed too. If the body raises (an interrupt
    included) the temporary file is removed and ``path`` is untouched. A symbolic link at
    ``path`` is written through (its target is replaced).

    Args:
      path: the file to write.
      mode: ``"w"`` (text) or ``"wb"`` (binary).
      encoding: text encoding (text mode only).
      newline: as for :func:`open` (text mode only); ``""`` for :mod:`csv` writers.

    Examples:
      >>> import tempfile
      >>> from pathlib import Path
      >>> from jinit._core._output import atomic_file
      >>> p = Path(tempfile.mkdtemp(), "x.txt")
      >>> with atomic_file(p) as f:
      ...     _ = f.write("new")
      >>> p.read_text()
      'new'
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"`atomic_file` needs mode 'w' or 'wb'; got {mode!r}.")
    target = os.path.realpath(os.fspath(path))
    folder, name = os.path.split(target)
    tmp = os.path.join(folder, f"{HIDDEN}tmp-{os.getpid()}-{secrets.token_hex(4)}-{name}"[:255])
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
    try:
        if mode == "wb":
            f: IO[Any] = os.fdopen(fd, "wb")
        else:
            f = os.fdopen(fd, "w", encoding=encoding, newline=newline)
        with f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(folder)


def atomic_savefig(fig, path: str | os.PathLike, *, run_id: str | None = None, dpi: int = 110):
    """``fig.savefig(path)`` through :func:`atomic_file`; PNGs carry ``run_id`` as metadata.

    The format follows the file's extension (PNG without one); a PNG gets a ``jinit_run_id``
    text chunk (``PIL.Image.open(path).text["jinit_run_id"]``).
    """
    suffix = os.path.splitext(os.fspath(path))[1][1:].lower()
    fmt = suffix or "png"
    supported = fig.canvas.get_supported_filetypes()
    if fmt not in supported:
        raise ValueError(
            f"`savefig` cannot write {os.fspath(path)!r}: {fmt!r} is not an image format "
            f"matplotlib writes; use one of {sorted(supported)}, e.g. '.png'."
        )
    kwargs: dict[str, Any] = {}
    if run_id and fmt == "png":
        kwargs["metadata"] = {"jinit_run_id": run_id}
    with atomic_file(path, "wb") as f:
        fig.savefig(f, format=fmt, dpi=dpi, **kwargs)


# ---------------------------------------------------------------------------------------------
# Path validation for the Python API's writers
# ---------------------------------------------------------------------------------------------


def _as_path(path: Any, api: str, param: str, kind: str) -> str:
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(
            f"{api} needs `{param}` to be a {kind} path (a str or os.PathLike); got {path!r} "
            f"(a {type(path).__name__}). Pass e.g. 'results/'."
        )
    p = os.fspath(path)
    if isinstance(p, bytes):
        p = os.fsdecode(p)
    if not p.strip():
        raise ValueError(f"{api} needs `{param}` to be a {kind} path; got an empty string.")
    return p


def _nearest_existing(path: str) -> str:
    """``path`` or its nearest ancestor that exists (``os.path.lexists``)."""
    p = os.path.abspath(path)
    while not os.path.lexists(p):
        parent = os.path.dirname(p)
        if parent == p:
            break
        p = parent
    return p


def _check_creatable(folder: str, api: str, param: str, given: str) -> None:
    """Raises unless ``folder`` exists as a writable folder or can be created."""
    if os.path.isdir(folder):
        if not os.access(folder, os.W_OK | os.X_OK):
            raise PermissionError(
                f"{api} cannot write into {folder!r} (for `{param}` = {given!r}): permission "
                f"denied. Choose a folder you can write, or fix its permissions."
            )
        return
    anc = _nearest_existing(folder)
    if not os.path.isdir(anc):
        raise ValueError(
            f"{api} needs `{param}` in a folder that exists or can be created; got {given!r}, "
            f"but {anc!r} is a file, not a folder. Pass a path that does not go through a file."
        )
    if not os.access(anc, os.W_OK | os.X_OK):
        raise PermissionError(
            f"{api} cannot create {folder!r} (for `{param}` = {given!r}): no permission to "
            f"write in {anc!r}. Choose a folder you can write."
        )


def check_file_target(
    path: Any, api: str, param: str = "path", *, example: str = "results.json"
) -> str:
    """Validates a file path a writer is about to write; returns it as a ``str``.

    Raises:
      TypeError: ``path`` is not a str/PathLike.
      ValueError: ``path`` is empty, an existing folder, or its folder does not exist.
      PermissionError: its folder is not writable.
    """
    p = _as_path(path, api, param, "file")
    if os.path.isdir(p):
        raise ValueError(
            f"{api} needs `{param}` to be a file path; got {p!r}, which is a folder. Pass a file "
            f"inside it, e.g. {os.path.join(p, example)!r}."
        )
    folder = os.path.dirname(os.path.abspath(p))
    if not os.path.isdir(folder):
        anc = _nearest_existing(folder)
        through_file = os.path.lexists(anc) and not os.path.isdir(anc)
        what = "goes through the file" if through_file else "is in the missing folder"
        where = anc if through_file else folder
        raise ValueError(
            f"{api} needs `{param}` in an existing folder; got {p!r}, which {what} {where!r}. "
            f"Create the folder first (os.makedirs({folder!r}, exist_ok=True)) or pass a path "
            f"in an existing folder."
        )
    _check_creatable(folder, api, param, p)
    return p


def check_folder_target(path: Any, api: str, param: str = "directory") -> str:
    """Validates an output folder (created if missing by the writer); returns it as a ``str``.

    Raises:
      TypeError: ``path`` is not a str/PathLike.
      ValueError: ``path`` is empty or an existing file, or goes through a file.
      PermissionError: it (or the folder it would be created in) is not writable.
    """
    p = _as_path(path, api, param, "folder")
    if os.path.lexists(p) and not os.path.isdir(p):
        raise ValueError(
            f"{api} needs `{param}` to be a folder; got {p!r}, which is an existing file. "
            f"Pass a folder path (it is created if missing), e.g. {p + '-out'!r}."
        )
    _check_creatable(os.path.abspath(p), api, param, p)
    return p


# ---------------------------------------------------------------------------------------------
# Signals: deferral during commits, clean exits in the CLI
# ---------------------------------------------------------------------------------------------


_SIGNALS = tuple(s for s in (signal.SIGINT, getattr(signal, "SIGTERM", None)) if s is not None)
_defer_depth = 0
_pending: int | None = None
_cli_installed = False
_exiting = False
_ACTIVE: OutputFolder | None = None  # the CLI command's output folder, for the exit line


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
      >>> from jinit._core._output import started_as_cli
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


def _test_gate(point: str) -> None:
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


# ---------------------------------------------------------------------------------------------
# Whole-set commits of an output folder
# ---------------------------------------------------------------------------------------------


def _libc_renameat2():
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


def _exchange(a: str, b: str) -> bool:
    """Atomically swaps the folders ``a`` and ``b`` (Linux ``renameat2(RENAME_EXCHANGE)``).

    Returns False where unsupported (another OS, old glibc or kernel, a filesystem without
    it, or ``JINIT_NO_RENAME_EXCHANGE=1``); raises :class:`OSError` for other failures.
    """
    if not sys.platform.startswith("linux") or os.environ.get("JINIT_NO_RENAME_EXCHANGE"):
        return False
    fn = _libc_renameat2()
    if fn is None:
        return False
    import ctypes

    at_fdcwd, rename_exchange = -100, 2
    if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), b)


def _owned(name: str) -> bool:
    """An entry of an output folder that jinit writes (its files, hidden temporaries)."""
    return name in JINIT_FILES or name.startswith(HIDDEN)


def _writer_alive(tmp_name: str) -> bool:
    """Whether the process that owns an :func:`atomic_file` temporary still runs."""
    try:
        pid = int(tmp_name[len(HIDDEN + "tmp-") :].split("-", 1)[0])
        os.kill(pid, 0)
    except (ValueError, ProcessLookupError):
        return False
    except OSError:  # e.g. EPERM: it exists
        return True
    return True


def _rmtree(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)
    with contextlib.suppress(OSError):
        os.unlink(path)  # a file or a link left where a folder was expected


def _lock_info(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 4096).decode("utf-8", "replace")
    except OSError:
        text = ""
    info = dict(line.split(" ", 1) for line in text.splitlines() if " " in line)
    pid = info.get("pid", "unknown")
    desc = f"pid {pid}"
    if info.get("command"):
        desc += f", `{info['command']}`"
    if info.get("started"):
        desc += f", started {info['started']}"
    return desc


class OutputFolder:
    """An output folder that receives a command's whole set of files atomically.

    Use :meth:`open` (validates the path, takes the lock, repairs what an interrupted run
    left), then :meth:`write` once, then :meth:`close` (releases the lock; removes the staging
    folder and the folders :meth:`open` created if nothing was committed).

    Modes (chosen by :meth:`open`, re-checked at commit):

    * ``"swap"``: ``--out`` is missing, empty or holds only jinit's files. The new set is built
      in ``.<name>.jinit-staging-<run id>`` beside it and exchanged with it in one atomic
      ``renameat2(RENAME_EXCHANGE)``; then the old set is deleted. Without that call (other
      systems, some filesystems) the fallback is ``rename(out, .<name>.jinit-old-<id>)``,
      ``rename(staging, out)``: a reader may briefly find no folder, and if the run dies between
      the two renames, the next run on that folder renames the old set back.
    * ``"in-place"``: ``--out`` holds files jinit did not write, is a mount point, or its parent
      is not writable. The new files are moved in one by one with :func:`os.replace`,
      ``results.json`` last; nothing else in the folder is moved or deleted. An interrupt
      between two moves can leave new files beside old ones; their run ids then differ.

    Args (of :meth:`open`):
      out: the folder (created if missing, with its parents).
      command: how the run is described to a second run refused by the lock.
      subject: how errors name the path: ``"--out"`` for the CLI, or e.g.
        ``"`jinit.TrainResult.save` needs `directory` to be"`` for the Python API.
    """

    def __init__(self, out: str, *, command: str, subject: str, param: str):
        self.given = out
        self.command = command
        self.subject = subject
        self.param = param
        self.run_id = new_run_id()
        self.path = os.path.realpath(out)
        self.parent = os.path.dirname(self.path)
        name = os.path.basename(self.path)
        if len(name) > 100:
            name = name[:80] + "~" + hashlib.sha1(name.encode()).hexdigest()[:12]
        self.key = name
        self.mode = "swap"
        self.had_previous = False
        self.committed = False
        self.closed = False
        self.lock_path: str | None = None
        self._lock_fd: int | None = None
        self._created: list[str] = []
        self._stage: str | None = None

    # -- errors -------------------------------------------------------------------------------

    def _fail(self, problem: str, fix: str, exc: type[Exception] = ValueError) -> NoReturn:
        raise exc(f"{self.subject} a writable folder; got {self.given!r}, {problem}. {fix}")

    # -- open ---------------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        out: Any,
        *,
        command: str,
        subject: str = "`OutputFolder.open` needs `out` to be",
        param: str = "out",
    ) -> OutputFolder:
        """Validates ``out``, creates its parents, takes the lock and repairs leftovers.

        Raises:
          TypeError: ``out`` is not a str/PathLike.
          ValueError: ``out`` is an existing file, goes through a file, or another run holds it.
          PermissionError: it cannot be created or written.
        """
        api = subject.split(" needs")[0]
        given = _as_path(out, api, param, "folder")
        self = cls(given, command=command, subject=subject, param=param)
        self._validate()
        with deferred_signals():  # an interrupt never leaves a half-repaired folder
            self._make_parents()
            try:
                self._lock()
                self._choose_mode()
                self._recover()
            except BaseException:
                self.close()
                raise
        return self

    def _validate(self) -> None:
        d = self.path
        if os.path.lexists(self.given) and not os.path.exists(self.given):
            self._fail("which is a broken symbolic link", "Remove the link or pass another folder.")
        if os.path.exists(d) and not os.path.isdir(d):
            self._fail(
                "which is an existing file",
                f"Pass a folder path (it is created if missing), e.g. {self.given + '-out'!r}.",
            )
        if os.path.isdir(d):
            if not os.access(d, os.W_OK | os.X_OK | os.R_OK):
                self._fail(
                    "which is not writable (permission denied or a read-only filesystem)",
                    "Pass a folder you can write, or fix its permissions (chmod u+rwx).",
                    PermissionError,
                )
            return
        anc = _nearest_existing(self.parent)
        if not os.path.isdir(anc):
            self._fail(
                f"which cannot be created because {anc!r} is a file",
                "Pass a path that does not go through a file.",
            )
        if not os.access(anc, os.W_OK | os.X_OK):
            self._fail(
                f"which cannot be created: no permission to write in {anc!r}",
                "Pass a folder you can write, e.g. one in your home folder.",
                PermissionError,
            )

    def _make_parents(self) -> None:
        missing = []
        p = self.parent
        while not os.path.isdir(p):
            missing.append(p)
            p = os.path.dirname(p)
        for p in reversed(missing):
            try:
                os.mkdir(p)
            except FileExistsError:
                continue
            except OSError as e:
                self.close()
                self._fail(f"which cannot be created ({e.strerror})", "Pass another folder.")
            self._created.append(p)

    def _lock(self) -> None:
        try:
            import fcntl
        except ImportError:  # Windows: no advisory locks; concurrent runs are not detected
            return
        parent_ok = os.access(self.parent, os.W_OK | os.X_OK)
        if parent_ok:
            self.lock_path = os.path.join(self.parent, f".{self.key}.jinit-lock")
        else:  # e.g. a writable folder in a read-only parent: lock inside it
            self.lock_path = os.path.join(self.path, HIDDEN + "lock")
        for _ in range(50):
            fd = os.open(
                self.lock_path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644
            )
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                info = _lock_info(fd)
                if "pid unknown" in info:  # the holder has not written its pid yet
                    time.sleep(0.05)
                    info = _lock_info(fd)
                os.close(fd)
                self.lock_path = None
                self._fail(
                    f"which another jinit run is writing ({info})",
                    f"Wait for it to finish, or pass another {self._flag()}.",
                )
            except OSError:  # a filesystem without locks (some network mounts): go on unlocked
                os.close(fd)
                self.lock_path = None
                return
            try:  # the holder before us may have removed the file: lock the current one
                same = os.path.samestat(os.fstat(fd), os.stat(self.lock_path))
            except FileNotFoundError:
                same = False
            if not same:
                os.close(fd)
                continue
            os.ftruncate(fd, 0)
            started = time.strftime("%Y-%m-%d %H:%M:%S")
            os.write(fd, f"pid {os.getpid()}\ncommand {self.command}\nstarted {started}\n".encode())
            self._lock_fd = fd
            return
        self.lock_path = None  # pragma: no cover - 50 lost races

    def _flag(self) -> str:
        return "--out" if self.subject.startswith("--out") else f"`{self.param}`"

    def _foreign(self) -> list[str]:
        try:
            return sorted(n for n in os.listdir(self.path) if not _owned(n))
        except FileNotFoundError:
            return []

    def _choose_mode(self) -> None:
        d = self.path
        try:
            cwd = os.path.realpath(os.getcwd())
        except OSError:
            cwd = ""
        if not os.access(self.parent, os.W_OK | os.X_OK):
            self.mode = "in-place"
        elif os.path.isdir(d):
            st, pst = os.stat(d), os.stat(self.parent)
            if st.st_dev != pst.st_dev or os.path.ismount(d) or self._foreign():
                self.mode = "in-place"
            elif cwd == d or cwd.startswith(d + os.sep):  # --out . : never swap our own cwd
                self.mode = "in-place"
        if os.path.isdir(d):
            self.had_previous = any(n in JINIT_FILES for n in os.listdir(d))

    def _recover(self) -> None:
        """Under the lock: removes what interrupted runs left, restores a half-swapped set."""
        prefix = f".{self.key}.jinit-"
        olds = []
        for n in sorted(os.listdir(self.parent)):
            if not n.startswith(prefix) or n == prefix + "lock":
                continue
            full = os.path.join(self.parent, n)
            if n.startswith(prefix + "old-"):
                olds.append(full)
            elif n.startswith(prefix + "staging-"):
                _rmtree(full)
        if olds and not os.path.lexists(self.path):  # died between the fallback's two renames
            os.rename(olds.pop(), self.path)
            self.had_previous = True
            self.mode = "swap"
        for full in olds:
            _rmtree(full)
        if os.path.isdir(self.path):
            for n in os.listdir(self.path):
                if n.startswith(HIDDEN + "staging-") or (
                    n.startswith(HIDDEN + "tmp-") and not _writer_alive(n)
                ):
                    _rmtree(os.path.join(self.path, n))

    # -- write --------------------------------------------------------------------------------

    def write(self, fill: Callable[[Path], Any]) -> list[str]:
        """Calls ``fill(stage)`` to write the files into an empty staging folder, then commits.

        Returns:
          The names of the files committed, sorted.
        """
        if self.closed or self.committed:
            raise RuntimeError("`OutputFolder.write` may be called once, before `close`.")
        if self.mode == "swap":
            stage = os.path.join(self.parent, f".{self.key}.jinit-staging-{self.run_id}")
        else:
            stage = os.path.join(self.path, f"{HIDDEN}staging-{self.run_id}")
            os.makedirs(self.path, exist_ok=True)
        self._stage = stage
        try:
            os.mkdir(stage)
            fill(Path(stage))
            names = sorted(os.listdir(stage))
            _fsync_dir(stage)
            _test_gate("before-commit")
            self._commit(stage, names)
        except BaseException:
            if not self.committed:
                _rmtree(stage)
            raise
        return names

    def _commit(self, stage: str, names: list[str]) -> None:
        with deferred_signals():
            if self.mode == "swap" and not self._foreign():
                self._swap(stage)
            else:
                self._replace_each(stage, names)

    def _swap(self, stage: str) -> None:
        d = self.path
        if not os.path.lexists(d):
            try:
                os.rename(stage, d)
            except OSError as e:
                if e.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                    raise
            else:  # the new set is in place
                self.committed = True
                _fsync_dir(self.parent)
                _test_gate("in-commit")
                return
        with contextlib.suppress(OSError):
            os.chmod(stage, stat.S_IMODE(os.stat(d).st_mode))
        if _exchange(stage, d):
            self.committed = True
            _fsync_dir(self.parent)
            old = stage
            _test_gate("in-commit")
        else:
            old = os.path.join(self.parent, f".{self.key}.jinit-old-{self.run_id}")
            os.rename(d, old)
            _test_gate("in-commit")
            os.rename(stage, d)
            self.committed = True
            _fsync_dir(self.parent)
        # Entries someone else created in the old folder while this run worked: move them on.
        for n in os.listdir(old):
            if not _owned(n) and not os.path.lexists(os.path.join(d, n)):
                with contextlib.suppress(OSError):
                    os.rename(os.path.join(old, n), os.path.join(d, n))
        _rmtree(old)

    def _replace_each(self, stage: str, names: list[str]) -> None:
        ordered = [n for n in names if n != "results.json"] + [
            n for n in names if n == "results.json"
        ]
        os.makedirs(self.path, exist_ok=True)
        for i, n in enumerate(ordered):
            os.replace(os.path.join(stage, n), os.path.join(self.path, n))
            if i == 0:
                _test_gate("in-commit")
        self.committed = True
        _fsync_dir(self.path)
        _rmtree(stage)

    # -- close --------------------------------------------------------------------------------

    def close(self) -> None:
        """Releases the lock; without a commit, also removes the staging folder and the parent
        folders :meth:`open` created. Idempotent."""
        if self.closed:
            return
        with deferred_signals():
            self.closed = True
            if not self.committed:
                if self._stage is not None:
                    _rmtree(self._stage)
                for p in reversed(self._created):
                    with contextlib.suppress(OSError):
                        os.rmdir(p)  # only if still empty
            if self._lock_fd is not None:
                with contextlib.suppress(OSError):
                    os.unlink(self.lock_path)  # before unlocking: see _lock's same-file check
                os.close(self._lock_fd)
                self._lock_fd = None

    def __enter__(self) -> OutputFolder:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"OutputFolder({self.given!r}, mode={self.mode!r}, run_id={self.run_id!r})"


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

    global _ACTIVE
    if _ACTIVE is not None:  # a previous command in this process (tests): never keep its lock
        _ACTIVE.close()
        _ACTIVE = None
    try:
        folder = OutputFolder.open(out, command=command, subject="--out needs", param="out")
    except (ValueError, TypeError, OSError) as e:
        raise typer.BadParameter(str(e)) from None
    _ACTIVE = folder
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
