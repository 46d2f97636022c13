"""Bad input: each row calls jinit wrongly and checks the exception type and its message.

Every message must name the function (backticked, first), the parameter, the value given, and
hint a fix. A row is ``(id, call, exception type, regexes)``; every regex must be found in the
message (``re.search``). Hyper-parameter rows fail at build time (the call builds only); shape,
dtype and key rows fail at call time.
"""

from __future__ import annotations

import math
import re

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from bad_input import Row, check_raises, params
from flax import nnx
from jax.sharding import AxisType, NamedSharding, PartitionSpec

import jinit
import jinit.torch as torch_init
from jinit import theory
from jinit._core._checks import AxisError, DTypeError, PRNGKeyError, ShapeError
from jinit.catalogue import entries
from jinit.initializers._conventions import bias_prior, gpt2_residual
from jinit.initializers._deterministic import dirac, hadamard
from jinit.initializers._sparse import sparse

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
        AxisError,
        [r"`fans`", r"`in_axis=2`", r"shape \(4, 3\)", r"valid axes are -2\.\.1"],
    ),
    (
        "variance_scaling-out_axis-out-of-range",
        lambda: jinit.variance_scaling(1.0, "fan_in", "normal", out_axis=-3)(K, (4, 3)),
        AxisError,
        [r"`variance_scaling`", r"`out_axis=-3`", r"shape \(4, 3\)", r"valid axes are -2\.\.1"],
    ),
    (
        "glorot_uniform-batch_axis-out-of-range",
        lambda: jinit.glorot_uniform(batch_axis=5)(K, (2, 4, 3)),
        AxisError,
        [r"`glorot_uniform`", r"`batch_axis=5`", r"shape \(2, 4, 3\)", r"valid axes are -3\.\.2"],
    ),
    (
        "orthogonal-column_axis-out-of-range",
        lambda: jinit.orthogonal(column_axis=2)(K, (4, 3)),
        AxisError,
        [r"`orthogonal`", r"`column_axis=2`", r"shape \(4, 3\)", r"valid axes are -2\.\.1"],
    ),
    (
        "delta_orthogonal-column_axis-out-of-range",
        lambda: jinit.delta_orthogonal(column_axis=-3)(K, (3, 3, 4, 8)),
        AxisError,
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
        DTypeError,
        [r"`normal`", r"floating dtype", r"got dtype int32", r"Initialise in a float dtype"],
    ),
    (
        "normal-bool-build",
        lambda: jinit.normal(dtype=bool),
        DTypeError,
        [r"`normal`", r"floating dtype", r"got dtype bool", r"Initialise in a float dtype"],
    ),
    (
        "he_uniform-int8-call",
        lambda: jinit.he_uniform()(K, (4, 3), jnp.int8),
        DTypeError,
        [r"`he_uniform`", r"floating dtype", r"got dtype int8", r"Initialise in a float dtype"],
    ),
    (
        "uniform-complex64",
        lambda: jinit.uniform()(K, (2,), jnp.complex64),
        DTypeError,
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
        PRNGKeyError,
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
        "shape-float-scalar",
        lambda: jinit.normal()(K, 5.0),
        TypeError,
        [r"`normal`", r"`shape`", r"got 5\.0 of type float", r"an int such as `5`"],
    ),
    (
        "shape-negative-dim",
        lambda: jinit.glorot_normal()(K, (3, -1)),
        ShapeError,
        [r"`glorot_normal`", r"`shape`", r"\(3, -1\)", r"int >= 0"],
    ),
    (
        "shape-float-dim",
        lambda: jinit.normal()(K, (3.0, 2)),
        TypeError,
        [r"`normal`", r"`shape`", r"\(3\.0, 2\)", r"Use `3` if that is the size you mean"],
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
        lambda: dirac(groups=3)(K, (3, 3, 16, 16)),
        ValueError,
        [r"`dirac`", r"`groups=3`", r"shape \(3, 3, 16, 16\)", r"feature_group_count"],
    ),
    (
        "sparse-sparsity-above-1",
        lambda: sparse(sparsity=1.5),
        ValueError,
        [r"`sparse`", r"`sparsity` in \[0, 1\]", r"got 1\.5", r"fraction of zeros"],
    ),
    (
        "sparse-sparsity-negative",
        lambda: sparse(sparsity=-0.5),
        ValueError,
        [r"`sparse`", r"`sparsity` in \[0, 1\]", r"got -0\.5", r"fraction of zeros"],
    ),
    (
        "sparse-both-counts",
        lambda: sparse(sparsity=0.5, nonzeros=3),
        ValueError,
        [r"`sparse`", r"exactly one of `nonzeros`", r"nonzeros=3, sparsity=0\.5", r"e\.g\. 15"],
    ),
    (
        "bias_prior-p-outside",
        lambda: bias_prior(1.5),
        ValueError,
        [r"`bias_prior`", r"`p`", r"p=1\.5", r"p=0\.01"],
    ),
    (
        "hadamard-rank-1",
        lambda: hadamard()(K, (5,)),
        ValueError,
        [r"`hadamard`", r"rank >= 2", r"shape \(5,\)", r"\(\*spatial, in, out\)"],
    ),
    (
        "gpt2_residual-n_layers-0",
        lambda: gpt2_residual(n_layers=0),
        ValueError,
        [r"`gpt2_residual`", r"`n_layers` >= 1", r"got 0", r"Pass an int >= 1"],
    ),
]


