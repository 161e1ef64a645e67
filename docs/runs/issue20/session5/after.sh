# Session 5 record: chained Hc, the candidate v6 and its PublicTest scoring after H (18425 was H's process id).
# session 5: Hc, the candidate v6 and its PublicTest scoring, after H (runs/s5/h.pkl)
set -ex
while kill -0 18425 2>/dev/null; do sleep 20; done
test -f runs/s5/h.pkl
V4=runs/v4/fer2013_effnet_lite0.onnx
date
python -m fer.finetune --data data/fer2013_det --arch tf_efficientnet_lite0 --init-from runs/s5/h.pkl \
    --ferplus ../shared/data/ferplus_labels.csv --ferplus-weight 0.25 --ema 0.999 --size 128 --epochs 1 --freeze-epochs 0 --lr 1e-4 \
    --out runs/s5/hc.pkl --run-dir runs/s5/hc > runs/s5/hc.log 2>&1
date
python -m fer.blend runs/s5/hc.pkl --base runs/s5/h.pkl --alpha 0.5 --prior-power 0.75 --data data/fer2013 --out runs/s5/v6.pkl
date
python docs/runs/issue20/session3/logits.py PublicTest runs/s5/public.npz v4=$V4 h=runs/s5/h.onnx hc=runs/s5/hc.onnx v6=runs/s5/v6.onnx
python docs/runs/issue20/session4/la.py runs/s5/public.npz > runs/s5/la_public.txt
python docs/runs/issue20/session4/noise.py runs/s5/public.npz v4 v6 > runs/s5/noise_public.txt
date
python -m fer.evaluate --suite --usage PublicTest --model "v4=$V4" --model "v6=runs/s5/v6.onnx" --json runs/s5/suite_public_v6.json
python benchmarks/model_speed.py $V4 runs/s5/v6.onnx --faces 600 --json runs/s5/speed_v6.json
date
echo DONE
