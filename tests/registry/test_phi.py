"""PHI scan: every string of an ONNX model is found and reported by field, never by value."""

from __future__ import annotations

import getpass
import socket

import numpy as np
import onnx
import pytest
from google.protobuf import wrappers_pb2
from onnx import TensorProto, helper, numpy_helper

from registry.bundle import phi
from registry.bundle.phi import (
    SCAN_CHUNK_BYTES,
    onnx_strings,
    scan_bytes,
    scan_strings,
    system_identifiers,
)

PLANTED = {
    "node doc": "/home/drsmith/project/train.py",
    "node name": "MRN-4471-ANNA",
    "attribute": "Study-UID-1.2.840.99",
    "initializer": "PATIENT_JONES_W",
    "string tensor": "ZZ-PLANTED-99",
    "model metadata": "/data/st-elsewhere/patient_0042",
    "nested graph": "nested-secret-id",
    "function": "fn_secret_hospital",
    "unknown field": "WIRE-ONLY-LEAK",
}


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def polluted_model() -> onnx.ModelProto:
    weight = numpy_helper.from_array(np.ones((1, 2), np.float32), PLANTED["initializer"])
    labels = helper.make_tensor("labels", TensorProto.STRING, [1], [PLANTED["string tensor"].encode()])
    add = helper.make_node("Add", ["x", PLANTED["initializer"]], ["y"], name=PLANTED["node name"])
    add.doc_string = PLANTED["node doc"]
    add.attribute.append(helper.make_attribute("note", PLANTED["attribute"]))
    branch = helper.make_graph(
        [helper.make_node("Identity", ["y"], ["z_then"], name=PLANTED["nested graph"])],
        "then",
        [],
        [helper.make_tensor_value_info("z_then", TensorProto.FLOAT, [None, 2])],
    )
    cond = helper.make_node("If", ["flag"], ["z"], then_branch=branch, else_branch=branch)
    graph = helper.make_graph(
        [add, cond],
        "g",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 2]),
            helper.make_tensor_value_info("flag", TensorProto.BOOL, []),
        ],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, [None, 2])],
        initializer=[weight, labels],
    )
    function = helper.make_function(
        "pkg.local",
        PLANTED["function"],
        ["a"],
        ["b"],
        [helper.make_node("Identity", ["a"], ["b"])],
        [helper.make_opsetid("", 18)],
    )
    model = helper.make_model(graph, functions=[function], opset_imports=[helper.make_opsetid("", 18)])
    helper.set_model_props(model, {"source": PLANTED["model metadata"]})
    payload = PLANTED["unknown field"].encode()
    extra = _varint(9999 << 3 | 2) + _varint(len(payload)) + payload
    return onnx.ModelProto.FromString(model.SerializeToString() + extra)


def test_every_planted_string_is_found_and_named_by_field() -> None:
    strings = list(onnx_strings(polluted_model()))
    for what, value in PLANTED.items():
        fields = scan_strings(strings, [value])
        assert fields, f"{what} not found"
        assert all(value.lower() not in f.lower() for f in fields), "a report must name fields, not values"
    where = {what: scan_strings(strings, [value]) for what, value in PLANTED.items()}
    assert where["node doc"] == ["model.graph.node[0].doc_string"]
    assert where["attribute"] == ["model.graph.node[0].attribute[0].s"]
    assert where["string tensor"] == ["model.graph.initializer[1].string_data[0]"]
    assert where["model metadata"] == ["model.metadata_props[0].value"]
    assert "model.graph.node[1].attribute[0].g.node[0].name" in where["nested graph"]
    assert where["function"] == ["model.functions[0].name"]
    assert where["unknown field"] == ["model.<unknown field 9999>[0]"]
    assert "model.graph.initializer[0].name" in where["initializer"]


def test_matching_is_case_insensitive_and_byte_level() -> None:
    strings = list(onnx_strings(polluted_model()))
    assert scan_strings(strings, ["mrn-4471-anna"]) == ["model.graph.node[0].name"]
    assert scan_strings(strings, [b"DRSMITH"]) == ["model.graph.node[0].doc_string"]
    assert scan_strings([("card.site", "Zürich-Spital".encode())], ["zürich"]) == ["card.site"]


