"""``/export.csv``: any ``cases`` or ``caseStats`` query as a spreadsheet, streamed.

The query runs through the same schema, limits and authentication as ``/graphql``. A ``cases``
query is paged with its cursor until the last page (``first`` is the page size, the largest
allowed when absent), each page written as soon as it arrives; a ``caseStats`` query is one
page of buckets, then the total when it is selected. Columns follow the selection: nested
objects flatten into dotted names (``location.province.nameTh``), a stats key into one group
per grouped dimension (``key.PROVINCE.code``), other lists into one JSON cell. UTF-8 with a
byte-order mark and CRLF lines, so Excel opens Thai text correctly.

Nothing is lost silently: if any source fails, the export is refused (before the first byte)
or cut off (the response ends without its final chunk), never short; ``extensions.warnings``
(statistics from a bounded scan) arrive as JSON in the ``X-Complaint-Graph-Warnings`` header.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any
from urllib.parse import parse_qsl

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    NamedTypeNode,
    NameNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    StringValueNode,
    VariableDefinitionNode,
    VariableNode,
    parse,
    print_ast,
)
from graphql.language.ast import ArgumentNode, DocumentNode, SelectionNode
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from strawberry import Schema
from strawberry.types import ExecutionResult

from gateway.graphql_view import GraphQLView
from resolvers.documents import graphql_core_schema

BOM = "\ufeff"
AFTER = "cgExportAfter"
PAGE_INFO = "cgExportPageInfo"
GROUP_BY = "cgExportGroupBy"
WARNINGS_HEADER = "X-Complaint-Graph-Warnings"
_STATUS = {
    "BAD_USER_INPUT": 400,
    "GRAPHQL_VALIDATION_FAILED": 400,
    "UNAUTHENTICATED": 401,
    "FORBIDDEN": 403,
    "AUDIT_UNAVAILABLE": 503,  # personal data asked for, and the audit log cannot record it
    "SOURCE_TIMEOUT": 504,  # an agency did not answer before the page's deadline
    "REQUEST_TIMEOUT": 504,  # the page itself ran out of time
}

ContextFactory = Callable[[Request], Awaitable[Any]]


class ExportError(Exception):
    """The request cannot be exported; the message says why (HTTP 400)."""


class ExportCutOff(Exception):
    """A later page failed: the stream ends without its last chunk, so clients see an error."""


@dataclasses.dataclass(frozen=True)
class Column:
    """One CSV column: its dotted name and how to read it from a row's JSON object."""

    name: str
    path: tuple[str | int, ...]
    as_json: bool = False

    def read(self, row: Any) -> str:
        value = row
        for step in self.path:
            if isinstance(step, int):
                value = value[step] if isinstance(value, list) and step < len(value) else None
            else:
                value = value.get(step) if isinstance(value, dict) else None
        if value is None:
            return ""
        if self.as_json or isinstance(value, list | dict):
            return json.dumps(value, ensure_ascii=False)
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)


