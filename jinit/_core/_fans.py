"""The one fan computation of jinit (input / output / batch axes, receptive field)."""

from __future__ import annotations

import math
from typing import NamedTuple

from jinit._core._checks import Axes, canonical_shape, check_axes, normalize_axis


class Fans(NamedTuple):
    """Effective fan-in and fan-out of a weight shape (floats, as in ``jax.nn.initializers``)."""

    fan_in: float
    fan_out: float

    def denominator(self, mode: str) -> float:
        """The variance denominator of a variance-scaling ``mode``."""
        if mode == "fan_in":
            return self.fan_in
        if mode == "fan_out":
            return self.fan_out
        if mode == "fan_avg":
            return (self.fan_in + self.fan_out) / 2
        if mode == "fan_geo_avg":
            return (self.fan_in * self.fan_out) ** 0.5
        raise ValueError(
            f"`Fans.denominator` needs `mode` to be one of 'fan_in', 'fan_out', 'fan_avg', "
            f"'fan_geo_avg'; got {mode!r}."
        )


def _size(api: str, name: str, axes, shape: tuple[int, ...]) -> int:
    nd = len(shape)
    if isinstance(axes, int):
        return shape[normalize_axis(api, name, axes, nd, shape)]
    return math.prod(shape[normalize_axis(api, name, a, nd, shape)] for a in axes)


def fans(
    shape,
    in_axis: Axes = -2,
    out_axis: Axes = -1,
    batch_axis: Axes = (),
    *,
    api: str = "fans",
) -> Fans:
    r"""Effective input and output sizes of a dense or convolutional weight.

    With :math:`n_{in}`, :math:`n_{out}`, :math:`n_{batch}` the products of the sizes along
    ``in_axis``, ``out_axis`` and ``batch_axis``, every other axis counts as receptive field:

    .. math::
        r = \frac{\prod_i s_i}{n_{in}\, n_{out}\, n_{batch}}, \qquad
        \mathrm{fan\_in} = n_{in} r, \qquad \mathrm{fan\_out} = n_{out} r.

    The arithmetic is the one of ``jax.nn.initializers`` (float, same order of operations), so
    variance-scaling initialisers are bit-identical to jax's. As in jax, axes may overlap:
    Flax's ``Embed`` uses ``out_axis=0`` with the default ``in_axis=-2`` on a (vocab, features)
    table, which yields ``fan_in = features``.

    Args:
      shape: the weight shape.
      in_axis: axis or axes of the input dimension.
      out_axis: axis or axes of the output dimension.
      batch_axis: axis or axes of independent stacked weights, left out of both fans.

    Returns:
      ``Fans(fan_in, fan_out)``.

    Raises:
      ValueError: rank < 2 with the default ``in_axis``, an axis out of range, or a zero-size
        dimension (the fans are then undefined).

    Examples:
      >>> import jinit
      >>> jinit.fans((3, 3, 16, 32))
      Fans(fan_in=144.0, fan_out=288.0)
      >>> jinit.fans((4, 16, 32), batch_axis=0)
      Fans(fan_in=16.0, fan_out=32.0)
    """
    shape = canonical_shape(api, shape)
    in_axis = check_axes(api, "in_axis", in_axis)
    out_axis = check_axes(api, "out_axis", out_axis)
    batch_axis = check_axes(api, "batch_axis", batch_axis)
    if in_axis == -2 and len(shape) < 2:
        raise ValueError(
            f"`{api}` needs a weights shape of rank >= 2 when `in_axis` is the default -2; got "
            f"shape {shape}. Pass `in_axis=` (and `out_axis=`) explicitly."
        )
    in_size = _size(api, "in_axis", in_axis, shape)
    out_size = _size(api, "out_axis", out_axis, shape)
    batch_size = _size(api, "batch_axis", batch_axis, shape)
    if 0 in (in_size, out_size, batch_size) or math.prod(shape) == 0:
        raise ValueError(
            f"`{api}` cannot compute fans of shape {shape}, which has a zero-size dimension "
            f"(the fans of an empty weight are undefined). Give every axis a size >= 1."
        )
    # Same float arithmetic as jax.nn.initializers._compute_fans, for bit-identical variances.
    receptive_field = math.prod(shape) / in_size / out_size / batch_size
    return Fans(in_size * receptive_field, out_size * receptive_field)
