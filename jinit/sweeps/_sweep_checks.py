"""Argument checks shared by propagation and training sweeps, all run before anything compiles:
seeds, callables, dtypes, progress callbacks, initialiser tables, meshes, compiler options and
the host and device memory a run needs."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from jinit._core._checks import check_int

#: The per-layer quantities of a sweep (``SweepResult.per_seed[label][name]``, shape
#: ``(seeds, layers)``), all computed per seed over the whole batch.


# ---------------------------------------------------------------------------------------------
# The sweep
# ---------------------------------------------------------------------------------------------


def _label(init) -> str:
    r = repr(init)
    return r[len("jinit.") :] if r.startswith("jinit.") else r


def normalize_inits(inits, api: str = "sweep") -> dict[str, Any]:
    """``{label: initializer}`` from a mapping, a sequence or a single initialiser."""
    if isinstance(inits, Mapping):
        out = {str(k): v for k, v in inits.items()}
    elif callable(inits):
        out = {_label(inits): inits}
    elif isinstance(inits, Sequence) and not isinstance(inits, str):
        out = {}
        for v in inits:
            out[_label(v)] = v
    else:
        raise TypeError(
            f"`{api}` needs `inits` to be an initialiser, a sequence of initialisers or a "
            f"mapping name -> initialiser; got {inits!r} of type {type(inits).__name__}. Pass "
            f"e.g. `jinit.he_normal()` or `{{'he': jinit.he_normal()}}`."
        )
    if not out:
        raise ValueError(
            f"`{api}` needs at least one initialiser in `inits`; got none. Pass e.g. "
            f"`jinit.he_normal()`."
        )
    for k, v in out.items():
        if not callable(v):
            raise TypeError(
                f"`{api}` needs every initialiser to be a `(key, shape, dtype)` callable; "
                f"{k!r} is {v!r} of type {type(v).__name__}. Pass e.g. `jinit.he_normal()`."
            )
    return out


# ---------------------------------------------------------------------------------------------
# Argument checks shared with training sweeps (all run before any compile)
# ---------------------------------------------------------------------------------------------

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
MAX_SEED_INDEX = 2**32  # seed indices are folded into the key as uint32


def check_seed(api: str, name: str, value: Any) -> int:
    """An int seed that ``jax.random.key`` accepts (a signed 64-bit integer)."""
    value = check_int(api, name, value)
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise ValueError(
            f"`{api}` needs `{name}` to fit in a signed 64-bit integer (what `jax.random.key` "
            f"takes); got {value}. Pass a seed between {_INT64_MIN} and {_INT64_MAX}."
        )
    return value


def check_callable(api: str, name: str, value: Any, what: str, *, optional: bool = True):
    """``value`` unchanged if callable (or ``None`` when ``optional``); else a TypeError."""
    if (value is None and optional) or callable(value):
        return value
    raise TypeError(
        f"`{api}` needs `{name}` to be {what}; got {value!r} of type {type(value).__name__}."
    )


def check_float_dtype(api: str, dtype: Any) -> np.dtype:
    """A real floating dtype that JAX has enabled, at least 16 bits wide (default float32)."""
    if dtype is None:
        return np.dtype(jnp.float32)
    try:
        dt = np.dtype(jnp.dtype(dtype))
    except TypeError:
        raise TypeError(
            f"`{api}` needs `dtype` to be a floating dtype such as `jnp.float32`; got "
            f"{dtype!r}, which is not a dtype. Use float32, bfloat16, float16 or float64."
        ) from None
    if not jnp.issubdtype(dt, jnp.floating):
        raise TypeError(
            f"`{api}` needs a real floating `dtype` (the parameters and activations are "
            f"real numbers); got dtype {dt.name}. Use float32, bfloat16, float16 or float64."
        )
    if dt.itemsize < 2:
        raise TypeError(
            f"`{api}` needs a floating `dtype` of at least 16 bits; got dtype {dt.name}, whose "
            f"range and precision cannot carry activations through a network (values overflow "
            f"to NaN or round to 0). Use bfloat16, float16 or float32."
        )
    if np.dtype(jax.dtypes.canonicalize_dtype(dt)) != dt:
        raise ValueError(
            f"`{api}` got `dtype={dt.name}`, which JAX does not enable by default. Run "
            f"`jax.config.update('jax_enable_x64', True)` first (`jinit sweep --dtype float64` "
            f"does it for you)."
        )
    return dt


def check_progress(api: str, progress: Any):
    return check_callable(
        api, "progress", progress, "None or a callable progress(done, total)", optional=True
    )


def fmt_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} PiB"  # pragma: no cover


def host_memory_available() -> int | None:
    """Bytes of host memory available to this process (Linux ``MemAvailable``, else the
    physical memory), or ``None`` when unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


def device_memory_available(devs: Sequence[Any]) -> tuple[int | None, bool]:
    """``(bytes, shared)``: memory one device may use and whether the devices share it (CPU
    devices all live in host memory); ``(None, False)`` when unknown."""
    if devs[0].platform == "cpu":
        return host_memory_available(), True
    try:
        stats = devs[0].memory_stats() or {}
    except Exception:  # a backend without memory statistics
        stats = {}
    limit = stats.get("bytes_limit")
    if limit is None:
        return None, False
    return int(limit) - int(stats.get("bytes_in_use", 0)), False


def check_fits(api: str, need: int, avail: int | None, where: str, detail: str, fix: str) -> None:
    """Refuses, before any work, a run whose estimated memory ``need`` exceeds ``avail``.

    The estimates count only the arrays the run must hold (a lower bound of what XLA uses), so
    a refusal is never a false alarm.
    """
    if avail is not None and need > avail:
        raise ValueError(
            f"`{api}` would need about {fmt_bytes(need)} of {where} memory ({detail}), more "
            f"than the {fmt_bytes(avail)} available. {fix}"
        )


@contextlib.contextmanager
def own_mesh(mesh: Mesh | None):
    """The sweep's context: its own 1-D seed mesh instead of any mesh the caller set, and (for
    nnx models) no eager sharding of variables, so a model's sharding annotations, written for
    the caller's mesh, are dropped instead of referring to axes the sweep's mesh lacks."""

    with contextlib.ExitStack() as stack:
        if mesh is not None:
            stack.enter_context(jax.set_mesh(mesh))
        if "flax.nnx" in sys.modules:
            from flax import nnx

            stack.enter_context(nnx.use_eager_sharding(False))
        yield


def check_compiler_options(api: str, options: Any) -> dict[str, Any] | None:
    if options is None:
        return None
    if not isinstance(options, Mapping) or not all(isinstance(k, str) for k in options):
        raise TypeError(
            f"`{api}` needs `compiler_options` to be None or a dict of XLA option names to "
            f"values; got {options!r} of type {type(options).__name__}. Pass e.g. "
            f"`{{'xla_backend_optimization_level': 0}}`."
        )
    return dict(options)
