"""``jinit.init_sharded``: the values of ``jinit.reinit``, bit for bit, drawn straight into
their shardings (1, 2, 4 devices here; 8 devices and 2 processes x 4 devices in subprocesses),
stacked or not, for linen (with Flax partitioning metadata), nnx and equinox trees; each device
holds only its shards; bad input is refused before anything is drawn."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import equinox as eqx
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

import jinit
from jinit._core._paths import named_leaves

RULES = [
    ("*/kernel", jinit.he_normal()),
    ("*/embedding", jinit.normal(0.02)),
    ("*/bias", jinit.truncated_normal(0.02)),
    ("*/scale", jinit.ones),
]


class Block(nn.Module):
    d: int
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        part = nn.with_partitioning
        h = nn.Dense(
            4 * self.d,
            kernel_init=part(nn.initializers.lecun_normal(), ("data", "model")),
            param_dtype=self.dtype,
            name="up",
        )(nn.LayerNorm(param_dtype=self.dtype)(x))
        down = nn.Dense(
            self.d,
            kernel_init=part(nn.initializers.lecun_normal(), ("model", "data")),
            param_dtype=self.dtype,
            name="down",
        )
        return x + down(nn.gelu(h))


class Decoder(nn.Module):
    layers: int = 5
    d: int = 32
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, tokens):
        x = nn.Embed(64, self.d, param_dtype=self.dtype, name="embed")(tokens)
        for i in range(self.layers):
            x = Block(self.d, self.dtype, name=f"block_{i}")(x)
        return nn.Dense(64, param_dtype=self.dtype, name="head")(x)


def _abstract(model=None):
    model = model or Decoder()
    return jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((2, 8), jnp.int32))


def _pairs(a, b):
    la, lb = ([x for x in jax.tree.leaves(nn.unbox(t)) if isinstance(x, jax.Array)] for t in (a, b))
    assert len(la) == len(lb) > 0
    return list(zip(la, lb, strict=True))


def _assert_same_bits(got, want):
    for a, b in _pairs(got, want):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def _mesh(shape):
    n = shape[0] * shape[1]
    return jax.make_mesh(shape, ("data", "model"), devices=jax.devices()[:n])


MESHES = [(1, 1), (2, 1), (2, 2), (1, 4)]
MESHES = [m for m in MESHES if m[0] * m[1] <= len(jax.devices())]


def _fsdp(tree):
    """Fully sharded: every leaf's first axis over both mesh axes."""
    return {"*": P(("data", "model"))}


def _tensor_parallel(tree):
    return {"*/up/kernel": P(None, "model"), "*/down/kernel": P("model", None), "*": P()}


# (name, the `shardings` argument): Flax's own annotations, data parallel (replicated),
# fully sharded, tensor parallel
LAYOUTS = [
    ("annotations", lambda t: None),
    ("data", lambda t: {"*": P()}),
    ("fsdp", _fsdp),
    ("tensor", _tensor_parallel),
]


@pytest.mark.parametrize("mesh_shape", MESHES)
@pytest.mark.parametrize(("layout", "shardings"), LAYOUTS)
@pytest.mark.parametrize("stacked", [True, False])
def test_bits_equal_reinit_on_every_mesh(mesh_shape, layout, shardings, stacked):
    abstract = _abstract()
    want = jinit.reinit(nn.unbox(abstract), jax.random.key(7), RULES)
    mesh = _mesh(mesh_shape)
    got = jinit.init_sharded(
        abstract, jax.random.key(7), RULES, mesh=mesh, shardings=shardings(abstract),
        stacked=stacked,
    )  # fmt: skip
    _assert_same_bits(got, want)
    up = nn.unbox(got)["params"]["block_1"]["up"]["kernel"]
    expected = {
        "annotations": P("data", "model"),
        "data": P(),
        "fsdp": P(("data", "model")),
        "tensor": P(None, "model"),
    }[layout]
    assert up.sharding == NamedSharding(mesh, expected)
    for shard in up.addressable_shards:  # each device holds its shard, not the whole array
        assert shard.data.shape == up.sharding.shard_shape(up.shape)


