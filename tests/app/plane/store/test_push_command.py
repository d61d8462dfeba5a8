"""``textcls models push``: a trained version to an S3 repository (moto), marker last."""

from __future__ import annotations

from pathlib import Path

import typer
from typer.testing import CliRunner

from app.cli.models import register
from app.plane.store.marker import describe, read_marker
from app.plane.store.objects import open_store
from tests.s3_server import S3Server


def test_push_uploads_a_version_with_its_marker_once(
    tiny_model_repo: Path, s3_env: S3Server
) -> None:
    url = f"s3://{s3_env.new_bucket()}/models"
    version_dir = tiny_model_repo / "example" / "1"
    cli = typer.Typer()
    register(cli)
    runner = CliRunner()
    result = runner.invoke(cli, ["models", "push", str(version_dir), "--to", url])
    assert result.exit_code == 0, result.output
    assert result.output.strip().endswith(f"{url}/example/1")
    assert read_marker(open_store(url), "example/1") == describe(version_dir)
    again = runner.invoke(cli, ["models", "push", str(version_dir), "--to", url])
    assert again.exit_code != 0 and "already published" in again.output
