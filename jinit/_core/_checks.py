"""The initialiser contract, type aliases, and the validation shared by every initialiser.

Every jinit initialiser is an instance of a frozen dataclass deriving from :class:`Initializer`.
Its fields are its hyper-parameters, so two initialisers built with equal hyper-parameters
compare equal, hash equal (they can be static arguments of ``jax.jit``), pickle, and print a
readable ``repr``. Calling one follows ``jax.nn.initializers.Initializer``::

    init(key, shape, dtype=None, out_sharding=None) -> jax.Array

Validation happens in two places: hyper-parameters when the initialiser is built (so a typo in
``mode`` fails where it is written, not deep inside ``model.init``), and ``key``, ``shape`` and
``dtype`` when it is called.
"""

from __future__ import annotations

import difflib
import functools
import math
import numbers
import operator
from collections.abc import Sequence
from typing import Any, TypeAlias

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

PRNGKey: TypeAlias = jax.Array
Shape: TypeAlias = Sequence[int]
DTypeLike: TypeAlias = Any
OutSharding: TypeAlias = NamedSharding | PartitionSpec | None
Axes: TypeAlias = int | Sequence[int]


class DTypeError(TypeError, ValueError):
    """A dtype an initialiser cannot draw in (an integer, bool or unsupported complex dtype).

    Both a ``TypeError`` (jinit's type for it since 0.1) and a ``ValueError`` (what
    ``jax.nn.initializers`` raise for the same call), so ``except`` clauses written for either
    keep working — as numpy's ``AxisError`` is both a ``ValueError`` and an ``IndexError``.
    """


class ShapeError(TypeError, ValueError):
    """A shape with a negative dimension: a ``TypeError`` as in ``jax.nn.initializers`` and a
    ``ValueError`` (jinit's type for it since 0.1)."""


class PRNGKeyError(TypeError, ValueError):
    """A batch of keys where one key is expected: a ``ValueError`` as in
    ``jax.nn.initializers`` and a ``TypeError`` (jinit's type for it since 0.1)."""


class AxisError(ValueError, IndexError):
    """An axis out of range for the shape: an ``IndexError`` as in ``jax.nn.initializers`` and a
    ``ValueError`` (jinit's type for it since 0.1), like numpy's ``AxisError``."""


def has_law(obj: Any) -> bool:
    """Whether ``obj`` carries a law (a callable ``law(shape, dtype)``, as every jinit
    initialiser does); functions from ``jax.nn.initializers`` and plain callables do not."""
    return callable(getattr(obj, "law", None))


def default_float_dtype() -> np.dtype:
    """The dtype ``dtype=None`` stands for: float32, or float64 when ``jax_enable_x64`` is on."""
    return np.dtype(jax.dtypes.canonicalize_dtype(np.float64))


# ---------------------------------------------------------------------------------------------
# Validation of hyper-parameters (build time)
# ---------------------------------------------------------------------------------------------


def check_real(api: str, name: str, value: Any, *, nonneg: bool = False, positive: bool = False):
    """Returns ``value`` as a Python float, or raises a message naming `api` and `name`."""
    if isinstance(value, bool) or not _is_real_scalar(value):
        raise TypeError(
            f"`{api}` needs `{name}` to be a real number; got {value!r} of type "
            f"{type(value).__name__}. Pass a Python float such as `{name}=1.0`."
        )
    x = float(value)
    if not math.isfinite(x):
        raise ValueError(f"`{api}` needs a finite `{name}`; got {x!r}. Pass a finite number.")
    if positive and not x > 0:
        raise ValueError(f"`{api}` needs `{name}` > 0; got {x!r}. Pass a positive number.")
    if nonneg and x < 0:
        hint = (
            f"A negative {name} only flips signs; pass its absolute value {abs(x)!r}."
            if name in _SCALE_NAMES
            else "Pass a value >= 0."
        )
        raise ValueError(f"`{api}` needs `{name}` >= 0; got {x!r}. {hint}")
    return x


# Multipliers of a symmetric law, for which a negative value is the same law with flipped signs.
_SCALE_NAMES = frozenset({"scale", "stddev", "std", "gain"})


