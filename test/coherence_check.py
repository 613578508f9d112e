#!/usr/bin/python3
"""Randomized concurrent checker for mlcache's commit freshness (G1-G3, G9).

Writers increment rows of a watched table and commit or roll back (also
rolling back savepoints inside committed transactions), and some read their
group's keys through the cache inside those transactions; readers read
cached per-group sums through mlcache.get(), reconnecting now and then so
that L2 is used too.  For every read:

    commits that had returned before the read began
        <= value - initial <= commits that had been issued when it ended

The lower bound is G1 (no stale read after COMMIT returned); the upper bound
catches increments that were never committed.  Some readers read in
REPEATABLE READ transactions: for them the lower bound is taken when their
transaction began, and every read of a group within one transaction must
give the same sum.

Rolled-back values (G3) are counted exactly.  A transaction that will roll
back (and every rolled-back savepoint) adds ROLLED_BACK to a row instead of
1, far more than all commits of a run can add up to, so a sum of
ROLLED_BACK or more includes a rolled-back write.  A second table, chk_u,
is written only by "doomed" writers, always inside transactions or
savepoints that roll back, so its committed sum is 0 for the whole run.
They write it and then read, inside the same transaction, keys whose
values depend on it: chk:u:N, which no watch covers, and chk:all:mix:G,
which the watch on chk_t covers but which also reads chk_u (the doomed
writer has written nothing that invalidates it).  What they compute there
includes their uncommitted rows; each is marked by an increment of its own,
so a value that includes it, read by anyone (also by the doomed writer's
own backend after its rollback, or its own transaction after ROLLBACK TO
SAVEPOINT), is a rolled-back value seen.  The check fails if any is seen,
and reports how many reads that were.  The doomed writers now and then
invalidate their unwatched keys in a committed transaction of their own,
so that those keys are computed again.

With --fault redis, a controller
SIGSTOPs Redis past the command timeout, resumes it, then kills it and
starts it again empty, while the checker runs: no read may fail or be stale.

The other --fault modes are the cases of test/faults/run.sh, one fault each
(see FAULTS below).  Two of them crash PostgreSQL (crash: a backend killed
with SIGKILL mid-transaction; worker-kill: the mlcache worker killed): every
connection is lost, and with synchronous_commit = off PostgreSQL may lose
commits that had returned.  The checker then counts per server life: the
controller holds back new connections, kills, waits for the crash restart,
reads the table's actual sums (nothing can commit meanwhile) and starts a new
life whose 'returned' and 'issued' both begin at those sums.  Every
connection belongs to the life it was opened in, and every read is checked
against the counts of its connection's life:

    returned(life) at its start <= value <= issued(life) at its end

A read that fails because its connection died in the crash is discarded and
the thread reconnects; a commit in flight when the connection died counts in
'issued' but not in 'returned' (its outcome is unknown).  So a value cached
before the crash that reflects commits the crash lost exceeds the new life's
'issued' and is reported as stale.

Bounded in time (--seconds) and in reads per reader; every wait is bounded.
Run under test/harness.sh (needs PGHOST/PGPORT/PGUSER and MLCACHE_TMP).  Exit
status 0 when every read was consistent and the cache answered some reads.
--result FILE writes a JSON summary (used by test/faults/run.sh).
"""
import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time

import psycopg2

GROUPS = 3
ROWS_PER_GROUP = 4
U_ROWS = 8                 # rows of chk_u, written only by transactions that roll back
U_KEYS = 4                 # unwatched keys chk:u:0 .. chk:u:3, all reading sum(chk_u)
ROLLED_BACK = 10 ** 9      # what a write that is rolled back adds to a chk_t row
MAX_READS_PER_READER = 200000
HERE = os.path.dirname(os.path.abspath(__file__))

FAULTS = {
    "none": "no fault",
    "redis": "Redis SIGSTOPped, resumed, killed and restarted empty",
    "stop": "Redis SIGSTOPped past the command timeout, then SIGCONT",
    "kill": "Redis killed (SIGKILL) and restarted empty",
    "rdb": "Redis restarted from an RDB snapshot taken before some writes",
    "flushall": "FLUSHALL, repeatedly",
    "maxmemory-random": "maxmemory 1mb, allkeys-random eviction",
    "maxmemory-noeviction": "maxmemory 1mb, noeviction (OOM errors on SET)",
    "client-kill": "CLIENT KILL TYPE normal, repeatedly",
    "foreign": "foreign values written under mlcache keys, repeatedly",
    "crash": "a PostgreSQL backend killed with SIGKILL mid-transaction (crash restart)",
    "cancel": "pg_cancel_backend and statement_timeout while Redis is SIGSTOPped",
    "worker-kill": "the mlcache worker killed with SIGKILL (crash restart)",
}
CRASH_FAULTS = ("crash", "worker-kill")

lock = threading.Lock()    # the lives' counts, levels, latencies, counters below
violations = []
errors = []
rolled_back = []           # reads that returned a value including a rolled-back write
rolled_back_by = {"watched": 0, "unwatched": 0}   # the same, by the key's kind
uncommitted_computes = [0]  # doomed writers' reads that computed with their own uncommitted rows
checked_reads = [0]        # every read checked, readers' and writers' alike
rr_reads = [0]
levels = {}
latencies = []             # ms, every successful read
slowest = [(0.0, 0.0, "", "")]   # the slowest read: ms, when it began, key, level
warnings_seen = [0]        # WARNINGs (the breaker's) received by readers
reads_lost_to_crash = [0]
reconnects = [0]
stop = threading.Event()
notes = []                 # what the fault controller did, for the report
T0 = [time.monotonic()]
fault_over_at = [None]     # when the controller's last fault step ended
l2_back_at = [None]        # first L2 hit after that


def now():
    return time.monotonic() - T0[0]


def note(text, show=True):
    with lock:
        notes.append(text)
    if show:
        print("  %5.2fs %s" % (now(), text), flush=True)


class Life:
    """One server life (between crash restarts): commits issued and returned
    per group, as absolute sums of the table."""

    def __init__(self, n, base):
        self.n = n
        self.base = list(base)
        self.issued = list(base)
        self.returned = list(base)


life = [Life(0, [0] * GROUPS)]
lives = [life[0]]
# The crash gate: while 'crashing', no new connection is opened, so that
# every connection belongs to the life it was opened in.
gate = threading.Condition(lock)
crashing = [False]
connecting = [0]
crash_mode = [False]


def connect(dbname, appname="chk-admin", autocommit=True):
    conn = psycopg2.connect(dbname=dbname, application_name=appname, connect_timeout=10)
    conn.autocommit = autocommit
    return conn


def open_conn(dbname, appname, autocommit=True):
    """A connection and the server life it belongs to; None when stopping.
    In the crash modes, waits (bounded) for a crash restart to finish."""
    deadline = time.monotonic() + 60
    while True:
        with gate:
            while crashing[0] and not stop.is_set() and time.monotonic() < deadline:
                gate.wait(0.1)
            if stop.is_set():
                return None, None
            connecting[0] += 1
            mylife = life[0]
        try:
            return connect(dbname, appname, autocommit), mylife
        except psycopg2.OperationalError:
            if not crash_mode[0] or time.monotonic() > deadline:
                raise
        finally:
            with gate:
                connecting[0] -= 1
                gate.notify_all()
        time.sleep(0.05)


