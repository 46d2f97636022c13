"""Checks a training sweep runs before anything compiles: logits shapes, per-role initialiser
specs, the device memory a chunk of rows needs, and the root key."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jinit._core._seeds import refuse_rbg
from jinit.sweeps._statistics import check_init_output, wrap_init_error
from jinit.sweeps._sweep_checks import (
    check_fits,
    check_seed,
    device_memory_available,
    fmt_bytes,
    host_memory_available,
)
from jinit.sweeps._train_data import METRICS, Dataset
from jinit.sweeps._train_models import MLPClassifier, draw_params, init_label

# ---------------------------------------------------------------------------------------------
# Checks run before anything compiles
# ---------------------------------------------------------------------------------------------


def describe_spec(v: Any) -> str:
    if isinstance(v, Mapping):
        return "{" + ", ".join(f"{k}: {init_label(f)}" for k, f in v.items()) + "}"
    return init_label(v)


def _cache_key(f: Any) -> tuple[str, Any]:
    """Value identity for hashable initialisers (equal builders share a compiled function)."""
    try:
        hash(f)
    except TypeError:
        return ("id", id(f))
    return ("value", f)


@dataclasses.dataclass(frozen=True, eq=False)
class RoleSpec:
    """``(role, initialiser)`` pairs, a static jit argument; ``spec["hidden"]`` in the model."""

    pairs: tuple[tuple[str, Any], ...]

    def __getitem__(self, role: str) -> Any:
        return dict(self.pairs)[role]

    def _key(self) -> tuple:
        return tuple((r, _cache_key(f)) for r, f in self.pairs)

    def __hash__(self) -> int:
        return hash(self._key())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RoleSpec):
            return False
        try:
            return bool(self._key() == other._key())
        except Exception:  # an initialiser whose == is not a bool (array fields)
            return all(a is b for (_, a), (_, b) in zip(self.pairs, other.pairs, strict=True))


def _check_logits(api: str, model: Any, params: Any, ds: Dataset) -> None:
    """The model maps a batch ``(b, ...)`` to ``(b, n_classes)`` logits (checked by tracing)."""
    x = jax.ShapeDtypeStruct((2, *ds.x_train.shape[1:]), jnp.float32)
    try:
        out = jax.eval_shape(model, params, x)
    except Exception as e:  # a user model that fails on the data's shape
        raise ValueError(
            f"`{api}`: the model fails on a batch of shape {x.shape}: {type(e).__name__}: {e}"
        ) from e
    shape = getattr(out, "shape", None)
    if shape != (2, ds.n_classes):
        raise ValueError(
            f"`{api}` needs the model to map a batch (b, ...) to logits (b, n_classes) = "
            f"(2, {ds.n_classes}); got {shape} for a batch of shape {x.shape}. Give the model "
            f"{ds.n_classes} outputs or set `Dataset.n_classes`."
        )


def _nbytes(tree: Any) -> int:
    leaves = jax.tree_util.tree_leaves(tree)
    return sum(math.prod(t.shape) * np.dtype(t.dtype).itemsize for t in leaves)


def probe_model(api: str, net: Any, label: str, spec: Any, ds: Dataset, key: jax.Array) -> int:
    """Draws ``label``'s parameters abstractly (``jax.eval_shape``), checks every initialiser of
    the built-in MLP on its real shape and the model's logits; returns the parameters' bytes."""
    if isinstance(net, MLPClassifier):
        roles = dict(spec.pairs)
        n, w = net.net, net.net.width
        shapes = [("input", (net.in_features, w))]
        shapes += [("hidden", (w, w))] if n.depth > 1 else []
        shapes += [("readout", (w, net.n_classes))] + ([("bias", (w,))] if n.bias else [])
        for role, shape in shapes:
            who = f"the {role} initialiser of {label!r}"
            part = "bias" if role == "bias" else "kernel"
            where = f"the {role} {part} of shape {shape} in the {net.describe()}"
            fn = roles[role]
            try:
                out = jax.eval_shape(lambda k, fn=fn, shape=shape: fn(k, shape), key)
            except Exception as e:
                raise wrap_init_error(api, who, where, e) from e
            dt = getattr(out, "dtype", None)
            if dt is not None and hasattr(out, "shape") and tuple(out.shape) == shape:
                if not jnp.issubdtype(dt, jnp.floating):
                    raise TypeError(
                        f"`{api}`: {who} returned dtype {np.dtype(dt).name} for {where}; "
                        f"expected a real floating dtype (the MLP trains in float32)."
                    )
                continue
            check_init_output(api, who, out, shape, jnp.float32, where)
    try:
        # The jitted drawer's own trace, which the real draws then reuse (no second trace).
        params = draw_params.eval_shape(key, model=net, spec=spec)
    except Exception as e:
        kind = TypeError if isinstance(e, TypeError) else ValueError
        raise kind(
            f"`{api}`: initialising {label!r} with the {net.describe()} failed: "
            f"{type(e).__name__}: {e}"
        ) from e
    if not jax.tree_util.tree_leaves(params):
        raise ValueError(
            f"`{api}`: the model's `init_fn(key, spec)` returned no arrays for {label!r} (got "
            f"{params!r:.80}); it must return the parameters, a pytree of arrays."
        )
    _check_logits(api, net, params, ds)
    return _nbytes(params)


def check_train_memory(
    api: str,
    net: Any,
    ds: Dataset,
    devs: list,
    param_bytes: int,
    n_rows: int,
    chunk: int,
    chunk_size: int | None,
    batch_size: int,
    n_evals: int,
) -> None:
    """Refuses a training sweep that cannot fit in memory, with the estimate and the fix."""
    # Per row: parameters, gradients and two optimiser moments; for the built-in MLP also the
    # activations saved for the backward pass of one step (depth x batch x width, x and h).
    per_row = 4 * param_bytes
    if isinstance(net, MLPClassifier):
        per_row += 2 * 4 * net.net.depth * batch_size * net.net.width
    data_bytes = sum(a.nbytes for a in (ds.x_train, ds.y_train, ds.x_test, ds.y_test))
    avail, shared = device_memory_available(devs)
    where = "host" if shared else f"{devs[0].platform} device"
    if avail is not None:
        avail = max(avail - data_bytes, 0)
    check_fits(
        api,
        per_row,
        avail,
        where,
        "one (initialiser, seed) row: parameters, gradients, optimiser state"
        + (f" and the activations of a batch of {batch_size}" if per_row > 4 * param_bytes else ""),
        "Use a smaller model or `batch_size`.",
    )
    # Host: every row's initial parameters, one chunk of stacked ones, and the curves.
    host = (n_rows + chunk) * param_bytes + n_rows * (n_evals + 1) * len(METRICS) * 4
    check_fits(
        api,
        host,
        host_memory_available(),
        "host",
        f"the initial parameters and curves of {n_rows} rows (initialiser, seed)",
        "Use fewer `seeds` or initialisers per call.",
    )
    per_call = -(-chunk // (1 if shared else len(devs))) * per_row
    fits = max(1, (avail or 0) // max(per_row, 1)) * (1 if shared else len(devs))
    check_fits(
        api,
        per_call,
        avail,
        where,
        f"{chunk} rows (initialiser, seed) per compiled call × {fmt_bytes(per_row)} each"
        + ("" if shared else f" over {len(devs)} devices"),
        f"Pass `chunk_size={fits}` or less"
        + (" (the default runs every row at once)." if chunk_size is None else "."),
    )


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def train_root_key(api: str, key: Any) -> tuple[jax.Array, Any]:
    if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
        seed = check_seed(api, "key", key)
        return jax.random.key(seed), seed
    if isinstance(key, (jax.Array, np.ndarray)):
        dt = key.dtype
        if (jax.dtypes.issubdtype(dt, jax.dtypes.prng_key) and key.shape == ()) or (
            dt == np.uint32 and key.shape in ((2,), (4,))
        ):
            typed = jax.dtypes.issubdtype(dt, jax.dtypes.prng_key)
            if typed:
                refuse_rbg(api, str(jax.random.key_impl(key)), "Pass e.g. `key=0`.")
            data = jax.random.key_data(key) if typed else key
            return key, np.asarray(data).tolist()
    raise TypeError(
        f"`{api}` needs `key` to be an int seed or a single JAX PRNG key; got {key!r}. Pass e.g. "
        f"`key=0` or `key=jax.random.key(0)`."
    )
