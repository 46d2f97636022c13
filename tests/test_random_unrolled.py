"""The unrolled threefry samplers (``jinit._core._random``) give jax.random's bits, or defer to it.

Every case compares whole arrays byte for byte with ``jax.random`` called the same way
(eager, jit, vmap over keys, inside a scan, typed and raw keys, 16/32/64-bit floats), checks
that the fast path is actually the one compiled (no rolled ``while`` loop in the program),
and that every case outside the fast path's conditions falls back to jax itself.
"""

from __future__ import annotations

import contextlib
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jinit._core import _random

SAMPLERS = {
    "normal": (
        lambda k, s, d: _random.normal(k, s, d),
        lambda k, s, d: jax.random.normal(k, s, d),
    ),
    "uniform": (
        lambda k, s, d: _random.uniform(k, s, d, -1.5, 0.25),
        lambda k, s, d: jax.random.uniform(k, s, d, -1.5, 0.25),
    ),
    "uniform01": (
        lambda k, s, d: _random.uniform(k, s, d),
        lambda k, s, d: jax.random.uniform(k, s, d),
    ),
    "truncated_normal": (
        lambda k, s, d: _random.truncated_normal(k, -2, 2, s, d),
        lambda k, s, d: jax.random.truncated_normal(k, -2, 2, s, d),
    ),
    "truncated_normal_asym": (
        lambda k, s, d: _random.truncated_normal(k, -0.5, 3.0, s, d),
        lambda k, s, d: jax.random.truncated_normal(k, -0.5, 3.0, s, d),
    ),
}
SHAPES = [(1,), (5, 3), (129, 65), (3, 3, 16, 8)]
DTYPES = ["float32", "bfloat16", "float16"]


def _key(kind: str, seed: int = 11):
    return jax.random.key(seed) if kind == "typed" else jax.random.PRNGKey(seed)


def _split(kind: str, n: int):
    keys = jax.random.split(jax.random.key(5), n)
    return keys if kind == "typed" else jax.random.key_data(keys)


def _contexts(ours, theirs, kind, shapes, dtypes):
    """``(name, ours(), theirs())`` for each way a user calls a sampler; every shape in every
    dtype is drawn in the same program (one compile per context)."""
    one = _key(kind)
    many = _split(kind, 3)
    cases = [(jnp.dtype(d), s) for d in dtypes for s in shapes]

    def each(f, scale=None):
        def draw(k):
            out = tuple(f(jax.random.fold_in(k, i), s, d) for i, (d, s) in enumerate(cases))
            if scale is None:
                return out
            return tuple(x * jnp.asarray(scale, x.dtype) for x in out)

        return draw

    def scanned(f):
        def body(c, k):
            return c, each(f)(k)

        return jax.jit(lambda ks: jax.lax.scan(body, 0, ks)[1])(many)

    return [
        ("eager", each(ours)(one), each(theirs)(one)),
        ("jit", jax.jit(each(ours))(one), jax.jit(each(theirs))(one)),
        ("jit(vmap)", jax.jit(jax.vmap(each(ours)))(many), jax.jit(jax.vmap(each(theirs)))(many)),
        ("scan", scanned(ours), scanned(theirs)),
        # a multiplier after the draw, as every initialiser applies one
        ("jit scaled", jax.jit(each(ours, 0.37))(one), jax.jit(each(theirs, 0.37))(one)),
    ]


def _same_bits(a, b, what):
    if isinstance(a, tuple):
        assert isinstance(b, tuple) and len(a) == len(b), what
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same_bits(x, y, f"{what} [case {i}]")
        return
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape, what
    assert a.tobytes() == b.tobytes(), f"{what}: {np.sum(a != b)} of {a.size} values differ"


# typed keys in every dtype (one program draws them all); raw uint32[2] keys in float32
KEY_DTYPES = {"typed": DTYPES, "raw": ["float32"]}


