#!/usr/bin/python3
"""fuzz/seeds.py DIR: write the seed corpus of fuzz_envelope into DIR.

Envelopes (format 3) signed with the fuzzer's secret (bytes 0..31), built
around jsonb bodies in PostgreSQL's on-disk format, as convertToJsonb lays
them out (checked byte for byte against values written by the server): valid
envelopes, truncated ones, ones with a wrong MAC around valid JSON, and the
bare bodies (the fuzzer also wraps its input as a body).
"""
import hashlib
import hmac
import os
import struct
import sys

SECRET = bytes(range(32))
STRIDE = 32                      # JB_OFFSET_STRIDE
HAS_OFF = 0x80000000
T_STRING, T_NUMERIC, T_FALSE, T_TRUE, T_NULL, T_CONTAINER = (
    0x00000000, 0x10000000, 0x20000000, 0x30000000, 0x40000000, 0x50000000)
F_SCALAR, F_OBJECT, F_ARRAY = 0x10000000, 0x20000000, 0x40000000


def numeric_bytes(n):
    neg, a = n < 0, abs(n)
    groups = []
    while a:
        groups.insert(0, a % 10000)
        a //= 10000
    weight = len(groups) - 1 if groups else 0
    while groups and groups[-1] == 0:
        groups.pop()
    hdr = 0x8000 | (0x2000 if neg else 0) | (weight & 0x3F) | (0x40 if weight < 0 else 0)
    body = struct.pack("<H", hdr) + b"".join(struct.pack("<H", g) for g in groups)
    return struct.pack("<I", (4 + len(body)) << 2) + body


class Buf:
    def __init__(self):
        self.b = bytearray(b"\0\0\0\0")   # the varlena header, as PostgreSQL reserves it

    def pad(self):
        n = (-len(self.b)) % 4
        self.b += b"\0" * n
        return n


def convert(buf, v):
    """Append v; return its JEntry type bits and the bytes it took."""
    start = len(buf.b)
    if isinstance(v, bool):
        return (T_TRUE if v else T_FALSE), 0
    if v is None:
        return T_NULL, 0
    if isinstance(v, int):
        pad = buf.pad()
        nb = numeric_bytes(v)
        buf.b += nb
        return T_NUMERIC, pad + len(nb)
    if isinstance(v, str):
        buf.b += v.encode()
        return T_STRING, len(v.encode())
    container(buf, v, False)
    return T_CONTAINER, len(buf.b) - start


def container(buf, v, scalar):
    buf.pad()
    if isinstance(v, dict):
        keys = sorted(v, key=lambda k: (len(k.encode()), k.encode()))
        children = keys + [v[k] for k in keys]
        header = len(keys) | F_OBJECT
    else:
        children = list(v)
        header = len(children) | F_ARRAY | (F_SCALAR if scalar else 0)
    hpos = len(buf.b)
    buf.b += struct.pack("<I", header) + b"\0" * (4 * len(children))
    total = 0
    for i, c in enumerate(children):
        typ, n = convert(buf, c)
        total += n
        je = typ | (total | HAS_OFF if i % STRIDE == 0 else n)
        struct.pack_into("<I", buf.b, hpos + 4 + 4 * i, je)


def jsonb_body(v):
    buf = Buf()
    container(buf, v if isinstance(v, (list, dict)) else [v], not isinstance(v, (list, dict)))
    return bytes(buf.b[4:])


def envelope(body, key=b"fuzz:key", sign=True):
    head = b"MLC\x03" + struct.pack("<IQQIIQqqqIIQ", len(key), 7, 11, 5, 10, 99,
                                    1, 2, 3, len(body), 0, 42)
    assert len(head) == 80
    msg = head + key + body
    tag = hmac.new(SECRET, msg, hashlib.sha256).digest()[:16] if sign else b"\0" * 16
    return msg + tag


VALUES = [
    42, -7, 0, 123456789, "hello", "", True, False, None, [], {},
    {"a": 1, "bb": [True, False, None, "x"], "c": {"d": "é"}},
    list(range(40)),                                        # HAS_OFF every 32 children
    {"k%02d" % i: i for i in range(35)},
    [[[[["deep"]]]]],
]


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    seeds = {}
    for i, v in enumerate(VALUES):
        body = jsonb_body(v)
        env = envelope(body)
        seeds["valid-%d" % i] = env
        seeds["body-%d" % i] = body
        seeds["truncated-%d" % i] = env[: len(env) // 2]
        seeds["badmac-%d" % i] = envelope(body, sign=False)
        flipped = bytearray(env)
        flipped[80 + 8 + len(body) - 1] ^= 1                 # last body byte: valid length, wrong MAC
        seeds["flipped-%d" % i] = bytes(flipped)
    for name, data in seeds.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
