#!/usr/bin/python3
"""demo/workload.py: the LMS dashboard demo that demo/demo.sh runs (servers up, database created).

Sets up the LMS pack in database DB, warms it (warm() over lms_setup's warm queries, followed
batch by batch in mlcache.warm_tasks, and lms_warm_teacher), runs a dashboard workload (reader threads doing
Zipf-distributed mlcache.fetch() calls, one writer changing grades in bursts), checks a sample
of cached reads against the live computation, and prints hit rates, latencies, mlcache.stats
(with the overall hit rate, mlcache.stats.hit_rate) and mlcache.health().  Writes the latency samples for demo/latency.gnuplot to DATADIR.

Usage: /usr/bin/python3 demo/workload.py DB DATADIR
Knobs (environment): SCALE (2), DEMO_SECONDS (60), DEMO_MAX_READS (2000000), DEMO_READERS (4),
DEMO_READ_RATE (reads per second over all readers, 1000; 0: as fast as they can),
DEMO_CHECK_PERCENT (5), DEMO_ZIPF_S (1.1), DEMO_WRITE_RATE (grade changes per second during a
burst, 20), DEMO_BURST (seconds of grading, 2), DEMO_PAUSE (seconds between bursts, 4),
DEMO_SEED (1).  Exit status: 0 on success, 1 if a sampled read differed from the live value, a
session failed, the views never became fresh or health() is not ok.
"""
import bisect
import json
import math
import os
import random
import shutil
import sys
import threading
import time

import psycopg2


def knob(name, default, kind=int, lo=None):
    raw = os.environ.get(name, "")
    try:
        v = kind(raw) if raw != "" else default
    except ValueError:
        sys.exit(f"demo: {name}={raw!r} is not a valid {kind.__name__}")
    if lo is not None and v < lo:
        sys.exit(f"demo: {name} must be at least {lo}")
    return v


SCALE = knob("SCALE", 2, int, 1)
SECONDS = knob("DEMO_SECONDS", 60, float, 1)
MAX_READS = knob("DEMO_MAX_READS", 2_000_000, int, 1)
READERS = knob("DEMO_READERS", 4, int, 1)
READ_RATE = knob("DEMO_READ_RATE", 1000.0, float, 0)
CHECK_RATE = knob("DEMO_CHECK_PERCENT", 5.0, float, 0) / 100.0
ZIPF_S = knob("DEMO_ZIPF_S", 1.1, float, 0)
WRITE_RATE = knob("DEMO_WRITE_RATE", 20.0, float, 0)
BURST = knob("DEMO_BURST", 2.0, float, 0)
PAUSE = knob("DEMO_PAUSE", 4.0, float, 0)
SEED = knob("DEMO_SEED", 1, int)
VIEW_WAIT = 60  # seconds the views get to become fresh after lms_setup

# What the dashboard reads, with its share of the reads and its live (uncached) twin.
DEFINITIONS = [
    ("assignment_stats", 0.50, "mlcache.lms_assignment_stats_live"),
    ("analytics_student", 0.35, "mlcache.lms_analytics_student_live"),
    ("analytics_engagement", 0.15, "mlcache.lms_analytics_engagement_live"),
]
LEVELS = ["l1", "l2", "l3", "compute", "stale"]  # what last_level() can say
FETCH_SQL = "SELECT mlcache.fetch(%s, %s)::text, mlcache.last_level()"

TTY = sys.stdout.isatty()
BOLD, DIM, RED, GREEN, RESET = (("\033[1m", "\033[2m", "\033[31m", "\033[32m", "\033[0m")
                                if TTY and os.environ.get("TERM", "dumb") != "dumb" else ("",) * 5)


def out(s=""):
    print(s, flush=True)


def header(s):
    out()
    out(f"{BOLD}== {s}{RESET}")


def fmt_int(n):
    return f"{n:,}"


def fmt_ms(sec):
    if sec is None:
        return "-"
    ms = sec * 1000.0
    return f"{ms:.3f}" if ms < 1 else f"{ms:.2f}" if ms < 100 else f"{ms:.0f}"


def pct(a, b):
    return "-" if not b else f"{100.0 * a / b:.1f}%"


def table(rows, head, align=None, indent="   "):
    """Print rows (lists of str) under head, columns aligned; align: 'l'/'r' per column."""
    align = align or ["l"] + ["r"] * (len(head) - 1)
    w = [max(len(str(r[i])) for r in [head] + rows) for i in range(len(head))]
    plain = not any(head)  # no header: just the aligned rows

    def line(r):
        return indent + "  ".join(str(c).ljust(w[i]) if align[i] == "l" else str(c).rjust(w[i])
                                  for i, c in enumerate(r)).rstrip()

    if not plain:
        out(line(head))
        out(indent + "  ".join("-" * x for x in w))
    for r in rows:
        out(line(r))


