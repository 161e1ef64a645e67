"""Simulated users of `python -m fer.personalize` (issues 22 and 36): does a personal model learn the user's view
of new faces, how much does it forget, and how long does it take?

    python -m benchmarks.personalize --csv ../shared/data/fer2013.csv.gz --ferplus ../shared/data/ferplus_labels.csv \\
        --json docs/personalize.json --md docs/personalize.md [--studies ferplus camera] [--modes replay none] \\
        [--n 25 100 400] [--seeds 3] [--anchor A ...] [--replay-weight W ...] [--split PublicTest|PrivateTest] \\
        [--timing 100] [--cache runs/cache]

(a) `ferplus`: a user whose labels are FER+'s. N corrections drawn at random from the training faces where the
    FER+ majority disagrees with FER-2013's label. Measured on --split (PublicTest to choose settings, PrivateTest
    once) with FER+ majority labels (the user's view of new faces; contempt, unknown and not-a-face left out) and,
    for forgetting, on the *agreed faces* (:func:`agreed_labels`: faces whose FER-2013 label is the FER+ majority,
    so a correction towards the crowd cannot count against itself); FER-2013's labels on every face are kept
    beside them for comparison with issue 22's measure.
(b) `camera`: a new camera. PrivateTest faces (never seen by the base model) pasted upright into one scene style (the `coffee` photo, faces 60–120
    px wide, fer.evaluation.scenes) and cut out by YuNet as the app does; the user corrects N crops the base model gets
    wrong, with their FER-2013 labels (so what changes is the camera, not the taste). Measured on PublicTest
    faces pasted into the other scene styles the same way, and on plain PublicTest (forgetting).

Every correction is saved with fer.serving.feedback.save_correction, as the app saves it, and read back by
fer.training.personalize.prepare (corrections, replayed faces, features); fer.training.personalize.fit then trains one head per
setting (--anchor × --replay-weight) on the same features. The backbone is frozen, so the heads are scored on
the backbone's features of the test faces, computed once: the exported model's output, as fer.personalize's
own before/after card figures are. --timing N also runs the whole command a user runs (`python -m
fer.personalize ... --data CSV`, export included) on N corrections and times it.

Each setting runs with --seeds seeds (which corrections, the training's randomness); the tables give medians.
A long run can be split over processes (--seed-values) and put together with --merge. Modes: `replay` (--data
CSV: 2,000 replayed training faces) and `none` (no data: only the pull towards the base). The JSON and the
Markdown are rewritten after every run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
from fer.core.fileio import write_json_atomic
from fer.core.labels import FER2013_CLASSES

CLASSES = list(FER2013_CLASSES)
SCENE_BACKGROUND = "coffee"
SCENE_WIDTHS = (60.0, 120.0)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--csv", help="fer2013.csv[.gz]")
    p.add_argument("--ferplus", help="FER+ votes, row-aligned with the CSV")
    p.add_argument("--base", default=str(ROOT / "exports" / "fer2013_effnet_lite0.pkl"))
    p.add_argument("--n", type=int, nargs="+", default=[25, 100, 400], help="corrections per simulated user")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--seed-values", type=int, nargs="+", metavar="SEED",
                   help="run only these seeds of range(--seeds) (split a long run over processes; then --merge)")
    p.add_argument("--cache", metavar="DIR", help="keep the backbone's features of un-augmented faces here (test "
                                                  "faces, replayed faces), keyed by the base model and the faces")
    p.add_argument("--merge", nargs="+", metavar="JSON",
                   help="only combine these reports (runs split with --seed-values) into --json/--md, medians anew")
    p.add_argument("--modes", nargs="+", default=["replay", "none"], choices=["replay", "none"])
    p.add_argument("--studies", nargs="*", default=["ferplus", "camera"], choices=["ferplus", "camera"],
                   help="which simulated users: (a) ferplus, (b) camera; none: only --timing")
    p.add_argument("--timing", type=int, default=0, metavar="N",
                   help="also time the whole `python -m fer.personalize` command on N corrections (e.g. 100)")
    p.add_argument("--anchor", type=float, nargs="+",
                   help="fer.personalize --anchor; several values: a sweep, each a row of its own (default: its own)")
    p.add_argument("--replay-weight", type=float, nargs="+",
                   help="fer.personalize --replay-weight, as --anchor (with --anchor: every pair)")
    p.add_argument("--split", default="PublicTest", choices=["PublicTest", "PrivateTest"],
                   help="the faces (a) is measured on: PublicTest to choose settings, PrivateTest once")
    p.add_argument("--test-limit", type=int, help="only the first N test faces (a quick try)")
    p.add_argument("--scene-pool", type=int, default=1500, help="PrivateTest faces pasted into the user's scene")
    p.add_argument("--scene-test", type=int, default=1000, help="PublicTest faces pasted into the other scenes")
    p.add_argument("--json", required=True)
    p.add_argument("--md", help="write the tables as Markdown here")
    args = p.parse_args(argv)
    if not args.merge and not (args.csv and args.ferplus):
        p.error("--csv and --ferplus are needed (or --merge)")
    if args.split != "PublicTest" and "camera" in args.studies:
        p.error("--split PrivateTest: only for --studies ferplus (the camera study's users are PrivateTest faces)")
    return args


def seeds(args) -> list[int]:
    return args.seed_values if args.seed_values is not None else list(range(args.seeds))


def load_data(csv_path: str, ferplus_path: str):
    from fer.core.dataset import ferplus_majority, read_rows

    rows = list(read_rows(csv_path))
    majority = ferplus_majority(ferplus_path)
    faces = np.stack([r.pixels for r in rows])
    fer = np.array([CLASSES[r.label] for r in rows])
    plus = np.array([m if m in CLASSES else "" for m in majority])
    usage = np.array([r.usage for r in rows])
    return faces, fer, plus, usage


def disagreement_pool(data) -> np.ndarray:
    """The FER+ user's corrections are drawn from these: training faces whose FER+ majority (one of the 7
    classes) disagrees with FER-2013's label."""
    _, fer, plus, usage = data
    return np.where((usage == "Training") & (plus != "") & (plus != fer))[0]


