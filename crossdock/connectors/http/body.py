"""Request bodies: which content types are taken, reading with a size limit, and a well-formedness check.

The body is read as it streams in and counted: a declared Content-Length over the limit is refused
before a byte is read, a chunked body as soon as the count passes the limit, so a 2 GB upload costs
at most `max body` of memory. A body is checked to be well formed in its content type before it is
accepted, so the caller hears about a truncated JSON document now rather than never (it would only
reach the dead-letter store).
"""

from __future__ import annotations

import asyncio

import orjson
from lxml import etree
from starlette.requests import ClientDisconnect, Request

from crossdock.connectors.http.problems import HttpProblem

JSON_KIND, XML_KIND, X12_KIND = "json", "xml", "x12"

# Content types by the format they carry; `+json` and `+xml` suffixes (RFC 6839) count as their base.
CONTENT_TYPES: dict[str, tuple[str, ...]] = {
    JSON_KIND: ("application/json",),
    XML_KIND: ("application/xml", "text/xml"),
    X12_KIND: ("application/edi-x12", "application/x12"),
}
_KINDS = {media: kind for kind, medias in CONTENT_TYPES.items() for media in medias}

# The parser never resolves entities nor loads DTDs or anything from the network: a body is checked,
# never expanded (no billion laughs, no XXE).
_XML_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)

CLOSE = {"Connection": "close"}
"""Headers of an answer given before the body was read: the connection cannot be reused, and closing
it is what stops the client from sending the rest."""


def content_kind(content_type: str | None) -> str:
    """`json`, `xml` or `x12` for a Content-Type header; 415 for anything else."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    kind = _KINDS.get(media)
    if kind is None and "/" in media:
        if media.endswith("+json"):
            kind = JSON_KIND
        elif media.endswith("+xml"):
            kind = XML_KIND
    if kind is None:
        accepted = ", ".join(m for medias in CONTENT_TYPES.values() for m in medias)
        shown = f"'{media}'" if media else "no Content-Type"
        raise HttpProblem(415, "HTP021", f"{shown} is not accepted; send one of: {accepted}")
    return kind


def declared_length(value: str | None, limit: int) -> int | None:
    """The Content-Length header as a number (None when absent); 413 over `limit`."""
    if value is None:
        return None
    if not value.strip().isdigit():
        raise HttpProblem(400, "HTP022", f"Content-Length '{value}' is not a number", headers=CLOSE)
    length = int(value)
    if length > limit:
        raise HttpProblem(413, "HTP020", f"the body is {length} bytes; this endpoint takes at most {limit}",
                          headers=CLOSE)
    return length


async def read_body(request: Request, content_length: str | None, limit: int, timeout: float) -> bytes:
    """The whole body of a Starlette request, refused (413) once past `limit` bytes and (408) when it
    takes longer than `timeout` seconds to arrive; 400 when the client goes away mid-body."""
    declared_length(content_length, limit)
    chunks: list[bytes] = []
    size = 0
    try:
        # asyncio's timeout rather than anyio's: a quarter of the cost on every request, and the server
        # runs on asyncio only anyway (uvicorn).
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise HttpProblem(413, "HTP020", f"the body is over {limit} bytes, the most this endpoint takes",
                                      headers=CLOSE)
                chunks.append(chunk)
    except TimeoutError:
        raise HttpProblem(408, "HTP026", f"the body did not arrive within {timeout:g}s", headers=CLOSE) from None
    except ClientDisconnect:
        raise HttpProblem(400, "HTP022", f"the client went away after {size} bytes of the body") from None
    return b"".join(chunks)


def check_well_formed(kind: str, body: bytes) -> None:
    """400 (HTP025) when `body` is not a well-formed document of its kind."""
    if kind == JSON_KIND:
        try:
            orjson.loads(body)
        except orjson.JSONDecodeError as error:
            raise HttpProblem(400, "HTP025", f"the body is not valid JSON: {error}") from None
    elif kind == XML_KIND:
        try:
            etree.fromstring(body, _XML_PARSER)
        except etree.XMLSyntaxError as error:
            raise HttpProblem(400, "HTP025", f"the body is not well-formed XML: {error}") from None
    elif body.lstrip()[:3] != b"ISA":
        raise HttpProblem(400, "HTP025", "the body is not an X12 interchange: it does not start with ISA")