# --- issue 10: shapes, keys, dtypes, out_sharding, float8, laws, theory ------------------------
_X4 = jax.make_mesh((4,), ("x",), axis_types=(AxisType.Explicit,))
_XY = jax.make_mesh((2, 2), ("x", "y"), axis_types=(AxisType.Explicit,) * 2)
_AB = jax.make_mesh((2, 2), ("a", "b"), axis_types=(AxisType.Explicit,) * 2)
_AUTO = jax.make_mesh((2, 2), ("x", "y"), axis_types=(AxisType.Auto,) * 2)


def _in_mesh(mesh, call):
    def run():
        with jax.set_mesh(mesh):
            return call()

    return run


ROWS += [
    # shapes
    (
        "shape-nested",
        lambda: jinit.normal()(K, ((4,), 3)),
        TypeError,
        [r"`normal`", r"`shape` to hold ints", r"entry \(4,\) is a tuple", r"`int\(\.\.\.\)`"],
    ),
    (
        "shape-none",
        lambda: jinit.truncated_normal()(K, None),
        TypeError,
        [r"`truncated_normal`", r"`shape`", r"got None of type NoneType", r"`\(64, 32\)`"],
    ),
    (
        "shape-bool-dim",
        lambda: jinit.he_normal()(K, (True, 3)),
        TypeError,
        [r"`he_normal`", r"`shape` to hold ints", r"entry True is a bool", r"`int\(\.\.\.\)`"],
    ),
    (
        "shape-float-array",
        lambda: jinit.uniform()(K, np.array([4.0, 3.0])),
        TypeError,
        [r"`uniform`", r"`shape` to hold ints", r"entry 4\.0", r"Use `4`"],
    ),
    (
        "shape-2d-array",
        lambda: jinit.zeros(K, np.ones((2, 2), int)),
        TypeError,
        [r"`zeros`", r"1-D sequence of ints", r"array of shape \(2, 2\)", r"`\(64, 32\)`"],
    ),
    (
        "shape-negative-int",
        lambda: jinit.normal()(K, -3),
        ShapeError,
        [r"`normal`", r"non-negative dimensions", r"shape \(-3,\)", r"int >= 0"],
    ),
    (
        "shape-traced",
        lambda: jax.jit(lambda n: jinit.normal()(K, (n, 2)))(3),
        TypeError,
        [r"`normal`", r"concrete `shape`", r"traced value", r"static arguments of `jit`"],
    ),
    (
        "fans-float-shape",
        lambda: jinit.fans((64.9, 32)),
        TypeError,
        [r"`fans`", r"`shape` to hold ints", r"\(64\.9, 32\)", r"`int\(\.\.\.\)`"],
    ),
    # keys
    (
        "key-none",
        lambda: jinit.normal()(None, (2,)),
        TypeError,
        [r"`normal`", r"PRNG key", r"got None of type NoneType", r"`jax\.random\.key\(0\)`"],
    ),
    (
        "key-uint32-length-4",
        lambda: jinit.he_normal()(jnp.zeros((4,), jnp.uint32), (4, 3)),
        TypeError,
        [r"`he_normal`", r"shape \(4,\)", r"raw key is uint32 of shape \(2,\)", r"key\(0\)"],
    ),
    (
        "key-raw-batch",
        lambda: jinit.uniform()(jax.random.split(jax.random.PRNGKey(0), 3), (2,)),
        PRNGKeyError,
        [r"`uniform`", r"single PRNG key", r"raw keys of shape \(3, 2\)", r"`jax\.vmap`"],
    ),
    (
        "key-int32-array",
        lambda: jinit.glorot_uniform()(jnp.zeros((2,), jnp.int32), (4, 3)),
        TypeError,
        [r"`glorot_uniform`", r"dtype int32 and shape \(2,\)", r"uint32", r"key\(0\)"],
    ),
    (
        "key-uint32-scalar",
        lambda: jinit.orthogonal()(jnp.uint32(3), (4, 3)),
        TypeError,
        [r"`orthogonal`", r"dtype uint32 and shape \(\)", r"uint32 of shape \(2,\)", r"key\(0\)"],
    ),
    # dtypes
    (
        "dtype-uint8-truncated_normal",
        lambda: jinit.truncated_normal()(K, (2,), jnp.uint8),
        DTypeError,
        [r"`truncated_normal`", r"floating dtype", r"got dtype uint8", r"cast afterwards"],
    ),
    (
        "dtype-complex-truncated_normal",
        lambda: jinit.truncated_normal()(K, (2,), jnp.complex64),
        DTypeError,
        [r"`truncated_normal`", r"real floating dtypes only", r"complex64", r"such as float32"],
    ),
    (
        "dtype-float6",
        lambda: jinit.he_normal()(K, (4, 3), jnp.float6_e2m3fn),
        DTypeError,
        [r"`he_normal`", r"float6_e2m3fn", r"jax cannot create arrays", r"float8_e4m3fn"],
    ),
    (
        "dtype-float8_e8m0fnu",
        lambda: jinit.normal()(K, (4,), jnp.float8_e8m0fnu),
        DTypeError,
        [r"`normal`", r"float8_e8m0fnu", r"neither zero nor negative", r"Draw in float32"],
    ),
    (
        "dtype-object-zeros",
        lambda: jinit.zeros(K, (2,), object),
        TypeError,
        [r"`zeros`", r"dtype object", r"cannot hold", r"`jnp\.float32`"],
    ),
    (
        "zeros-in-float8_e8m0fnu",
        lambda: jinit.zeros(K, (2,), jnp.float8_e8m0fnu),
        ValueError,
        [r"`zeros`", r"value 0\.0", r"float8_e8m0fnu", r"no 0", r"wider dtype"],
    ),
    (
        "constant-overflows-float8",
        lambda: jinit.constant(1000.0)(K, (2,), jnp.float8_e4m3fn),
        ValueError,
        [r"`constant`", r"value 1000\.0", r"float8_e4m3fn", r"±448", r"wider dtype"],
    ),
    (
        "constant-overflows-float16",
        lambda: jinit.constant(1e6)(K, (2,), jnp.float16),
        ValueError,
        [r"`constant`", r"value 1000000\.0", r"float16", r"becomes inf", r"wider dtype"],
    ),
    (
        "torch.normal-float6",
        lambda: torch_init.normal()(K, (4,), jnp.float6_e3m2fn),
        DTypeError,
        [r"`jinit\.torch\.normal`", r"float6_e3m2fn", r"jax cannot create arrays", r"float32"],
    ),
    # out_sharding
    (
        "out_sharding-not-divisible",
        lambda: jinit.normal()(K, (6, 4), out_sharding=NamedSharding(_X4, PartitionSpec("x"))),
        ValueError,
        [r"`normal`", r"dimension 0 of shape \(6, 4\) has size 6", r"4 devices", r"divisible"],
    ),
    (
        "out_sharding-not-divisible-spec",
        _in_mesh(_X4, lambda: jinit.he_normal()(K, (4, 6), out_sharding=PartitionSpec(None, "x"))),
        ValueError,
        [r"`he_normal`", r"dimension 1", r"size 6", r"pass None for that dimension"],
    ),
    (
        "out_sharding-unknown-axis",
        _in_mesh(_XY, lambda: jinit.normal()(K, (8, 4), out_sharding=PartitionSpec("z"))),
        ValueError,
        [r"`normal`", r"axis 'z'", r"mesh has axes \('x', 'y'\)", r"Use one of those"],
    ),
    (
        "out_sharding-duplicate-axis",
        _in_mesh(_XY, lambda: jinit.zeros(K, (8, 4), out_sharding=PartitionSpec("x", "x"))),
        ValueError,
        [r"`zeros`", r"`out_sharding` spec", r"axis 'x' twice", r"at most one dimension"],
    ),
    (
        "out_sharding-too-long",
        lambda: jinit.ones(K, (8,), out_sharding=NamedSharding(_X4, PartitionSpec(None, "x"))),
        ValueError,
        [r"`ones`", r"2 entries", r"shape \(8,\) \(rank 1\)", r"at most one entry"],
    ),
    (
        "out_sharding-tuple",
        lambda: jinit.normal()(K, (8,), out_sharding=("x",)),
        TypeError,
        [r"`normal`", r"`out_sharding`", r"got \('x',\) of type tuple", r"NamedSharding\(mesh,"],
    ),
    (
        "out_sharding-other-mesh",
        _in_mesh(
            _XY, lambda: jinit.normal()(K, (8, 4), out_sharding=NamedSharding(_AB, PartitionSpec()))
        ),
        ValueError,
        [r"`normal`", r"on mesh", r"the mesh set with `jax\.set_mesh`", r"Build the sharding"],
    ),
    (
        "out_sharding-unconstrained-explicit",
        _in_mesh(
            _XY,
            lambda: jinit.normal()(
                K, (8, 4), out_sharding=PartitionSpec(PartitionSpec.UNCONSTRAINED, "x")
            ),
        ),
        ValueError,
        [r"`normal`", r"P\.UNCONSTRAINED", r"Explicit axes", r"pass None"],
    ),
    (
        "out_sharding-explicit-under-jit-without-mesh",
        lambda: jax.jit(
            lambda k: jinit.normal()(k, (8,), out_sharding=NamedSharding(_X4, PartitionSpec("x")))
        )(K),
        ValueError,
        [r"`normal`", r"Explicit axes inside `jit`", r"no mesh is set", r"jax\.set_mesh"],
    ),
    # truncated normals
    (
        "truncated_normal-beyond-float64",
        lambda: jinit.truncated_normal(lower=40.0, upper=41.0),
        ValueError,
        [r"`truncated_normal`", r"lower=40\.0, upper=41\.0", r"no probability mass", r"37"],
    ),
    (
        "torch.trunc_normal-upper-tail-beyond-float64",
        lambda: torch_init.trunc_normal(0.0, 1.0, 40.0, 41.0),
        ValueError,
        [r"`jinit\.torch\.trunc_normal`", r"\[40\.0, 41\.0\]", r"no probability mass", r"closer"],
    ),
    # law constructors
    (
        "laws.Uniform-reversed",
        lambda: jinit.laws.Uniform(1.0, 0.0),
        ValueError,
        [r"`jinit\.laws\.Uniform`", r"`low` <= `high`", r"low=1\.0, high=0\.0", r"Swap them"],
    ),
    (
        "laws.Uniform-string",
        lambda: jinit.laws.Uniform("a", 1.0),
        TypeError,
        [r"`jinit\.laws\.Uniform`", r"`low`", r"got 'a' of type str", r"`low=1\.0`"],
    ),
    (
        "laws.Normal-nan",
        lambda: jinit.laws.Normal(NAN),
        ValueError,
        [r"`jinit\.laws\.Normal`", r"finite `scale`", r"got nan", r"Pass a finite number"],
    ),
    (
        "laws.Normal-negative",
        lambda: jinit.laws.Normal(-1.0),
        ValueError,
        [r"`jinit\.laws\.Normal`", r"`scale` >= 0", r"got -1\.0", r"pass 1\.0"],
    ),
    (
        "laws.Normal-inf-loc",
        lambda: jinit.laws.Normal(1.0, INF),
        ValueError,
        [r"`jinit\.laws\.Normal`", r"finite `loc`", r"got inf", r"Pass a finite number"],
    ),
    (
        "laws.TruncatedNormal-reversed",
        lambda: jinit.laws.TruncatedNormal(1.0, 2.0, -2.0),
        ValueError,
        [r"`jinit\.laws\.TruncatedNormal`", r"`lower` < `upper`", r"lower=2\.0", r"Swap"],
    ),
    (
        "laws.TruncatedNormal-nan-bound",
        lambda: jinit.laws.TruncatedNormal(1.0, NAN, 2.0),
        ValueError,
        [r"`jinit\.laws\.TruncatedNormal`", r"finite `lower`", r"got nan", r"±inf is allowed"],
    ),
    (
        "laws.ComplexNormal-negative",
        lambda: jinit.laws.ComplexNormal(-0.5),
        ValueError,
        [r"`jinit\.laws\.ComplexNormal`", r"`scale` >= 0", r"got -0\.5", r"pass 0\.5"],
    ),
    (
        "laws.ComplexDiskUniform-inf",
        lambda: jinit.laws.ComplexDiskUniform(INF),
        ValueError,
        [r"`jinit\.laws\.ComplexDiskUniform`", r"finite `radius`", r"got inf", r"finite"],
    ),
    (
        "laws.ComplexTruncatedNormal-zero-radius",
        lambda: jinit.laws.ComplexTruncatedNormal(1.0, 0.0),
        ValueError,
        [r"`jinit\.laws\.ComplexTruncatedNormal`", r"`radius` > 0", r"got 0\.0", r"positive"],
    ),
    (
        "laws.DeterministicLaw-string",
        lambda: jinit.laws.DeterministicLaw("abc"),
        TypeError,
        [r"`jinit\.laws\.DeterministicLaw`", r"numeric array", r"got 'abc'", r"np\.zeros"],
    ),
    (
        "laws.OrthogonalLaw-rank-1",
        lambda: jinit.laws.OrthogonalLaw((5,), 1.0),
        ValueError,
        [r"`jinit\.laws\.OrthogonalLaw`", r"rank 2 or more", r"got \(5,\)", r"dimension >= 1"],
    ),
    (
        "laws.OrthogonalLaw-column_axis",
        lambda: jinit.laws.OrthogonalLaw((4, 3), 1.0, column_axis=2),
        ValueError,
        [r"`jinit\.laws\.OrthogonalLaw`", r"`column_axis` in -2\.\.1", r"got 2", r"an axis"],
    ),
    (
        "laws.SparseLaw-too-many-zeros",
        lambda: jinit.laws.SparseLaw((4, 3), 0, 5, jinit.laws.Normal(1.0)),
        ValueError,
        [r"`jinit\.laws\.SparseLaw`", r"`zeros_per_unit`", r"shape\[axis\] = 4", r"got 5"],
    ),
    (
        "laws.SparseLaw-nonzero-not-a-law",
        lambda: jinit.laws.SparseLaw((4, 3), 0, 1, 0.5),
        TypeError,
        [r"`jinit\.laws\.SparseLaw`", r"`nonzero`", r"got 0\.5", r"jinit\.laws\.Normal"],
    ),
    (
        "laws.Law-bad-dtype",
        lambda: jinit.laws.Normal(1.0, dtype="float33"),
        TypeError,
        [r"`jinit\.laws\.Normal`", r"`dtype`", r"got 'float33'", r"`dtype=jnp\.float32`"],
    ),
    # theory
    (
        "theory.q_map-negative-q",
        lambda: theory.q_map("relu", -1.0, 2.0, 0.0),
        ValueError,
        [r"`q_map`", r"`q` finite, non-negative", r"got -1\.0", r"Variances are >= 0"],
    ),
    (
        "theory.q_star-nan-sigma_w2",
        lambda: theory.q_star("tanh", NAN, 0.0),
        ValueError,
        [r"`q_star`", r"`sigma_w2`", r"got nan", r"Variances are >= 0"],
    ),
    (
        "theory.c_map-correlation",
        lambda: theory.c_map("tanh", 1.5, 1.0, 1.0, 0.0),
        ValueError,
        [r"`c_map`", r"`c` in \[-1, 1\]", r"got 1\.5", r"Correlations lie in"],
    ),
    (
        "theory.gaussian_expectation-inf-q",
        lambda: theory.gaussian_expectation(jnp.tanh, INF),
        ValueError,
        [r"`gaussian_expectation`", r"`q` finite", r"got inf", r"Variances"],
    ),
    (
        "theory.gaussian_mean-nan-shift",
        lambda: theory.gaussian_mean("relu", 1.0, shift=NAN),
        ValueError,
        [r"`gaussian_mean`", r"`shift` finite", r"got nan", r"Pass finite numbers"],
    ),
    (
        "theory.gaussian_cross_moment-array-c",
        lambda: theory.gaussian_cross_moment("relu", 1.0, np.array([0.5, -2.0])),
        ValueError,
        [r"`gaussian_cross_moment`", r"`c` in \[-1, 1\]", r"array holding -2\.0", r"Correl"],
    ),
    (
        "theory.gaussian_cross_moment-negative-q2",
        lambda: theory.gaussian_cross_moment("relu", 1.0, 0.5, q2=-1.0),
        ValueError,
        [r"`gaussian_cross_moment`", r"`q2`", r"got -1\.0", r"Variances are >= 0"],
    ),
    (
        "theory.chi1-negative-sigma_w2",
        lambda: theory.chi1("relu", -2.0, 0.0),
        ValueError,
        [r"`chi1`", r"`sigma_w2`", r"got -2\.0", r"Variances are >= 0"],
    ),
    (
        "theory.c_star-c0",
        lambda: theory.c_star("tanh", 1.0, 0.1, c0=3.0),
        ValueError,
        [r"`c_star`", r"`c0` in \[-1, 1\]", r"got 3\.0", r"Correlations"],
    ),
    (
        "theory.depth_scales-negative-in-array",
        lambda: theory.depth_scales("relu", [1.0, -1.0], 0.0),
        ValueError,
        [r"`depth_scales`", r"`sigma_w2`", r"array holding -1\.0", r"Variances"],
    ),
    (
        "theory.q_map-string",
        lambda: theory.q_map("relu", "1", 2.0, 0.0),
        TypeError,
        [r"`q_map`", r"`q` to be a real number", r"got '1' of type str", r"array"],
    ),
    (
        "theory.phase-nan-tol",
        lambda: theory.phase("relu", 2.0, 0.0, tol=NAN),
        ValueError,
        [r"`phase`", r"`tol`", r"got nan", r"finite"],
    ),
    (
        "theory.activation-math-function",
        lambda: theory.activation(math.tanh),
        TypeError,
        [r"`activation`", r"could not apply `fn` \(tanh\)", r"jax array", r"`jnp\.tanh`"],
    ),
    (
        "theory.activation-not-elementwise",
        lambda: theory.activation(lambda x: x.sum(), name="total"),
        TypeError,
        [r"`activation`", r"`fn` \(total\)", r"element-wise", r"shape \(3,\)"],
    ),
]


