"""Building sets from what a map `to x12 ...` produces: layout, values, problems, envelopes."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from x12_builders import FIXTURES

from crossdock.formats import x12
from crossdock.formats.x12.builder import BUILD_CODES, X12BuildError, build_set, check_values, validate_set
from crossdock.formats.x12.definitions import SetDefinition
from crossdock.formats.x12.envelopes import MemoryControlNumbers, envelope
from crossdock.formats.x12.profile import PartnerProfile

DOCS = (Path(__file__).resolve().parents[3] / "docs" / "x12.md").read_text(encoding="utf-8")
PROFILE = PartnerProfile(name="acme", their_id="ACMEPO", our_id="CROSSDOCK")
WHEN = dt.datetime(2024, 1, 15, 9, 30)


def definition(set_id: str, version: str = "004010") -> SetDefinition:
    found = x12.default_catalog().definition(set_id, version)
    assert found is not None
    return found


def written(ts: x12.TransactionSet) -> list[str]:
    """The set as segment texts, ST to SE."""
    return x12.encode_set(ts).decode().split("~")[:-1]


def fixture_set(name: str) -> list[str]:
    """The segments of the one set in a valid fixture, ST to SE."""
    return [line for line in (FIXTURES / "valid" / name).read_text().split("~\n")
            if line and not line.startswith(("ISA", "GS", "GE", "IEA"))]


async def sent_and_read_back(sets: list[x12.TransactionSet], profile: PartnerProfile = PROFILE) -> x12.Document:
    """`sets` in the partner's envelope, written and read back strictly: no issue at all."""
    interchange = await envelope(sets, profile, MemoryControlNumbers(), when=WHEN)
    document = x12.read(x12.encode(interchange), mode=x12.Mode.STRICT)
    assert document.all_issues() == []
    return document


PO_ACK: dict[str, Any] = {
    "BAK01": "00", "BAK02": "AC", "BAK03": "PO-1", "BAK04": "20261120",
    "PO1": [{"PO101": "1", "PO102": "5", "PO103": "EA", "PO104": Decimal("4.10"), "PO106": "VP", "PO107": "WID-1",
             "ACK01": "IA", "ACK02": "5", "ACK03": "EA"}],
    "CTT01": "1"}


def test_the_set_is_laid_out_as_given_and_validated_apart() -> None:
    # Without PO106 the line is laid out all the same; validation then says what a partner would reject.
    line = {key: value for key, value in PO_ACK["PO1"][0].items() if key != "PO106"}
    ts = build_set({**PO_ACK, "PO1": [line]}, definition("855"), "0001")
    assert written(ts)[2] == "PO1*1*5*EA*4.10***WID-1"
    assert [(issue.code, issue.path, issue.set_position, issue.loop_id) for issue in validate_set(ts)] == [
        ("X12-D002", "PO106", 3, "PO1")]


@pytest.mark.anyio
async def test_an_855_is_laid_out_by_its_definition() -> None:
    values = {**PO_ACK, "REF": [{"REF01": "IA", "REF02": "123"}], "N1": [{"N101": "ST", "N102": "Acme"}]}
    ts = build_set(values, definition("855"), "0001")
    assert written(ts) == ["ST*855*0001", "BAK*00*AC*PO-1*20261120", "REF*IA*123", "N1*ST*Acme",
                           "PO1*1*5*EA*4.10**VP*WID-1", "ACK*IA*5*EA", "CTT*1", "SE*8*0001"]
    document = await sent_and_read_back([ts])
    read = next(document.sets())
    assert [line.get("ACK01") for line in read.loops("PO1")] == ["IA"] and read.get("CTT01") == "1"


def test_the_855_fixture_is_built_from_a_dict() -> None:
    values = {"BAK01": "00", "BAK02": "AC", "BAK03": "4500012345", "BAK04": dt.date(2024, 1, 15),
              "REF01": "VN", "REF02": "SO-99812", "DTM01": "067", "DTM02": "20240130",
              "N1": {"N101": "ST", "N102": "ACME DC", "N103": "92", "N104": "0042"},
              "PO1": [{"PO101": 1, "PO102": 10, "PO103": "EA", "PO104": Decimal("12.50"), "PO106": "VP",
                       "PO107": "SKU-100", "ACK": [{"ACK01": "IA", "ACK02": 10, "ACK03": "EA", "ACK04": "068",
                                                    "ACK05": "20240128"}]},
                      {"PO101": 2, "PO102": 4, "PO103": "CA", "PO104": 80, "PO106": "VP", "PO107": "SKU-200",
                       "ACK01": "IB", "ACK02": 4, "ACK03": "CA", "ACK04": "068", "ACK05": "20240210"}]}
    assert written(build_set(values, definition("855"), "0001")) == fixture_set("855.004010.x12")


