"""Limits on what one GraphQL document may ask, checked before anything is executed.

Every refusal is a GraphQL error whose ``extensions`` say which limit (``code``), its value
(``limit``) and what the document measured (``value``), e.g.
``{"code": "QUERY_TOO_COSTLY", "limit": 10000, "value": 81001}``.

* **Tokens** (``TOO_MANY_TOKENS``): graphql-core's parser stops after ``max_tokens`` lexical
  tokens (or as many comments), so a huge document costs no more than a small one. The parser
  stops counting there, so the error has ``limit`` but no ``value``.
* **Depth** (``QUERY_TOO_DEEP``): the most fields nested inside each other on one path, leaves
  included: ``{ cases { totalCount } }`` is 2.
* **Aliases** (``TOO_MANY_ALIASES``): aliased fields, counted once per place a fragment is spread.
* **Cost** (``QUERY_TOO_COSTLY``): an estimate of how many objects the operation resolves, see
  :class:`DocumentMeasure`.

Strawberry's own ``QueryDepthLimiter`` and ``MaxAliasesLimiter`` walk every fragment spread anew,
which is exponential in the number of fragments spreading each other: a 400-byte document of
nine fragments each spread ten times in the next kept one of them busy for more than 20 seconds
(measured; the event loop is blocked meanwhile). Here depth, aliases and cost are measured in one
walk that visits each fragment once per page size, so the work is linear in the document.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Hashable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLOutputType,
    GraphQLSchema,
    GraphQLSyntaxError,
    InlineFragmentNode,
    IntValueNode,
    ListValueNode,
    NoSchemaIntrospectionCustomRule,
    NullValueNode,
    ObjectValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    get_named_type,
    get_operation_ast,
    is_interface_type,
    is_object_type,
    validate,
)
from graphql.execution import get_variable_values
from graphql.language import ast
from graphql.type import SchemaMetaFieldDef, TypeMetaFieldDef, TypeNameMetaFieldDef
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionContext

from resolvers.documents import (
    MAX_MEASURES,
    STANDARD_RULES,
    CheckedDocument,
    DocumentCache,
    graphql_core_schema,
)

Introspection = bool | Literal["key-only"]


@dataclass(frozen=True)
class QueryLimits:
    """What one document may ask; the gateway builds it from ``limits:`` in its configuration."""

    max_depth: int = 20
    max_aliases: int = 30
    max_tokens: int = 5000
    max_cost: int = 10000
    list_size: int = 5
    timeout_seconds: float = 30.0
    introspection: Introspection = True
    trusted_documents: Mapping[str, str] | None = None
    trusted_documents_for: Literal["everyone", "anonymous"] = "everyone"
    scanned_case_cost: float = 0.02
    """What one case a source reads only to filter it out costs (decoded and compared, never
    resolved): 50 of them cost as much as one object of the answer."""
    source_scans: tuple[SourceScan, ...] = ()
    """Sources that apply some filters after fetching, and what that costs (the gateway fills
    it in from each source's capabilities)."""


@dataclass(frozen=True)
class SourceScan:
    """A source that reads up to ``cases`` cases for a search using a filter not in
    ``pushed`` (an agency API without a ``text`` parameter reads its whole list for one)."""

    source: str
    pushed: frozenset[str]
    cases: int


_ROUTING_FILTERS = frozenset({"source", "agency"})
"""Filter fields that choose sources, never applied inside one."""


def caller_is_authenticated(context: object) -> bool:
    """Whether the request proved who it is: the auth layer answers by giving the request
    context a true ``authenticated`` attribute (a field or a property); anything else is
    anonymous. Key-only introspection and trusted documents for anonymous callers ask this."""
    return getattr(context, "authenticated", False) is True


def document_hash(document: str) -> str:
    """The SHA-256 of a document's UTF-8 text in lower-case hex, as Apollo and Relay compute it."""
    return hashlib.sha256(document.encode()).hexdigest()


def limit_error(
    message: str, code: str, limit: int | float, value: int | float | None = None, **more: Any
) -> GraphQLError:
    extensions: dict[str, Any] = {"code": code, "limit": limit}
    if value is not None:
        extensions["value"] = value
    return GraphQLError(message, extensions={**extensions, **more})


@dataclass(frozen=True)
class DocumentMeasure:
    """Depth, aliases and cost of a selection, relative to one resolution of its parent.

    The cost model: every field that returns an object (or a list of objects) costs 1 each time
    it resolves; a scalar or enum leaf costs 0, since it is read from an object already loaded.
    A list field resolves its sub-selection once per element: the ``first`` argument of the
    connection above it (``edges`` of ``cases(first: 500)`` has 500 elements; ``first``
    absent means the configured default page size, and a ``first`` over the maximum page size
    counts as the maximum, which the field itself refuses), otherwise ``limits.list_size``
    (``referrals``, ``timeline``, ``relatedCases``: lists whose length a client cannot choose).
    So ``cases(first: 500) { edges { node { referrals { counterpart { title } } } } }`` costs
    ``1 + (1 + 500 * (1 + (1 + 5 * 1)))`` = 3502, and each further level of referrals multiplies
    by five again. Introspection fields are counted like any other: they are lists too.
    """

    depth: int = 0
    aliases: int = 0
    cost: int = 0
    scans: frozenset[tuple[str, str]] = frozenset()
    """(source, filter) pairs that made a list field cost a scan, for the refusal's message."""

    def __add__(self, other: DocumentMeasure) -> DocumentMeasure:
        return DocumentMeasure(
            max(self.depth, other.depth),
            self.aliases + other.aliases,
            self.cost + other.cost,
            self.scans | other.scans,
        )


class _Walker:
    """Measures operations; each (fragment, page size) pair is measured once and remembered."""

    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: Mapping[str, FragmentDefinitionNode],
        variables: Mapping[str, Any],
        defaults: Mapping[str, Any],
        page_sizes: tuple[int, int],
        list_size: int,
        source_scans: tuple[SourceScan, ...] = (),
        scanned_case_cost: float = 0.0,
    ) -> None:
        self.source_scans = source_scans
        self.scanned_case_cost = scanned_case_cost
        self.schema = schema
        self.fragments = fragments
        self.variables = variables
        self.defaults = defaults
        self.default_page, self.max_page = page_sizes
        self.list_size = list_size
        self.known: dict[tuple[str, int | None], DocumentMeasure] = {}
        self.read: set[str] = set()
        """The names of the variables the walk read (as page sizes)."""
        self.in_progress: set[str] = set()

    def operation(self, operation: OperationDefinitionNode) -> DocumentMeasure:
        root = self.schema.get_root_type(operation.operation)
        return self.selections(operation.selection_set, root, None)

    def selections(
        self, selection_set: SelectionSetNode, parent: GraphQLNamedType | None, page: int | None
    ) -> DocumentMeasure:
        total = DocumentMeasure()
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                total += self.field(selection, parent, page)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                scope = self.schema.get_type(condition.name.value) if condition else parent
                total += self.selections(selection.selection_set, scope, page)
            elif isinstance(selection, FragmentSpreadNode):
                total += self.fragment(selection.name.value, page)
        return total

    def fragment(self, name: str, page: int | None) -> DocumentMeasure:
        remembered = self.known.get((name, page))
        if remembered is not None:
            return remembered
        definition = self.fragments.get(name)
        if definition is None or name in self.in_progress:
            return DocumentMeasure()  # unknown or cyclic: the standard rules report those
        self.in_progress.add(name)
        scope = self.schema.get_type(definition.type_condition.name.value)
        measured = self.selections(definition.selection_set, scope, page)
        self.in_progress.discard(name)
        self.known[(name, page)] = measured
        return measured

    def field(
        self, node: FieldNode, parent: GraphQLNamedType | None, page: int | None
    ) -> DocumentMeasure:
        aliases = 1 if node.alias else 0
        definition = _field_definition(self.schema, parent, node.name.value)
        if node.selection_set is None:
            return DocumentMeasure(1, aliases, 0)
        field_type = definition.type if definition is not None else None
        inner_page = self.page_size(node) if definition and "first" in definition.args else None
        named = get_named_type(field_type) if field_type is not None else None
        inner = self.selections(node.selection_set, named, inner_page)
        elements = (page or self.list_size) if _is_list(field_type) else 1
        if definition is not None and REPRESENTATIONS in definition.args:
            elements = self.representations(node)
        scanned, scans = 0, frozenset[tuple[str, str]]()
        if inner_page is not None and definition is not None and "filter" in definition.args:
            scanned, scans = self.scan_cost(node)
        return DocumentMeasure(
            1 + inner.depth,
            aliases + inner.aliases,
            1 + scanned + elements * inner.cost,
            inner.scans | scans,
        )

    def scan_cost(self, node: FieldNode) -> tuple[int, frozenset[tuple[str, str]]]:
        """What a filtered connection costs the sources that must apply part of its filter
        after fetching: every case each of them reads, not the page asked for. Thirty aliases
        of ``cases(first: 1, filter: {text: "..."})`` looked cheap and read an agency's whole
        list thirty times."""
        if not self.source_scans:
            return 0, frozenset()
        used = self.filter_fields(node) - _ROUTING_FILTERS
        cost, scans = 0, set[tuple[str, str]]()
        for scan in self.source_scans:
            unpushed = used - scan.pushed
            if unpushed:
                cost += math.ceil(scan.cases * self.scanned_case_cost)
                scans.update((scan.source, name) for name in unpushed)
        return cost, frozenset(scans)

    def filter_fields(self, node: FieldNode) -> frozenset[str]:
        """The fields a connection's ``filter`` argument sets (not null), literal or variable."""
        argument = next((a for a in node.arguments or () if a.name.value == "filter"), None)
        if argument is None:
            return frozenset()
        value = argument.value
        if isinstance(value, VariableNode):
            name = value.name.value
            self.read.add(name)
            given = self.variables.get(name)
            return _filter_keys(given)
        if isinstance(value, ObjectValueNode):
            return frozenset(
                field.name.value
                for field in value.fields
                if not isinstance(field.value, NullValueNode)
            )
        return frozenset()

    def representations(self, node: FieldNode) -> int:
        """How many entities a federation ``_entities`` field is asked for: the length of
        its ``representations`` list (clamped as the field refuses more than a page)."""
        argument = next((a for a in node.arguments or () if a.name.value == REPRESENTATIONS), None)
        value: Any = None
        if argument is not None and isinstance(argument.value, ListValueNode):
            value = argument.value.values
        elif argument is not None and isinstance(argument.value, VariableNode):
            name = argument.value.name.value
            self.read.add(name)
            value = self.variables.get(name)
        return min(len(value), self.max_page) if isinstance(value, list | tuple) else 1

    def page_size(self, node: FieldNode) -> int:
        argument = next((a for a in node.arguments or () if a.name.value == "first"), None)
        value: Any = None
        if argument is not None and isinstance(argument.value, IntValueNode):
            value = int(argument.value.value)
        elif argument is not None and isinstance(argument.value, VariableNode):
            name = argument.value.name.value
            self.read.add(name)
            value = self.variables.get(name, self.defaults.get(name))
        if not isinstance(value, int) or isinstance(value, bool):
            return self.default_page
        return max(0, min(value, self.max_page))