def _is_real_scalar(value: Any) -> bool:
    if isinstance(value, numbers.Real):
        return True
    if isinstance(value, (np.ndarray, jax.Array)) and np.ndim(value) == 0:
        if isinstance(value, jax.core.Tracer):
            return False
        return np.issubdtype(np.asarray(value).dtype, np.number) and not np.iscomplexobj(value)
    return False


def check_choice(api: str, name: str, value: Any, choices: Sequence[str]) -> str:
    if value not in choices:
        allowed = ", ".join(repr(c) for c in choices)
        close = difflib.get_close_matches(value, choices, n=1) if isinstance(value, str) else []
        hint = f" Did you mean {close[0]!r}?" if close else f" Pass one of {allowed}."
        raise ValueError(f"`{api}` needs `{name}` to be one of {allowed}; got {value!r}.{hint}")
    return value


def check_axes(api: str, name: str, value: Any) -> int | tuple[int, ...]:
    """Normalises an axis argument to an int or a tuple of ints (hashable)."""
    hint = f" Pass an axis such as `{name}=-1` or a tuple of axes such as `{name}=(0, 1)`."
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(
            f"`{api}` needs `{name}` to be an int or a sequence of ints; got {value!r}." + hint
        )
    if isinstance(value, (numbers.Integral, np.integer)):
        return int(value)
    if isinstance(value, Sequence) and not isinstance(value, str):
        out = []
        for v in value:
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, (numbers.Integral, np.integer)):
                raise TypeError(
                    f"`{api}` needs `{name}` to be an int or a sequence of ints; got {value!r}."
                    + hint
                )
            out.append(int(v))
        return tuple(out)
    raise TypeError(
        f"`{api}` needs `{name}` to be an int or a sequence of ints; got {value!r} of type "
        f"{type(value).__name__}." + hint
    )


def check_int(api: str, name: str, value: Any, *, minimum: int | None = None) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Integral, np.integer)):
        example = int(value) if isinstance(value, float) and value.is_integer() else minimum or 1
        raise TypeError(
            f"`{api}` needs `{name}` to be an int; got {value!r} of type {type(value).__name__}. "
            f"Pass a Python int such as `{name}={example}`."
        )
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(
            f"`{api}` needs `{name}` >= {minimum}; got {value}. Pass an int >= {minimum}."
        )
    return value


def check_dtype_arg(api: str, dtype: Any, *, allow_complex: bool) -> np.dtype | None:
    """Validates a builder's default dtype (``None`` stays ``None``)."""
    if dtype is None:
        return None
    return inexact_dtype(api, dtype, allow_complex=allow_complex)


def inexact_dtype(api: str, dtype: Any, *, allow_complex: bool) -> np.dtype:
    try:
        dt = np.dtype(jnp.dtype(dtype))
    except TypeError as e:
        raise TypeError(
            f"`{api}` got dtype {dtype!r}, which is not a dtype. Pass e.g. `jnp.float32`."
        ) from e
    if jnp.issubdtype(dt, jnp.floating):
        if not xla_supports(dt):
            raise DTypeError(
                f"`{api}` got dtype {dt.name}, which jax cannot create arrays of (XLA has no "
                f"such type on this backend). Pass float8_e4m3fn, bfloat16 or float32."
            )
        if is_narrow(dt) and not _has_signed_zero_range(dt):
            raise DTypeError(
                f"`{api}` cannot draw weights in dtype {dt.name}, which holds neither zero nor "
                f"negative numbers (it is a scale format). Draw in float32 (or bfloat16) and "
                f"convert the scales you need yourself."
            )
        return dt
    if jnp.issubdtype(dt, jnp.complexfloating):
        if allow_complex:
            return dt
        raise DTypeError(
            f"`{api}` is defined for real floating dtypes only; got dtype {dt.name}. Pass a real "
            f"dtype such as float32, or an initialiser whose law covers complex numbers "
            f"(`normal`, `variance_scaling`, `orthogonal`)."
        )
    raise DTypeError(
        f"`{api}` draws real-valued weights, so it needs a floating dtype (bfloat16, float16, "
        f"float32, float64{', complex64, complex128' if allow_complex else ''}); got dtype "
        f"{dt.name}. Initialise in a float dtype and cast afterwards if you really need {dt.name}."
    )


