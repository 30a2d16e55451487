/* net/retry.h — the retry and pacing policy of HTTP requests, as an object
 * a provider or a store owns and passes with each request
 * (docs/internals/net.md).
 *
 * A request is sent again after a 429, a 5xx, a 408 or no answer at all:
 *   - a 429 is the server pacing us, not a failure: the request waits the
 *     Retry-After (or 1 s), then longer when the server keeps refusing (1, 2,
 *     4, 8, 16 s, never less than Retry-After, which counts up to 120 s), and
 *     gives up only when it has waited throttle_wait_s in all;
 *   - a 5xx, a 408 (the server timed the request out) or no answer
 *     (renc_http_no_answer) backs off from 0.25 s
 *     (doubling up to 16 s, +-20% jitter) and is sent again up to
 *     `retries` times.
 * A call may bring a pacer (common/pace.h): it is waited on before each
 * send and held for a 429's Retry-After, and the caller hears of each 429
 * and each final answer to adapt it.  One policy serves every thread.
 */
#ifndef RENC_NET_RETRY_H
#define RENC_NET_RETRY_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "common/pace.h"
#include "net/http.h"

struct renc_retry_options {
    const char *name;        /* starts each note ("akv"); NULL: "http" */
    unsigned retries;        /* 5xx, 408 and no answer; 0: 6 */
    double throttle_wait_s;  /* the most one request waits out 429s; 0: 120 */
    /* A one-line note when a request gives up (never with a secret in
     * it); may be NULL.  Called from any thread. */
    void (*note)(void *arg, const char *line);
    void *note_arg;
};

/* What the policy counted, returned as data (renc_retry_stats). */
struct renc_retry_stats {
    uint64_t requests;       /* sent, retries included */
    uint64_t retries;        /* sent again after a 429, 5xx or no answer */
    uint64_t throttled;      /* 429 answers */
    uint64_t server_errors;  /* 5xx and 408 answers */
    uint64_t network_errors; /* no answer */
    uint64_t paced;          /* requests a pacer held back (over 1 ms) */
    double paced_s;          /* their total wait */
};

struct renc_retry {
    struct renc_retry_options o;
    pthread_mutex_t lock; /* stats and jitter */
    uint64_t jitter;      /* xorshift state */
    struct renc_retry_stats stats;
};

/* renc_retry_init: the policy with o's settings (zeros take the defaults
 * above); renc_retry_cleanup releases it. */
void renc_retry_init(struct renc_retry *r, const struct renc_retry_options *o);
void renc_retry_cleanup(struct renc_retry *r);

/* renc_retry_stats: a copy of the counts so far. */
void renc_retry_stats(struct renc_retry *r, struct renc_retry_stats *out);

/* What one call brings besides the request: all may be NULL. */
struct renc_retry_call {
    struct renc_pace *pace;       /* waited on before each send */
    void (*throttled)(void *arg); /* a 429 came (the pacer is already held) */
    void (*answered)(void *arg);  /* a final answer came (not a 429 or 5xx) */
    void *arg;
};

/* One send of a request, as renc_http_request or renc_http_stream does it;
 * called again for each retry, so a streamed body starts over there.
 * method and url name the request in notes. */
struct renc_retry_send {
    int (*send)(void *arg, struct renc_http_response *resp);
    void *arg;
    const char *method, *url;
};

/* renc_retry_run: sends until an answer is final or the policy gives up.
 * 0 with *resp for a final answer and for a 5xx given up on (the caller
 * reads its error); -RENC_E_NET_THROTTLED after 429s past throttle_wait_s;
 * the last no-answer error after `retries`; any other error of send at
 * once.  *resp must be cleaned up in every case. */
int renc_retry_run(struct renc_retry *r, const struct renc_retry_call *call,
                   const struct renc_retry_send *s, struct renc_http_response *resp);

/* renc_retry_request: renc_retry_run over renc_http_request (a buffered
 * call); call may be NULL. */
int renc_retry_request(struct renc_retry *r, const struct renc_retry_call *call,
                       struct renc_http *conn, const char *method, const char *url,
                       const char *const *headers, const char *body, size_t body_len,
                       struct renc_http_response *resp);

/* renc_retry_after_ns: a Retry-After value ("" none: 0; seconds, capped at
 * 120; the HTTP-date form counts as 1 s). */
uint64_t renc_retry_after_ns(const char *v);

#endif