@pytest.mark.parametrize("kind", sorted(KEY_DTYPES))
@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_same_bits_as_jax(name, kind):
    ours, theirs = SAMPLERS[name]
    dtypes = KEY_DTYPES[kind]
    for ctx, a, b in _contexts(ours, theirs, kind, SHAPES, dtypes):
        _same_bits(a, b, f"{name} {dtypes} {kind} {ctx}")


@pytest.mark.parametrize("name", ["normal", "uniform", "truncated_normal"])
def test_same_bits_as_jax_float64(name):
    ours, theirs = SAMPLERS[name]
    with jax.enable_x64(True):
        for ctx, a, b in _contexts(ours, theirs, "typed", SHAPES, ["float64"]):
            _same_bits(a, b, f"{name} float64 {ctx}")


@pytest.mark.parametrize("shape", SHAPES[1:3])
def test_bits_same_as_jax(shape):
    for kind in ("typed", "raw"):
        k = _key(kind, 3)
        _same_bits(_random.bits(k, shape), jax.random.bits(k, shape), f"bits {shape} {kind}")
        f = jax.jit(jax.vmap(lambda k: _random.bits(k, shape, jnp.uint32)))
        g = jax.jit(jax.vmap(lambda k: jax.random.bits(k, shape, jnp.uint32)))
        _same_bits(f(_split(kind, 4)), g(_split(kind, 4)), f"vmapped bits {shape} {kind}")


def test_threefry_known_answers():
    """Random123's known-answer vectors for Threefry-2x32, 20 rounds."""
    cases = [
        ((0x00000000, 0x00000000), (0x00000000, 0x00000000), (0x6B200159, 0x99BA4EFE)),
        ((0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF), (0x1CB996FC, 0xBB002BE7)),
        ((0x13198A2E, 0x03707344), (0x243F6A88, 0x85A308D3), (0xC4923A9C, 0x483DF7A0)),
    ]
    for (k0, k1), (x0, x1), expected in cases:
        got = _random.threefry2x32(
            np.uint32(k0), np.uint32(k1), np.array([x0], np.uint32), np.array([x1], np.uint32)
        )
        assert tuple(int(v[0]) for v in got) == expected


def _lowered(fn, *args) -> str:
    return jax.jit(fn).lower(*args).as_text()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["normal", "uniform", "truncated_normal"])
def test_fast_path_is_compiled_without_the_rolled_loop(name, dtype):
    """In every dtype (bfloat16 takes 8 random bits per value, as jax does): a self-check that
    failed would fall back to jax, equal in bits but with jax's loop."""
    key = jax.random.key(0)
    args = {"normal": (), "uniform": (), "truncated_normal": (-2.0, 2.0)}[name]
    ours = _lowered(lambda k: getattr(_random, name)(k, *args, (64, 64), dtype), key)
    theirs = _lowered(lambda k: getattr(jax.random, name)(k, *args, (64, 64), dtype), key)
    # jax's CPU lowering of threefry is a 5-iteration while loop; ours is straight-line
    if jax.default_backend() == "cpu":
        assert "while" in theirs
    assert "while" not in ours


def _rbg_key():
    return jax.random.key(0, impl="rbg")


FALLBACKS = {
    # (why the fast path does not apply, ours, theirs)
    "rbg key": (
        lambda: _random.normal(_rbg_key(), (8, 8)),
        lambda: jax.random.normal(_rbg_key(), (8, 8)),
    ),
    "array bounds": (
        lambda: _random.uniform(jax.random.key(1), (4, 3), jnp.float32, jnp.zeros(3), 2.0),
        lambda: jax.random.uniform(jax.random.key(1), (4, 3), jnp.float32, jnp.zeros(3), 2.0),
    ),
    "scalar shape": (
        lambda: _random.normal(jax.random.key(2), ()),
        lambda: jax.random.normal(jax.random.key(2), ()),
    ),
    "empty": (
        lambda: _random.normal(jax.random.key(2), (0, 4)),
        lambda: jax.random.normal(jax.random.key(2), (0, 4)),
    ),
    "complex": (
        lambda: _random.normal(jax.random.key(2), (4, 4), jnp.complex64),
        lambda: jax.random.normal(jax.random.key(2), (4, 4), jnp.complex64),
    ),
}