S_O_P_I = {"BSN01": "00", "BSN02": "SHP-1", "BSN03": "20261120", "BSN04": "1200",
           "HL": [{"level": "S", "TD101": "CTN25", "TD102": 2,
                   "N1": [{"N101": "ST", "N102": "Acme DC", "N103": "92", "N104": "0042"}],
                   "HL": [{"level": "O", "PRF01": "PO-1",
                           "HL": [{"level": "P", "MAN01": "GM", "MAN02": "00012345670000000018",
                                   "HL": [{"level": "I", "LIN02": "VP", "LIN03": "WID-1", "SN102": 5, "SN103": "EA"},
                                          {"level": "I", "LIN02": "VP", "LIN03": "WID-2", "SN102": 1,
                                           "SN103": "EA"}]},
                                  {"HL03": "P", "MAN01": "GM", "MAN02": "00012345670000000025",
                                   "HL": {"level": "I", "LIN02": "VP", "LIN03": "WID-3", "SN102": 2,
                                          "SN103": "CA"}}]}]}]}


@pytest.mark.anyio
async def test_an_856_hierarchy_is_numbered_from_the_nesting() -> None:
    ts = build_set(S_O_P_I, definition("856"), "0002")
    assert written(ts) == [
        "ST*856*0002", "BSN*00*SHP-1*20261120*1200",
        "HL*1**S*1", "TD1*CTN25*2", "N1*ST*Acme DC*92*0042",
        "HL*2*1*O*1", "PRF*PO-1",
        "HL*3*2*P*1", "MAN*GM*00012345670000000018",
        "HL*4*3*I*0", "LIN**VP*WID-1", "SN1**5*EA",
        "HL*5*3*I*0", "LIN**VP*WID-2", "SN1**1*EA",
        "HL*6*2*P*1", "MAN*GM*00012345670000000025",
        "HL*7*6*I*0", "LIN**VP*WID-3", "SN1**2*CA",
        "CTT*7", "SE*22*0002"]
    read = next((await sent_and_read_back([ts])).sets())
    assert read.values('HL[HL03="I"].LIN03') == ["WID-1", "WID-2", "WID-3"]
    assert read.values('HL[HL03="P"].MAN02') == ["00012345670000000018", "00012345670000000025"]
    assert ts.values('HL[HL03="I"].LIN03') == ["WID-1", "WID-2", "WID-3"]  # the built tree nests as a read one


INVOICE: dict[str, Any] = {
    "BIG01": dt.date(2024, 1, 30), "BIG02": "INV-0001", "BIG03": "20240115", "BIG04": "4500012345",
    "REF": [{"REF01": "DP", "REF02": "042"}],
    "N1": [{"N101": "RI", "N102": "SUPPLIER CO", "N103": "92", "N104": "V123", "N301": "PO BOX 100",
            "N401": "CHICAGO", "N402": "IL", "N403": "60601", "N404": "US"},
           {"N101": "ST", "N102": "ACME DC", "N103": "92", "N104": "0042"}],
    "ITD01": "01", "ITD02": "3", "ITD03": Decimal("2"), "ITD05": 10, "ITD07": 30,
    "DTM01": "011", "DTM02": "20240128",
    "IT1": [{"IT101": 1, "IT102": 10, "IT103": "EA", "IT104": Decimal("12.50"), "IT106": "VP", "IT107": "SKU-100",
             "PID01": "F", "PID05": "BLUE WIDGET"},
            {"IT101": 2, "IT102": Decimal("4"), "IT103": "CA", "IT104": Decimal("80"), "IT106": "VP",
             "IT107": "SKU-200"}],
    "TDS01": Decimal("445.00"),
    "CAD01": "M", "CAD04": "UPSN", "CAD05": "UPS GROUND",
    "SAC": [{"SAC01": "C", "SAC02": "D240", "SAC05": Decimal("15")}],
    "ISS": [{"ISS01": 14, "ISS02": "CA"}],
}


