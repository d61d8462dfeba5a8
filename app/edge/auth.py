"""API keys: which client is calling, found by comparing key digests in constant time."""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.types import Scope

from app.config import ConfigError, Settings
from app.edge.openapi import ErrorMessage
from app.errors import Unauthorized

logger = logging.getLogger(__name__)

# Client names end up in logs, metrics and the prediction log's ``client`` column (128 chars).
CLIENT_NAME = re.compile(r"[A-Za-z0-9._-]{1,128}")
SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")


@dataclass(frozen=True, slots=True)
class ClientKey:
    """One client: its name and the SHA-256 digest of its key (the key itself is not kept)."""

    name: str
    digest: bytes


def digest_key(key: str) -> bytes:
    """The SHA-256 digest that key files store (as hex) and requests are compared by."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


class KeyStore:
    """The configured clients; empty means the service is open."""

    def __init__(self, clients: list[ClientKey]) -> None:
        names = [c.name for c in clients]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ConfigError(f"API key names must be unique; repeated: {', '.join(duplicates)}")
        if len({c.digest for c in clients}) != len(clients):
            # Two names for one key would make the logged client depend on the order.
            raise ConfigError("two API key entries use the same key; give each client its own")
        self.clients = clients

    @property
    def is_open(self) -> bool:
        return not self.clients

    @property
    def names(self) -> set[str]:
        return {c.name for c in self.clients}

    def identify(self, presented: str) -> str | None:
        """The name of the client whose key this is, or None.

        Every configured digest is compared, with no early exit, so the time taken says
        nothing about which key (or how much of one) matched.
        """
        presented_digest = digest_key(presented)
        found: str | None = None
        for client in self.clients:
            if hmac.compare_digest(client.digest, presented_digest):
                found = client.name
        return found

    @classmethod
    def from_settings(cls, settings: Settings) -> KeyStore:
        """Clients from ``TEXTCLS_API_KEYS`` and ``TEXTCLS_API_KEYS_FILE`` together."""
        clients = parse_key_pairs(settings.api_keys.get_secret_value())
        if settings.api_keys_file is not None:
            clients += read_key_file(settings.api_keys_file)
        return cls(clients)


def _check_name(name: str, where: str) -> str:
    name = name.strip()
    if not CLIENT_NAME.fullmatch(name):
        raise ConfigError(f"{where}: the client name must be 1-128 characters of A-Z a-z 0-9 . _ -")
    return name


def parse_key_pairs(value: str) -> list[ClientKey]:
    """``name:key,name:key`` (``TEXTCLS_API_KEYS``). Errors never quote the key."""
    clients = []
    for n, entry in enumerate(value.split(","), start=1):
        if not entry.strip():
            continue
        name, sep, key = entry.partition(":")
        where = f"TEXTCLS_API_KEYS entry {n}"
        if not sep or not key.strip():
            raise ConfigError(f"{where}: expected name:key")
        clients.append(ClientKey(_check_name(name, where), digest_key(key.strip())))
    return clients


def read_key_file(path: Path) -> list[ClientKey]:
    """``name:sha256-hex-of-key`` lines; blank lines and ``#`` comments are skipped."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"TEXTCLS_API_KEYS_FILE: cannot read {path}: {exc.strerror}") from exc
    clients = []
    for n, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, hexdigest = line.partition(":")
        where = f"TEXTCLS_API_KEYS_FILE {path} line {n}"
        hexdigest = hexdigest.strip()
        if not sep or not SHA256_HEX.fullmatch(hexdigest):
            raise ConfigError(f"{where}: expected name:<64 hex digits of sha256(key)>")
        clients.append(ClientKey(_check_name(name, where), bytes.fromhex(hexdigest)))
    return clients


def warn_if_open(keys: KeyStore) -> None:
    """Say at start-up that anyone who can reach the port may classify."""
    if keys.is_open:
        logger.warning(
            "no API keys configured (TEXTCLS_API_KEYS / TEXTCLS_API_KEYS_FILE): "
            "the service is open to every client that can reach it"
        )
    else:
        logger.info("API keys required; %d clients configured", len(keys.clients))


# Declared as security schemes so /docs offers them and the OpenAPI document names them.
_bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer <key>`")
_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="The API key.")
BearerCredentials = Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)]
ApiKeyHeader = Annotated[str | None, Security(_api_key_header)]


def header(scope: Scope, name: bytes) -> str | None:
    """The first ``name`` header (lower case), as Starlette's ``Headers.get`` reads it."""
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def presented_key(scope: Scope) -> str | None:
    """The key a request presents: ``Authorization: Bearer <key>`` first, else ``X-API-Key``.

    Read as FastAPI's ``HTTPBearer`` and ``APIKeyHeader`` (declared above for OpenAPI) read them:
    another scheme or an empty credential counts as no bearer token.
    """
    authorization = header(scope, b"authorization")
    if authorization:
        scheme, _, credentials = authorization.partition(" ")
        credentials = credentials.strip()
        if scheme and credentials and scheme.lower() == "bearer":
            return credentials
    return header(scope, b"x-api-key") or None


def peer_client(scope: Scope) -> str:
    """An open service's name for its caller: the peer's address (``anonymous`` if unknown)."""
    peer = scope.get("client")
    return str(peer[0]) if peer else "anonymous"


def identify(keys: KeyStore, scope: Scope) -> str:
    """The calling client's name; Unauthorized when keys are required and none matches.

    With no keys configured the service is open and the client is the peer's address.
    """
    if keys.is_open:
        return peer_client(scope)
    key = presented_key(scope)
    if key is None:
        raise Unauthorized("an API key is required (Authorization: Bearer or X-API-Key)")
    name = keys.identify(key)
    if name is None:
        raise Unauthorized("the API key is not valid")
    return name


async def authenticate_metrics(
    request: Request, bearer: BearerCredentials, api_key: ApiKeyHeader
) -> None:
    """/metrics needs ``TEXTCLS_METRICS_API_KEY`` when it is set, and is open otherwise."""
    expected: bytes | None = request.app.state.metrics_key_digest
    if expected is None:
        return
    key = presented_key(request.scope)
    if key is None:
        raise Unauthorized("/metrics requires its API key (TEXTCLS_METRICS_API_KEY)")
    if not hmac.compare_digest(digest_key(key), expected):
        raise Unauthorized("the metrics API key is not valid")


def metrics_key_digest(settings: Settings) -> bytes | None:
    """The digest /metrics compares against, or None when /metrics is open."""
    secret = settings.metrics_api_key
    value = secret.get_secret_value().strip() if secret is not None else ""
    return digest_key(value) if value else None


AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {
        "model": ErrorMessage,
        "description": "No API key, or one that matches no client.",
        "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}},
    },
}
