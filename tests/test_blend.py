"""fer.blend: weight-space blending of a fine-tune with its base, and logit adjustment, exported as .pkl + .onnx."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import TINY_ARCH, run_cli


@pytest.mark.slow
def test_blend_interpolates_weights_and_adjusts_logits(tiny_model, tiny_data, tmp_path):
    from fer.serving.onnx_predict import OnnxFacePredictor
    from fer.training.export import check_faces

    tuned = tmp_path / "tuned.pkl"
    run_cli("-m", "fer.finetune", "--data", str(tiny_data), "--arch", TINY_ARCH, "--init-from", str(tiny_model),
            "--no-pretrained", "--size", "48", "--epochs", "1", "--freeze-epochs", "0", "--bs", "8", "--lr", "1e-2", "--out", str(tuned),
            "--run-dir", str(tmp_path / "run"))
    faces = np.stack(check_faces())[:, None]

    def logits(pkl):
        model = OnnxFacePredictor.load(pkl.with_suffix(".onnx"))
        return model.session.run(None, {model.input_name: faces})[0]

    blends = {}
    for alpha in (0.0, 0.5, 1.0):
        out = tmp_path / f"blend{alpha}.pkl"
        run_cli("-m", "fer.blend", str(tuned), "--base", str(tiny_model), "--alpha", str(alpha), "--out", str(out))
        blends[alpha] = logits(out)
    assert np.allclose(blends[0.0], logits(tiny_model), atol=1e-4)  # all base
    assert np.allclose(blends[1.0], logits(tuned), atol=1e-4)  # all tuned
    assert not np.allclose(blends[0.5], blends[0.0], atol=1e-3) and not np.allclose(blends[0.5], blends[1.0], atol=1e-3)

    adjusted = tmp_path / "adjusted.pkl"
    run_cli("-m", "fer.blend", str(tuned), "--prior-power", "0.5", "--data", str(tiny_data), "--out", str(adjusted))
    # 8 training faces in each of 7 classes: every logit goes up by 0.5 × log(7)
    assert np.allclose(logits(adjusted) - logits(tuned), 0.5 * np.log(7), atol=1e-4)
    card = json.loads(adjusted.with_suffix(".json").read_text())
    assert card["blend"]["prior_power"] == 0.5 and card["blend"]["class_shares"]["happy"] == pytest.approx(1 / 7)
    assert card["onnx"]["file"] == "adjusted.onnx"

    # the adjusted learner starts a further fine-tune: its added bias is left out, the weights carried
    again = tmp_path / "again.pkl"
    result = run_cli("-m", "fer.finetune", "--data", str(tiny_data), "--arch", TINY_ARCH, "--init-from", str(adjusted),
                     "--no-pretrained", "--size", "48", "--epochs", "1", "--freeze-epochs", "0", "--bs", "8",
                     "--lr", "1e-2", "--out", str(again), "--run-dir", str(tmp_path / "again_run"))
    assert "logit adjustment" in result.stdout + result.stderr and again.with_suffix(".onnx").is_file()

    # ... and blending that fine-tune with the adjusted learner as its base leaves the adjustment out too:
    # the same as blending with the weights it was adjusted from
    from_adjusted, from_plain = tmp_path / "from_adjusted.pkl", tmp_path / "from_plain.pkl"
    result = run_cli("-m", "fer.blend", str(again), "--base", str(adjusted), "--alpha", "0.5", "--out", str(from_adjusted))
    assert "logit adjustment" in result.stdout + result.stderr
    run_cli("-m", "fer.blend", str(again), "--base", str(tuned), "--alpha", "0.5", "--out", str(from_plain))
    assert np.allclose(logits(from_adjusted), logits(from_plain), atol=1e-4)

    for bad, message in ((["--alpha", "0.5"], "--alpha below 1 needs --base"),
                         (["--prior-power", "1"], "--prior-power needs --data"),
                         (["--base", str(tmp_path / "none.pkl"), "--alpha", "0.5"], "none.pkl: not found")):
        result = run_cli("-m", "fer.blend", str(tuned), *bad, "--out", str(tmp_path / "x.pkl"), check=False)
        assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr, bad
