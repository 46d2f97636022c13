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
def _raw_key_shape(impl_name: str) -> tuple[int, ...]:
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
    raw = _raw_key_shape(str(jax.config.jax_default_prng_impl))
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


# ---------------------------------------------------------------------------------------------
# Factories used as initialisers, initialisers called without arguments
# ---------------------------------------------------------------------------------------------


def _looks_like_key(x: Any) -> bool:
    """A typed PRNG key (or array of keys), or a raw uint32 key of the default implementation.

    Works on tracers too (their dtype and shape are known), so the check is the same inside
    ``jit`` and ``model.init``.
    """
    dt = getattr(x, "dtype", None)
    if dt is None or not isinstance(x, (jax.Array, np.ndarray)):
        return False
    try:
        if jax.dtypes.issubdtype(dt, jax.dtypes.prng_key):
            return True
    except TypeError:  # pragma: no cover - an exotic dtype
        return False
    raw = _raw_key_shape(str(jax.config.jax_default_prng_impl))
    return np.dtype(dt) == np.uint32 and tuple(x.shape) == raw


def _looks_like_shape(x: Any) -> bool:
    try:
        canonical_shape("", x)
    except (TypeError, ValueError):
        return False
    return True


def _init_slot(name: str) -> str:
    """The Flax argument a factory's initialiser usually goes to (for the example in messages)."""
    if "bias" in name:
        return "bias_init"
    if "embedding" in name:
        return "embedding_init"
    return "kernel_init"


def refuse_initializer_call(public: str, args: Sequence[Any], needs_args: bool) -> None:
    """Raises if a factory is being called the way an *initialiser* is called.

    ``kernel_init=jinit.he_normal`` (the factory, uncalled) makes Flax call
    ``he_normal(key, shape, dtype)``, which would otherwise fail deep inside with a message
    about ``in_axis``. ``args`` are the factory's first positional arguments: a PRNG key first
    (a typed key, or a raw uint32 key followed by a shape) means it was used as an initialiser.

    Args:
      public: the factory's public name, e.g. ``"jinit.he_normal"``.
      args: its positional arguments (at least the first two, when given).
      needs_args: whether the factory has required parameters (the example then shows ``...``).

    Raises:
      TypeError: the factory was called with a PRNG key first.
    """
    if not args or not _looks_like_key(args[0]):
        return
    typed = jax.dtypes.issubdtype(args[0].dtype, jax.dtypes.prng_key)
    if not typed and not (len(args) >= 2 and _looks_like_shape(args[1])):
        return  # a uint32 array of two entries not followed by a shape: not a key for sure
    slot = _init_slot(public.rpartition(".")[2])
    shape = (
        f" and shape {tuple(canonical_shape('', args[1]))}"
        if len(args) >= 2 and (_looks_like_shape(args[1]))
        else ""
    )
    example = f"{public}({'...' if needs_args else ''})"
    raise TypeError(
        f"`{public}` is an initialiser factory: call it, e.g. `{slot}={example}`. It was called "
        f"the way an initialiser is called, with a PRNG key{shape}, which happens when the "
        f"factory itself is passed (e.g. `{slot}={public}`) and Flax calls it as "
        f"`{slot}(key, shape, dtype)`."
    )


def factory(fn: Any) -> Any:
    """Decorates a public initialiser factory with :func:`refuse_initializer_call`.

    The wrapper keeps ``fn``'s name, docstring and signature (``inspect.signature`` follows
    ``__wrapped__``). The public name is ``jinit.torch.<name>`` for the factories of
    ``jinit.torch`` and ``jinit.<name>`` otherwise, read when the error is raised so a
    renamed wrapper reports its new name.
    """
    import inspect

    needs_args = any(
        p.default is inspect.Parameter.empty
        and p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        for p in inspect.signature(fn).parameters.values()
    )
    prefix = "jinit.torch." if fn.__module__.startswith("jinit.torch") else "jinit."

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if args:
            refuse_initializer_call(prefix + wrapper.__name__, args[:2], needs_args=needs_args)
        return fn(*args, **kwargs)

    return wrapper


class _Required:
    """The default of ``key`` and ``shape`` in :meth:`Initializer.__call__`: a call without them
    gets a jinit message (``jinit.zeros()`` is a slip for ``jinit.zeros``) instead of Python's
    bare "missing 2 required positional arguments". The public signature still shows them as
    required (see ``_PROTOCOL``)."""

    def __repr__(self) -> str:
        return "<required>"


REQUIRED: Any = _Required()


def protocol_call(self, key: PRNGKey, shape: Shape, dtype=None, out_sharding=None):  # noqa: ANN202
    """The ``jax.nn.initializers.Initializer`` call signature (for ``__signature__``)."""


