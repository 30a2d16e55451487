#!/usr/bin/env python3
"""Seeds for tests/fuzz/corpus/{keyring,manifest,roundtrip,archive} (the input
layouts are described at the top of tests/fuzz/fuzz_<target>.c).  Run from the
source root; writes only named seeds (scripts/fuzz.sh adds the hashed ones).
With target names as arguments (`mkseeds.py archive`) only their seeds are
written, so the other corpora, whose keys are made afresh, stay as they are.  The RSA
and EC keys are made on the spot with the openssl command: throwaway test keys
that guard nothing."""
import os
import random
import struct
import subprocess
import sys
import tempfile

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'corpus')
ONLY = set(sys.argv[1:])  # the targets to write; none: every one


def put(target, name, data):
    if ONLY and target not in ONLY:
        return
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    assert len(data) < 65536
    with open(os.path.join(d, name), 'wb') as f:
        f.write(data)


# ---- keyring: mode byte, then the file ------------------------------------
STATE, PEM, AES, STATE_FLIP = 0, 1, 2, 4
H = b'renc-keyring-state 1\n'
states = {
    'ok-docs-example': H + b'current 2\nkey enabled\nversion 1 disabled 1795000000\n'
                           b'version 2 enabled 1795003600\n',
    'ok-one-version': H + b'current 1\nkey enabled\nversion 1 enabled 1700000000\n',
    'ok-revoked-key': H + b'current 3\nkey revoked\nversion 1 revoked 1\nversion 2 disabled 2\n'
                          b'version 3 enabled 3\n',
    'ok-lines-any-order': H + b'version 1 enabled 5\nkey enabled\nversion 2 enabled 6\ncurrent 1\n',
    'ok-blank-lines-and-tabs': b'\n\n' + H + b'\ncurrent\t1\n\nkey  enabled\nversion 1\tenabled\t0\n\n',
    'ok-crlf-after-header': H + b'current 1\r\nkey enabled\r\nversion 1 enabled 0\r\n',
    'ok-no-final-newline': H + b'current 1\nkey enabled\nversion 1 enabled 0',
    'ok-version-max-len': H + b'current ' + b'v' * 64 + b'\nkey enabled\nversion ' + b'v' * 64 +
                          b' enabled 0\n',
    'ok-names-dots-dashes': H + b'current a.b_c-1\nkey enabled\nversion a.b_c-1 enabled 0\n'
                            b'version .hidden enabled 0\n',
    'ok-created-negative': H + b'current 1\nkey enabled\nversion 1 enabled -42\n',
    'ok-created-int64-max': H + b'current 1\nkey enabled\nversion 1 enabled 9223372036854775807\n',
    'ok-created-overflows': H + b'current 1\nkey enabled\nversion 1 enabled 99999999999999999999\n',
    'ok-later-lines-win': H + b'current 1\ncurrent 2\nkey revoked\nkey enabled\n'
                          b'version 1 enabled 0\nversion 2 enabled 0\n',
    'bad-nul-inside': H + b'current 1\nkey enabled\nversion 1 enabled 0\n\0key revoked\n',
    'ok-many-versions': H + b'current 17\nkey enabled\n' +
                        b''.join(b'version %d %s %d\n' % (i, [b'enabled', b'disabled', b'revoked'][i % 3],
                                                          1700000000 + i) for i in range(1, 40)),
    'bad-empty': b'',
    'bad-header-only': H,
    'bad-header-v2': b'renc-keyring-state 2\ncurrent 1\nkey enabled\nversion 1 enabled 0\n',
    'bad-header-crlf': b'renc-keyring-state 1\r\ncurrent 1\nkey enabled\nversion 1 enabled 0\n',
    'bad-no-key-line': H + b'current 1\nversion 1 enabled 0\n',
    'bad-no-current': H + b'key enabled\nversion 1 enabled 0\n',
    'bad-no-versions': H + b'current 1\nkey enabled\n',
    'bad-current-not-listed': H + b'current 2\nkey enabled\nversion 1 enabled 0\n',
    'bad-duplicate-version': H + b'current 1\nkey enabled\nversion 1 enabled 0\nversion 1 disabled 1\n',
    'bad-key-disabled': H + b'current 1\nkey disabled\nversion 1 enabled 0\n',
    'bad-unknown-state': H + b'current 1\nkey enabled\nversion 1 paused 0\n',
    'bad-extra-field': H + b'current 1\nkey enabled\nversion 1 enabled 0 extra\n',
    'bad-created-junk': H + b'current 1\nkey enabled\nversion 1 enabled 12ab\n',
    'bad-created-missing': H + b'current 1\nkey enabled\nversion 1 enabled\n',
    'bad-version-65-chars': H + b'current 1\nkey enabled\nversion 1 enabled 0\nversion ' + b'v' * 65 +
                            b' enabled 0\n',
    'bad-version-dotdot': H + b'current 1\nkey enabled\nversion 1 enabled 0\nversion .. enabled 0\n',
    'bad-version-slash': H + b'current 1\nkey enabled\nversion 1 enabled 0\nversion a/b enabled 0\n',
    'bad-current-bad-name': H + b'current ../1\nkey enabled\nversion 1 enabled 0\n',
    'bad-unknown-keyword': H + b'current 1\nkey enabled\nversion 1 enabled 0\nowner root\n',
    'bad-no-material': H + b'current 1\nkey enabled\nversion 1 enabled 0\nversion x2 enabled 0\n',
    'err-eio-version': H + b'current 1\nkey enabled\nversion 1 enabled 0\nversion eio enabled 0\n',
}
for name, text in states.items():
    put('keyring', 'state-' + name, bytes([STATE]) + text)
