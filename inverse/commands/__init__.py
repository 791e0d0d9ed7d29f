"""The subcommands of ``inverse``, one module each.

A command module has ``add_parser(subparsers) -> argparse.ArgumentParser`` (its flags; importing the
module and building the parser import no torch, so ``inverse --help`` answers at once) and
``run(args) -> int`` (the exit code; a user error raises, :mod:`inverse.errors`). :func:`inverse.cli.main`
dispatches through ``set_defaults(func=run)``. :data:`COMMANDS` is the order of ``inverse --help``.

A new command, e.g. ``inverse/commands/hello.py``, is added to :data:`COMMANDS`::

    def add_parser(subparsers):
        p = subparsers.add_parser("hello", help="print a greeting")
        p.add_argument("--name", default="world")
        return p

    def run(args) -> int:
        print(f"hello, {args.name}")
        return 0
"""

from inverse.commands import (
    calibrate,
    demo,
    import_data,
    plot,
    priors,
    reconstruct,
    reconstruct_batch,
    sample_prior,
    simulate,
    train_prior,
    train_surrogate,
    version,
)

__all__ = ["COMMANDS"]

#: the command modules, in the order ``inverse --help`` lists them
COMMANDS = (demo, train_prior, simulate, import_data, reconstruct, calibrate, train_surrogate, reconstruct_batch, plot,
            priors, sample_prior, version)