def _filter_keys(value: object) -> frozenset[str]:
    """The set fields of a filter given as a variable (anything else sets none)."""
    if not isinstance(value, dict):
        return frozenset()
    keys = (key for key, given in value.items() if isinstance(key, str) and given is not None)
    return frozenset(list(keys)[:64])  # a filter has a dozen fields; a memo key stays small


def _field_definition(
    schema: GraphQLSchema, parent: GraphQLNamedType | None, name: str
) -> GraphQLField | None:
    if name == "__typename":
        return TypeNameMetaFieldDef
    if parent is schema.query_type and name == "__schema":
        return SchemaMetaFieldDef
    if parent is schema.query_type and name == "__type":
        return TypeMetaFieldDef
    if is_object_type(parent) or is_interface_type(parent):
        fields: dict[str, GraphQLField] = parent.fields
        return fields.get(name)
    return None


def _is_list(field_type: GraphQLOutputType | None) -> bool:
    if isinstance(field_type, GraphQLNonNull):
        field_type = field_type.of_type
    return isinstance(field_type, GraphQLList)


def _variable_defaults(operation: OperationDefinitionNode) -> dict[str, Any]:
    defaults: dict[str, Any] = {}
    for definition in operation.variable_definitions or ():
        if isinstance(definition.default_value, ast.IntValueNode):
            defaults[definition.variable.name.value] = int(definition.default_value.value)
    return defaults


