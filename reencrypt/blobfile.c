#include "reencrypt/blobfile.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/alloc.h"
#include "common/bytes.h"
#include "common/error.h"
#include "crypto/aead.h"
#include "crypto/record.h"
#include "io/file.h"

static void renc_status_init(struct renc_blob_status *st)
{
    memset(st, 0, sizeof *st);
    st->slot = -1;
}

/* Builds and writes the header of a new blob; fills *keys. */
static int renc_seal_header(struct renc_keystore *ks, const struct renc_seal_opts *o,
                            int out_fd, uint64_t known_len, struct renc_header *h,
                            struct renc_blob_keys *keys, struct renc_blob_status *st)
{
    struct renc_key *dek = NULL;
    uint8_t *buf = NULL;
    char created[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(created, sizeof created, "%Y-%m-%dT%H:%M:%SZ", &tm);

    h->seg_shift = o->seg_shift;
    h->plaintext_len = known_len;
    h->flags = o->compress_level > 0 ? RENC_FLAG_COMPRESSED : 0;
    int rc = renc_random_bytes(h->salt, sizeof h->salt);
    if (rc == 0)
        rc = renc_random_bytes(h->nonce_prefix, sizeof h->nonce_prefix);
    if (rc == 0)
        rc = renc_context_set(&h->ctx, "env", o->env);
    if (rc == 0)
        rc = renc_context_set(&h->ctx, "created", created);
    if (rc == 0 && o->kind)
        rc = renc_context_set(&h->ctx, "kind", o->kind);
    if (rc == 0 && o->name)
        rc = renc_context_set(&h->ctx, "name", o->name);
    if (rc == 0 && o->source_env)
        rc = renc_context_set(&h->ctx, "source-env", o->source_env);
    if (rc == 0)
        rc = renc_key_random(&dek, 32);
    for (size_t i = 0; rc == 0 && i < o->key_ref_count; i++) {
        rc = renc_keystore_wrap_slot(ks, h, o->key_refs[i], dek);
        if (rc) {
            st->slot = (int)i;
            snprintf(st->ref, sizeof st->ref, "%s", o->key_refs[i]);
        }
    }
    if (rc == 0)
        rc = renc_blob_keys_derive(keys, dek, h->salt);
    if (rc)
        goto out;
    size_t len = renc_header_min_len(h) + o->header_room;
    if (len > RENC_MAX_HEADER_LEN) {
        rc = -RENC_E_TOO_BIG;
        goto out;
    }
    h->header_len = (uint16_t)len;
    buf = renc_malloc(len);
    if (!buf) {
        rc = -RENC_E_NOMEM;
        goto out;
    }
    if ((rc = renc_header_serialize(buf, len, h, keys->k_hdr)) == 0)
        rc = renc_file_write_full(out_fd, buf, len);
out:
    renc_free(buf);
    renc_key_free(dek);
    return rc;
}

int renc_blob_seal(struct renc_keystore *ks, const struct renc_seal_opts *o,
                   int in_fd, int out_fd, uint64_t known_len, struct renc_blob_status *st)
{
    struct renc_header h;
    struct renc_blob_keys keys = {0};
    struct renc_aead *aead = NULL;
    struct renc_zstd *z = NULL;
    uint8_t *bufs[2] = {NULL, NULL};
    size_t rec_max = 0; /* set before bufs are allocated; out: reads it */
    memset(&h, 0, sizeof h);
    renc_status_init(st);

    RENC_RETURN_IF(!o->env || o->key_ref_count == 0 || o->key_ref_count > RENC_MAX_SLOTS,
                   -RENC_E_INVALID);
    int rc = renc_seal_header(ks, o, out_fd, known_len, &h, &keys, st);
    if (rc)
        goto out;
    uint32_t seg = renc_header_seg_size(&h);
    rec_max = renc_record_max_len(seg);
    if ((rc = renc_aead_new(&aead, keys.k_data, RENC_AEAD_BACKEND_AUTO)))
        goto out;
    if (o->compress_level > 0 && (rc = renc_zstd_new(&z, o->compress_level, seg)))
        goto out;
    bufs[0] = renc_malloc(rec_max);
    bufs[1] = renc_malloc(rec_max);
    if (!bufs[0] || !bufs[1]) {
        rc = -RENC_E_NOMEM;
        goto out;
    }

    /* Each segment is read into its record buffer after the word, so it is
     * sealed in place.  One segment of lookahead tells which one is last,
     * which a pipe cannot tell otherwise. */
    size_t got = 0, next_got = 0;
    int cur = 0;
    if ((rc = renc_file_read_full(in_fd, bufs[cur] + RENC_RECORD_WORD_LEN, seg, &got)))
        goto out;
    for (uint64_t i = 0;; i++) {
        int last = got < seg;
        if (!last) {
            if ((rc = renc_file_read_full(in_fd, bufs[!cur] + RENC_RECORD_WORD_LEN, seg,
                                          &next_got)))
                goto out;
            last = next_got == 0;
        }
        if (i > UINT32_MAX) {
            rc = -RENC_E_TOO_BIG;
            goto out;
        }
        size_t rec_len;
        if ((rc = renc_record_seal(aead, z, bufs[cur], rec_max, &rec_len,
                                   bufs[cur] + RENC_RECORD_WORD_LEN, got, h.nonce_prefix,
                                   (uint32_t)i, last)))
            goto out;
        if ((rc = renc_file_write_full(out_fd, bufs[cur], rec_len)))
            goto out;
        st->plaintext_bytes += got;
        st->records++;
        if (last)
            break;
        cur = !cur;
        got = next_got;
    }
    if (known_len != RENC_PLAINTEXT_UNKNOWN && st->plaintext_bytes != known_len)
        rc = -RENC_E_LENGTH_MISMATCH; /* the input changed while it was read */
out:
    for (int i = 0; i < 2; i++) {
        if (bufs[i])
            renc_secmem_wipe(bufs[i], rec_max);
        renc_free(bufs[i]);
    }
    renc_zstd_free(z);
    renc_aead_free(aead);
    renc_blob_keys_cleanup(&keys);
    renc_header_cleanup(&h);
    return rc;
}

int renc_blob_read_header(int fd, struct renc_header *out, uint8_t **raw)
{
    uint8_t prefix[RENC_PREFIX_LEN];
    size_t got;
    uint16_t header_len;
    int rc = renc_file_read_full(fd, prefix, sizeof prefix, &got);
    if (rc)
        return rc;
    if ((rc = renc_header_peek(&header_len, prefix, got)))
        return rc;
    uint8_t *buf = renc_malloc(header_len);
    RENC_RETURN_IF(!buf, -RENC_E_NOMEM);
    memcpy(buf, prefix, sizeof prefix);
    rc = renc_file_read_full(fd, buf + sizeof prefix, header_len - sizeof prefix, &got);
    if (rc == 0 && got != header_len - sizeof prefix)
        rc = -RENC_E_TRUNCATED;
    if (rc == 0)
        rc = renc_header_parse(out, buf, header_len);
    if (rc == 0 && raw)
        *raw = buf;
    else
        renc_free(buf);
    return rc;
}

/* Opens the header's DEK and notes in st which slot (and key ref) opened
 * it, or which one the failure concerns. */
static int renc_open_noting_slot(struct renc_keystore *ks, struct renc_opened *opened,
                                 const struct renc_header *h, const uint8_t *raw,
                                 struct renc_blob_status *st)
{
    int failed_slot = -1;
    int rc = renc_keystore_open_header(ks, opened, h, raw, &failed_slot);
    st->slot = rc ? failed_slot : opened->slot;
    if (st->slot >= 0)
        snprintf(st->ref, sizeof st->ref, "%s", h->slots[st->slot].ref);
    return rc;
}

int renc_blob_open(struct renc_keystore *ks, int in_fd, int out_fd,
                   struct renc_header *header_out, struct renc_blob_status *st)
{
    struct renc_header h;
    struct renc_opened opened;
    struct renc_aead *aead = NULL;
    struct renc_zstd *z = NULL;
    uint8_t *raw = NULL, *rec = NULL;
    size_t rec_max = 0;
    memset(&h, 0, sizeof h);
    memset(&opened, 0, sizeof opened);
    renc_status_init(st);

