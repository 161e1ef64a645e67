"""Export a trained learner to ONNX for torch-free serving.

    python -m fer.export exports/fer2013_effnet_lite0.pkl [--out NAME.onnx]

Writes ``NAME.onnx`` beside the ``.pkl``: uint8 grey faces ``(N, 1, 48, 48)`` in, logits out, with the
learner's validation preprocessing (scale, resize, normalise) compiled in, and the class list and model
card in its metadata. The file is checked against ``learn.predict`` (to 1e-4) before it is written; the
JSON card beside the model gets an ``onnx`` entry (file, checksum, largest difference).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from fer.core.extras import exit_on_missing_extra


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command's options (``--help`` lists them)."""
    p = argparse.ArgumentParser(prog="python -m fer.export", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="exported fastai learner (.pkl)")
    p.add_argument("--out", help="ONNX file to write (default: beside the .pkl, NAME.onnx)")
    return p.parse_args(argv)


@exit_on_missing_extra
def main(argv: list[str] | None = None) -> int:
    """Run ``python -m fer.export``: write the learner's ONNX file (checked against it) and update its card; returns
    the exit status."""
    args = parse_args(argv)
    pkl = Path(args.model)
    out = Path(args.out) if args.out else pkl.with_suffix(".onnx")
    if out.suffix.lower() != ".onnx":
        print(f"error: --out {out}: must end in .onnx", file=sys.stderr)
        return 2
    from fer.serving.model_files import ModelLoadError, load_card
    from fer.training.export import ExportError, export_onnx  # torch and fastai load here
    from fer.training.predict import load_learner_file

    try:
        learn = load_learner_file(pkl)
        path = export_onnx(learn, out, load_card(pkl))
    except (ModelLoadError, ExportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"error: cannot write {out}: {e.strerror or e}", file=sys.stderr)
        return 2
    entry = json.loads(path.with_suffix(".json").read_text())["onnx"]
    print(f"exported {path} ({entry['bytes'] / 1e6:.1f} MB; largest difference from learn.predict "
          f"{entry['max_difference_from_learn_predict']:.1e}) and its card {path.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