def measure_errors(
    schema: GraphQLSchema,
    document: DocumentNode,
    limits: QueryLimits,
    variables: Mapping[str, Any],
    page_sizes: tuple[int, int],
    memo: dict[Hashable, Any] | None = None,
) -> list[GraphQLError]:
    """An error for each operation of ``document`` over the depth, alias or cost limit.

    A walk of its own rather than a validation rule, after the cached standard validation:
    it reads the variables. With ``memo`` (kept with the cached document), the measures are
    remembered by everything they depend on besides the document: the configured list and
    page sizes and the values of the variables the walk read (``first`` of a connection),
    so the same document with the same page size is walked once."""
    read: tuple[str, ...] | None = memo.get(_READ) if memo is not None else None
    measures = None
    if memo is not None and read is not None:
        measures = memo.get(_measure_key(read, limits, variables, page_sizes))
    if measures is None:
        measures, walked = _measures(schema, document, limits, variables, page_sizes)
        if memo is not None:
            read = read or tuple(sorted(walked))  # the same names for any values
            if len(memo) > MAX_MEASURES:
                memo.clear()
            memo[_READ] = read
            memo[_measure_key(read, limits, variables, page_sizes)] = measures
    if all(_within(measured, limits) for measured in measures):
        return []  # nearly every request: no error to make
    return [error for measured in measures for error in _over_limits(measured, limits)]


