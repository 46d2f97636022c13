"""Bad and edge inputs of the tree tools (`jinit.reinit`, `jinit.path_key`, `jinit.contextual`,
`jinit.summary`, `jinit.lsuv`), µP (`jinit.mup.*`), the recipes (`jinit.recipes.*`) and
`jinit.torch.init_like_torch`: each row raises exactly the given type, with a message that
starts with the public function's name and names the parameter, the value given and the fix
(`tests/bad_input.py`). `test_lsuv_refuses_before_any_forward_pass` checks that lsuv's refusals
come before the model is run."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from bad_input import check_raises, params

import jinit
from jinit import mup
from jinit import recipes as R
from jinit._core._checks import AxisError, PRNGKeyError
from jinit.mup._coord_check import CoordCheckResult

K = jax.random.key(0)
KEYS = jax.random.split(K, 3)
P = {"Dense_0": {"kernel": jnp.ones((4, 3)), "bias": jnp.ones(3)}}
RULES = [("*/kernel", jinit.he_normal()), ("*/bias", jinit.zeros)]
COMPLEX = {"w": jnp.zeros((3, 3), jnp.complex64)}

RE = "`jinit.reinit`"
SU = "`jinit.summary`"
LS = "`jinit.lsuv`"
TORCH = "`jinit.torch.init_like_torch`"


def _returns(value):
    """An initialiser that ignores its arguments and returns ``value`` (a broken one)."""
    return lambda key, shape, dtype=None: value


def _mlp(n: int) -> dict:
    return {"in": jnp.zeros((8, n)), "h": jnp.zeros((n, n)), "out": jnp.zeros((n, 10))}


M64, M32 = _mlp(64), _mlp(32)


class _Net(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.Dense(4)(jnp.tanh(nn.Dense(8)(x)))


NET = _Net()
X = jnp.linspace(-1.0, 1.0, 16 * 5).reshape(16, 5)
VARS = NET.init(jax.random.key(1), X)
VARS_7 = NET.init(jax.random.key(1), jnp.ones((16, 7)))  # a model built for 7 input features


def _lsuv(**kw):
    return lambda: jinit.lsuv(NET.apply, VARS, kw.pop("batch", X), **kw)


def _coord(**kw):
    return lambda: mup.coord_check((8, 16), depth=1, steps=1, seeds=1, batch=4, **kw)


_RESULT = CoordCheckResult(
    widths=(8, 16),
    layers=("Dense_0", "Dense_1"),
    parametrizations=("µP", "SP"),
    steps=1,
    values={"µP": np.ones((2, 2, 1, 2)), "SP": np.ones((2, 2, 1, 2))},
    config={},
)

_LSTM = {"hf": {"bias": jnp.zeros(4)}, "hi": {"bias": jnp.zeros(4)}}

ROWS = [
    # --- jinit.reinit: keys ------------------------------------------------------------------
    ("reinit-key-float", lambda: jinit.reinit(P, 1.0, RULES), TypeError, [RE, "PRNG key", "1.0"]),
    (
        "reinit-key-uint32-wrong-shape",
        lambda: jinit.reinit(P, jnp.zeros(3, jnp.uint32), RULES),
        TypeError,
        [RE, "uint32", r"\(3,\)", r"jax\.random\.key\(0\)"],
    ),
    (
        "reinit-key-batch",
        lambda: jinit.reinit(P, KEYS, RULES),
        PRNGKeyError,
        [RE, "single PRNG key", r"\(3,\)", "vmap"],
    ),
    # --- jinit.reinit: rules and flags -------------------------------------------------------
    ("reinit-rules-str", lambda: jinit.reinit(P, K, "*"), TypeError, [RE, "`rules`", "'\\*'"]),
    (
        "reinit-rules-single-pair",
        lambda: jinit.reinit(P, K, ("*", jinit.zeros)),
        TypeError,
        [RE, "single pair", "Wrap it in a list"],
    ),
    (
        "reinit-init-not-callable",
        lambda: jinit.reinit(P, K, [("*", 5)]),
        TypeError,
        [RE, "rule 0", "5", "callable"],
    ),
    (
        "reinit-init-builder-not-called",
        lambda: jinit.reinit(P, K, [("*", jinit.he_normal)]),
        TypeError,
        [RE, "he_normal", r"Call it: `jinit\.he_normal\(\.\.\.\)`"],
    ),
    (
        "reinit-bad-regex",
        lambda: jinit.reinit(P, K, [("(", jinit.zeros)], regex=True),
        ValueError,
        [RE, "regular expression", r"'\('"],
    ),
    (
        "reinit-strict-str",
        lambda: jinit.reinit(P, K, RULES, strict="yes"),
        TypeError,
        [RE, "`strict`", "'yes'"],
    ),
    (
        "reinit-unmatched-leaf",
        lambda: jinit.reinit(P, K, [("*/kernel", jinit.zeros)]),
        ValueError,
        [RE, "Dense_0/bias", "matched no rule", "strict=False"],
    ),
    (
        "reinit-shadowed-rule",
        lambda: jinit.reinit(P, K, [("*", jinit.zeros), ("*/bias", jinit.ones)]),
        ValueError,
        [RE, "rule 1", "never apply", "fallback=True"],
    ),
    (
        "reinit-no-array-leaves",
        lambda: jinit.reinit("abc", K, RULES),
        ValueError,
        [RE, "no array leaves", "str"],
    ),
    # --- jinit.reinit: dtypes are never silently cast -----------------------------------------
    (
        "reinit-rule-matches-int-leaf",
        lambda: jinit.reinit(
            {"w": jnp.ones((2, 2)), "count": jnp.zeros((), jnp.int32)}, K, [("*", jinit.normal())]
        ),
        ValueError,
        [RE, "count", "int32", r"\('count', None\)", "fallback=True"],
    ),
    (
        "reinit-rule-matches-bool-leaf",
        lambda: jinit.reinit({"mask": jnp.ones(3, bool)}, K, [("mask", jinit.zeros)]),
        ValueError,
        [RE, "mask", "bool", "Exclude"],
    ),
    (
        "reinit-complex-draw-into-real-leaf",
        lambda: jinit.reinit(P, K, [("*", lambda k, s, d: jnp.ones(s, jnp.complex64))]),
        ValueError,
        [RE, "complex64", "float32 leaf", "imaginary parts", "dtype it is given"],
    ),
    (
        "reinit-real-draw-into-complex-leaf",
        lambda: jinit.reinit(COMPLEX, K, [("w", lambda k, s, d: jnp.ones(s, jnp.float32))]),
        ValueError,
        [RE, "float32 values", "complex64 leaf", "imaginary parts would all be zero"],
    ),
    (
        "reinit-real-law-into-complex-leaf",
        lambda: jinit.reinit(COMPLEX, K, [("w", jinit.uniform())]),
        ValueError,
        [RE, "'w'", "complex64", "real law only", r"jinit\.normal"],
    ),
    (
        "reinit-int-draw-into-float-leaf",
        lambda: jinit.reinit(P, K, [("*", lambda k, s, d: jnp.ones(s, jnp.int32))]),
        ValueError,
        [RE, "int32 values", "float32 leaf", "non-float"],
    ),
    (
        "reinit-draw-wrong-shape",
        lambda: jinit.reinit(P, K, [("*", _returns(jnp.zeros(2)))]),
        ValueError,
        [RE, r"returned shape \(2,\)", r"\(3,\)|\(4, 3\)"],
    ),
    (
        "reinit-draw-not-an-array",
        lambda: jinit.reinit(P, K, [("*", _returns("x"))]),
        TypeError,
        [RE, "returned str", "not an array"],
    ),
    # --- jinit.path_key / jinit.contextual / jinit.Rule ---------------------------------------
    (
        "path_key-key-float",
        lambda: jinit.path_key(0.5, "a"),
        TypeError,
        ["`jinit.path_key`", "PRNG key", "0.5"],
    ),
    (
        "path_key-path-int",
        lambda: jinit.path_key(K, 3),
        TypeError,
        ["`jinit.path_key`", "`path`", "str", "3"],
    ),
    (
        "contextual-not-callable",
        lambda: jinit.contextual(3),
        TypeError,
        ["`jinit.contextual`", "callable", "3"],
    ),
    (
        "Rule-pattern-int",
        lambda: jinit.Rule(3, jinit.zeros),
        TypeError,
        ["`jinit.Rule`", "pattern", "3"],
    ),
    (
        "Rule-fallback-str",
        lambda: jinit.Rule("*", jinit.zeros, fallback="yes"),
        TypeError,
        ["`jinit.Rule`", "fallback", "'yes'"],
    ),
    # --- jinit.summary ----------------------------------------------------------------------
    (
        "summary-unit-axis-out-of-range",
        lambda: jinit.summary({"w": jnp.zeros((4, 4))}, unit_axis=5),
        ValueError,
        [SU, "unit_axis=5", "'w'", "rank 2", "-2..1"],
    ),
    (
        "summary-unit-axis-float",
        lambda: jinit.summary(P, unit_axis=1.5),
        TypeError,
        [SU, "unit_axis", "1.5", "-1"],
    ),
    (
        "summary-unit-axis-bool",
        lambda: jinit.summary(P, unit_axis=True),
        TypeError,
        [SU, "unit_axis", "True"],
    ),
    (
        "summary-z-threshold-nan",
        lambda: jinit.summary(P, z_threshold=float("nan")),
        ValueError,
        [SU, "z_threshold", "nan"],
    ),
    (
        "summary-z-threshold-zero",
        lambda: jinit.summary(P, z_threshold=0),
        ValueError,
        [SU, "z_threshold", "> 0"],
    ),
    (
        "summary-rel-floor-negative",
        lambda: jinit.summary(P, rel_floor=-0.1),
        ValueError,
        [SU, "rel_floor", "-0.1"],
    ),
    (
        "summary-expected-not-a-dict",
        lambda: jinit.summary(P, expected=[0.1]),
        TypeError,
        [SU, "`expected`", "list"],
    ),
    (
        "summary-expected-unknown-path",
        lambda: jinit.summary(P, expected={"Dense_0/kernels": 0.1}),
        ValueError,
        [SU, "Dense_0/kernels", "did you mean 'Dense_0/kernel'"],
    ),
    (
        "summary-expected-str",
        lambda: jinit.summary(P, expected={"Dense_0/kernel": "he"}),
        TypeError,
        [SU, r"expected\['Dense_0/kernel'\]", "'he'", r"jinit\.he_normal\(\)"],
    ),
    (
        "summary-expected-negative-std",
        lambda: jinit.summary(P, expected={"Dense_0/kernel": -1.0}),
        ValueError,
        [SU, "-1.0", ">= 0"],
    ),
    (
        "summary-expected-nan-std",
        lambda: jinit.summary(P, expected={"Dense_0/kernel": float("nan")}),
        ValueError,
        [SU, "nan", "finite"],
    ),
    (
        "summary-rules-str",
        lambda: jinit.summary(P, rules="*/kernel"),
        TypeError,
        [SU, "`rules`", "list of"],
    ),
    (
        "summary-rule-pattern-int",
        lambda: jinit.summary(P, rules=[(1, jinit.zeros)]),
        TypeError,
        [SU, "rule 0", "pattern"],
    ),
    (
        "summary-rule-value-str",
        lambda: jinit.summary(P, rules=[("*", "zeros")]),
        TypeError,
        [SU, r"rules\[0\]", "'zeros'"],
    ),
    (
        "summary-no-array-leaves",
        lambda: jinit.summary("hello"),
        ValueError,
        [SU, "no array leaves", "str"],
    ),
    # --- jinit.lsuv -------------------------------------------------------------------------
    ("lsuv-tol-zero", _lsuv(tol=0.0), ValueError, [LS, "`tol` > 0", "0.0"]),
    ("lsuv-tol-nan", _lsuv(tol=float("nan")), ValueError, [LS, "finite `tol`", "nan"]),
    ("lsuv-max-iters-zero", _lsuv(max_iters=0), ValueError, [LS, "`max_iters` >= 1", "0"]),
    ("lsuv-max-iters-float", _lsuv(max_iters=2.5), TypeError, [LS, "`max_iters`", "2.5"]),
    ("lsuv-target-inf", _lsuv(target_var=float("inf")), ValueError, [LS, "target_var", "inf"]),
    ("lsuv-target-negative", _lsuv(target_var=-1.0), ValueError, [LS, "target_var", "-1.0"]),
    ("lsuv-key-float", _lsuv(key=1.0), TypeError, [LS, "PRNG key", "1.0"]),
    ("lsuv-key-batch", _lsuv(key=KEYS), PRNGKeyError, [LS, "single PRNG key", r"\(3,\)"]),
    (
        "lsuv-key-uint32-wrong-shape",
        _lsuv(key=jnp.zeros(5, jnp.uint32)),
        TypeError,
        [LS, "uint32", r"\(5,\)"],
    ),
    ("lsuv-bias-mode", _lsuv(bias="scaled"), ValueError, [LS, "`bias`", "'scaled'", "'scale'"]),
    (
        "lsuv-preinit-str",
        _lsuv(orthogonal_preinit="yes"),
        TypeError,
        [LS, "orthogonal_preinit", "'yes'"],
    ),
    (
        "lsuv-apply-kwargs-list",
        _lsuv(apply_kwargs=["train"]),
        TypeError,
        [LS, "apply_kwargs", "dict"],
    ),
    (
        "lsuv-not-callable",
        lambda: jinit.lsuv(3, VARS, X),
        TypeError,
        [LS, "apply_fn", "got 3 of type int", r"lsuv\(model\.apply"],
    ),
    (
        "lsuv-variables-without-params",
        lambda: jinit.lsuv(NET.apply, {"p": {}}, X),
        TypeError,
        [LS, "'params'", r"\['p'\]"],
    ),
    (
        "lsuv-variables-of-another-model",
        lambda: jinit.lsuv(NET.apply, VARS_7, X),
        ValueError,
        [LS, "could not run", "ScopeParamShapeError", r"model\.init"],
    ),
    (
        "lsuv-batch-nan",
        _lsuv(batch=X.at[0, 0].set(jnp.nan)),
        ValueError,
        [LS, "finite `batch`", "1 inf/NaN", "nan_to_num"],
    ),
    (
        "lsuv-batch-strings",
        _lsuv(batch=np.array([["a"] * 5] * 4)),
        TypeError,
        [LS, "numeric", "<U1", r"\(4, 5\)"],
    ),
    (
        "lsuv-batch-one-example",
        _lsuv(batch=X[:1]),
        ValueError,
        [LS, "at least 2 examples", r"\(1, 5\)"],
    ),
    (
        "lsuv-batch-list-of-str",
        _lsuv(batch="abc"),
        TypeError,
        [LS, "`batch`", "str"],
    ),
    # --- jinit.mup ----------------------------------------------------------------------------
    (
        "mup-adam-lr-nan",
        lambda: mup.adam(float("nan"), M64, M32),
        ValueError,
        ["`jinit.mup.adam`", "learning_rate", "nan"],
    ),
    (
        "mup-adam-lr-negative",
        lambda: mup.adam(-1e-3, M64, M32),
        ValueError,
        ["`jinit.mup.adam`", "`learning_rate` > 0", "-0.001"],
    ),
    (
        "mup-adam-lr-str",
        lambda: mup.adam("1e-3", M64, M32),
        TypeError,
        ["`jinit.mup.adam`", "learning_rate", "'1e-3'"],
    ),
    (
        "mup-adam-b1",
        lambda: mup.adam(1e-3, M64, M32, b1=1.5),
        ValueError,
        ["`jinit.mup.adam`", "`b1`", "1.5", r"\[0, 1\)"],
    ),
    (
        "mup-adam-eps-negative",
        lambda: mup.adam(1e-3, M64, M32, eps=-1e-8),
        ValueError,
        ["`jinit.mup.adam`", "`eps`", "-1e-08"],
    ),
    (
        "mup-adam-unknown-kwarg",
        lambda: mup.adam(1e-3, M64, M32, momentum=0.9),
        TypeError,
        ["`jinit.mup.adam`", "'momentum'", r"optax\.adam", "b1"],
    ),
    (
        "mup-sgd-lr-inf",
        lambda: mup.sgd(float("inf"), M64, M32),
        ValueError,
        ["`jinit.mup.sgd`", "learning_rate", "inf"],
    ),
    (
        "mup-sgd-momentum-negative",
        lambda: mup.sgd(0.1, M64, M32, momentum=-0.5),
        ValueError,
        ["`jinit.mup.sgd`", "`momentum`", "-0.5"],
    ),
    (
        "mup-scaled-factor-nan",
        lambda: mup.scaled(jinit.normal(), float("nan")),
        ValueError,
        ["`jinit.mup.scaled`", "factor", "nan"],
    ),
    (
        "mup-scaled-not-an-initialiser",
        lambda: mup.scaled(jax.nn.initializers.normal(), 0.5),
        TypeError,
        ["`jinit.mup.scaled`", "`init`", "jinit"],
    ),
    (
        "mup-init-key-float",
        lambda: mup.init(M64, M32, 1.0),
        TypeError,
        ["`jinit.mup.init`", "PRNG key", "1.0"],
    ),
    (
        "mup-init-key-batch",
        lambda: mup.init(M64, M32, KEYS),
        PRNGKeyError,
        ["`jinit.mup.init`", "single PRNG key", r"\(3,\)"],
    ),
    (
        "mup-width-info-different-trees",
        lambda: mup.width_info(M64, {"in": jnp.zeros((8, 32))}),
        ValueError,
        ["`jinit.mup.width_info`", "only in params", "'h'"],
    ),
    (
        "mup-width-info-rank-mismatch",
        lambda: mup.width_info({"w": jnp.zeros((4, 4))}, {"w": jnp.zeros(4)}),
        ValueError,
        ["`jinit.mup.width_info`", "'w'", r"\(4, 4\)", r"\(4,\)"],
    ),
    (
        "mup-width-info-axis-out-of-range",
        lambda: mup.width_info(M64, M32, in_axis=5),
        AxisError,
        ["`jinit.mup.width_info`", "in_axis=5", "rank 2"],
    ),
    (
        "mup-width-info-axes-not-a-sequence",
        lambda: mup.width_info(M64, M32, axes=5),
        TypeError,
        ["`jinit.mup.width_info`", "`axes`", "5", r"\(-1, -2\)"],
    ),
    (
        "mup-width-info-axes-entry-not-a-pair",
        lambda: mup.width_info(M64, M32, axes=["h"]),
        TypeError,
        ["`jinit.mup.width_info`", "`axes`", "'h'"],
    ),
    (
        "mup-rules-readout-typo",
        lambda: mup.rules(M64, M32, readout="zeros"),
        ValueError,
        ["`jinit.mup.rules`", "readout", "'zeros'", "Did you mean 'zero'"],
    ),
    (
        "mup-lr-multipliers-optimizer",
        lambda: mup.lr_multipliers(M64, M32, "lion"),
        ValueError,
        ["`jinit.mup.lr_multipliers`", "optimizer", "'lion'"],
    ),
    (
        "mup-scale-by-mup-nan",
        lambda: mup.scale_by_mup({"h": float("nan")}),
        ValueError,
        ["`jinit.mup.scale_by_mup`", r"multipliers\['h'\]", "nan"],
    ),
    (
        "mup-scale-by-mup-zero",
        lambda: mup.scale_by_mup({"h": 0.0}),
        ValueError,
        ["`jinit.mup.scale_by_mup`", r"multipliers\['h'\]", "> 0"],
    ),
    (
        "mup-scale-by-mup-int-key",
        lambda: mup.scale_by_mup({1: 1.0}),
        TypeError,
        ["`jinit.mup.scale_by_mup`", r"\[1\]", "lr_multipliers"],
    ),
    (
        "mup-coord-one-width",
        lambda: mup.coord_check((64,)),
        ValueError,
        ["`jinit.mup.coord_check`", "two `widths`", r"\(64,\)"],
    ),
    (
        "mup-coord-widths-str",
        lambda: mup.coord_check("64"),
        TypeError,
        ["`jinit.mup.coord_check`", "`widths`", "'64'"],
    ),
    (
        "mup-coord-widths-float",
        lambda: mup.coord_check((8.0, 16.0)),
        TypeError,
        ["`jinit.mup.coord_check`", "widths", "8.0"],
    ),
    (
        "mup-coord-lr-nan",
        _coord(learning_rate=float("nan")),
        ValueError,
        ["`jinit.mup.coord_check`", "learning_rate", "nan"],
    ),
    (
        "mup-coord-seed-negative",
        _coord(seed=-1),
        ValueError,
        ["`jinit.mup.coord_check`", "`seed` >= 0", "-1"],
    ),
    (
        "mup-coord-one-class",
        _coord(n_out=1),
        ValueError,
        ["`jinit.mup.coord_check`", "`n_out` >= 2", "1"],
    ),
    (
        "mup-coord-data-not-a-pair",
        _coord(data=np.zeros((4, 3))),
        TypeError,
        ["`jinit.mup.coord_check`", "not a pair", r"data=\(x, y\)"],
    ),
    (
        "mup-coord-data-labels-out-of-range",
        _coord(data=(np.zeros((4, 3)), np.array([0, 1, 2, 10])), n_out=10),
        ValueError,
        ["`jinit.mup.coord_check`", r"\[0, 10\)", "to 10", "n_out"],
    ),
    (
        "mup-coord-data-float-labels",
        _coord(data=(np.zeros((4, 3)), np.array([0.0, 1.5, 2.0, 1.0]))),
        TypeError,
        ["`jinit.mup.coord_check`", "integer class labels", "float64"],
    ),
    (
        "mup-coord-data-nan",
        _coord(data=(np.full((4, 3), np.nan), np.array([0, 1, 2, 1]))),
        ValueError,
        ["`jinit.mup.coord_check`", "finite features", "NaN"],
    ),
    (
        "mup-coord-optimizer",
        _coord(optimizer="adamw"),
        ValueError,
        ["`jinit.mup.coord_check`", "optimizer", "'adamw'"],
    ),
    (
        "mup-plot-not-a-result",
        lambda: mup.plot_coord_check({"widths": (8, 16)}),
        TypeError,
        ["`jinit.mup.plot_coord_check`", "CoordCheckResult", "dict"],
    ),
    (
        "mup-plot-path-in-missing-folder",
        lambda: mup.plot_coord_check(_RESULT, "/nonexistent-jinit-folder/c.png"),
        ValueError,
        ["`jinit.mup.plot_coord_check`", "nonexistent-jinit-folder", "existing folder"],
    ),
    (
        "mup-plot-path-int",
        lambda: mup.plot_coord_check(_RESULT, 5),
        TypeError,
        ["`jinit.mup.plot_coord_check`", "`path`", "5"],
    ),
    # --- jinit.recipes ----------------------------------------------------------------------
    (
        "gpt2-n-layers-zero",
        lambda: R.gpt2(0),
        ValueError,
        ["`jinit.recipes.gpt2`", "`n_layers` >= 1", "0"],
    ),
    (
        "gpt2-n-layers-float",
        lambda: R.gpt2(12.0),
        TypeError,
        ["`jinit.recipes.gpt2`", "n_layers", "12.0", "n_layers=12"],
    ),
    (
        "gpt2-n-layers-bool",
        lambda: R.gpt2(True),
        TypeError,
        ["`jinit.recipes.gpt2`", "n_layers", "True"],
    ),
    (
        "gpt2-stddev-nan",
        lambda: R.gpt2(2, stddev=float("nan")),
        ValueError,
        ["`jinit.recipes.gpt2`", "stddev", "nan"],
    ),
    (
        "gpt2-stddev-zero",
        lambda: R.gpt2(2, stddev=0.0),
        ValueError,
        ["`jinit.recipes.gpt2`", "`stddev` > 0", "0.0"],
    ),
    (
        "gpt2-names-not-TransformerNames",
        lambda: R.gpt2(2, names={"mlp_out": "*w2"}),
        TypeError,
        ["`jinit.recipes.gpt2`", "names", "TransformerNames"],
    ),
    (
        "olmo-variant",
        lambda: R.olmo(2, variant="megatron"),
        ValueError,
        ["`jinit.recipes.olmo`", "variant", "'megatron'"],
    ),
    (
        "olmo-cutoff-negative",
        lambda: R.olmo(2, cutoff=-3.0),
        ValueError,
        ["`jinit.recipes.olmo`", "cutoff", "-3.0"],
    ),
    ("t5-d-kv-zero", lambda: R.t5(0), ValueError, ["`jinit.recipes.t5`", "d_kv", "0"]),
    (
        "t5-embed-stddev-zero",
        lambda: R.t5(8, embed_stddev=0.0),
        ValueError,
        ["`jinit.recipes.t5`", "embed_stddev", "> 0"],
    ),
    (
        "deepnorm-negative-layers",
        lambda: R.deepnorm(-1),
        ValueError,
        ["`jinit.recipes.deepnorm`", "encoder_layers", "-1"],
    ),
    (
        "deepnorm-no-layers",
        lambda: R.deepnorm(0, 0),
        ValueError,
        ["`jinit.recipes.deepnorm`", "both 0", "decoder_layers=12"],
    ),
    (
        "deepnorm-convention",
        lambda: R.deepnorm(2, convention="torch"),
        ValueError,
        ["`jinit.recipes.deepnorm`", "convention", "'torch'"],
    ),
    (
        "tfixup-no-layers",
        lambda: R.tfixup(0, 0),
        ValueError,
        ["`jinit.recipes.tfixup`", "both 0"],
    ),
    (
        "fixup-one-branch-layer",
        lambda: R.fixup(3, branch_layers=1),
        ValueError,
        ["`jinit.recipes.fixup`", "branch_layers", ">= 2", "1"],
    ),
    (
        "fixup-layer-without-placeholder",
        lambda: R.fixup(3, layer="*conv/kernel"),
        ValueError,
        ["`jinit.recipes.fixup`", r"\{j\}", "'\\*conv/kernel'"],
    ),
    (
        "zerO-no-branch-layers",
        lambda: R.zerO(0),
        ValueError,
        ["`jinit.recipes.zerO`", "branch_layers", "0"],
    ),
    (
        "skipinit-no-patterns",
        lambda: R.skipinit([]),
        ValueError,
        ["`jinit.recipes.skipinit`", "gates", "empty"],
    ),
    (
        "rezero-pattern-int",
        lambda: R.rezero(5),
        TypeError,
        ["`jinit.recipes.rezero`", "gates", "5"],
    ),
    (
        "irnn-gain-negative",
        lambda: R.irnn(gain=-1.0),
        ValueError,
        ["`jinit.recipes.irnn`", "`gain` > 0", "-1.0"],
    ),
    (
        "irnn-input-stddev-nan",
        lambda: R.irnn(input_stddev=float("nan")),
        ValueError,
        ["`jinit.recipes.irnn`", "input_stddev", "nan"],
    ),
    (
        "lstm-forget-bias-inf",
        lambda: R.lstm(float("inf")),
        ValueError,
        ["`jinit.recipes.lstm`", "forget_bias", "inf"],
    ),
    (
        "lstm-bias-gate-order",
        lambda: R.lstm_bias(1.0, "abcd"),
        ValueError,
        ["`jinit.recipes.lstm_bias`", "gate_order", "'abcd'", "'ifgo'"],
    ),
    (
        "chrono-bias-t-max-small",
        lambda: R.chrono_bias(2.0),
        ValueError,
        ["`jinit.recipes.chrono_bias`", "t_max", "2.0"],
    ),
    (
        "chrono-key-float",
        lambda: R.chrono(_LSTM, 1.0, 10.0),
        TypeError,
        ["`jinit.recipes.chrono`", "PRNG key", "1.0"],
    ),
    (
        "chrono-key-batch",
        lambda: R.chrono(_LSTM, KEYS, 10.0),
        PRNGKeyError,
        ["`jinit.recipes.chrono`", "single PRNG key"],
    ),
    (
        "chrono-integer-biases",
        lambda: R.chrono(jax.tree.map(lambda b: b.astype(jnp.int32), _LSTM), K, 10.0),
        ValueError,
        ["`jinit.recipes.chrono`", "hf/bias", "int32", "float"],
    ),
    (
        "retinanet-prior-zero",
        lambda: R.retinanet(0.0),
        ValueError,
        ["`jinit.recipes.retinanet`", "prior", "0.0", "prior=0.01"],
    ),
    (
        "retinanet-prior-str",
        lambda: R.retinanet("0.01"),
        TypeError,
        ["`jinit.recipes.retinanet`", "prior", "'0.01'"],
    ),
    (
        "fan-scaled-mode",
        lambda: R.fan_scaled(mode="fan_mean"),
        ValueError,
        ["`jinit.recipes.fan_scaled`", "mode", "'fan_mean'"],
    ),
    (
        "TransformerNames-block-without-placeholder",
        lambda: R.TransformerNames(block="blk"),
        ValueError,
        ["`jinit.recipes.TransformerNames`", r"\{i\}", "'blk'"],
    ),
    # --- jinit.torch.init_like_torch -----------------------------------------------------------
    (
        "torch-key-float",
        lambda: jinit.torch.init_like_torch(P, 1.0),
        TypeError,
        [TORCH, "PRNG key", "1.0"],
    ),
    (
        "torch-key-batch",
        lambda: jinit.torch.init_like_torch(P, KEYS),
        PRNGKeyError,
        [TORCH, "single PRNG key", r"\(3,\)"],
    ),
    (
        "torch-key-uint32-wrong-shape",
        lambda: jinit.torch.init_like_torch(P, jnp.zeros(3, jnp.uint32)),
        TypeError,
        [TORCH, "uint32", r"\(3,\)"],
    ),
    (
        "torch-module-kind-unknown",
        lambda: jinit.torch.init_like_torch(P, K, module_types={"Dense_0": "lstm"}),
        ValueError,
        [TORCH, "'lstm'", "'linear'", "own `rules`"],
    ),
    (
        "torch-module-kind-typo",
        lambda: jinit.torch.init_like_torch(P, K, module_types={"Dense_0": "linaer"}),
        ValueError,
        [TORCH, "'linaer'", "Did you mean 'linear'"],
    ),
    (
        "torch-module-kind-not-str",
        lambda: jinit.torch.init_like_torch(P, K, module_types={"Dense_0": 2}),
        TypeError,
        [TORCH, "kind to be a str", "2"],
    ),
    (
        "torch-module-types-not-mapping",
        lambda: jinit.torch.init_like_torch(P, K, module_types=5),
        TypeError,
        [TORCH, "module_types", "5"],
    ),
    (
        "torch-module-pattern-matches-nothing",
        lambda: jinit.torch.init_like_torch(P, K, module_types={"Conv_9": "conv"}),
        ValueError,
        [TORCH, "'Conv_9'", "matches no module", "Dense_0"],
    ),
    (
        "torch-strict-str",
        lambda: jinit.torch.init_like_torch(P, K, strict="no"),
        TypeError,
        [TORCH, "`strict`", "'no'"],
    ),
    (
        "torch-rule-not-callable",
        lambda: jinit.torch.init_like_torch(P, K, rules=[("*/bias", "zeros")]),
        TypeError,
        [TORCH, "rule 0", "'zeros'", "callable"],
    ),
    (
        "torch-no-array-leaves",
        lambda: jinit.torch.init_like_torch(None, K),
        ValueError,
        [TORCH, "no array leaves", "NoneType"],
    ),
    (
        "torch-kernel-of-rank-1",
        lambda: jinit.torch.init_like_torch({"D": {"kernel": jnp.ones(3)}}, K),
        ValueError,
        [TORCH, "'D/kernel'", "rank 1", "rules="],
    ),
]


@pytest.mark.parametrize("call,exc,patterns", params(ROWS))
def test_bad_input(call, exc, patterns):
    check_raises(call, exc, patterns)


def test_table_covers_every_area():
    prefixes = [r[0].split("-")[0] for r in ROWS]
    for area in ("reinit", "summary", "lsuv", "mup", "gpt2", "torch", "chrono", "path_key"):
        assert area in prefixes, area
    assert len(ROWS) >= 40


@pytest.mark.parametrize(
    "kw",
    [
        dict(tol=0.0),
        dict(max_iters=0),
        dict(target_var=float("nan")),
        dict(key=1.0),
        dict(bias="none"),
        dict(batch=X.at[3, 1].set(jnp.inf)),
        dict(batch=X[:1]),
    ],
    ids=["tol", "max_iters", "target_var", "key", "bias", "batch-inf", "batch-1"],
)
def test_lsuv_refuses_before_any_forward_pass(kw):
    calls = []

    def apply(variables, x, **kwargs):
        calls.append(1)
        return NET.apply(variables, x, **kwargs)

    batch = kw.pop("batch", X)
    with pytest.raises((TypeError, ValueError), match="^`jinit.lsuv`"):
        jinit.lsuv(apply, VARS, batch, **kw)
    assert calls == []


def test_mup_optimisers_accept_schedules_and_valid_kwargs():
    """The validation does not refuse what optax accepts: schedules, b1/b2/eps, momentum."""
    sched = optax.linear_schedule(1e-3, 1e-4, 10)
    for tx in (
        mup.adam(sched, M64, M32, b1=0.0, b2=0.95, eps=1e-6),
        mup.sgd(0.1, M64, M32, momentum=0.9, nesterov=True),
        mup.sgd(0.1, M64, M32, momentum=None),
    ):
        u, _ = tx.update(M64, tx.init(M64), M64)
        assert jax.tree.structure(u) == jax.tree.structure(M64)