def lost_to_crash(e, mylife):
    """True if error e means the connection died in a crash restart."""
    if not crash_mode[0]:
        return False
    # No SQLSTATE (the connection broke: psycopg2 reports that as an
    # OperationalError, an InterfaceError or, on COMMIT, a bare DatabaseError)
    # or one of those PostgreSQL sends when a crash terminates a session.
    if getattr(e, "pgcode", None) not in (None, "57P01", "57P02", "57P03"):
        return False
    with gate:
        return crashing[0] or life[0] is not mylife


def setup(dbname):
    conn = connect(dbname)
    cur = conn.cursor()
    cur.execute("CREATE EXTENSION IF NOT EXISTS mlcache")
    cur.execute("DROP TABLE IF EXISTS chk_t")
    cur.execute("CREATE TABLE chk_t (id int PRIMARY KEY, grp int NOT NULL, v bigint NOT NULL)")
    cur.execute("INSERT INTO chk_t SELECT g, g %% %s, 0 FROM generate_series(0, %s) g",
                (GROUPS, GROUPS * ROWS_PER_GROUP - 1))
    cur.execute("SELECT mlcache.watch('chk_t', ARRAY['chk:grp:{grp}', 'chk:all:*'])")
    # Unwatched; its committed sum stays 0: only doomed writers write it, and
    # they always roll back.
    cur.execute("DROP TABLE IF EXISTS chk_u")
    cur.execute("CREATE TABLE chk_u (id int PRIMARY KEY, v bigint NOT NULL)")
    cur.execute("INSERT INTO chk_u SELECT g, 0 FROM generate_series(0, %s) g", (U_ROWS - 1,))
    cur.execute("SELECT mlcache.clear()")
    # The test server runs with synchronous_commit = off: make the set-up
    # durable, or a crash restart may take the table or the watch with it.
    cur.execute("CHECKPOINT")
    conn.close()


def group_query(grp):
    return "SELECT coalesce(sum(v), 0) FROM chk_t WHERE grp = %d" % grp


U_QUERY = "SELECT coalesce(sum(v), 0) FROM chk_u"


def mix_query(grp):
    return ("SELECT jsonb_build_object('t', (SELECT coalesce(sum(v), 0) FROM chk_t WHERE grp = %d), "
            "'u', (SELECT coalesce(sum(v), 0) FROM chk_u))" % grp)


def cache_keys():
    return (["chk:grp:%d" % g for g in range(GROUPS)] + ["chk:all:grp:%d" % g for g in range(GROUPS)]
            + ["chk:all:mix:%d" % g for g in range(GROUPS)] + ["chk:u:%d" % n for n in range(U_KEYS)])


def key_info(key):
    """(query, group or None) of a cache key."""
    n = int(key.rsplit(":", 1)[1])
    if key.startswith("chk:u:"):
        return U_QUERY, None
    if key.startswith("chk:all:mix:"):
        return mix_query(n), n
    return group_query(n), n


def random_key(rnd):
    r = rnd.random()
    grp = rnd.randrange(GROUPS)
    if r < 0.35:
        return "chk:grp:%d" % grp
    if r < 0.7:
        return "chk:all:grp:%d" % grp
    if r < 0.85:
        return "chk:all:mix:%d" % grp
    return "chk:u:%d" % rnd.randrange(U_KEYS)


def read_key(cur, key, l1_ttl=None):
    """Read key through the cache: (t, u, level), where t is the chk_t group
    sum (None for chk:u keys) and u the chk_u sum (None for group keys)."""
    query, grp = key_info(key)
    cur.execute("SELECT mlcache.get(%s, %s, %s::integer)::text, mlcache.last_level()", (key, query, l1_ttl))
    text, level = cur.fetchone()
    v = json.loads(text)
    if grp is None:
        return None, int(v), level
    if isinstance(v, dict):
        return int(v["t"]), int(v["u"]), level
    return int(v), None, level


def writer(dbname, seed, pause_ms, slow):
    """Increments chk_t rows.  A transaction that will commit adds 1 to its
    row; one that will roll back adds ROLLED_BACK, and so does a savepoint
    that is rolled back.  Some read their group's keys inside the
    transaction: the value must include their own increment (a pending
    invalidation reads around the cache) and nothing rolled back."""
    rnd = random.Random(seed)
    conn, mylife = open_conn(dbname, "chk-writer", autocommit=False)
    if conn is None:
        return
    cur = conn.cursor()
    while not stop.is_set():
        row = rnd.randrange(GROUPS * ROWS_PER_GROUP)
        grp = row % GROUPS
        commit = rnd.random() < 0.7
        inc = 1 if commit else ROLLED_BACK
        try:
            cur.execute("UPDATE chk_t SET v = v + %s WHERE id = %s", (inc, row))
            if rnd.random() < 0.3:
                # An increment inside a rolled-back savepoint must never show.
                cur.execute("SAVEPOINT s")
                # (The same row: a second row lock could deadlock writers.)
                cur.execute("UPDATE chk_t SET v = v + %s WHERE id = %s", (ROLLED_BACK, row))
                cur.execute("ROLLBACK TO SAVEPOINT s")
            if rnd.random() < 0.3:
                key = rnd.choice(["chk:grp:%d", "chk:all:grp:%d", "chk:all:mix:%d"]) % grp
                with lock:
                    lo = mylife.returned[grp]
                t, u, level = read_key(cur, key)
                with lock:
                    # Its own increment is in t: a rolled-back one counts once.
                    check_value(key, t - inc, u, level, lo, mylife.issued[grp], who="writer")
            if slow:
                time.sleep(0.02)   # idle in transaction: a victim for the crash mode
            if commit:
                with lock:
                    mylife.issued[grp] += 1
                conn.commit()
                with lock:
                    mylife.returned[grp] += 1
            else:
                conn.rollback()
        except psycopg2.Error as e:
            if lost_to_crash(e, mylife):
                # An in-flight commit stays counted as issued, not returned.
                conn.close()
                conn, mylife = open_conn(dbname, "chk-writer", autocommit=False)
                if conn is None:
                    return
                cur = conn.cursor()
                with lock:
                    reconnects[0] += 1
                continue
            errors.append("writer (%.2fs, %s, life %d of %d, crashing %s): %s" % (now(), type(e).__name__, mylife.n, life[0].n, crashing[0], str(e).strip()))
            return
        if pause_ms:
            time.sleep(rnd.random() * pause_ms / 1000.0)
    conn.close()


DOOMED_MODES = ["rollback", "savepoint", "released"]


