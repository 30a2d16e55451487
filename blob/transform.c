#include "blob/transform.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/bytes.h"
#include "common/error.h"
#include "crypto/kek.h"
#include "keys/keyref.h"
#include "crypto/record.h"

struct renc_transformer {
    struct renc_keystore *ks;
    struct renc_transform_opts opts;
    char target[RENC_MAX_REF_LEN + 1];
    struct renc_keyref target_ref;
    struct renc_keyref *drop;
    size_t drop_count;
    /* rekey --share-dek: the DEK being shared, its slot, and its uses. */
    pthread_mutex_t lock;
    struct renc_key *shared_dek;
    unsigned shared_uses;
    uint8_t shared_alg;
    uint8_t shared_wrapped[RENC_MAX_WRAPPED_LEN];
    size_t shared_wrapped_len;
};

int renc_transformer_new(struct renc_transformer **out, struct renc_keystore *ks,
                         const struct renc_transform_opts *opts)
{
    struct renc_transformer *t = renc_calloc(1, sizeof *t);
    RENC_RETURN_IF(!t, -RENC_E_NOMEM);
    t->ks = ks;
    t->opts = *opts;
    if (t->opts.share_dek == 0)
        t->opts.share_dek = 1;
    pthread_mutex_init(&t->lock, NULL);
    int rc = renc_keystore_resolve(ks, t->target, sizeof t->target, opts->target);
    if (rc == 0)
        rc = renc_keyref_parse(&t->target_ref, t->target);
    if (rc == 0 && opts->drop_count) {
        t->drop = renc_calloc(opts->drop_count, sizeof *t->drop);
        rc = t->drop ? 0 : -RENC_E_NOMEM;
        for (size_t i = 0; rc == 0 && i < opts->drop_count; i++)
            rc = renc_keyref_parse(&t->drop[i], opts->drop[i]);
        t->drop_count = opts->drop_count;
    }
    if (rc) {
        renc_transformer_free(t);
        return rc;
    }
    t->opts.drop = NULL;
    *out = t;
    return 0;
}

void renc_transformer_free(struct renc_transformer *t)
{
    if (!t)
        return;
    renc_key_free(t->shared_dek);
    renc_free(t->drop);
    pthread_mutex_destroy(&t->lock);
    renc_free(t);
}

const char *renc_transformer_target(const struct renc_transformer *t)
{
    return t->target;
}

/* 1 when a slot's ref names the run's target version (in any spelling the
 * vault treats as the same, keyref.h).  Per blob: the target is parsed
 * once, in renc_transformer_new; a slot only when it is a vault ref whose
 * text differs. */
static int renc_is_target(const struct renc_transformer *t, const char *ref)
{
    return renc_keyref_text_is_version(&t->target_ref, t->target, ref);
}

/* 1 when the slot is one the run was told to drop: a --drop ref with a
 * version names that version only, one without names every version. */
static int renc_slot_dropped(const struct renc_transformer *t, const struct renc_slot *s)
{
    struct renc_keyref r;
    if (renc_keyref_parse(&r, s->ref) != 0)
        return 0;
    for (size_t i = 0; i < t->drop_count; i++)
        if (renc_keyref_same_key(&r, &t->drop[i]) &&
            (!t->drop[i].version[0] || strcmp(r.version, t->drop[i].version) == 0))
            return 1;
    return 0;
}

void renc_blob_plan_cleanup(struct renc_blob_plan *p)
{
    renc_header_cleanup(&p->old_h);
    renc_header_cleanup(&p->new_h);
    renc_opened_cleanup(&p->old);
    renc_key_free(p->new_dek);
    renc_blob_keys_cleanup(&p->new_keys);
    renc_free(p->new_hdr);
    memset(p, 0, sizeof *p);
    p->failed_slot = -1;
}

/* The DEK a rekeyed blob gets, and its target slot: fresh, or the shared one
 * while it has uses left (one wrap, one provider call, for share_dek blobs). */