def test_boxes_are_kept_and_the_table_lists_every_leaf():
    abstract = _abstract()
    mesh = _mesh(MESHES[-1])
    got, table = jinit.init_sharded(abstract, jax.random.key(1), RULES, mesh=mesh, explain=True)
    box = got["params"]["block_0"]["up"]["kernel"]
    assert isinstance(box, nn.Partitioned) and box.names == ("data", "model")
    paths = [p for p, _, _ in named_leaves(abstract, shapes=True)]
    assert [r.path for r in table.leaves] == paths
    # one program per (rule, shape, dtype, sharding), not per layer: LayerNorm and down biases
    # (32,), LayerNorm scale, up kernel, up bias, down kernel, embedding, head kernel, head bias
    assert table.groups == 8
    row = next(r for r in table.leaves if r.path == "params/block_3/up/kernel")
    assert row.group_size == 5 and row.sharding == "('data', 'model')"
    assert row.shard_shape == NamedSharding(mesh, P("data", "model")).shard_shape(row.shape)
    text = str(table)
    assert "params/block_3/up/kernel" in text and "8 program(s)" in text


def test_depth_does_not_add_programs():
    tables = [
        jinit.init_sharded(
            _abstract(Decoder(layers=n)), jax.random.key(0), RULES, mesh=_mesh((1, 1)), explain=True
        )[1]
        for n in (2, 12)
    ]
    assert tables[0].groups == tables[1].groups == 8


def _unique_rules(std):
    """Rules with initialisers no other test uses (scales of their own), so the first call
    with them compiles every program whatever ran before in this process."""
    return [
        ("*/kernel", jinit.normal(std)),
        ("*/embedding", jinit.normal(2 * std)),
        ("*/bias", jinit.truncated_normal(3 * std)),
        ("*/scale", jinit.constant(1.0 + std)),
    ]


def test_programs_are_compiled_once_and_reused_by_later_calls():
    abstract, mesh = _abstract(Decoder(layers=12)), _mesh(MESHES[-1])
    rules = _unique_rules(0.0123)

    def init(key, **kw):
        return jinit.init_sharded(abstract, key, rules, mesh=mesh, explain=True, **kw)

    assert init(jax.random.key(3))[1].reused == 0
    got, again = init(jax.random.key(4))  # another key: nothing is compiled
    assert again.reused == again.groups == 8
    assert "(8 compiled by an earlier call)" in str(again)
    _assert_same_bits(got, jinit.reinit(nn.unbox(abstract), jax.random.key(4), rules))
    # another sharding of the kernels, or another chunk size (the 12 layers' leaves one at a
    # time), needs programs of its own
    moved = init(jax.random.key(4), shardings={"*/kernel": P(), "*": P()})[1]
    assert moved.reused < moved.groups
    _, unstacked = init(jax.random.key(4), stacked=False)
    assert unstacked.reused < unstacked.groups
    # an initialiser with another parameter is another program, with its own values
    other = _unique_rules(0.0321)
    got, table = jinit.init_sharded(abstract, jax.random.key(4), other, mesh=mesh, explain=True)
    assert table.reused == 0
    _assert_same_bits(got, jinit.reinit(nn.unbox(abstract), jax.random.key(4), other))


def test_contextual_rules_are_compiled_afresh():
    """A contextual initialiser sees its leaf (path, siblings), so its program is never kept."""
    abstract, mesh = _abstract(), _mesh((1, 1))
    seen = []

    @jinit.contextual
    def by_path(key, leaf):
        seen.append(leaf.path)
        return jinit.normal(0.01)(key, leaf.shape, leaf.dtype)

    rules = [("*/head/kernel", by_path), *RULES]
    for k in (5, 6):
        got, table = jinit.init_sharded(abstract, jax.random.key(k), rules, mesh=mesh, explain=True)
        want = jinit.reinit(nn.unbox(abstract), jax.random.key(k), rules)
        _assert_same_bits(got, want)
        assert table.reused < table.groups
    assert seen.count("params/head/kernel") >= 4  # traced by both calls (and by reinit)


