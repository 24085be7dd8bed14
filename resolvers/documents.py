"""Parsed and validated documents, remembered by their text.

Front-end apps send the same few documents again and again; parsing one and running the
specification's validation rules over it cost more than executing a 100-case page of it did
(16% and 2% of the server's samples on the dashboard page, bench/README.md). Both depend only
on the document's text and the schema, so they are done once per text and remembered here.

What depends on the request is not remembered: the limits on depth, aliases and cost (they read
the variables and the gateway's page sizes), the trusted-documents check and whether
introspection is open to this caller. :class:`resolvers.limits.QueryLimitsExtension` checks
those on every request, after this cache.

Bounded by the total length of the texts held (``max_bytes``), least recently used first out:
a parsed document takes about seventy times its text in memory, so the default of 512 KiB of
text keeps the cache under about 40 MiB however many distinct documents clients send. A text
longer than an eighth of the bound is parsed and validated every time, never kept.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

from graphql import DocumentNode, GraphQLError, GraphQLSchema, parse, specified_rules, validate
from strawberry import Schema
from strawberry.schema.validation_rules.maybe_null import MaybeNullValidationRule
from strawberry.schema.validation_rules.one_of import OneOfInputValidationRule

STANDARD_RULES = (*specified_rules, MaybeNullValidationRule, OneOfInputValidationRule)


def graphql_core_schema(schema: Schema) -> GraphQLSchema:
    """The graphql-core schema strawberry built for ``schema``, which it validates and
    executes against: documents cached here are validated against that very schema (a schema
    rebuilt from the SDL would lose the custom scalars' literal parsing).

    Strawberry keeps it only in ``Schema._schema``: no public attribute or method returns it
    (its maintainers point users to that attribute, strawberry issue #2590). This is the one
    place outside the executors that reaches it (tests/test_public_api.py lists it)."""
    built: GraphQLSchema = schema._schema
    return built


"""graphql-core's specified rules and strawberry's two, as strawberry validates by default."""


MAX_MEASURES = 64
"""Measures kept per document (one per set of page sizes its variables ask for)."""


@dataclass
class CheckedDocument:
    """A parsed document and what the standard rules found wrong with it (empty: valid)."""

    document: DocumentNode
    errors: list[GraphQLError]
    measures: dict[Hashable, Any] = field(default_factory=dict)
    """What :func:`resolvers.limits.measure_errors` measured of it, by what the measure
    depends on besides the document (the page sizes asked for and configured): the same
    document sent again with the same ``first`` is not walked again. At most
    :data:`MAX_MEASURES`, emptied when full."""


class DocumentCache:
    """Text -> :class:`CheckedDocument`, for one schema."""

    def __init__(self, schema: GraphQLSchema, max_bytes: int = 512 * 1024) -> None:
        self.schema = schema
        self.max_bytes = max_bytes
        self._held: OrderedDict[tuple[str, int], CheckedDocument] = OrderedDict()
        self._bytes = 0
        self.hits = 0
        self.misses = 0

    def checked(self, text: str, max_tokens: int) -> CheckedDocument:
        """The document ``text`` parsed (at most ``max_tokens`` tokens, as the limits say) and
        validated by the standard rules; raises the parser's GraphQLSyntaxError, never kept.

        ``max_tokens`` is part of the key: a document parsed under a larger limit is not
        served to a gateway whose limit it exceeds."""
        key = (text, max_tokens)
        held = self._held.get(key)
        if held is not None:
            self._held.move_to_end(key)
            self.hits += 1
            return held
        self.misses += 1
        document = parse(text, max_tokens=max_tokens)
        checked = CheckedDocument(document, validate(self.schema, document, STANDARD_RULES))
        if len(text) <= self.max_bytes // 8:
            self._keep(key, checked)
        return checked

    def _keep(self, key: tuple[str, int], checked: CheckedDocument) -> None:
        self._held[key] = checked
        self._bytes += len(key[0])
        while self._bytes > self.max_bytes:
            (text, _), _ = self._held.popitem(last=False)
            self._bytes -= len(text)

    def __len__(self) -> int:
        return len(self._held)
