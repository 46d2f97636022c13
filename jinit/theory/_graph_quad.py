r"""Quadrature rules for the Gaussian expectations of :mod:`jinit.theory._graph_values`.

An expectation :math:`\mathbb E[f(\mu + \sigma Z)]` is a trapezoid sum over equally spaced
nodes :math:`z_i` with weights :math:`\propto \varphi(z_i)` on :math:`[-a, a]`, in one
dimension (one source) or on a tensor grid in two (two independent sources, or one source at
two examples). The trapezoid rule is chosen over Gauss–Hermite for kinks: on a kinked
integrand (relu, abs, a max) its error is :math:`O(h^2)` where Gauss–Hermite's is percents.

On a *smooth* integrand the same rule converges geometrically: for :math:`f` analytic in the
strip :math:`|\operatorname{Im} z| < d` the error is :math:`O(e^{-2\pi d/h})` (Trefethen &
Weideman 2014, *The exponentially convergent trapezoidal rule*, SIAM Review 56, §5). An
activation with poles at :math:`\pm i\pi/2` (tanh; the logistic at :math:`\pm i\pi`; erf and
polynomials are entire) composed with :math:`\mu + \sigma z` has :math:`d = \pi / (2 s)` for
an input scale :math:`s \le` :data:`SMOOTH_SCALE` = 2.5, so the coarse grid
(:math:`h = 16/95`) errs by a constant times :math:`e^{-2\pi \cdot 0.63/0.168} \approx
7\cdot10^{-11}` (the tests check 1e-9 against the fine grid; at scale 4 the pair moments of
tanh are already 5e-4 off); the fine grid's 57 600 nodes are kept for kinked or steep
integrands. Expectations of smooth two-dimensional integrands thus cost 6.25x less.
"""

from __future__ import annotations

import numpy as np


def trapezoid(n: int, half_width: float) -> tuple[np.ndarray, np.ndarray]:
    """``(z, w)``: ``n`` equally spaced nodes on ``[-half_width, half_width]`` and trapezoid
    weights times the standard normal density, normalised to sum to one.

    Example:
      >>> z, w = trapezoid(2000, 10.0)
      >>> round(float(np.sum(w * z**2)), 10)
      1.0
    """
    z = np.linspace(-half_width, half_width, n)
    w = np.exp(-0.5 * z**2)
    w[[0, -1]] *= 0.5
    return z, w / w.sum()


def _grid2(n: int, half_width: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    z, w = trapezoid(n, half_width)
    za, zb = (a.ravel() for a in np.meshgrid(z, z, indexing="ij"))
    return za, zb, np.outer(w, w).ravel()


#: the one-dimensional rule: h = 0.01, no node on a kink at 0
Z1, W1 = trapezoid(2000, 10.0)
#: the two-dimensional rules (an even count per axis: no node at 0): fine and coarse
FINE2 = _grid2(240, 8.0)
COARSE2 = _grid2(96, 8.0)
#: positions x nodes of one two-dimensional expectation above which the coarse rule is used
#: whatever the integrand (memory stays bounded: a 32 x 32 image would otherwise need GiBs)
BUDGET = 2**24
#: the largest coefficient of z (a source's standard deviation times the constant factors)
#: in the argument of an analytic function for the coarse rule
SMOOTH_SCALE = 2.5
#: element-wise functions analytic in a strip around the real axis (or entire), whose
#: argument's scale must be at most SMOOTH_SCALE (``_graph_values.smooth``)
ANALYTIC = frozenset(
    {
        "tanh",
        "logistic",
        "erf",
        "erfc",
        "exp",
        "exp2",
        "sin",
        "cos",
        "atan",
        "sinh",
        "cosh",
        "asinh",
    }
)
#: ops that keep an expression affine (``mul`` and ``div`` by a constant are too) and casts
AFFINE = frozenset({"add", "add_any", "sub"})
SAME = frozenset({"neg", "convert_element_type", "reduce_precision", "copy", "copy_p"})


def rule2(n_pos: int, smooth: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(za, zb, w)``: the two-dimensional rule for ``n_pos`` positions of an integrand that
    is (``smooth``) or may not be analytic at the scale of its nodes.

    Example:
      >>> za, zb, w = rule2(10, smooth=False)
      >>> w.size, rule2(10, smooth=True)[2].size, rule2(10**4, smooth=False)[2].size
      (57600, 9216, 9216)
    """
    if smooth or n_pos * FINE2[2].size > BUDGET:
        return COARSE2
    return FINE2
