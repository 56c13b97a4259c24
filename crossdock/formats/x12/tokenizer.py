"""Byte-level, streaming X12 tokenizer: bytes in, :class:`~crossdock.formats.x12.segment.Segment` out.

Reads a binary file object in chunks and never holds more than one chunk plus one segment, whatever
the size of the file. Delimiters come from each ISA header (see
:mod:`crossdock.formats.x12.delimiters`) and are read again at every ISA, so a file may hold several
interchanges with different delimiters.

Tolerated without complaint: a UTF-8 byte order mark before the first ISA, whitespace before it, CR
and/or LF after each terminator, whitespace and DOS end-of-file marks (0x1A) after the last segment.
Recorded as :attr:`Tokenizer.findings` for the envelope validator to report (the segments are still
produced): a last segment without terminator (X12-E021), line breaks inside a segment, which are
removed (X12-E022, the 80-column wrapped files), and empty segments, which are skipped (X12-E023).

Raised as :class:`~crossdock.formats.x12.errors.X12Error`, the only exception bad input can cause:
input that does not start with ISA (X12-T001), a truncated or malformed ISA (X12-T002), unusable
delimiters (X12-T003 to X12-T005), a segment longer than `max_segment_length` bytes (X12-T006).

Segment data is decoded with `encoding` (UTF-8 by default) using ``surrogateescape``, so any byte
survives a parse / generate round trip unchanged.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from typing import IO, NamedTuple

from crossdock.engine.errors import Position
from crossdock.formats.x12.delimiters import Delimiters, read_isa_header
from crossdock.formats.x12.errors import X12Error
from crossdock.formats.x12.segment import Element, IsaSegment, Segment

DEFAULT_CHUNK_SIZE = 1 << 18
DEFAULT_MAX_SEGMENT_LENGTH = 1 << 16
ERRORS = "surrogateescape"

_BOM = b"\xef\xbb\xbf"
# Between segments only line breaks are expected; before the first ISA and after the last segment,
# spaces, tabs and the DOS end-of-file mark are also ignored.
_OUTER_WHITESPACE = b" \t\r\n\x1a"

Source = bytes | bytearray | memoryview | IO[bytes] | os.PathLike[str]


class Finding(NamedTuple):
    """Something the tokenizer noticed but read through; the envelope validator reports it."""

    code: str
    message: str
    segment: Segment


def _open(source: Source) -> IO[bytes] | nullcontext[IO[bytes]]:
    if isinstance(source, bytes | bytearray | memoryview):
        return io.BytesIO(source)
    if isinstance(source, os.PathLike):
        return open(source, "rb")  # noqa: SIM115  # closed by the caller's `with`
    return nullcontext(source)


class Tokenizer:
    """Iterate the segments of `source` (bytes, a path, or a binary file object, which is not closed).

    After (or during) iteration, :attr:`delimiters` holds the current interchange's delimiters,
    :attr:`bom` whether the input began with a byte order mark, and :attr:`findings` what was read
    through (the envelope validator drains it as it goes).
    """

    def __init__(
        self,
        source: Source,
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        max_segment_length: int = DEFAULT_MAX_SEGMENT_LENGTH,
        encoding: str = "utf-8",
    ) -> None:
        self.source = source
        self.chunk_size = chunk_size
        self.max_segment_length = max_segment_length
        self.encoding = encoding
        self.delimiters: Delimiters | None = None
        self.bom = False
        self.findings: list[Finding] = []
        self.end_offset = 0
        """Byte offset just past the last byte read, once iteration is over."""
        self.end_line = 1
        """Line of the end of the input, once iteration is over."""
        self.count = 0
        """Number of segments produced so far."""
        self._buf = b""
        self._pos = 0
        self._base = 0
        self._eof = False
        self._read: Callable[[int], bytes] = lambda _size: b""

    def __iter__(self) -> Iterator[Segment]:
        with _open(self.source) as stream:
            self._read = stream.read
            yield from self._segments()

    # Buffer management: `_buf[_pos:]` is unread; `_base` is the file offset of `_buf[0]`.

    def _more(self) -> None:
        """Drop consumed bytes and append the next chunk (or note the end of input)."""
        self._base += self._pos
        self._buf = self._buf[self._pos:]
        self._pos = 0
        chunk = self._read(self.chunk_size)
        if chunk:
            self._buf += chunk
        else:
            self._eof = True

    def _position(self, line: int, offset: int | None = None) -> Position:
        offset = self._base + self._pos if offset is None else offset
        return Position(offset=offset, line=line, segment=self.count + 1)

    def _skip_whitespace(self, line: int) -> int:
        """Skip outer whitespace at `_pos`; returns the line after it."""
        buf, pos = self._buf, self._pos
        stripped = len(buf) - len(buf[pos:].lstrip(_OUTER_WHITESPACE))
        line += buf.count(b"\n", pos, stripped)
        self._pos = stripped
        return line

    def _start(self, line: int) -> int:
        """Check the input begins (after a BOM and whitespace) with ISA; returns the line of the ISA."""
        while len(self._buf) - self._pos < len(_BOM) + 3 and not self._eof:
            self._more()
        if self._buf.startswith(_BOM, self._pos):
            self.bom = True
            self._pos += len(_BOM)
        line = self._skip_whitespace(line)
        while len(self._buf) - self._pos < 3 and not self._eof:
            self._more()
            line = self._skip_whitespace(line)
            if self._base + self._pos > self.max_segment_length:
                break
        if not self._buf.startswith(b"ISA", self._pos):
            what = "empty input" if self._eof and self._pos == len(self._buf) else "input does not start with ISA"
            raise X12Error("X12-T001", f"not X12: {what}", self._position(line))
        return line

    def _header(self, line: int) -> tuple[Delimiters, int]:
        """Read the delimiters of the ISA at `_pos`; returns them and the ISA's file offset."""
        while True:
            result = read_isa_header(self._buf, self._pos, self._position(line), eof=self._eof)
            if result is not None:
                return result[0], self._base + self._pos
            self._more()

    def _segments(self) -> Iterator[Segment]:
        line = self._start(1)
        delimiters: Delimiters | None = None
        header_at = -1
        max_length = self.max_segment_length
        encoding = self.encoding
        findings = self.findings
        while True:
            if delimiters is None:
                delimiters, header_at = self._header(line)
                self.delimiters = delimiters
                terminator = delimiters.segment
                terminator_bytes = terminator.encode("ascii")
                separator = delimiters.element
                component = delimiters.component
                repetition = delimiters.repetition
                newline_terminated = terminator == "\n"
            buf, pos = self._buf, self._pos
            cut = buf.rfind(terminator_bytes, pos)
            if cut < 0:
                line = self._skip_whitespace(line)
                if self._buf.startswith(b"ISA", self._pos):
                    # A new interchange whose terminator may differ: read its header first.
                    delimiters = None
                    continue
                if self._eof:
                    yield from self._tail(line, delimiters)
                    return
                if len(self._buf) - self._pos > max_length:
                    raise X12Error("X12-T006", f"no segment terminator within {max_length} bytes",
                                   self._position(line))
                self._more()
                continue
            text = buf[pos:cut].decode(encoding, ERRORS)
            single_byte = len(text) == cut - pos
            line_breaks = "\n" in text or "\r" in text
            offset = self._base + pos
            restart = False
            for part in text.split(terminator):
                size = len(part) if single_byte else len(part.encode(encoding, ERRORS))
                start = offset
                if line_breaks and part and part[0] in "\r\n":
                    stripped = part.lstrip("\r\n")
                    lead = len(part) - len(stripped)
                    line += part.count("\n", 0, lead)
                    start += lead
                    part = stripped
                if not part:
                    if newline_terminated:
                        line += 1
                    else:
                        findings.append(Finding("X12-E023", "empty segment skipped",
                                                Segment("", [], self.count + 1, start, line)))
                    offset += size + 1
                    continue
                segment_line = line
                if line_breaks and ("\n" in part or "\r" in part):
                    line += part.count("\n")
                    part = part.replace("\r", "").replace("\n", "")
                    wrapped = True
                else:
                    wrapped = False
                fields = part.split(separator)
                segment_id = fields[0]
                if segment_id == "ISA" or (len(segment_id) > 3 and segment_id.startswith("ISA")):
                    if start != header_at:
                        header = read_isa_header(buf, start - self._base, self._position(segment_line, start),
                                                 eof=self._eof)
                        if header is None or header[0] != delimiters:
                            self._pos = start - self._base
                            line = segment_line
                            delimiters = None
                            restart = True
                            break
                        header_at = start
                    self.count += 1
                    segment: Segment = IsaSegment(fields[1:], delimiters, self.count, start, segment_line)
                else:
                    if size > max_length:
                        raise X12Error("X12-T006", f"segment longer than {max_length} bytes",
                                       self._position(segment_line, start))
                    self.count += 1
                    elements: list[Element] = fields[1:]  # type: ignore[assignment]
                    if component in part:
                        elements = _split_components(elements, component, repetition)
                    segment = Segment(segment_id, elements, self.count, start, segment_line)
                if wrapped:
                    findings.append(Finding("X12-E022", "line break inside the segment removed", segment))
                yield segment
                if newline_terminated:
                    line += 1
                offset += size + 1
            if not restart:
                self._pos = cut + 1
                self._more()

    def _tail(self, line: int, delimiters: Delimiters) -> Iterator[Segment]:
        """The bytes after the last terminator: nothing, or one unterminated segment."""
        tail = self._buf[self._pos:].rstrip(_OUTER_WHITESPACE)
        start = self._base + self._pos
        if tail:
            if len(tail) > self.max_segment_length:
                raise X12Error("X12-T006", f"segment longer than {self.max_segment_length} bytes",
                               self._position(line))
            text = tail.decode(self.encoding, ERRORS)
            segment_line = line
            if "\n" in text or "\r" in text:
                line += text.count("\n")
                text = text.replace("\r", "").replace("\n", "")
            fields = text.split(delimiters.element)
            elements: list[Element] = fields[1:]  # type: ignore[assignment]
            if delimiters.component in text:
                elements = _split_components(elements, delimiters.component, delimiters.repetition)
            self.count += 1
            segment = Segment(fields[0], elements, self.count, start, segment_line)
            self.findings.append(Finding("X12-E021", "the last segment has no segment terminator", segment))
            yield segment
        self.end_offset = self._base + len(self._buf)
        self.end_line = line + self._buf.count(b"\n", self._pos + len(tail))


def _split_components(elements: list[Element], component: str, repetition: str | None) -> list[Element]:
    """Composite elements as lists; an element holding the repetition separator stays one string."""
    return [
        value.split(component) if component in value and not (repetition and repetition in value) else value
        for value in elements  # type: ignore[union-attr]
    ]


def tokenize(source: Source, **options: int | str) -> Iterator[Segment]:
    """The segments of `source`; options as for :class:`Tokenizer`."""
    return iter(Tokenizer(source, **options))  # type: ignore[arg-type]