def doomed_writer(dbname, seed, pause_ms):
    """Writes chk_u, whose committed sum stays 0, only in work that is rolled
    back, and reads chk:u:N or chk:all:mix:G inside it, so that what it
    computes includes its uncommitted write.  Each transaction adds an
    increment of its own, so a read that returns it is known to come from
    this transaction.  Modes:
      rollback   write, read, ROLLBACK;
      savepoint  SAVEPOINT, write, read, ROLLBACK TO SAVEPOINT, read again
                 (the transaction itself must no longer see it), COMMIT;
      released   SAVEPOINT, write, RELEASE, read, ROLLBACK.
    After each transaction it reads the key again in its own backend."""
    rnd = random.Random(seed)
    conn, mylife = open_conn(dbname, "chk-doomed", autocommit=False)
    if conn is None:
        return
    cur = conn.cursor()
    while not stop.is_set():
        key = "chk:u:%d" % rnd.randrange(U_KEYS) if rnd.random() < 0.6 else \
            "chk:all:mix:%d" % rnd.randrange(GROUPS)
        grp = key_info(key)[1]
        mode = rnd.choice(DOOMED_MODES)
        mine = rnd.randrange(1, 1000000)
        try:
            if rnd.random() < 0.3:
                # A committed transaction that only invalidates: the key is
                # computed again, by a doomed writer or by a reader.
                cur.execute("SELECT mlcache.invalidate(%s)", (key,))
                conn.commit()
            if mode != "rollback":
                cur.execute("SAVEPOINT s")
            cur.execute("UPDATE chk_u SET v = v + %s WHERE id = %s", (mine, rnd.randrange(U_ROWS)))
            if mode == "released":
                cur.execute("RELEASE SAVEPOINT s")
            doomed_read(cur, mylife, key, grp, mine, inside=True)
            if mode == "savepoint":
                cur.execute("ROLLBACK TO SAVEPOINT s")
                doomed_read(cur, mylife, key, grp, mine, inside=False)
                conn.commit()
            else:
                conn.rollback()
            doomed_read(cur, mylife, key, grp, mine, inside=False)
            conn.commit()
        except psycopg2.Error as e:
            if lost_to_crash(e, mylife):
                conn.close()
                conn, mylife = open_conn(dbname, "chk-doomed", autocommit=False)
                if conn is None:
                    return
                cur = conn.cursor()
                with lock:
                    reconnects[0] += 1
                continue
            errors.append("doomed writer (%.2fs, %s, life %d of %d, crashing %s): %s" % (now(), type(e).__name__, mylife.n, life[0].n, crashing[0], str(e).strip()))
            return
        if pause_ms:
            time.sleep(rnd.random() * pause_ms / 1000.0)
    conn.close()


def doomed_read(cur, mylife, key, grp, mine, inside):
    """A doomed writer's read.  inside: its write is live, so u may be its
    own increment (it computed the value: counted) or 0 (a committed value
    cached before: an unwatched key may serve it); anything else is someone
    else's rolled-back write.  Otherwise its write is gone and u must be 0."""
    with lock:
        lo = mylife.returned[grp] if grp is not None else 0
    t, u, level = read_key(cur, key)
    with lock:
        hi = mylife.issued[grp] if grp is not None else 0
        if inside and u == mine:
            uncommitted_computes[0] += 1
            u = 0
        check_value(key, t, u, level, lo, hi, who="doomed writer" + ("" if inside else " after its rollback"))


def check_value(key, t, u, level, lo, hi, who="reader"):
    """Check one read (caller holds lock): t the chk_t group sum or None, u
    the chk_u sum or None.  A rolled-back write in either is counted in
    rolled_back; otherwise t must lie within [lo, hi]."""
    checked_reads[0] += 1
    if (t is not None and t >= ROLLED_BACK) or u:
        rolled_back_by["unwatched" if key.startswith("chk:u:") else "watched"] += 1
        rolled_back.append("key %s: %s read %s from %s, which includes a rolled-back write"
                           % (key, who, "t=%s u=%s" % (t, u) if t is not None and u is not None
                              else (t if u is None else u), level))
        return
    if t is not None and not lo <= t <= hi:
        violations.append("key %s: %s read %d from %s, but %d commits had returned before "
                          "the read and %d were issued by its end" % (key, who, t, level, lo, hi))


def record_read(key, level, ms):
    """Levels and latencies of readers' reads (caller holds lock)."""
    levels[level] = levels.get(level, 0) + 1
    latencies.append(ms)
    if ms > slowest[0][0]:
        slowest[0] = (ms, now() - ms / 1000.0, key, level)
    if level == "l2" and fault_over_at[0] is not None and l2_back_at[0] is None:
        l2_back_at[0] = now()


def check_read(key, grp, value, level, lo, hi, ms):
    """Record and check a read of a group key (caller holds lock)."""
    record_read(key, level, ms)
    check_value(key, value, None, level, lo, hi)


def reader(dbname, seed):
    rnd = random.Random(seed)
    conn, mylife = open_conn(dbname, "chk-reader")
    if conn is None:
        return
    for n in range(MAX_READS_PER_READER):
        if stop.is_set():
            break
        if rnd.random() < 0.05:
            conn.close()
            conn, mylife = open_conn(dbname, "chk-reader")
            if conn is None:
                return
        key = random_key(rnd)
        grp = key_info(key)[1]
        l1_ttl = rnd.choice([None, 60, 0])
        with lock:
            lo = mylife.returned[grp] if grp is not None else 0
        t0 = time.monotonic()
        try:
            t, u, level = read_key(conn.cursor(), key, l1_ttl)
        except psycopg2.Error as e:
            if lost_to_crash(e, mylife):
                conn.close()
                with lock:
                    reads_lost_to_crash[0] += 1
                    reconnects[0] += 1
                conn, mylife = open_conn(dbname, "chk-reader")
                if conn is None:
                    return
                continue
            errors.append("reader (%.2fs, %s, life %d of %d, crashing %s): %s" % (now(), type(e).__name__, mylife.n, life[0].n, crashing[0], str(e).strip()))
            return
        ms = (time.monotonic() - t0) * 1000.0
        with lock:
            hi = mylife.issued[grp] if grp is not None else 0
            record_read(key, level, ms)
            check_value(key, t, u, level, lo, hi)
            if conn.notices:
                warnings_seen[0] += sum(1 for m in conn.notices if m.startswith("WARNING"))
                del conn.notices[:]
    conn.close()


def rr_reader(dbname, seed):
    """Reads in REPEATABLE READ transactions of 1-5 reads.  The snapshot is
    taken at the transaction's first statement, so the lower bound is what
    had returned before it; and every read of one group in one transaction
    must give the same sum."""
    rnd = random.Random(seed)
    conn, mylife = open_conn(dbname, "chk-rr-reader", autocommit=False)
    if conn is None:
        return
    conn.set_session(isolation_level="REPEATABLE READ")
    for n in range(MAX_READS_PER_READER):
        if stop.is_set():
            break
        with lock:
            lo_txn = list(mylife.returned)
        seen = {}
        try:
            for _ in range(rnd.randrange(1, 6)):
                key = random_key(rnd)
                grp = key_info(key)[1]
                t0 = time.monotonic()
                t, u, level = read_key(conn.cursor(), key, rnd.choice([None, 0]))
                ms = (time.monotonic() - t0) * 1000.0
                with lock:
                    rr_reads[0] += 1
                    record_read(key, level, ms)
                    hi = mylife.issued[grp] if grp is not None else 0
                    check_value(key, t, u, level, lo_txn[grp] if grp is not None else 0, hi,
                                who="REPEATABLE READ reader")
                    if t is not None and seen.setdefault(grp, t) != t:
                        violations.append("key %s: REPEATABLE READ reader read %d from %s after "
                                          "%d in the same transaction" % (key, t, level, seen[grp]))
            conn.commit()
        except psycopg2.Error as e:
            if lost_to_crash(e, mylife):
                conn.close()
                with lock:
                    reads_lost_to_crash[0] += 1
                    reconnects[0] += 1
                conn, mylife = open_conn(dbname, "chk-rr-reader", autocommit=False)
                if conn is None:
                    return
                conn.set_session(isolation_level="REPEATABLE READ")
                continue
            errors.append("REPEATABLE READ reader (%.2fs, %s, life %d of %d, crashing %s): %s" % (now(), type(e).__name__, mylife.n, life[0].n, crashing[0], str(e).strip()))
            return
        if rnd.random() < 0.05:
            conn.close()
            conn, mylife = open_conn(dbname, "chk-rr-reader", autocommit=False)
            if conn is None:
                return
            conn.set_session(isolation_level="REPEATABLE READ")
    conn.close()


