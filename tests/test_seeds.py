"""The seeds engine (jinit._core._seeds): one key policy, one device/chunk plan, padding, host
transfers, used by init_stats, sweep, train_sweep and the µP coordinate check.

The per-seed function used here draws integer random bits and sums them in uint32: exact in any
blocking, so results of different chunk sizes and device counts are compared bit for bit.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jinit
from jinit._core._seeds import (
    CompiledCache,
    SeedPlan,
    check_devices,
    refuse_rbg,
    root_key,
    seed_keys,
)

N_DEV = len(jax.local_devices())


def _bits(root):
    """Per-seed result: 8 random words and their (wrapping) sum, from fold_in(root, s)."""

    def one(s):
        w = jax.random.bits(jax.random.fold_in(root, s), (8,), jnp.uint32)
        return {"words": w, "sum": jnp.sum(w, dtype=jnp.uint32)}

    return jax.jit(jax.vmap(one))


def _run(plan: SeedPlan, root) -> dict[str, np.ndarray]:
    fn = _bits(root)
    pieces = [plan.fetch(fn(plan.put(b.index)), b.valid) for b in plan.blocks()]
    return {k: np.concatenate([p[k] for p in pieces]) for k in pieces[0]}


# ---------------------------------------------------------------------------------------------
# The plan: chunks, padding, rounding to the device count
# ---------------------------------------------------------------------------------------------

PLANS = [
    # (rows, chunk asked, devices) -> the chunk is a multiple of the devices, >= their count
    (1, 1, 1),
    (5, 2, 1),
    (7, 3, 2),
    (8, 8, 4),
    (9, 4, 4),
    (3, 1, 4),  # fewer rows than devices: one padded chunk
    (70, 64, 2),
]


@pytest.mark.parametrize("n, chunk, n_dev", PLANS)
def test_blocks_cover_every_row_once_padded_with_the_last(n, chunk, n_dev):
    if n_dev > N_DEV:
        pytest.skip(f"needs {n_dev} devices")
    plan = SeedPlan.create(jax.local_devices()[:n_dev], n, chunk)
    assert plan.chunk % n_dev == 0 and plan.chunk >= max(chunk, n_dev)
    assert plan.chunk < chunk + n_dev  # rounded up by less than one device's share
    blocks = list(plan.blocks())
    assert len(blocks) == plan.n_chunks == -(-n // plan.chunk)
    seen = np.concatenate([b.index[: b.valid] for b in blocks])
    np.testing.assert_array_equal(seen, np.arange(n))
    for b in blocks:
        assert b.index.size == plan.chunk and 1 <= b.valid <= plan.chunk
        assert np.all(b.index[b.valid :] == b.index[b.valid - 1])  # padding repeats the last row
        np.testing.assert_array_equal(b.mask, np.arange(plan.chunk) < b.valid)


def test_blocks_of_given_rows():
    plan = SeedPlan.create(jax.local_devices()[:1], 3, 2)
    got = [(b.start, b.index.tolist(), b.valid) for b in plan.blocks(np.array([7, 3, 9]))]
    assert got == [(0, [7, 3], 2), (2, [9, 9], 1)]
    with pytest.raises(ValueError, match="2 rows for a plan of 3"):
        list(plan.blocks(np.array([1, 2])))


@pytest.mark.parametrize("n, chunk", [(0, 1), (3, 0)])
def test_plan_refuses_empty_work(n, chunk):
    with pytest.raises(ValueError, match="SeedPlan needs n >= 1"):
        SeedPlan(tuple(jax.local_devices()[:1]), n, chunk)


def test_put_shards_rows_and_fetch_drops_padding():
    n_dev = min(N_DEV, 4)
    plan = SeedPlan.create(jax.local_devices()[:n_dev], 5, 2 * n_dev)
    b = next(plan.blocks())
    x = plan.put(b.index)
    assert x.sharding == plan.sharding and len(x.addressable_shards) == n_dev
    assert {s.data.shape for s in x.addressable_shards} == {(plan.chunk // n_dev,)}
    out = plan.fetch({"x": x}, b.valid)
    np.testing.assert_array_equal(out["x"], np.arange(5))
    r = plan.put_replicated(np.arange(3))
    assert r.sharding == plan.replicated


RUNS = [(1, 1, 1), (10, 3, 1), (10, 3, 2), (7, 8, 4), (9, 2, 2)]


@pytest.mark.parametrize("n, chunk, n_dev", RUNS)
def test_run_fills_every_row_and_sums_the_summed(n, chunk, n_dev):
    """SeedPlan.run: the pipelined, preallocated loop gives each row its own result (in row
    order, padding dropped) and sums the ``summed`` names over the real rows only."""
    if n_dev > N_DEV:
        pytest.skip(f"needs {n_dev} devices")
    plan = SeedPlan.create(jax.local_devices()[:n_dev], n, chunk)
    rows = np.arange(100, 100 + n, dtype=np.uint32)
    fn = jax.jit(jax.vmap(lambda r: {"row": r, "sq": (r * r).astype(jnp.float32), "hist": r % 3}))
    done: list[int] = []
    out = plan.run(lambda b: fn(plan.put(b.index)), rows, summed=("hist",), on_chunk=done.append)
    np.testing.assert_array_equal(out["row"], rows)
    np.testing.assert_array_equal(out["sq"], (rows.astype(np.float64) ** 2).astype(np.float32))
    assert out["hist"] == int(np.sum(rows % 3)) and out["hist"].dtype == np.int64
    assert done == list(range(1, plan.n_chunks + 1))
    assert out["row"].shape == (n,) and out["row"].dtype == np.uint32


def test_run_dispatches_the_next_chunk_before_fetching():
    """The loop never waits for a chunk's results before the next chunk is dispatched."""
    plan = SeedPlan.create(jax.local_devices()[:1], 6, 2)
    events: list[str] = []
    real_fetch = plan.fetch

    def call(block):
        events.append(f"call {block.start}")
        return {"x": plan.put(block.index)}

    object.__setattr__(
        plan, "fetch", lambda tree, valid: events.append("fetch") or real_fetch(tree, valid)
    )
    plan.run(call)
    assert events == ["call 0", "call 2", "fetch", "call 4", "fetch", "fetch"]


