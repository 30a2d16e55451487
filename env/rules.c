/* env/rules.c — see rules.h.
 *
 * The verdicts are built from catalog records (ids and key refs the catalog
 * checked) and from a backup's header, whose context values and slot refs
 * come from a file: those are quoted cleaned (control characters replaced,
 * cut short), since the reason is printed as it is.  Nothing secret is
 * named: ids, policies and key refs only.
 */
#include "env/rules.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/error.h"
#include "keys/keyref.h"

/* How much of one value read from a header a reason quotes. */
#define RENC_QUOTE_MAX 128

/* Copies s into out[max] with control characters (C0, DEL and C1, which
 * a terminal may obey) as '?'; a value longer than max-1 bytes is cut short
 * with "...". */
static void renc_quote(char *out, size_t max, const char *s)
{
    size_t n = 0, i = 0, len = strlen(s);
    for (; i < len && n + 1 < max; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == 0xc2 && i + 1 < len && (unsigned char)s[i + 1] >= 0x80 &&
            (unsigned char)s[i + 1] <= 0x9f) {
            out[n++] = '?';
            i++;
            continue;
        }
        out[n++] = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
    }
    out[n] = '\0';
    if (i < len && max > 4) {
        /* Cut at a character boundary, then mark the cut. */
        size_t k = n < max - 4 ? n : max - 4;
        while (k > 0 && ((unsigned char)out[k] & 0xc0) == 0x80)
            k--;
        memcpy(out + k, "...", 4);
    }
}

static void renc_verdict(struct renc_verdict_text *v, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void renc_verdict(struct renc_verdict_text *v, int rc, const char *fmt, ...)
{
    v->allowed = rc == 0;
    v->rc = rc;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->reason, sizeof v->reason, fmt, ap);
    va_end(ap);
}

/* Why e is locked, as the tail of a sentence: "by the operator", "by its
 * key (REASON)" or both. */
static void renc_lock_words(char *out, size_t max, const struct renc_env *e)
{
    char why[RENC_REASON_MAX + 1];
    renc_quote(why, sizeof why, e->key_lock);
    if (e->locked_by_operator && e->key_lock[0])
        snprintf(out, max, "by the operator and by its key (%s)", why);
    else if (e->locked_by_operator)
        snprintf(out, max, "by the operator");
    else
        snprintf(out, max, "by its key (%s)", why);
}