def agreed_labels(fer: np.ndarray, plus: np.ndarray) -> np.ndarray:
    """The forgetting measure's labels (issue 36): FER-2013's label where the FER+ majority is the same class,
    "" (left out) elsewhere. A user correcting towards the crowd changes answers where the two label sets
    disagree; on the faces where they agree, any loss is forgetting."""
    return np.where((plus != "") & (plus == fer), fer, "")


def accuracy(probs: np.ndarray, labels: np.ndarray, classes: list[str]) -> float:
    keep = labels != ""
    return float(np.mean(np.array(classes)[probs[keep].argmax(1)] == labels[keep]))


def write_corrections(folder: Path, faces: np.ndarray, labels, predicted_probs: np.ndarray, classes) -> None:
    from fer.serving.feedback import save_correction

    for face, label, p in zip(faces, labels, predicted_probs):
        probs = dict(zip(classes, map(float, p)))
        save_correction(folder, face, str(label), "simulated", "fer2013_effnet_lite0.pkl", max(probs, key=probs.get),
                        probs, classes)


def settings(args) -> list[dict]:
    """The settings to run: every --anchor × every --replay-weight (fer.personalize's defaults when not given;
    the anchor's, None, depends on the mode and is resolved by PersonalizeConfig)."""
    from fer.training.config import PersonalizeConfig

    default = PersonalizeConfig(feedback="", out="")
    return [{"anchor": a, "replay_weight": w} for a in args.anchor or [None]
            for w in args.replay_weight or [default.replay_weight]]


