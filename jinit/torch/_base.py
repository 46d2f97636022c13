"""The base of ``jinit.torch``: torch's gain table (:func:`calculate_gain`), the
:class:`TorchInitializer` contract and the Flax-to-torch layout checks every initialiser shares."""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import numbers
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from jinit._core._layout import Layout, as_layout
from jinit.initializers._base import Initializer

TORCH_PREFIX = "jinit.torch."

# torch.nn.init.calculate_gain's names, in the order of its table.
_LINEAR_NAMES = (
    "linear",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
)
NONLINEARITIES = (*_LINEAR_NAMES, "sigmoid", "tanh", "relu", "leaky_relu", "selu")
FAN_MODES = ("fan_in", "fan_out")

# torch's default Linear/Conv weight: kaiming_uniform_(w, a=math.sqrt(5)), i.e. leaky_relu gain
# sqrt(2 / (1 + 5)) = 1/sqrt(3), so bound = sqrt(3) * gain / sqrt(fan_in) = 1 / sqrt(fan_in).
SQRT5 = math.sqrt(5.0)


# ---------------------------------------------------------------------------------------------
# Gain
# ---------------------------------------------------------------------------------------------


def checked_slope(api: str, name: str, value: Any) -> float:
    """A leaky-ReLU negative slope: a real number, not a bool (ValueError, as torch)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Real, np.number)):
        raise ValueError(
            f"`{api}` needs `{name}` (the leaky_relu negative slope) to be an int or a float; "
            f"got {value!r} of type {type(value).__name__}. Pass e.g. `{name}=0.2`."
        )
    x = float(value)
    if not math.isfinite(x):
        raise ValueError(f"`{api}` needs a finite `{name}`; got {x!r}.")
    return x


def checked_gain(api: str, nonlinearity: Any, param: Any) -> float:
    if not isinstance(nonlinearity, str) or nonlinearity not in NONLINEARITIES:
        supported = ", ".join(repr(n) for n in NONLINEARITIES)
        raise ValueError(
            f"`{api}` does not support nonlinearity {nonlinearity!r}; torch's gain table has "
            f"{supported}. For another activation use 'linear' and pass your own gain, or "
            f"compute it from the activation's second moment."
        )
    if nonlinearity in _LINEAR_NAMES or nonlinearity == "sigmoid":
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else checked_slope(api, "param", param)
        return math.sqrt(2.0 / (1 + slope**2))
    return 3.0 / 4  # selu: torch's empirical value (pytorch/pytorch#50664)


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    r"""torch's recommended gain for a nonlinearity (``torch.nn.init.calculate_gain``).

    ========================================================  ====================================
    nonlinearity                                              gain
    ========================================================  ====================================
    ``linear``, ``conv{1,2,3}d``, ``conv_transpose{1,2,3}d``  :math:`1`
    ``sigmoid``                                               :math:`1`
    ``tanh``                                                  :math:`5/3`
    ``relu``                                                  :math:`\sqrt 2`
    ``leaky_relu``                                            :math:`\sqrt{2/(1+\mathrm{slope}^2)}`
    ``selu``                                                  :math:`3/4`
    ========================================================  ====================================

    For ``leaky_relu`` the slope is ``param``, or 0.01 when ``param`` is None. The ``selu``
    value was found empirically in torch; for self-normalising networks torch itself advises
    ``'linear'`` (variance 1/fan_in). The values are bit-identical to torch 2.13's, as floats
    (torch returns the int 1 for the linear names).

    Args:
      nonlinearity: one of the names above (torch's ``nn.functional`` names).
      param: the negative slope of ``leaky_relu`` (ignored for the other names).

    Returns:
      The gain, a Python float.

    Raises:
      ValueError: an unsupported name, or a ``param`` that is not an int or float (bools are
        rejected, as in torch).

    Examples:
      >>> import jinit.torch
      >>> jinit.torch.calculate_gain("leaky_relu")
      1.4141428569978354
      >>> jinit.torch.calculate_gain("tanh")
      1.6666666666666667
    """
    return checked_gain(TORCH_PREFIX + "calculate_gain", nonlinearity, param)


# ---------------------------------------------------------------------------------------------
# Base
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, repr=False)
class TorchInitializer(Initializer):
    """Base of the ``jinit.torch`` initialisers: messages name ``jinit.torch.<fn>``."""

    family: ClassVar[str] = "torch"

    @property
    def _label(self) -> str:
        return "jinit." + self.api

    def __repr__(self) -> str:
        return super().__repr__().replace(f"layout={TORCH_LAYOUT!r}", "layout='torch'")

    def _sample(self, key, shape, dtype):
        return _compiled_draw(self, key, shape, dtype)

    def _draw(self, key: jax.Array, shape: tuple[int, ...], dtype: np.dtype) -> jax.Array:
        raise NotImplementedError


@functools.partial(jax.jit, static_argnums=(0, 2, 3))
def _compiled_draw(init: TorchInitializer, key, shape, dtype) -> jax.Array:
    """One compiled computation per (initialiser, shape, dtype), as ``jax.random`` does: an eager
    call then rounds exactly as the same call inside ``jit``/``vmap`` (XLA fuses and contracts
    ``x * std + mean`` the same way in both), so jit and eager give the same bits."""
    return init._draw(key, shape, dtype)


# ---------------------------------------------------------------------------------------------
# Layouts
# ---------------------------------------------------------------------------------------------

LAYOUT_NAMES = ("flax", "torch")
TORCH_LAYOUT = Layout.torch("torch layout (out, in, *k)")
"""``layout="torch"``: input axis 1, output axis 0, the rest receptive field."""

_LAYOUT_FIX = (
    "Pass 'flax' (the default: Dense (in, out), Conv (*k, in/groups, out)), 'torch' (torch's and "
    "equinox's (out, in, *k)), a `jinit.Layout` (e.g. `jinit.Layout(in_axes=1, out_axes=0)`) or "
    "an einsum equation such as 'bd,dhk->bhk'."
)


def check_layout(api: str, layout: Any) -> Layout | None:
    """A ``layout=`` argument as a :class:`jinit.Layout`, or None for the Flax default.

    ``"torch"`` is :meth:`jinit.Layout.torch` (input axis 1, output axis 0, the rest receptive
    field: torch's ``_calculate_fan_in_and_fan_out`` on ``(out, in, *k)``); ``"flax"`` (or
    None) keeps the defaults (input -2, output -1), under which every value is the one jinit
    gave before layouts existed. Other strings are einsum equations (the kernel second).
    """
    if layout is None or (isinstance(layout, str) and layout == "flax"):
        return None
    if isinstance(layout, str) and layout == "torch":
        return TORCH_LAYOUT
    if isinstance(layout, str) and "->" not in layout:
        close = difflib.get_close_matches(layout.lower(), LAYOUT_NAMES, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"`{api}` got `layout={layout!r}`.{hint} {_LAYOUT_FIX}")
    if not isinstance(layout, (str, Layout)):
        raise TypeError(
            f"`{api}` needs `layout` to be a str or a `jinit.Layout`; got {layout!r} of type "
            f"{type(layout).__name__}. {_LAYOUT_FIX}"
        )
    return as_layout(api, layout)


def layout_text(layout: Layout | None) -> str:
    return "" if layout is None else f" [{layout.describe()}]"


class MatrixLayout:
    """Layout handling of the initialisers that need one input and one output axis and no
    batch axes (orthogonal, sparse, dirac): the axes and the ``with_layout`` rule."""

    layout: Layout | None

    def in_out(self, shape: tuple[int, ...]) -> tuple[int, int]:
        """The (input, output) axes of ``shape``, non-negative (Flax: the last two)."""
        nd = len(shape)
        if self.layout is None:
            return nd - 2, nd - 1
        lay = self.layout if self.layout.shape == shape else self.layout.bind(shape)
        if len(lay.in_axes) != 1 or len(lay.out_axes) != 1 or lay.batch_axes:
            raise ValueError(
                f"`{self._label}` needs a layout with one input axis, one output axis and no "
                f"batch axes (torch's weights are (out, in, *k)); got {lay.describe()} for shape "
                f"{shape}. For a DenseGeneral/attention kernel let the layer call it with its "
                f"flat (in, out) shape, or use `jinit.orthogonal(column_axis=...)`."
            )
        return lay.in_axes[0], lay.out_axes[0]

    def with_layout(self, layout: Layout):
        """``self`` when it was given a layout, when the layer calls it with a flat
        ``(in, out)`` shape, or when the layout's axes are its own; else a copy with
        ``layout`` (raising if it has several input/output axes or batch axes)."""
        if self.layout is not None or layout.call == "flat":
            return self
        shape = layout.shape
        new = dataclasses.replace(self, layout=layout)
        if shape is not None and new.in_out(shape) == (len(shape) - 2, len(shape) - 1):
            return self
        return new


# Below this probability the inverse CDF worked in probabilities loses precision in float32 /
# float64 (subnormal range, with a margin of 2**23 / 2**52): the tail sampler takes over.
TINY_MASS = {4: 1e-30, 8: 1e-290}


def norm_cdf(x: float) -> float:
    """Standard normal CDF in float64, accurate in the lower tail (0 at -inf, 1 at inf)."""
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def real_float(dtype: np.dtype) -> np.dtype:
    """The float dtype to compute in: float32 for half precision, else the (real) dtype itself."""
    real = np.dtype(jnp.finfo(dtype).dtype)
    return np.dtype(np.float32) if real.itemsize < 4 else real


def is_complex_dtype(dtype: np.dtype) -> bool:
    return bool(jnp.issubdtype(dtype, jnp.complexfloating))


FAN_HINT = (
    " torch computes fans only for weights of rank >= 2 (`torch.nn.init` raises too). For a "
    "bias use `jinit.torch.linear_bias(fan_in)`."
)
