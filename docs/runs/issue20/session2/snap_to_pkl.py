"""Turn a training snapshot (epochN.pth) into a .pkl + .onnx by loading it into a learner of the same chain."""
import sys
from pathlib import Path

import torch

from fer.card import load_card
from fer.export import export_onnx
from fer.learner import export_learner
from fer.predict import load_learner_file

template, snap, out = sys.argv[1:4]
learn = load_learner_file(template)
state = torch.load(snap, map_location="cpu", weights_only=False)
learn.model.load_state_dict(state["model"] if "model" in state else state)
card = {**load_card(template), "snapshot": str(snap)}
card.pop("onnx", None)
p = export_learner(learn, out, card)
export_onnx(learn, Path(out).with_suffix(".onnx"), card)
print("wrote", p)
