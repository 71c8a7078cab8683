#!/usr/bin/env python3
"""Kafka transactions (docs/kafka.md#transactions): what they cost a producer and a consumer,
against the same work without them, in one run against one broker.

Produce: BENCH_ROUNDS rounds (3), each running three cases one after the other, each case
BENCH_TXNS x BENCH_TXN_EVENTS events (300 x 100) of BENCH_VALUE bytes (100) into its own topic of
BENCH_PARTITIONS partitions (1), with librdkafka (confluent-kafka), linger.ms=BENCH_LINGER_MS (5),
acks=all:
  transactional          begin_transaction, produce the transaction's events, commit_transaction
  idempotent, flushed    enable.idempotence=true, the same events, flush() after each 100: one
                         round trip per 100 events, as a transaction's commit waits for its own
  idempotent, pipelined  the same events, one flush() at the end (for reference)
then the same two cases on the wire, with a minimal client (tests/integration/kafkawire.py: one
connection, each request sent when the last is answered, every batch encoded before the
timing): what the broker costs, without librdkafka's own time between its calls
(AddPartitionsToTxn, Produce, EndTxn against Produce alone); and then, with BENCH_CONCURRENT
producers at once (4; threads, each its own producer and
transactional id, the same topic, TXNS / BENCH_CONCURRENT transactions or flushes each), the
transactional and the flushed idempotent cases again: what a broker serving several
exactly-once applications (or Kafka Streams threads) gets, where the fsyncs of the producers'
records, of __transaction_state and of the markers are shared by the group commit.
Each producer sends one warm-up event (or transaction) to its topic first (its producer id, the
topic's metadata, the connection), outside the timing. Prints events/s for each case and round,
the medians over the rounds, and the ratios of the medians transactional / idempotent (the
issue's target: at least 0.5 against the flushed case).

Consume: a topic filled with BENCH_CONSUME_EVENTS events (300 000) in committed transactions of
BENCH_TXN_EVENTS from BENCH_FILL_PRODUCERS transactional producers at once (4; their transactions
interleave; the fill stops after BENCH_FILL_S seconds, 60, with what it has), then read from the
beginning to the end by a librdkafka consumer (assign at each partition's first offset,
consume() in batches of up to 10 000; its connection made before the timing) with isolation.level read_uncommitted (U) and read_committed
(C), BENCH_READS times each (5) in the order U C C U U C ...; each read is bounded by BENCH_READ_S
seconds (20) and must get every event. BENCH_ABORT_EVERY=K (0: none) aborts every K-th
transaction of the fill, so that read_committed also skips aborted ones (the two modes then read
different numbers of events; each rate counts the events its mode delivers). Prints events/s per
read, the medians per mode, and their ratio (the issue's target: at least 0.9). Every case also
prints the broker's CPU time per event (from /proc: user + system, in ticks of 10 ms).

The broker is a fresh `tidings serve` (BIN, default build/release/tidings) on 127.0.0.1 with
ephemeral ports, 2 event loops and a data directory of its own under /tmp (removed at the end);
BENCH_ARGS adds to its command line (e.g. "--set fsync=always"). Every loop is bounded in count
and time: a case that runs past BENCH_CASE_S seconds (60) stops and says so.

Usage: /usr/bin/python3 bench/txn.py [BIN]      (make bench-txn)
"""
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import confluent_kafka as ck
from confluent_kafka.admin import AdminClient, NewTopic

