"""Drop-in parity with ``jax.nn.initializers`` for inputs beyond the plain tuple shape.

* Shapes: every form jax takes (an int, numpy integers, lists, tuples of numpy ints, 1-D
  integer arrays) gives jax's result: same shape, dtype and bits (``flax.nnx.Einsum`` passes an
  int ``bias_shape`` to ``bias_init``).
* Bad input: where jax raises a ``TypeError`` or ``ValueError`` for a bad shape, dtype or key,
  jinit raises an exception of that type (a subclass when jinit's earlier type differed: see
  :class:`jinit._core._checks.DTypeError`), with a message naming the initialiser first. Where
  jax's error is an accident of its internals (``MLIRError``, ``NotImplementedError``,
  ``AssertionError``) jinit raises a ``TypeError``/``ValueError``. The few deliberate
  differences are listed in ``DELIBERATE``.
* ``out_sharding``: the result's sharding equals (and hashes equal to) jax's, eager and under
  ``jit``, on the 4 forced CPU devices; a sharding that does not fit is refused up front.
* Narrow floats (float8, float4): drawn in float32 and rounded once; the draws follow the
  rounded law (:func:`jinit.laws._sampled.exact_atoms`), never NaN.
* Truncated normals far in a tail follow their law; jax's bits are kept where jax is accurate.
"""

from __future__ import annotations

import functools
import math
import re

import jax
import jax.nn.initializers as jnn
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

import jinit
import jinit.torch
from jinit import catalogue
from jinit.laws._sampled import atom_moments, exact_atoms

# the out_sharding tests use a 4-device and a 2 x 2 mesh (tests/conftest.py forces 4 devices;
# JINIT_TEST_DEVICES=1..3 runs skip them)
needs_4_devices = pytest.mark.skipif(len(jax.devices()) < 4, reason="needs 4 devices")

K = jax.random.key(0)

# (name, jax initialiser, jinit initialiser, a 2-D shape it takes)
PAIRS = [
    ("zeros", jnn.zeros, jinit.zeros),
    ("ones", jnn.ones, jinit.ones),
    ("constant", jnn.constant(0.5), jinit.constant(0.5)),
    ("uniform", jnn.uniform(), jinit.uniform()),
    ("normal", jnn.normal(), jinit.normal()),
    ("truncated_normal", jnn.truncated_normal(), jinit.truncated_normal()),
    ("he_normal", jnn.he_normal(), jinit.he_normal()),
    ("glorot_uniform", jnn.glorot_uniform(), jinit.glorot_uniform()),
    ("lecun_normal", jnn.lecun_normal(), jinit.lecun_normal()),
    ("orthogonal", jnn.orthogonal(), jinit.orthogonal()),
]
ONE_D = {"zeros", "ones", "constant", "uniform", "normal", "truncated_normal"}


def same_array(a: jax.Array, b: jax.Array) -> bool:
    return (
        a.shape == b.shape
        and a.dtype == b.dtype
        and np.asarray(a).tobytes() == np.asarray(b).tobytes()
    )


# ---------------------------------------------------------------------------------------------
# Good shapes: jax's result, bit for bit
# ---------------------------------------------------------------------------------------------

GOOD_SHAPES = [
    ("int", 5, (5,)),
    ("np-int64", np.int64(5), (5,)),
    ("np-0d-int-array", np.array(5), (5,)),
    ("list", [4, 3], (4, 3)),
    ("tuple-of-np-ints", (np.int32(4), np.int64(3)), (4, 3)),
    ("np-int-array", np.array([4, 3]), (4, 3)),
    ("jnp-int-array", jnp.array([4, 3]), (4, 3)),
    ("list-of-0d-arrays", [np.array(4), jnp.array(3)], (4, 3)),
    ("empty-tuple", (), ()),
]


@pytest.mark.parametrize("form, shape, canonical", GOOD_SHAPES, ids=[g[0] for g in GOOD_SHAPES])
@pytest.mark.parametrize("name, jax_init, ji", PAIRS, ids=[p[0] for p in PAIRS])
def test_shape_forms_give_jax_result(name, jax_init, ji, form, shape, canonical):
    if len(canonical) < 2 and name not in ONE_D:
        pytest.skip("needs rank 2 (jax and jinit both refuse)")
    ours = ji(K, shape, jnp.float32)
    try:
        theirs = jax_init(K, shape, jnp.float32)
    except TypeError:  # jax takes this form only in some initialisers: compare to the tuple
        theirs = jax_init(K, canonical, jnp.float32)
    assert ours.shape == canonical
    assert same_array(ours, theirs), (name, form)
    assert ours.sharding == theirs.sharding


