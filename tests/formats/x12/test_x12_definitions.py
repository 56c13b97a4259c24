"""The transaction-set definitions in schemas/x12 and their loader."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from crossdock.formats import x12
from crossdock.formats.x12 import definitions
from crossdock.formats.x12.definitions import SCHEMA_DIR, Catalog, DefinitionError, LoopUse, SegmentUse, schema_root

ROOT = Path(__file__).resolve().parents[3]

SETS = ["810", "832", "846", "850", "855", "856", "940", "945", "997"]


def test_every_set_exists_in_004010_and_005010_and_999_in_005010() -> None:
    expected = sorted([(set_id, version) for set_id in SETS for version in ("004010", "005010")]
                      + [("999", "005010")])
    assert x12.default_catalog().sets() == expected


@pytest.mark.parametrize("set_id, version", x12.default_catalog().sets())
def test_every_definition_loads_and_is_consistent(set_id: str, version: str) -> None:
    definition = x12.default_catalog().definition(set_id, version)
    assert definition is not None and (definition.id, definition.version) == (set_id, version)

    def check(nodes: list[SegmentUse | LoopUse]) -> None:
        for node in nodes:
            if isinstance(node, LoopUse):
                assert node.trigger == node.loop, "loops are named after their trigger segment"
                check(node.body)
            else:
                assert node.segment in definition.segments

    check(definition.structure)
    for element_id, counted in definition.counts.items():
        assert definition.element(element_id) is not None and counted in definition.segments


def test_key_qualifiers_have_code_lists() -> None:
    catalog = x12.default_catalog()
    po = catalog.definition("850", "004010")
    asn = catalog.definition("856", "005010")
    assert po is not None and asn is not None
    assert {"ST", "BT"} <= set(po.element("N101").codes or {})  # type: ignore[union-attr]
    assert {"00", "01"} <= set(po.element("BEG01").codes or {})  # type: ignore[union-attr]
    assert "SA" in (po.element("BEG02").codes or {})  # type: ignore[union-attr]
    assert "DP" in (po.element("REF01").codes or {})  # type: ignore[union-attr]
    assert {"S", "O", "T", "P", "I"} <= set(asn.element("HL03").codes or {})  # type: ignore[union-attr]
    sac = catalog.definition("810", "004010").element("SAC01")  # type: ignore[union-attr]
    assert sac is not None and sac.complete and set(sac.codes or {}) == {"A", "C", "N"}


def test_element_attributes() -> None:
    po = x12.default_catalog().definition("850", "004010")
    assert po is not None
    beg03 = po.element("BEG03")
    assert beg03 is not None and (beg03.ref, beg03.type, beg03.min, beg03.max, beg03.req) == ("324", "AN", 1, 22, "M")
    assert po.element("BEG05").type == "DT"  # type: ignore[union-attr]
    assert po.element("PO104").type == "R"  # type: ignore[union-attr]
    assert po.element("BEG99") is None and po.element("XYZ01") is None


def test_005010_differs_where_the_standard_does() -> None:
    catalog = x12.default_catalog()
    old, new = catalog.dictionary("004010"), catalog.dictionary("005010")
    assert len(old["ST"].elements) == 2 and len(new["ST"].elements) == 3
    assert old["REF"].elements[1].max == 30 and new["REF"].elements[1].max == 50
    assert len(new["AK1"].elements) == 3 and "IK3" in new and "IK3" not in old
    assert new["BEG"] == old["BEG"]


def test_version_resolution() -> None:
    catalog = x12.default_catalog()
    assert catalog.resolve_version("850", "004010VICS") == "004010"
    assert catalog.resolve_version("850", "004030") == "004010"
    assert catalog.resolve_version("850", "005010X") == "005010"
    assert catalog.resolve_version("999", "004010") is None
    assert catalog.resolve_version("850", "003060") is None
    assert catalog.definition("204", "004010") is None


def test_functional_groups_come_from_the_definitions() -> None:
    assert x12.default_catalog().functional_groups == {
        "810": "IN", "832": "SC", "846": "IB", "850": "PO", "855": "PR", "856": "SH", "940": "OW",
        "945": "SW", "997": "FA", "999": "FA"}


def test_definitions_are_cached() -> None:
    catalog = Catalog()
    assert catalog.definition("850", "004010") is catalog.definition("850", "004010VICS")


def _copy_schemas(tmp_path: Path) -> Path:
    for path in SCHEMA_DIR.glob("*.yaml"):
        (tmp_path / path.name).write_text(path.read_text())
    return tmp_path


@pytest.mark.parametrize("name, content, message", [
    ("850.004010.yaml", "id: '850'\nversion: '004010'\n", "name"),
    ("850.004010.yaml", "[unclosed", "not valid YAML"),
    ("850.004010.yaml", "id: '850'\nversion: '004010'\nname: X\nfunctional_group: PO\nstructure:\n"
                        "  - {segment: QQQ}\n", "not in the dictionary: QQQ"),
    ("850.004010.yaml", "id: '850'\nversion: '004010'\nname: X\nfunctional_group: PO\nstructure:\n"
                        "  - loop: N1\n    body: [{segment: N3}]\n", "must begin with its mandatory trigger"),
    ("850.004010.yaml", "id: '850'\nversion: '004010'\nname: X\nfunctional_group: PO\nstructure:\n"
                        "  - {segment: BEG}\ncodes:\n  N101: {values: {ST: Ship To}}\n", "does not have"),
])
def test_bad_definition_files_are_reported_with_their_path(tmp_path: Path, name: str, content: str,
                                                           message: str) -> None:
    root = _copy_schemas(tmp_path)
    (root / name).write_text(content)
    with pytest.raises(DefinitionError) as caught:
        Catalog(root).definition("850", "004010")
    assert name in str(caught.value) and message in str(caught.value)


def test_a_set_may_narrow_a_code_list(tmp_path: Path) -> None:
    root = _copy_schemas(tmp_path)
    path = root / "850.004010.yaml"
    text = path.read_text().replace("  N101:\n    complete: false", "  N101:\n    complete: true")
    path.write_text(text)
    definition = Catalog(root).definition("850", "004010")
    assert definition is not None and definition.element("N101").complete  # type: ignore[union-attr]


def test_the_package_folder_holds_the_same_files_as_schemas_x12() -> None:
    root = schema_root()
    assert Path(str(root)) == Path(definitions.__file__).parent / "schemas"
    packaged = {entry.name: entry.read_text(encoding="utf-8") for entry in root.iterdir()}
    assert packaged == {path.name: path.read_text(encoding="utf-8") for path in SCHEMA_DIR.glob("*.yaml")}


def test_without_package_data_the_repository_folder_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(definitions, "PACKAGED_SCHEMAS", "no-such-folder")
    assert schema_root() == SCHEMA_DIR
    assert Catalog().definition("850", "004010") is not None


def test_an_installed_package_carries_its_definitions(tmp_path: Path) -> None:
    """Build the package as a wheel does (build_py), then load definitions from the build alone."""
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "crossdock", source / "crossdock", symlinks=True,
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(SCHEMA_DIR, source / "schemas" / "x12")
    built = tmp_path / "lib"
    subprocess.run([sys.executable, "-c", "from setuptools import setup; setup()", "build_py", "-d", str(built)],
                   cwd=source, check=True, capture_output=True)
    yaml = built / "crossdock" / "formats" / "x12" / "schemas" / "856.005010.yaml"
    assert yaml.is_file() and not yaml.is_symlink()
    probe = ("import crossdock, crossdock.formats.x12.definitions as d; "
             "print(crossdock.__file__); print(d.schema_root()); "
             "print(d.default_catalog().definition('856', '005010').name)")
    result = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, check=True, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(built)})
    module, root, name = result.stdout.splitlines()
    assert Path(module).is_relative_to(built) and Path(root) == yaml.parent and name == "Ship Notice/Manifest"
