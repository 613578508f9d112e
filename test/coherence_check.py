#!/usr/bin/python3
"""Randomized concurrent checker for mlcache's commit freshness (G1-G3).

Writers increment rows of a watched table and commit or roll back (also
rolling back savepoints inside committed transactions); readers read cached
per-group sums through mlcache.get(), reconnecting now and then so that L2
is used too.  For every read:

    commits that had returned before the read began
        <= value - initial <= commits that had been issued when it ended

The lower bound is G1 (no stale read after COMMIT returned); the upper bound
catches rolled-back increments (G3).  With --fault redis, a controller
SIGSTOPs Redis past the command timeout, resumes it, then kills it and
starts it again empty, while the checker runs: no read may fail or be stale.

Bounded in time (--seconds) and in reads per reader.  Run under
test/harness.sh (needs PGHOST/PGPORT/PGUSER and MLCACHE_TMP).  Exit status 0
when every read was consistent and the cache answered some reads.
"""
import argparse
import os
import random
import subprocess
import sys
import threading
import time

import psycopg2

GROUPS = 3
ROWS_PER_GROUP = 4
MAX_READS_PER_READER = 200000

lock = threading.Lock()
issued = [0] * GROUPS      # commits sent, per group
returned = [0] * GROUPS    # commits that returned, per group
violations = []
errors = []
levels = {}
max_read_ms = [0.0]
stop = threading.Event()


def connect(dbname):
    conn = psycopg2.connect(dbname=dbname)
    conn.autocommit = True
    return conn


def setup(dbname):
    conn = connect(dbname)
    cur = conn.cursor()
    cur.execute("CREATE EXTENSION IF NOT EXISTS mlcache")
    cur.execute("DROP TABLE IF EXISTS chk_t")
    cur.execute("CREATE TABLE chk_t (id int PRIMARY KEY, grp int NOT NULL, v bigint NOT NULL)")
    cur.execute("INSERT INTO chk_t SELECT g, g %% %s, 0 FROM generate_series(0, %s) g",
                (GROUPS, GROUPS * ROWS_PER_GROUP - 1))
    cur.execute("SELECT mlcache.watch('chk_t', ARRAY['chk:grp:{grp}', 'chk:all:*'])")
    cur.execute("SELECT mlcache.clear()")
    conn.close()


def writer(dbname, seed):
    rnd = random.Random(seed)
    conn = psycopg2.connect(dbname=dbname)
    cur = conn.cursor()
    while not stop.is_set():
        row = rnd.randrange(GROUPS * ROWS_PER_GROUP)
        grp = row % GROUPS
        try:
            cur.execute("UPDATE chk_t SET v = v + 1 WHERE id = %s", (row,))
            if rnd.random() < 0.3:
                # An increment inside a rolled-back savepoint must never show.
                cur.execute("SAVEPOINT s")
                # (The same row: a second row lock could deadlock writers.)
                cur.execute("UPDATE chk_t SET v = v + 1000000 WHERE id = %s", (row,))
                cur.execute("ROLLBACK TO SAVEPOINT s")
            if rnd.random() < 0.7:
                with lock:
                    issued[grp] += 1
                conn.commit()
                with lock:
                    returned[grp] += 1
            else:
                conn.rollback()
        except psycopg2.Error as e:
            errors.append("writer: %s" % e)
            return
    conn.close()


def reader(dbname, seed):
    rnd = random.Random(seed)
    conn = connect(dbname)
    for n in range(MAX_READS_PER_READER):
        if stop.is_set():
            break
        if rnd.random() < 0.05:
            conn.close()
            conn = connect(dbname)
        grp = rnd.randrange(GROUPS)
        key = "chk:grp:%d" % grp if rnd.random() < 0.5 else "chk:all:grp:%d" % grp
        l1_ttl = rnd.choice([None, 60, 0])
        with lock:
            lo = returned[grp]
        t0 = time.monotonic()
        try:
            cur = conn.cursor()
            cur.execute("SELECT mlcache.get(%s, %s, %s)::text::bigint, mlcache.last_level()",
                        (key, "SELECT coalesce(sum(v), 0) FROM chk_t WHERE grp = %d" % grp, l1_ttl))
            value, level = cur.fetchone()
        except psycopg2.Error as e:
            errors.append("reader: %s" % e)
            return
        ms = (time.monotonic() - t0) * 1000.0
        with lock:
            hi = issued[grp]
            levels[level] = levels.get(level, 0) + 1
            max_read_ms[0] = max(max_read_ms[0], ms)
        if not lo <= value <= hi:
            violations.append("key %s: read %d from %s, but %d commits had returned before "
                              "the read and %d were issued by its end" % (key, value, level, lo, hi))
    conn.close()


