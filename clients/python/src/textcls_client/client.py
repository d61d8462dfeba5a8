"""``Client`` and ``AsyncClient``: classify, feedback and models over httpx, with retries."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, overload

import httpx

from textcls_client._core import (
    DEFAULT_URL,
    Call,
    as_policy,
    as_timeout,
    classify_call,
    client_headers,
    feedback_call,
    new_request_id,
    raise_for_answer,
)
from textcls_client.errors import APIError, TransportError
from textcls_client.results import (
    Classification,
    Feedback,
    ModelInfo,
    Prediction,
    parse_classification,
    parse_feedback,
    parse_model,
)
from textcls_client.retry import RETRY_EXCEPTIONS, RETRY_STATUSES, RetryPolicy

Timeout = float | httpx.Timeout | None


def _retry_wait(policy: RetryPolicy, attempt: int, outcome: Exception) -> float | None:
    """Seconds before the next attempt after ``outcome``, or None to give up and raise it."""
    if isinstance(outcome, APIError):
        if outcome.status_code not in RETRY_STATUSES:
            return None  # any other answer is the service's final word on this request
        return policy.wait_for(attempt, outcome.retry_after_s)
    return policy.wait_for(attempt, None)  # a connection fault: back off


def _transport_error(exc: httpx.TransportError, call: Call, attempts: int) -> TransportError:
    what = type(exc).__name__
    return TransportError(
        f"{call.method} {call.path}: {what} after {attempts} attempt(s): {exc}", call.request_id
    )


class Client:
    """A synchronous client; thread-safe (one connection pool), use it as a context manager.

    ``api_key`` defaults to ``$TEXTCLS_API_KEY``; ``timeout`` is per attempt (seconds or an
    ``httpx.Timeout``); ``retries`` is a count or a RetryPolicy. Connection errors, 429 and
    503 are retried (waiting ``Retry-After`` when given); other 4xx never are.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        api_key: str | None = None,
        timeout: Timeout = None,
        retries: int | RetryPolicy = 3,
        headers: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.policy = as_policy(retries)
        self._http = httpx.Client(
            base_url=base_url,
            headers=client_headers(api_key, headers),
            timeout=as_timeout(timeout),
            transport=transport,
        )

    @overload
    def classify(
        self,
        text: str,
        *,
        model: str | None = ...,
        version: int | str | None = ...,
        top_k: int | None = ...,
        threshold: float | None = ...,
        margin: float | None = ...,
        session: str | None = ...,
        request_id: str | None = ...,
    ) -> Prediction: ...
    @overload
    def classify(
        self,
        text: Sequence[str],
        *,
        model: str | None = ...,
        version: int | str | None = ...,
        top_k: int | None = ...,
        threshold: float | None = ...,
        margin: float | None = ...,
        session: str | None = ...,
        request_id: str | None = ...,
    ) -> Classification: ...
    def classify(
        self,
        text: str | Sequence[str],
        *,
        model: str | None = None,
        version: int | str | None = None,
        top_k: int | None = None,
        threshold: float | None = None,
        margin: float | None = None,
        session: str | None = None,
        request_id: str | None = None,
    ) -> Prediction | Classification:
        """One text -> its Prediction; a list of texts -> a Classification, in input order."""
        call = classify_call(text, model, version, top_k, threshold, margin, session, request_id)
        result = parse_classification(self._send(call))
        return result[0] if isinstance(text, str) else result

    def feedback(
        self,
        prediction: Prediction | str,
        label: str,
        *,
        index: int | None = None,
        request_id: str | None = None,
    ) -> Feedback:
        """The correct ``label`` for a Prediction (or a request id and ``index``)."""
        return parse_feedback(self._send(feedback_call(prediction, label, index, request_id)))

    def models(self) -> list[ModelInfo]:
        """Every model the service knows, with its served version and labels."""
        body = self._send(Call("GET", "/models", request_id=new_request_id()))
        return [parse_model(m) for m in body["models"]]

    def model(self, name: str) -> ModelInfo:
        """One model; NotFound if the service has no model of that name."""
        return parse_model(self._send(Call("GET", f"/models/{name}", request_id=new_request_id())))

    def ready(self) -> bool:
        """Whether the service has a model warmed up (``/readyz`` answers 200); no retries."""
        try:
            return self._http.get("/readyz").status_code == 200
        except httpx.TransportError:
            return False

    def _send(self, call: Call) -> Any:
        attempt = 0
        while True:
            try:
                response = self._http.request(
                    call.method, call.path, json=call.json, headers=call.headers()
                )
                return raise_for_answer(response, call)
            except APIError as exc:
                wait = _retry_wait(self.policy, attempt, exc)
                if wait is None:
                    raise
            except RETRY_EXCEPTIONS as exc:
                wait = _retry_wait(self.policy, attempt, exc)
                if wait is None:
                    raise _transport_error(exc, call, attempt + 1) from exc
            except httpx.TransportError as exc:
                raise _transport_error(exc, call, attempt + 1) from exc
            time.sleep(wait)
            attempt += 1

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncClient:
    """The asyncio twin of Client, with the same methods as coroutines."""

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        api_key: str | None = None,
        timeout: Timeout = None,
        retries: int | RetryPolicy = 3,
        headers: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        limits: httpx.Limits | None = None,
    ) -> None:
        self.policy = as_policy(retries)
        self._http = httpx.AsyncClient(
            base_url=base_url,
            headers=client_headers(api_key, headers),
            timeout=as_timeout(timeout),
            transport=transport,
            limits=limits or httpx.Limits(max_connections=100, max_keepalive_connections=100),
        )

    @overload
    async def classify(
        self,
        text: str,
        *,
        model: str | None = ...,
        version: int | str | None = ...,
        top_k: int | None = ...,
        threshold: float | None = ...,
        margin: float | None = ...,
        session: str | None = ...,
        request_id: str | None = ...,
    ) -> Prediction: ...
    @overload
    async def classify(
        self,
        text: Sequence[str],
        *,
        model: str | None = ...,
        version: int | str | None = ...,
        top_k: int | None = ...,
        threshold: float | None = ...,
        margin: float | None = ...,
        session: str | None = ...,
        request_id: str | None = ...,
    ) -> Classification: ...
    async def classify(
        self,
        text: str | Sequence[str],
        *,
        model: str | None = None,
        version: int | str | None = None,
        top_k: int | None = None,
        threshold: float | None = None,
        margin: float | None = None,
        session: str | None = None,
        request_id: str | None = None,
    ) -> Prediction | Classification:
        """One text -> its Prediction; a list of texts -> a Classification, in input order."""
        call = classify_call(text, model, version, top_k, threshold, margin, session, request_id)
        result = parse_classification(await self._send(call))
        return result[0] if isinstance(text, str) else result

    async def feedback(
        self,
        prediction: Prediction | str,
        label: str,
        *,
        index: int | None = None,
        request_id: str | None = None,
    ) -> Feedback:
        """The correct ``label`` for a Prediction (or a request id and ``index``)."""
        call = feedback_call(prediction, label, index, request_id)
        return parse_feedback(await self._send(call))

    async def models(self) -> list[ModelInfo]:
        """Every model the service knows, with its served version and labels."""
        body = await self._send(Call("GET", "/models", request_id=new_request_id()))
        return [parse_model(m) for m in body["models"]]

    async def model(self, name: str) -> ModelInfo:
        """One model; NotFound if the service has no model of that name."""
        call = Call("GET", f"/models/{name}", request_id=new_request_id())
        return parse_model(await self._send(call))

    async def ready(self) -> bool:
        """Whether the service has a model warmed up (``/readyz`` answers 200); no retries."""
        try:
            return (await self._http.get("/readyz")).status_code == 200
        except httpx.TransportError:
            return False

    async def _send(self, call: Call) -> Any:
        attempt = 0
        while True:
            try:
                response = await self._http.request(
                    call.method, call.path, json=call.json, headers=call.headers()
                )
                return raise_for_answer(response, call)
            except APIError as exc:
                wait = _retry_wait(self.policy, attempt, exc)
                if wait is None:
                    raise
            except RETRY_EXCEPTIONS as exc:
                wait = _retry_wait(self.policy, attempt, exc)
                if wait is None:
                    raise _transport_error(exc, call, attempt + 1) from exc
            except httpx.TransportError as exc:
                raise _transport_error(exc, call, attempt + 1) from exc
            await asyncio.sleep(wait)
            attempt += 1

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
