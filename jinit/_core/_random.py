r"""jax's threefry samplers, written out unrolled: the same bits, without XLA's rolled CPU loop.

``jax.random`` hashes counters with Threefry-2x32 (20 rounds, Salmon et al., *Parallel random
numbers: as easy as 1, 2, 3*, SC 2011). On CPU, jax lowers the hash as a 5-iteration
``while`` loop, which XLA cannot fuse with what consumes the bits: the bits are written to
memory, read back, and turned into floats by a second kernel. Written out as the straight
line of 20 add-rotate-xor rounds (what jax itself emits on GPU/TPU), the hash fuses with the
uniform/normal transform into one element-wise kernel — about twice as fast on CPU, and the
same program shape everywhere else.

The functions here reproduce ``jax.random.bits``, ``uniform``, ``normal`` and
``truncated_normal`` **bit for bit** (same counters :math:`0..n-1` in row-major order, split
into the high and low 32-bit words; same mantissa trick, :math:`u = \mathrm{bits}(1.m) - 1`;
same :math:`\sqrt 2\,\mathrm{erf}^{-1}` transform and clamping). They are used only when
that is known to hold:

* the key is a threefry key (typed ``key<fry>``, or a raw ``uint32[2]`` key while
  ``jax_default_prng_impl`` is threefry) and ``jax_threefry_partitionable`` is on (jax's
  default since 0.5);
* the dtype is a 16-, 32- or 64-bit float, the array is non-empty, has rank ≥ 1 and fewer
  than :math:`2^{32}` entries (so every counter's high word is zero);
* and a **self-check** passed in this process: the first time a (sampler, dtype) pair is
  used, a small draw is compared with jax's own (one compiled program each: the program an
  eager call runs and a surrounding ``jit`` inlines). If jax ever changes its algorithm,
  jinit falls back to ``jax.random`` instead of drifting.

Otherwise every function calls ``jax.random`` itself. Either way the result is identical.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_PARITY = np.uint32(0x1BD11BDA)  # Threefry's key-schedule constant
_UINT = {8: np.uint8, 16: np.uint16, 32: np.uint32, 64: np.uint64}


def _rotl(x: jax.Array, d: int) -> jax.Array:
    return lax.shift_left(x, np.uint32(d)) | lax.shift_right_logical(x, np.uint32(32 - d))


def threefry2x32(k0: jax.Array, k1: jax.Array, x0: jax.Array, x1: jax.Array):
    r"""Threefry-2x32 with 20 rounds: the hash of counter words ``(x0, x1)`` under key ``(k0, k1)``.

    Five groups of four rounds :math:`x_0 \mathrel{+}= x_1;\ x_1 = \mathrm{rotl}(x_1, r)
    \oplus x_0`, each group followed by the key injection :math:`x_0 \mathrel{+}= k_{s+1},\
    x_1 \mathrel{+}= k_{s+2} + s + 1` with :math:`k_2 = k_0 \oplus k_1 \oplus
    \mathtt{0x1BD11BDA}` (indices mod 3).

    Example:
      >>> import numpy as np
      >>> # the Random123 known-answer vector for key = counter = 0
      >>> z = np.zeros(1, np.uint32)
      >>> [hex(int(v[0])) for v in threefry2x32(np.uint32(0), np.uint32(0), z, z)]
      ['0x6b200159', '0x99ba4efe']
    """
    ks = (k0, k1, k0 ^ k1 ^ _PARITY)
    x0 = x0 + ks[0]
    x1 = x1 + ks[1]
    for group in range(5):
        for r in _ROTATIONS[group % 2]:
            x0 = x0 + x1
            x1 = _rotl(x1, r) ^ x0
        x0 = x0 + ks[(group + 1) % 3]
        x1 = x1 + ks[(group + 2) % 3] + np.uint32(group + 1)
    return x0, x1


def _counters(shape: tuple[int, ...]) -> jax.Array:
    """Row-major flat index of every entry (low 32-bit word), built from per-axis iotas."""
    strides = np.cumprod((1,) + shape[:0:-1])[::-1]
    parts = [
        lax.broadcasted_iota(np.uint32, shape, d) * np.uint32(s) for d, s in enumerate(strides)
    ]
    return functools.reduce(lax.add, parts)


def _key_words(key: jax.Array) -> tuple[jax.Array, jax.Array]:
    data = jax.random.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else key
    return data[0], data[1]


@functools.partial(jax.jit, static_argnums=(1, 2))
def _raw_bits(key: jax.Array, nbits: int, shape: tuple[int, ...]) -> jax.Array:
    k0, k1 = _key_words(key)
    b0, b1 = threefry2x32(k0, k1, jnp.zeros(shape, np.uint32), _counters(shape))
    if nbits == 64:
        hi = lax.convert_element_type(b0, np.uint64)
        return lax.shift_left(hi, np.uint64(32)) | lax.convert_element_type(b1, np.uint64)
    bits = b0 ^ b1
    return bits if nbits == 32 else lax.convert_element_type(bits, _UINT[nbits])


# Each sampler is a jitted function of (key, bounds) with a static shape and dtype, as jax's
# are: called eagerly it runs as one compiled program (so XLA rounds the fused arithmetic
# exactly as it does for jax's), and under an outer jit it is inlined the same way.
@functools.partial(jax.jit, static_argnums=(1, 2))
def _raw_uniform(key, shape, dtype, minval, maxval) -> jax.Array:
    finfo = jnp.finfo(dtype)
    nbits, nmant = finfo.bits, finfo.nmant
    uint = _UINT[nbits]
    # as jax: a dtype with fewer than 8 mantissa bits (bfloat16) takes 8 random bits per value
    rng_bits = nbits if nmant >= 8 else 8
    bits = lax.convert_element_type(_raw_bits(key, rng_bits, shape), uint)
    one = np.array(1.0, dtype).view(uint)
    mantissa = lax.shift_right_logical(bits, uint(rng_bits - nmant)) | one
    floats = lax.bitcast_convert_type(mantissa, dtype) - jnp.array(1.0, dtype)
    lo = lax.convert_element_type(minval, dtype)
    hi = lax.convert_element_type(maxval, dtype)
    return lax.max(lo, floats * (hi - lo) + lo)


@functools.partial(jax.jit, static_argnums=(1, 2))
def _raw_normal(key, shape, dtype) -> jax.Array:
    lo = np.nextafter(np.array(-1.0, dtype), np.array(0.0, dtype), dtype=dtype)
    u = _raw_uniform(key, shape, dtype, lo, np.array(1.0, dtype))
    return lax.mul(np.array(np.sqrt(2), dtype), lax.erf_inv(u))


@functools.partial(jax.jit, static_argnums=(1, 2))
def _raw_truncated_normal(key, shape, dtype, lower, upper) -> jax.Array:
    sqrt2 = np.array(np.sqrt(2), dtype)
    lower = lax.convert_element_type(lower, dtype)
    upper = lax.convert_element_type(upper, dtype)
    a = lax.erf(lower / sqrt2)
    b = lax.erf(upper / sqrt2)
    out = sqrt2 * lax.erf_inv(_raw_uniform(key, shape, dtype, a, b))
    return jnp.clip(
        out,
        lax.nextafter(lower, np.array(np.inf, dtype)),
        lax.nextafter(upper, np.array(-np.inf, dtype)),
    )


# --- when the unrolled hash may stand in for jax's -------------------------------------------


def is_threefry(key: jax.Array) -> bool:
    """Whether ``key`` is a threefry key (typed ``key<fry>``, or a raw ``uint32[2]`` key while
    jax's default implementation is threefry)."""
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return key.shape == () and str(key.dtype) == "key<fry>"
    return (
        key.shape == (2,)
        and key.dtype == np.uint32
        and jax.config.jax_default_prng_impl == "threefry2x32"
    )


# ``kind -> (unrolled, jax's own)``, both called as ``(key, shape, dtype, *params)``.
_SAMPLERS = {
    "bits": (
        lambda k, s, d: _raw_bits(k, d.itemsize * 8, s),
        lambda k, s, d: jax.random.bits(k, s, d),
    ),
    "uniform": (_raw_uniform, lambda k, s, d, lo, hi: jax.random.uniform(k, s, d, lo, hi)),
    "normal": (_raw_normal, lambda k, s, d: jax.random.normal(k, s, d)),
    "truncated_normal": (
        _raw_truncated_normal,
        lambda k, s, d, a, b: jax.random.truncated_normal(k, a, b, s, d),
    ),
}
_CHECK_SHAPE = (3, 67)
_CHECK_PARAMS = {"uniform": (-0.75, 2.5), "truncated_normal": (-2.0, 1.5)}
_CHECK_KEY = np.array([0, 20261205], np.uint32)  # the key data of jax.random.key(20261205)


@functools.cache
def _agrees_with_jax(kind: str, dtype: np.dtype, typed: bool) -> bool:
    """Whether the unrolled ``kind`` sampler gives jax's bits here.

    Each sampler draws once, compiled ahead of time (so the check runs the same whether or
    not it is reached while a ``jit`` is tracing, and computes the counters in the program as
    a user's call does). Both samplers are one jitted call (jax's as well), so an eager call
    runs the very program that a surrounding ``jit`` inlines: one draw covers both
    (``tests/test_random_unrolled.py`` checks that the compiled programs are the same)."""
    params = _CHECK_PARAMS.get(kind, ())

    def draw(sampler):
        def f(data, *p):
            key = jax.random.wrap_key_data(data) if typed else data
            return sampler(key, _CHECK_SHAPE, dtype, *p)

        return np.asarray(jax.jit(f).lower(_CHECK_KEY, *params).compile()(_CHECK_KEY, *params))

    try:
        a, b = (draw(sampler) for sampler in _SAMPLERS[kind])
    except Exception:  # any surprise (a new jax, an exotic backend): use jax's own sampler
        return False
    return a.dtype == b.dtype and a.tobytes() == b.tobytes()


def _unrolled_ok(kind: str, key, shape: tuple[int, ...], dtype: np.dtype) -> bool:
    family = jnp.unsignedinteger if kind == "bits" else jnp.floating
    return (
        isinstance(key, jax.Array | np.ndarray)
        and jnp.issubdtype(dtype, family)
        and dtype.itemsize * 8 in (16, 32, 64)
        and len(shape) >= 1
        and 0 < math.prod(shape) < 2**32
        and is_threefry(key)
        and bool(jax.config.jax_threefry_partitionable)
        and _agrees_with_jax(kind, dtype, jnp.issubdtype(key.dtype, jax.dtypes.prng_key))
    )


def _draw(kind: str, key: jax.Array, shape, dtype, default, *params) -> jax.Array:
    """The one dispatch rule: the unrolled sampler where it is known to equal jax's, else jax's."""
    shape = tuple(int(d) for d in shape)
    dtype = np.dtype(jax.dtypes.canonicalize_dtype(default if dtype is None else dtype))
    ours, theirs = _SAMPLERS[kind]
    if all(np.ndim(p) == 0 for p in params) and _unrolled_ok(kind, key, shape, dtype):
        return ours(key, shape, dtype, *params)
    return theirs(key, shape, dtype, *params)


# --- the samplers ----------------------------------------------------------------------------


def bits(key: jax.Array, shape, dtype=jnp.uint32) -> jax.Array:
    """``jax.random.bits(key, shape, dtype)``, bit for bit (unsigned 16/32/64-bit dtypes).

    Example:
      >>> import jax, numpy as np
      >>> k = jax.random.key(0)
      >>> bool((bits(k, (4, 5)) == jax.random.bits(k, (4, 5))).all())
      True
    """
    return _draw("bits", key, shape, dtype, jnp.uint32)


def uniform(key: jax.Array, shape, dtype=None, minval=0.0, maxval=1.0) -> jax.Array:
    """``jax.random.uniform(key, shape, dtype, minval, maxval)``, bit for bit.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> k = jax.random.key(1)
      >>> a = uniform(k, (3, 4), jnp.bfloat16, -1.0)
      >>> bool((a == jax.random.uniform(k, (3, 4), jnp.bfloat16, -1.0)).all())
      True
    """
    return _draw("uniform", key, shape, dtype, jnp.float32, minval, maxval)


def normal(key: jax.Array, shape, dtype=None) -> jax.Array:
    r"""``jax.random.normal(key, shape, dtype)`` for real dtypes, bit for bit.

    :math:`z = \sqrt 2\,\mathrm{erf}^{-1}(u)`, :math:`u` uniform on :math:`(-1, 1)`.

    Example:
      >>> import jax
      >>> k = jax.random.key(2)
      >>> bool((normal(k, (64, 32)) == jax.random.normal(k, (64, 32))).all())
      True
    """
    return _draw("normal", key, shape, dtype, jnp.float32)


def truncated_normal(key: jax.Array, lower, upper, shape, dtype=None) -> jax.Array:
    r"""``jax.random.truncated_normal(key, lower, upper, shape, dtype)``, bit for bit.

    Inverse CDF: :math:`z = \sqrt 2\,\mathrm{erf}^{-1}(u)` with :math:`u` uniform on
    :math:`[\mathrm{erf}(a/\sqrt2), \mathrm{erf}(b/\sqrt2))`, clamped into :math:`(a, b)`.

    Example:
      >>> import jax
      >>> k = jax.random.key(3)
      >>> a = truncated_normal(k, -2, 2, (8, 8))
      >>> bool((a == jax.random.truncated_normal(k, -2, 2, (8, 8))).all())
      True
    """
    return _draw("truncated_normal", key, shape, dtype, jnp.float32, lower, upper)