def servers(cmd):
    subprocess.run(["bash", os.path.join(HERE, "servers.sh"), cmd], check=True,
                   stdout=subprocess.DEVNULL, timeout=60)


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


# ---------------------------------------------------------------------------
# A minimal Redis client (RESP over the unix socket), so that the controller
# can send many commands cheaply and see error replies.

class RedisReplyError(Exception):
    pass


class Redis:
    def __init__(self, path, timeout=2.0):
        self.path, self.timeout, self.sock, self.buf = path, timeout, None, b""

    def close(self):
        if self.sock is not None:
            self.sock.close()
        self.sock, self.buf = None, b""

    def _line(self):
        while b"\r\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("Redis closed the connection")
            self.buf += data
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("Redis closed the connection")
            self.buf += data
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _reply(self):
        line = self._line()
        t, rest = line[:1], line[1:]
        if t == b"+":
            return rest.decode()
        if t == b"-":
            return RedisReplyError(rest.decode())
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n + 2)[:-2]
        if t == b"*":
            n = int(rest)
            return None if n < 0 else [self._reply() for _ in range(n)]
        raise ConnectionError("bad RESP reply %r" % line)

    def __call__(self, *args):
        """Run a command; raises RedisReplyError on an error reply, OSError
        (or ConnectionError) when Redis cannot be reached in time."""
        parts = [b"*%d\r\n" % len(args)]
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            parts.append(b"$%d\r\n%s\r\n" % (len(a), a))
        try:
            if self.sock is None:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.settimeout(self.timeout)
                s.connect(self.path)
                self.sock = s
            self.sock.sendall(b"".join(parts))
            r = self._reply()
        except (OSError, ValueError):
            self.close()
            raise
        if isinstance(r, RedisReplyError):
            raise r
        return r


def redis_info(r, section, field):
    for line in r("INFO", section).decode().splitlines():
        if line.startswith(field + ":"):
            return int(line.split(":", 1)[1])
    return None


# ---------------------------------------------------------------------------
# The fault controllers.  Each runs in its own thread while readers and
# writers run; restoring actions go to ctx.cleanups and always run at the end.

COUNTERS = ["l1_hits", "l2_hits", "l2_misses", "computes", "redis_errors", "breaker_opened",
            "decode_failures", "stale_rejected", "rejected_fills", "hygiene_queued",
            "hygiene_done", "hygiene_dropped", "hygiene_retries", "redis_unlinked",
            "fill_waits", "fill_wait_timeouts", "invalidations", "bypasses"]


def namespace(dbname):
    """The Redis key namespace of dbname's sessions (see test/lib.sh's mlcache_ns)."""
    conn = connect(dbname)
    cur = conn.cursor()
    cur.execute("SELECT coalesce(nullif(current_setting('mlcache.key_prefix', true), ''), "
                "'mlcache:' || system_identifier || ':' || "
                "replace(replace(current_database(), '%', '%25'), ':', '%3A') || ':') "
                "FROM pg_control_system()")
    ns = cur.fetchone()[0]
    conn.close()
    return ns


def read_counters(conn):
    cur = conn.cursor()
    cur.execute("SELECT counter, value FROM mlcache.counters()")
    return dict(cur.fetchall())


class Ctx:
    def __init__(self, args):
        self.args = args
        self.seconds = args.seconds
        self.dbname = args.dbname
        self.sock = os.environ.get("MLCACHE_REDIS_SOCKET") or \
            os.path.join(os.environ["MLCACHE_TMP"], "redis.sock")
        self.prefix = namespace(args.dbname)
        self.cleanups = []
        self.start = time.monotonic()
        self.counter_base = {}
        self.counter_acc = {}
        self.crashes = []
        self.info = {}         # case-specific figures for the report

    def at(self, frac):
        """Wait until frac of the run has passed; False if the run stopped."""
        while time.monotonic() - self.start < frac * self.seconds:
            if stop.wait(0.02):
                return False
        return True

    def every(self, start, end, period):
        """Yield at start, then every period seconds, until end (fractions)."""
        if not self.at(start):
            return
        nxt = time.monotonic()
        while time.monotonic() - self.start < end * self.seconds and not stop.is_set():
            yield
            nxt += period
            while time.monotonic() < nxt:
                if stop.wait(min(0.02, max(0.0, nxt - time.monotonic()))):
                    return

    def fault_over(self):
        with lock:
            fault_over_at[0] = now()


def remove_dump(ctx):
    dump = os.path.join(os.environ["MLCACHE_TMP"], "redis", "dump.rdb")
    if os.path.exists(dump):
        os.remove(dump)


def fault_stop(ctx):
    ctx.cleanups.append(lambda: servers("resume-redis"))
    if not ctx.at(0.25):
        return
    servers("pause-redis")
    t = time.monotonic()
    note("Redis stopped (SIGSTOP)")
    ctx.at(0.6)
    servers("resume-redis")
    ctx.info["stopped_s"] = round(time.monotonic() - t, 2)
    note("Redis resumed (SIGCONT) after %.2f s" % ctx.info["stopped_s"])
    ctx.fault_over()


def fault_kill(ctx):
    ctx.cleanups.append(lambda: servers("start-redis"))
    if not ctx.at(0.3):
        return
    servers("kill-redis")
    t = time.monotonic()
    note("Redis killed (SIGKILL)")
    remove_dump(ctx)
    ctx.at(0.5)
    servers("start-redis")
    ctx.info["down_s"] = round(time.monotonic() - t, 2)
    ctx.info["keys_after_restart"] = Redis(ctx.sock)("DBSIZE")
    note("Redis restarted empty after %.2f s (DBSIZE %d)" % (ctx.info["down_s"],
                                                             ctx.info["keys_after_restart"]))
    ctx.fault_over()


def our_keys(r, ctx):
    return len(r("KEYS", ctx.prefix + "*"))


def fault_rdb(ctx):
    ctx.cleanups.append(lambda: remove_dump(ctx))
    ctx.cleanups.append(lambda: servers("start-redis"))
    r = Redis(ctx.sock)
    if not ctx.at(0.25):
        return
    with lock:
        commits_at_save = sum(life[0].returned)
    r("SAVE")
    ctx.info["saved_keys"] = our_keys(r, ctx)
    note("SAVE: snapshot with %d mlcache keys of this database" % ctx.info["saved_keys"])
    if not ctx.at(0.5):
        return
    with lock:
        ctx.info["commits_after_save"] = sum(life[0].returned) - commits_at_save
    servers("kill-redis")
    r.close()
    servers("start-redis")
    ctx.info["restored_keys"] = our_keys(r, ctx)
    note("Redis killed and restarted from the snapshot (%d mlcache keys restored, %d commits "
         "since the SAVE)" % (ctx.info["restored_keys"], ctx.info["commits_after_save"]))
    ctx.fault_over()


def fault_flushall(ctx):
    r = Redis(ctx.sock)
    n = 0
    for _ in ctx.every(0.2, 0.8, 0.25):
        r("FLUSHALL", "ASYNC" if n % 2 else "SYNC")
        n += 1
    ctx.info["flushes"] = n
    note("FLUSHALL %d times (SYNC and ASYNC alternately)" % n)
    ctx.fault_over()


