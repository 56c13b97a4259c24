"""Writes the Python source of compiled maps and expressions and turns it into functions.

A map runs for every message, so it is compiled once, when routes load, into one Python function:
straight-line code with the paths, operators and function calls of the map written out, run as
bytecode without a call per syntax node. :mod:`~crossdock.engine.mapping.expressions` and
:mod:`~crossdock.engine.mapping.compiler` decide what to write; this module holds the text, the
names and the namespace, and is the only way text gets into the generated code:

- Text from a route file (string literals, field and segment names, table names) enters the source
  only through :func:`py_str`, as a Python string literal of an exact ``str``: it is always data,
  never code, whatever quotes, backslashes or line breaks it holds.
- Every other value (Decimal numbers, tables, compiled JSONPaths, function implementations, spans)
  is *hoisted*: stored in the function's namespace under a name from a counter (``_dec3``) and read
  by that name, so a number such as ``Decimal('12.50')`` is built once, not parsed per message.
- Local variables are named by the same counter (``_v7``, ``_c2``), never after user text; the few
  fixed names (``root``, ``out`` ...) are the generator's own. The only other words written are
  ``True``/``False``/``None`` and ints (a list index, a line number in a comment).
- The code runs in a namespace that holds the runtime helpers and the hoisted values only, with no
  builtins besides the few listed in ``BUILTINS``: no ``__import__``, ``open`` or ``eval``.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from types import CodeType
from typing import Any

BUILTINS: dict[str, Any] = {
    "type": type,
    "len": len,
    "str": str,
    "isinstance": isinstance,
    "list": list,
    "dict": dict,
    "enumerate": enumerate,
    "Exception": Exception,
}
"""The only builtins generated code can name."""

_INDENT = "    "


def py_str(text: str) -> str:
    """`text` as a Python string literal; the one way route-file text is written into generated code."""
    if type(text) is not str:  # a subclass could define its own repr
        raise TypeError(f"expected text, got {type(text).__name__}")
    return repr(text)


class Source:
    """The lines of one generated module, its namespace, and what each line belongs to.

    Each line is recorded with the current *tag* (for maps: the statement being written, so that an
    error can be traced back from a line number to the map line); :meth:`tags` lists them by line.

    It also remembers which values the code computed so far, so that the same value is computed
    once (a map reads `decimal(quantity)` for the quantity and again for the amount): a value
    computed at a point is known wherever the code runs after it, except after the end of the block
    that computed it (an `if` or a loop body may not have run) and inside a nested function (which
    does not see the outer locals). Only the writers know which code gives the same value each time;
    they :meth:`remember` only that, and :meth:`forget` everything after code that changes data.
    """

    def __init__(self, runtime: Mapping[str, Any]) -> None:
        self.namespace: dict[str, Any] = {"__builtins__": {}, **BUILTINS, **runtime}
        self._lines: list[tuple[int, str, Any]] = []
        self._depth = 0
        self._tag: Any = None
        self._counter = itertools.count(1)
        self._hoisted: dict[int, str] = {}
        self._known: list[dict[str, Any]] = [{}]
        self._function_depths = [0]  # the indentation where each enclosing function's body starts

    def name(self, prefix: str) -> str:
        """A new local or hoisted name: `prefix` and a number, so it never clashes with a helper."""
        return f"_{prefix}{next(self._counter)}"

    def hoist(self, value: Any, prefix: str) -> str:
        """The namespace name holding `value` (the same name for the same object)."""
        known = self._hoisted.get(id(value))
        if known is not None:
            return known
        name = self.name(prefix)
        self.namespace[name] = value  # keeps `value` alive, so its id stays unique
        self._hoisted[id(value)] = name
        return name

    def line(self, text: str) -> None:
        """Append one line at the current indentation."""
        self._lines.append((self._depth, text, self._tag))

    def remember(self, code: str, value: Any) -> None:
        """Note that the value of the Python expression `code` is now at hand as `value`."""
        self._known[-1][code] = value

    def recall(self, code: str) -> Any:
        """What :meth:`remember` noted for `code` and still holds here, or None."""
        return self._known[-1].get(code)

    def forget(self) -> None:
        """Forget every value remembered: the code just written may have changed what they were read from."""
        for known in self._known:
            known.clear()

    @contextmanager
    def block(self, kind: str = "branch") -> Iterator[None]:
        """The indented body of the line just written (`pass` when nothing was written in it).

        `kind` says what is remembered inside and after: "branch" (an `if` or loop body) sees what
        was known before it, and what it computes is forgotten after it; "try" (a body that always
        runs to its end unless it raises) keeps it; "function" (a nested def) starts with nothing.
        """
        start = len(self._lines)
        self._depth += 1
        if kind != "try":
            self._known.append({} if kind == "function" else dict(self._known[-1]))
        if kind == "function":
            self._function_depths.append(self._depth)
        try:
            yield
            if all(text.startswith("#") for _, text, _ in self._lines[start:]):  # comments are no statement
                self.line("pass")
        finally:
            self._depth -= 1
            if kind != "try":
                self._known.pop()
            if kind == "function":
                self._function_depths.pop()

    @property
    def nesting(self) -> int:
        """How many blocks deep the current line is in its function.

        Python refuses a function with more than 20 nested loops and `try` blocks; the writers start
        a local function before that.
        """
        return self._depth - self._function_depths[-1]

    @contextmanager
    def tagged(self, tag: Any) -> Iterator[None]:
        """Lines written inside belong to `tag`."""
        outer, self._tag = self._tag, tag
        try:
            yield
        finally:
            self._tag = outer

    def text(self) -> str:
        """The generated source."""
        return "".join(f"{_INDENT * depth}{text}\n" for depth, text, _ in self._lines)

    def tags(self) -> list[Any]:
        """The tag of each line, by line number (index 0, before the first line, is None)."""
        return [None, *(tag for _, _, tag in self._lines)]

    def build(self, entry: str, filename: str) -> Callable[..., Any]:
        """Compile and run the source in its namespace; returns the function it defines as `entry`."""
        exec(_compiled(self.text(), filename), self.namespace)  # generated from our syntax tree only
        return self.namespace[entry]  # type: ignore[no-any-return]


@functools.lru_cache(maxsize=512)
def _compiled(text: str, filename: str) -> CodeType:
    # Route steps compile their expressions again for each message in places (header values):
    # the same text gives the same code object, and only the namespace differs.
    return compile(text, filename, "exec")
