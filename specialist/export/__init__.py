"""ONNX export with parity, anonymization of the graph, the model card, and the one bundle builder."""