    int rc = renc_blob_read_header(in_fd, &h, &raw);
    if (rc)
        return rc;
    if ((rc = renc_open_noting_slot(ks, &opened, &h, raw, st)))
        goto out;

    uint32_t seg = renc_header_seg_size(&h);
    uint64_t count = renc_header_seg_count(&h); /* 0: length unknown */
    rec_max = renc_record_max_len(seg);
    if ((rc = renc_aead_new(&aead, opened.keys.k_data, RENC_AEAD_BACKEND_AUTO)))
        goto out;
    if ((h.flags & RENC_FLAG_COMPRESSED) && (rc = renc_zstd_new(&z, 1, seg)))
        goto out;
    rec = renc_malloc(rec_max);
    if (!rec) {
        rc = -RENC_E_NOMEM;
        goto out;
    }
    if (count > (uint64_t)UINT32_MAX + 1) {
        rc = -RENC_E_LENGTH_MISMATCH; /* more segments than indexes */
        goto out;
    }

    st->in_records = 1;
    /* The word of the next record is read ahead: end of file right after a
     * record is what marks the last one when the length is unknown. */
    uint8_t word[RENC_RECORD_WORD_LEN];
    size_t got;
    if ((rc = renc_file_read_full(in_fd, word, sizeof word, &got)))
        goto out;
    for (uint64_t i = 0;; i++) {
        st->record = i;
        if (got < sizeof word) {
            rc = -RENC_E_TRUNCATED;
            goto out;
        }
        if (i > UINT32_MAX) {
            rc = -RENC_E_TOO_BIG;
            goto out;
        }
        size_t rec_len;
        if ((rc = renc_record_parse_word(renc_load_be32(word), h.flags, seg, &rec_len)))
            goto out;
        memcpy(rec, word, sizeof word);
        if ((rc = renc_file_read_full(in_fd, rec + sizeof word, rec_len - sizeof word, &got)))
            goto out;
        if (got != rec_len - sizeof word) {
            rc = -RENC_E_TRUNCATED;
            goto out;
        }
        if ((rc = renc_file_read_full(in_fd, word, sizeof word, &got)))
            goto out;
        int at_eof = got == 0;
        int last = count ? i + 1 == count : at_eof;
        if (count && !last && at_eof) {
            rc = -RENC_E_TRUNCATED;
            goto out;
        }
        const uint8_t *plain;
        size_t plain_len;
        if ((rc = renc_record_open(aead, z, &plain, &plain_len, rec, rec_len, seg,
                                   h.nonce_prefix, (uint32_t)i, last)))
            goto out;
        /* Every segment but the last is exactly S; the last holds the rest. */
        uint64_t want = !last ? seg : count ? h.plaintext_len - (count - 1) * seg : plain_len;
        if (plain_len != want) {
            rc = -RENC_E_LENGTH_MISMATCH;
            goto out;
        }
        if (out_fd >= 0 && (rc = renc_file_write_full(out_fd, plain, plain_len)))
            goto out;
        st->plaintext_bytes += plain_len;
        st->records++;
        if (last) {
            if (!at_eof)
                rc = -RENC_E_TRAILING;
            break;
        }
    }
    if (rc == 0 && header_out) {
        *header_out = h;
        memset(&h, 0, sizeof h);
    }
out:
    if (rec) {
        renc_secmem_wipe(rec, rec_max);
        renc_free(rec);
    }
    renc_zstd_free(z);
    renc_aead_free(aead);
    renc_opened_cleanup(&opened);
    renc_header_cleanup(&h);
    renc_free(raw);
    return rc;
}

int renc_blob_verify_mem(struct renc_keystore *ks, const uint8_t *buf, size_t len,
                         struct renc_blob_status *st)
{
    struct renc_header h;
    struct renc_opened opened;
    struct renc_aead *aead = NULL;
    struct renc_zstd *z = NULL;
    uint8_t *scratch = NULL;
    size_t scratch_len = 0;
    memset(&opened, 0, sizeof opened);
    renc_status_init(st);
    int rc = renc_header_parse(&h, buf, len);
    if (rc)
        return rc;
    if ((rc = renc_open_noting_slot(ks, &opened, &h, buf, st)))
        goto out;
    uint32_t seg = renc_header_seg_size(&h);
    uint64_t count = renc_header_seg_count(&h);
    if ((rc = renc_aead_new(&aead, opened.keys.k_data, RENC_AEAD_BACKEND_AUTO)))
        goto out;
    if ((h.flags & RENC_FLAG_COMPRESSED) && (rc = renc_zstd_new(&z, 1, seg)))
        goto out;
    /* A payload is at most S bytes, and never more than the blob. */
    scratch_len = len < seg ? len : seg;
    if (!(scratch = renc_malloc(scratch_len ? scratch_len : 1))) {
        rc = -RENC_E_NOMEM;
        goto out;
    }
    st->in_records = 1;
    size_t off = h.header_len;
    for (uint64_t i = 0;; i++) {
        st->record = i;
        size_t rec_len;
        if (len - off < RENC_RECORD_WORD_LEN || i > UINT32_MAX) {
            rc = i > UINT32_MAX ? -RENC_E_TOO_BIG : -RENC_E_TRUNCATED;
            goto out;
        }
        if ((rc = renc_record_parse_word(renc_load_be32(buf + off), h.flags, seg, &rec_len)))
            goto out;
        if (rec_len > len - off) {
            rc = -RENC_E_TRUNCATED;
            goto out;
        }
        int at_end = off + rec_len == len;
        int last = count ? i + 1 == count : at_end;
        if (count && !last && at_end) {
            rc = -RENC_E_TRUNCATED;
            goto out;
        }
        const uint8_t *plain;
        size_t plain_len;
        if ((rc = renc_record_open_into(aead, z, &plain, &plain_len, scratch, buf + off, rec_len,
                                        seg, h.nonce_prefix, (uint32_t)i, last)))
            goto out;
        uint64_t want = !last ? seg : count ? h.plaintext_len - (count - 1) * seg : plain_len;
        if (plain_len != want) {
            rc = -RENC_E_LENGTH_MISMATCH;
            goto out;
        }
        st->plaintext_bytes += plain_len;
        st->records++;
        off += rec_len;
        if (last) {
            if (!at_end)
                rc = -RENC_E_TRAILING;
            break;
        }
    }
out:
    if (scratch) {
        renc_secmem_wipe(scratch, scratch_len);
        renc_free(scratch);
    }
    renc_zstd_free(z);
    renc_aead_free(aead);
    renc_opened_cleanup(&opened);
    renc_header_cleanup(&h);
    return rc;
}
