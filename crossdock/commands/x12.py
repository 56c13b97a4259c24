"""`crossdock x12 inspect | validate | ack`: look at X12 files without running a route.

- ``inspect FILE``: the envelopes and each set's loop tree, every value with the path a map reads it
  by (``BEG03 = PO-1``, ``N1[N101="ST"].N102 = Acme``); loops that no condition picks out are shown
  as ``for each PO1 (1 of 2)`` with paths relative to the loop, as a map writes them inside
  ``for each PO1``. Exit 0 when read, 1 when the file is not X12, 2 when it cannot be opened.
- ``validate [--strict] [--format text|json] FILE...``: every issue with its code, severity, segment
  index, byte offset, line and a plain message (lenient reading unless ``--strict``). Exit 0 when
  no file has errors, 1 when one has (or is not X12), 2 when one cannot be opened.
- ``ack FILE [--partner-id ID] [--ack 997|999] [--ta1] [--errors-only] [--strict] [--raw]``: the
  acknowledgment crossdock would send, with control numbers from 1 and a partner profile inferred
  from each interchange's envelope; ``--partner-id`` answers only the interchanges that ID sent.
  One segment per line unless ``--raw``. Exit codes as for inspect.
- ``overdue [--data DIR] [--partner NAME] [--format text|json]``: the sets sent to partners whose
  997/999 is past due (the partner's ``acknowledgment due``), from the sent log in the data folder
  ``crossdock run`` uses: partner, GS06, ST02, set, when sent, when due and how late. Exit 0 when
  nothing is overdue, 1 when something is (so cron or CI can alert), 2 when the folder holds no
  crossdock stores (a mistyped ``--data`` must not read as "all acknowledged").
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

from crossdock.commands.common import add_data_option, data_dir
from crossdock.engine.clock import Clock, SystemClock
from crossdock.engine.engine import STORE_FILE, embedded_stores
from crossdock.engine.stores.edi import SentSet
from crossdock.formats import x12
from crossdock.formats.x12 import paths
from crossdock.formats.x12.ackwriter import acknowledge
from crossdock.formats.x12.definitions import SetDefinition, base_version
from crossdock.formats.x12.envelopes import MemoryControlNumbers, profile_delimiters
from crossdock.formats.x12.issues import Issue
from crossdock.formats.x12.profile import PartnerProfile
from crossdock.formats.x12.segment import Segment
from crossdock.formats.x12.tree import Document, Interchange, Loop, TransactionSet

EXIT_OK, EXIT_INVALID, EXIT_UNREADABLE = 0, 1, 2
EXIT_OVERDUE = 1

clock: Clock = SystemClock()
"""What `overdue` takes as now; tests put a ManualClock here."""


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Register ``crossdock x12`` and its subcommands."""
    parser = commands.add_parser("x12", help="inspect, validate and acknowledge X12 files")
    actions = parser.add_subparsers(dest="x12_command", required=True, metavar="COMMAND")
    inspect = actions.add_parser("inspect", help="print each set's loop tree with the paths a map uses")
    inspect.add_argument("file", type=Path)
    validate = actions.add_parser("validate", help="list every issue with its code and position")
    validate.add_argument("files", nargs="+", type=Path)
    validate.add_argument("--strict", action="store_true", help="every defect is an error (default: lenient)")
    validate.add_argument("--format", choices=("text", "json"), default="text")
    ack = actions.add_parser("ack", help="print the acknowledgment crossdock would send")
    ack.add_argument("file", type=Path)
    ack.add_argument("--partner-id", help="answer only the interchanges this sender ID (ISA06) sent")
    ack.add_argument("--ack", choices=("997", "999"), help="the acknowledgment set (default: 999 for 005010)")
    ack.add_argument("--ta1", action="store_true", help="answer interchange defects with a TA1")
    ack.add_argument("--errors-only", action="store_true", help="an AK2 loop only for sets with errors")
    ack.add_argument("--strict", action="store_true", help="read strictly (default: lenient)")
    ack.add_argument("--raw", action="store_true", help="the bytes as sent, without a line break per segment")
    overdue = actions.add_parser("overdue", help="list sets sent whose acknowledgment is past due (exit 1 if any)")
    add_data_option(overdue)
    overdue.add_argument("--partner", help="only this partner (the name of its partner block)")
    overdue.add_argument("--format", choices=("text", "json"), default="text")
    parser.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    """Run the subcommand `args` names; returns the exit code."""
    handlers = {"inspect": inspect_file, "validate": validate_files, "ack": acknowledge_file,
                "overdue": list_overdue}
    return handlers[args.x12_command](args)


