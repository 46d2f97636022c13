"""Whole-tree tools (re-exported from :mod:`jinit`): :func:`jinit.reinit` by rules,
:func:`jinit.summary` against the laws, and :func:`jinit.lsuv`."""
