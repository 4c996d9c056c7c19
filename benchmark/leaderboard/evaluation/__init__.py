"""Evaluating submitted ONNX models safely: static checks, a sandboxed run, graph metrics.

Plain Python (onnx, onnxruntime, NumPy), no Django: the evaluation task passes paths in and gets results
out, and the scoring against the hidden labels happens in the parent, outside the sandbox.
"""
