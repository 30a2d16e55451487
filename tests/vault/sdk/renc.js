'use strict';
// renc.js — a RENC v1 writer and reader, written from shared/FORMAT.md alone
// (Node's crypto only), so that blobs cross between Microsoft's key vault
// client and the reencrypt binary in both directions.  The DEK is wrapped and
// unwrapped by the caller (the SDK); this module does the rest byte for byte:
// HKDF-SHA256 key derivation, the header and its HMAC tag, AES-256-GCM
// segment records.  Compressed records (zstd) are refused: Node 20 has no
// zstd, and the blobs of the test are written without compression.

const crypto = require('node:crypto');

const MAGIC = Buffer.from('RENC', 'ascii');
const UNKNOWN_LEN = 0xffffffffffffffffn;
const TAG_LEN = 16;
const HEADER_TAG_LEN = 32;
const MAX_SLOTS = 8;
const ALGS = new Set([1, 2, 3, 4]);

class FormatError extends Error {}

function fail(message) {
  throw new FormatError(message);
}

// K_data and K_hdr: HKDF-Expand(HKDF-Extract(salt, DEK), info, 32).
function deriveKeys(dek, salt) {
  const expand = (info) =>
    Buffer.from(crypto.hkdfSync('sha256', dek, salt, Buffer.from(info, 'ascii'), 32));
  return { data: expand('renc v1 data'), header: expand('renc v1 header') };
}

function u16(value) {
  if (!Number.isInteger(value) || value < 0 || value > 0xffff) fail(`${value} does not fit 2 bytes`);
  const b = Buffer.alloc(2);
  b.writeUInt16BE(value);
  return b;
}

// The context: entries klen(2) key vlen(2) value, keys strictly ascending by bytes.
function encodeContext(context) {
  const entries = Object.entries(context).map(([k, v]) => [Buffer.from(k, 'utf8'), Buffer.from(v, 'utf8')]);
  entries.sort((a, b) => Buffer.compare(a[0], b[0]));
  const parts = [];
  for (const [k, v] of entries) parts.push(u16(k.length), k, u16(v.length), v);
  return Buffer.concat(parts);
}

function segmentNonce(prefix, index, last) {
  const nonce = Buffer.alloc(12);
  prefix.copy(nonce, 0);
  nonce.writeUInt32BE(index, 7);
  nonce[11] = last ? 1 : 0;
  return nonce;
}

function sealRecord(kData, prefix, index, last, plain) {
  const word = Buffer.alloc(4);
  word.writeUInt32BE(plain.length);            // bit 31 clear: not compressed
  const cipher = crypto.createCipheriv('aes-256-gcm', kData, segmentNonce(prefix, index, last));
  cipher.setAAD(word);
  const body = Buffer.concat([cipher.update(plain), cipher.final()]);
  return Buffer.concat([word, body, cipher.getAuthTag()]);
}

/**
 * seal: a whole RENC v1 blob.
 *   plaintext  Buffer
 *   dek        32 bytes; slots[i].wrapped must wrap it
 *   slots      [{alg, ref, wrapped}]  (1..8)
 *   context    {env: ..., ...}  (env required)
 *   segShift   12..24;  padBytes: zero room left in the header
 */
function seal({ plaintext, dek, slots, context, segShift = 20, padBytes = 64 }) {
  if (dek.length !== 32) fail('the DEK must be 32 bytes');
  if (!context.env) fail('the context needs env');
  if (segShift < 12 || segShift > 24) fail('seg_shift out of range');
  if (slots.length < 1 || slots.length > MAX_SLOTS) fail('1 to 8 slots');
  const salt = crypto.randomBytes(32);
  const prefix = crypto.randomBytes(7);
  const keys = deriveKeys(dek, salt);
  const ctx = encodeContext(context);
  const slotBytes = [];
  for (const s of slots) {
    if (!ALGS.has(s.alg)) fail(`unknown alg ${s.alg}`);
    const ref = Buffer.from(s.ref, 'utf8');
    slotBytes.push(Buffer.from([s.alg]), u16(ref.length), ref, u16(s.wrapped.length), Buffer.from(s.wrapped));
  }
  const fixed = Buffer.alloc(58);
  MAGIC.copy(fixed, 0);
  fixed[4] = 1;
  fixed[5] = segShift;
  fixed.writeBigUInt64BE(BigInt(plaintext.length), 8);
  salt.copy(fixed, 16);
  prefix.copy(fixed, 48);
  fixed[55] = 0;                                 // flags: no compression
  fixed.writeUInt16BE(ctx.length, 56);
  const body = Buffer.concat([fixed, ctx, Buffer.from([slots.length]), ...slotBytes, Buffer.alloc(padBytes)]);
  body.writeUInt16BE(body.length + HEADER_TAG_LEN, 6);
  const tag = crypto.createHmac('sha256', keys.header).update(body).digest();

  const size = 2 ** segShift;
  const count = Math.max(1, Math.ceil(plaintext.length / size));
  const records = [];
  for (let i = 0; i < count; i++) {
    records.push(sealRecord(keys.data, prefix, i, i === count - 1, plaintext.subarray(i * size, (i + 1) * size)));
  }
  return Buffer.concat([body, tag, ...records]);
}

