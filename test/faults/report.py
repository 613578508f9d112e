#!/usr/bin/python3
"""test/faults/report.py: summaries of test/coherence_check.py --result files.

    report.py line FILE              one line for one case
    report.py table OUT CMD FILE...  the markdown table of every case, written
                                     to OUT (with CMD, the command that
                                     produced it) and printed
"""
import datetime
import json
import os
import platform
import subprocess
import sys


def load(path):
    with open(path) as f:
        return json.load(f)


def lost(d):
    if d.get("missing_commits") is None:
        return "not checked"
    if d["missing_commits"] or not d.get("final_reads_ok", False):
        return "%d commits missing" % d["missing_commits"]
    if d.get("crashes"):
        return ("nothing served from it; PostgreSQL itself lost %d returned commits "
                "(synchronous_commit = off), %d in flight"
                % (d["lost_by_postgres"], d["unknown_outcome"]))
    return "nothing"


def l2_back(d):
    if d.get("fault_over_at_s") is None:
        return "-"
    if d.get("l2_back_after_s") is None:
        return "> %.1f s" % max(0.0, d["seconds"] - d["fault_over_at_s"])
    return "%.2f s" % d["l2_back_after_s"]


def what(d):
    text = what_fault(d)
    if d.get("hygiene_pending_end"):
        text += "; %d Redis clean-ups still pending %.0f s after the run" % (
            d["hygiene_pending_end"], d.get("hygiene_drain_s", 0))
    s = d.get("slowest_read")
    if s and s.get("ms", 0) > 100:
        text += "; slowest read began at %.1f s, answered by %s" % (s["began_at_s"], s["level"])
    return text


def what_fault(d):
    i, f = d.get("info", {}), d["fault"]
    if f == "stop":
        return "Redis stopped %.1f s" % i.get("stopped_s", 0)
    if f == "kill":
        return "Redis down %.1f s, back empty" % i.get("down_s", 0)
    if f == "rdb":
        return ("snapshot of %s keys restored after %s commits"
                % (i.get("restored_keys"), i.get("commits_after_save")))
    if f == "flushall":
        return "%s FLUSHALLs" % i.get("flushes")
    if f.startswith("maxmemory"):
        return ("%s keys evicted; %s of %s filler SETs refused with OOM"
                % (i.get("evicted_keys"), i.get("filler_ooms"), i.get("filler_sets")))
    if f == "client-kill":
        return "%s rounds, %s connections killed" % (i.get("kill_rounds"), i.get("clients_killed"))
    if f == "foreign":
        w = i.get("writes", {})
        return "%d values written (%s)" % (sum(w.values()), ", ".join("%s %d" % kv for kv in sorted(w.items())))
    if f == "cancel":
        p = i.get("probes", {})
        parts = []
        for kind in ("timeout", "cancel"):
            s = p.get(kind)
            if s:
                parts.append("%s: %d probes, %d cancelled (57014), %d held by Redis, slowest %.0f ms, "
                             "cancelled <= %.0f ms after the interrupt"
                             % ("statement_timeout 20ms" if kind == "timeout" else "pg_cancel_backend at 15 ms",
                                s["probes"], s["cancelled"], s["delayed_by_redis"], s["max_ms"],
                                s["max_after_interrupt_ms"]))
        return "; ".join(parts)
    if f in ("crash", "worker-kill"):
        parts = ["%d crash restart(s), server back in %s s" % (
            len(d["crashes"]), "/".join("%.2f" % c["restart_s"] for c in d["crashes"]))]
        if f == "worker-kill":
            parts.append("%s clean-ups pending at the kill; delivery resumed %s s after the restart"
                         % (i.get("pending_at_kill"), i.get("hygiene_resumed_s")))
        parts.append("%d reads cut by the crash, retried" % d.get("reads_lost_to_crash", 0))
        return "; ".join(parts)
    return ""


def levels(d):
    lv = d["levels"]
    return "%d (%d/%d/%d)" % (d["reads"], lv.get("l1", 0), lv.get("l2", 0), lv.get("compute", 0))


def line(d):
    c = d.get("counters", {})
    return ("case %-3s %-21s %s: stale reads %d, errors to readers %d, other errors %d; lost: %s; slowest read %.1f ms "
            "(p99 %.1f); L2 back after %s; redis_errors +%d, breaker_opened +%d, decode_failures +%d, "
            "stale_rejected +%d; %s"
            % (d["label"], d["fault"], "passed" if d["ok"] else "FAILED", d["stale_reads"],
               d["reader_errors"], d.get("other_errors", 0), lost(d), d["max_read_ms"], d["p99_read_ms"], l2_back(d),
               c.get("redis_errors", 0), c.get("breaker_opened", 0), c.get("decode_failures", 0),
               c.get("stale_rejected", 0), what(d)))


def version(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"


def table(out, cmd, files):
    rows = [load(f) for f in files]
    head = ("| # | fault | result | reads (L1/L2/computed) | commits | stale reads | errors to readers "
            "| lost | slowest read (p99) | L2 back after | redis_errors | breaker_opened "
            "| decode_failures | stale_rejected | what happened |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for d in rows:
        c = d.get("counters", {})
        lines.append("| %s | %s | %s | %s | %d | %d | %d | %s | %.0f ms (%.0f ms) | %s | %d | %d | %d | %d | %s |"
                     % (d["label"], d["description"], "passed" if d["ok"] else "**FAILED**",
                        levels(d), d["commits"], d["stale_reads"], d["reader_errors"], lost(d),
                        d["max_read_ms"], d["p99_read_ms"], l2_back(d), c.get("redis_errors", 0),
                        c.get("breaker_opened", 0), c.get("decode_failures", 0),
                        c.get("stale_rejected", 0), what(d).replace("|", "/")))
    secs = sorted({d["seconds"] for d in rows})
    pg = version(["pg_config", "--version"])
    redis = version(["redis-server", "--version"]).split(" sha=")[0]
    text = ["# mlcache fault injection results", "",
            "Command: `%s`." % cmd, "",
            "Run %s on %s, %d cores; %s; %s; %s s per case, 3 writers and 4 readers; "
            "seeds %s." % (datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                           platform.platform(terse=True), os.cpu_count() or 0, pg, redis,
                           "/".join("%g" % s for s in secs),
                           ", ".join(str(d["seed"]) for d in rows)),
            "",
            "Each case runs `test/coherence_check.py --fault <mode>`: writers commit or roll back "
            "increments of a watched table, readers read cached per-group sums through "
            "`mlcache.get()`; every read must lie between the commits that had returned before it "
            "began and those issued by its end (per server life after a crash restart). "
            "*lost* compares the table with the commits that returned, and after the run reads "
            "every key through the cache against the table. *L2 back after* is the time from the "
            "end of the fault to the first Redis hit (the circuit breaker skips Redis meanwhile). "
            "Counters are `mlcache.counters()` deltas over the case.", ""] + lines + [""]
    with open(out, "w") as f:
        f.write("\n".join(text))
    print("\n".join(lines))
    return all(d["ok"] for d in rows)


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "line":
        print(line(load(sys.argv[2])))
        return 0
    if len(sys.argv) >= 4 and sys.argv[1] == "table":
        return 0 if table(sys.argv[2], sys.argv[3], sys.argv[4:]) else 1
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
