"""``pop``, the command line: :func:`main` parses (:mod:`.parser`), runs a command module (:mod:`.jobs`,
:mod:`.status`, :mod:`.project`, :mod:`.orchestrate`) over :mod:`pop_nb.service`, and renders what it
returns (:mod:`.follow` for a job followed live)."""

from pop_nb.cli.main import main

__all__ = ["main"]
