#!/usr/bin/python3
"""Cross-checks `ep-eval --nab` against a direct Python port of NAB v1.1's scoring
(nab/sweeper.py calcSweepScore + calcScoreByThreshold, nab/optimizer.py's corpus sweep,
nab/scorer.py scoreDataSet, nab/runner.py normalisation), on random corpora with ties.
Usage: nab_reference.py EP_EVAL_BINARY
"""
import datetime
import json
import math
import os
import random
import subprocess
import sys
import tempfile

PROFILES = {"standard": (1.0, 1.0, 0.11), "reward_low_FP_rate": (1.0, 1.0, 0.22),
            "reward_low_FN_rate": (1.0, 2.0, 0.11)}


def sigmoid(x):
    return 1 / (1 + math.exp(-x))


def scaled_sigmoid(y):
    return -1.0 if y > 3.0 else 2 * sigmoid(-5 * y) - 1.0


def sweep(timestamps, scores, windows, name, tp, fn, fp):
    """calcSweepScore: (score, weight, window name or None or 'probationary') per row."""
    windows = list(windows)
    max_tp = scaled_sigmoid(-1.0)
    probation = min(math.floor(0.15 * len(timestamps)), 0.15 * 5000)
    out = []
    cur = cur_name = cur_width = cur_right = None
    prev_width = prev_right = None
    for i, (t, s) in enumerate(zip(timestamps, scores)):
        if windows and t == windows[0][0]:
            cur = windows.pop(0)
            cur_name = "%s|%s" % (name, cur[0])
            cur_right = timestamps.index(cur[1])
            cur_width = float(cur_right - timestamps.index(cur[0]) + 1)
        if cur is not None:
            w = scaled_sigmoid(-(cur_right - i + 1) / cur_width) * tp / max_tp
        elif prev_right is None:
            w = -1.0 * fp
        else:
            # NAB divides by zero after a one-row window; ep-eval takes the limit (-1).
            y = abs(prev_right - i) / float(prev_width - 1) if prev_width > 1 else float("inf")
            w = scaled_sigmoid(y) * fp
        out.append((s, w, cur_name if i >= probation else "probationary"))
        if cur is not None and t == cur[1]:
            prev_right, prev_width = i, cur_width
            cur = cur_name = cur_width = cur_right = None
    return out


def by_threshold(rows, fn):
    rows = sorted([r for r in rows if r[2] != "probationary"], key=lambda r: r[0], reverse=True)
    parts = {"fp": 0}
    for r in rows:
        if r[2] is not None:
            parts[r[2]] = -fn
    out, cur = [], 1.1
    for s, w, name in rows:
        if s != cur:
            out.append((cur, sum(parts.values())))
            cur = s
        if name is None:
            parts["fp"] += w
        else:
            parts[name] = max(parts[name], w)
    out.append((cur, sum(parts.values())))
    return out


def score_at(table, threshold):
    prev = None
    for row in table:
        if row[0] == threshold:
            return row
        if row[0] < threshold:
            return prev
        prev = row
    return None


def nab(files, tp, fn, fp):
    """files: [(name, timestamps, scores, windows)] -> (threshold, score)."""
    rows = []
    for name, ts, sc, win in files:
        rows += sweep(ts, sc, win, name, tp, fn, fp)
    table = sorted(by_threshold(rows, fn), key=lambda r: r[1], reverse=True)
    threshold = table[0][0]
    total = 0
    for name, ts, sc, win in files:
        total += score_at(by_threshold(sweep(ts, sc, win, name, tp, fn, fp), fn), threshold)[1]
    return threshold, total


def make_corpus(rng, root):
    files = []
    windows_json = {}
    os.makedirs(os.path.join(root, "data", "c"))
    os.makedirs(os.path.join(root, "res", "d", "c"))
    for k in range(rng.randint(2, 5)):
        n = rng.randint(60, 1200)
        t0 = datetime.datetime(2015, 1, 1) + datetime.timedelta(days=k)
        ts = [t0 + datetime.timedelta(minutes=5 * i) for i in range(n)]
        prob = min(math.floor(0.15 * n), 750)
        wins, i = [], prob + rng.randint(0, 20)
        while len(wins) < 3 and i < n - 5:
            width = rng.randint(1, max(2, n // 10))
            j = min(n - 1, i + width - 1)
            wins.append((ts[i], ts[j]))
            i = j + rng.randint(1, n // 3)
        if rng.random() < 0.2:
            wins = []
        levels = rng.choice([10, 100, 1000])
        sc = [round(rng.random() ** 3, 2) if rng.random() < 0.9 else round(rng.random(), 3)
              for _ in range(n)]
        sc = [math.floor(s * levels) / levels for s in sc]
        name = "c/f%d.csv" % k
        files.append((name, ts, sc, wins))
        windows_json[name] = [[a.strftime("%Y-%m-%d %H:%M:%S.%f"), b.strftime("%Y-%m-%d %H:%M:%S.%f")]
                              for a, b in wins]
        with open(os.path.join(root, "data", name), "w") as f:
            f.write("timestamp,value\n")
            for t in ts:
                f.write(t.strftime("%Y-%m-%d %H:%M:%S") + ",1\n")
        with open(os.path.join(root, "res", "d", "c", "d_f%d.csv" % k), "w") as f:
            f.write("timestamp,value,anomaly_score,label\n")
            for t, s in zip(ts, sc):
                f.write("%s,1,%r,0\n" % (t.strftime("%Y-%m-%d %H:%M:%S"), s))
    with open(os.path.join(root, "windows.json"), "w") as f:
        json.dump(windows_json, f)
    return files


def main():
    ep_eval = sys.argv[1]
    failures = 0
    for seed in range(12):
        rng = random.Random(seed)
        with tempfile.TemporaryDirectory() as root:
            files = make_corpus(rng, root)
            p = subprocess.run([ep_eval, "--nab", "--json", "--nab-windows", root + "/windows.json",
                                "--nab-data", root, "--nab-results", root + "/res/d"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            if p.returncode != 0:
                print("seed %d: ep-eval exited %d: %s" % (seed, p.returncode, p.stderr))
                failures += 1
                continue
            got = {x["profile"]: x for x in json.loads(p.stdout)["profiles"]}
            n_windows = sum(len(f[3]) for f in files)
            for prof, (tp, fn, fp) in PROFILES.items():
                threshold, score = nab(files, tp, fn, fp)
                null_files = [(n, ts, [0.0] * len(sc), w) for n, ts, sc, w in files]
                _, null = nab(null_files, tp, fn, fp)
                perfect = n_windows * tp
                g = got[prof]
                ok = (g["threshold"] == threshold and abs(g["score"] - score) < 1e-9 and
                      abs(g["null"] - null) < 1e-9 and abs(g["perfect"] - perfect) < 1e-12)
                if perfect != null:
                    norm = 100 * (score - null) / (perfect - null)
                    ok = ok and abs(g["normalized"] - norm) < 1e-7
                if not ok:
                    failures += 1
                    print("seed %d %s: expected threshold %r score %r null %r, got %r %r %r" %
                          (seed, prof, threshold, score, null, g["threshold"], g["score"], g["null"]))
    if failures:
        sys.exit(1)
    print("nab_reference: 12 random corpora x 3 profiles agree with the Python port")


if __name__ == "__main__":
    main()
