"""Strip everything from an exported ONNX model that is not needed to run it.

The dynamo exporter records where the model came from: producer and version, module class
paths and call stacks (``namespace`` / ``pkg.torch.*`` metadata on nodes and values), the
exported program's signature, local function names, node names and parameter names built from
module paths. None of that is needed to run the model and some of it can identify the site
(package locations, user names in paths), so it is removed or replaced by neutral names. The
graph's inputs and outputs keep their contract names; the arithmetic is untouched.
"""

from __future__ import annotations

import onnx.inliner
from google.protobuf.message import Message
from onnx import GraphProto, ModelProto

NEUTRAL_GRAPH_NAME = "specialist"
PRODUCER_NAME = "gsco"
PRODUCER_VERSION = "1"
MODEL_VERSION = 1
_FREE_TEXT_FIELDS = ("doc_string", "metadata_props")
_BULK_FIELDS = frozenset({"raw_data", "float_data", "int32_data", "int64_data", "double_data", "uint64_data"})


def anonymize_model(model: ModelProto) -> ModelProto:
    """Return an anonymized copy of ``model`` (local functions inlined, text stripped, names neutral)."""
    return anonymize_in_place(model if len(model.functions) else _copy(model))


def anonymize_in_place(model: ModelProto) -> ModelProto:
    """Anonymize a model the caller owns and will not use again; return the result.

    Same result as ``anonymize_model`` without copying the weights (hundreds of MB for a
    ViT-B): ``model`` itself is modified and returned, unless it has local functions, whose
    inlining builds a new model anyway.
    """
    out = onnx.inliner.inline_local_functions(model) if len(model.functions) else model
    _drop_unused_domains(out)
    _strip_free_text(out)
    out.producer_name = PRODUCER_NAME
    out.producer_version = PRODUCER_VERSION
    out.ClearField("domain")
    out.model_version = MODEL_VERSION
    out.graph.name = NEUTRAL_GRAPH_NAME
    keep = {value.name for value in out.graph.input} | {value.name for value in out.graph.output}
    _rename_graph(out.graph, keep, {})
    return out


def _copy(model: ModelProto) -> ModelProto:
    copy = ModelProto()
    copy.CopyFrom(model)
    return copy


def _strip_free_text(message: Message) -> None:
    """Clear ``doc_string`` and ``metadata_props`` on every message, recursively.

    Only message-typed fields are descended into, so tensor payloads are never copied.
    """
    for field in message.DESCRIPTOR.fields:
        if field.name in _FREE_TEXT_FIELDS:
            message.ClearField(field.name)
        elif field.message_type is not None and field.name not in _BULK_FIELDS:
            if field.is_repeated:
                for item in getattr(message, field.name):
                    _strip_free_text(item)
            elif message.HasField(field.name):
                _strip_free_text(getattr(message, field.name))


def _rename_graph(graph: GraphProto, keep: set[str], mapping: dict[str, str]) -> None:
    """Give every value a neutral name (``t<n>``) and drop node names, subgraphs included.

    One mapping is shared across nested graphs so that outer-scope references stay consistent.
    """

    def neutral(name: str) -> str:
        if not name or name in keep:
            return name
        return mapping.setdefault(name, f"t{len(mapping)}")

    for group in (graph.input, graph.output, graph.value_info, graph.initializer):
        for item in group:
            item.name = neutral(item.name)
    for sparse in graph.sparse_initializer:
        sparse.values.name = neutral(sparse.values.name)
        sparse.indices.name = neutral(sparse.indices.name)
    for annotation in graph.quantization_annotation:
        annotation.tensor_name = neutral(annotation.tensor_name)
    for node in graph.node:
        node.ClearField("name")
        node.input[:] = [neutral(name) for name in node.input]
        node.output[:] = [neutral(name) for name in node.output]
        for attribute in node.attribute:
            for sub in ([attribute.g] if attribute.HasField("g") else []) + list(attribute.graphs):
                sub.name = f"{NEUTRAL_GRAPH_NAME}_branch"
                _rename_graph(sub, keep, mapping)


def _drop_unused_domains(model: ModelProto) -> None:
    """Remove opset imports (e.g. ``pkg.torch.*`` function domains) no node uses any more."""
    used = {""} | _node_domains(model.graph)
    kept = [opset for opset in model.opset_import if opset.domain in used]
    del model.opset_import[:]
    model.opset_import.extend(kept)


def _node_domains(graph: GraphProto) -> set[str]:
    domains: set[str] = set()
    for node in graph.node:
        domains.add(node.domain)
        for attribute in node.attribute:
            for sub in ([attribute.g] if attribute.HasField("g") else []) + list(attribute.graphs):
                domains |= _node_domains(sub)
    return domains