def quantile(sorted_xs, q):
    """Nearest-rank quantile of a sorted list; None if empty."""
    if not sorted_xs:
        return None
    return sorted_xs[min(len(sorted_xs) - 1, max(0, math.ceil(q * len(sorted_xs)) - 1))]


class Zipf:
    """Zipf(s) over a list of items: rank k has weight 1/k^s; ranks are given to the items in a
    seeded random order, so the hot entities are spread over the id range."""

    def __init__(self, items, s, rng):
        self.items = list(items)
        rng.shuffle(self.items)
        self.cum = []
        total = 0.0
        for k in range(1, len(self.items) + 1):
            total += 1.0 / k ** s
            self.cum.append(total)
        self.total = total

    def sample(self, rng):
        i = bisect.bisect_left(self.cum, rng.random() * self.total)
        return self.items[min(i, len(self.items) - 1)]

    def top_share(self, n):
        return self.cum[min(n, len(self.cum)) - 1] / self.total


class WriteTracker:
    """Per-entity counts of writes begun (before the UPDATE is sent) and done (after COMMIT
    returned).  A sampled read of an entity is comparable with the live value computed right
    after it only if no write was in flight when the read began and none began until the live
    computation ended: then every commit touching the entity returned before the read began."""

    def __init__(self):
        self.lock = threading.Lock()
        self.begun = {}
        self.done = {}

    def begin(self, ents):
        with self.lock:
            for e in ents:
                self.begun[e] = self.begun.get(e, 0) + 1

    def finish(self, ents):
        with self.lock:
            for e in ents:
                self.done[e] = self.done.get(e, 0) + 1

    def snapshot(self, e):
        with self.lock:
            return self.begun.get(e, 0), self.done.get(e, 0)


class Shared:
    def __init__(self):
        self.stop = threading.Event()
        self.t0 = None
        self.errors = []
        self.tracker = WriteTracker()
        self.elock = threading.Lock()
        self.finished = threading.Semaphore(0)  # a reader has stopped reading
        self.release = threading.Event()        # readers may disconnect

    def fail(self, who, exc):
        with self.elock:
            self.errors.append(f"{who}: {type(exc).__name__}: {str(exc).strip()}")
        self.stop.set()


class Reader(threading.Thread):
    def __init__(self, n, db, sh, pickers, seed):
        super().__init__(name=f"reader {n}", daemon=True)
        self.n, self.db, self.sh, self.pickers = n, db, sh, pickers
        self.rng = random.Random(seed)
        self.reads = 0
        self.lat = {(d, lv): [] for d, _, _ in DEFINITIONS for lv in LEVELS}
        self.live = {d: [] for d, _, _ in DEFINITIONS}      # lms_<name>_live()
        self.prepared = {d: [] for d, _, _ in DEFINITIONS}  # the definition's query, prepared
        self.per_sec = []  # per second since start: {level: reads}
        self.checked = {lv: 0 for lv in LEVELS}
        self.raced = 0
        self.differed = []

    def pick(self):
        u = self.rng.random()
        for name, share, live in DEFINITIONS:
            if u < share:
                break
            u -= share
        return name, live, self.pickers[name].sample(self.rng)

    def run(self):
        conn = None
        try:
            conn = psycopg2.connect(dbname=self.db, application_name=f"mlcache demo {self.name}")
            conn.autocommit = True  # every statement its own READ COMMITTED transaction
            cur = conn.cursor()
            # The definitions' own queries, prepared: what the application would run uncached.
            cur.execute("SELECT name, query, param_types::text[] FROM mlcache.definitions "
                        "WHERE name = ANY(%s)", ([d for d, _, _ in DEFINITIONS],))
            for name, query, types in cur.fetchall():
                cur.execute(f"PREPARE live_{name}({', '.join(types)}) AS {query}")
            tracker, stop, clock = self.sh.tracker, self.sh.stop, time.perf_counter
            gap = READERS / READ_RATE if READ_RATE > 0 else 0.0
            nxt = clock()
            while not stop.is_set():
                if gap:
                    nxt += gap
                    wait = nxt - clock()
                    if wait > 0:
                        time.sleep(wait)
                    elif wait < -1.0:  # far behind (a slow phase): do not burst to catch up
                        nxt = clock()
                name, live_fn, eid = self.pick()
                check = self.rng.random() < CHECK_RATE
                if check:
                    b0, d0 = tracker.snapshot((name, eid))
                t = clock()
                cur.execute(FETCH_SQL, (name, eid))
                value, level = cur.fetchone()
                t1 = clock()
                self.lat[(name, level)].append(t1 - t)
                sec = int(t1 - self.sh.t0)
                while len(self.per_sec) <= sec:
                    self.per_sec.append(dict.fromkeys(LEVELS, 0))
                self.per_sec[sec][level] += 1
                self.reads += 1
                if check:
                    t = clock()
                    cur.execute(f"SELECT {live_fn}(%s)::text", (eid,))
                    live = cur.fetchone()[0]
                    self.live[name].append(clock() - t)
                    b1, _ = tracker.snapshot((name, eid))
                    t = clock()
                    cur.execute(f"EXECUTE live_{name}(%s)", (eid,))
                    cur.fetchone()
                    self.prepared[name].append(clock() - t)
                    if b0 != d0 or b1 != b0:
                        self.raced += 1
                    else:
                        same = value == live
                        if not same:  # equal jsonb can print differently (1.0 vs 1.00)
                            cur.execute("SELECT %s::jsonb = %s::jsonb", (value, live))
                            same = cur.fetchone()[0]
                        if same:
                            self.checked[level] += 1
                        else:
                            self.differed.append((name, eid, level, value, live))
        except Exception as e:  # noqa: BLE001 - reported, makes the demo fail
            self.sh.fail(self.name, e)
        finally:
            # Keep the session (and its L1, which mlcache.stats counts) until the report has
            # read the statistics.
            self.sh.finished.release()
            self.sh.release.wait(60)
            if conn is not None:
                conn.close()