def missing_call_args(init: Any, key: Any, shape: Any) -> TypeError:
    label = init._label
    public = label if label.startswith("jinit.") else "jinit." + label
    missing = " and ".join(f"`{n}`" for n, v in (("key", key), ("shape", shape)) if v is REQUIRED)
    if getattr(init, "name", "") in ("zeros", "ones"):
        name = init.name
        return TypeError(
            f"`{public}` is itself an initialiser (like `jax.nn.initializers.{name}`), not a "
            f"factory: pass it uncalled, e.g. `bias_init={public}`, or call it as "
            f"`{public}(key, shape)`; got no {missing}."
        )
    return TypeError(
        f"`{public}` built an initialiser, which is called as `init(key, shape, dtype=None, "
        f"out_sharding=None)`; got no {missing}. Pass e.g. `init(jax.random.key(0), (64, 32))`, "
        f"or pass `init` uncalled where Flax expects an initialiser (`kernel_init=init`)."
    )


def normalize_axis(api: str, name: str, axis: int, ndim: int, shape: tuple[int, ...]) -> int:
    if not -ndim <= axis < ndim:
        raise AxisError(
            f"`{api}` got `{name}={axis}`, which is out of range for shape {shape} of rank "
            f"{ndim}; valid axes are {-ndim}..{ndim - 1}."
        )
    return axis % ndim


def settle(x: jax.Array) -> jax.Array:
    """Rounds ``x`` as it stands, so ``jit`` gives the same bits as an eager call.

    Under ``jit`` XLA folds scalar multipliers together: ``random.normal(k) * s`` (where
    ``random.normal`` already computes ``sqrt(2) * erfinv(u)``) becomes ``erfinv(u) *
    (sqrt(2) * s)``, which differs from the eager value in the last bit. An optimisation
    barrier on the standardised draw keeps the eager order of roundings (it is a no-op
    eagerly and composes with ``vmap`` and sharding).
    """
    return jax.lax.optimization_barrier(x)


def place(x: jax.Array, out_sharding: OutSharding, api: str = "initializer") -> jax.Array:
    """Lays ``x`` out with ``out_sharding`` (NamedSharding or PartitionSpec), eager or traced.

    The values never depend on the layout: generation is layout-free and the sharding is
    applied to the result, which XLA's SPMD partitioner propagates back into the generator so
    each device only computes its shard under ``jit``.

    The result's sharding is the one ``jax.nn.initializers`` return for the same call, eager or
    under ``jit`` (equal and equal-hashing): on a mesh with Explicit axes the spec is padded with
    ``None`` to the array's rank (``P('x')`` on a matrix gives ``P('x', None)``); on an all-Auto
    mesh (which jax's initialisers refuse, jinit accepts) it is what ``jit`` returns, trailing
    ``None`` entries dropped. ``out_sharding`` is checked first (:func:`check_out_sharding`).
    """
    if out_sharding is None:
        return x
    traced = isinstance(x, jax.core.Tracer)
    sharding = check_out_sharding(api, out_sharding, tuple(x.shape), traced=traced)
    if traced:
        if isinstance(sharding, NamedSharding):
            mesh = sharding.mesh
        elif isinstance(sharding, PartitionSpec):
            mesh = jax.sharding.get_abstract_mesh()
        else:
            mesh = None
        if mesh is not None and _has_explicit_axes(mesh):
            return jax.sharding.reshard(x, sharding)
        return jax.lax.with_sharding_constraint(x, sharding)
    return jax.device_put(x, sharding)


