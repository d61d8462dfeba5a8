"""The ``textcls`` command: one Typer app, one module per command group, one way to fail.

- ``train``: train, evaluate, predict (the trainer); ``serve``: the HTTP service;
  ``models``: labels, traffic, rollback; ``logs``: db, feedback, logs (the prediction log);
  ``retrain``: feedback -> a gated candidate; ``errors``: exit codes and ``fail``.

The CLI is the one place that joins the service and the trainer: the service itself
(``app.main`` and what it imports) never imports training code other than the artifact
contract. Commands import TensorFlow lazily, so ``textcls --help`` is fast.
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
    from app.cli import logs, models, retrain, serve, train

    train.register(cli)
    serve.register(cli)
    logs.register(cli)
    models.register(cli)  # textcls models: labels, traffic, rollback
    retrain.register(cli)


def main() -> None:
    from app.tf_noise import quiet_tensorflow

    quiet_tensorflow()  # before anything imports TensorFlow
    _register()
    cli()


if __name__ == "__main__":
    main()
