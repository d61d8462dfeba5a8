"""The admin key (``TEXTCLS_ADMIN_API_KEY``): who may edit labels, traffic and the default model.

Separate from the client keys: 401 without a key or with one that is no key at all, 403 with
a client's key (it is known, but not allowed here), 403 naming the setting when no admin key
is configured (the admin routes are off). The key is kept only as its digest and compared in
constant time; it is never logged.
"""

from __future__ import annotations

import hmac

from fastapi import Request

from app.config import Settings
from app.edge.auth import BearerCredentials, KeyStore, digest_key
from app.errors import AdminForbidden, Unauthorized

ADMIN_SETTING = "TEXTCLS_ADMIN_API_KEY"


def admin_key_digest(settings: Settings) -> bytes | None:
    secret = settings.admin_api_key
    value = secret.get_secret_value().strip() if secret is not None else ""
    return digest_key(value) if value else None


async def authenticate_admin(request: Request, bearer: BearerCredentials) -> str:
    """``admin`` when the request carries the admin key (``Authorization: Bearer``)."""
    expected: bytes | None = request.app.state.admin_key_digest
    if expected is None:
        raise AdminForbidden(f"the admin routes are off: set {ADMIN_SETTING} to use them")
    key = bearer.credentials.strip() if bearer is not None and bearer.credentials else None
    if not key:
        raise Unauthorized(f"an admin key is required (Authorization: Bearer <{ADMIN_SETTING}>)")
    if hmac.compare_digest(digest_key(key), expected):
        request.state.client = "admin"
        return "admin"
    keys: KeyStore = request.app.state.keys
    if keys.identify(key) is not None:
        raise AdminForbidden("a client API key cannot use the admin routes; use the admin key")
    raise Unauthorized("the admin key is not valid")
