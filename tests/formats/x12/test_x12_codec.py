"""The X12 codec through the format interface that the format registry loads."""

from __future__ import annotations

import pytest
from x12_builders import BASE_ORDER_TEXT

from crossdock.dsl.options import Role
from crossdock.engine.errors import DecodeError
from crossdock.formats.x12 import Document, codec


def test_spec_declares_the_format_its_options_and_arguments() -> None:
    assert codec.SPEC.name == "x12"
    mode, partner = codec.SPEC.options
    assert (mode.name, mode.choices, mode.default, mode.roles) == ("mode", ("strict", "lenient"), "strict",
                                                                   frozenset({Role.SOURCE}))
    assert (partner.name, partner.roles) == ("partner", frozenset({Role.SINK}))
    assert [name for name, _ in codec.SPEC.arguments] == ["set", "version"]


def test_decode_and_encode_round_trip() -> None:
    document = codec.decode(BASE_ORDER_TEXT, {"mode": "lenient"})
    assert isinstance(document, Document) and document.ok
    assert codec.encode(document, {}) == BASE_ORDER_TEXT


def test_decode_raises_a_decode_error_for_bytes_that_are_not_x12() -> None:
    with pytest.raises(DecodeError) as caught:
        codec.decode(b"{\"json\": true}", {})
    assert caught.value.code == "X12-T001" and caught.value.to_dict()["position"] == {"offset": 0, "line": 1,
                                                                                      "segment": 1}
