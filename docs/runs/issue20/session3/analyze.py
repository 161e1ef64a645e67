"""Offline: ensembles and per-class bias offsets on saved log-probabilities (logits.py beside this file)."""
import sys, itertools, numpy as np
z = np.load(sys.argv[1])
classes = list(z["classes"])
C = len(classes)
SETS = range(3)
lab = {(i, L): np.array([classes.index(y) if y else -1 for y in z[f"{L}_{i}"]]) for i in SETS for L in ("fer2013", "ferplus")}
def get(name, i, flip=False):
    lp = z[f"{name}|{i}|none"]
    return (lp + z[f"{name}|{i}|flip"]) / 2 if flip else lp
def bal(pred, y, mask=None):
    keep = y >= 0 if mask is None else (y >= 0) & mask
    p, y = pred[keep], y[keep]
    return np.mean([np.mean(p[y == c] == c) for c in range(C) if (y == c).any()])
def score(lps, bias=np.zeros(C), mask=None):
    r = {}
    for i in SETS:
        pred = (lps[i] + bias).argmax(1)
        m = None if mask is None else mask[i]
        for L in ("fer2013", "ferplus"):
            r[(i, L)] = bal(pred, lab[(i, L)], m)
    pred = (lps[0] + bias).argmax(1)
    y = lab[(0, "fer2013")]
    keep = np.ones(len(y), bool) if mask is None else mask[0]
    r["acc"] = np.mean(pred[keep] == y[keep])
    r["serving"] = np.mean([r[(i, L)] for i in SETS for L in ("fer2013", "ferplus")])
    r["plain"] = (r[(0, "fer2013")] + r[(0, "ferplus")]) / 2
    return r
def show(name, r):
    print(f"{name:40s} serving {100*r['serving']:.2f} plain {100*r['plain']:.2f} (f {100*r[(0,'fer2013')]:.2f} + {100*r[(0,'ferplus')]:.2f}) acc {100*r['acc']:.2f}")
def combo(names, weights=None, flip=False):
    weights = weights or [1 / len(names)] * len(names)
    return [sum(w * get(n, i, flip) for n, w in zip(names, weights)) for i in SETS]
models = sorted({k.split("|")[0] for k in z.files if "|" in k})
for m in models:
    for flip in (False, True):
        show(f"{m}{' flip' if flip else ''}", score(combo([m], flip=flip)))
for a, b in itertools.combinations(models, 2):
    show(f"{a}+{b}", score(combo([a, b])))
for names in (["v2", "v3", "v1"], ["v2", "v3", "d_e1"], ["v2", "v3", "c_e2", "d_e2"], models):
    show("+".join(names), score(combo(names)))
    show("+".join(names) + " flip", score(combo(names, flip=True)))
