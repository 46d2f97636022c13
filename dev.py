#!/usr/bin/env python3
"""Set up jinit in ./.venv and run its main job or its test suite: needs only Python >= 3.10.

    python3 dev.py demo    # create .venv, install jinit, run the main job
    python3 dev.py test    # create .venv, install jinit[test], run the whole test suite
    python3 dev.py lint    # ruff format --check + ruff check
    python3 dev.py docs    # install jinit[docs], build the API site (warnings are errors)

Extra arguments after the sub-command are passed on (to ``jinit`` for demo, to pytest for test).
Installs are skipped when pyproject.toml has not changed since the last one.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / ("python.exe" if os.name == "nt" else "python")

# The whole suite, doctests of the library included. CI (.ci/run) runs exactly this.
TEST_CMD = ["-m", "pytest", "-q", "-n", "2", "--doctest-modules", "jinit", "tests"]


def _run(cmd: list[str]) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run(cmd, cwd=ROOT, check=True)


def _ensure(extra: str) -> None:
    if sys.version_info < (3, 10):  # noqa: UP036  (dev.py may be run by an older python3)
        sys.exit(f"jinit needs Python >= 3.10; this is {sys.version.split()[0]}.")
    if not PY.exists():
        print(f"creating virtual environment {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    spec = f".[{extra}]" if extra else "."
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + spec.encode()).hexdigest()
    stamp = VENV / f".jinit-installed-{extra or 'base'}"
    if stamp.exists() and stamp.read_text() == digest:
        return
    _run([str(PY), "-m", "pip", "install", "-q", "--upgrade", "pip"])
    _run([str(PY), "-m", "pip", "install", "-q", "-e", spec])
    stamp.write_text(digest)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("demo", "test", "lint", "docs"):
        print(__doc__)
        return 2
    cmd, rest = argv[0], argv[1:]
    try:
        if cmd == "demo":
            _ensure("")
            jinit = str(BIN / "jinit")
            if rest:
                _run([jinit, *rest])
            else:
                _run([jinit, "sweep"])  # the main job: the classic signal-propagation sweep
        elif cmd == "test":
            _ensure("test")
            _run([str(PY), *TEST_CMD, *rest])
        elif cmd == "docs":
            _ensure("docs")
            out = ROOT / "docs" / "_build" / "html"
            # -E: a fresh environment, so every warning is reported; -W: warnings fail the build
            _run(
                [
                    str(PY),
                    "-m",
                    "sphinx",
                    "-q",
                    "-E",
                    "-W",
                    "--keep-going",
                    "-b",
                    "html",
                    "docs",
                    str(out),
                    *rest,
                ]
            )
            print(f"documentation: {out / 'index.html'}", flush=True)
        else:
            _ensure("test")
            _run([str(PY), "-m", "ruff", "format", "--check", "."])
            _run([str(PY), "-m", "ruff", "check", "."])
    except subprocess.CalledProcessError as e:
        return e.returncode or 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
