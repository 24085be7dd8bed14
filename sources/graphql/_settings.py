"""The ``kind: graphql`` keys: the agency's own GraphQL documents and where its fields are.

The operator writes the documents the agency's schema needs (they are the agency's types and
fields, not ours) and declares the variables the gateway fills: page size and cursor or
offset, one object holding every pushed-down condition, the order, the ids of a batch. The
documents are parsed when the configuration is read, so a typo is a configuration error.
"""

from __future__ import annotations

from typing import Any, Literal

from graphql import GraphQLError, OperationDefinitionNode, parse
from pydantic import Field, field_validator, model_validator

from sources._settings import Auth, PushedConditions, SourceSettings, Strict, known_zone
from sources.rest._settings import CaseFields, HistoryFields


def _one_operation(query: str) -> str:
    try:
        document = parse(query)
    except GraphQLError as exc:
        raise ValueError(f"not a GraphQL document: {exc.message}") from None
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if len(operations) != 1 or operations[0].operation.value != "query":
        raise ValueError("give exactly one query operation")
    return query


class Pagination(Strict):
    """Relay connections (``first``/``after``, the page's ``pageInfo``) or limit and offset."""

    style: Literal["relay", "offset"] = "relay"
    page_size: int = Field(default=100, ge=1, le=1000)
    size_variable: str = Field(default="first", description="Page size ('first' or 'limit').")
    after_variable: str = Field(default="after", description="relay: the cursor variable.")
    offset_variable: str = Field(default="offset", description="offset: the offset variable.")
    end_cursor: str | None = Field(
        default=None, description="relay: dotted path of pageInfo.endCursor in the data."
    )
    has_next_page: str | None = Field(
        default=None, description="relay: dotted path of pageInfo.hasNextPage in the data."
    )

    @model_validator(mode="after")
    def _relay_needs_page_info(self) -> Pagination:
        if self.style == "relay" and not (self.end_cursor and self.has_next_page):
            raise ValueError("style 'relay' needs end_cursor and has_next_page (dotted paths)")
        return self


class Filters(PushedConditions):
    """Where each pushed-down condition goes inside the one object variable ``variable``: a
    dotted path per condition, e.g. ``statusCode.in`` (PostGraphile's connection filter),
    ``status._in`` (Hasura), ``status`` (another complaint-graph). Statuses, categories,
    provinces and districts are sent as lists of the agency's own codes, times as ISO 8601
    text. A condition without a path is applied in the gateway. Declare one only where the
    agency's filter keeps every case ours would (the gateway re-checks what comes back)."""

    variable: str = "filter"


class Sort(Strict):
    """The order variable and its value (any JSON: an enum list, an object) for each order."""

    variable: str = "orderBy"
    received_at_desc: Any = None
    received_at_asc: Any = None
    updated_at_desc: Any = None
    updated_at_asc: Any = None


class ListQuery(Strict):
    query: str = Field(description="The search document, with the variables named below.")
    items: str = Field(description="Dotted path of the page's items in the data.")
    node: str = Field(
        default="", description="Dotted path of the case in each item ('node' for Relay edges)."
    )
    total: str | None = Field(default=None, description="Dotted path of the total match count.")
    pagination: Pagination
    filters: Filters = Field(default_factory=Filters)
    sort: Sort | None = None
    natural_order: Literal["received_at_desc", "received_at_asc"] | None = None
    max_pages: int = Field(
        default=20, ge=1, description="Pages one search may read when filtering in the gateway."
    )

    @field_validator("query")
    @classmethod
    def _parses(cls, value: str) -> str:
        return _one_operation(value)


class ByIds(Strict):
    """A document that reads several cases (or their timelines) in one request.

    ``batch: ids``: the document takes the list variable ``variable`` (e.g. a connection
    filtered by ``{rowId: {in: $ids}}``) and ``items`` is the dotted path of the result list.
    ``batch: aliases``: the document reads one case by the variable ``variable`` (e.g.
    ``complaintByRowId(rowId: $id)``); the gateway repeats its one root field under an alias
    per id, in one request, and ``items`` is the dotted path inside each (``''``: the field's
    value itself)."""

    query: str
    batch: Literal["ids", "aliases"]
    variable: str = "ids"
    items: str = ""
    max_batch: int = Field(default=100, ge=1, le=1000)

    @field_validator("query")
    @classmethod
    def _parses(cls, value: str) -> str:
        return _one_operation(value)

    @model_validator(mode="after")
    def _aliases_have_one_root_field(self) -> ByIds:
        (operation,) = [
            d for d in parse(self.query).definitions if isinstance(d, OperationDefinitionNode)
        ]
        declared = {v.variable.name.value for v in operation.variable_definitions or ()}
        if self.variable not in declared:
            raise ValueError(f"the query declares no ${self.variable} (the variable key)")
        if self.batch == "aliases" and len(operation.selection_set.selections) != 1:
            raise ValueError("batch 'aliases' needs a document with exactly one root field")
        if self.batch == "ids" and not self.items:
            raise ValueError("batch 'ids' needs items: the dotted path of the list in the data")
        return self


class History(Strict):
    """Status changes and notes: embedded in each case (read with ``fetch``, and from a
    search page whose items carry them), or a document of their own."""

    embedded: str | None = Field(
        default=None, description="Dotted path of the entries inside a case."
    )
    fetch: ByIds | None = Field(default=None, description="A document of the entries by case.")
    case_id: str | None = Field(
        default=None, description="batch ids: dotted path of the case id in each entry."
    )
    fields: HistoryFields

    @model_validator(mode="after")
    def _one_way_to_get_it(self) -> History:
        if (self.embedded is None) == (self.fetch is None):
            raise ValueError("give either embedded (entries inside each case) or fetch")
        if self.fetch is not None and self.fetch.batch == "ids" and self.case_id is None:
            raise ValueError("a batch 'ids' history needs case_id: where each entry names its case")
        return self


class GraphQLSettings(SourceSettings):
    url: str = Field(description="The agency's GraphQL endpoint (POST, JSON).")
    headers: dict[str, str] = Field(default_factory=dict)
    auth: Auth | None = None
    max_connections: int = Field(default=10, ge=1, le=200)
    id_type: Literal["string", "int"] = Field(
        default="string", description="How ids are sent: the type of the agency's id argument."
    )
    timezone: str = Field(
        default="UTC",
        description="The zone of times the API gives without an offset (e.g. Asia/Bangkok).",
    )
    list: ListQuery
    fetch: ByIds
    history: History | None = None
    fields: CaseFields

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return known_zone(value)