def test_bfloat16_params_are_drawn_as_reinit_draws_them():
    abstract = _abstract(Decoder(dtype=jnp.bfloat16))
    got = jinit.init_sharded(abstract, jax.random.key(2), RULES, mesh=_mesh(MESHES[-1]))
    want = jinit.reinit(nn.unbox(abstract), jax.random.key(2), RULES)
    _assert_same_bits(got, want)
    assert all(a.dtype == jnp.bfloat16 for a, _ in _pairs(got, want))


def test_logical_axis_rules_place_logically_partitioned_params():
    class Logical(nn.Module):
        @nn.compact
        def __call__(self, x):
            k = nn.with_logical_partitioning(nn.initializers.lecun_normal(), ("embed", "mlp"))
            return nn.Dense(16, kernel_init=k)(x)

    abstract = jax.eval_shape(Logical().init, jax.random.key(0), jnp.ones((1, 8)))
    mesh = _mesh(MESHES[-1])
    with nn.logical_axis_rules([("embed", None), ("mlp", "model")]):
        got = jinit.init_sharded(abstract, jax.random.key(3), RULES, mesh=mesh)
    kernel = nn.unbox(got)["params"]["Dense_0"]["kernel"]
    assert kernel.sharding.spec == P(None, "model")
    _assert_same_bits(got, jinit.reinit(nn.unbox(abstract), jax.random.key(3), RULES))


class NnxMLP(nnx.Module):
    def __init__(self, rngs):
        init = nnx.with_partitioning(nnx.initializers.lecun_normal(), (None, "model"))
        self.layers = nnx.List([nnx.Linear(16, 16, kernel_init=init, rngs=rngs) for _ in range(3)])


def test_nnx_abstract_module():
    mesh = _mesh(MESHES[-1])
    with jax.set_mesh(mesh):
        abstract = nnx.eval_shape(lambda: NnxMLP(nnx.Rngs(0)))
        got = jinit.init_sharded(abstract, jax.random.key(4), RULES)
        want = jinit.reinit(abstract, jax.random.key(4), RULES)
    a, b = nnx.state(got, nnx.Param), nnx.state(want, nnx.Param)
    _assert_same_bits(a, b)
    assert got.layers[1].kernel[...].sharding.spec == P(None, "model")


def test_equinox_module():
    abstract = eqx.filter_eval_shape(eqx.nn.MLP, 8, 4, 16, 3, key=jax.random.key(0))
    rules = [("*/weight", jinit.lecun_normal()), ("*/bias", jinit.zeros)]
    got = jinit.init_sharded(abstract, jax.random.key(5), rules, layouts={"*/weight": "torch"})
    want = jinit.reinit(abstract, jax.random.key(5), rules, layouts={"*/weight": "torch"})
    _assert_same_bits(got, want)


def test_a_device_never_holds_a_whole_leaf():
    """A 4096 x 1024 float32 leaf (16 MiB) over 4 devices: each device's program holds its
    4 MiB shard and little else (XLA's own memory analysis of the compiled program)."""
    if len(jax.devices()) < 4:
        pytest.skip("needs 4 devices")
    tree = {"w": jax.ShapeDtypeStruct((4096, 1024), jnp.float32)}
    _, table = jinit.init_sharded(
        tree,
        jax.random.key(0),
        [("w", jinit.he_normal())],
        mesh=_mesh((4, 1)),
        shardings={"w": P("data")},
        explain=True,
    )
    shard = 4096 * 1024 * 4 // 4
    assert table.peak_device_bytes is not None
    assert shard <= table.peak_device_bytes <= 1.2 * shard


