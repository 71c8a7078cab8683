#!/usr/bin/python3
"""XACK rate of Redis consumer groups (issue 21): the broker under test against a binary from
before the change (its group state in catalog rows), in the same run, and a large PEL against a
small one on the broker under test.

For each case a broker is started on a fresh data directory, a stream filled with `pending` +
`acks` entries and all of them delivered to one group (XREADGROUP COUNT 10000 in a loop), so
that the PEL holds pending + acks entries; then `clients` threads acknowledge `acks` of them,
one ID per XACK, in pipelines of `depth` commands (each XACK is answered once durable: the
pipelined ones share a group commit). The figure is acks per second and microseconds per ack.
The IDs acknowledged are spread over the whole PEL (every k-th), not taken from its front.
Then the broker is started again on the same directory: the time until it is ready, and the
replay time it logs for the groups (the broker under test only).

Usage: bench/redis_xack.py [--bin build/release/tidings] [--old-bin PATH] [--acks 50000]
       [--small 1000] [--large 1000000] [--clients 8] [--depth 32] [--dir build/bench-xack]
"""
import argparse
import os
import shutil
import subprocess
import sys
import threading
import time

import redis


def start(binary, data, fresh=True):
    if fresh:
        shutil.rmtree(data, ignore_errors=True)
    os.makedirs(os.path.dirname(data), exist_ok=True)
    err = open(data + ".stderr", "wb")
    p = subprocess.Popen([binary, "serve", "--data", data, "--kafka", "127.0.0.1:0", "--http",
                          "off", "--redis", "127.0.0.1:0", "--loops", "2"],
                         stdout=subprocess.PIPE, stderr=err)
    deadline = time.time() + 60
    port = None
    while time.time() < deadline:
        line = p.stdout.readline().decode()
        if not line:
            break
        if line.startswith("redis: listening on "):
            port = int(line.rsplit(":", 1)[1])
        if line.startswith("ready"):
            return p, port
    p.kill()
    sys.exit("broker did not start: see " + data + ".stderr")


def fill_and_deliver(r, n):
    pipe = r.pipeline(transaction=False)
    for i in range(n):
        pipe.xadd("s", {"n": i})
        if len(pipe) == 10000:
            pipe.execute()
    pipe.execute()
    r.xgroup_create("s", "g", "0")
    ids = []
    while len(ids) < n:
        got = r.xreadgroup("g", "c", {"s": ">"}, count=10000)
        if not got or not got[0][1]:
            break
        ids.extend(i for i, _ in got[0][1])
    assert len(ids) == n, (len(ids), n)
    return ids


def ack_run(port, ids, clients, depth):
    chunks = [ids[i::clients] for i in range(clients)]
    done = [0] * clients

    def worker(k):
        c = redis.Redis(host="127.0.0.1", port=port, socket_timeout=60)
        mine = chunks[k]
        for at in range(0, len(mine), depth):
            pipe = c.pipeline(transaction=False)
            for i in mine[at:at + depth]:
                pipe.xack("s", "g", i)
            done[k] += sum(pipe.execute())

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
    t0 = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    dt = time.time() - t0
    assert sum(done) == len(ids), (sum(done), len(ids))
    return len(ids) / dt


def case(binary, data, pending, acks, clients, depth):
    p, port = start(binary, data)
    try:
        r = redis.Redis(host="127.0.0.1", port=port, socket_timeout=120)
        ids = fill_and_deliver(r, pending + acks)
        step = max(1, len(ids) // acks)
        chosen = ids[::step][:acks]
        os.sync()  # the fill's writeback is not measured with the acks
        time.sleep(1)
        rate = ack_run(port, chosen, clients, depth)
        left = r.xpending("s", "g")["pending"]
        assert left == pending + acks - len(chosen), left
    finally:
        p.terminate()
        p.wait(timeout=60)
    # The start that follows: how long the replay of the groups took (the new broker logs it).
    t0 = time.time()
    p, port = start(binary, data, fresh=False)
    ready = time.time() - t0
    p.terminate()
    p.wait(timeout=60)
    replay = None
    with open(data + ".stderr", errors="replace") as f:
        for line in f:
            if "replayed" in line and "Redis consumer group" in line:
                replay = line.split(" in ")[-1].strip()
    return rate, replay, ready


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="build/release/tidings")
    ap.add_argument("--old-bin", default="/work/main/build/release/tidings")
    ap.add_argument("--acks", type=int, default=50000)
    ap.add_argument("--small", type=int, default=1000)
    ap.add_argument("--large", type=int, default=1000000)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--depth", type=int, default=32)
    ap.add_argument("--dir", default="build/bench-xack")
    ap.add_argument("--repeat", type=int, default=3,
                    help="rounds of every case, interleaved; the median is reported")
    a = ap.parse_args()
    runs = [("before (old binary)", a.old_bin, a.small), ("after", a.bin, a.small),
            ("after, large PEL", a.bin, a.large)]
    if a.old_bin and os.access(a.old_bin, os.X_OK) and a.large:
        runs.append(("before, large PEL", a.old_bin, a.large))
    runs = [r for r in runs if r[1] and os.access(r[1], os.X_OK)]
    got = {name: [] for name, _, _ in runs}
    for rnd in range(a.repeat):
        for name, binary, pending in runs:
            rate, replay, ready = case(binary, os.path.join(a.dir, "data"), pending, a.acks,
                                       a.clients, a.depth)
            got[name].append(rate)
            print(f"round {rnd + 1}: {name:22s} PEL {pending + a.acks:>8d}  {rate:10.0f} XACK/s"
                  f"  restart {ready:5.2f} s (replay {replay or '-'})", flush=True)
    print("median:")
    for name, binary, pending in runs:
        rate = sorted(got[name])[len(got[name]) // 2]
        print(f"  {name:22s} PEL {pending + a.acks:>8d}  {rate:10.0f} XACK/s  "
              f"{1e6 / rate:8.1f} us/XACK", flush=True)

if __name__ == "__main__":
    main()