def test_deny_list_is_checked_too() -> None:
    assert scan_strings([("card.notes", "trained at St Elsewhere")], [], deny_list=["st elsewhere"]) == [
        "card.notes"
    ]


def test_clean_strings_and_too_short_needles_give_no_hit() -> None:
    strings = list(onnx_strings(polluted_model()))
    assert scan_strings(strings, ["not-in-the-model", "", "  ", "ab"]) == []
    assert scan_strings(strings, []) == []


def test_scan_bytes_finds_strings_in_raw_files() -> None:
    data = polluted_model().SerializeToString()
    assert scan_bytes(data, ["wire-only-leak"])
    assert scan_bytes(data, [PLANTED["model metadata"].upper()])
    assert not scan_bytes(data, ["absent-identifier"])
    assert not scan_bytes(data, [])


def test_scan_bytes_finds_a_string_across_chunk_borders_in_large_files() -> None:
    leak = b"/home/DrSmith/scans"
    for offset in (0, 5, len(leak) - 1):
        data = bytearray(SCAN_CHUNK_BYTES + 64)
        start = SCAN_CHUNK_BYTES - offset
        data[start : start + len(leak)] = leak
        assert scan_bytes(bytes(data), ["/home/drsmith/SCANS"]), offset
    assert not scan_bytes(bytes(SCAN_CHUNK_BYTES + 64), ["/home/drsmith"])


def test_system_identifiers_name_this_machine_and_user(monkeypatch: pytest.MonkeyPatch) -> None:
    # Planted, not read from this machine: a short real host name would skip the host-name branch.
    monkeypatch.setattr(socket, "gethostname", lambda: "radiology-ws-0427.st-example.org")
    monkeypatch.setenv("LOGNAME", "drsmith")
    monkeypatch.setenv("HOME", "/home/drsmith")
    found = system_identifiers()
    assert found == {"radiology-ws-0427.st-example.org", "radiology-ws-0427", "drsmith", "/home/drsmith"}
    assert getpass.getuser() == "drsmith"


def test_system_identifiers_leave_out_names_too_short_to_scan_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket, "gethostname", lambda: "ws")
    monkeypatch.setenv("LOGNAME", "ab")
    monkeypatch.setenv("HOME", "/")
    assert system_identifiers() == set()


def test_needles_of_the_minimum_length_count_and_are_trimmed() -> None:
    assert scan_strings([("card.notes", "seen at kgh today")], [" KGH \n"]) == ["card.notes"]
    assert scan_bytes(b"seen at kgh today", [b" KGH "])
    assert not scan_bytes(b"seen at kg today", ["kg"])


def test_a_field_is_reported_once_in_first_seen_order() -> None:
    named = [("b.second", "drsmith"), ("a.first", "DrSmith again"), ("b.second", "drsmith")]
    assert scan_strings(named, ["drsmith"]) == ["b.second", "a.first"]


def test_a_forbidden_string_inside_a_word_or_number_is_no_hit() -> None:
    # Token-bounded: the stem "000" of an anonymized file name must not hit op or number names.
    named = [("model.graph.node[0].name", "Conv_1000"), ("card.notes", "0.9000"), ("card.site", "000.png")]
    assert scan_strings(named, ["000"]) == ["card.site"]


def test_text_bytes_that_are_not_utf8_are_still_scanned() -> None:
    tensor = helper.make_tensor("t", TensorProto.STRING, [1], [b"\xff\xfeDRSMITH\xff"])
    strings = list(onnx_strings(tensor, "t"))
    assert ("t.string_data[0]", "\ufffd\ufffdDRSMITH\ufffd") in strings
    assert scan_strings(strings, ["drsmith"]) == ["t.string_data[0]"]


def test_unset_and_default_fields_are_not_walked() -> None:
    assert list(onnx_strings(onnx.ModelProto())) == []
    assert list(onnx_strings(helper.make_node("Relu", ["x"], ["y"]), "n")) == [
        ("n.input[0]", "x"),
        ("n.output[0]", "y"),
        ("n.op_type", "Relu"),
    ]