def fault_maxmemory(ctx, policy):
    """maxmemory 1mb (below what an empty Redis with our clients already uses,
    so every write is refused with OOM, and allkeys-random first evicts
    everything); with allkeys-random, a second phase sets maxmemory just above
    the memory in use and keeps it under pressure with 16 kB filler values, so
    that random keys, mlcache's among them, are evicted while SETs succeed."""
    r = Redis(ctx.sock)

    def restore():
        rr = Redis(ctx.sock)
        rr("CONFIG", "SET", "maxmemory", "0")
        rr("CONFIG", "SET", "maxmemory-policy", "noeviction")
        cursor = b"0"
        for _ in range(1000):   # bounded: the filler keys, 1000 per step
            cursor, keys = rr("SCAN", cursor, "MATCH", "faults:filler:*", "COUNT", "1000")
            if keys:
                rr("UNLINK", *keys)
            if cursor == b"0":
                break
        rr.close()
    ctx.cleanups.append(restore)
    if not ctx.at(0.2):
        return
    evicted0 = redis_info(r, "stats", "evicted_keys")
    ctx.info["used_memory_before"] = redis_info(r, "memory", "used_memory")
    r("CONFIG", "SET", "maxmemory-policy", policy)
    r("CONFIG", "SET", "maxmemory", "1mb")
    note("maxmemory 1mb, %s (used_memory was %d bytes)" % (policy, ctx.info["used_memory_before"]))
    filler = b"x" * 16384
    phases = [(0.2, 0.75, None)] if policy == "noeviction" else [(0.2, 0.45, None), (0.45, 0.75, 1)]
    sets = ooms = 0
    for start, end, above in phases:
        if above:
            # Room for a few values: evictions without OOM.
            r("CONFIG", "SET", "maxmemory", "0")
            used = redis_info(r, "memory", "used_memory")
            r("CONFIG", "SET", "maxmemory", str(used + 256 * 1024))
            ctx.info["maxmemory_phase2"] = used + 256 * 1024
            note("maxmemory %d (256 kB above used_memory), %s, filler values keep it full"
                 % (used + 256 * 1024, policy))
        for _ in ctx.every(start, end, 0.02):
            try:
                r("SET", "faults:filler:%d" % sets, filler)
            except RedisReplyError as e:
                if not str(e).startswith("OOM"):
                    raise
                ooms += 1
            sets += 1
    ctx.info["evicted_keys"] = redis_info(r, "stats", "evicted_keys") - evicted0
    ctx.info["filler_ooms"], ctx.info["filler_sets"] = ooms, sets
    restore()
    note("maxmemory lifted: Redis evicted %d keys; %d of %d filler SETs got OOM"
         % (ctx.info["evicted_keys"], ooms, sets))
    ctx.fault_over()


def fault_client_kill(ctx):
    r = Redis(ctx.sock)
    rounds = killed = 0
    for _ in ctx.every(0.15, 0.75, 0.15):
        killed += r("CLIENT", "KILL", "TYPE", "normal")   # SKIPME yes: not this client
        rounds += 1
    ctx.info["kill_rounds"], ctx.info["clients_killed"] = rounds, killed
    note("CLIENT KILL TYPE normal %d times: %d connections killed" % (rounds, killed))
    ctx.fault_over()


def fault_foreign(ctx):
    r = Redis(ctx.sock)
    rnd = random.Random(ctx.args.seed + 7)
    rkeys = [ctx.prefix + k for k in cache_keys()]
    captured = {k: [] for k in rkeys}     # genuine values seen earlier, for replays
    kinds = {}
    for _ in ctx.every(0.1, 0.85, 0.03):
        k = rnd.choice(rkeys)
        cur = None
        try:
            cur = r("GET", k)
        except RedisReplyError:
            pass                          # another type: WRONGTYPE
        if isinstance(cur, bytes) and cur.startswith(b"MLC"):
            captured[k].append(cur)
            del captured[k][:-20]
        others = [v for kk, vs in captured.items() if kk != k for v in vs[-1:]]
        kind = rnd.choice(["garbage", "empty", "hash", "other-key", "replay", "truncated",
                           "flipped"])
        if kind == "garbage":
            r("SET", k, "not an mlcache value %d" % rnd.randrange(10 ** 6))
        elif kind == "empty":
            r("SET", k, "")
        elif kind == "hash":
            # In one step: a reader's fill may SET the key between a DEL and an HSET.
            r("EVAL", "redis.call('DEL', KEYS[1]) return redis.call('HSET', KEYS[1], 'f', 'v')",
              "1", k)
        elif kind == "other-key" and others:
            r("SET", k, rnd.choice(others))          # a valid envelope of another key
        elif kind == "replay" and len(captured[k]) > 1:
            r("SET", k, captured[k][0])              # an older genuine value of this key
        elif kind == "truncated" and captured[k]:
            r("SET", k, captured[k][-1][:50])
        elif kind == "flipped" and captured[k]:
            v = bytearray(captured[k][-1])
            i = rnd.randrange(len(v))
            v[i] ^= 1 << rnd.randrange(8)
            r("SET", k, bytes(v))
        else:
            r("SET", k, "\x00MLC foreign")
            kind = "garbage"
        kinds[kind] = kinds.get(kind, 0) + 1
    ctx.info["writes"] = kinds
    note("foreign values written: %s" % ", ".join("%s %d" % kv for kv in sorted(kinds.items())))
    ctx.fault_over()


def server_life_ended(conn):
    try:
        conn.cursor().execute("SELECT 1")
        return False
    except psycopg2.Error:
        return True


def wait_for(pred, seconds, step=0.05):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            v = pred()
            if v:
                return v
        except psycopg2.Error:
            pass
        time.sleep(step)
    return None


def crash_restart(ctx, pick_victim, what):
    """Kill a server process with SIGKILL (pick_victim(conn) gives its pid),
    let the postmaster's crash restart run, and start a new life.  Returns
    the seconds from the kill until the server accepted connections again."""
    with gate:
        crashing[0] = True
        end = time.monotonic() + 10
        while connecting[0] and time.monotonic() < end:
            gate.wait(0.05)
    newlife = None
    try:
        admin = connect(ctx.dbname)
        victim = pick_victim(admin)
        if victim is None:
            note("no victim found for %s: no crash" % what)
            return None
        pre = read_counters(admin)
        for k, v in pre.items():
            ctx.counter_acc[k] = ctx.counter_acc.get(k, 0) + v - ctx.counter_base.get(k, 0)
        ctx.counter_base = {}
        worker0 = ctx.worker_pid(admin)
        os.kill(victim, signal.SIGKILL)
        t_kill = time.monotonic()
        note("%s (pid %d) killed with SIGKILL" % (what, victim))
        # The old life is over once the postmaster has terminated our admin
        # backend; connections opened after that belong to the new life.
        if not wait_for(lambda: server_life_ended(admin), 30):
            errors.append("controller: the server did not crash-restart after %s was killed" % what)
            return None
        admin.close()
        conn = wait_for(lambda: connect(ctx.dbname), 60)
        if conn is None:
            errors.append("controller: the server did not come back within 60 s of the crash")
            return None
        up = time.monotonic() - t_kill
        cur = conn.cursor()
        cur.execute("SELECT grp, sum(v) FROM chk_t GROUP BY grp ORDER BY grp")
        sums = [int(s) for _, s in cur.fetchall()]
        old = life[0]
        newlife = Life(old.n + 1, sums)
        lost = sum(max(0, old.returned[g] - sums[g]) for g in range(GROUPS))
        unknown = sum(old.issued) - sum(old.returned)
        for g in range(GROUPS):
            if sums[g] > old.issued[g]:
                violations.append("after the crash restart group %d sums to %d, more than the "
                                  "%d increments issued" % (g, sums[g], old.issued[g]))
        worker = wait_for(lambda: ctx.worker_pid(conn) not in (None, worker0)
                          and ctx.worker_pid(conn), 30)
        info = {"what": what, "restart_s": round(up, 2), "lost_commits": lost,
                "unknown_commits": unknown,
                "worker_back_s": round(time.monotonic() - t_kill, 2) if worker else None}
        ctx.crashes.append(info)
        note("server back after %.2f s: %d returned commits lost by PostgreSQL "
             "(synchronous_commit = off), %d in flight (outcome unknown); worker %s"
             % (up, lost, unknown, "back (pid %d)" % worker if worker else "NOT back"))
        if not worker:
            errors.append("controller: the mlcache worker did not come back within 30 s")
        conn.close()
        return up
    finally:
        with gate:
            if newlife is not None:
                life[0] = newlife
                lives.append(newlife)
            crashing[0] = False
            gate.notify_all()


