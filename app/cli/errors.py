"""The CLI's exit codes and its one way to fail: a message on stderr and a clean exit."""

from __future__ import annotations

from enum import IntEnum

import typer


class ExitCode(IntEnum):
    """What ``textcls`` exits with; 0 is success."""

    FAILED = 1  # the command ran and failed (a database error, a write that did not happen)
    BAD_INPUT = 2  # bad flags, data, configuration or model folder: nothing was done
    REFUSED = 3  # ``textcls retrain``: the gate refused the candidate; nothing was published


def fail(message: str, code: ExitCode = ExitCode.BAD_INPUT) -> typer.Exit:
    """Print ``error: message`` to stderr; return the exit to raise (``raise fail(...)``)."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(int(code))
