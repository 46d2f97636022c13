"""The catalogue: every initialiser jinit ships, with its family and a symbolic law summary.

Each implementation module declares ``CATALOGUE: list[Entry]``; this module gathers them, so
the CLI (``jinit list``), the README table and the tests all read one list.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any


@dataclasses.dataclass(frozen=True)
class Entry:
    """One catalogue row.

    Attributes:
      name: the public name (``jinit.<name>`` or ``jinit.torch.<name>``).
      build: a zero-argument callable returning the initialiser with representative arguments.
      family: "constant", "simple", "variance scaling", "orthogonal", "structured", "sparse",
        "recipe" or "torch".
      example_shape: a shape the initialiser accepts, used by tests and the CLI.
      law: a human-readable summary of the law in terms of the fans, e.g.
        "N(0, 2/fan_in) truncated ±2σ".
      dtypes: the dtypes its law covers ("real" or "real+complex").
    """

    name: str
    build: Callable[[], Any]
    family: str
    example_shape: tuple[int, ...]
    law: str
    dtypes: str = "real"


def entries() -> list[Entry]:
    """All catalogue entries, in display order."""
    from jinit._src import basic, structured, variance

    out: list[Entry] = []
    for mod in (basic, variance, structured):
        out.extend(mod.CATALOGUE)
    for optional in ("jinit._src.extra", "jinit._src.torch_init"):
        try:
            mod = __import__(optional, fromlist=["CATALOGUE"])
        except ModuleNotFoundError as e:
            if e.name != optional:
                raise
            continue
        out.extend(mod.CATALOGUE)
    return out
