"""The ``auth:`` section of the configuration: key store, OIDC issuer, what anonymous may do."""

from __future__ import annotations

from pydantic import Field, model_validator

from resolvers.access import Role
from sources import Strict


class ClaimNames(Strict):
    """Where in a token the agency, roles and scopes are (dotted paths into the claims)."""

    agency: str = "agency"
    roles: str = "roles"
    scopes: str = Field(default="scope", description="A space-separated string or a list.")


class OidcSettings(Strict):
    """Bearer tokens signed by an OpenID Connect issuer, checked against its JWKS."""

    issuer: str = Field(description="Must equal the token's iss claim.")
    audience: str = Field(description="Must be among the token's aud claim.")
    jwks_url: str = Field(description="Where the issuer publishes its signing keys (JWKS).")
    algorithms: list[str] = Field(default_factory=lambda: ["RS256", "ES256"], min_length=1)
    leeway_seconds: float = Field(default=30, ge=0, description="Clock skew allowed on exp/nbf.")
    jwks_cache_seconds: float = Field(
        default=300, gt=0, description="Keys are re-read after this, or at once for a new kid."
    )
    claims: ClaimNames = Field(default_factory=ClaimNames)

    @model_validator(mode="after")
    def _no_symmetric(self) -> OidcSettings:
        if any(a.upper().startswith("HS") or a.lower() == "none" for a in self.algorithms):
            raise ValueError("only asymmetric algorithms (RS*, PS*, ES*, EdDSA) can use a JWKS")
        return self


class AnonymousSettings(Strict):
    """What callers without credentials get; by default nothing but introspection."""

    role: Role | None = None
    agency: str | None = None
    scopes: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _agency_role_needs_agency(self) -> AnonymousSettings:
        if self.role is Role.AGENCY and not self.agency:
            raise ValueError("role agency needs an agency code")
        return self


class PersonalDataSettings(Strict):
    """Complainants' personal data: how people are matched across agencies, and the audit log."""

    match_key: str | None = Field(
        default=None,
        description=(
            "HMAC-SHA256 key the agencies' citizen_key columns are computed with; a secret "
            "(write ${VARIABLE}). Without it Complainant.cases is off."
        ),
    )
    audit_store: str | None = Field(
        default=None,
        description=(
            "SQLAlchemy async URL of the append-only audit log (SQLite or PostgreSQL); "
            "by default a table in the key store's database."
        ),
    )
    purpose_header: str = Field(
        default="X-Purpose", description="The header in which clients state why they read."
    )
    audit_wait_seconds: float = Field(
        default=10,
        gt=0,
        description=(
            "How long recording a reveal waits for another writer's lock on the audit store; "
            "after that the reveal is refused with AUDIT_UNAVAILABLE."
        ),
    )


class AuthSettings(Strict):
    key_store: str = Field(
        default="sqlite+aiosqlite:///complaint-graph-keys.sqlite",
        description="SQLAlchemy async URL of the API key store (SQLite file or PostgreSQL).",
    )
    oidc: OidcSettings | None = None
    anonymous: AnonymousSettings = Field(default_factory=AnonymousSettings)
    personal_data: PersonalDataSettings = Field(default_factory=PersonalDataSettings)