def _read(path: Path, mode: x12.Mode) -> Document | int:
    """The document in `path`, or the exit code after saying why it could not be read."""
    try:
        data = path.read_bytes()
    except OSError as error:
        print(f"{path}: cannot read: {error.strerror}", file=sys.stderr)
        return EXIT_UNREADABLE
    try:
        return x12.read(data, mode=mode)
    except x12.X12Error as error:
        print(f"{path}: {error.code}: {error.message} ({error.position})", file=sys.stderr)
        return EXIT_INVALID


# inspect -------------------------------------------------------------------------------------------


def _qualifiers(segment: Segment, definition: SetDefinition | None) -> list[str]:
    """Elements that may name `segment` among others of its ID: its first code element (N101, REF01),
    and for HL the level code and the ID (HL03, HL01)."""
    if segment.id == "HL":
        return ["HL03", "HL01"]
    segment_definition = definition.segments.get(segment.id) if definition is not None else None
    if segment_definition is None:
        return []
    return [f"{segment.id}{position:02d}" for position, element in enumerate(segment_definition.elements[:2], 1)
            if element.type == "ID"][:1]


def _condition(segment: Segment, element_id: str) -> str | None:
    value = segment.value(int(element_id[-2:]))
    return f'{segment.id}[{element_id}="{value}"]' if value and '"' not in value else None


class _Printer:
    """Prints one set's tree: each value with a path that reads it (see the module docstring)."""

    def __init__(self, ts: TransactionSet, indent: str) -> None:
        self.ts = ts
        self.definition = ts.definition
        self.indent = indent
        self.lines: list[str] = []

    def run(self) -> list[str]:
        self.loop(self.ts, self.ts, "", self.indent)
        return self.lines

    def loop(self, context: Loop, node: Loop, prefix: str, indent: str) -> None:
        """The children of `node`; paths are relative to `context`, beginning with `prefix`."""
        for child in node.children:
            if child is self.ts.st or child is self.ts.se:
                continue
            if isinstance(child, Segment):
                self.segment(context, child, prefix, indent)
            else:
                self.nested(context, node, child, prefix, indent)

    def segment(self, context: Loop, segment: Segment, prefix: str, indent: str) -> None:
        for position, element in enumerate(segment.elements, 1):
            parts = element if isinstance(element, list) else [element]
            for component, value in enumerate(parts, 1):
                if not value:
                    continue
                name = f"{segment.id}{position:02d}"
                codec_name = name + (f"-{component}" if isinstance(element, list) else "")
                shown = name + (f"_{component}" if isinstance(element, list) else "")
                path = self._element_path(context, segment, prefix, codec_name, value)
                where = path.replace(codec_name, shown) if path else f"{shown} (another {segment.id} comes first)"
                self.lines.append(f"{indent}{where} = {value}")

    def _element_path(self, context: Loop, segment: Segment, prefix: str, name: str, value: str) -> str | None:
        """The first of the candidate paths that reads `value` from `context`."""
        candidates = [prefix + name]
        for qualifier in _qualifiers(segment, self.definition):
            condition = _condition(segment, qualifier)
            if condition:
                candidates.append(f"{prefix}{condition}.{name}")
        return next((path for path in candidates if context.get(path) == value), None)

    def nested(self, context: Loop, parent: Loop, loop: Loop, prefix: str, indent: str) -> None:
        trigger = loop.trigger
        for qualifier in _qualifiers(trigger, self.definition) if trigger is not None else []:
            condition = _condition(trigger, qualifier)  # type: ignore[arg-type]
            found = [step for step in (condition, prefix + condition if condition and prefix else None) if step]
            for step in found:
                chosen = paths.select(context, step)
                if chosen and chosen[0] is loop:
                    self.lines.append(f"{indent}{step}")
                    self.loop(context, loop, step + ".", indent + "  ")
                    return
        siblings = [child for child in parent.children if isinstance(child, Loop) and child.id == loop.id]
        if len(siblings) == 1:
            self.lines.append(f"{indent}{loop.id}")
            self.loop(context, loop, prefix, indent + "  ")
            return
        number = next(index for index, sibling in enumerate(siblings, 1) if sibling is loop)
        self.lines.append(f"{indent}for each {loop.id} ({number} of {len(siblings)})")
        self.loop(loop, loop, "", indent + "  ")


