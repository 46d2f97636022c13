"""The memory plan of a propagation sweep: which network it is, what one seed saves and
returns, and how many seeds one compiled chunk runs (checked against device and host memory
before anything compiles)."""

from __future__ import annotations

import math
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh

from jinit._core._checks import check_int
from jinit._core._seeds import cache_chunk
from jinit.initializers._basic import zeros
from jinit.sweeps._flax_models import FlaxModel
from jinit.sweeps._network_base import Network
from jinit.sweeps._statistics import (
    layer_working_set,
    probe_builtin,
    saved_bytes_of,
    stat_dtype,
)
from jinit.sweeps._sweep_checks import (
    MAX_SEED_INDEX,
    check_callable,
    check_fits,
    device_memory_available,
    fmt_bytes,
    host_memory_available,
    own_mesh,
)

_DEFAULT_BUDGET = 512 * 2**20  # bytes of saved activations per compiled chunk
_MAX_CHUNK = 64


def check_network(api: str, network: Any) -> bool:
    """Refuses anything but a built-in architecture or a Flax adapter; True for a built-in."""
    is_builtin = isinstance(network, Network)
    if not (is_builtin or isinstance(network, FlaxModel)):
        raise TypeError(
            f"`{api}` needs `network` to be a built-in architecture (`jinit.mlp`, `jinit.cnn`, "
            f"`jinit.transformer`) or a Flax adapter (`jinit.linen_model`, `jinit.nnx_model`); "
            f"got {network!r} of type {type(network).__name__}."
        )
    return is_builtin


def check_seed_count(api: str, seeds: Any) -> int:
    """``seeds`` as a positive int that fits the uint32 seed indices."""
    seeds = check_int(api, "seeds", seeds, minimum=1)
    if seeds > MAX_SEED_INDEX:
        raise ValueError(
            f"`{api}` needs `seeds` <= 2**32 (seed indices are folded into the key as uint32); "
            f"got {seeds}. Split the work over several `seed` values."
        )
    return seeds


def check_bias_init(api: str, network: Any, bias_init: Any, is_builtin: bool) -> Any:
    """The biases' initialiser of a built-in network (``zeros`` when None); refuses one for a
    Flax model, whose biases come from its own layers."""
    if bias_init is not None and not is_builtin:
        raise ValueError(
            f"`{api}` got `bias_init={bias_init!r}` for the {network.describe()}, whose biases "
            f"come from the model's own `bias_init`; it would be ignored. Drop `bias_init`, or "
            f"pass the initialiser to the model's layers in `build`."
        )
    bias_init = zeros if bias_init is None else bias_init
    check_callable(
        api, "bias_init", bias_init, "a `(key, shape, dtype)` initialiser such as `jinit.zeros`"
    )
    return bias_init


def probe_network(
    api: str,
    network: Any,
    inits: dict[str, Any],
    bias_init: Any,
    batch: int,
    dtype: np.dtype,
    sample_size: int,
    root: jax.Array,
    devs: list,
    gradients: bool = True,
) -> tuple[int, int, int | None]:
    """Probes every initialiser abstractly; returns (bytes one seed saves for the backward
    pass, bytes of one seed's results, bytes one seed touches per layer (None for a Flax
    model, run whole))."""
    if isinstance(network, Network):
        probe_builtin(api, network, inits, bias_init, dtype, root)
        per_seed = saved_bytes_of(network, batch, dtype, gradients)
        n_values = min(sample_size, batch * math.prod(network.input_shape()))
        per_layer_out = (15 + len(network.param_specs())) * stat_dtype(dtype).itemsize
        out_bytes = network.depth * (per_layer_out + 4 * n_values)
        return per_seed, out_bytes, layer_working_set(network, batch, dtype, gradients)
    with own_mesh(Mesh(np.array(devs), ("seeds",))):
        network.check_input(api, batch, dtype, root)
        per_seed = network.saved_bytes(batch, dtype)
        return per_seed, network.probe_all(api, inits, batch, dtype, sample_size, root), None


def plan_chunk_size(
    api: str,
    devs: list,
    seeds: int,
    batch: int,
    chunk_size: int | None,
    per_seed: int,
    out_bytes: int,
    n_inits: int,
    sample_size: int,
    working_set: int | None = None,
) -> int:
    """Checks that one seed, one chunk and all the results fit; returns the chunk size. When
    ``chunk_size`` is None it is sized to memory and, on CPU, given the per-layer
    ``working_set`` of one seed (built-in networks), to the cache (:func:`cache_chunk`)."""
    n_dev = len(devs)
    avail, shared = device_memory_available(devs)
    where = "host" if shared else f"{devs[0].platform} device"
    check_fits(
        api,
        per_seed,
        avail,
        where,
        f"one seed's saved activations with batch={batch}",
        "Lower `batch`" + ("." if shared else " or use a device with more memory."),
    )
    if chunk_size is not None:
        per_call = -(-chunk_size // (1 if shared else n_dev)) * per_seed
        fits = max(1, (avail or 0) // max(per_seed, 1)) * (1 if shared else n_dev)
        check_fits(
            api,
            per_call,
            avail,
            where,
            f"chunk_size={chunk_size} seeds × {fmt_bytes(per_seed)} each"
            + ("" if shared else f" over {n_dev} devices"),
            f"Pass `chunk_size={fits}` or less, or leave it None to size chunks to memory.",
        )
    check_fits(
        api,
        seeds * out_bytes * (n_inits + 1),
        host_memory_available(),
        "host",
        f"the per-seed results of {seeds} seeds × {n_inits} initialiser(s), "
        f"{fmt_bytes(out_bytes)} each with sample_size={sample_size}",
        "Use fewer `seeds` (or a smaller `sample_size`) per call and pool the results.",
    )
    if chunk_size is not None:
        return chunk_size
    chunk_size = max(1, min(_MAX_CHUNK, _DEFAULT_BUDGET // max(per_seed, 1)))
    fast = cache_chunk(devs, working_set) if working_set else None
    chunk_size = min(chunk_size, seeds, fast or chunk_size)
    # balanced chunks: as few chunks as the budget allows, equally filled (70 seeds run as
    # 2 x 35, not 64 + 64 with 58 padding seeds)
    return -(-seeds // -(-seeds // chunk_size))