class CsvExport:
    """The ``/export.csv`` endpoint over a schema; ``context`` builds an authenticated
    per-request context exactly as the GraphQL view does."""

    @classmethod
    def for_view(cls, view: GraphQLView, max_page_size: int) -> CsvExport:
        """Served beside ``view``: its schema, its context, its authentication."""

        async def context(request: Request) -> Any:
            return await view.get_context(request, Response())

        assert isinstance(view.schema, Schema)
        return cls(view.schema, context, max_page_size)

    def __init__(self, schema: Schema, context: ContextFactory, max_page_size: int) -> None:
        self.schema = schema
        self.graphql: GraphQLSchema = graphql_core_schema(schema)
        self.context = context
        self.max_page_size = max_page_size

    async def endpoint(self, request: Request) -> Response:
        try:
            query, variables, operation_name = await _request_data(request)
            plan = self._plan(query, operation_name)
        except ExportError as exc:
            return JSONResponse({"errors": [{"message": str(exc)}]}, status_code=400)
        variables = dict(variables)
        if plan.field == "cases":
            variables[AFTER] = plan.first_after(variables)
        result = await self._execute(request, plan, variables)
        refused = _refusal(result)
        if refused is not None:
            return refused
        headers = {"Content-Disposition": f'attachment; filename="{plan.field}.csv"'}
        warnings = (result.extensions or {}).get("warnings")
        if warnings:  # e.g. a bounded statistics scan: the figures are partial, and say so
            headers[WARNINGS_HEADER] = json.dumps(warnings, ensure_ascii=True)
        return StreamingResponse(
            self._stream(request, plan, variables, result),
            media_type="text/csv; charset=utf-8",
            headers=headers,
        )

    async def _execute(
        self, request: Request, plan: Plan, variables: dict[str, Any]
    ) -> ExecutionResult:
        return await self.schema.execute(
            plan.document,
            variable_values=variables,
            context_value=await self.context(request),
            operation_name=plan.operation_name,
        )

    async def _stream(
        self, request: Request, plan: Plan, variables: dict[str, Any], first: ExecutionResult
    ) -> AsyncIterator[bytes]:
        data = _root(first, plan)
        columns = plan.columns(data)
        yield (BOM + _csv_line([column.name for column in columns])).encode()
        result: ExecutionResult | None = first
        while result is not None:
            data = _root(result, plan)
            yield _csv_rows(columns, plan.rows(data)).encode()
            result = None
            info = data.get(PAGE_INFO) if plan.field == "cases" else None
            if info is not None and info["hasNextPage"]:
                variables = {**variables, AFTER: info["endCursor"]}
                result = await self._execute(request, plan, variables)
                if result.errors:
                    raise ExportCutOff("; ".join(e.message for e in result.errors))

    def _plan(self, query: str, operation_name: str | None) -> Plan:
        try:
            document = parse(query)
        except GraphQLError as exc:
            raise ExportError(f"query does not parse: {exc.message}") from None
        operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        if operation_name is not None:
            operations = [o for o in operations if o.name and o.name.value == operation_name]
        if len(operations) != 1:
            raise ExportError("the document must hold exactly one operation (or name one)")
        operation = operations[0]
        if operation.operation is not OperationType.QUERY:
            raise ExportError("only queries can be exported")
        fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        fields = [s for s in operation.selection_set.selections if isinstance(s, FieldNode)]
        fields = [f for f in fields if f.name.value != "__typename"]
        if len(fields) != 1 or fields[0].name.value not in ("cases", "caseStats"):
            raise ExportError("select exactly one root field, `cases` or `caseStats`, to export")
        return Plan.of(self.graphql, document, operation, fields[0], fragments, self.max_page_size)


