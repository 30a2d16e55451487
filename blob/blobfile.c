#include "blob/blobfile.h"

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
            /* A refusal of the version (disabled, expired) names it. */
            char v[RENC_MAX_REF_LEN + 1];
            if ((rc == -RENC_E_KEY_DISABLED || rc == -RENC_E_KEY_EXPIRED) &&
                renc_keystore_may_wrap(ks, v, sizeof v, o->key_refs[i]) == rc && v[0])
                snprintf(st->ref, sizeof st->ref, "%s", v);
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

/* The push-fed sealer.  One record buffer: the segment being filled sits
 * after the word, so a segment is sealed in place.  A full segment waits
 * until more plaintext arrives (then it is not the last) or until finish
 * (then it is): a stream cannot tell otherwise which segment ends it. */
struct renc_sealer {
    int out_fd;
    uint64_t known_len;          /* or RENC_PLAINTEXT_UNKNOWN */
    struct renc_blob_status *st; /* the caller's, or own_st */
    struct renc_blob_status own_st;
    struct renc_header h;
    struct renc_blob_keys keys;
    struct renc_aead *aead;
    struct renc_zstd *z;
    uint8_t *rec;                /* rec_max bytes; plaintext at rec + word */
    size_t rec_max;
    size_t touched;              /* bytes of rec ever written: what free wipes */
    uint32_t seg;
    size_t fill;                 /* plaintext bytes buffered */
    uint64_t index;              /* index of the next record */
    uint64_t accepted;           /* plaintext bytes taken by write */
    int rc;                      /* sticky: after a failure, only failures */
    int finished;
};

void renc_sealer_free(struct renc_sealer *s)
{
    if (!s)
        return;
    if (s->rec) {
        renc_secmem_wipe(s->rec, s->touched);
        renc_free(s->rec);
    }
    renc_zstd_free(s->z);
    renc_aead_free(s->aead);
    renc_blob_keys_cleanup(&s->keys);
    renc_header_cleanup(&s->h);
    renc_free(s);
}

int renc_sealer_new(struct renc_sealer **out, struct renc_keystore *ks,
                    const struct renc_seal_opts *o, int out_fd, uint64_t known_len,
                    struct renc_blob_status *st)
{
    if (st)
        renc_status_init(st);
    RENC_RETURN_IF(!o->env || o->key_ref_count == 0 || o->key_ref_count > RENC_MAX_SLOTS,
                   -RENC_E_INVALID);
    struct renc_sealer *s = renc_calloc(1, sizeof *s);
    RENC_RETURN_IF(!s, -RENC_E_NOMEM);
    s->out_fd = out_fd;
    s->known_len = known_len;
    s->st = st ? st : &s->own_st;
    renc_status_init(&s->own_st);

    int rc = renc_seal_header(ks, o, out_fd, known_len, &s->h, &s->keys, s->st);
    if (rc)
        goto out_free;
    s->seg = renc_header_seg_size(&s->h);
    /* A blob known to be shorter than a segment needs no more than itself:
     * many small blobs then cost no large allocations (and no large wipes). */
    s->rec_max = renc_record_max_len(known_len != RENC_PLAINTEXT_UNKNOWN && known_len < s->seg
                                         ? (uint32_t)known_len : s->seg);
    if ((rc = renc_aead_new(&s->aead, s->keys.k_data, RENC_AEAD_BACKEND_AUTO)))
        goto out_free;
    if (o->compress_level > 0 && (rc = renc_zstd_new(&s->z, o->compress_level, s->seg)))
        goto out_free;
    if (!(s->rec = renc_malloc(s->rec_max))) {
        rc = -RENC_E_NOMEM;
        goto out_free;
    }
    *out = s;
    return 0;
out_free:
    renc_sealer_free(s);
    return rc;
}

/* Seals the buffered segment as record s->index and writes it. */
static int renc_sealer_flush(struct renc_sealer *s, int last)
{
    size_t rec_len;
    RENC_RETURN_IF(s->index > UINT32_MAX, -RENC_E_TOO_BIG);
    int rc = renc_record_seal(s->aead, s->z, s->rec, s->rec_max, &rec_len,
                              s->rec + RENC_RECORD_WORD_LEN, s->fill, s->h.nonce_prefix,
                              (uint32_t)s->index, last);
    if (rec_len > s->touched)
        s->touched = rec_len;
    if (rc == 0)
        rc = renc_file_write_full(s->out_fd, s->rec, rec_len);
    if (rc)
        return rc;
    s->st->plaintext_bytes += s->fill;
    s->st->records++;
    s->index++;
    s->fill = 0;
    return 0;
}

int renc_sealer_write(struct renc_sealer *s, const uint8_t *buf, size_t len)
{
    RENC_RETURN_IF(s->rc, s->rc);
    RENC_RETURN_IF(s->finished, -RENC_E_INVALID);
    int rc = 0;
    if (s->known_len != RENC_PLAINTEXT_UNKNOWN && len > s->known_len - s->accepted) {
        rc = -RENC_E_LENGTH_MISMATCH;
        goto out;
    }
    while (len > 0) {
        /* More plaintext after a full segment: that one is not the last. */
        if (s->fill == s->seg && (rc = renc_sealer_flush(s, 0)))
            goto out;
        size_t n = s->seg - s->fill < len ? s->seg - s->fill : len;
        memcpy(s->rec + RENC_RECORD_WORD_LEN + s->fill, buf, n);
        s->fill += n;
        if (RENC_RECORD_WORD_LEN + s->fill > s->touched)
            s->touched = RENC_RECORD_WORD_LEN + s->fill;
        s->accepted += n;
        buf += n;
        len -= n;
    }
out:
    s->rc = rc;
    return rc;
}

