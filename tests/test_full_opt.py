"""The bit-for-bit comparisons of separately compiled programs, at XLA's default optimisation.

The rest of the suite compiles at XLA's lowest optimisation level (``tests/conftest.py``);
the tests in ``conftest.FULL_OPT`` compare an eager call with the same call under ``jit``,
``vmap`` or ``out_sharding`` (or jinit's eager call with jax's), which XLA makes equal at its
default level only. This runs them, unchanged, in one subprocess with the default flags.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FAST, FULL_OPT

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(not FAST, reason="this run already compiles at the default optimisation")
def test_bit_comparisons_pass_at_default_optimisation():
    env = dict(os.environ, JINIT_TEST_FULL_OPT="1")
    original = env.pop("JINIT_TEST_ORIGINAL_XLA_FLAGS", "")
    env["XLA_FLAGS"] = original
    if not original:
        env.pop("XLA_FLAGS")
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist"]
    proc = subprocess.run(
        [*cmd, *FULL_OPT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900
    )
    tail = (proc.stdout + proc.stderr)[-4000:]
    assert proc.returncode == 0, tail
    summary = proc.stdout.strip().splitlines()[-1]
    assert " passed" in summary and "failed" not in summary and "error" not in summary, tail
