#!/usr/bin/env python3
"""Deterministic batch records for scripts/bench/load.

N points over S series (S/10 devices x 10 metrics), arriving in time order: every
batch is one device's 10 metrics x (points_per_batch/10) consecutive timestamps,
1 s apart, as ep-ingest would emit them.
"""
import random
import sys
import time
import uuid


def main():
    points = int(sys.argv[1]) if len(sys.argv) > 1 else 5_000_000
    series = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    per_batch = int(sys.argv[3]) if len(sys.argv) > 3 else 100
    tenant = sys.argv[4] if len(sys.argv) > 4 else "bench"
    rng = random.Random(42)
    devices = max(1, series // 10)
    metrics = series // devices
    steps = per_batch // metrics
    t0 = 1767607200  # 2026-01-05T10:00:00Z
    out = sys.stdout
    written = 0
    step = 0
    while written < points:
        for d in range(devices):
            if written >= points:
                break
            bid = uuid.UUID(int=rng.getrandbits(128), version=4)
            pts = []
            for k in range(steps):
                sec = t0 + step + k
                ts = "%s.000Z" % time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
                for m in range(metrics):
                    pts.append('{"metric":"m%d","ts":"%s","value":%.3f,"unit":"V"}' % (m, ts, 200 + rng.random() * 50))
            written += len(pts)
            recv = "%s.000Z" % time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t0 + step + steps))
            out.write('{"kind":"batch","batch_id":"%s","tenant":"%s","device":"dev-%04d","source":"http",'
                      '"received_at":"%s","sha256":"%064x","points":[%s]}\n'
                      % (bid, tenant, d, recv, rng.getrandbits(256), ",".join(pts)))
        step += steps


if __name__ == "__main__":
    main()