class Writer(threading.Thread):
    """Grade changes in bursts (a teacher grading a batch), then a pause: each one a transaction
    that updates a submission's score and records the grade, as an LMS does."""

    def __init__(self, db, sh, assignment_zipf, seed):
        super().__init__(name="writer", daemon=True)
        self.db, self.sh, self.azipf = db, sh, assignment_zipf
        self.rng = random.Random(seed)
        self.commits = 0
        self.lat = []
        self.bursts = []  # (start, end) seconds since the workload began

    def run(self):
        try:
            conn = psycopg2.connect(dbname=self.db, application_name="mlcache demo writer")
            cur = conn.cursor()
            cur.execute("""SELECT s.id, s.assignment_id, s.student_id, a.max_score, a.author_id
                             FROM lms.submissions s JOIN lms.assignments a ON a.id = s.assignment_id
                            WHERE s.score IS NOT NULL""")
            subs = {}
            for sid, aid, uid, max_score, author in cur.fetchall():
                subs.setdefault(aid, []).append((sid, uid, float(max_score), author))
            conn.commit()
            if WRITE_RATE <= 0 or not subs:
                return
            sh, clock, gap = self.sh, time.perf_counter, 1.0 / WRITE_RATE
            sh.stop.wait(PAUSE)  # quiet first: the cold cache fills from the fresh views
            while not sh.stop.is_set():
                start = clock()
                burst_end = start + BURST
                nxt = start
                while not sh.stop.is_set() and clock() < burst_end:
                    aid = self.azipf.sample(self.rng)
                    if aid not in subs:  # an assignment nobody submitted to yet
                        continue
                    sid, uid, max_score, author = self.rng.choice(subs[aid])
                    score = round(max_score * self.rng.uniform(0.35, 1.0), 1)
                    ents = [("assignment_stats", aid), ("analytics_student", uid)]
                    sh.tracker.begin(ents)
                    t = clock()
                    cur.execute("UPDATE lms.submissions SET score = %s WHERE id = %s", (score, sid))
                    cur.execute("""INSERT INTO lms.grades (submission_id, assignment_id, student_id,
                                                           score, graded_by)
                                   VALUES (%s, %s, %s, %s, %s)""", (sid, aid, uid, score, author))
                    conn.commit()
                    self.lat.append(clock() - t)
                    sh.tracker.finish(ents)
                    self.commits += 1
                    nxt += gap
                    time.sleep(max(0.0, nxt - clock()))
                self.bursts.append((start - sh.t0, clock() - sh.t0))
                sh.stop.wait(PAUSE)
            conn.close()
        except Exception as e:  # noqa: BLE001
            self.sh.fail(self.name, e)


