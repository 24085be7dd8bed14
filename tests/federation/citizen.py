"""A "citizen services" subgraph written for the tests: it knows agencies only by code and adds
a field of its own to ``Case``, so a supergraph query must cross into complaint-graph and back.

It is a plain strawberry federation schema, nothing of complaint-graph's: the gateways see two
services by two authors, as in a ministry's supergraph.
"""

from __future__ import annotations

import strawberry
from strawberry.asgi import GraphQL
from strawberry.federation.schema_directives import Key
from strawberry.federation.types import FieldSet

CENTRES = {"Khon Kaen walk-in centre": "KKN-PO", "Government Complex counter": "OPM-1111"}
"""Service centres and the agency (complaint-graph's ``Agency.code``) each belongs to."""


def follow_up_of(case_id: str) -> str:
    """What this subgraph says about a case: derived from the id it was given, so a test can
    tell that the gateway passed it the right representation."""
    return f"call back within 3 days ({case_id[-6:]})"


@strawberry.federation.type(keys=[Key(fields=FieldSet("code"), resolvable=False)])
class Agency:
    code: str


@strawberry.federation.type(keys=["id"])
class Case:
    id: strawberry.ID

    @strawberry.field(description="This subgraph's own field on complaint-graph's Case.")
    def follow_up(self) -> str:
        return follow_up_of(self.id)

    @classmethod
    def resolve_reference(cls, id: strawberry.ID) -> Case:
        return cls(id=id)


@strawberry.type
class ServiceCentre:
    name: str
    agency: Agency


@strawberry.type
class FollowUp:
    note: str
    case: Case | None


@strawberry.type
class Query:
    @strawberry.field
    def service_centres(self) -> list[ServiceCentre]:
        return [ServiceCentre(name=n, agency=Agency(code=c)) for n, c in CENTRES.items()]

    @strawberry.field(description="A follow-up per case id, in the order given.")
    def follow_ups(self, case_ids: list[strawberry.ID]) -> list[FollowUp]:
        return [FollowUp(note=f"follow-up {i}", case=Case(id=c)) for i, c in enumerate(case_ids)]


schema = strawberry.federation.Schema(query=Query, federation_version="2.3")


def create_app() -> GraphQL[None, None]:
    return GraphQL(schema)
