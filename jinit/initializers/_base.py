"""The :class:`Initializer` base class: the call protocol every jinit initialiser follows
(argument checks, dtype and sharding handling, its law)."""

from __future__ import annotations

import dataclasses
import inspect
import math
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from jinit._core._checks import (
    DTypeLike,
    OutSharding,
    PRNGKey,
    Shape,
    canonical_shape,
    check_key,
    default_float_dtype,
    inexact_dtype,
    is_narrow,
    round_narrow,
)
from jinit._core._factory import REQUIRED, missing_call_args, protocol_call
from jinit._core._sharding import check_out_sharding, place

# ---------------------------------------------------------------------------------------------
# The base class
# ---------------------------------------------------------------------------------------------
from jinit.laws import _laws as laws


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
        key: PRNGKey = REQUIRED,
        shape: Shape = REQUIRED,
        dtype: DTypeLike | None = None,
        out_sharding: OutSharding = None,
    ) -> jax.Array:
        """Draws an array.

        Args:
          key: a PRNG key (``jax.random.key`` or ``jax.random.PRNGKey``).
          shape: the shape of the array, in any form ``jax.nn.initializers`` take: a tuple or
            list of ints, an int (``5`` is ``(5,)``), numpy integers, a 1-D integer array.
          dtype: its dtype; ``None`` means the initialiser's own default dtype if it was built
            with one, else the default float dtype (float32; float64 under x64). float8 and
            float4 weights are drawn in float32 and rounded once, saturating at the dtype's
            largest value (jax's own float8 draws are coarse or NaN); :meth:`law` then
            records the dtype and the statistics use the rounded law.
          out_sharding: optional ``NamedSharding`` or ``PartitionSpec`` of the result, checked
            against the shape and mesh before any work. The values do not depend on it; the
            result's sharding is the one ``jax.nn.initializers`` return for the same call.

        Raises:
          TypeError: a key that is not a single PRNG key, a shape that is not ints, a value
            that is not a dtype or sharding (jax's type for each).
          ValueError: a batch of keys, an integer/bool dtype (as in jax: these exceptions are
            both TypeError and ValueError, see :class:`DTypeError`, :class:`PRNGKeyError`,
            :class:`ShapeError`), or an ``out_sharding`` that does not fit the shape or mesh.

        Returns:
          An array of ``shape`` and ``dtype`` following :meth:`law`.
        """
        if key is REQUIRED or shape is REQUIRED:
            raise missing_call_args(self, key, shape)
        key = check_key(self._label, key)
        shape, dtype = self._check_call(shape, dtype)
        if out_sharding is not None:  # checked before any work
            check_out_sharding(self._label, out_sharding, shape, validate_only=True)
        if math.prod(shape) == 0:
            return place(jnp.zeros(shape, dtype), out_sharding, self._label)
        if is_narrow(dtype):
            # float8/float6/float4: drawn in float32, rounded once (see `round_narrow`)
            x = round_narrow(self._sample(key, shape, np.dtype(np.float32)), dtype)
            return place(x, out_sharding, self._label)
        return place(self._sample(key, shape, dtype), out_sharding, self._label)

    def _check_call(self, shape: Any, dtype: Any) -> tuple[tuple[int, ...], np.dtype]:
        shape = canonical_shape(self._label, shape)
        if dtype is None:
            dtype = getattr(self, "dtype", None)
        dtype = default_float_dtype() if dtype is None else dtype
        dtype = inexact_dtype(self._label, dtype, allow_complex=self.supports_complex)
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
        shape, dtype = self._check_call(shape, dtype)
        if math.prod(shape) == 0:
            return laws.DeterministicLaw(np.zeros(shape, dtype), dtype=dtype)
        if is_narrow(dtype):
            return laws.rounded_to(self._law(shape, np.dtype(np.float32)), dtype, (self, shape))
        out = self._law(shape, dtype)
        if (
            isinstance(out, laws.ElementwiseLaw)
            and not out.is_complex
            and np.dtype(dtype).itemsize == 2
            and out.sampler is None
        ):
            # 16-bit samplers take few values: record what made the law so its exact discrete
            # version can be enumerated by the statistics (jinit.laws._sampled).
            out = dataclasses.replace(out, sampler=(self, shape))
        return out

    def _law(self, shape: tuple[int, ...], dtype: np.dtype):
        raise NotImplementedError

    def __repr__(self) -> str:
        parts = []
        # keyword-only fields (options added later, such as `layout`) last, after the
        # positional hyper-parameters
        for f in sorted(dataclasses.fields(self), key=lambda f: bool(f.kw_only)):
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


def with_protocol_signature(call: Any) -> Any:
    """Gives an ``Initializer.__call__`` the jax protocol's signature (``key`` and ``shape``
    required) although its defaults are the :data:`REQUIRED` sentinel."""

    call.__signature__ = inspect.signature(protocol_call)
    return call


with_protocol_signature(Initializer.__call__)
