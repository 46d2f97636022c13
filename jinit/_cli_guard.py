"""Clean Ctrl-C for the ``jinit`` command from its first instant.

Imported first by ``jinit/__init__.py``: when this process is the ``jinit`` command (``jinit ...``
or ``python -m jinit.cli``), SIGINT and SIGTERM get the CLI's handlers before jax is imported
(seconds on a small machine), so an interrupt at start-up also ends with one line and exit
status 130/143 instead of a ``KeyboardInterrupt`` traceback. In any other program: nothing.
See :func:`jinit._core._signals.guard_cli_start`.
"""

from jinit._core._signals import guard_cli_start

guard_cli_start()
