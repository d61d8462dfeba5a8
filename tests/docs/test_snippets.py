"""The getting-started, API and client pages work as written: each shell and Python block runs
against one real server (uvicorn on the tiny test model, the prediction log in SQLite, gRPC
on), its output checked against the answer the page shows; ``textcls`` commands that would
train for minutes are parsed by the real CLI instead.

The pages tell the reader to run ``make run`` (HTTP on 127.0.0.1:8000, gRPC on 127.0.0.1:8001);
the blocks run with those addresses replaced by the test server's free ports.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from app.main import create_app
from tests.app.live_service import make_settings
from tests.docs.snippets import REPO, Snippet, page_snippets
from tests.live_server import free_port, live_server

PAGES = (
    "get-started/index.md",
    "get-started/first-model.md",
    "get-started/review-page.md",
    "guides/api.md",
    "guides/python-client.md",
)
SNIPPETS = [s for page in PAGES for s in page_snippets(page)]
RUN = [s for s in SNIPPETS if s.mode == "run"]
CLI = [s for s in SNIPPETS if s.mode == "cli"]
TIMEOUT_S = 60


@dataclass(frozen=True)
class Server:
    http: str  # host:port
    grpc: str


@pytest.fixture(scope="module")
def server(tiny_model_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One real server for every snippet: the tiny example model, the log on, gRPC on."""
    grpc_port = free_port()
    settings = make_settings(
        tmp_path_factory.mktemp("snippets"), tiny_model_repo, grpc_port=grpc_port
    )
    with live_server(create_app(settings)) as url:
        yield Server(http=url.removeprefix("http://"), grpc=f"127.0.0.1:{grpc_port}")


def pointed_at(code: str, server: Server) -> str:
    """The snippet with ``make run``'s addresses replaced by the test server's."""
    for host in ("localhost", "127.0.0.1"):
        code = code.replace(f"{host}:8000", server.http).replace(f"{host}:8001", server.grpc)
    return code


def environment(tmp: Path) -> dict[str, str]:
    """A reader's shell after ``make run``: the venv's commands on PATH, the client importable
    (``pip install ./clients/python``), no TEXTCLS_* settings of the test run."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEXTCLS_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(REPO / "clients" / "python" / "src")
    env["HOME"] = str(tmp)
    return env


def run(snippet: Snippet, server: Server, tmp: Path) -> str:
    """Run the block in a fresh process; returns its stdout, fails on a non-zero exit."""
    code = pointed_at(snippet.code, server)
    if snippet.language == "sh":
        # curl fails on an HTTP error status, as a reader would notice one.
        prelude = 'set -euo pipefail\ncurl() { command curl --fail-with-body "$@"; }\n'
        argv = ["bash", "-c", prelude + code]
    else:
        argv = [sys.executable, "-c", code]
    done = subprocess.run(
        argv, cwd=tmp, env=environment(tmp), capture_output=True, text=True, timeout=TIMEOUT_S
    )
    assert done.returncode == 0, (
        f"{snippet.id} exited {done.returncode}:\n{code}\n--- stdout\n{done.stdout}"
        f"\n--- stderr\n{done.stderr}"
    )
    return done.stdout


def key_shape(value: Any, depth: int = 2) -> Any:
    """The keys of nested objects, ``depth`` levels down; a list stands for its first item."""
    if depth == 0:
        return None
    if isinstance(value, list):
        return [key_shape(value[0], depth)] if value and isinstance(value[0], dict) else None
    if isinstance(value, dict):
        return {k: key_shape(v, depth - 1) for k, v in value.items()}
    return None


def test_the_pages_have_snippets_to_run() -> None:
    languages = {(s.page, s.language) for s in RUN}
    assert ("get-started/index.md", "sh") in languages
    assert ("get-started/index.md", "python") in languages
    assert ("guides/python-client.md", "python") in languages
    # The gRPC example is run, not skipped.
    assert any("tritonclient.grpc" in s.code for s in RUN)


@pytest.mark.parametrize("snippet", RUN, ids=lambda s: s.id)
def test_snippet_runs_as_written(snippet: Snippet, server: Server, tmp_path: Path) -> None:
    out = run(snippet, server, tmp_path)
    if snippet.shown_json is not None:
        shown = json.loads(snippet.shown_json)
        real = json.loads(out)
        assert key_shape(shown) == key_shape(real), (
            f"{snippet.id}: the page shows an answer of another shape than the server's:\n"
            f"shown {key_shape(shown)}\nreal  {key_shape(real)}"
        )


def commands(code: str) -> list[list[str]]:
    """Each shell command of a block as its words: continuations joined, comments dropped."""
    joined = code.replace("\\\n", " ")
    return [words for line in joined.splitlines() if (words := shlex.split(line, comments=True))]


def test_cli_snippets_parse_with_the_real_cli() -> None:
    """Every ``textcls`` command of a cli block parses (options, types, required values), its
    files exist, and the models it reads were trained by a command above it."""
    from tests.deploy.conftest import textcls_group

    assert CLI
    group = textcls_group()
    venv = re.search(r"^VENV \?= (\S+)$", (REPO / "Makefile").read_text(), flags=re.M)
    assert venv
    trained: set[str] = set()
    for snippet in CLI:
        for words in commands(snippet.code):
            if words[0] == ".":
                assert words == [".", f"{venv.group(1)}/bin/activate"], snippet.id
                continue
            assert words[0] == "textcls", f"{snippet.id}: {shlex.join(words)}"
            command = group.commands[words[1]]
            params = command.make_context(words[1], words[2:]).params
            for key in ("data", "test_data", "val_data", "oos_data"):
                if params.get(key) is not None:
                    assert (REPO / params[key]).is_file(), f"{snippet.id}: no {params[key]}"
            if words[1] == "train":
                trained.add(params["name"] or Path(params["data"]).stem)
            elif "model" in params:
                model = Path(params["model"])
                assert model.parts[0] == "models" and model.parts[1] in trained, model
    assert {"tickets", "example-zh"} <= trained
