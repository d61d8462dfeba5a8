"""What the sync and async clients share: settings, request building, answer parsing."""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from textcls_client.errors import APIError, error_class
from textcls_client.results import Prediction
from textcls_client.retry import RetryPolicy, retry_after_seconds

API_KEY_ENV = "TEXTCLS_API_KEY"
REQUEST_ID_HEADER = "X-Request-ID"
DEFAULT_URL = "http://127.0.0.1:8000"
DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=2.0)
USER_AGENT = "textcls-client/0.1.0"


@dataclass(frozen=True, slots=True)
class Call:
    """One logical request; every retry of it sends the same X-Request-ID."""

    method: str
    path: str
    json: Any = None
    request_id: str = ""

    def headers(self) -> dict[str, str]:
        return {REQUEST_ID_HEADER: self.request_id}


def new_request_id() -> str:
    return uuid.uuid4().hex


def client_headers(api_key: str | None, extra: Mapping[str, str] | None) -> dict[str, str]:
    """Headers for every request: the API key (argument, else $TEXTCLS_API_KEY), user agent."""
    headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
    key = api_key if api_key is not None else os.environ.get(API_KEY_ENV)
    if key:
        headers["Authorization"] = f"Bearer {key}"
    headers.update(extra or {})
    return headers


def as_timeout(timeout: float | httpx.Timeout | None) -> httpx.Timeout:
    if timeout is None:
        return DEFAULT_TIMEOUT
    return timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)


def as_policy(retries: int | RetryPolicy) -> RetryPolicy:
    return retries if isinstance(retries, RetryPolicy) else RetryPolicy(retries=retries)


def classify_call(
    text: str | Sequence[str],
    model: str | None,
    version: int | str | None,
    top_k: int | None,
    threshold: float | None,
    margin: float | None,
    session: str | None,
    request_id: str | None,
) -> Call:
    body: dict[str, Any]
    if isinstance(text, str):
        body = {"text": text}
    else:
        body = {"texts": list(text)}
    optional = {
        "model": model,
        "version": version,
        "top_k": top_k,
        "threshold": threshold,
        "margin": margin,
        "session": session,
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    return Call("POST", "/classify", body, request_id or new_request_id())


def feedback_call(
    prediction: Prediction | str, label: str, index: int | None, request_id: str | None
) -> Call:
    if isinstance(prediction, Prediction):
        rid, idx = prediction.request_id, prediction.index if index is None else index
    else:
        rid, idx = prediction, 0 if index is None else index
    body = {"request_id": rid, "index": idx, "label": label}
    return Call("POST", "/feedback", body, request_id or new_request_id())


def raise_for_answer(response: httpx.Response, call: Call) -> Any:
    """The JSON body of a 2xx answer, else the typed APIError for its status."""
    request_id = response.headers.get(REQUEST_ID_HEADER, call.request_id)
    if response.is_success:
        return response.json()
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if isinstance(payload, dict) and "detail" in payload:
        detail = payload["detail"]
    elif isinstance(payload, dict) and "error" in payload:
        detail = payload["error"]
    else:
        detail = response.text or response.reason_phrase
    cls = error_class(response.status_code)
    error: APIError = cls(response.status_code, detail, request_id, retry_after_seconds(response))
    raise error