def is_narrow(dtype: Any) -> bool:
    """Whether ``dtype`` is a real float narrower than 16 bits (float8, float6, float4 types).

    jinit draws such weights in float32 and rounds them once (see :func:`round_narrow`):
    ``jax.random`` works in the dtype itself, whose 2-4 mantissa bits make its uniform variates
    far too coarse (jax's float8 normal has std 0.78·stddev, its truncated normal is all NaN).
    """
    dt = np.dtype(dtype)
    return bool(jnp.issubdtype(dt, jnp.floating)) and jnp.finfo(dt).bits < 16


def xla_supports(dtype: Any) -> bool:
    """False for the float6 types, which ml_dtypes defines but XLA cannot hold."""
    dt = np.dtype(dtype)
    return not (jnp.issubdtype(dt, jnp.floating) and jnp.finfo(dt).bits not in (4, 8, 16, 32, 64))


def _has_signed_zero_range(dt: np.dtype) -> bool:
    """Whether the dtype holds 0 and -1 (float8_e8m0fnu, a power-of-two scale format, does not)."""
    with np.errstate(all="ignore"):
        probe = np.asarray([0.0, -1.0]).astype(dt).astype(np.float64)
    return bool(probe[0] == 0.0 and probe[1] == -1.0)


def round_narrow(x: jax.Array, dtype: np.dtype) -> jax.Array:
    """Rounds a float32 draw once to a narrow float ``dtype``, saturating at its largest value.

    Round-to-nearest of a value beyond ``finfo(dtype).max`` gives NaN or inf in most float8
    types; the draw is clipped to ``[-max, max]`` first, so the tails' mass lands on ``±max``
    (which is what the law's rounded atoms, :func:`jinit.laws._sampled.exact_atoms`, say).
    """
    top = float(jnp.finfo(dtype).max)
    return jnp.clip(x, -top, top).astype(dtype)


# ---------------------------------------------------------------------------------------------
# Validation of call arguments
# ---------------------------------------------------------------------------------------------


def canonical_shape(api: str, shape: Any) -> tuple[int, ...]:
    """The shape as a tuple of Python ints, accepting every form ``jax.nn.initializers`` take.

    An int (``5`` means ``(5,)``, as ``jax.nn.initializers.zeros(key, 5)``), a numpy integer, a
    0-d integer array, a list or tuple of such, or a 1-D integer numpy/jax array. Refused with a
    message naming ``api``: floats (even integral ones such as ``4.0``, as in jax), strings,
    bools, ``None``, nested sequences, traced values (``TypeError``, jax's type) and negative
    dimensions (:class:`ShapeError`, a ``TypeError`` as in jax and a ``ValueError``). Bools
    are refused although jax reads ``True`` as 1: a bool in a shape is always a slip.
    """
    fix = "Pass a tuple of ints such as `(64, 32)`, or an int such as `5` for `(5,)`."
    if isinstance(shape, jax.core.Tracer) or (
        isinstance(shape, (list, tuple)) and any(isinstance(d, jax.core.Tracer) for d in shape)
    ):
        raise TypeError(
            f"`{api}` needs a concrete `shape`; got a traced value ({shape!r}). Shapes are "
            f"static: compute them from `.shape` or pass them as static arguments of `jit`."
        )
    if isinstance(shape, (str, bytes)):
        raise TypeError(
            f"`{api}` needs `shape` to be an int or a sequence of ints; got {shape!r} of type "
            f"{type(shape).__name__}. {fix}"
        )
    if _is_int_like(shape) or isinstance(shape, (bool, np.bool_)):
        dims: Sequence[Any] = (shape,)
    elif isinstance(shape, (np.ndarray, jax.Array)):
        if shape.ndim != 1:
            raise TypeError(
                f"`{api}` needs `shape` to be an int or a 1-D sequence of ints; got an array of "
                f"shape {shape.shape} and dtype {shape.dtype}. {fix}"
            )
        dims = list(np.asarray(shape))
    elif isinstance(shape, Sequence):
        dims = shape
    else:
        raise TypeError(
            f"`{api}` needs `shape` to be an int or a sequence of ints; got {shape!r} of type "
            f"{type(shape).__name__}. {fix}"
        )
    out = []
    for d in dims:
        if isinstance(d, (bool, np.bool_)) or not _is_int_like(d):
            shown = shape if isinstance(shape, (bool, np.bool_)) else _show(dims)
            raise TypeError(
                f"`{api}` needs `shape` to hold ints; got {shown!r}, whose entry {_plain(d)!r} "
                f"is a {type(d).__name__}. "
                + (
                    f"Use `{int(d)}` if that is the size you mean."
                    if isinstance(d, (float, np.floating)) and float(d).is_integer()
                    else "Convert each dimension with `int(...)`."
                )
            )
        out.append(operator.index(d))
    if any(d < 0 for d in out):
        raise ShapeError(
            f"`{api}` needs non-negative dimensions in `shape`; got shape {tuple(out)!r}. "
            f"Every dimension must be an int >= 0."
        )
    return tuple(out)


