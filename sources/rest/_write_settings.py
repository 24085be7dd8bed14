"""The ``writes:`` keys of a ``kind: rest`` source: the endpoints that create and update cases."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from sources._settings import Strict


class WriteEndpoint(Strict):
    """One request: ``path`` and ``body`` are templates. A string that is exactly one
        ``{name}`` becomes that value with its JSON type (a number stays a number); other strings
        are formatted. Names: ``id`` (the case's local id), ``title``, ``description``,
        ``category``, ``channel``, ``status`` (native codes), ``note``, ``province_code``,
        ``district_code``, ``subdistrict_code``, ``address``, ``latitude``, ``longitude``,
        ``sender_agency``, ``sender_reference``, ``received_at``, ``at``, ``to_agency``, ``kind``,
        ``their_reference``, ``key`` (the idempotency key), and the ``complainant_…`` names
    ``personal_data`` allows."""

    method: Literal["POST", "PUT", "PATCH"] = "POST"
    path: str
    body: dict[str, Any] = Field(default_factory=dict)
    reference: str | None = Field(
        default=None,
        description="Creating: dotted path of the new case's id in the JSON answer.",
    )
    numeric: list[str] = Field(
        default_factory=list,
        description="Names whose native codes the API takes as numbers (status, category).",
    )


class RestWrites(Strict):
    """Every request carries the idempotency key in the ``key_header`` (the API must answer a
    repeated key with the first answer, creating nothing more)."""

    key_header: str = "Idempotency-Key"
    create: WriteEndpoint | None = None
    status: WriteEndpoint | None = None
    referral: WriteEndpoint | None = None
    note: WriteEndpoint | None = None
    personal_data: list[Literal["name", "phone", "address", "citizen_id"]] = Field(
        default_factory=list,
        description=(
            "The complainant's data this agency may receive with a referral (its role's "
            "minimum), as {complainant_name}, {complainant_phone}, {complainant_address}, "
            "{complainant_citizen_id} in the create body; absent: none. Never for anonymous "
            "or confidential complaints."
        ),
    )
