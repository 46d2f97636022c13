"""The initialiser contract, for the whole core catalogue.

* Drop-in for ``jax.nn.initializers``: every public name there exists in jinit with the same
  signature (parameter names, kinds, defaults, order); builders work positionally.
* Calls follow ``init(key, shape, dtype=None, out_sharding=None)`` and are pure: the same key,
  shape and dtype give the same bytes twice, eagerly and under ``jit``, alone and as row ``i``
  of a ``vmap`` over keys; typed (``jax.random.key``) and raw (``jax.random.PRNGKey``) keys give
  the same bytes.
* Initialisers are values: equality and hash by hyper-parameters (so they are static arguments
  of ``jit`` that do not retrace), a ``repr`` that evaluates back to an equal initialiser, and a
  pickle round trip that keeps equality and outputs.
* ``dtype=None`` means float32 (float64 under x64) unless the builder was given a dtype.

The core catalogue is ``jinit.catalogue.entries()`` restricted to the families below, so a
new core initialiser added to the catalogue's tables is covered without editing this file.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import pickle

import chex
import jax
import jax.nn.initializers as jnn
import jax.numpy as jnp
import numpy as np
import pytest

import jinit
from jinit import catalogue

CORE_FAMILIES = ("constant", "simple", "variance scaling", "orthogonal")
CORE = [e for e in catalogue.entries() if e.family in CORE_FAMILIES]
CORE_IDS = [e.name for e in CORE]
SEED = 3
N_KEYS = 3


def assert_bit_identical(ours: jax.Array, theirs: jax.Array, what: str = "") -> None:
    assert ours.dtype == theirs.dtype, (what, ours.dtype, theirs.dtype)
    assert ours.shape == theirs.shape, (what, ours.shape, theirs.shape)
    assert np.asarray(ours).tobytes() == np.asarray(theirs).tobytes(), what


def dtypes_of(entry: catalogue.Entry) -> list[np.dtype]:
    out = [jnp.dtype(jnp.float32), jnp.dtype(jnp.bfloat16)]
    if entry.dtypes in ("real+complex", "any"):
        out.append(jnp.dtype(jnp.complex64))
    return out


def test_core_catalogue_is_complete():
    names = {e.name for e in CORE}
    public = {n for n in dir(jnn) if not n.startswith("_") and n != "Initializer"}
    assert public <= names, public - names


# ---------------------------------------------------------------------------------------------
# Drop-in signatures
# ---------------------------------------------------------------------------------------------

JAX_NAMES = sorted(n for n in dir(jnn) if not n.startswith("_") and n != "Initializer")


def _params(fn) -> list[tuple[str, object, object]]:
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]


@pytest.mark.parametrize("name", JAX_NAMES)
def test_same_signature_as_jax(name):
    """jax's parameters, in order, with jax's kinds and defaults; jinit may add only
    keyword-only parameters with defaults after them (e.g. ``layout=``), so every jax call
    is a jinit call with the same meaning."""
    ours, theirs = getattr(jinit, name), getattr(jnn, name)
    assert callable(ours)
    mine, jax_params = _params(ours), _params(theirs)
    assert mine[: len(jax_params)] == jax_params
    extra = inspect.signature(ours).parameters.values()
    for p in list(extra)[len(jax_params) :]:
        assert p.kind is inspect.Parameter.KEYWORD_ONLY, p
        assert p.default is not inspect.Parameter.empty, p


@pytest.mark.parametrize("entry", CORE, ids=CORE_IDS)
def test_call_signature_is_jax_initializer_protocol(entry):
    init = entry.build()
    assert isinstance(init, jnn.Initializer)
    assert isinstance(init, jinit.Initializer)
    assert _params(init) == [
        ("key", inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.empty),
        ("shape", inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.empty),
        ("dtype", inspect.Parameter.POSITIONAL_OR_KEYWORD, None),
        ("out_sharding", inspect.Parameter.POSITIONAL_OR_KEYWORD, None),
    ]


@pytest.mark.parametrize(
    "positional, keywords",
    [
        (
            lambda: jinit.constant(0.5, jnp.float16),
            lambda: jinit.constant(value=0.5, dtype=jnp.float16),
        ),
        (
            lambda: jinit.uniform(2.0, jnp.float16),
            lambda: jinit.uniform(scale=2.0, dtype=jnp.float16),
        ),
        (
            lambda: jinit.normal(2.0, jnp.float16),
            lambda: jinit.normal(stddev=2.0, dtype=jnp.float16),
        ),
        (
            lambda: jinit.truncated_normal(2.0, None, -1.0, 3.0),
            lambda: jinit.truncated_normal(stddev=2.0, lower=-1.0, upper=3.0),
        ),
        (
            lambda: jinit.variance_scaling(2.0, "fan_out", "uniform", 0, 1, (), jnp.float16),
            lambda: jinit.variance_scaling(
                scale=2.0,
                mode="fan_out",
                distribution="uniform",
                in_axis=0,
                out_axis=1,
                batch_axis=(),
                dtype=jnp.float16,
            ),
        ),
        (
            lambda: jinit.he_normal(0, 1, (), jnp.float16),
            lambda: jinit.he_normal(in_axis=0, out_axis=1, batch_axis=(), dtype=jnp.float16),
        ),
        (
            lambda: jinit.orthogonal(2.0, 0, jnp.float16),
            lambda: jinit.orthogonal(scale=2.0, column_axis=0, dtype=jnp.float16),
        ),
        (
            lambda: jinit.delta_orthogonal(2.0, 0, jnp.float16),
            lambda: jinit.delta_orthogonal(scale=2.0, column_axis=0, dtype=jnp.float16),
        ),
    ],
)
def test_builders_work_positionally(positional, keywords):
    assert positional() == keywords()
    key = jax.random.key(SEED)
    shape = (4, 16, 32) if isinstance(positional(), type(jinit.delta_orthogonal())) else (64, 32)
    # The call works positionally and by keyword, with a list shape too.
    a = positional()(key, shape, jnp.float32, None)
    b = keywords()(key=key, shape=list(shape), dtype=jnp.float32, out_sharding=None)
    assert_bit_identical(a, b)


# ---------------------------------------------------------------------------------------------
# Purity: eager, jit, vmap, keys
# ---------------------------------------------------------------------------------------------


def _shape(entry: catalogue.Entry) -> tuple[int, ...]:
    """(64, 32) where the entry accepts it, so most cases share compiled kernels."""
    try:
        jax.eval_shape(lambda k: entry.build()(k, (64, 32)), jax.random.key(0))
    except (ValueError, TypeError):
        return entry.example_shape
    return (64, 32)


CASES = [(e, e.build(), _shape(e), dt) for e in CORE for dt in dtypes_of(e)]


def _label(case) -> str:
    entry, _, shape, dtype = case
    return f"{entry.name} {shape} {dtype.name}"


def _draw_all(key):
    return [init(key, shape, dtype) for _, init, shape, dtype in CASES]


@functools.cache
def _eager(seed: int) -> list[jax.Array]:
    return _draw_all(jax.random.key(seed))


def test_same_key_gives_the_same_bytes():
    for case, a, b in zip(CASES, _eager(SEED), _draw_all(jax.random.key(SEED)), strict=True):
        assert_bit_identical(a, b, _label(case))


def test_jit_equals_eager():
    # One jit over every (entry, dtype): one compile instead of one per case.
    jitted = jax.jit(_draw_all)(jax.random.key(SEED))
    bad = [
        _label(c)
        for c, a, b in zip(CASES, _eager(SEED), jitted, strict=True)
        if np.asarray(a).tobytes() != np.asarray(b).tobytes() or a.dtype != b.dtype
    ]
    assert not bad, f"jit differs from eager for {bad}"


def test_vmap_rows_equal_eager_calls():
    keys = jax.random.split(jax.random.key(SEED), N_KEYS)
    batched = jax.jit(jax.vmap(_draw_all))(keys)
    eager = [_draw_all(keys[i]) for i in range(N_KEYS)]
    bad = set()
    for j, case in enumerate(CASES):
        assert batched[j].shape == (N_KEYS, *case[2])
        for i in range(N_KEYS):
            if np.asarray(batched[j][i]).tobytes() != np.asarray(eager[i][j]).tobytes():
                bad.add(_label(case))
    assert not bad, f"vmap row != eager call for {sorted(bad)}"


@pytest.mark.parametrize("entry", CORE, ids=CORE_IDS)
def test_typed_and_raw_keys_agree(entry):
    init, shape = entry.build(), entry.example_shape
    typed = init(jax.random.key(SEED), shape)
    raw = init(jax.random.PRNGKey(SEED), shape)
    assert_bit_identical(typed, raw)
    # A different key gives a different draw (constants excepted: they ignore the key).
    other = init(jax.random.key(SEED + 1), shape)
    assert (entry.family == "constant") == bool((other == typed).all())


# ---------------------------------------------------------------------------------------------
# Values: equality, hash, static jit arguments, repr, pickle
# ---------------------------------------------------------------------------------------------

EQUAL = [
    (lambda: jinit.he_normal(), lambda: jinit.he_normal()),
    (lambda: jinit.he_normal(), lambda: jinit.kaiming_normal()),
    (lambda: jinit.he_normal(), lambda: jinit.variance_scaling(2.0, "fan_in", "truncated_normal")),
    (lambda: jinit.he_normal(in_axis=[0, 1]), lambda: jinit.he_normal(in_axis=(0, 1))),
    (lambda: jinit.normal(1), lambda: jinit.normal(1.0)),
    (lambda: jinit.normal(dtype="float16"), lambda: jinit.normal(dtype=jnp.float16)),
    (lambda: jinit.constant(np.arange(3.0)), lambda: jinit.constant([0.0, 1.0, 2.0])),
    (lambda: jinit.orthogonal(), lambda: jinit.orthogonal(1.0, -1, None)),
    (lambda: jinit.zeros_init(), lambda: jinit.zeros),
]
UNEQUAL = [
    (lambda: jinit.he_normal(), lambda: jinit.he_uniform()),
    (lambda: jinit.he_normal(), lambda: jinit.he_normal(in_axis=0)),
    (lambda: jinit.he_normal(), lambda: jinit.he_normal(dtype=jnp.bfloat16)),
    (lambda: jinit.he_normal(), lambda: jinit.lecun_normal()),
    (lambda: jinit.normal(1.0), lambda: jinit.normal(2.0)),
    (lambda: jinit.normal(1.0), lambda: jinit.truncated_normal(1.0)),
    (lambda: jinit.truncated_normal(lower=-3.0), lambda: jinit.truncated_normal()),
    (lambda: jinit.orthogonal(), lambda: jinit.delta_orthogonal()),
    (lambda: jinit.orthogonal(column_axis=0), lambda: jinit.orthogonal()),
    (lambda: jinit.zeros, lambda: jinit.ones),
]


@pytest.mark.parametrize("a, b", EQUAL)
def test_equal_hyper_parameters_compare_and_hash_equal(a, b):
    assert a() == b() and hash(a()) == hash(b())
    assert len({a(), b()}) == 1


@pytest.mark.parametrize("a, b", UNEQUAL)
def test_different_hyper_parameters_compare_unequal(a, b):
    assert a() != b()


def test_static_jit_argument_does_not_retrace():
    @functools.partial(jax.jit, static_argnums=0)
    @chex.assert_max_traces(n=2)
    def draw(init, key):
        return init(key, (8, 8))

    key = jax.random.key(SEED)
    first = draw(jinit.he_normal(), key)
    # Freshly built but equal initialisers hit the cache: no new trace (chex would raise).
    for _ in range(3):
        assert_bit_identical(draw(jinit.he_normal(), key), first)
        draw(jinit.kaiming_normal(), key)
    draw(jinit.he_normal(in_axis=0), key)  # a different initialiser: the second trace
    with pytest.raises(AssertionError, match="traced"):
        draw(jinit.lecun_normal(), key)  # a third would be over the limit, so chex can fail


@pytest.mark.parametrize("entry", CORE, ids=CORE_IDS)
def test_repr_evaluates_back(entry):
    init = entry.build()
    text = repr(init)
    assert text.startswith("jinit.")
    assert eval(text, {"jinit": jinit, "jnp": jnp}) == init  # noqa: S307 - our own repr


@pytest.mark.parametrize(
    "init, text",
    [
        (jinit.zeros, "jinit.zeros"),
        (jinit.he_normal(), "jinit.he_normal()"),
        (jinit.kaiming_uniform(in_axis=0), "jinit.he_uniform(in_axis=0)"),
        (jinit.glorot_normal(dtype=jnp.bfloat16), "jinit.glorot_normal(dtype=jnp.bfloat16)"),
        (jinit.normal(0.02), "jinit.normal(stddev=0.02)"),
        (
            jinit.variance_scaling(1.0, "fan_in", "normal", out_axis=0),
            "jinit.variance_scaling(scale=1.0, mode='fan_in', distribution='normal', out_axis=0)",
        ),
        (jinit.orthogonal(2.0), "jinit.orthogonal(scale=2.0)"),
    ],
    ids=str,
)
def test_repr_is_readable(init, text):
    assert repr(init) == text


@pytest.mark.parametrize("entry", CORE, ids=CORE_IDS)
def test_pickle_round_trip(entry):
    init = entry.build()
    objs = [init]
    if "dtype" in {f.name for f in dataclasses.fields(init)}:  # a builder default dtype too
        objs.append(dataclasses.replace(init, dtype=jnp.dtype(jnp.bfloat16)))
    key, shape = jax.random.key(SEED), _shape(entry)
    for obj in objs:
        back = pickle.loads(pickle.dumps(obj))
        assert back == obj and hash(back) == hash(obj) and repr(back) == repr(obj)
        assert_bit_identical(back(key, shape), obj(key, shape))


# ---------------------------------------------------------------------------------------------
# Dtypes
# ---------------------------------------------------------------------------------------------


def _out_dtype(init, shape, dtype=None):
    """The dtype of init(key, shape, dtype) from an abstract evaluation (nothing compiled)."""
    return jax.eval_shape(lambda k: init(k, shape, dtype), jax.random.key(0)).dtype


@pytest.mark.parametrize("entry", CORE, ids=CORE_IDS)
def test_default_dtype_is_float32_or_float64_under_x64(entry):
    init, shape = entry.build(), entry.example_shape
    assert _out_dtype(init, shape) == jnp.float32
    assert init(jax.random.key(0), shape).dtype == jnp.float32
    with jax.enable_x64(True):
        assert _out_dtype(init, shape) == jnp.float64
    for dtype in dtypes_of(entry):
        assert _out_dtype(init, shape, dtype) == dtype


BUILDERS_WITH_DTYPE = [
    ("constant", lambda dtype=None: jinit.constant(0.1, dtype), (4, 3)),
    ("uniform", lambda dtype=None: jinit.uniform(dtype=dtype), (64, 32)),
    ("normal", lambda dtype=None: jinit.normal(dtype=dtype), (64, 32)),
    ("truncated_normal", lambda dtype=None: jinit.truncated_normal(dtype=dtype), (64, 32)),
    (
        "variance_scaling",
        lambda dtype=None: jinit.variance_scaling(1.0, "fan_avg", "normal", dtype=dtype),
        (64, 32),
    ),
    ("glorot_uniform", lambda dtype=None: jinit.glorot_uniform(dtype=dtype), (64, 32)),
    ("he_normal", lambda dtype=None: jinit.he_normal(dtype=dtype), (64, 32)),
    ("lecun_normal", lambda dtype=None: jinit.lecun_normal(dtype=dtype), (64, 32)),
    ("orthogonal", lambda dtype=None: jinit.orthogonal(dtype=dtype), (64, 32)),
    ("delta_orthogonal", lambda dtype=None: jinit.delta_orthogonal(dtype=dtype), (4, 16, 32)),
]


@pytest.mark.parametrize(
    "name, build, shape", BUILDERS_WITH_DTYPE, ids=[b[0] for b in BUILDERS_WITH_DTYPE]
)
def test_builder_dtype_is_the_default(name, build, shape):
    key = jax.random.key(SEED)
    with_default = build(jnp.bfloat16)
    assert with_default.dtype == jnp.bfloat16
    out = with_default(key, shape)
    assert out.dtype == jnp.bfloat16
    assert_bit_identical(out, build()(key, shape, jnp.bfloat16))
    # A dtype given at call time wins over the builder's.
    assert _out_dtype(with_default, shape, jnp.float32) == jnp.float32
    with jax.enable_x64(True):
        assert _out_dtype(with_default, shape) == jnp.bfloat16  # even under x64
