"""The initialisers (re-exported from :mod:`jinit`): the :class:`~jinit.Initializer` contract,
constants and simple laws, variance scaling, the orthogonal family, and the structured and
convention initialisers (identity, dirac, sparse, hadamard, ZerO, DKS, priors, transformer
conventions)."""
