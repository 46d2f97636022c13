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
  >>> from jinit._core._output import OutputFolder
  >>> from jinit._core._atomic import atomic_file
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
import ctypes
import errno
import hashlib
import os
import shutil
import stat
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from jinit._core._atomic import (
    HIDDEN,
    JINIT_FILES,
    as_path,
    fsync_dir,
    nearest_existing,
    new_run_id,
)
from jinit._core._signals import deferred_signals, test_gate

# ---------------------------------------------------------------------------------------------
# Whole-set commits of an output folder
# ---------------------------------------------------------------------------------------------


def _libc_renameat2():

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
        given = as_path(out, api, param, "folder")
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
        anc = nearest_existing(self.parent)
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
            fsync_dir(stage)
            test_gate("before-commit")
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
                fsync_dir(self.parent)
                test_gate("in-commit")
                return
        with contextlib.suppress(OSError):
            os.chmod(stage, stat.S_IMODE(os.stat(d).st_mode))
        if _exchange(stage, d):
            self.committed = True
            fsync_dir(self.parent)
            old = stage
            test_gate("in-commit")
        else:
            old = os.path.join(self.parent, f".{self.key}.jinit-old-{self.run_id}")
            os.rename(d, old)
            test_gate("in-commit")
            os.rename(stage, d)
            self.committed = True
            fsync_dir(self.parent)
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
                test_gate("in-commit")
        self.committed = True
        fsync_dir(self.path)
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
