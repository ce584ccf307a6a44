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


def keys():
    write("keys", "event_key", be64(12345))
    write("keys", "stream_index_key", be64(7) + be64(3))
    write("keys", "name_index_key", b"order\x00" + be64(9) + b"\x00" * 8 + b"\x05abc\x00d\x03xyz")
    write("keys", "format_record", b"evstore\x1f" + b"\x00\x00\x00\x01" + be64(1700000000000))
    write("keys", "uuid_text", b"0123ABCD-4567-89ab-cdef-0123456789AB")


def store_ops():
    # opcodes: 0/1 append, 2 multi, 3 read_stream, 4 read_all, 5 category/type,
    # 6 read_event, 7 head, 8 reopen. See fuzz_store_ops.cpp.
    ev_plain = b"\x05"           # type/data choice, no id
    ev_id = lambda k: b"\x45" + bytes([k])  # with pool id k
    basic = (b"\x00\x00\x01\x02" + ev_plain + ev_plain + ev_plain +   # order-1, NoStream, 3 events
             b"\x00\x00\x03\x00" + ev_plain +                         # order-1, Exact(head)
             b"\x00\x00\x01\x00" + ev_plain +                         # order-1, NoStream: conflict
             b"\x03\x00\x01" + b"\x04\x02\x02" + b"\x07\x00" + b"\x06\x03")
    write("store_ops", "append_read", basic)
    idem = (b"\x00\x01\x00\x01" + ev_id(1) +     # order-2 Any, id 1
            b"\x00\x01\x00\x01" + ev_id(1) +     # same again: idempotent replay
            b"\x00\x02\x00\x01" + ev_id(1) +     # id 1 on another stream: duplicate
            b"\x00\x02\x00\x02" + ev_id(2) + ev_id(2) +  # one id twice: invalid
            b"\x05\x01" + b"\x05\x00")
    write("store_ops", "idempotency", idem)
    reopen = (b"\x02\x00\x00\x00\x01" + ev_plain + b"\x00\x00" + ev_plain +  # multi order-1 + order-2
              b"\x08" + b"\x04\x03" + b"\x01\x03\x02\x00" + ev_plain +
              b"\x08" + b"\x03\x03\x01" + b"\x07\x03")
    write("store_ops", "multi_reopen", reopen)
    # fuzz_capi_ops reads the same operation layout.
    write("capi_ops", "append_read", basic)
    write("capi_ops", "idempotency", idem)
    write("capi_ops", "multi_reopen", reopen)


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


if __name__ == "__main__":
    event_record()
    stream_record()
    saga_record()
    keys()
    store_ops()
    cache()