put('keyring', 'state-flip-ok-docs-example', bytes([STATE_FLIP]) + states['ok-docs-example'])
put('keyring', 'state-flip-ok-many-versions', bytes([STATE_FLIP | 3]) + states['ok-many-versions'])

rnd = random.Random(20240611)
put('keyring', 'aes-32', bytes([AES]) + bytes(rnd.randrange(256) for _ in range(32)))
put('keyring', 'aes-32-zero', bytes([AES]) + bytes(32))
put('keyring', 'aes-31', bytes([AES]) + bytes(range(31)))
put('keyring', 'aes-33', bytes([AES]) + bytes(range(33)))
put('keyring', 'aes-empty', bytes([AES]))


def openssl(*args):
    return subprocess.run(['openssl', *args], check=True, capture_output=True).stdout


with tempfile.TemporaryDirectory() as tmp:
    k = os.path.join(tmp, 'k.pem')
    openssl('genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', k)
    pkcs8 = open(k, 'rb').read()
    put('keyring', 'pem-rsa2048-pkcs8', bytes([PEM]) + pkcs8)
    put('keyring', 'pem-rsa2048-traditional',
        bytes([PEM]) + openssl('rsa', '-in', k, '-traditional'))
    put('keyring', 'pem-rsa2048-public', bytes([PEM]) + openssl('pkey', '-in', k, '-pubout'))
    put('keyring', 'pem-rsa2048-encrypted',
        bytes([PEM]) + openssl('pkey', '-in', k, '-aes256', '-passout', 'pass:x'))
    put('keyring', 'pem-rsa2048-truncated', bytes([PEM]) + pkcs8[:len(pkcs8) // 2])
    put('keyring', 'pem-rsa2048-cert-before-key',
        bytes([PEM]) + b'-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n' + pkcs8)
    openssl('genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:1024', '-out', k)
    put('keyring', 'pem-rsa1024-too-small', bytes([PEM]) + open(k, 'rb').read())
    openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', k)
    put('keyring', 'pem-ec-p256-wrong-type', bytes([PEM]) + open(k, 'rb').read())
put('keyring', 'pem-garbage', bytes([PEM]) + b'-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n')
put('keyring', 'pem-empty', bytes([PEM]))

# ---- manifest: the bytes of a manifest, run in the fixture folder --------
manifests = {
    'simple': b'a\nb\nsub/c\n',
    'comments-and-blanks': b'# a comment\n\na\n\n   \n# another\nsub/deeper/d\n#a\n',
    'duplicates-every-spelling': b'a\n./a\nsub/../a\n.//a\nldir/c\nsub/c\nsub/./c\nsub/deeper/../c\n',
    'crlf': b'a\r\nb\r\n\r\nsub/c\r\r\n',
    'no-final-newline': b'a\nb',
    'specials-and-missing': b'sub\nfifo\ndangling\nlink-a\nmissing\nsub/missing/x\na/x\n',
    'nul-inside-lines': b'a\nb\0c\n#\0comment\n\0\n',
    'spaces-and-hash': b'with space\n ./a\na \n./#hash\n#hash\n',
    'absolute': b'/\n/nonexistent/renc/x\n//\n',
    'empty-file': b'',
    'only-newlines': b'\n\n\r\n\r',
    'too-long-path': b'a' * 4200 + b'\nb\n',
    'deep-dots': b'sub/deeper/../../sub/deeper/d\nldir/deeper/d\n' + b'./' * 300 + b'b\n',
}
for name, text in manifests.items():
    put('manifest', name, text)

# ---- roundtrip: o0 o1 o2 o3, then the plaintext ----------------------------
def text(n):
    s = b'the quick brown fox jumps over the lazy dog 0123456789\n'
    return (s * (n // len(s) + 1))[:n]


def randb(n):
    return bytes(rnd.randrange(256) for _ in range(n))


def rt(name, o0, at, mask, plain):
    put('roundtrip', name, bytes([o0, at >> 8 & 255, at & 255, mask]) + plain)


COMPRESS, UNKNOWN, TWO, NOROOM, BACKUP = 0x08, 0x10, 0x20, 0x40, 0x80
put('roundtrip', 'empty-input', b'')
rt('empty-plain-s12', 0, 0, 1, b'')
rt('empty-plain-stdin-zstd', UNKNOWN | COMPRESS, 7, 0x80, b'')
rt('one-byte', 0, 300, 0xff, b'x')
rt('s12-4095', 0, 1000, 1, randb(4095))
rt('s12-4096-exact', 0, 4200, 2, randb(4096))
rt('s12-4097-tamper-header', 0, 20, 4, randb(4097))
rt('s12-8193-stdin', UNKNOWN, 8300, 8, randb(8193))
rt('s12-text-zstd', COMPRESS, 5000, 16, text(20000))
rt('s13-text-zstd-stdin', 1 | COMPRESS | UNKNOWN, 100, 32, text(30000))
rt('s14-two-slots-backup', 2 | TWO | BACKUP, 150, 64, randb(12000))
rt('s15-no-room-two-slots', 3 | NOROOM | TWO, 90, 1, text(9000))
rt('s16-zstd-mixed', 4 | COMPRESS, 65535, 0x55, text(9000) + randb(9000))
rt('s12-zstd-random-stays-raw', COMPRESS, 12345, 3, randb(10000))
rt('all-options', 0xff, 0xffff, 0xff, text(16384))

# ---- archive: split(2, BE), then the archive (env/archive.h) --------
# A valid seed is exactly what renc_archive_writer writes for its entries:
# fuzz_archive checks that every archive it accepts is rewritten byte for
# byte by the writer.
MAGIC = b'RENCBAK1'


def ar_entry(name, content, size=None, raw_len=None):
    name = name.encode() if isinstance(name, str) else name
    return (b'\x01' + struct.pack('>H', len(name) if raw_len is None else raw_len) + name +
            struct.pack('>Q', len(content) if size is None else size) + content)


def ar_end(entries, nbytes):
    return b'\x00' + struct.pack('>QQ', entries, nbytes)


def archive(entries):
    """entries: (name, content) in order; a well-formed archive."""
    return (MAGIC + b''.join(ar_entry(n, c) for n, c in entries) +
            ar_end(len(entries), sum(len(c) for _, c in entries)))


def ar(name, data, split=None):
    split = len(data) // 2 if split is None else split
    put('archive', name, struct.pack('>H', split & 0xffff) + data)


sample = [('a', b'hello'), ('a/empty', b''), ('b/large.bin', randb(3000)),
          ('b/\u00e9t\u00e9/\u20ac', b'ok'), ('c', MAGIC + b'\x00\x01' + ar_end(1, 1))]
good = archive(sample)
ar('ok-empty-archive', archive([]))
ar('ok-one-entry', archive([('blob', b'x')]))
ar('ok-one-empty-entry', archive([('blob', b'')]))
ar('ok-sample-split-in-magic', good, 3)
ar('ok-sample-split-in-name', good, 12)
ar('ok-sample-split-in-size', good, 20)
ar('ok-sample-split-in-content', good, 1500)
ar('ok-sample-split-in-end', good, len(good) - 5)
ar('ok-sample-split-at-end', good, len(good))
ar('ok-sample-split-past-end', good, 0xffff)
ar('ok-name-4096', archive([('n' * 4096, b'z')]))
ar('ok-names-that-look-odd', archive([('...', b''), ('.a', b'1'), ('a b/c', b'2'), ('a.', b''),
                                      ('a/..b', b'3')]))
ar('ok-prefix-then-longer', archive([('a', b'1'), ('a/b', b'2'), ('a0', b'3'), ('b', b'4')]))
ar('ok-many-small', archive([('d/%04d' % i, bytes([i & 255]) * (i % 5)) for i in range(200)]))

ar('bad-empty', b'')
ar('bad-magic-only', MAGIC)
ar('bad-magic', b'RENCBAK2' + ar_end(0, 0))
ar('bad-renc-blob-magic', b'RENC\x01\x0c' + bytes(40))
for t in (2, 0x7f, 0xff):
    ar('bad-type-%02x' % t, MAGIC + bytes([t]) + ar_end(0, 0))
for label, name in [('empty', b''), ('dot', b'.'), ('dotdot', b'..'), ('leading-slash', b'/a'),
                    ('trailing-slash', b'a/'), ('double-slash', b'a//b'), ('dot-component', b'a/./b'),
                    ('dotdot-component', b'a/../b'), ('nul', b'a\x00b'), ('bad-utf8', b'\xff'),
                    ('cut-utf8', b'a\xc3'), ('overlong-utf8', b'\xc0\xaf'),
                    ('surrogate', b'\xed\xa0\x80'), ('too-long', b'n' * 4097)]:
    ar('bad-name-' + label, MAGIC + ar_entry(name, b'') + ar_end(1, 0))
ar('bad-name-len-65535', MAGIC + ar_entry(b'abc', b'', raw_len=0xffff) + ar_end(1, 0))
ar('bad-out-of-order', archive([('b', b'1'), ('a', b'2')]))
ar('bad-duplicate', archive([('a', b'1'), ('a', b'2')]))
ar('bad-longer-before-prefix', MAGIC + ar_entry('a/b', b'') + ar_entry('a', b'') + ar_end(2, 0))
ar('bad-end-entries', MAGIC + ar_entry('a', b'12') + ar_end(2, 2))
ar('bad-end-bytes', MAGIC + ar_entry('a', b'12') + ar_end(1, 3))
ar('bad-end-zeros', MAGIC + ar_entry('a', b'12') + ar_end(0, 0))
ar('bad-trailing-byte', good + b'\x00')
ar('bad-two-ends', archive([]) + ar_end(0, 0))
ar('bad-cut-in-content', good[:1500])
ar('bad-cut-in-end', good[:-1])
ar('bad-cut-after-entry', MAGIC + ar_entry('a', b'12'))
ar('bad-size-huge', MAGIC + ar_entry('a', b'xyz', size=2**64 - 1))
ar('bad-sizes-overflow', MAGIC + ar_entry('a', b'x') + ar_entry('b', b'', size=2**64 - 1))
