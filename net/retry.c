/* net/retry.c — the retry loop behind net/retry.h.  The numbers (0.25 s
 * backoff doubling to 16 s with +-20% jitter, 429 waits of 1..16 s, the
 * 1 ms below which a pacer's wait is not counted) are the ones the vault's
 * benchmarks were measured with (bench/akv.sh): change them only with new
 * figures. */
#include "net/retry.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/error.h"
#include "common/note.h"

#define RENC_RETRY_BACKOFF_NS 250000000ull /* the first 5xx / no-answer wait */
#define RENC_RETRY_THROTTLE_NS 1000000000ull /* the first 429 wait */

void renc_retry_init(struct renc_retry *r, const struct renc_retry_options *o)
{
    memset(r, 0, sizeof *r);
    r->o = *o;
    if (!r->o.name)
        r->o.name = "http";
    if (!r->o.retries)
        r->o.retries = 6;
    if (r->o.throttle_wait_s <= 0)
        r->o.throttle_wait_s = 120;
    r->jitter = (uint64_t)time(NULL) * 2654435761u | 1;
    pthread_mutex_init(&r->lock, NULL);
}

void renc_retry_cleanup(struct renc_retry *r)
{
    pthread_mutex_destroy(&r->lock);
}

void renc_retry_stats(struct renc_retry *r, struct renc_retry_stats *out)
{
    pthread_mutex_lock(&r->lock);
    *out = r->stats;
    pthread_mutex_unlock(&r->lock);
}

