"""Parses route files with the LALR grammar in `route.lark` and turns Lark's errors into diagnostics.

Two Lark traps are handled here (see DESIGN.md): the contextual lexer would split a misspelled keyword
such as `mapp` into the keyword `map` and a stray `p`, so the post-lexer asks for NAME to be accepted in
every state, which makes `mapp` one word that the error handler can match against the keywords that were
expected; and blank or comment-only lines would produce runs of newline tokens, which the post-lexer folds.

Syntax errors become one diagnostic each: DSL001 lists what the parser could take instead (asking the
parser which tokens it accepts, not the merged LALR state's list) with a did-you-mean for a misspelled
keyword; DSL002/DSL003 a character that cannot start any token; DSL006 a block without `end`, reported
at the keyword that opened it (read off the parser's stack when the file ends, or when a new definition
starts inside the block).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

from crossdock.dsl import ast
from crossdock.dsl.diagnostics import Diagnostic, DiagnosticBag, Span, did_you_mean
from crossdock.dsl.transformer import AstBuilder

GRAMMAR = Path(__file__).with_name("route.lark")

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
    """Folds blank lines into one newline, ends the file with one, and keeps NAME always lexable.

    Each newline token is moved to the end of the last token of its line, with no width: Lark's
    `propagate_positions` ends a statement where its last token (the newline) ends, so a statement's
    span now ends at the end of its own line instead of at the start of the next one, and a caret under
    a whole statement covers the statement (not a trailing comment or the next line's indentation).
    """

    # NAME: see the module docstring. _NL: a comment-only line inside a block gives a second newline
    # token in a parser state that takes none; lexing it anyway lets `process` fold it away.
    always_accept = ("NAME", "_NL")

    def process(self, stream: Iterator[Token]) -> Iterator[Token]:
        last: Token | None = None
        for token in stream:
            if token.type == "_NL":
                if last is None or last.type == "_NL":
                    continue
                token = _newline_after(last, token.value)
            yield token
            last = token
        if last is not None and last.type != "_NL":
            yield _newline_after(last, "\n")


def _newline_after(last: Token, value: str) -> Token:
    """A zero-width newline token placed right after `last`."""
    return Token("_NL", value, start_pos=last.end_pos, line=last.end_line, column=last.end_column,
                 end_line=last.end_line, end_column=last.end_column, end_pos=last.end_pos)


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
    """Every keyword of the language: the words the grammar spells out, such as `route` or `retry`."""
    return {
        t.pattern.value
        for t in _lark().terminals
        if t.pattern.type == "str" and t.pattern.value.isidentifier()
    }


@functools.cache
def step_keywords() -> tuple[str, ...]:
    """The keywords that can start a step of a route, as the grammar says (for did-you-mean on options).

    A misspelled step under a source or sink reads as an option line of it; lint then matches the
    unknown option against these words.
    """
    parser = _lark().parse_interactive('route "r"\n  from file\n  map with "m"\n')
    parser.exhaust_lexer()
    by_name = {t.name: t.pattern.value for t in _lark().terminals if t.pattern.type == "str"}
    return tuple(sorted(by_name[n] for n in parser.accepts() if n in by_name and by_name[n] != "end"))


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
    """Parse a route file from disk; an unreadable file (IO001) or one that is not UTF-8 (IO002) is a diagnostic."""
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        return None, [Diagnostic("IO001", f"cannot read the file: {error.strerror}", Span(str(path), 0, 0))]
    try:
        # Some Windows editors start UTF-8 files with a byte order mark; it is not part of the text.
        text = data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as error:
        return None, [Diagnostic("IO002", f"the file is not UTF-8 text (byte {error.start})",
                                 _byte_position(str(path), data, error.start))]
    return parse_text(text, str(path))


def _byte_position(path: str, data: bytes, offset: int) -> Span:
    """The line and column (in characters) of byte `offset`, which starts the first undecodable sequence."""
    line_start = data.rfind(b"\n", 0, offset) + 1
    column = len(data[line_start:offset].decode("utf-8")) + 1
    return Span(path, data.count(b"\n", 0, offset) + 1, column, data.count(b"\n", 0, offset) + 1, column + 1)


def _expected_words(error: UnexpectedToken) -> list[str]:
    """What the parser could have taken instead of `error.token`, in words, sorted.

    Lark's `expected` lists the terminals of the LALR state, which (states being merged) may name
    words that could not actually continue the file; `accepts` tries each one on a copy of the parser.
    """
    display = _terminal_display()
    names = set(error.expected)
    if error.interactive_parser is not None:
        names = set(error.interactive_parser.accepts()) | (names & {"$END"})
    return sorted({display.get(name, name) for name in names})


def _syntax_diagnostic(error: UnexpectedInput, path: str, text: str) -> Diagnostic:
    if isinstance(error, UnexpectedCharacters):
        return _unexpected_character(error, path, text)
    if isinstance(error, UnexpectedEOF) or (isinstance(error, UnexpectedToken) and error.token.type == "$END"):
        return _missing_end(error, path, text)
    assert isinstance(error, UnexpectedToken)
    token = error.token
    stack = _value_stack(error)
    if _starts_definition(token, stack):
        opened = _open_block(stack)
        if opened is not None:
            return _unclosed(opened, path, hint=f"close it with a line that says `end` before line {token.line}")
    span = Span(path, token.line, token.column, token.end_line or token.line,
                token.end_column or token.column + len(token.value))
    words = _expected_words(error)
    if token.type == "_NL":
        # The lexer reports the newline itself (after any comment); the caret belongs after the last word.
        line, column = _stack_end(stack) or (token.line, token.column)
        return Diagnostic("DSL001", f"the line ends too early: expected {_join(words)}", Span(path, line, column))
    message = f"unexpected '{token.value}': expected {_join(words)}"
    keyword_choices = [w.strip("'") for w in words if w.startswith("'") and w.strip("'").isidentifier()]
    hint = did_you_mean(token.value, keyword_choices) if token.type == "NAME" else None
    before = stack[-1] if stack else None
    if hint is None and token.value == "=" and isinstance(before, Token) and before.type != "NAME" \
            and before.value.isidentifier():
        hint = f"'{before.value}' is a keyword at the start of a line, so it cannot be assigned as a field"
    if token.value == "end" and not _open_block(stack):
        hint = ("this 'end' closes no block: is a block above closed twice, or did a misspelled line "
                "above fail to open one?")
    return Diagnostic("DSL001", message, span, hint=hint)


def _unexpected_character(error: UnexpectedCharacters, path: str, text: str) -> Diagnostic:
    span = Span(path, error.line, error.column, error.line, error.column + 1)
    char = text[error.pos_in_stream] if error.pos_in_stream < len(text) else ""
    if char == '"':
        return Diagnostic("DSL003", "this string is not closed before the end of the line", span,
                          hint='close it with " on the same line')
    if char == "'":
        hint = 'write strings in double quotes: "like this"'
    else:
        display = _terminal_display()
        hint = f"expected {_join(sorted({display.get(n, n) for n in error.allowed or set()}))}"
    return Diagnostic("DSL002", f"unexpected character {char!r}", span, hint=hint)


def _value_stack(error: UnexpectedInput) -> list[Any]:
    interactive = getattr(error, "interactive_parser", None)
    return list(interactive.parser_state.value_stack) if interactive is not None else []


# Words that only ever start a definition: met inside a block, they mean the block above lacks `end`.
_DEFINITION_WORDS = {"connection", "policy", "route"}
# Keywords that always open a block closed by `end`; `map`, `table`, `when` and `for` depend on context.
_ALWAYS_OPENS = {"connection", "policy", "route", "send", "branch", "test", "object"}
_WHEN_CLAUSES = {"when_clause", "map_when_clause"}


def _starts_definition(token: Token, stack: list[Any]) -> bool:
    """Whether `token` begins a new top-level definition (`route "b"`, `map "m"`) inside an open block."""
    if token.value in _DEFINITION_WORDS:
        return True
    top = stack[-1] if stack else None
    return token.type == "STRING" and _is_keyword(top, "map")


def _is_keyword(item: Any, word: str) -> bool:
    return isinstance(item, Token) and item.type != "NAME" and item.value == word


def _open_block(stack: list[Any]) -> tuple[str, int, int] | None:
    """The innermost block the parser still has open: its keyword, line and column.

    A block whose `end` was read but not yet reduced (the parser waits for the next token) still has
    its opener on the stack; each `end` met on the way down cancels one opener.
    """
    closed = 0
    for index in range(len(stack) - 1, -1, -1):
        item = stack[index]
        opened: tuple[str, int, int] | None = None
        if isinstance(item, Tree):
            # `when` clauses already read sit on the stack as one tree until the choice's `end`.
            first = item.children[0] if item.data.startswith("__") and item.children else item
            if isinstance(first, Tree) and first.data in _WHEN_CLAUSES and not item.meta.empty:
                opened = "when", item.meta.line, item.meta.column
        elif isinstance(item, Token) and item.type != "NAME":
            if item.value == "end":
                closed += 1
            elif _opens_block(stack, index):
                opened = item.value, item.line, item.column
        if opened is not None:
            if closed == 0:
                return opened
            closed -= 1
    return None


def _opens_block(stack: list[Any], index: int) -> bool:
    """Whether the keyword token at `stack[index]` opens a block that `end` closes."""
    before = stack[index - 1] if index > 0 else None
    after = stack[index + 1: index + 3]
    word = stack[index].value
    return (
        word in _ALWAYS_OPENS
        or (word == "map" and bool(after) and isinstance(after[0], Token) and after[0].type == "STRING")
        or (word == "table" and not (len(after) == 2 and _is_keyword(after[1], "from")))
        or (word == "when" and not _is_keyword(before, "only"))
        or (word == "for" and _is_keyword(before, "="))
    )


def _unclosed(opened: tuple[str, int, int], path: str, hint: str) -> Diagnostic:
    word, line, column = opened
    return Diagnostic("DSL006", f"'{word}' block opened here has no 'end'",
                      Span(path, line, column, line, column + len(word)), hint=hint)


def _missing_end(error: UnexpectedInput, path: str, text: str) -> Diagnostic:
    stack = _value_stack(error)
    opened = _open_block(stack)
    if opened is not None:
        return _unclosed(opened, path, hint="close the block with a line that says: end")
    end = _stack_end(stack)
    if end is None:
        lines = text.split("\n")
        end = len(lines), len(lines[-1]) + 1
    return Diagnostic("DSL006", "the file ends in the middle of a statement", Span(path, *end))


def _stack_end(stack: list[Any]) -> tuple[int, int] | None:
    """Where the last thing the parser has read ends (line, column), if it has read anything."""
    for item in reversed(stack):
        if isinstance(item, Token) and item.line:
            return item.end_line, item.end_column
        if isinstance(item, Tree) and not item.meta.empty:
            return item.meta.end_line, item.meta.end_column
    return None


def _join(words: list[str]) -> str:
    if len(words) > 8:
        words = [*words[:8], "..."]
    return ", ".join(words) if words else "something else"