def test_an_unknown_user_still_leaves_host_and_home(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_user() -> str:
        raise KeyError("uid 4242 has no name")

    monkeypatch.setattr(socket, "gethostname", lambda: "radiology-ws-0427")
    monkeypatch.setattr(getpass, "getuser", no_user)
    monkeypatch.setenv("HOME", "/home/drsmith")
    assert system_identifiers() == {"radiology-ws-0427", "/home/drsmith"}


def test_scan_bytes_finds_a_string_at_every_offset_of_small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    # Chunks of 8 bytes: every position of a 5-byte leak, across every chunk border, is found.
    monkeypatch.setattr(phi, "SCAN_CHUNK_BYTES", 8)
    for start in range(0, 40 - 5 + 1):
        data = bytearray(b"." * 40)
        data[start : start + 5] = b"KGH-7"
        assert scan_bytes(bytes(data), ["kgh-7"]), start
        assert not scan_bytes(bytes(data), ["kgh-70"]), start


def test_unknown_fields_that_are_not_utf8_and_lone_surrogates_are_still_scanned() -> None:
    payload = b"\xff\xfeDRSMITH"
    wire = _varint(9999 << 3 | 2) + _varint(len(payload)) + payload
    model = onnx.ModelProto.FromString(wire)
    assert list(onnx_strings(model)) == [("model.<unknown field 9999>[0]", "\ufffd\ufffdDRSMITH")]
    assert scan_strings([("card.notes", "\ud800 drsmith")], ["drsmith"]) == ["card.notes"]


def test_tensor_payloads_are_not_walked_as_text() -> None:
    weight = numpy_helper.from_array(np.frombuffer(b"DRSMITH!", np.uint8), "w")
    assert list(onnx_strings(weight, "t")) == [("t.name", "w")]


def test_scalar_fields_without_presence_are_walked_when_set() -> None:
    # ONNX is proto2 (every scalar has presence); a proto3 message's plain string field has none.
    assert list(onnx_strings(wrappers_pb2.StringValue(value="drsmith"), "w")) == [("w.value", "drsmith")]
    assert list(onnx_strings(wrappers_pb2.StringValue(), "w")) == []


def test_system_identifiers_of_the_minimum_length_count(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket, "gethostname", lambda: "kgh")
    monkeypatch.setenv("LOGNAME", "abc")
    monkeypatch.setenv("HOME", "/")
    assert system_identifiers() == {"kgh", "abc"}


def test_non_ascii_names_match_in_any_case_and_normal_form() -> None:
    named = [("card.task.notes", "Index case: Jürgen Müller"), ("card.site", "Ju\u0308rgen")]
    assert scan_strings(named, ["MÜLLER^JÜRGEN", "MÜLLER"]) == ["card.task.notes"]
    assert scan_strings(named, ["JÜRGEN"]) == ["card.task.notes", "card.site"]
    assert scan_strings([("card.site", "STRASSE 7")], ["straße"]) == ["card.site"]
    assert scan_strings([("card.site", "Jürgenson")], ["jürgen"]) == []  # still token-bounded


def test_scan_bytes_finds_non_ascii_names_in_any_case_form_and_json_escape() -> None:
    for data in (
        "note: Jürgen Müller".encode(),
        "note: JU\u0308RGEN".encode(),
        b'{"notes": "J\\u00fcrgen M\\u00fcller"}',
        b'{"notes": "JU\\u0308RGEN"}',
    ):
        assert scan_bytes(data, ["JÜRGEN"]), data
    assert not scan_bytes(b"Jurgen Muller", ["JÜRGEN"])


def test_scan_bytes_finds_a_non_ascii_name_across_chunk_borders(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(phi, "SCAN_CHUNK_BYTES", 8)
    leak = b"M\\u00dcLLER"
    for start in range(0, 48 - len(leak) + 1):
        data = bytearray(b"." * 48)
        data[start : start + len(leak)] = leak
        assert scan_bytes(bytes(data), ["müller"]), start
