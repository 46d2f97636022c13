"""What :func:`summary` returns: :class:`SummaryRow` (one leaf: shape, dtype, statistics, the
expected law and the flags raised) and :class:`Summary` (the table, as text and dict)."""

from __future__ import annotations

import dataclasses
import difflib
import math
from typing import Any

from jinit._core._layout import Layout

SUMMARY_API = "jinit.summary"
FLAGS = ("zeros", "identical-units", "non-finite", "std-off", "mean-off", "outlier")
OUTLIER_RATIO = 30.0
BIAS_NAMES = frozenset({"bias", "b"})


# ---------------------------------------------------------------------------------------------
# Result types
# ---------------------------------------------------------------------------------------------


def _jsonable(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


@dataclasses.dataclass(frozen=True)
class SummaryRow:
    """One leaf of a :class:`Summary`.

    Attributes:
      path: '/'-joined path (see :func:`jinit.reinit`).
      shape: the leaf's shape.
      dtype: its dtype name.
      size: number of entries.
      mean: mean of the finite entries (modulus of the mean for complex leaves); NaN when no
        entry is finite (never a made-up 0).
      std: standard deviation of the finite entries (``ddof=1``; for complex,
        :math:`\\sqrt{E|x-\\bar x|^2}`); NaN when fewer than 2 entries are finite (undefined).
      max_abs: largest absolute finite entry; NaN when no entry is finite.
      n_nonfinite: number of inf/NaN entries (the leaf is then flagged ``non-finite`` and the
        ``note`` says how many are NaN and how many infinite).
      duplicate_units: number of units (slices along the unit axis) that exactly repeat another
        unit (``n_units - n_distinct``); ``None`` when not checked (rank < 2 or units too short).
      expected_mean: the law's mean, if known.
      expected_std: the law's std, if known.
      law: a one-line description of the expected law, if known.
      source: where the expectation came from: ``"rule <pattern>"`` or ``"expected"``.
      z_std: :math:`(s^2-\\sigma^2)/\\mathrm{sd}(s^2)` (``None`` if no law or deterministic).
      z_mean: :math:`(\\bar x - \\mu)/(\\max(s, \\sigma)/\\sqrt n)`.
      flags: the flags that fired (a subset of ``zeros``, ``identical-units``, ``non-finite``,
        ``std-off``, ``mean-off``, ``outlier``).
      note: why an expectation is missing, or other remarks.
      layout: the leaf's :class:`jinit.Layout` when its layer is known, else None.
    """

    path: str
    shape: tuple[int, ...]
    dtype: str
    size: int
    mean: float
    std: float
    max_abs: float
    n_nonfinite: int
    duplicate_units: int | None
    expected_mean: float | None = None
    expected_std: float | None = None
    law: str | None = None
    source: str | None = None
    z_std: float | None = None
    z_mean: float | None = None
    flags: tuple[str, ...] = ()
    note: str = ""
    layout: Layout | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (non-finite floats become ``None``; tuples become lists; the layout
        becomes its one-line description)."""
        d = dataclasses.asdict(dataclasses.replace(self, layout=None))
        d["layout"] = None if self.layout is None else self.layout.describe()
        d["shape"] = list(self.shape)
        d["flags"] = list(self.flags)
        return {k: _jsonable(v) for k, v in d.items()}


@dataclasses.dataclass(frozen=True)
class Summary:
    """The result of :func:`summary`: one :class:`SummaryRow` per leaf, in tree order.

    ``print(s)`` or ``s.print()`` shows a table (``rich`` renders it via ``__rich__``);
    ``s.flagged`` lists the rows with flags; ``s.to_dict()`` is JSON-able.
    """

    rows: tuple[SummaryRow, ...]
    z_threshold: float
    rel_floor: float
    unit_axis: int

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self):
        return iter(self.rows)

    def __getitem__(self, i: int | str) -> SummaryRow:
        if isinstance(i, str):
            for row in self.rows:
                if row.path == i:
                    return row
            close = difflib.get_close_matches(i, self.paths, n=3)
            raise KeyError(f"no leaf {i!r} in the summary" + (f"; did you mean {close}?"))
        return self.rows[i]

    @property
    def paths(self) -> list[str]:
        return [r.path for r in self.rows]

    @property
    def flagged(self) -> list[SummaryRow]:
        """The rows with at least one flag."""
        return [r for r in self.rows if r.flags]

    @property
    def ok(self) -> bool:
        """True when no leaf is flagged."""
        return not self.flagged

    @property
    def n_params(self) -> int:
        return sum(r.size for r in self.rows)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict: settings and one dict per leaf."""
        return {
            "z_threshold": self.z_threshold,
            "rel_floor": self.rel_floor,
            "unit_axis": self.unit_axis,
            "n_params": self.n_params,
            "rows": [r.to_dict() for r in self.rows],
        }

    def _table(self):
        from rich import box
        from rich.table import Table

        n_flag = len(self.flagged)
        dtypes = sorted({r.dtype for r in self.rows})
        one_dtype = len(dtypes) == 1
        t = Table(
            title=f"{len(self.rows)} arrays, {self.n_params:,} parameters"
            + (f", all {dtypes[0]}" if one_dtype else ""),
            caption=(
                "no flags"
                if not n_flag
                else f"{n_flag} flagged (std/mean-off: |z| > {self.z_threshold:g} and "
                f"> {100 * self.rel_floor:g} % off)"
            ),
            box=box.SIMPLE_HEAVY,
            collapse_padding=True,
            pad_edge=False,
        )
        columns = ["path", "shape", "dtype", "mean", "std", "exp. std", "z", "flags"]
        if one_dtype:
            columns.remove("dtype")
        for name in columns:
            # Narrow terminals: paths and flags fold onto more lines (never elided); numbers
            # and shapes never wrap.
            wrap = name in ("path", "flags")
            t.add_column(
                name,
                justify="left" if name in ("path", "shape", "dtype", "flags") else "right",
                no_wrap=not wrap,
                overflow="fold" if wrap else "ellipsis",
                min_width={"path": 12, "flags": 15}.get(name),
            )
        for r in self.rows:
            flags = ", ".join(r.flags)
            cells = {
                "path": r.path,
                "shape": "×".join(map(str, r.shape)) or "scalar",
                "dtype": r.dtype,
                "mean": _num(r.mean),
                "std": _num(r.std),
                "exp. std": "" if r.expected_std is None else f"{r.expected_std:.3g}",
                "z": "" if r.z_std is None else f"{r.z_std:+.1f}",
                "flags": f"[bold red]{flags}[/]" if flags else "",
            }
            t.add_row(*(cells[c] for c in columns))
        return t

    def __rich__(self):
        return self._table()

    def print(self, console: Any = None) -> None:
        """Prints the table with ``rich`` (to ``console`` if given)."""
        from rich.console import Console

        (console or Console()).print(self._table())

    def __str__(self) -> str:
        from rich.console import Console

        console = Console(width=140, color_system=None, force_terminal=False)
        with console.capture() as cap:
            console.print(self._table())
        return "\n".join(line.rstrip() for line in cap.get().strip("\n").splitlines())


def _num(x: float) -> str:
    """A statistic for the table: 3 significant digits, '-' when undefined (NaN)."""
    return "-" if math.isnan(x) else f"{x:.3g}"