def setup(db):
    """Create the extension and the LMS pack, wait for the views; return ({definition: ids},
    the views' refresh count so far), or None if the views did not become fresh."""
    header(f"1. Setup: database {db}, the LMS pack at scale {SCALE}")
    conn = psycopg2.connect(dbname=db, application_name="mlcache demo setup")
    conn.autocommit = True
    cur = conn.cursor()

    def step(label, sql, args=None):
        out(f"   {label:<46}{DIM}{sql}{RESET}" if TTY else f"   {label:<46}{sql}")
        t = time.perf_counter()
        cur.execute(sql, args)
        r = cur.fetchone() if cur.description else None
        return (r[0] if r else None), time.perf_counter() - t

    step("the extension and its LMS pack", "CREATE EXTENSION mlcache_lms CASCADE")
    step("the canonical LMS tables", "SELECT mlcache.lms_create_schema('lms')")
    counts, dt = step("deterministic data", f"SELECT mlcache.lms_generate(scale => {SCALE})")
    out(f"   {'':<46}{dt:.1f} s")
    res, dt = step("views, definitions, watches", "SELECT mlcache.lms_setup('lms')")
    out(f"   {'':<46}{dt:.1f} s")
    out()
    names = ["users", "courses", "enrollments", "assignments", "submissions", "grades",
             "materials", "material_progress", "material_views", "reports"]
    table([[n, fmt_int(counts[n])] for n in names], ["table", "rows"])
    out()
    table([[d["name"], d["key"], f'{d["l1_ttl"]} s / {d["l2_ttl"]} s', d["l3_view"] or "-"]
           for d in res["definitions"]],
          ["definition", "key", "TTL L1 / L2", "L3 view"], ["l", "l", "r", "l"])
    out(f"   {len(res['watches'])} tables watched: "
        + ", ".join(w["table"].split(".")[-1] for w in res["watches"]))

    out()
    t = time.perf_counter()
    state = []
    while time.perf_counter() - t < VIEW_WAIT:
        cur.execute("SELECT view::text, state, refreshes, duration_ms FROM mlcache.views ORDER BY 1")
        state = cur.fetchall()
        if state and all(s == "fresh" for _, s, _, _ in state):
            break
        time.sleep(0.1)
    waited = time.perf_counter() - t
    ok = bool(state) and all(s == "fresh" for _, s, _, _ in state)
    out("   waiting for the refresher to fill the L3 views: "
        + (f"{GREEN}fresh{RESET} after {waited:.1f} s" if ok else f"{RED}not fresh after {VIEW_WAIT} s{RESET}"))
    table([[v, s, str(n), f"{d:.0f} ms" if d is not None else "-"] for v, s, n, d in state],
          ["mlcache.views", "state", "refreshes", "refresh took"], ["l", "l", "r", "r"])
    if not ok:
        return None

    cur.execute("SELECT array_agg(id ORDER BY id) FROM lms.assignments")
    assignments = cur.fetchone()[0]
    cur.execute("SELECT array_agg(id ORDER BY id) FROM lms.users WHERE NOT is_teacher")
    students = cur.fetchone()[0]
    cur.execute("SELECT array_agg(id ORDER BY id) FROM lms.courses")
    courses = cur.fetchone()[0]
    # Start from an empty cache, warm it as the daily job would, then zero the counters, so
    # what follows is the workload's alone.
    cur.execute("SELECT mlcache.clear()")
    warm(cur)
    cur.execute("SELECT mlcache.reset_stats()")
    conn.close()
    return {"assignment_stats": assignments, "analytics_student": students,
            "analytics_engagement": courses}, sum(n for _, _, n, _ in state)


def warm(cur):
    """Warm before peak hours: warm() over lms_setup's warm queries (queued for the worker when
    the estimate is over mlcache.warm_sync_limit, then followed batch by batch in
    mlcache.warm_tasks), and a teacher's dashboard at login (lms_warm_teacher)."""
    out()
    header("1b. Warming before peak hours")
    cur.execute("SELECT definition, count(*) FROM mlcache._warm_tasks(NULL::text[]) GROUP BY 1 ORDER BY 1")
    table([[d, fmt_int(n)] for d, n in cur.fetchall()], ["warm query of", "parameter sets"], ["l", "r"])
    out(f"   {DIM}(lms_setup's warm queries: recent assignments, students active in the last day of the "
        f"data, their courses){RESET}")
    t = time.perf_counter()
    cur.execute("SELECT mlcache.warm()")
    res = cur.fetchone()[0]
    out(f"   SELECT mlcache.warm() -> {json.dumps(res)}  ({time.perf_counter() - t:.1f} s)")
    out(f"   {DIM}(in the call: the estimate, from recorded compute times, is under mlcache.warm_sync_limit){RESET}")
    # The same through the worker's queue, as when the estimate is over the limit: one job,
    # batches of 200, each batch one transaction in the worker.
    cur.execute("SELECT mlcache.clear()")
    cur.execute("SET mlcache.warm_sync_limit = 0")
    t = time.perf_counter()
    cur.execute("SELECT mlcache.warm(NULL, 200)")
    res = cur.fetchone()[0]
    cur.execute("RESET mlcache.warm_sync_limit")
    out(f"   again, cache cleared, with SET mlcache.warm_sync_limit = 0 (queued):")
    out(f"   SELECT mlcache.warm(NULL, 200) -> {json.dumps(res)}")
    job = res.get("job")
    if job is not None:
        last = None
        while time.perf_counter() - t < VIEW_WAIT:
            cur.execute("SELECT count(*) FILTER (WHERE state = 'done'), count(*),"
                        " count(DISTINCT batch) FILTER (WHERE state = 'done'), max(batch),"
                        " count(*) FILTER (WHERE state = 'failed')"
                        " FROM mlcache.warm_tasks WHERE job = %s", (job,))
            done, total, bdone, batches, failed = cur.fetchone()
            if (done, failed) != last:
                out(f"   mlcache.warm_tasks, job {job}: {fmt_int(done)}/{fmt_int(total)} tasks done, "
                    f"{bdone}/{batches} batches" + (f", {failed} failed" if failed else "")
                    + f"  ({time.perf_counter() - t:.1f} s)")
                last = (done, failed)
            if done + failed >= total:
                break
            time.sleep(0.2)
    cur.execute("SELECT author_id FROM lms.assignments GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1")
    teacher = cur.fetchone()[0]
    cur.execute("SELECT mlcache.lms_warm_teacher(%s)", (teacher,))
    out(f"   SELECT mlcache.lms_warm_teacher({teacher}) -> {json.dumps(cur.fetchone()[0])}  (a teacher logs in)")