def _is_int_like(d: Any) -> bool:
    """A Python/numpy int or a concrete 0-d integer array (what ``operator.index`` takes)."""
    if isinstance(d, (numbers.Integral, np.integer)):
        return True
    if isinstance(d, (np.ndarray, jax.Array)) and not isinstance(d, jax.core.Tracer):
        return d.ndim == 0 and np.issubdtype(d.dtype, np.integer)
    return False


def _show(dims: Sequence[Any]) -> Any:
    try:
        return tuple(_plain(d) for d in dims)
    except TypeError:  # pragma: no cover - an unusual sequence
        return dims


def _plain(d: Any) -> Any:
    """A numpy scalar as the Python number it holds (for messages: ``4.0``, not
    ``np.float64(4.0)``)."""
    return d.item() if isinstance(d, np.generic) else d


@functools.lru_cache(maxsize=8)
def raw_key_shape(impl_name: str) -> tuple[int, ...]:
    """The key-data shape of the default PRNG implementation (``(2,)`` for threefry)."""
    del impl_name  # the cache key: the shape follows the configured implementation
    return tuple(jax.eval_shape(lambda: jax.random.key_data(jax.random.key(0))).shape)


def check_key(api: str, key: Any) -> jax.Array:
    """Accepts a typed key (``jax.random.key``) or a raw uint32 key (``jax.random.PRNGKey``).

    As in ``jax.nn.initializers``: anything that is not a key is a ``TypeError`` (an int, a
    float array, a uint32 array of the wrong length); a batch of keys is a :class:`PRNGKeyError`
    (a ``ValueError`` as in jax, and a ``TypeError``).
    """
    fix = "Pass `jax.random.key(0)` (or a key split from one)."
    if not isinstance(key, (jax.Array, np.ndarray)):
        raise TypeError(
            f"`{api}` needs a JAX PRNG key as its first argument; got {key!r} of type "
            f"{type(key).__name__}. {fix}"
        )
    dt = key.dtype
    if jax.dtypes.issubdtype(dt, jax.dtypes.prng_key):
        if key.shape != ():
            raise PRNGKeyError(
                f"`{api}` needs a single PRNG key; got an array of keys of shape {key.shape}. "
                f"Use `jax.vmap` to initialise with many keys."
            )
        return key
    raw = raw_key_shape(str(jax.config.jax_default_prng_impl))
    if dt == np.uint32 and key.shape == raw:
        return key
    if dt == np.uint32 and key.ndim > len(raw) and key.shape[-len(raw) :] == raw:
        raise PRNGKeyError(
            f"`{api}` needs a single PRNG key; got an array of raw keys of shape {key.shape}. "
            f"Use `jax.vmap` to initialise with many keys."
        )
    raise TypeError(
        f"`{api}` needs a JAX PRNG key as its first argument; got an array of dtype {dt} and "
        f"shape {key.shape} (a raw key is uint32 of shape {raw}). {fix}"
    )


def normalize_axis(api: str, name: str, axis: int, ndim: int, shape: tuple[int, ...]) -> int:
    if not -ndim <= axis < ndim:
        raise AxisError(
            f"`{api}` got `{name}={axis}`, which is out of range for shape {shape} of rank "
            f"{ndim}; valid axes are {-ndim}..{ndim - 1}."
        )
    return axis % ndim