def test_int_shape_is_accepted_by_every_catalogue_entry_that_takes_rank_1():
    for entry in catalogue.entries():
        init = entry.build()
        try:
            ref = init(K, (6,))
        except ValueError:  # needs rank >= 2
            with pytest.raises(ValueError):
                init(K, 6)
            continue
        assert same_array(init(K, 6), ref), entry.name
        assert same_array(init(K, np.int16(6)), ref), entry.name


def test_flax_einsum_with_int_bias_shape():
    from flax import nnx

    layer = nnx.Einsum("bd,dk->bk", (4, 5), bias_shape=5, bias_init=jinit.zeros, rngs=nnx.Rngs(0))
    assert layer.bias is not None and layer.bias[...].shape == (5,)
    assert not np.asarray(layer.bias[...]).any()
    ref = nnx.Einsum("bd,dk->bk", (4, 5), bias_shape=5, bias_init=jnn.zeros, rngs=nnx.Rngs(0))
    assert same_array(layer.bias[...], ref.bias[...])
    assert layer(jnp.ones((2, 4))).shape == (2, 5)


# ---------------------------------------------------------------------------------------------
# Bad input: jax's exception type
# ---------------------------------------------------------------------------------------------

BAD_SHAPES = {
    "float-dims": (64.9, 32),
    "integral-float-dims": (4.0, 3),
    "float-scalar": 5.0,
    "string": "64",
    "negative-dim": (-1, 3),
    "negative-int": -3,
    "nested": ((4,), 3),
    "float-array": np.array([4.0, 3.0]),
    "none": None,
    "bool-dim": (True, 3),
    "bool-scalar": True,
}
BAD_DTYPES = {
    "int32": jnp.int32,
    "bool": bool,
    "uint8": jnp.uint8,
    "complex64": jnp.complex64,
    "not-a-dtype": "float33",
    "object": object,
    "float6": jnp.float6_e2m3fn,
    "float8_e8m0fnu": jnp.float8_e8m0fnu,
}
BAD_KEYS = {
    "int": 0,
    "none": None,
    "string": "a",
    "float-array": jnp.zeros((2,), jnp.float32),
    "int32-array": jnp.zeros((2,), jnp.int32),
    "uint32-shape-3": jnp.zeros((3,), jnp.uint32),
    "uint32-shape-4": jnp.zeros((4,), jnp.uint32),
    "uint32-scalar": jnp.uint32(3),
    "batch-of-keys": jax.random.split(K, 3),
    "batch-of-raw-keys": jax.random.split(jax.random.PRNGKey(0), 3),
}

# Calls where jinit deliberately differs from jax (documented in the README):
DELIBERATE = {
    # a bool in a shape is a slip; jax reads True as 1
    ("shape", "bool-dim"): "jinit raises",
    ("shape", "bool-scalar"): "jinit raises",
    # jax's truncated_normal reads shape=None as "the bounds' shape", i.e. ()
    ("shape", "none"): "jinit raises",
    # float8_e8m0fnu has no 0 and no negative numbers: jinit refuses to draw weights in it
    ("dtype", "float8_e8m0fnu"): "jinit raises",
}


def _error(call):
    try:
        call()
    except Exception as e:  # noqa: BLE001 - the point is to capture any error
        return e
    return None


def _check_parity(kind: str, case: str, name: str, jax_call, jinit_call) -> None:
    theirs, ours = _error(jax_call), _error(jinit_call)
    if ours is None:
        assert (
            theirs is None
            or (kind, case) in DELIBERATE
            or (
                # jax cannot draw these at all; jinit supports them (a superset)
                isinstance(theirs, NotImplementedError)
            )
        ), f"{name}: jax raised {theirs!r}, jinit did not"
        return
    assert isinstance(ours, (TypeError, ValueError)), f"{name}: {type(ours).__name__}: {ours}"
    assert re.match(r"`[\w.]+`", str(ours)), f"{name}: message does not start with a name"
    if (kind, case) in DELIBERATE:
        return
    if theirs is None:
        assert (kind, case) in DELIBERATE or "cannot hold the value" in str(ours), (
            f"{name}: jinit raised {ours!r} where jax returns an array"
        )
    elif isinstance(theirs, (TypeError, ValueError)):
        assert isinstance(ours, type(theirs)), (
            f"{name}: jax raised {type(theirs).__name__}, jinit {type(ours).__name__}: {ours}"
        )


