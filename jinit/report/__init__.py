"""Reports of results (private): the figures behind :mod:`jinit.plot`."""
