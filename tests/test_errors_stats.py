"""Bad and edge inputs of the statistics and testing API (`jinit.init_stats`,
`jinit.testing.*`): each row raises exactly the given type, with a message that starts with the
public function's name and names the parameter, the value given and the fix. Every refusal
comes before anything is compiled or drawn (`test_refusals_come_before_any_trace`)."""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from bad_input import check_raises, params

import jinit
from jinit._core._checks import ShapeError
from jinit.laws import _laws as L
from jinit.stats import _reduction as S
from jinit.testing import (
    assert_follows_law,
    assert_same_law,
    check_law,
    check_same_law,
    default_seeds,
    init_stats,
    pool,
)

SHAPE = (4, 2)
NORMAL = jinit.normal(1.0)
IS = "`jinit.init_stats`"
CL = "`jinit.testing.check_law`"
AF = "`jinit.testing.assert_follows_law`"
CS = "`jinit.testing.check_same_law`"
AS = "`jinit.testing.assert_same_law`"


def wrong_shape(key, shape, dtype=None):
    return jnp.zeros((3,), jnp.float32)


def returns_none(key, shape, dtype=None):
    return None


def returns_ints(key, shape, dtype=None):
    return jnp.zeros(shape, jnp.int32)


def ignores_dtype(key, shape, dtype=None):
    return jax.random.normal(key, shape, jnp.float32)


def raises_inside(key, shape, dtype=None):
    raise ValueError("boom: the initialiser is broken")


class UnknownLaw(L.Law):
    pass


def d(i: int):
    return jax.local_devices()[i]