def progress(sh, readers, writer, final=False):
    el = time.perf_counter() - sh.t0
    reads = sum(r.reads for r in readers)
    lv = dict.fromkeys(LEVELS, 0)
    for r in readers:
        for s in list(r.per_sec):
            for k in LEVELS:
                lv[k] += s[k]
    tot = max(1, sum(lv.values()))
    mix = " ".join(f"{k} {100.0 * lv[k] / tot:.0f}%" for k in ("l1", "l2", "l3")) \
        + f" miss {100.0 * lv['compute'] / tot:.0f}%"
    rate = reads / max(el, 1e-9)
    if TTY:
        rest = f"{min(el, SECONDS):3.0f}/{SECONDS:.0f}s {reads:,} reads {rate:,.0f}/s {writer.commits:,} writes  {mix}"
        cols = shutil.get_terminal_size().columns - 1  # never wrap, or \r cannot redraw the line
        width = min(30, cols - len(rest) - 6)
        if width >= 5:
            fill = int(width * min(1.0, max(el / SECONDS, reads / MAX_READS)))
            rest = f"[{'#' * fill}{'.' * (width - fill)}] {rest}"
        sys.stdout.write("\r" + ("   " + rest)[:cols] + ("\n" if final else "\033[K"))
        sys.stdout.flush()
    else:
        out(f"   {el:5.1f} s  {reads:>9,} reads {rate:5,.0f}/s  {writer.commits:>4,} writes  {mix}")


def workload(db, ids):
    header(f"2. Dashboard workload: {READERS} readers, {'1 writer' if WRITE_RATE > 0 else 'no writer'}, {SECONDS:g} s "
           f"(or {fmt_int(MAX_READS)} reads)")
    rng = random.Random(SEED)
    pickers = {name: Zipf(ids[name], ZIPF_S, rng) for name, _, _ in DEFINITIONS}
    pace = f"{READ_RATE:,.0f} reads/s in all" if READ_RATE > 0 else "as fast as they can"
    what = {"assignment_stats": "assignments", "analytics_student": "students",
            "analytics_engagement": "courses"}
    out(f"   readers  {READERS} sessions, {pace}, each read one statement:")
    out(f"            {FETCH_SQL % ('name', 'id')}")
    out("            " + ", ".join(f"{n} {int(sh * 100)}% of {len(ids[n]):,} {what[n]}"
                                   for n, sh, _ in DEFINITIONS))
    out(f"            ids drawn Zipf(s={ZIPF_S:g}): the top 10% get "
        + "/".join(f"{100 * pickers[n].top_share(max(1, len(ids[n]) // 10)):.0f}%" for n, _, _ in DEFINITIONS)
        + " of those reads")
    if WRITE_RATE > 0:
        out(f"   writer   grade changes, {WRITE_RATE:g}/s in {BURST:g} s bursts with {PAUSE:g} s quiet before each,"
            " each a transaction:")
        out("            UPDATE lms.submissions SET score = .. WHERE id = ..; INSERT INTO lms.grades ..; COMMIT")
    else:
        out("   writer   none (DEMO_WRITE_RATE=0)")
    out(f"   checks   {CHECK_RATE * 100:g}% of reads are followed by the live computation "
        "(mlcache.lms_<name>_live(id))")
    out("            and the definition's query, prepared, to compare values and time them")
    out()
    sh = Shared()
    sh.t0 = time.perf_counter()
    readers = [Reader(i + 1, db, sh, pickers, SEED * 1000 + i) for i in range(READERS)]
    writer = Writer(db, sh, pickers["assignment_stats"], SEED * 1000 + 999)
    for t in readers + [writer]:
        t.start()
    last_line = 0.0
    while not sh.stop.is_set():
        el = time.perf_counter() - sh.t0
        if el >= SECONDS or sum(r.reads for r in readers) >= MAX_READS:
            break
        if TTY or el - last_line >= 10:
            progress(sh, readers, writer)
            last_line = el
        sh.stop.wait(0.2)
    sh.stop.set()
    elapsed = time.perf_counter() - sh.t0
    # Read the statistics while the readers are still connected (L1 sizes leave with them).
    deadline = time.perf_counter() + 30
    for r in readers:
        if not sh.finished.acquire(timeout=max(0.1, deadline - time.perf_counter())):
            break
    snap = snapshot(db)
    sh.release.set()
    for t in readers + [writer]:
        t.join(30)
        if t.is_alive():
            sh.errors.append(f"{t.name}: still running 30 s after the stop")
    progress(sh, readers, writer, final=True)
    return sh, readers, writer, elapsed, snap


