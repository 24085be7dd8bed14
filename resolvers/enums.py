"""GraphQL enums: the unified vocabularies, named as clients see them."""

from __future__ import annotations

from enum import Enum

import strawberry

from sources import CanonicalStatus, Channel, SortField

CaseStatus = strawberry.enum(
    CanonicalStatus,
    name="CaseStatus",
    description="The canonical status every agency's own status vocabulary is mapped onto.",
)
CaseChannel = strawberry.enum(
    Channel, name="Channel", description="How the complaint reached the agency."
)
CaseOrderField = strawberry.enum(SortField, name="CaseOrderField")


@strawberry.enum
class OrderDirection(Enum):
    ASC = "ASC"
    DESC = "DESC"
