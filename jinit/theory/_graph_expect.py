"""Expectations of the element-wise expressions of :mod:`jinit.theory._graph_values`, computed
on their *distinct* positions only.

A state array keeps an axis wherever its value changes along it, so one border pixel of a
zero-padded convolution keeps the whole image axis: an 8 x 8 feature map is 64 positions of
which ten or so differ (the interior, the edges, the corners). Every expectation integrates
the expression at each position on a quadrature grid of up to 57 600 nodes, so its cost is
(positions x nodes). Here the positions whose parameters (each source's mean, variance and
cross-example covariance, each constant) coincide are integrated once and the results are
scattered back: the same numbers, computed on the distinct rows of the parameter table
(:func:`compacted`). Expressions with a structural op inside (a reshape or a broadcast that
moves positions) are integrated as they are.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from jinit.theory._graph_values import Const, Expr, Gauss, collapse, state_shape
from jinit.theory._graph_values import derivative_moments as moments_of_derivative
from jinit.theory._graph_values import expr_derivative as moments_of_expr_derivative
from jinit.theory._graph_values import kurtosis_terms as kurtosis_of
from jinit.theory._graph_values import moments as moments_of

#: below this many positions the table's bookkeeping costs more than it saves
_MIN_POSITIONS = 16


def compacted(node: Any) -> tuple[Expr, Callable[[Any], np.ndarray]] | None:
    """``(small, expand)``: ``node`` on its distinct positions (one leading axis, the rest 1)
    and the map from a per-position result of ``small`` back to ``node``'s state positions;
    None where nothing is saved (few positions, most of them distinct, a structural op).

    Example:
      >>> import numpy as np, jax
      >>> from jinit.theory._graph_values import Gauss, Expr, new_id
      >>> var = np.ones((1, 8, 8)); var[:, 0, :] = 0.5  # one border row differs
      >>> g = Gauss((4, 8, 8), ("b", "p", "p"), np.zeros((1, 1, 1)), var, np.zeros((1, 1, 1)),
      ...           frozenset({new_id()}), {})
      >>> e = Expr(g.shape, g.roles, jax.lax.tanh_p, {"accuracy": None}, (g,))
      >>> small, expand = compacted(e)
      >>> small.args[0].var.shape, expand(np.array([1.0, 2.0]).reshape(2, 1, 1)).shape
      ((2, 1, 1), (1, 8, 1))
    """
    if not isinstance(node, Expr):
        return None
    leaves: dict[int, Any] = {}
    if not _leaves(node, leaves):
        return None
    shape = state_shape(node.shape, node.roles)
    n_pos = math.prod(shape)
    if n_pos < _MIN_POSITIONS:
        return None
    cols: list[np.ndarray] = []
    try:
        for leaf in leaves.values():
            parts = (leaf.mean, leaf.var, leaf.cross) if isinstance(leaf, Gauss) else (leaf.arr,)
            for a in parts:
                cols.append(np.broadcast_to(np.asarray(a, np.float64), shape).reshape(-1))
    except ValueError:  # a leaf that does not broadcast to the node's positions
        return None
    table, inverse = np.unique(np.stack(cols, axis=1), axis=0, return_inverse=True)
    if 2 * len(table) > n_pos:
        return None
    small_shape = (len(table),) + (1,) * (len(shape) - 1)
    column = iter(range(table.shape[1]))
    swap: dict[int, Any] = {}
    for key, leaf in leaves.items():
        if isinstance(leaf, Gauss):
            m, v, c = (table[:, next(column)].reshape(small_shape) for _ in range(3))
            swap[key] = dataclasses.replace(leaf, mean=m, var=v, cross=c)
        else:
            dtype = np.asarray(leaf.arr).dtype
            arr = table[:, next(column)].reshape(small_shape).astype(dtype)
            swap[key] = dataclasses.replace(leaf, arr=arr)
    inverse = np.reshape(inverse, -1)

    def expand(result: Any) -> np.ndarray:
        flat = np.broadcast_to(np.asarray(result), small_shape).reshape(-1)
        return collapse(flat[inverse].reshape(shape))

    return _rebuilt(node, swap), expand


def _leaves(node: Any, out: dict[int, Any]) -> bool:
    """Collects the sources (by id) and constants (by object) of an element-wise expression;
    False where it holds a structural op or anything else."""
    if isinstance(node, Gauss):
        out[node.sid] = node
        return True
    if isinstance(node, Const):
        out[id(node)] = node
        return True
    if isinstance(node, Expr) and node.struct is None:
        return all(_leaves(a, out) for a in node.args)
    return False


def _rebuilt(node: Any, swap: dict[int, Any]) -> Any:
    if isinstance(node, Gauss):
        return swap[node.sid]
    if isinstance(node, Const):
        return swap[id(node)]
    return dataclasses.replace(node, args=tuple(_rebuilt(a, swap) for a in node.args))


def _on_distinct(fn: Callable[..., tuple], node: Any, *args: Any) -> tuple:
    """``fn(node, *args)`` (a tuple of per-position arrays) computed on ``node``'s distinct
    positions where that saves work."""
    c = compacted(node)
    if c is None:
        return fn(node, *args)
    small, expand = c
    return tuple(expand(r) for r in fn(small, *args))


def moments(node: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`jinit.theory._graph_values.moments` on the distinct positions."""
    return _on_distinct(moments_of, node)


def kurtosis_terms(node: Any) -> tuple[np.ndarray, np.ndarray]:
    """:func:`jinit.theory._graph_values.kurtosis_terms` on the distinct positions."""
    return _on_distinct(kurtosis_of, node)


def derivative_moments(node: Expr, arg: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`jinit.theory._graph_values.derivative_moments` on the distinct positions."""
    return _on_distinct(moments_of_derivative, node, arg)


def expr_derivative(node: Expr, sid: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`jinit.theory._graph_values.expr_derivative` on the distinct positions."""
    return _on_distinct(moments_of_expr_derivative, node, sid)