def _within(measured: DocumentMeasure, limits: QueryLimits) -> bool:
    """No limit exceeded (what :func:`_over_limits` would find nothing over)."""
    return (
        measured.depth <= limits.max_depth
        and measured.aliases <= limits.max_aliases
        and measured.cost <= limits.max_cost
    )


def _measure_key(
    read: tuple[str, ...],
    limits: QueryLimits,
    variables: Mapping[str, Any],
    page_sizes: tuple[int, int],
) -> Hashable:
    """What a document's measure depends on besides the document: the configured sizes and
    what the walk makes of each variable it reads (``read``, learnt from its first walk)."""
    _, most = page_sizes
    return (limits.list_size, page_sizes, *(_page_key(variables, name, most) for name in read))


def _page_key(variables: Mapping[str, Any], name: str, most: int) -> Hashable:
    """What the walk makes of variable ``name`` as a page size (``_Walker.page_size``): absent
    (the document's default applies), a number (clamped as the walk clamps it), or anything
    else (the configured default page). Never the value itself: a client's megabyte string
    is not kept as a key."""
    if name not in variables:
        return _UNSET
    value = variables[name]
    if isinstance(value, list):  # federation representations: their number counts
        return (_A_LIST, min(len(value), most))
    if isinstance(value, dict):  # a filter: which of its fields are set
        return _filter_keys(value)
    if not isinstance(value, int) or isinstance(value, bool):
        return _NOT_A_NUMBER
    return max(0, min(value, most))


_READ = "variables read"
_UNSET = "absent"
_NOT_A_NUMBER = "not a number"
_A_LIST = "a list"

REPRESENTATIONS = "representations"
"""The argument of a federation subgraph's ``_entities``: each element is one entity resolved
(resolvers/federation.py), so the walk counts them as a connection's ``first``."""


def _measures(
    schema: GraphQLSchema,
    document: DocumentNode,
    limits: QueryLimits,
    variables: Mapping[str, Any],
    page_sizes: tuple[int, int],
) -> tuple[list[DocumentMeasure], set[str]]:
    """Each operation's measure, and the names of the variables the walk read."""
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    measures: list[DocumentMeasure] = []
    read: set[str] = set()
    for operation in document.definitions:
        if not isinstance(operation, OperationDefinitionNode):
            continue
        if schema.get_root_type(operation.operation) is None:
            continue  # the standard rules say the schema has no such operation type
        walker = _Walker(
            schema,
            fragments,
            variables,
            _variable_defaults(operation),
            page_sizes,
            limits.list_size,
            limits.source_scans,
            limits.scanned_case_cost,
        )
        measures.append(walker.operation(operation))
        read |= walker.read
    return measures, read


