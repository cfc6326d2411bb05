"""Anonymization removes every trace of where a model was built and keeps it runnable and exact."""

from __future__ import annotations

import numpy as np
import onnx.inliner
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from registry.bundle.phi import onnx_strings, scan_bytes
from specialist.export.anonymize import (
    NEUTRAL_GRAPH_NAME,
    PRODUCER_NAME,
    PRODUCER_VERSION,
    anonymize_in_place,
    anonymize_model,
)

TRACE = 'File "/home/alice/hospital/specialist/models/specialist.py", line 52, in forward'
WEIGHT_NAME = "/work/main/site_agent/net.fc.weight"
FUNCTION_DOMAIN = "pkg.torch.__subgraph__"
FUNCTION_NAME = "specialist.models.specialist.Specialist"


def exporter_like_model() -> onnx.ModelProto:
    """A small model carrying what the dynamo exporter leaves behind, plus a local function."""
    weight = numpy_helper.from_array(np.arange(6, dtype=np.float32).reshape(2, 3) / 7, WEIGHT_NAME)
    relu = helper.make_function(
        FUNCTION_DOMAIN,
        FUNCTION_NAME,
        ["a"],
        ["b"],
        [helper.make_node("Relu", ["a"], ["b"])],
        [helper.make_opsetid("", 18)],
    )
    relu.doc_string = TRACE
    matmul = helper.make_node(
        "MatMul", ["image", WEIGHT_NAME], ["/tmp/alice/matmul_out"], name="node_MatMul_0"
    )
    matmul.doc_string = TRACE
    helper.set_metadata_props(matmul, {"pkg.torch.onnx.stack_trace": TRACE, "namespace": FUNCTION_NAME})
    call = helper.make_node(FUNCTION_NAME, ["/tmp/alice/matmul_out"], ["logits"], domain=FUNCTION_DOMAIN)
    ident = helper.make_node("Identity", ["/tmp/alice/matmul_out"], ["embedding"], name="node_Identity_1")
    graph = helper.make_graph(
        [matmul, call, ident],
        "main_graph",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 2])],
        [
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 3]),
            helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", 3]),
        ],
        initializer=[weight],
        value_info=[helper.make_tensor_value_info("/tmp/alice/matmul_out", TensorProto.FLOAT, ["batch", 3])],
        doc_string=TRACE,
    )
    helper.set_metadata_props(
        graph.input[0], {"pkg.torch.export.graph_signature.InputSpec.kind": "USER_INPUT"}
    )
    model = helper.make_model(
        graph,
        functions=[relu],
        opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid(FUNCTION_DOMAIN, 1)],
        producer_name="pytorch",
        producer_version="2.14.1+cu130",
        doc_string=TRACE,
    )
    helper.set_model_props(model, {"pkg.torch.export.ExportedProgram.graph_signature": TRACE})
    onnx.checker.check_model(model, full_check=True)
    return model


