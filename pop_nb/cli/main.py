"""``pop``: parse, run the command, map errors to exit codes (:func:`pop_nb.errors.exit_code`)."""

from __future__ import annotations

import os
import sys

from pop_nb import _lean
from pop_nb.cli.parser import build_parser
from pop_nb.errors import EXIT_CLOSED_PIPE, EXIT_INTERRUPTED, PopError, exit_code


def main(argv: list[str] | None = None) -> int:
    if argv is None:  # the `pop` command, a process of ours (%pop passes its words: a user's kernel)
        _lean.block()
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except PopError as exc:
        print(f"pop: {exc}", file=sys.stderr)
        return exit_code(exc)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `pop logs ... | head` closed the pipe: not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return EXIT_CLOSED_PIPE