@pytest.mark.parametrize("case", list(BAD_SHAPES))
@pytest.mark.parametrize("name, jax_init, ji", PAIRS, ids=[p[0] for p in PAIRS])
def test_bad_shape_parity(name, jax_init, ji, case):
    shape = BAD_SHAPES[case]
    _check_parity(
        "shape",
        case,
        name,
        lambda: jax_init(K, shape, jnp.float32),
        lambda: ji(K, shape, jnp.float32),
    )


@pytest.mark.parametrize("case", list(BAD_DTYPES))
@pytest.mark.parametrize("name, jax_init, ji", PAIRS, ids=[p[0] for p in PAIRS])
def test_bad_dtype_parity(name, jax_init, ji, case):
    dtype = BAD_DTYPES[case]
    _check_parity(
        "dtype", case, name, lambda: jax_init(K, (4, 3), dtype), lambda: ji(K, (4, 3), dtype)
    )


@pytest.mark.parametrize("case", list(BAD_KEYS))
@pytest.mark.parametrize("name, jax_init, ji", PAIRS, ids=[p[0] for p in PAIRS])
def test_bad_key_parity(name, jax_init, ji, case):
    key = BAD_KEYS[case]
    _check_parity("key", case, name, lambda: jax_init(key, (4, 3)), lambda: ji(key, (4, 3)))


def test_error_types_are_both_where_jinit_changed():
    # jinit raised TypeError for these before and jax raises ValueError (or the reverse):
    # the exceptions are both, so `except` clauses written for either keep working.
    for call in (
        lambda: jinit.normal()(K, (2,), jnp.int32),
        lambda: jinit.normal()(jax.random.split(K, 2), (2,)),
        lambda: jinit.normal()(K, (2, -1)),
    ):
        err = _error(call)
        assert isinstance(err, TypeError) and isinstance(err, ValueError), err


# ---------------------------------------------------------------------------------------------
# out_sharding: jax's sharding, eager and under jit
# ---------------------------------------------------------------------------------------------


@functools.cache
def mesh(kind: str) -> jax.sharding.Mesh:
    if kind == "x4":
        return jax.make_mesh((4,), ("x",), axis_types=(AxisType.Explicit,))
    t = {"explicit": AxisType.Explicit, "auto": AxisType.Auto}[kind]
    return jax.make_mesh((2, 2), ("x", "y"), axis_types=(t, t))


SHARD_CASES = [
    ("x4", (8,), P("x")),
    ("x4", (8, 4), P("x")),
    ("x4", (4, 8), P(None, "x")),
    ("x4", (8, 4, 2), P("x")),
    ("x4", (2, 8, 3), P(None, "x")),
    ("x4", (8, 4), P()),
    ("explicit", (8, 4, 2), P("x", "y")),
    ("explicit", (8, 4, 2), P(("x", "y"))),
    ("explicit", (4, 6, 2), P("x", None, "y")),
    ("explicit", (8, 4), P("y", "x")),
]


@needs_4_devices
@pytest.mark.parametrize("named", [True, False], ids=["NamedSharding", "PartitionSpec"])
@pytest.mark.parametrize("kind, shape, spec", SHARD_CASES, ids=[str(c) for c in SHARD_CASES])
def test_out_sharding_equals_jax(kind, shape, spec, named):
    m = mesh(kind)
    sharding = NamedSharding(m, spec) if named else spec
    for jax_init, ji in ((jnn.normal(), jinit.normal()), (jnn.zeros, jinit.zeros)):
        with jax.set_mesh(m):
            theirs = jax_init(K, shape, jnp.float32, out_sharding=sharding)
            eager = ji(K, shape, jnp.float32, out_sharding=sharding)
            traced = jax.jit(lambda k, ji=ji: ji(k, shape, jnp.float32, out_sharding=sharding))(K)
        for ours in (eager, traced):
            assert ours.sharding == theirs.sharding, (ours.sharding, theirs.sharding)
            assert hash(ours.sharding) == hash(theirs.sharding)
            assert same_array(ours, theirs)


