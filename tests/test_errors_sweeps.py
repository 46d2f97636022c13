"""Bad input to sweeps, training, networks and the CLI: clean errors, raised before any work.

Python rows call the public API wrongly (``jinit.sweep``, ``jinit.train_sweep``, the built-in
architectures, the Flax adapters, the propagation assertions, ``digits`` and the mean-field
``predict``) and check the exception type and the message's parts (the function, the parameter,
the value given, the fix). CLI rows run ``jinit sweep|train|check|list`` with one bad option and
check the usage error (exit 2) names the option and the value. Every row fails before anything
is compiled: the whole file runs in well under a minute.
"""

from __future__ import annotations

import contextlib
import functools
import sys
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import typer
from bad_input import CliRow, Row, check_cli_usage_error, check_raises, params
from flax import nnx

import jinit
from jinit.sweeps._sweep_result import SweepResult
from jinit.sweeps._sweep_theory import predict
from jinit.testing import assert_matches_theory, assert_stable_propagation

jax.devices()  # start JAX now, with the test harness's CPU devices (the CLI must not add any)

H = jinit.he_normal()
NET = jinit.mlp(8, 2)
BIG = 10**9  # so large that no machine has the memory: the refusal cannot depend on the host


def _sweep(**kw):
    args = {"seeds": 2, "batch": 4} | kw
    net = args.pop("network", NET)
    return jinit.sweep(net, args.pop("inits", H), **args)


def _sample(key, batch, dtype):
    return jax.random.normal(key, (batch, 8), dtype)


def _linen(build=None, sample=_sample):
    build = build or (lambda init: nn.Dense(8, kernel_init=init))
    return jinit.linen_model(build, sample)


def _nnx(build=None):
    build = build or (lambda init, rngs: nnx.Linear(8, 8, kernel_init=init, rngs=rngs))
    return jinit.nnx_model(build, _sample)


@functools.cache
def _result() -> SweepResult:
    """A small sweep result for the assertion rows (their arguments are checked before the data
    is read, so no sweep needs to run)."""
    names = ("act.second_moment", "preact.second_moment", "grad.second_moment")
    per_seed = {q: np.ones((2, 2)) for q in names}
    per_seed |= {"nonfinite": np.zeros((2, 2)), "grad.nonfinite": np.zeros((2, 2))}
    config = {"layers": 2, "seeds": 2, "input_second_moment": 1.0, "units": 8}
    return SweepResult(config, {"he": per_seed}, {"he": None})


_X = np.zeros((10, 4), np.float32)
_Y = np.arange(10) % 3
DATA = (_X, _Y, _X, _Y)


def _train(**kw):
    args = {"seeds": 2, "steps": 2} | kw
    model = args.pop("model", jinit.mlp(4, 2))
    return jinit.train_sweep(model, args.pop("inits", H), args.pop("data", DATA), **args)


def _bad_shape(key, shape, dtype=jnp.float32):
    return jnp.zeros((3,), dtype)


def _int_dtype(key, shape, dtype=jnp.float32):
    return jnp.zeros(shape, jnp.int32)


def _returns_none(key, shape, dtype=jnp.float32):
    return None


def _two_args(key, shape):
    return jnp.zeros(shape)


