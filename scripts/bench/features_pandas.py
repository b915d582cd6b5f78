# The pandas side of scripts/bench/features, end to end on the same NDJSON file as
# ep-features: read, parse, window, compute, write (CSV).
#   tumbling: groupby(series, 300 s) count/mean/min/max/median and std (ddof=0)
#   sliding:  per series rolling(32) mean/std/min/max/median, one row per point
# Usage: features_pandas.py tumbling|sliding IN OUT CHUNK
# CHUNK > 0 reads CHUNK lines at a time (read_json chunksize), which is what a pandas
# user does with a file larger than memory: reading 2M lines at once peaked at 3 GB,
# so the 86.4M points would need ~130 GB, and chunks of 500,000 lines were
# also faster (less CPU) than one read. CHUNK 0 reads the whole file at once.
# Prints "<total wall s> <compute wall s> <total cpu s> <compute cpu s> <peak RSS MB>";
# compute = the groupby/rolling work alone, summed over chunks.
import resource, sys, time
import pandas as pd

mode, path, out, chunk = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
WINDOW, POINTS = "300s", 32
c0, t0 = time.process_time(), time.perf_counter()
compute = [0.0, 0.0]  # wall, cpu


def prepare(df):
    df["ts"] = pd.to_datetime(df["ts"], utc=True)
    df["series"] = df["tenant"] + "/" + df["device"] + "/" + df["metric"]
    return df[["series", "ts", "value"]]


def features(df):
    w, c = time.perf_counter(), time.process_time()
    if mode == "tumbling":
        g = df.groupby(["series", pd.Grouper(key="ts", freq=WINDOW)])["value"]
        res = g.agg(["count", "mean", "min", "max", "median"])
        res["std"] = g.std(ddof=0)
    else:
        df = df.sort_values(["series", "ts"], kind="stable")
        r = df.groupby("series")["value"].rolling(POINTS, min_periods=1)
        res = pd.DataFrame({"mean": r.mean(), "std": r.std(ddof=0), "min": r.min(),
                            "max": r.max(), "median": r.median()})
        keep = ~df["carried"].to_numpy()  # context rows from the previous chunk
        res = res[keep]
        res.index = pd.MultiIndex.from_arrays([df["series"], df["ts"]])[keep]
    compute[0] += time.perf_counter() - w
    compute[1] += time.process_time() - c
    return res


read = dict(lines=True, dtype={"value": "float64"}, convert_dates=False)
if chunk == 0:
    df = prepare(pd.read_json(path, **read))
    if mode != "tumbling":
        df["carried"] = False
    res = features(df)
else:
    # Chunks of the time-ordered stream; what may continue in the next chunk is
    # carried over: the rows of windows not yet complete (tumbling), the last
    # POINTS-1 rows of every series as context (sliding, not output again).
    parts, carry = [], None
    for df in pd.read_json(path, chunksize=chunk, **read):
        df = prepare(df)
        if mode == "tumbling":
            if carry is not None:
                df = pd.concat([carry, df], ignore_index=True)
            cut = df["ts"].max().floor(WINDOW)
            late = df["ts"] >= cut
            carry = df[late]
            parts.append(features(df[~late]))
        else:
            df["carried"] = False
            if carry is not None:
                df = pd.concat([carry, df], ignore_index=True)
            parts.append(features(df))
            carry = df.groupby("series").tail(POINTS - 1).assign(carried=True)
    if mode == "tumbling" and carry is not None and len(carry):
        parts.append(features(carry))
    res = pd.concat(parts).sort_index()  # series by series, as a whole-file read gives
res.to_csv(out)
t1, c1 = time.perf_counter(), time.process_time()
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"{t1 - t0:.4f} {compute[0]:.4f} {c1 - c0:.4f} {compute[1]:.4f} {rss:.0f}")
