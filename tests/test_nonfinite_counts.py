"""Non-finite counts of a sweep: flags in the chunk program, exact recounts of flagged seeds.

The chunk program does not count inf/NaN entries per layer: it flags a layer whose mean of
squares is not finite (:func:`nonfinite_flag`), and the engine runs the flagged seeds again
through a program that counts every entry. These tests hold the result to the old semantics
("number of inf/NaN entries of h and a", "of dL/dh") by comparing with a sweep in which every
layer is flagged, so every seed is counted by the exact program. Counts are integers summed in
float32 below 2^24, so the comparisons are exact.
"""

from __future__ import annotations

import chex
import jax.numpy as jnp
import numpy as np
import pytest

import jinit
from jinit.sweeps import _propagate, _statistics
from jinit.sweeps._flax_models import linen_model
from jinit.sweeps._mlp import mlp

COUNTS = ("nonfinite", "grad.nonfinite")


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([1.0, -2.0, 3.0], 0.0),
        ([0.0, -0.0], 0.0),
        ([1.0, np.inf], np.nan),
        ([-np.inf, 1.0], np.nan),
        ([np.nan, 1.0], np.nan),
        ([1e30, 1.0], np.nan),  # finite, but its square overflows: unknown, counted again
    ],
)
def test_flag_is_zero_only_for_tensors_proved_finite(values, expected):
    t = jnp.asarray(values, jnp.float32)
    got = float(_statistics.nonfinite_flag(jnp.mean(t * t)))
    assert got == expected or (np.isnan(expected) and np.isnan(got))
    if got == 0.0:  # a zero flag is a proof: the exact count is zero too
        assert float(_statistics.nonfinite_count(t)) == 0.0


def _always_flag(*moments):
    return jnp.float32(jnp.nan)


def _per_seed_counts(result):
    return {
        label: {n: result.per_seed[label][n] for n in COUNTS if n in result.per_seed[label]}
        for label in result.labels
    }


def _exact_reference(monkeypatch, run):
    """``run()`` with every layer flagged: every seed counted by the exact program."""
    monkeypatch.setattr(_statistics, "nonfinite_flag", _always_flag)
    _propagate._PROGRAMS.clear()
    try:
        return run()
    finally:
        monkeypatch.undo()
        _propagate._PROGRAMS.clear()


def _big_linen(depth):
    import flax.linen as nn

    class MLP(nn.Module):
        kernel_init: object

        @nn.compact
        def __call__(self, x):
            for _ in range(depth):
                x = nn.relu(nn.Dense(16, kernel_init=self.kernel_init)(x))
            return x

    return linen_model(lambda init: MLP(init), lambda k, b, d: jnp.ones((b, 16), d))


# (network factory, initialisers, gradients): each overflows float32 part-way, so some layers
# are finite (flag 0), some finite with overflowing squares (flagged, exact count 0), some inf
CASES = [
    ("mlp", lambda: mlp(16, 10), {"big": jinit.normal(1e4), "he": jinit.he_normal()}, True),
    ("mlp-forward", lambda: mlp(16, 10), {"big": jinit.normal(1e4)}, False),
    ("linen", lambda: _big_linen(6), {"big": jinit.normal(1e10)}, True),
    ("linen-forward", lambda: _big_linen(6), {"big": jinit.normal(1e10)}, False),
]


@pytest.mark.parametrize(("name", "make", "inits", "gradients"), CASES, ids=[c[0] for c in CASES])
def test_recounted_flags_equal_exact_counts(monkeypatch, name, make, inits, gradients):
    kw = dict(seeds=6, batch=8, chunk_size=2, devices=2, gradients=gradients, theory=False)
    _propagate._PROGRAMS.clear()
    fast = jinit.sweep(make(), inits, **kw)
    exact = _exact_reference(monkeypatch, lambda: jinit.sweep(make(), inits, **kw))
    got, want = _per_seed_counts(fast), _per_seed_counts(exact)
    for label in inits:
        assert set(got[label]) == {"nonfinite"} | ({"grad.nonfinite"} if gradients else set())
        for n, counts in got[label].items():
            chex.assert_trees_all_equal(counts, want[label][n])
    big = got["big"]["nonfinite"]
    assert not np.isnan(big).any()
    assert np.all(big[:, 0] == 0) and np.all(big[:, -1] > 0)  # finite first, inf at the end
    m2 = fast.per_seed["big"]["act.second_moment"]
    assert np.any(~np.isfinite(m2) & (big == 0))  # some flagged layers were finite after all
    if "he" in inits:
        assert np.all(got["he"]["nonfinite"] == 0)


def test_finite_sweeps_compile_no_counting_program():
    _propagate._PROGRAMS.clear()
    jinit.sweep(mlp(16, 3), jinit.he_normal(), seeds=4, batch=8, devices=1)
    assert _propagate._PROGRAMS.misses == 1
    jinit.sweep(mlp(16, 10), jinit.normal(1e4), seeds=4, batch=8, devices=1)
    assert _propagate._PROGRAMS.misses == 3  # the exploding one compiles its counting program


def test_recount_replaces_only_the_flagged_seeds():
    """Seeds 1 and 4 flagged by hand: they get the exact program's counts, the others keep
    theirs (a real sweep never flags a finite seed, so their exact counts are 0)."""
    net, init = mlp(16, 10), jinit.normal(1e4)
    plan = _propagate.prepare_sweep(net, {"big": init}, seeds=6, batch=8, chunk_size=2, devices=2)
    engine = _propagate.SeedPlan.create(plan.devs, plan.seeds, plan.chunk_size)
    exact = _propagate._compile_group(plan, engine, ["big"], exact_counts=True)
    with _propagate.own_mesh(engine.mesh):
        want = _propagate._run_chunks(engine, plan, exact.compiled, 0)
        out = {n: np.full_like(want[n], 7.0) for n in COUNTS}
        for n in COUNTS:
            out[n][[1, 4], 3] = np.nan
        _propagate._recount_nonfinite(engine, plan, ["big"], 0, out)
    for n in COUNTS:
        np.testing.assert_array_equal(out[n][[1, 4]], want[n][[1, 4]])
        np.testing.assert_array_equal(out[n][[0, 2, 3, 5]], 7.0)
