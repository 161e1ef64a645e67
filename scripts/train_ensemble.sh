#!/usr/bin/env bash
# Issue 11's recipe: a diverse, cross-fitted teacher ensemble distilled into one tf_efficientnet_lite0 student.
#   1. teachers: for each fold k of FOLDS, tf_efficientnet_lite0 and mobilenetv2_100 at TEACHER_SIZE px, trained
#      without fold k (--fold k/FOLDS) -> runs/ensemble/teacher_<arch>_f<k>.pkl; each labels only its fold
#   2. student: tf_efficientnet_lite0 at STUDENT_SIZE px from ImageNet, distilled from every teacher on the
#      same augmented batches (--teacher ..., each face labelled by the teachers that did not train on it)
#      -> runs/ensemble/student.pkl (+ .onnx, .json)
#   3. with CONTROL=1, the same student without teachers beside it -> runs/ensemble/plain.pkl, to measure what
#      the teachers add
# Runs JOBS trainings at a time (a GPU takes several; on a 2-core CPU keep JOBS=1: each run is hours there).
# Everything is written under runs/ensemble; exports/ is replaced only with --install (student + card + ONNX).
# Env: DATA (data/fer2013), LITE0_WEIGHTS / MNV2_WEIGHTS (local ImageNet files; missing: timm's hub), FOLDS (2),
# TEACHER_SIZE (128), STUDENT_SIZE (96), TEACHER_EPOCHS (30), STUDENT_EPOCHS (40), BS (128), LR (6e-3),
# AUGMENT (strong), DISTILL_WEIGHT (0.7), WORKERS (0), JOBS (1), RUNS (runs/ensemble).
#
#   bash scripts/train_ensemble.sh [--install]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/install_model.sh
parse_install "bash scripts/train_ensemble.sh" "$@"
DATA=${DATA:-data/fer2013}
LITE0_WEIGHTS=${LITE0_WEIGHTS:-../shared/weights/tf_efficientnet_lite0.in1k.safetensors}
MNV2_WEIGHTS=${MNV2_WEIGHTS:-../shared/weights/mobilenetv2_100.in1k.safetensors}
FOLDS=${FOLDS:-2} TEACHER_SIZE=${TEACHER_SIZE:-128} STUDENT_SIZE=${STUDENT_SIZE:-96}
TEACHER_EPOCHS=${TEACHER_EPOCHS:-30} STUDENT_EPOCHS=${STUDENT_EPOCHS:-40} BS=${BS:-128} LR=${LR:-6e-3}
AUGMENT=${AUGMENT:-strong} DISTILL_WEIGHT=${DISTILL_WEIGHT:-0.7} WORKERS=${WORKERS:-0} JOBS=${JOBS:-1}
RUNS=${RUNS:-runs/ensemble}
mkdir -p "$RUNS"

weights_for() {  # --weights FILE when the local ImageNet file exists, else timm's hub
  case "$1" in
    tf_efficientnet_lite0) [ -f "$LITE0_WEIGHTS" ] && echo "--weights $LITE0_WEIGHTS" || true ;;
    mobilenetv2_100) [ -f "$MNV2_WEIGHTS" ] && echo "--weights $MNV2_WEIGHTS" || true ;;
  esac
}

train() {  # NAME ARCH SIZE EPOCHS [extra fer.finetune options]: skipped when NAME.pkl exists, resumed when begun
  local name=$1 arch=$2 size=$3 epochs=$4; shift 4
  [ -f "$RUNS/$name.pkl" ] && return 0
  local resume=()
  [ -f "$RUNS/$name/checkpoint.json" ] && resume=(--resume)
  # shellcheck disable=SC2046
  python -m fer.finetune --data "$DATA" --arch "$arch" $(weights_for "$arch") --size "$size" --epochs "$epochs" \
    --freeze-epochs 1 --bs "$BS" --lr "$LR" --augment "$AUGMENT" --workers "$WORKERS" \
    --out "$RUNS/$name.pkl" --run-dir "$RUNS/$name" "${resume[@]}" "$@" > "$RUNS/$name.log" 2>&1
  echo "$(date +%T) $name: $(grep -o 'best valid accuracy.*' "$RUNS/$name.log" | head -1)"
}

throttle() {  # wait while JOBS trainings run
  while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do sleep 2; done
}

teachers=() pids=()
for ((k = 0; k < FOLDS; k++)); do
  for arch in tf_efficientnet_lite0 mobilenetv2_100; do
    name=teacher_${arch}_f$k
    teachers+=(--teacher "$RUNS/$name.pkl")
    throttle
    train "$name" "$arch" "$TEACHER_SIZE" "$TEACHER_EPOCHS" --fold "$k/$FOLDS" & pids+=($!)
  done
done
if [ "${CONTROL:-0}" = 1 ]; then  # runs beside the teachers and the student
  throttle
  train plain tf_efficientnet_lite0 "$STUDENT_SIZE" "$STUDENT_EPOCHS" &
fi
wait "${pids[@]}"
for t in "${teachers[@]}"; do
  if [ "$t" != --teacher ] && [ ! -f "$t" ]; then echo "teacher $t failed: see ${t%.pkl}.log" >&2; exit 1; fi
done
train student tf_efficientnet_lite0 "$STUDENT_SIZE" "$STUDENT_EPOCHS" "${teachers[@]}" --distill-weight "$DISTILL_WEIGHT"
wait

install_or_say "$RUNS/student.pkl"
