#!/usr/bin/python3
"""test/forge_value.py KIND RKEY: replace the mlcache value under Redis key RKEY
with a forged one, for test/redis_values.sh.  Exits 1 if RKEY holds no
mlcache value.

The genuine value must be the envelope (format 3) of the jsonb number 42.
KIND says what is planted:
  digit-badmac   42 turned into 43 in the body, everything else kept: a
                 well-formed envelope with the right epoch, key, role and
                 fingerprint whose MAC no longer matches
  digit-signed   the same, signed with the cluster secret read from
                 $MLCACHE_PGDATA/mlcache.secret: only the secret tells it from
                 a genuine value
  garbage-N      (N = 0..6) a signed envelope whose body has the original
                 length but is not valid jsonb (see GARBAGE)
Redis is reached on $MLCACHE_REDIS_SOCKET with a minimal RESP client.
"""
import hashlib
import hmac
import os
import socket
import struct
import sys

HEADER, TAG = 80, 16


def redis(*args):
    s = socket.socket(socket.AF_UNIX)
    s.connect(os.environ["MLCACHE_REDIS_SOCKET"])
    msg = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else a.encode()
        msg += b"$%d\r\n%s\r\n" % (len(a), a)
    s.sendall(msg)
    f = s.makefile("rb")
    line = f.readline()
    if line.startswith(b"$"):
        n = int(line[1:])
        reply = None if n < 0 else f.read(n + 2)[:-2]
    elif line.startswith(b"+"):
        reply = line[1:-2]
    else:
        raise SystemExit("forge_value: Redis replied %r" % line)
    s.close()
    return reply


def sign(msg):
    with open(os.path.join(os.environ["MLCACHE_PGDATA"], "mlcache.secret")) as f:
        secret = bytes.fromhex(f.read().strip())
    return msg + hmac.new(secret, msg, hashlib.sha256).digest()[:TAG]


# Bodies of 16 bytes, the length of the genuine one (a scalar numeric).
GARBAGE = [
    # an array claiming 2^28 - 1 elements
    struct.pack("<I", 0x40000000 | 0x0FFFFFFF) + bytes(12),
    # a scalar whose JEntry offset points far past the end
    struct.pack("<II", 0x50000001, 0x90000000 | 0x0FFFFFF0) + bytes(8),
    # a numeric whose varlena header claims 256 MB
    struct.pack("<II", 0x50000001, 0x90000008) + struct.pack("<I", 0x3FFFFFFF << 2) + bytes(4),
    # an undefined JEntry type
    struct.pack("<II", 0x50000001, 0xE0000008) + bytes(8),
    # a scalar string that is not valid UTF-8
    struct.pack("<II", 0x50000001, 0x80000008) + b"\xff\xfe\xfd\xfc\xc3\x28\xa0\xa1",
    # a nested container claiming 2^28 - 1 pairs
    struct.pack("<IIII", 0x40000001, 0xD0000008, 0x20000000 | 0x0FFFFFFF, 0),
    # bytes from a fixed pseudo-random sequence
    bytes((i * 73 + 41) % 256 for i in range(16)),
]


def main():
    kind, rkey = sys.argv[1], sys.argv[2]
    v = redis("GET", rkey)
    if v is None or not v.startswith(b"MLC\x03"):
        raise SystemExit("forge_value: %s holds no mlcache value (%r)" % (rkey, v))
    keylen, vlen = struct.unpack_from("<I", v, 4)[0], struct.unpack_from("<I", v, 64)[0]
    start = HEADER + keylen
    body = bytearray(v[start:start + vlen])
    if kind.startswith("digit"):
        # scalar header, JEntry, numeric varlena header, short numeric header, digit
        if vlen != 16 or struct.unpack_from("<H", body, 14)[0] != 42:
            raise SystemExit("forge_value: the body is not the number 42: %s" % body.hex())
        struct.pack_into("<H", body, 14, 43)
    else:
        body = bytearray(GARBAGE[int(kind.split("-")[1])])
        assert len(body) == vlen
    msg = v[:start] + bytes(body)
    forged = msg + v[-TAG:] if kind == "digit-badmac" else sign(msg)
    assert len(forged) == len(v)
    redis("SET", rkey, forged, "KEEPTTL")


if __name__ == "__main__":
    main()
