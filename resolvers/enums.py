"""GraphQL enums: the unified vocabularies, named as clients see them."""

from __future__ import annotations

from enum import Enum

import strawberry

from sources import CanonicalStatus, Channel, SortField

# strawberry.enum registers the GraphQL definition on the class itself; the aliases below are
# the names resolvers use, so annotations stay plain Python types for mypy.
strawberry.enum(
    CanonicalStatus,
    name="CaseStatus",
    description="The canonical status every agency's own status vocabulary is mapped onto.",
)
strawberry.enum(Channel, name="Channel", description="How the complaint reached the agency.")
strawberry.enum(SortField, name="CaseOrderField")

CaseStatus = CanonicalStatus
CaseChannel = Channel
CaseOrderField = SortField


@strawberry.enum
class OrderDirection(Enum):
    ASC = "ASC"
    DESC = "DESC"