def worker_pid(conn):
    cur = conn.cursor()
    cur.execute("SELECT pid FROM pg_stat_activity WHERE backend_type = 'mlcache worker'")
    row = cur.fetchone()
    return row[0] if row else None


def fault_crash(ctx):
    def victim(admin):
        cur = admin.cursor()
        end = time.monotonic() + 3
        while time.monotonic() < end:
            cur.execute("SELECT pid FROM pg_stat_activity WHERE application_name = 'chk-writer' "
                        "AND datname = current_database() AND state = 'idle in transaction' "
                        "AND backend_xid IS NOT NULL LIMIT 1")
            row = cur.fetchone()
            if row:
                return row[0]
            time.sleep(0.005)
        cur.execute("SELECT pid FROM pg_stat_activity WHERE application_name = 'chk-writer' "
                    "AND datname = current_database() LIMIT 1")
        row = cur.fetchone()
        return row[0] if row else None

    points = [0.3, 0.65] if ctx.seconds >= 10 else [0.35]
    for p in points:
        if not ctx.at(p):
            return
        crash_restart(ctx, victim, "a writer's backend, idle in transaction,")
    ctx.fault_over()


def fault_worker_kill(ctx):
    state = {}

    def victim(admin):
        c = read_counters(admin)
        state["pending"] = c["hygiene_queued"] - c["hygiene_done"] - c["hygiene_dropped"]
        return state.get("stopped")

    def cont():
        if "stopped" in state:
            try:
                os.kill(state["stopped"], signal.SIGCONT)
            except ProcessLookupError:
                pass
    ctx.cleanups.append(cont)
    if not ctx.at(0.3):
        return
    conn = connect(ctx.dbname)
    pid = worker_pid(conn)
    conn.close()
    if pid is None:
        errors.append("controller: no mlcache worker in pg_stat_activity")
        return
    # Hold the worker so that clean-up work is pending when it dies.
    os.kill(pid, signal.SIGSTOP)
    state["stopped"] = pid
    note("mlcache worker (pid %d) stopped (SIGSTOP) while writers commit" % pid)
    if not ctx.at(0.4):
        return
    up = crash_restart(ctx, victim, "the mlcache worker")
    if up is None:
        return
    ctx.info["pending_at_kill"] = state.get("pending")
    # Clean-up queued after the restart must be delivered again.
    conn = wait_for(lambda: connect(ctx.dbname), 30)
    t = time.monotonic()
    done = wait_for(lambda: read_counters(conn)["hygiene_done"] > 0, 15)
    ctx.info["hygiene_resumed_s"] = round(time.monotonic() - t, 2) if done else None
    if not done:
        errors.append("controller: no Redis clean-up was delivered within 15 s of the restart")
    note("%d clean-ups were pending when the worker died (gone with the old shared memory; "
         "the new epoch makes those values unreachable); delivery %s"
         % (state.get("pending") or 0, "resumed" if done else "did NOT resume"))
    conn.close()
    ctx.fault_over()


def fault_cancel(ctx):
    """Reads cancelled by pg_cancel_backend or statement_timeout while Redis
    is stopped: each must end (answered, or SQLSTATE 57014) within 2 s."""
    admin = connect(ctx.dbname)

    def reset():
        c = connect(ctx.dbname)
        c.cursor().execute("ALTER SYSTEM RESET mlcache.redis_retry_interval")
        c.cursor().execute("SELECT pg_reload_conf()")
        c.close()
        servers("resume-redis")
    ctx.cleanups.append(reset)
    # Retry Redis every 10 ms (the minimum) instead of every second, so
    # that most reads really wait on the stopped Redis, not on the breaker.
    admin.cursor().execute("ALTER SYSTEM SET mlcache.redis_retry_interval = '10ms'")
    admin.cursor().execute("SELECT pg_reload_conf()")
    if not ctx.at(0.2):
        return
    servers("pause-redis")
    note("Redis stopped (SIGSTOP); mlcache.redis_retry_interval = 10ms")
    probe = connect(ctx.dbname, "chk-probe")
    ppid = probe.get_backend_pid()
    pcur = probe.cursor()
    rnd = random.Random(ctx.args.seed + 9)
    results = {"timeout": [], "cancel": []}   # (total ms, ms after the interrupt, outcome)
    n = 0
    for _ in ctx.every(0.22, 0.75, 0.03):    # back to back: ~40 ms each
        kind = rnd.choice(["timeout", "cancel"])
        n += 1
        grp = rnd.randrange(GROUPS)
        key = "chk:grp:%d" % grp
        with lock:
            lo = life[0].returned[grp]
        if kind == "timeout":
            pcur.execute("SET statement_timeout = '20ms'")
            timer = None
            interrupt_at = [0.020]
        else:
            interrupt_at = [None]
            t_start = [None]

            def cancel():
                interrupt_at[0] = time.monotonic() - t_start[0]
                admin.cursor().execute("SELECT pg_cancel_backend(%s)", (ppid,))
            timer = threading.Timer(0.015, cancel)
        t0 = time.monotonic()
        if timer:
            t_start[0] = t0
            timer.start()
        outcome = "answered"
        try:
            # l1_ttl 0: no L1, so the read goes to the stopped Redis.
            pcur.execute("SELECT mlcache.get(%s, %s, 0)::text::bigint, mlcache.last_level()",
                         (key, group_query(grp)))
            value, level = pcur.fetchone()
            ms = (time.monotonic() - t0) * 1000
            with lock:
                check_read(key, grp, value, level, lo, life[0].issued[grp], ms)
        except psycopg2.Error as e:
            ms = (time.monotonic() - t0) * 1000
            if e.pgcode == "57014":
                outcome = "cancelled"
            else:
                errors.append("probe (%s): SQLSTATE %s: %s" % (kind, e.pgcode, str(e).strip()))
                outcome = "error"
        if timer:
            timer.join(5)
        if kind == "timeout":
            pcur.execute("SET statement_timeout = 0")
        if outcome == "cancelled" and kind == "cancel" and interrupt_at[0] is None:
            errors.append("probe: cancelled before pg_cancel_backend was sent")
        after = ms - (interrupt_at[0] or 0) * 1000 if outcome == "cancelled" else None
        results[kind].append((ms, after, outcome))
        if ms > 2000:
            errors.append("probe (%s): the read took %.0f ms (bound: 2000 ms)" % (kind, ms))
        # A cancel that arrives after the read ended is harmless but could hit
        # the next statement: wait for it to be consumed.
        if kind == "cancel" and outcome == "answered":
            try:
                pcur.execute("SELECT 1")
            except psycopg2.Error as e:
                if e.pgcode != "57014":
                    errors.append("probe: %s" % e)
    servers("resume-redis")
    note("Redis resumed (SIGCONT)")
    probe.close()
    admin.close()
    summary = {}
    for kind, rs in results.items():
        cancelled = [r for r in rs if r[2] == "cancelled"]
        summary[kind] = {
            "probes": len(rs), "cancelled": len(cancelled),
            "answered": sum(1 for r in rs if r[2] == "answered"),
            "max_ms": round(max([r[0] for r in rs] or [0]), 1),
            "max_after_interrupt_ms": round(max([r[1] for r in cancelled] or [0]), 1),
            "delayed_by_redis": sum(1 for r in rs if r[0] >= 40)}
    ctx.info["probes"] = summary
    for kind, s in summary.items():
        note("%s probes: %d (%d cancelled with 57014, %d answered, %d held >= 40 ms by Redis); "
             "slowest %.1f ms, slowest cancel %.1f ms after the interrupt"
             % (kind, s["probes"], s["cancelled"], s["answered"], s["delayed_by_redis"],
                s["max_ms"], s["max_after_interrupt_ms"]))
    if sum(s["cancelled"] for s in summary.values()) == 0:
        errors.append("probe: no read was cancelled: the probes proved nothing")
    ctx.fault_over()


