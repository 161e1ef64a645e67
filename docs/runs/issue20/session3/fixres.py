"""FixRes check: a trained learner's log-probabilities on the suite's faces at other input sizes (no training)."""
import sys, numpy as np, torch
from fer.predict import load_learner_file
from fer.preprocess import inference_module, validation_pipeline, InferencePreprocess
from fer.suite import suite_faces, SETS
torch.set_num_threads(2)
usage, out, pkl, name, sizes = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], [int(s) for s in sys.argv[5:]]
faces = suite_faces("../shared/data/fer2013.csv.gz", "../shared/data/ferplus_labels.csv", usage, cache="runs/suite_cache")
learn = load_learner_file(pkl)
import os
if os.environ.get("SNAP"):
    st = torch.load(os.environ["SNAP"], map_location="cpu", weights_only=False)
    learn.model.load_state_dict(st["model"] if "model" in st else st)
pre = inference_module(validation_pipeline(learn))
model = learn.model.eval().to(memory_format=torch.channels_last)
arrays = {"classes": np.array([str(c) for c in learn.dls.vocab])}
for i, s in enumerate(SETS):
    fs = faces.sets[s]
    arrays[f"fer2013_{i}"] = np.array(fs.fer2013); arrays[f"ferplus_{i}"] = np.array(["" if y is None else y for y in fs.ferplus])
for size in sizes:
    p = InferencePreprocess(pre.div, (size, size), pre.align_corners, pre.mean, pre.std)
    for i, s in enumerate(SETS):
        x = torch.from_numpy(np.stack(faces.sets[s].faces))[:, None]
        for view, xv in (("none", x), ("flip", x.flip(-1))):
            outs = []
            with torch.no_grad():
                for j in range(0, len(xv), 512):
                    outs.append(torch.log_softmax(model(p(xv[j:j+512]).contiguous(memory_format=torch.channels_last)), 1).numpy())
            arrays[f"{name}@{size}|{i}|{view}"] = np.concatenate(outs)
    print(size, flush=True)
np.savez_compressed(out, **arrays)
