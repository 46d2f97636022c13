"""Structured laws: :class:`DeterministicLaw` (the exact array), :class:`OrthogonalLaw` (Gram
identity plus the marginal of one entry), :class:`DeltaOrthogonalLaw` and :class:`SparseLaw`;
and :func:`law`, which asks an initialiser for its law."""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from jinit._core._checks import canonical_shape, has_law
from jinit._core._layout import as_layout, retarget
from jinit.laws._base import Law, fmt6, index_field, law_name, real_field, shape_field
from jinit.laws._elementwise import ElementwiseLaw

# ---------------------------------------------------------------------------------------------
# Structured laws
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, eq=False)
class DeterministicLaw(Law):
    """The initialiser returns exactly ``value`` (whatever the key)."""

    value: np.ndarray

    def _validate(self):
        try:
            value = np.asarray(self.value)
        except Exception:  # noqa: BLE001 - ragged or exotic input
            value = None
        if value is None or not (
            np.issubdtype(value.dtype, np.number)
            or np.issubdtype(value.dtype, np.bool_)
            or jnp.issubdtype(value.dtype, jnp.floating)
        ):
            raise TypeError(
                f"`{law_name(self)}` needs `value` to be a numeric array; got {self.value!r}. Pass "
                f"e.g. `value=np.zeros((4, 3))`."
            )
        object.__setattr__(self, "value", value)

    def _wide(self) -> np.ndarray:
        v = np.asarray(self.value)
        return v.astype(np.complex128 if np.iscomplexobj(v) else np.float64)

    def summary(self):
        uniq = np.unique(self._wide())
        if uniq.size == 1:
            return f"constant {uniq[0].item():.6g}"
        return f"deterministic array, {uniq.size} distinct values"

    @property
    def mean(self):
        return self._wide().mean().item() if self.value.size else 0.0

    @property
    def variance(self):
        return float(self._wide().var()) if self.value.size else 0.0

    kind: ClassVar[str] = "deterministic"

    @property
    def values_complex(self) -> bool:
        return bool(np.iscomplexobj(self.value))

    def scaled(self, c: float) -> DeterministicLaw:
        return DeterministicLaw((np.asarray(self.value) * c).astype(self.dtype), dtype=self.dtype)


@dataclasses.dataclass(frozen=True)
class OrthogonalLaw(Law):
    r"""Haar-distributed orthogonal (unitary for complex) matrix times ``scale``.

    The array, with ``column_axis`` moved last and reshaped to an
    :math:`n_r \times n_c` matrix :math:`M`, satisfies :math:`M^\top M = s^2 I_{n_c}` when
    :math:`n_r \ge n_c` and :math:`M M^\top = s^2 I_{n_r}` otherwise. Each entry is a coordinate
    of a uniform vector on the sphere of radius :math:`s` in dimension :math:`n=\max(n_r, n_c)`:
    mean 0, variance :math:`s^2/n`, :math:`E x^4 = 3 s^4 / (n(n+2))`
    (complex: :math:`E|x|^4 = 2 s^4/(n(n+1))`).
    """

    shape: tuple[int, ...]
    scale: float
    column_axis: int = -1
    is_complex: bool = False

    def _validate(self):
        shape = shape_field(self, min_rank=2)
        real_field(self, "scale")
        index_field(self, "column_axis", len(shape))
        if not isinstance(self.is_complex, (bool, np.bool_)):
            raise TypeError(
                f"`{law_name(self)}` needs `is_complex` to be a bool; got {self.is_complex!r}."
            )

    @property
    def n_rows(self) -> int:
        return math.prod(self.shape) // self.shape[self.column_axis]

    @property
    def n_cols(self) -> int:
        return self.shape[self.column_axis]

    def matrix(self, w: jax.Array) -> jax.Array:
        """The :math:`n_r \\times n_c` matrix the identity applies to."""
        return jnp.moveaxis(w, self.column_axis, -1).reshape(self.n_rows, self.n_cols)

    def gram(self, w: jax.Array) -> jax.Array:
        """:math:`M^H M` (tall) or :math:`M M^H` (wide); equals ``scale**2 * I``."""
        m = self.matrix(w)
        mh = jnp.conj(m).T
        return mh @ m if self.n_rows >= self.n_cols else m @ mh

    def gram_error(self, w: jax.Array) -> jax.Array:
        """Max absolute deviation of :meth:`gram` from ``scale**2 * I`` (jittable)."""
        g = self.gram(w.astype(jnp.promote_types(w.dtype, jnp.float32)))
        eye = jnp.eye(g.shape[0], dtype=g.dtype) * self.scale**2
        return jnp.max(jnp.abs(g - eye))

    @property
    def _n(self) -> int:
        return max(self.n_rows, self.n_cols)

    @property
    def mean(self):
        return 0.0

    @property
    def variance(self):
        return self.scale**2 / self._n

    @property
    def fourth_moment(self):
        n = self._n
        if self.is_complex:
            return 2 * self.scale**4 / (n * (n + 1))
        return 3 * self.scale**4 / (n * (n + 2))

    def summary(self):
        side = "columns" if self.n_rows >= self.n_cols else "rows"
        return (
            f"{fmt6(self.scale)} × Haar {'unitary' if self.is_complex else 'orthogonal'} "
            f"{self.n_rows}×{self.n_cols} (orthonormal {side})"
        )

    kind: ClassVar[str] = "orthogonal"

    @property
    def values_complex(self) -> bool:
        return bool(self.is_complex)

    def scaled(self, c: float) -> OrthogonalLaw:
        return dataclasses.replace(self, scale=self.scale * c)


