"""The bit-for-bit comparisons of separately compiled programs, at XLA's default optimisation.

The rest of the suite compiles at XLA's lowest optimisation level (``tests/conftest.py``);
the tests in ``conftest.FULL_OPT`` compare an eager call with the same call under ``jit``,
``vmap`` or ``out_sharding`` (or jinit's eager call with jax's), which XLA makes equal at its
default level only. This runs them, unchanged, with the default flags: two groups, one
subprocess each.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FAST, FULL_OPT

ROOT = Path(__file__).resolve().parents[1]


# two subprocesses, so the suite's workers share the work: init_sharded's and the rest
GROUPS = {
    "init_sharded": [t for t in FULL_OPT if t.startswith("tests/test_init_sharded.py")],
    "others": [t for t in FULL_OPT if not t.startswith("tests/test_init_sharded.py")],
}


@pytest.mark.skipif(not FAST, reason="this run already compiles at the default optimisation")
@pytest.mark.parametrize("group", sorted(GROUPS))
def test_bit_comparisons_pass_at_default_optimisation(group):
    env = dict(os.environ, JINIT_TEST_FULL_OPT="1")
    original = env.pop("JINIT_TEST_ORIGINAL_XLA_FLAGS", "")
    env["XLA_FLAGS"] = original
    if not original:
        env.pop("XLA_FLAGS")
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist"]
    proc = subprocess.run(
        [*cmd, *GROUPS[group]], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900
    )
    tail = (proc.stdout + proc.stderr)[-4000:]
    assert proc.returncode == 0, tail
    summary = proc.stdout.strip().splitlines()[-1]
    assert " passed" in summary and "failed" not in summary and "error" not in summary, tail
