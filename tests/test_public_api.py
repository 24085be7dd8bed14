"""No private API of graphql-core, strawberry, SQLAlchemy, aiodataloader or httpx in gateway/,
resolvers/ or sources/: what those libraries mark private may change in any release, and the
lock file (requirements.lock) only delays the day it does.

Read from the source (an AST walk), not by running it. A use is private when it is

- an import of a ``_``-prefixed module or name from one of those packages;
- an attribute ``x._name`` (or ``getattr``/``setattr``/``hasattr`` with ``"_name"``) where ``x``
  is bound by an import from them, or where ``_name`` occurs in their source and this project
  defines no such name itself (so the object can only be theirs);
- in a class that subclasses one of their classes (at any depth), a name of that library class
  (``_``-prefixed, or a method its docstring marks ``:meta private:``, as graphql-core marks
  its execution internals) defined in the class body or reached through ``self``, ``cls`` or
  ``super()``: an override or a use of their internals;
- a copy of their internals as a string: the name of one of their modules (checked against an
  object's ``__module__``, say), or the value of a module constant of theirs that names a
  ``_``-prefixed attribute (strawberry's ``TYPE_CAST_ATTRIBUTE``).

Names the libraries document as public despite the underscore are allowed: namedtuple's API and
enum's ``_value_``/``_name_``/``_missing_``, SQLAlchemy's ``Row._fields``/``_mapping``/``_asdict``/
``_t``/``_tuple`` (underscored so they never clash with column names).
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import re
import sys
import types
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
LIBRARIES = frozenset({"graphql", "strawberry", "sqlalchemy", "aiodataloader", "httpx"})
CHECKED = ("gateway", "resolvers", "sources")
OWN = (*CHECKED, "samples")  # where this project's own names are defined

DOCUMENTED_PUBLIC = frozenset(
    {
        # collections.namedtuple's documented API (aiodataloader's Loader is one)
        "_make",
        "_replace",
        "_asdict",
        "_fields",
        "_field_defaults",
        # enum's documented "_sunder_" names
        "_value_",
        "_name_",
        "_missing_",
        # sqlalchemy.engine.Row, documented public: "underscored ... to avoid name conflicts"
        "_mapping",
        "_t",
        "_tuple",
    }
)

NO_PUBLIC_ROUTE: dict[tuple[str, str], str] = {
    ("resolvers/documents.py", "_schema"): "strawberry.Schema's graphql-core schema",
}
"""Private uses outside the executors that have no public replacement in the locked releases,
each in one accessor: strawberry 0.341 keeps the graphql-core ``GraphQLSchema`` it builds only
in ``Schema._schema`` (no public attribute or method returns it; its maintainers point users
there, strawberry issue #2590), and the query limits' document cache and the CSV export's plan
validate and walk documents against that very schema (``graphql_core_schema``; a schema rebuilt
from the SDL would lose the custom scalars' literal parsing). Remove the entry when strawberry
offers a public accessor."""


@dataclass(frozen=True, order=True)
class Use:
    """A private use: where, which name, and how it was reached."""

    path: str
    line: int
    name: str
    how: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.name} ({self.how})"


def is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__") and name not in DOCUMENTED_PUBLIC


def in_library(module: str | None) -> bool:
    return module is not None and module.split(".", 1)[0] in LIBRARIES


@cache
def library_private_names() -> frozenset[str]:
    """Every ``_``-prefixed identifier in the libraries' source."""
    word = re.compile(r"(?<![\w])_[A-Za-z]\w*")
    names: set[str] = set()
    for library in LIBRARIES:
        package = importlib.import_module(library)
        for path in Path(package.__path__[0]).rglob("*.py"):
            names.update(word.findall(path.read_text("utf-8")))
    return frozenset(name for name in names if is_private(name))


@cache
def own_names() -> frozenset[str]:
    """Every name this project defines: functions, classes, assignments, attributes it sets,
    parameters and keyword arguments (a field given by keyword is declared by its type)."""
    names: set[str] = set()
    for package in OWN:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text("utf-8"))):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    names.add(node.name)
                elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                    names.add(node.id)
                elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                    names.add(node.attr)
                elif isinstance(node, ast.arg):
                    names.add(node.arg)
                elif (
                    isinstance(node, ast.Assign)
                    and any(isinstance(n, ast.Name) and n.id == "__slots__" for n in node.targets)
                    and isinstance(node.value, (ast.Tuple, ast.List))
                ):
                    names.update(
                        e.value
                        for e in node.value.elts
                        if isinstance(e, ast.Constant) and isinstance(e.value, str)
                    )
    return frozenset(names)