int renc_sealer_sink(void *arg, const uint8_t *buf, size_t len)
{
    return renc_sealer_write(arg, buf, len);
}

int renc_sealer_finish(struct renc_sealer *s)
{
    RENC_RETURN_IF(s->rc, s->rc);
    RENC_RETURN_IF(s->finished, -RENC_E_INVALID);
    int rc = 0;
    if (s->known_len != RENC_PLAINTEXT_UNKNOWN && s->accepted != s->known_len)
        rc = -RENC_E_LENGTH_MISMATCH; /* fewer bytes than the header claims */
    else
        rc = renc_sealer_flush(s, 1); /* a full, partial or empty last segment */
    s->rc = rc;
    s->finished = rc == 0;
    return rc;
}

int renc_blob_seal(struct renc_keystore *ks, const struct renc_seal_opts *o,
                   int in_fd, int out_fd, uint64_t known_len, struct renc_blob_status *st)
{
    struct renc_sealer *s = NULL;
    uint8_t *buf = NULL;
    size_t seg = 0, touched = 0;
    int rc = renc_sealer_new(&s, ks, o, out_fd, known_len, st);
    if (rc)
        return rc;
    /* Reads of a segment, or of the whole input when it is known shorter
     * (one more read then finds its end, or the bytes it grew by). */
    seg = known_len != RENC_PLAINTEXT_UNKNOWN && known_len < s->seg ? (size_t)known_len + 1
                                                                    : s->seg;
    if (!(buf = renc_malloc(seg))) {
        rc = -RENC_E_NOMEM;
        goto out;
    }
    /* A segment at a time; renc_file_read_full is short only at end of file.
     * A known length that the input overruns fails in renc_sealer_write
     * (the input changed while it was read), one it falls short of in
     * renc_sealer_finish. */
    for (;;) {
        size_t got;
        if ((rc = renc_file_read_full(in_fd, buf, seg, &got)))
            goto out;
        if (got > touched)
            touched = got;
        if ((rc = renc_sealer_write(s, buf, got)))
            goto out;
        if (got < seg)
            break;
    }
    rc = renc_sealer_finish(s);
out:
    if (buf) {
        renc_secmem_wipe(buf, touched);
        renc_free(buf);
    }
    renc_sealer_free(s);
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

/* Reads the record whose word is in word (rec_len bytes in all) into *rec,
 * grown as needed, then the next record's word into word (got: its bytes,
 * 0 at end of file).  The buffer grows to the largest record met (at most
 * one segment's): a small blob costs a small buffer, and a small wipe. */
static int renc_read_record(int in_fd, uint8_t **rec, size_t *rec_max, size_t rec_len,
                            uint8_t word[RENC_RECORD_WORD_LEN], size_t *got)
{
    if (rec_len > *rec_max) {
        uint8_t *grown = renc_malloc(rec_len);
        RENC_RETURN_IF(!grown, -RENC_E_NOMEM);
        if (*rec) {
            renc_secmem_wipe(*rec, *rec_max);
            renc_free(*rec);
        }
        *rec = grown;
        *rec_max = rec_len;
    }
    memcpy(*rec, word, RENC_RECORD_WORD_LEN);
    int rc = renc_file_read_full(in_fd, *rec + RENC_RECORD_WORD_LEN,
                                 rec_len - RENC_RECORD_WORD_LEN, got);
    if (rc)
        return rc;
    RENC_RETURN_IF(*got != rec_len - RENC_RECORD_WORD_LEN, -RENC_E_TRUNCATED);
    return renc_file_read_full(in_fd, word, RENC_RECORD_WORD_LEN, got);
}

int renc_blob_open_to(struct renc_keystore *ks, int in_fd, renc_sink_fn sink, void *arg,
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
    if ((rc = renc_aead_new(&aead, opened.keys.k_data, RENC_AEAD_BACKEND_AUTO)))
        goto out;
    if ((h.flags & RENC_FLAG_COMPRESSED) && (rc = renc_zstd_new(&z, 1, seg)))
        goto out;
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
        if ((rc = renc_read_record(in_fd, &rec, &rec_max, rec_len, word, &got)))
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
        /* Verify, then release: only a segment whose tag checked out (and,
         * for the last, whose length matched) reaches the sink. */
        if (sink && plain_len > 0 && (rc = sink(arg, plain, plain_len))) {
            st->in_output = 1;
            goto out;
        }
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

/* The sink of renc_blob_open: arg points at the output fd. */
static int renc_fd_sink(void *arg, const uint8_t *buf, size_t len)
{
    return renc_file_write_full(*(const int *)arg, buf, len);
}

int renc_blob_open(struct renc_keystore *ks, int in_fd, int out_fd,
                   struct renc_header *header_out, struct renc_blob_status *st)
{
    return renc_blob_open_to(ks, in_fd, out_fd >= 0 ? renc_fd_sink : NULL, &out_fd, header_out,
                             st);
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
