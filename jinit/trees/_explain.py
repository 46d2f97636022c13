"""The explanation table of a :func:`reinit` call: which rule took each leaf, with which law
(:class:`ReinitRecord`, :class:`ReinitTable`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from typing import Any

from jinit._core._layout import Layout

# ---------------------------------------------------------------------------------------------
# Explanation table
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ReinitRecord:
    """Which rule initialised one leaf.

    Attributes:
      path: the leaf's path.
      shape: its shape.
      dtype: its dtype name.
      rule: the index of the winning rule, or None if no rule matched (the leaf is kept).
      pattern: the winning rule's pattern, or None.
      init: the winning rule's initialiser (None for no rule, or a rule that keeps the leaf).
      also_matched: indices of later rules that matched the path too but lost to ``rule``.
      detail: what a contextual initialiser resolved to for this leaf, if it says (else None).
      kept_because: why a matched leaf was kept although its rule has an initialiser (a
        fallback rule skipping an integer/bool leaf), else None.
      note: a remark on how the leaf was drawn (e.g. drawn in float32 because ``jax_enable_x64``
        is off, stored as float64), else None.
      layout: the leaf's :class:`jinit.Layout` when its layer is known (else None).
    """

    path: str
    shape: tuple[int, ...]
    dtype: str
    rule: int | None
    pattern: str | None
    init: Any
    also_matched: tuple[int, ...] = ()
    detail: str | None = None
    kept_because: str | None = None
    note: str | None = None
    layout: Layout | None = None

    @property
    def action(self) -> str:
        """``"unmatched (kept)"``, ``"kept"``, ``"kept (<why>)"``, or the initialiser's repr (or
        its ``detail``), followed by the ``note`` in brackets if there is one."""
        if self.rule is None:
            return "unmatched (kept)"
        if self.init is None:
            return "kept"
        if self.kept_because:
            return f"kept ({self.kept_because})"
        text = self.detail or repr(self.init)
        return f"{text} [{self.note}]" if self.note else text


@dataclasses.dataclass(frozen=True)
class ReinitTable(Sequence):
    """What :func:`reinit` did (``explain=True``): one :class:`ReinitRecord` per array leaf.

    A sequence of records in tree order; ``str``/``repr`` print an aligned table followed by the
    rules that initialised no leaf (matching nothing, or shadowed by earlier rules).

    Attributes:
      records: one record per array leaf.
      rules: the rules as given, ``(pattern, initialiser)`` pairs.
      unused: indices of rules that matched no path at all.
      shadowed: indices of rules that matched some paths, all taken by earlier rules.
      non_array: ``(path, type name)`` of the leaves that are not arrays (Python scalars,
        strings, functions such as equinox activations): :func:`reinit` keeps them as they are.
    """

    records: tuple[ReinitRecord, ...]
    rules: tuple[tuple[str, Any], ...]
    unused: tuple[int, ...]
    shadowed: tuple[int, ...]
    non_array: tuple[tuple[str, str], ...] = ()

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i):
        return self.records[i]

    def __iter__(self) -> Iterator[ReinitRecord]:
        return iter(self.records)

    def by_path(self) -> dict[str, ReinitRecord]:
        """The records keyed by path."""
        return {r.path: r for r in self.records}

    def __str__(self) -> str:
        rows = [("path", "shape", "dtype", "rule", "initialiser")]
        for r in self.records:
            rule = "-" if r.rule is None else f"{r.rule}: {r.pattern}"
            rows.append((r.path, str(r.shape), r.dtype, rule, r.action))
        widths = [max(len(row[c]) for row in rows) for c in range(4)]
        lines = [
            "  ".join(x.ljust(w) for x, w in zip(row[:4], widths, strict=True)) + "  " + row[4]
            for row in rows
        ]
        lines = [ln.rstrip() for ln in lines]
        for i in self.shadowed:
            lines.append(
                f"rule {i} ({self.rules[i][0]!r}) is shadowed: earlier rules took its leaves"
            )
        for i in self.unused:
            lines.append(f"rule {i} ({self.rules[i][0]!r}) matched no leaf")
        if self.non_array:
            shown = ", ".join(f"{p} ({t})" for p, t in self.non_array[:8])
            more = f" and {len(self.non_array) - 8} more" if len(self.non_array) > 8 else ""
            lines.append(f"non-array leaves kept as they are: {shown}{more}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"ReinitTable({len(self.records)} leaves, {len(self.rules)} rules)\n{self}"
