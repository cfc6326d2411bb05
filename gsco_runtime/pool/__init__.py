"""Specialist pool: registry watch, verification, cache, onnxruntime sessions, atomic swap."""
