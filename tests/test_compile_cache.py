"""The suite's shared XLA compilation cache (``tests/conftest.py``) cannot fail a test: an entry
read while another process still writes it (here: cut in half) is compiled anew, the same
values come out, and the one warning jax gives for it is the one the suite ignores."""

import os
import subprocess
import sys

import pytest

SCRIPT = """
import jax, jax.numpy as jnp
print(jax.jit(lambda x: jnp.tanh(x) * 3)(jnp.arange(4.0)).tolist())
"""


def _run(env, warnings):
    """The script with every warning an error except those ``warnings`` (PYTHONWARNINGS: the
    later filters take precedence) ignores."""
    env = dict(env, PYTHONWARNINGS=",".join(["error", *warnings]))
    cmd = [sys.executable, "-c", SCRIPT]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(
    os.environ.get("JINIT_TEST_XLA_CACHE") == "off", reason="the suite runs without the cache"
)
def test_a_torn_cache_entry_is_compiled_again(tmp_path):
    env = dict(os.environ, JAX_COMPILATION_CACHE_DIR=str(tmp_path))
    torn = [w for w in env.get("PYTHONWARNINGS", "").split(",") if "compilation cache" in w]
    assert torn, "tests/conftest.py no longer ignores torn cache reads in subprocesses"
    first = _run(env, torn)
    assert first.returncode == 0, first.stderr[-3000:]
    entries = list(tmp_path.glob("*-cache"))
    assert entries, "nothing was written to the persistent cache"
    for p in entries:
        data = p.read_bytes()
        p.write_bytes(data[: len(data) // 2])
    again = _run(env, torn)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout == first.stdout
    # without the suite's filter the same torn entries are an error: the filter is what saves it
    strict = _run(env, [])
    assert strict.returncode != 0, "the torn entries were not read back: nothing was tested"
    assert "Error reading persistent compilation cache entry" in strict.stderr
