"""µP initialisation: the per-kind variance rules on top of the user's standard-parametrisation
rules (:func:`rules`, :func:`init`, :class:`MupScaled`, :func:`scaled`)."""

from __future__ import annotations

import dataclasses
import fnmatch
import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from jinit._core._checks import check_choice, check_key, check_real
from jinit._core._paths import map_named
from jinit.initializers._base import Initializer
from jinit.initializers._basic import zeros
from jinit.laws import _laws as laws
from jinit.mup._widths import DEFAULT_SP_RULES, WidthInfo, shape_of, shaped_leaves, width_info
from jinit.trees._draw import draw_leaf as _draw_leaf
from jinit.trees._leaf_checks import draw_dtype, is_float_dtype
from jinit.trees._rules import CheckedRule, LeafInfo, glob_escape, path_key

# ---------------------------------------------------------------------------------------------
# Initialisation
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, repr=False)
class MupScaled(Initializer):
    """``factor * init(key, shape, dtype)``; see :func:`scaled`."""

    init: Initializer
    factor: float

    api: ClassVar[str] = "mup.scaled"
    family: ClassVar[str] = "recipe"
    supports_complex: ClassVar[bool] = True

    def _sample(self, key, shape, dtype):
        return (self.init(key, shape, dtype) * jnp.asarray(self.factor, dtype)).astype(dtype)

    def _law(self, shape, dtype):
        inner = laws.law(self.init, shape, dtype)
        try:
            return inner.scaled(self.factor)
        except NotImplementedError:
            raise NotImplementedError(
                f"`jinit.mup.scaled` has no closed-form law for a scaled {type(inner).__name__}."
            ) from None


def scaled(init: Initializer, factor: float) -> MupScaled:
    r"""Builds the initialiser :math:`c\,W`, :math:`W \sim` ``init``: µP's width rescaling.

    Args:
      init: a jinit initialiser.
      factor: the multiplier :math:`c` (standard deviation ratio), finite.

    Returns:
      An initialiser whose law is ``init``'s scaled by ``factor``.

    Examples:
      >>> import jinit
      >>> from jinit import mup
      >>> lw = jinit.law(mup.scaled(jinit.normal(0.02), 0.5), (4, 4))
      >>> round(lw.std, 6)
      0.01
    """
    if not isinstance(init, Initializer):
        raise TypeError(
            f"`jinit.mup.scaled` needs `init` to be a jinit initialiser; got {init!r}. Use the "
            f"jinit equivalent of a `jax.nn.initializers` function."
        )
    return MupScaled(init, check_real("jinit.mup.scaled", "factor", factor))


def check_sp_rules(api: str, sp_rules: Any) -> tuple[tuple[str, Initializer], ...]:
    hint = (
        "Pass a sequence of (glob pattern, jinit initialiser) pairs such as "
        "`[('*bias', jinit.zeros), ('*', jinit.he_normal())]`."
    )
    if isinstance(sp_rules, str | Mapping) or not isinstance(sp_rules, Sequence):
        raise TypeError(
            f"`{api}` needs `sp_rules` to be a sequence of pairs; got {sp_rules!r}. {hint}"
        )
    out = []
    for r in sp_rules:
        if not (isinstance(r, tuple | list) and len(r) == 2 and isinstance(r[0], str)):
            raise TypeError(f"`{api}` got the rule {r!r} in `sp_rules`. {hint}")
        if not isinstance(r[1], Initializer):
            raise TypeError(
                f"`{api}` needs jinit initialisers in `sp_rules` (their exact laws give the µP "
                f"rescaling); got {r[1]!r} for pattern {r[0]!r}. {hint}"
            )
        out.append((r[0], r[1]))
    return tuple(out)


def sp_init(api: str, path: str, sp_rules) -> Initializer:
    for pattern, ini in sp_rules:
        if fnmatch.fnmatchcase(path, pattern):
            return ini
    raise ValueError(
        f"`{api}`: no rule of `sp_rules` matches parameter {path!r} (patterns: "
        f"{[p for p, _ in sp_rules]}). Add a catch-all rule such as `('*', jinit.lecun_normal())`."
    )


