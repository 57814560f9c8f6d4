"""One-line errors for every entry point: no traceback for a mistake the user can fix.

    from common.cli import entry_point

    @entry_point("python -m loqa.train")
    def main(argv: list[str] | None = None) -> int | None:
        cfg = parse_args(LoqaConfig, CONFIG_DIR, __doc__, argv, prog="python -m loqa.train")
        train(cfg)

    if __name__ == "__main__":
        raise SystemExit(main())

or, around any block, ``with one_line_errors("python -m coconet.harmonize"): ...``. An evaluation's ``--run``::

    @entry_point("python -m loqa.eval")
    def main(argv=None):
        args = parser.parse_args(argv)
        check_run_dir(args.run, "loqa", need_checkpoint=True)  # common.runner: one-line RunDirError

API:

- ``one_line_errors(prog=None, also=())`` (alias ``entry_point``): a context manager and a decorator. Inside it
  a user error -- :class:`common.config.ConfigError`, :class:`common.runner.CheckpointError` (and its
  subclasses :class:`common.runner.RunDirError` for a missing or another paper's run directory and
  :class:`common.runner.RunExistsError`), :class:`UsageError`, ``FileNotFoundError``, ``FileExistsError``,
  ``IsADirectoryError``, ``NotADirectoryError``, ``PermissionError``, or any class in ``also`` -- becomes
  ``<prog>: error: <first line of the message>`` on stderr and ``SystemExit(2)``. Ctrl-C outside the training
  loop (``KeyboardInterrupt``) becomes ``<prog>: interrupted`` and ``SystemExit(130)`` (the shell's
  128 + SIGINT). Inside ``Run.steps`` the runner handles SIGINT/SIGTERM itself: it checkpoints at the next
  step boundary, prints one line and raises :class:`common.runner.RunInterrupted` (a ``SystemExit`` with
  status 130 or 143), which passes through here untouched. Anything else (a bug) keeps its traceback.
- ``UsageError``: raise it for any other bad input an entry point detects (``--out`` names an existing file, a
  bad ``--run``); its message is the one line shown.
- ``TRACEBACK=1`` in the environment re-raises everything with its traceback, for debugging.
- ``EXIT_USAGE = 2``, ``EXIT_INTERRUPTED = 130``.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

from common.config import ConfigError
from common.runner import CheckpointError

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for a Ctrl-C'd program


class UsageError(Exception):
    """Bad input an entry point detected (an existing --out file, a wrong --run); one line."""


USER_ERRORS: tuple[type[BaseException], ...] = (
    ConfigError,
    CheckpointError,
    UsageError,
    FileNotFoundError,
    FileExistsError,
    IsADirectoryError,
    NotADirectoryError,
    PermissionError,
)


def first_line(err: BaseException) -> str:
    text = str(err).strip()
    if isinstance(err, OSError) and err.filename is not None and err.strerror:
        text = f"{err.strerror}: {err.filename}"  # not "[Errno 2] No such file or directory: ..."
    return text.splitlines()[0] if text else type(err).__name__


class one_line_errors(contextlib.ContextDecorator):  # noqa: N801 -- reads as a function at the call site
    """Turn user errors into one line on stderr and exit status 2, Ctrl-C into exit status 130."""

    def __init__(self, prog: str | None = None, also: tuple[type[BaseException], ...] = ()):
        self.prog = prog
        self.also = tuple(also)

    def __enter__(self) -> one_line_errors:
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None or os.environ.get("TRACEBACK"):
            return False
        prog = self.prog or Path(sys.argv[0]).name or "python"
        if issubclass(exc_type, USER_ERRORS + self.also):
            print(f"{prog}: error: {first_line(exc)}", file=sys.stderr)
            raise SystemExit(EXIT_USAGE) from None
        if issubclass(exc_type, KeyboardInterrupt):
            print(f"{prog}: interrupted", file=sys.stderr)
            raise SystemExit(EXIT_INTERRUPTED) from None
        return False


entry_point = one_line_errors
