"""Any Unicode through /classify: control characters, NUL, RTL, emoji, huge words, lone
surrogates sent as raw JSON bytes. Every answer is 200 or a 4xx the OpenAPI document declares."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.main import create_app
from tests.app.live_service import make_settings, wait_ready

HUGE = 100_000
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Every code point except lone surrogates, which a JSON *string* in Python cannot carry
# unescaped; those are sent below as raw bytes with \\uD800-style escapes.
ANY_CHAR = st.characters(exclude_categories=["Cs"])
SPECIAL = st.sampled_from(
    [
        "\x00",
        "\x07",
        "\x1b[31m",
        "\u200b",
        "\u200e",
        "\u200f",
        "\u202e",
        "\ufeff",
        "\u0645\u0631\u062d\u0628\u0627",
        "\u05e9\u05dc\u05d5\u05dd",
        "\U0001f600",
        "\U0001f468\u200d\U0001f469\u200d\U0001f467",
        "\ufffd",
        "\U0010ffff",
        "\r\n",
        "\t",
    ]
)
TEXT = st.lists(st.one_of(ANY_CHAR, SPECIAL), min_size=0, max_size=60).map("".join)


@pytest.fixture(scope="module")
def fuzz_client(
    tiny_model_repo: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[TestClient, set[int]]]:
    settings = make_settings(
        tmp_path_factory.mktemp("fuzz"),
        tiny_model_repo,
        max_text_chars=HUGE * 2,
        max_body_bytes=4 * HUGE * 2 + 4096,
        max_batch_wait_ms=0,
    )
    with TestClient(create_app(settings)) as client:
        wait_ready(client)
        declared = client.get("/openapi.json").json()["paths"]["/classify"]["post"]["responses"]
        yield client, {int(code) for code in declared if code.startswith("4")}


def check(r: object, documented: set[int]) -> None:
    status = r.status_code  # type: ignore[attr-defined]
    assert status == 200 or status in documented, (status, r.text)  # type: ignore[attr-defined]
    body = r.json()  # type: ignore[attr-defined]
    if status == 200:
        assert len(body["predictions"]) >= 1
    else:
        assert isinstance(body["detail"], str | list)


@FUZZ
@given(text=TEXT)
def test_any_text(fuzz_client: tuple[TestClient, set[int]], text: str) -> None:
    client, documented = fuzz_client
    r = client.post("/classify", json={"text": text})
    check(r, documented)
    if text.strip():
        assert r.status_code == 200, r.text
        assert r.json()["predictions"][0]["label"]


@FUZZ
@given(texts=st.lists(TEXT, min_size=1, max_size=8))
def test_any_batch(fuzz_client: tuple[TestClient, set[int]], texts: list[str]) -> None:
    client, documented = fuzz_client
    r = client.post("/classify", json={"texts": texts})
    check(r, documented)
    if all(t.strip() for t in texts):
        assert r.status_code == 200, r.text
        assert len(r.json()["predictions"]) == len(texts)


@FUZZ
@given(
    before=TEXT,
    surrogate=st.integers(0xD800, 0xDFFF),
    after=TEXT,
)
def test_lone_surrogates_in_raw_json(
    fuzz_client: tuple[TestClient, set[int]], before: str, surrogate: int, after: str
) -> None:
    client, documented = fuzz_client
    escaped = json.dumps(before)[1:-1] + f"\\u{surrogate:04x}" + json.dumps(after)[1:-1]
    body = f'{{"text": "{escaped}"}}'.encode()
    r = client.post("/classify", content=body, headers={"Content-Type": "application/json"})
    check(r, documented)
    assert r.status_code == 422


@FUZZ
@given(raw=st.binary(max_size=200))
def test_any_bytes_as_body(fuzz_client: tuple[TestClient, set[int]], raw: bytes) -> None:
    client, documented = fuzz_client
    r = client.post("/classify", content=raw, headers={"Content-Type": "application/json"})
    check(r, documented)


@FUZZ
@given(text=TEXT.filter(str.strip))
def test_invalid_utf8_around_a_text(fuzz_client: tuple[TestClient, set[int]], text: str) -> None:
    client, documented = fuzz_client
    body = b'{"text": "' + json.dumps(text)[1:-1].encode() + b'\xff\xfe\xc0"}'
    r = client.post("/classify", content=body, headers={"Content-Type": "application/json"})
    check(r, documented)
    assert r.status_code in (400, 422)


@pytest.mark.parametrize(
    "word", ["a" * HUGE, "\U0001f600" * HUGE, "\u0645" * HUGE, "\x00" * HUGE + "x"]
)
def test_100_kb_single_words(fuzz_client: tuple[TestClient, set[int]], word: str) -> None:
    client, documented = fuzz_client
    r = client.post("/classify", json={"texts": [word, "card lost"]})
    check(r, documented)
    assert r.status_code == 200, r.text


def test_a_word_over_the_limit_is_422_not_500(tiny_model_repo: Path, tmp_path: Path) -> None:
    # Default limits: 5,000 characters a text.
    with TestClient(create_app(make_settings(tmp_path, tiny_model_repo))) as client:
        wait_ready(client)
        r = client.post("/classify", json={"text": "a" * HUGE})
        assert r.status_code == 422
        assert "characters" in r.json()["detail"]


@pytest.mark.parametrize(
    "path, body",
    [
        ("/classify", b'{"text": "a", "model": "\\ud800"}'),
        ("/classify", b'{"text": "\\ud800", "texts": ["a"]}'),
        ("/classify", b'{"text": "a", "bogus\\udc00": 1}'),
        ("/classify", b'{"text": 5, "x": "\\udfff"}'),
        ("/v1/models/example:predict", b'{"instances": ["\\ud800"]}'),
        ("/v1/models/example:predict", b'{"inputs": {"text": ["ok", "\\udbff"]}}'),
        ("/feedback", b'{"request_id": "\\ud800", "index": 0, "label": "x"}'),
    ],
)
def test_lone_surrogates_anywhere_are_422_on_every_route(
    fuzz_client: tuple[TestClient, set[int]], path: str, body: bytes
) -> None:
    client, _ = fuzz_client
    r = client.post(path, content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    assert "surrogate" in r.json()["detail"]
    assert "x-request-id" in r.headers


def test_escaped_pairs_and_escaped_backslashes_pass(
    fuzz_client: tuple[TestClient, set[int]],
) -> None:
    client, _ = fuzz_client
    for body in (b'{"text": "smile \\ud83d\\ude00"}', b'{"text": "not an escape \\\\ud800"}'):
        r = client.post("/classify", content=body, headers={"Content-Type": "application/json"})
        assert r.status_code == 200, (body, r.text)


@pytest.mark.parametrize("escape", [b"", b"\\u00e9"])
def test_deeply_nested_json_is_a_4xx(
    fuzz_client: tuple[TestClient, set[int]], escape: bytes
) -> None:
    client, documented = fuzz_client
    depth = 100_000  # past Python's recursion limit, well under the body limit
    body = b'{"text": "a' + escape + b'", "x": ' + b"[" * depth + b"]" * depth + b"}"
    r = client.post("/classify", content=body, headers={"Content-Type": "application/json"})
    check(r, documented)
    assert r.status_code in (400, 422)


@pytest.mark.parametrize(
    "body, word",
    [
        (b'{"text": "a", "threshold": NaN}', "NaN"),
        (b'{"text": "a", "threshold": Infinity}', "NaN or Infinity"),
        (b'{"text": "a", "top_k": -Infinity}', "NaN or Infinity"),
        # Beyond the float range: infinity, refused by validation, rendered without a 500.
        (b'{"text": "a", "threshold": 1e400}', "threshold"),
        (b'{"text": "a", "top_k": -1E+999}', "top_k"),
        (b'{"text": "a", "threshold": 1' + b"0" * 400 + b".5}", "threshold"),
        (b'{"text": "a", "bogus": 7363032289102258961256543379664142336}', "bogus"),
    ],
)
def test_non_finite_numbers_are_422_not_500(
    fuzz_client: tuple[TestClient, set[int]], body: bytes, word: str
) -> None:
    client, _ = fuzz_client
    for path in ("/classify", "/v1/models/example:predict", "/feedback"):
        r = client.post(path, content=body, headers={"Content-Type": "application/json"})
        assert r.status_code == 422, (path, r.text)
        assert word in r.text


def test_words_that_look_suspect_still_pass(fuzz_client: tuple[TestClient, set[int]]) -> None:
    client, _ = fuzz_client
    for text in ("NaN", "Infinity and beyond", "error e999 and E+100", "caf\u00e9"):
        r = client.post("/classify", json={"text": text, "threshold": 1e-300})
        assert r.status_code == 200, (text, r.text)
