"""Transaction-set definitions: the YAML files in ``schemas/x12``, their pydantic models and a cached loader.

Two kinds of files, both data written from the public X12 standards:

- ``segments.<version>.yaml``: the segment dictionary of a version (``004010``, ``005010``): each
  segment's elements in order, with data element reference number, type (AN, ID, DT, TM, Nn, R, B),
  minimum and maximum length, requirement (M mandatory, O optional, X relational), code lists for key
  qualifiers, composites as lists of components, and syntax notes (``P0304`` paired, ``R0203`` at
  least one, ``C0405`` conditional, ``L010203`` list conditional, ``E0102`` exclusion). A dictionary
  may ``extends`` an earlier version and restate only the segments that changed.
- ``<set>.<version>.yaml`` (``850.004010.yaml``): a transaction set: its functional group (GS01), the
  segments between ST and SE in order, with requirement and maximum use, and loops (``loop: N1``
  with ``repeat`` and a ``body`` whose first segment is the loop's trigger; ``hierarchical: true``
  for HL loops nested by HL02). ``codes`` narrows or replaces the dictionary's code list of an element
  for this set (``N101``, ``HL03``); ``counts`` names count elements (``CTT01: PO1``: CTT01 is the
  number of PO1 segments).

A code list is complete (``complete: true``: any other value is an error) or a list of common values
(any other value only draws a warning, since the standard list is longer than crossdock's).

:class:`Catalog` loads and caches them; :func:`default_catalog` reads the bundled ones, found by
:func:`schema_root`: ``schemas/x12`` in the repository is the source of truth, and
``crossdock/formats/x12/schemas`` is a link to it that packaging follows, so that an installed
crossdock carries the files as package data (``pyproject.toml``, ``[tool.setuptools.package-data]``).
The package's copy is looked for first, then the repository's folder.
"""

from __future__ import annotations

import functools
import re
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Annotated, Literal, Self, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

SCHEMA_DIR = Path(__file__).resolve().parents[3] / "schemas" / "x12"
"""The definitions in a repository checkout: the source of truth."""

PACKAGED_SCHEMAS = "schemas"
"""The folder of definitions inside this package, as installed (package data)."""

DataType = Literal["AN", "ID", "DT", "TM", "R", "B", "N0", "N1", "N2", "N3", "N4", "N5", "N6", "N7", "N8", "N9"]
Requirement = Literal["M", "O", "X"]
Unbounded = Literal[">1"]

_SYNTAX = re.compile(r"^[PRCLE](\d\d){2,}$")
_SEGMENT_ID = re.compile(r"^[A-Z][A-Z0-9]{1,2}$")
_ELEMENT_ID = re.compile(r"^([A-Z][A-Z0-9]{1,2})(\d\d)$")


ModelT = TypeVar("ModelT", bound=BaseModel)


class DefinitionError(ValueError):
    """A definition file is missing, unreadable or does not match its schema."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ElementDef(_Model):
    """One data element (or composite) of a segment, in position order."""

    ref: str | None = None
    """Data element reference number ("353"), or the composite's ("C040"); None where unknown."""
    name: str
    req: Requirement = "O"
    type: DataType | None = None
    """None for a composite, which has `components` instead."""
    min: int = Field(default=1, ge=0)
    max: int = Field(default=1, ge=1)
    codes: dict[str, str] | None = None
    """Code values and their meanings, for ID elements."""
    complete: bool = False
    """Whether `codes` is the whole list (other values are errors) or common values (warnings)."""
    components: list[ElementDef] | None = None

    @field_validator("codes", mode="before")
    @classmethod
    def _codes_as_text(cls, value: object) -> object:
        # YAML reads codes such as 00 or 1 as numbers; codes are always text.
        if isinstance(value, dict):
            return {str(code): str(meaning) for code, meaning in value.items()}
        return value

    @field_validator("ref", mode="before")
    @classmethod
    def _ref_as_text(cls, value: object) -> object:
        return str(value) if isinstance(value, int) else value

    @model_validator(mode="after")
    def _shape(self) -> Self:
        if (self.type is None) == (self.components is None):
            raise ValueError(f"element {self.ref} needs either a type or components")
        if self.min > self.max:
            raise ValueError(f"element {self.ref} has min {self.min} > max {self.max}")
        return self


class SegmentDef(_Model):
    """One segment of a version's dictionary."""

    name: str
    elements: list[ElementDef]
    syntax: list[str] = []

    @field_validator("syntax")
    @classmethod
    def _syntax_notes(cls, notes: list[str]) -> list[str]:
        for note in notes:
            if not _SYNTAX.match(note):
                raise ValueError(f"syntax note {note!r} is not a letter P, R, C, L or E and element positions")
        return notes


