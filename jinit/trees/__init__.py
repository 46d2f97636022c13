"""Whole-tree tools (re-exported from :mod:`jinit`): :func:`jinit.reinit` by rules,
:func:`jinit.init_sharded` (the same values, drawn into their shardings, stacked),
:func:`jinit.summary` against the laws, and :func:`jinit.lsuv`."""
