/* bench/p11_loop.c — unwraps per second on one PKCS#11 token: the bare
 * loop (C_UnwrapKey + read + destroy for AES, C_Decrypt for RSA, one
 * session per thread) beside the pkcs11 provider's unwrap (its session
 * pool, handle cache, error mapping), in the same process and run.
 *
 *   p11_loop MODULE REF THREADS SECONDS
 *
 * REF is a pkcs11: ref to an AES or RSA key (its current version is used);
 * the PIN is RENC_PKCS11_PIN.  Prints one line per loop:
 *   bare|provider THREADS threads: N unwraps in S s = R/s
 * (bench/pkcs11.sh).  The DEK is wrapped once by the provider; every
 * unwrap checks that it comes back. */
#include <dlfcn.h>
#include <p11-kit/pkcs11.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/error.h"
#include "crypto/kek.h"
#include "crypto/secmem.h"
#include "keys/pkcs11.h"
#include "keys/provider.h"

static struct {
    const struct renc_provider_ops *ops;
    void *prov;
    struct renc_provider_target t;
    uint8_t wrapped[RENC_MAX_WRAPPED_LEN];
    size_t wrapped_len;
    struct renc_key *dek;
    double seconds;
    CK_FUNCTION_LIST_PTR f;
    CK_SLOT_ID slot;
    char label[129];
    CK_OBJECT_CLASS cls;
} g;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *provider_loop(void *arg)
{
    uint64_t *n = arg;
    double end = now_s() + g.seconds;
    while (now_s() < end) {
        for (int i = 0; i < 64; i++) {
            struct renc_key *dek = NULL;
            if (g.ops->unwrap(g.prov, &g.t, g.wrapped, g.wrapped_len, &dek) ||
                memcmp(dek->bytes, g.dek->bytes, 32) != 0)
                abort();
            renc_key_free(dek);
            (*n)++;
        }
    }
    return NULL;
}

static CK_OBJECT_HANDLE bare_key(CK_SESSION_HANDLE s)
{
    CK_ATTRIBUTE tpl[] = {{CKA_LABEL, g.label, strlen(g.label)}, {CKA_CLASS, &g.cls, sizeof g.cls}};
    CK_OBJECT_HANDLE h[64];
    CK_ULONG n = 0;
    if (g.f->C_FindObjectsInit(s, tpl, 2) || g.f->C_FindObjects(s, h, 64, &n) ||
        g.f->C_FindObjectsFinal(s) || n == 0)
        abort();
    return h[n - 1]; /* one version in the benchmark's token */
}

static void bare_one(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE k)
{
    uint8_t out[RENC_MAX_WRAPPED_LEN];
    if (g.cls == CKO_PRIVATE_KEY) {
        CK_RSA_PKCS_OAEP_PARAMS prm = {CKM_SHA_1, CKG_MGF1_SHA1, CKZ_DATA_SPECIFIED, NULL, 0};
        CK_MECHANISM m = {CKM_RSA_PKCS_OAEP, &prm, sizeof prm};
        CK_ULONG n = sizeof out;
        if (g.f->C_DecryptInit(s, &m, k) || g.f->C_Decrypt(s, g.wrapped, g.wrapped_len, out, &n))
            abort();
    } else {
        CK_MECHANISM m = {g.t.alg == RENC_ALG_AES_KW ? CKM_AES_KEY_WRAP : CKM_AES_KEY_WRAP_PAD,
                          NULL, 0};
        CK_OBJECT_CLASS c = CKO_SECRET_KEY;
        CK_KEY_TYPE kt = CKK_AES;
        CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
        CK_ATTRIBUTE tpl[] = {{CKA_CLASS, &c, sizeof c}, {CKA_KEY_TYPE, &kt, sizeof kt},
                              {CKA_TOKEN, &no, sizeof no}, {CKA_SENSITIVE, &no, sizeof no},
                              {CKA_EXTRACTABLE, &yes, sizeof yes}};
        CK_OBJECT_HANDLE obj;
        CK_ATTRIBUTE v = {CKA_VALUE, out, sizeof out};
        if (g.f->C_UnwrapKey(s, &m, k, g.wrapped, g.wrapped_len, tpl, 5, &obj) ||
            g.f->C_GetAttributeValue(s, obj, &v, 1) || g.f->C_DestroyObject(s, obj))
            abort();
    }
    if (memcmp(out, g.dek->bytes, 32) != 0)
        abort();
}

