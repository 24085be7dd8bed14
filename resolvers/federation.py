"""The complaint graph as an Apollo Federation v2 subgraph: ``_service`` and ``_entities``.

A supergraph's gateway (Apollo Router or Gateway, Hive Gateway) asks ``_service { sdl }`` for
the subgraph's schema with its ``@key`` directives, and ``_entities(representations:)`` for
the objects other subgraphs name by those keys. Both are root fields of a query type that
extends :class:`~resolvers.query.Query`, in a schema built exactly like the plain one
(:func:`resolvers.schema.build_schema`): the same extensions, limits and error translation.

The keys are not put on the type decorators: strawberry prints a type's directives in every
schema it is part of, so the checked-in, non-federated ``schema.graphql`` would carry them.
The SDL a gateway receives is the plain schema's, with the ``@link`` to the federation spec
and the ``@key`` of each entity added to its syntax tree (:func:`subgraph_sdl`).

Each representation is resolved as ``case``/``node``, ``agency`` and ``categories`` resolve
their objects: a ``Case`` through :func:`~resolvers.case.load_case`, so the request's loaders
batch a hundred representations into one call per source, and the caller's access rules,
personal-data masking and audit apply unchanged (a case the caller may not see is null).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from functools import cache
from typing import Annotated, Any, cast

import strawberry
from graphql import (
    ConstArgumentNode,
    ConstDirectiveNode,
    DocumentNode,
    ListValueNode,
    NameNode,
    ObjectTypeDefinitionNode,
    SchemaExtensionNode,
    StringValueNode,
    parse,
    print_ast,
)
from strawberry import relay
from strawberry.federation.schema import FederationAny
from strawberry.relay import GlobalID, GlobalIDValueError

from resolvers.access import AccessError
from resolvers.agency import Agency, Category
from resolvers.case import Case, load_case, load_case_in
from resolvers.context import GraphInfo
from resolvers.errors import UserInputError
from resolvers.geography import Area, area
from resolvers.query import Query
from resolvers.schema import ComplaintGraphSchema, build_schema, schema_sdl

FEDERATION_SPEC = "https://specs.apollo.dev/federation/v2.3"
"""The federation version the subgraph SDL links to: 2.3 is understood by every current
gateway and composer (Apollo Gateway 2.x, Apollo Router, Hive Gateway)."""

ENTITY_KEYS: Mapping[str, tuple[str, ...]] = {
    "Case": ("id", "source { id } referenceNumber"),
    "Agency": ("code",),
    "Category": ("code",),
    "Area": ("code",),
}
"""Each entity's ``@key`` field sets, by type: what another subgraph names one by."""

Representation = FederationAny
"""The federation spec's ``_Any``: an entity's ``__typename`` and the fields of one of its keys
(strawberry's federation schema maps it to the scalar)."""

Entity = Annotated[Case | Agency | Category | Area, strawberry.union("_Entity")]


@strawberry.type(name="_Service")
class Service:
    sdl: str = strawberry.field(description="This subgraph's schema, with its @key directives.")


class SchemaWithheld(AccessError):
    """``_service`` asked where introspection is off for the caller: the SDL is the schema."""

    code = "INTROSPECTION_DISABLED"


Resolve = Callable[[GraphInfo, Mapping[str, Any]], Awaitable[object | None]]


async def _case(info: GraphInfo, representation: Mapping[str, Any]) -> Case | None:
    """A case by its global id, as ``node``/``case`` load it (null for another type's id),
    or by its source and the agency's own case number."""
    if "id" not in representation and "referenceNumber" in representation:
        return await _case_by_reference(info, representation)
    try:
        found = GlobalID.from_id(_key_field(representation, "Case", "id"))
    except GlobalIDValueError as exc:
        raise UserInputError(f"Case representation: {exc}") from None
    if found.type_name != "Case":
        return None
    return await load_case(info, found.node_id)


async def _case_by_reference(info: GraphInfo, representation: Mapping[str, Any]) -> Case | None:
    """The case a source holds under an agency case number: one batch per source for the
    whole request, then :func:`load_case_in` as for an id (the record, now known to the
    request's loaders, costs no second round trip), so access rules apply unchanged."""
    source = representation.get("source")
    source_id = source.get("id") if isinstance(source, dict) else None
    if not isinstance(source_id, str):
        raise UserInputError("Case representation: source must be an object with an id")
    reference = _key_field(representation, "Case", "referenceNumber")
    context = info.context
    context.case_access.require_role()
    if context.federation.get(source_id) is None:
        return None
    record = await context.loaders.cases_by_reference(source_id).load(reference)
    if record is None:
        return None
    context.loaders.prime_cases([record])
    return await load_case_in(info, record.source, record.local_id)


async def _agency(info: GraphInfo, representation: Mapping[str, Any]) -> Agency | None:
    found = info.context.directory.agencies.get(_key_field(representation, "Agency", "code"))
    return Agency.of(found) if found is not None else None


