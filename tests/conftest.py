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

Compiled programs are shared through JAX's persistent compilation cache in a directory made
for this run (removed at its end): xdist's workers and the subprocesses the tests start (the
CLI, ``jax.distributed`` workers, ``tests/test_full_opt.py``) compile many of the same
programs, and a program read back from the cache is the same executable, bit for bit. The
cache has no size limit (a limit turns on eviction, which lists the whole directory at every
write). Its entries are compressed, so an entry read while another process still writes it
fails to decompress: jax then warns and compiles the program itself, and that one warning is
not an error here (``pyproject.toml``; ``PYTHONWARNINGS`` for subprocesses).
``JINIT_TEST_XLA_CACHE=off`` runs without the cache.
"""

import atexit
import os
import shutil
import tempfile

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
    "tests/test_init_sharded.py::test_programs_are_compiled_once_and_reused_by_later_calls",
    "tests/test_init_sharded.py::test_contextual_rules_are_compiled_afresh",
    "tests/test_init_sharded.py::test_eight_devices_one_or_two_processes",
    "tests/test_own_rules.py::test_init_sharded_equals_reinit_with_own_rules",
)
FAST = os.environ.get("JINIT_TEST_FULL_OPT") != "1"
if FAST:
    os.environ.setdefault("JINIT_TEST_ORIGINAL_XLA_FLAGS", os.environ.get("XLA_FLAGS", ""))
    _FAST = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {_FAST}".strip()

if "JINIT_TEST_XLA_CACHE" not in os.environ:  # the run's first process (xdist's controller)
    _cache = tempfile.mkdtemp(prefix="jinit-test-xla-cache-")
    os.environ["JINIT_TEST_XLA_CACHE"] = _cache
    atexit.register(shutil.rmtree, _cache, ignore_errors=True)
if os.environ["JINIT_TEST_XLA_CACHE"] != "off":  # inherited by workers and subprocesses
    os.environ["JAX_COMPILATION_CACHE_DIR"] = os.environ["JINIT_TEST_XLA_CACHE"]
    os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
    os.environ["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "-1"
    _TORN = "ignore:Error reading persistent compilation cache entry"
    if _TORN not in os.environ.get("PYTHONWARNINGS", ""):
        _warn = [os.environ.get("PYTHONWARNINGS"), _TORN]
        os.environ["PYTHONWARNINGS"] = ",".join(w for w in _warn if w)

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
