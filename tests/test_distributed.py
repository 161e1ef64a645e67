"""A real 2-process CPU training (torchrun, gloo, fastai's distrib_ctx) on the tiny synthetic set: one copy
of the checkpoints, log, export and card, written by rank 0; rank 0's lr finder sets every process's learning
rate; --resume continues under torchrun too."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from conftest import TINY_ARCH, run_cli

from fer.core.labels import FER2013_CLASSES


def torchrun_finetune(data, out, run_dir, *extra: str):
    return run_cli("-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "fer.finetune",
                   "--data", str(data), "--arch", TINY_ARCH, "--no-pretrained", "--size", "48", "--freeze-epochs", "0",
                   "--bs", "16", "--out", str(out), "--run-dir", str(run_dir), *extra, timeout=900)


def test_two_process_training_exports_once_and_resumes(tiny_data, tmp_path, astronaut):
    from fer.serving.model_files import load_predictor

    out, run_dir = tmp_path / "ddp.pkl", tmp_path / "run"
    result = torchrun_finetune(tiny_data, out, run_dir, "--epochs", "2")  # no --lr: rank 0's lr finder
    assert result.stdout.count("best valid accuracy") == 1  # rank 0 reports and exports, rank 1 only trains
    assert result.stdout.count("lr finder suggests") == 1 and (run_dir / "lr_find.png").stat().st_size > 0
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["processes"] == 2 and card["precision"] == "fp32" and card["classes"] == list(FER2013_CLASSES)
    assert card["onnx"]["max_difference_from_learn_predict"] <= 1e-4
    history = pd.read_csv(run_dir / "history.csv")
    assert list(history.epoch) == [1, 2]  # one row per epoch, not one per process
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ddp.json", "ddp.onnx", "ddp.pkl", "run"]  # no temp files
    faces = [astronaut[30:230, 160:340], np.full((48, 48), 90, np.uint8)]
    pkl, onnx = load_predictor(out), load_predictor(out.with_suffix(".onnx"))
    assert np.abs(pkl.predict_proba(faces) - onnx.predict_proba(faces)).max() < 1e-4

    torchrun_finetune(tiny_data, out, run_dir, "--epochs", "3", "--resume")
    assert list(pd.read_csv(run_dir / "history.csv").epoch) == [1, 2, 3]
    resumed = json.loads(out.with_suffix(".json").read_text())
    assert resumed["epochs"]["unfrozen"] == 3 and resumed["lr"] == card["lr"] > 0  # the lr from config.json