@pytest.mark.anyio
async def test_an_810_with_implied_decimals_and_a_computed_ctt() -> None:
    ts = build_set(INVOICE, definition("810"), "0001")
    assert written(ts) == fixture_set("810.004010.x12")
    assert ts.get("TDS01") == "44500" and ts.get("CTT01") == "2"
    await sent_and_read_back([ts])


WAREHOUSE_ORDER: dict[str, Any] = {
    "W0501": "N", "W0502": "DO-5001", "W0503": "4500012345",
    "N1": [{"N101": "ST", "N102": "ACME STORE 12", "N103": "92", "N104": "0012", "N301": "55 MAIN ST",
            "N401": "AUSTIN", "N402": "TX", "N403": "78701", "N404": "US"},
           {"N101": "DE", "N102": "SUPPLIER CO", "N103": "92", "N104": "V123"}],
    "N901": "PO", "N902": "4500012345", "G6201": "10", "G6202": dt.date(2024, 1, 25),
    "NTE01": "WHI", "NTE02": "HANDLE WITH CARE", "W6601": "PP", "W6602": "M", "W6605": "UPS GROUND",
    "LX": [{"LX01": 1, "W0101": 10, "W0102": "EA", "W0104": "VN", "W0105": "SKU-100", "G6901": "BLUE WIDGET"},
           {"LX01": 2, "W0101": 4, "W0102": "CA", "W0104": "VN", "W0105": "SKU-200"}],
    "W7601": 14, "W7602": Decimal("45.5"), "W7603": "LB",
}


@pytest.mark.anyio
async def test_a_940_with_nested_line_loops() -> None:
    ts = build_set(WAREHOUSE_ORDER, definition("940"), "0001")
    assert written(ts) == fixture_set("940.004010.x12")
    read = next((await sent_and_read_back([ts])).sets())
    assert [line.get("W0105") for line in read.loops("LX")] == ["SKU-100", "SKU-200"]


@pytest.mark.anyio
async def test_sets_of_several_kinds_get_a_group_each_in_the_profiles_envelope() -> None:
    profile = dataclasses.replace(PROFILE, element_separator="|", segment_terminator="\n", usage="test",
                                  version="005010", their_qualifier="01")
    sets = [build_set(PO_ACK, definition("855", "005010"), "0001"),
            build_set(S_O_P_I, definition("856", "005010"), "0002"),
            build_set(PO_ACK, definition("855", "005010"), "0003")]
    numbers = MemoryControlNumbers(start=5)
    interchange = await envelope(sets, profile, numbers, when=WHEN)
    data = x12.encode(interchange)
    lines = data.decode().splitlines()
    assert lines[0] == ("ISA|00|          |00|          |ZZ|CROSSDOCK      |01|ACMEPO         |240115|0930|^|00501|"
                        "000000005|0|T|>")
    assert [line for line in lines if line.startswith(("GS", "ST", "GE", "IEA"))] == [
        "GS|PR|CROSSDOCK|ACMEPO|20240115|0930|5|X|005010", "ST|855|0001", "ST|855|0003", "GE|2|5",
        "GS|SH|CROSSDOCK|ACMEPO|20240115|0930|6|X|005010", "ST|856|0002", "GE|1|6", "IEA|2|000000005"]
    assert x12.read(data).all_issues() == []
    assert x12.envelopes.sent_groups(interchange) == [("5", [("0001", "855"), ("0003", "855")]),
                                                      ("6", [("0002", "856")])]


@pytest.mark.parametrize("value, element, text", [
    (Decimal("1E+2"), "PO102", "100"),          # R: fixed point, never an exponent
    (Decimal("0.000001"), "PO104", "0.000001"),
    (7, "PO102", "7"),
    (Decimal("5.0"), "ACK02", "5.0"),
    (Decimal("12.34"), "TDS01", "1234"),        # N2: two implied decimals
    (12, "TDS01", "1200"),
    (Decimal("-3.5"), "TDS01", "-350"),
    (Decimal("30"), "ITD07", "30"),             # N0
    (Decimal("30.0"), "ITD07", "30"),
    (dt.date(2024, 2, 29), "BIG01", "20240229"),
    (dt.datetime(2024, 2, 29, 8, 5), "BIG01", "20240229"),
])
def test_numbers_and_dates_are_written_by_the_elements_type(value: object, element: str, text: str) -> None:
    set_id = "855" if element[:2] in ("PO", "AC") else "810"
    base: dict[str, Any] = ({"BAK01": "00", "PO1": [{"PO101": "1"}]} if set_id == "855"
                            else {"BIG01": "20240101", "IT1": [{"IT101": "1"}], "TDS01": "1"})
    if element[:3] in ("PO1", "ACK"):
        base["PO1"] = [{"PO101": "1", element: value}]
    else:
        base[element] = value
    ts = build_set(base, definition(set_id), "0001")
    assert ts.get(element) == text