class CachedBackbone:
    """fer.training.personalize.Backbone whose features of un-augmented faces are kept (in memory, and in ``folder`` when
    given) by the base model and the faces' bytes: the same replayed faces, test faces and crops come back for
    every setting, seed and process. Augmented views are computed every time (they are random)."""

    def __init__(self, backbone, base: Path, folder: str | None):
        import hashlib

        self.backbone, self.folder = backbone, Path(folder) if folder else None
        self.key = hashlib.sha1(base.read_bytes()).hexdigest()
        self.memory: dict[str, np.ndarray] = {}

    def features(self, faces: np.ndarray, views: int = 0, bs: int = 256, desc: str = "features") -> np.ndarray:
        import hashlib

        if views:
            return self.backbone.features(faces, views=views, bs=bs, desc=desc)
        faces = np.ascontiguousarray(faces)
        digest = hashlib.sha1(self.key.encode() + str(faces.shape).encode() + faces.tobytes()).hexdigest()[:24]
        path = self.folder / f"features-{digest}.npy" if self.folder else None
        if digest not in self.memory:
            if path is not None and path.exists():
                self.memory[digest] = np.load(path)
            else:
                self.memory[digest] = self.backbone.features(faces, bs=bs, desc=desc)
                if path is not None:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    np.save(path.with_suffix(".tmp.npy"), self.memory[digest])
                    path.with_suffix(".tmp.npy").replace(path)
        return self.memory[digest]


class Trainer:
    """fer.personalize's own steps on a shared base model: :func:`fer.training.personalize.prepare` (the corrections
    read from the folder the app's code wrote, the replayed faces, the backbone's features) once per
    simulated user, then :func:`fer.training.personalize.fit` once per --anchor; the heads are scored on the test
    faces' features (computed once: the backbone is frozen, so this is the exported model's output, as
    fer.personalize's own before/after card figures are). ``seconds``: prepare + fit, wall clock;
    ``cpu_seconds``: the same in CPU time (this process)."""

    def __init__(self, base: str, csv_path: str, cache: str | None = None):
        from fer.training.personalize import Backbone, load_base, trainable_head

        self.learn, self.base_path = load_base(base)
        self.backbone = CachedBackbone(Backbone(self.learn), self.base_path, cache)
        self.base_head = trainable_head(self.learn)
        self.csv = csv_path
        self.classes = [str(c) for c in self.learn.dls.vocab]
        self._features: dict[str, np.ndarray] = {}

    def features(self, name: str, faces) -> np.ndarray:
        if name not in self._features:
            self._features[name] = self.backbone.features(np.stack(list(faces)), desc=name)
        return self._features[name]

    def base_probs(self, faces) -> np.ndarray:
        """The base model's probabilities for some faces (what the app's manifest records for a correction)."""
        from fer.training.personalize import head_probs

        return head_probs(self.base_head, self.backbone.features(np.stack(list(faces)), desc="base"))

    def probs(self, head, name: str) -> np.ndarray:
        from fer.training.personalize import head_probs

        return head_probs(head or self.base_head, self._features[name])

    def runs(self, faces, labels, base_probs, mode: str, seed: int, work: Path, grid: list[dict]):
        """Yield ``(setting, head, seconds, cpu_seconds)`` for one simulated user's corrections, one per setting
        of ``grid`` (PersonalizeConfig fields)."""
        import dataclasses
        import shutil

        from fer.training.config import PersonalizeConfig
        from fer.training.personalize import fit, prepare

        folder = work / f"fb-{mode}-{seed}-{len(faces)}"
        shutil.rmtree(folder, ignore_errors=True)
        write_corrections(folder, faces, labels, base_probs, CLASSES)
        config = PersonalizeConfig(feedback=str(folder), out=str(folder / "mine"), base=str(self.base_path),
                                   data=self.csv if mode == "replay" else None, seed=seed)
        wall, cpu = time.perf_counter(), time.process_time()
        prepared = prepare(config, self.learn, self.backbone)
        prep_wall, prep_cpu = time.perf_counter() - wall, time.process_time() - cpu
        for setting in grid:
            wall, cpu = time.perf_counter(), time.process_time()
            chosen = dataclasses.replace(config, **setting)
            head, _ = fit(prepared, chosen)
            yield ({name: getattr(chosen, name) for name in setting}, head,
                   round(prep_wall + time.perf_counter() - wall, 1), round(prep_cpu + time.process_time() - cpu, 1))


