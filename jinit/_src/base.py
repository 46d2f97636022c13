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

import dataclasses
import difflib
import math
import numbers
from collections.abc import Sequence
from typing import Any, ClassVar, TypeAlias

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

PRNGKey: TypeAlias = jax.Array
Shape: TypeAlias = Sequence[int]
DTypeLike: TypeAlias = Any
OutSharding: TypeAlias = NamedSharding | PartitionSpec | None
Axes: TypeAlias = int | Sequence[int]


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
    return _inexact_dtype(api, dtype, allow_complex=allow_complex)


def _inexact_dtype(api: str, dtype: Any, *, allow_complex: bool) -> np.dtype:
    try:
        dt = np.dtype(jnp.dtype(dtype))
    except TypeError as e:
        raise TypeError(
            f"`{api}` got dtype {dtype!r}, which is not a dtype. Pass e.g. `jnp.float32`."
        ) from e
    if jnp.issubdtype(dt, jnp.floating):
        return dt
    if jnp.issubdtype(dt, jnp.complexfloating):
        if allow_complex:
            return dt
        raise TypeError(
            f"`{api}` is defined for real floating dtypes only; got dtype {dt.name}. Pass a real "
            f"dtype such as float32, or an initialiser whose law covers complex numbers "
            f"(`normal`, `variance_scaling`, `orthogonal`)."
        )
    raise TypeError(
        f"`{api}` draws real-valued weights, so it needs a floating dtype (bfloat16, float16, "
        f"float32, float64{', complex64, complex128' if allow_complex else ''}); got dtype "
        f"{dt.name}. Initialise in a float dtype and cast afterwards if you really need {dt.name}."
    )


# ---------------------------------------------------------------------------------------------
# Validation of call arguments
# ---------------------------------------------------------------------------------------------


def canonical_shape(api: str, shape: Any) -> tuple[int, ...]:
    if isinstance(shape, (numbers.Integral, np.integer)) and not isinstance(shape, bool):
        raise TypeError(
            f"`{api}` needs `shape` to be a sequence of ints; got the int {shape!r}. "
            f"Pass `({int(shape)},)`."
        )
    if not isinstance(shape, (Sequence, np.ndarray)) or isinstance(shape, str):
        raise TypeError(
            f"`{api}` needs `shape` to be a sequence of ints; got {shape!r} of type "
            f"{type(shape).__name__}. Pass a tuple such as `(64, 32)`."
        )
    out = []
    for d in shape:
        if isinstance(d, (bool, np.bool_)) or not isinstance(d, (numbers.Integral, np.integer)):
            raise TypeError(
                f"`{api}` needs `shape` to hold ints; got {tuple(shape)!r}, whose entry {d!r} is "
                f"a {type(d).__name__}. Convert each dimension with `int(...)`."
            )
        if d < 0:
            raise ValueError(
                f"`{api}` needs non-negative dimensions in `shape`; got shape {tuple(shape)!r}. "
                f"Every dimension must be an int >= 0."
            )
        out.append(int(d))
    return tuple(out)


def check_key(api: str, key: Any) -> jax.Array:
    """Accepts a typed key (``jax.random.key``) or a raw uint32 key (``jax.random.PRNGKey``)."""
    if not isinstance(key, (jax.Array, np.ndarray)):
        raise TypeError(
            f"`{api}` needs a JAX PRNG key as its first argument; got {key!r} of type "
            f"{type(key).__name__}. Pass `jax.random.key(0)` (or a key split from one)."
        )
    dt = key.dtype
    if jax.dtypes.issubdtype(dt, jax.dtypes.prng_key):
        if key.shape != ():
            raise TypeError(
                f"`{api}` needs a single PRNG key; got an array of keys of shape {key.shape}. "
                f"Use `jax.vmap` to initialise with many keys."
            )
        return key
    if dt == np.uint32 and key.ndim == 1 and key.shape[0] in (2, 4):
        return key
    raise TypeError(
        f"`{api}` needs a JAX PRNG key as its first argument; got an array of dtype {dt} and "
        f"shape {key.shape}. Pass `jax.random.key(0)` (or a key split from one)."
    )