def snapshot(db):
    """mlcache.stats, counters(), views and health(), read at once."""
    conn = psycopg2.connect(dbname=db, application_name="mlcache demo report")
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute("SELECT * FROM mlcache.stats")
    stats = dict(zip([d[0] for d in cur.description], cur.fetchone()))
    cur.execute("SELECT counter, value FROM mlcache.counters()")
    counters = dict(cur.fetchall())
    cur.execute("SELECT view::text, state, refreshes, duration_ms, failures FROM mlcache.views ORDER BY 1")
    views = cur.fetchall()
    cur.execute("SELECT mlcache.health()")
    health = cur.fetchone()[0]
    conn.close()
    return stats, counters, views, health


def report(sh, readers, writer, elapsed, snap, refreshes_before, datadir):
    stats, counters, views, health = snap
    # Merge the readers' samples.
    lat = {lv: [] for lv in LEVELS}
    lat_def = {}
    live = {d: [] for d, _, _ in DEFINITIONS}
    for r in readers:
        for (d, lv), xs in r.lat.items():
            lat[lv].extend(xs)
            lat_def.setdefault(d, {}).setdefault(lv, []).extend(xs)
        for d, xs in r.live.items():
            live[d].extend(xs)
    for xs in list(lat.values()) + list(live.values()):
        xs.sort()
    live_all = sorted(x for xs in live.values() for x in xs)
    prepared = {d: sorted(x for r in readers for x in r.prepared[d]) for d, _, _ in DEFINITIONS}
    prep_all = sorted(x for xs in prepared.values() for x in xs)
    n = {lv: len(lat[lv]) for lv in LEVELS}
    total = sum(n.values())
    failed = False

    header(f"3. Results: {fmt_int(total)} reads in {elapsed:.1f} s ({total / elapsed:,.0f}/s), "
           f"{fmt_int(writer.commits)} grade changes")

    out("   hit rates: each level's hits over the reads that reached it")
    a1, a2, a3 = total, total - n["l1"], total - n["l1"] - n["l2"]
    rows = [
        ["L1 (backend memory)", fmt_int(n["l1"]), pct(n["l1"], total), pct(n["l1"], a1),
         fmt_int(stats["l1_hits"]), fmt_int(stats["l1_misses"]), f'{stats["l1_hit_rate"]:.1f}%'],
        ["L2 (Redis)", fmt_int(n["l2"]), pct(n["l2"], total), pct(n["l2"], a2),
         fmt_int(stats["l2_hits"]), fmt_int(stats["l2_misses"]), f'{stats["l2_hit_rate"]:.1f}%'],
        ["L3 (materialized view)", fmt_int(n["l3"]), pct(n["l3"], total), pct(n["l3"], a3),
         fmt_int(stats["l3_hits"]), fmt_int(stats["l3_misses"]), f'{stats["l3_hit_rate"]:.1f}%'],
        ["computed (miss)", fmt_int(n["compute"]), pct(n["compute"], total), "",
         fmt_int(stats["computes"]), "", ""],
    ]
    if n["stale"]:
        rows.append(["stale (opt-in)", fmt_int(n["stale"]), pct(n["stale"], total), "", "", "", ""])
    table(rows, ["level", "reads", "share", "hit rate", "stats: hits", "misses", "hit rate"])
    out(f"   {BOLD}overall hit rate (mlcache.stats.hit_rate): {stats['hit_rate']:.2f}%{RESET} of reads answered "
        f"by L1, L2 or L3 (workload: {pct(n['l1'] + n['l2'] + n['l3'], total)})")
    out(f"   {DIM}(left: counted by the workload from last_level(); right: SELECT * FROM mlcache.stats, "
        f"server-wide since reset_stats();")
    out(f"   {DIM} a read that waited for another session's fill counts there as an L2 miss, then an L2 hit){RESET}")

    out()
    out("   latency of one read, as the client sees it (ms)")
    rows = []
    for lv, label in (("l1", "cached: L1"), ("l2", "cached: L2"), ("l3", "cached: L3"),
                      ("compute", "miss: compute + store"), ("stale", "stale")):
        xs = lat[lv]
        if lv == "stale" and not xs:
            continue
        rows.append([label, fmt_int(len(xs)), fmt_ms(quantile(xs, .5)), fmt_ms(quantile(xs, .95)),
                     fmt_ms(quantile(xs, .99))])
    rows.append(["uncached: prepared query", fmt_int(len(prep_all)), fmt_ms(quantile(prep_all, .5)),
                 fmt_ms(quantile(prep_all, .95)), fmt_ms(quantile(prep_all, .99))])
    rows.append(["uncached: lms_*_live()", fmt_int(len(live_all)), fmt_ms(quantile(live_all, .5)),
                 fmt_ms(quantile(live_all, .95)), fmt_ms(quantile(live_all, .99))])
    table(rows, ["read", "samples", "p50", "p95", "p99"])

    out()
    out("   by definition (ms)")
    rows = []
    for d, _, _ in DEFINITIONS:
        per = lat_def.get(d, {})
        cached = sorted(x for lv in ("l1", "l2", "l3") for x in per.get(lv, []))
        alln = sum(len(v) for v in per.values())
        lv_share = "/".join(pct(len(per.get(lv, [])), alln).rstrip("%") for lv in ("l1", "l2", "l3", "compute"))
        p50c, p50p = quantile(cached, .5), quantile(prepared[d], .5)
        rows.append([d, fmt_int(alln), lv_share, fmt_ms(p50c), fmt_ms(quantile(cached, .95)),
                     fmt_ms(p50p), fmt_ms(quantile(prepared[d], .95)), fmt_ms(quantile(live[d], .5)),
                     f"{p50p / p50c:.0f}x" if p50c and p50p else "-"])
    table(rows, ["definition", "reads", "% l1/l2/l3/compute", "cached p50", "p95",
                 "prepared p50", "p95", "_live() p50", "speed-up"])
    out(f"   {DIM}(cached: L1, L2 or L3; prepared: the definition's query run directly; speed-up: prepared p50 /"
        f" cached p50;")
    out(f"   {DIM} _live(): the pack's reference function mlcache.lms_<name>_live(), which renders and plans the"
        f" query on every call){RESET}")

    out()
    out("   invalidation and refresh (mlcache.stats, mlcache.counters())")
    wl = sorted(writer.lat)
    rows = [
        ["grade changes committed by the writer", fmt_int(writer.commits),
         f"commit p50 {fmt_ms(quantile(wl, .5))} ms, p95 {fmt_ms(quantile(wl, .95))} ms"],
        ["invalidations (generation bumps at commit)", fmt_int(stats["invalidations"]), ""],
        ["computes (queries run on a miss)", fmt_int(stats["computes"]), ""],
        ["rejected fills (invalidated while computing)", fmt_int(stats["rejected_fills"]), ""],
        ["single-flight waits (then read from L2)", fmt_int(counters.get("fill_waits", 0)),
         f'{fmt_int(counters.get("fill_wait_timeouts", 0))} timed out'],
        ["stale values refused", fmt_int(counters.get("stale_rejected", 0)), ""],
        ["L3 view refreshes during the workload", fmt_int(stats["l3_refreshes"] - refreshes_before),
         f'l3_refreshes {fmt_int(stats["l3_refreshes"])}, less {refreshes_before} before (not reset by reset_stats())'],
        ["bypasses", fmt_int(stats["bypasses"]), ""],
        ["Redis errors", fmt_int(stats["redis_errors"]), f'breaker {stats["breaker_state"]}'],
        ["L1 entries / bytes (all backends)", f'{fmt_int(stats["l1_entries"])} / {fmt_int(stats["l1_bytes"])}', ""],
        ["L2 keys / Redis used_memory", f'{fmt_int(stats["l2_keys"] or 0)} / {fmt_int(stats["l2_used_memory"] or 0)}', ""],
    ]
    table(rows, ["", "", ""], ["l", "r", "l"])
    out()
    table([[v, s, fmt_int(r), f"{d:.0f} ms" if d is not None else "-", str(f)] for v, s, r, d, f in views],
          ["mlcache.views", "state now", "refreshes", "last took", "failures"], ["l", "l", "r", "r", "r"])

    header("4. Correctness: sampled cached reads against the live computation")
    cached_ok = sum(r.checked[lv] for r in readers for lv in ("l1", "l2", "l3", "stale"))
    computed_ok = sum(r.checked["compute"] for r in readers)
    raced = sum(r.raced for r in readers)
    differed = [x for r in readers for x in r.differed]
    by = ", ".join(f"{lv} {sum(r.checked[lv] for r in readers):,}" for lv in ("l1", "l2", "l3"))
    colour = GREEN if not differed else RED
    out(f"   {colour}{cached_ok:,} sampled cached reads equal the live computation ({by}), "
        f"{raced:,} raced with a write, {len(differed)} differed{RESET}")
    out(f"   (and {computed_ok:,} sampled computed reads; a read is 'raced' when a grade change of its"
        f" assignment or student was in flight between the read and the live query)")
    for name, eid, lv, v, l in differed[:5]:
        out(f"   {RED}DIFFERED: {name}({eid}) from {lv}:{RESET}\n     cached {v[:300]}\n     live   {l[:300]}")
    if differed:
        failed = True

    header("5. Health: SELECT mlcache.health()")
    l2 = health.get("l2", {})
    l3 = health.get("l3", {})
    hrows = [
        ["status", str(health.get("status")), ""],
        ["l1", str(health.get("l1", {}).get("status")),
         f'{fmt_int(int(health.get("l1", {}).get("entries", 0)))} entries'],
        ["l2", str(l2.get("status")), f'round trip {l2.get("rtt_ms")} ms, breaker {l2.get("breaker")}'],
        ["l3", str(l3.get("status", "")), f'{l3.get("view_count")} views, {l3.get("refreshes")} refreshes'],
        ["worker", "alive" if health.get("worker", {}).get("alive") else "NOT ALIVE", ""],
        ["invalidations pending", str(health.get("invalidations_pending")), ""],
    ]
    table(hrows, ["part", "status", ""], ["l", "l", "l"])
    if health.get("status") != "ok":
        out(f"   {RED}health() is not ok{RESET}")
        failed = True

    # Data for the plot: one block per level, the CDF (latency ms, percentile), at most 400 points.
    os.makedirs(datadir, exist_ok=True)
    series = [("L1", lat["l1"]), ("L2", lat["l2"]), ("L3", lat["l3"]), ("computed (miss)", lat["compute"]),
              ("uncached, prepared query", prep_all), ("uncached, live function", live_all)]
    series = [(t, xs) for t, xs in series if xs]
    with open(os.path.join(datadir, "latency.dat"), "w") as f:
        for title, xs in series:
            f.write(f'"{title}: p50 {fmt_ms(quantile(xs, .5))} ms, p95 {fmt_ms(quantile(xs, .95))} ms ({len(xs):,})"\n')
            npts = min(400, len(xs))
            for i in range(npts):
                q = (i + 0.5) / npts
                f.write(f"{quantile(xs, q) * 1000:.5f} {q * 100:.3f}\n")
            f.write("\n\n")
    # Reads per second by level, and the writer's bursts.
    ymax = 1
    with open(os.path.join(datadir, "timeline.dat"), "w") as f:
        f.write("sec l1 l2 l3 compute\n")
        for s in range(int(elapsed)):  # whole seconds only
            c = {lv: sum(r.per_sec[s][lv] if s < len(r.per_sec) else 0 for r in readers) for lv in LEVELS}
            f.write(f"{s + 0.5} {c['l1']} {c['l2']} {c['l3']} {c['compute'] + c['stale']}\n")
            ymax = max(ymax, c["l2"] + c["l3"] + c["compute"] + c["stale"])
    with open(os.path.join(datadir, "bursts.dat"), "w") as f:
        for a, b in writer.bursts:
            f.write(f"{a:.2f} {b:.2f}\n")
    with open(os.path.join(datadir, "meta.gp"), "w") as f:
        f.write(f"nseries = {len(series)}\nnbursts = {len(writer.bursts)}\nymax = {ymax * 1.15:.0f}\nxmax = {max(1, int(elapsed))}\n")
        f.write(f'subtitle = "scale {SCALE}, {READERS} readers + {1 if WRITE_RATE > 0 else 0} writer, {elapsed:.0f} s, '
                f'{total:,} reads, {writer.commits:,} grade changes"\n')

    if sh.errors:
        header("Errors")
        for e in sh.errors:
            out(f"   {RED}{e}{RESET}")
        failed = True
    return not failed


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    db, datadir = sys.argv[1], sys.argv[2]
    got = setup(db)
    if got is None:
        return 1
    ids, refreshes_before = got
    sh, readers, writer, elapsed, snap = workload(db, ids)
    return 0 if report(sh, readers, writer, elapsed, snap, refreshes_before, datadir) else 1


if __name__ == "__main__":
    sys.exit(main())
