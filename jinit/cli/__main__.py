"""``python -m jinit.cli``: the ``jinit`` command."""

from jinit.cli import main

raise SystemExit(main())