def normalize_axis(api: str, name: str, axis: int, ndim: int, shape: tuple[int, ...]) -> int:
    if not -ndim <= axis < ndim:
        raise ValueError(
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
    """
    if out_sharding is None:
        return x
    sharding = out_sharding
    if isinstance(sharding, PartitionSpec):
        mesh = jax.sharding.get_abstract_mesh()
        if mesh is None or mesh.empty:
            raise ValueError(
                f"`{api}` got `out_sharding={sharding}`, which is a PartitionSpec but no mesh is "
                f"set. Use `with jax.set_mesh(mesh):` or pass a `NamedSharding(mesh, spec)`."
            )
        if isinstance(x, jax.core.Tracer):
            if _has_explicit_axes(mesh):
                return jax.sharding.reshard(x, sharding)
            return jax.lax.with_sharding_constraint(x, sharding)
        concrete = jax.sharding.get_mesh()
        sharding = NamedSharding(concrete, sharding)
    if not isinstance(sharding, jax.sharding.Sharding):
        raise TypeError(
            f"`{api}` needs `out_sharding` to be a NamedSharding, a PartitionSpec or None; got "
            f"{sharding!r}. Pass e.g. `NamedSharding(mesh, PartitionSpec('x'))`."
        )
    if isinstance(x, jax.core.Tracer):
        if isinstance(sharding, NamedSharding) and _has_explicit_axes(sharding.mesh):
            return jax.sharding.reshard(x, sharding)
        return jax.lax.with_sharding_constraint(x, sharding)
    return jax.device_put(x, sharding)


def _has_explicit_axes(mesh) -> bool:
    """Whether a mesh has Explicit axes (then ``reshard``; Auto axes take a sharding constraint)."""
    return any(t == jax.sharding.AxisType.Explicit for t in mesh.axis_types)


# ---------------------------------------------------------------------------------------------
# The base class
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Initializer:
    """Base of every jinit initialiser: ``init(key, shape, dtype=None, out_sharding=None)``.

    Subclasses are frozen dataclasses whose fields are hyper-parameters. They implement
    :meth:`_sample` (valid key, canonical shape of non-zero size, resolved dtype) and
    :meth:`law`. Everything common (argument checks, empty shapes, ``out_sharding``) lives here.

    Class attributes:
      api: the public builder name, used in ``repr`` and in error messages.
      family: a catalogue family ("constant", "simple", "variance scaling", "orthogonal", ...).
      supports_complex: whether complex dtypes have a law.
      min_rank: the smallest rank the law is defined for.
    """

    api: ClassVar[str] = "initializer"
    family: ClassVar[str] = "other"
    supports_complex: ClassVar[bool] = False
    min_rank: ClassVar[int] = 0

    def __call__(
        self,
        key: PRNGKey,
        shape: Shape,
        dtype: DTypeLike | None = None,
        out_sharding: OutSharding = None,
    ) -> jax.Array:
        """Draws an array.

        Args:
          key: a PRNG key (``jax.random.key`` or ``jax.random.PRNGKey``).
          shape: the shape of the array.
          dtype: its dtype; ``None`` means the initialiser's own default dtype if it was built
            with one, else the default float dtype (float32; float64 under x64).
          out_sharding: optional ``NamedSharding`` or ``PartitionSpec`` of the result. The values
            do not depend on it.

        Returns:
          An array of ``shape`` and ``dtype`` following :meth:`law`.
        """
        key = check_key(self._label, key)
        shape, dtype = self._check_call(shape, dtype)
        if math.prod(shape) == 0:
            return place(jnp.zeros(shape, dtype), out_sharding, self._label)
        return place(self._sample(key, shape, dtype), out_sharding, self._label)

    def _check_call(self, shape: Any, dtype: Any) -> tuple[tuple[int, ...], np.dtype]:
        shape = canonical_shape(self._label, shape)
        if dtype is None:
            dtype = getattr(self, "dtype", None)
        dtype = default_float_dtype() if dtype is None else dtype
        dtype = _inexact_dtype(self._label, dtype, allow_complex=self.supports_complex)
        if len(shape) < self.min_rank:
            raise ValueError(
                f"`{self._label}` needs a shape of rank >= {self.min_rank}; got shape {shape}."
                + self._rank_hint()
            )
        self._check_shape(shape)
        return shape, dtype

    @property
    def _label(self) -> str:
        """The public name used in messages: a preset's own name, else the builder's."""
        return getattr(self, "name", "") or self.api

    def _rank_hint(self) -> str:
        return ""

    def _check_shape(self, shape: tuple[int, ...]) -> None:
        """Hook for shape checks beyond the rank (raise ValueError)."""

    def _sample(self, key: jax.Array, shape: tuple[int, ...], dtype: np.dtype) -> jax.Array:
        raise NotImplementedError

    def law(self, shape: Shape, dtype: DTypeLike | None = None):
        """The exact distribution of ``self(key, shape, dtype)``; see :mod:`jinit.laws`."""
        from jinit._src import laws

        shape, dtype = self._check_call(shape, dtype)
        if math.prod(shape) == 0:
            return laws.DeterministicLaw(np.zeros(shape, dtype), dtype=dtype)
        out = self._law(shape, dtype)
        if (
            isinstance(out, laws.ElementwiseLaw)
            and not out.is_complex
            and np.dtype(dtype).itemsize == 2
            and out.sampler is None
        ):
            # 16-bit samplers take few values: record what made the law so its exact discrete
            # version can be enumerated by the statistics (jinit._src.sampled).
            out = dataclasses.replace(out, sampler=(self, shape))
        return out

    def _law(self, shape: tuple[int, ...], dtype: np.dtype):
        raise NotImplementedError

    def __repr__(self) -> str:
        parts = []
        for f in dataclasses.fields(self):
            if not f.repr:
                continue
            v = getattr(self, f.name)
            if f.default is not dataclasses.MISSING and _same(v, f.default):
                continue
            if isinstance(v, np.dtype):
                v = f"jnp.{v.name}"
                parts.append(f"{f.name}={v}")
            else:
                parts.append(f"{f.name}={v!r}")
        return f"jinit.{self.api}({', '.join(parts)})"


def _same(a: Any, b: Any) -> bool:
    try:
        return type(a) is type(b) and a == b
    except Exception:  # pragma: no cover - exotic values
        return False