static int renc_rekey_dek(struct renc_transformer *t, struct renc_blob_plan *p)
{
    int rc = 0;
    pthread_mutex_lock(&t->lock);
    if (!t->shared_dek || t->shared_uses >= t->opts.share_dek) {
        struct renc_header scratch;
        memset(&scratch, 0, sizeof scratch);
        renc_key_free(t->shared_dek);
        t->shared_dek = NULL;
        if ((rc = renc_key_random(&t->shared_dek, 32)) == 0 &&
            (rc = renc_keystore_wrap_slot(t->ks, &scratch, t->target, t->shared_dek)) == 0) {
            t->shared_alg = scratch.slots[0].alg;
            t->shared_wrapped_len = scratch.slots[0].wrapped_len;
            memcpy(t->shared_wrapped, scratch.slots[0].wrapped, t->shared_wrapped_len);
            t->shared_uses = 0;
        }
        renc_header_cleanup(&scratch);
    }
    if (rc == 0 && (rc = renc_key_dup(&p->new_dek, t->shared_dek)) == 0) {
        rc = renc_header_add_slot(&p->new_h, t->shared_alg, t->target, t->shared_wrapped,
                                  t->shared_wrapped_len);
        t->shared_uses++;
    }
    if (rc) {
        renc_key_free(t->shared_dek);
        t->shared_dek = NULL;
    }
    pthread_mutex_unlock(&t->lock);
    return rc;
}

/* Builds p->new_h's fields and slots. */
static int renc_build_new_header(struct renc_transformer *t, struct renc_blob_plan *p,
                                 int under_target)
{
    const struct renc_header *old = &p->old_h;
    const struct renc_slot *opener = &old->slots[p->old.slot];
    int rc = renc_header_copy(&p->new_h, old);
    if (rc)
        return rc;
    while (p->new_h.slot_count)
        renc_header_remove_slot(&p->new_h, p->new_h.slot_count - 1);

    if (under_target) {
        /* Only dropping: keep every slot but the dropped ones. */
        for (unsigned i = 0; i < old->slot_count && rc == 0; i++)
            if (!renc_slot_dropped(t, &old->slots[i]))
                rc = renc_header_add_slot(&p->new_h, old->slots[i].alg, old->slots[i].ref,
                                          old->slots[i].wrapped, old->slots[i].wrapped_len);
        return rc;
    }
    int keep = t->opts.keep_old && !renc_slot_dropped(t, opener) &&
               !renc_is_target(t, opener->ref);
    if (t->opts.mode == RENC_MODE_REWRAP) {
        rc = renc_keystore_wrap_slot(t->ks, &p->new_h, t->target, p->old.dek);
        if (rc == 0 && keep)
            rc = renc_header_add_slot(&p->new_h, opener->alg, opener->ref, opener->wrapped,
                                      opener->wrapped_len);
        return rc;
    }
    /* rekey: new salt and nonce prefix, new (or shared) DEK. */
    if ((rc = renc_random_bytes(p->new_h.salt, RENC_SALT_LEN)) ||
        (rc = renc_random_bytes(p->new_h.nonce_prefix, RENC_NONCE_PREFIX_LEN)) ||
        (rc = renc_rekey_dek(t, p)))
        return rc;
    if (keep)
        rc = renc_keystore_wrap_slot(t->ks, &p->new_h, opener->ref, p->new_dek);
    if (rc == 0)
        rc = renc_blob_keys_derive(&p->new_keys, p->new_dek, p->new_h.salt);
    return rc;
}

/* Verify before replace: the new header parses, and its target slot opens
 * to the DEK it should hold, under which the header tag verifies. */
static int renc_verify_new_header(struct renc_transformer *t, const struct renc_blob_plan *p)
{
    struct renc_header h;
    struct renc_key *dek = NULL;
    struct renc_blob_keys keys = {0};
    int rc = renc_header_parse(&h, p->new_hdr, p->new_hdr_len);
    if (rc)
        return rc;
    int slot = -1;
    for (unsigned i = 0; i < h.slot_count; i++)
        if (renc_is_target(t, h.slots[i].ref))
            slot = (int)i;
    if (slot < 0)
        rc = -RENC_E_NO_SLOT;
    if (rc == 0)
        rc = renc_keystore_unwrap_slot(t->ks, &h.slots[slot], &dek);
    if (rc == 0) {
        const struct renc_key *want = p->new_dek ? p->new_dek : p->old.dek;
        if (dek->len != want->len || !renc_ct_equal(dek->bytes, want->bytes, dek->len))
            rc = -RENC_E_UNWRAP;
    }
    if (rc == 0)
        rc = renc_blob_keys_derive(&keys, dek, h.salt);
    if (rc == 0)
        rc = renc_header_verify(p->new_hdr, p->new_hdr_len, keys.k_hdr);
    renc_blob_keys_cleanup(&keys);
    renc_key_free(dek);
    renc_header_cleanup(&h);
    return rc;
}

