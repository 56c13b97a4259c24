"""The byte-level tokenizer: delimiters, positions, messy input, fatal errors, constant memory."""

from __future__ import annotations

import io
import tracemalloc
from pathlib import Path

import pytest
from x12_builders import BASE_ORDER_TEXT, FIXTURES, ISA, Text, isa_with, order_lines

from crossdock.formats import x12
from crossdock.formats.x12 import Delimiters, X12Error


def positions(data: bytes, **options: int) -> list[tuple[str, object, int | None, int | None, int | None]]:
    return [(s.id, s.elements, s.index, s.offset, s.line) for s in x12.Tokenizer(data, **options)]  # type: ignore[arg-type]


def test_segments_know_their_index_offset_and_line() -> None:
    text = Text(order_lines())
    segments = list(x12.tokenize(text.data))
    assert [segment.id for segment in segments] == ["ISA", "GS", "ST", "BEG", "PO1", "CTT", "SE", "GE", "IEA"]
    for number, segment in enumerate(segments, 1):
        assert (segment.index, segment.offset, segment.line) == text.at(number)


def test_delimiters_come_from_the_isa() -> None:
    tokenizer = x12.Tokenizer(Text(order_lines()).data)
    isa = next(iter(tokenizer))
    assert isinstance(isa, x12.IsaSegment)
    assert isa.delimiters == Delimiters(element="*", component=">", segment="~", repetition=None, suffix="\n")
    assert tokenizer.delimiters == isa.delimiters
    assert isa.elements[15] == ">"  # ISA16 is never split as a composite
    assert len(isa.elements) == 16


def test_composites_are_lists_and_isa_is_not_split() -> None:
    data = Text(["ISA" + ISA[3:], "REF*DP*1*X*ZZ>A>B"]).data
    ref = list(x12.tokenize(data))[1]
    assert ref.elements == ["DP", "1", "X", ["ZZ", "A", "B"]]
    assert ref.value(4, 2) == "A" and ref.value(4) == "ZZ" and ref.value(9) == ""


@pytest.mark.parametrize("isa11, version, repetition", [
    ("^", "00501", "^"),
    ("U", "00501", None),
    ("U", "00401", None),
    ("^", "00401", None),
    ("!", "00403", "!"),
])
def test_isa11_is_a_repetition_separator_only_from_00402_when_not_alphanumeric(
        isa11: str, version: str, repetition: str | None) -> None:
    tokenizer = x12.Tokenizer(Text([isa_with(ISA11=isa11, ISA12=version)]).data)
    list(tokenizer)
    assert tokenizer.delimiters is not None and tokenizer.delimiters.repetition == repetition


def test_an_element_with_repetitions_stays_one_string() -> None:
    data = Text([isa_with(ISA11="^", ISA12="00501"), "REF*DP*A>1^B>2"]).data
    assert list(x12.tokenize(data))[1].elements == ["DP", "A>1^B>2"]


def test_bom_and_crlf_are_tolerated() -> None:
    data = (FIXTURES / "messy" / "bom_crlf.x12").read_bytes()
    tokenizer = x12.Tokenizer(data)
    segments = list(tokenizer)
    assert tokenizer.bom and tokenizer.delimiters is not None and tokenizer.delimiters.suffix == "\r\n"
    assert segments[0].offset == 3 and segments[0].line == 1
    assert segments[1].offset == 3 + 106 + 2 and segments[1].line == 2
    assert segments[-1].id == "IEA" and segments[-1].line == len(segments)


def test_newline_as_segment_terminator() -> None:
    data = (FIXTURES / "messy" / "newline_terminator.x12").read_bytes()
    segments = list(x12.tokenize(data))
    assert [segment.line for segment in segments] == list(range(1, len(segments) + 1))
    assert segments[1].offset == 106 and segments[1].id == "GS"


def test_delimiters_are_read_again_at_each_isa() -> None:
    data = (FIXTURES / "messy" / "two_interchanges.x12").read_bytes()
    isas = [segment for segment in x12.tokenize(data) if segment.id == "ISA"]
    assert [isa.delimiters.element for isa in isas] == ["*", "|"]  # type: ignore[attr-defined]
    assert [isa.delimiters.component for isa in isas] == [">", "^"]  # type: ignore[attr-defined]
    assert isas[1].offset == data.index(b"ISA|")
    second = [segment for segment in x12.tokenize(data) if segment.id == "BEG"][1]
    assert second.elements == ["00", "SA", "4500012345", "", "20240115"]


