"""µP learning rates: per-leaf multipliers for Adam and SGD (:func:`lr_multipliers`) and the optax
transformations that apply them (:func:`scale_by_mup`, :func:`adam`)."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import optax

from jinit._core._checks import check_choice, check_real
from jinit._core._paths import map_named
from jinit.mup._widths import width_info

# ---------------------------------------------------------------------------------------------
# Optimiser
# ---------------------------------------------------------------------------------------------


def lr_multipliers(
    params: Any,
    base_params: Any,
    optimizer: str = "adam",
    *,
    delta_params: Any = None,
    in_axis: int | Sequence[int] = -2,
    out_axis: int | Sequence[int] = -1,
    axes: Sequence[tuple[str, tuple[Any, Any]]] = (),
) -> dict[str, float]:
    r"""Per-parameter learning-rate multipliers of µP (module table), by path.

    Adam (scale-invariant updates): hidden and readout weights :math:`1/m_{in}`, everything else
    1 (``mup.optim.MuAdam`` + ``MuReadout``; Tensor Programs V Table 3). SGD: input weights and
    vectors :math:`m_{out}`, hidden :math:`m_{out}/m_{in}`, readout :math:`1/m_{in}`
    (``mup.optim.MuSGD``; Table 3).

    Args:
      params: the tree at target width.
      base_params: the tree at base width.
      optimizer: ``"adam"`` (also right for AdamW, Adafactor-like, Lion, sign-based updates) or
        ``"sgd"`` (also momentum SGD).
      delta_params, in_axis, out_axis, axes: as in :func:`width_info`.

    Returns:
      ``{path: multiplier}``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jinit import mup
      >>> def mlp(n):
      ...     return {"in": jnp.zeros((8, n)), "h": jnp.zeros((n, n)), "out": jnp.zeros((n, 10))}
      >>> mup.lr_multipliers(mlp(256), mlp(64), "adam")
      {'h': 0.25, 'in': 1.0, 'out': 0.25}
      >>> mup.lr_multipliers(mlp(256), mlp(64), "sgd")
      {'h': 1.0, 'in': 4.0, 'out': 0.25}
    """
    check_choice("jinit.mup.lr_multipliers", "optimizer", optimizer, ("adam", "sgd"))
    info = width_info(
        params,
        base_params,
        delta_params=delta_params,
        in_axis=in_axis,
        out_axis=out_axis,
        axes=axes,
    )
    return {p: i.lr_multiplier(optimizer) for p, i in info.items()}


def _check_mult(api: str, path: str, value: Any) -> Any:
    """A positive real multiplier, or a traced scalar (multipliers passed through ``jit``)."""
    if isinstance(value, jax.core.Tracer) and jnp.ndim(value) == 0:
        return value
    return check_real(api, f"multipliers[{path!r}]", value, positive=True)


def scale_by_mup(multipliers: Mapping[str, float]) -> optax.GradientTransformation:
    r"""Multiplies each update by its parameter's µP learning-rate multiplier.

    Chain it after the optimiser: ``optax.chain(optax.adam(lr), scale_by_mup(m))`` gives every
    parameter the learning rate ``lr * m[path]``. With ``optax.adamw`` the decoupled weight decay
    is scaled too (``mup``'s ``MuAdamW(decoupled_wd=True)`` behaviour).

    Args:
      multipliers: ``{path: multiplier}``, e.g. from :func:`lr_multipliers`; the paths must be
        those of the updates (= of the parameters).

    Returns:
      A stateless ``optax.GradientTransformation``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jinit import mup
      >>> tx = mup.scale_by_mup({"a": 0.5, "b": 1.0})
      >>> u, _ = tx.update({"a": jnp.ones(2), "b": jnp.ones(2)}, tx.init(None))
      >>> u["a"].tolist(), u["b"].tolist()
      ([0.5, 0.5], [1.0, 1.0])
    """
    api = "jinit.mup.scale_by_mup"
    if not isinstance(multipliers, Mapping):
        raise TypeError(
            f"`{api}` needs `multipliers` to be a mapping path -> float; got "
            f"{type(multipliers).__name__}. Use `jinit.mup.lr_multipliers(params, base_params)`."
        )
    bad_keys = [p for p in multipliers if not isinstance(p, str)]
    if bad_keys:
        raise TypeError(
            f"`{api}` needs `multipliers` keyed by '/'-joined parameter paths (str); got the keys "
            f"{bad_keys[:5]}. Use `jinit.mup.lr_multipliers(params, base_params)`."
        )
    mults = {p: _check_mult(api, p, v) for p, v in multipliers.items()}

    def init_fn(params):
        del params
        return optax.EmptyState()

    def update_fn(updates, state, params=None):
        del params

        def scale(path, u):
            if path not in mults:
                raise ValueError(
                    f"`{api}` has no multiplier for parameter {path!r} (it knows "
                    f"{list(mults)[:5]}...). Compute the multipliers from the same parameter tree."
                )
            return u * jnp.asarray(mults[path], u.dtype)

        return map_named(scale, updates), state

    return optax.GradientTransformation(init_fn, update_fn)


def _check_lr(api: str, learning_rate: Any) -> Any:
    """A finite learning rate > 0, or an optax schedule (a callable ``step -> lr``)."""
    if callable(learning_rate):
        return learning_rate
    if isinstance(learning_rate, jax.core.Tracer) and jnp.ndim(learning_rate) == 0:
        return learning_rate
    return check_real(api, "learning_rate", learning_rate, positive=True)


# Hyper-parameters of optax.adam / optax.sgd: (low, high, high included); None: any finite value.
_OPT_RANGES: dict[str, tuple[float, float, bool]] = {
    "b1": (0.0, 1.0, False),
    "b2": (0.0, 1.0, False),
    "eps": (0.0, math.inf, True),
    "eps_root": (0.0, math.inf, True),
    "momentum": (0.0, math.inf, True),
}


def _check_opt_kwargs(api: str, make: Callable[..., Any], kwargs: Mapping[str, Any]) -> None:
    """Unknown keyword arguments and out-of-range Adam/SGD hyper-parameters, before any work."""

    known = [n for n in inspect.signature(make).parameters if n != "learning_rate"]
    for name, value in kwargs.items():
        if name not in known:
            raise TypeError(
                f"`{api}` got the unexpected keyword argument {name!r}, which "
                f"`optax.{make.__name__}` does not take; it takes {known}."
            )
        if name not in _OPT_RANGES or (name == "momentum" and value is None):
            continue
        if isinstance(value, jax.core.Tracer):
            continue
        lo, hi, hi_ok = _OPT_RANGES[name]
        x = check_real(api, name, value, nonneg=True)
        if not (lo <= x < hi or (hi_ok and x == hi)):
            raise ValueError(
                f"`{api}` needs `{name}` in [{lo:g}, {hi:g}); got {x!r}. Adam's decay rates are "
                f"in [0, 1), e.g. b1=0.9, b2=0.999."
            )


def adam(
    learning_rate: float | optax.Schedule,
    params: Any,
    base_params: Any,
    *,
    delta_params: Any = None,
    in_axis: int | Sequence[int] = -2,
    out_axis: int | Sequence[int] = -1,
    axes: Sequence[tuple[str, tuple[Any, Any]]] = (),
    **adam_kwargs: Any,
) -> optax.GradientTransformation:
    """µP Adam: ``optax.adam(learning_rate, **adam_kwargs)`` then :func:`scale_by_mup`.

    ``learning_rate`` is the one tuned at base width; hidden and readout weights get
    ``learning_rate / m_in`` (Tensor Programs V Table 3, ``mup.MuAdam``).

    Examples:
      >>> import jax.numpy as jnp, optax
      >>> from jinit import mup
      >>> p = {"h": jnp.ones((128, 128)), "b": jnp.ones(128)}
      >>> tx = mup.adam(1e-2, p, {"h": jnp.ones((32, 32)), "b": jnp.ones(32)})
      >>> u, _ = tx.update(p, tx.init(p), p)
      >>> float(u["h"][0, 0]), float(u["b"][0])
      (-0.0025, -0.01)
    """
    api = "jinit.mup.adam"
    learning_rate = _check_lr(api, learning_rate)
    _check_opt_kwargs(api, optax.adam, adam_kwargs)
    tx = optax.adam(learning_rate, **adam_kwargs)
    m = lr_multipliers(
        params,
        base_params,
        "adam",
        delta_params=delta_params,
        in_axis=in_axis,
        out_axis=out_axis,
        axes=axes,
    )
    return optax.chain(tx, scale_by_mup(m))


def sgd(
    learning_rate: float | optax.Schedule,
    params: Any,
    base_params: Any,
    *,
    delta_params: Any = None,
    in_axis: int | Sequence[int] = -2,
    out_axis: int | Sequence[int] = -1,
    axes: Sequence[tuple[str, tuple[Any, Any]]] = (),
    **sgd_kwargs: Any,
) -> optax.GradientTransformation:
    """µP SGD: ``optax.sgd(learning_rate, **sgd_kwargs)`` then :func:`scale_by_mup`.

    Multipliers: input weights and vectors ``m_out``, hidden ``m_out / m_in``, readout
    ``1 / m_in`` (Tensor Programs V Table 3, ``mup.MuSGD``).

    Examples:
      >>> import jax.numpy as jnp, optax
      >>> from jinit import mup
      >>> p = {"out": jnp.ones((128, 10)), "b": jnp.ones(128)}
      >>> tx = mup.sgd(0.1, p, {"out": jnp.ones((32, 10)), "b": jnp.ones(32)})
      >>> u, _ = tx.update(p, tx.init(p), p)
      >>> float(u["out"][0, 0]), float(u["b"][0])
      (-0.025, -0.4)
    """
    api = "jinit.mup.sgd"
    learning_rate = _check_lr(api, learning_rate)
    _check_opt_kwargs(api, optax.sgd, sgd_kwargs)
    tx = optax.sgd(learning_rate, **sgd_kwargs)
    m = lr_multipliers(
        params,
        base_params,
        "sgd",
        delta_params=delta_params,
        in_axis=in_axis,
        out_axis=out_axis,
        axes=axes,
    )
    return optax.chain(tx, scale_by_mup(m))
