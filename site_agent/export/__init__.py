"""Turn a trained run into a bundle: ONNX export, anonymization, card, PHI scan, signing."""
