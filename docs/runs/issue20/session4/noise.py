"""How much of a difference between two models on the suite is noise: a paired bootstrap over the faces.

python noise.py FILE.npz A B  (session3/logits.py's log-probabilities of models A and B on one split).
Each of the three face sets (plain, crops upright, crops tilted) is resampled with replacement, the same draw
for both models; prints each model's figures with their own standard errors, the difference B - A and its
standard error over 2,000 draws, and how often B - A came out above 0.
"""
import sys
import numpy as np

z = np.load(sys.argv[1])
a, b = sys.argv[2], sys.argv[3]
classes = list(z["classes"])
C = len(classes)
rng = np.random.default_rng(0)
labels = {(i, L): np.array([classes.index(y) if y else -1 for y in z[f"{L}_{i}"]]) for i in range(3)
          for L in ("fer2013", "ferplus")}
preds = {(m, i): z[f"{m}|{i}|none"].argmax(1) for m in (a, b) for i in range(3)}


def balanced(pred, y):
    keep = y >= 0
    p, y = pred[keep], y[keep]
    return np.mean([np.mean(p[y == c] == c) for c in range(C) if (y == c).any()])


def figures(m, draws):
    cells = {(i, L): balanced(preds[(m, i)][draws[i]], labels[(i, L)][draws[i]]) for i in range(3)
             for L in ("fer2013", "ferplus")}
    return {"serving": np.mean(list(cells.values())),
            "plain mean": (cells[(0, "fer2013")] + cells[(0, "ferplus")]) / 2,
            "plain FER-2013 bal": cells[(0, "fer2013")], "plain FER+ bal": cells[(0, "ferplus")],
            "FER-2013 accuracy": np.mean(preds[(m, 0)][draws[0]] == labels[(0, "fer2013")][draws[0]])}


whole = [np.arange(len(labels[(i, "fer2013")])) for i in range(3)]
fa, fb = figures(a, whole), figures(b, whole)
diffs = {k: [] for k in fa}
alone = {(m, k): [] for m in (a, b) for k in fa}
for _ in range(2000):
    draws = [rng.integers(0, len(w), len(w)) for w in whole]
    da, db = figures(a, draws), figures(b, draws)
    for k in diffs:
        diffs[k].append(db[k] - da[k])
        alone[(a, k)].append(da[k])
        alone[(b, k)].append(db[k])
print(f"{sys.argv[1]}: {b} - {a}, paired bootstrap over the faces (2,000 draws)")
for k, d in diffs.items():
    d = 100 * np.array(d)
    se = {m: 100 * np.std(alone[(m, k)]) for m in (a, b)}
    print(f"  {k:20s} {a} {100 * fa[k]:6.2f} (SE {se[a]:.2f})  {b} {100 * fb[k]:6.2f} (SE {se[b]:.2f})"
          f"  diff {100 * (fb[k] - fa[k]):+6.2f}  SE {d.std():.2f}  P(diff > 0) {np.mean(d > 0):.2f}")
