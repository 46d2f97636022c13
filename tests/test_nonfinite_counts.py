"""Flags in the chunk program, exact statistics for the flagged seeds.

The chunk program does not count inf/NaN entries per layer and takes its stds in one pass:
it flags a layer whose mean of squares is not finite (:func:`nonfinite_flag`) or whose
one-pass std is ill conditioned (:func:`one_pass_flag`), and the engine runs the flagged
seeds again through a program that counts every entry and takes two-pass stds. These tests
hold the result to the old semantics ("number of inf/NaN entries of h and a", "of dL/dh",
``jnp.std``) by comparing with a sweep in which every layer is flagged, so every seed comes
from the exact program. Counts are integers summed in float32 below 2^24, so the comparisons
are exact; one-pass stds are held to their float32 rounding bound (``tests/rounding.py``).
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from rounding import U, assert_within, evaluate, gamma

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
def test_recounted_flags_equal_exact_stats(monkeypatch, name, make, inits, gradients):
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
    exact = _propagate._compile_group(plan, engine, ["big"], exact_stats=True)
    with _propagate.own_mesh(engine.mesh):
        want = _propagate._run_chunks(engine, plan, exact.compiled, 0)
        out = {n: np.full_like(want[n], 7.0) for n in COUNTS}
        for n in COUNTS:
            out[n][[1, 4], 3] = np.nan
        _propagate._recheck_flagged(engine, plan, ["big"], 0, out)
    for n in COUNTS:
        np.testing.assert_array_equal(out[n][[1, 4]], want[n][[1, 4]])
        np.testing.assert_array_equal(out[n][[0, 2, 3, 5]], 7.0)


# (name, tensor, flagged): the one-pass std is trusted while E[t^2] <= 8 Var[t]
_Z = np.random.default_rng(7).standard_normal((64, 32)).astype(np.float32)
STD_CASES = [
    ("normal", _Z, False),
    ("relu", np.maximum(_Z, 0), False),
    ("tanh", np.tanh(2 * _Z), False),
    ("shifted by 2 std", _Z + 2, False),  # E[t^2] = 5 Var
    ("sigmoid", 1 / (1 + np.exp(-_Z)), False),  # mean 0.5, std ~0.21: E[t^2] ~ 6.8 Var
    ("shifted by 3 std", _Z + 3, True),  # E[t^2] = 10 Var
    ("sigmoid of small inputs", 1 / (1 + np.exp(-0.01 * _Z)), True),
    ("constant (zero kernel, bias)", np.full((64, 32), 0.1, np.float32), True),
    ("zeros", np.zeros((64, 32), np.float32), False),  # exactly 0 both ways
]


def _one_pass_std(t):
    return _statistics._moments("t", t, jnp.float32, exact=False)["t.std"]


@pytest.mark.parametrize(("name", "t", "flagged"), STD_CASES, ids=[c[0] for c in STD_CASES])
def test_one_pass_std_is_float_rounding_where_it_is_not_flagged(name, t, flagged):
    """Unflagged: the one-pass std is within its float32 rounding bound of the exact std, and
    that bound is at most (3/2) (E[t^2]/Var) <= 12 times the rounding of a mean of the same n
    entries (the two means err by <= γ_n E[t^2] and 2|m| γ_n E|t| <= 2 γ_n E[t^2]; the std's
    sensitivity to its variance is 1/(2 std)). Flagged: the cancellation could cost more."""
    t = np.asarray(t, np.float32)
    st = _statistics._moments("t", jnp.asarray(t), jnp.float32, exact=False)
    flag = float(_statistics.one_pass_flag(st, ("t",)))
    assert np.isnan(flag) == flagged
    if flagged:
        return
    got = float(jax.jit(_one_pass_std)(t))
    exact = float(np.std(t.astype(np.float64)))
    if exact == 0.0:  # all zeros: both means are exactly 0 (the bound of sqrt at 0 is not finite)
        assert got == 0.0
        return
    ref, bound = evaluate(_one_pass_std, t)
    np.testing.assert_allclose(float(ref), exact, rtol=1e-12)  # float64: the same formula
    assert_within(got, exact, bound, name)
    mean_rounding = gamma(t.size) + U  # relative error of a float32 mean of t.size terms
    condition = _statistics._ONE_PASS_CONDITION
    assert float(bound) <= (1.5 * condition + 1) * mean_rounding * exact


# (network, initialiser, every seed flagged): forward-only sweeps
ONE_PASS_SWEEPS = [
    ("relu-he", lambda: mlp(16, 6), jinit.he_normal(), False),
    ("tanh-lecun", lambda: mlp(16, 6, "tanh"), jinit.lecun_normal(), False),
    ("sigmoid-small", lambda: mlp(16, 6, "sigmoid"), jinit.normal(1e-3), True),
]


@pytest.mark.parametrize(
    ("name", "make", "init", "all_flagged"), ONE_PASS_SWEEPS, ids=[c[0] for c in ONE_PASS_SWEEPS]
)
def test_flagged_seeds_get_two_pass_stds(monkeypatch, name, make, init, all_flagged):
    """A forward-only sweep's stds equal a sweep whose every seed is computed exactly: bit
    for bit where every seed was flagged (sigmoid of small inputs: mean 0.5, tiny spread), and
    within the one-pass rounding bound where none was."""
    kw = dict(seeds=6, batch=8, chunk_size=2, devices=2, gradients=False, theory=False)
    _propagate._PROGRAMS.clear()
    fast = jinit.sweep(make(), {"i": init}, **kw)
    exact = _exact_reference(monkeypatch, lambda: jinit.sweep(make(), {"i": init}, **kw))
    n = kw["batch"] * 16  # entries of one layer's tensor
    # one-pass std <= (1.5 C + 1)(γ_n + u) relative (see above), two-pass std ~ (γ_n + u)
    rtol = (1.5 * _statistics._ONE_PASS_CONDITION + 2) * (gamma(n) + U)
    for q in ("preact.std", "act.std", "output.std"):
        got, want = fast.per_seed["i"][q], exact.per_seed["i"][q]
        if all_flagged:
            chex.assert_trees_all_equal(got, want)
        else:
            np.testing.assert_allclose(got, want, rtol=rtol, atol=0)
            assert not np.array_equal(got, want) or q == "output.std"  # truly one-pass
    assert np.all(fast.per_seed["i"]["nonfinite"] == 0)  # the recheck left exact zeros
