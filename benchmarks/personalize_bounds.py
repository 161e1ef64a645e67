"""How far can a personal model go for issue 22's simulated FER+ user? Two studies beside
benchmarks/personalize.py's, on the same base model, corrections and test faces:

    python -m benchmarks.personalize_bounds --csv ../shared/data/fer2013.csv.gz \\
        --ferplus ../shared/data/ferplus_labels.csv --cache runs/pcache \\
        --json docs/results/personalize_bounds.json --md docs/personalize_bounds.md

(a) `local`: a correction that only changes faces near the corrected ones. The base model is kept; a new face
    whose backbone features lie within cosine similarity θ of a correction gets β added to that correction's
    label's logit (per such correction). θ is set as a quantile of the test faces' nearest-correction
    similarity (0.5: half the new faces are near some correction); every (θ, β) of the grid is reported, so the
    table is the rule's best case on these faces, not a tuned setting.
(b) `ceiling`: a user who corrected every training face. The base's head is trained on the backbone's features
    of all 28k training faces with FER+ majority labels, loss ``a × cross-entropy(FER+ label) + (1 − a) × KL(base
    model's probabilities)`` (the pull towards the base that fer.personalize's replay uses), for a grid of
    ``a``: the trade between the user's view and FER-2013 that a personal head can make with far more than 100
    corrections.

Both are scored as study (a) of benchmarks/personalize.py: accuracy on PublicTest's FER+ majority labels (the
user's view of new faces) and on its FER-2013 labels (forgetting), as changes from the base; medians over seeds.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shlex
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
from benchmarks.personalize import Trainer, accuracy, disagreement_pool, load_data, median_rows
from fer.core.fileio import write_json_atomic


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--csv", required=True, help="fer2013.csv[.gz]")
    p.add_argument("--ferplus", required=True, help="FER+ votes, row-aligned with the CSV")
    p.add_argument("--base", default=str(ROOT / "exports" / "fer2013_effnet_lite0.pkl"))
    p.add_argument("--n", type=int, default=100, help="corrections per simulated user in study (a)")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--quantiles", type=float, nargs="+", default=[0.5, 0.8, 0.9, 0.95, 0.98, 0.99])
    p.add_argument("--strengths", type=float, nargs="+", default=[0.5, 1.0, 2.0, 5.0])
    p.add_argument("--weights", type=float, nargs="+", default=[0.1, 0.2, 0.5, 1.0],
                   help="study (b)'s a: the FER+ labels' share of the loss")
    p.add_argument("--ceiling-seeds", type=int, default=1, help="seeds of study (b) (each a full training)")
    p.add_argument("--steps", type=int, default=400, help="study (b)'s training steps (batches of 256)")
    p.add_argument("--cache", metavar="DIR", help="keep the backbone's features here (as benchmarks/personalize.py)")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads")
    p.add_argument("--json", required=True)
    p.add_argument("--md")
    return p.parse_args(argv)


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def local_study(args, data, trainer: Trainer, test: np.ndarray, base: dict) -> dict:
    faces, fer, plus, usage = data
    classes = trainer.classes
    pool = disagreement_pool(data)
    near_test = unit(trainer.features("PublicTest", faces[test]))
    logits = np.log(np.clip(trainer.probs(None, "PublicTest"), 1e-8, 1))
    runs = []
    for seed in range(args.seeds):
        pick = np.random.default_rng(1000 + seed).choice(pool, size=args.n, replace=False)  # as personalize.py
        similarity = near_test @ unit(trainer.backbone.features(faces[pick])).T
        votes = np.eye(len(classes))[[classes.index(y) for y in plus[pick]]]  # (n, classes)
        for q in args.quantiles:
            theta = float(np.quantile(similarity.max(1), q))
            near = (similarity >= theta).astype(np.float32)
            for beta in args.strengths:
                after = logits + beta * near @ votes
                runs.append({"seed": seed, "quantile": q, "theta": round(theta, 4), "strength": beta,
                             "changed": float(np.mean(after.argmax(1) != logits.argmax(1))),
                             **gains(after, data, test, classes, base)})
    return {"n": args.n, "runs": runs, "medians": medians(runs, ("quantile", "strength"))}


def ceiling_study(args, data, trainer: Trainer, test: np.ndarray, base: dict) -> dict:
    import torch
    import torch.nn.functional as F

    from fer.training.personalize import train_keeping_statistics

    faces, fer, plus, usage = data
    classes = trainer.classes
    train = np.where((usage == "Training") & (plus != ""))[0]
    x = torch.from_numpy(trainer.features("Training", faces[train]))
    y = torch.tensor([classes.index(v) for v in plus[train]])
    pulled = torch.from_numpy(trainer.probs(None, "Training"))
    runs = []
    for seed in range(args.ceiling_seeds):
        for a in args.weights:
            torch.manual_seed(seed)
            head = copy.deepcopy(trainer.base_head)
            train_keeping_statistics(head)  # as fer.personalize trains its head
            opt = torch.optim.AdamW(head.parameters(), lr=1e-3, weight_decay=0.0)
            start = time.perf_counter()
            for _ in range(args.steps):
                i, r = torch.randint(len(x), (256,)), torch.randint(len(x), (256,))
                loss = a * F.cross_entropy(head(x[i]), y[i])
                if a < 1:
                    loss = loss + (1 - a) * F.kl_div(F.log_softmax(head(x[r]), 1), pulled[r], reduction="batchmean")
                opt.zero_grad()
                loss.backward()
                opt.step()
            after = np.log(np.clip(trainer.probs(head.eval(), "PublicTest"), 1e-8, 1))
            runs.append({"seed": seed, "weight": a, "seconds": round(time.perf_counter() - start, 1),
                         **gains(after, data, test, classes, base)})
            print(json.dumps(runs[-1]), flush=True)
    return {"training_faces": int(len(train)), "steps": args.steps, "runs": runs,
            "medians": medians(runs, ("weight",))}


def gains(logits: np.ndarray, data, test: np.ndarray, classes: list[str], base: dict) -> dict:
    _, fer, plus, _ = data
    scores = {"ferplus": accuracy(logits, plus[test], classes), "fer2013": accuracy(logits, fer[test], classes)}
    return {**scores, "ferplus_gain": scores["ferplus"] - base["ferplus"],
            "fer2013_change": scores["fer2013"] - base["fer2013"]}


def medians(runs: list[dict], group: tuple[str, ...]) -> list[dict]:
    """benchmarks/personalize.py's medians of every figure of the runs, one row per ``group`` value."""
    return median_rows(runs, [k for k in runs[0] if k not in ("seed", *group)], group)


