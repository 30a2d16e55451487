#!/usr/bin/env python3
"""tests/e2e/secret_scan.py — looks for key bytes where they must not be
(tests/e2e/test_secrets.sh).

    secret_scan.py --keyring DIR [--blobs DIR]... scan PATH...
    secret_scan.py --keyring DIR [--blobs DIR]... dek-hex

The secrets:
  - every AES KEK: the 32 raw bytes of each KEYRING/NAME/VERSION.key;
  - every RSA KEK: the private integers d, p, q, dP, dQ and qInv of each
    KEYRING/NAME/VERSION.pem (PKCS#8 or PKCS#1 PEM, read with a small DER
    reader here: n and e are public and not looked for);
  - with python3 `cryptography` (through renc_check.py), the DEK of every
    RENC blob found under the --blobs folders, unwrapped with the keyring's
    material (states are ignored: a revoked version's blobs count too) and
    proven right by its header tag, and the PRK, K_data and K_hdr derived
    from it (docs/FORMAT.md "Keys").
Each secret is looked for as
  - raw bytes: each half (so a truncated print is caught; a whole copy
    contains both halves);
  - hex, lower and upper case: each half;
  - base64, standard and URL-safe alphabets, with or without padding, at any
    of the three byte alignments it can have inside a longer encoding: the
    characters that depend on the secret's bytes alone;
hex and base64 both in the file as it is and with whitespace and ':' taken
out (wrapped base64, hex dumps, "aa:bb:cc" as `openssl pkey -text` prints).

`scan` reads every regular file under each PATH (symbolic links are not
followed), except the keyring's key material files (*.key and *.pem directly
in a key folder of --keyring), and prints one line per finding:
    FOUND <path> <form> <secret>
It prints a summary on stderr and exits 1 when anything was found, 0 when
not, 2 on bad usage or an unreadable keyring.  `dek-hex` prints one DEK (the
first found) in hex, for the test's self-check; exit 3 when DEKs cannot be
read here (no `cryptography`).
"""
import argparse
import base64
import hashlib
import hmac
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


# ---- key material -------------------------------------------------------------

def der_read(buf, pos):
    """One DER element at pos: (tag, content start, content end)."""
    tag = buf[pos]
    n = buf[pos + 1]
    pos += 2
    if n & 0x80:
        k = n & 0x7f
        n = int.from_bytes(buf[pos:pos + k], "big")
        pos += k
    if pos + n > len(buf):
        raise ValueError("DER element overruns")
    return tag, pos, pos + n


def der_children(buf, start, end):
    out, pos = [], start
    while pos < end:
        tag, s, e = der_read(buf, pos)
        out.append((tag, s, e))
        pos = e
    return out


def rsa_private_ints(pem_text):
    """d, p, q, dP, dQ, qInv of an unencrypted PKCS#8 or PKCS#1 RSA PEM."""
    m = re.search(rb"-----BEGIN (RSA )?PRIVATE KEY-----(.*?)-----END", pem_text, re.S)
    if not m:
        raise ValueError("no PEM private key")
    der = base64.b64decode(b"".join(m.group(2).split()))
    tag, s, e = der_read(der, 0)
    top = der_children(der, s, e)
    if m.group(1) is None:  # PKCS#8: version, algorithm, OCTET STRING(RSAPrivateKey)
        tag, s, e = top[2]
        if tag != 0x04:
            raise ValueError("PKCS#8 without an octet string key")
        inner = der[s:e]
        tag, s, e = der_read(inner, 0)
        der, top = inner, der_children(inner, s, e)
    ints = [der[s:e].lstrip(b"\0") for tag, s, e in top if tag == 0x02]
    # version, n, e, d, p, q, dP, dQ, qInv
    if len(ints) < 9:
        raise ValueError("RSAPrivateKey with %d integers" % len(ints))
    names = ["d", "p", "q", "dP", "dQ", "qInv"]
    return dict(zip(names, ints[3:9]))


def is_material(path, keyring):
    """A key material file: KEYRING/NAME/VERSION.key or .pem."""
    parent = os.path.dirname(os.path.realpath(path))
    return (os.path.dirname(parent) == os.path.realpath(keyring) and
            (path.endswith(".key") or path.endswith(".pem")))


def keyring_secrets(keyring):
    secrets = []
    for name in sorted(os.listdir(keyring)):
        kdir = os.path.join(keyring, name)
        if name.startswith(".") or not os.path.isdir(kdir):
            continue
        for f in sorted(os.listdir(kdir)):
            path = os.path.join(kdir, f)
            label = "local:%s/%s" % (name, f.rsplit(".", 1)[0])
            with open(path, "rb") as fh:
                data = fh.read()
            if f.endswith(".key"):
                if len(data) != 32:
                    raise ValueError("%s: %d bytes, not 32" % (path, len(data)))
                secrets.append(("kek " + label, data))
            elif f.endswith(".pem"):
                for iname, value in rsa_private_ints(data).items():
                    secrets.append(("kek %s rsa-%s" % (label, iname), value))
    return secrets