CONTROLLERS = {
    "stop": fault_stop,
    "kill": fault_kill,
    "rdb": fault_rdb,
    "flushall": fault_flushall,
    "maxmemory-random": lambda ctx: fault_maxmemory(ctx, "allkeys-random"),
    "maxmemory-noeviction": lambda ctx: fault_maxmemory(ctx, "noeviction"),
    "client-kill": fault_client_kill,
    "foreign": fault_foreign,
    "crash": fault_crash,
    "cancel": fault_cancel,
    "worker-kill": fault_worker_kill,
}


def run_controller(fn, ctx):
    try:
        fn(ctx)
    except Exception as e:   # a controller failure fails the run, loudly
        errors.append("fault controller: %s: %s" % (type(e).__name__, e))


def counter(dbname, name):
    conn = connect(dbname)
    cur = conn.cursor()
    cur.execute("SELECT value FROM mlcache.counters() WHERE counter = %s", (name,))
    v = cur.fetchone()[0]
    conn.close()
    return v


def percentile(values, p):
    if not values:
        return 0.0
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100.0 * (len(s) - 1))))]


def wait_breaker_closed(dbname, seconds):
    """Wait (bounded) until Redis answers and the breaker is closed, so that a
    case does not start inside the previous case's backoff.  Reading
    mlcache.stats talks to Redis once the breaker is half-open, which closes
    it.  Returns the seconds waited, or None if it stayed open."""
    conn = connect(dbname)
    cur = conn.cursor()
    t = time.monotonic()
    try:
        while time.monotonic() - t < seconds:
            cur.execute("SELECT breaker_state FROM mlcache.stats")
            if cur.fetchone()[0] == "closed":
                return round(time.monotonic() - t, 2)
            time.sleep(0.1)
        return None
    finally:
        conn.close()


