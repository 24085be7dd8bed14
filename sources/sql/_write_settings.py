"""The ``writes:`` keys of a ``kind: sql`` source: how a case is created and moved on in it."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from sources._settings import Strict

IdStrategy = Literal["database", "max_plus_one", "uuid"]


class SqlWrites(Strict):
    """Writes onto the tables the read mapping names (``cases``, ``location``, ``timeline``,
    ``referrals``), in the agency's own vocabulary, one transaction per write.

    A new case's row holds what the mapping has columns for; columns the agency requires that
    the graph has no value for take ``defaults``."""

    case_id: IdStrategy = Field(
        default="database",
        description=(
            "How a new case's id is made: the database's own default (a serial, an INTEGER "
            "PRIMARY KEY), max + 1 in the transaction (retried on a clash), or a random hex uuid."
        ),
    )
    reference_pattern: str | None = Field(
        default=None,
        description=(
            "The agency's case number for a new case, e.g. 'KKN-{year}-{id}'; absent: the "
            "database's own default for that column."
        ),
    )
    key_column: str | None = Field(
        default=None,
        description=(
            "Column of the case table that keeps the idempotency key (best with a UNIQUE index: "
            "then concurrent sends of one key make one case). Absent: sender_reference_column."
        ),
    )
    sender_reference_column: str | None = Field(
        default=None,
        description=(
            "Column keeping '<sending agency>:<their reference>': looked up before creating, "
            "when there is no key_column."
        ),
    )
    timeline_id: IdStrategy = Field(
        default="database", description="As case_id, for timeline rows."
    )
    referral_id: IdStrategy = Field(
        default="database", description="As case_id, for referral rows."
    )
    personal_data: list[Literal["name", "phone", "address", "citizen_id"]] = Field(
        default_factory=list,
        description=(
            "The complainant's data this agency may receive with a referral (its role's "
            "minimum), into the `complainant` columns; absent: none."
        ),
    )
    defaults: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="Constant values for other columns of a new case row."
    )
