#!/usr/bin/env python3
"""tests/e2e/renc_check.py — an independent RENC v1 reader for the e2e tests.

Written from shared/FORMAT.md alone (Python `cryptography` for AES-GCM, key
wrap and RSA-OAEP; libzstd through ctypes), so that a test can check a whole
tree of blobs in one process instead of one `reencrypt decrypt` per blob, and
so that what the tool writes is checked against the spec by a second reader.

    renc_check.py --keyring DIR [--only REF] [--no-data] [--root DIR] PATH...
    renc_check.py --keyring DIR ... --list FILE      (paths, one per line)

    renc_check.py --keyring DIR --seal SPEC
seals, as a second writer, one blob per SPEC line "OUT<TAB>REF<TAB>SIZE": a
random plaintext of SIZE bytes (REF a versioned local ref; 1 MiB segments,
no compression, the tool's default header room), and prints
"OUT<TAB>SHA256-OF-PLAINTEXT" for each: a test makes hundreds of distinct
blobs in one process (starting a process is slow on small machines).
    renc_check.py --keyring DIR --copy SPEC
copies SRC to DST for each SPEC line "SRC<TAB>DST".
--alias REF=LOCALREF (repeatable): REF's key material is LOCALREF's in the
keyring (an HSM key imported with known bytes: the slot names REF).
--rsa-alg 2|3: the alg --seal wraps with under an RSA key (default 2).

For each PATH one JSON line on stdout:
    {"path", "rel", "status": "ok" | "notrenc" | "error", "error",
     "sha256" (of the plaintext), "plaintext_len", "header_len", "seg_shift",
     "flags", "salt", "nonce_prefix", "slots": [ref...], "algs": [alg...],
     "wrapped": [hex...], "opened_by": ref, "dek_id" (sha256 of the DEK, first
     16 hex digits: says which blobs share a DEK), "context": {...},
     "records", "compressed_records"}
--only REF: open the blob with that slot only (proves that key alone opens
it).  --all-slots: every slot must open, to the same DEK.  --no-data: header and tag only.  Exit status 0 when every RENC PATH
was "ok", 1 otherwise (the lines say which), 2 on bad usage.
The keyring's enabled/disabled/revoked states are ignored here: this reads
key material, it does not enforce policy (the tool's own decrypt/verify do).
"""
import argparse
import ctypes
import ctypes.util
import hashlib
import hmac
import json
import os
import struct
import sys

try:
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.keywrap import (
        aes_key_unwrap, aes_key_unwrap_with_padding)
    from cryptography.exceptions import InvalidTag
except ImportError:  # the caller checks with --probe
    print("renc_check: python3 cryptography is not installed", file=sys.stderr)
    sys.exit(3)

UNKNOWN_LEN = 2**64 - 1


class Bad(Exception):
    pass


_zstd = None


def zstd_decompress(frame, max_out):
    global _zstd
    if _zstd is None:
        name = ctypes.util.find_library("zstd") or "libzstd.so.1"
        _zstd = ctypes.CDLL(name)
        _zstd.ZSTD_decompress.restype = ctypes.c_size_t
        _zstd.ZSTD_decompress.argtypes = [ctypes.c_void_p, ctypes.c_size_t,
                                          ctypes.c_void_p, ctypes.c_size_t]
        _zstd.ZSTD_isError.restype = ctypes.c_uint
        _zstd.ZSTD_isError.argtypes = [ctypes.c_size_t]
    out = ctypes.create_string_buffer(max_out + 1)
    n = _zstd.ZSTD_decompress(out, max_out + 1, frame, len(frame))
    if _zstd.ZSTD_isError(n):
        raise Bad("zstd frame does not decode")
    return out.raw[:n]


def hkdf_expand32(prk, info):
    return hmac.new(prk, info + b"\x01", hashlib.sha256).digest()


