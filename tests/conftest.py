"""Test configuration: forced CPU host devices, so sharding is tested on any machine.

Four devices by default. ``JINIT_TEST_DEVICES=N`` forces N instead, to check that results
which must not depend on the device count (sweeps, training) indeed do not; tests that need
four devices (a 2 x 2 mesh, four-way sharding) skip themselves with fewer.

XLA compiles at its lowest backend optimisation level here (``JINIT_TEST_FULL_OPT=1`` keeps
the default): compiling is most of the suite's time, and nothing the suite asserts may depend
on XLA's kernel choices anyway — bit-for-bit comparisons compare programs compiled alike in
one process, every other float comparison has a tolerance derived from the computation
(``tests/rounding.py``, Higham's bounds), as it must to pass on any CPU. Subprocesses the
tests start (the CLI, ``jax.distributed`` workers) inherit the setting.

The exception is :data:`FULL_OPT`: tests that compare *separately compiled* programs bit for
bit (an eager call with the same call under ``jit``, ``vmap`` or ``out_sharding``; jinit's
eager call with jax's). XLA gives them equal bits at its default optimisation (what users run)
but not at level 0, where the erfinv of the truncated normal rounds differently in the two
programs. They are skipped here and run by ``tests/test_full_opt.py`` in one subprocess at
the default level.
"""

import os

import pytest

FULL_OPT = (
    "tests/test_contract.py::test_jit_equals_eager",
    "tests/test_contract.py::test_vmap_rows_equal_eager_calls",
    "tests/test_sharding.py::test_under_jit",
    "tests/test_dropin.py::test_truncated_normal_keeps_jax_bits_where_jax_is_accurate",
    "tests/test_init_sharded.py::test_bits_equal_reinit_on_every_mesh",
    "tests/test_init_sharded.py::test_bfloat16_params_are_drawn_as_reinit_draws_them",
    "tests/test_init_sharded.py::test_logical_axis_rules_place_logically_partitioned_params",
    "tests/test_init_sharded.py::test_nnx_abstract_module",
    "tests/test_init_sharded.py::test_equinox_module",
    "tests/test_init_sharded.py::test_eight_devices_one_or_two_processes",
    "tests/test_own_rules.py::test_init_sharded_equals_reinit_with_own_rules",
)
FAST = os.environ.get("JINIT_TEST_FULL_OPT") != "1"
if FAST:
    os.environ.setdefault("JINIT_TEST_ORIGINAL_XLA_FLAGS", os.environ.get("XLA_FLAGS", ""))
    _FAST = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {_FAST}".strip()

import jax  # noqa: E402

N_DEVICES = int(os.environ.get("JINIT_TEST_DEVICES", "4"))

# Must run before JAX initialises its backends (i.e. before any array is created).
jax.config.update("jax_num_cpu_devices", N_DEVICES)


def pytest_collection_modifyitems(config, items):
    if not FAST:
        return
    skip = pytest.mark.skip(reason="compares programs bit for bit: run by tests/test_full_opt.py")
    for item in items:
        if item.nodeid.split("[")[0] in FULL_OPT:
            item.add_marker(skip)
