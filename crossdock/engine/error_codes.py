"""Every error code a running route can record, with what it means.

These are the codes of dead letters, logs and the journal (lint codes are in
:mod:`crossdock.dsl.codes`; X12 envelope and syntax codes in docs/x12.md). `docs/errors.md` is
generated from this table (`python -m crossdock.engine.error_codes`) and a test checks that every code
raised in the engine, connectors and formats is listed here.
"""

from __future__ import annotations

import sys
from pathlib import Path

# code: (transient or permanent, meaning)
ERROR_CODES: dict[str, tuple[str, str]] = {
    "E000": ("either", "An error without a more precise code."),
    "T000": ("transient", "A transient failure without a more precise code; retried per policy."),
    "P000": ("permanent", "A permanent failure without a more precise code; dead-lettered."),
    "X001": ("permanent", "An unexpected failure inside a step (a bug or an unmapped library error); the "
                          "message is dead-lettered with the Python error's type and text."),
    "ENV001": ("permanent", "An env or secret reference has no value when the route starts."),
    # decoding
    "D000": ("permanent", "The payload is not valid in its format."),
    "D101": ("permanent", "JSON: the payload is not UTF-8 (the byte offset is given)."),
    "D102": ("permanent", "JSON: the payload is empty."),
    "D103": ("permanent", "JSON: a syntax error, with offset, line and column."),
    "D104": ("permanent", "JSON: NaN, Infinity, or a number too long to write out."),
    "D110": ("permanent", "JSON: a value that cannot be written as JSON."),
    "D201": ("permanent", "XML: not well-formed, with the line and column libxml2 reports."),
    "D202": ("permanent", "XML: the payload is empty."),
    "D203": ("permanent", "XML: a DOCTYPE declaration (such as an external DTD to load): refused, never processed."),
    "D204": ("permanent", "XML: entity declarations (expansion bombs such as billion laughs): refused, with their "
                          "line."),
    "D205": ("permanent", "XML: an external entity (XXE: a file or URL to read): refused, with its line."),
    "D206": ("permanent", "XML: the payload is larger than `max megabytes` allows."),
    "D207": ("permanent", "XML: the root element or its namespace is not the one `read xml \"ROOT\" \"NAMESPACE\"` "
                          "expects."),
    "D208": ("permanent", "XML: the document does not match its XSD (`schema`); every error is listed with its line "
                          "(none when streaming), element path and message."),
    "D209": ("permanent", "XML: the XSD named by `schema` cannot be found in schemas/xsd/, read or compiled."),
    "D210": ("permanent", "XML: a value that cannot be written as XML (a name that is not an XML name, a character "
                          "XML 1.0 cannot carry, an object without a `root`)."),
    "D211": ("permanent", "XML: the document written does not match the sink's `schema`; every error is listed."),
    "D212": ("permanent", "XML: a document read with `split on` was read twice (it streams once, by `for each`)."),
    # maps and validation
    "M000": ("permanent", "A map failed."),
    "M001": ("permanent", "A map expression failed (a function refused a value, a number was text...); the "
                          "dead letter names the map line."),
    "M002": ("permanent", "A map line failed unexpectedly; the dead letter names it."),
    "M003": ("permanent", "A map assigned into a field that already holds a value of another shape."),
    "V001": ("permanent", "The body does not satisfy its canonical model; each bad field is listed."),
    # routing
    "R001": ("permanent", "No `when` of a choice matched and there is no `otherwise`."),
    "R002": ("permanent", "The key of `skip duplicates` is missing from the message."),
    "R003": ("permanent", "`read` got a message that was already decoded."),
    "R004": ("permanent", "`acknowledge` got a message that is not an X12 document."),
    "R005": ("permanent", "`reply` in a route whose source does not wait for an answer (only request-reply "
                          "sources such as `from http get ...` do)."),
    "R006": ("transient", "A `call` step got no answer within `wait at most` (and no recent answer to fall back "
                          "on)."),
    "R007": ("permanent", "A `reject` step dead-lettered the message on purpose; its reason is the error's text."),
    "X12-G002": ("permanent", "An X12 sink got something it cannot write (no `to x12 ...` map before it)."),
    "X12-G003": ("permanent", "A map's X12 output does not fit its set definition (unknown element, bad value)."),
    "X12-G004": ("permanent", "An X12 sink has no `partner`: it cannot know whose envelope to write."),
    "TPL002": ("permanent", "A template (file name, URL) failed for this message, e.g. a name it uses is missing."),
    # connectors
    "FIL001": ("permanent", "file: a folder is missing and `create folders` is off."),
    "FIL002": ("permanent", "file: a file name that is refused (a path, a leading dot, NUL)."),
    "FIL003": ("permanent", "file: an OS error that retrying cannot help (permission denied, read-only...)."),
    "FIL004": ("permanent", "file: both `after success move to` and `after success delete`."),
    "FIL005": ("permanent", "file: a body that is not bytes reached the sink."),
    "FIL010": ("transient", "file: a transient OS error (disk full, I/O error, folder gone)."),
    "QUE001": ("permanent", "queue: a body that is not bytes reached the sink."),
    "AMQ001": ("transient", "amqp: the connection or channel is down, or the broker cannot be reached; the "
                            "connection reconnects with backoff and the send is retried."),
    "AMQ002": ("transient", "amqp: the broker did not answer in time (connect, publisher confirm, get)."),
    "AMQ003": ("permanent", "amqp: access refused: a wrong login, or no permission on the virtual host, "
                            "exchange or queue."),
    "AMQ004": ("permanent", "amqp: an exchange or queue does not exist (with `declare no`, or deleted)."),
    "AMQ005": ("permanent", "amqp: a declaration differs from what the broker has (precondition failed: "
                            "another type, durability or argument)."),
    "AMQ006": ("permanent", "amqp: the broker returned a mandatory message it could not route to any queue."),
    "AMQ007": ("transient", "amqp: the broker nacked a publish."),
    "AMQ008": ("permanent", "amqp: a body that is not bytes reached the sink."),
    "AMQ009": ("permanent", "amqp: options that cannot work (a sink with neither queue nor exchange, a bad url)."),
    "AMQ010": ("transient", "amqp: an acknowledgment whose channel closed; the broker delivers the message "
                            "again."),
    "AMQ011": ("permanent", "amqp: another AMQP protocol error (not an AMQP 0-9-1 port, a virtual host that "
                            "does not exist)."),
    "SFT001": ("permanent", "sftp: the server's host key is not in the known hosts file (or changed); it is "
                            "never added: the message gives the fingerprint offered, to check with the "
                            "server's owner."),
    "SFT002": ("permanent", "sftp: the server refused the login (wrong user, key or password)."),
    "SFT003": ("permanent", "sftp: no such file or folder, or permission denied, on the server (the path is given)."),
    "SFT004": ("permanent", "sftp: the known hosts file is missing or cannot be read."),
    "SFT005": ("permanent", "sftp: unusable credentials or settings: no key or password, a key that cannot be "
                            "read or decrypted, a port that is not a number."),
    "SFT006": ("permanent", "sftp: a file name that is refused (a path, a leading dot, NUL)."),
    "SFT007": ("permanent", "sftp: a body that is not bytes reached the sink."),
    "SFT008": ("permanent", "sftp: both `after success move to` and `after success delete`."),
    "SFT009": ("permanent", "sftp: a remote folder is missing and `create folders` is off."),
    "SFT010": ("transient", "sftp: the connection was refused or lost; the next try connects again."),
    "SFT011": ("transient", "sftp: connecting timed out (`connect timeout`)."),
    "SFT012": ("transient", "sftp: the server reported a failure without a reason (disk full, a name in use...)."),
    "SFT013": ("permanent", "sftp: the server lacks SFTP or the operation, or broke the protocol."),
    "RST001": ("transient", "rest: connecting failed (refused, unreachable, TLS) or the server closed the "
                            "connection without answering."),
    "RST002": ("transient", "rest: a timeout (`connect timeout`, `read timeout` or the whole `timeout`)."),
    "RST003": ("transient", "rest: the answer is not valid HTTP, or the server closed the connection in the "
                            "middle of it."),
    "RST004": ("transient", "rest: the endpoint's circuit breaker is open after failures in a row; requests "
                            "fail fast until the cool-down ends (`retry_after` is what is left of it)."),
    "RST010": ("permanent", "rest: a base url that is not http(s), a path that leaves the base url, or a path "
                            "template not rendered (a dead-letter target)."),
    "RST011": ("permanent", "rest: a body that is not bytes, or a header value that is missing, a structure or "
                            "holds a line break."),
    "RST012": ("permanent", "rest: the OAuth2 token endpoint refused the client (its `error` is quoted) or "
                            "answered without an access token."),
    "RST300": ("permanent", "rest: the API answered with a redirect; redirects are not followed (the "
                            "`Location` is given)."),
    "RST400": ("permanent", "rest: the API refused the request with a 4xx status without a code of its own "
                            "(status and an excerpt of the answer are given)."),
    "RST401": ("permanent", "rest: 401 Unauthorized: the credentials are wrong (with OAuth2, also with a new "
                            "token)."),
    "RST403": ("permanent", "rest: 403 Forbidden: the credentials lack the right to do this."),
    "RST404": ("permanent", "rest: 404 Not Found: a wrong path, or the resource does not exist."),
    "RST409": ("permanent", "rest: 409 Conflict: the API's state forbids this request (often: it exists already)."),
    "RST422": ("permanent", "rest: 422 Unprocessable: the API rejected the content (its explanation is in the "
                            "excerpt)."),
    "RST408": ("transient", "rest: 408 Request Timeout (kind timeout)."),
    "RST429": ("transient", "rest: 429 Too Many Requests (kind throttled); `Retry-After` is honoured."),
    "RST500": ("transient", "rest: a 5xx status other than 502, 503 and 504 (kind other)."),
    "RST502": ("transient", "rest: 502 Bad Gateway (kind unavailable)."),
    "RST503": ("transient", "rest: 503 Service Unavailable (kind unavailable); `Retry-After` is honoured."),
    "RST504": ("transient", "rest: 504 Gateway Timeout (kind timeout)."),
    "HTP001": ("permanent", "http: the source's options do not describe an endpoint (not exactly one of post, put, "
                            "patch, get, delete; a bad path or listen address; get as intake)."),
    "HTP002": ("permanent", "http: two routes serve the same method and path on one address."),
    "HTP003": ("permanent", "http: the listen address cannot be used (in use, not this machine's, no permission)."),
    "HTP010": ("permanent", "http: answered 401: the request has no API key."),
    "HTP011": ("permanent", "http: answered 401: the API key is not one of the connection's keys."),
    "HTP012": ("permanent", "http: answered 401: the signature or timestamp header is missing or malformed."),
    "HTP013": ("permanent", "http: answered 401: the HMAC signature does not match the body."),
    "HTP014": ("permanent", "http: answered 401: the signed timestamp is outside `signature window` (a replay?)."),
    "HTP020": ("permanent", "http: answered 413: the body is larger than `max body` (refused before reading it all)."),
    "HTP021": ("permanent", "http: answered 415: a content type other than JSON, XML or X12."),
    "HTP022": ("permanent", "http: answered 400: malformed HTTP (request line, headers, Content-Length, chunking), "
                            "or the client went away in the middle of the body."),
    "HTP023": ("permanent", "http: answered 400: an Idempotency-Key that is empty, too long or not printable ASCII."),
    "HTP024": ("permanent", "http: answered 422: an Idempotency-Key used before for another request."),
    "HTP025": ("permanent", "http: answered 400: the body is not well formed in its content type."),
    "HTP026": ("transient", "http: answered 408: the body did not arrive within `body timeout`."),
    "HTP029": ("transient", "http: answered 429: the caller's `rate limit` is spent; Retry-After says when to retry."),
    "HTP030": ("permanent", "http: answered 422: a request-reply call was dead-lettered (when its dead letter "
                            "cannot be found; otherwise the answer carries the dead letter's own code)."),
    "HTP031": ("permanent", "http: answered 404: the request-reply route filtered the request out."),
    "HTP032": ("transient", "http: answered 504: the request-reply route did not reply within `answer timeout`."),
    "HTP033": ("transient", "http: answered 503: the route is stopping or restarting (a reload), or too many "
                            "callers wait for it."),
    "HTP034": ("permanent", "http: a `reply` came after the caller was answered (answer timeout) or a second time."),
    "HTP035": ("transient", "http: answered 503: the request could not be stored in the inbox (disk full...)."),
    "HTP040": ("permanent", "http: answered 404: no route serves that path."),
    "HTP041": ("permanent", "http: answered 405: the path is served, but not for that method."),
    "HTP050": ("permanent", "http: answered 500: an unexpected failure while handling a request (logged with "
                            "its traceback)."),
    "SQL001": ("transient", "SQLite busy, locked, I/O error or disk full."),
    "SQL002": ("permanent", "Any other SQLite error."),
    "SQL003": ("permanent", "A SQLite file was written by another version of crossdock."),
}


