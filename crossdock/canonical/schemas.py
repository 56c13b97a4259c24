"""JSON Schemas of the canonical documents, generated from the models into ``schemas/canonical``.

Run ``python -m crossdock.canonical.schemas`` after changing a model; a test compares the committed
files with a fresh rendering byte for byte.

The schemas are generated in pydantic's *serialization* mode: they describe the documents crossdock
writes, which is what the systems that receive them (ERP, WMS, partners) need to know. In that mode
money and quantities are strings of exact digits with a pattern ("12.50"), matching what the JSON
format writes; validation mode would publish "a number or a string" for them, inviting consumers to
read money into floats. What crossdock *accepts* is decided by the models, which are more lenient
(numbers, ints, Decimal) than the schemas.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema

from crossdock.canonical import DOCUMENTS

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMAS_DIR = Path(__file__).resolve().parents[2] / "schemas" / "canonical"


class _Generator(GenerateJsonSchema):
    """Leaves out the per-field titles ("Po Number") that only repeat the field name."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


def schema_of(model: type[BaseModel]) -> dict[str, Any]:
    """The JSON Schema of `model` as published."""
    schema = model.model_json_schema(mode="serialization", schema_generator=_Generator)
    return {"$schema": SCHEMA_DIALECT, **schema}


def render(model: type[BaseModel]) -> str:
    """The file text for `model`: keys sorted so output never depends on generation order, indent 2."""
    return json.dumps(schema_of(model), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def file_name(model: type[BaseModel]) -> str:
    """Where `model`'s schema lives inside ``schemas/canonical``."""
    return f"{model.__name__}.schema.json"


def rendered() -> dict[str, str]:
    """Every document's schema file, by file name."""
    return {file_name(model): render(model) for model in DOCUMENTS}


def write(directory: Path = SCHEMAS_DIR) -> list[Path]:
    """(Re)write every schema file into `directory`; returns the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in rendered().items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def main() -> int:
    """Regenerate the committed schema files."""
    for path in write():
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