static void *bare_loop(void *arg)
{
    uint64_t *n = arg;
    CK_SESSION_HANDLE s;
    if (g.f->C_OpenSession(g.slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s))
        abort();
    CK_OBJECT_HANDLE k = bare_key(s);
    double end = now_s() + g.seconds;
    while (now_s() < end) {
        for (int i = 0; i < 64; i++) {
            bare_one(s, k);
            (*n)++;
        }
    }
    g.f->C_CloseSession(s);
    return NULL;
}

static double measure(const char *what, void *(*fn)(void *), int threads)
{
    pthread_t th[64];
    uint64_t counts[64] = {0}, total = 0;
    double t0 = now_s();
    for (int i = 0; i < threads; i++)
        pthread_create(&th[i], NULL, fn, &counts[i]);
    for (int i = 0; i < threads; i++) {
        pthread_join(th[i], NULL);
        total += counts[i];
    }
    double s = now_s() - t0, rate = total / s;
    printf("%-8s %d threads: %llu unwraps in %.2f s = %.0f/s\n", what, threads,
           (unsigned long long)total, s, rate);
    return rate;
}

/* The bare loop reuses the module the provider loaded and initialised
 * (one C_Initialize a process), and its login (logins are per token). */
static void bare_setup(const char *module, const struct renc_keyref *ref)
{
    CK_C_GetFunctionList get = NULL;
    void *dl = dlopen(module, RTLD_NOW | RTLD_NOLOAD);
    if (!dl || !(get = (CK_C_GetFunctionList)dlsym(dl, "C_GetFunctionList")) || get(&g.f))
        abort();
    CK_SLOT_ID slots[64];
    CK_ULONG n = 64;
    const char *tok = strstr(ref->vault, "token=") + 6;
    size_t tl = strcspn(tok, ";?");
    if (g.f->C_GetSlotList(CK_TRUE, slots, &n))
        abort();
    for (CK_ULONG i = 0; i < n; i++) {
        CK_TOKEN_INFO ti;
        if (g.f->C_GetTokenInfo(slots[i], &ti) == CKR_OK && memcmp(ti.label, tok, tl) == 0 &&
            (tl == 32 || ti.label[tl] == ' '))
            g.slot = slots[i];
    }
    snprintf(g.label, sizeof g.label, "%s", ref->name);
    g.cls = g.t.alg == RENC_ALG_AES_KWP || g.t.alg == RENC_ALG_AES_KW ? CKO_SECRET_KEY
                                                                      : CKO_PRIVATE_KEY;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: p11_loop MODULE REF THREADS SECONDS\n");
        return 2;
    }
    int threads = atoi(argv[3]);
    g.seconds = atof(argv[4]);
    struct renc_provider_config config = {.open_remote = 1};
    config.pkcs11.module = argv[1];
    config.pkcs11.pin = getenv("RENC_PKCS11_PIN");
    struct renc_keyref ref;
    g.ops = &renc_provider_pkcs11;
    int rc = renc_keyref_parse(&ref, argv[2]);
    if (rc == 0)
        rc = g.ops->open(&g.prov, &config);
    if (rc == 0)
        rc = g.ops->wrap_target(g.prov, &ref, &g.t);
    if (rc == 0)
        rc = renc_key_random(&g.dek, 32);
    if (rc == 0)
        rc = g.ops->wrap(g.prov, &g.t, g.dek, g.wrapped, sizeof g.wrapped, &g.wrapped_len, NULL, 0);
    if (rc) {
        fprintf(stderr, "p11_loop: %s\n", renc_strerror(rc));
        return 1;
    }
    if (threads < 1 || threads > 64)
        threads = 2;
    printf("key %s, slot alg %d\n", g.t.versioned, g.t.alg);
    bare_setup(argv[1], &ref);
    /* Three rounds, alternating, the best of each kept: the machine is
     * shared, and the first loop would otherwise pay for warming up. */
    double bare = 0, prov = 0;
    for (int round = 0; round < 3; round++) {
        double b = measure("bare", bare_loop, threads);
        double v = measure("provider", provider_loop, threads);
        bare = b > bare ? b : bare;
        prov = v > prov ? v : prov;
    }
    printf("best bare %.0f/s, best provider %.0f/s, provider/bare: %.0f%%\n", bare, prov,
           100.0 * prov / bare);
    renc_key_free(g.dek);
    g.ops->close(g.prov);
    return 0;
}
