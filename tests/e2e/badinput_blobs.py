#!/usr/bin/env python3
"""tests/e2e/badinput_blobs.py — malformed RENC v1 blobs for test_badinput.sh.

    badinput_blobs.py KEYFILE GOOD OUTDIR

GOOD is a real blob made by `reencrypt encrypt` under one AES-256 slot
(KEYFILE: that key's 32 raw bytes, alg 1), uncompressed, with at least two
full records.  Writes into OUTDIR one file per variant below, each GOOD with
one defect, and prints their names.  Header defects are "re-sealed": the
header tag is recomputed with the blob's own K_hdr (the DEK is unwrapped with
KEYFILE), so that the defect is the ONLY thing wrong with the blob — a reader
that skipped the check would open it.  Only `htag` breaks the tag on purpose;
`hlen-short` cannot carry a tag at the place the reader looks.

Written from /work/shared/FORMAT.md (the normative format).
"""
import hashlib
import hmac
import os
import struct
import sys

from cryptography.hazmat.primitives.keywrap import aes_key_unwrap_with_padding


def hkdf(dek, salt, info):
    prk = hmac.new(salt, dek, hashlib.sha256).digest()
    return hmac.new(prk, info + b"\x01", hashlib.sha256).digest()


class Header:
    def __init__(self, b):
        assert b[:4] == b"RENC"
        self.version, self.shift, self.hlen = b[4], b[5], struct.unpack(">H", b[6:8])[0]
        self.ptlen = b[8:16]
        self.salt = b[16:48]
        self.nonce = b[48:55]
        self.flags = b[55]
        (ctx_len,) = struct.unpack(">H", b[56:58])
        ctx, off, self.ctx = b[58:58 + ctx_len], 0, []
        while off < ctx_len:
            (kl,) = struct.unpack(">H", ctx[off:off + 2])
            k = ctx[off + 2:off + 2 + kl]
            off += 2 + kl
            (vl,) = struct.unpack(">H", ctx[off:off + 2])
            v = ctx[off + 2:off + 2 + vl]
            off += 2 + vl
            self.ctx.append((k, v))
        off = 58 + ctx_len
        n = b[off]
        off += 1
        self.slots = []
        for _ in range(n):
            alg = b[off]
            (rl,) = struct.unpack(">H", b[off + 1:off + 3])
            ref = b[off + 3:off + 3 + rl]
            off += 3 + rl
            (wl,) = struct.unpack(">H", b[off:off + 2])
            w = b[off + 2:off + 2 + wl]
            off += 2 + wl
            self.slots.append([alg, ref, w])
        self.records = b[self.hlen:]
        self.slot_count = None  # override of the stored count

    def fields(self):
        ctx = b"".join(struct.pack(">H", len(k)) + k + struct.pack(">H", len(v)) + v
                       for k, v in self.ctx)
        out = (b"RENC" + bytes([self.version, self.shift]) + b"\0\0" + self.ptlen +
               self.salt + self.nonce + bytes([self.flags]) + struct.pack(">H", len(ctx)) + ctx)
        n = len(self.slots) if self.slot_count is None else self.slot_count
        out += bytes([n])
        for alg, ref, w in self.slots:
            out += bytes([alg]) + struct.pack(">H", len(ref)) + ref + struct.pack(">H", len(w)) + w
        return bytearray(out)

    def build(self, khdr, hlen=None, pad_byte=None):
        """The header at its old header_len (the padding absorbs the change)."""
        hlen = self.hlen if hlen is None else hlen
        f = self.fields()
        assert len(f) + 32 <= hlen, "variant does not fit in header_len"
        f[6:8] = struct.pack(">H", hlen)
        f += b"\0" * (hlen - 32 - len(f))
        if pad_byte is not None:
            f[pad_byte] = 0x01
        return bytes(f) + hmac.new(khdr, bytes(f), hashlib.sha256).digest()


def records(b, hl):
    recs, off = [], hl
    while off + 4 <= len(b):
        n = 4 + (struct.unpack(">I", b[off:off + 4])[0] & 0x7FFFFFFF) + 16
        recs.append((off, n))
        off += n
    assert off == len(b)
    return recs


