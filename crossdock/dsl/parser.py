"""Parses route files with the LALR grammar in `route.lark` and turns Lark's errors into diagnostics.

Two Lark traps are handled here (see DESIGN.md): the contextual lexer would split a misspelled keyword
such as `mapp` into the keyword `map` and a stray `p`, so the post-lexer asks for NAME to be accepted in
every state, which makes `mapp` one word that the error handler can match against the keywords that were
expected; and blank or comment-only lines would produce runs of newline tokens, which the post-lexer folds.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path

from lark import Lark, Token
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

from crossdock.dsl import ast
from crossdock.dsl.diagnostics import Diagnostic, DiagnosticBag, Span, did_you_mean
from crossdock.dsl.transformer import AstBuilder

GRAMMAR = Path(__file__).with_name("route.lark")

# Keywords that open a block closed by `end`, used to say which block a file leaves open.
_BLOCK_OPENERS = {"connection", "policy", "route", "map", "table", "send", "branch", "test", "when", "for", "object"}

_TERMINAL_WORDS = {
    "NAME": "a name",
    "STRING": 'a "quoted string"',
    "NUMBER": "a number",
    "DURATION": "a duration such as 30s",
    "JSONPATH": "a JSONPath such as $.items[*]",
    "COMPARE": "a comparison",
    "_NL": "the end of the line",
    "$END": "the end of the file",
}


class _LinePostLexer:
    """Folds blank lines into one newline, ends the file with one, and keeps NAME always lexable."""

    always_accept = ("NAME",)

    def process(self, stream: Iterator[Token]) -> Iterator[Token]:
        last: Token | None = None
        for token in stream:
            if token.type == "_NL" and (last is None or last.type == "_NL"):
                continue
            yield token
            last = token
        if last is not None and last.type != "_NL":
            yield Token.new_borrow_pos("_NL", "\n", last)


@functools.cache
def _lark() -> Lark:
    return Lark(
        GRAMMAR.read_text(encoding="utf-8"),
        parser="lalr",
        lexer="contextual",
        strict=True,
        propagate_positions=True,
        maybe_placeholders=False,
        postlex=_LinePostLexer(),
    )


@functools.cache
def _terminal_display() -> dict[str, str]:
    names = dict(_TERMINAL_WORDS)
    for terminal in _lark().terminals:
        if terminal.name not in names and terminal.pattern.type == "str":
            names[terminal.name] = f"'{terminal.pattern.value}'"
    return names


def keywords() -> set[str]:
    """Every keyword of the language (used for did-you-mean on misspelled steps and options)."""
    return {
        t.pattern.value
        for t in _lark().terminals
        if t.pattern.type == "str" and t.pattern.value.isidentifier()
    }


def parse_text(text: str, path: str = "<string>") -> tuple[ast.Module | None, list[Diagnostic]]:
    """Parse one file's text; returns the module (None on a syntax error) and the diagnostics."""
    bag = DiagnosticBag()
    try:
        tree = _lark().parse(text)
    except UnexpectedInput as error:
        bag.extend([_syntax_diagnostic(error, path, text)])
        return None, bag.items
    try:
        definitions = AstBuilder(path, bag).transform(tree)
    except VisitError as error:  # a bug in the transformer: still a diagnostic, never a crash
        bag.error("DSL000", f"internal error while reading the file: {error.orig_exc!r}", Span(path, 1, 1))
        return None, bag.items
    return ast.Module(path, tuple(definitions), text), bag.items


def parse_file(path: str | Path) -> tuple[ast.Module | None, list[Diagnostic]]:
    """Parse a route file from disk; an unreadable file is a diagnostic too (code IO001)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        return None, [
            Diagnostic("IO002", f"the file is not UTF-8 text (byte {error.start})", Span(str(path), 1, 1))
        ]
    except OSError as error:
        return None, [Diagnostic("IO001", f"cannot read the file: {error.strerror}", Span(str(path), 0, 0))]
    return parse_text(text, str(path))


def _expected_words(expected: set[str]) -> list[str]:
    display = _terminal_display()
    return sorted({display.get(name, name) for name in expected})


def _syntax_diagnostic(error: UnexpectedInput, path: str, text: str) -> Diagnostic:
    if (isinstance(error, UnexpectedToken) and error.token.type == "$END") or isinstance(error, UnexpectedEOF):
        return _missing_end(error, path, text)
    if isinstance(error, UnexpectedCharacters):
        span = Span(path, error.line, error.column, error.line, error.column + 1)
        char = text[error.pos_in_stream] if error.pos_in_stream < len(text) else ""
        if char == '"':
            return Diagnostic("DSL003", "this string is not closed before the end of the line", span,
                              hint='close it with " on the same line')
        return Diagnostic("DSL002", f"unexpected character {char!r}", span,
                          hint=f"expected {_join(_expected_words(error.allowed or set()))}")
    assert isinstance(error, UnexpectedToken)
    token = error.token
    expected = set(error.expected)
    span = Span(path, token.line, token.column, token.end_line or token.line,
                token.end_column or token.column + len(token.value))
    words = _expected_words(expected)
    if token.type == "_NL":
        return Diagnostic("DSL001", f"the line ends too early: expected {_join(words)}", span)
    shown = token.value
    message = f"unexpected '{shown}': expected {_join(words)}"
    keyword_choices = [w.strip("'") for w in words if w.startswith("'") and w.strip("'").isidentifier()]
    hint = did_you_mean(shown, keyword_choices) if token.type == "NAME" else None
    return Diagnostic("DSL001", message, span, hint=hint)


def _missing_end(error: UnexpectedInput, path: str, text: str) -> Diagnostic:
    opener: Token | None = None
    state = getattr(error, "interactive_parser", None)
    if state is not None:
        depth = 0
        for item in reversed(state.parser_state.value_stack):
            if isinstance(item, Token) and item.value == "end":
                depth += 1
            elif isinstance(item, Token) and item.value in _BLOCK_OPENERS and item.type != "NAME":
                if depth == 0:
                    opener = item
                    break
                depth -= 1
    lines = text.splitlines() or [""]
    end = Span(path, len(lines), len(lines[-1]) + 1)
    if opener is None:
        return Diagnostic("DSL006", "the file ends in the middle of a statement", end)
    where = Span(path, opener.line, opener.column, opener.line, opener.column + len(opener.value))
    return Diagnostic("DSL006", f"'{opener.value}' block opened here has no 'end'", where,
                      hint="close the block with a line that says: end")


def _join(words: list[str]) -> str:
    if len(words) > 8:
        words = [*words[:8], "..."]
    return ", ".join(words) if words else "something else"
