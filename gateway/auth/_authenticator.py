"""From an ``Authorization`` value to a :class:`~resolvers.access.Principal`.

``Bearer <token>`` carries either an API key or an OIDC token: a JWT (three base64url parts
joined by dots) goes to the OIDC verifier when one is configured, anything else to the key store.
No header at all is the configured anonymous principal; a header that does not verify is an
error, never a silent fall back to anonymous.
"""

from __future__ import annotations

import re

from gateway.audit import AuditLog
from gateway.auth._keys import KeyStore
from gateway.auth._oidc import OidcVerifier, TokenRejected
from gateway.auth._settings import AuthSettings
from resolvers.access import ANONYMOUS, Principal

_JWT = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")


class AuthenticationFailed(Exception):
    """The credentials sent are not valid; the message says why (never echoing them)."""


class Authenticator:
    def __init__(self, settings: AuthSettings) -> None:
        self.settings = settings
        self.keys = KeyStore(settings.key_store)
        personal_data = settings.personal_data
        self.audit = AuditLog(
            personal_data.audit_store or settings.key_store, personal_data.audit_wait_seconds
        )
        self.oidc = OidcVerifier(settings.oidc) if settings.oidc is not None else None
        anonymous = settings.anonymous
        self.anonymous = (
            ANONYMOUS
            if anonymous.role is None
            else Principal(
                subject="anonymous",
                roles=frozenset({anonymous.role}),
                agency=anonymous.agency,
                scopes=frozenset(anonymous.scopes),
            )
        )

    async def close(self) -> None:
        await self.keys.close()
        await self.audit.close()

    async def principal(self, authorization: str | None) -> Principal:
        """Who sent ``authorization`` (an HTTP header value or a connection_init entry)."""
        if authorization is None or not authorization.strip():
            return self.anonymous
        scheme, _, credential = authorization.strip().partition(" ")
        credential = credential.strip()
        if scheme.lower() != "bearer" or not credential:
            raise AuthenticationFailed("Authorization must be 'Bearer <API key or token>'")
        if self.oidc is not None and _JWT.match(credential):
            try:
                return await self.oidc.principal(credential)
            except TokenRejected as exc:
                raise AuthenticationFailed(f"invalid token: {exc}") from None
        key = await self.keys.authenticate(credential)
        if key is None:
            raise AuthenticationFailed("invalid API key (unknown or revoked)")
        return key.principal()
