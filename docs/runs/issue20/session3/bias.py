"""Offline: per-class logit offsets fitted on half of PublicTest, scored on the other half (and the reverse)."""
import sys, numpy as np
sys.argv = [sys.argv[0], sys.argv[1]] + sys.argv[2:]
exec(open(__file__.replace("bias.py", "analyze.py")).read().split("models = sorted")[0])
rng = np.random.default_rng(0)
def halves(seed):
    r = np.random.default_rng(seed)
    return [r.random(len(lab[(i, "fer2013")])) < 0.5 for i in SETS]
def objective(r, kind):
    if r["acc"] < 0.6927: return -1
    return {"serving": r["serving"], "plain": r["plain"], "both": r["serving"] + r["plain"]}[kind]
def fit(lps, mask, kind, steps=(0.4, 0.2, 0.1, 0.05)):
    bias = np.zeros(C)
    best = objective(score(lps, bias, mask), kind)
    for step in steps:
        improved = True
        while improved:
            improved = False
            for c in range(C):
                for d in (-step, step):
                    b = bias.copy(); b[c] += d
                    v = objective(score(lps, b, mask), kind)
                    if v > best + 1e-6: best, bias, improved = v, b, True
    return bias
name = sys.argv[2] if len(sys.argv) > 2 else "v3"
flip = len(sys.argv) > 3
lps = combo(name.split("+"), flip=flip)
for kind in ("serving", "plain", "both"):
    gains = []
    for seed in range(3):
        m = halves(seed)
        for fit_mask, test_mask in ((m, [~x for x in m]), ([~x for x in m], m)):
            bias = fit(lps, fit_mask, kind)
            b0, b1 = score(lps, np.zeros(C), test_mask), score(lps, bias, test_mask)
            gains.append([100 * (b1[k] - b0[k]) for k in ("serving", "plain", "acc")])
    g = np.array(gains)
    full = fit(lps, None, kind)
    r = score(lps, full)
    print(f"{name}{' flip' if flip else ''} fit {kind}: held-out gain serving {np.median(g[:,0]):+.2f} plain {np.median(g[:,1]):+.2f} acc {np.median(g[:,2]):+.2f}"
          f" | full fit serving {100*r['serving']:.2f} plain {100*r['plain']:.2f} acc {100*r['acc']:.2f} bias {np.round(full - full.mean(), 2)}", flush=True)
