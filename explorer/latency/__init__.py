"""Latency: local ONNX Runtime timing, the board agent and its client, device profiles, the predictor."""