int renc_transform_plan(struct renc_transformer *t, struct renc_blob_plan *p,
                        const uint8_t *hdr_bytes, size_t len)
{
    memset(p, 0, sizeof *p);
    p->failed_slot = -1;
    int rc = renc_header_parse(&p->old_h, hdr_bytes, len);
    if (rc)
        return rc;

    int under_target = 0, droppable = 0, kept = 0;
    for (unsigned i = 0; i < p->old_h.slot_count; i++) {
        const struct renc_slot *s = &p->old_h.slots[i];
        under_target |= renc_is_target(t, s->ref);
        if (renc_slot_dropped(t, s))
            droppable = 1;
        else
            kept = 1;
    }
    /* --drop only removes a slot when another slot is kept. */
    int drop_now = droppable && kept;
    if (under_target && !drop_now) {
        p->verdict = RENC_VERDICT_SKIP;
        return 0;
    }

    int failed = -1;
    if ((rc = renc_keystore_open_header(t->ks, &p->old, &p->old_h, hdr_bytes, &failed))) {
        p->failed_slot = failed;
        if (failed >= 0)
            snprintf(p->failed_ref, sizeof p->failed_ref, "%s", p->old_h.slots[failed].ref);
        goto fail;
    }
    if ((rc = renc_build_new_header(t, p, under_target)))
        goto fail_target;

    /* Keep the old header_len when the new header fits: records keep their
     * offsets (and a later in-place header rewrite stays possible). */
    size_t min = renc_header_min_len(&p->new_h);
    size_t hl = min <= p->old_h.header_len ? p->old_h.header_len : min + RENC_DEFAULT_HEADER_ROOM;
    if (hl > RENC_MAX_HEADER_LEN)
        hl = min;
    if (min > RENC_MAX_HEADER_LEN) {
        rc = -RENC_E_TOO_BIG;
        goto fail;
    }
    p->new_h.header_len = (uint16_t)hl;
    p->new_hdr_len = hl;
    p->new_hdr = renc_malloc(hl);
    if (!p->new_hdr) {
        rc = -RENC_E_NOMEM;
        goto fail;
    }
    const struct renc_key *k_hdr = p->new_dek ? p->new_keys.k_hdr : p->old.keys.k_hdr;
    if ((rc = renc_header_serialize(p->new_hdr, hl, &p->new_h, k_hdr)))
        goto fail;
    if (t->opts.verify && (rc = renc_verify_new_header(t, p)))
        goto fail_target;
    p->verdict = RENC_VERDICT_TRANSFORM;
    return 0;

fail_target:
    p->failed_slot = 0;
    snprintf(p->failed_ref, sizeof p->failed_ref, "%s", t->target);
fail:;
    int slot = p->failed_slot;
    char ref[RENC_MAX_REF_LEN + 1];
    memcpy(ref, p->failed_ref, sizeof ref);
    renc_blob_plan_cleanup(p);
    p->failed_slot = slot;
    memcpy(p->failed_ref, ref, sizeof ref);
    return rc;
}

int renc_resealer_init(struct renc_resealer *r, const struct renc_blob_plan *p,
                       enum renc_aead_backend backend)
{
    memset(r, 0, sizeof *r);
    int rc = renc_aead_new(&r->from, p->old.keys.k_data, backend);
    if (rc == 0 && p->new_dek)
        rc = renc_aead_new(&r->to, p->new_keys.k_data, backend);
    if (rc)
        renc_resealer_cleanup(r);
    return rc;
}