def median_rows(rows: list[dict], keys: list[str], group: tuple[str, ...], spread: Sequence[str] = ()) -> list[dict]:
    """One row per ``group`` value: the median of each of ``keys`` over its runs, and for each of ``spread`` also
    the lowest and highest (``KEY_min``, ``KEY_max``)."""
    out = {}
    for r in rows:
        out.setdefault(tuple(r[g] for g in group), []).append(r)
    return [{**dict(zip(group, k)), "runs": len(v),
             **{key: round(float(np.median([r[key] for r in v])), 4) for key in keys},
             **{f"{key}_{end}": round(float(fn([r[key] for r in v])), 4) for key in spread
                for end, fn in (("min", np.min), ("max", np.max))}} for k, v in sorted(out.items())]


def record_run(study: dict, base: dict, scores: dict, gains: dict[str, str], run: dict, save) -> None:
    """Add one run's row to ``study``: ``run`` (its n, seed, mode, setting and times), the load average, its
    ``scores`` and each score's change from ``base`` (``gains``: change name → score name); the medians are
    computed anew, the study saved and the row printed."""
    row = {**run, "load_average": round(os.getloadavg()[0], 2), **scores}
    row |= {gain: row[score] - base[score] for gain, score in gains.items()}
    study["runs"].append(row)
    keys = [*scores, *gains, "seconds", "cpu_seconds", "load_average"]
    study["medians"] = median_rows(study["runs"], keys, GROUP, spread=list(gains))
    save(study)
    print(json.dumps(row), flush=True)


def user_scores(probs: np.ndarray, fer: np.ndarray, plus: np.ndarray, classes: list[str]) -> dict[str, float]:
    """(a)'s scores of one model on the test faces: the user's view (FER+ labels), the agreed faces (forgetting)
    and FER-2013's labels on every face (issue 22's forgetting measure, for comparison)."""
    return {"ferplus": accuracy(probs, plus, classes), "agreed": accuracy(probs, agreed_labels(fer, plus), classes),
            "fer2013": accuracy(probs, fer, classes)}


FERPLUS_GAINS = {"ferplus_gain": "ferplus", "agreed_change": "agreed", "fer2013_change": "fer2013"}


def ferplus_study(args, data, trainer: Trainer, work: Path, save) -> dict:
    faces, fer, plus, usage = data
    test = np.where(usage == args.split)[0][:args.test_limit]
    pool = disagreement_pool(data)
    trainer.features(args.split, faces[test])
    classes = trainer.classes
    base = user_scores(trainer.probs(None, args.split), fer[test], plus[test], classes)
    study = {"pool": int(len(pool)), "split": args.split, "test_faces": int(len(test)),
             "ferplus_faces": int(np.sum(plus[test] != "")),
             "agreed_faces": int(np.sum(agreed_labels(fer[test], plus[test]) != "")), "before": base, "runs": []}
    for n in args.n:
        for seed in seeds(args):
            pick = np.random.default_rng(1000 + seed).choice(pool, size=n, replace=False)
            user_probs = trainer.base_probs(faces[pick])
            for mode in args.modes:
                for setting, head, seconds, cpu in trainer.runs(faces[pick], plus[pick], user_probs, mode, seed, work,
                                                                settings(args)):
                    after = trainer.probs(head, args.split)
                    record_run(study, base, user_scores(after, fer[test], plus[test], classes), FERPLUS_GAINS,
                               {"n": n, "seed": seed, "mode": mode, **setting, "seconds": seconds,
                                "cpu_seconds": cpu}, save)
    return study