@pytest.mark.parametrize("name", sorted(path.name for path in (FIXTURES / "messy").glob("*.x12")))
@pytest.mark.parametrize("chunk_size", [1, 2, 5, 64, 4096])
def test_chunk_boundaries_do_not_change_the_segments(name: str, chunk_size: int) -> None:
    data = (FIXTURES / "messy" / name).read_bytes()
    assert positions(data, chunk_size=chunk_size) == positions(data)


def test_reads_paths_and_file_objects_without_closing_them(tmp_path: Path) -> None:
    data = Text(order_lines()).data
    path = tmp_path / "order.x12"
    path.write_bytes(data)
    stream = io.BytesIO(data)
    assert positions(path) == positions(data) == [(s.id, s.elements, s.index, s.offset, s.line)
                                                   for s in x12.Tokenizer(stream)]
    assert not stream.closed


def test_end_of_input_position() -> None:
    text = Text(order_lines())
    tokenizer = x12.Tokenizer(text.data + b"\n\x1a")
    assert len(list(tokenizer)) == 9
    assert (tokenizer.count, tokenizer.end_offset, tokenizer.end_line) == (9, len(text.data) + 2, 11)


@pytest.mark.parametrize("data, code, offset", [
    (b"", "X12-T001", 0),
    (b"   \r\n", "X12-T001", 5),
    (b"GS*PO*A*B~", "X12-T001", 0),
    (b"\xef\xbb\xbfHello, world", "X12-T001", 3),
    (ISA[:50].encode(), "X12-T002", 0),
    (b"ISA*00*" + b"x" * 300, "X12-T002", 0),
    (ISA[:90].encode() + b"~GS*PO~", "X12-T002", 0),
    (b"ISA*00~GS*PO~ST*850~" + b"*1" * 20, "X12-T004", 0),
    (ISA.replace("*", "A").encode() + b"~", "X12-T003", 0),
    (isa_with(ISA16="*").encode() + b"~", "X12-T004", 0),
    (ISA.encode() + b"Z", "X12-T005", 0),
    (ISA.encode() + b">", "X12-T005", 0),
])
def test_input_that_is_not_x12_raises_a_positioned_x12_error(data: bytes, code: str, offset: int) -> None:
    with pytest.raises(X12Error) as caught:
        list(x12.tokenize(data))
    assert caught.value.code == code
    assert caught.value.position.offset == offset
    assert caught.value.position.line == (2 if code == "X12-T001" and b"\n" in data else 1)


def test_runaway_segment_raises_with_its_position() -> None:
    lines = order_lines()
    lines[3] = "BEG*00*SA*" + "X" * 500
    text = Text(lines)
    with pytest.raises(X12Error) as caught:
        list(x12.tokenize(text.data, max_segment_length=200))
    assert caught.value.code == "X12-T006"
    _, offset, line = text.at(4)
    assert (caught.value.position.offset, caught.value.position.line, caught.value.position.segment) == (
        offset, line, 4)


def test_missing_terminator_over_the_limit_raises() -> None:
    data = Text(order_lines()[:2]).data + b"ST*850*" + b"9" * 5000
    with pytest.raises(X12Error) as caught:
        list(x12.tokenize(data, max_segment_length=1000, chunk_size=256))
    assert caught.value.code == "X12-T006"
    assert caught.value.position.offset == len(Text(order_lines()[:2]).data)


class _Endless(io.RawIOBase):
    """A binary stream of `orders` copies of one interchange, produced on demand."""

    def __init__(self, orders: int) -> None:
        self.remaining = orders
        self.pending = b""

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        while len(self.pending) < size and self.remaining:
            self.pending += BASE_ORDER_TEXT
            self.remaining -= 1
        chunk, self.pending = self.pending[:size], self.pending[size:]
        return chunk


def test_memory_stays_flat_whatever_the_input_size() -> None:
    copies = 20_000  # about 5 MB and 180,000 segments
    tracemalloc.start()
    try:
        count = 0
        for block in x12.Tokenizer(_Endless(copies), chunk_size=1 << 14).blocks():
            count += len(block)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == copies * 9
    assert peak < 4 * 1024 * 1024
