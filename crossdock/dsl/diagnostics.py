"""Source spans and coded diagnostics shared by the parser, lint, the map compiler and the runtime.

Every diagnostic has a stable code (documented in :mod:`crossdock.dsl.codes`), a severity, a span
(file, line and column, 1-based) and an optional hint. Tests assert on codes and positions, not prose.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Span:
    """Where a construct sits in a route file: 1-based lines and columns, end exclusive."""

    file: str
    line: int
    column: int
    end_line: int = 0
    end_column: int = 0

    def __str__(self) -> str:
        # A whole file or folder (a missing path, say) has no line: show just its name.
        return f"{self.file}:{self.line}:{self.column}" if self.line > 0 else self.file


UNKNOWN_SPAN = Span("<unknown>", 0, 0)


class Severity(StrEnum):
    """How bad a finding is; errors make lint exit 1 and stop `crossdock run` from starting."""

    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One finding: a stable code, a message, where it is, and what to do about it."""

    code: str
    message: str
    span: Span
    severity: Severity = Severity.ERROR
    hint: str | None = None

    def __str__(self) -> str:
        return f"{self.span}: {self.code} {self.message}"


class DiagnosticError(Exception):
    """Raised where work cannot go on; carries every diagnostic found so far."""

    def __init__(self, diagnostics: Iterable[Diagnostic]) -> None:
        self.diagnostics = list(diagnostics)
        super().__init__("\n".join(str(d) for d in self.diagnostics))


@dataclass
class DiagnosticBag:
    """Collects diagnostics while a check runs, so that one pass reports every problem, not the first."""

    items: list[Diagnostic] = field(default_factory=list)

    def error(self, code: str, message: str, span: Span, hint: str | None = None) -> None:
        self.items.append(Diagnostic(code, message, span, Severity.ERROR, hint))

    def warning(self, code: str, message: str, span: Span, hint: str | None = None) -> None:
        self.items.append(Diagnostic(code, message, span, Severity.WARNING, hint))

    def extend(self, diagnostics: Iterable[Diagnostic]) -> None:
        self.items.extend(diagnostics)

    @property
    def has_errors(self) -> bool:
        return any(d.severity is Severity.ERROR for d in self.items)

    def sorted(self) -> list[Diagnostic]:
        """Every distinct finding in file order (a policy used by three routes is checked three times,
        but its problems are reported once)."""
        unique = dict.fromkeys(self.items)
        return sorted(unique, key=lambda d: (d.span.file, d.span.line, d.span.column, d.code))


def closest(name: str, candidates: Iterable[str], cutoff: float = 0.6) -> tuple[str, float] | None:
    """The candidate most similar to `name` and its similarity (0..1), or None below `cutoff`.

    Similarity is difflib's ratio, taken as written and ignoring case, whichever is higher; on a tie
    the earlier candidate wins.
    """
    best: tuple[str, float] | None = None
    for candidate in dict.fromkeys(candidates):
        score = max(difflib.SequenceMatcher(None, name, candidate).ratio(),
                    difflib.SequenceMatcher(None, name.lower(), candidate.lower()).ratio())
        if score >= cutoff and (best is None or score > best[1]):
            best = (candidate, score)
    return best


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """A hint naming the closest candidate, or None when nothing is close enough to be useful."""
    found = closest(name, candidates)
    return f"did you mean '{found[0]}'?" if found else None


def source_line(span: Span, text: str | None = None) -> str | None:
    """The text of the line a span points at, read from `text` or from the file itself."""
    if span.line <= 0:
        return None
    if text is None:
        try:
            text = Path(span.file).read_text(encoding="utf-8", errors="replace").removeprefix("\ufeff")
        except OSError:
            return None
    # Lines are counted as the parser counts them: only "\n" ends a line (str.splitlines would also
    # split at form feeds and other separators, shifting every later line).
    lines = text.split("\n")
    return lines[span.line - 1].removesuffix("\r") if span.line <= len(lines) else None


def render(diagnostic: Diagnostic, text: str | None = None) -> str:
    """`path:line:col: CODE message`, the source line with a caret under the column, and the hint."""
    head = f"{diagnostic.span}: {diagnostic.code} {diagnostic.severity.value}: {diagnostic.message}"
    out = [head]
    line = source_line(diagnostic.span, text)
    if line is not None:
        width = 1
        if diagnostic.span.end_line == diagnostic.span.line and diagnostic.span.end_column > diagnostic.span.column:
            width = diagnostic.span.end_column - diagnostic.span.column
        pad = "".join("\t" if ch == "\t" else " " for ch in line[: max(diagnostic.span.column - 1, 0)])
        out.append(f"    {line}")
        out.append(f"    {pad}{'^' * width}")
    if diagnostic.hint:
        out.append(f"    hint: {diagnostic.hint}")
    return "\n".join(out)