def servers(cmd):
    here = os.path.dirname(os.path.abspath(__file__))
    subprocess.run(["bash", os.path.join(here, "servers.sh"), cmd], check=True,
                   stdout=subprocess.DEVNULL)


def redis_faults(seconds):
    """SIGSTOP Redis past the command timeout, resume; then kill and restart it empty."""
    steps = [(0.2, "pause-redis", "Redis stopped (SIGSTOP)"),
             (0.4, "resume-redis", "Redis resumed (SIGCONT)"),
             (0.6, "kill-redis", "Redis killed (SIGKILL)"),
             (0.75, "start-redis", "Redis restarted empty")]
    start = time.monotonic()
    for frac, cmd, what in steps:
        while time.monotonic() - start < frac * seconds:
            if stop.wait(0.05):
                return
        servers(cmd)
        print("  %5.2fs %s" % (time.monotonic() - start, what), flush=True)


def counter(dbname, name):
    conn = connect(dbname)
    cur = conn.cursor()
    cur.execute("SELECT value FROM mlcache.counters() WHERE counter = %s", (name,))
    v = cur.fetchone()[0]
    conn.close()
    return v


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dbname", default="mlcache_check")
    ap.add_argument("--seconds", type=float, default=6.0)
    ap.add_argument("--writers", type=int, default=3)
    ap.add_argument("--readers", type=int, default=4)
    ap.add_argument("--fault", choices=["none", "redis"], default="none")
    ap.add_argument("--seed", type=int, default=int(time.time()))
    args = ap.parse_args()

    admin = psycopg2.connect(dbname="postgres")
    admin.autocommit = True
    admin.cursor().execute("DROP DATABASE IF EXISTS %s" % args.dbname)
    admin.cursor().execute("CREATE DATABASE %s" % args.dbname)
    admin.close()
    setup(args.dbname)
    errors0 = counter(args.dbname, "redis_errors")

    print("coherence check: %d writers, %d readers, %.1f s, fault=%s, seed=%d"
          % (args.writers, args.readers, args.seconds, args.fault, args.seed), flush=True)
    threads = [threading.Thread(target=writer, args=(args.dbname, args.seed + i))
               for i in range(args.writers)]
    threads += [threading.Thread(target=reader, args=(args.dbname, args.seed + 100 + i))
                for i in range(args.readers)]
    if args.fault == "redis":
        threads.append(threading.Thread(target=redis_faults, args=(args.seconds,)))
    for t in threads:
        t.start()
    deadline = time.monotonic() + args.seconds
    while time.monotonic() < deadline and not errors and not violations:
        time.sleep(0.05)
    stop.set()
    for t in threads:
        t.join(timeout=30)
    if any(t.is_alive() for t in threads):
        errors.append("a checker thread did not finish within 30 s of the stop")

    reads = sum(levels.values())
    cached = levels.get("l1", 0) + levels.get("l2", 0)
    print("  reads: %d (%s); commits: %d; slowest read: %.1f ms; redis_errors: +%d"
          % (reads, ", ".join("%s %d" % kv for kv in sorted(levels.items())),
             sum(returned), max_read_ms[0], counter(args.dbname, "redis_errors") - errors0))
    for v in violations[:10]:
        print("  STALE: " + v)
    for e in errors[:10]:
        print("  ERROR: " + e)
    if cached == 0:
        print("  no read was answered by the cache: the check proved nothing")
    ok = not violations and not errors and cached > 0 and sum(returned) > 0
    print("coherence check: %s (%d stale reads, %d errors)"
          % ("passed" if ok else "FAILED", len(violations), len(errors)))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