TXNS = int(os.environ.get("BENCH_TXNS", "300"))
PER_TXN = int(os.environ.get("BENCH_TXN_EVENTS", "100"))
VALUE = int(os.environ.get("BENCH_VALUE", "100"))
PARTITIONS = int(os.environ.get("BENCH_PARTITIONS", "1"))
CONSUME_EVENTS = int(os.environ.get("BENCH_CONSUME_EVENTS", "300000"))
ABORT_EVERY = int(os.environ.get("BENCH_ABORT_EVERY", "0"))
FILL_S = float(os.environ.get("BENCH_FILL_S", "60"))
FILL_PRODUCERS = int(os.environ.get("BENCH_FILL_PRODUCERS", "4"))
READ_S = float(os.environ.get("BENCH_READ_S", "20"))
CASE_S = float(os.environ.get("BENCH_CASE_S", "60"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
READS = int(os.environ.get("BENCH_READS", "5"))
LINGER_MS = int(os.environ.get("BENCH_LINGER_MS", "5"))
CONCURRENT = int(os.environ.get("BENCH_CONCURRENT", "4"))
PRODUCER = {"linger.ms": LINGER_MS, "acks": "all"}


class Broker:
    def __init__(self, binary):
        self.dir = tempfile.mkdtemp(prefix="bench-txn-")
        self.err = open(os.path.join(self.dir, "stderr"), "wb")
        self.proc = subprocess.Popen(
            [binary, "serve", "--data", os.path.join(self.dir, "data"),
             "--kafka", "127.0.0.1:0", "--http", "off", "--redis", "off", "--loops", "2",
             *os.environ.get("BENCH_ARGS", "").split()],
            stdout=subprocess.PIPE, stderr=self.err)
        deadline = time.time() + 30
        self.port = None
        while time.time() < deadline:
            line = self.proc.stdout.readline().decode()
            if not line:
                break
            if line.startswith("kafka: listening on "):
                self.port = int(line.rsplit(":", 1)[1])
            if line.startswith("ready"):
                return
        self.stop()
        raise SystemExit(f"{binary} did not start")

    def cpu_s(self):
        """The broker's CPU time so far (user + system), in seconds."""
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    @property
    def bootstrap(self):
        return f"127.0.0.1:{self.port}"

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self.err.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def create_topics(b, names):
    a = AdminClient({"bootstrap.servers": b.bootstrap})
    for name, f in a.create_topics([NewTopic(n, PARTITIONS, 1) for n in names]).items():
        f.result(timeout=20)


def value(i):
    return (b"%010d" % i).ljust(VALUE, b"x")


def txn_producer(b, tid, warm_topic):
    p = ck.Producer({"bootstrap.servers": b.bootstrap, "transactional.id": tid, **PRODUCER})
    p.init_transactions(30)
    p.begin_transaction()  # warm-up: metadata, AddPartitionsToTxn, Produce and EndTxn once
    p.produce(warm_topic, value(0))
    p.commit_transaction(30)
    return p


def transactional(b, topic, txns, limit, abort_every=0, warm_topic=None, tid=None, p=None):
    """Runs `txns` transactions of PER_TXN events into `topic`, for at most `limit` seconds,
    with producer p, or a new one after a warm-up transaction of one event into `warm_topic`
    (default: `topic`). Returns (transactions done, events committed, seconds)."""
    if p is None:  # (a Producer is falsy when its queue is empty: len())
        p = txn_producer(b, tid or "bench-" + topic, warm_topic or topic)
    done = committed = 0
    t0 = time.perf_counter()
    end = t0 + limit
    for t in range(txns):
        if time.perf_counter() > end:
            break
        p.begin_transaction()
        for i in range(PER_TXN):
            p.produce(topic, value(t * PER_TXN + i), partition=i % PARTITIONS)
        if abort_every and t % abort_every == abort_every - 1:
            p.flush(30)  # abort_transaction would purge what is not sent yet
            p.abort_transaction(30)
        else:
            p.commit_transaction(30)
            committed += PER_TXN
        done += 1
    secs = time.perf_counter() - t0
    p.flush(10)
    return done, committed, secs


def idem_producer(b, topic):
    p = ck.Producer({"bootstrap.servers": b.bootstrap, "enable.idempotence": True, **PRODUCER})
    p.produce(topic, value(0))  # warm-up: producer id, metadata, connection
    if p.flush(30):
        raise SystemExit("idempotent warm-up did not complete")
    return p


def idempotent(b, topic, every, limit, n=None, p=None):
    """n (TXNS * PER_TXN) events, flushed every `every` events (0: once at the end), for at
    most `limit` seconds, with producer p or a new one (warmed up). Returns (events delivered,
    seconds)."""
    delivered = [0]
    failed = []

    def report(err, msg):
        if err is None:
            delivered[0] += 1
        else:
            failed.append(err)

    if p is None:
        p = idem_producer(b, topic)
    n = n or TXNS * PER_TXN
    t0 = time.perf_counter()
    end = t0 + limit
    for i in range(n):
        while True:
            try:
                p.produce(topic, value(i), partition=(i % PER_TXN) % PARTITIONS,
                          on_delivery=report)
                break
            except BufferError:
                p.poll(0.01)
                if time.perf_counter() > end:
                    break
        if time.perf_counter() > end:
            break
        if every and (i + 1) % every == 0:
            if p.flush(max(0.1, end - time.perf_counter())):
                break
    p.flush(max(0.1, end - time.perf_counter()))
    secs = time.perf_counter() - t0
    if failed:
        raise SystemExit(f"idempotent produce failed: {failed[0]}")
    return delivered[0], secs


def fill(b, topic, txns, limit, abort_every):
    """`txns` transactions into `topic` from FILL_PRODUCERS transactional producers at once
    (threads), their transactions interleaved in the log. Returns (transactions done, events
    committed, seconds)."""
    res = [(0, 0, 0.0)] * FILL_PRODUCERS
    per = -(-txns // FILL_PRODUCERS)

    def run(k):
        res[k] = transactional(b, topic, min(per, txns - k * per), limit, abort_every,
                               "warm-" + topic, f"fill-{k}")

    t0 = time.perf_counter()
    ts = [threading.Thread(target=run, args=(k,)) for k in range(FILL_PRODUCERS)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return sum(r[0] for r in res), sum(r[1] for r in res), time.perf_counter() - t0


def read(b, topic, committed, want, limit):
    """Reads `topic` from the beginning until `want` events or `limit` seconds. Returns
    (events, seconds from the assign to the last event; the consumer's connection is made
    before)."""
    # librdkafka 2.0 stops fetching for fetch.error.backoff.ms (500 ms) whenever its queue holds
    # queued.min.messages (100 000): a stall that some reads hit and others not. Room for the
    # whole topic, and a short back-off, keep the reads the broker's.
    c = ck.Consumer({"bootstrap.servers": b.bootstrap, "group.id": "bench-read",
                     "enable.auto.commit": False, "enable.partition.eof": False,
                     "queued.min.messages": max(100000, 2 * want),
                     "fetch.error.backoff.ms": 10,
                     "isolation.level": "read_committed" if committed else "read_uncommitted"})
    # The connection, the metadata and where each partition starts first, outside the timing;
    # the reads start at those offsets (a logical OFFSET_BEGINNING would cost librdkafka's
    # offset lookup, which it starts 0.5 s after the assign here).
    starts = [c.get_watermark_offsets(ck.TopicPartition(topic, p), timeout=10, cached=False)[0]
              for p in range(PARTITIONS)]
    got = 0
    t0 = time.perf_counter()
    last = t0
    end = t0 + limit
    c.assign([ck.TopicPartition(topic, p, starts[p]) for p in range(PARTITIONS)])
    while got < want and time.perf_counter() < end:
        # No more than what is left: a batch call waits its whole time-out for a short batch.
        msgs = c.consume(min(10000, want - got), 0.1)
        for m in msgs:
            if m.error():
                raise SystemExit(f"consume: {m.error()}")
        if msgs:
            got += len(msgs)
            last = time.perf_counter()
    c.close()
    return got, last - t0


def rate(n, secs):
    return n / secs if secs > 0 else 0.0


def median(v):
    v = sorted(v)
    return v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2


def wire_round(b, k):
    """The transactional and flushed idempotent cases on the wire (see the top)."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                    "integration"))
    import kafkawire as kw
    from test_kafka_idempotence import idem_batch, init_producer_id
    from test_kafka_txn import add_partition_v0, raw_produce

    def end_txn(c, tid, pid, epoch):
        r = c.request(26, 1, kw.string(tid) + kw.i64(pid) + kw.i16(epoch) + kw.i8(1))
        r.i32()
        return r.i16()

    values = [value(i) for i in range(PER_TXN)]
    c = kw.Conn(b.port)
    tid = f"wire-{k}"
    err, pid, epoch = init_producer_id(c, 1, transactional_id=tid)
    assert err == 0
    batches = [idem_batch(values, pid, epoch, t * PER_TXN, True) for t in range(TXNS)]
    t0 = time.perf_counter()
    for t in range(TXNS):
        assert add_partition_v0(c, tid, pid, epoch, "wire-txn") == 0
        assert raw_produce(c, tid, "wire-txn", batches[t]) == 0
        assert end_txn(c, tid, pid, epoch) == 0
    tx = rate(TXNS * PER_TXN, time.perf_counter() - t0)
    err, pid, epoch = init_producer_id(c, 1)
    batches = [idem_batch(values, pid, epoch, t * PER_TXN) for t in range(TXNS)]
    t0 = time.perf_counter()
    for t in range(TXNS):
        assert raw_produce(c, None, "wire-idem", batches[t]) == 0
    fl = rate(TXNS * PER_TXN, time.perf_counter() - t0)
    c.close()
    print(f"[{k}] wire transactional (AddPartitionsToTxn, Produce, EndTxn): {tx:9.0f} events/s")
    print(f"[{k}] wire idempotent (Produce, acks=all):                       {fl:9.0f} events/s")
    return tx, fl


def at_once(fn):
    """fn(j) for j in range(CONCURRENT) in threads at once; (their events summed, seconds)."""
    res = [0] * CONCURRENT
    t0 = time.perf_counter()
    ts = [threading.Thread(target=lambda j=j: res.__setitem__(j, fn(j))) for j in range(CONCURRENT)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return sum(res), time.perf_counter() - t0


def concurrent_round(b, k):
    """The transactional and flushed idempotent cases with CONCURRENT producers at once (the
    transactional producers made and warmed up first, outside the timing)."""
    per = max(1, TXNS // CONCURRENT)
    ps = [None] * CONCURRENT
    at_once(lambda j: ps.__setitem__(j, txn_producer(b, f"bench-c-{k}-{j}", "txn-c")) or 0)
    ev, secs = at_once(lambda j: transactional(b, "txn-c", per, CASE_S, p=ps[j])[1])
    tx = rate(ev, secs)
    print(f"[{k}] {CONCURRENT} producers transactional:        {tx:9.0f} events/s"
          f"  ({ev} events in {secs:.2f} s)")
    at_once(lambda j: ps.__setitem__(j, idem_producer(b, "idem-c")) or 0)
    ev, secs = at_once(lambda j: idempotent(b, "idem-c", PER_TXN, CASE_S, per * PER_TXN, ps[j])[0])
    fl = rate(ev, secs)
    print(f"[{k}] {CONCURRENT} producers idempotent, flush every {PER_TXN}: {fl:9.0f} events/s"
          f"  ({ev} events in {secs:.2f} s)")
    return tx, fl


def produce_round(b, k):
    n = TXNS * PER_TXN
    cpu = b.cpu_s()
    done, ev, secs = transactional(b, "txn", TXNS, CASE_S)
    cpu, c1 = b.cpu_s(), b.cpu_s() - cpu
    tx = rate(ev, secs)
    print(f"[{k}] produce transactional (begin, {PER_TXN}, commit): {tx:9.0f} events/s"
          f"  ({rate(done, secs):.0f} transactions/s, {ev} events in {secs:.2f} s,"
          f" broker CPU {c1 * 1e6 / max(ev, 1):.1f} us/event)"
          + ("" if done == TXNS else "  STOPPED AT THE TIME LIMIT"))
    got, secs = idempotent(b, "idem-flushed", PER_TXN, CASE_S)
    cpu, c2 = b.cpu_s(), b.cpu_s() - cpu
    fl = rate(got, secs)
    print(f"[{k}] produce idempotent, flush every {PER_TXN}:     {fl:9.0f} events/s"
          f"  ({got} events in {secs:.2f} s, broker CPU {c2 * 1e6 / max(got, 1):.1f} us/event)"
          + ("" if got == n else "  STOPPED AT THE TIME LIMIT"))
    got, secs = idempotent(b, "idem-pipelined", 0, CASE_S)
    c3 = b.cpu_s() - cpu
    pl = rate(got, secs)
    print(f"[{k}] produce idempotent, pipelined:         {pl:9.0f} events/s"
          f"  ({got} events in {secs:.2f} s, broker CPU {c3 * 1e6 / max(got, 1):.1f} us/event)"
          + ("" if got == n else "  STOPPED AT THE TIME LIMIT"))
    return tx, fl, pl


def consume(b):
    """The read_committed against read_uncommitted cases (see the top)."""
    txns = -(-CONSUME_EVENTS // PER_TXN)
    done, committed, secs = fill(b, "consume", txns, FILL_S, ABORT_EVERY)
    total = done * PER_TXN
    print(f"consume: {total} events in {done} transactions ({committed} committed) from"
          f" {FILL_PRODUCERS} producers, filled in {secs:.1f} s"
          + ("" if done == txns else " (STOPPED AT THE FILL LIMIT)"))
    rates = {False: [], True: []}
    cpu = {False: 0.0, True: 0.0}
    events = {False: 0, True: 0}
    order = [False, True, True, False] * ((READS + 1) // 2)
    for mode in order[:2 * READS]:
        want = committed if mode else total
        c0 = b.cpu_s()
        got, secs = read(b, "consume", mode, want, READ_S)
        cpu[mode] += b.cpu_s() - c0
        events[mode] += got
        name = "read_committed  " if mode else "read_uncommitted"
        r = rate(got, secs)
        print(f"consume {name}: {r:9.0f} events/s  ({got} events in {secs:.2f} s)"
              + ("" if got == want else f"  INCOMPLETE: {want} expected"))
        if got != want:
            sys.exit(1)
        rates[mode].append(r)
    print("broker CPU per event read (all reads of a mode, including each consumer's"
          f" connection): read_committed {cpu[True] * 1e6 / events[True]:.2f} us,"
          f" read_uncommitted {cpu[False] * 1e6 / events[False]:.2f} us")
    rc, ru = median(rates[True]), median(rates[False])
    print(f"medians: read_committed {rc:.0f}, read_uncommitted {ru:.0f} events/s")
    print(f"ratio read_committed / read_uncommitted: {rc / ru:.2f}  (target >= 0.9)")


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else "build/release/tidings"
    b = Broker(binary)
    try:
        create_topics(b, ["txn", "idem-flushed", "idem-pipelined", "consume", "txn-c", "wire-txn",
                          "wire-idem",
                          "idem-c"])
        print(f"tidings {binary}: {PARTITIONS} partition(s), {ROUNDS} rounds of {TXNS}"
              f" transactions x {PER_TXN} events of {VALUE} B ({TXNS * PER_TXN} events a case),"
              f" linger.ms={LINGER_MS}, acks=all;"
              f" {os.environ.get('BENCH_ARGS', '') or 'broker defaults'}")
        rounds = [produce_round(b, k + 1) for k in range(ROUNDS)]
        tx, fl, pl = (median([r[i] for r in rounds]) for i in range(3))
        print(f"medians: transactional {tx:.0f}, idempotent flushed {fl:.0f}, pipelined {pl:.0f}"
              " events/s")
        print(f"ratio transactional / idempotent flushed:   {tx / fl:.2f}  (target >= 0.5)")
        print(f"ratio transactional / idempotent pipelined: {tx / pl:.2f}")
        if os.environ.get("BENCH_WIRE", "1") == "1":
            wrounds = [wire_round(b, k + 1) for k in range(ROUNDS)]
            wtx, wfl = (median([r[i] for r in wrounds]) for i in range(2))
            print(f"medians on the wire: transactional {wtx:.0f}, idempotent {wfl:.0f} events/s")
            print(f"ratio transactional / idempotent on the wire: {wtx / wfl:.2f}  (target >= 0.5)")
        if CONCURRENT > 1:
            crounds = [concurrent_round(b, k + 1) for k in range(ROUNDS)]
            ctx, cfl = (median([r[i] for r in crounds]) for i in range(2))
            print(f"medians, {CONCURRENT} producers: transactional {ctx:.0f}, idempotent flushed"
                  f" {cfl:.0f} events/s")
            print(f"ratio transactional / idempotent flushed, {CONCURRENT} producers: "
                  f"{ctx / cfl:.2f}  (target >= 0.5)")

        if CONSUME_EVENTS > 0 and READS > 0:
            consume(b)
    finally:
        b.stop()


if __name__ == "__main__":
    main()