// parseContext: the entries, checked canonical (keys strictly ascending) with env.
function parseContext(bytes) {
  const context = {};
  let at = 0;
  let previous = null;
  while (at < bytes.length) {
    if (at + 2 > bytes.length) fail('context entry cut short');
    const klen = bytes.readUInt16BE(at);
    const key = bytes.subarray(at + 2, at + 2 + klen);
    at += 2 + klen;
    if (at + 2 > bytes.length) fail('context entry cut short');
    const vlen = bytes.readUInt16BE(at);
    const value = bytes.subarray(at + 2, at + 2 + vlen);
    at += 2 + vlen;
    if (at > bytes.length) fail('context entry cut short');
    if (previous !== null && Buffer.compare(previous, key) >= 0) fail('context keys not strictly ascending');
    previous = key;
    context[key.toString('utf8')] = value.toString('utf8');
  }
  if (context.env === undefined) fail('context lacks env');
  return context;
}

/** parseHeader: the header fields and slots, every structural rule of FORMAT.md checked. */
function parseHeader(blob) {
  if (blob.length < 58 || !blob.subarray(0, 4).equals(MAGIC)) fail('not a RENC blob (magic)');
  if (blob[4] !== 1) fail(`version ${blob[4]}`);
  const segShift = blob[5];
  if (segShift < 12 || segShift > 24) fail(`seg_shift ${segShift}`);
  const headerLen = blob.readUInt16BE(6);
  const plaintextLen = blob.readBigUInt64BE(8);
  const flags = blob[55];
  if (flags & ~1) fail('unknown flag bits');
  if (blob.length < headerLen) fail('blob shorter than header_len');
  const ctxLen = blob.readUInt16BE(56);
  let at = 58 + ctxLen;
  if (at + 1 > headerLen - HEADER_TAG_LEN) fail('header_len too short for the context');
  const context = parseContext(blob.subarray(58, at));
  const slotCount = blob[at++];
  if (slotCount < 1 || slotCount > MAX_SLOTS) fail(`slot_count ${slotCount}`);
  const slots = [];
  for (let i = 0; i < slotCount; i++) {
    if (at + 3 > headerLen - HEADER_TAG_LEN) fail('header_len too short for the slots');
    const alg = blob[at];
    if (!ALGS.has(alg)) fail(`unknown alg ${alg}`);
    const refLen = blob.readUInt16BE(at + 1);
    const ref = blob.subarray(at + 3, at + 3 + refLen).toString('utf8');
    at += 3 + refLen;
    if (at + 2 > headerLen - HEADER_TAG_LEN) fail('header_len too short for the slots');
    const wlen = blob.readUInt16BE(at);
    const wrapped = blob.subarray(at + 2, at + 2 + wlen);
    at += 2 + wlen;
    if (at > headerLen - HEADER_TAG_LEN) fail('header_len too short for the slots');
    slots.push({ alg, ref, wrapped: Buffer.from(wrapped) });
  }
  const pad = blob.subarray(at, headerLen - HEADER_TAG_LEN);
  if (pad.some((b) => b !== 0)) fail('header padding is not all zero');
  return {
    segShift, headerLen, plaintextLen, flags, context, slots,
    salt: blob.subarray(16, 48), prefix: blob.subarray(48, 55),
    authenticated: blob.subarray(0, headerLen - HEADER_TAG_LEN),
    tag: blob.subarray(headerLen - HEADER_TAG_LEN, headerLen),
  };
}

function openRecord(kData, prefix, index, last, word, body) {
  const decipher = crypto.createDecipheriv('aes-256-gcm', kData, segmentNonce(prefix, index, last));
  decipher.setAAD(word);
  decipher.setAuthTag(body.subarray(body.length - TAG_LEN));
  return Buffer.concat([decipher.update(body.subarray(0, body.length - TAG_LEN)), decipher.final()]);
}

/**
 * open: the plaintext of blob, given the header (parseHeader) and a DEK that
 * one of its slots wrapped.  The header tag is checked first (constant time);
 * then every record, with the segment count and lengths FORMAT.md requires.
 */
function open(blob, header, dek) {
  const keys = deriveKeys(dek, header.salt);
  const tag = crypto.createHmac('sha256', keys.header).update(header.authenticated).digest();
  if (!crypto.timingSafeEqual(tag, header.tag)) fail('header tag does not verify');
  const size = 2 ** header.segShift;
  const known = header.plaintextLen !== UNKNOWN_LEN;
  const expected = known ? Math.max(1, Math.ceil(Number(header.plaintextLen) / size)) : null;
  const parts = [];
  let at = header.headerLen;
  for (let i = 0; ; i++) {
    if (at + 4 + TAG_LEN > blob.length) fail(`blob ends before record ${i}`);
    const word = blob.subarray(at, at + 4);
    const w = word.readUInt32BE(0);
    if (w & 0x80000000) fail(`record ${i} is zstd-compressed: this reader has no zstd`);
    const end = at + 4 + w + TAG_LEN;
    if (end > blob.length) fail(`blob ends inside record ${i}`);
    const last = known ? i === expected - 1 : end === blob.length;
    let plain;
    try {
      plain = openRecord(keys.data, header.prefix, i, last, word, blob.subarray(at + 4, end));
    } catch (error) {
      fail(`record ${i} does not open (${error.message})`);
    }
    if (!last && plain.length !== size) fail(`record ${i} is not a whole segment`);
    parts.push(plain);
    at = end;
    if (last) break;
  }
  if (at !== blob.length) fail('bytes after the last record');
  const plaintext = Buffer.concat(parts);
  if (known && BigInt(plaintext.length) !== header.plaintextLen) fail('plaintext_len does not match');
  return plaintext;
}

module.exports = { seal, parseHeader, open, deriveKeys, FormatError, UNKNOWN_LEN };
