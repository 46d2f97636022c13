"""Figures of propagation sweeps (matplotlib, no pyplot: figures render with Agg and never touch
the global backend).

* :func:`depth_profile`: a per-layer statistic (activation std by default) on a log axis, one
  line per initialiser (seed median), its 5-95 % seed band, and the mean-field prediction
  dashed: the textbook figure "activation std across 10 ReLU layers for N(0, 0.01²), Xavier
  and He", with seeds instead of a single draw;
* :func:`activation_histogram`: the distribution of activations at one layer, per initialiser;
* :func:`gradient_profile`: the per-unit second moment of the gradient w.r.t. each layer's
  pre-activation.

Examples:
  >>> import jinit
  >>> from jinit import plot
  >>> r = jinit.sweep(jinit.mlp(32, 3), jinit.he_normal(), seeds=2, batch=16)
  >>> fig = plot.depth_profile(r)
  >>> fig.axes[0].get_yscale()
  'log'
"""

from jinit.report._plots import (
    activation_histogram as activation_histogram,
)
from jinit.report._plots import (
    depth_profile as depth_profile,
)
from jinit.report._plots import (
    gradient_profile as gradient_profile,
)
from jinit.report._plots import (
    save_all as save_all,
)

__all__ = ["activation_histogram", "depth_profile", "gradient_profile", "save_all"]

from jinit._core._public import set_public_home as _set_public_home  # noqa: E402

_set_public_home(globals(), __all__, "jinit.plot")
