"""Test configuration: four forced CPU host devices, so sharding is tested on any machine."""

import jax

# Must run before JAX initialises its backends (i.e. before any array is created).
jax.config.update("jax_num_cpu_devices", 4)