@dataclasses.dataclass(frozen=True)
class DeltaOrthogonalLaw(Law):
    """Zero everywhere except the spatial ``centre``, which holds an :class:`OrthogonalLaw`."""

    shape: tuple[int, ...]
    centre: tuple[int, ...]
    inner: OrthogonalLaw

    def _validate(self):
        shape = shape_field(self, min_rank=3, max_rank=5)
        centre = self.centre
        if not (
            isinstance(centre, tuple)
            and len(centre) == len(shape) - 2
            and all(
                isinstance(c, (int, np.integer)) and 0 <= c < k
                for c, k in zip(centre, shape, strict=False)
            )
        ):
            raise ValueError(
                f"`{law_name(self)}` needs `centre` to be a spatial index of shape {shape}, one "
                f"int per spatial axis in range; got {centre!r}."
            )
        if not isinstance(self.inner, OrthogonalLaw) or tuple(self.inner.shape) != shape[-2:]:
            raise TypeError(
                f"`{law_name(self)}` needs `inner` to be an OrthogonalLaw of shape {shape[-2:]}; "
                f"got {self.inner!r}."
            )

    def centre_slice(self, w: jax.Array) -> jax.Array:
        return w[self.centre]

    def off_centre_max(self, w: jax.Array) -> jax.Array:
        """Max absolute value away from the centre (exactly 0 under the law)."""
        mask = jnp.ones(self.shape[: len(self.centre)], bool).at[self.centre].set(False)
        return jnp.max(jnp.where(mask[..., None, None], jnp.abs(w), 0))

    @property
    def mean(self):
        return 0.0

    @property
    def variance(self):
        """Variance of one entry of the whole kernel (the centre holds all the mass)."""
        return self.inner.variance * math.prod(self.shape[-2:]) / math.prod(self.shape)

    def summary(self):
        return f"zero except centre {self.centre}: {self.inner.summary()}"

    kind: ClassVar[str] = "delta"

    @property
    def values_complex(self) -> bool:
        return bool(self.inner.is_complex)


@dataclasses.dataclass(frozen=True)
class SparseLaw(Law):
    """Along ``axis`` every unit (slice) holds exactly ``zeros_per_unit`` zeros at uniformly
    random positions; the other entries are i.i.d. ``nonzero``.
    """

    shape: tuple[int, ...]
    axis: int
    zeros_per_unit: int
    nonzero: ElementwiseLaw

    def _validate(self):
        shape = shape_field(self)
        axis = index_field(self, "axis", len(shape))
        z = self.zeros_per_unit
        if isinstance(z, (bool, np.bool_)) or not isinstance(z, (numbers.Integral, np.integer)):
            raise TypeError(f"`{law_name(self)}` needs `zeros_per_unit` to be an int; got {z!r}.")
        if not 0 <= int(z) <= shape[axis]:
            raise ValueError(
                f"`{law_name(self)}` needs 0 <= `zeros_per_unit` <= shape[axis] = {shape[axis]}; "
                f"got {int(z)}."
            )
        if not isinstance(self.nonzero, ElementwiseLaw):
            raise TypeError(
                f"`{law_name(self)}` needs `nonzero` to be an element-wise law such as "
                f"`jinit.laws.Normal(0.01)`; got {self.nonzero!r}."
            )

    @property
    def fraction_zero(self) -> float:
        return self.zeros_per_unit / self.shape[self.axis]

    @property
    def mean(self):
        return (1 - self.fraction_zero) * self.nonzero.mean

    @property
    def variance(self):
        p = 1 - self.fraction_zero
        m, v = self.nonzero.mean, self.nonzero.variance
        return p * (v + abs(m) ** 2) - abs(p * m) ** 2

    def summary(self):
        return (
            f"{self.zeros_per_unit} of {self.shape[self.axis]} zeros per unit along axis "
            f"{self.axis}, rest {self.nonzero.summary()}"
        )

    kind: ClassVar[str] = "sparse"

    @property
    def values_complex(self) -> bool:
        return bool(self.nonzero.is_complex)


