"""Small X12 inputs for the codec tests: one segment per line, so that a segment's line is its index."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"

ISA = ("ISA*00*          *00*          *ZZ*SENDER         *ZZ*RECEIVER       *240115*0930*U*00401*000000001*0*P*>")
GS = "GS*PO*SENDER*RECEIVER*20240115*0930*1*X*004010"
ORDER = ["BEG*00*SA*PO1**20240115", "PO1*1*10*EA*9.99**VP*SKU1", "CTT*1"]


def transaction_set(body: list[str], set_id: str = "850", control: str = "0001") -> list[str]:
    """ST, `body`, SE with the right count."""
    return [f"ST*{set_id}*{control}", *body, f"SE*{len(body) + 2}*{control}"]


def interchange(*sets: list[str], gs: str = GS, isa: str = ISA) -> list[str]:
    """An interchange of one group holding `sets` (each from :func:`transaction_set`), trailers right."""
    control = isa.split("*")[13]
    group = gs.split("*")[6]
    return [isa, gs, *(segment for ts in sets for segment in ts), f"GE*{len(sets)}*{group}", f"IEA*1*{control}"]


def order_lines() -> list[str]:
    """A small valid 850 interchange, as segment lines."""
    return interchange(transaction_set(ORDER))


@dataclass(frozen=True)
class Text:
    """Segments written one per line with ``~`` and LF; knows where each one starts."""

    lines: list[str]

    @property
    def data(self) -> bytes:
        return "".join(line + "~\n" for line in self.lines).encode()

    def at(self, index: int) -> tuple[int, int, int]:
        """(segment index, byte offset, line) of the `index`-th segment, 1-based."""
        offset = sum(len(line.encode()) + 2 for line in self.lines[:index - 1])
        return index, offset, index

    def end(self) -> tuple[int, int, int]:
        """The position just past the last segment: where missing trailers are reported."""
        return len(self.lines) + 1, len(self.data), len(self.lines) + 1

    def index_of(self, prefix: str, occurrence: int = 1) -> int:
        """1-based index of the `occurrence`-th line starting with `prefix`."""
        found = [number for number, line in enumerate(self.lines, 1) if line.startswith(prefix)]
        return found[occurrence - 1]


def replace(lines: list[str], prefix: str, new: str | None, occurrence: int = 1) -> list[str]:
    """`lines` with the `occurrence`-th line starting with `prefix` replaced by `new` (removed if None)."""
    found = [number for number, line in enumerate(lines) if line.startswith(prefix)][occurrence - 1]
    copy = list(lines)
    if new is None:
        del copy[found]
    else:
        copy[found] = new
    return copy


def isa_with(**fields: str) -> str:
    """The test ISA with some elements replaced, e.g. ``isa_with(ISA09="241301")``."""
    elements = ISA.split("*")
    for name, value in fields.items():
        elements[int(name[3:])] = value
    return "*".join(elements)


BASE_ORDER_TEXT = Text(order_lines()).data
"""The small valid 850 interchange as bytes."""
