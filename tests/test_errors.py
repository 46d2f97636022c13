"""Bad input: each row calls jinit wrongly and checks the exception type and its message.

Every message must name the function (backticked, first), the parameter, the value given, and
hint a fix. A row is ``(id, call, exception type, regexes)``; every regex must be found in the
message (``re.search``). Hyper-parameter rows fail at build time (the call builds only); shape,
dtype and key rows fail at call time.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from bad_input import Row, check_raises, params
from jax.sharding import PartitionSpec

import jinit
from jinit._src import extra, torch_init

K = jax.random.key(0)
NAN, INF = float("nan"), float("inf")

ROWS: list[Row] = [
    # --- ranks and fans ------------------------------------------------------------------------
    (
        "he_normal-rank-1",
        lambda: jinit.he_normal()(K, (5,)),
        ValueError,
        [r"`he_normal`", r"rank >= 2", r"`in_axis`", r"shape \(5,\)", r"Pass `in_axis=`"],
    ),
    (
        "fans-rank-1",
        lambda: jinit.fans((5,)),
        ValueError,
        [r"`fans`", r"`in_axis`", r"shape \(5,\)", r"Pass `in_axis=`"],
    ),
    (
        "fans-zero-size",
        lambda: jinit.fans((0, 3)),
        ValueError,
        [r"`fans`", r"shape \(0, 3\)", r"zero-size dimension", r"size >= 1"],
    ),
    (
        "fans-zero-size-conv",
        lambda: jinit.fans((3, 3, 0, 8)),
        ValueError,
        [r"`fans`", r"shape \(3, 3, 0, 8\)", r"zero-size dimension", r"size >= 1"],
    ),
    (
        "orthogonal-rank-1",
        lambda: jinit.orthogonal()(K, (5,)),
        ValueError,
        [r"`orthogonal`", r"rank >= 2", r"shape \(5,\)", r"use `normal` or `variance_scaling`"],
    ),
    # --- axes ----------------------------------------------------------------------------------
    (
        "fans-in_axis-out-of-range",
        lambda: jinit.fans((4, 3), in_axis=2),
        ValueError,
        [r"`fans`", r"`in_axis=2`", r"shape \(4, 3\)", r"valid axes are -2\.\.1"],
    ),
    (
        "variance_scaling-out_axis-out-of-range",
        lambda: jinit.variance_scaling(1.0, "fan_in", "normal", out_axis=-3)(K, (4, 3)),
        ValueError,
        [r"`variance_scaling`", r"`out_axis=-3`", r"shape \(4, 3\)", r"valid axes are -2\.\.1"],
    ),
    (
        "glorot_uniform-batch_axis-out-of-range",
        lambda: jinit.glorot_uniform(batch_axis=5)(K, (2, 4, 3)),
        ValueError,
        [r"`glorot_uniform`", r"`batch_axis=5`", r"shape \(2, 4, 3\)", r"valid axes are -3\.\.2"],
    ),
    (
        "orthogonal-column_axis-out-of-range",
        lambda: jinit.orthogonal(column_axis=2)(K, (4, 3)),
        ValueError,
        [r"`orthogonal`", r"`column_axis=2`", r"shape \(4, 3\)", r"valid axes are -2\.\.1"],
    ),
    (
        "delta_orthogonal-column_axis-out-of-range",
        lambda: jinit.delta_orthogonal(column_axis=-3)(K, (3, 3, 4, 8)),
        ValueError,
        [r"`delta_orthogonal`", r"`column_axis=-3`", r"\(4, 8\)", r"valid axes are -2\.\.1"],
    ),
    (
        "variance_scaling-in_axis-float",
        lambda: jinit.variance_scaling(1.0, "fan_in", "normal", in_axis=1.5),
        TypeError,
        [r"`variance_scaling`", r"`in_axis`", r"got 1\.5", r"Pass an axis such as `in_axis=-1`"],
    ),
    (
        "variance_scaling-in_axis-bool",
        lambda: jinit.variance_scaling(1.0, "fan_in", "normal", in_axis=True),
        TypeError,
        [r"`variance_scaling`", r"`in_axis`", r"got True", r"Pass an axis"],
    ),
    (
        "variance_scaling-out_axis-strings",
        lambda: jinit.variance_scaling(1.0, "fan_in", "normal", out_axis=["a"]),
        TypeError,
        [r"`variance_scaling`", r"`out_axis`", r"\['a'\]", r"tuple of axes such as"],
    ),
    (
        "orthogonal-column_axis-float",
        lambda: jinit.orthogonal(column_axis=1.0),
        TypeError,
        [
            r"`orthogonal`",
            r"`column_axis`",
            r"got 1\.0",
            r"Pass a Python int such as `column_axis=1`",
        ],
    ),
    # --- dtypes --------------------------------------------------------------------------------
    (
        "normal-int32-call",
        lambda: jinit.normal()(K, (2,), jnp.int32),
        TypeError,
        [r"`normal`", r"floating dtype", r"got dtype int32", r"Initialise in a float dtype"],
    ),
    (
        "normal-bool-build",
        lambda: jinit.normal(dtype=bool),
        TypeError,
        [r"`normal`", r"floating dtype", r"got dtype bool", r"Initialise in a float dtype"],
    ),
    (
        "he_uniform-int8-call",
        lambda: jinit.he_uniform()(K, (4, 3), jnp.int8),
        TypeError,
        [r"`he_uniform`", r"floating dtype", r"got dtype int8", r"Initialise in a float dtype"],
    ),
    (
        "uniform-complex64",
        lambda: jinit.uniform()(K, (2,), jnp.complex64),
        TypeError,
        [r"`uniform`", r"real floating dtypes only", r"got dtype complex64", r"such as float32"],
    ),
    (
        "normal-not-a-dtype",
        lambda: jinit.normal()(K, (2,), "float33"),
        TypeError,
        [r"`normal`", r"dtype 'float33'", r"not a dtype", r"Pass e\.g\. `jnp\.float32`"],
    ),
    (
        "zeros-not-a-dtype",
        lambda: jinit.zeros(K, (2,), "foo"),
        TypeError,
        [r"`zeros`", r"dtype 'foo'", r"not a dtype", r"Pass e\.g\. `jnp\.float32`"],
    ),
    (
        "constant-not-a-dtype-build",
        lambda: jinit.constant(1.0, dtype="foo"),
        TypeError,
        [r"`constant`", r"dtype 'foo'", r"not a dtype", r"Pass e\.g\. `jnp\.float32`"],
    ),
    (
        "constant-complex-value-real-dtype",
        lambda: jinit.constant(1 + 2j)(K, (2,), jnp.float32),
        TypeError,
        [r"`constant`", r"complex value \(1\+2j\)", r"dtype float32", r"such as complex64"],
    ),
    # --- scales --------------------------------------------------------------------------------
    (
        "normal-negative-stddev",
        lambda: jinit.normal(-0.1),
        ValueError,
        [r"`normal`", r"`stddev` >= 0", r"got -0\.1", r"absolute value 0\.1"],
    ),
    (
        "normal-nan-stddev",
        lambda: jinit.normal(NAN),
        ValueError,
        [r"`normal`", r"finite `stddev`", r"got nan", r"Pass a finite number"],
    ),
    (
        "truncated_normal-inf-stddev",
        lambda: jinit.truncated_normal(INF),
        ValueError,
        [r"`truncated_normal`", r"finite `stddev`", r"got inf", r"Pass a finite number"],
    ),
    (
        "variance_scaling-negative-scale",
        lambda: jinit.variance_scaling(-2.0, "fan_in", "normal"),
        ValueError,
        [r"`variance_scaling`", r"`scale` >= 0", r"got -2\.0", r"absolute value 2\.0"],
    ),
    (
        "variance_scaling-string-scale",
        lambda: jinit.variance_scaling("2", "fan_in", "normal"),
        TypeError,
        [r"`variance_scaling`", r"`scale`", r"got '2' of type str", r"`scale=1\.0`"],
    ),
    (
        "orthogonal-inf-scale",
        lambda: jinit.orthogonal(-INF),
        ValueError,
        [r"`orthogonal`", r"finite `scale`", r"got -inf", r"Pass a finite number"],
    ),
    # --- choices -------------------------------------------------------------------------------
    (
        "variance_scaling-mode-typo",
        lambda: jinit.variance_scaling(1.0, "fan_inn", "normal"),
        ValueError,
        [r"`variance_scaling`", r"`mode`", r"got 'fan_inn'", r"Did you mean 'fan_in'\?"],
    ),
    (
        "variance_scaling-unknown-distribution",
        lambda: jinit.variance_scaling(1.0, "fan_in", "gaussian"),
        ValueError,
        [r"`variance_scaling`", r"`distribution`", r"got 'gaussian'", r"Pass one of .*'normal'"],
    ),
    # --- structured ----------------------------------------------------------------------------
    (
        "delta_orthogonal-in-greater-than-out",
        lambda: jinit.delta_orthogonal()(K, (3, 3, 16, 8)),
        ValueError,
        [r"`delta_orthogonal`", r"in <= out", r"shape \(3, 3, 16, 8\)", r"Use a wider output"],
    ),
    (
        "delta_orthogonal-rank-2",
        lambda: jinit.delta_orthogonal()(K, (16, 16)),
        ValueError,
        [r"`delta_orthogonal`", r"rank >= 3", r"shape \(16, 16\)", r"\(\*spatial, in, out\)"],
    ),
    (
        "delta_orthogonal-rank-6",
        lambda: jinit.delta_orthogonal()(K, (2, 3, 3, 3, 4, 8)),
        ValueError,
        [r"`delta_orthogonal`", r"3-D, 4-D or 5-D", r"\(2, 3, 3, 3, 4, 8\)", r"rank 6"],
    ),
    (
        "truncated_normal-lower-above-upper",
        lambda: jinit.truncated_normal(lower=2.0, upper=-2.0),
        ValueError,
        [r"`truncated_normal`", r"`lower` < `upper`", r"lower=2\.0, upper=-2\.0", r"Swap them"],
    ),
    (
        "truncated_normal-lower-equals-upper",
        lambda: jinit.truncated_normal(lower=1.0, upper=1.0),
        ValueError,
        [r"`truncated_normal`", r"`lower` < `upper`", r"lower=1\.0, upper=1\.0", r"Widen"],
    ),
    (
        "truncated_normal-nan-bound",
        lambda: jinit.truncated_normal(upper=NAN),
        ValueError,
        [r"`truncated_normal`", r"`upper`", r"got nan", r"±inf is allowed"],
    ),
    (
        "constant-unbroadcastable",
        lambda: jinit.constant(np.ones(3))(K, (4, 2)),
        ValueError,
        [r"`constant`", r"value of shape \(3,\)", r"shape \(4, 2\)", r"broadcasts to"],
    ),
    (
        "constant-string-value",
        lambda: jinit.constant("abc"),
        TypeError,
        [r"`constant`", r"`value`", r"got 'abc'", r"`constant\(0\.5\)`"],
    ),
    # --- keys ----------------------------------------------------------------------------------
    (
        "key-int",
        lambda: jinit.normal()(0, (2,)),
        TypeError,
        [r"`normal`", r"PRNG key", r"got 0 of type int", r"`jax\.random\.key\(0\)`"],
    ),
    (
        "key-float-array",
        lambda: jinit.he_normal()(jnp.zeros((2,)), (4, 3)),
        TypeError,
        [r"`he_normal`", r"PRNG key", r"dtype float32 and shape \(2,\)", r"`jax\.random\.key"],
    ),
    (
        "key-array-of-keys",
        lambda: jinit.orthogonal()(jax.random.split(K, 3), (4, 3)),
        TypeError,
        [r"`orthogonal`", r"single PRNG key", r"keys of shape \(3,\)", r"Use `jax\.vmap`"],
    ),
    (
        "key-uint32-wrong-length",
        lambda: jinit.uniform()(jnp.zeros((3,), jnp.uint32), (2,)),
        TypeError,
        [r"`uniform`", r"PRNG key", r"dtype uint32 and shape \(3,\)", r"`jax\.random\.key"],
    ),
    # --- shapes --------------------------------------------------------------------------------
    (
        "shape-int",
        lambda: jinit.normal()(K, 5),
        TypeError,
        [r"`normal`", r"`shape`", r"the int 5", r"Pass `\(5,\)`"],
    ),
    (
        "shape-negative-dim",
        lambda: jinit.glorot_normal()(K, (3, -1)),
        ValueError,
        [r"`glorot_normal`", r"`shape`", r"\(3, -1\)", r"int >= 0"],
    ),
    (
        "shape-float-dim",
        lambda: jinit.normal()(K, (3.0, 2)),
        TypeError,
        [r"`normal`", r"`shape`", r"\(3\.0, 2\)", r"`int\(\.\.\.\)`"],
    ),
    (
        "shape-string",
        lambda: jinit.normal()(K, "34"),
        TypeError,
        [r"`normal`", r"`shape`", r"'34' of type str", r"`\(64, 32\)`"],
    ),
    # --- laws and sharding ---------------------------------------------------------------------
    (
        "law-of-a-jax-initializer",
        lambda: jinit.law(jax.nn.initializers.normal(), (2,)),
        TypeError,
        [r"`jinit\.law`", r"jinit initialiser", r"got <function", r"jinit equivalent"],
    ),
    (
        "out_sharding-spec-without-mesh",
        lambda: jinit.normal()(K, (4,), out_sharding=PartitionSpec("x")),
        ValueError,
        [r"`normal`", r"`out_sharding=", r"PartitionSpec", r"`with jax\.set_mesh\(mesh\):`"],
    ),
    (
        "out_sharding-string",
        lambda: jinit.ones(K, (4,), out_sharding="x"),
        TypeError,
        [r"`ones`", r"`out_sharding`", r"got 'x'", r"NamedSharding\(mesh,"],
    ),
    # --- jinit.torch ---------------------------------------------------------------------------
    (
        "torch.calculate_gain-unknown",
        lambda: torch_init.calculate_gain("relu6"),
        ValueError,
        [
            r"`jinit\.torch\.calculate_gain`",
            r"nonlinearity 'relu6'",
            r"'leaky_relu'",
            r"use 'linear'",
        ],
    ),
    (
        "torch.calculate_gain-param-type",
        lambda: torch_init.calculate_gain("leaky_relu", "a"),
        ValueError,
        [r"`jinit\.torch\.calculate_gain`", r"`param`", r"got 'a' of type str", r"`param=0\.2`"],
    ),
    (
        "torch.dirac-groups-not-dividing",
        lambda: torch_init.dirac(groups=3)(K, (3, 3, 16, 32)),
        ValueError,
        [r"`jinit\.torch\.dirac`", r"groups=3", r"shape \(3, 3, 16, 32\)", r"divisible by"],
    ),
    (
        "torch.sparse-sparsity-above-1",
        lambda: torch_init.sparse(1.5),
        ValueError,
        [r"`jinit\.torch\.sparse`", r"`sparsity`", r"got 1\.5", r"in \[0, 1\]"],
    ),
    (
        "torch.sparse-sparsity-negative",
        lambda: torch_init.sparse(-0.1),
        ValueError,
        [r"`jinit\.torch\.sparse`", r"`sparsity` >= 0", r"got -0\.1", r"Pass a value >= 0"],
    ),
    (
        "torch.sparse-rank-3",
        lambda: torch_init.sparse(0.5)(K, (2, 3, 4)),
        ValueError,
        [r"`jinit\.torch\.sparse`", r"rank 2", r"shape \(2, 3, 4\)", r"2-D tensors only"],
    ),
    (
        "torch.kaiming_normal-rank-1",
        lambda: torch_init.kaiming_normal()(K, (5,)),
        ValueError,
        [r"`jinit\.torch\.kaiming_normal`", r"rank >= 2", r"shape \(5,\)", r"linear_bias"],
    ),
    (
        "torch.kaiming_normal-mode",
        lambda: torch_init.kaiming_normal(mode="fan_avg"),
        ValueError,
        [r"`jinit\.torch\.kaiming_normal`", r"`mode`", r"got 'fan_avg'", r"xavier_"],
    ),
    (
        "torch.normal-complex-with-mean",
        lambda: torch_init.normal(mean=1.0)(K, (2, 2), jnp.complex64),
        TypeError,
        [r"`jinit\.torch\.normal`", r"mean=1\.0", r"complex64", r"draw with mean=0"],
    ),
    (
        "torch.linear_bias-fan_in-fraction",
        lambda: torch_init.linear_bias(2.5),
        TypeError,
        [r"`jinit\.torch\.linear_bias`", r"`fan_in`", r"got 2\.5", r"jinit\.fans"],
    ),
    # --- extra ---------------------------------------------------------------------------------
    (
        "dirac-groups-not-dividing",
        lambda: extra.dirac(groups=3)(K, (3, 3, 16, 16)),
        ValueError,
        [r"`dirac`", r"`groups=3`", r"shape \(3, 3, 16, 16\)", r"feature_group_count"],
    ),
    (
        "sparse-sparsity-above-1",
        lambda: extra.sparse(sparsity=1.5),
        ValueError,
        [r"`sparse`", r"`sparsity` in \[0, 1\]", r"got 1\.5", r"fraction of zeros"],
    ),
    (
        "sparse-sparsity-negative",
        lambda: extra.sparse(sparsity=-0.5),
        ValueError,
        [r"`sparse`", r"`sparsity` in \[0, 1\]", r"got -0\.5", r"fraction of zeros"],
    ),
    (
        "sparse-both-counts",
        lambda: extra.sparse(sparsity=0.5, nonzeros=3),
        ValueError,
        [r"`sparse`", r"exactly one of `nonzeros`", r"nonzeros=3, sparsity=0\.5", r"e\.g\. 15"],
    ),
    (
        "bias_prior-p-outside",
        lambda: extra.bias_prior(1.5),
        ValueError,
        [r"`bias_prior`", r"`p`", r"p=1\.5", r"p=0\.01"],
    ),
    (
        "hadamard-rank-1",
        lambda: extra.hadamard()(K, (5,)),
        ValueError,
        [r"`hadamard`", r"rank >= 2", r"shape \(5,\)", r"\(\*spatial, in, out\)"],
    ),
    (
        "gpt2_residual-n_layers-0",
        lambda: extra.gpt2_residual(n_layers=0),
        ValueError,
        [r"`gpt2_residual`", r"`n_layers` >= 1", r"got 0", r"Pass an int >= 1"],
    ),
]


def test_table_is_large_and_unique():
    assert len(ROWS) >= 30


@pytest.mark.parametrize("call, exc, patterns", params(ROWS))
def test_bad_input_message(call, exc, patterns):
    check_raises(call, exc, patterns)
