"""jinit's core (private): argument checks, fans, layouts, tree paths, output files and Flax hooks.

Nothing here is public API; every public name is re-exported from :mod:`jinit`.
"""