def check_out_sharding(
    api: str,
    out_sharding: Any,
    shape: tuple[int, ...],
    *,
    traced: bool = False,
    validate_only: bool = False,
) -> Any:
    """Validates ``out_sharding`` against ``shape`` and the mesh, and returns its canonical form.

    Returns a ``NamedSharding`` (eager, or traced with a ``NamedSharding``), a ``PartitionSpec``
    (traced with a bare spec under ``jax.set_mesh``) or any other ``jax.sharding.Sharding``
    unchanged. Raises ``TypeError`` for anything else and ``ValueError`` (jax's types) for a
    spec longer than the rank, an axis name the mesh lacks, an axis used twice, a dimension its
    mesh axes do not divide, ``P.UNCONSTRAINED`` or Auto axes on a mesh with Explicit axes, a
    ``PartitionSpec`` with no mesh set, or a ``NamedSharding`` whose mesh differs from the one
    set with ``jax.set_mesh``. With ``validate_only`` it checks what can be checked without
    knowing whether the call is traced, and returns None.
    """
    if isinstance(out_sharding, PartitionSpec):
        mesh = jax.sharding.get_abstract_mesh()
        if mesh is None or mesh.empty:
            raise ValueError(
                f"`{api}` got `out_sharding={out_sharding}`, which is a PartitionSpec but no "
                f"mesh is set. Use `with jax.set_mesh(mesh):` or pass a "
                f"`NamedSharding(mesh, spec)`."
            )
        spec = _canonical_spec(api, out_sharding, shape, mesh, traced)
        if validate_only:
            return None
        if traced:
            return spec
        concrete = jax.sharding.get_mesh()
        if concrete is None or concrete.empty or not isinstance(concrete, jax.sharding.Mesh):
            raise ValueError(
                f"`{api}` got `out_sharding={out_sharding}` under an abstract mesh only; an "
                f"eager call needs devices. Use `with jax.set_mesh(mesh):` with a concrete "
                f"`jax.make_mesh(...)` mesh, or pass a `NamedSharding(mesh, spec)`."
            )
        return NamedSharding(concrete, spec)
    if isinstance(out_sharding, NamedSharding):
        mesh = out_sharding.mesh
        context = jax.sharding.get_abstract_mesh()
        if (
            context is not None
            and not context.empty
            and mesh.abstract_mesh != context
            and not (mesh.abstract_mesh.are_all_axes_auto and context.are_all_axes_auto)
        ):
            raise ValueError(
                f"`{api}` got `out_sharding` on mesh {mesh.abstract_mesh}, but the mesh set "
                f"with `jax.set_mesh` is {context}. Build the sharding on the mesh you set."
            )
        spec = _canonical_spec(api, out_sharding.spec, shape, mesh, traced)
        if validate_only:
            return None
        if traced and _has_explicit_axes(mesh) and (context is None or context.empty):
            raise ValueError(
                f"`{api}` got `out_sharding` on a mesh with Explicit axes inside `jit` but no "
                f"mesh is set; jax needs one to reshard. Wrap the call in "
                f"`with jax.set_mesh(mesh):`."
            )
        if not traced and not isinstance(mesh, jax.sharding.Mesh):
            concrete = jax.sharding.get_mesh()
            if isinstance(concrete, jax.sharding.Mesh) and concrete.abstract_mesh == mesh:
                mesh = concrete
            else:
                raise ValueError(
                    f"`{api}` got `out_sharding` on the abstract mesh {mesh}; an eager call "
                    f"needs devices. Build the NamedSharding on a `jax.make_mesh(...)` mesh."
                )
        return NamedSharding(mesh, spec, memory_kind=out_sharding.memory_kind)
    if isinstance(out_sharding, jax.sharding.Sharding):
        return None if validate_only else out_sharding  # SingleDeviceSharding etc.: as given
    raise TypeError(
        f"`{api}` needs `out_sharding` to be a NamedSharding, a PartitionSpec or None; got "
        f"{out_sharding!r} of type {type(out_sharding).__name__}. Pass e.g. "
        f"`NamedSharding(mesh, PartitionSpec('x'))`."
    )


def _canonical_spec(
    api: str, spec: PartitionSpec, shape: tuple[int, ...], mesh: Any, traced: bool
) -> PartitionSpec:
    """Checks ``spec`` against ``shape`` and ``mesh``; pads (Explicit) or trims (Auto) it."""
    rank = len(shape)
    where = f"`out_sharding` spec {spec}"
    if len(spec) > rank:
        raise ValueError(
            f"`{api}` got {where} with {len(spec)} entries for an array of shape {shape} (rank "
            f"{rank}). Give at most one entry per dimension, e.g. `PartitionSpec('x')`."
        )
    sizes = dict(zip(mesh.axis_names, mesh.axis_sizes, strict=True))
    types = dict(zip(mesh.axis_names, mesh.axis_types, strict=True))
    explicit = _has_explicit_axes(mesh)
    unconstrained = PartitionSpec.UNCONSTRAINED
    seen: set[str] = set()
    for dim, entry in enumerate(spec):
        if entry is None:
            continue
        if entry is unconstrained:
            if explicit:
                raise ValueError(
                    f"`{api}` got {where}, which holds `P.UNCONSTRAINED`, on a mesh with "
                    f"Explicit axes. Name the axis or pass None for a replicated dimension."
                )
            continue
        names = entry if isinstance(entry, tuple) else (entry,)
        for name in names:
            if name not in sizes:
                raise ValueError(
                    f"`{api}` got {where}, which names the axis {name!r}; the mesh has axes "
                    f"{tuple(mesh.axis_names)}. Use one of those names."
                )
            if name in seen:
                raise ValueError(
                    f"`{api}` got {where}, which uses the mesh axis {name!r} twice. A mesh "
                    f"axis can shard at most one dimension."
                )
            if explicit and types[name] != jax.sharding.AxisType.Explicit:
                raise ValueError(
                    f"`{api}` got {where}, which names the {types[name]} axis {name!r} of a "
                    f"mesh with Explicit axes (jax shards only over its Explicit axes there). "
                    f"Use an Explicit axis, or make the whole mesh Auto."
                )
            seen.add(name)
        parts = math.prod(sizes[n] for n in names)
        if shape[dim] % parts:
            raise ValueError(
                f"`{api}` got {where}: dimension {dim} of shape {shape} has size {shape[dim]}, "
                f"which its mesh axes {names} (together {parts} devices) do not divide. Shard a "
                f"dimension divisible by {parts}, or pass None for that dimension."
            )
    if spec.unreduced or spec.reduced:
        return spec
    entries = list(spec)
    if explicit:
        return PartitionSpec(*entries, *([None] * (rank - len(entries))))
    if traced:
        return spec
    entries = [None if e is unconstrained else e for e in entries]
    while entries and entries[-1] is None:
        entries.pop()
    return PartitionSpec(*entries)


def _has_explicit_axes(mesh) -> bool:
    """Whether a mesh has Explicit axes (then ``reshard``; Auto axes take a sharding constraint)."""
    return any(t == jax.sharding.AxisType.Explicit for t in mesh.axis_types)