def walk_files(paths):
    for top in paths:
        if os.path.isfile(top) and not os.path.islink(top):
            yield top
            continue
        for root, dirs, files in os.walk(top):  # does not follow symlinks
            for f in sorted(files):
                p = os.path.join(root, f)
                if os.path.isfile(p) and not os.path.islink(p):
                    yield p


def blob_secrets(keyring, folders):
    """The DEK (and PRK, K_data, K_hdr) of every blob under folders, or None
    when python3 cryptography is missing."""
    sys.dont_write_bytecode = True  # no __pycache__ in the source tree
    sys.path.insert(0, HERE)
    try:
        import renc_check
    except SystemExit:  # renc_check exits when `cryptography` is missing
        return None
    ring = renc_check.Keyring(keyring)
    found = {}
    for path in walk_files(folders):
        with open(path, "rb") as fh:
            buf = fh.read(65536)
        if buf[:4] != b"RENC":
            continue
        try:
            h = renc_check.parse_header(buf)
        except renc_check.Bad:
            continue  # a tampered copy
        for alg, ref, wrapped in h["slots"]:
            try:
                dek = ring.unwrap(alg, ref, wrapped)
            except renc_check.Bad:
                continue
            prk = hmac.new(h["salt"], dek, hashlib.sha256).digest()
            k_hdr = renc_check.hkdf_expand32(prk, b"renc v1 header")
            tag = hmac.new(k_hdr, h["signed"], hashlib.sha256).digest()
            if not hmac.compare_digest(tag, h["tag"]):
                continue  # not this blob's DEK (a tampered header)
            k_data = renc_check.hkdf_expand32(prk, b"renc v1 data")
            did = hashlib.sha256(dek).hexdigest()[:12]
            found.setdefault(dek, did)
            for what, value in (("prk", prk), ("k_data", k_data), ("k_hdr", k_hdr)):
                found.setdefault(value, "%s of dek %s (%s)" % (what, did, os.path.basename(path)))
    out = []
    for value, label in found.items():
        out.append((label if " of dek " in label else "dek " + label, value))
    return out


# ---- the forms a secret could take ------------------------------------------

def b64_cores(secret, altchars):
    """For each alignment a (the secret starts a bytes into a 3-byte group)
    the base64 characters that depend on the secret's bytes only."""
    cores = []
    n = len(secret)
    for a in range(3):
        enc = base64.b64encode(b"\0" * a + secret + b"\0\0\0", altchars)
        first = -(-8 * a // 6)            # first character wholly inside the secret
        last = (8 * (a + n)) // 6         # one past the last such character
        cores.append(enc[first:last])
    return cores


def patterns(secret):
    """(form, bytes, where): where 'raw' is searched in the file as it is,
    'text' also in the file with whitespace and ':' removed."""
    half = len(secret) // 2
    parts = [secret[:half], secret[half:]]
    out = []
    for i, p in enumerate(parts):
        out.append(("raw-half%d" % i, p, "raw"))
        out.append(("hex-half%d" % i, p.hex().encode(), "text"))
        out.append(("HEX-half%d" % i, p.hex().upper().encode(), "text"))
    for a, core in enumerate(b64_cores(secret, None)):
        out.append(("base64-align%d" % a, core, "text"))
    for a, core in enumerate(b64_cores(secret, b"-_")):
        out.append(("base64url-align%d" % a, core, "text"))
    return out


STRIP_CHARS = b" \t\r\n\v\f:"  # taken out for the 'text' view of a file


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--keyring", required=True)
    ap.add_argument("--blobs", action="append", default=[])
    ap.add_argument("command", choices=["scan", "dek-hex"])
    ap.add_argument("paths", nargs="*")
    args = ap.parse_args()

    try:
        secrets = keyring_secrets(args.keyring)
    except (OSError, ValueError) as ex:
        print("secret_scan: keyring: %s" % ex, file=sys.stderr)
        return 2
    deks = blob_secrets(args.keyring, args.blobs) if args.blobs else []
    if args.command == "dek-hex":
        firsts = [v for label, v in (deks or []) if label.startswith("dek ")]
        if not firsts:
            return 3
        print(firsts[0].hex())
        return 0

    kek_count = len(secrets)
    dek_count = 0
    if deks is not None:
        dek_count = sum(1 for label, v in deks if label.startswith("dek "))
        secrets += deks
    pats = [(form, pat, where, label) for label, value in secrets
            for form, pat, where in patterns(value)]

    found = files = scanned = 0
    for path in walk_files(args.paths):
        if is_material(path, args.keyring):
            continue
        with open(path, "rb") as fh:
            data = fh.read()
        files += 1
        scanned += len(data)
        text = data.translate(None, STRIP_CHARS)
        for form, pat, where, label in pats:
            if pat in data or (where == "text" and pat in text):
                print("FOUND %s %s %s" % (path, form, label))
                found += 1
    print("secret_scan: %d key secrets, %s DEKs (%d patterns); %d files, %d bytes; %d found" %
          (kek_count, "unchecked" if deks is None else dek_count, len(pats), files, scanned, found),
          file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
