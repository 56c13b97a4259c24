"""Prints diagnostics as text (with the line and a caret), JSON, or SARIF 2.1.0 for code scanning."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from crossdock.dsl.codes import CODES
from crossdock.dsl.diagnostics import Diagnostic, Severity, render

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def summary(diagnostics: Sequence[Diagnostic]) -> str:
    """`N error(s), M warning(s)`."""
    errors = sum(d.severity is Severity.ERROR for d in diagnostics)
    warnings = len(diagnostics) - errors
    return f"{errors} error(s), {warnings} warning(s)"


def as_text(diagnostics: Sequence[Diagnostic], files: dict[str, str]) -> str:
    """Human output: every finding rendered with its source line, then a one-line summary."""
    blocks = [render(d, files.get(d.span.file)) for d in diagnostics]
    return "\n".join([*blocks, summary(diagnostics)]) + "\n"


def _as_dict(d: Diagnostic) -> dict[str, object]:
    return {
        "code": d.code,
        "severity": d.severity.value,
        "message": d.message,
        "file": d.span.file,
        "line": d.span.line,
        "column": d.span.column,
        "end_line": d.span.end_line,
        "end_column": d.span.end_column,
        "hint": d.hint,
    }


def as_json(diagnostics: Sequence[Diagnostic]) -> str:
    """Machine output for CI: a list of findings and the counts."""
    errors = sum(d.severity is Severity.ERROR for d in diagnostics)
    return json.dumps({"diagnostics": [_as_dict(d) for d in diagnostics],
                       "errors": errors, "warnings": len(diagnostics) - errors}, indent=2) + "\n"


def as_sarif(diagnostics: Sequence[Diagnostic], version: str) -> str:
    """SARIF 2.1.0, as read by GitHub code scanning and most CI dashboards."""
    used = sorted({d.code for d in diagnostics})
    rules = [{"id": code, "name": CODES.get(code, (code, ""))[0],
              "shortDescription": {"text": CODES.get(code, (code, ""))[0]},
              "fullDescription": {"text": CODES.get(code, ("", code))[1]}} for code in used]
    results = []
    for d in diagnostics:
        location: dict[str, object] = {"artifactLocation": {"uri": Path(d.span.file).as_posix()}}
        if d.span.line > 0:  # a finding about a whole file or folder has no region
            region = {"startLine": d.span.line, "startColumn": max(d.span.column, 1)}
            if d.span.end_line > d.span.line or (d.span.end_line == d.span.line and d.span.end_column > d.span.column):
                region.update(endLine=d.span.end_line, endColumn=d.span.end_column)
            location["region"] = region
        text = d.message + (f" ({d.hint})" if d.hint else "")
        results.append({
            "ruleId": d.code,
            "ruleIndex": used.index(d.code),
            "level": "error" if d.severity is Severity.ERROR else "warning",
            "message": {"text": text},
            "locations": [{"physicalLocation": location}],
        })
    log = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{"tool": {"driver": {"name": "crossdock", "version": version,
                                      "informationUri": "https://example.invalid/crossdock", "rules": rules}},
                  "results": results}],
    }
    return json.dumps(log, indent=2) + "\n"
