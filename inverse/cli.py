"""The ``inverse`` command line.

Each subcommand is a module of :mod:`inverse.commands` with ``add_parser(subparsers)`` and
``run(args) -> int``; :func:`main` calls the chosen one. A user error (bad arguments, missing files,
existing outputs, invalid values: :mod:`inverse.errors`) ends with one line on stderr and exit code 2,
never a traceback. An environment failure (a full disk, a quota, a read-only or failing device: an
``OSError`` whose errno is in :data:`samplers.atomic.ENVIRONMENT_ERRNOS`) ends with one line and exit
code 1. Any other exception is a bug and keeps its traceback. Outputs are written atomically.
"""

from __future__ import annotations

import argparse
import errno
import json
import sys

__all__ = ["main", "build_parser", "parse_key_values"]

#: file-system errors a user causes (a missing input, an existing output, a directory for a file): exit 2
_ENVIRONMENT_ERRORS = (FileNotFoundError, FileExistsError, NotADirectoryError, IsADirectoryError, PermissionError)

#: errno of a path the user gave that no file system takes (a 300-character name, a symbolic-link loop): exit 2
_PATH_ERRNOS = (errno.ENAMETOOLONG, errno.ELOOP)


class _Parser(argparse.ArgumentParser):
    """ArgumentParser whose errors are one line and exit 2."""

    def error(self, message):  # noqa: D401 - argparse API
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")

    def format_help(self):
        """Help text; an epilog given as a callable is built only now (it may import torch)."""
        if callable(self.epilog):
            self.epilog = self.epilog()
        return super().format_help()


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with all subcommands; each sets ``func``, the command's ``run``."""
    from inverse.commands import COMMANDS

    p = _Parser(prog="inverse", description="Probabilistic inverse problems with diffusion priors: "
                "sample posteriors, report mean and uncertainty.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for command in COMMANDS:
        command.add_parser(sub).set_defaults(func=command.run)
    return p


def parse_key_values(items, what: str) -> dict:
    """``["k=v", ...]`` -> ``{"k": v}``: each value read as JSON where it parses (``8`` -> 8, ``[1,2]`` -> a
    list), else kept as text; ``-`` in keys becomes ``_``. ``what`` names the flag in the error message.

    Example::

        >>> parse_key_values(["angles=20", "kind=gaussian", "noise-level=0.1"], "-o")
        {'angles': 20, 'kind': 'gaussian', 'noise_level': 0.1}
    """
    from inverse.errors import UserError

    out = {}
    for item in items:
        if "=" not in item:
            raise UserError(f"{what} {item!r} must look like KEY=VALUE")
        k, v = item.split("=", 1)
        k = k.strip().replace("-", "_")
        try:
            out[k] = json.loads(v)
        except ValueError:
            out[k] = v
    return out


def _one_line(e: BaseException) -> str:
    """The first line of an error message (HDF5 errors carry several)."""
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _warning_line(command: str, message, category, filename, lineno, file=None, line=None) -> None:
    """``warnings.showwarning`` of the command line: one line, ``inverse CMD: warning: ...``."""
    print(f"inverse {command}: warning: {_one_line(Warning(str(message)))[:2000]}", file=file or sys.stderr)


def main(argv=None) -> int:
    """Entry point of the ``inverse`` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    import functools
    import warnings

    try:
        with warnings.catch_warnings():  # a warning is one line too (restored on return: main may run in-process)
            warnings.showwarning = functools.partial(_warning_line, args.command)
            return args.func(args)
    except KeyboardInterrupt:
        print("inverse: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. 'inverse reconstruct ... | head': the reader went away
        sys.stderr.close()
        return 0
    except OSError as e:
        from samplers.atomic import ENVIRONMENT_ERRNOS, OutputWriteError

        if e.errno in ENVIRONMENT_ERRNOS:  # full disk, quota, read-only or failing device: not the user's input
            print(f"inverse {args.command}: error: {_one_line(e)}", file=sys.stderr)
            return 1
        if not isinstance(e, (*_ENVIRONMENT_ERRORS, OutputWriteError)) and e.errno not in _PATH_ERRNOS:
            raise  # a bug: the traceback says where
        print(f"inverse {args.command}: error: {_one_line(e)}", file=sys.stderr)
        return 2
    except Exception as e:
        from inverse.errors import is_user_error

        if not is_user_error(e):
            raise  # a bug: the traceback says where
        print(f"inverse {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