@cache
def library_attribute_constants() -> dict[str, str]:
    """Values of the libraries' module-level ALL-CAPS string constants that name a
    ``_``-prefixed attribute, with the constant's name: code that spells such a value out
    depends on an internal the library only reaches through its own constant."""
    constant = re.compile(r"^([A-Z][A-Z0-9_]*)(?:\s*:[^=\n]*)?\s*=\s*[\"'](_\w+)[\"']\s*$", re.M)
    found: dict[str, str] = {}
    for library in LIBRARIES:
        package = importlib.import_module(library)
        for path in Path(package.__path__[0]).rglob("*.py"):
            for name, value in constant.findall(path.read_text("utf-8")):
                found[value] = name
    return found


def is_library_module(text: str) -> bool:
    if not in_library(text) or not all(part.isidentifier() for part in text.split(".")):
        return False
    try:
        return importlib.util.find_spec(text) is not None
    except ImportError:
        return False


def _documented_private(value: Any) -> bool:
    function = getattr(value, "__func__", None) or getattr(value, "fget", None) or value
    doc = getattr(function, "__doc__", None)
    return isinstance(doc, str) and ":meta private:" in doc


@cache
def library_class_names(cls: type) -> frozenset[str]:
    """The private names of one library class: ``_``-prefixed members, attributes it sets on
    ``self``, and members its docstrings mark ``:meta private:``."""
    names = {name for name in vars(cls) if is_private(name)}
    names.update(name for name, value in vars(cls).items() if _documented_private(value))
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        source = ""
    names.update(n for n in re.findall(r"self\.(_[A-Za-z]\w*)", source) if is_private(n))
    return frozenset(names)


def library_bases(cls: type) -> list[type]:
    return [base for base in cls.__mro__[1:] if in_library(base.__module__)]


class _Checker(ast.NodeVisitor):
    def __init__(self, path: str, module: types.ModuleType | None) -> None:
        self.path = path
        self.module = module
        self.uses: list[Use] = []
        self.library_bound: set[str] = set()  # names bound by imports from the libraries
        self.class_private: list[frozenset[str]] = []  # per enclosing class: its bases' names

    def found(self, node: ast.AST, name: str, how: str) -> None:
        self.uses.append(Use(self.path, getattr(node, "lineno", 0), name, how))

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if in_library(alias.name):
                self.library_bound.add((alias.asname or alias.name).split(".", 1)[0])
                for part in alias.name.split("."):
                    if is_private(part):
                        self.found(node, alias.name, "private module")

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level or not in_library(node.module):
            return
        assert node.module is not None
        for part in node.module.split("."):
            if is_private(part):
                self.found(node, node.module, "private module")
        for alias in node.names:
            self.library_bound.add(alias.asname or alias.name)
            if is_private(alias.name):
                self.found(node, alias.name, f"imported from {node.module}")

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        cls = getattr(self.module, node.name, None) if not self.class_private else None
        names: frozenset[str] = frozenset()
        if isinstance(cls, type):
            for base in library_bases(cls):
                names |= library_class_names(base)
        if names:
            for statement in node.body:
                for defined in _defined_in_body(statement):
                    if defined in names:
                        self.found(statement, defined, "overrides its library base's")
        self.class_private.append(names)
        self.generic_visit(node)
        self.class_private.pop()

    def visit_Attribute(self, node: ast.Attribute) -> None:
        self._attribute(node, node.value, node.attr)
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        function = node.func
        if (
            isinstance(function, ast.Name)
            and function.id in ("getattr", "setattr", "hasattr", "delattr")
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
        ):
            self._attribute(node, node.args[0], node.args[1].value)
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        value = node.value
        if isinstance(value, str) and "." in value and is_library_module(value):
            self.found(node, value, "a library's module name, spelled out")
        elif isinstance(value, str) and value in library_attribute_constants():
            constant = library_attribute_constants()[value]
            self.found(node, value, f"a library's internal attribute ({constant}), spelled out")

    def _attribute(self, node: ast.AST, owner: ast.expr, name: str) -> None:
        names = self.class_private[-1] if self.class_private else frozenset()
        if _is_self(owner):
            if name in names:
                self.found(node, name, "its library base's, through self")
            return
        if not is_private(name):
            return
        root = owner
        while isinstance(root, ast.Attribute):
            root = root.value
        if isinstance(root, ast.Name) and root.id in self.library_bound:
            self.found(node, name, f"of {root.id}, imported from a library")
        elif name in library_private_names() and name not in own_names():
            self.found(node, name, "defined by a library, not by this project")