def final_checks(ctx, drain_seconds):
    """With the writers stopped: the table against the counts (nothing lost
    beyond what a crash lost), a cached read of every key against the table,
    and the Redis clean-up drained.  Returns a dict for the report."""
    out = {}
    conn = wait_for(lambda: connect(ctx.dbname), 30)
    if conn is None:
        errors.append("final: cannot connect")
        return out
    cur = conn.cursor()
    cur.execute("SELECT grp, sum(v) FROM chk_t GROUP BY grp ORDER BY grp")
    sums = [int(s) for _, s in cur.fetchall()]
    cur_life = life[0]
    missing = sum(max(0, cur_life.returned[g] - sums[g]) for g in range(GROUPS))
    phantom = sum(max(0, sums[g] - cur_life.issued[g]) for g in range(GROUPS))
    out["missing_commits"] = missing
    if missing or phantom:
        violations.append("final: the table has %d returned increments missing and %d never "
                          "issued (sums %s, returned %s, issued %s)"
                          % (missing, phantom, sums, cur_life.returned, cur_life.issued))
    cur.execute("SELECT coalesce(sum(v), 0) FROM chk_u")
    u_sum = int(cur.fetchone()[0])
    if u_sum != 0:
        violations.append("final: chk_u sums to %d: a doomed writer's write was committed" % u_sum)
    bad = 0
    for rep in range(2):
        for key in cache_keys():
            g = key_info(key)[1]
            t, u, level = read_key(cur, key)
            want_t = sums[g] if g is not None else None
            if (t is not None and t >= ROLLED_BACK) or u:
                bad += 1
                with lock:
                    check_value(key, t, u, level, 0, 0, who="final read")
            elif t != want_t:
                bad += 1
                violations.append("final: key %s read %s from %s, the table says %s"
                                  % (key, t, level, want_t))
    out["final_reads_ok"] = bad == 0
    t = time.monotonic()
    pending = None
    while time.monotonic() - t < drain_seconds:
        c = read_counters(conn)
        pending = c["hygiene_queued"] - c["hygiene_done"] - c["hygiene_dropped"]
        if pending <= 0:
            break
        time.sleep(0.05)
    out["hygiene_pending_end"] = pending
    out["hygiene_drain_s"] = round(time.monotonic() - t, 2)
    cur.execute("SELECT breaker_state FROM mlcache.stats")
    out["breaker_state"] = cur.fetchone()[0]
    counters = read_counters(conn)
    out["counters"] = {k: ctx.counter_acc.get(k, 0) + counters.get(k, 0) - ctx.counter_base.get(k, 0)
                       for k in COUNTERS}
    conn.close()
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="fault modes:\n" + "\n".join(
                                     "  %-22s %s" % kv for kv in FAULTS.items()))
    ap.add_argument("--dbname", default="mlcache_check")
    ap.add_argument("--seconds", type=float, default=6.0)
    ap.add_argument("--writers", type=int, default=3)
    ap.add_argument("--readers", type=int, default=4)
    ap.add_argument("--doomed-writers", type=int, default=2,
                    help="writers of chk_u that always roll back (see above)")
    ap.add_argument("--rr-readers", type=int, default=1,
                    help="readers in REPEATABLE READ transactions")
    ap.add_argument("--fault", choices=list(FAULTS), default="none")
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--writer-pause-ms", type=float, default=None,
                    help="writers pause up to this long between transactions (default: 0 for "
                    "--fault none and redis, else 4, so that cached values live long enough "
                    "to be read)")
    ap.add_argument("--drain-seconds", type=float, default=10.0,
                    help="how long to wait at the end for the Redis clean-up to drain")
    ap.add_argument("--result", help="write a JSON summary to this file")
    ap.add_argument("--label", help="the case's name in the JSON summary")
    args = ap.parse_args()
    if args.writer_pause_ms is None:
        args.writer_pause_ms = 0 if args.fault in ("none", "redis") else 4
    crash_mode[0] = args.fault in CRASH_FAULTS

    admin = psycopg2.connect(dbname="postgres")
    admin.autocommit = True
    admin.cursor().execute("DROP DATABASE IF EXISTS %s" % args.dbname)
    admin.cursor().execute("CREATE DATABASE %s" % args.dbname)
    admin.close()
    setup(args.dbname)
    ctx = Ctx(args)
    ctx.worker_pid = worker_pid
    if args.fault in CONTROLLERS:
        waited = wait_breaker_closed(args.dbname, 15)
        if waited is None:
            print("  the circuit breaker was still open after 15 s; starting anyway", flush=True)
        elif waited > 0.2:
            print("  waited %.1f s for the circuit breaker to close" % waited, flush=True)
        ctx.info["breaker_wait_s"] = waited
    c = connect(args.dbname)
    ctx.counter_base = read_counters(c)
    c.close()
    errors0 = ctx.counter_base["redis_errors"]

    print("coherence check: %d writers, %d doomed writers, %d readers, %d REPEATABLE READ "
          "readers, %.1f s, fault=%s, seed=%d"
          % (args.writers, args.doomed_writers, args.readers, args.rr_readers, args.seconds,
             args.fault, args.seed), flush=True)
    T0[0] = time.monotonic()
    ctx.start = T0[0]
    threads = [threading.Thread(target=writer, args=(args.dbname, args.seed + i,
                                                     args.writer_pause_ms,
                                                     i == 0 and args.fault == "crash"))
               for i in range(args.writers)]
    threads += [threading.Thread(target=reader, args=(args.dbname, args.seed + 100 + i))
                for i in range(args.readers)]
    threads += [threading.Thread(target=doomed_writer, args=(args.dbname, args.seed + 200 + i,
                                                            args.writer_pause_ms))
                for i in range(args.doomed_writers)]
    threads += [threading.Thread(target=rr_reader, args=(args.dbname, args.seed + 300 + i))
                for i in range(args.rr_readers)]
    if args.fault == "redis":
        threads.append(threading.Thread(target=redis_faults, args=(args.seconds,)))
    elif args.fault in CONTROLLERS:
        threads.append(threading.Thread(target=run_controller, args=(CONTROLLERS[args.fault], ctx)))
    for t in threads:
        t.start()
    deadline = time.monotonic() + args.seconds
    while time.monotonic() < deadline and not errors and not violations:
        time.sleep(0.05)
    stop.set()
    with gate:
        gate.notify_all()
    for t in threads:
        t.join(timeout=30)
    if any(t.is_alive() for t in threads):
        errors.append("a checker thread did not finish within 30 s of the stop")
    for fn in reversed(ctx.cleanups):
        try:
            fn()
        except Exception as e:
            errors.append("clean-up: %s: %s" % (type(e).__name__, e))

    final = {}
    if args.fault not in ("none", "redis") or args.result:
        final = final_checks(ctx, args.drain_seconds)
    reads = sum(levels.values())
    cached = levels.get("l1", 0) + levels.get("l2", 0)
    commits = sum(sum(l.returned) - sum(l.base) for l in lives)
    if final.get("counters"):
        new_errors = final["counters"]["redis_errors"]
    else:
        new_errors = counter(args.dbname, "redis_errors") - errors0
    print("  reads: %d (%s); commits: %d; slowest read: %.1f ms; redis_errors: +%d"
          % (reads, ", ".join("%s %d" % kv for kv in sorted(levels.items())),
             commits, max(latencies or [0]), new_errors))
    if final:
        print("  slowest read began at %.2f s: %s, answered by %s" % slowest[0][1:])
    if final:
        cn = final["counters"]
        print("  p99 read: %.1f ms; breaker_opened: +%d; decode_failures: +%d; stale_rejected: +%d;"
              " WARNINGs to readers: %d; breaker now %s; clean-up pending at the end: %s"
              % (percentile(latencies, 99), cn["breaker_opened"], cn["decode_failures"],
                 cn["stale_rejected"], warnings_seen[0], final["breaker_state"],
                 final["hygiene_pending_end"]))
        if l2_back_at[0] is not None:
            print("  first L2 hit %.2f s after the fault ended" % (l2_back_at[0] - fault_over_at[0]))
    print("  %d rolled-back values seen (watched keys %d, unwatched keys %d) in %d reads checked "
          "(%d REPEATABLE READ); doomed writers computed %d values with their own uncommitted rows"
          % (len(rolled_back), rolled_back_by["watched"], rolled_back_by["unwatched"],
             checked_reads[0], rr_reads[0], uncommitted_computes[0]))
    for v in violations[:10]:
        print("  STALE: " + v)
    for v in rolled_back[:10]:
        print("  ROLLED BACK: " + v)
    for e in errors[:10]:
        print("  ERROR: " + e)
    if cached == 0:
        print("  no read was answered by the cache: the check proved nothing")
    proved_g3 = args.doomed_writers == 0 or uncommitted_computes[0] > 0
    if not proved_g3:
        print("  no doomed writer computed a value with its uncommitted rows: the rollback check "
              "proved nothing")
    ok = not violations and not rolled_back and not errors and cached > 0 and commits > 0 \
        and proved_g3
    print("coherence check: %s (%d stale reads, %d rolled-back values seen, %d errors)"
          % ("passed" if ok else "FAILED", len(violations), len(rolled_back), len(errors)),
          flush=True)
    if args.result:
        lost_by_pg = sum(c["lost_commits"] for c in ctx.crashes)
        unknown = sum(c["unknown_commits"] for c in ctx.crashes)
        summary = {
            "label": args.label or args.fault, "fault": args.fault,
            "description": FAULTS[args.fault], "seconds": args.seconds, "seed": args.seed,
            "ok": ok, "reads": reads, "levels": levels, "commits": commits,
            "stale_reads": len(violations),
            "rolled_back_values": len(rolled_back), "rolled_back_by_key_kind": rolled_back_by,
            "rolled_back_examples": rolled_back[:10],
            "reads_checked": checked_reads[0], "rr_reads": rr_reads[0],
            "uncommitted_computes": uncommitted_computes[0],
            "reader_errors": sum(1 for e in errors if e.startswith(("reader", "probe"))),
            "other_errors": sum(1 for e in errors if not e.startswith(("reader", "probe"))),
            "violations": violations[:10], "errors": errors[:10],
            "max_read_ms": round(max(latencies or [0]), 1),
            "slowest_read": {"ms": round(slowest[0][0], 1), "began_at_s": round(slowest[0][1], 2),
                             "key": slowest[0][2], "level": slowest[0][3]},
            "p99_read_ms": round(percentile(latencies, 99), 1),
            "warnings_to_readers": warnings_seen[0],
            "reads_lost_to_crash": reads_lost_to_crash[0], "reconnects": reconnects[0],
            "l2_back_after_s": (round(l2_back_at[0] - fault_over_at[0], 2)
                                if l2_back_at[0] is not None else None),
            "fault_over_at_s": fault_over_at[0],
            "crashes": ctx.crashes, "lost_by_postgres": lost_by_pg,
            "unknown_outcome": unknown, "info": ctx.info, "notes": notes,
        }
        summary.update(final)
        with open(args.result, "w") as f:
            json.dump(summary, f, indent=1, sort_keys=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