AUTO_CASES = [((8,), P("x")), ((8, 4), P("x")), ((8, 4, 2), P(None, "y", None)), ((8, 4), P())]


@needs_4_devices
@pytest.mark.parametrize("shape, spec", AUTO_CASES, ids=[str(c) for c in AUTO_CASES])
def test_out_sharding_on_auto_mesh_is_the_same_eager_and_under_jit(shape, spec):
    # jax's initialisers refuse Auto axes; jinit takes them, eager equal to jit
    m = mesh("auto")
    init = jinit.he_uniform(in_axis=0, out_axis=-1) if len(shape) == 1 else jinit.he_uniform()
    for sharding in (NamedSharding(m, spec), spec):
        with jax.set_mesh(m):
            eager = init(K, shape, out_sharding=sharding)
            traced = jax.jit(lambda k, s=sharding: init(k, shape, out_sharding=s))(K)
        assert eager.sharding == traced.sharding and hash(eager.sharding) == hash(traced.sharding)
        assert same_array(eager, init(K, shape))


def _other_mesh() -> jax.sharding.Mesh:
    return jax.make_mesh((2, 2), ("a", "b"), axis_types=(AxisType.Explicit,) * 2)


# (id, mesh kind, shape, sharding (a function of the mesh), message pattern): meshes are made
# in the test, so collecting this module needs no devices
BAD_SHARDINGS = [
    ("dim-not-divisible", "x4", (6, 4), lambda m: NamedSharding(m, P("x")), r"size 6"),
    ("dim-not-divisible-spec", "x4", (4, 6), lambda m: P(None, "x"), r"size 6"),
    ("unknown-axis", "explicit", (8, 4), lambda m: P("z"), r"'z'"),
    ("duplicate-axis", "explicit", (8, 4), lambda m: P("x", "x"), r"twice"),
    ("spec-too-long", "x4", (8,), lambda m: P(None, "x"), r"rank 1"),
    ("wrong-type-string", "x4", (8,), lambda m: "x", r"got 'x'"),
    ("wrong-type-tuple", "x4", (8,), lambda m: ("x",), r"PartitionSpec"),
    ("other-mesh", "explicit", (8, 4), lambda m: NamedSharding(_other_mesh(), P("a")), r"mesh"),
]


@needs_4_devices
@pytest.mark.parametrize(
    "case, kind, shape, make, pattern", BAD_SHARDINGS, ids=[b[0] for b in BAD_SHARDINGS]
)
def test_bad_out_sharding_is_refused_like_jax(case, kind, shape, make, pattern):
    m = mesh(kind)
    sharding = make(m)
    with jax.set_mesh(m):
        theirs = _error(lambda: jnn.normal()(K, shape, out_sharding=sharding))
        call = lambda k: jinit.normal()(k, shape, out_sharding=sharding)  # noqa: E731
        for run in (call, jax.jit(call)):
            ours = _error(lambda run=run: run(K))
            assert isinstance(ours, (TypeError, ValueError)), (case, ours)
            assert str(ours).startswith("`normal`") and re.search(pattern, str(ours)), ours
            if isinstance(theirs, (TypeError, ValueError)):
                assert isinstance(ours, type(theirs)), (case, theirs, ours)


# ---------------------------------------------------------------------------------------------
# float8 and float4
# ---------------------------------------------------------------------------------------------

NARROW = [
    jnp.dtype(getattr(jnp, n))
    for n in (
        "float8_e4m3fn",
        "float8_e5m2",
        "float8_e4m3b11fnuz",
        "float8_e4m3fnuz",
        "float8_e5m2fnuz",
        "float8_e3m4",
        "float8_e4m3",
        "float4_e2m1fn",
    )
    if hasattr(jnp, n)
]


def _check_against_atoms(x: np.ndarray, law) -> None:
    """Mean and std of i.i.d. draws against the exact rounded law; support within its atoms.

    Tolerances are sampling errors: the mean within 6 standard errors, the variance within 6
    standard errors of the sample variance (from the law's fourth central moment).
    """
    values, probs = exact_atoms(law)
    mu, var, m4 = atom_moments(values, probs)
    n = x.size
    assert not np.isnan(x).any()
    assert values[0] <= x.min() and x.max() <= values[-1]
    assert abs(x.mean() - mu) <= 6 * math.sqrt(var / n) + 1e-12
    assert abs(x.var() - var) <= 6 * math.sqrt(max(m4 - var * var, 0.0) / n) + 1e-12 * var
    # every drawn value is an atom of the law
    assert np.isin(np.unique(x), values).all()