class Keyring:
    def __init__(self, root, aliases=()):
        self.root = root
        self.keks = {}
        self.deks = {}
        self.aliases = dict(a.rsplit("=", 1) for a in aliases)  # REF may hold "="

    def kek(self, ref):
        if ref in self.keks:
            return self.keks[ref]
        if ref in self.aliases:
            self.keks[ref] = self.kek(self.aliases[ref])
            return self.keks[ref]
        if not ref.startswith("local:") or "/" not in ref[6:]:
            raise Bad("not a versioned local ref: %s" % ref)
        name, version = ref[6:].rsplit("/", 1)
        base = os.path.join(self.root, name, version)
        if os.path.exists(base + ".key"):
            with open(base + ".key", "rb") as f:
                k = ("aes", f.read())
        elif os.path.exists(base + ".pem"):
            with open(base + ".pem", "rb") as f:
                k = ("rsa", serialization.load_pem_private_key(f.read(), None))
        else:
            raise Bad("no key material for %s" % ref)
        self.keks[ref] = k
        return k

    def unwrap(self, alg, ref, wrapped):
        ck = (alg, ref, wrapped)
        if ck in self.deks:
            return self.deks[ck]
        kind, k = self.kek(ref)
        try:
            if alg == 1 and kind == "aes":
                dek = aes_key_unwrap_with_padding(k, wrapped)
            elif alg == 4 and kind == "aes":
                dek = aes_key_unwrap(k, wrapped)
            elif alg in (2, 3) and kind == "rsa":
                h = hashes.SHA256() if alg == 2 else hashes.SHA1()
                dek = k.decrypt(wrapped, padding.OAEP(mgf=padding.MGF1(algorithm=h),
                                                      algorithm=h, label=None))
            else:
                raise Bad("alg %d does not fit the %s key %s" % (alg, kind, ref))
        except Bad:
            raise
        except Exception as ex:  # InvalidUnwrap, ValueError
            raise Bad("unwrap under %s failed: %s" % (ref, type(ex).__name__))
        if len(dek) != 32:
            raise Bad("DEK of %d bytes" % len(dek))
        self.deks[ck] = dek
        return dek


def parse_header(buf):
    if len(buf) < 58 or buf[:4] != b"RENC":
        raise Bad("short or bad magic")
    if buf[4] != 1:
        raise Bad("version %d" % buf[4])
    seg_shift = buf[5]
    if not 12 <= seg_shift <= 24:
        raise Bad("seg_shift %d" % seg_shift)
    header_len, = struct.unpack(">H", buf[6:8])
    plen, = struct.unpack(">Q", buf[8:16])
    salt, prefix, flags = buf[16:48], buf[48:55], buf[55]
    if flags & ~1:
        raise Bad("unknown flags")
    if len(buf) < header_len:
        raise Bad("file shorter than header_len")
    ctx_len, = struct.unpack(">H", buf[56:58])
    p = 58
    end = header_len - 32
    if p + ctx_len > end:
        raise Bad("context overruns header")
    ctx, q, last_key = {}, p, None
    while q < p + ctx_len:
        kl, = struct.unpack(">H", buf[q:q + 2])
        key = buf[q + 2:q + 2 + kl]
        q += 2 + kl
        vl, = struct.unpack(">H", buf[q:q + 2])
        val = buf[q + 2:q + 2 + vl]
        q += 2 + vl
        if last_key is not None and key <= last_key:
            raise Bad("context not canonical")
        last_key = key
        ctx[key.decode()] = val.decode()
    if q != p + ctx_len or "env" not in ctx:
        raise Bad("context malformed or lacks env")
    p = q
    if p >= end:
        raise Bad("no slot count")
    nslots = buf[p]
    p += 1
    if not 1 <= nslots <= 8:
        raise Bad("slot_count %d" % nslots)
    slots = []
    for _ in range(nslots):
        if p + 3 > end:
            raise Bad("slot overruns header")
        alg = buf[p]
        rl, = struct.unpack(">H", buf[p + 1:p + 3])
        ref = buf[p + 3:p + 3 + rl].decode()
        p += 3 + rl
        wl, = struct.unpack(">H", buf[p:p + 2])
        wrapped = bytes(buf[p + 2:p + 2 + wl])
        p += 2 + wl
        if p > end:
            raise Bad("slot overruns header")
        if alg not in (1, 2, 3, 4):
            raise Bad("unknown alg %d" % alg)
        slots.append((alg, ref, wrapped))
    if any(buf[p:end]):
        raise Bad("padding not zero")
    return {"seg_shift": seg_shift, "header_len": header_len, "plaintext_len": plen,
            "salt": bytes(salt), "nonce_prefix": bytes(prefix), "flags": flags,
            "context": ctx, "slots": slots, "tag": bytes(buf[end:header_len]),
            "signed": bytes(buf[:end])}