def test_compiled_cache_is_lru_and_skips_unhashable_keys():
    cache = CompiledCache(size=2)
    made: list = []
    make = lambda k: lambda: made.append(k) or f"v{k}"
    assert [cache.get(k, make(k)) for k in (1, 2, 1, 3, 1, 2)] == [
        "v1",
        "v2",
        "v1",
        "v3",
        "v1",
        "v2",
    ]
    assert made == [1, 2, 3, 2]  # 2 was evicted by 3; 1, used most recently, stayed
    assert (cache.hits, cache.misses, len(cache)) == (2, 4, 2)
    assert cache.get([1], make("list")) == "vlist" and cache.get([1], make("list")) == "vlist"
    assert made[-2:] == ["list", "list"] and len(cache) == 2  # unhashable: made, never kept


def test_compiled_cache_keys_on_jax_settings():
    """A program traced under other global JAX settings (here the partitionable threefry) is
    not served for the current ones."""
    cache = CompiledCache(size=4)
    before = jax.config.jax_threefry_partitionable
    try:
        first = cache.get("k", lambda: "a")
        jax.config.update("jax_threefry_partitionable", not before)
        assert cache.get("k", lambda: "b") == "b" and first == "a"
    finally:
        jax.config.update("jax_threefry_partitionable", before)
    assert cache.get("k", lambda: "c") == "a"