@dataclasses.dataclass
class Plan:
    """The rewritten query and how its result becomes rows."""

    field: str
    key: str
    document: str
    operation_name: str | None
    row_selection: tuple[str, ...]  # where the rows are: ("edges",) or ("buckets",)
    row_type: GraphQLObjectType
    row_fields: list[FieldNode]
    total_fields: list[FieldNode] | None
    fragments: dict[str, FragmentDefinitionNode]
    after: ArgumentNode | None
    schema: GraphQLSchema

    @classmethod
    def of(
        cls,
        schema: GraphQLSchema,
        document: DocumentNode,
        operation: OperationDefinitionNode,
        root: FieldNode,
        fragments: dict[str, FragmentDefinitionNode],
        max_page_size: int,
    ) -> Plan:
        key = root.alias.value if root.alias else root.name.value
        query_type = schema.query_type
        assert query_type is not None
        root_type = _object(query_type.fields[root.name.value].type)
        selections = _fields(root.selection_set, fragments)
        if root.name.value == "cases":
            edges = [f for f in selections if f.name.value == "edges"]
            if not edges:
                raise ExportError("select `edges { node { … } }` in cases to export")
            edge_type = _object(root_type.fields["edges"].type)
            rewritten = _cases_query(document, operation, root, edges, max_page_size)
            after = next((a for a in root.arguments or () if a.name.value == "after"), None)
            return cls(
                "cases",
                key,
                rewritten,
                operation.name.value if operation.name else None,
                ("edges",),
                edge_type,
                _fields(edges[0].selection_set, fragments),
                None,
                fragments,
                after,
                schema,
            )
        buckets = [f for f in selections if f.name.value == "buckets"]
        totals = [f for f in selections if f.name.value == "total"]
        if not buckets and not totals:
            raise ExportError("select `buckets { … }` or `total { … }` in caseStats to export")
        rewritten = _stats_query(document, operation, root)
        return cls(
            "caseStats",
            key,
            rewritten,
            operation.name.value if operation.name else None,
            ("buckets",),
            _object(root_type.fields["buckets"].type),
            _fields(buckets[0].selection_set, fragments) if buckets else [],
            _fields(totals[0].selection_set, fragments) if totals else None,
            fragments,
            None,
            schema,
        )

    def first_after(self, variables: dict[str, Any]) -> str | None:
        """The cursor the user's own query starts after, if it names one."""
        value = self.after.value if self.after is not None else None
        if isinstance(value, VariableNode):
            found = variables.get(value.name.value)
            return found if isinstance(found, str) else None
        if isinstance(value, StringValueNode):
            return value.value
        return None

    def columns(self, data: dict[str, Any]) -> list[Column]:
        fields = self.row_fields or (self.total_fields or [])
        if self.field == "cases":
            return self._walk(self.row_type, fields, (), "", strip_node=True)
        dimensions: list[str] = list(data.get(GROUP_BY) or [])
        columns = self._walk(self.row_type, fields, (), "", dimensions=dimensions)
        return columns

    def rows(self, data: dict[str, Any]) -> list[Any]:
        if self.field == "cases":
            return list(data.get("edges") or [])
        rows = list(data.get("buckets") or [])
        if self.total_fields is not None and data.get("total") is not None:
            rows.append(data["total"])
        return rows

    def _walk(
        self,
        parent: GraphQLObjectType,
        fields: Sequence[FieldNode],
        path: tuple[str | int, ...],
        prefix: str,
        *,
        strip_node: bool = False,
        dimensions: Sequence[str] = (),
    ) -> list[Column]:
        columns: list[Column] = []
        for field in fields:
            name = field.alias.value if field.alias else field.name.value
            if field.name.value == "__typename":
                columns.append(Column(prefix + name, (*path, name)))
                continue
            definition = parent.fields[field.name.value]
            kind = _unwrap(definition.type)
            is_list = isinstance(kind, GraphQLList)
            inner = _object_or_none(definition.type)
            here = (*path, name)
            label = "" if strip_node and name == "node" else f"{prefix}{name}."
            if inner is not None and field.selection_set is not None and not is_list:
                sub = _fields(field.selection_set, self.fragments)
                columns += self._walk(inner, sub, here, label if label else prefix)
            elif inner is not None and is_list and name == "key" and dimensions:
                sub = _fields(field.selection_set, self.fragments)
                for index, dimension in enumerate(dimensions):
                    columns += self._walk(
                        inner, sub, (*here, index), f"{prefix}{name}.{dimension}."
                    )
            else:
                columns.append(Column(prefix + name, here, as_json=is_list))
        return columns


def _cases_query(
    document: DocumentNode,
    operation: OperationDefinitionNode,
    root: FieldNode,
    edges: list[FieldNode],
    max_page_size: int,
) -> str:
    """The user's cases query with the cursor as a variable, a page size, and pageInfo."""
    arguments = [a for a in root.arguments or () if a.name.value != "after"]
    arguments.append(ArgumentNode(name=NameNode(value="after"), value=_variable(AFTER)))
    if not any(a.name.value == "first" for a in arguments):
        arguments.append(
            ArgumentNode(name=NameNode(value="first"), value=IntValueNode(value=str(max_page_size)))
        )
    page_info = FieldNode(
        alias=NameNode(value=PAGE_INFO),
        name=NameNode(value="pageInfo"),
        selection_set=SelectionSetNode(
            selections=(
                FieldNode(name=NameNode(value="hasNextPage")),
                FieldNode(name=NameNode(value="endCursor")),
            )
        ),
    )
    field = dataclasses.replace(
        root,
        arguments=tuple(arguments),
        selection_set=SelectionSetNode(selections=(*edges, page_info)),
    )
    variables = [v for v in operation.variable_definitions or () if v.variable.name.value != AFTER]
    variables.append(
        VariableDefinitionNode(
            variable=_variable(AFTER), type=NamedTypeNode(name=NameNode(value="String"))
        )
    )
    return _replace_root(document, operation, field, tuple(variables))


def _stats_query(
    document: DocumentNode, operation: OperationDefinitionNode, root: FieldNode
) -> str:
    assert root.selection_set is not None
    group_by = FieldNode(alias=NameNode(value=GROUP_BY), name=NameNode(value="groupBy"))
    field = dataclasses.replace(
        root,
        selection_set=SelectionSetNode(selections=(*root.selection_set.selections, group_by)),
    )
    return _replace_root(document, operation, field, operation.variable_definitions or ())


