"""Render docs/model_card.md from the model's card JSON, two `python -m fer.evaluate --json` outputs and
the evaluation suite's PrivateTest table (docs/suite/private.md).

    python -m fer.evaluate --data data/fer2013/test --json docs/eval/test.json --cm docs/eval/confusion_matrix.png
    python -m fer.evaluate --data data/fer2013/test --tta --json docs/eval/test_tta.json --cm docs/eval/confusion_matrix_tta.png
    python -m fer.evaluate --suite --usage PrivateTest --model "v1 (shipped before)=OLD.onnx" \
        --model "v2 (shipped now)=exports/fer2013_effnet_lite0.onnx" --json docs/suite/private.json
    python benchmarks/render_model_card.py
"""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
from fer.core.card import DEFAULT_LEARNER as DEFAULT_MODEL


def stage_recipe(card: dict) -> str:
    frozen, unfrozen = card["epochs"]["frozen"], card["epochs"]["unfrozen"]
    start = f"from `{card['init_from']}`" if card.get("init_from") else f"ImageNet weights `{card['pretrained']}`"
    extras = f", mixup {card['mixup']:g}" if card.get("mixup") else ""
    if card.get("teachers") and card.get("teacher_view", "clean") == "clean":  # older cards: always clean
        extras += (f", distilled from {' + '.join(f'`{t}`' for t in card['teachers'])} (flip-TTA soft labels, "
                   f"weight {card['distill_weight']:g}; labelling took {card.get('teacher_label_seconds', 0) / 60:.0f} min)")
    elif card.get("teachers"):
        extras += (f", distilled from {' + '.join(f'`{t}`' for t in card['teachers'])} (on the same augmented "
                   f"batches, each face labelled by the teachers that held out its fold; weight {card['distill_weight']:g})")
    if card.get("augment") and card.get("augment_preset"):
        extras += f", `--augment {card['augment_preset']}`"
    if card.get("ferplus"):
        extras += (f", the loss mixing the FER-2013 label with the FER+ crowd's votes (`{card['ferplus']}`, "
                   f"weight {card['ferplus_weight']:g})")
    if "_det" in card.get("command", ""):
        extras += ", on the faces plus the app's detector crops of them (`data_scripts/detector_crops.py`)"
    if card.get("ema"):
        extras += f", weight EMA {card['ema']:g}"
    return (f"{start}, {card['input_size']} px: {frozen} frozen + {unfrozen} unfrozen epochs (fastai `fine_tune` "
            f"schedule, one-cycle), batch {card['batch_size']}, lr {card['lr']:g} (head lr/2, backbone "
            f"lr/2/{card.get('lr_mult', 5):g}), label smoothing {card['label_smoothing']}{extras}, `aug_transforms`; "
            f"{card['training_seconds'] / 60:.0f} min, best valid {trained_accuracy(card):.4f}")


def trained_accuracy(card: dict) -> float:
    """The stage's own best PublicTest accuracy (a blended card's ``valid_accuracy`` is the blend's)."""
    return card["blend"]["tuned_valid_accuracy"] if card.get("blend") else card["valid_accuracy"]


def stages(card: dict) -> list[dict]:
    """The card's training stages, first to last (a second stage keeps its first stage's card)."""
    return [*stages(card["previous_stage"]), card] if card.get("previous_stage") else [card]


def steps(card: dict) -> list[tuple[str, dict]]:
    """Each training stage, and after it the blend its card records (``fer.blend``), first to last: the
    numbering of ``scripts/train_default.sh``."""
    return [(kind, c) for c in stages(card) for kind in (("train", "blend") if c.get("blend") else ("train",))]


def blend_text(card: dict) -> str:
    blend = card["blend"]
    weights = (f"weights {blend['alpha']:g} × `{blend['tuned']}` + {1 - blend['alpha']:g} × `{blend['base']}` "
               f"(WiSE-FT)" if blend.get("base") else f"`{blend['tuned']}`")
    adjusted = (f", logits adjusted by {blend['prior_power']:g} × log(training class share)"
                if blend.get("prior_power") else "")
    return (f"{weights}{adjusted} (`python -m fer.blend`): PublicTest accuracy "
            f"{blend['tuned_valid_accuracy']:.4f} → {card['valid_accuracy']:.4f}")


