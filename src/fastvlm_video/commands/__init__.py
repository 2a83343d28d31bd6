"""One module per ``fastvlm-video`` subcommand, discovered by ``cli.py``.

Each module defines ``NAME`` (the subcommand), ``HELP`` (one line), ``add_arguments(parser)`` and
``run(args) -> int``. Adding a subcommand means adding a module here; nothing else changes.
"""
