"""Parses the Prometheus exposition of a real store with prometheus_client.

Usage: metrics_exposition.py PATH-TO-metrics_expo

Runs metrics_expo (tests/metrics_expo.cpp), parses its output with
prometheus_client's text parser (a strict one: a malformed line, a bad escape
or a sample of another family raises) and checks what the store did: the
families and their types, exact counts, histograms with cumulative buckets
ending in +Inf equal to _count, and the escaped subscription name read back.
Exit 77 (skipped) when prometheus_client is not installed.
"""
import math
import subprocess
import sys

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:
    print("prometheus_client is not installed (Debian: python3-prometheus-client)")
    sys.exit(77)

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


out = subprocess.run([sys.argv[1]], check=True, capture_output=True).stdout.decode("utf-8")
families = {f.name: f for f in text_string_to_metric_families(out)}
# prometheus_client strips _total from counter family names.
print(f"{len(families)} families parsed")


def samples(name):
    return families[name].samples


def value(family, sample_name=None, **labels):
    for s in samples(family):
        if (sample_name or family) == s.name and s.labels == labels:
            return s.value
    raise KeyError(f"{sample_name or family}{labels}")


for name in ["evstore_appends", "evstore_events_appended", "evstore_conflicts", "evstore_reads",
             "evstore_wal_syncs", "evstore_sagas_started", "evstore_rocksdb_background_errors"]:
    check(families.get(name) is not None and families[name].type == "counter", f"{name} is a counter")
for name in ["evstore_next_position", "evstore_rocksdb_sst_bytes", "evstore_sagas",
             "evstore_reader_lag_events", "evstore_cache_entries"]:
    check(families.get(name) is not None and families[name].type == "gauge", f"{name} is a gauge")

check(value("evstore_appends", "evstore_appends_total") == 10, "10 appends")
check(value("evstore_events_appended", "evstore_events_appended_total") == 10, "10 events")
check(value("evstore_conflicts", "evstore_conflicts_total") == 1, "1 conflict")
for kind in ["stream", "all", "category", "type", "point"]:
    check(value("evstore_reads", "evstore_reads_total", kind=kind) == 1, f"1 read of kind {kind}")
check(value("evstore_sagas_completed", "evstore_sagas_completed_total") == 1, "1 saga completed")
check(value("evstore_next_position") == 10, "next position 10")
check(value("evstore_reader_lag_events", kind="subscription", name='audit "eu"\\west\n2') == 10,
      "the escaped subscription name reads back, 10 behind")
check(value("evstore_reader_lag_events", kind="projection", name="by-type") == 0, "projection caught up")
check(value("evstore_rocksdb_estimated_keys", cf="events") >= 10, "estimated keys of events")

histograms = [f for f in families.values() if f.type == "histogram"]
check(len(histograms) == 5, f"5 histograms (got {[h.name for h in histograms]})")
for h in histograms:
    buckets = [s for s in h.samples if s.name == h.name + "_bucket"]
    count = [s.value for s in h.samples if s.name == h.name + "_count"]
    total = [s.value for s in h.samples if s.name == h.name + "_sum"]
    check(len(count) == 1 and len(total) == 1, f"{h.name} has one _count and one _sum")
    les = [float(s.labels["le"]) for s in buckets]
    check(les == sorted(les) and math.isinf(les[-1]), f"{h.name} buckets ascend to +Inf")
    values = [s.value for s in buckets]
    check(all(a <= b for a, b in zip(values, values[1:])), f"{h.name} buckets are cumulative")
    check(values[-1] == count[0], f"{h.name} +Inf bucket equals _count")
    check(h.name.endswith("_seconds"), f"{h.name} is in seconds")
check(value("evstore_saga_step_seconds", "evstore_saga_step_seconds_count") == 1, "one saga step timed")
check(value("evstore_read_seconds", "evstore_read_seconds_count") == 5, "five reads timed")

sys.exit(1 if failures else 0)
