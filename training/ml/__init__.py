"""Plain PyTorch: features, alignment, models, training loops, decoding, scoring, ONNX export.

Nothing under this package imports Django.
"""
