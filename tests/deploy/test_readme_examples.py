"""The README's examples work as written: its curl commands against a real app over a real
model, its training commands against the real CLI, and its sample /models answer's shape."""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from fastapi.testclient import TestClient

from app.main import create_app
from tests.app.conftest import make_settings, wait_ready
from tests.deploy.conftest import REPO

README = (REPO / "README.md").read_text()


def section(title: str) -> str:
    """The text under ``title`` (a ``## `` heading) up to the next ``## `` heading."""
    match = re.search(rf"^{re.escape(title)}\n(.*?)(?=^## |\Z)", README, flags=re.M | re.S)
    assert match, f"README.md has no {title!r} section"
    return match.group(1)


def blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", text, flags=re.M | re.S)


def commands(block: str) -> list[list[str]]:
    """Each shell command of a block as its words: continuations joined, comments dropped."""
    joined = block.replace("\\\n", " ")
    return [words for line in joined.splitlines() if (words := shlex.split(line, comments=True))]


def curl_request(words: list[str]) -> tuple[str, str, dict[str, str], bytes | None]:
    """(method, path, headers, body) of a ``curl`` command line, for the options used here."""
    assert words[0] == "curl"
    method, url, headers, body = None, None, {}, None
    args = iter(words[1:])
    for arg in args:
        if arg == "-s":
            continue
        if arg == "-H":
            name, _, value = next(args).partition(":")
            headers[name.strip().lower()] = value.strip()
        elif arg == "-d":
            body = next(args).encode()
        elif arg == "-X":
            method = next(args)
        elif arg.startswith("-"):
            raise AssertionError(f"the test does not know curl's {arg}: {shlex.join(words)}")
        else:
            url = arg
    assert url is not None and url.startswith("localhost:8000/"), url
    return (
        method or ("POST" if body is not None else "GET"),
        url[len("localhost:8000") :],
        headers,
        body,
    )


def curl_commands() -> list[list[str]]:
    text = section("## Serve") + section("## API")
    found = [w for b in blocks(text, "sh") for w in commands(b) if w[0] == "curl"]
    assert len(found) >= 4
    return found


@pytest.fixture(scope="module")
def client(tiny_model_repo: Path) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(tiny_model_repo))) as c:
        wait_ready(c)
        yield c


@pytest.mark.parametrize("words", curl_commands(), ids=shlex.join)
def test_curl_examples_work_as_written(client: TestClient, words: list[str]) -> None:
    method, path, headers, body = curl_request(words)
    # TestClient would add its own content type to a body; curl adds a form type. Send what
    # curl sends, so a command without the header fails here as it fails for a user.
    if body is not None:
        headers.setdefault("content-type", "application/x-www-form-urlencoded")
    r = client.request(method, path, headers=headers, content=body)
    assert r.status_code == 200, f"{shlex.join(words)} -> {r.status_code} {r.text}"


def test_tf_serving_examples_answer_the_keys_their_comments_show(client: TestClient) -> None:
    block = next(b for b in blocks(section("## API"), "sh") if ":predict" in b)
    shown = re.findall(r"^# \{\"(\w+)\"", block, flags=re.M)
    curls = [w for w in commands(block) if w[0] == "curl"]
    assert shown == ["predictions", "outputs"] and len(curls) == 2
    for words, key in zip(curls, shown, strict=True):
        method, path, headers, body = curl_request(words)
        assert key in client.request(method, path, headers=headers, content=body).json()


def json_keys(value: Any, depth: int) -> Any:
    """The keys of nested objects, ``depth`` levels down (lists and scalars become None)."""
    if depth == 0 or not isinstance(value, dict):
        return None
    return {k: json_keys(v, depth - 1) for k, v in value.items()}


def test_the_sample_models_answer_has_the_real_shape(client: TestClient) -> None:
    serve = section("## Serve")
    sample = json.loads(blocks(serve, "json")[0])
    real = client.get("/models/example").json()
    assert set(sample) == set(real)
    # Metrics are nested by split; the sample shows the real splits and their fields.
    assert set(sample["metrics"]) <= set(real["metrics"])
    for split in ("val", "test"):
        assert set(sample["metrics"][split]) == set(real["metrics"][split])


def cli_command() -> Any:
    """The ``textcls`` command group as the console script builds it."""
    from app.cli import _register, cli

    if not cli.registered_commands:
        _register()
    return typer.main.get_command(cli)


def test_training_commands_work_pasted_after_the_set_up_commands() -> None:
    block = blocks(section("## Train"), "sh")[0]
    lines = commands(block)
    # The venv the Makefile creates, activated first: `textcls` is not on PATH otherwise.
    venv = re.search(r"^VENV \?= (\S+)$", (REPO / "Makefile").read_text(), flags=re.M)
    assert venv and lines[0] == [".", f"{venv.group(1)}/bin/activate"]
    group = cli_command()
    trained: set[str] = set()
    for words in lines[1:]:
        assert words[0] == "textcls", shlex.join(words)
        command = group.commands[words[1]]
        # Parses as the real CLI would (unknown options, wrong types and missing values fail).
        context = command.make_context(words[1], words[2:])
        params = context.params
        if words[1] == "train":
            assert params["data"] is None or (REPO / params["data"]).is_file(), params["data"]
            trained.add(params["name"] or Path(params["data"]).stem)
        else:
            model = Path(params["model"])
            assert model.parts[0] == "models" and model.parts[1] in trained, model
            if "data" in params:
                assert (REPO / params["data"]).is_file(), params["data"]
    assert trained
