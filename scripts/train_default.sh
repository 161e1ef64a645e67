#!/usr/bin/env bash
# Reproduces the shipped model exports/fer2013_effnet_lite0.pkl: the same stages, flags and class order
# (alphabetical, as fastai sorted them when stage 1 was trained) as its card records.
#   1. tf_efficientnet_lite0 from ImageNet, 80 px, 1 frozen + 20 epochs (~100 min) -> runs/stage1_lite0_80.pkl
#   2. from stage 1's weights, 96 px, 16 epochs with mixup 0.4 (~115 min) -> runs/stage2/fer2013_effnet_lite0_96.pkl
#   3. from stage 2's weights, 96 px, 15 epochs distilled from stages 1 + 2 (their flip-TTA soft labels,
#      weight 0.7; ~95 min) -> runs/stage3/fer2013_effnet_lite0_kd.pkl (the model shipped until issue 20)
#   4. from stage 3's weights, 96 px, 2 epochs (the first kept, by PublicTest accuracy) on the faces plus the app's
#      detector crops of them (data_scripts/detector_crops.py, ~10 min), the loss mixing the FER-2013 label with
#      the FER+ crowd's votes (weight 0.5; ~40 min) -> runs/stage4/fer2013_effnet_lite0_crops_ferplus.pkl
#   5. 0.85 x stage 4 + 0.15 x stage 3 (weights), logits adjusted by 0.5 x log(class share) (fer.blend,
#      ~1 min) -> runs/stage5/fer2013_effnet_lite0.pkl (v2, shipped until issue 20's second session)
#   6. from stage 5's weights (its logit adjustment left out), the same faces, crops and FER+ votes, 2 epochs at
#      lr 3e-4 with an EMA of the weights (decay 0.999; the first epoch kept; ~31 min)
#      -> runs/stage6/fer2013_effnet_lite0_ema.pkl
#   7. stage 6, logits adjusted by 0.5 x log(class share) (fer.blend, ~1 min) -> runs/stage7/fer2013_effnet_lite0.pkl
#      (v3, shipped until issue 20's third session)
#   8. from stage 7's weights (its logit adjustment left out), 112 px input, the same faces, crops and FER+ votes,
#      2 epochs at lr 4e-4 with an EMA of the weights (the second epoch kept; ~35 min)
#      -> runs/stage8/fer2013_effnet_lite0_112.pkl
#   9. from stage 8's weights, 1 epoch at lr 1e-4 with the FER+ votes' weight 0.25 and an EMA (~15 min)
#      -> runs/stage9/fer2013_effnet_lite0_112_fer.pkl
#  10. 0.5 x stage 9 + 0.5 x stage 8 (weights), logits adjusted by 0.75 x log(class share) (fer.blend, ~1 min)
#      -> runs/stage10/fer2013_effnet_lite0.pkl (v4)
# Everything is written under runs/ (the crops under data/). exports/ (the model the app serves) is replaced
# only with --install, which copies stage 10's model, its ONNX twin and card there at the end.
# Killed? Run it again: a finished stage is skipped and an interrupted one continues (--resume) from its
# last checkpoint in runs/. Env: DATA (default data/fer2013), WEIGHTS (a local ImageNet file; when it is
# missing, timm downloads the weights from its hub), FERPLUS (the FER+ votes, default
# ../shared/data/ferplus_labels.csv).
#
#   bash scripts/train_default.sh [--install]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/install_model.sh
parse_install "bash scripts/train_default.sh" "$@"
DATA=${DATA:-data/fer2013}
WEIGHTS=${WEIGHTS:-../shared/weights/tf_efficientnet_lite0.in1k.safetensors}
STAGE1=runs/stage1_lite0_80.pkl
STAGE2=runs/stage2/fer2013_effnet_lite0_96.pkl
STAGE3=runs/stage3/fer2013_effnet_lite0_kd.pkl
STAGE4=runs/stage4/fer2013_effnet_lite0_crops_ferplus.pkl
STAGE5=runs/stage5/fer2013_effnet_lite0.pkl
STAGE6=runs/stage6/fer2013_effnet_lite0_ema.pkl
STAGE7=runs/stage7/fer2013_effnet_lite0.pkl
STAGE8=runs/stage8/fer2013_effnet_lite0_112.pkl
STAGE9=runs/stage9/fer2013_effnet_lite0_112_fer.pkl
STAGE10=runs/stage10/fer2013_effnet_lite0.pkl
FERPLUS=${FERPLUS:-../shared/data/ferplus_labels.csv}

