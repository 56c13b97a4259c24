"""String templates (file names, URLs, generated bodies) on a sandboxed Jinja2 environment.

The sandbox refuses access to Python internals (attributes starting with `_`, unsafe callables), so
a template in a route file can read the message but never run code. Undefined names render as an
error, not as an empty string, because a file name with a hole in it is worse than a dead letter.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from crossdock.engine.errors import PermanentError


def _environment() -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
    env.filters["decimal"] = lambda value: str(Decimal(str(value)))
    return env


_ENV = _environment()


class TemplateProblem(PermanentError):
    """A template failed to render for a message (a name it uses is missing, say)."""

    code = "TPL002"


@dataclass(frozen=True)
class Template:
    """A compiled template; `render(context)` returns the text."""

    source: str
    compiled: Any

    def render(self, context: dict[str, Any]) -> str:
        try:
            return self.compiled.render(context)
        except SecurityError as error:
            raise TemplateProblem(f"template {self.source!r} tried something not allowed: {error}") from None
        except TemplateError as error:
            raise TemplateProblem(f"template {self.source!r} failed: {error}") from None


def compile_template(source: str) -> Template:
    """Compile a template; raises jinja2.TemplateSyntaxError (with a line number) when it is malformed."""
    return Template(source, _ENV.from_string(source))


def is_template(text: str) -> bool:
    """True when the text uses template syntax at all (plain strings skip rendering)."""
    return "{{" in text or "{%" in text
