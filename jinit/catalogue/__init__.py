"""The one catalogue: every jinit initialiser with its family, builder arguments and drop-in
counterpart, and the one name -> initialiser lookup (used by the CLI and the tests).

Examples:
  >>> from jinit import catalogue
  >>> catalogue.lookup("example", "he_normal").name
  'he_normal'
"""

from jinit.catalogue._catalogue import Entry as Entry
from jinit.catalogue._catalogue import entries as entries
from jinit.catalogue._catalogue import lookup as lookup
from jinit.catalogue._catalogue import public_builder as public_builder

__all__ = ["Entry", "entries", "lookup", "public_builder"]

from jinit._core._public import set_public_home as _set_public_home  # noqa: E402

_set_public_home(globals(), __all__, "jinit.catalogue")
