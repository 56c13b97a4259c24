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
from itertools import chain
from typing import IO, NamedTuple

from crossdock.engine.errors import Position
from crossdock.formats.x12.delimiters import Delimiters, read_isa_header
from crossdock.formats.x12.errors import X12Error
from crossdock.formats.x12.segment import IsaSegment, Segment, Splitter

DEFAULT_CHUNK_SIZE = 1 << 12
"""Bytes read at a time: small enough that a block of segments stays in the CPU cache."""
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


class _Layout:
    """What a block loop needs to know about one interchange's delimiters, computed once."""

    __slots__ = ("delimiters", "element", "lines_per_separator", "separator", "splitter", "stray", "suffix_bytes",
                 "terminator", "terminator_bytes")

    def __init__(self, delimiters: Delimiters) -> None:
        self.delimiters = delimiters
        self.element = delimiters.element
        self.splitter = Splitter(delimiters.element, delimiters.component, delimiters.repetition)
        self.terminator = delimiters.segment
        self.terminator_bytes = delimiters.segment.encode("ascii")
        self.separator = delimiters.segment + delimiters.suffix
        self.suffix_bytes = delimiters.suffix.encode("ascii")
        self.lines_per_separator = self.separator.count("\n")
        self.stray = tuple(sorted({"\r", "\n", self.terminator}))

    def regular_parts(self, text: str, max_length: int) -> list[str] | None:
        """`text` split into segments when nothing in it needs care: every terminator followed by the
        usual suffix, no other line break, no empty or over-long segment, no ISA (whose delimiters may
        differ). None when the block needs the general loop."""
        if "ISA" in text:
            return None
        parts = text.split(self.separator)
        # What is left once the separators are gone must hold no terminator and no line break.
        rest = "".join(parts)
        if any(char in rest for char in self.stray) or "" in parts:
            return None
        if len(text) > max_length and max(map(len, parts)) > max_length:
            return None
        return parts


