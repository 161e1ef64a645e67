"""Log-probabilities of several ONNX models on the suite's faces (the faces as they are; no flip), for offline analysis."""
import sys, numpy as np
from fer.onnx_predict import OnnxFacePredictor
from fer.suite import suite_faces, SETS
usage, out, models = sys.argv[1], sys.argv[2], sys.argv[3:]
faces = suite_faces("../shared/data/fer2013.csv.gz", "../shared/data/ferplus_labels.csv", usage, cache="runs/suite_cache")
arrays = {}
for i, s in enumerate(SETS):
    fs = faces.sets[s]
    arrays[f"fer2013_{i}"] = np.array(fs.fer2013); arrays[f"ferplus_{i}"] = np.array(["" if y is None else y for y in fs.ferplus])
for m in models:
    p = OnnxFacePredictor.load(m.split("=")[1])
    arrays["classes"] = np.array(p.classes)
    for i, s in enumerate(SETS):
        fs = faces.sets[s].faces
        for view, f in (("none", fs),):
            arrays[f"{m.split('=')[0]}|{i}|{view}"] = np.log(np.clip(p.predict_proba(f), 1e-8, 1)).astype(np.float32)
    print(m, flush=True)
np.savez_compressed(out, **arrays)