def _envelope_lines(segment: Segment, indent: str) -> list[str]:
    return [f"{indent}{segment.id}{position:02d} = {value.strip()}"
            for position, value in enumerate(segment.elements, 1)
            if isinstance(value, str) and value.strip()]


def _issue_text(issue: Issue) -> str:
    return f"{issue.code} {issue.severity}: {issue.message} ({issue.position})"


def inspect_file(args: argparse.Namespace) -> int:
    """``crossdock x12 inspect FILE``."""
    document = _read(args.file, x12.Mode.LENIENT)
    if isinstance(document, int):
        return document
    lines = [str(args.file)]
    for interchange in document.interchanges:
        isa = interchange.isa
        lines.append(f"interchange {interchange.control_number} from {isa.value(5)} {isa.value(6).strip()} "
                     f"to {isa.value(7)} {isa.value(8).strip()}")
        lines += _envelope_lines(isa, "  ")
        for group in interchange.groups:
            lines.append(f"  group {group.functional_id} {group.control_number} ({group.version})")
            lines += _envelope_lines(group.gs, "    ")
            for ts in group.sets:
                name = f": {ts.definition.name} ({ts.definition.version})" if ts.definition is not None else ""
                lines.append(f"    set {ts.set_id} {ts.control_number}{name}")
                lines += _Printer(ts, "      ").run()
    issues = document.all_issues()
    if issues:
        lines.append(f"{len(issues)} issue(s):")
        lines += [f"  {_issue_text(issue)}" for issue in issues]
    sys.stdout.write("\n".join(lines) + "\n")
    return EXIT_OK


# validate ------------------------------------------------------------------------------------------


def _issue_dict(issue: Issue) -> dict[str, Any]:
    return {"code": issue.code, "severity": str(issue.severity), "message": issue.message,
            **issue.position.as_dict()}


def _validate_one(path: Path, mode: x12.Mode) -> dict[str, Any]:
    """What `x12 validate` says about one file, as the JSON output has it."""
    try:
        data = path.read_bytes()
    except OSError as error:
        return {"file": str(path), "readable": False, "valid": False, "issues": [],
                "error": error.strerror or str(error)}
    try:
        issues = [_issue_dict(issue) for issue in x12.read(data, mode=mode).all_issues()]
    except x12.X12Error as error:
        issues = [{"code": error.code, "severity": "error", "message": error.message,
                   **error.position.as_dict()}]
    valid = not any(issue["severity"] == "error" for issue in issues)
    return {"file": str(path), "readable": True, "valid": valid, "issues": issues}


def validate_files(args: argparse.Namespace) -> int:
    """``crossdock x12 validate [--strict] [--format json] FILE...``."""
    mode = x12.Mode.STRICT if args.strict else x12.Mode.LENIENT
    results = [_validate_one(path, mode) for path in args.files]
    if args.format == "json":
        sys.stdout.write(json.dumps(results, indent=2) + "\n")
    else:
        lines: list[str] = []
        for result in results:
            if not result["readable"]:
                lines.append(f"{result['file']}: cannot read: {result['error']}")
                continue
            for issue in result["issues"]:
                where = ", ".join(f"{key} {issue[key]}" for key in ("segment", "offset", "line", "path")
                                  if key in issue)
                lines.append(f"{result['file']}:{issue.get('line', 0)}: {issue['code']} {issue['severity']}: "
                             f"{issue['message']} ({where})")
            errors = sum(1 for issue in result["issues"] if issue["severity"] == "error")
            warnings = len(result["issues"]) - errors
            lines.append(f"{result['file']}: {'valid' if result['valid'] else 'invalid'}, {errors} error(s), "
                         f"{warnings} warning(s)")
        sys.stdout.write("\n".join(lines) + "\n")
    if not all(result["readable"] for result in results):
        return EXIT_UNREADABLE
    return EXIT_OK if all(result["valid"] for result in results) else EXIT_INVALID