# ---------------------------------------------------------------------------------------------
# Results do not depend on the chunking, the device count or the padding
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n_dev", [1, 2, 4])
@pytest.mark.parametrize("chunk", [1, 3, 8])
def test_per_seed_results_do_not_depend_on_the_plan(n_dev, chunk):
    if n_dev > N_DEV:
        pytest.skip(f"needs {n_dev} devices")
    root = jax.random.key(11)
    one = _run(SeedPlan.create(jax.local_devices()[:1], 10, 10), root)
    got = _run(SeedPlan.create(jax.local_devices()[:n_dev], 10, chunk), root)
    for k in one:
        np.testing.assert_array_equal(got[k], one[k], err_msg=k)
    # seed s is fold_in(root, s): the row of seed 3 is the eager draw of that key
    words = jax.random.bits(seed_keys(root, [3])[0], (8,), jnp.uint32)
    np.testing.assert_array_equal(got["words"][3], words)
    assert len({tuple(r) for r in got["words"]}) == 10  # every seed its own stream


def test_init_stats_chunks_and_devices_give_the_same_seeds():
    """init_stats runs on the engine: chunk sizes and device counts with the same seeds per
    device give the same per-seed statistics bit for bit."""
    init, shape = jinit.he_normal(), (16, 8)
    a = jinit.init_stats(init, shape, seeds=6, key=0, chunk_size=1, devices=1)
    b = jinit.init_stats(init, shape, seeds=6, key=0, chunk_size=4, devices=1)
    for f in ("mean", "variance", "min", "max", "ks", "moments"):
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f), err_msg=f)
    if N_DEV >= 2:
        c = jinit.init_stats(init, shape, seeds=6, key=0, chunk_size=2, devices=2)
        for f in ("mean", "variance", "min", "max", "ks", "moments"):
            np.testing.assert_array_equal(getattr(a, f), getattr(c, f), err_msg=f)


# ---------------------------------------------------------------------------------------------
# One key policy: rbg-family keys are refused wherever seeds are vmapped
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("impl", ["rbg", "unsafe_rbg"])
def test_rbg_is_refused_everywhere(impl):
    with pytest.raises(ValueError, match=f"refuses a `{impl}` key"):
        root_key("api", 0, impl)
    with pytest.raises(ValueError, match=f"init_stats` refuses a `{impl}` key"):
        jinit.init_stats(jinit.he_normal(), (4, 4), key=jax.random.key(0, impl=impl))
    with pytest.raises(ValueError, match=f"`sweep` refuses a `{impl}` key"):
        jinit.sweep(jinit.mlp(8, 2), jinit.he_normal(), seeds=2, key_impl=impl)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(8, 4)).astype(np.float32), np.arange(8) % 2
    data = jinit.Dataset(x, y, x, y, "tiny", 2)
    with pytest.raises(ValueError, match=f"`train_sweep` refuses a `{impl}` key"):
        jinit.train_sweep(
            jinit.mlp(8, 2),
            jinit.he_normal(),
            data,
            seeds=2,
            steps=1,
            key=jax.random.key(0, impl=impl),
        )
    refuse_rbg("api", "threefry2x32", "")  # not refused


def test_root_key_names_bad_implementations():
    with pytest.raises(TypeError, match="`api` needs `key_impl`"):
        root_key("api", 0, 3)
    with pytest.raises(ValueError, match="not a PRNG implementation JAX knows"):
        root_key("api", 0, "nope")
    assert str(jax.random.key_impl(root_key("api", 0, "philox4x32"))) == "philox4x32"