@pytest.mark.parametrize("dtype", NARROW, ids=[d.name for d in NARROW])
@pytest.mark.parametrize(
    "init",
    [
        jinit.he_normal(),
        jinit.normal(0.3),
        jinit.uniform(2.0),
        jinit.truncated_normal(0.5, lower=-1.0, upper=3.0),
        jinit.glorot_uniform(),
        jinit.torch.trunc_normal(std=0.2),
    ],
    ids=repr,
)
def test_narrow_float_draws_follow_their_law(init, dtype):
    shape = (128, 128)
    w = init(K, shape, dtype)
    assert w.dtype == dtype and w.shape == shape
    law = jinit.law(init, shape, dtype)
    assert law.dtype == dtype and math.isfinite(law.std)
    _check_against_atoms(np.asarray(w.astype(jnp.float32), np.float64), law)


def test_he_normal_float8_is_not_nan_like_jax():
    # jax's own he_normal gives all NaN in float8_e4m3fn; jinit draws in float32 and rounds
    w = jinit.he_normal()(K, (64, 64), jnp.float8_e4m3fn)
    ref = jinit.he_normal()(K, (64, 64), jnp.float32)
    assert same_array(w, jnp.clip(ref, -448, 448).astype(jnp.float8_e4m3fn))
    assert math.isfinite(jinit.law(jinit.he_normal(), (64, 64), jnp.float8_e4m3fn).std)


def test_narrow_draw_saturates_where_its_law_says():
    init = jinit.normal(1000.0)  # far beyond float8_e4m3fn's largest value, 448
    w = np.asarray(init(K, (4096,), jnp.float8_e4m3fn).astype(jnp.float32))
    assert np.isfinite(w).all() and np.abs(w).max() == 448
    values, probs = exact_atoms(jinit.law(init, (4096,), jnp.float8_e4m3fn))
    assert values[0] == -448 and values[-1] == 448 and probs[-1] > 0.3


def _entry_shape(entry) -> tuple[int, ...]:
    return (3, 3, 16, 32) if len(entry.example_shape) == 4 else (64, 32)


@pytest.mark.parametrize("entry", catalogue.entries(), ids=lambda e: e.name)
def test_every_catalogue_entry_in_float8_draws_its_law_or_refuses(entry):
    init, dt = entry.build(), jnp.dtype(jnp.float8_e4m3fn)
    shape = entry.example_shape
    try:
        w = init(K, shape, dt)
    except (TypeError, ValueError) as e:
        assert re.match(r"`[\w.]+`", str(e)) and "float8_e4m3fn" in str(e), e
        return
    assert w.dtype == dt and w.shape == tuple(shape)
    x = np.asarray(w.astype(jnp.float32), np.float64)
    assert np.isfinite(x).all(), entry.name
    law = jinit.law(init, shape, dt)
    assert law.dtype == dt
    ref = np.asarray(init(K, shape, jnp.float32), np.float64)
    if isinstance(law, jinit.laws.DeterministicLaw):
        assert np.array_equal(x, np.asarray(law.value, np.float64)), entry.name
    # the narrow draw is the float32 draw rounded once: within half a float8 step of it
    eps, tiny = float(jnp.finfo(dt).eps), float(jnp.finfo(dt).smallest_subnormal)
    err = np.abs(x - np.clip(ref, -448, 448))
    assert (err <= np.maximum(np.abs(ref) * eps / 2, tiny / 2) * (1 + 1e-6)).all(), entry.name


# ---------------------------------------------------------------------------------------------
# Truncated normals far in a tail
# ---------------------------------------------------------------------------------------------

FAR = [(5.0, 6.0), (-10.0, -8.0), (8.0, 8.5), (-math.inf, -6.0), (20.0, math.inf), (3.0, 3.01)]


