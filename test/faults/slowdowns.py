#!/usr/bin/python3
"""test/faults/slowdowns.py: how much a Redis fault slows mlcache's readers.

Measurements, not a pass/fail test (test/faults/run.sh does not run it): they
show availability costs that are not freshness violations.  Run under
test/harness.sh (about 1 minute):

    bash test/harness.sh /usr/bin/python3 test/faults/slowdowns.py

1. N sessions time out on a SIGSTOPped Redis at the same moment (one outage),
   Redis is resumed at once; how long until the breaker is closed again?
   (README: "skips Redis for redis_retry_interval, doubling on each failed
   retry".)
2. Six sessions hold a Redis connection; Redis is killed and restarted
   (down ~0.1 s); the sessions then each read once, 1.2 s apart, while a fresh
   session reads every 50 ms: how many of the fresh session's reads are L2
   hits, and how often does the breaker open?
3. Eight sessions read one cold key at once (its query takes 200 ms): with
   Redis up (single-flight: one computes), with Redis down (breaker open),
   with Redis refusing SETs (maxmemory, noeviction), and with a value over
   mlcache.max_value_size.  How long does each read take?
"""
import os
import subprocess
import threading
import time

import psycopg2

DB = "mlcache_breaker"


def conn(db=DB):
    c = psycopg2.connect(dbname=db)
    c.autocommit = True
    return c


def servers(cmd):
    subprocess.run(["bash", "test/servers.sh", cmd], check=True, stdout=subprocess.DEVNULL)


def counters(cur):
    cur.execute("SELECT counter, value FROM mlcache.counters() "
                "WHERE counter IN ('redis_errors', 'breaker_opened')")
    return dict(cur.fetchall())


def wait_closed(cur, seconds):
    t = time.monotonic()
    while time.monotonic() - t < seconds:
        cur.execute("SELECT breaker_state FROM mlcache.stats")   # probes when half-open
        if cur.fetchone()[0] == "closed":
            return time.monotonic() - t
        time.sleep(0.05)
    return None


def concurrent_timeouts(admin, n):
    wait_closed(admin, 15)
    sessions = [conn() for _ in range(n)]
    c0 = counters(admin)
    servers("pause-redis")
    t0 = time.monotonic()
    threads = [threading.Thread(target=lambda s=s, i=i: s.cursor().execute(
        "SELECT mlcache.get('blip:%d', 'SELECT 1', 0)" % i)) for i, s in enumerate(sessions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    servers("resume-redis")
    outage = time.monotonic() - t0
    closed = wait_closed(admin, 15)
    c1 = counters(admin)
    print("1. %d sessions time out at once in one %.2f s outage: the breaker closed again %s "
          "after Redis was resumed (redis_errors +%d, breaker_opened +%d)"
          % (n, outage, "%.2f s" % closed if closed is not None else "NOT within 15 s",
             c1["redis_errors"] - c0["redis_errors"], c1["breaker_opened"] - c0["breaker_opened"]))
    for s in sessions:
        s.close()


def stale_connections(admin):
    wait_closed(admin, 15)
    sessions = [conn() for _ in range(6)]
    for i, s in enumerate(sessions):          # each opens its own Redis connection
        s.cursor().execute("SELECT mlcache.get('idle:%d', 'SELECT 1', 0)" % i)
    c0 = counters(admin)
    servers("kill-redis")
    servers("start-redis")
    t0 = time.monotonic()
    fc = conn().cursor()
    nxt = hits = reads = 0
    last_skip = 0.0
    while time.monotonic() - t0 < 9:
        fc.execute("SELECT mlcache.get('fresh', 'SELECT 1', 0), mlcache.last_level()")
        reads += 1
        if fc.fetchone()[1] == "l2":
            hits += 1
        else:
            last_skip = time.monotonic() - t0
        if nxt < len(sessions) and time.monotonic() - t0 > 0.2 + 1.2 * nxt:
            sessions[nxt].cursor().execute("SELECT mlcache.get('idle:%d', 'SELECT 1', 0)" % nxt)
            nxt += 1
        time.sleep(0.05)
    c1 = counters(admin)
    print("2. Redis restarted (down ~0.1 s), 6 sessions with pre-restart connections read once "
          "each, 1.2 s apart: a fresh session's reads hit L2 %d of %d times in 9 s, the last "
          "read that skipped Redis began %.2f s after the restart (breaker_opened +%d, "
          "redis_errors +%d)" % (hits, reads, last_skip, c1["breaker_opened"] - c0["breaker_opened"],
                                 c1["redis_errors"] - c0["redis_errors"]))


def burst(admin, label, key, n=8, setup=None, query="SELECT pg_sleep(0.2), 1 AS v"):
    sessions = [conn() for _ in range(n)]
    for s in sessions:
        if setup:
            s.cursor().execute(setup)
    times, levels = [None] * n, [None] * n
    admin.execute("SELECT counter, value FROM mlcache.counters() WHERE counter IN "
                  "('computes', 'fill_waits', 'fill_wait_timeouts')")
    c0 = dict(admin.fetchall())

    def run(i):
        cur = sessions[i].cursor()
        t = time.monotonic()
        cur.execute("SELECT mlcache.get(%s, %s), mlcache.last_level()", (key, query))
        levels[i] = cur.fetchone()[1]
        times[i] = time.monotonic() - t
    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    admin.execute("SELECT counter, value FROM mlcache.counters() WHERE counter IN "
                  "('computes', 'fill_waits', 'fill_wait_timeouts')")
    c1 = dict(admin.fetchall())
    print("3. %s: %d concurrent cold reads of one key (200 ms query): %s s; %s"
          % (label, n, " ".join("%.2f" % t if t is not None else "?" for t in sorted(times, key=lambda x: x or 99)),
             ", ".join("%s +%d" % (k, c1[k] - c0[k]) for k in sorted(c1))))
    for s in sessions:
        s.close()


def redis_config(*args):
    subprocess.run(["redis-cli", "-s", os.environ["MLCACHE_REDIS_SOCKET"], "CONFIG", "SET"] + list(args),
                   check=True, stdout=subprocess.DEVNULL)


def main():
    a = conn("postgres")
    a.cursor().execute("DROP DATABASE IF EXISTS %s" % DB)
    a.cursor().execute("CREATE DATABASE %s" % DB)
    a.close()
    admin = conn()
    cur = admin.cursor()
    cur.execute("CREATE EXTENSION mlcache")
    cur.execute("SHOW mlcache.redis_retry_interval")
    print("mlcache.redis_retry_interval = %s" % cur.fetchone()[0])
    for n in (1, 2, 4, 8):
        concurrent_timeouts(cur, n)
    stale_connections(cur)
    wait_closed(cur, 15)
    burst(cur, "Redis up", "hot:1")
    servers("stop-redis")
    cur.execute("SELECT mlcache.get('open', 'SELECT 1')")     # opens the breaker
    burst(cur, "Redis down (breaker open)", "hot:2")
    servers("start-redis")
    wait_closed(cur, 15)
    redis_config("maxmemory", "1mb")
    try:
        burst(cur, "Redis refusing SETs (OOM)", "hot:3")
    finally:
        redis_config("maxmemory", "0")
    burst(cur, "Redis up, value over max_value_size", "hot:4",
          setup="SET mlcache.max_value_size = '1kB'",
          query="SELECT pg_sleep(0.2), repeat('x', 5000) AS v")


if __name__ == "__main__":
    main()
