"""Models that run without PyTorch: ``onnx.py`` writes a model directory's encoder and decoder
step as ONNX graphs, ``runtime.py`` (copied beside them, numpy + onnxruntime only) searches over them."""