ROWS: list[Row] = [
    # --- jinit.sweep: the network and the sizes -------------------------------------------------
    (
        "sweep-network-str",
        lambda: jinit.sweep("mlp", H),
        TypeError,
        [r"`sweep`", r"`network`", r"'mlp'", r"jinit\.mlp"],
    ),
    ("sweep-seeds-0", lambda: _sweep(seeds=0), ValueError, [r"`seeds` >= 1", r"got 0"]),
    ("sweep-seeds-float", lambda: _sweep(seeds=2.0), TypeError, [r"`seeds`", r"2\.0", r"int"]),
    (
        "sweep-seeds-beyond-uint32",
        lambda: _sweep(seeds=2**32 + 1),
        ValueError,
        [r"`seeds` <= 2\*\*32", r"4294967297", r"uint32"],
    ),
    ("sweep-seed-key", lambda: _sweep(seed=jax.random.key(0)), TypeError, [r"`seed`", r"an int"]),
    (
        "sweep-seed-overflow",
        lambda: _sweep(seed=2**64),
        ValueError,
        [r"`seed`", r"64-bit", str(2**64)],
    ),
    ("sweep-batch-0", lambda: _sweep(batch=0), ValueError, [r"`batch` >= 1", r"got 0"]),
    ("sweep-batch-bool", lambda: _sweep(batch=True), TypeError, [r"`batch`", r"True", r"bool"]),
    ("sweep-chunk-0", lambda: _sweep(chunk_size=0), ValueError, [r"`chunk_size` >= 1", r"0"]),
    ("sweep-sample-0", lambda: _sweep(sample_size=0), ValueError, [r"`sample_size` >= 1"]),
    (
        "sweep-input-moment-negative",
        lambda: _sweep(input_second_moment=-1.0),
        ValueError,
        [r"`input_second_moment` > 0", r"-1\.0"],
    ),
    # --- jinit.sweep: dtype, keys, callbacks ------------------------------------------------------
    (
        "sweep-dtype-unknown",
        lambda: _sweep(dtype="nope"),
        TypeError,
        [r"`dtype`", r"'nope'", r"not a dtype", r"float32"],
    ),
    (
        "sweep-dtype-int",
        lambda: _sweep(dtype=jnp.int32),
        TypeError,
        [r"real floating `dtype`", r"int32", r"float32"],
    ),
    ("sweep-dtype-complex", lambda: _sweep(dtype=jnp.complex64), TypeError, [r"complex64"]),
    (
        "sweep-dtype-float8",
        lambda: _sweep(dtype=jnp.float8_e4m3fn),
        TypeError,
        [r"float8_e4m3fn", r"16 bits", r"bfloat16"],
    ),
    (
        "sweep-key-impl-unknown",
        lambda: _sweep(key_impl="nope"),
        ValueError,
        [r"`key_impl='nope'`", r"threefry2x32"],
    ),
    ("sweep-key-impl-int", lambda: _sweep(key_impl=3), TypeError, [r"`key_impl`", r"got 3"]),
    ("sweep-key-impl-rbg", lambda: _sweep(key_impl="rbg"), ValueError, [r"rbg", r"philox4x32"]),
    (
        "sweep-progress-str",
        lambda: _sweep(progress="yes"),
        TypeError,
        [r"`progress`", r"'yes'", r"callable"],
    ),
    # --- jinit.sweep: initialisers, probed on the real shapes before compiling -------------------
    ("sweep-inits-empty", lambda: _sweep(inits={}), ValueError, [r"at least one", r"he_normal"]),
    ("sweep-inits-str", lambda: _sweep(inits="he_normal"), TypeError, [r"`inits`", r"'he_normal'"]),
    (
        "sweep-inits-not-callable",
        lambda: _sweep(inits={"w": 3}),
        TypeError,
        [r"'w' is 3", r"callable"],
    ),
    (
        "sweep-bias-init-int",
        lambda: _sweep(bias_init=3),
        TypeError,
        [r"`bias_init`", r"got 3", r"jinit\.zeros"],
    ),
    (
        "sweep-init-wrong-shape",
        lambda: _sweep(inits={"bad": _bad_shape}),
        ValueError,
        [r"initialiser 'bad'", r"'kernel'", r"shape \(3,\)", r"expected shape \(8, 8\)"],
    ),
    (
        "sweep-init-wrong-dtype",
        lambda: _sweep(inits={"bad": _int_dtype}),
        TypeError,
        [r"initialiser 'bad'", r"dtype int32", r"expected float32", r"`dtype` argument"],
    ),
    (
        "sweep-init-returns-none",
        lambda: _sweep(inits={"bad": _returns_none}),
        TypeError,
        [r"initialiser 'bad'", r"returned None", r"shape \(8, 8\)"],
    ),
    (
        "sweep-init-two-args",
        lambda: _sweep(inits={"bad": _two_args}),
        TypeError,
        [r"initialiser 'bad'", r"fails on", r"'kernel'", r"positional"],
    ),
    (
        "sweep-bias-init-wrong-shape",
        lambda: _sweep(bias_init=_bad_shape),
        ValueError,
        [r"`bias_init`", r"'bias'", r"shape \(3,\)", r"expected shape \(8,\)"],
    ),
    # --- jinit.sweep: devices ---------------------------------------------------------------------
    ("sweep-devices-0", lambda: _sweep(devices=0), ValueError, [r"`devices=0`", r"at least 1"]),
    (
        "sweep-devices-too-many",
        lambda: _sweep(devices=10**6),
        ValueError,
        [r"`devices=1000000`", r"local \w+ device\(s\) exist", r"at most \d+"],
    ),
    ("sweep-devices-str", lambda: _sweep(devices="2"), TypeError, [r"`devices`", r"'2'", r"str"]),
    ("sweep-devices-bool", lambda: _sweep(devices=True), TypeError, [r"`devices`", r"True"]),
    (
        "sweep-devices-not-devices",
        lambda: _sweep(devices=[1]),
        TypeError,
        [r"`jax\.Device`", r"got 1 of type int"],
    ),
    ("sweep-devices-empty", lambda: _sweep(devices=[]), ValueError, [r"empty `devices`"]),
    (
        "sweep-devices-twice",
        lambda: _sweep(devices=[jax.local_devices()[0]] * 2),
        ValueError,
        [r"same device more than once", r"each device once"],
    ),
    # --- jinit.sweep: memory, estimated before the work -------------------------------------------
    (
        "sweep-memory-batch",
        lambda: _sweep(network=jinit.mlp(4096, 10), batch=BIG),
        ValueError,
        [r"would need about [\d.]+ [PT]iB", r"batch=1000000000", r"Lower `batch`"],
    ),
    (
        "sweep-memory-chunk",
        lambda: _sweep(network=jinit.mlp(1024, 10), batch=1000, seeds=10, chunk_size=BIG),
        ValueError,
        [r"would need about", r"chunk_size=1000000000 seeds", r"`chunk_size=\d+` or less"],
    ),
    (
        "sweep-memory-seeds",
        lambda: _sweep(network=jinit.mlp(64, 10), seeds=2**32),
        ValueError,
        [r"would need about [\d.]+ [PT]iB of host memory", r"4294967296 seeds", r"fewer `seeds`"],
    ),
    # --- Flax adapters ----------------------------------------------------------------------------
    (
        "sweep-linen-build-none",
        lambda: _sweep(network=_linen(lambda init: None)),
        TypeError,
        [r"`build\(init\)`", r"returned None", r"flax\.linen\.Module", r"forget `return`"],
    ),
    (
        "sweep-nnx-build-none",
        lambda: _sweep(network=_nnx(lambda init, rngs: None)),
        TypeError,
        [r"`build\(init, rngs\)`", r"returned None", r"flax\.nnx\.Module"],
    ),
    (
        "sweep-linen-sample-str",
        lambda: _sweep(network=_linen(sample=lambda k, b, dt: "x")),
        TypeError,
        [r"`sample_input\(key, 4, float32\)`", r"'x' of type str", r"\(4, \.\.\.\)"],
    ),
    (
        "sweep-linen-sample-batch",
        lambda: _sweep(network=_linen(sample=lambda k, b, dt: jnp.zeros((3, 8)))),
        ValueError,
        [r"shape \(3, 8\)", r"first axis is the batch \(4, \.\.\.\)"],
    ),
    (
        "sweep-linen-init-wrong-shape",
        lambda: _sweep(network=_linen(), inits={"bad": _bad_shape}),
        ValueError,
        [r"initialiser 'bad'", r"shape \(3,\)", r"flax\.linen model", r"expected shape \(8, 8\)"],
    ),
    (
        "sweep-nnx-init-wrong-dtype",
        lambda: _sweep(network=_nnx(), inits={"bad": _int_dtype}),
        TypeError,
        [r"initialiser 'bad'", r"dtype int32", r"flax\.nnx model", r"expected float32"],
    ),
    (
        "sweep-flax-bias-init-ignored",
        lambda: _sweep(network=_linen(), bias_init=jinit.zeros),
        ValueError,
        [r"`bias_init=jinit\.zeros`", r"would be ignored", r"Drop `bias_init`"],
    ),
    ("linen-build-int", lambda: jinit.linen_model(3, _sample), TypeError, [r"`build`", r"got 3"]),
    (
        "linen-name-int",
        lambda: jinit.linen_model(lambda i: None, _sample, name=3),
        TypeError,
        [r"`name`", r"got 3", r"str"],
    ),
    (
        "nnx-sample-none",
        lambda: jinit.nnx_model(lambda i, r: None, None),
        TypeError,
        [r"`sample_input`", r"got None"],
    ),
    (
        "nnx-batch-0",
        lambda: jinit.nnx_model(lambda i, r: None, _sample, batch=0),
        ValueError,
        [r"`batch` >= 1"],
    ),
    (
        "linen-layers-int",
        lambda: jinit.linen_model(lambda i: None, _sample, layers=3),
        TypeError,
        [r"`layers`", r"got 3", r"predicate"],
    ),
    # --- built-in architectures -------------------------------------------------------------------
    ("mlp-width-0", lambda: jinit.mlp(0), ValueError, [r"`mlp`", r"`width` >= 1", r"got 0"]),
    ("mlp-depth-float", lambda: jinit.mlp(8, 2.5), TypeError, [r"`depth`", r"2\.5"]),
    (
        "mlp-activation-int",
        lambda: jinit.mlp(8, 2, 3),
        TypeError,
        [r"`mlp`", r"`activation`", r"got 3", r"relu"],
    ),
    (
        "mlp-activation-typo",
        lambda: jinit.mlp(8, 2, "rleu"),
        ValueError,
        [r"`mlp`", r"'rleu' is not a known activation", r"Did you mean 'relu'\?"],
    ),
    (
        "mlp-bias-str",
        lambda: jinit.mlp(8, 2, bias="no"),
        TypeError,
        [r"`bias`", r"'no'", r"`bias=False`"],
    ),
    ("mlp-residual-int", lambda: jinit.mlp(8, 2, residual=1), TypeError, [r"`residual`", r"1"]),
    (
        "cnn-padding",
        lambda: jinit.cnn(8, 2, padding="valid"),
        ValueError,
        [r"`cnn`", r"`padding`", r"'valid'", r"'circular'"],
    ),
    ("cnn-kernel-0", lambda: jinit.cnn(8, 2, 0), ValueError, [r"`kernel_size` >= 1"]),
    (
        "transformer-heads",
        lambda: jinit.transformer(10, 2, 3),
        ValueError,
        [r"`transformer`", r"d_model=10, heads=3", r"\[1, 2, 5, 10\]"],
    ),
    ("transformer-seq-0", lambda: jinit.transformer(8, 2, 2, seq_len=0), ValueError, [r"seq_len"]),
    # --- the mean-field prediction ----------------------------------------------------------------
    ("predict-network", lambda: predict("mlp", H), TypeError, [r"`predict`", r"`network`"]),
    ("predict-init-none", lambda: predict(NET, None), TypeError, [r"`init`", r"got None"]),
    ("predict-dtype-int", lambda: predict(NET, H, dtype=jnp.int8), TypeError, [r"int8"]),
    (
        "predict-moment-nan",
        lambda: predict(NET, H, input_second_moment=float("nan")),
        ValueError,
        [r"finite `input_second_moment`", r"nan"],
    ),
    # --- assertions on a sweep --------------------------------------------------------------------
    (
        "stable-result-str",
        lambda: assert_stable_propagation("r", 0.5, 2.0),
        TypeError,
        [r"`assert_stable_propagation`", r"`result`", r"SweepResult", r"str"],
    ),
    (
        "stable-low-above-high",
        lambda: assert_stable_propagation(_result(), 2.0, 0.5),
        ValueError,
        [r"`low` <= `high`", r"low=2, high=0\.5", r"Swap"],
    ),
    (
        "stable-quantity-typo",
        lambda: assert_stable_propagation(_result(), 0.5, 2.0, quantity="act.second_momnet"),
        ValueError,
        [r"`quantity='act\.second_momnet'`", r"Did you mean 'act\.second_moment'\?"],
    ),
    (
        "stable-inits-unknown",
        lambda: assert_stable_propagation(_result(), 0.5, 2.0, inits="xavier"),
        ValueError,
        [r"unknown initialiser label\(s\) \['xavier'\]", r"\['he'\]"],
    ),
    (
        "stable-inits-int",
        lambda: assert_stable_propagation(_result(), 0.5, 2.0, inits=3),
        TypeError,
        [r"`inits`", r"got 3"],
    ),
    (
        "stable-low-str",
        lambda: assert_stable_propagation(_result(), "0.5", 2.0),
        TypeError,
        [r"`low`", r"'0\.5'"],
    ),
    (
        "theory-result-dict",
        lambda: assert_matches_theory({}),
        TypeError,
        [r"`assert_matches_theory`", r"SweepResult", r"dict"],
    ),
    ("theory-k-0", lambda: assert_matches_theory(_result(), k=0), ValueError, [r"`k` > 0"]),
    (
        "theory-bias-negative",
        lambda: assert_matches_theory(_result(), bias=-1.0),
        ValueError,
        [r"`bias` >= 0", r"-1\.0"],
    ),
    (
        "theory-quantities-empty",
        lambda: assert_matches_theory(_result(), quantities=()),
        TypeError,
        [r"`quantities`", r"non-empty"],
    ),
    (
        "theory-quantity-unknown",
        lambda: assert_matches_theory(_result(), quantities=["foo"]),
        ValueError,
        [r"`quantities='foo'`", r"act\.second_moment"],
    ),
    # --- digits -----------------------------------------------------------------------------------
    ("digits-test-size-0", lambda: jinit.digits(test_size=0), ValueError, [r"`test_size` >= 1"]),
    (
        "digits-test-size-all",
        lambda: jinit.digits(test_size=1797),
        ValueError,
        [r"`test_size` < 1797", r"got 1797", r"360"],
    ),
    ("digits-seed-negative", lambda: jinit.digits(seed=-1), ValueError, [r"`seed` >= 0", r"-1"]),
    ("digits-seed-float", lambda: jinit.digits(seed=0.5), TypeError, [r"`seed`", r"0\.5"]),
    # --- jinit.train_sweep ------------------------------------------------------------------------
    ("train-devices-0", lambda: _train(devices=0), ValueError, [r"`train_sweep`", r"devices=0"]),
    ("train-devices-str", lambda: _train(devices="cpu"), TypeError, [r"`devices`", r"'cpu'"]),
    ("train-key-overflow", lambda: _train(key=2**70), ValueError, [r"`key`", r"64-bit"]),
    (
        "train-key-malformed",
        lambda: _train(key=np.zeros(3, np.uint32)),
        TypeError,
        [r"`key`", r"single JAX PRNG key", r"jax\.random\.key\(0\)"],
    ),
    (
        "train-seeds-beyond-uint32",
        lambda: _train(seeds=2**33),
        ValueError,
        [r"`seeds` <= 2\*\*32", r"8589934592"],
    ),
    (
        "train-init-wrong-shape",
        lambda: _train(inits={"bad": lambda k, s: jnp.zeros((3,))}),
        ValueError,
        [r"input initialiser of 'bad'", r"shape \(3,\)", r"expected shape \(4, 4\)"],
    ),
    (
        "train-init-int-dtype",
        lambda: _train(inits={"bad": lambda k, s: jnp.zeros(s, jnp.int32)}),
        TypeError,
        [r"initialiser of 'bad'", r"dtype int32", r"real floating"],
    ),
    (
        "train-init-returns-none",
        lambda: _train(inits={"bad": lambda k, s: None}),
        TypeError,
        [r"initialiser of 'bad'", r"returned None"],
    ),
    (
        "train-readout-init-wrong-shape",
        lambda: _train(readout_init=lambda k, s: jnp.zeros((4, 4))),
        ValueError,
        [r"readout initialiser", r"expected shape \(4, 3\)", r"returned shape \(4, 4\)"],
    ),
    (
        "train-bias-init-int",
        lambda: _train(bias_init=3),
        TypeError,
        [r"`bias_init`", r"got 3", r"jinit\.zeros"],
    ),
    (
        "train-data-nan",
        lambda: _train(data=(_X * np.nan, _Y, _X, _Y)),
        ValueError,
        [r"`data\.x_train`", r"40 inf/NaN", r"finite"],
    ),
    ("train-progress", lambda: _train(progress=1), TypeError, [r"`progress`", r"got 1"]),
    (
        "train-custom-init-none",
        lambda: _train(model=(lambda k, s: None, lambda p, x: x)),
        ValueError,
        [r"`init_fn\(key, spec\)` returned no arrays", r"he_normal"],
    ),
    (
        "train-custom-init-raises",
        lambda: _train(model=(lambda k, s: 1 / 0, lambda p, x: x)),
        ValueError,
        [r"initialising 'he_normal\(\)'", r"ZeroDivisionError"],
    ),
    (
        "train-memory-seeds",
        lambda: _train(model=jinit.mlp(512, 20), seeds=BIG),
        ValueError,
        [r"would need about [\d.]+ [PT]iB of host memory", r"fewer `seeds`"],
    ),
    (
        "train-memory-batch",
        lambda: _train(model=jinit.mlp(512, 20), seeds=10, chunk_size=10, batch_size=BIG),
        ValueError,
        [r"would need about", r"a batch of 1000000000", r"smaller model or `batch_size`"],
    ),
]


