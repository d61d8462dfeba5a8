"""``authorize(scope) -> client``: the one check of who calls and whether they may, now.

The /classify route calls it directly; every other client route gets it as the FastAPI
dependency ``authorized_client``. Keys first (401), then the client's token bucket (429). The
client's name is left in ``scope["state"]["client"]`` for the prediction log.
"""

from __future__ import annotations

from fastapi import Request
from starlette.types import Scope

from app.config import Settings
from app.edge.auth import ApiKeyHeader, BearerCredentials, KeyStore, identify
from app.edge.rate_limit import Limiter, RateLimiter


async def authorize(scope: Scope) -> str:
    """The calling client's name, or Unauthorized / RateLimited; reads the app's key store."""
    state = scope["app"].state
    client = identify(state.keys, scope)
    limiter: Limiter = state.rate_limiter
    if limiter.enabled:
        await limiter.acquire(client)
    scope.setdefault("state", {})["client"] = client
    return client


async def authorized_client(
    request: Request, bearer: BearerCredentials, api_key: ApiKeyHeader
) -> str:
    """``authorize`` as a FastAPI dependency; ``bearer`` and ``api_key`` only declare the schemes
    in OpenAPI (``authorize`` reads the same headers itself)."""
    return await authorize(request.scope)


def check_security_settings(settings: Settings) -> None:
    """Raise ConfigError now for bad key or rate-limit settings (``textcls serve`` calls it)."""
    RateLimiter.from_settings(settings, KeyStore.from_settings(settings))