def scene_crops(pixels: np.ndarray, backgrounds: list, seed: int,
                cache: str | None = None) -> tuple[list[np.ndarray], list[int]]:
    """Each face pasted upright into one of ``backgrounds`` (fer.evaluation.scenes.random_scene, 60–120 px wide) and cut
    out by YuNet as the app does (data_scripts/detector_crops.py's detector_crop); the crops and the indices
    of the faces found. Kept in ``cache`` (a folder) when given: the same faces, scenes and seed give the same
    crops."""
    import hashlib

    path = None
    if cache:
        key = hashlib.sha1(np.ascontiguousarray(pixels).tobytes() + np.stack(backgrounds).tobytes()
                           + f"{seed}{SCENE_WIDTHS}".encode()).hexdigest()[:24]
        path = Path(cache) / f"crops-{key}.npz"
        if path.exists():
            kept = np.load(path)
            return list(kept["crops"]), [int(i) for i in kept["found"]]
    from data_scripts.detector_crops import detector_crop
    from fer.core.cli import progress
    from fer.serving.detect import CropSpec, make_detector
    from fer.serving.recognize import PHOTO_DETECT_WIDTH

    detector = make_detector("yunet", PHOTO_DETECT_WIDTH)
    crops, found = [], []
    for i, face in enumerate(progress(pixels, desc="scenes", unit="face")):
        rng = np.random.default_rng([seed, i])
        crop, _ = detector_crop(face, rng, detector, backgrounds, 0.0, SCENE_WIDTHS, CropSpec())
        if crop is not None:
            crops.append(crop)
            found.append(i)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path.with_suffix(".tmp.npz"), crops=np.stack(crops), found=np.array(found))
        path.with_suffix(".tmp.npz").replace(path)
    return crops, found


def camera_study(args, data, trainer: Trainer, work: Path, save) -> dict:
    """(b) A new camera: the user's corrections are YuNet crops of faces the base model never saw (PrivateTest)
    in one scene style (the `coffee` photo), those it gets wrong; tested on PublicTest faces in the other scene
    styles. The user's labels are FER-2013's: the change measured is the camera's, not a change of taste."""
    from fer.evaluation.scenes import BACKGROUNDS, SCENE_SIZE, background
    from fer.serving.faces import to_face

    faces, fer, plus, usage = data
    classes = trainer.classes
    mine = [background(SCENE_BACKGROUND, *SCENE_SIZE)]
    others = [background(b, *SCENE_SIZE) for b in BACKGROUNDS if b != SCENE_BACKGROUND]
    pool = np.where(usage == "PrivateTest")[0]  # faces the base model never saw, as a new user's are
    train = np.random.default_rng(7).choice(pool, size=min(args.scene_pool, len(pool)), replace=False)
    test = np.where(usage == "PublicTest")[0][:args.test_limit]
    test_scene = test[:args.scene_test]
    user_crops, user_found = scene_crops(faces[train], mine, seed=1, cache=args.cache)
    test_crops, test_found = scene_crops(faces[test_scene], others, seed=2, cache=args.cache)
    user_idx, test_idx = train[user_found], test_scene[test_found]
    crops = np.stack([to_face(c) for c in user_crops])
    trainer.features("user scene", crops)
    trainer.features("other scenes", [to_face(c) for c in test_crops])
    trainer.features("PublicTest", faces[test])
    user_probs = trainer.probs(None, "user scene")
    wrong = np.where(np.array(classes)[user_probs.argmax(1)] != fer[user_idx])[0]
    base = {"other_scenes": accuracy(trainer.probs(None, "other scenes"), fer[test_idx], classes),
            "user_scene": accuracy(user_probs, fer[user_idx], classes),
            "fer2013": accuracy(trainer.probs(None, "PublicTest"), fer[test], classes)}
    study = {"scene": {"user": SCENE_BACKGROUND, "others": [b for b in BACKGROUNDS if b != SCENE_BACKGROUND],
                       "face_widths": list(SCENE_WIDTHS), "tilted": False, "labels": "fer2013"},
             "user_faces": {"pasted": int(len(train)), "found": int(len(user_idx)), "base_wrong": int(len(wrong))},
             "test_faces": {"pasted": int(len(test_scene)), "found": int(len(test_idx)), "plain": int(len(test))},
             "before": base, "runs": []}
    for n in [n for n in args.n if n <= len(wrong)]:
        for seed in seeds(args):
            pick = np.random.default_rng(2000 + seed).choice(wrong, size=n, replace=False)
            for mode in args.modes:
                for setting, head, seconds, cpu in trainer.runs(crops[pick], fer[user_idx[pick]], user_probs[pick],
                                                                mode, seed, work, settings(args)):
                    record_run(study, base,
                               {"other_scenes": accuracy(trainer.probs(head, "other scenes"), fer[test_idx], classes),
                                "fer2013": accuracy(trainer.probs(head, "PublicTest"), fer[test], classes)},
                               {"scene_gain": "other_scenes", "fer2013_change": "fer2013"},
                               {"n": n, "seed": seed, "mode": mode, **setting, "seconds": seconds,
                                "cpu_seconds": cpu}, save)
    return study


