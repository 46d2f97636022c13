"""Test configuration: forced CPU host devices, so sharding is tested on any machine.

Four devices by default. ``JINIT_TEST_DEVICES=N`` forces N instead, to check that results
which must not depend on the device count (sweeps, training) indeed do not; tests that need
four devices (a 2 x 2 mesh, four-way sharding) skip themselves with fewer.
"""

import os

import jax

N_DEVICES = int(os.environ.get("JINIT_TEST_DEVICES", "4"))

# Must run before JAX initialises its backends (i.e. before any array is created).
jax.config.update("jax_num_cpu_devices", N_DEVICES)
