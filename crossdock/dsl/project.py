"""Loads route files into one namespace: all files under the given paths share their names.

Connections, policies, maps, tables and routes are referred to by name from any file. Duplicate
names are reported (DUP001) with the place of the first definition.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from crossdock.dsl import ast
from crossdock.dsl.diagnostics import Diagnostic, DiagnosticBag, Span
from crossdock.dsl.parser import parse_file

ROUTE_SUFFIX = ".route"


@dataclass
class Project:
    """Every definition of a set of route files, by name, and what was found while reading them."""

    files: list[Path] = field(default_factory=list)
    modules: list[ast.Module] = field(default_factory=list)
    connections: dict[str, ast.Connection] = field(default_factory=dict)
    partners: dict[str, ast.Partner] = field(default_factory=dict)
    policies: dict[str, ast.Policy] = field(default_factory=dict)
    routes: dict[str, ast.Route] = field(default_factory=dict)
    maps: dict[str, ast.MapDef] = field(default_factory=dict)
    tables: dict[str, ast.Table] = field(default_factory=dict)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    syntax_ok: bool = True

    def base_dir(self, span: Span) -> Path:
        """The folder of the file a construct comes from: relative paths in it start there."""
        return Path(span.file).parent


def route_files(paths: Iterable[str | Path]) -> tuple[list[Path], list[Diagnostic]]:
    """The `.route` files named or found (recursively, sorted) under `paths`."""
    found: list[Path] = []
    problems: list[Diagnostic] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob(f"*{ROUTE_SUFFIX}") if p.is_file()))
        elif path.is_file():
            found.append(path)
        else:
            problems.append(Diagnostic("IO001", "no such file or folder", Span(str(path), 0, 0)))
    if not found and not problems:
        problems.append(Diagnostic("IO003", f"no {ROUTE_SUFFIX} files found",
                                   Span(", ".join(str(p) for p in paths) or ".", 0, 0)))
    return list(dict.fromkeys(found)), problems


def load_project(paths: Sequence[str | Path]) -> Project:
    """Parse every route file under `paths` and index the definitions by name."""
    files, problems = route_files(paths)
    project = Project(files=files)
    bag = DiagnosticBag(list(problems))
    for file in files:
        module, diagnostics = parse_file(file)
        bag.extend(diagnostics)
        if module is None:
            project.syntax_ok = False
            continue
        project.modules.append(module)
        for definition in module.definitions:
            _index(project, definition, bag)
    project.diagnostics = bag.items
    return project


def _index(project: Project, definition: ast.Definition, bag: DiagnosticBag) -> None:
    if isinstance(definition, ast.Connection):
        table: dict = project.connections
        name, span, what = definition.name, definition.name_span, "connection"
    elif isinstance(definition, ast.Partner):
        table, name, span, what = project.partners, definition.name, definition.name_span, "partner"
    elif isinstance(definition, ast.Policy):
        table, name, span, what = project.policies, definition.name, definition.name_span, "policy"
    elif isinstance(definition, ast.Route):
        table, name, span, what = project.routes, definition.name, definition.name_span, "route"
    elif isinstance(definition, ast.MapDef):
        table, name, span, what = project.maps, definition.name, definition.name_span, "map"
    else:
        table, name, span, what = project.tables, definition.name.text, definition.name.span, "table"
    first = table.get(name)
    if first is not None:
        first_span = first.name.span if isinstance(first, ast.Table) else first.name_span
        bag.error("DUP001", f"{what} '{name}' is defined twice", span,
                  f"the first definition is at {first_span}; names are shared by every file of the folder")
        return
    table[name] = definition