def _check_continuous(x: np.ndarray, law) -> None:
    """Mean/std within 6 standard errors of the continuous law; support inside its hull."""
    n = x.size
    lo, hi = law.support
    assert lo <= x.min() and x.max() <= hi
    assert abs(x.mean() - law.mean) <= 6 * law.std / math.sqrt(n)
    sd_var = math.sqrt(max(law.fourth_moment - law.variance**2, 0.0) / n)
    assert abs(x.var() - law.variance) <= 6 * sd_var
    # far from coarse: at least a thousand distinct values among 20000 draws
    assert np.unique(x).size > 1000


@pytest.mark.parametrize("lower, upper", FAR, ids=str)
def test_truncated_normal_far_interval_follows_law(lower, upper):
    init = jinit.truncated_normal(2.0, lower=lower, upper=upper)
    shape = (20000,)
    w = init(K, shape)
    _check_continuous(np.asarray(w, np.float64), jinit.law(init, shape))
    assert same_array(w, jax.jit(lambda k: init(k, shape))(K))  # eager == jit


@pytest.mark.parametrize("lower, upper", FAR[:4], ids=str)
def test_torch_trunc_normal_far_interval_follows_law(lower, upper):
    init = jinit.torch.trunc_normal(mean=1.0, std=0.5, a=1.0 + 0.5 * lower, b=1.0 + 0.5 * upper)
    shape = (20000,)
    _check_continuous(np.asarray(init(K, shape), np.float64), jinit.law(init, shape))


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16], ids=["bfloat16", "float16"])
def test_truncated_normal_far_interval_in_16_bit_is_the_rounded_law(dtype):
    init = jinit.truncated_normal(1.0, lower=5.0, upper=6.0)
    shape = (128, 128)
    x = np.asarray(init(K, shape, dtype).astype(jnp.float32), np.float64)
    _check_against_atoms(x, jinit.law(init, shape, dtype))


MODERATE = [(-2.0, 2.0), (-3.0, 3.0), (0.0, 2.0), (-1.0, 1.5), (-math.inf, math.inf), (-2.5, 0)]


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16, jnp.float16], ids=str)
@pytest.mark.parametrize("lower, upper", MODERATE, ids=str)
def test_truncated_normal_keeps_jax_bits_where_jax_is_accurate(lower, upper, dtype):
    ours = jinit.truncated_normal(0.7, lower=lower, upper=upper)(K, (64, 32), dtype)
    theirs = jnn.truncated_normal(0.7, lower=lower, upper=upper)(K, (64, 32), dtype)
    assert same_array(ours, theirs)


def test_truncated_normal_beyond_float64_is_refused_at_build():
    with pytest.raises(ValueError, match=r"`truncated_normal`.*no probability mass"):
        jinit.truncated_normal(lower=40.0, upper=41.0)


AXIS_CASES = [
    # (id, builder name, hyper-parameters, shape): an axis out of range for the shape
    ("variance_scaling-out_axis", "variance_scaling", (1.0, "fan_in", "normal"), {"out_axis": -3}),
    ("glorot_uniform-batch_axis", "glorot_uniform", (), {"batch_axis": 5}),
    ("he_normal-in_axis", "he_normal", (), {"in_axis": 2}),
    ("orthogonal-column_axis", "orthogonal", (), {"column_axis": 2}),
    ("delta_orthogonal-column_axis", "delta_orthogonal", (), {"column_axis": -3}),
]


@pytest.mark.parametrize(
    "builder, args, kwargs", [c[1:] for c in AXIS_CASES], ids=[c[0] for c in AXIS_CASES]
)
def test_axis_out_of_range_parity(builder, args, kwargs):
    """jax raises IndexError (from deep inside); jinit's error is an IndexError too, and a
    ValueError (jinit's type since 0.1), with a message naming the axis and the valid range."""
    shape = (
        (3, 3, 4, 8) if builder == "delta_orthogonal" else (2, 4, 3)[-(2 + (builder[0] == "g")) :]
    )
    theirs = _error(lambda: getattr(jax.nn.initializers, builder)(*args, **kwargs)(K, shape))
    ours = _error(lambda: getattr(jinit, builder)(*args, **kwargs)(K, shape))
    assert isinstance(theirs, IndexError), theirs
    assert isinstance(ours, IndexError) and isinstance(ours, ValueError), repr(ours)
    assert re.match(rf"`{builder}`", str(ours)) and "valid axes are" in str(ours), str(ours)