int renc_resealer_init_verify(struct renc_resealer *r, const struct renc_blob_plan *p,
                              enum renc_aead_backend backend)
{
    memset(r, 0, sizeof *r);
    r->verify = 1;
    int rc = renc_aead_new(&r->from, p->old.keys.k_data, backend);
    if (rc == 0 && (p->old_h.flags & RENC_FLAG_COMPRESSED))
        rc = renc_zstd_new(&r->z, 1, renc_header_seg_size(&p->old_h));
    if (rc)
        renc_resealer_cleanup(r);
    return rc;
}

void renc_resealer_cleanup(struct renc_resealer *r)
{
    renc_zstd_free(r->z);
    renc_aead_free(r->from);
    renc_aead_free(r->to);
    memset(r, 0, sizeof *r);
}

int renc_records_span(const struct renc_header *h, const uint8_t *buf, size_t len,
                      size_t max_bytes, uint64_t max_records, size_t *span, uint64_t *records)
{
    uint32_t seg = renc_header_seg_size(h);
    size_t off = 0;
    uint64_t n = 0;
    while (n < max_records && len - off >= RENC_RECORD_WORD_LEN) {
        size_t rec_len;
        int rc = renc_record_parse_word(renc_load_be32(buf + off), h->flags, seg, &rec_len);
        if (rc)
            return rc;
        if (rec_len > len - off || (n > 0 && off + rec_len > max_bytes))
            break;
        off += rec_len;
        n++;
    }
    *span = off;
    *records = n;
    return 0;
}

int renc_transform_records(struct renc_resealer *r, const struct renc_blob_plan *p,
                           uint8_t *buf, size_t len, uint64_t first_index, uint64_t count,
                           int final, uint64_t *records_out)
{
    const struct renc_header *h = &p->old_h;
    uint32_t seg = renc_header_seg_size(h);
    size_t off = 0;
    uint64_t i = first_index;
    int rc = 0;
    while (off < len) {
        /* Bytes after the last record are trailing, however few. */
        RENC_RETURN_IF(count && i >= count, -RENC_E_TRAILING);
        RENC_RETURN_IF(len - off < RENC_RECORD_OVERHEAD, -RENC_E_TRUNCATED);
        uint32_t word = renc_load_be32(buf + off);
        size_t rec_len;
        if ((rc = renc_record_parse_word(word, h->flags, seg, &rec_len)))
            return rc;
        RENC_RETURN_IF(rec_len > len - off, -RENC_E_TRUNCATED);
        RENC_RETURN_IF(i > UINT32_MAX, -RENC_E_TOO_BIG);
        int last = count ? i + 1 == count : final && off + rec_len == len;
        if (!(word & RENC_RECORD_COMPRESSED)) {
            /* Raw segments have known sizes; compressed ones are checked
             * when opened by verify or decrypt (rekey does not decompress). */
            uint64_t raw = word & RENC_RECORD_LEN_MASK;
            uint64_t want = !last ? seg : count ? h->plaintext_len - (count - 1) * seg : raw;
            RENC_RETURN_IF(raw != want, -RENC_E_LENGTH_MISMATCH);
        }
        if (r->verify) {
            /* A raw record is checked without writing it back (and so no
             * plaintext is left in buf); a compressed one is opened in
             * place, its frame wiped once decompressed. */
            const uint8_t *plain;
            size_t plain_len = 0;
            rc = word & RENC_RECORD_COMPRESSED
                     ? renc_record_open(r->from, r->z, &plain, &plain_len, buf + off, rec_len,
                                        seg, h->nonce_prefix, (uint32_t)i, last)
                     : renc_record_verify(r->from, &plain_len, buf + off, rec_len,
                                          h->nonce_prefix, (uint32_t)i, last);
            uint64_t want = !last ? seg : count ? h->plaintext_len - (count - 1) * seg : plain_len;
            if (rc == 0 && plain_len != want)
                rc = -RENC_E_LENGTH_MISMATCH;
        } else if (r->to) {
            rc = renc_record_reseal(r->from, r->to, buf + off, rec_len, h->nonce_prefix,
                                    p->new_h.nonce_prefix, (uint32_t)i, last);
        }
        if (rc)
            return rc;
        off += rec_len;
        i++;
    }
    RENC_RETURN_IF(final && count && i != count, -RENC_E_TRUNCATED);
    if (records_out)
        *records_out = i - first_index;
    return 0;
}
