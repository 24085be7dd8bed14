"""Authenticating one request's context: the HTTP header, or a WebSocket's connection_init."""

from __future__ import annotations

from strawberry.exceptions import ConnectionRejectionError

from gateway.auth._authenticator import AuthenticationFailed, Authenticator
from resolvers import Context
from resolvers.access import ANONYMOUS


async def authenticate_context(
    context: Context,
    authenticator: Authenticator | None,
    authorization: str | None,
    purpose: str | None = None,
) -> None:
    """Set who ``context`` runs as. Credentials that do not verify leave it with no role and
    the reason in ``auth_error``, so every operation fails with ``UNAUTHENTICATED`` saying why.
    ``purpose`` is what the client says it reads for (``X-Purpose``): kept in the audit log."""
    if authenticator is None:
        context.authenticate(ANONYMOUS)
        return
    audit = authenticator.audit.for_request(purpose)
    match_key = authenticator.settings.personal_data.match_key
    try:
        principal = await authenticator.principal(authorization)
    except AuthenticationFailed as exc:
        context.auth_error = str(exc)
        context.authenticate(ANONYMOUS, audit, match_key)
        context.case_access.refusal = str(exc)
        return
    context.authenticate(principal, audit, match_key)


async def authenticate_connection(context: Context, authenticator: Authenticator | None) -> None:
    """A WebSocket's ``connection_init`` payload ``{"Authorization": "Bearer …"}``: bad
    credentials close the socket (4403 Forbidden) before any subscription starts."""
    params = context.connection_params or {}
    value = params.get("Authorization", params.get("authorization"))
    if value is None:
        return  # keep what the upgrade request's header (or its absence) said
    if not isinstance(value, str):
        raise ConnectionRejectionError({"message": "Authorization must be a string"})
    purpose_header = authenticator.settings.personal_data.purpose_header if authenticator else ""
    purpose = params.get(purpose_header)
    await authenticate_context(
        context, authenticator, value, purpose if isinstance(purpose, str) else None
    )
    if context.auth_error is not None:
        raise ConnectionRejectionError({"message": context.auth_error})