def _variance(api: str, ini: Initializer, shape, dtype, path: str) -> float:
    try:
        with jax.ensure_compile_time_eval():  # `init` may run under jit/vmap
            return float(laws.law(ini, shape, dtype).variance)
    except NotImplementedError as e:
        raise ValueError(
            f"`{api}`: {ini!r} (for {path!r}) has no closed-form variance, which µP needs to "
            f"rescale it with width. Use a variance-scaling or normal/uniform initialiser there."
        ) from e


def mup_factor(api: str, info: WidthInfo, sp: Initializer, dtype, readout: str) -> float:
    """The std multiplier turning the SP initialiser into the µP one (0 for a zero readout)."""
    if info.kind == "output" and readout == "zero":
        return 0.0
    v, vb = (_variance(api, sp, s, dtype, info.path) for s in (info.shape, info.base_shape))
    if v == 0.0:
        return 1.0  # deterministic initialisers (zeros, ones, identity) do not scale with width
    c = math.sqrt(vb / v / info.fan_in_mult**info.init_exponent)
    return 1.0 if abs(c - 1.0) < 1e-12 else c


def _mup_initializer(
    api: str, info: WidthInfo, sp: Initializer, dtype, readout: str
) -> Initializer:
    c = mup_factor(api, info, sp, dtype, readout)
    return zeros if c == 0.0 else sp if c == 1.0 else scaled(sp, c)


def rules(
    params: Any,
    base_params: Any,
    *,
    sp_rules: Sequence[tuple[str, Initializer]] = DEFAULT_SP_RULES,
    readout: str = "zero",
    delta_params: Any = None,
    in_axis: int | Sequence[int] = -2,
    out_axis: int | Sequence[int] = -1,
    axes: Sequence[tuple[str, tuple[Any, Any]]] = (),
) -> list[tuple[str, Initializer]]:
    r"""µP initialisation of a parameter tree, as jinit rules (one per parameter).

    ``sp_rules`` is the standard parametrisation one would use at base width; each parameter's
    µP initialiser is its SP initialiser rescaled (module table) so that its variance is
    :math:`\mathrm{Var}_{SP}(\text{base shape}) \cdot m_{in}^{-p}` with :math:`p = 1` for hidden
    weights, :math:`p = 0` for input weights and vectors, and for the readout either zeros
    (``readout="zero"``, the zero output-layer initialisation Tensor Programs V recommends, and
    ``MuReadout(readout_zero_init=True)``) or :math:`p = 2` (``readout="scaled"``, Table 3's
    :math:`1/\mathrm{fan\_in}^2`).
    Deterministic initialisers (zeros, ones, identity) are kept as they are.

    Args:
      params: the tree at target width (arrays or ``jax.ShapeDtypeStruct``).
      base_params: the tree at base width.
      sp_rules: ``(glob pattern, initialiser)`` pairs, first match wins (see
        :data:`DEFAULT_SP_RULES`).
      readout: ``"zero"`` or ``"scaled"``.
      delta_params, in_axis, out_axis, axes: as in :func:`width_info`.

    Returns:
      ``[(pattern, initialiser), ...]`` with one exact (glob-escaped) path per parameter, in tree
      order, ready for ``jinit.reinit(params, key, rules)``; leaves that are not floating point
      (step counters, RNG keys) get ``None``, which keeps them as they are.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jinit
      >>> from jinit import mup
      >>> def mlp(n):
      ...     return {"h": {"kernel": jnp.zeros((n, n))}, "out": {"kernel": jnp.zeros((n, 10))}}
      >>> r = mup.rules(mlp(256), mlp(64), sp_rules=[("*", jinit.normal(0.02))])
      >>> r[0]
      ('h/kernel', jinit.mup.scaled(init=jinit.normal(stddev=0.02), factor=0.5))
      >>> r[1]
      ('out/kernel', jinit.zeros)
    """
    api = "jinit.mup.rules"
    check_choice(api, "readout", readout, ("zero", "scaled"))
    sp_rules = check_sp_rules(api, sp_rules)
    info = width_info(
        params,
        base_params,
        delta_params=delta_params,
        in_axis=in_axis,
        out_axis=out_axis,
        axes=axes,
    )
    dtypes = {p: d for p, _, d in shaped_leaves(api, params)}
    out: list[tuple[str, Initializer | None]] = []
    for p, i in info.items():
        if not is_float_dtype(dtypes[p]):  # counters, RNG keys: not weights, kept
            out.append((glob_escape(p), None))
            continue
        sp = sp_init(api, p, sp_rules)
        ini = _mup_initializer(api, i, sp, draw_dtype(dtypes[p]), readout)
        out.append((glob_escape(p), ini))
    return out


