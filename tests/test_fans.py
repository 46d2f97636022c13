"""``jinit.fans``: exact values, and equality with jax's own fan computation.

jax computes fans in ``jax._src.nn.initializers._compute_fans`` (private, but it is what every
``jax.nn.initializers.variance_scaling`` call uses). jinit must give the same floats, bit for
bit, or variance-scaling initialisers could not be bit-identical to jax's.
"""

from __future__ import annotations

import pytest
from jax._src.nn.initializers import _compute_fans

import jinit

# (shape, axes keywords, (fan_in, fan_out)) worked out by hand:
# fan_in = n_in · r, fan_out = n_out · r, r = prod(shape) / (n_in · n_out · n_batch).
EXACT = [
    ((64, 32), {}, (64.0, 32.0)),  # dense (in, out)
    ((5, 16, 32), {}, (80.0, 160.0)),  # 1-D conv, r = 5
    ((3, 3, 16, 32), {}, (144.0, 288.0)),  # 2-D conv HWIO, r = 9
    ((2, 3, 3, 4, 8), {}, (72.0, 144.0)),  # 3-D conv, r = 18
    ((4, 16, 32), {"batch_axis": 0}, (16.0, 32.0)),  # stacked (scanned) dense layers
    ((6, 3, 3, 16, 32), {"batch_axis": 0}, (144.0, 288.0)),  # stacked 2-D convs
    ((4, 5, 6, 7), {"in_axis": (0, 1), "out_axis": (2, 3)}, (20.0, 42.0)),  # DenseGeneral
    ((4, 5, 6, 7), {"in_axis": 0, "out_axis": (2, 3)}, (20.0, 210.0)),  # r = 5
    ((2, 4, 5, 6), {"in_axis": -3, "out_axis": (-2, -1), "batch_axis": 0}, (4.0, 30.0)),
    # Flax Embed on (vocab, features): in_axis=-2 and out_axis=0 are both the vocab axis, so
    # r = 1000·64 / 1000 / 1000 = 0.064 and fan_in = fan_out = features.
    ((1000, 64), {"out_axis": 0}, (64.0, 64.0)),
    ((10,), {"in_axis": 0, "out_axis": 0}, (1.0, 1.0)),  # rank 1, overlapping: r = 1/10
    ((10,), {"in_axis": (), "out_axis": 0}, (1.0, 10.0)),  # rank 1, no input axis: r = 1
    ((), {"in_axis": (), "out_axis": ()}, (1.0, 1.0)),  # scalar
    ((7, 3), {"in_axis": 1, "out_axis": 0}, (3.0, 7.0)),  # torch (out, in) layout
]


@pytest.mark.parametrize("shape, kwargs, expected", EXACT, ids=str)
def test_fans_exact_values(shape, kwargs, expected):
    got = jinit.fans(shape, **kwargs)
    assert isinstance(got, jinit.Fans)
    assert type(got.fan_in) is float and type(got.fan_out) is float
    assert tuple(got) == expected


# Shapes where the float division r = prod / n_in / n_out / n_batch is inexact, so the order
# of operations matters for the last bit (e.g. 7 / 3 / 11).
ROUNDING = [
    ((7, 3, 11), {"in_axis": 1, "out_axis": 2}),
    ((7, 3, 11, 13), {"in_axis": (1, 3), "out_axis": 2}),
    ((5, 7, 9, 11), {"in_axis": 1, "out_axis": 3, "batch_axis": 2}),
    ((3, 7, 6), {"in_axis": 1, "out_axis": 1}),
]


@pytest.mark.parametrize("shape, kwargs", [(s, k) for s, k, _ in EXACT] + ROUNDING, ids=str)
def test_fans_equal_jax_compute_fans(shape, kwargs):
    ours = jinit.fans(shape, **kwargs)
    theirs = _compute_fans(shape, **kwargs)
    # Same floats, bit for bit (== on floats, and the same type).
    assert (ours.fan_in, ours.fan_out) == tuple(float(x) for x in theirs)
    assert type(ours.fan_in) is type(float(theirs[0]))


@pytest.mark.parametrize(
    "mode, expected",
    [
        ("fan_in", 144.0),
        ("fan_out", 288.0),
        ("fan_avg", 216.0),
        ("fan_geo_avg", (144.0 * 288.0) ** 0.5),  # jax's expression, same rounding
    ],
)
def test_denominator_per_mode(mode, expected):
    assert jinit.fans((3, 3, 16, 32)).denominator(mode) == expected


def test_negative_and_positive_axes_agree():
    shape = (2, 3, 5, 7)
    assert jinit.fans(shape, in_axis=-2, out_axis=-1, batch_axis=-4) == jinit.fans(
        shape, in_axis=2, out_axis=3, batch_axis=0
    )


def test_variance_scaling_uses_these_fans():
    # The fans method of a variance-scaling initialiser is this computation with its axes.
    init = jinit.variance_scaling(1.0, "fan_in", "normal", in_axis=0, out_axis=(1, 2))
    assert init.fans((4, 5, 6)) == jinit.fans((4, 5, 6), in_axis=0, out_axis=(1, 2))