class DictionaryFile(_Model):
    """``segments.<version>.yaml``."""

    version: str = Field(pattern=r"^\d{6}$")
    extends: str | None = Field(default=None, pattern=r"^\d{6}$")
    segments: dict[str, SegmentDef]


class SegmentUse(_Model):
    """A segment's place in a set: requirement and maximum use (">1" for unbounded)."""

    segment: str = Field(pattern=_SEGMENT_ID.pattern)
    req: Literal["M", "O"] = "O"
    max: int | Unbounded = 1


class LoopUse(_Model):
    """A loop: its ID (its trigger segment's), requirement, repeat and body (trigger first)."""

    loop: str = Field(pattern=_SEGMENT_ID.pattern)
    req: Literal["M", "O"] = "O"
    repeat: int | Unbounded = 1
    hierarchical: bool = False
    body: list[Annotated[SegmentUse | LoopUse, Field(union_mode="left_to_right")]]

    @model_validator(mode="after")
    def _trigger_first(self) -> Self:
        first = self.body[0] if self.body else None
        if not isinstance(first, SegmentUse) or first.req != "M" or first.max != 1:
            raise ValueError(f"loop {self.loop} must begin with its mandatory trigger segment, used once")
        return self

    @property
    def trigger(self) -> str:
        """The ID of the segment that starts the loop."""
        return self.body[0].segment  # type: ignore[union-attr]


Node = SegmentUse | LoopUse


class CodeList(_Model):
    """A set's own code list for one element."""

    values: dict[str, str]
    complete: bool = False

    @field_validator("values", mode="before")
    @classmethod
    def _codes_as_text(cls, value: object) -> object:
        if isinstance(value, dict):
            return {str(code): str(meaning) for code, meaning in value.items()}
        return value


class SetFile(_Model):
    """``<set>.<version>.yaml``."""

    id: str = Field(pattern=r"^\d{3}$")
    version: str = Field(pattern=r"^\d{6}$")
    name: str
    functional_group: str = Field(pattern=r"^[A-Z]{2}$")
    structure: list[Annotated[SegmentUse | LoopUse, Field(union_mode="left_to_right")]]
    codes: dict[str, CodeList] = {}
    counts: dict[str, str] = {}


class SetDefinition(_Model):
    """A transaction set ready for parsing: its structure and the segments it uses, code lists applied."""

    id: str
    version: str
    name: str
    functional_group: str
    structure: list[Node]
    segments: dict[str, SegmentDef]
    """The segments the set uses, with the set's code lists applied."""
    dictionary: frozenset[str]
    """Every segment ID of the version, to tell an unknown segment from one this set does not use."""
    counts: dict[str, str]

    def element(self, element_id: str) -> ElementDef | None:
        """The definition of ``BEG03``-style `element_id` in this set, or None."""
        match = _ELEMENT_ID.match(element_id)
        if match is None or match.group(1) not in self.segments:
            return None
        elements = self.segments[match.group(1)].elements
        position = int(match.group(2))
        return elements[position - 1] if 0 < position <= len(elements) else None

    def loop_ids(self) -> set[str]:
        """The IDs of every loop in the set."""
        found: set[str] = set()
        pending: list[Node] = list(self.structure)
        while pending:
            node = pending.pop()
            if isinstance(node, LoopUse):
                found.add(node.loop)
                pending.extend(node.body)
        return found


def schema_root() -> Traversable:
    """Where the bundled definitions are: the package's own folder when it holds any, else the repository's."""
    packaged = resources.files(__package__).joinpath(PACKAGED_SCHEMAS)
    if packaged.is_dir() and any(entry.name.endswith(".yaml") for entry in packaged.iterdir()):
        return packaged
    return SCHEMA_DIR


