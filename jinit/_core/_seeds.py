r"""The seeds engine: one policy for running a per-seed computation over many seeds.

:func:`jinit.init_stats`, :func:`jinit.sweep` and :func:`jinit.train_sweep` all run a per-seed
(or per-row) function under ``jax.jit(jax.vmap(...))`` on *chunks* of seeds, so memory is
bounded by the chunk, not by the number of seeds. What they share lives here, once:

* **keys** (:func:`root_key`, :func:`refuse_rbg`): seed ``s`` uses ``fold_in(root, s)``; the
  ``rbg`` / ``unsafe_rbg`` implementations are refused, because under ``jax.vmap`` they do not
  give independent per-seed streams;
* **devices** (:func:`check_devices`): ``None`` (every device of the job, or every local one),
  a count or an explicit list, checked before anything is compiled;
* **the plan** (:class:`SeedPlan`): the chunk size, rounded up to a multiple of the device count
  so every device holds the same number of seeds; a 1-D mesh over the devices whose one axis
  shards the seeds; the chunk iteration with the last chunk *padded* by repeating its last seed
  (the padded rows are computed and dropped, so each chunk runs the same compiled program);
  host transfers that also work when the devices span several processes (each process supplies
  its own shards; results are gathered from all of them).

Rows of a ``vmap`` are independent, so a seed's result does not depend on the chunk it ran in,
on its neighbours or on the padding; it depends on the *per-device* program, i.e. on how many
seeds each device holds (XLA may block a batched computation differently).

Examples:
  >>> import jax, numpy as np
  >>> from jinit._core._seeds import SeedPlan
  >>> plan = SeedPlan.create(jax.local_devices()[:1], n=5, chunk=2)
  >>> [(b.start, b.index.tolist(), b.valid) for b in plan.blocks()]
  [(0, [0, 1], 2), (2, [2, 3], 2), (4, [4, 4], 1)]
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import itertools
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

REFUSED_KEY_IMPLS = frozenset({"rbg", "unsafe_rbg"})


def refuse_rbg(api: str, impl: str, fix: str) -> None:
    """Raises ValueError for an rbg-family PRNG implementation ``impl``; ``fix`` says what to
    pass instead."""
    if impl in REFUSED_KEY_IMPLS:
        raise ValueError(
            f"`{api}` refuses a `{impl}` key: under `jax.vmap` rbg-family keys do not give "
            f"independent streams per seed, so the statistics would be wrong. {fix}"
        )


def root_key(api: str, seed: int, key_impl: Any) -> jax.Array:
    """``jax.random.key(seed, impl=key_impl)``, refusing unknown and rbg implementations."""
    if key_impl is None:
        return jax.random.key(seed)
    if not isinstance(key_impl, str):
        raise TypeError(
            f"`{api}` needs `key_impl` to be None or the name of a PRNG implementation such "
            f"as 'threefry2x32' or 'philox4x32'; got {key_impl!r} of type "
            f"{type(key_impl).__name__}."
        )
    refuse_rbg(api, key_impl, "Use 'threefry2x32' (default) or 'philox4x32'.")
    try:
        return jax.random.key(seed, impl=key_impl)
    except (ValueError, TypeError, KeyError) as e:
        raise ValueError(
            f"`{api}` got `key_impl={key_impl!r}`, which is not a PRNG implementation JAX "
            f"knows ({e}). Use 'threefry2x32' (default) or 'philox4x32'."
        ) from None


def seed_keys(root: jax.Array, indices: Sequence[int] | np.ndarray) -> list[jax.Array]:
    """The keys of seeds ``indices``: ``fold_in(root, s)`` each (the engine's derivation)."""
    return [jax.random.fold_in(root, int(s)) for s in indices]


def check_devices(api: str, devices: Any, *, allow_global: bool = True) -> list:
    """The devices to shard over: ``None`` (every device of the job, or every local one when
    ``allow_global`` is false), a count ``n >= 1`` (the first ``n`` local devices) or a non-empty
    sequence of distinct ``jax.Device`` objects (local ones unless ``allow_global``)."""
    if devices is None:
        return list(jax.devices() if allow_global else jax.local_devices())
    if isinstance(devices, (bool, np.bool_)):
        raise TypeError(
            f"`{api}` needs `devices` to be None, a device count or a list of devices; got "
            f"{devices!r}. Pass e.g. `devices=2` or `devices=jax.local_devices()[:2]`."
        )
    if isinstance(devices, (int, np.integer)):
        return _first_local(api, int(devices), allow_global)
    if isinstance(devices, jax.Device):
        raise TypeError(
            f"`{api}` needs `devices` to be None, a device count or a list of devices; got "
            f"the single device {devices!r}. Pass `devices=[{devices!r}]`."
        )
    if isinstance(devices, (str, bytes)) or not isinstance(devices, (Sequence, np.ndarray)):
        raise TypeError(
            f"`{api}` needs `devices` to be None, a device count or a list of devices; got "
            f"{devices!r} of type {type(devices).__name__}. Pass e.g. `devices=2` or "
            f"`devices=jax.local_devices()[:2]`."
        )
    devs = list(devices)
    if not devs:
        raise ValueError(
            f"`{api}` got an empty `devices` list; it needs at least one device. Pass "
            f"`devices=None` for all devices or e.g. `devices=jax.local_devices()[:1]`."
        )
    bad = [d for d in devs if not isinstance(d, jax.Device)]
    if bad:
        raise TypeError(
            f"`{api}` needs `devices` to hold `jax.Device` objects; got {bad[0]!r} of type "
            f"{type(bad[0]).__name__}. Pass e.g. `devices=jax.local_devices()[:2]` or a count."
        )
    if len(set(devs)) != len(devs):
        raise ValueError(
            f"`{api}` got the same device more than once in `devices` ({devs}); each device "
            f"holds one shard of the seeds. Pass each device once."
        )
    if not allow_global:
        local = set(jax.local_devices())
        remote = [d for d in devs if d not in local]
        if remote:
            raise ValueError(
                f"`{api}` can only use local devices; {remote[0]!r} is not one of "
                f"`jax.local_devices()`."
            )
    return devs


def _first_local(api: str, n: int, allow_global: bool) -> list:
    local = jax.local_devices()
    platform = local[0].platform
    if n < 1:
        raise ValueError(
            f"`{api}` got `devices={n}`; it needs at least 1 device. Pass `devices=None` "
            f"for all {len(local)} local {platform} device(s), or a count from 1 to "
            f"{len(local)}."
        )
    if allow_global and jax.process_count() > 1:
        raise ValueError(
            f"`{api}` got `devices={n}` in a {jax.process_count()}-process job; pass "
            f"`devices=None` (all devices of all processes) or an explicit device list."
        )
    if n > len(local):
        cores = os.cpu_count() or 1
        hint = (
            f" On CPU each device is a host thread: more devices than the {cores} core(s) "
            f"only slow the work down. To get N <= {cores} CPU devices, run "
            f"`jax.config.update('jax_num_cpu_devices', N)` before JAX starts (or "
            f"`jinit sweep --devices N`)."
            if platform == "cpu"
            else ""
        )
        raise ValueError(
            f"`{api}` got `devices={n}` but only {len(local)} local {platform} device(s) "
            f"exist; pass at most {len(local)}.{hint}"
        )
    return list(local[:n])


#: a CPU chunk's per-layer working set per device is sized to the per-core L2 cache. Measured
#: on a 2-core Xeon with 2 MiB L2 per core, MLP 64 x 20, batch 256, 2000 seeds on 2 devices
#: (seeds/s by seeds per chunk): forward only 8: 1220, 16-20: 1250-1330, 56: 1180, 112: 1160;
#: with gradients 4-8: 530-610, 16: 490, 28: 360, 56: 350 -- the best chunks put 1-1.2 L2 per
#: device (forward 208 KiB per seed and layer, backward twice that). The earlier rule (twice
#: L2 of input + pre-activation + parameters, tuned on a 512 KiB-L2 EPYC) put 56 seeds per
#: chunk here, 1.65x slower with gradients. MLP 512 x 10, batch 1000 (7 MB per seed and
#: layer) runs fastest at one seed per device on both machines.
_CACHE_FACTOR = 1
_DEFAULT_L2 = 512 * 1024


@functools.cache
def l2_cache_bytes() -> int:
    """The per-core L2 cache of this host (Linux sysfs; 512 KiB where it cannot be read)."""
    base = "/sys/devices/system/cpu/cpu0/cache"
    try:
        for entry in sorted(os.listdir(base)):
            with open(os.path.join(base, entry, "level"), encoding="ascii") as f:
                if f.read().strip() != "2":
                    continue
            with open(os.path.join(base, entry, "size"), encoding="ascii") as f:
                text = f.read().strip().upper()
            scale = {"K": 1024, "M": 1024**2}.get(text[-1:], 1)
            return int(text.rstrip("KM")) * scale
    except (OSError, ValueError):
        pass
    return _DEFAULT_L2


def cache_chunk(devs: Sequence[Any], working_set: int) -> int | None:
    """Seeds per compiled call that keep each CPU device's per-layer working set (one seed's
    activations and parameters of one layer: ``working_set`` bytes) near its cache, where a
    scan over layers runs fastest; None off CPU (accelerators want the biggest chunk that
    fits: the memory plan decides)."""
    if not devs or any(d.platform != "cpu" for d in devs):
        return None
    per_device = max(1, _CACHE_FACTOR * l2_cache_bytes() // max(working_set, 1))
    return per_device * len(devs)


def rounded_chunk(chunk: int, n_dev: int) -> int:
    """``chunk`` rounded up to a multiple of ``n_dev`` (at least ``n_dev``): every device holds
    the same number of seeds."""
    return max(n_dev, -(-int(chunk) // n_dev) * n_dev)


@dataclasses.dataclass(frozen=True)
class Block:
    """One chunk of rows: ``index`` (``chunk`` row indices, the last ones repeated as padding),
    ``valid`` (how many are real), ``start`` (position of the first in the whole run)."""

    start: int
    index: np.ndarray
    valid: int

    @property
    def mask(self) -> np.ndarray:
        """``True`` for the real rows, ``False`` for the padding."""
        return np.arange(self.index.size) < self.valid


@dataclasses.dataclass(frozen=True, eq=False)
class SeedPlan:
    """How ``n`` rows (seeds) are cut into chunks of ``chunk`` and sharded over ``devices``.

    Build it with :meth:`create`, which rounds the chunk up to a multiple of the device count.
    """

    devices: tuple[jax.Device, ...]
    n: int
    chunk: int
    axis: str = "seeds"
    mesh: Mesh = dataclasses.field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.n < 1 or self.chunk < 1 or self.chunk % len(self.devices):
            raise ValueError(
                f"SeedPlan needs n >= 1 and a chunk that is a positive multiple of the "
                f"{len(self.devices)} device(s); got n={self.n}, chunk={self.chunk}."
            )
        object.__setattr__(self, "mesh", Mesh(np.asarray(self.devices), (self.axis,)))

    @classmethod
    def create(
        cls, devices: Sequence[jax.Device], n: int, chunk: int, axis: str = "seeds"
    ) -> SeedPlan:
        """A plan whose chunk is ``chunk`` rounded up to a multiple of ``len(devices)``."""
        devs = tuple(devices)
        return cls(devs, int(n), rounded_chunk(chunk, len(devs)), axis)

    @property
    def n_chunks(self) -> int:
        return -(-self.n // self.chunk)

    @property
    def sharding(self) -> NamedSharding:
        """Rows split over the devices (the leading axis)."""
        return NamedSharding(self.mesh, PartitionSpec(self.axis))

    @property
    def replicated(self) -> NamedSharding:
        return NamedSharding(self.mesh, PartitionSpec())

    @property
    def processes(self) -> int:
        return len({d.process_index for d in self.devices})

    def blocks(self, rows: np.ndarray | None = None) -> Iterator[Block]:
        """The chunks of ``rows`` (default ``0 .. n-1``) in order, each padded to ``chunk`` by
        repeating its last row."""
        rows = np.arange(self.n, dtype=np.uint32) if rows is None else np.asarray(rows)
        if rows.size != self.n:
            raise ValueError(f"SeedPlan.blocks got {rows.size} rows for a plan of {self.n}.")
        for start in range(0, self.n, self.chunk):
            part = rows[start : start + self.chunk]
            index = np.concatenate([part, np.repeat(part[-1:], self.chunk - part.size)])
            yield Block(start, index, int(part.size))

    def put(self, tree: Any) -> Any:
        """Host arrays (a pytree; leading axis = the chunk) as global arrays sharded over the
        devices; across processes, each process supplies the shards its devices hold."""
        return self._place(tree, self.sharding)

    def put_replicated(self, tree: Any) -> Any:
        """Host arrays copied whole to every device."""
        return self._place(tree, self.replicated)

    @staticmethod
    def _place(tree: Any, sharding: NamedSharding) -> Any:
        if sharding.is_fully_addressable:
            return jax.device_put(tree, sharding)

        def one(x):
            x = np.asarray(x)
            return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])

        return jax.tree_util.tree_map(one, tree)

    def run(
        self,
        call: Callable[[Block], dict[str, jax.Array]],
        rows: np.ndarray | None = None,
        *,
        summed: Sequence[str] = (),
        on_chunk: Callable[[int], None] | None = None,
    ) -> dict[str, np.ndarray]:
        """Runs ``call`` (a chunk's :class:`Block` -> a dict of arrays whose leading axis is the
        chunk) over every chunk of ``rows`` and returns the results of all rows on the host.

        * **pipelined**: chunk ``c + 1`` is dispatched before chunk ``c`` is fetched, so the
          devices never wait for the host's copy; the only synchronisation is that fetch;
        * **preallocated**: each result is written into one host array of ``n`` rows made when
          the first chunk arrives (no list of chunks, no concatenation at the end), so host
          memory is the results plus two chunks in flight, whatever the number of chunks;
        * the names in ``summed`` are summed over the rows instead (a histogram), in int64 or
          float64.

        ``on_chunk(c)`` is called after chunk ``c`` (1-based) is on the host.
        """
        out: dict[str, np.ndarray] = {}
        pending: tuple[Block, dict[str, jax.Array]] | None = None
        # the blocks are made one at a time: a list of them would grow with the seeds
        for c, block in enumerate(itertools.chain(self.blocks(rows), [None])):
            nxt = None if block is None else (block, call(block))  # dispatch before fetching
            if pending is not None:
                self._store(out, pending[0], self.fetch(pending[1], pending[0].valid), summed)
                if on_chunk is not None:
                    on_chunk(c)
            pending = nxt
        return out

    def _store(
        self, out: dict[str, np.ndarray], block: Block, part: dict, summed: Sequence[str]
    ) -> None:
        for name, value in part.items():
            value = np.asarray(value)
            if name in summed:
                wide = np.int64 if value.dtype.kind in "iub" else np.float64
                total = value.sum(axis=0, dtype=wide)
                out[name] = total if name not in out else out[name] + total
                continue
            if name not in out:
                out[name] = np.empty((self.n, *value.shape[1:]), value.dtype)
            out[name][block.start : block.start + block.valid] = value

    @staticmethod
    def fetch(tree: Any, valid: int) -> Any:
        """Host (numpy) copies of a chunk's results without the padding rows, gathered from
        every process when the devices span several."""
        leaves = jax.tree_util.tree_leaves(tree)
        if leaves and not leaves[0].is_fully_addressable:
            tree = multihost_utils.process_allgather(tree, tiled=True)
        return jax.tree_util.tree_map(lambda a: np.asarray(a)[:valid], tree)


class CompiledCache:
    """A least-recently-used cache of compiled chunk programs, kept across calls: a second
    :func:`jinit.init_stats` or :func:`jinit.sweep` of the same computation (other seeds, other
    ``seed``) runs without tracing or compiling again.

    The key must hold everything that shapes the trace (the callables, shapes, dtypes, chunk,
    devices); :func:`get` adds the JAX settings that change a trace (64-bit mode, the partitionable
    threefry, the default matmul precision). A key that cannot be hashed (an initialiser holding
    an array, say) is compiled without caching. ``hits`` and ``misses`` count lookups.

    Examples:
      >>> from jinit._core._seeds import CompiledCache
      >>> cache = CompiledCache(size=2)
      >>> [cache.get(k, lambda k=k: k * 10) for k in (1, 2, 1, 3, 2)]
      [10, 20, 10, 30, 20]
      >>> (cache.hits, cache.misses)  # 2 was evicted by 3 (1 was used more recently)
      (1, 4)
    """

    def __init__(self, size: int) -> None:
        self.size = int(size)
        self._entries: collections.OrderedDict = collections.OrderedDict()
        self.hits = self.misses = 0

    def get(self, key: Any, make: Callable[[], Any]) -> Any:
        """The entry of ``key``, made by ``make()`` (and kept) on a miss."""
        key = (key, _trace_settings())
        try:
            hash(key)
        except TypeError:
            self.misses += 1
            return make()
        if key in self._entries:
            self.hits += 1
            self._entries.move_to_end(key)
            return self._entries[key]
        self.misses += 1
        value = self._entries[key] = make()
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)
        return value

    def clear(self) -> None:
        self._entries.clear()
        self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)


def _trace_settings() -> tuple:
    """The global JAX settings that change what a function traces or compiles to."""
    cfg = jax.config
    return (
        bool(cfg.jax_enable_x64),
        bool(cfg.jax_threefry_partitionable),
        str(cfg.jax_default_matmul_precision),
        str(cfg.jax_default_prng_impl),
    )


#: primitives XLA's CPU backend runs as LAPACK calls
_HOST_LINALG = {"qr", "eigh", "eig", "svd", "lu", "cholesky", "triangular_solve", "schur",
                "householder_product", "geqrf", "tridiagonal", "hessenberg"}  # fmt: skip


def _primitives(jaxpr: Any, acc: set[str]) -> set[str]:
    for eqn in jaxpr.eqns:
        acc.add(eqn.primitive.name)
        for p in eqn.params.values():
            for sub in p if isinstance(p, (tuple, list)) else (p,):
                inner = getattr(sub, "jaxpr", None)
                if inner is not None:
                    _primitives(getattr(inner, "jaxpr", inner), acc)
    return acc


def uses_host_linalg(fn: Callable[[jax.Array], Any]) -> bool:
    """Whether ``fn(key)`` (traced abstractly) calls a LAPACK-backed primitive (QR, ...)."""
    try:
        jaxpr = jax.make_jaxpr(fn)(jax.random.key(0))
    except Exception:  # noqa: BLE001 - a shape this initialiser does not take
        return False
    return bool(_primitives(jaxpr.jaxpr, set()) & _HOST_LINALG)


def linalg_safe_devices(devs: Sequence[Any], inits: Sequence[Any]) -> list[Any]:
    """``devs``, or its first device when they are several CPU devices of this process and an
    initialiser draws through LAPACK (``orthogonal``'s QR): XLA's CPU runtime (jax 0.10) can
    deadlock running such calls in one program sharded over several host devices, so those
    sweeps run on one device (the matmuls still use every core)."""
    devs = list(devs)
    if len(devs) < 2 or devs[0].platform != "cpu":
        return devs
    for init in inits:
        for shape in ((8, 8), (3, 3, 8, 8)):
            if uses_host_linalg(lambda k, s=shape, f=init: f(k, s, jnp.float32)):
                return devs[:1]
    return devs
