"""Every diagnostic code of `crossdock lint` and `crossdock test`, with what it means and what to do.

`docs/diagnostics.md` is generated from this table (`python -m crossdock.dsl.codes`); tests check that
every code written in the lint sources is documented here and that each one lint can report has a
test with its line and column (tests/dsl/test_diagnostics.py). Two kinds of codes here are not
reported by lint: DSL000 (an internal error, a bug) and TST* (reported by `crossdock test`).
"""

from __future__ import annotations

import sys
from pathlib import Path

CODES: dict[str, tuple[str, str]] = {
    # files
    "IO001": ("cannot read a file", "The file or folder does not exist or cannot be read."),
    "IO002": ("not UTF-8", "Route files are UTF-8 text; the byte offset of the first bad byte is given."),
    "IO003": ("no route files", "No `.route` file was found under the paths given."),
    # syntax
    "DSL000": ("internal error", "The parser failed unexpectedly; please report it with the file. Not a "
                                 "problem of the route file: lint never reports it for valid or invalid input "
                                 "unless crossdock has a bug."),
    "DSL001": ("unexpected word", "The parser expected something else here; the message lists what, and a "
                                  "misspelled keyword gets a did-you-mean."),
    "DSL002": ("unexpected character", "A character that the language does not use at this place."),
    "DSL003": ("unclosed string", "A string must end with `\"` on the same line."),
    "DSL004": ("unknown time unit", "Durations are `30s`, `5m`, `2h`, `90d`, or a number and a unit word "
                                    "(ms, seconds, minutes, hours, days, weeks)."),
    "DSL005": ("unknown escape", "Inside strings only `\\\"`, `\\\\`, `\\n`, `\\t` and `\\r` are escapes."),
    "DSL006": ("missing end", "A block (route, map, connection, when, for each...) was not closed with `end`; "
                              "the caret points at the keyword that opened it."),
    "DSL007": ("whole number expected", "`retry N times` and `process N at a time` take a whole number."),
    # names
    "DUP001": ("duplicate name", "Two definitions of the same kind share a name; all files of a folder share "
                                 "one namespace."),
    "DUP002": ("duplicate table key", "A lookup table lists the same key twice."),
    "NAME001": ("unknown connection", "A route names a connection that no file declares."),
    "NAME002": ("unknown map", "`map with` names a map that no file declares."),
    "NAME003": ("unknown policy", "`use policy` names a policy that no file declares."),
    "NAME005": ("unknown model", "`validate as` or a map's `to` names no canonical model."),
    "NAME006": ("unknown connector", "The connector kind after `from`, `to` or `is` is not registered."),
    "NAME007": ("unknown format", "The format after `read`, `format` or a map's `from` is not registered."),
    "NAME008": ("wrong connection kind", "The connection exists but is of another kind than the step uses."),
    "NAME009": ("unknown function", "Maps may call only the functions of docs/functions.md."),
    "NAME010": ("connection needed", "This connector needs a connection name after its kind."),
    "NAME011": ("unknown partner", "`partner \"name\"` on an X12 sink names no `partner` block."),
    # options
    "OPT001": ("unknown option", "The connector, format or step declares no such option (a misspelled step "
                                 "under a source or sink lands here too)."),
    "OPT002": ("bad option value", "The value does not have the option's type (duration, number, choice...)."),
    "OPT003": ("connection-only option", "Hosts, users and secrets belong in a `connection` block."),
    "OPT004": ("step-only option", "This option is set per route step, not on a connection."),
    "OPT005": ("option set twice", "The same option is given twice for one connector or step."),
    "OPT006": ("required option missing", "The connector needs this option, on the step or its connection."),
    "OPT007": ("wrong role", "The connector cannot be used this way (as a source or as a sink)."),
    "TPL001": ("bad template", "A string template (file name, URL) is not valid Jinja2."),
    "TBL001": ("table file unreadable", "A CSV table file cannot be read (paths are relative to the route file)."),
    "TBL002": ("table file empty", "A CSV table file holds no rows."),
    "TBL003": ("table column missing", "The CSV table file has no such column."),
    # environment
    "ENV001": ("environment variable not set", "Reported with `--require-env`; `crossdock run` refuses to start."),
    "SEC001": ("secret not set", "Reported with `--require-env`: no file in $CROSSDOCK_SECRETS_DIR and no "
                                 "environment variable of that name."),
    # policies
    "POL001": ("unbounded retries", "More than 100 retries; failures should reach the dead-letter store."),
    "POL002": ("no dead-letter target", "Every route that delivers needs `dead letter to ...`, directly or "
                                        "through a policy."),
    "POL003": ("unknown error kind", "`retry on` takes timeout, connection, throttled, unavailable, other or "
                                     "transient."),
    "POL004": ("setting given twice", "A route, branch or policy sets the same thing twice, or uses two "
                                      "policies."),
    "POL005": ("backoff bounds reversed", "The longest wait is shorter than the first."),
    "POL006": ("zero backoff", "The first wait must be longer than zero."),
    "POL008": ("bad concurrency", "`process N at a time` takes 1 to 256."),
    # routes
    "RTE001": ("route never delivers", "A route needs at least one `to` step."),
    "RTE002": ("choice without otherwise", "Messages that match no `when` are dead-lettered (warning)."),
    "RTE003": ("map does not fit", "The map reads another kind of message than the route has at that step "
                                   "(a map from Order after `validate as Invoice`; JSON and a canonical model "
                                   "fit each other)."),
    "RTE005": ("no duplicate window", "`skip duplicates ... for` needs a duration longer than zero."),
    "RTE006": ("not decoded yet", "A step reads the message before any `read` step decoded it."),
    "RTE007": ("nothing to acknowledge", "`acknowledge` follows `read x12`: only X12 is acknowledged."),
    "RTE008": ("unknown acknowledgment", "`acknowledge with` takes 997 or 999 (or no number: the partner's "
                                         "profile decides)."),
    "RTE009": ("bad reply status", "`reply` takes an HTTP status from 100 to 599."),
    "RTE010": ("nothing to call", "`call` needs a connector that answers requests (rest)."),
    "RTE011": ("constant tracking key", "`track by` a literal gives every message of the route the same business "
                                        "key, so `crossdock trace` finds them all as one story (warning)."),
    "RTE012": ("rejection without a reason", "`reject` takes the reason the dead letter records, and it is empty."),
    "RTE013": ("step after reject", "A step after `reject` in the same block never runs (warning)."),
    # maps
    "MAP001": ("unknown target field", "The target model has no such field."),
    "MAP002": ("required field not assigned", "The target model requires a field the map never assigns."),
    "MAP003": ("wrong shape or type", "A list, object or value of the wrong kind for the target field."),
    "MAP004": ("unknown source path", "The source schema given with `from json schema` has no such field."),
    "MAP005": ("assigned twice", "A field is assigned twice; the last assignment wins (warning)."),
    "MAP006": ("wrong argument count", "A function is called with too few or too many arguments."),
    "MAP007": ("read before assigned", "`out.` reads a field that the map has not assigned yet."),
    "MAP008": ("source schema unreadable", "The JSON Schema named by `from json schema` cannot be read."),
    "MAP010": ("bad JSONPath", "A `$...` path is not valid jsonpath-ng syntax."),
    "MAP011": ("unknown loop value", "Inside `for each`, `loop.index`, `loop.count` and `loop.value` are known."),
    "MAP012": ("bad index", "`[n]` takes a whole number from 0."),
    "MAP013": ("bad X12 path", "X12 paths are segments and elements such as `BEG03`, `N1[N101 = \"ST\"].N104`, "
                               "`REF04_2`; conditions compare an element with a value."),
    "MAP014": ("unknown X12 segment or element", "The transaction set's definition (schemas/x12) has no such "
                                                 "segment, loop or element position."),
    "MAP015": ("not writable as X12", "A target of a map `to x12 SET` is no element, segment or loop of the set "
                                      "at that place, or has the wrong shape (see the X12-B codes in docs/x12.md)."),
    "MAP016": ("bad XML path", "An XML path that cannot be read: a name that is not an XML name, an undeclared "
                               "namespace prefix (declare it in a table `xmlns`), a condition other than comparisons "
                               "of the element's paths with text or numbers (use `for each ... where`), invalid "
                               "XPath in `xpath[...]`, or an `xmlns` entry that is not a prefix and a namespace."),
    "MAP017": ("unknown XML element or attribute", "The XSD of `from xml ... schema` allows no such element (or, "
                                                   "last in a path, attribute) at that place, or declares no such "
                                                   "root element."),
    "MAP018": ("XSD unusable", "The XSD named by `from xml ... schema` cannot be found in schemas/xsd/, read or "
                               "compiled."),
    # map tests: reported by `crossdock test`, not by lint
    "TST001": ("fixture missing", "A map test names an input or expected file that does not exist (reported by "
                                  "`crossdock test`)."),
    "TST002": ("bad test setting", "A map test takes `input \"file\"` and `expect \"file\"` (reported by "
                                   "`crossdock test`)."),
}


def render_codes() -> str:
    """docs/diagnostics.md."""
    lines = [
        "# Diagnostic codes",
        "",
        "`crossdock lint` prints `path:line:col: CODE severity: message`, the line with a caret and a hint;",
        "`--format json` and `--format sarif` carry the same fields. It exits 0 when there is no error",
        "(warnings allowed), 1 when there are errors, and 2 on a usage error or when the paths cannot be read.",
        "The TST codes come from `crossdock test`. The language itself is described in [language.md](language.md).",
        "",
        "Generated from `crossdock/dsl/codes.py` by `python -m crossdock.dsl.codes`; do not edit by hand.",
        "",
        "| code | what | meaning |",
        "| --- | --- | --- |",
    ]
    lines += [f"| {code} | {title} | {text} |" for code, (title, text) in CODES.items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("docs/diagnostics.md")
    target.write_text(render_codes(), encoding="utf-8")
