#!/usr/bin/env python3
"""A minimal Standard Webhooks receiver for ep-alert, Python standard library only.

Verifies every request (webhook-id, webhook-timestamp within the tolerance, and the
HMAC-SHA256 signature against each configured secret, in constant time), answers
  204  valid and new            204  valid duplicate (same webhook-id seen before)
  400  missing/bad headers      401  no signature matches / timestamp out of tolerance
and prints one JSON line per request on stdout. Replace handle() with your own logic.

  WEBHOOK_SECRETS="whsec_old whsec_new" python3 receiver.py --port 8088
"""
import argparse
import base64
import collections
import hashlib
import hmac
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def decode_secret(secret):
    if not secret.startswith("whsec_"):
        raise ValueError("secret must start with whsec_")
    return base64.b64decode(secret[len("whsec_"):])


def verify(headers, body, keys, tolerance, now=None):
    """Returns (True, "") or (False, reason)."""
    msg_id = headers.get("webhook-id")
    ts = headers.get("webhook-timestamp")
    sigs = headers.get("webhook-signature")
    if not msg_id or not ts or not sigs:
        return False, "missing webhook-id, webhook-timestamp or webhook-signature"
    try:
        ts_int = int(ts)
    except ValueError:
        return False, "webhook-timestamp is not an integer"
    now = time.time() if now is None else now
    if abs(now - ts_int) > tolerance:
        return False, "webhook-timestamp outside the tolerance"
    signed = msg_id.encode() + b"." + ts.encode() + b"." + body
    expected = [base64.b64encode(hmac.new(k, signed, hashlib.sha256).digest()) for k in keys]
    for sig in sigs.split(" "):
        version, _, value = sig.partition(",")
        if version != "v1":
            continue
        for e in expected:
            if hmac.compare_digest(e, value.encode()):
                return True, ""
    return False, "no signature matches"


class Receiver(BaseHTTPRequestHandler):
    keys = []
    tolerance = 300
    seen = collections.OrderedDict()  # webhook-id -> None, bounded (dedupe window)
    max_seen = 100000
    lock = threading.Lock()

    def log_message(self, fmt, *args):  # quiet: stdout carries one JSON line per request
        pass

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        ok, reason = verify(self.headers, body, self.keys, self.tolerance)
        record = {"webhook_id": self.headers.get("webhook-id"), "valid": ok}
        if not ok:
            record["reason"] = reason
            status = 400 if reason.startswith("missing") or "integer" in reason else 401
        else:
            msg_id = self.headers["webhook-id"]
            with self.lock:
                record["duplicate"] = msg_id in self.seen
                if not record["duplicate"]:
                    self.seen[msg_id] = None
                    if len(self.seen) > self.max_seen:
                        self.seen.popitem(last=False)
            if not record["duplicate"]:
                event = json.loads(body)
                record["type"] = event.get("type")
                record["data"] = event.get("data", {})
                handle(event)
            status = 204
        # One write per line under the lock: requests are handled on several threads, and
        # print() writes the text and the newline separately (lines could interleave).
        with self.lock:
            sys.stdout.write(json.dumps(record) + "\n")
            sys.stdout.flush()
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()


def handle(event):
    """Your code: page someone, open a ticket, post to chat. Keep it fast (answer < 5 s);
    hand slow work to a queue."""


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8088, help="0 picks a free port")
    ap.add_argument("--port-file", help="write the bound port to this file (or FIFO)")
    ap.add_argument("--tolerance", type=int, default=300, help="seconds of timestamp skew accepted")
    ap.add_argument("--secret", action="append", default=[],
                    help="whsec_... secret; repeat during a rotation (default: $WEBHOOK_SECRETS)")
    args = ap.parse_args()
    secrets = args.secret or os.environ.get("WEBHOOK_SECRETS", "").split()
    if not secrets:
        ap.error("no secret: pass --secret or set WEBHOOK_SECRETS")
    Receiver.keys = [decode_secret(s) for s in secrets]
    Receiver.tolerance = args.tolerance
    server = ThreadingHTTPServer((args.host, args.port), Receiver)
    port = server.server_address[1]
    print(f"receiver: listening on {args.host}:{port}", file=sys.stderr, flush=True)
    if args.port_file:
        with open(args.port_file, "w") as f:
            f.write(f"{port}\n")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