def leaf_key(key: jax.Array, path: str) -> jax.Array:
    """The per-leaf key of :func:`jinit.reinit` (a stable hash of the path folded into ``key``)."""
    return path_key(key, path)


def init(
    params: Any,
    base_params: Any,
    key: jax.Array,
    *,
    sp_rules: Sequence[tuple[str, Initializer]] = DEFAULT_SP_RULES,
    readout: str = "zero",
    delta_params: Any = None,
    in_axis: int | Sequence[int] = -2,
    out_axis: int | Sequence[int] = -1,
    axes: Sequence[tuple[str, tuple[Any, Any]]] = (),
) -> Any:
    r"""Re-initialises ``params`` under µP (the initialisers of :func:`rules`).

    Every leaf gets the key ``jinit.path_key(key, path)``, so a leaf's value depends only on
    ``key`` and its path, and ``init`` equals ``jinit.reinit(params, key, rules(...))``; dtypes
    (exactly, as :func:`jinit.reinit` keeps them), non-float leaves and ``nnx.Variable`` boxes
    are kept. ``params`` may hold
    ``jax.ShapeDtypeStruct`` leaves (``jax.eval_shape`` output): the model is then never built
    at full width with its default initialisers.

    Args:
      params: the tree at target width.
      base_params: the tree at base width.
      key: a PRNG key.
      sp_rules, readout, delta_params, in_axis, out_axis, axes: as in :func:`rules`.

    Returns:
      A tree like ``params`` with µP values.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from jinit import mup
      >>> def mlp(n):
      ...     return {"h": {"kernel": jnp.zeros((n, n))}, "out": {"kernel": jnp.zeros((n, 10))}}
      >>> p = mup.init(mlp(1024), mlp(64), jax.random.key(0))
      >>> round(float(p["h"]["kernel"].std() * 32), 2), float(abs(p["out"]["kernel"]).max())
      (1.0, 0.0)
    """
    key = check_key("jinit.mup.init", key)
    r = rules(
        params,
        base_params,
        sp_rules=sp_rules,
        readout=readout,
        delta_params=delta_params,
        in_axis=in_axis,
        out_axis=out_axis,
        axes=axes,
    )
    leaves = shaped_leaves("jinit.mup.init", params)
    by_path = {
        p: (i, pattern, ini)
        for i, ((pattern, ini), (p, _, _)) in enumerate(zip(r, leaves, strict=True))
    }
    narrowed = []

    def draw(p: str, x: Any) -> Any:
        i, pattern, ini = by_path[p]
        if ini is None:
            return x
        info = LeafInfo(p, shape_of(x), draw_dtype(x.dtype), x, {})
        if info.dtype != np.dtype(x.dtype):
            narrowed.append(f"{p} ({np.dtype(x.dtype).name})")
        rule = CheckedRule(i, pattern, ini, lambda _: True)
        return _draw_leaf("jinit.mup.init", rule, leaf_key(key, p), info)

    out = map_named(draw, params)
    if narrowed:
        warnings.warn(
            f"`jinit.mup.init`: {', '.join(narrowed[:5])} have a 64-bit dtype while "
            f"jax_enable_x64 is off: drawn in 32 bits and stored in their own 64-bit dtype. Run "
            f'`jax.config.update("jax_enable_x64", True)` for 64-bit draws.',
            UserWarning,
            stacklevel=2,
        )
    return out
