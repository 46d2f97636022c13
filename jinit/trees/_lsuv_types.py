"""What :func:`lsuv` reports: :class:`LSUVLayer` (one layer's scale history) and
:class:`LSUVReport` (every layer, with its table)."""

from __future__ import annotations

import dataclasses
from typing import Any

LSUV_API = "jinit.lsuv"
BIAS_MODES = ("keep", "zero", "scale")


@dataclasses.dataclass(frozen=True)
class LSUVLayer:
    """What :func:`lsuv` did to one layer.

    Attributes:
      path: the '/'-joined path of the layer's kernel (e.g. ``"Dense_0/kernel"``).
      initial_var: the layer's output variance on the batch before rescaling (after the
        orthogonal pre-initialisation, if any, and after earlier layers were normalised).
      final_var: the output variance after the last rescaling.
      iterations: how many times the kernel was rescaled (0: it was already within ``tol``).
      converged: whether ``final_var`` is within ``tol`` of the target.
      scale: the total factor the kernel was multiplied by.
    """

    path: str
    initial_var: float
    final_var: float
    iterations: int
    converged: bool
    scale: float

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict of the fields."""
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class LSUVReport:
    """The per-layer report of :func:`lsuv`: a sequence of :class:`LSUVLayer` in forward order.

    Prints as a table (``print(report)``; ``rich`` renders it through ``__rich__``).
    """

    layers: tuple[LSUVLayer, ...]
    target_var: float
    tol: float

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self):
        return iter(self.layers)

    def __getitem__(self, i: int | str) -> LSUVLayer:
        if isinstance(i, str):
            for layer in self.layers:
                if layer.path == i:
                    return layer
            raise KeyError(f"no layer {i!r} in the LSUV report; layers: {self.paths}")
        return self.layers[i]

    @property
    def paths(self) -> list[str]:
        return [layer.path for layer in self.layers]

    @property
    def all_converged(self) -> bool:
        return all(layer.converged for layer in self.layers)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict: target, tolerance and one dict per layer."""
        return {
            "target_var": self.target_var,
            "tol": self.tol,
            "layers": [layer.to_dict() for layer in self.layers],
        }

    def _table(self):
        from rich import box
        from rich.table import Table

        t = Table(
            title=f"LSUV: target variance {self.target_var:g} ± {self.tol:g} (relative)",
            box=box.SIMPLE_HEAVY,
        )
        for name, justify in [
            ("layer", "left"),
            ("initial var", "right"),
            ("final var", "right"),
            ("iters", "right"),
            ("scale", "right"),
            ("converged", "center"),
        ]:
            t.add_column(name, justify=justify)
        for layer in self.layers:
            t.add_row(
                layer.path,
                f"{layer.initial_var:.4g}",
                f"{layer.final_var:.4g}",
                str(layer.iterations),
                f"{layer.scale:.4g}",
                "yes" if layer.converged else "[bold red]NO[/]",
            )
        return t

    def __rich__(self):
        return self._table()

    def __str__(self) -> str:
        from rich.console import Console

        console = Console(width=110, record=True, color_system=None, force_terminal=False)
        with console.capture() as cap:
            console.print(self._table())
        return "\n".join(line.rstrip() for line in cap.get().strip("\n").splitlines())