# ack -----------------------------------------------------------------------------------------------


def inferred_profile(interchange: Interchange) -> PartnerProfile:
    """The profile of the sender of `interchange`, from its envelope (version from its first group)."""
    isa = interchange.isa
    code = base_version(interchange.groups[0].version) if interchange.groups else ""
    version = code if code.isdigit() and len(code) == 6 else "004010"
    return PartnerProfile.inferred(isa.value(5), isa.value(6), isa.value(7), isa.value(8), version)


def acknowledge_file(args: argparse.Namespace) -> int:
    """``crossdock x12 ack FILE``."""
    document = _read(args.file, x12.Mode.STRICT if args.strict else x12.Mode.LENIENT)
    if isinstance(document, int):
        return document
    chosen = [interchange for interchange in document.interchanges
              if args.partner_id is None or interchange.isa.value(6).strip() == args.partner_id]
    numbers = MemoryControlNumbers()
    out: list[bytes] = []
    for interchange in chosen:
        profile = dataclasses.replace(inferred_profile(interchange), acknowledgment=args.ack, ta1=args.ta1,
                                      acknowledge_accepted_sets=not args.errors_only)
        answers = asyncio.run(acknowledge(Document([interchange]), profile, numbers))
        suffix = "" if args.raw else "\n"
        delimiters = dataclasses.replace(profile_delimiters(profile), suffix=suffix)
        out += [x12.encode(answer, delimiters=delimiters) for answer in answers]
    if not out:
        who = f" from {args.partner_id}" if args.partner_id else ""
        print(f"{args.file}: nothing to acknowledge{who}", file=sys.stderr)
        return EXIT_OK
    data = b"".join(out)
    sys.stdout.write(data.decode("utf-8") + ("" if data.endswith(b"\n") else "\n"))
    return EXIT_OK


# overdue -------------------------------------------------------------------------------------------


def _iso(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _late(seconds: float) -> str:
    """How late, to the two largest units: "2d 3h", "5h 12m", "7m", "30s"."""
    whole = int(seconds)
    days, rest = divmod(whole, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m" if minutes else f"{secs}s"


async def _overdue(folder: Path, now: float) -> list[SentSet]:
    async with embedded_stores(folder) as stores:
        assert stores.edi is not None  # embedded_stores always opens them
        return await stores.edi.sent.overdue(now)


def list_overdue(args: argparse.Namespace) -> int:
    """``crossdock x12 overdue [--data DIR] [--partner NAME] [--format json]``."""
    folder = data_dir(args)
    # Opening the stores would create an empty database: a mistyped --data would then report
    # nothing overdue and exit 0, and an alert that relies on the exit code would never fire.
    if not (folder / STORE_FILE).is_file():
        print(f"{folder}: no crossdock stores ({STORE_FILE}) here; --data names the folder `crossdock run` "
              "uses", file=sys.stderr)
        return EXIT_UNREADABLE
    now = clock.now()
    late = [entry for entry in asyncio.run(_overdue(folder, now))
            if args.partner is None or entry.partner == args.partner]
    if args.format == "json":
        rows = [{"partner": entry.partner, "group_control": entry.group_control, "set_control": entry.set_control,
                 "set_id": entry.set_id, "sent_at": _iso(entry.sent_at), "due_at": _iso(entry.due_at),
                 "late_seconds": round(now - entry.due_at)} for entry in late]
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
    elif not late:
        who = f" from {args.partner}" if args.partner else ""
        print(f"no acknowledgment overdue{who}")
    else:
        table = [("PARTNER", "GS06", "ST02", "SET", "SENT AT", "DUE AT", "LATE")]
        table += [(entry.partner, entry.group_control, entry.set_control, entry.set_id, _iso(entry.sent_at),
                   _iso(entry.due_at), _late(now - entry.due_at)) for entry in late]
        widths = [max(len(row[column]) for row in table) for column in range(len(table[0]))]
        for row in table:
            print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
        print(f"{len(late)} set(s) overdue")
    return EXIT_OVERDUE if late else EXIT_OK
