"""Tests of jinit.testing (calibrated assertions) and of the `jinit check` command."""

from __future__ import annotations

import dataclasses
import math
import re
import sys
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_stats import KEY, SEEDS, SHAPE, SparseInit
from typer.testing import CliRunner

import jinit
from jinit.cli import app
from jinit.laws import _laws as L
from jinit.stats._rounding import normal_isf
from jinit.testing import (
    assert_follows_law,
    assert_same_law,
    check_law,
    check_same_law,
)
from jinit.testing._report import binom_upper

ROOT = str(Path(__file__).resolve().parents[1])
if ROOT not in sys.path:  # benchmarks/ (the perturbed initialisers) lives at the repo root
    sys.path.insert(0, ROOT)

# Correct initialisers pass. Small shapes and the seed count of tests/test_stats.py, so the
# compiled sweeps are shared; one default-seed case (he_normal) and one bfloat16 case.
PASSING = [
    ("he_normal_default_seeds", jinit.he_normal(), (64, 32), None, None),
    ("he_normal", jinit.he_normal(), SHAPE, None, SEEDS),
    ("normal_complex64", jinit.normal(1.0), SHAPE, jnp.complex64, SEEDS),
    ("he_uniform_bfloat16", jinit.he_uniform(), (64, 32), jnp.bfloat16, None),
    ("orthogonal", jinit.orthogonal(2.0), SHAPE, None, SEEDS),
    ("delta_orthogonal", jinit.delta_orthogonal(), (3, 3, 4, 8), None, SEEDS),
    ("constant", jinit.constant(0.5), (4, 3), None, SEEDS),
    ("sparse", SparseInit(3, 0.5), SHAPE, None, SEEDS),
]


@pytest.mark.parametrize("name,init,shape,dtype,seeds", PASSING, ids=[c[0] for c in PASSING])
def test_correct_initialisers_pass(name, init, shape, dtype, seeds):
    assert_follows_law(init, shape, dtype=dtype, seeds=seeds, key=KEY)


def test_checks_by_law_type():
    names = {
        "he_normal": ["all finite", "mean", "std", "min >= lower bound", "max <= upper bound"],
        "orthogonal": ["Gram = scale²·I", "mean", "std", "max |x| <= scale"],
        "constant": ["exact value"],
        "sparse": ["zeros per unit >= k", "extra zeros", "mean", "std", "KS (pooled)"],
    }
    by_name = {c[0]: c for c in PASSING}
    for name, expected in names.items():
        _, init, shape, dtype, seeds = by_name[name]
        report = check_law(init, shape, dtype=dtype, seeds=seeds, key=KEY)
        got = [c.name for c in report.checks]
        assert all(e in got for e in expected), (name, got)
        assert report.passed