def recipe(card: dict) -> str:
    return "\n".join(f"| recipe, stage {i} | {stage_recipe(c) if kind == 'train' else blend_text(c)} |"
                     for i, (kind, c) in enumerate(steps(card), 1))


def commands(card: dict) -> str:
    return "<br>".join(f"`{c['command'] if kind == 'train' else c['blend']['command']}`"
                       for kind, c in steps(card)) + (
        " (all stages: `bash scripts/train_default.sh`)" * (len(steps(card)) > 1))


def suite_columns() -> str:
    """Which models the suite's PrivateTest table holds (its columns, the shipped model last), with a link to each
    earlier model's FER-2013 figures where docs/eval/<version>/ keeps them."""
    names = list(json.loads((ROOT / "docs/suite/private.json").read_text()))
    earlier = [n.split()[0] for n in names[:-1]]
    kept = [f"[`eval/{v}/`](eval/{v}/)" for v in earlier if (ROOT / "docs/eval" / v).is_dir()]
    figures = f"; their FER-2013 figures in {', '.join(kept)}" if kept else ""
    return f"The models shipped before ({', '.join(earlier)}{figures}) beside this one ({names[-1].split()[0]})."


def main() -> None:
    card = json.loads(DEFAULT_MODEL.with_suffix(".json").read_text())
    plain = json.loads((ROOT / "docs/eval/test.json").read_text())
    tta = json.loads((ROOT / "docs/eval/test_tta.json").read_text())
    rel = DEFAULT_MODEL.relative_to(ROOT)
    rows = "\n".join(f"| {c} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1-score']:.3f} | {m['support']} |"
                     for c, m in plain["per_class"].items())
    v = card["versions"]
    suite = (ROOT / "docs/suite/private.md").read_text()
    text = f"""# Model card: `{rel}`

| | |
|---|---|
| architecture | timm `{card['arch']}` from ImageNet weights, grey input (`in_chans=1`), fastai head |
| input | {card['input_size']}×{card['input_size']} grey (a 48×48 face upsampled), normalised mean {card['normalisation']['mean']:.3f} / std {card['normalisation']['std']:.3f} |
| classes | {', '.join(card['classes'])} |
| file size | {DEFAULT_MODEL.stat().st_size / 1e6:.1f} MB |
| training data | FER-2013 Training split ({card['data'].get('csv')}, sha256 `{card['data'].get('sha256')}`) |
| model selection | PublicTest (valid) accuracy {card['valid_accuracy']:.4f}, best epoch: {card['best_epoch']} |
{recipe(card)}
| training wall time | {card.get('training_seconds_total', card['training_seconds']) / 60:.0f} min on 2 CPU cores (sum of epoch times{' and teacher labelling' if any(c.get('teacher_label_seconds') for c in stages(card)) else ''}{', all stages' if card.get('previous_stage') else ''}) |
| versions | python {v['python']}, torch {v['torch']}, fastai {v['fastai']}, timm {v['timm']} |
| command | {commands(card)} |

## FER-2013 PrivateTest (3,589 faces, measured once, never used for choices)

| | accuracy | macro-F1 | reproduce |
|---|---|---|---|
| plain | **{plain['accuracy']:.2%}** | {plain['macro_f1']:.4f} | `python -m fer.evaluate --data data/fer2013/test` |
| flip TTA | **{tta['accuracy']:.2%}** | {tta['macro_f1']:.4f} | `python -m fer.evaluate --data data/fer2013/test --tta` |

The same figures from the CSV directly: `python -m fer.evaluate --data ../shared/data/fer2013.csv.gz [--tta]`.

Per class (plain):

| class | precision | recall | F1 | support |
|---|---|---|---|---|
{rows}

![confusion matrix](eval/confusion_matrix.png)

Figures: [`eval/test.json`](eval/test.json), [`eval/test_tta.json`](eval/test_tta.json).

## The evaluation suite, PrivateTest: the faces the app serves, both label sets

{suite_columns()} Plain faces and the faces
as the app's YuNet crops them (upright and tilted 10–25°), each against FER-2013's single labels and the
FER+ crowd's majority labels; the serving score is the mean balanced accuracy of the six cells
(`python -m fer.evaluate --suite --usage PrivateTest`; PublicTest, which chose the model:
[`suite/public.md`](suite/public.md)).

{suite}
Figures: [`suite/private.json`](suite/private.json).
"""
    (ROOT / "docs/model_card.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