def _replace_root(
    document: DocumentNode,
    operation: OperationDefinitionNode,
    field: FieldNode,
    variables: Sequence[VariableDefinitionNode],
) -> str:
    new_operation = dataclasses.replace(
        operation,
        variable_definitions=tuple(variables),
        selection_set=SelectionSetNode(selections=(field,)),
    )
    definitions = tuple(
        new_operation if definition is operation else definition
        for definition in document.definitions
    )
    return print_ast(dataclasses.replace(document, definitions=definitions))


def _variable(name: str) -> VariableNode:
    return VariableNode(name=NameNode(value=name))


def _fields(
    selection_set: SelectionSetNode | None, fragments: dict[str, FragmentDefinitionNode]
) -> list[FieldNode]:
    """The fields of a selection set in order, fragments inlined."""
    found: list[FieldNode] = []
    selections: Sequence[SelectionNode] = selection_set.selections if selection_set else ()
    for selection in selections:
        if isinstance(selection, FieldNode):
            found.append(selection)
        elif isinstance(selection, InlineFragmentNode):
            found += _fields(selection.selection_set, fragments)
        elif isinstance(selection, FragmentSpreadNode):
            fragment = fragments.get(selection.name.value)
            if fragment is None:
                raise ExportError(f"fragment {selection.name.value} is not defined")
            found += _fields(fragment.selection_set, fragments)
    return found


def _unwrap(kind: GraphQLOutputType) -> GraphQLOutputType:
    return kind.of_type if isinstance(kind, GraphQLNonNull) else kind


def _object_or_none(kind: GraphQLOutputType) -> GraphQLObjectType | None:
    while isinstance(kind, GraphQLNonNull | GraphQLList):
        kind = kind.of_type
    return kind if isinstance(kind, GraphQLObjectType) else None


def _object(kind: GraphQLOutputType) -> GraphQLObjectType:
    found = _object_or_none(kind)
    assert found is not None
    return found


def _root(result: ExecutionResult, plan: Plan) -> dict[str, Any]:
    data = result.data or {}
    root = data.get(plan.key)
    return root if isinstance(root, dict) else {}


def _refusal(result: ExecutionResult) -> Response | None:
    """An error response when the first page has any error: a CSV must not be silently short."""
    if not result.errors:
        root = next(iter((result.data or {}).values()), None)
        if root is None:
            return JSONResponse({"errors": [{"message": "nothing to export"}]}, status_code=400)
        return None
    # One error per distinct problem: a refused page of 500 reveals is one refusal, not 500.
    distinct = {(e.message, str((e.extensions or {}).get("code"))): e for e in result.errors}
    errors = [error.formatted for error in distinct.values()]
    codes = {(error.extensions or {}).get("code") for error in result.errors}
    if result.data is None and not codes - {None}:
        status = 400  # the document did not validate
    else:
        statuses = {_STATUS.get(str(code), 502) for code in codes}
        status = min(statuses) if statuses else 502
    return JSONResponse({"errors": errors}, status_code=status)


async def _request_data(request: Request) -> tuple[str, dict[str, Any], str | None]:
    """``query``, ``variables`` and ``operationName`` from the query string, a JSON body or a
    form."""
    if request.method == "GET":
        source: Any = request.query_params
    elif request.headers.get("content-type", "").startswith("application/json"):
        try:
            source = await request.json()
        except ValueError:
            raise ExportError("the body is not valid JSON") from None
        if not isinstance(source, dict):
            raise ExportError("the JSON body must be an object with a `query`")
    elif request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        source = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
    else:
        raise ExportError("send the query as JSON, a form, or in the URL (GET)")
    query = source.get("query")
    if not isinstance(query, str) or not query.strip():
        raise ExportError("give the GraphQL `query` to export")
    variables: Any = source.get("variables") or {}
    if isinstance(variables, str):
        try:
            variables = json.loads(variables)
        except ValueError:
            raise ExportError("`variables` is not valid JSON") from None
    if not isinstance(variables, dict):
        raise ExportError("`variables` must be a JSON object")
    name = source.get("operationName") or None
    if name is not None and not isinstance(name, str):
        raise ExportError("`operationName` must be a string")
    return query, variables, name


def _csv_line(values: Sequence[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(values)
    return buffer.getvalue()


def _csv_rows(columns: Sequence[Column], rows: Sequence[Any]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in rows:
        writer.writerow([column.read(row) for column in columns])
    return buffer.getvalue()
