/* crypto/record.h — the RENC v1 record codec (FORMAT.md §3).
 *
 * A record is  word(4) || ciphertext || tag(16).  Bit 31 of the word says the
 * payload is one zstd frame, bits 0-30 give the ciphertext length.  The
 * nonce is nonce_prefix(7) || index(4, big-endian) || last(1), and the word
 * is the additional data.  These functions seal and open one record in a
 * caller's buffer; where they come from and go to is the caller's business,
 * so a pipeline can spread the records of one blob over many threads.
 */
#ifndef RENC_CRYPTO_RECORD_H
#define RENC_CRYPTO_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/aead.h"

#define RENC_RECORD_WORD_LEN 4
#define RENC_RECORD_OVERHEAD (RENC_RECORD_WORD_LEN + RENC_AEAD_TAG_LEN)
#define RENC_RECORD_COMPRESSED 0x80000000u
#define RENC_RECORD_LEN_MASK 0x7fffffffu

/* The largest a record can be for segment size S. */
static inline size_t renc_record_max_len(uint32_t seg_size)
{
    return (size_t)seg_size + RENC_RECORD_OVERHEAD;
}

/* Per-thread compression state; NULL where compression is off. */
struct renc_zstd;

/* renc_zstd_new: compressor at `level` (1..19) plus decompressor, with
 * scratch for segments up to seg_size bytes. */
int renc_zstd_new(struct renc_zstd **out, int level, uint32_t seg_size);
void renc_zstd_free(struct renc_zstd *z);

/* renc_record_nonce: builds the 12-byte nonce of record `index`. */
void renc_record_nonce(uint8_t nonce[RENC_AEAD_NONCE_LEN],
                       const uint8_t prefix[7], uint32_t index, int last);

/* renc_record_seal: seals one segment into out (room for
 * renc_record_max_len(plain_len) bytes).  With z non-NULL the payload is the
 * zstd frame when that is smaller than the segment, else the raw bytes.
 * `plain` may be out + RENC_RECORD_WORD_LEN (sealed in place, no copy).
 * Writes the record length to *out_len. */
int renc_record_seal(struct renc_aead *aead, struct renc_zstd *z,
                     uint8_t *out, size_t max_out, size_t *out_len,
                     const uint8_t *plain, size_t plain_len,
                     const uint8_t prefix[7], uint32_t index, int last);

/* renc_record_parse_word: checks a record word against the header's flags
 * and segment size: the compression bit only with flags bit 0, a length no
 * more than S (raw) or under S (compressed).  Writes the whole record length
 * (word, ciphertext and tag) to *record_len. */
int renc_record_parse_word(uint32_t word, uint8_t flags, uint32_t seg_size,
                           size_t *record_len);

/* renc_record_open: opens the record at rec (rec_len bytes, as given by
 * renc_record_parse_word) in place.  On success *plain points at the
 * segment plaintext: inside rec when the payload was raw, inside z's scratch
 * when it was compressed (valid until the next call with z), and *plain_len
 * is its length (at most seg_size).  Compressed records need z.  On failure
 * the ciphertext area of rec is zeroed and nothing is returned. */
int renc_record_open(struct renc_aead *aead, struct renc_zstd *z,
                     const uint8_t **plain, size_t *plain_len,
                     uint8_t *rec, size_t rec_len, uint32_t seg_size,
                     const uint8_t prefix[7], uint32_t index, int last);

/* renc_record_verify: checks a raw (uncompressed) record at rec as
 * renc_record_open would, leaving rec as it was and no plaintext anywhere
 * (renc_aead_verify); *plain_len is the segment's length.  A compressed
 * record is -RENC_E_INVALID here: its frame must be opened and
 * decompressed to be checked (renc_record_open). */
int renc_record_verify(struct renc_aead *aead, size_t *plain_len, const uint8_t *rec,
                       size_t rec_len, const uint8_t prefix[7], uint32_t index, int last);

/* renc_record_open_into: as renc_record_open, but the record stays
 * untouched (it may be read-only, e.g. mapped) and the payload is decrypted
 * into scratch (room for the record's payload, at most seg_size bytes).
 * *plain points into scratch, or into z's scratch for a compressed record.
 * On failure scratch is zeroed. */
int renc_record_open_into(struct renc_aead *aead, struct renc_zstd *z,
                          const uint8_t **plain, size_t *plain_len, uint8_t *scratch,
                          const uint8_t *rec, size_t rec_len, uint32_t seg_size,
                          const uint8_t prefix[7], uint32_t index, int last);

/* renc_record_reseal: rekey of one record without decompressing: opens rec
 * under `from` and seals the same payload (same word) under `to` with the
 * new prefix, in place.  On failure rec's payload is zeroed. */
int renc_record_reseal(struct renc_aead *from, struct renc_aead *to,
                       uint8_t *rec, size_t rec_len,
                       const uint8_t old_prefix[7], const uint8_t new_prefix[7],
                       uint32_t index, int last);

#endif