def rounded_to(law: Law, dtype: Any, sampler: Any) -> Law:
    """The law of a float32 draw from ``law`` rounded once to a narrow float ``dtype``.

    float8/float6/float4 weights are drawn in float32 and rounded (saturating at
    ``±finfo(dtype).max``, :func:`jinit._core._checks.round_narrow`). Element-wise laws keep their
    continuous parameters, record ``dtype`` and the ``sampler`` so the exact rounded law
    (:func:`jinit.laws._sampled.exact_atoms`) can be computed; deterministic laws hold the
    rounded array; structured laws record ``dtype`` (their identities hold up to its rounding).
    """
    dt = np.dtype(dtype)
    if isinstance(law, ElementwiseLaw):
        return dataclasses.replace(law, dtype=dt, sampler=sampler)
    if isinstance(law, DeterministicLaw):
        top = float(jnp.finfo(dt).max)
        value = np.clip(np.asarray(law.value, np.float32), -top, top).astype(dt)
        return DeterministicLaw(value, dtype=dt)
    if isinstance(law, SparseLaw):
        return dataclasses.replace(law, dtype=dt, nonzero=rounded_to(law.nonzero, dt, sampler))
    if isinstance(law, DeltaOrthogonalLaw):
        return dataclasses.replace(law, dtype=dt, inner=dataclasses.replace(law.inner, dtype=dt))
    return dataclasses.replace(law, dtype=dt)


def law(init, shape, dtype=None, *, layout=None) -> Law:
    """The exact law of ``init(key, shape, dtype)``.

    With a ``layout`` (a :class:`jinit.Layout`, e.g. from :func:`jinit.layouts`, or an einsum
    equation), the law of what the layer owning a weight of ``shape`` draws: the initialiser
    told the layout's fans (as :func:`jinit.reinit` and :func:`jinit.summary` do), called with
    the layer's call shape (the flat ``(∏in, ∏out)`` of a DenseGeneral/attention kernel).

    Args:
      init: a jinit initialiser.
      shape: the (stored) shape it will be called with.
      dtype: the dtype it will be called with (``None``: its default).
      layout: the weight's layout (optional).

    Returns:
      A :class:`Law`: element-wise (mean, variance, fourth moment, support, CDF), orthogonal
      (Gram identity), deterministic (the exact array) or sparse.

    Raises:
      TypeError: ``init`` is not a jinit initialiser (a jinit builder passed uncalled, such as
        ``jinit.he_normal``, is named: call it).
      ValueError: a layout that does not fit ``shape``.

    Examples:
      >>> import jinit
      >>> lw = jinit.law(jinit.he_uniform(), (256, 128))
      >>> round(lw.variance * 256, 12)
      2.0
      >>> q = jinit.Layout.dense_general(1, 2)  # attention query kernel (d, heads, head_dim)
      >>> round(jinit.law(jinit.he_normal(), (64, 4, 16), layout=q).std ** 2 * 64, 9)
      2.0
    """
    if not has_law(init):
        module = getattr(init, "__module__", "") or ""
        name = getattr(init, "__name__", None)
        if callable(init) and name and module.startswith("jinit"):
            raise TypeError(
                f"`jinit.law` needs an initialiser; got `jinit.{name}`, which builds one. Call "
                f"it: `jinit.{name}()`."
            )
        hint = (
            " Functions from `jax.nn.initializers` carry no law: use the jinit equivalent of "
            "the same name."
            if module.startswith("jax")
            else " Pass e.g. `jinit.he_normal()`."
        )
        raise TypeError(f"`jinit.law` needs a jinit initialiser; got {init!r}.{hint}")
    if layout is None:
        return init.law(shape, dtype)
    lay = as_layout("jinit.law", layout)
    shape = canonical_shape("jinit.law", shape)
    try:
        lay = lay.bind(shape)
    except (ValueError, IndexError) as e:
        raise ValueError(
            f"`jinit.law`: the layout {lay!r} does not fit shape {shape}: {e}"
        ) from None
    return retarget(init, lay).law(lay.call_shape(), dtype)
