"""Sphinx configuration of jinit's documentation site (``python3 dev.py docs``)."""

from __future__ import annotations

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")

project = "jinit"
author = "the jinit developers"
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
]
exclude_patterns = ["_build"]
autodoc_member_order = "bysource"
autodoc_typehints = "none"  # the signatures and the Args sections say it
autodoc_default_options = {"members": True, "undoc-members": False, "show-inheritance": False}
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_ivar = True  # Attributes sections as fields: no second entry beside autodoc's
html_theme = "alabaster"
html_static_path: list[str] = []
nitpicky = False