@pytest.mark.parametrize("call, exc, patterns", params(ROWS))
def test_python_api_errors(call, exc, patterns):
    check_raises(call, exc, patterns)


CLI_ROWS: list[CliRow] = [
    # --- jinit sweep: `x or default` is gone; every option checked before the work ---------------
    ("sweep-width-0", ["sweep", "--width", "0"], [r"--width", r">= 1", r"got 0"]),
    ("sweep-depth-0", ["sweep", "--depth", "0"], [r"--depth", r">= 1", r"got 0"]),
    ("sweep-batch-0", ["sweep", "--batch", "0"], [r"--batch", r">= 1", r"got 0"]),
    ("sweep-seeds-0", ["sweep", "--seeds", "0"], [r"--seeds", r"got 0"]),
    ("sweep-chunk-0", ["sweep", "--chunk-size", "0"], [r"--chunk-size", r"got 0"]),
    ("sweep-devices-0", ["sweep", "--devices", "0"], [r"--devices", r"got 0"]),
    (
        "sweep-devices-too-many",
        ["sweep", "--devices", "10000"],
        [r"--devices", r"devices=10000", r"Use --devices \d+ or fewer"],
    ),
    ("sweep-layer-0", ["sweep", "--layer", "0"], [r"--layer", r"from 1 to the depth \(10\)"]),
    (
        "sweep-layer-beyond-depth",
        ["sweep", "--depth", "3", "--layer", "5"],
        [r"--layer", r"depth \(3\)", r"got 5"],
    ),
    (
        "sweep-kernel-size-0",
        ["sweep", "--arch", "cnn", "--kernel-size", "0"],
        [r"--kernel-size", r"got 0"],
    ),
    (
        "sweep-kernel-size-for-mlp",
        ["sweep", "--kernel-size", "5"],
        [r"--kernel-size", r"--arch cnn only", r"ignored"],
    ),
    ("sweep-padding-for-mlp", ["sweep", "--padding", "same"], [r"--padding", r"--arch cnn"]),
    (
        "sweep-padding-unknown",
        ["sweep", "--arch", "cnn", "--padding", "valid"],
        [r"--padding", r"circular or same", r"'valid'"],
    ),
    ("sweep-layernorm-for-cnn", ["sweep", "--arch", "cnn", "--layernorm"], [r"--layernorm"]),
    (
        "sweep-residual-for-transformer",
        ["sweep", "--arch", "transformer", "--residual"],
        [r"--residual", r"--arch mlp only"],
    ),
    (
        "sweep-transformer-width",
        ["sweep", "--arch", "transformer", "--width", "10"],
        [r"--width", r"multiple of 4", r"got 10", r"--width 8"],
    ),
    ("sweep-arch-unknown", ["sweep", "--arch", "rnn"], [r"--arch", r"'rnn'", r"transformer"]),
    ("sweep-dtype-unknown", ["sweep", "--dtype", "nope"], [r"--dtype", r"'nope'", r"float32"]),
    ("sweep-dtype-int", ["sweep", "--dtype", "int32"], [r"--dtype", r"int32", r"floating"]),
    ("sweep-dtype-complex", ["sweep", "--dtype", "complex64"], [r"--dtype", r"complex64"]),
    ("sweep-dtype-float8", ["sweep", "--dtype", "float8_e5m2"], [r"--dtype", r"16 bits"]),
    (
        "sweep-activation-unknown",
        ["sweep", "--activation", "rleu"],
        [r"--activation", r"'rleu' is not a known activation", r"'relu'"],
    ),
    ("sweep-inits-empty", ["sweep", "--inits", ""], [r"--inits", r"at least one"]),
    ("sweep-inits-unknown", ["sweep", "--inits", "he_nromal"], [r"--inits", r"'he_nromal'"]),
    (
        "sweep-bias-init-two",
        ["sweep", "--bias-init", "zeros, ones"],
        [r"--bias-init", r"exactly one", r"got 2"],
    ),
    ("sweep-bias-init-unknown", ["sweep", "--bias-init", "nope"], [r"--bias-init", r"'nope'"]),
    ("sweep-seed-overflow", ["sweep", "--seed", str(2**64)], [r"--seed", r"64-bit"]),
    (
        "sweep-memory-batch",
        ["sweep", "--width", "4096", "--batch", str(BIG)],
        [r"would need about [\d.]+ [PT]iB", r"batch=1000000000", r"--batch"],
    ),
    (
        "sweep-memory-chunk",
        ["sweep", "--width", "1024", "--seeds", "10", "--chunk-size", str(BIG)],
        [r"would need about", r"chunk_size=1000000000", r"--chunk-size \d+` or less"],
    ),
    # --- jinit train ------------------------------------------------------------------------------
    ("train-steps-0", ["train", "--steps", "0"], [r"--steps", r"got 0"]),
    ("train-seeds-0", ["train", "--seeds", "0"], [r"--seeds", r"got 0"]),
    ("train-depth-0", ["train", "--depth", "0"], [r"--depth", r"got 0"]),
    ("train-width-0", ["train", "--width", "0"], [r"--width", r"got 0"]),
    ("train-batch-size-0", ["train", "--batch-size", "0"], [r"--batch-size", r"got 0"]),
    ("train-eval-every-0", ["train", "--eval-every", "0"], [r"--eval-every", r"got 0"]),
    (
        "train-eval-every-not-divisor",
        ["train", "--steps", "10", "--eval-every", "3"],
        [r"--eval-every", r"divisor of --steps \(10\)", r"got 3", r"2, 5"],
    ),
    ("train-lr-0", ["train", "--lr", "0"], [r"--lr", r"positive"]),
    ("train-lr-nan", ["train", "--lr", "nan"], [r"--lr", r"nan"]),
    ("train-lr-inf", ["train", "--lr", "inf"], [r"--lr", r"finite"]),
    ("train-devices-0", ["train", "--devices", "0"], [r"--devices", r"got 0"]),
    ("train-devices-too-many", ["train", "--devices", "10000"], [r"--devices", r"or fewer"]),
    ("train-activation-unknown", ["train", "--activation", "nope"], [r"--activation", r"'nope'"]),
    ("train-inits-unknown", ["train", "--inits", "he_normal, nope"], [r"--inits", r"'nope'"]),
    ("train-seed-overflow", ["train", "--seed", str(-(2**70))], [r"--seed", r"64-bit"]),
    (
        "train-memory-batch",
        ["train", "--width", "4096", "--batch-size", str(BIG)],
        [r"would need about", r"a batch of 1000000000", r"--batch-size"],
    ),
    # --- jinit check ------------------------------------------------------------------------------
    ("check-seeds-0", ["check", "he_normal", "--seeds", "0"], [r"--seeds", r"got 0"]),
    (
        "check-seeds-beyond-memory",
        ["check", "he_normal", "--seeds", str(BIG)],
        [r"seeds", r"[GTP]iB"],
    ),
    ("check-alpha-0", ["check", "he_normal", "--alpha", "0"], [r"--alpha", r"0 < alpha < 1"]),
    ("check-alpha-1", ["check", "he_normal", "--alpha", "1"], [r"--alpha", r"got 1"]),
    ("check-alpha-nan", ["check", "he_normal", "--alpha", "nan"], [r"--alpha", r"nan"]),
    ("check-key-overflow", ["check", "he_normal", "--key", str(2**64)], [r"--key", r"64-bit"]),
    ("check-dtype-unknown", ["check", "he_normal", "--dtype", "nope"], [r"--dtype", r"'nope'"]),
    ("check-dtype-empty", ["check", "he_normal", "--dtype", ""], [r"--dtype", r"''"]),
    ("check-dtype-int", ["check", "he_normal", "--dtype", "int32"], [r"int32", r"float"]),
    ("check-shape-text", ["check", "he_normal", "--shape", "a,b"], [r"--shape", r"'a,b'"]),
    ("check-shape-negative", ["check", "he_normal", "--shape", "4,-2"], [r"--shape", r"4,-2"]),
    ("check-shape-empty", ["check", "he_normal", "--shape", ""], [r"--shape", r"got ''"]),
    ("check-name-unknown", ["check", "he_nromal"], [r"'he_nromal'", r"jinit list"]),
    ("check-param-malformed", ["check", "normal", "--param", "2.0"], [r"--param", r"k=v"]),
    # --- jinit list -------------------------------------------------------------------------------
    ("list-family-unknown", ["list", "--family", "nope"], [r"--family", r"'nope'", r"variance"]),
    ("list-family-empty", ["list", "--family", ""], [r"--family", r"''"]),
    ("list-shape-text", ["list", "--shape", "64x?"], [r"--shape", r"'64x\?'"]),
]