def test_times_fill_tm_elements() -> None:
    values = {"BSN01": "00", "BSN02": "S", "BSN03": dt.date(2024, 1, 2), "BSN04": dt.time(14, 30),
              "DTM": [{"DTM01": "011", "DTM02": dt.date(2024, 1, 2), "DTM03": dt.time(14, 30, 15)}]}
    assert written(build_set(values, definition("856"), "0001"))[1:3] == ["BSN*00*S*20240102*1430",
                                                                          "DTM*011*20240102*143015"]


def test_composites_take_components_or_a_list() -> None:
    by_component = {"BAK01": "00", "REF": [{"REF01": "IA", "REF02": "1", "REF04_1": "ZZ", "REF04-2": "X"}]}
    as_list = {"BAK01": "00", "REF01": "IA", "REF02": "1", "REF04": ["ZZ", "X"]}
    assert written(build_set(by_component, definition("855"), "0001"))[2] == "REF*IA*1**ZZ:X"
    assert written(build_set(as_list, definition("855"), "0001"))[2] == "REF*IA*1**ZZ:X"


def test_none_and_empty_values_leave_elements_segments_and_loops_out() -> None:
    values = {"BAK01": "00", "BAK02": None, "BAK03": "PO-1", "CUR01": None, "CUR02": "",
              "N1": [], "PO1": [{"PO101": "1", "PO102": None, "PO107": "X", "ACK01": None}], "SAC": None}
    assert written(build_set(values, definition("855"), "0001")) == [
        "ST*855*0001", "BAK*00**PO-1", "PO1*1******X", "CTT*1", "SE*5*0001"]


def test_a_count_set_by_the_map_is_kept_and_one_in_a_given_ctt_loop_is_filled() -> None:
    lines = [{"PO101": str(n)} for n in (1, 2, 3)]
    given = build_set({"BAK01": "00", "PO1": lines, "CTT01": 9}, definition("855"), "0001")
    assert given.get("CTT01") == "9"
    with_amount = build_set({"BAK01": "00", "PO1": lines, "CTT": {"AMT01": "TT", "AMT02": Decimal("10.5")}},
                            definition("855"), "0001")
    assert written(with_amount)[-3:] == ["CTT*3", "AMT*TT*10.5", "SE*8*0001"]
    shipment = build_set({"BSN01": "00", "HL": [{"level": "S"}], "CTT": [{"CTT02": 5}]}, definition("856"), "0001")
    assert written(shipment)[-2:] == ["CTT*1*5", "SE*5*0001"]
    none = build_set({"W0501": "N", "LX": [{"LX01": 1}]}, definition("940"), "0001")
    assert "CTT" not in [segment.id for segment in none.segments()]


def test_a_loop_instance_without_trigger_values_still_starts_with_its_trigger() -> None:
    ts = build_set({"BAK01": "00", "N1": [{"N301": "1 MAIN ST"}]}, definition("855"), "0001")
    assert written(ts)[2:4] == ["N1", "N3*1 MAIN ST"]
    assert [(issue.code, issue.path) for issue in validate_set(ts)] == [
        ("X12-D001", "BAK02"), ("X12-D001", "BAK03"), ("X12-D001", "BAK04"), ("X12-D001", "N101"),
        ("X12-D002", "N102")]


def test_validate_set_reports_what_the_parser_would() -> None:
    ts = build_set({"BIG01": "2024011", "BIG02": "INV-1"}, definition("810"), "0001")
    issues = validate_set(ts)
    assert [(issue.code, issue.path, issue.set_position) for issue in issues] == [
        ("X12-D008", "BIG01", 2), ("X12-S003", "IT1", 3), ("X12-S003", "TDS", 3)]