# The admin port's answers (`crossdock run --admin`): code: (HTTP status, meaning).
ADMIN_CODES: dict[str, tuple[int, str]] = {
    "ADM001": (0, "The admin address cannot be listened on (in use, not this machine's, no permission); "
                  "`crossdock run` exits 1."),
    "ADM400": (400, "A bad request: a `name[]` that is not a metric name, an Accept version that is not one."),
    "ADM401": (401, "A write action (replay, purge) without the admin user and password."),
    "ADM403": (403, "Write actions are disabled: no admin password is set (CROSSDOCK_ADMIN_PASSWORD)."),
    "ADM404": (404, "Nothing is served at that path."),
    "ADM405": (405, "The path is served, but not for that method."),
    "ADM500": (500, "The admin endpoint failed; the daemon's log has the traceback."),
}


def render_error_codes() -> str:
    """docs/errors.md."""
    lines = [
        "# Runtime error codes",
        "",
        "The codes a running route records in dead letters, logs and the journal. Transient errors are",
        "retried per policy; permanent ones go straight to the dead-letter store. Lint codes are in",
        "[diagnostics.md](diagnostics.md). Generated by `python -m crossdock.engine.error_codes`.",
        "",
        "| code | kind | meaning |",
        "| --- | --- | --- |",
    ]
    lines += [f"| {code} | {kind} | {text} |" for code, (kind, text) in ERROR_CODES.items()]
    lines += [
        "",
        "## Admin port answers",
        "",
        "What `crossdock run --admin` answers with, as JSON `{\"error\": code, \"message\": ...}`.",
        "",
        "| code | HTTP status | meaning |",
        "| --- | --- | --- |",
    ]
    lines += [f"| {code} | {status or '-'} | {text} |" for code, (status, text) in ADMIN_CODES.items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("docs/errors.md")
    target.write_text(render_error_codes(), encoding="utf-8")