def timing(args, data, work: Path) -> dict:
    """The command a user runs, timed whole: `python -m fer.personalize` (loading the base, reading the
    corrections and the CSV, features, training, ONNX export and its check) on 100 corrections of the FER+
    user (seed 0), with --data; wall clock, CPU time and the load average before and after."""
    import resource
    import subprocess

    from fer.serving.model_files import load_predictor

    faces, fer, plus, usage = data
    pool = disagreement_pool(data)
    pick = np.random.default_rng(1000).choice(pool, size=args.timing, replace=False)
    base = load_predictor(Path(args.base).with_suffix(".onnx"))
    folder = work / "timing"
    write_corrections(folder, faces[pick], plus[pick], base.predict_proba(list(faces[pick])), CLASSES)
    command = [sys.executable, "-m", "fer.personalize", "--feedback", str(folder), "--out", str(folder / "mine"),
               "--base", args.base, "--data", args.csv]
    load_before = [round(x, 2) for x in os.getloadavg()]
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True)
    wall = time.perf_counter() - wall
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        raise RuntimeError(f"fer.personalize failed: {done.stderr[-2000:]}")
    return {"command": "python -m fer.personalize --feedback DIR --out DIR/mine --data fer2013.csv.gz "
                       f"({args.timing} corrections, defaults)",
            "seconds": round(wall, 1),
            "cpu_seconds": round(after.ru_utime + after.ru_stime - used.ru_utime - used.ru_stime, 1),
            "load_average_before": load_before, "load_average_after": [round(x, 2) for x in os.getloadavg()],
            "said": done.stdout.strip().splitlines()[0] if done.stdout.strip() else ""}


def change(row: dict, key: str) -> str:
    """A median change in points, with its range over the runs when the row has it: "+6.0 (+5.1 to +6.8)"."""
    text = f"{100 * row[key]:+.1f}"
    if f"{key}_min" in row and row["runs"] > 1:
        text += f" ({100 * row[f'{key}_min']:+.1f} to {100 * row[f'{key}_max']:+.1f})"
    return text