def check_one(path, ring, only, data, all_slots=False):
    r = {"path": path}
    with open(path, "rb") as f:
        head = f.read(65536)
        if len(head) < 4 or head[:4] != b"RENC":
            r["status"] = "notrenc"
            return r
        h = parse_header(head)
        r.update(header_len=h["header_len"], seg_shift=h["seg_shift"], flags=h["flags"],
                 plaintext_len=None if h["plaintext_len"] == UNKNOWN_LEN else h["plaintext_len"],
                 salt=h["salt"].hex(), nonce_prefix=h["nonce_prefix"].hex(),
                 context=h["context"], slots=[s[1] for s in h["slots"]],
                 algs=[s[0] for s in h["slots"]], wrapped=[s[2].hex() for s in h["slots"]])
        keys, why = None, []
        for alg, ref, wrapped in h["slots"]:
            if only is not None and ref != only:
                continue
            try:
                dek = ring.unwrap(alg, ref, wrapped)
            except Bad as ex:
                why.append(str(ex))
                continue
            prk = hmac.new(h["salt"], dek, hashlib.sha256).digest()
            k_hdr = hkdf_expand32(prk, b"renc v1 header")
            tag = hmac.new(k_hdr, h["signed"], hashlib.sha256).digest()
            if not hmac.compare_digest(tag, h["tag"]):
                why.append("header_tag does not verify under the DEK of %s" % ref)
                continue
            if keys is not None:
                if keys[0] != dek:
                    raise Bad("slot %s holds another DEK than slot %s" % (ref, r["opened_by"]))
                continue
            keys = (dek, hkdf_expand32(prk, b"renc v1 data"))
            r["opened_by"] = ref
            r["dek_id"] = hashlib.sha256(dek).hexdigest()[:16]
            if not all_slots:
                break
        if all_slots and why:
            raise Bad("not every slot opens: %s" % "; ".join(why))
        if keys is None:
            raise Bad("no slot opens%s: %s" % (" with " + only if only else "", "; ".join(why)))
        if not data:
            r["status"] = "ok"
            return r
        aead = AESGCM(keys[1])
        seg = 1 << h["seg_shift"]
        plen = h["plaintext_len"]
        count = None if plen == UNKNOWN_LEN else max(1, -(-plen // seg))
        size = os.fstat(f.fileno()).st_size
        off = h["header_len"]
        f.seek(off)
        sha = hashlib.sha256()
        i = total = ncomp = 0
        while True:
            word_b = f.read(4)
            if len(word_b) < 4:
                raise Bad("ends before its last record (record %d)" % i)
            word, = struct.unpack(">I", word_b)
            comp, clen = word >> 31, word & 0x7FFFFFFF
            if comp and not h["flags"] & 1:
                raise Bad("compressed record in an uncompressed blob")
            body = f.read(clen + 16)
            if len(body) < clen + 16:
                raise Bad("record %d cut short" % i)
            off += 4 + clen + 16
            last = (i == count - 1) if count is not None else off == size
            nonce = h["nonce_prefix"] + struct.pack(">I", i) + (b"\x01" if last else b"\x00")
            try:
                payload = aead.decrypt(nonce, body, word_b)
            except InvalidTag:
                raise Bad("record %d does not authenticate" % i)
            if comp:
                ncomp += 1
                payload = zstd_decompress(payload, seg)
            if len(payload) > seg or (not last and len(payload) != seg):
                raise Bad("record %d has %d plaintext bytes" % (i, len(payload)))
            sha.update(payload)
            total += len(payload)
            i += 1
            if last:
                break
        if off != size:
            raise Bad("trailing bytes after the last record")
        if count is not None and total != plen:
            raise Bad("plaintext %d bytes, header says %d" % (total, plen))
        r.update(status="ok", sha256=sha.hexdigest(), records=i, compressed_records=ncomp,
                 plaintext_bytes=total)
    return r


def seal_one(ring, data, out, ref, env="e2e", room=773, seg_shift=20, rsa_alg=2):
    kind, k = ring.kek(ref)
    dek = os.urandom(32)
    if kind == "aes":
        from cryptography.hazmat.primitives.keywrap import aes_key_wrap_with_padding
        alg, wrapped = 1, aes_key_wrap_with_padding(k, dek)
    else:
        h = hashes.SHA256() if rsa_alg == 2 else hashes.SHA1()
        alg, wrapped = rsa_alg, k.public_key().encrypt(
            dek, padding.OAEP(mgf=padding.MGF1(algorithm=h), algorithm=h, label=None))
    salt, prefix = os.urandom(32), os.urandom(7)
    ctx = b""
    for key, val in sorted({"env": env, "kind": "blob", "name": os.path.basename(out),
                            "created": "2026-01-01T00:00:00Z"}.items()):
        kb, vb = key.encode(), val.encode()
        ctx += struct.pack(">H", len(kb)) + kb + struct.pack(">H", len(vb)) + vb
    rb = ref.encode()
    body = (struct.pack(">H", len(ctx)) + ctx + bytes([1]) + bytes([alg]) +
            struct.pack(">H", len(rb)) + rb + struct.pack(">H", len(wrapped)) + wrapped)
    header_len = 56 + len(body) + room + 32
    head = (b"RENC" + bytes([1, seg_shift]) + struct.pack(">HQ", header_len, len(data)) +
            salt + prefix + bytes([0]) + body + bytes(room))
    prk = hmac.new(salt, dek, hashlib.sha256).digest()
    head += hmac.new(hkdf_expand32(prk, b"renc v1 header"), head, hashlib.sha256).digest()
    aead = AESGCM(hkdf_expand32(prk, b"renc v1 data"))
    seg = 1 << seg_shift
    count = max(1, -(-len(data) // seg))
    parts = [head]
    for i in range(count):
        pt = data[i * seg:(i + 1) * seg]
        word = struct.pack(">I", len(pt))
        nonce = prefix + struct.pack(">I", i) + (b"\x01" if i == count - 1 else b"\x00")
        parts += [word, aead.encrypt(nonce, pt, word)]
    with open(out, "wb") as f:
        f.write(b"".join(parts))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--keyring", required=True)
    ap.add_argument("--only")
    ap.add_argument("--no-data", action="store_true")
    ap.add_argument("--all-slots", action="store_true")
    ap.add_argument("--root", help="print paths relative to this folder as 'rel'")
    ap.add_argument("--list")
    ap.add_argument("--seal")
    ap.add_argument("--copy")
    ap.add_argument("--alias", action="append", default=[])
    ap.add_argument("--rsa-alg", type=int, choices=(2, 3), default=2)
    ap.add_argument("paths", nargs="*")
    a = ap.parse_args()
    paths = list(a.paths)
    if a.list:
        with open(a.list) as f:
            paths += [line.rstrip("\n") for line in f if line.strip()]
    ring = Keyring(a.keyring, a.alias)
    if a.seal:
        with open(a.seal) as f:
            for line in f:
                out, ref, size = line.rstrip("\n").split("\t")
                data = os.urandom(int(size))
                seal_one(ring, data, out, ref, rsa_alg=a.rsa_alg)
                print("%s\t%s" % (out, hashlib.sha256(data).hexdigest()))
        return 0
    if a.copy:
        import shutil
        with open(a.copy) as f:
            for line in f:
                src, dst = line.rstrip("\n").split("\t")
                shutil.copyfile(src, dst)
        return 0
    bad = 0
    out = sys.stdout
    for p in paths:
        try:
            r = check_one(p, ring, a.only, not a.no_data, a.all_slots)
        except (Bad, OSError, UnicodeDecodeError, struct.error) as ex:
            r = {"path": p, "status": "error", "error": str(ex)}
        if a.root:
            r["rel"] = os.path.relpath(p, a.root)
        if r["status"] == "error":
            bad += 1
        out.write(json.dumps(r, sort_keys=True) + "\n")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