def markdown(report: dict) -> str:
    b = report["before"]
    lines = ["# How far a personal model can go (issue 22)", "", f"- `{report['command']}`", "",
             f"Base: `{report['base']}`, PublicTest FER+ labels {b['ferplus']:.2%}, FER-2013 labels "
             f"{b['fer2013']:.2%} ({report['test_faces']:,} faces). Medians of {report['seeds']} seeds in (a), "
             f"{report['ceiling_seeds']} seed(s) in (b). The bar: "
             "FER+ +5 points with FER-2013 at most −1 (a trade of 5 FER+ points per FER-2013 point or better).", "",
             "## (a) Local correction: only faces near a correction change", "",
             f"{report['local']['n']} corrections (the FER+ user's, as in docs/personalize.md). A face within cosine "
             "similarity θ of a correction gets the strength added to that correction's label's logit; θ is the "
             "given quantile of the test faces' nearest-correction similarity.", "",
             "| θ quantile | θ | strength | faces changed | FER+ change | FER-2013 change |", "|---|---|---|---|---|---|"]
    for m in report["local"]["medians"]:
        lines.append(f"| {m['quantile']} | {m['theta']:.3f} | {m['strength']} | {m['changed']:.1%} | "
                     f"{100 * m['ferplus_gain']:+.2f} | {100 * m['fer2013_change']:+.2f} |")
    c = report["ceiling"]
    lines += ["", "## (b) Ceiling: every training face corrected", "",
              f"The base's head trained on all {c['training_faces']:,} training faces' FER+ labels ({c['steps']} "
              "steps of 256), loss a × cross-entropy + (1 − a) × KL(base).", "",
              "| a | FER+ change | FER-2013 change | FER+ points per FER-2013 point | seconds |", "|---|---|---|---|---|"]
    for m in c["medians"]:
        ratio = m["ferplus_gain"] / -m["fer2013_change"] if m["fer2013_change"] < 0 else float("inf")
        lines.append(f"| {m['weight']} | {100 * m['ferplus_gain']:+.2f} | {100 * m['fer2013_change']:+.2f} | "
                     f"{ratio:.1f} | {m['seconds']:.0f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    import torch

    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    data = load_data(args.csv, args.ferplus)
    trainer = Trainer(args.base, args.csv, args.cache)
    faces, fer, plus, usage = data
    test = np.where(usage == "PublicTest")[0]
    trainer.features("PublicTest", faces[test])
    before = trainer.probs(None, "PublicTest")
    base = {"ferplus": accuracy(before, plus[test], trainer.classes), "fer2013": accuracy(before, fer[test], trainer.classes)}
    report = {"command": "python -m benchmarks.personalize_bounds " + shlex.join(sys.argv[1:] if argv is None else argv),
              "base": Path(args.base).name, "before": base, "test_faces": int(len(test)), "seeds": args.seeds,
              "ceiling_seeds": args.ceiling_seeds}
    start = time.time()
    report["local"] = local_study(args, data, trainer, test, base)
    report["ceiling"] = ceiling_study(args, data, trainer, test, base)
    report["seconds"] = round(time.time() - start, 1)
    write_json_atomic(args.json, report)
    if args.md:
        Path(args.md).write_text(markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