@pytest.mark.parametrize("argv, patterns", params(CLI_ROWS))
def test_cli_usage_errors(argv, patterns, tmp_path):
    out = tmp_path / "out"
    if argv[0] in ("sweep", "train"):
        argv = [*argv, "--out", str(out)]
    t0 = time.perf_counter()
    check_cli_usage_error(argv, patterns)
    assert not out.exists(), "a refused command must not touch --out"
    # fails fast: nothing compiled (the first call also imports the library)
    assert time.perf_counter() - t0 < 30


@pytest.mark.parametrize(
    "argv, module, package",
    [
        (["sweep"], "matplotlib", "matplotlib"),
        (["train"], "sklearn", "scikit-learn"),
        (["train"], "matplotlib", "matplotlib"),
    ],
)
def test_cli_missing_dependency_is_named_before_work(argv, module, package, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from jinit.cli import app

    monkeypatch.setitem(sys.modules, module, None)  # `import module` now raises ImportError
    out = tmp_path / "out"
    res = CliRunner().invoke(app, [*argv, "--out", str(out)])
    flat = " ".join(res.output.replace("│", " ").split())
    assert res.exit_code == 1, res.output
    assert f"python -m pip install {package}" in flat, flat
    assert "pip install jinit" not in flat
    assert not out.exists()


def test_cli_plots_off_does_not_need_matplotlib(tmp_path, monkeypatch):
    """--no-plots never imports matplotlib: a bad option is still the only error reported."""
    from typer.testing import CliRunner

    from jinit.cli import app

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    res = CliRunner().invoke(app, ["sweep", "--no-plots", "--width", "0", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "--width" in res.output


def test_digits_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match=r"python -m pip install scikit-learn") as info:
        jinit.digits()
    assert str(info.value).startswith("`digits`")


def test_set_devices_default_keeps_an_explicit_count(monkeypatch):
    """The CLI's default device count never overrides one set explicitly before JAX starts."""
    from jinit.cli import _sweep as cli_sweep

    updates = []

    class Config:
        jax_num_cpu_devices = 2

        def update(self, name, value):
            updates.append((name, value))

    monkeypatch.setattr(jax, "config", Config())
    monkeypatch.setattr("os.cpu_count", lambda: 16)
    cli_sweep.set_devices(None)
    assert updates == []
    with contextlib.suppress(typer.BadParameter):  # more than this process's devices
        cli_sweep.set_devices(3)  # an explicit --devices within the cores does raise it
    assert updates == [("jax_num_cpu_devices", 3)]


def test_memory_estimates_refuse_only_beyond_the_available(monkeypatch):
    """The sweep refuses exactly when its lower-bound estimate exceeds the available memory."""
    from jinit.sweeps import _propagate as propagate
    from jinit.sweeps import _statistics as statistics
    from jinit.sweeps import _sweep_checks as sweep_checks
    from jinit.sweeps import _sweep_plan as sweep_plan

    def patch_host_memory(nbytes):  # the sweep's own estimate and the CPU devices' memory
        for mod in (sweep_plan, sweep_checks):
            monkeypatch.setattr(mod, "host_memory_available", lambda: nbytes)

    # memory alone sizes the chunk here: the cache rule (tests/test_forward_only.py) would cap it
    # by this machine's L2 (1 MiB per core gives 4 seeds of this network, 2 MiB gives 8)
    monkeypatch.setattr(sweep_plan, "cache_chunk", lambda devs, working_set: None)

    net = jinit.mlp(64, 4)
    cpu = jax.devices("cpu")[:1]  # host memory, on any machine
    per_seed = statistics.saved_bytes_of(net, 100, np.dtype(np.float32))
    patch_host_memory(per_seed - 1)
    with pytest.raises(ValueError, match=r"one seed's saved activations with batch=100"):
        propagate.prepare_sweep(net, H, seeds=1, batch=100, devices=cpu)
    patch_host_memory(64 * per_seed)
    plan = propagate.prepare_sweep(net, H, seeds=8, batch=100, devices=cpu)
    assert plan.chunk_size >= 8 and plan.n_chunks == 1
    with pytest.raises(ValueError, match=r"Pass `chunk_size=64` or less"):
        propagate.prepare_sweep(net, H, seeds=100, batch=100, chunk_size=100, devices=cpu)
