r"""Initialise a whole parameter tree at scale: ``jinit.init_sharded``.

Large models hit three walls when they are initialised with ``jax.jit(model.init,
out_shardings=...)``: the compile grows with depth (google/flax#879, #1277), parameters
materialise whole before they are sharded (jax-ml/jax#19893, google/flax#3701), and values change
with the mesh unless the random numbers are partitionable (jax-ml/jax#21232).
:func:`init_sharded` starts from the **abstract** tree (``jax.eval_shape`` /
``nnx.eval_shape``), matches every leaf to a :func:`jinit.reinit` rule, and then:

* groups the leaves that share a rule, shape, dtype, layout and target sharding (the repeated
  blocks of a transformer) and draws each group **stacked**, under one ``vmap`` over the
  leaves' keys, in one compiled program per group, so the number of programs and their size do
  not grow with depth;
* compiles each group with the leaves' target shardings as ``out_shardings``: with
  partitionable threefry counters XLA's SPMD partitioner gives each device the counters of its
  own shard, so each device draws **only its shard** (element-wise laws; a QR-based orthogonal
  draw needs its whole matrix on the devices that hold it);
* draws leaf :math:`\ell` from :math:`\mathrm{fold\_in}(\mathrm{key}, h(\ell))` exactly as
  :func:`jinit.reinit` does, so the values are **bit-identical** to ``jinit.reinit`` of the same
  tree and key, whatever the mesh, layout, stacking or number of processes.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import numpy as np

from jinit._core._checks import PRNGKey, check_key
from jinit._core._layout import Layout
from jinit._core._paths import is_box, path_str, rebox
from jinit._core._seeds import CompiledCache
from jinit.trees._draw import draw_leaf
from jinit.trees._leaf_checks import check_layouts
from jinit.trees._reinit import TreePlan, on_params, plan_tree, warn_narrowed
from jinit.trees._rules import (
    CheckedRule,
    Contextual,
    LeafInfo,
    SelfCheckingRules,
    check_rules,
    path_hash,
    tree_paths,
)
from jinit.trees._sharded_table import ShardedInitTable, ShardedLeaf
from jinit.trees._sharding_targets import (
    API,
    check_partitionable,
    given_shardings,
    own_sharding,
    resolve,
    spec_text,
)

# a stacked chunk holds at most this many leaves, and at most this fraction of the bytes all
# drawn leaves take on a device: the stack is the only memory beyond the parameters themselves
_MAX_STACK = 4
_STACK_FRACTION = 0.05

#: compiled group programs, kept across calls: initialising the same model again (another
#: key, a restart, the next seed of a study) lowers and compiles nothing
_PROGRAMS = CompiledCache(64)


# ---------------------------------------------------------------------------------------------
# Groups and their programs
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass
class _Group:
    rule: CheckedRule
    info: LeafInfo
    sharding: Any  # every leaf of a group has this one (it is part of the group's key)
    # what its leaves share: (initialiser, shape, draw dtype, leaf dtype, layout, sharding),
    # or ("alone", path) for a contextual rule; it also keys the compiled-program cache
    key: tuple
    paths: list[str] = dataclasses.field(default_factory=list)
    device_bytes: int | None = None
    temp_bytes: int | None = None


def _groups(plan: TreePlan, targets: dict[str, Any]) -> list[_Group]:
    """Drawn leaves grouped by (initialiser, shape, draw dtype, leaf dtype, layout, sharding); a
    contextual rule (it sees the leaf's path and siblings) keeps its leaves apart."""
    groups: dict[Any, _Group] = {}
    for p, a, _ in plan.leaves:
        if not plan.drawn(p, a):
            continue
        rule, info = plan.winners[p], plan.info(p, a)
        alone = isinstance(rule.init, Contextual)
        gkey = (
            ("alone", p)
            if alone
            else (
                _same_draw(rule),
                info.shape,
                info.dtype,
                np.dtype(a.dtype),
                info.layout,
                targets[p],
            )
        )
        if gkey not in groups:
            if not alone:  # the draw sees no value: a bare struct of the leaf's shape and dtype
                bare = jax.ShapeDtypeStruct(info.shape, a.dtype)
                info = dataclasses.replace(info, value=bare, siblings={})
            groups[gkey] = _Group(rule, info, targets[p], gkey)
        groups[gkey].paths.append(p)
    return list(groups.values())


def _same_draw(rule: CheckedRule) -> Any:
    """What makes two rules draw alike: their initialiser where it compares by value or
    identity (``jinit.own_rules`` gives each layer its own rule, equal for equal layers), else
    the rule itself."""
    try:
        hash(rule.init)
    except TypeError:
        return ("rule", rule.index)
    return ("init", rule.init)


def _program(group: _Group, impl: Any, chunk: int) -> Callable[..., tuple[jax.Array, ...]]:
    """The jitted draw of ``chunk`` leaves of one group: ``(key data, path hashes) -> leaves``,
    with the leaves' shardings as ``out_shardings`` (so each device computes only its shards).
    Several leaves are drawn stacked, under one ``vmap`` over their keys."""
    rule, info = group.rule, group.info

    def one(k: jax.Array) -> jax.Array:
        return draw_leaf(API, rule, k, info, None)

    def fn(key_data: jax.Array, hashes: jax.Array) -> tuple[jax.Array, ...]:
        key = key_data if impl is None else jax.random.wrap_key_data(key_data, impl=impl)
        if chunk == 1:
            return (one(jax.random.fold_in(key, hashes[0])),)
        keys = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(key, hashes)
        drawn = jax.vmap(one)(keys)
        return tuple(drawn[i] for i in range(chunk))

    return jax.jit(fn, out_shardings=(group.sharding,) * chunk)


def _compiled(
    group: _Group, impl: Any, chunk: int, key_data: np.ndarray, hashes: np.ndarray
) -> tuple[tuple[Any, tuple[int | None, int | None]], bool]:
    """``((the group's compiled program, its memory (:func:`_device_bytes`)), whether an
    earlier call compiled it)``.

    The cache key is everything the program depends on: the group's own key (initialiser by
    value where it compares by value, shape, dtypes, layout, target sharding with its mesh),
    the key's implementation and data shape, and the chunk. A contextual rule's group (it sees
    its leaf's path and siblings) and a rule whose initialiser cannot be hashed are compiled
    afresh each call."""

    def compile_group() -> tuple[Any, tuple[int | None, int | None]]:
        compiled = _program(group, impl, chunk).lower(key_data, hashes).compile()
        return compiled, _device_bytes(compiled)

    same = group.key[0]  # ("alone", path), or _same_draw's ("init", ...) / ("rule", index)
    if same == "alone" or same[0] != "init":
        return compile_group(), False
    key = (API, group.key, impl, key_data.shape, key_data.dtype.str, chunk)
    misses = _PROGRAMS.misses
    entry = _PROGRAMS.get(key, compile_group)
    return entry, _PROGRAMS.misses == misses


def _bar(progress: Any) -> Callable[[int, int, str], None] | None:
    if progress is None or progress is False:
        return None
    if callable(progress):
        return progress

    def text_bar(done: int, total: int, path: str) -> None:
        width = 30
        filled = width * done // max(total, 1)
        sys.stderr.write(
            f"\r{API}: [{'#' * filled}{'.' * (width - filled)}] {done}/{total} leaves {path[-40:]}"
        )
        if done == total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return text_bar


# ---------------------------------------------------------------------------------------------
# init_sharded
# ---------------------------------------------------------------------------------------------


def init_sharded(
    params: Any,
    key: PRNGKey,
    rules: Sequence[tuple[str, Any]] | Mapping[str, Any],
    *,
    shardings: Any = None,
    mesh: jax.sharding.Mesh | None = None,
    stacked: bool = True,
    strict: bool = True,
    regex: bool = False,
    layouts: Mapping[str, Layout | str | None] | None = None,
    explain: bool = False,
    progress: bool | Callable[[int, int, str], None] | None = None,
) -> Any:
    r"""Initialises a (possibly abstract) parameter tree directly into its shardings.

    The values are those of :func:`jinit.reinit` with the same tree, key and rules, bit for bit:
    leaf :math:`\ell` is :math:`\mathrm{init}_{r(\ell)}(\mathrm{fold\_in}(\mathrm{key},
    h(\ell)), \mathrm{shape}, \mathrm{dtype})`. What changes is how they are made:

    * leaves that share a rule, shape, dtype, layout and target sharding (the layers of a deep
      model) form a **group** with one compiled program, which draws a chunk of the group's
      leaves stacked under one ``vmap`` over their keys and runs once per chunk (chunks of at
      most 4 leaves and 5 % of a device's parameter bytes; ``stacked=False``: one leaf per
      run). So the number and size of the programs do not grow with depth, and a device holds
      at most one chunk's stack beyond the parameters;
    * each program is compiled with its leaves' shardings as ``out_shardings``: with
      partitionable threefry keys every device computes only its own shard of each leaf, so
      an element-wise draw never exists whole anywhere (a QR-based orthogonal draw needs its
      whole matrix: XLA computes it where it is needed);
    * it runs unchanged across processes (``jax.distributed``): each process gets the
      addressable shards of the same global arrays;
    * the compiled programs are kept (the 64 most recently used, keyed by initialiser, shape,
      dtypes, layout, sharding, key type and chunk): initialising the same model again, with
      another key or after a restart of the training loop, traces and compiles nothing. An
      initialiser is recognised by value where it compares by value (jinit's do), else by
      identity; a :func:`jinit.contextual` one is traced afresh each call.

    Target shardings, for each leaf: ``shardings`` if it names the leaf; else the leaf's own
    (a concrete array's sharding, a ``jax.ShapeDtypeStruct``'s ``sharding``, or the Flax
    annotation of its box: ``nn.with_partitioning`` / ``nn.LogicallyPartitioned`` with the
    logical axis rules in context / ``nnx.with_partitioning``); else replicated over ``mesh``
    (one device without a mesh). Partition specs are placed on ``mesh``, or the mesh set with
    ``jax.set_mesh``.

    Args:
      params: the tree: ``jax.eval_shape(model.init, ...)`` (linen, with or without Flax
        partitioning boxes), an abstract or concrete ``nnx.Module`` / ``nnx.State``, an equinox
        module, or concrete parameters to re-initialise.
      key: a PRNG key (threefry with ``jax_threefry_partitionable`` when any leaf spans
        several devices).
      rules: ordered ``(pattern, initialiser)`` pairs, as for :func:`jinit.reinit` (a recipe
        from :mod:`jinit.recipes` too).
      shardings: optional: a mapping from path patterns (globs; regexes with ``regex=True``;
        the first match wins) to ``PartitionSpec`` / ``NamedSharding``, or a tree with the
        parameters' structure whose leaves are specs or ``None``.
      mesh: the mesh for partition specs (default: the mesh set with ``jax.set_mesh``).
      stacked: draw a group's leaves in stacked chunks under one ``vmap`` (default) or one
        leaf per run of the group's program (the same values either way).
      strict, regex, layouts: as for :func:`jinit.reinit`.
      explain: also return a :class:`ShardedInitTable` (path, shape, dtype, sharding,
        initialiser, group).
      progress: ``True`` for a text progress bar on stderr, or a callable
        ``progress(done_leaves, total_leaves, last_path)`` called after each group.

    Returns:
      The tree with every drawn leaf a ``jax.Array`` in its target sharding (an nnx module: a
      clone with new parameters); with ``explain=True`` the pair ``(tree, table)``.

    Raises:
      TypeError / ValueError: as :func:`jinit.reinit` for the tree and rules, before anything
        is drawn; also for a malformed ``shardings``, a spec naming axes the mesh lacks, a spec
        without a mesh, or a non-partitionable key for a multi-device sharding.

    Example:
      >>> import jax, jax.numpy as jnp, jinit
      >>> import flax.linen as nn
      >>> class MLP(nn.Module):
      ...     @nn.compact
      ...     def __call__(self, x):
      ...         for i in range(3):
      ...             x = nn.Dense(16, name=f"layer_{i}")(x)
      ...         return x
      >>> abstract = jax.eval_shape(MLP().init, jax.random.key(0), jnp.ones((1, 16)))
      >>> rules = [("*/kernel", jinit.he_uniform()), ("*/bias", jinit.zeros)]
      >>> params, table = jinit.init_sharded(abstract, jax.random.key(1), rules, explain=True)
      >>> table.groups  # three kernels stacked in one program, three biases in another
      2
      >>> same = jinit.reinit(abstract, jax.random.key(1), rules)
      >>> all(bool((a == b).all()) for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(same)))
      True
    """
    key = check_key(API, key)
    for name, flag in (("stacked", stacked), ("strict", strict), ("regex", regex)):
        if not isinstance(flag, bool | np.bool_):
            raise TypeError(f"`{API}` needs `{name}` to be a bool; got {flag!r}.")
    if not isinstance(explain, bool | np.bool_):
        raise TypeError(f"`{API}` needs `explain` to be a bool; got {explain!r}.")
    if mesh is not None and not isinstance(mesh, jax.sharding.Mesh):
        raise TypeError(f"`{API}` needs `mesh` to be a jax.sharding.Mesh; got {mesh!r}.")
    if progress is not None and not isinstance(progress, bool) and not callable(progress):
        raise TypeError(
            f"`{API}` needs `progress` to be a bool or a callable (done, total, path); got "
            f"{progress!r}."
        )
    compiled = check_rules(API, rules, bool(regex))
    given = check_layouts(API, layouts)
    if isinstance(rules, SelfCheckingRules):
        rules.check_paths(tree_paths(params), regex=bool(regex))
    if mesh is None:
        current = jax.sharding.get_mesh()
        mesh = None if current is None or getattr(current, "empty", True) else current
    run = _Run(key, compiled, shardings, mesh, bool(stacked), bool(strict), bool(regex), progress)
    new, table = on_params(params, given, run)
    return (new, table) if explain else new


@dataclasses.dataclass
class _Run:
    key: jax.Array
    rules: tuple[CheckedRule, ...]
    shardings: Any
    mesh: Any
    stacked: bool
    strict: bool
    regex: bool
    progress: Any
    compile_seconds: float = 0.0
    reused: int = 0

    def __call__(self, tree: Any, layouts: Mapping[str, Any]) -> tuple[Any, ShardedInitTable]:
        plan = plan_tree(tree, self.rules, self.strict, API, None, layouts)
        paths = [p for p, _, _ in plan.leaves]
        wanted = given_shardings(self.shardings, paths, self.regex)
        targets = {
            p: resolve(
                p,
                tuple(a.shape),
                wanted.get(p, own_sharding(a, plan.annotated.get(p))),
                self.mesh,
            )
            for p, a, _ in plan.leaves
            if plan.drawn(p, a)
        }
        check_partitionable(self.key, list(targets.values()))
        narrowed = [
            (p, np.dtype(a.dtype).name)
            for p, a, _ in plan.leaves
            if plan.drawn(p, a) and plan.info(p, a).dtype != np.dtype(a.dtype)
        ]
        if narrowed:
            warn_narrowed(API, narrowed)
        groups = _groups(plan, targets)
        values = self._draw(groups)
        new = jax.tree_util.tree_map_with_path(
            lambda kp, leaf: _rebuilt(kp, leaf, values), tree, is_leaf=is_box
        )
        return new, _table(plan, groups, targets, self.compile_seconds, self.reused)

    def _draw(self, groups: list[_Group]) -> dict[str, jax.Array]:
        typed = jax.dtypes.issubdtype(self.key.dtype, jax.dtypes.prng_key)
        impl = jax.random.key_impl(self.key) if typed else None
        key_data = np.asarray(jax.random.key_data(self.key) if typed else self.key)
        bar = _bar(self.progress)
        total = sum(len(g.paths) for g in groups)
        total_bytes = sum(_shard_bytes(g) * len(g.paths) for g in groups)
        budget = _STACK_FRACTION * total_bytes
        done, values = 0, {}
        for g in groups:
            n = len(g.paths)
            chunk = min(n, _MAX_STACK, max(1, int(budget // max(_shard_bytes(g), 1))))
            chunk = chunk if self.stacked else 1
            hashes = np.array([path_hash(p) for p in g.paths], np.uint32)
            hashes = np.concatenate([hashes, np.repeat(hashes[-1:], -n % chunk)])
            # one program per group, run once per chunk (the last one padded, its extra
            # draws dropped): the compile does not grow with depth, and a device never holds
            # more than one chunk's stack beyond the parameters already drawn
            t0 = time.perf_counter()
            (compiled, memory), reused = _compiled(g, impl, chunk, key_data, hashes[:chunk])
            self.compile_seconds += time.perf_counter() - t0
            self.reused += reused
            g.device_bytes, g.temp_bytes = memory
            for start in range(0, n, chunk):
                out = compiled(key_data, hashes[start : start + chunk])
                values.update(zip(g.paths[start : start + chunk], out, strict=False))
                done += min(chunk, n - start)
                if bar is not None:
                    bar(done, total, g.paths[min(start + chunk, n) - 1])
        return values


def _shard_bytes(g: _Group) -> int:
    """Bytes of one leaf's shard on one device."""
    shard = g.sharding.shard_shape(g.info.shape)
    return int(np.prod(shard, dtype=np.int64)) * np.dtype(g.info.value.dtype).itemsize


def _device_bytes(compiled: Any) -> tuple[int | None, int | None]:
    """``(outputs + temporaries, temporaries)``: the bytes one device holds for a compiled
    group (``None`` where the backend does not report them)."""
    try:
        m = compiled.memory_analysis()
        temp = int(m.temp_size_in_bytes)
        return int(m.output_size_in_bytes) + temp, temp
    except Exception:  # a backend without memory analysis
        return None, None


def _rebuilt(keypath: Any, leaf: Any, values: dict[str, jax.Array]) -> Any:
    p = path_str(keypath)
    if p not in values:
        return leaf
    if is_box(leaf):
        return rebox(leaf)(values[p])
    return values[p]


def _table(
    plan: TreePlan,
    groups: list[_Group],
    targets: dict[str, Any],
    compile_seconds: float,
    reused: int,
) -> ShardedInitTable:
    where = {p: (i, len(g.paths)) for i, g in enumerate(groups) for p in g.paths}
    rows = []
    kept = []
    for p, a, _ in plan.leaves:
        if p not in where:
            kept.append(p)
            continue
        gi, size = where[p]
        rows.append(
            ShardedLeaf(
                path=p,
                shape=tuple(a.shape),
                dtype=np.dtype(a.dtype).name,
                sharding=spec_text(targets[p]),
                init=repr(plan.winners[p].init),
                group=gi,
                group_size=size,
                shard_shape=tuple(targets[p].shard_shape(tuple(a.shape))),
            )
        )
    return ShardedInitTable(
        tuple(rows),
        len(groups),
        tuple(kept),
        tuple(g.device_bytes for g in groups),
        tuple(g.temp_bytes for g in groups),
        compile_seconds,
        reused,
    )


__all__ = ["ShardedInitTable", "ShardedLeaf", "init_sharded"]
