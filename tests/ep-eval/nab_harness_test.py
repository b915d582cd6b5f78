#!/usr/bin/python3
"""scripts/nab end to end on a small constructed NAB directory: two files, one with a spike
inside its window, run through the zscore baseline and a NAME=COMMAND detector, scored by
ep-eval. Usage: nab_harness_test.py REPO_ROOT EP_EVAL_BINARY
"""
import datetime
import json
import math
import os
import subprocess
import sys
import tempfile


def main():
    root, ep_eval = sys.argv[1], sys.argv[2]
    with tempfile.TemporaryDirectory() as d:
        os.makedirs(os.path.join(d, "data", "cat"))
        windows = {}
        t0 = datetime.datetime(2015, 3, 1)
        for name, spike in (("a", 600), ("b", None)):
            with open(os.path.join(d, "data", "cat", name + ".csv"), "w") as f:
                f.write("timestamp,value\n")
                for i in range(1000):
                    v = 10 + math.sin(i / 10.0) + (50 if i == spike else 0)
                    f.write("%s,%r\n" % ((t0 + datetime.timedelta(minutes=5 * i)).strftime("%Y-%m-%d %H:%M:%S"), v))
            ts = lambda i: (t0 + datetime.timedelta(minutes=5 * i)).strftime("%Y-%m-%d %H:%M:%S.%f")
            windows["cat/%s.csv" % name] = [[ts(590), ts(640)]] if spike else []
        with open(os.path.join(d, "windows.json"), "w") as f:
            json.dump(windows, f)
        never = "never=sed -e 's/\"kind\":\"point\"/\"kind\":\"score\",\"score\":0,\"anomaly\":false/' -e 's/\"ts\":\\(\"[^\"]*\"\\)/\"start\":\\1,\"end\":\\1/'"
        p = subprocess.run([os.path.join(root, "scripts", "nab"), "--data", d, "--ep-eval", ep_eval,
                            "--detector", "zscore", "--detector", never, "--json"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert p.returncode == 0, p.stderr
        reps = [json.loads(l) for l in p.stdout.splitlines()]
        assert [r["detector"] for r in reps] == ["zscore", "never"], reps
        z = {x["profile"]: x for x in reps[0]["profiles"]}
        n = {x["profile"]: x for x in reps[1]["profiles"]}
        assert reps[0]["files"] == 2 and reps[0]["windows"] == 1 and reps[0]["rows"] == 2000, reps[0]
        assert z["standard"]["normalized"] > 80, z["standard"]
        assert all(abs(x["normalized"]) < 1e-9 for x in n.values()), n
    print("nab_harness_test: zscore %.1f, never-firing 0.0" % z["standard"]["normalized"])


if __name__ == "__main__":
    main()
