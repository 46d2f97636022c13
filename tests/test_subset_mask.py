"""The exact random-subset sampler behind ``jinit.sparse`` and ``jinit.torch.sparse``
(``jinit._core._sampling.random_subset_mask``): exact counts, a uniform law over subsets,
independent units, and the rejection paths taken when a random word falls above the largest
multiple of a step's range.

Uniformity is tested with a chi-square goodness-of-fit test on every subset (or pair of
subsets) at ``ALPHA = 1e-6``: a correct sampler fails a case with probability 1e-6; a sampler
that favours some subsets by a few percent fails it with certainty at these sample sizes (the
bias of ``word mod m`` on 3-bit words is tens of percent, see the forced-rejection cases).
"""

from __future__ import annotations

import itertools

import jax
import numpy as np
import pytest
from scipy import stats

from jinit._core import _sampling
from jinit._core._sampling import random_subset_mask

ALPHA = 1e-6
DRAWS = 30_000


def _masks(shape, axis, z, draws=DRAWS, seed=0):
    keys = jax.random.split(jax.random.key(seed), draws)
    draw = jax.jit(jax.vmap(lambda k: random_subset_mask(k, shape, axis, z)))
    return np.asarray(draw(keys))


@pytest.mark.parametrize(
    ("shape", "axis", "z"),
    [
        ((7,), 0, 3),
        ((5, 9), 1, 4),
        ((5, 9), 0, 4),  # z > n/2 along axis 0 (n = 5): the complement is selected
        ((3, 4, 6), 1, 1),
        ((3, 4, 6), 2, 5),
        ((4, 6), 1, 0),
        ((4, 6), 1, 6),
        ((1, 2048), 1, 1843),
    ],
)
def test_exact_count_in_every_unit(shape, axis, z):
    m = np.asarray(random_subset_mask(jax.random.key(5), shape, axis, z))
    assert m.shape == shape and m.dtype == bool
    assert (m.sum(axis=axis) == z).all()


def _chi2_uniform(codes: np.ndarray, n_cells: int) -> float:
    counts = np.bincount(codes, minlength=n_cells)
    return stats.chisquare(counts).pvalue


@pytest.mark.parametrize(("n", "z"), [(4, 2), (5, 3), (6, 1), (6, 5)])
def test_subsets_are_uniform(n, z):
    m = _masks((n,), 0, z)
    subsets = [sum(1 << i for i in c) for c in itertools.combinations(range(n), z)]
    index = {s: j for j, s in enumerate(subsets)}
    codes = np.array([index[int(c)] for c in m @ (1 << np.arange(n))])
    assert _chi2_uniform(codes, len(subsets)) > ALPHA


def test_units_are_independent():
    m = _masks((2, 3), 1, 1)  # two units, each picks one of 3 entries: 9 equally likely pairs
    first, second = m[:, 0].argmax(-1), m[:, 1].argmax(-1)
    assert _chi2_uniform(first * 3 + second, 9) > ALPHA


@pytest.mark.parametrize(("n", "z"), [(4, 2), (6, 1), (5, 3)])
def test_rejected_words_are_redrawn(monkeypatch, n, z):
    """With 3-bit words a quarter of the draws are rejected and some steps lose both words:
    every mask still has exactly z entries and the subsets stay uniform (taking ``word mod m``
    without rejection would favour the low residues by tens of percent)."""
    monkeypatch.setattr(_sampling, "_WORD_BITS", 3)
    m = _masks((n,), 0, z, draws=DRAWS // 3, seed=1)
    assert (m.sum(-1) == z).all()
    subsets = [sum(1 << i for i in c) for c in itertools.combinations(range(n), z)]
    index = {s: j for j, s in enumerate(subsets)}
    codes = np.array([index[int(c)] for c in m @ (1 << np.arange(n))])
    assert _chi2_uniform(codes, len(subsets)) > ALPHA


def test_both_words_rejected_triggers_a_redraw(monkeypatch):
    """The redraw path runs: with 1-bit words and a range of 3, every step is rejected with
    probability 1/4, so some of 200 draws need a second attempt; all still come out exact."""
    monkeypatch.setattr(_sampling, "_WORD_BITS", 2)
    keys = jax.random.split(jax.random.key(3), 200)
    failed = jax.vmap(lambda k: _sampling._floyd(k, 1, 3, 1)[1])(keys)
    assert np.asarray(failed).any()
    m = _masks((3,), 0, 1, draws=3000, seed=2)
    assert (m.sum(-1) == 1).all()
    assert _chi2_uniform(m.argmax(-1), 3) > ALPHA