# --- factories used as initialisers, initialisers called empty (issue 11 §5) --------------------
# Flax calls `kernel_init(key, shape, dtype)`: passing a factory uncalled (`kernel_init=
# jinit.he_normal`) must say "call it", for every factory of the public API.

DIRECT_INITIALISERS = ("zeros", "ones")
FACTORIES = sorted(
    {e.name for e in entries() if e.name not in DIRECT_INITIALISERS} | {"zeros_init", "ones_init"}
)


def _public(name: str):
    obj = jinit
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


def _factory_row(name: str, key, tag: str) -> Row:
    # aliases (kaiming_normal = he_normal) are the same function: messages use its own name
    own = ("torch." if name.startswith("torch.") else "") + _public(name).__name__
    slot = "bias_init" if "bias" in own else "embedding_init" if "embedding" in own else "kernel"
    return (
        f"{name}-uncalled-{tag}",
        lambda: _public(name)(key, (4, 3), jnp.float32),
        TypeError,
        [
            rf"^`jinit\.{re.escape(own)}` is an initialiser factory",
            r"call it",
            rf"`{slot}\w*=jinit\.{re.escape(own)}\((\.\.\.)?\)`",
            r"PRNG key and shape \(4, 3\)",
        ],
    )


ROWS += [_factory_row(name, K, "typed-key") for name in FACTORIES]
ROWS += [_factory_row(name, jax.random.PRNGKey(0), "raw-key") for name in FACTORIES]
ROWS += [
    (
        "he_normal-uncalled-linen-Dense",
        lambda: nn.Dense(3, kernel_init=jinit.he_normal).init(K, jnp.ones((1, 4))),
        TypeError,
        [r"`jinit\.he_normal` is an initialiser factory", r"`kernel_init=jinit\.he_normal\(\)`"],
    ),
    (
        "variance_scaling-uncalled-nnx-Linear",
        lambda: nnx.Linear(4, 3, kernel_init=jinit.variance_scaling, rngs=nnx.Rngs(0)),
        TypeError,
        [r"`jinit\.variance_scaling` is an initialiser factory", r"variance_scaling\(\.\.\.\)"],
    ),
    (
        "torch.linear_bias-uncalled-nnx-bias_init",
        lambda: nnx.Linear(4, 3, bias_init=jinit.torch.linear_bias, rngs=nnx.Rngs(0)),
        TypeError,
        [r"`jinit\.torch\.linear_bias` is", r"`bias_init=jinit\.torch\.linear_bias\(\.\.\.\)`"],
    ),
    (
        "torch.kaiming_uniform-uncalled-under-jit",
        lambda: jax.jit(lambda k: jinit.torch.kaiming_uniform(k, (4, 3)))(K),
        TypeError,
        [r"`jinit\.torch\.kaiming_uniform` is an initialiser factory"],
    ),
]
for _name in DIRECT_INITIALISERS:
    ROWS += [
        (
            f"{_name}-called-empty",
            lambda n=_name: _public(n)(),
            TypeError,
            [
                rf"^`jinit\.{_name}` is itself an initialiser",
                rf"jax\.nn\.initializers\.{_name}",
                rf"pass it uncalled, e\.g\. `bias_init=jinit\.{_name}`",
                rf"`jinit\.{_name}\(key, shape\)`",
                r"got no `key` and `shape`",
            ],
        ),
        (
            f"{_name}-called-key-only",
            lambda n=_name: _public(n)(K),
            TypeError,
            [rf"^`jinit\.{_name}` is itself an initialiser", r"got no `shape`"],
        ),
    ]
