#!/usr/bin/env python3
"""Writes the seed corpora in fuzz/corpus/<target>/ (a few small files each).

Run from anywhere: python3 fuzz/make_seeds.py. The files are committed; rerun
after changing a target's input layout. Inputs found by fuzzing that are worth
keeping go in the same directories under their own names.
"""
import os
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")

# The body (FlatBuffers table, checksum removed) of a real event record at
# position 0: stream "order-0", type "OrderPlaced", data {"customer":"c0"}.
# Taken from `evstore-inspect dump --hex --to 0` of the demo store.
EVENT_BODY_POS0 = bytes.fromhex(
    "1c00000018003c002c00000028001c0000001800140010000c000400180000005781"
    "6b28a20100003000000030000000440000005800000001000000000000000000000058"
    "000000f98876ce7d977dab000000000000008000000000110000007b22637573746f6d"
    "6572223a226330227d000000100000006170706c69636174696f6e2f6a736f6e0000"
    "00000b0000004f72646572506c6163656400070000006f726465722d3000")


def be64(v):
    return struct.pack(">Q", v)


def sized(b):
    """A length byte then the bytes (FuzzInput::Bytes)."""
    return bytes([len(b)]) + b


def write(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def event_record():
    write("event_record", "sealed_real_body", b"\x01" + be64(0) + EVENT_BODY_POS0)
    write("event_record", "raw_garbage", b"\x00" + be64(7) + b"\x10\x00\x00\x00" * 8)
    fields = (bytes(range(16)) + be64(42) + sized(b"order-42") + sized(b"OrderPlaced") +
              sized(b"application/json") + sized(b'{"total":10}') + sized(b"") +
              be64(3) + be64(5) + be64(1700000000000) + be64(17) + b"\x01")
    write("event_record", "fields_json", b"\x02" + fields)
    odd = (b"\xff" * 16 + be64(2**64 - 1) + sized("zoë-\u2603".encode()) + sized(b"T\x00\x7f") +
           sized(b"") + sized(b"\x00\x01\xfe\xff\xc3\x28") + sized(b"meta\n") + be64(0) +
           be64(2**63) + be64(2**63) + be64(0) + b"\x80")
    write("event_record", "fields_odd_bytes", b"\x02" + odd)


def stream_record():
    write("stream_record", "fields", b"\x02" + sized(b"order-1") + be64(1) + be64(0) +
          be64(1700000000000) + be64(3) + b"\x04")
    write("stream_record", "fields_unicode", b"\x02" + sized("caf\u00e9-\u2603".encode()) +
          be64(2**64 - 1) + be64(99) + be64(2**63) + be64(0) + b"\x01")
    write("stream_record", "sealed_garbage", b"\x01" + sized(b"s") + b"\x0c\x00\x00\x00" * 6)
    write("stream_record", "raw_short", b"\x00" + sized(b"x") + b"\x00" * 9)


def saga_record():
    fields = (sized(b"pay-1") + sized(b"payment") + be64(2) + be64(0xfeed) + b"\x03\x00" +
              be64(1) + be64(0) + be64(0) + b"\x00" + sized(b'{"amount":5}') +
              b"\x02" + sized(b"charged") + sized(b"mailed") + sized(b"") +
              be64(1000) + be64(2000) + be64(4) +
              b"\x02" + be64(1000) + b"\x00\x00\xff\x00" + sized(b"") +
              be64(1500) + b"\x02\x01\x00\x01" + sized(b"card declined") +
              b"\x00" + be64(3) + b"\x01")
    write("saga_record", "fields_completed", b"\x02" + fields)
    write("saga_record", "fields_empty", b"\x02" + sized(b"s"))
    write("saga_record", "sealed_garbage", b"\x01" + sized(b"id") + b"\x14\x00\x00\x00" * 10)
    write("saga_record", "raw_short", b"\x00" + sized(b"id") + b"\x00" * 12)


def checkpoint_record():
    # A record as the store writes it: format 1, position 12, time, then the
    # checksum (filled in by the target in mode 1; mode 0 sees it as stored).
    body = b"\x01" + be64(12) + be64(1700000000000)
    write("checkpoint_record", "sealed_body", b"\x01" + sized(b"projector") + body)
    write("checkpoint_record", "sealed_newer", b"\x01" + sized(b"p") + b"\x02" + be64(1) + be64(2))
    write("checkpoint_record", "raw_short", b"\x00" + sized(b"reader") + b"\x01" + b"\x00" * 9)
    write("checkpoint_record", "fields", b"\x02" + sized(b"order-totals") + be64(1200) +
          be64(1700000000123) + b"!" + be64(3) + b"\x40")
    write("checkpoint_record", "fields_odd", b"\x02" + sized("caf\u00e9\x00".encode()) +
          be64(2**64 - 1) + be64(2**63) + b"\x00" + be64(24) + b"\xff")


def keys():
    write("keys", "event_key", be64(12345))
    write("keys", "stream_index_key", be64(7) + be64(3))
    write("keys", "name_index_key", b"order\x00" + be64(9) + b"\x00" * 8 + b"\x05abc\x00d\x03xyz")
    write("keys", "format_record", b"evstore\x1f" + b"\x00\x00\x00\x01" + be64(1700000000000))
    write("keys", "uuid_text", b"0123ABCD-4567-89ab-cdef-0123456789AB")


REOPEN_ONE_IN = 512  # store_model.hpp's kReopenOneIn


def reopen_allowed(data):
    """store_model.hpp's ReopenAllowed: FNV-1a, murmur3's finisher, 0 mod REOPEN_ONE_IN."""
    m = 0xFFFFFFFF
    h = 2166136261
    for b in data:
        h = ((h ^ b) * 16777619) & m
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & m
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & m
    h ^= h >> 16
    return h % REOPEN_ONE_IN == 0


def reopening(data):
    """`data` with read_event ops appended until its reopen opcodes take effect."""
    for n in range(1 << 16):
        pad = b"".join(b"\x06" + bytes([(n >> (8 * i)) & 0xFF]) for i in range(1 + (n > 0xFF)))
        if reopen_allowed(data + pad):
            return data + pad
    raise RuntimeError("no padding found")


class Ops:
    """Builds a store_ops / capi_ops input (the layout in store_model.hpp)."""

    def __init__(self):
        self.b = b""

    @staticmethod
    def event(shape=0x05, pool_id=None):
        # shape: type % 3, data (>> 2) % 4, 0x10 metadata, 0x20 content type
        if pool_id is None:
            return bytes([shape & ~0x40])
        return bytes([shape | 0x40, pool_id])

    @staticmethod
    def expect(kind, exact=0):
        # 0 any, 1 no stream, 2 stream exists, 3 the model's head, 4 Exact(exact % 4)
        return bytes([kind]) + (bytes([exact]) if kind == 4 else b"")

    def append(self, stream, expect, events):
        assert 1 <= len(events) <= 3
        self.b += bytes([0, stream]) + expect + bytes([len(events) - 1]) + b"".join(events)
        return self

    def multi(self, stream, other, parts):
        # streams: `stream` and (stream + 1 + other) % 4; parts: [(expect, events)] * 2
        self.b += bytes([2, stream, other])
        for expect, events in parts:
            assert 1 <= len(events) <= 2
            self.b += expect + bytes([len(events) - 1]) + b"".join(events)
        return self

    def read_stream(self, stream, mode, limit=None):
        self.b += bytes([3, stream])
        return self.read_args(mode, limit)

    def read_all(self, mode, limit=None):
        self.b += bytes([4])
        return self.read_args(mode, limit)

    def read_args(self, mode, limit):
        # mode: 1 backward, 2 from the end (backward), bits 2.. the start,
        # 0x80 no limit (and then no limit byte)
        assert (limit is None) == bool(mode & 0x80)
        self.b += bytes([mode]) + (b"" if limit is None else bytes([limit]))
        return self

    def read_index(self, mode):
        # mode: 1 by type ((mode >> 1) % 3), else category (2: order, else cart);
        # 8 backward from the end, else forward from (mode >> 4) % 16
        self.b += bytes([5, mode])
        return self

    def read_event(self, position):
        self.b += bytes([6, position])
        return self

    def head(self, stream):
        self.b += bytes([7, stream])
        return self

    def reopen(self):
        self.b += b"\x08"
        return self

    def subscribe(self, slot, filt, start, batch):
        # filt % 5: all, stream (>> 3), category (odd >> 3: order), one type, two types
        # start % 4: from base + (>> 2) % 16, now, checkpoint (>> 2), invalid ((>> 2) % 5)
        # batch: max_batch 1 + % 4, behind_after 1 + (>> 2) % 8
        self.b += bytes([9, slot, filt, start, batch])
        return self

    def pull(self, slot, mode):
        # next() 1 + mode % 4 times; 0x80: stop() first
        self.b += bytes([10, slot, mode])
        return self

    def checkpoint(self, slot, op, arg):
        # op % 7: sub checkpoint, sub checkpoint at, set, delete, get, list, invalid
        self.b += bytes([11, slot, op, arg])
        return self

    def project(self, slot, op, arg=0):
        # op % 4: run (the first run's filter: arg % 4 stream, category (order
        # when (arg >> 2) is odd), one type, two types; batch 1 + (arg >> 4) % 4),
        # stop, rebuild, delete (projection_model.hpp)
        self.b += bytes([12, slot, op, arg])
        return self

    def query(self, slot, op, arg=0):
        # op % 4: get (key arg % 8), scan (prefix arg % 4, after bit 2, limit
        # 1 + (arg >> 6)), info and list, snapshot
        self.b += bytes([13, slot, op, arg])
        return self


def store_ops():
    # Streams: 0 order-1, 1 order-2, 2 cart-1, 3 solo.
    ev, expect = Ops.event, Ops.expect
    basic = (Ops()
             .append(0, expect(1), [ev(), ev(0x06), ev(0x31)])  # order-1 NoStream: 3 events
             .append(0, expect(3), [ev()])                      # Exact(head)
             .append(0, expect(1), [ev()])                      # NoStream again: conflict
             .append(2, expect(4, 0), [ev()])                   # Exact(0) on no stream: conflict
             .read_stream(0, 0x01, 2)                           # backward from version 0
             .read_stream(0, 0x83)                              # backward from the end, no limit
             .read_all(0x04, 2)                                 # forward from 1, limit 2
             .read_index(0x02)                                  # category order
             .read_index(0x09)                                  # type, backward
             .head(0).head(3).read_event(3).read_event(30)).b
    idem = (Ops()
            .append(1, expect(0), [ev(pool_id=1)])             # order-2 Any, id 1
            .append(1, expect(0), [ev(pool_id=1)])             # same again: idempotent replay
            .append(2, expect(0), [ev(pool_id=1)])             # id 1 on another stream: duplicate
            .append(2, expect(0), [ev(pool_id=2), ev(pool_id=2)])  # one id twice: invalid
            .append(1, expect(0), [ev(0x09, pool_id=1)])       # id 1, other content: duplicate
            .multi(0, 0, [(expect(0), [ev(pool_id=3)]),        # one id in both parts: invalid
                          (expect(0), [ev(pool_id=3)])])
            .read_index(0x01).read_index(0x00)).b
    check = (Ops()
             .multi(0, 0, [(expect(0), [ev()]), (expect(1), [ev(), ev()])])  # order-1 + order-2
             .reopen()
             .read_all(0x03, 5)                                 # backward from the end
             .append(0, expect(3), [ev(pool_id=4)])             # Exact(recovered head)
             .append(3, expect(2), [ev()])                      # StreamExists on no stream
             .reopen()
             .append(0, expect(0), [ev(pool_id=4)])             # replay across the reopen
             .read_stream(0, 0x81)                              # backward, no limit
             .head(1)).b
    # In `check` the reopen opcodes read everything back (the input's hash
    # says so); the padded copy reopens.
    assert not reopen_allowed(check)
    reopen = reopening(check)
    # Subscriptions and checkpoints, in short seeds: libFuzzer mutates inputs up to the length of the longest
    # seed from the start (and lengthens them only when coverage stalls), and
    # an input's cost grows with its operations (docs/fuzzing.md).
    ev = Ops.event
    pulls = (Ops()
             .append(0, expect(1), [ev(), ev(0x01), ev(0x02)])      # order-1: Placed, Shipped, Added
             .subscribe(0, 0x00, 0x00, 0x05)                        # all from base, batch 2, behind 2
             .pull(0, 0x03)                                         # 2 events, 1 event, caught up, timed out
             .append(2, expect(0), [ev(), ev()])                    # cart-1
             .append(1, expect(1), [ev(0x01), ev(), ev(0x02)])      # order-2
             .pull(0, 0x02)).b                                      # fell behind, batches
    marks = (Ops()
             .append(0, expect(1), [ev(), ev(0x01), ev(0x02)])
             .subscribe(1, 0x0A, 0x02, 0x00)                        # category order, checkpoint 0, batch 1
             .pull(1, 0x03)
             .checkpoint(1, 0, 0)                                   # its checkpoint
             .checkpoint(0, 0, 1)                                   # slot 0 has none: refused
             .checkpoint(1, 1, 0x03)                                # past its delivery: refused
             .checkpoint(1, 1, 0x04)                                # two before it
             .checkpoint(0, 2, 0x04)                                # set cp-1
             .checkpoint(0, 5, 0)).b                                # list
    resume = (Ops()
              .append(0, expect(1), [ev(), ev(0x01), ev(0x02)])
              .subscribe(1, 0x0A, 0x02, 0x00)
              .pull(1, 0x01)
              .checkpoint(1, 0, 0)
              .subscribe(1, 0x0A, 0x02, 0x07)                       # resumes after checkpoint 0
              .pull(1, 0x03)
              .checkpoint(0, 3, 0)                                  # delete cp-0
              .checkpoint(0, 4, 0).checkpoint(0, 5, 0)).b           # get, list
    filters = (Ops()
               .append(1, expect(1), [ev(0x01), ev(), ev(0x02)])     # order-2
               .subscribe(0, 0x0C, 0x01, 0x03)                      # types Shipped + Added, from now
               .append(0, expect(0), [ev(0x01)])
               .pull(0, 0x01)
               .subscribe(0, 0x09, 0x08, 0x00)                      # stream order-2 from base + 2
               .pull(0, 0x03)
               .pull(0, 0x80)).b                                    # stop
    invalid = (Ops()
               .subscribe(1, 0x00, 0x03, 0x00).subscribe(1, 0x03, 0x0B, 0x00)  # invalid options
               .subscribe(1, 0x00, 0x07, 0x00).subscribe(1, 0x00, 0x0F, 0x00).subscribe(1, 0x00, 0x13, 0x00)
               .checkpoint(0, 6, 0).checkpoint(0, 6, 1).checkpoint(0, 6, 2)).b  # invalid names
    for name, seed in (("subscription_pulls", pulls), ("checkpoints", marks),
                       ("checkpoint_resume", resume), ("subscription_filters", filters),
                       ("subscription_invalid", invalid)):
        assert not reopen_allowed(seed)
        for target in ("store_ops", "capi_ops"):
            write(target, name, seed)
    durable = (Ops()
               .append(3, expect(0), [ev(), ev()])
               .subscribe(0, 0x00, 0x06, 0x03)                      # all, checkpoint 1
               .pull(0, 0x01)
               .checkpoint(0, 0, 0)
               .checkpoint(0, 2, 0x01)                              # set cp-1 (at base + 1)
               .reopen()                                            # subscriptions end, checkpoints stay
               .subscribe(0, 0x00, 0x06, 0x03)
               .append(3, expect(0), [ev()])
               .pull(0, 0x03)
               .checkpoint(0, 5, 0)).b
    for target in ("store_ops", "capi_ops"):
        write(target, "checkpoints_reopen", reopening(durable))
    # Projections (both targets): data shape 0x08 is empty data, which
    # erases the stream's count.
    run = (Ops()
           .append(0, expect(1), [ev(0x00), ev(0x09), ev(0x02)])   # order-1: Placed, Shipped (empty), Added
           .project(0, 0, 0x05)                                     # category order, batch 1
           .query(0, 0, 0x00)                                       # get t/Placed
           .query(0, 1, 0xC1)                                       # scan t/, 4 at most
           .append(1, expect(0), [ev(0x08)])                        # order-2, followed live
           .query(0, 3, 0x03)                                       # snapshot; get s/order-1
           .project(0, 1)                                           # stop
           .query(0, 2)).b                                          # info, list
    rebuild = (Ops()
               .append(0, expect(1), [ev(0x00), ev(0x09), ev(0x02)])
               .project(1, 0, 0x03)                                 # types Placed + Shipped
               .project(1, 2)                                       # rebuild() while running
               .project(1, 1)
               .project(1, 2)                                       # stopped: version 2, rebuilt at start
               .query(1, 2)
               .project(1, 3)                                       # delete while running: busy
               .project(1, 1).project(1, 3).query(1, 2)).b          # stop, delete: gone
    resume = (Ops()
              .append(2, expect(1), [ev(0x00), ev(0x08)])           # cart-1
              .project(0, 0, 0x10)                                  # stream cart-1, batch 2
              .append(2, expect(0), [ev(0x01)])
              .reopen()                                             # the projection ends with the store
              .query(0, 1, 0xC0)
              .project(0, 0)                                        # resumes from its checkpoint
              .query(0, 0, 0x05)).b
    for target in ("store_ops", "capi_ops"):
        write(target, "projection_run", run)
        write(target, "projection_rebuild", rebuild)
        write(target, "projection_reopen", reopening(resume))

    # fuzz_capi_ops reads the same operation layout.
    for target in ("store_ops", "capi_ops"):
        write(target, "append_read", basic)
        write(target, "idempotency", idem)
        write(target, "multi_check", check)
        write(target, "multi_reopen", reopen)


def cache():
    # config: flags, l1 capacity, [l2 capacity], [l1 ttl], [l2 ttl]
    cfg = b"\x07" + b"\x10" + b"\x40" + b"\x02" + b"\x04"
    ops = b""
    for k in range(6):
        ops += b"\x00" + bytes([k]) + sized(b"value-%d" % k) + b"\x00"
    for k in range(6):
        ops += b"\x02" + bytes([k])
    ops += b"\x06\x00\x04" + b"\x06\x00\xff" + b"\x02\x01" + b"\x07\x00"
    write("cache", "tiers_ttl", cfg + ops)
    cfg2 = b"\x41" + b"\x08" + b"\x20"
    ops2 = (b"\x05\x03\x00" + sized(b"loaded") + b"\x05\x03\x01" + sized(b"") +
            b"\x05\x04\x01" + sized(b"x") + b"\x05\x05\x02" + sized(b"re") +
            b"\x00\x07" + sized(b"!refused") + b"\x00\x02\x00\x00\x00\x00" +
            b"\x03\x07" + b"\x04\x00\x00" + b"\x02\x03" + b"\x07\x00")
    write("cache", "loads_codec", cfg2 + ops2)
    write("cache", "heavy_put", b"\x00\x02" + b"\x00\x01" + sized(b"too heavy for a tier") + b"\x00" +
          b"\x02\x01" + b"\x07\x00")


def projection_record():
    write("projection_record", "meta_fields", b"\x01" + sized(b"order-totals") + be64(3) + be64(1) +
          be64(4) + be64(2) + be64(5) + b"\x01")
    write("projection_record", "instance_fields", b"\x02" + be64(3) + be64(1000) + be64(990) +
          be64(1700000000000) + be64(1) + sized(b"order-totals") + be64(7) + b"\x02")
    write("projection_record", "raw_garbage", b"\x00" + sized(b"Mname") + b"\x01" + b"\x00" * 32)


if __name__ == "__main__":
    event_record()
    stream_record()
    projection_record()
    saga_record()
    checkpoint_record()
    keys()
    store_ops()
    cache()