async def _category(info: GraphInfo, representation: Mapping[str, Any]) -> Category | None:
    found = info.context.directory.categories.get(_key_field(representation, "Category", "code"))
    return Category.of(found) if found is not None else None


async def _area(info: GraphInfo, representation: Mapping[str, Any]) -> Area | None:
    return area(_key_field(representation, "Area", "code"))


def _key_field(representation: Mapping[str, Any], type_name: str, name: str) -> str:
    value = representation.get(name)
    if not isinstance(value, str):
        raise UserInputError(f"{type_name} representation: {name} must be a string")
    return value


RESOLVERS: Mapping[str, Resolve] = {
    "Case": _case,
    "Agency": _agency,
    "Category": _category,
    "Area": _area,
}


async def _entity(info: GraphInfo, representation: object) -> object | None:
    if not isinstance(representation, dict):
        raise UserInputError("each representation must be an object with __typename")
    type_name = representation.get("__typename")
    resolve = RESOLVERS.get(type_name) if isinstance(type_name, str) else None
    if resolve is None:
        raise UserInputError(
            f"no entity type {type_name!r} in this subgraph; it resolves {', '.join(RESOLVERS)}"
        )
    return await resolve(info, representation)


@strawberry.type(name="Query")
class FederatedQuery(Query):
    """The graph's entry points and the two a supergraph's gateway asks."""

    # A field of its own: strawberry's relay extension binds a ``node`` field to the first
    # schema built with it, and the plain schema is built in the same process.
    node: relay.Node | None = relay.node(description="Any object by its global id.")

    @strawberry.field(name="_service")
    def service(self, info: GraphInfo) -> Service:
        """The schema, to whoever may introspect it (``limits.introspection``)."""
        allowed = info.context.limits.query.introspection
        if allowed is False or (allowed == "key-only" and not info.context.authenticated):
            raise SchemaWithheld(
                "the subgraph SDL is served as introspection is (limits.introspection); "
                "compose from schema.subgraph.graphql instead"
            )
        return Service(sdl=subgraph_sdl())

    @strawberry.field(
        name="_entities",
        description=(
            "The entities other subgraphs name by key, in the order asked; null for one this "
            "graph does not hold or the caller may not see. At most limits.max_page_size."
        ),
    )
    async def entities(
        self, info: GraphInfo, representations: list[Representation]
    ) -> list[Entity | None]:
        most = info.context.limits.max_page_size
        if len(representations) > most:
            raise UserInputError(
                f"_entities: {len(representations)} representations, at most {most} "
                "(limits.max_page_size) per request"
            )
        # Every lookup is started before any is awaited: the loaders see them all in one tick.
        found = await asyncio.gather(
            *(_entity(info, representation) for representation in representations),
            return_exceptions=True,
        )
        # An exception in the list becomes that entity's error (graphql-core raises it where
        # the element is completed): the entity is null, the others arrive.
        return cast("list[Entity | None]", found)


class SubgraphSchema(ComplaintGraphSchema, strawberry.federation.Schema):
    """The plain schema's behaviour (error translation, the operation's deadline) with
    strawberry's federation schema's ``_Any`` scalar. Our query type brings its own
    ``_service`` and ``_entities``, so strawberry adds neither."""


def federated_schema() -> strawberry.Schema:
    """The subgraph's schema: the plain one, its query type :class:`FederatedQuery`."""
    return build_schema(FederatedQuery, SubgraphSchema)


@cache
def subgraph_sdl() -> str:
    """The plain schema's SDL with the federation ``@link`` and each entity's ``@key``: what
    ``_service { sdl }`` answers, and ``schema.subgraph.graphql`` holds."""
    document = parse(schema_sdl())
    link = SchemaExtensionNode(
        directives=(
            _directive(
                "link",
                url=StringValueNode(value=FEDERATION_SPEC),
                **{"import": ListValueNode(values=(StringValueNode(value="@key"),))},
            ),
        ),
        operation_types=(),
    )
    definitions = [link, *(_with_keys(d) for d in document.definitions)]
    return print_ast(DocumentNode(definitions=tuple(definitions))) + "\n"


def _with_keys(definition: Any) -> Any:
    if not isinstance(definition, ObjectTypeDefinitionNode):
        return definition
    keys = ENTITY_KEYS.get(definition.name.value, ())
    if not keys:
        return definition
    return ObjectTypeDefinitionNode(
        description=definition.description,
        name=definition.name,
        interfaces=definition.interfaces,
        directives=(
            *(definition.directives or ()),
            *(_directive("key", fields=StringValueNode(value=k)) for k in keys),
        ),
        fields=definition.fields,
    )


def _directive(name: str, **arguments: Any) -> ConstDirectiveNode:
    return ConstDirectiveNode(
        name=NameNode(value=name),
        arguments=tuple(
            ConstArgumentNode(name=NameNode(value=key), value=value)
            for key, value in arguments.items()
        ),
    )


__all__ = ["FederatedQuery", "federated_schema", "subgraph_sdl"]
