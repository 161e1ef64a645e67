"""The real training pipeline on the tiny synthetic set: fine-tune → export → load in a fresh process →
predict → evaluate; resume after a kill; the export is atomic and exports the best epoch."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import ROOT, TINY_ARCH, run_cli

from fer.core.fileio import temp_path
from fer.core.labels import FER2013_CLASSES


def test_finetune_exports_learner_card_and_plots(tiny_model):
    card = json.loads(tiny_model.with_suffix(".json").read_text())
    assert card["arch"] == TINY_ARCH and card["classes"] == list(FER2013_CLASSES)
    assert card["input_size"] == 48 and 0 <= card["valid_accuracy"] <= 1
    assert len(card["data"]["sha256"]) == 64 and {"torch", "fastai", "timm"} <= set(card["versions"])
    run = tiny_model.parent / "run"
    for name in ("lr_find.png", "training_curves.png", "history.csv", "best.pth", "last.pth"):
        assert (run / name).stat().st_size > 0, name
    history = pd.read_csv(run / "history.csv")
    assert list(history.columns) == ["phase", "epoch", "train_loss", "valid_loss", "accuracy", "seconds"]
    assert len(history) == 1 and card["lr"] > 0  # lr came from the lr finder


def test_fresh_process_loads_predicts_and_evaluates(tiny_model, tiny_data, tmp_path):
    code = (
        "import sys, numpy as np\n"
        "from fastai.learner import load_learner\n"
        "from fer.training.predict import FacePredictor\n"
        f"learn = load_learner(r'{tiny_model}', cpu=True)\n"
        "face = np.full((48, 48), 128, np.uint8)\n"
        "with learn.no_bar(): label, idx, probs = learn.predict(face)\n"
        "fast = FacePredictor(learn).predict_proba([face])[0]\n"
        "assert abs(float(probs.sum()) - 1) < 1e-5 and np.allclose(fast, probs.numpy(), atol=1e-4)\n"
        "print('OK', label, len(probs))\n"
    )
    result = run_cli("-c", code)
    assert result.stdout.startswith("OK ") and result.stdout.split()[-1] == "7"

    out = tmp_path / "eval.json"
    result = run_cli("-m", "fer.evaluate", "--model", str(tiny_model), "--data", str(tiny_data / "test"),
                     "--json", str(out))
    figures = json.loads(out.read_text())
    assert figures["n"] == 21 and 0 <= figures["accuracy"] <= 1 and "macro-F1" in result.stdout
    assert set(figures["per_class"]) == set(FER2013_CLASSES) and sum(map(sum, figures["confusion_matrix"])) == 21
    assert out.with_suffix(".cm.png").stat().st_size > 0


def test_evaluate_csv_and_tta(tiny_model, tiny_csv, tmp_path):
    out = tmp_path / "e.json"
    result = run_cli("-m", "fer.evaluate", "--model", str(tiny_model), "--data", str(tiny_csv), "--tta",
                     "--json", str(out))
    figures = json.loads(out.read_text())
    assert figures["n"] == 21 and figures["tta"] == "flip" and "21 images, TTA flip," in result.stdout


def test_evaluate_labelled_image_folder(tiny_model, tiny_data, tmp_path):
    import shutil

    flat = tmp_path / "mine"
    flat.mkdir()
    for i, f in enumerate(sorted((tiny_data / "test").glob("*/*.png"))):
        shutil.copy(f, flat / f"{f.parent.name}_{i}.png")
    (flat / "holiday.png").write_bytes((tiny_data / "test" / "sad").glob("*.png").__next__().read_bytes())
    out = tmp_path / "f.json"
    run_cli("-m", "fer.evaluate", "--model", str(tiny_model), "--data", str(flat), "--json", str(out))
    figures = json.loads(out.read_text())
    assert figures["n"] == 21 and len(figures["skipped"]) == 1 and "holiday.png" in figures["skipped"][0]


def test_evaluate_clear_errors(tiny_model, tmp_path):
    result = run_cli("-m", "fer.evaluate", "--model", str(tmp_path / "none.pkl"), "--data", str(tmp_path), check=False)
    assert result.returncode == 2 and "none.pkl: not found" in result.stderr and "Traceback" not in result.stderr
    result = run_cli("-m", "fer.evaluate", "--model", str(tiny_model), "--data", str(tmp_path), check=False)
    assert result.returncode == 2 and "no labelled images" in result.stderr


def finetune_args(data, out, run, epochs="3"):
    return ["-m", "fer.finetune", "--data", str(data), "--arch", TINY_ARCH, "--no-pretrained", "--size", "48",
            "--epochs", epochs, "--freeze-epochs", "0", "--bs", "8", "--lr", "1e-3", "--out", str(out),
            "--run-dir", str(run)]


def start_finetune(args: list[str]) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


@pytest.mark.slow
def test_killed_training_resumes_at_the_next_epoch(tiny_data, tmp_path):
    out, run = tmp_path / "m.pkl", tmp_path / "run"
    proc = start_finetune(finetune_args(tiny_data, out, run, epochs="8"))
    deadline = time.time() + 300
    while time.time() < deadline and not (run / "history.csv").exists():
        time.sleep(0.2)
    while time.time() < deadline and len((run / "history.csv").read_text().splitlines()) < 3:  # 2 epochs logged
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not out.exists(), "a killed run must leave no model at the final path"
    done = json.loads((run / "checkpoint.json").read_text())["epochs_done"]
    assert 2 <= done < 8

    result = run_cli(*finetune_args(tiny_data, out, run, epochs="8"), "--resume")
    assert f"resuming the unfrozen phase at epoch {done + 1}/8" in result.stdout
    history = pd.read_csv(run / "history.csv")
    assert history.epoch.tolist()[-1] == 8 and history.epoch.is_unique  # no epoch trained twice
    assert out.exists() and json.loads(out.with_suffix(".json").read_text())["valid_accuracy"] is not None


def open_when_written(fifo: Path, proc: subprocess.Popen, timeout: float = 300):
    """Open ``fifo`` for reading; returns once ``proc`` opens it to write (a FIFO's open blocks until both
    ends are there). Fails if ``proc`` ends or ``timeout`` passes first."""
    opened: list = []
    reader = threading.Thread(target=lambda: opened.append(open(fifo, "rb")), daemon=True)
    reader.start()
    deadline = time.time() + timeout
    while reader.is_alive() and proc.poll() is None and time.time() < deadline:
        reader.join(0.2)
    if not opened:
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))  # release the waiting reader
        reader.join()
        opened[0].close()
        raise AssertionError(f"the export never started (process ended with {proc.poll()})")
    return opened[0]


@pytest.mark.slow
def test_kill_during_export_leaves_no_model_and_resume_exports_the_best_epoch(tiny_data, tmp_path):
    import torch
    from fastai.learner import load_learner

    out, run = tmp_path / "m.pkl", tmp_path / "run"
    args = finetune_args(tiny_data, out, run, epochs="4")
    args[args.index("--lr") + 1] = "3e-2"  # a jumpy run: the best epoch is often not the last
    os.mkfifo(temp_path(out))  # the export writes here first: it blocks until this test reads
    proc = start_finetune(args)
    with open_when_written(temp_path(out), proc) as export:
        assert export.read(1024), "the export is writing"
        proc.kill()
        proc.wait()
    assert not out.exists() and not out.with_suffix(".json").exists(), "a killed export leaves no file"
    assert json.loads((run / "checkpoint.json").read_text())["epochs_done"] == 4  # killed after the last epoch
    temp_path(out).unlink()

    run_cli(*args, "--resume")  # nothing left to train: loads the checkpoint and exports
    exported = load_learner(out).model.state_dict()
    best, last = (torch.load(run / f"{name}.pth", map_location="cpu", weights_only=False)["model"]
                  for name in ("best", "last"))
    assert all(torch.equal(exported[k], best[k]) for k in best), "the export holds the best epoch's weights"
    if any(not torch.equal(best[k], last[k]) for k in best):
        assert any(not torch.equal(exported[k], last[k]) for k in last)
    card = json.loads(out.with_suffix(".json").read_text())
    state = json.loads((run / "checkpoint.json").read_text())
    assert card["valid_accuracy"] == state["best"] and card["best_epoch"] == state["best_epoch"]


def test_bad_arguments_are_clear_and_make_no_run_folder(tiny_data, tmp_path):
    result = run_cli(*finetune_args(tiny_data, tmp_path / "m.pkl", tmp_path / "run"), "--resume", check=False)
    assert result.returncode == 2 and "--resume: no checkpoint in" in result.stderr and "Traceback" not in result.stderr
    result = run_cli(*finetune_args(tmp_path, tmp_path / "m.pkl", tmp_path / "run"), check=False)
    assert result.returncode == 2 and "train: missing" in result.stderr and "Traceback" not in result.stderr
    result = run_cli("-m", "fer.finetune", "--data", str(tmp_path), "--arch", "no_such_net",
                     "--out", str(tmp_path / "x.pkl"), check=False)
    assert result.returncode == 2 and "unknown timm architecture 'no_such_net'" in result.stderr
    result = run_cli(*finetune_args(tiny_data, tmp_path / "m.pkl", tmp_path / "run"), "--epochs", "-1", check=False)
    assert result.returncode == 2 and "--epochs -1: must be at least 0" in result.stderr
    assert not (tmp_path / "run").exists() and not (tmp_path / "x").exists() and not (ROOT / "runs" / "x").exists()
    for noise in ("FutureWarning", "UserWarning", "Traceback"):
        assert noise not in result.stderr


def test_class_order_is_recorded_and_kept_by_a_second_stage(tiny_data, tmp_path):
    from fastai.learner import load_learner

    first = tmp_path / "alpha.pkl"
    run_cli(*finetune_args(tiny_data, first, tmp_path / "run", epochs="1"), "--class-order", "alphabetical")
    assert list(load_learner(first).dls.vocab) == sorted(FER2013_CLASSES)
    assert json.loads(first.with_suffix(".json").read_text())["class_order"] == "alphabetical"
    result = run_cli(*finetune_args(tiny_data, tmp_path / "b.pkl", tmp_path / "run2", epochs="1"),
                     "--init-from", str(first), "--class-order", "labels", check=False)
    assert result.returncode == 2 and "keeps the classes of the learner it starts from" in result.stderr


@pytest.mark.slow
def test_second_stage_starts_from_an_export_at_a_larger_size(tiny_model, tiny_data, tmp_path):
    from fastai.learner import load_learner

    from fer.training.preprocess import learner_stats

    out = tmp_path / "stage2.pkl"
    args = finetune_args(tiny_data, out, tmp_path / "run", epochs="1")
    args[args.index("--size") + 1] = "64"
    args.remove("--no-pretrained")  # as a user would write it: the arch's ImageNet statistics are not the source's
    run_cli(*args, "--init-from", str(tiny_model), "--mixup", "0.4")
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["init_from"] == tiny_model.name and card["mixup"] == 0.4 and card["input_size"] == 64
    first, second = load_learner(tiny_model), load_learner(out)
    assert list(second.dls.vocab) == list(first.dls.vocab)
    # the weights keep the normalisation they were trained with (the tiny model's, not ImageNet's)
    assert learner_stats(second) == learner_stats(first) == (0.5, 0.5)
    assert card["normalisation"] == json.loads(tiny_model.with_suffix(".json").read_text())["normalisation"]
    changed = [not (a == b).all() for a, b in zip(first.model.state_dict().values(), second.model.state_dict().values())
               if a.is_floating_point()]
    assert any(changed), "the second stage trained the weights it started from"

    other = finetune_args(tiny_data, tmp_path / "x.pkl", tmp_path / "run2", epochs="1")
    other[other.index("--arch") + 1] = "mobilenetv3_small_075"
    result = run_cli(*other, "--init-from", str(tiny_model), check=False)
    assert result.returncode == 2 and "not the same architecture" in result.stderr and "Traceback" not in result.stderr
    result = run_cli(*finetune_args(tiny_data, out, tmp_path / "run3"), "--init-from", str(tmp_path / "no.pkl"),
                     check=False)
    assert result.returncode == 2 and "no.pkl: not found" in result.stderr and "Traceback" not in result.stderr
    (tmp_path / "cut.pkl").write_bytes(tiny_model.read_bytes()[:1000])
    result = run_cli(*finetune_args(tiny_data, out, tmp_path / "run4"), "--init-from", str(tmp_path / "cut.pkl"),
                     check=False)
    assert result.returncode == 2 and "cut.pkl: not a readable fastai learner" in result.stderr


@pytest.mark.slow
def test_cross_fitted_distillation_with_strong_augmentation(tiny_data, tmp_path):
    import numpy as np
    from fastai.learner import load_learner

    teachers = []
    for k in (0, 1):  # two cross-fitted teachers: each trains without its fold (by FER-2013 row number)
        out = tmp_path / f"teacher{k}.pkl"
        result = run_cli(*finetune_args(tiny_data, out, tmp_path / f"t{k}", epochs="1"), "--fold", f"{k}/2")
        held_out = [f for f in (tiny_data / "train").rglob("*.png") if int(f.stem) % 2 == k]
        assert 0 < len(held_out) < 56 and f"{56 - len(held_out)} train / 21 valid images" in result.stdout
        assert json.loads(out.with_suffix(".json").read_text())["fold"] == f"{k}/2"
        teachers += ["--teacher", str(out)]

    out, run = tmp_path / "student.pkl", tmp_path / "run"
    result = run_cli(*finetune_args(tiny_data, out, run, epochs="1"), *teachers, "--distill-weight", "0.5",
                     "--augment", "strong", "--aug", "erasing=0.5", "--ema", "0.9", "--class-weight", "0.5")
    assert "distilling from 2 teacher(s), cross-fitted on 2 folds" in result.stdout
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["teachers"] == ["teacher0.pkl", "teacher1.pkl"] and card["distill_weight"] == 0.5
    assert card["augment_preset"] == "strong" and card["augment"]["erasing"] == 0.5 and card["augment"]["jpeg"] == 0.2
    assert card["ema"] == 0.9 and card["class_weight"] == 0.5

    # the exported student is a plain learner: one target, the same classes, no teachers inside
    student = load_learner(out)
    assert student.dls.n_inp == 1 and len(student.dls.valid.dataset.tls) == 2
    assert list(student.dls.vocab) == list(FER2013_CLASSES)
    assert not any("Distillation" in type(cb).__name__ for cb in student.cbs)
    assert out.with_suffix(".onnx").exists()  # the augmentation stays out of the served preprocessing

    # the first shipped model's way: a plain teacher labels the clean training images once (flip TTA), cached
    clean = tmp_path / "clean.pkl"
    result = run_cli(*finetune_args(tiny_data, clean, tmp_path / "rc", epochs="1"), "--teacher", str(out),
                     "--teacher-view", "clean")
    assert "teacher labels for 56 training images" in result.stdout
    with np.load(tmp_path / "rc" / "teacher_probs.npz") as cache:
        assert cache["probs"].shape == (56, 7) and np.allclose(cache["probs"].sum(1), 1, atol=1e-4)
    assert json.loads(clean.with_suffix(".json").read_text())["teacher_view"] == "clean"
    result = run_cli(*finetune_args(tiny_data, clean, tmp_path / "r2"), *teachers, "--teacher-view", "clean",
                     check=False)
    assert result.returncode == 2 and "cross-fitted teachers (--fold) need --teacher-view augmented" in result.stderr

    result = run_cli(*finetune_args(tiny_data, out, tmp_path / "r2"), *teachers[:2], "--distill-weight", "0.5",
                     check=False)
    assert result.returncode == 2 and "no teacher holds out fold(s) 1 of 2" in result.stderr
    result = run_cli(*finetune_args(tiny_data, out, tmp_path / "r2"), *teachers, "--mixup", "0.4", check=False)
    assert result.returncode == 2 and "cannot be combined" in result.stderr and "Traceback" not in result.stderr
    result = run_cli(*finetune_args(tiny_data, out, tmp_path / "r2"), *teachers, "--distill-weight", "1.5",
                     check=False)
    assert result.returncode == 2 and "--distill-weight 1.5: must be in (0, 1]" in result.stderr
    result = run_cli(*finetune_args(tiny_data, out, tmp_path / "r2"), "--distill-weight", "0.5", check=False)
    assert result.returncode == 2 and "needs at least one --teacher" in result.stderr
    result = run_cli(*finetune_args(tiny_data, out, tmp_path / "r2"), "--teacher", str(tmp_path / "none.pkl"),
                     check=False)
    assert result.returncode == 2 and "none.pkl: not found" in result.stderr and "Traceback" not in result.stderr
    for bad, message in ((["--aug", "blur=2"], "augment blur 2.0: a probability"),
                         (["--augment", "wild"], "--augment wild: choose one of"),
                         (["--fold", "2/2"], "--fold 2/2: need N >= 2 and 0 <= K < N"),
                         (["--ema", "1.5"], "--ema 1.5: a decay per step")):
        result = run_cli(*finetune_args(tiny_data, out, tmp_path / "r2"), *bad, check=False)
        assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr, bad
    assert out.exists(), "a refused run leaves the earlier export in place"


def write_ferplus_votes(path: Path, rows: int, seed: int = 0) -> Path:
    """A FER+ vote file for ``rows`` rows (10 random votes each; row 0 is not a face, row 1 all 'unknown')."""
    import numpy as np
    import pandas as pd

    columns = ["neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt", "unknown", "NF"]
    rng = np.random.default_rng(seed)
    votes = rng.multinomial(10, [0.12] * 8 + [0.02, 0.02], size=rows)
    votes[1] = [0] * 8 + [10, 0]
    frame = pd.DataFrame(votes, columns=columns)
    frame.insert(0, "Image name", [f"fer{i:07d}.png" for i in range(rows)])
    frame.insert(0, "Usage", "Training")
    frame.loc[0, "Image name"] = None
    frame.to_csv(path, index=False)
    return path


def test_finetune_mixes_ferplus_votes_into_the_loss(tiny_data, tmp_path):
    from fer.core.dataset import ferplus_vote_shares
    from fer.core.labels import FER2013_CLASSES

    votes = write_ferplus_votes(tmp_path / "ferplus.csv", rows=98)
    shares = ferplus_vote_shares(votes, list(FER2013_CLASSES))
    assert shares[0].sum() == 0 and shares[1].sum() == 0  # not a face; only 'unknown' votes
    assert abs(shares[2].sum() - 1) < 1e-6

    out, run = tmp_path / "fp.pkl", tmp_path / "run"
    result = run_cli(*finetune_args(tiny_data, out, run, epochs="1"), "--ferplus", str(votes),
                     "--ferplus-weight", "0.4")
    assert "FER+ votes for 54 training images, weight 0.4" in result.stdout  # 56 faces, less rows 0 and 1
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["ferplus"] == "ferplus.csv" and card["ferplus_weight"] == 0.4 and card["distill_weight"] is None
    assert out.with_suffix(".onnx").exists()

    for bad, message in ((["--ferplus", str(tmp_path / "missing.csv")], "missing.csv: no such file"),
                         (["--ferplus", str(votes), "--ferplus-weight", "0"], "--ferplus-weight 0.0: must be in (0, 1]"),
                         (["--ferplus", str(votes), "--mixup", "0.4"], "cannot be combined")):
        result = run_cli(*finetune_args(tiny_data, tmp_path / "x.pkl", tmp_path / "r2"), *bad, check=False)
        assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr, bad