def test_progress_reports_every_leaf():
    calls = []
    jinit.init_sharded(
        _abstract(),
        jax.random.key(0),
        RULES,
        mesh=_mesh((1, 1)),
        progress=lambda d, t, p: calls.append((d, t)),
    )
    total = len(named_leaves(_abstract(), shapes=True))
    assert calls[-1] == (total, total)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"shardings": {"*": P("nope")}}, ValueError, "lacks"),
        ({"shardings": {"*": P("data", "model", "data")}}, ValueError, "entries"),
        ({"shardings": {"params": {"head": {"kernel": 3}}}}, TypeError, "leaf"),
        ({"mesh": "mesh"}, TypeError, "jax.sharding.Mesh"),
        ({"progress": 3}, TypeError, "progress"),
        ({"stacked": "yes"}, TypeError, "stacked"),
    ],
)
def test_bad_arguments_are_refused(kwargs, error, words):
    kwargs = {"mesh": _mesh(MESHES[-1]), **kwargs}
    with pytest.raises(error, match=words):
        jinit.init_sharded(_abstract(), jax.random.key(0), RULES, **kwargs)


def test_a_spec_without_a_mesh_is_refused():
    with pytest.raises(ValueError, match="no mesh"):
        jinit.init_sharded(_abstract(), jax.random.key(0), RULES, shardings={"*": P("data")})


def test_a_non_partitionable_key_is_refused_for_sharded_leaves():
    if len(jax.devices()) < 2:
        pytest.skip("needs 2 devices")
    with pytest.raises(ValueError, match="partitionable threefry"):
        jinit.init_sharded(_abstract(), jax.random.key(0, impl="rbg"), RULES, mesh=_mesh((2, 1)))


# ---------------------------------------------------------------------------------------------
# 8 devices in one process, and 2 processes x 4 devices (jax.distributed on 127.0.0.1)
# ---------------------------------------------------------------------------------------------

_WORKER = """
import sys
import jax

pid, nproc = int(sys.argv[1]), int(sys.argv[2])
port, out, here = sys.argv[3:6]
jax.config.update("jax_num_cpu_devices", 8 // nproc)
if nproc > 1:
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(f"127.0.0.1:{port}", num_processes=nproc, process_id=pid)
import json
import numpy as np
import flax.linen as nn
sys.path.insert(0, here)
import jinit
from test_init_sharded import RULES, _abstract

assert len(jax.devices()) == 8
mesh = jax.make_mesh((2, 4), ("data", "model"))
got = nn.unbox(jinit.init_sharded(_abstract(), jax.random.key(7), RULES, mesh=mesh))
shards = {}
for path, leaf in jax.tree_util.tree_flatten_with_path(got)[0]:
    name = jax.tree_util.keystr(path)
    for i, s in enumerate(leaf.addressable_shards):
        index = [(sl.start or 0, sl.stop if sl.stop is not None else n)
                 for sl, n in zip(s.index, leaf.shape)]
        shards[f"{name}|{i}|{json.dumps(index)}"] = np.asarray(s.data)
np.savez(out, **shards)
if nproc > 1:
    jax.distributed.shutdown()
"""


def _run_workers(nproc: int, tmp_path: Path) -> list[dict[str, np.ndarray]]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    here = str(Path(__file__).resolve().parent)
    outs = [str(tmp_path / f"n{nproc}_p{i}.npz") for i in range(nproc)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, str(i), str(nproc), port, outs[i], here],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for i in range(nproc)
    ]
    logs = [p.communicate(timeout=300)[0].decode(errors="replace") for p in procs]
    for p, log in zip(procs, logs, strict=True):
        assert p.returncode == 0, log[-3000:]
    return [dict(np.load(o)) for o in outs]


@pytest.mark.parametrize("nproc", [1, 2])
def test_eight_devices_one_or_two_processes(nproc, tmp_path):
    """Every shard any process holds equals the same slice of the unsharded reinit."""
    want = jax.tree_util.tree_flatten_with_path(
        jinit.reinit(nn.unbox(_abstract()), jax.random.key(7), RULES)
    )[0]
    want = {jax.tree_util.keystr(p): np.asarray(v) for p, v in want}
    seen = set()
    for got in _run_workers(nproc, tmp_path):
        for label, data in got.items():
            name, _, index = label.split("|")
            bounds = json.loads(index)  # [[start, stop], ...] per axis
            expected = want[name][tuple(slice(a, b) for a, b in bounds)]
            np.testing.assert_array_equal(data, expected, err_msg=label)
            seen.add(name)
    assert seen == set(want)