def main():
    keyfile, good, outdir = sys.argv[1:4]
    kek = open(keyfile, "rb").read()
    g = open(good, "rb").read()
    h0 = Header(g)
    assert h0.flags == 0 and len(h0.slots) == 1 and h0.slots[0][0] == 1
    dek = aes_key_unwrap_with_padding(kek, h0.slots[0][2])
    khdr = hkdf(dek, h0.salt, b"renc v1 header")
    assert hmac.compare_digest(hmac.new(khdr, g[:h0.hlen - 32], hashlib.sha256).digest(),
                               g[h0.hlen - 32:h0.hlen]), "GOOD's header tag"
    recs = records(g, h0.hlen)
    assert len(recs) >= 3 and recs[0][1] == recs[1][1], "GOOD needs two full records"
    S = 1 << h0.shift
    out = {}
    # The re-seal is sound: rebuilding GOOD's header unchanged gives GOOD.
    assert Header(g).build(khdr) + h0.records == g, "re-seal does not reproduce GOOD"

    def variant(name, edit):
        h = Header(g)
        r = edit(h)
        out[name] = r if isinstance(r, (bytes, bytearray)) else h.build(khdr) + h.records

    def with_byte(off, val):
        b = bytearray(g)
        b[off] = val
        return bytes(b)

    # -- header: every rejection of FORMAT.md section 2, each re-sealed ----------
    variant("magic", lambda h: b"RENX" + h.build(khdr)[4:] + h.records)
    variant("version", lambda h: setattr(h, "version", 2))
    variant("shift-low", lambda h: setattr(h, "shift", 11))
    variant("shift-high", lambda h: setattr(h, "shift", 25))
    # header_len one byte shorter than the parsed fields plus the tag.
    variant("hlen-short", lambda h: g[:6] + struct.pack(">H", len(h.fields()) + 31) + g[8:])
    variant("pad-nonzero", lambda h: h.build(khdr, pad_byte=h.hlen - 32 - 100) + h.records)
    variant("flags-bit1", lambda h: setattr(h, "flags", 0x02))
    variant("flags-bit7", lambda h: setattr(h, "flags", 0x80))
    variant("ctx-order", lambda h: h.ctx.sort(key=lambda kv: kv[0], reverse=True))
    variant("ctx-dup", lambda h: h.ctx.insert(1, (b"created", b"2020-01-01T00:00:00Z")))
    variant("ctx-noenv", lambda h: setattr(h, "ctx", [kv for kv in h.ctx if kv[0] != b"env"]))
    variant("ctx-notutf8", lambda h: h.ctx.append((b"zz", b"\xff\xfe")))
    variant("ctx-nul", lambda h: h.ctx.append((b"zz", b"a\0b")))
    # ctx_len that runs past header_len: stored as is, not re-sealed.
    variant("ctx-overrun", lambda h: g[:56] + struct.pack(">H", h.hlen) + g[58:])
    variant("slots-0", lambda h: setattr(h, "slots", []))
    variant("slots-9", lambda h: setattr(h, "slots", [list(h.slots[0]) for _ in range(9)]))
    variant("alg-5", lambda h: h.slots[0].__setitem__(0, 5))
    variant("alg-0", lambda h: h.slots[0].__setitem__(0, 0))
    variant("htag", lambda h: with_byte(h.hlen - 5, g[h.hlen - 5] ^ 0x10))
    # A slot whose alg does not match its key's type: an RSA-OAEP alg over the
    # AES key's ref, and the AES wrap naming an RSA key (same DEK, re-sealed).
    variant("alg-rsa-on-aes", lambda h: h.slots[0].__setitem__(0, 2))
    variant("ref-rsa-key", lambda h: h.slots[0].__setitem__(1, b"local:r/1"))
    variant("ref-nokey", lambda h: h.slots[0].__setitem__(1, b"local:nokey/1"))
    variant("ref-unparsable", lambda h: h.slots[0].__setitem__(1, b"nonsense ref"))
    # -- records (FORMAT.md section 3) ----------------------------------------------
    o1, n1 = recs[1]
    b = bytearray(g); b[o1 + n1 - 1] ^= 0x01
    out["rec-tag"] = bytes(b)
    b = bytearray(g); b[o1 + 10] ^= 0x40
    out["rec-ct"] = bytes(b)
    o0, _ = recs[0]
    out["word-gt-seg"] = g[:o0] + struct.pack(">I", S + 1) + g[o0 + 4:]
    out["word-bit31"] = g[:o0] + struct.pack(">I", 0x80000000 | S) + g[o0 + 4:]
    out["cut-in-rec"] = g[:o1 + n1 // 2]
    out["cut-after-rec"] = g[:o1]           # record 0 whole, records 1.. gone
    out["cut-in-hdr"] = g[:h0.hlen // 2]
    out["cut-hdr-only"] = g[:h0.hlen]
    out["trailing"] = g + b"\0\0\0\0\0"
    ol, nl = recs[-1]
    out["dup-last"] = g + g[ol:ol + nl]
    out["swap-rec"] = g[:o0] + g[o1:o1 + n1] + g[o0:o1] + g[o1 + n1:]

    os.makedirs(outdir, exist_ok=True)
    for name, data in out.items():
        with open(os.path.join(outdir, name), "wb") as f:
            f.write(data)
        print(name)


if __name__ == "__main__":
    main()
