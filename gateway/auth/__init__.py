"""Authentication: API keys in the gateway's own store, OIDC bearer tokens, anonymous callers.

What an authenticated caller may see is decided in :mod:`resolvers.access`; this package only
establishes who the caller is.
"""

from gateway.auth._authenticator import AuthenticationFailed, Authenticator
from gateway.auth._keys import ApiKey, KeyStore, KeyStoreError
from gateway.auth._oidc import OidcVerifier, TokenRejected
from gateway.auth._requests import authenticate_connection, authenticate_context
from gateway.auth._settings import (
    AnonymousSettings,
    AuthSettings,
    ClaimNames,
    OidcSettings,
    PersonalDataSettings,
)

__all__ = [
    "AnonymousSettings",
    "ApiKey",
    "AuthSettings",
    "AuthenticationFailed",
    "Authenticator",
    "ClaimNames",
    "KeyStore",
    "KeyStoreError",
    "OidcSettings",
    "OidcVerifier",
    "PersonalDataSettings",
    "TokenRejected",
    "authenticate_connection",
    "authenticate_context",
]
