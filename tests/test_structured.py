"""Orthogonal and delta-orthogonal: bit-identical to jax where jax works, right where it fails.

jax's ``orthogonal`` and ``delta_orthogonal`` raise ``NotImplementedError`` in bfloat16 and
float16 (QR has no half-precision kernel). jinit samples those in float32 and rounds once, so
the half-precision result is exactly the float32 result cast, and its Gram matrix is the
identity to within the rounding of the dtype.
"""

from __future__ import annotations

import jax
import jax.nn.initializers as jnn
import jax.numpy as jnp
import numpy as np
import pytest

import jinit

SEED = 5


def assert_bit_identical(ours: jax.Array, theirs: jax.Array) -> None:
    assert ours.dtype == theirs.dtype, (ours.dtype, theirs.dtype)
    assert ours.shape == theirs.shape, (ours.shape, theirs.shape)
    assert np.asarray(ours).tobytes() == np.asarray(theirs).tobytes()


def gram_error(w: jax.Array, column_axis: int, scale: float) -> float:
    """max |G - scale² I| of the Gram matrix on the smaller side, computed in float64."""
    m = np.asarray(w).astype(np.complex128 if w.dtype.kind == "c" else np.float64)
    m = np.moveaxis(m, column_axis, -1)
    m = m.reshape(-1, m.shape[-1])
    g = m.conj().T @ m if m.shape[0] >= m.shape[1] else m @ m.conj().T
    return float(np.abs(g - scale**2 * np.eye(g.shape[0])).max())


# (shape, column_axis, scale)
ORTHO_CASES = [
    ((64, 32), -1, 1.0),  # tall: orthonormal columns
    ((32, 64), -1, 2.0),  # wide: orthonormal rows
    ((3, 3, 16, 32), -1, 1.0),  # conv kernel flattened to (144, 32)
    ((4, 6, 5), 1, 0.5),  # column axis in the middle: (20, 6) after moving it last
]


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.complex64], ids=lambda d: jnp.dtype(d).name)
@pytest.mark.parametrize("shape, column_axis, scale", ORTHO_CASES, ids=str)
def test_orthogonal_bit_identical_to_jax(shape, column_axis, scale, dtype):
    key = jax.random.key(SEED)
    ours = jinit.orthogonal(scale, column_axis)(key, shape, dtype)
    theirs = jnn.orthogonal(scale, column_axis)(key, shape, dtype)
    assert_bit_identical(ours, theirs)


DELTA_CASES = [(3, 16, 32), (3, 3, 16, 32), (4, 8, 8), (2, 3, 3, 4, 8)]  # 1-D, 2-D, even k, 3-D


@pytest.mark.parametrize("shape", DELTA_CASES, ids=str)
def test_delta_orthogonal_bit_identical_to_jax(shape):
    key = jax.random.key(SEED)
    for scale, column_axis in [(1.0, -1), (1.5, 0)]:
        ours = jinit.delta_orthogonal(scale, column_axis)(key, shape, jnp.float32)
        theirs = jnn.delta_orthogonal(scale, column_axis)(key, shape, jnp.float32)
        assert_bit_identical(ours, theirs)


def test_orthogonal_bit_identical_to_jax_float64():
    key = jax.random.key(SEED)
    with jax.enable_x64(True):
        for shape, column_axis, scale in ORTHO_CASES[:3]:
            ours = jinit.orthogonal(scale, column_axis)(key, shape)
            assert ours.dtype == jnp.float64  # dtype=None under x64
            assert_bit_identical(ours, jnn.orthogonal(scale, column_axis)(key, shape))
        ours = jinit.delta_orthogonal()(key, (3, 3, 16, 32), jnp.float64)
        assert_bit_identical(ours, jnn.delta_orthogonal()(key, (3, 3, 16, 32), jnp.float64))
        # complex128: unitary to float64 precision (QR error ~ n·eps64 ≈ 1e-14 for n = 64).
        w = jinit.orthogonal()(key, (64, 32), jnp.complex128)
        assert w.dtype == jnp.complex128 and gram_error(w, -1, 1.0) < 1e-12
        assert_bit_identical(w, jnn.orthogonal()(key, (64, 32), jnp.complex128))


# ---------------------------------------------------------------------------------------------
# Half precision: jax fails, jinit works
# ---------------------------------------------------------------------------------------------

HALF = [jnp.bfloat16, jnp.float16]


@pytest.mark.parametrize("dtype", HALF, ids=lambda d: jnp.dtype(d).name)
@pytest.mark.parametrize("shape, column_axis, scale", ORTHO_CASES, ids=str)
def test_orthogonal_half_precision(shape, column_axis, scale, dtype):
    key = jax.random.key(SEED)
    with pytest.raises(NotImplementedError):  # what jax does
        jnn.orthogonal(scale, column_axis)(key, shape, dtype)
    w = jinit.orthogonal(scale, column_axis)(key, shape, dtype)
    assert w.shape == shape and w.dtype == dtype
    # Exactly the float32 draw, rounded once.
    f32 = jinit.orthogonal(scale, column_axis)(key, shape, jnp.float32)
    assert_bit_identical(w, f32.astype(dtype))
    # Each entry is within a relative u = eps/2 of the float32 value, so by Cauchy–Schwarz every
    # Gram entry moves by at most (2u + u²)·scale²; float32's own error is ~n·eps32 ≲ 1e-5.
    u = float(jnp.finfo(dtype).eps) / 2
    bound = (2 * u + u * u) * scale**2 + 1e-5 * scale**2
    assert gram_error(w, column_axis, scale) <= bound
    assert gram_error(f32, column_axis, scale) <= 1e-5 * scale**2


@pytest.mark.parametrize("dtype", HALF, ids=lambda d: jnp.dtype(d).name)
@pytest.mark.parametrize("shape", DELTA_CASES[:2], ids=str)
def test_delta_orthogonal_half_precision(shape, dtype):
    key = jax.random.key(SEED)
    with pytest.raises(NotImplementedError):  # what jax does
        jnn.delta_orthogonal()(key, shape, dtype)
    w = jinit.delta_orthogonal()(key, shape, dtype)
    assert w.shape == shape and w.dtype == dtype
    assert_bit_identical(w, jinit.delta_orthogonal()(key, shape, jnp.float32).astype(dtype))
    centre = w[tuple((k - 1) // 2 for k in shape[:-2])]
    u = float(jnp.finfo(dtype).eps) / 2
    assert gram_error(centre, -1, 1.0) <= 2 * u + u * u + 1e-5


# ---------------------------------------------------------------------------------------------
# Complex: Haar unitary
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape, column_axis, scale", ORTHO_CASES, ids=str)
def test_orthogonal_complex_is_unitary(shape, column_axis, scale):
    w = jinit.orthogonal(scale, column_axis)(jax.random.key(SEED), shape, jnp.complex64)
    assert w.dtype == jnp.complex64
    # Genuinely complex (not a real matrix stored as complex) ...
    assert float(np.abs(np.imag(np.asarray(w))).max()) > 0.1 * scale / np.sqrt(max(shape))
    # ... and unitary on the smaller side to float32 precision (QR error ~ n·eps32 ≈ 1e-5).
    assert gram_error(w, column_axis, scale) <= 1e-5 * scale**2


def test_delta_orthogonal_complex_centre_is_unitary():
    w = jinit.delta_orthogonal(2.0)(jax.random.key(SEED), (3, 3, 8, 16), jnp.complex64)
    assert w.dtype == jnp.complex64
    assert gram_error(w[1, 1], -1, 2.0) <= 4e-5
    off_centre = np.asarray(w).copy()
    off_centre[1, 1] = 0
    assert not off_centre.any()


# ---------------------------------------------------------------------------------------------
# Structure of delta-orthogonal kernels
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", DELTA_CASES, ids=str)
def test_delta_orthogonal_structure(shape):
    key = jax.random.key(SEED)
    w = np.asarray(jinit.delta_orthogonal(1.5)(key, shape))
    centre = tuple((k - 1) // 2 for k in shape[:-2])  # lower middle for even k, as jax
    # The centre is the orthogonal initialiser of the (in, out) matrix with the same key ...
    np.testing.assert_array_equal(w[centre], jinit.orthogonal(1.5)(key, shape[-2:]))
    # ... and everything else is zero.
    rest = w.copy()
    rest[centre] = 0
    assert not rest.any()