def _open(source: Source) -> IO[bytes] | nullcontext[IO[bytes]]:
    if isinstance(source, bytes | bytearray | memoryview):
        return io.BytesIO(source)
    if isinstance(source, os.PathLike):
        return open(source, "rb")  # closed by the caller's `with`
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
        self._header_at = -1
        self._read: Callable[[int], bytes] = lambda _size: b""

    def __iter__(self) -> Iterator[Segment]:
        return chain.from_iterable(self.blocks())

    def blocks(self) -> Iterator[list[Segment]]:
        """The segments in lists, one per chunk read: the fast way to consume many segments."""
        with _open(self.source) as stream:
            self._read = stream.read
            yield from self._blocks()

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

    def _skip_whitespace(self, line: int, chars: bytes = _OUTER_WHITESPACE) -> int:
        """Skip `chars` at `_pos`; returns the line after them."""
        buf, pos = self._buf, self._pos
        stripped = len(buf) - len(buf[pos:].lstrip(chars))
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

    def _blocks(self) -> Iterator[list[Segment]]:
        line = self._start(1)
        delimiters: Delimiters | None = None
        while True:
            if delimiters is None:
                delimiters, self._header_at = self._header(line)
                self.delimiters = delimiters
                layout = _Layout(delimiters)
            buf, pos = self._buf, self._pos
            cut = buf.rfind(layout.terminator_bytes, pos)
            if cut < 0:
                # Between segments only line breaks are skipped, as inside a block.
                line = self._skip_whitespace(line, b"\r\n")
                if self._buf.startswith(b"ISA", self._pos):
                    # A new interchange whose terminator may differ: read its header first.
                    delimiters = None
                    continue
                if self._eof:
                    yield self._tail(line, delimiters)
                    return
                if len(self._buf) - self._pos > self.max_segment_length:
                    raise X12Error("X12-T006", f"no segment terminator within {self.max_segment_length} bytes",
                                   self._position(line))
                self._more()
                continue
            # The block ends after the suffix that follows its last terminator, when it is there.
            end = cut + 1
            if layout.suffix_bytes and buf.startswith(layout.suffix_bytes, end):
                end += len(layout.suffix_bytes)
            text = buf[pos:cut].decode(self.encoding, ERRORS)
            offset = self._base + pos
            single_byte = len(text) == cut - pos
            parts = layout.regular_parts(text, self.max_segment_length) if single_byte else None
            if parts is not None:
                segments, line, restart = self._regular_block(parts, offset, line, layout)
                after_block = line + buf.count(b"\n", cut, end) - layout.lines_per_separator
            else:
                segments, line, restart = self._any_block(text, offset, line, layout, single_byte)
                after_block = line + buf.count(b"\n", cut + 1, end)
            if segments:
                yield segments
            if restart:
                # A new ISA with other delimiters: `_pos` points at it and `line` is its line.
                delimiters = None
                continue
            line = after_block
            self._pos = end
            self._more()

    def _regular_block(self, parts: list[str], offset: int, line: int,
                       layout: _Layout) -> tuple[list[Segment], int, bool]:
        """Segments of a block without surprises (see :meth:`_Layout.regular_parts`): the common case,
        kept lean. Returns them, the line after the last one, and False (never cut short)."""
        separator, splitter = layout.element, layout.splitter
        step, lines = len(layout.separator), layout.lines_per_separator
        segments: list[Segment] = []
        append = segments.append
        for index, part in enumerate(parts, self.count + 1):
            segment_id, found, text = part.partition(separator)
            append(Segment(segment_id, None, index, offset, line, None, text if found else None, splitter))
            offset += len(part) + step
            line += lines
        self.count += len(parts)
        return segments, line, False

    def _any_block(self, text: str, offset: int, line: int, layout: _Layout,
                   single_byte: bool) -> tuple[list[Segment], int, bool]:
        """Segments of any block: line breaks anywhere, multi-byte characters. Returns them as
        :meth:`_regular_block` does."""
        separator, splitter = layout.element, layout.splitter
        newline_terminated = layout.terminator == "\n"
        findings = self.findings
        segments: list[Segment] = []
        for part in text.split(layout.terminator):
            size = len(part) if single_byte else len(part.encode(self.encoding, ERRORS))
            start = offset
            offset += size + 1
            if part[:1] in ("\r", "\n") and part:
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
                continue
            segment_line = line
            wrapped = "\n" in part or "\r" in part
            if wrapped:
                line += part.count("\n")
                part = part.replace("\r", "").replace("\n", "")
            if size > self.max_segment_length:
                raise X12Error("X12-T006", f"segment longer than {self.max_segment_length} bytes",
                               self._position(segment_line, start))
            segment_id, found, rest = part.partition(separator)
            segment: Segment | None
            if segment_id == "ISA" or (len(segment_id) > 3 and segment_id.startswith("ISA")):
                segment = self._isa(part.split(separator), start, segment_line, layout.delimiters)
                if segment is None:
                    return segments, segment_line, True
            else:
                segment = Segment(segment_id, None, self.count + 1, start, segment_line, None,
                                  rest if found else None, splitter)
            self.count += 1
            if wrapped:
                findings.append(Finding("X12-E022", "line break inside the segment removed", segment))
            segments.append(segment)
            if newline_terminated:
                line += 1
        return segments, line, False

    def _isa(self, fields: list[str], start: int, line: int, delimiters: Delimiters) -> IsaSegment | None:
        """The ISA segment at file offset `start`, or None (with `_pos` on it) when its delimiters
        differ from the ones the block was split with, so that the caller reads its header afresh."""
        if start != self._header_at:
            header = read_isa_header(self._buf, start - self._base, self._position(line, start), eof=self._eof)
            if header is None or header[0] != delimiters:
                self._pos = start - self._base
                return None
            self._header_at = start
        return IsaSegment(fields[1:], delimiters, self.count + 1, start, line)  # type: ignore[arg-type]

    def _tail(self, line: int, delimiters: Delimiters) -> list[Segment]:
        """The bytes after the last terminator: nothing, or one unterminated segment."""
        tail = self._buf[self._pos:].rstrip(_OUTER_WHITESPACE)
        start = self._base + self._pos
        found: list[Segment] = []
        if tail:
            if len(tail) > self.max_segment_length:
                raise X12Error("X12-T006", f"segment longer than {self.max_segment_length} bytes",
                               self._position(line))
            text = tail.decode(self.encoding, ERRORS)
            segment_line = line
            if "\n" in text or "\r" in text:
                line += text.count("\n")
                text = text.replace("\r", "").replace("\n", "")
            segment_id, separator, rest = text.partition(delimiters.element)
            splitter = Splitter(delimiters.element, delimiters.component, delimiters.repetition)
            self.count += 1
            segment = Segment(segment_id, None, self.count, start, segment_line, None,
                              rest if separator else None, splitter)
            self.findings.append(Finding("X12-E021", "the last segment has no segment terminator", segment))
            found.append(segment)
        self.end_offset = self._base + len(self._buf)
        self.end_line = line + self._buf.count(b"\n", self._pos + len(tail))
        return found


def tokenize(source: Source, **options: int | str) -> Iterator[Segment]:
    """The segments of `source`; options as for :class:`Tokenizer`."""
    return iter(Tokenizer(source, **options))  # type: ignore[arg-type]