ROWS = [
    # --- shape: validated like jax (helper in jinit._core._checks) ---------------------------
    ("init_stats-shape-str", lambda: init_stats(NORMAL, "64"), TypeError, [IS, "shape", "'64'"]),
    (
        "init_stats-shape-float-entry",
        lambda: init_stats(NORMAL, (64.9, 32)),
        TypeError,
        [IS, "shape", "64.9"],
    ),
    # a negative dimension: jinit's ShapeError is both jax's TypeError and a ValueError
    ("init_stats-shape-negative", lambda: init_stats(NORMAL, (-1, 3)), ShapeError, [IS, "-1"]),
    ("init_stats-shape-none", lambda: init_stats(NORMAL, None), TypeError, [IS, "shape", "None"]),
    (
        "init_stats-shape-empty",
        lambda: init_stats(NORMAL, (0, 3)),
        ValueError,
        [IS, r"\(0, 3\)", "no entries", "at least one entry"],
    ),
    ("check_law-shape-str", lambda: check_law(NORMAL, "64"), TypeError, [CL, "shape", "'64'"]),
    (
        "assert_follows_law-shape-float",
        lambda: assert_follows_law(NORMAL, (8.5, 2)),
        TypeError,
        [AF, "shape", "8.5"],
    ),
    (
        "check_same_law-shape-empty",
        lambda: check_same_law(NORMAL, NORMAL, (0,)),
        ValueError,
        [CS, "no entries"],
    ),
    (
        "default_seeds-shape-str",
        lambda: default_seeds("64"),
        TypeError,
        ["`jinit.testing.default_seeds`", "shape", "'64'"],
    ),
    # --- the initialiser ------------------------------------------------------------------
    (
        "init_stats-init-none",
        lambda: init_stats(None, SHAPE),
        TypeError,
        [IS, "`init`", "callable", "None", "jinit.he_normal\\(\\)"],
    ),
    ("check_law-init-int", lambda: check_law(3, SHAPE), TypeError, [CL, "`init`", "callable"]),
    (
        "check_same_law-init_b-none",
        lambda: check_same_law(NORMAL, None, SHAPE),
        TypeError,
        [CS, "`init_b`", "None"],
    ),
    (
        "init_stats-wrong-shape",
        lambda: init_stats(wrong_shape, SHAPE),
        ValueError,
        [IS, "wrong_shape", r"shape \(3,\)", r"not an array of shape \(4, 2\)"],
    ),
    (
        "init_stats-returns-none",
        lambda: init_stats(returns_none, SHAPE),
        ValueError,
        [IS, "returns_none", "returned NoneType None", r"shape \(4, 2\)"],
    ),
    (
        "init_stats-returns-ints",
        lambda: init_stats(returns_ints, SHAPE),
        TypeError,
        [IS, "returns_ints", "floating or complex result", "int32"],
    ),
    (
        "init_stats-ignores-dtype",
        lambda: init_stats(ignores_dtype, SHAPE, dtype=jnp.bfloat16),
        TypeError,
        [IS, "ignores_dtype", "returned dtype float32", "bfloat16", "honour `dtype`"],
    ),
    (
        "assert_follows_law-init-raises",
        lambda: assert_follows_law(raises_inside, SHAPE, law=L.Normal(1.0)),
        ValueError,
        [AF, "raises_inside", "raised ValueError", "boom"],
    ),
    (
        "check_law-no-law",
        lambda: check_law(jax.nn.initializers.he_normal(), SHAPE),
        TypeError,
        [CL, "needs a law", "law="],
    ),
    (
        "check_law-law-str",
        lambda: check_law(NORMAL, SHAPE, law="normal"),
        TypeError,
        [CL, "`law`", "'normal'"],
    ),
    (
        "init_stats-law-bogus",
        lambda: init_stats(NORMAL, SHAPE, law="bogus"),
        ValueError,
        [IS, "'auto', None or a law", "'bogus'"],
    ),
    (
        "init_stats-law-unknown-type",
        lambda: init_stats(NORMAL, SHAPE, law=UnknownLaw()),
        TypeError,
        [IS, "does not know the law type UnknownLaw"],
    ),
    (
        "init_stats-law-real-for-complex",
        lambda: init_stats(NORMAL, SHAPE, dtype=jnp.complex64, law=L.Normal(1.0)),
        TypeError,
        [IS, "returns complex values", "jinit.law"],
    ),
    # --- seeds ----------------------------------------------------------------------------
    (
        "init_stats-seeds-zero",
        lambda: init_stats(NORMAL, SHAPE, seeds=0),
        ValueError,
        [IS, ">= 1", "got 0"],
    ),
    (
        "init_stats-seeds-negative",
        lambda: init_stats(NORMAL, SHAPE, seeds=-3),
        ValueError,
        [IS, "`seeds` >= 1", "-3"],
    ),
    (
        "init_stats-seeds-float",
        lambda: init_stats(NORMAL, SHAPE, seeds=2.5),
        TypeError,
        [IS, "`seeds`", "2.5", "seeds=256"],
    ),
    (
        "init_stats-seeds-str",
        lambda: init_stats(NORMAL, SHAPE, seeds="16"),
        TypeError,
        [IS, "`seeds`", "'16'"],
    ),
    (
        "init_stats-seeds-bool",
        lambda: init_stats(NORMAL, SHAPE, seeds=True),
        TypeError,
        [IS, "`seeds`", "True"],
    ),
    (
        "init_stats-seeds-empty",
        lambda: init_stats(NORMAL, SHAPE, seeds=[]),
        ValueError,
        [IS, "non-empty", r"\[\]"],
    ),
    (
        "init_stats-seeds-duplicates",
        lambda: init_stats(NORMAL, SHAPE, seeds=[0, 1, 1, 2, 2, 5]),
        ValueError,
        [IS, r"duplicate seed indices \[1, 2\]", "independent", "np.unique", "seeds=6"],
    ),
    (
        "check_law-seeds-duplicates",
        lambda: check_law(NORMAL, SHAPE, seeds=np.array([3, 3])),
        ValueError,
        [CL, r"duplicate seed indices \[3\]"],
    ),
    (
        "assert_same_law-seeds-duplicates",
        lambda: assert_same_law(NORMAL, NORMAL, SHAPE, seeds=[7, 7]),
        ValueError,
        [AS, r"duplicate seed indices \[7\]"],
    ),
    (
        "init_stats-seeds-negative-index",
        lambda: init_stats(NORMAL, SHAPE, seeds=[-1, 3]),
        ValueError,
        [IS, r"\[0, 2\*\*32\)", r"\[-1\]"],
    ),
    (
        "init_stats-seeds-index-too-large",
        lambda: init_stats(NORMAL, SHAPE, seeds=[0, 2**32]),
        ValueError,
        [IS, r"\[0, 2\*\*32\)", "4294967296"],
    ),
    (
        "init_stats-seeds-float-indices",
        lambda: init_stats(NORMAL, SHAPE, seeds=[0.5, 1.5]),
        TypeError,
        [IS, "ints", "float64"],
    ),
    (
        "init_stats-seeds-2d",
        lambda: init_stats(NORMAL, SHAPE, seeds=[[0, 1]]),
        ValueError,
        [IS, "1-D", r"\(1, 2\)"],
    ),
    (
        "init_stats-seeds-count-over-2**32",
        lambda: init_stats(NORMAL, SHAPE, seeds=2**33),
        ValueError,
        [IS, "2\\*\\*32", "8589934592"],
    ),
    (
        "init_stats-seeds-beyond-memory",
        lambda: init_stats(NORMAL, (512, 512), seeds=2**31),
        ValueError,
        [
            IS,
            r"would need about [\d.]+ TiB|would need about [\d.]+ GiB",
            "is available",
            "fewer `seeds`",
        ],
    ),
    (
        "init_stats-shape-beyond-memory",
        lambda: init_stats(NORMAL, (10**6, 10**6), seeds=1),
        ValueError,
        [IS, "would need about", r"\(1000000, 1000000\)", "is free", "smaller shape"],
    ),
    (
        "init_stats-chunk-beyond-memory",
        lambda: init_stats(NORMAL, (2048, 2048), seeds=4096, chunk_size=4096),
        ValueError,
        [IS, "would need about", "4096 seed\\(s\\) per call", "smaller `chunk_size`"],
    ),
    (
        "check_law-shape-beyond-memory",
        lambda: check_law(NORMAL, (10**6, 10**6), seeds=16),
        ValueError,
        [CL, "would need about", "smaller shape"],
    ),
    # --- chunk size, key, dtype, devices, reference, alpha ----------------------------------
    (
        "init_stats-chunk-zero",
        lambda: init_stats(NORMAL, SHAPE, chunk_size=0),
        ValueError,
        [IS, "`chunk_size` >= 1", "got 0"],
    ),
    (
        "assert_follows_law-chunk-float",
        lambda: assert_follows_law(NORMAL, SHAPE, chunk_size=1.5),
        TypeError,
        [AF, "`chunk_size`", "1.5"],
    ),
    (
        "init_stats-key-float",
        lambda: init_stats(NORMAL, SHAPE, key=1.5),
        TypeError,
        [IS, "`key`", "1.5", r"jax.random.key\(0\)"],
    ),
    (
        "init_stats-key-str",
        lambda: init_stats(NORMAL, SHAPE, key="k"),
        TypeError,
        [IS, "`key`", "'k'"],
    ),
    (
        "init_stats-key-raw-shape-3",
        lambda: init_stats(NORMAL, SHAPE, key=np.zeros(3, np.uint32)),
        TypeError,
        [IS, r"shape \(3,\)", "wrong shape", r"\(2,\)"],
    ),
    (
        "init_stats-key-raw-batch",
        lambda: init_stats(NORMAL, SHAPE, key=jax.random.split(jax.random.PRNGKey(0), 4)),
        TypeError,
        [IS, "batch of raw keys", r"\(4, 2\)"],
    ),
    (
        "check_law-key-batch",
        lambda: check_law(NORMAL, SHAPE, key=jax.random.split(jax.random.key(0), 4)),
        TypeError,
        [CL, "one PRNG key", r"\(4,\)", r"keys\[0\]"],
    ),
    (
        "init_stats-key-int-overflow",
        lambda: init_stats(NORMAL, SHAPE, key=2**70),
        OverflowError,
        [IS, "64 bits", str(2**70)],
    ),
    (
        "assert_follows_law-key-rbg",
        lambda: assert_follows_law(NORMAL, SHAPE, key=jax.random.key(0, impl="rbg")),
        ValueError,
        [AF, "refuses a `rbg` key", "threefry"],
    ),
    (
        "init_stats-dtype-unknown",
        lambda: init_stats(NORMAL, SHAPE, dtype="float99"),
        TypeError,
        [IS, "'float99'", "not a dtype", "jnp.float32"],
    ),
    (
        "init_stats-dtype-int",
        lambda: init_stats(NORMAL, SHAPE, dtype=jnp.int32),
        TypeError,
        [IS, "floating or complex `dtype`", "int32"],
    ),
    (
        "assert_same_law-dtype-int",
        lambda: assert_same_law(NORMAL, NORMAL, SHAPE, dtype="int8"),
        TypeError,
        [AS, "floating or complex `dtype`", "int8"],
    ),
    (
        "init_stats-devices-empty",
        lambda: init_stats(NORMAL, SHAPE, devices=[]),
        ValueError,
        [IS, "at least one device", r"local_devices\(\)"],
    ),
    (
        "init_stats-devices-single",
        lambda: init_stats(NORMAL, SHAPE, devices=d(0)),
        TypeError,
        [IS, "single device", "devices=\\["],
    ),
    (
        "init_stats-devices-str",
        lambda: init_stats(NORMAL, SHAPE, devices=["cpu"]),
        TypeError,
        [IS, "`jax.Device`", "'cpu'"],
    ),
    (
        "init_stats-devices-repeated",
        lambda: init_stats(NORMAL, SHAPE, devices=[d(0), d(0)]),
        ValueError,
        [IS, "more than once", "each device once"],
    ),
    (
        "init_stats-reference-negative-s",
        lambda: init_stats(NORMAL, SHAPE, law=None, reference=(0.0, -1.0)),
        ValueError,
        [IS, "`reference=\\(m, s\\)`", "s > 0", r"\(0.0, -1.0\)"],
    ),
    (
        "init_stats-reference-not-pair",
        lambda: init_stats(NORMAL, SHAPE, law=None, reference="ab"),
        TypeError,
        [IS, "`reference`", "'ab'"],
    ),
    (
        "check_law-alpha-zero",
        lambda: check_law(NORMAL, SHAPE, alpha=0.0),
        ValueError,
        [CL, r"\(0, 1\)", "0.0"],
    ),
    (
        "check_law-alpha-nan",
        lambda: check_law(NORMAL, SHAPE, alpha=float("nan")),
        ValueError,
        [CL, r"`alpha` in \(0, 1\)", "nan"],
    ),
    (
        "assert_follows_law-alpha-str",
        lambda: assert_follows_law(NORMAL, SHAPE, alpha="x"),
        TypeError,
        [AF, "`alpha`", "'x'"],
    ),
    (
        "assert_same_law-alpha-one",
        lambda: assert_same_law(NORMAL, NORMAL, SHAPE, alpha=1.0),
        ValueError,
        [AS, r"`alpha` in \(0, 1\)", "1.0"],
    ),
    (
        "check_same_law-alpha-bool",
        lambda: check_same_law(NORMAL, NORMAL, SHAPE, alpha=True),
        TypeError,
        [CS, "`alpha`", "True"],
    ),
    (
        "pool-not-stats",
        lambda: pool({"mean": 0.0}),
        TypeError,
        ["`jinit.testing.pool`", "InitStats", "dict"],
    ),
]


@pytest.mark.parametrize("call,exc,patterns", params(ROWS))
def test_bad_input_is_refused_cleanly(call, exc, patterns):
    check_raises(call, exc, patterns)


def test_table_size():
    assert len(ROWS) >= 30


def test_refusals_come_before_any_trace():
    # memory, seeds, key and shape refusals come before the sweep is traced or compiled: the
    # trace count does not move and each refusal takes well under a second of work
    before = S.trace_count()
    t0 = time.perf_counter()
    for call in (
        lambda: init_stats(NORMAL, (512, 512), seeds=2**31),
        lambda: init_stats(NORMAL, (10**6, 10**6), seeds=1),
        lambda: init_stats(NORMAL, SHAPE, seeds=[0, 0]),
        lambda: init_stats(NORMAL, "64"),
    ):
        with pytest.raises((TypeError, ValueError)):
            call()
    assert S.trace_count() == before
    assert time.perf_counter() - t0 < 30  # no 2**31-element allocation, no compile