ROWS += [
    (
        "he_normal-initialiser-called-empty",
        lambda: jinit.he_normal()(),
        TypeError,
        [r"^`jinit\.he_normal` built an initialiser", r"init\(key, shape", r"got no `key`"],
    ),
    (
        "torch.xavier_uniform-initialiser-called-empty",
        lambda: jinit.torch.xavier_uniform()(),
        TypeError,
        [r"^`jinit\.torch\.xavier_uniform` built an initialiser", r"got no `key` and `shape`"],
    ),
]


def test_factory_rows_cover_every_public_factory():
    """Every initialiser factory of the public API (catalogue and Flax aliases) has rows; a
    factory passed uncalled never gets as far as validating its hyper-parameters."""
    covered = {r[0].split("-uncalled-")[0] for r in ROWS if "-uncalled-typed-key" in r[0]}
    public = {n for n in jinit.__all__ if n.endswith("_init")} | {
        e.name for e in entries() if e.name not in DIRECT_INITIALISERS
    }
    assert public == covered
    # and the direct initialisers still work when called properly
    assert jinit.zeros(K, (2,)).tolist() == [0.0, 0.0]
    assert jinit.zeros_init()(K, (2,)).tolist() == [0.0, 0.0]


def test_uint32_pair_is_not_mistaken_for_a_key():
    """A raw-key-like uint32 pair not followed by a shape is a value, not a key."""
    init = jinit.constant(np.array([1, 2], np.uint32))
    assert init(K, (2,)).tolist() == [1.0, 2.0]


def test_table_is_large_and_unique():
    assert len(ROWS) >= 100


@pytest.mark.parametrize("call, exc, patterns", params(ROWS))
def test_bad_input_message(call, exc, patterns):
    check_raises(call, exc, patterns)