def _run(model: onnx.ModelProto, image: np.ndarray) -> list[np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(["logits", "embedding"], {"image": image})


def test_anonymized_model_has_no_trace_of_its_origin() -> None:
    clean = anonymize_model(exporter_like_model())
    fields = [field for field, _ in onnx_strings(clean)]
    assert not [f for f in fields if "doc_string" in f or "metadata_props" in f]
    assert not [f for f in fields if f.endswith(".name") and ".node[" in f and ".attribute[" not in f]
    assert not clean.functions
    assert [o.domain for o in clean.opset_import] == [""]
    assert clean.graph.name == NEUTRAL_GRAPH_NAME
    assert (clean.producer_name, clean.producer_version, clean.model_version) == (
        PRODUCER_NAME,
        PRODUCER_VERSION,
        1,
    )
    data = clean.SerializeToString()
    for planted in [
        "/home/alice",
        "/tmp/alice",
        "/work/main",
        "site_agent",
        "pkg.torch",
        "pytorch",
        "stack_trace",
    ]:
        assert not scan_bytes(data, [planted]), planted


def test_contract_names_are_kept_and_values_renamed_neutrally() -> None:
    clean = anonymize_model(exporter_like_model())
    assert [v.name for v in clean.graph.input] == ["image"]
    assert [v.name for v in clean.graph.output] == ["logits", "embedding"]
    assert clean.graph.initializer[0].name.startswith("t")
    assert [v.name for v in clean.graph.value_info] == [clean.graph.node[0].output[0]]


def test_anonymized_model_stays_valid_and_numerically_identical() -> None:
    original = exporter_like_model()
    clean = anonymize_model(original)
    onnx.checker.check_model(clean, full_check=True)
    image = np.random.default_rng(0).standard_normal((4, 2)).astype(np.float32)
    for before, after in zip(_run(original, image), _run(clean, image), strict=True):
        assert np.array_equal(before, after)


def test_the_input_model_is_left_untouched() -> None:
    original = exporter_like_model()
    snapshot = original.SerializeToString()
    anonymize_model(original)
    assert original.SerializeToString() == snapshot


def test_in_place_anonymization_gives_the_same_model_without_copying_it() -> None:
    expected = anonymize_model(exporter_like_model()).SerializeToString()
    assert anonymize_in_place(exporter_like_model()).SerializeToString() == expected
    inlined = onnx.inliner.inline_local_functions(exporter_like_model())
    assert anonymize_in_place(inlined) is inlined
    assert (
        inlined.SerializeToString()
        == anonymize_model(onnx.inliner.inline_local_functions(exporter_like_model())).SerializeToString()
    )


def branchy_model() -> onnx.ModelProto:
    """A model with every place a value name can hide besides the main graph.

    An ``If`` whose branches read an outer value (one branch in another opset domain), a sparse
    initializer and a quantization annotation.
    """
    then = helper.make_graph(
        [helper.make_node("Identity", ["/tmp/alice/mm"], ["/tmp/alice/then"], name="alice_then")],
        "alice_then_graph",
        [],
        [helper.make_tensor_value_info("/tmp/alice/then", TensorProto.FLOAT, ["batch", 3])],
    )
    other = helper.make_graph(
        [
            helper.make_node(
                "Binarizer",
                ["/tmp/alice/mm"],
                ["/tmp/alice/else"],
                name="alice_else",
                domain="ai.onnx.ml",
                threshold=0.5,
            )
        ],
        "alice_else_graph",
        [],
        [helper.make_tensor_value_info("/tmp/alice/else", TensorProto.FLOAT, ["batch", 3])],
    )
    values = numpy_helper.from_array(np.array([2.0, 3.0], np.float32), "/tmp/alice/w")
    indices = numpy_helper.from_array(np.array([0, 5], np.int64), "/tmp/alice/w_indices")
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["image", "/tmp/alice/w"], ["/tmp/alice/mm"], name="alice_mm"),
            helper.make_node(
                "If", ["flag"], ["logits"], name="alice_if", then_branch=then, else_branch=other
            ),
            helper.make_node("Identity", ["/tmp/alice/mm"], ["embedding"], name="alice_id"),
        ],
        "alice_graph",
        [
            helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 2]),
            helper.make_tensor_value_info("flag", TensorProto.BOOL, []),
        ],
        [
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 3]),
            helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", 3]),
        ],
        sparse_initializer=[helper.make_sparse_tensor(values, indices, [2, 3])],
    )
    graph.quantization_annotation.add(tensor_name="/tmp/alice/mm")
    opsets = [
        helper.make_opsetid("", 18),
        helper.make_opsetid("ai.onnx.ml", 3),
        helper.make_opsetid("pkg.x", 1),
    ]
    model = helper.make_model(graph, opset_imports=opsets)
    onnx.checker.check_model(model)
    return model


def test_subgraphs_sparse_weights_and_annotations_are_renamed_consistently() -> None:
    original = branchy_model()
    snapshot = original.SerializeToString()
    clean = anonymize_model(original)
    assert original.SerializeToString() == snapshot, "a model without local functions is copied too"
    onnx.checker.check_model(clean)
    graph = clean.graph
    assert [(n.op_type, n.name, list(n.input), list(n.output)) for n in graph.node] == [
        ("MatMul", "", ["image", "t0"], ["t2"]),
        ("If", "", ["flag"], ["logits"]),
        ("Identity", "", ["t2"], ["embedding"]),
    ]
    assert (graph.sparse_initializer[0].values.name, graph.sparse_initializer[0].indices.name) == ("t0", "t1")
    assert [note.tensor_name for note in graph.quantization_annotation] == ["t2"]
    branches = {a.name: a.g for a in graph.node[1].attribute}
    assert {name: b.name for name, b in branches.items()} == {
        "then_branch": f"{NEUTRAL_GRAPH_NAME}_branch",
        "else_branch": f"{NEUTRAL_GRAPH_NAME}_branch",
    }
    assert (
        branches["else_branch"].node[0].attribute == original.graph.node[1].attribute[0].g.node[0].attribute
    )
    assert [(n.name, list(n.input), list(n.output)) for n in branches["else_branch"].node] == [
        ("", ["t2"], ["t3"])
    ]
    assert [(n.name, list(n.input), list(n.output)) for n in branches["then_branch"].node] == [
        ("", ["t2"], ["t4"])
    ]
    assert [o.name for o in branches["then_branch"].output] == ["t4"]
    assert [(o.domain, o.version) for o in clean.opset_import] == [("", 18), ("ai.onnx.ml", 3)]
    assert not scan_bytes(clean.SerializeToString(), ["alice"])
    for flag in (True, False):
        feeds = {"image": np.array([[1.0, -2.0]], np.float32), "flag": np.array(flag)}
        before, after = (
            ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)
            for m in (original, clean)
        )
        for expected, actual in zip(before, after, strict=True):
            assert np.array_equal(expected, actual)


def test_the_standard_opset_is_kept_even_when_no_node_uses_it() -> None:
    graph = helper.make_graph(
        [helper.make_node("Binarizer", ["image"], ["logits"], domain="ai.onnx.ml", threshold=0.5)],
        "g",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 3])],
    )
    opsets = [
        helper.make_opsetid("", 18),
        helper.make_opsetid("ai.onnx.ml", 3),
        helper.make_opsetid("pkg.x", 1),
    ]
    clean = anonymize_model(helper.make_model(graph, opset_imports=opsets))
    assert [(o.domain, o.version) for o in clean.opset_import] == [("", 18), ("ai.onnx.ml", 3)]