@pytest.mark.parametrize("case", sorted(FALLBACKS))
def test_outside_the_fast_path_jax_itself_answers(case):
    ours, theirs = FALLBACKS[case]
    _same_bits(ours(), theirs(), case)


@contextlib.contextmanager
def _unpartitionable():
    old = jax.config.jax_threefry_partitionable
    jax.config.update("jax_threefry_partitionable", False)
    try:
        yield
    finally:
        jax.config.update("jax_threefry_partitionable", old)


def test_non_partitionable_threefry_falls_back():
    with _unpartitionable():
        k = jax.random.key(9)
        _same_bits(_random.normal(k, (33, 5)), jax.random.normal(k, (33, 5)), "normal")
        assert "while" in _lowered(lambda k: _random.normal(k, (33, 5)), k)


def test_a_failed_self_check_falls_back_to_jax(monkeypatch):
    """If jax ever changed its samplers, jinit would notice and defer to jax, not drift."""
    ours, theirs = _random._SAMPLERS["normal"]
    _random._agrees_with_jax.cache_clear()
    monkeypatch.setitem(
        _random._SAMPLERS, "normal", (lambda k, s, d: ours(k, s, d) + jnp.asarray(1e-3, d), theirs)
    )
    try:
        assert not _random._agrees_with_jax("normal", np.dtype("float32"), True)
        k = jax.random.key(4)
        _same_bits(_random.normal(k, (16, 16)), jax.random.normal(k, (16, 16)), "fallback")
        assert "while" in _lowered(lambda k: _random.normal(k, (16, 16)), k)
    finally:
        _random._agrees_with_jax.cache_clear()


def _program(f, *args) -> list[str]:
    """The instructions of ``f``'s compiled program with names, metadata and the module name
    made canonical (the numbering of instructions differs between two compilations)."""
    text = f.lower(*args).compile().as_text()
    names: dict[str, int] = {}
    out = []
    for line in text.splitlines():
        if " = " not in line and not line.strip().startswith(("ENTRY", "%", "ROOT", "}")):
            continue
        line = re.sub(r",?\s*metadata=\{[^}]*\}", "", line)
        line = re.sub(r"jit_\w+", "F", line)
        line = re.sub(r"^ENTRY (\S+) \(.*\) ->", r"ENTRY \1 (...) ->", line)  # argument names
        out.append(re.sub(r"%[\w.\-]+", lambda m: f"%v{names.setdefault(m[0], len(names))}", line))
    return out


@pytest.mark.parametrize("kind", sorted(_random._SAMPLERS))
def test_a_jit_around_a_sampler_compiles_its_eager_program(kind):
    """The self-check draws once, under a ``jit`` of its own. That covers eager draws too
    because each sampler, ours and jax's, is one jitted call (or one primitive) besides
    wrapping a raw key: an eager call runs that call's program, and a surrounding ``jit``
    compiles the same one (were a sampler ever several ops run one by one, this would fail,
    and the self-check would have to draw eagerly as well)."""
    ours, theirs = _random._SAMPLERS[kind]
    dtype = np.dtype("uint32" if kind == "bits" else "float32")
    params = _random._CHECK_PARAMS.get(kind, ())
    for key in (jax.random.key(1), jax.random.PRNGKey(1)):
        args = (key, _random._CHECK_SHAPE, dtype, *params)
        for sampler in (ours, theirs):
            eqns = jax.make_jaxpr(sampler, static_argnums=(1, 2))(*args).eqns
            ops = [e.primitive.name for e in eqns if e.primitive.name != "random_wrap"]
            assert ops in (["jit"], ["random_bits"]), (kind, ops)
        # XLA inlines the jitted call: the same compiled program, eager or under a jit
        if kind == "bits":
            eager, eager_args = _random._raw_bits, (key, 32, _random._CHECK_SHAPE)
        else:
            eager, eager_args = ours, args
        inside = jax.jit(lambda *a: ours(*a), static_argnums=(1, 2))
        assert _program(inside, *args) == _program(eager, *eager_args), kind