void renc_rule_restore(struct renc_verdict_text *v, const struct renc_header *h,
                       const struct renc_env *source, const struct renc_env *target)
{
    /* The rule needs only the backup's header: a backup is judged by the
     * keys it is sealed under, whatever its source environment uses now. */
    (void)source;
    if (renc_env_locked(target)) {
        char why[RENC_REASON_MAX + 64];
        renc_lock_words(why, sizeof why, target);
        renc_verdict(v, -RENC_E_ENV_LOCKED,
                     "environment %s is locked %s, so nothing may be restored into it",
                     target->id, why);
        return;
    }
    const char *kind = renc_context_get(&h->ctx, "kind");
    if (!kind || strcmp(kind, "backup") != 0) {
        char k[RENC_QUOTE_MAX];
        renc_quote(k, sizeof k, kind ? kind : "none");
        renc_verdict(v, -RENC_E_NOT_ALLOWED, "the file is not a backup (kind=%s)", k);
        return;
    }
    const char *from = renc_context_get(&h->ctx, "source-env");
    if (!from || !from[0]) {
        renc_verdict(v, -RENC_E_NOT_ALLOWED,
                     "the backup names no source environment (its context has no source-env)");
        return;
    }
    char src[RENC_QUOTE_MAX];
    renc_quote(src, sizeof src, from);
    if (strcmp(from, target->id) == 0) {
        renc_verdict(v, 0, "restore into its own environment %s", target->id);
        return;
    }
    if (target->policy == RENC_POLICY_MMK) {
        renc_verdict(v, -RENC_E_NOT_ALLOWED,
                     "%s uses the service-managed key %s, and a backup of %s may be restored "
                     "elsewhere only into an environment with the same customer key",
                     target->id, target->key_ref, src);
        return;
    }
    struct renc_keyref want;
    if (renc_keyref_parse(&want, target->key_ref) != 0) {
        renc_verdict(v, -RENC_E_NOT_ALLOWED, "%s has no valid key reference (%s)", target->id,
                     target->key_ref);
        return;
    }
    /* The backup's keys, for the reason; and whether one is the target's. */
    char keys[640] = "";
    size_t used = 0;
    for (unsigned i = 0; i < h->slot_count; i++) {
        struct renc_keyref k;
        if (renc_keyref_parse(&k, h->slots[i].ref) == 0 && renc_keyref_same_key(&k, &want)) {
            char ref[RENC_QUOTE_MAX];
            renc_quote(ref, sizeof ref, h->slots[i].ref);
            renc_verdict(v, 0, "the backup of %s is sealed under %s, the same customer key as "
                               "%s's %s key %s",
                         src, ref, target->id, renc_policy_name(target->policy),
                         target->key_ref);
            return;
        }
        char ref[RENC_QUOTE_MAX];
        renc_quote(ref, sizeof ref, h->slots[i].ref);
        int n = snprintf(keys + used, sizeof keys - used, "%s%s", i ? ", " : "", ref);
        if (n > 0)
            used = used + (size_t)n < sizeof keys ? used + (size_t)n : sizeof keys - 1;
    }
    renc_verdict(v, -RENC_E_NOT_ALLOWED,
                 "the backup of %s is sealed under %s, not under %s's %s key %s (a backup may "
                 "be restored elsewhere only into an environment with the same customer key)",
                 src, h->slot_count ? keys : "no key", target->id,
                 renc_policy_name(target->policy), target->key_ref);
}

void renc_rule_copy(struct renc_verdict_text *v, const struct renc_env *from,
                    const struct renc_env *to)
{
    char why[RENC_REASON_MAX + 64];
    if (strcmp(from->id, to->id) == 0) {
        renc_verdict(v, -RENC_E_NOT_ALLOWED,
                     "environment %s cannot be copied into itself", from->id);
        return;
    }
    if (renc_env_locked(to)) {
        renc_lock_words(why, sizeof why, to);
        renc_verdict(v, -RENC_E_ENV_LOCKED,
                     "environment %s is locked %s, so nothing may be copied into it", to->id,
                     why);
        return;
    }
    if (renc_env_locked(from)) {
        renc_lock_words(why, sizeof why, from);
        renc_verdict(v, -RENC_E_ENV_LOCKED,
                     "environment %s is locked %s, so nothing may be copied from it", from->id,
                     why);
        return;
    }
    if (to->policy == RENC_POLICY_MMK) {
        renc_verdict(v, -RENC_E_NOT_ALLOWED,
                     "copy is allowed only into an environment encrypted with the same "
                     "customer key; %s uses the service-managed key %s", to->id, to->key_ref);
        return;
    }
    if (from->policy == RENC_POLICY_MMK) {
        renc_verdict(v, -RENC_E_NOT_ALLOWED,
                     "copy is allowed only from an environment encrypted with a customer key; "
                     "%s uses the service-managed key %s", from->id, from->key_ref);
        return;
    }
    struct renc_keyref a, b;
    if (renc_keyref_parse(&a, from->key_ref) != 0 || renc_keyref_parse(&b, to->key_ref) != 0 ||
        !renc_keyref_same_key(&a, &b)) {
        renc_verdict(v, -RENC_E_NOT_ALLOWED,
                     "copy is allowed only into an environment encrypted with the same "
                     "customer key; %s uses %s %s and %s uses %s %s", from->id,
                     renc_policy_name(from->policy), from->key_ref, to->id,
                     renc_policy_name(to->policy), to->key_ref);
        return;
    }
    renc_verdict(v, 0, "%s and %s share the customer key %s", from->id, to->id, to->key_ref);
}