resume_flag() {  # --resume when the run directory holds a checkpoint of an unfinished run
  if [ -f "$1/checkpoint.json" ]; then echo --resume; fi
}

if [ ! -f "$STAGE1" ]; then
  imagenet=()
  if [ -f "$WEIGHTS" ]; then imagenet=(--weights "$WEIGHTS"); fi
  python -m fer.finetune --data "$DATA" --arch tf_efficientnet_lite0 "${imagenet[@]}" --class-order alphabetical \
    --size 80 --epochs 20 --lr 5e-3 --out "$STAGE1" --run-dir runs/stage1 $(resume_flag runs/stage1)
fi
if [ ! -f "$STAGE2" ]; then
  python -m fer.finetune --data "$DATA" --arch tf_efficientnet_lite0 --init-from "$STAGE1" \
    --size 96 --epochs 16 --freeze-epochs 0 --lr 4e-3 --mixup 0.4 \
    --out "$STAGE2" --run-dir runs/stage2 $(resume_flag runs/stage2)
fi
if [ ! -f "$STAGE3" ]; then
  python -m fer.finetune --data "$DATA" --arch tf_efficientnet_lite0 --init-from "$STAGE2" \
    --teacher "$STAGE1" --teacher "$STAGE2" --teacher-view clean --distill-weight 0.7 \
    --size 96 --epochs 15 --freeze-epochs 0 --lr 2e-3 \
    --out "$STAGE3" --run-dir runs/stage3 $(resume_flag runs/stage3)
fi
if [ ! -f "$STAGE4" ]; then
  if [ ! -f "${DATA}_det/detector_crops.json" ]; then
    python data_scripts/detector_crops.py --data "$DATA" --out "${DATA}_det" --overwrite
  fi
  python -m fer.finetune --data "${DATA}_det" --arch tf_efficientnet_lite0 --init-from "$STAGE3" \
    --ferplus "$FERPLUS" --ferplus-weight 0.5 --size 96 --epochs 2 --freeze-epochs 0 --lr 5e-4 \
    --out "$STAGE4" --run-dir runs/stage4 $(resume_flag runs/stage4)
fi
if [ ! -f "$STAGE5" ]; then
  python -m fer.blend "$STAGE4" --base "$STAGE3" --alpha 0.85 --prior-power 0.5 --data "$DATA" --out "$STAGE5"
fi
if [ ! -f "$STAGE6" ]; then
  python -m fer.finetune --data "${DATA}_det" --arch tf_efficientnet_lite0 --init-from "$STAGE5" \
    --ferplus "$FERPLUS" --ferplus-weight 0.5 --ema 0.999 --size 96 --epochs 2 --freeze-epochs 0 --lr 3e-4 \
    --out "$STAGE6" --run-dir runs/stage6 $(resume_flag runs/stage6)
fi
if [ ! -f "$STAGE7" ]; then
  python -m fer.blend "$STAGE6" --prior-power 0.5 --data "$DATA" --out "$STAGE7"
fi
if [ ! -f "$STAGE8" ]; then
  python -m fer.finetune --data "${DATA}_det" --arch tf_efficientnet_lite0 --init-from "$STAGE7" \
    --ferplus "$FERPLUS" --ferplus-weight 0.5 --ema 0.999 --size 112 --epochs 2 --freeze-epochs 0 --lr 4e-4 \
    --out "$STAGE8" --run-dir runs/stage8 $(resume_flag runs/stage8)
fi
if [ ! -f "$STAGE9" ]; then
  python -m fer.finetune --data "${DATA}_det" --arch tf_efficientnet_lite0 --init-from "$STAGE8" \
    --ferplus "$FERPLUS" --ferplus-weight 0.25 --ema 0.999 --size 112 --epochs 1 --freeze-epochs 0 --lr 1e-4 \
    --out "$STAGE9" --run-dir runs/stage9 $(resume_flag runs/stage9)
fi
if [ ! -f "$STAGE10" ]; then
  python -m fer.blend "$STAGE9" --base "$STAGE8" --alpha 0.5 --prior-power 0.75 --data "$DATA" --out "$STAGE10"
fi
install_or_say "$STAGE10"