def test_tolerances_come_from_the_law_with_bonferroni():
    init = jinit.he_normal()
    law = jinit.law(init, (64, 32))
    report = check_law(init, (64, 32), key=KEY, alpha=1e-6)
    k = report.num_tests
    # mean, std, kurtosis, 2 KS and independence across keys
    assert k == sum(c.statistical for c in report.checks) == 6
    n = report.count
    assert n == 128 * 64 * 32  # default seeds: max(16, ceil(2**18 / 2048))
    z = normal_isf(1e-6 / (2 * k) / 2)  # two-sided, at alpha / (2k)
    mean = next(c for c in report.checks if c.name == "mean")
    assert mean.se == pytest.approx(law.std / math.sqrt(n))
    # z standard errors plus the rounding allowance: band * integral of 1 over [min, max]
    p = report.stats.pooled()
    band = float(report.stats.band)
    assert 0 < band < 1e-6  # float32
    assert mean.tolerance == pytest.approx(z * mean.se + band * (p.max - p.min), rel=1e-9)
    std = next(c for c in report.checks if c.name == "std")
    se_var = math.sqrt((law.fourth_moment - law.variance**2) / n)  # from the law's 4th moment
    assert std.se == pytest.approx(se_var / (2 * law.std))
    ks = next(c for c in report.checks if c.name == "KS (pooled)")
    eps = math.sqrt(math.log(2 * 2 * k / 1e-6) / (2 * n))  # DKW at alpha / (2k)
    assert ks.tolerance == pytest.approx(eps + band, rel=1e-9)
    # independence: equal sketched values between seed pairs, at most a Chernoff binomial
    # limit with P(equal) <= 2 * band (the largest atom of a sampled law within the band)
    ind = next(c for c in report.checks if c.name == "independent keys")
    trials = (report.seeds // 2) * 256  # 64 pairs x 256 sketched values
    assert ind.tolerance == binom_upper(trials, 2 * band, 1e-6 / (2 * k))
    assert ind.measured == 0 and ind.passed and ind.statistical


def test_wrong_law_fails_with_a_full_message():
    init = jinit.he_normal()
    with pytest.raises(AssertionError) as info:
        assert_follows_law(init, (64, 32), law=L.Normal(0.18), key=KEY)
    msg = str(info.value)
    assert msg.startswith(
        "jinit.he_normal() on shape (64, 32) float32 does not follow N(0, 0.18^2)"
    )
    for part in ("FAIL", "KS (pooled)", "measured", "expected", "tolerance", "SE off"):
        assert part in msg
    assert "Reproduce: key = jax.random.key(3); seeds = range(0, 128)" in msg
    assert "init(jax.random.fold_in(key, s), (64, 32), jnp.float32)" in msg


@pytest.mark.parametrize(
    "case,init,shape,failing",
    [
        ("std_3pc", "scaled", (64, 32), {"std"}),
        ("orthogonal_flip", "flip", SHAPE, {"Gram = scale²·I"}),
        ("constant_wrong_value", "constant", (4, 3), {"exact value"}),
        ("sparse_wrong_zeros", "sparse", SHAPE, {"zeros per unit >= k"}),
    ],
)
def test_wrong_initialisers_fail(case, init, shape, failing):
    from benchmarks.calibration import Perturbed

    if init == "scaled":
        good = jinit.he_normal()
        bad, law, seeds = Perturbed(good, "scale", 1.03), jinit.law(good, shape), None
    elif init == "flip":
        good = jinit.orthogonal(2.0)
        law = jinit.law(good, shape)
        bad, seeds = Perturbed(good, "flip", 1.0, law), SEEDS
    elif init == "constant":
        bad, seeds = jinit.constant(0.5), SEEDS
        law = L.DeterministicLaw(np.full(shape, 0.25, np.float32), dtype=np.dtype(np.float32))
    else:
        bad, seeds = SparseInit(2, 0.5), SEEDS
        law = SparseInit(2, 0.5, claimed=3).law(shape)
    report = check_law(bad, shape, law=law, seeds=seeds, key=KEY)
    assert not report.passed
    assert failing <= {c.name for c in report.failed}, report.message()
    with pytest.raises(AssertionError, match="FAIL"):
        assert_follows_law(bad, shape, law=law, seeds=seeds, key=KEY)


# ---------------------------------------------------------------------------------------------
# Independence across keys
# ---------------------------------------------------------------------------------------------

# The array a key-ignoring initialiser returns, changed between tries without recompiling:
# read at run time through a host callback (the same for every seed of a sweep).
_FIXED = {"seed": 0}


def _fixed_key_data() -> np.ndarray:
    return np.asarray(jax.random.key_data(jax.random.key(_FIXED["seed"])), np.uint32)


@dataclasses.dataclass(frozen=True)
class KeyIgnoring:
    """``base`` drawn with a fixed key, whatever key it is given: the same array for every
    seed; the law it claims is ``base``'s."""

    base: Any

    def __call__(self, key, shape, dtype=None):
        data = jax.pure_callback(
            _fixed_key_data, jax.ShapeDtypeStruct((2,), jnp.uint32), vmap_method="broadcast_all"
        )
        return self.base(jax.random.wrap_key_data(data), shape, dtype)

    def law(self, shape, dtype=None):
        return self.base.law(shape, dtype)


KEY_IGNORING = [
    ("he_normal", jinit.he_normal(), (64, 32)),
    ("normal", jinit.normal(1.0), SHAPE),
    ("uniform", jinit.uniform(1.0), SHAPE),
    ("orthogonal", jinit.orthogonal(2.0), SHAPE),
    ("sparse", jinit.sparse(sparsity=0.5), SHAPE),
]


@pytest.mark.parametrize("name,base,shape", KEY_IGNORING, ids=[c[0] for c in KEY_IGNORING])
def test_key_ignoring_initialisers_fail_every_time(name, base, shape):
    init = KeyIgnoring(base)
    for i in range(30):  # 30 tries: another fixed array and another base key each time
        _FIXED["seed"] = 1000 + i
        report = check_law(init, shape, key=i)  # default seeds and alpha
        assert not report.passed
        failed = {c.name for c in report.failed}
        assert "independent keys" in failed, (i, report.message())
        ind = next(c for c in report.checks if c.name == "independent keys")
        assert ind.statistical and ind.measured > ind.tolerance
    assert "independent keys" in report.message() and "e.g. seeds 0 and 1" in report.message()


def test_deterministic_laws_are_exempt_from_independence():
    # their law says the draw does not depend on the key: no independence check
    for init, shape in ((jinit.zeros, (4, 3)), (jinit.constant(0.5), (4, 3))):
        report = check_law(init, shape, seeds=SEEDS, key=KEY)
        assert report.passed
        assert "independent keys" not in {c.name for c in report.checks}


def test_independence_is_not_testable_with_one_seed():
    report = check_law(jinit.he_normal(), SHAPE, seeds=1, key=KEY)
    ind = next(c for c in report.checks if c.name == "independent keys")
    assert ind.passed and not ind.statistical and "not testable" in ind.note


def test_same_law_two_samples():
    ours, theirs = jinit.he_uniform(), jax.nn.initializers.he_uniform()
    report = check_same_law(ours, theirs, SHAPE, seeds=SEEDS, key=KEY)
    assert report.passed, report.message()
    assert {"mean (a − b)", "std (a vs b)", "KS (two-sample)"} <= {c.name for c in report.checks}
    assert_same_law(ours, theirs, SHAPE, seeds=SEEDS, key=KEY)
    with pytest.raises(AssertionError, match="do not follow the same law"):
        # uniform vs truncated normal of the same variance: only the shape differs
        assert_same_law(ours, jax.nn.initializers.he_normal(), SHAPE, seeds=256, key=KEY)


@pytest.mark.parametrize(
    "call,error,match",
    [
        (lambda: check_law(jax.nn.initializers.he_normal(), SHAPE), TypeError, "needs a law"),
        (lambda: check_law(jinit.he_normal(), SHAPE, alpha=0.0), ValueError, "alpha` in"),
        (lambda: check_law(jinit.he_normal(), SHAPE, alpha="x"), TypeError, "alpha` to be"),
        (
            lambda: check_law(jinit.he_normal(), SHAPE, key=jax.random.key(0, impl="rbg")),
            ValueError,
            "refuses a `rbg` key",
        ),
        (
            lambda: check_same_law(jinit.normal(), jinit.normal(), SHAPE, dtype=None, alpha=2.0),
            ValueError,
            "alpha` in",
        ),
    ],
)
def test_bad_arguments(call, error, match):
    with pytest.raises(error, match=match):
        call()


# ---------------------------------------------------------------------------------------------
# The CLI: `jinit check`
# ---------------------------------------------------------------------------------------------

runner = CliRunner()
BASE = ["check", "he_normal", "--shape", "16,8", "--seeds", str(SEEDS), "--key", "3"]


def test_cli_check_passes():
    result = runner.invoke(app, BASE)
    assert result.exit_code == 0, result.output
    for part in ("mean", "std", "KS (pooled)", "PASS"):
        assert part in result.output
    assert "FAIL" not in result.output


def test_cli_check_fails_with_exit_status_1():
    # alpha = 0.99 makes each check fail about a quarter of the time; key 0 fails (fixed)
    result = runner.invoke(app, [*BASE[:-1], "0", "--alpha", "0.99"])
    assert result.exit_code == 1, result.output
    assert "FAIL" in result.output


@pytest.mark.parametrize(
    "args,match",
    [
        (["check", "no_such_init"], "no initialiser named 'no_such_init'"),
        (["check", "he_normal", "--param", "scale"], "expected k=v"),
        (["check", "he_normal", "--param", "mode='nope'"], "mode"),
        (["check", "zeros", "--param", "value=1.0"], "takes no parameters"),
        (["check", "he_normal", "--dtype", "float99"], "not a dtype"),
        (["check", "he_normal", "--alpha", "1.5"], "0 < alpha < 1"),
    ],
)
def test_cli_check_bad_input_exits_2(args, match):
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    plain = " ".join(re.sub("[│╭╮╰╯─]", " ", result.output).split())
    assert match in plain, plain


def test_cli_params_are_literals_not_code():
    from jinit.cli import _parse_params

    got = _parse_params(["scale=2.0", "mode=fan_out", "in_axis=(0, 1)", "x=__import__('os')"])
    assert got == {"scale": 2.0, "mode": "fan_out", "in_axis": (0, 1), "x": "__import__('os')"}
