"""Property-based fuzzing: any bytes give segments, issues, or the codec's own error, never another exception."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from x12_builders import BASE_ORDER_TEXT, FIXTURES, ISA

from crossdock.formats import x12
from crossdock.formats.x12 import Mode, X12Error

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SEEDS = [BASE_ORDER_TEXT, *(path.read_bytes() for path in sorted((FIXTURES / "valid").glob("85*.x12")))]
DELIMITERS = b"*~>:^|\r\n\x00 ISAGESTIEA0123456789"


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A valid interchange with a few bytes inserted, deleted or replaced, biased towards delimiters."""
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        position = draw(st.integers(0, len(data)))
        byte = draw(st.one_of(st.sampled_from(DELIMITERS), st.integers(0, 255)))
        operation = draw(st.sampled_from(["insert", "delete", "replace", "truncate"]))
        if operation == "insert":
            data[position:position] = bytes([byte])
        elif operation == "delete":
            del data[position:position + draw(st.integers(1, 20))]
        elif operation == "replace" and position < len(data):
            data[position] = byte
        elif operation == "truncate":
            del data[position:]
    return bytes(data)


def _read_everything(data: bytes) -> None:
    """Every reading path the codec offers, in both modes."""
    for mode in (Mode.STRICT, Mode.LENIENT):
        document = x12.read(data, mode=mode)
        for ts in document.sets():
            ts.get('N1[N101="ST"].N104')
        # Whatever was read is written back, unless a header value holds a delimiter (then refused).
        try:
            assert isinstance(x12.encode(document), bytes)
        except x12.X12EncodeError:
            assert document.errors
    x12.validate_envelope(data)
    list(x12.iter_sets(data, mode=Mode.LENIENT))


def _outcome(data: bytes, **options: int) -> object:
    try:
        return [(s.id, s.elements, s.index, s.offset, s.line) for s in x12.Tokenizer(data, **options)]  # type: ignore[arg-type]
    except X12Error as error:
        return error.code, error.position


@FUZZ
@given(st.binary(max_size=400))
def test_random_bytes(data: bytes) -> None:
    try:
        _read_everything(data)
    except X12Error as error:
        assert error.code.startswith("X12-T")


@FUZZ
@given(st.binary(max_size=300))
def test_random_bytes_after_an_isa(tail: bytes) -> None:
    data = ISA.encode() + b"~" + tail
    try:
        _read_everything(data)
    except X12Error as error:
        assert error.code.startswith("X12-T")
        assert error.position.offset is not None and 0 <= error.position.offset <= len(data)


@FUZZ
@given(mutated())
def test_mutated_interchanges(data: bytes) -> None:
    try:
        _read_everything(data)
    except X12Error as error:
        assert error.code.startswith("X12-T")


@FUZZ
@given(mutated(), st.integers(1, 64))
def test_chunk_size_never_changes_the_outcome(data: bytes, chunk_size: int) -> None:
    assert _outcome(data, chunk_size=chunk_size) == _outcome(data)


@FUZZ
@given(mutated())
def test_issue_positions_point_into_the_input(data: bytes) -> None:
    try:
        issues = x12.read(data, mode=Mode.LENIENT).all_issues()
    except X12Error:
        return
    for issue in issues:
        assert issue.offset is not None and 0 <= issue.offset <= len(data)
        assert issue.line is not None and issue.line >= 1
        assert issue.code in x12.CODES
