"""OpenID Connect bearer tokens: signature against the issuer's JWKS, issuer, audience, expiry.

PyJWT checks the token; the JWKS is fetched with httpx (asynchronously, unlike PyJWKClient),
cached for ``jwks_cache_seconds`` and re-read at once when a token names a key id not in it (the
issuer rotated its keys), at most once per ten seconds so bad tokens cannot hammer the issuer.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import jwt

from gateway.auth._settings import OidcSettings
from resolvers.access import Principal, Role

_REFETCH_SECONDS = 10.0


class TokenRejected(Exception):
    """The token is not acceptable; the message says why, without echoing the token."""


class OidcVerifier:
    def __init__(self, settings: OidcSettings) -> None:
        self.settings = settings
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()

    async def principal(self, token: str) -> Principal:
        claims = await self.verify(token)
        names = self.settings.claims
        agency = _dig(claims, names.agency)
        roles = _strings(_dig(claims, names.roles))
        known = {role.value for role in Role}
        return Principal(
            subject=f"oidc:{claims.get('sub', '?')}",
            roles=frozenset(Role(r) for r in roles if r in known),
            agency=agency if isinstance(agency, str) else None,
            scopes=frozenset(_strings(_dig(claims, names.scopes))),
            method="oidc",
        )

    async def verify(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as exc:
            raise TokenRejected(f"not a JWT ({exc})") from None
        key = await self._key(header.get("kid"))
        settings = self.settings
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key,
                algorithms=settings.algorithms,
                audience=settings.audience,
                issuer=settings.issuer,
                leeway=settings.leeway_seconds,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise TokenRejected("token expired") from None
        except jwt.InvalidAudienceError:
            raise TokenRejected("token is for another audience") from None
        except jwt.InvalidIssuerError:
            raise TokenRejected("token is from another issuer") from None
        except jwt.InvalidSignatureError:
            raise TokenRejected("token signature does not verify") from None
        except jwt.InvalidTokenError as exc:
            raise TokenRejected(f"token refused ({type(exc).__name__})") from None
        return claims

    async def _key(self, kid: object) -> jwt.PyJWK:
        if not isinstance(kid, str):
            raise TokenRejected("token header names no key id (kid)")
        async with self._lock:
            age = time.monotonic() - self._fetched_at
            stale = age > self.settings.jwks_cache_seconds
            if stale or (kid not in self._keys and age > _REFETCH_SECONDS):
                await self._fetch()
        key = self._keys.get(kid)
        if key is None:
            raise TokenRejected(f"key id {kid!r} is not in the issuer's JWKS")
        return key

    async def _fetch(self) -> None:
        try:
            async with httpx.AsyncClient(timeout=10) as client:
                response = await client.get(self.settings.jwks_url)
                response.raise_for_status()
                document = response.json()
            key_set = jwt.PyJWKSet.from_dict(document)
        except (httpx.HTTPError, ValueError, jwt.PyJWKSetError) as exc:
            raise TokenRejected(f"issuer keys unavailable ({type(exc).__name__})") from None
        self._keys = {k.key_id: k for k in key_set.keys if k.key_id is not None}
        self._fetched_at = time.monotonic()


def _dig(claims: dict[str, Any], path: str) -> Any:
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []
