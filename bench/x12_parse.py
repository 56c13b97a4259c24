"""X12 read speed against pyx12, and peak memory while streaming a large file.

Speed (default): a generated 850 interchange of about 21,000 segments is written to a temporary file
and read from disk, alternately, by

- pyx12's ``X12Reader`` (tokenizing into segment, composite and element objects, envelope checks;
  it builds no loop tree for these sets),
- crossdock's reader with envelope validation and the loop tree ("structure"). Segments keep their
  element text and split it on first use, so elements that nobody reads are never split;
- the same, then every segment's elements split ("structure + elements"), like for like with pyx12,
- crossdock's reader with every data element validated as well ("full").

Each is timed several times (CPU time, best run kept) and segments per second are printed with the
ratio to pyx12.

Memory (``--stream``, slow): a ~1 GB interchange of many 850s is generated to a temporary file in
chunks, then streamed set by set; the peak resident set size of the process is printed.

Usage::

    .venv/bin/python bench/x12_parse.py                      # speed
    .venv/bin/python bench/x12_parse.py --stream             # peak RSS over ~1 GB
    .venv/bin/python bench/x12_parse.py --stream --size-mb 200
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from crossdock.formats.x12 import X12Reader

ISA = ("ISA*00*          *00*          *ZZ*BUYERCO        *ZZ*SUPPLIERCO     *240115*0930*U*00401*000000001*0*P*>~\n"
       "GS*PO*BUYERCO*SUPPLIERCO*20240115*0930*1*X*004010~\n")
LINES_PER_ORDER = 50


def _order(number: int) -> list[str]:
    """One realistic 850: header, three parties, 50 lines of PO1 / PID / PO4, totals."""
    control = f"{number:04d}"[-9:]
    segments = [
        f"ST*850*{control}", f"BEG*00*SA*PO{number:08d}**20240115", "CUR*BY*USD", "REF*DP*042", "REF*IA*778899",
        "PER*BD*JANE BUYER*TE*2145550100", "FOB*PP", "DTM*002*20240201", "DTM*010*20240125",
        "TD5*O*2*UPSN*M*UPS GROUND",
        "N1*ST*ACME DISTRIBUTION CENTER*92*0042", "N3*1200 COMMERCE BLVD", "N4*DALLAS*TX*75201*US",
        "N1*BT*ACME CORPORATION*92*0001", "N3*PO BOX 5500", "N4*DALLAS*TX*75265*US",
        "N1*VN*SUPPLIER COMPANY*92*V123",
    ]
    for line in range(1, LINES_PER_ORDER + 1):
        segments += [
            f"PO1*{line}*{line % 7 + 1}*EA*{line % 50 + 1}.25**VP*SKU{number % 1000:03d}{line:03d}*UP*0{line:011d}",
            f"PID*F****WIDGET MODEL {line} BLUE",
            "PO4*12*1*EA",
        ]
    segments += [f"CTT*{LINES_PER_ORDER}", "AMT*TT*10250.00"]
    segments.append(f"SE*{len(segments) + 1}*{control}")
    return segments


def _orders(count: int) -> Iterator[str]:
    for number in range(1, count + 1):
        yield "".join(segment + "~\n" for segment in _order(number))


def write_interchange(path: Path, *, segments: int | None = None, size: int | None = None) -> int:
    """Write an 850 interchange of about `segments` segments or `size` bytes; returns the segment count.

    Written order by order, so memory stays small whatever the size.
    """
    per_order = len(_order(1))
    orders = max(1, (segments - 4) // per_order) if segments else 10**9
    written = 0
    count = 0
    with path.open("w", encoding="ascii", newline="") as out:
        out.write(ISA)
        for text in _orders(orders):
            out.write(text)
            written += len(text)
            count += 1
            if size is not None and written >= size:
                break
        out.write(f"GE*{count}*1~\nIEA*1*000000001~\n")
    return count * per_order + 4


def _best(runs: int, work: Callable[[], object]) -> float:
    """The lowest CPU time of `runs` runs of `work`."""
    best = float("inf")
    for _ in range(runs):
        start = time.process_time()
        work()
        best = min(best, time.process_time() - start)
    return best


def _pyx12(path: Path) -> None:
    import pyx12.x12file

    with path.open(encoding="ascii") as stream, pyx12.x12file.X12Reader(stream) as reader:
        for _segment in reader:
            pass


def _crossdock(path: Path, *, validate_elements: bool, split_all: bool = False) -> None:
    reader = X12Reader(path, validate_elements=validate_elements)
    for ts in reader.sets():
        if ts.errors:
            raise SystemExit(f"unexpected errors in the generated file: {ts.errors[:3]}")
        if split_all:
            for segment in ts.segments():
                segment.elements  # noqa: B018  # the split is what is measured


def speed(rounds: int) -> None:
    """Time pyx12 and crossdock on the same ~21,000-segment file, alternating."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "orders.x12"
        segments = write_interchange(path, segments=21_000)
        print(f"file: {segments} segments, {path.stat().st_size:,} bytes")
        contenders: dict[str, Callable[[], object]] = {
            "pyx12 X12Reader": lambda: _pyx12(path),
            "crossdock structure": lambda: _crossdock(path, validate_elements=False),
            "crossdock structure + elements": lambda: _crossdock(path, validate_elements=False, split_all=True),
            "crossdock full": lambda: _crossdock(path, validate_elements=True),
        }
        for work in contenders.values():
            work()  # warm up: definitions loaded, grammars compiled
        best = dict.fromkeys(contenders, float("inf"))
        for _ in range(rounds):
            for name, work in contenders.items():
                best[name] = min(best[name], _best(1, work))
        baseline = best["pyx12 X12Reader"]
        for name, seconds in best.items():
            print(f"{name:32} {segments / seconds:>12,.0f} segments/s   {baseline / seconds:5.2f}x pyx12")


def _rss_mb() -> float:
    # ru_maxrss is in kilobytes on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def stream(size_mb: int) -> None:
    """Generate ~`size_mb` MB to disk, stream it set by set, print time and peak RSS."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "big.x12"
        started = time.perf_counter()
        segments = write_interchange(path, size=size_mb * 1024 * 1024)
        print(f"generated {path.stat().st_size / 2**20:,.0f} MB, {segments:,} segments "
              f"in {time.perf_counter() - started:.0f} s; peak RSS so far {_rss_mb():.0f} MB")
        started = time.perf_counter()
        reader = X12Reader(path)
        sets = sum(1 for _ts in reader.sets())
        elapsed = time.perf_counter() - started
        print(f"streamed {sets:,} sets ({segments / elapsed:,.0f} segments/s, {elapsed:.0f} s), "
              f"{len(reader.issues)} issues outside sets")
        print(f"peak RSS {_rss_mb():.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stream", action="store_true", help="measure peak RSS over a large generated file")
    parser.add_argument("--size-mb", type=int, default=1024, help="size of the --stream file (default 1024)")
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds per contender (default 7)")
    options = parser.parse_args()
    if options.stream:
        stream(options.size_mb)
    else:
        speed(options.rounds)


if __name__ == "__main__":
    main()
