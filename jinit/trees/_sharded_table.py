"""The per-leaf table of :func:`jinit.init_sharded` (``explain=True``)."""

from __future__ import annotations

import dataclasses

# ---------------------------------------------------------------------------------------------
# The per-leaf table
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ShardedLeaf:
    """One row of :class:`ShardedInitTable`: a leaf, where it lives and how it was drawn."""

    path: str
    shape: tuple[int, ...]
    dtype: str
    sharding: str
    init: str
    group: int
    group_size: int
    shard_shape: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class ShardedInitTable:
    """What :func:`init_sharded` did, leaf by leaf (``explain=True``).

    Attributes:
      leaves: one :class:`ShardedLeaf` per drawn leaf, in tree order.
      groups: the number of compiled programs (one per group of stacked leaves).
      kept: paths of leaves kept as they were (rule ``None``, or non-float leaves).
      device_bytes: per group, the bytes one device holds while its program runs (its shards
        of the chunk's leaves plus XLA's temporaries), from ``compiled.memory_analysis()``.
      temp_bytes: per group, XLA's temporaries alone: what a device needs beyond the
        parameters (``None`` where the backend does not report memory).
      compile_seconds: the time spent lowering and compiling the groups' programs.
      reused: how many of the :attr:`groups` programs an earlier call had compiled (they are
        kept across calls: initialising the same model again compiles nothing).
    """

    leaves: tuple[ShardedLeaf, ...]
    groups: int
    kept: tuple[str, ...] = ()
    device_bytes: tuple[int | None, ...] = ()
    temp_bytes: tuple[int | None, ...] = ()
    compile_seconds: float = 0.0
    reused: int = 0

    @property
    def peak_device_bytes(self) -> int | None:
        """The largest :attr:`device_bytes` of a group (``None`` if the backend does not say)."""
        known = [b for b in self.device_bytes if b is not None]
        return max(known) if known else None

    @property
    def peak_temp_bytes(self) -> int | None:
        """The largest :attr:`temp_bytes` of a group: a device's peak is at most its shards of
        all the parameters plus this (``None`` if the backend does not say)."""
        known = [b for b in self.temp_bytes if b is not None]
        return max(known) if known else None

    def __str__(self) -> str:
        head = ("path", "shape", "shard", "dtype", "sharding", "initialiser", "stacked")
        rows = [
            (
                r.path,
                str(r.shape),
                str(r.shard_shape),
                r.dtype,
                r.sharding,
                r.init,
                f"group {r.group} ({r.group_size})" if r.group_size > 1 else f"group {r.group}",
            )
            for r in self.leaves
        ]
        widths = [max(len(x) for x in col) for col in zip(head, *rows, strict=False)]
        lines = [
            "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
            for row in (head, *rows)
        ]
        tail = f"{len(self.leaves)} leaves drawn in {self.groups} program(s)"
        if self.reused:
            tail += f" ({self.reused} compiled by an earlier call)"
        if self.kept:
            tail += f"; kept {len(self.kept)}"
        return "\n".join([*lines, tail])