_SAFE_INTEGER = 2**53 - 1
"""Measures past this are reported as this: JSON clients read numbers as doubles."""


def _over_limits(measured: DocumentMeasure, limits: QueryLimits) -> Iterator[GraphQLError]:
    measured = DocumentMeasure(
        measured.depth,
        min(measured.aliases, _SAFE_INTEGER),
        min(measured.cost, _SAFE_INTEGER),
        measured.scans,
    )
    if measured.depth > limits.max_depth:
        yield limit_error(
            f"The query is {measured.depth} fields deep; the limit is {limits.max_depth} "
            "(limits.max_depth).",
            "QUERY_TOO_DEEP",
            limits.max_depth,
            measured.depth,
        )
    if measured.aliases > limits.max_aliases:
        yield limit_error(
            f"The query uses {measured.aliases} aliases; the limit is {limits.max_aliases} "
            "(limits.max_aliases).",
            "TOO_MANY_ALIASES",
            limits.max_aliases,
            measured.aliases,
        )
    if measured.cost > limits.max_cost:
        advice = "Ask for smaller pages (first) or fewer nested lists."
        more: dict[str, Any] = {}
        if measured.scans:
            named = sorted({f"{name} on {source}" for source, name in measured.scans})
            advice = (
                "It counts every case a source must read to apply a filter it cannot apply "
                f"itself ({', '.join(named)}), once per use: use that filter less often, or "
                "narrow it with filters those sources apply."
            )
            more["scans"] = [{"source": s, "filter": f} for s, f in sorted(measured.scans)]
        yield limit_error(
            f"The query's estimated cost is {measured.cost}; the limit is {limits.max_cost} "
            f"(limits.max_cost). {advice}",
            "QUERY_TOO_COSTLY",
            limits.max_cost,
            measured.cost,
            **more,
        )


class QueryLimitsExtension(SchemaExtension):
    """Applies the request's :class:`QueryLimits` (``context.limits``) to each operation.

    The limits are read per request, so one schema serves gateways configured differently.
    Documents are parsed and validated by the standard rules once per text
    (:class:`resolvers.documents.DocumentCache`); the checks that depend on the request (trusted
    documents, introspection for this caller, depth, aliases and cost with these variables)
    run every time.
    """

    _checked: CheckedDocument | None = None
    """The document as the cache gave it, when it did."""
    _untrusted: GraphQLError | None = None
    """The trusted-documents refusal, decided (the text hashed) once per request in on_parse."""

    def on_parse(self) -> Iterator[None]:
        """Parse from the cache; once parsed, validate too (the cached rules' verdict and the
        checks of this request), which leaves strawberry's validation step nothing to do.

        One hook rather than ``on_parse`` and ``on_validate``: strawberry wraps each hook of
        each extension in a context manager made afresh for every request, which costs more
        than a trivial document's whole execution. Validating here, before strawberry checks
        the operation's type, changes no answer: a refused type raises past both."""
        execution = self.execution_context
        limits = _limits_of(execution.context)
        if limits is not None:
            authenticated = caller_is_authenticated(execution.context)
            self._untrusted = _untrusted_document(limits, execution.query, authenticated)
            self._parse_from_cache(limits)
        yield
        if limits is None:
            return
        errors = self.execution_context.pre_execution_errors
        if errors is None:  # parsed: strawberry validates only when no errors are set
            self._validate(limits, execution.context)
            return
        for error in errors:
            if isinstance(error, GraphQLSyntaxError) and "contains more than" in error.message:
                what = "comments" if "comments" in error.message else "tokens"
                error.message = (
                    f"The document has more than {limits.max_tokens} {what}; "
                    "parsing stopped there (limits.max_tokens)."
                )
                error.extensions = {"code": "TOO_MANY_TOKENS", "limit": limits.max_tokens}

    def _parse_from_cache(self, limits: QueryLimits) -> None:
        execution = self.execution_context
        # graphql-core's own parser limits (strawberry's MaxTokensLimiter sets the older
        # max_tokens); its ParseOptions type does not list them yet.
        options: dict[str, Any] = execution.parse_options  # type: ignore[assignment]
        options["max_lexical_tokens"] = limits.max_tokens
        options["max_comments"] = limits.max_tokens
        if execution.query is None or execution.graphql_document is not None:
            return
        if self._untrusted is not None:
            return  # refused at validation; not worth a place in the cache
        try:
            checked = document_cache(graphql_core_schema(execution.schema)).checked(
                execution.query, limits.max_tokens
            )
        except GraphQLError:
            return  # strawberry parses it again and reports the error as usual
        execution.graphql_document = checked.document
        self._checked = checked

    def _validate(self, limits: QueryLimits, context: object) -> None:
        execution = self.execution_context
        document = execution.graphql_document
        if document is None:
            return
        schema = graphql_core_schema(execution.schema)
        if self._untrusted is not None:
            # Only this error: an untrusted document learns nothing about the schema.
            execution.pre_execution_errors = [self._untrusted]
            return
        authenticated = caller_is_authenticated(context)
        checked = self._checked
        if checked is None or checked.document is not document:  # not parsed via the cache
            checked = CheckedDocument(document, validate(schema, document, STANDARD_RULES))
        hidden = limits.introspection is False or (
            limits.introspection == "key-only" and not authenticated
        )
        errors = list(checked.errors)
        if hidden:
            errors = _without_suggestions(schema, document, errors, execution)
            errors.extend(_introspection_errors(schema, document))
        page_sizes = (
            int(getattr(context, "limits").default_page_size),  # noqa: B009
            int(getattr(context, "limits").max_page_size),  # noqa: B009
        )
        memo = self._checked.measures if self._checked is checked else None
        variables = execution.variables or {}
        errors.extend(measure_errors(schema, document, limits, variables, page_sizes, memo))
        execution.pre_execution_errors = errors


