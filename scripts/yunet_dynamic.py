"""Write fer/models/yunet/yunet_n_dynamic.onnx: the shipped YuNet (yunet_n_320_320.onnx) with its input's height and
width left free, so onnxruntime-web can run it at any size (OpenCV ignores the fixed 320×320 of the original;
onnxruntime refuses other sizes). Weights and graph are untouched; only the declared shapes change.

    python scripts/yunet_dynamic.py        # needs the onnx package (the full install has it)
"""

from __future__ import annotations

import sys
from pathlib import Path

from fer.serving.detect import YUNET_MODEL

DYNAMIC_MODEL = YUNET_MODEL.with_name("yunet_n_dynamic.onnx")


def dynamic_yunet(source: Path = YUNET_MODEL):
    """The YuNet graph with input (1, 3, height, width) and outputs (1, anchors, k)."""
    import onnx

    model = onnx.load(str(source))
    dims = model.graph.input[0].type.tensor_type.shape.dim
    for dim, name in zip(dims[2:], ("height", "width")):
        dim.ClearField("dim_value")
        dim.dim_param = name
    for output in model.graph.output:
        anchors = output.type.tensor_type.shape.dim[1]
        anchors.ClearField("dim_value")
        anchors.dim_param = "anchors"
    del model.graph.value_info[:]  # shapes inferred for 320×320; onnxruntime infers them again
    onnx.checker.check_model(model)
    return model


def main() -> int:
    import onnx

    onnx.save(dynamic_yunet(), str(DYNAMIC_MODEL))
    print(f"wrote {DYNAMIC_MODEL} ({DYNAMIC_MODEL.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
