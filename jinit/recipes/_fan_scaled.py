"""Fan-based laws for dense and ``DenseGeneral`` kernels (:func:`fan_scaled`, fans read from the
contraction layout) and per-layer initialisers picked by the depth index parsed from a path."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import ClassVar

import jax.numpy as jnp
import numpy as np

from jinit._core._checks import (
    DTypeLike,
    check_choice,
    check_dtype_arg,
    check_real,
)
from jinit._core._fans import fans
from jinit._core._layout import Layout, draw
from jinit.initializers._base import Initializer
from jinit.initializers._basic import truncated_normal
from jinit.initializers._variance_scaling import VarianceScaling
from jinit.recipes._names import TransformerNames
from jinit.recipes._recipe import RECIPES_PREFIX
from jinit.trees._rules import contextual

# ---------------------------------------------------------------------------------------------
# fan_scaled: fan-based laws for dense and DenseGeneral kernels
# ---------------------------------------------------------------------------------------------

_LAYOUTS = ("out_last", "in_first", "embed", "flax")
_FAN_MODES = ("fan_in", "fan_out", "fan_avg")
_FAN_DISTS = ("normal", "uniform", "truncated_normal")


@dataclasses.dataclass(frozen=True, repr=False)
class FanScaled(Initializer):
    """Variance ``scale / fan``, fans by a DenseGeneral-aware layout; see :func:`fan_scaled`."""

    scale: float = 1.0
    mode: str = "fan_in"
    distribution: str = "normal"
    layout: str = "out_last"
    cutoff: float | None = None
    dtype: np.dtype | None = None
    layer_layout: Layout | None = None

    api: ClassVar[str] = "recipes.fan_scaled"
    family: ClassVar[str] = "recipe"
    supports_complex: ClassVar[bool] = True
    min_rank: ClassVar[int] = 2

    def _rank_hint(self) -> str:
        return " It is for dense kernels (in, out) and DenseGeneral kernels."

    @property
    def own_fan_rule(self) -> bool:
        """True when :attr:`layout` is a role's rule ("out_last", "in_first", "embed") rather
        than jax's default ("flax"): the tree tools do not warn that a rank >= 3 leaf of unknown
        layer gets jax's default fans, since it does not."""
        return self.layout != "flax"

    def axes(self, ndim: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """``(in_axes, out_axes)`` of a kernel of rank ``ndim`` under :attr:`layout` (other
        axes are receptive field)."""
        if self.layout == "in_first":
            return (0,), tuple(range(1, ndim))
        if self.layout == "embed":
            return (ndim - 1,), tuple(range(ndim - 1))
        if self.layout == "flax":
            return (ndim - 2,), (ndim - 1,)
        return tuple(range(ndim - 1)), (ndim - 1,)

    def fans(self, shape) -> tuple[float, float]:
        """``(fan_in, fan_out)`` of ``shape``: the leaf's layer layout when known
        (:meth:`with_layout`), else :attr:`layout`'s rule."""
        if self.layer_layout is not None:
            return self.layer_layout.fans(shape, api=self._label)
        i, o = self.axes(len(shape))
        return fans(shape, i, o, api=self._label)

    def with_layout(self, layout: Layout) -> FanScaled:
        r"""This initialiser with the fans of ``layout``, the layout of the leaf it draws (a
        bound :class:`jinit.Layout`; :func:`jinit.reinit` and :func:`jinit.summary` call this
        for every leaf whose layer is known).

        The layer's layout replaces the role's rule (:attr:`layout`), which only guesses the
        axes of a leaf whose layer is unknown: a convolution ``(*k, in, out)`` reached by a
        fallback rule gets :math:`\mathrm{fan\_in} = k\cdot\mathrm{in}`, a torch/equinox
        ``(out, in)`` weight :math:`\mathrm{fan\_in} = \mathrm{in}`, an embedding table
        (Flax ``Embed``, equinox ``Embedding``) :math:`\mathrm{fan\_in} =` features. Returns
        ``self`` when the rule already gives the layout's fan on the shape the layer calls the
        initialiser with (the draw is then unchanged bit for bit).
        """
        probe = dataclasses.replace(self, layer_layout=None)
        want = layout.fans().denominator(self.mode)
        try:
            own = probe.fans(layout.call_shape()).denominator(self.mode)
        except ValueError:
            own = None
        if own is not None and math.isclose(own, want, rel_tol=1e-12):
            return probe
        return dataclasses.replace(self, layer_layout=layout)

    def _delegate(self, shape: tuple[int, ...]) -> Initializer:
        if self.cutoff is None:
            if self.layer_layout is not None:
                return VarianceScaling(
                    self.scale, self.mode, self.distribution, layout=self.layer_layout
                )
            i, o = self.axes(len(shape))
            return VarianceScaling(self.scale, self.mode, self.distribution, i, o)
        return truncated_normal(self.std(shape), None, -self.cutoff, self.cutoff)

    def _check_shape(self, shape):
        self.fans(tuple(max(d, 1) for d in shape))

    def _check_call(self, shape, dtype):
        shape, dtype = super()._check_call(shape, dtype)
        if self.cutoff is not None and jnp.issubdtype(dtype, jnp.complexfloating):
            raise TypeError(
                f"`{self._label}` with a `cutoff` (a truncated normal) is defined for real dtypes "
                f"only; got {np.dtype(dtype).name}."
            )
        return shape, dtype

    def _sample(self, key, shape, dtype):
        return self._delegate(shape)._sample(key, shape, dtype)

    def _law(self, shape, dtype):
        return self._delegate(shape)._law(shape, dtype)

    def std(self, shape) -> float:
        r""":math:`\sqrt{\mathrm{scale}/\mathrm{fan}}` for ``shape`` (the untruncated std)."""
        return math.sqrt(self.scale / self.fans(tuple(shape)).denominator(self.mode))

    def describe(self) -> str:
        law = {"normal": "N", "uniform": "U", "truncated_normal": "truncated N"}[self.distribution]
        cut = f" cut at ±{self.cutoff:g}σ (std not corrected)" if self.cutoff is not None else ""
        where = self.layout if self.layer_layout is None else self.layer_layout.describe()
        return f"{law}(0, {self.scale:g}/{self.mode}), {where} fans{cut}"


def fan_scaled(
    scale: float = 1.0,
    mode: str = "fan_in",
    distribution: str = "normal",
    *,
    layout: str = "out_last",
    cutoff: float | None = None,
    dtype: DTypeLike | None = None,
) -> FanScaled:
    r"""Builds a variance-scaling initializer whose fans suit dense and ``DenseGeneral`` kernels.

    Variance :math:`\mathrm{scale}/n` with :math:`n` the ``fan_in``, ``fan_out`` or their mean
    (``mode``), like :func:`jinit.variance_scaling`.

    **Fans.** When :func:`jinit.reinit` or :func:`jinit.summary` knows the layer of the leaf
    (an nnx or equinox module, or ``layouts=jinit.layouts(model, x)`` for linen), the fans are
    the layer's (:class:`jinit.Layout`, via :meth:`FanScaled.with_layout`): a Flax
    ``DenseGeneral``/attention kernel its contracted axes, a convolution ``(*k, in, out)``
    :math:`\mathrm{fan\_in} = k\cdot\mathrm{in}`, a torch/equinox ``(out, in, *k)`` weight
    torch's fans, an embedding table (Flax ``Embed``, equinox ``Embedding``) :math:`\mathrm{fan\_in}
    =` features. For a leaf whose layer is unknown (a bare params dict, a direct call) the
    fans are read from the rank by ``layout``, the recipe's rule for the role it draws:

    * ``"in_first"``: input axis 0, the others are output — query/key/value kernels
      ``(d, heads, head_dim)`` have :math:`\mathrm{fan\_in} = d`;
    * ``"out_last"``: output axis -1, the others are input — the attention output kernel
      ``(heads, head_dim, d)`` has :math:`\mathrm{fan\_in} = \mathrm{heads}\cdot\mathrm{head\_dim}`;
    * ``"embed"``: input axis -1, the others are output — an embedding table ``(vocab, d)`` or
      a position table ``(1, n, d)`` has :math:`\mathrm{fan\_in} = d` (Flax's ``Embed`` and
      torch's convention);
    * ``"flax"``: jax's default, input axis -2, output axis -1, the rest receptive field (Flax
      ``Dense`` and ``Conv``); :func:`jinit.reinit` warns when it meets a rank >= 3 leaf of
      unknown layer outside a convolution, as for :func:`jinit.variance_scaling`.

    All four agree on ``fan_in`` of a rank-2 ``(in, out)`` kernel except ``"embed"``.
    With ``cutoff`` (``distribution="normal"`` only) the draw is
    :math:`\sigma Z`, :math:`\sigma^2 = \mathrm{scale}/n`, :math:`Z \sim \mathcal N(0,1)`
    conditioned on :math:`|Z| < \mathrm{cutoff}`, **without** variance correction — PyTorch's
    ``trunc_normal_(std=σ, a=-3σ, b=3σ)`` that OLMo uses (std :math:`0.98658\,\sigma` at 3).

    Args:
      scale: the variance multiplier (finite, >= 0).
      mode: ``"fan_in"``, ``"fan_out"`` or ``"fan_avg"``.
      distribution: ``"normal"``, ``"uniform"`` or ``"truncated_normal"`` (variance-corrected,
        cut at ±2σ, as :func:`jinit.variance_scaling`).
      layout: the rule for leaves of unknown layer: ``"out_last"`` (default), ``"in_first"``,
        ``"embed"`` or ``"flax"``.
      cutoff: truncation in units of σ (> 0) for an uncorrected truncated normal, or None.
      dtype: the initializer's default dtype.

    Returns:
      An initializer (laws :class:`~jinit.laws.Normal`, :class:`~jinit.laws.Uniform` or
      :class:`~jinit.laws.TruncatedNormal`).

    Examples:
      >>> import jinit
      >>> q = jinit.recipes.fan_scaled(1 / 8, layout="in_first")  # T5 query, d_kv = 8
      >>> round(jinit.law(q, (32, 4, 8)).std ** 2 * 32 * 8, 4)  # (d_model d_kv)^-1
      1.0
    """
    api = RECIPES_PREFIX + "fan_scaled"
    scale = check_real(api, "scale", scale, nonneg=True)
    mode = check_choice(api, "mode", mode, _FAN_MODES)
    distribution = check_choice(api, "distribution", distribution, _FAN_DISTS)
    layout = check_choice(api, "layout", layout, _LAYOUTS)
    if cutoff is not None:
        cutoff = check_real(api, "cutoff", cutoff, positive=True)
        if distribution != "normal":
            raise ValueError(
                f"`{api}` takes a `cutoff` only with distribution='normal' (it truncates that "
                f"normal without correcting its variance); got distribution={distribution!r}."
            )
    return FanScaled(
        scale, mode, distribution, layout, cutoff, check_dtype_arg(api, dtype, allow_complex=True)
    )


# ---------------------------------------------------------------------------------------------
# Per-layer (depth-indexed) initialisers
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class PerLayer:
    """A contextual initialiser: the layer index parsed from the path picks the initialiser."""

    api: str
    role: str
    names: TransformerNames
    n_layers: int
    make: Callable[[int], Initializer]
    formula: str

    def __call__(self, key, leaf):
        i = self.names.layer_index(leaf.path)
        if i is None:
            raise ValueError(
                f"`{self.api}`: the {self.role} {leaf.path!r} is not inside a block named like "
                f"{self.names.block!r}, so its layer index is unknown. Pass "
                f"`names=jinit.recipes.TransformerNames(block=...)` with your block naming "
                f"(e.g. 'Block_{{i}}' or 'blocks/{{i}}')."
            )
        if i < 0:
            raise ValueError(
                f"`{self.api}`: {leaf.path!r} is in block {i + self.names.index_base}, below "
                f"`index_base={self.names.index_base}`. Pass `TransformerNames(index_base=0)` "
                f"for 0-based block names."
            )
        if i >= self.n_layers:
            raise ValueError(
                f"`{self.api}`: {leaf.path!r} is in layer {i}, but the recipe was built with "
                f"n_layers={self.n_layers}. Pass the model's number of blocks."
            )
        init = self.make(i)
        if leaf.layout is not None:  # drawn as the layer draws it, with its fans
            return draw(init, key, leaf.layout, leaf.dtype)
        return init(key, leaf.shape, leaf.dtype)

    def __repr__(self) -> str:
        return f"{self.api}[{self.role}: {self.formula}]"


def contextual_per_layer(fn):

    return contextual(fn)
