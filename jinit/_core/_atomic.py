"""Run ids and single atomic files (:func:`atomic_file`, :func:`atomic_savefig`), and the path
checks of the Python API's writers; the first layer of :mod:`jinit._core._output`."""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from collections.abc import Iterator
from typing import IO, Any

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


def fsync_dir(folder: str | os.PathLike) -> None:
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
      >>> from jinit._core._atomic import atomic_file
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
    fsync_dir(folder)


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


def as_path(path: Any, api: str, param: str, kind: str) -> str:
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


def nearest_existing(path: str) -> str:
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
    anc = nearest_existing(folder)
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
    p = as_path(path, api, param, "file")
    if os.path.isdir(p):
        raise ValueError(
            f"{api} needs `{param}` to be a file path; got {p!r}, which is a folder. Pass a file "
            f"inside it, e.g. {os.path.join(p, example)!r}."
        )
    folder = os.path.dirname(os.path.abspath(p))
    if not os.path.isdir(folder):
        anc = nearest_existing(folder)
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
    p = as_path(path, api, param, "folder")
    if os.path.lexists(p) and not os.path.isdir(p):
        raise ValueError(
            f"{api} needs `{param}` to be a folder; got {p!r}, which is an existing file. "
            f"Pass a folder path (it is created if missing), e.g. {p + '-out'!r}."
        )
    _check_creatable(os.path.abspath(p), api, param, p)
    return p