def _without_suggestions(
    schema: GraphQLSchema,
    document: DocumentNode,
    errors: list[GraphQLError],
    execution: ExecutionContext,
) -> list[GraphQLError]:
    """The document's errors as a caller who may not introspect sees them: without "Did you
    mean ...?", which would let it rebuild the hidden schema by guessing (field, argument,
    enum value and type names). graphql-core's ``hide_suggestions`` does the work, both for
    the validation rules and, when the document is valid, for coercing the variables (which
    execution would otherwise report with suggestions)."""
    if errors:  # the cached errors carry suggestions: validate again without them
        return validate(schema, document, STANDARD_RULES, hide_suggestions=True)
    operation = get_operation_ast(document, execution.operation_name)
    if operation is None:
        return errors
    coerced = get_variable_values(
        schema,
        operation.variable_definitions or (),
        execution.variables or {},
        hide_suggestions=True,
    )
    return coerced if isinstance(coerced, list) else errors


def _introspection_errors(schema: GraphQLSchema, document: DocumentNode) -> list[GraphQLError]:
    """graphql-core's rule refusing introspection fields (strawberry's
    ``DisableIntrospection``), each error with a code."""
    errors = validate(schema, document, [NoSchemaIntrospectionCustomRule])
    for error in errors:
        error.extensions = {"code": "INTROSPECTION_DISABLED"}
    return errors


@cache
def document_cache(schema: GraphQLSchema) -> DocumentCache:
    """The one cache of parsed and validated documents for ``schema`` in this process."""
    return DocumentCache(schema)


def _untrusted_document(
    limits: QueryLimits, query: str | None, authenticated: bool
) -> GraphQLError | None:
    """The refusal when only trusted documents may run and this one is not one."""
    trusted = limits.trusted_documents
    if trusted is None or query is None:
        return None
    if limits.trusted_documents_for == "anonymous" and authenticated:
        return None
    digest = document_hash(query)
    if digest in trusted:
        return None
    return GraphQLError(
        "This gateway runs only trusted documents, and this one is not registered "
        f"(sha256:{digest}); send the documentId of a registered document.",
        extensions={"code": "DOCUMENT_NOT_TRUSTED", "hash": f"sha256:{digest}"},
    )


def _limits_of(context: object) -> QueryLimits | None:
    limits = getattr(context, "limits", None)
    query = getattr(limits, "query", None)
    return query if isinstance(query, QueryLimits) else None


__all__ = [
    "DocumentMeasure",
    "QueryLimits",
    "QueryLimitsExtension",
    "caller_is_authenticated",
    "document_hash",
    "limit_error",
    "measure_errors",
]