def _is_self(owner: ast.expr) -> bool:
    if isinstance(owner, ast.Name):
        return owner.id in ("self", "cls")
    return (
        isinstance(owner, ast.Call)
        and isinstance(owner.func, ast.Name)
        and owner.func.id == "super"
    )


def _defined_in_body(statement: ast.stmt) -> Iterator[str]:
    if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        yield statement.name
    elif isinstance(statement, ast.Assign):
        for target in statement.targets:
            if isinstance(target, ast.Name):
                yield target.id
    elif isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
        yield statement.target.id


def private_uses(source: str, path: str, module: types.ModuleType | None) -> list[Use]:
    """The private uses in one module's source; ``module`` is it imported, for its classes."""
    checker = _Checker(path, module)
    checker.visit(ast.parse(source))
    return sorted(set(checker.uses))


def checked_modules() -> Iterator[tuple[str, str, types.ModuleType]]:
    for package in CHECKED:
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT)
            dotted = ".".join(relative.with_suffix("").parts).removesuffix(".__init__")
            yield relative.as_posix(), path.read_text("utf-8"), importlib.import_module(dotted)


@cache
def all_uses() -> tuple[Use, ...]:
    return tuple(
        use
        for path, source, module in checked_modules()
        for use in private_uses(source, path, module)
    )


def test_no_private_api_of_the_libraries_outside_the_allowlist() -> None:
    unexpected = [u for u in all_uses() if (u.path, u.name) not in NO_PUBLIC_ROUTE]
    assert not unexpected, "private API of a library:\n" + "\n".join(map(str, unexpected))


def test_the_exceptions_list_only_uses_that_exist() -> None:
    """Only what has no public route is excused, and only while it is used: an entry the code
    no longer needs must go."""
    used = {(u.path, u.name) for u in all_uses()}
    stale = sorted(entry for entry in NO_PUBLIC_ROUTE if entry not in used)
    assert not stale, f"no longer used, remove from NO_PUBLIC_ROUTE: {stale}"


SAMPLE = """
import sqlalchemy.sql._typing
from graphql.execution import execute as _execute  # a private alias of a public name: fine
from strawberry.http.base import BaseView
from graphql.execution import Executor
from aiodataloader import DataLoader

def a(compiled, loader, headers):
    compiled._bind_processors
    loader._queue.append(1)
    BaseView._get_stream_transport_from_headers(None, headers)
    getattr(loader, "_cache")

class Loader(DataLoader):
    def load_list(self, keys):
        return [self._cache.get(key) for key in keys]

class Execution(Executor):
    def execute_field(self, *args):
        return super().execute_field(*args)

def copies(check, item):
    return check.__module__ == "strawberry.schema.schema_converter" or getattr(
        item, "__as_strawberry_type__", None
    )

def fine(row, point, self_made):
    row._fields, row._mapping, point._replace(x=1)
    self_made._own_helper()
"""
SAMPLE_EXPECTED = {
    ("sqlalchemy.sql._typing", "private module"),
    ("_bind_processors", "defined by a library, not by this project"),
    ("_queue", "defined by a library, not by this project"),
    ("_get_stream_transport_from_headers", "of BaseView, imported from a library"),
    ("_cache", "defined by a library, not by this project"),
    ("_cache", "its library base's, through self"),
    ("execute_field", "overrides its library base's"),
    ("strawberry.schema.schema_converter", "a library's module name, spelled out"),
    ("__as_strawberry_type__", "a library's internal attribute (TYPE_CAST_ATTRIBUTE), spelled out"),
    ("execute_field", "its library base's, through self"),
}


def test_the_checker_finds_each_kind_of_private_use() -> None:
    """The walk itself, on a module written to hold one of each kind (and some allowed)."""
    module = types.ModuleType("sample_private_uses")
    sys.modules[module.__name__] = module
    try:
        exec(compile(SAMPLE, "sample.py", "exec"), module.__dict__)
        found = {(u.name, u.how) for u in private_uses(SAMPLE, "sample.py", module)}
    finally:
        del sys.modules[module.__name__]
    assert found == SAMPLE_EXPECTED
