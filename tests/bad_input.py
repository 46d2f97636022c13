"""Shared checks for the table-driven bad-input tests (``tests/test_errors*.py``).

A row of a Python-API table is ``(id, call, exception type, regexes)``: ``call()`` must raise
exactly that type (not a subclass from deep inside jax or numpy) with a message that starts with
the backticked name of the public function and contains every regex (``re.search``): the
parameter, the value given and the fix.

A row of a CLI table is ``(id, argv, regexes)``: ``jinit *argv`` must exit with status 2
(a usage error, before any expensive work) and print every regex.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import pytest

Row = tuple[str, Callable[[], object], type[Exception], list[str]]
CliRow = tuple[str, list[str], list[str]]


def params(rows: Sequence[tuple]) -> list:
    """``pytest.param`` per row, with the row's id; checks the ids are unique."""
    ids = [r[0] for r in rows]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    assert not dup, f"duplicate row ids {dup}"
    return [pytest.param(*r[1:], id=r[0]) for r in rows]


def check_raises(call: Callable[[], object], exc: type[Exception], patterns: list[str]) -> None:
    """``call()`` raises exactly ``exc``; the message names the API first and matches all."""
    with pytest.raises(Exception) as info:
        call()
    assert type(info.value) is exc, f"raised {type(info.value).__name__}: {info.value}"
    msg = str(info.value)
    assert re.match(r"`[\w.]+`", msg), f"message does not start with the function name: {msg}"
    missing = [p for p in patterns if not re.search(p, msg)]
    assert not missing, f"message {msg!r} lacks {missing}"


def check_cli_usage_error(argv: list[str], patterns: list[str], tmp_path=None) -> None:
    """``jinit *argv`` exits 2 with every pattern in its output (whitespace-normalised)."""
    from typer.testing import CliRunner

    from jinit.cli import app

    res = CliRunner().invoke(app, argv)
    out = " ".join(res.output.replace("│", " ").split())
    assert res.exit_code == 2, f"exit {res.exit_code}: {res.output}"
    missing = [p for p in patterns if not re.search(p, out)]
    assert not missing, f"output {out!r} lacks {missing}"
