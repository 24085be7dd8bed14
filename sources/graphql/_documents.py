"""One request for many cases: a one-case document repeated under an alias per id.

Built with graphql-core's public AST (parse, visit, print_ast): the variable of the id is
renamed per copy (``$id`` -> ``$id_0``, ``$id_1`` ...), every other variable is shared.
"""

from __future__ import annotations

import functools

from graphql import (
    DefinitionNode,
    DocumentNode,
    FieldNode,
    NameNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    Visitor,
    parse,
    print_ast,
    visit,
)

ALIAS = "c{}"
"""The alias of the copy for the i-th id, where its answer is found in the data."""


class _Renamed(Visitor):
    def __init__(self, old: str, new: str) -> None:
        super().__init__()
        self.old, self.new = old, new

    def enter_variable(self, node: VariableNode, *_: object) -> VariableNode | None:
        if node.name.value != self.old:
            return None  # unchanged
        return VariableNode(name=NameNode(value=self.new))


@functools.lru_cache(maxsize=64)
def aliased(query: str, variable: str, count: int) -> str:
    """``query`` (one operation, one root field reading one case by ``$variable``) as one
    operation reading ``count`` cases, the i-th under the alias ``c{i}`` by ``$variable_{i}``."""
    document = parse(query)
    (operation,) = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    others: list[DefinitionNode] = [d for d in document.definitions if d is not operation]
    shared = [v for v in operation.variable_definitions or () if v.variable.name.value != variable]
    own = [v for v in operation.variable_definitions or () if v.variable.name.value == variable]
    fields: list[FieldNode] = []
    renamed_definitions = []
    for i in range(count):
        copy = visit(operation, _Renamed(variable, f"{variable}_{i}"))
        assert isinstance(copy, OperationDefinitionNode)
        (field,) = copy.selection_set.selections
        assert isinstance(field, FieldNode)
        fields.append(
            FieldNode(
                alias=NameNode(value=ALIAS.format(i)),
                name=field.name,
                arguments=field.arguments,
                directives=field.directives,
                selection_set=field.selection_set,
            )
        )
        renamed_definitions += [
            v for v in copy.variable_definitions or () if v.variable.name.value == f"{variable}_{i}"
        ]
    if not own:
        raise ValueError(f"the document declares no ${variable}")
    combined = OperationDefinitionNode(
        operation=operation.operation,
        name=operation.name,
        variable_definitions=(*shared, *renamed_definitions),
        directives=operation.directives,
        selection_set=SelectionSetNode(selections=tuple(fields)),
    )
    return print_ast(DocumentNode(definitions=(combined, *others)))
