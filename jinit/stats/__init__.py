"""Seed statistics of initialisers (:func:`jinit.init_stats`; re-exported from :mod:`jinit`)."""
