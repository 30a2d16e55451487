#!/usr/bin/env python3
"""loadgen.py — requests per second the key vault test double sustains.

Starts vault_server.py in a temporary folder, makes one key, and runs wrapkey
and unwrapkey loops from THREADS threads, each on its own keep-alive
connection, for SECONDS each.  Prints one line per operation.

    python3 tests/vault/loadgen.py [--threads 3] [--seconds 5] [--kty RSA] [--size 2048]
"""

import argparse
import os
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True          # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vaultclient import ServerProcess, key_path, unb64url  # noqa: E402


def run(server, token, threads, seconds, work):
    """Requests completed by `threads` loops calling work(client) for `seconds`."""
    counts, failures = [0] * threads, [0] * threads
    start = threading.Barrier(threads + 1)

    def loop(index):
        client = server.client(token)
        start.wait()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if work(client) == 200:
                counts[index] += 1
            else:
                failures[index] += 1
        client.close()

    workers = [threading.Thread(target=loop, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    start.wait()
    began = time.monotonic()
    for worker in workers:
        worker.join()
    return sum(counts), sum(failures), time.monotonic() - began


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--kty", default="RSA")
    parser.add_argument("--size", type=int, default=2048)
    args = parser.parse_args()
    alg = "A%dKW" % args.size if args.kty == "oct-HSM" else "RSA-OAEP-256"

    with tempfile.TemporaryDirectory(prefix="renc-vault-load.") as tmp:
        server = ServerProcess(tmp)
        try:
            kid = server.admin("POST", "/keys/load", {"kty": args.kty, "size": args.size})["key"]["kid"]
            token = server.access_token()
            probe = server.client(token)
            wrapped = unb64url(probe.wrap(key_path(kid), alg, os.urandom(32))[2]["value"])
            probe.close()
            operations = {
                "wrapkey": lambda c: c.wrap(key_path(kid), alg, os.urandom(32))[0],
                "unwrapkey": lambda c: c.unwrap(key_path(kid), alg, wrapped)[0],
            }
            for name, work in operations.items():
                server.admin("POST", "/stats/reset")
                done, failed, elapsed = run(server, token, args.threads, args.seconds, work)
                stats = server.admin("GET", "/stats")
                print("%-9s %s-%d %s: %6.0f req/s (%d in %.1f s, %d failed, %d threads, "
                      "%d connections, python %s)"
                      % (name, args.kty, args.size, alg, done / elapsed, done, elapsed, failed,
                         args.threads, stats["connections"], sys.version.split()[0]))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