def _load_yaml(path: Traversable) -> object:
    try:
        with path.open("r", encoding="utf-8") as stream:
            return yaml.safe_load(stream)
    except OSError as error:
        raise DefinitionError(f"{path}: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise DefinitionError(f"{path}: not valid YAML: {error}") from None


def _parse(model: type[ModelT], path: Traversable) -> ModelT:
    try:
        return model.model_validate(_load_yaml(path))
    except ValidationError as error:
        raise DefinitionError(f"{path}: {error}") from None


def base_version(code: str) -> str:
    """The 6-digit version of a GS08 code: "004010VICS" and "004010" give "004010"."""
    return code[:6]


class Catalog:
    """The definitions in one folder (by default :func:`schema_root`), loaded on first use and cached."""

    def __init__(self, root: Traversable | None = None) -> None:
        self.root: Traversable = root if root is not None else schema_root()
        self._dictionaries: dict[str, dict[str, SegmentDef]] = {}
        self._definitions: dict[tuple[str, str], SetDefinition] = {}
        self._versions: dict[tuple[str, str], str | None] = {}

    @functools.cached_property
    def _files(self) -> list[tuple[str, str]]:
        found = []
        for path in self.root.iterdir():
            name, _, version = path.name.removesuffix(".yaml").partition(".")
            if path.name.endswith(".yaml") and name.isdigit() and version.isdigit():
                found.append((name, version))
        return sorted(found)

    def sets(self) -> list[tuple[str, str]]:
        """Every (set ID, version) pair with a definition file, sorted."""
        return list(self._files)

    @functools.cached_property
    def functional_groups(self) -> dict[str, str]:
        """Set ID to the GS01 code of its functional group, from every definition file."""
        return {set_id: self.definition(set_id, version).functional_group  # type: ignore[union-attr]
                for set_id, version in self.sets()}

    def dictionary(self, version: str) -> dict[str, SegmentDef]:
        """The segment dictionary of `version` (6 digits), following ``extends``."""
        if version not in self._dictionaries:
            data = _parse(DictionaryFile, self.root / f"segments.{version}.yaml")
            if data.version != version:
                raise DefinitionError(f"segments.{version}.yaml declares version {data.version}")
            segments = dict(self.dictionary(data.extends)) if data.extends else {}
            segments.update(data.segments)
            self._dictionaries[version] = segments
        return self._dictionaries[version]

    def resolve_version(self, set_id: str, version_code: str) -> str | None:
        """The version to read a `set_id` in from a GS08 code: the same version, else the nearest
        earlier one of the same major version ("004030" reads as "004010"), else None."""
        key = (set_id, version_code)
        if key not in self._versions:
            wanted = base_version(version_code)
            versions = [version for name, version in self._files if name == set_id]
            earlier = [version for version in versions if version[:3] == wanted[:3] and version <= wanted]
            self._versions[key] = earlier[-1] if earlier else None
        return self._versions[key]

    def definition(self, set_id: str, version_code: str) -> SetDefinition | None:
        """The definition of `set_id` for GS08 `version_code`, or None when there is none."""
        version = self.resolve_version(set_id, version_code)
        if version is None:
            return None
        key = (set_id, version)
        if key not in self._definitions:
            self._definitions[key] = self._resolve(_parse(SetFile, self.root / f"{set_id}.{version}.yaml"))
        return self._definitions[key]

    def _resolve(self, data: SetFile) -> SetDefinition:
        dictionary = self.dictionary(data.version)
        used = sorted(_segment_ids(data.structure))
        missing = [segment_id for segment_id in used if segment_id not in dictionary]
        if missing:
            raise DefinitionError(f"{data.id}.{data.version}.yaml uses segments not in the dictionary: "
                                  f"{', '.join(missing)}")
        segments = {segment_id: dictionary[segment_id] for segment_id in used}
        for element_id, code_list in data.codes.items():
            segments = _with_codes(segments, element_id, code_list, data)
        for element_id, counted in data.counts.items():
            if _ELEMENT_ID.match(element_id) is None or counted not in segments:
                raise DefinitionError(f"{data.id}.{data.version}.yaml: count {element_id}: {counted} does not "
                                      "name an element and a segment of the set")
        return SetDefinition(
            id=data.id,
            version=data.version,
            name=data.name,
            functional_group=data.functional_group,
            structure=data.structure,
            segments=segments,
            dictionary=frozenset(dictionary),
            counts=data.counts,
        )


def _segment_ids(nodes: list[Node]) -> set[str]:
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, LoopUse):
            found |= _segment_ids(node.body)
        else:
            found.add(node.segment)
    return found


def _with_codes(
    segments: dict[str, SegmentDef], element_id: str, code_list: CodeList, data: SetFile
) -> dict[str, SegmentDef]:
    """`segments` with the code list of `element_id` replaced by the set's."""
    match = _ELEMENT_ID.match(element_id)
    segment = segments.get(match.group(1)) if match else None
    position = int(match.group(2)) if match else 0
    if match is None or segment is None or not 0 < position <= len(segment.elements):
        raise DefinitionError(f"{data.id}.{data.version}.yaml: codes for {element_id}, which the set does not have")
    elements = list(segment.elements)
    elements[position - 1] = elements[position - 1].model_copy(
        update={"codes": code_list.values, "complete": code_list.complete})
    return {**segments, match.group(1): segment.model_copy(update={"elements": elements})}


@functools.cache
def default_catalog() -> Catalog:
    """The catalog of the bundled definitions (see :func:`schema_root`)."""
    return Catalog()
