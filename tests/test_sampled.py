"""The exact discrete law of 16-bit samplers (jinit.laws._sampled) and its use by jinit.testing."""

from __future__ import annotations

import sys
from pathlib import Path

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

import jinit
from jinit.laws._sampled import atom_moments, exact_atoms
from jinit.testing import check_law

ROOT = str(Path(__file__).resolve().parents[1])
if ROOT not in sys.path:  # benchmarks/ lives at the repo root
    sys.path.insert(0, ROOT)

from benchmarks.calibration import Perturbed, power_cases  # noqa: E402

SHAPE = (64, 32)

# (initialiser, dtype, number of atoms): jax draws bfloat16 from 7 random bits and float16 from 10
ENUMERABLE = [
    (jinit.he_normal(), jnp.bfloat16, 128),
    (jinit.he_uniform(), jnp.bfloat16, 128),
    (jinit.normal(0.02), jnp.bfloat16, 128),
    (jinit.torch.linear_weight(), jnp.bfloat16, 128),
    (jinit.lecun_normal(), jnp.float16, 1024),
    (jinit.uniform(0.5), jnp.float16, 1024),
]


@pytest.mark.parametrize("init,dtype,atoms", ENUMERABLE, ids=lambda v: str(v))
def test_atoms_are_a_distribution_close_to_the_continuous_law(init, dtype, atoms):
    law = jinit.law(init, SHAPE, dtype)
    values, probs = exact_atoms(law)
    chex.assert_shape([values, probs], (atoms,))
    assert np.all(np.diff(values) > 0)
    np.testing.assert_allclose(probs.sum(), 1.0, rtol=0, atol=1e-12)
    # every probability is a whole number of the 2^16 enumerated words
    np.testing.assert_array_equal(probs * 2**16, np.round(probs * 2**16))
    mean, var, _ = atom_moments(values, probs)
    eps = float(jnp.finfo(dtype).eps)
    assert abs(mean - float(law.mean)) < 3 * eps * law.std
    assert abs(var / law.variance - 1) < 2 * eps
    assert values[0] >= law.support[0] - eps * abs(law.support[0])
    assert values[-1] <= law.support[1] + eps * abs(law.support[1])


@pytest.mark.parametrize("init,dtype,atoms", ENUMERABLE[:2] + ENUMERABLE[-1:], ids=lambda v: str(v))
def test_real_draws_take_only_atom_values_with_atom_frequencies(init, dtype, atoms):
    values, probs = exact_atoms(jinit.law(init, SHAPE, dtype))
    keys = jax.random.split(jax.random.key(3), 32)
    draws = jax.jit(jax.vmap(lambda k: init(k, SHAPE, dtype)))(keys)
    x = np.asarray(draws.astype(jnp.float32), np.float64).ravel()
    idx = np.searchsorted(values, x)
    assert np.all(idx < len(values)) and np.all(values[np.minimum(idx, len(values) - 1)] == x)
    counts = np.bincount(idx, minlength=len(values))
    # chi-square goodness of fit of the frequencies (64k values; expected >= 64 per cell)
    p = scipy.stats.chisquare(counts, probs * x.size).pvalue
    assert p > 1e-4


@pytest.mark.parametrize(
    "init,dtype",
    [
        (jinit.he_normal(), jnp.float32),  # continuous to within 2^-24: no enumeration
        (jinit.normal(1.0), jnp.complex64),
        (jinit.orthogonal(), jnp.bfloat16),  # not an element-wise law
    ],
    ids=str,
)
def test_no_atoms_where_the_enumeration_would_not_be_exact(init, dtype):
    assert exact_atoms(jinit.law(init, SHAPE, dtype)) is None


def test_no_atoms_for_a_law_that_no_initialiser_made():
    assert exact_atoms(jinit.laws.Normal(1.0, dtype=jnp.dtype(jnp.bfloat16))) is None


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16], ids=str)
def test_a_float32_draw_rounded_once_has_the_rounded_continuous_law(dtype):
    init = jinit.torch.trunc_normal(std=0.5, a=-1.0, b=1.0)
    law = jinit.law(init, SHAPE, dtype)
    values, probs = exact_atoms(law)
    assert values[0] == -1.0 and values[-1] == 1.0
    np.testing.assert_allclose(probs.sum(), 1.0, rtol=0, atol=1e-12)
    # the rounding moves the variance by ~ulp^2/12: far below the sampling error of a sweep
    _, var, _ = atom_moments(values, probs)
    assert abs(var / law.variance - 1) < 1e-4
    keys = jax.random.split(jax.random.key(4), 64)
    x = np.asarray(
        jax.jit(jax.vmap(lambda k: init(k, SHAPE, dtype)))(keys).astype(jnp.float32), np.float64
    ).ravel()
    # each draw is a representable value the rounded law gives mass to (or one of the tiny
    # values next to 0 whose mass is below float32's resolution of the CDF)
    on_grid = np.isin(x, values) | (np.abs(x) < 1e-3)
    assert on_grid.all()
    assert x.min() >= values[0] and x.max() <= values[-1]


def test_the_law_records_its_sampler_without_changing_equality():
    a = jinit.law(jinit.he_normal(), SHAPE, jnp.bfloat16)
    b = jinit.law(jinit.he_normal(), SHAPE, jnp.bfloat16)
    assert a.sampler == (jinit.he_normal(), SHAPE) and a == b and hash(a) == hash(b)
    assert jinit.law(jinit.he_normal(), SHAPE).sampler is None


POWER_16 = [
    (jinit.he_normal(), jnp.bfloat16, "std ×1.03"),
    (jinit.he_normal(), jnp.bfloat16, "std ×0.97"),
    (jinit.he_uniform(), jnp.bfloat16, "bound −3%"),
    (jinit.he_uniform(), jnp.bfloat16, "bound +3%"),
    (jinit.lecun_normal(), jnp.float16, "std ×1.03"),
    (jinit.sparse(sparsity=0.1), jnp.bfloat16, "std ×1.03"),
    (jinit.torch.sparse(0.1), jnp.bfloat16, "std ×0.97"),
    (jinit.torch.trunc_normal(), jnp.bfloat16, "std ×0.97"),
]


@pytest.mark.parametrize("init,dtype,case", POWER_16, ids=str)
def test_three_percent_errors_are_caught_in_16_bit(init, dtype, case):
    law = jinit.law(init, SHAPE, dtype)
    kind, factor = power_cases(law)[case]
    bad = Perturbed(init, kind, factor, law)
    good = check_law(init, SHAPE, dtype=dtype, key=5)
    assert good.passed, good.message()
    report = check_law(bad, SHAPE, law=law, dtype=dtype, key=5)
    assert not report.passed
    assert any(c.note == "exact 16-bit sampler law" for c in report.checks)


def test_extreme_atoms_catch_a_shrunk_bound_on_a_small_bfloat16_bias():
    init, shape, dtype = jinit.torch.linear_bias(32), (32,), jnp.bfloat16
    law = jinit.law(init, shape, dtype)
    good = check_law(init, shape, dtype=dtype, key=7)
    names = {c.name for c in good.checks}
    assert {"min reaches the lowest atom", "max reaches the highest atom"} <= names
    assert good.passed, good.message()
    kind, factor = power_cases(law)["bound −3%"]
    bad = check_law(Perturbed(init, kind, factor, law), shape, law=law, dtype=dtype, key=7)
    assert any(c.name == "max reaches the highest atom" and not c.passed for c in bad.checks)