def test_coord_check_seeds_are_engine_seeds():
    """The coordinate check draws seed s from fold_in(root, s) of a threefry root (no rbg keys
    under vmap): a run with 3 seeds starts its first 2 seeds where a run with 2 seeds does.

    Step 0 is a forward pass only (1 hidden layer, fan-in <= 32, a mean of <= 8 x 32 absolute
    values); another vmap width may reorder its sums, moving a value by at most about
    sqrt(32)·γ_32 + γ_256 < 3e-5 relative (γ_n = n·2^-24): rtol 1e-4. Different seeds differ by
    far more (checked)."""
    from jinit import mup

    kw = dict(depth=1, steps=1, batch=8, d_in=4, n_out=3, seed=5)
    two = mup.coord_check((16, 32), seeds=2, **kw)
    three = mup.coord_check((16, 32), seeds=3, **kw)
    for name in two.parametrizations:
        a, b = two.values[name][0], three.values[name][0]  # step 0: (widths, seeds, layers)
        np.testing.assert_allclose(b[:, :2], a, rtol=1e-4, err_msg=name)
        nz = a[:, 1] != 0  # (µP's zero readout is 0 at step 0 for every seed)
        assert nz.any() and np.all(np.abs(b[:, 2] - a[:, 1])[nz] > 1e-3 * np.abs(a[:, 1])[nz])


# ---------------------------------------------------------------------------------------------
# Devices
# ---------------------------------------------------------------------------------------------

DEVICE_ERRORS = [
    (0, ValueError, r"`api` got `devices=0`; it needs at least 1 device"),
    (10_000, ValueError, r"only \d+ local cpu device\(s\) exist"),
    (True, TypeError, r"got True"),
    ("cpu", TypeError, r"got 'cpu' of type str"),
    ([], ValueError, r"empty `devices` list; it needs at least one device"),
    (["cpu"], TypeError, r"to hold `jax.Device` objects; got 'cpu'"),
]


@pytest.mark.parametrize("devices, err, match", DEVICE_ERRORS)
def test_bad_devices_are_named(devices, err, match):
    with pytest.raises(err, match=match):
        check_devices("api", devices)


def test_devices_forms():
    local = jax.local_devices()
    assert check_devices("api", None) == list(jax.devices())
    assert check_devices("api", None, allow_global=False) == list(local)
    assert check_devices("api", 1) == local[:1]
    assert check_devices("api", local[:1]) == local[:1]
    with pytest.raises(TypeError, match=r"the single device .* Pass `devices=\["):
        check_devices("api", local[0])
    with pytest.raises(ValueError, match="more than once"):
        check_devices("api", [local[0], local[0]])


# ---------------------------------------------------------------------------------------------
# Several processes (jax.distributed on 127.0.0.1)
# ---------------------------------------------------------------------------------------------

_WORKER = """
import sys
import jax

pid, port, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
jax.config.update("jax_num_cpu_devices", 2)
jax.config.update("jax_cpu_collectives_implementation", "gloo")
jax.distributed.initialize(f"127.0.0.1:{port}", num_processes=2, process_id=pid)
import numpy as np
sys.path.insert(0, sys.argv[4])
from test_seeds import _run
from jinit._core._seeds import SeedPlan, check_devices

devs = check_devices("worker", None)
plan = SeedPlan.create(devs, 7, 4)
got = _run(plan, jax.random.key(11))
np.savez(out, processes=plan.processes, devices=len(devs), **got)
jax.distributed.shutdown()
"""


def test_two_processes_share_the_rows_and_both_get_all(tmp_path):
    """2 processes x 2 CPU devices: each process supplies its shards of every chunk and fetches
    every row; both get the one-process result (integer work: bit for bit)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    here = str(Path(__file__).resolve().parent)
    outs = [str(tmp_path / f"p{i}.npz") for i in range(2)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, str(i), port, outs[i], here],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for i in range(2)
    ]
    logs = [p.communicate(timeout=300)[0].decode(errors="replace") for p in procs]
    for p, log in zip(procs, logs, strict=True):
        assert p.returncode == 0, log[-3000:]
    single = _run(SeedPlan.create(jax.local_devices()[:1], 7, 1), jax.random.key(11))
    for out in outs:
        got = dict(np.load(out))
        assert int(got.pop("processes")) == 2 and int(got.pop("devices")) == 4
        for k in single:
            np.testing.assert_array_equal(got[k], single[k], err_msg=k)
