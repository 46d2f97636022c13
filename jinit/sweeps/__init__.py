"""Seed sweeps through networks (re-exported from :mod:`jinit`): built-in networks, Flax model
adapters, signal and gradient propagation against theory, and training sweeps."""