@pytest.mark.parametrize("values, expected", [
    ({"BAK0": "00"}, ("X12-B001", "", "BAK0", "did you mean 'BAK01'?")),
    ({"BAK11": "x"}, ("X12-B001", "", "BAK11", "BAK has elements BAK01 to BAK10")),
    ({"ST01": "855"}, ("X12-B001", "", "ST01", "the builder writes ST and SE")),
    ({"HL03": "S"}, ("X12-B001", "", "HL03", "HL is written in loop HL")),
    ({"PO1": [{"PO1O5": "x"}]}, ("X12-B001", "PO1[1]", "PO1O5", "did you mean 'PO105'?")),
    ({"REF": [{"REF01": "IA", "N101": "ST"}]}, ("X12-B001", "REF[1]", "N101", None)),
    ({"REF04_7": "x"}, ("X12-B001", "", "REF04_7", "did you mean 'REF04'?")),
    ({"PO1": [{"ACK02": 1.5}]}, ("X12-B003", "PO1[1]", "ACK02", None)),
    ({"BAK03": True}, ("X12-B003", "", "BAK03", None)),
    ({"PO1": [{"PO101": object()}]}, ("X12-B003", "PO1[1]", "PO101", None)),
    ({"BAK04": dt.time(10, 0)}, ("X12-B003", "", "BAK04", None)),
    ({"CTT01": Decimal("2.5")}, ("X12-B004", "", "CTT01", None)),
    ({"TDS01": Decimal("1.005")}, ("X12-B004", "", "TDS01", None)),
    ({"TDS01": Decimal("NaN")}, ("X12-B004", "", "TDS01", None)),
    ({"N1": "ST"}, ("X12-B002", "", "N1", None)),
    ({"BAK03": ["a"]}, ("X12-B002", "", "BAK03", None)),
    ({"HL": [{"level": "S", "HL01": "1"}]}, ("X12-B005", "HL[1]", "HL01", "leave it out; nest the levels under HL")),
    ({"HL": [{"level": "S", "HL03": "O"}]}, ("X12-B006", "HL[1]", "level", "give the level code once")),
    ({"REF01": "IA", "REF": [{"REF01": "VN"}]}, ("X12-B006", "", "REF", "write every occurrence in the list")),
    ({"N101": "ST", "N1": [{"N101": "BT"}]}, ("X12-B006", "", "N1", "write every instance in the list")),
    ({"REF04": ["A", "B"], "REF04_1": "C"}, ("X12-B006", "", "REF04_1", None)),
    ({"MSG01": "x"}, ("X12-B007", "", "MSG01", "write it inside N9: N9 = ...")),
])
def test_problems_name_the_key_where_it_was_written(values: dict[str, Any], expected: tuple[Any, ...]) -> None:
    set_id = "856" if any(key.startswith("HL") for key in values) else (
        "810" if "TDS01" in values else ("850" if "MSG01" in values else "855"))
    problems = check_values(values, definition(set_id))
    assert [(problem.code, problem.path, problem.key, problem.hint) for problem in problems] == [expected]
    with pytest.raises(X12BuildError) as raised:
        build_set(values, definition(set_id), "0001")
    assert raised.value.code == expected[0] and raised.value.problems == problems


def test_a_skeleton_of_keys_checks_clean() -> None:
    skeleton = {"BSN01": None, "BSN02": None, "HL": [{"level": None, "TD101": None, "N1": [{"N101": None}],
                                                      "HL": [{"level": None, "PRF01": None}]}]}
    assert check_values(skeleton, definition("856")) == []
    assert check_values(PO_ACK, definition("855")) == []
    assert [problem.code for problem in check_values("BAK", definition("855"))] == ["X12-B002"]  # type: ignore[arg-type]


def test_the_first_problem_and_the_count_make_the_error_message() -> None:
    with pytest.raises(X12BuildError) as raised:
        build_set({"BAK0": 1, "PO1": [{"PO101": 1.5}]}, definition("855"), "0001")
    assert str(raised.value) == "X12-B001: BAK0: the 855 has no BAK0 here (did you mean 'BAK01'?) (and 1 more)"
    assert raised.value.to_dict()["problems"][1] == "X12-B003: PO1[1].PO101: a float is not written as X12; " \
                                                    "use decimal() for numbers"


def test_every_build_code_is_documented() -> None:
    rows = set(re.findall(r"^\| (X12-B\d{3}) \|", DOCS, re.M))
    assert rows == set(BUILD_CODES)
