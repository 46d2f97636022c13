"""A fast version of benchmarks/calibration.py: false alarms of jinit.testing stay within a
binomial bound of the nominal rate, and the deliberate errors of the power study are caught at
the default settings."""

from __future__ import annotations

import sys
from pathlib import Path

import jax.numpy as jnp
import pytest
import scipy.stats
from test_stats import SEEDS, SHAPE

import jinit
from jinit.testing import check_law

ROOT = str(Path(__file__).resolve().parents[1])
if ROOT not in sys.path:  # benchmarks/ lives at the repo root
    sys.path.insert(0, ROOT)

from benchmarks.calibration import (  # noqa: E402
    Perturbed,
    lower_bound,
    power_cases,
    upper_bound,
)

KEYS = 200
ALPHA = 0.05
# With a true false-alarm rate <= ALPHA, more than this many failures in KEYS keys has
# probability < 1e-3.
LIMIT = int(scipy.stats.binom.isf(1e-3, KEYS, ALPHA))


@pytest.mark.parametrize(
    "name,init,dtype",
    [
        ("he_normal", jinit.he_normal(), None),
        ("he_uniform", jinit.he_uniform(), None),
        ("normal_complex64", jinit.normal(1.0), jnp.complex64),
    ],
)
def test_false_alarms_within_binomial_bound(name, init, dtype):
    fails = sum(
        not check_law(init, SHAPE, dtype=dtype, seeds=SEEDS, key=1000 + i, alpha=ALPHA).passed
        for i in range(KEYS)
    )
    assert fails <= LIMIT, f"{name}: {fails} false alarms in {KEYS} keys at alpha={ALPHA}"


POWER = [
    ("he_normal", jinit.he_normal(), "std ×1.03"),
    ("he_normal", jinit.he_normal(), "family"),
    ("he_uniform", jinit.he_uniform(), "bound −3%"),
    ("he_uniform", jinit.he_uniform(), "bound +3%"),
    ("orthogonal", jinit.orthogonal(), "sign flip"),
]


@pytest.mark.parametrize("name,init,case", POWER, ids=[f"{p[0]}-{p[2]}" for p in POWER])
def test_deliberate_errors_are_caught_at_the_defaults(name, init, case):
    shape = (64, 32)
    law = jinit.law(init, shape)
    kind, factor = power_cases(law)[case]
    bad = Perturbed(init, kind, factor, law)
    for key in range(3):  # default seeds (128 here) and alpha (1e-6)
        report = check_law(bad, shape, law=law, key=key)
        assert not report.passed, f"{name} {case} not caught with key {key}:\n{report}"


def test_power_cases_by_law_type():
    assert set(power_cases(jinit.law(jinit.he_uniform(), SHAPE))) == {
        "std ×1.03",
        "std ×0.97",
        "bound +3%",
        "bound −3%",
        "family",
    }
    assert "sign flip" in power_cases(jinit.law(jinit.orthogonal(), SHAPE))
    assert set(power_cases(jinit.law(jinit.zeros, (4, 3)))) == {"ulp"}


@pytest.mark.parametrize("k,n", [(0, 1000), (3, 1000), (10, 200), (300, 300)])
def test_clopper_pearson_bounds_match_scipy(k, n):
    want_hi = 1.0 if k == n else scipy.stats.beta.ppf(0.95, k + 1, n - k)
    want_lo = 0.0 if k == 0 else scipy.stats.beta.ppf(0.05, k, n - k + 1)
    assert upper_bound(k, n) == pytest.approx(want_hi, rel=1e-6)
    assert lower_bound(k, n) == pytest.approx(want_lo, rel=1e-6, abs=1e-12)
