"""``textcls serve``: run the service under uvicorn, with one or several worker processes.

Graceful shutdown: on SIGTERM uvicorn stops accepting connections, waits up to
``timeout_graceful_shutdown`` (``TEXTCLS_SHUTDOWN_GRACE_S``) for the requests in flight, and runs
the lifespan shutdown, which drains the batch queues and flushes the prediction log. Then it
restores the SIGTERM handler it found and raises the signal again; with Python's default handler
the process would end "killed by SIGTERM" (status 143), which orchestrators read as a crash, so
``exit_zero_on_sigterm`` installs one that exits with status 0.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import tempfile
import threading
from types import FrameType
from typing import Annotated

import typer

from app.cli.errors import fail
from app.config import ConfigError, load_settings

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"  # the name prometheus_client reads at import


def _exit_zero(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def exit_zero_on_sigterm() -> None:
    """Install the handler uvicorn hands SIGTERM back to once it has drained.

    Installed before uvicorn starts, it also turns a SIGTERM during start-up (loading
    TensorFlow) into a clean exit: nothing is in flight then.
    """
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _exit_zero)


def _check_gpu_present() -> None:
    """Fail before forking workers when TEXTCLS_DEVICE=gpu and TensorFlow sees no GPU."""
    from app.errors import DeviceError
    from app.plane.device import configure_device

    try:
        configure_device("gpu")
    except DeviceError as exc:
        raise fail(str(exc)) from None


def _check_grpc_port_free(host: str, port: int) -> None:
    """Fail before starting when the gRPC port is taken.

    grpcio binds with SO_REUSEPORT, so it would share a port another server holds (and take
    part of its calls) rather than fail; a plain bind here fails instead. The workers of this
    run share the port, as grpcio intends.
    """
    from app.edge.grpc.server import port_taken_message

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is fine
            probe.bind((host, port))
    except OSError as exc:
        raise fail(f"{port_taken_message(host, port)} ({exc.strerror})") from None


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # Alembic's INFO lines (plugins, context, DDL mode) are its internals; app.predlog.migrate
    # says in one line what an upgrade changed.
    logging.getLogger("alembic").setLevel(max(logging.WARNING, logging.getLogger().level))


def _export_for_workers(host: str, model_dir: str | None) -> None:
    """Through the environment, so worker processes build the same settings; gRPC (on
    TEXTCLS_GRPC_PORT, 8001 unless 0) listens on the same address as HTTP unless told
    otherwise."""
    if model_dir is not None:
        os.environ["TEXTCLS_MODEL_DIR"] = str(model_dir)
    os.environ.setdefault("TEXTCLS_GRPC_HOST", host)


def serve(
    *,
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind.")] = 8000,
    model_dir: Annotated[
        str | None, typer.Option(help="Model repository: a folder, s3:// or gs:// URL.")
    ] = None,
    workers: Annotated[
        int, typer.Option(min=1, help="Worker processes; >1 shares /metrics across them.")
    ] = 1,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
    access_log: Annotated[
        bool,
        typer.Option(
            help="uvicorn's line per request. Off by default: every prediction is already in "
            "the prediction log and every request in /metrics, and the line costs CPU."
        ),
    ] = False,
) -> None:
    """Serve the models under the model repository over HTTP."""
    _export_for_workers(host, model_dir)
    from app.edge.authorize import check_security_settings

    try:
        settings = load_settings()
        check_security_settings(settings)  # bad API keys fail here, before any worker starts
    except ConfigError as exc:
        raise fail(str(exc)) from None
    if settings.device == "gpu":
        _check_gpu_present()
    if settings.grpc_port:
        _check_grpc_port_free(settings.grpc_host, settings.grpc_port)

    import uvicorn

    _configure_logging(log_level)
    common = {
        "host": host,
        "port": port,
        "log_level": log_level,
        "access_log": access_log,
        "timeout_graceful_shutdown": int(settings.shutdown_grace_s),
    }
    exit_zero_on_sigterm()
    if workers == 1:
        from app.main import create_app

        uvicorn.run(create_app(settings), **common)  # type: ignore[arg-type]
        return
    # Workers write their metrics into files here and /metrics sums them. It must be set
    # before any worker imports prometheus_client; each run gets a fresh directory so
    # counters never carry over from a previous run.
    metrics_dir = tempfile.mkdtemp(prefix="textcls-metrics-")
    os.environ[MULTIPROC_ENV] = metrics_dir
    try:
        uvicorn.run("app.main:create_app_from_env", factory=True, workers=workers, **common)  # type: ignore[arg-type]
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


def register(cli: typer.Typer) -> None:
    cli.command("serve")(serve)