def markdown(report: dict) -> str:
    commands = [f"`{c}`" for c in report["command"].split(" ; ")]
    if "merge_command" in report:
        commands.append(f"put together by `{report['merge_command']}`")
    lines = ["# Personal models from corrections (issues 22 and 36)", "", *[f"- {c}" for c in commands], "",
             f"Machine: {report['machine']}; load average at start {report['load_average_start']}, at end "
             f"{report.get('load_average_end')}. Base: `{report['base']}`. Medians of {report['seeds']} seeds "
             "(simulated users), the lowest and highest in brackets. "
             "Each simulated user's corrections are saved with `fer.serving.feedback.save_correction` as the app saves "
             "them and trained with `fer.personalize`'s own `prepare` and `fit`; the heads are scored on the "
             "backbone's features of the test faces (the backbone is frozen). *seconds*: prepare (corrections, "
             "replay faces, features) + training, wall clock, beside whatever else ran on the shared cores; "
             "*CPU s*: the same in CPU time, what it takes on an idle core; *load*: the 1-minute load average "
             "after the run.", ""]
    if "timing" in report:
        t = report["timing"]
        lines += ["## The whole command, timed", "",
                  f"`{t['command']}`: **{t['seconds']:.0f} s** wall clock, {t['cpu_seconds']:.0f} s of CPU; load "
                  f"average {t['load_average_before']} before, {t['load_average_after']} after.", ""]
    if "ferplus" in report:
        s = report["ferplus"]
        b = s["before"]
        split = s.get("split", "PublicTest")
        lines += ["## (a) A user whose labels are FER+'s",
                  "", f"Corrections drawn from the {s['pool']:,} training faces where FER+'s majority disagrees with "
                  f"FER-2013; tested on {split} ({s['test_faces']:,} faces): the user's view is the FER+ majority "
                  f"({s.get('ferplus_faces', s['test_faces']):,} faces with one of the 7 classes); forgetting is "
                  f"measured on the *agreed faces* ({s.get('agreed_faces', 0):,}), whose FER-2013 label is the FER+ "
                  "majority, so a correction towards the crowd cannot count against itself; FER-2013's labels on "
                  f"every face (issue 22's measure) are kept for comparison. Base: FER+ labels {b['ferplus']:.2%}, "
                  f"agreed faces {b.get('agreed', float('nan')):.2%}, FER-2013 labels {b['fer2013']:.2%}.", "",
                  "| corrections | mode | anchor | replay weight | FER+ labels (user's view) | change | agreed faces "
                  "| change | FER-2013 labels, all faces | change | seconds | CPU s | load | runs |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for m in s.get("medians", []):
            agreed = (f"{m['agreed']:.2%} | {change(m, 'agreed_change')}" if "agreed" in m else " | ")
            lines.append(f"| {m['n']} | {m['mode']} | {m['anchor']} | {m['replay_weight']} | {m['ferplus']:.2%} | "
                         f"{change(m, 'ferplus_gain')} | {agreed} | {m['fer2013']:.2%} | "
                         f"{change(m, 'fer2013_change')} | {m['seconds']:.0f} | {m['cpu_seconds']:.0f} | "
                         f"{m['load_average']:.1f} | {m['runs']} |")
        lines.append("")
    if "camera" in report:
        s = report["camera"]
        b = s["before"]
        lines += ["## (b) A new camera",
                  "", f"The user's scene: PrivateTest faces (never seen by the base model) pasted upright into the "
                  f"`{s['scene']['user']}` photo, "
                  f"{s['scene']['face_widths'][0]:.0f}–{s['scene']['face_widths'][1]:.0f} px wide, cut out by YuNet "
                  f"as the app does ({s['user_faces']['found']} of {s['user_faces']['pasted']} found; the base model "
                  f"is wrong on {s['user_faces']['base_wrong']}, {b['user_scene']:.2%} right). The user corrects "
                  f"crops the base model gets wrong, with FER-2013's labels (the change measured is the camera's, "
                  f"not a change of taste). Tested on {s['test_faces']['found']} of {s['test_faces']['pasted']} "
                  f"PublicTest faces found in the other scene styles ({', '.join(s['scene']['others'])}), and on "
                  f"plain PublicTest (forgetting). Base: {b['other_scenes']:.2%} on the other scenes, "
                  f"{b['fer2013']:.2%} on plain PublicTest.", "",
                  "| corrections | mode | anchor | replay weight | other scenes | change | plain PublicTest | change "
                  "| seconds | CPU s | load | runs |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for m in s.get("medians", []):
            lines.append(f"| {m['n']} | {m['mode']} | {m['anchor']} | {m['replay_weight']} | {m['other_scenes']:.2%} | "
                         f"{100 * m['scene_gain']:+.1f} | {m['fer2013']:.2%} | {100 * m['fer2013_change']:+.1f} | "
                         f"{m['seconds']:.0f} | {m['cpu_seconds']:.0f} | {m['load_average']:.1f} | {m['runs']} |")
        lines.append("")
    return "\n".join(lines)


GROUP = ("n", "mode", "anchor", "replay_weight")  # the medians' rows
STUDY_GAINS = {"ferplus": ["ferplus_gain", "agreed_change", "fer2013_change"],
               "camera": ["scene_gain", "fer2013_change"]}  # their spread over runs is kept beside the medians
STUDY_KEYS = {"ferplus": ["ferplus", "agreed", "fer2013", *STUDY_GAINS["ferplus"], "seconds", "cpu_seconds",
                          "load_average"],
              "camera": ["other_scenes", "fer2013", *STUDY_GAINS["camera"], "seconds", "cpu_seconds",
                         "load_average"]}


def merge(args, argv=None) -> int:
    """One report from several (the same command split over seeds with --seed-values, or over studies and
    settings): runs put together, medians anew."""
    parts = [json.loads(Path(f).read_text()) for f in args.merge]
    splits = {p["ferplus"].get("split", "PublicTest") for p in parts if "ferplus" in p}
    if len(splits) > 1:
        raise SystemExit(f"--merge: the reports were measured on different splits ({', '.join(sorted(splits))})")
    report = {**parts[0], "command": " ; ".join(p["command"] for p in parts),
              "machine": " ; ".join(dict.fromkeys(p["machine"] for p in parts)),
              "merge_command": "python -m benchmarks.personalize " + shlex.join(sys.argv[1:] if argv is None else argv),
              "load_average_start": [p["load_average_start"] for p in parts],
              "load_average_end": [p.get("load_average_end") for p in parts], "merged_from": list(args.merge)}
    for name, keys in STUDY_KEYS.items():
        studies = [p[name] for p in parts if name in p]
        if studies:
            runs = [r for s in studies for r in s["runs"]]
            report[name] = {**studies[0], "runs": runs,
                            "medians": median_rows(runs, keys, GROUP, spread=STUDY_GAINS[name])}
    report["seeds"] = len({r["seed"] for name in STUDY_KEYS if name in report for r in report[name]["runs"]})
    report["settings"] = [dict(t) for t in dict.fromkeys(tuple(d.items()) for p in parts for d in p.get("settings", []))]
    report.pop("timing", None)
    for part in parts:
        if "timing" in part:
            report["timing"] = part["timing"]
    report.pop("seconds", None)
    write_json_atomic(args.json, report)
    if args.md:
        Path(args.md).write_text(markdown(report))
    print(markdown(report))
    return 0


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.merge:
        return merge(args, argv)
    from fer.core.cli import configure_logging

    configure_logging()
    start = time.time()
    report = {"command": "python -m benchmarks.personalize " + shlex.join(sys.argv[1:] if argv is None else argv),
              "machine": f"{os.cpu_count()} CPU cores, {platform.processor() or platform.machine()}, "
                         f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}",
              "load_average_start": [round(x, 2) for x in os.getloadavg()], "seeds": len(seeds(args)), "modes": args.modes,
              "settings": settings(args), "base": Path(args.base).name}

    def save(name):
        def write(study):  # after every run: a long benchmark's figures so far are never lost
            report[name] = study
            report["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
            write_json_atomic(args.json, report)
            if args.md:
                Path(args.md).write_text(markdown(report))
        return write

    data = load_data(args.csv, args.ferplus)
    with tempfile.TemporaryDirectory(prefix="fer-personalize-") as tmp:
        if args.timing:
            save("timing")(timing(args, data, Path(tmp)))
        trainer = Trainer(args.base, args.csv, args.cache) if args.studies else None
        for name in args.studies:
            study = ferplus_study if name == "ferplus" else camera_study
            save(name)(study(args, data, trainer, Path(tmp), save(name)))
    report["seconds"] = round(time.time() - start, 1)
    save("seconds")(report["seconds"])
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
