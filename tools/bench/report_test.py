#!/usr/bin/env python3
"""End-to-end test of the benchmark report: a tiny `evstore-bench all --compare`
run (every engine, every append shape, the filled log, the saga scenario
through its captured output) must write a report holding every target key
and figures that hold together, and tools/bench-report must turn it into the
generated section of a benchmarks page without touching the hand-written
rest, the same way twice. Bad input fails with a message.

usage: report_test.py EVSTORE_BENCH BENCH_REPORT
"""

import json
import os
import subprocess
import sys
import tempfile

TARGETS = ["durable8_vs_sqlite", "nosync1_vs_sqlite", "stream_read_vs_sqlite",
           "bytes_per_event_vs_sqlite", "durable8_vs_limit"]
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL: " + what, file=sys.stderr)


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def check_report(r):
    check(r.get("report") == "evstore-bench all" and r.get("report_version") == 1, "report header")
    check(r.get("commit"), "the report names a commit (or 'unknown')")
    m = r.get("machine", {})
    check(m.get("cores", 0) >= 1 and m.get("cpu_model"), "the report names the machine")
    check(m.get("fdatasync_per_s", 0) > 0 and m.get("fdatasync_8_threads_per_s", 0) > 0,
          "the disk's fdatasync rates are measured")
    t = r.get("targets", {})
    for k in TARGETS:
        check(isinstance(t.get(k), (int, float)) and t[k] > 0, "target {} is a positive number".format(k))
    runs = r["append"]["runs"]
    check(len(runs) == 8, "8 append shapes (1 and 8 appenders x sync x 1 and 100 events)")
    for run_ in runs:
        engines = run_["engines"]
        want = {"evstore", "raw_rocksdb", "sqlite"}
        if run_["sync"] and run_["appenders"] > 1:
            want.add("sqlite_batched")
        check(set(engines) == want, "{}: engines {}".format(run_["key"], sorted(engines)))
        for name, e in engines.items():
            lat = e["latency"]
            check(e["events_per_s"] > 0 and lat["count"] > 0, "{} {}: measured".format(run_["key"], name))
            check(lat["p50_us"] <= lat["p99_us"] <= lat["p999_us"] <= lat["max_us"],
                  "{} {}: percentiles in order".format(run_["key"], name))
            check(abs(e["events_per_s"] - e["appends_per_s"] * run_["events_per_append"])
                  <= 1e-6 * e["events_per_s"] + 1, "{} {}: events = appends x batch".format(run_["key"], name))
            if run_["sync"]:
                # Never fewer than one append's events per sync, never more
                # than all appenders' at once.
                eps = e.get("events_per_sync", 0)
                check(run_["events_per_append"] <= eps + 1e-9 and
                      eps <= run_["events_per_append"] * run_["appenders"] + 1e-9 or name == "raw_rocksdb",
                      "{} {}: events per sync {}".format(run_["key"], name, eps))
    b = r["log"]["bytes"]
    # 100 random bytes do not compress: every engine needs more than that.
    for name in ["evstore", "sqlite"]:
        check(b[name]["bytes_per_event"] > 100, "{}: more than the payload per event".format(name))
    check(abs(t["bytes_per_event_vs_sqlite"] - b["evstore"]["bytes_per_event"] / b["sqlite"]["bytes_per_event"])
          < 1e-3, "bytes_per_event_vs_sqlite is evstore's bytes over SQLite's")
    rec = b["record"]
    check(rec["record_bytes"] == rec["payload_bytes"] + rec["fixed_fields"] + rec["names"] +
          rec["flatbuffers_overhead"] + rec["checksum"], "the record breakdown adds up")
    rd = r["log"]["reads"]
    for name in ["evstore", "sqlite", "raw_rocksdb"]:
        check(rd[name]["stream_cached_events_per_s"] > 0 and rd[name]["stream_cached_latency"]["count"] ==
              rd["streams_per_pass"], "{}: one latency sample per stream read".format(name))
    s = r.get("saga")
    check(isinstance(s, dict) and s.get("scenario") == "saga", "the saga scenario's JSON line is embedded")


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    bench, report_tool = sys.argv[1], sys.argv[2]
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "report.json")
        p = run([bench, "all", "--compare", "--seconds", "0.05", "--repeat", "1", "--events", "2000",
                 "--stream-reads", "20", "--sections", "append,log,saga", "--out", out])
        check(p.returncode == 0, "evstore-bench all --compare exits 0: " + p.stderr[-2000:])
        if p.returncode != 0:
            return 1
        with open(out) as f:
            report = json.load(f)
        check_report(report)

        docs = os.path.join(tmp, "docs")
        os.makedirs(docs)
        page = os.path.join(docs, "benchmarks.md")
        hand_before = "# Benchmarks\n\nIntro written by hand.\n\n"
        hand_after = "\n## Event log\n\nHistory written by hand.\n"
        with open(page, "w") as f:
            f.write(hand_before + "<!-- BEGIN GENERATED by tools/bench-report -->\nstale\n"
                    "<!-- END GENERATED by tools/bench-report -->\n" + hand_after)
        p = run([report_tool, out, "--docs", docs, "--no-plots"])
        check(p.returncode == 0, "bench-report exits 0: " + p.stderr)
        with open(page) as f:
            first = f.read()
        check(first.startswith(hand_before) and first.endswith(hand_after),
              "the hand-written parts are kept as they were")
        check("stale" not in first, "the old generated section is replaced")
        v = report["targets"]["durable8_vs_sqlite"]
        check("| `durable8_vs_sqlite` | {:,.3f} | >= 3 | {} |".format(v, "met" if v >= 3 else "MISSED") in first,
              "the targets table shows the report's value and verdict")
        check("`{}`".format(report["commit"]) in first, "the section names the commit")
        p = run([report_tool, out, "--docs", docs, "--no-plots"])
        with open(page) as f:
            check(f.read() == first, "regenerating from the same report changes nothing")

        bad = os.path.join(tmp, "bad.json")
        with open(bad, "w") as f:
            json.dump({"scenario": "saga"}, f)
        p = run([report_tool, bad, "--docs", docs, "--no-plots"])
        check(p.returncode == 1 and "not a report" in p.stderr, "bench-report refuses another JSON file")
        with open(page) as f:
            check(f.read() == first, "a refused report leaves the page unchanged")
        p = run([bench, "all", "--events", "5", "--out", os.path.join(tmp, "x.json")])
        check(p.returncode == 2 and "--events" in p.stderr, "evstore-bench all refuses --events below 10")
        p = run([bench, "all", "--seconds", "abc", "--out", os.path.join(tmp, "x.json")])
        check(p.returncode == 2 and "--seconds" in p.stderr, "evstore-bench all refuses a flag that is not a number")
    print("report_test: {} failure(s)".format(len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
