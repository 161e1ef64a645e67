"""Score npz log-probs (session3/logits.py) with logit adjustments T in 0..1 (subtract T*log(prior of data/fer2013/train));
the scoring is session3/analyze.py's."""
import os, sys, numpy as np
npz = sys.argv[1]
sys.argv = ["x", npz]
exec(open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "session3", "analyze.py")).read().split("models = sorted")[0])
counts = {"angry": 3995, "disgust": 436, "fear": 4097, "happy": 7215, "neutral": 4965, "sad": 4830, "surprise": 3171}
prior = np.array([counts[c] for c in classes], float); prior /= prior.sum()
models = sorted({k.split("|")[0] for k in z.files if "|" in k})
for m in models:
    for T in (0, 0.25, 0.5, 0.75, 1.0):
        for flip in (False,):
            r = score(combo([m], flip=flip), -T * np.log(prior))
            show(f"{m} LA{T}", r)
            print("   crops up f/+ %.2f %.2f tilted %.2f %.2f" % tuple(100 * r[k] for k in [(1, 'fer2013'), (1, 'ferplus'), (2, 'fer2013'), (2, 'ferplus')]))