static void renc_retry_note(struct renc_retry *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void renc_retry_note(struct renc_retry *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    renc_note_vsend(r->o.note, r->o.note_arg, r->o.name, fmt, ap);
    va_end(ap);
}

static void renc_retry_count(struct renc_retry *r, uint64_t *field)
{
    pthread_mutex_lock(&r->lock);
    (*field)++;
    pthread_mutex_unlock(&r->lock);
}

static uint64_t renc_retry_backoff_ns(struct renc_retry *r, unsigned attempt)
{
    uint64_t d = RENC_RETRY_BACKOFF_NS << (attempt < 6 ? attempt : 6);
    pthread_mutex_lock(&r->lock);
    r->jitter ^= r->jitter << 13;
    r->jitter ^= r->jitter >> 7;
    r->jitter ^= r->jitter << 17;
    uint64_t j = r->jitter;
    pthread_mutex_unlock(&r->lock);
    return d - d / 5 + j % (d / 5 * 2 + 1); /* +-20% */
}

uint64_t renc_retry_after_ns(const char *v)
{
    if (!v[0])
        return 0;
    char *end;
    double s = strtod(v, &end);
    if (end == v || s < 0)
        s = 1;
    if (s > 120)
        s = 120;
    return (uint64_t)(s * 1e9);
}

static void renc_retry_pace(struct renc_retry *r, struct renc_pace *pace)
{
    uint64_t t0 = renc_now_ns();
    renc_pace_wait(pace);
    uint64_t waited = renc_now_ns() - t0;
    if (waited > 1000000) {
        pthread_mutex_lock(&r->lock);
        r->stats.paced++;
        r->stats.paced_s += (double)waited / 1e9;
        pthread_mutex_unlock(&r->lock);
    }
}

/* Where one request stands between its sends. */
struct renc_retry_state {
    unsigned failures, throttles;
    uint64_t throttled_ns;
    uint64_t delay;  /* before the next send */
    const char *why; /* of the last failure, for the note */
};

/* A 429: how long to wait, the pacer held, and whether that is too long. */
static int renc_retry_throttled(struct renc_retry *r, const struct renc_retry_call *call,
                                const struct renc_http_response *resp,
                                struct renc_retry_state *st)
{
    renc_retry_count(r, &r->stats.throttled);
    uint64_t asked = renc_retry_after_ns(resp->retry_after);
    uint64_t backoff = RENC_RETRY_THROTTLE_NS << (st->throttles < 4 ? st->throttles : 4);
    st->delay = asked > backoff ? asked : backoff;
    st->throttles++;
    if (call && call->pace) {
        renc_pace_hold(call->pace, asked ? asked : RENC_RETRY_THROTTLE_NS);
        if (call->throttled)
            call->throttled(call->arg);
    }
    st->why = "throttled (429)";
    int give_up = st->throttled_ns + st->delay > (uint64_t)(r->o.throttle_wait_s * 1e9);
    st->throttled_ns += st->delay;
    return give_up;
}

/* Gives up: a note, and what the caller gets. */
static int renc_retry_give_up(struct renc_retry *r, const struct renc_retry_send *s, int rc,
                              struct renc_http_response *resp, const struct renc_retry_state *st)
{
    if (rc == 0 && resp->status == 429)
        renc_retry_note(r, "%s %s: throttled (429) %u times over %.0f s, giving up",
                        s->method, s->url, st->throttles, (double)st->throttled_ns / 1e9);
    else
        renc_retry_note(r, "%s %s: %s, giving up after %u retries", s->method, s->url,
                        st->why, st->failures - 1);
    if (rc || resp->status == 429) {
        renc_http_response_cleanup(resp);
        return rc ? rc : -RENC_E_NET_THROTTLED;
    }
    return 0; /* a 5xx: the caller reads the error */
}

int renc_retry_run(struct renc_retry *r, const struct renc_retry_call *call,
                   const struct renc_retry_send *s, struct renc_http_response *resp)
{
    struct renc_retry_state st = {0};
    for (;;) {
        if (call && call->pace)
            renc_retry_pace(r, call->pace);
        renc_retry_count(r, &r->stats.requests);
        /* A send that fails before its request (no token, say) leaves resp
         * as it found it: start each from a clean one. */
        memset(resp, 0, sizeof *resp);
        int rc = s->send(s->arg, resp);
        int give_up = 0;
        if (rc && !renc_http_no_answer(rc)) {
            renc_http_response_cleanup(resp);
            return rc;
        }
        if (rc) {
            renc_retry_count(r, &r->stats.network_errors);
            st.delay = renc_retry_backoff_ns(r, st.failures);
            st.why = "no answer (network)";
            give_up = st.failures++ >= r->o.retries;
        } else if (resp->status == 429) {
            give_up = renc_retry_throttled(r, call, resp, &st);
        } else if (resp->status >= 500 || resp->status == 408) {
            renc_retry_count(r, &r->stats.server_errors);
            st.delay = renc_retry_backoff_ns(r, st.failures);
            st.why = "server error";
            give_up = st.failures++ >= r->o.retries;
        } else {
            if (call && call->pace && call->answered)
                call->answered(call->arg);
            return 0;
        }
        if (give_up)
            return renc_retry_give_up(r, s, rc, resp, &st);
        renc_retry_count(r, &r->stats.retries);
        renc_http_response_cleanup(resp);
        renc_sleep_ns(st.delay);
    }
}

/* A buffered request, as one send of renc_retry_run. */
struct renc_retry_buffered {
    struct renc_http *conn;
    const char *method, *url;
    const char *const *headers;
    const char *body;
    size_t body_len;
};

static int renc_retry_send_buffered(void *arg, struct renc_http_response *resp)
{
    const struct renc_retry_buffered *b = arg;
    return renc_http_request(b->conn, b->method, b->url, b->headers, b->body, b->body_len, resp);
}

int renc_retry_request(struct renc_retry *r, const struct renc_retry_call *call,
                       struct renc_http *conn, const char *method, const char *url,
                       const char *const *headers, const char *body, size_t body_len,
                       struct renc_http_response *resp)
{
    struct renc_retry_buffered b = {conn, method, url, headers, body, body_len};
    struct renc_retry_send s = {renc_retry_send_buffered, &b, method, url};
    return renc_retry_run(r, call, &s, resp);
}
