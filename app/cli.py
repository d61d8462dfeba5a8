"""The ``textcls`` command: one Typer app; each area registers its own commands.

The CLI is the one place that joins the service and the trainer: ``training`` commands are
registered here, but the service itself (``app.main`` and what it imports) never imports
training code other than the artifact contract. Commands import TensorFlow lazily, so
``textcls --help`` is fast.
"""

from __future__ import annotations

import typer

cli = typer.Typer(
    name="textcls",
    help="Train text classifiers offline and serve them over HTTP.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _register() -> None:
    from app import retrain_command, serve_command
    from app.plane import commands as plane_commands
    from app.predlog import commands as db_commands
    from training import commands as training_commands

    training_commands.register(cli)
    serve_command.register(cli)
    db_commands.register(cli)
    plane_commands.register(cli)  # textcls models: labels, traffic, rollback
    retrain_command.register(cli)


def main() -> None:
    from app.tf_noise import quiet_tensorflow

    quiet_tensorflow()  # before anything imports TensorFlow
    _register()
    cli()


if __name__ == "__main__":
    main()
