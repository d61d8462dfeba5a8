"""Shared fixtures: a model repository holding one tiny real model, trained once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.gcs_server import gcs_env, gcs_server  # noqa: F401  (fixtures)
from tests.model_factory import train_tiny_model
from tests.redis_server import key_prefix, own_redis, redis_url  # noqa: F401  (fixtures)
from tests.s3_server import s3_env, s3_server  # noqa: F401  (fixtures)

# gRPC listens on 8001 by default: servers started by tests (in-process or as subprocesses,
# which inherit this) keep it off unless a test chooses a free port, so they never collide.
os.environ["TEXTCLS_GRPC_PORT"] = "0"


@pytest.fixture(scope="session")
def tiny_model_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model_dir with ``example/1/``: a tiny CNN trained on the bundled example data.

    Session-scoped and shared by every test: treat it as read-only. A test that adds versions,
    deletes or edits files must copy it first (``shutil.copytree(tiny_model_repo, tmp_path /
    "models")``) or call ``tests.model_factory.train_tiny_model(its_own_dir)``.
    """
    repo = tmp_path_factory.mktemp("model_repo")
    train_tiny_model(repo)
    return repo
