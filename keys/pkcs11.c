/* keys/pkcs11.c — the PKCS#11 module, its tokens, their sessions and
 * logins, and what its return values mean to the tool (pkcs11.h). */
#include "keys/pkcs11_internal.h"

#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/error.h"

static const struct {
    CK_RV rv;
    const char *name;
} renc_p11_rvs[] = {
#define RENC_RV(x) {x, #x}
    RENC_RV(CKR_OK), RENC_RV(CKR_HOST_MEMORY), RENC_RV(CKR_SLOT_ID_INVALID),
    RENC_RV(CKR_GENERAL_ERROR), RENC_RV(CKR_FUNCTION_FAILED), RENC_RV(CKR_ARGUMENTS_BAD),
    RENC_RV(CKR_ATTRIBUTE_READ_ONLY), RENC_RV(CKR_ATTRIBUTE_TYPE_INVALID),
    RENC_RV(CKR_ATTRIBUTE_VALUE_INVALID), RENC_RV(CKR_DEVICE_ERROR), RENC_RV(CKR_DEVICE_MEMORY),
    RENC_RV(CKR_DEVICE_REMOVED), RENC_RV(CKR_ENCRYPTED_DATA_INVALID),
    RENC_RV(CKR_ENCRYPTED_DATA_LEN_RANGE), RENC_RV(CKR_FUNCTION_NOT_SUPPORTED),
    RENC_RV(CKR_KEY_HANDLE_INVALID), RENC_RV(CKR_KEY_SIZE_RANGE),
    RENC_RV(CKR_KEY_TYPE_INCONSISTENT), RENC_RV(CKR_KEY_FUNCTION_NOT_PERMITTED),
    RENC_RV(CKR_KEY_UNEXTRACTABLE), RENC_RV(CKR_MECHANISM_INVALID),
    RENC_RV(CKR_MECHANISM_PARAM_INVALID), RENC_RV(CKR_OBJECT_HANDLE_INVALID),
    RENC_RV(CKR_OPERATION_ACTIVE), RENC_RV(CKR_PIN_INCORRECT), RENC_RV(CKR_PIN_INVALID),
    RENC_RV(CKR_PIN_LEN_RANGE), RENC_RV(CKR_PIN_EXPIRED), RENC_RV(CKR_PIN_LOCKED),
    RENC_RV(CKR_SESSION_CLOSED), RENC_RV(CKR_SESSION_HANDLE_INVALID),
    RENC_RV(CKR_TEMPLATE_INCOMPLETE), RENC_RV(CKR_TEMPLATE_INCONSISTENT),
    RENC_RV(CKR_TOKEN_NOT_PRESENT), RENC_RV(CKR_TOKEN_NOT_RECOGNIZED),
    RENC_RV(CKR_TOKEN_WRITE_PROTECTED), RENC_RV(CKR_UNWRAPPING_KEY_HANDLE_INVALID),
    RENC_RV(CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT), RENC_RV(CKR_USER_NOT_LOGGED_IN),
    RENC_RV(CKR_USER_ALREADY_LOGGED_IN), RENC_RV(CKR_WRAPPED_KEY_INVALID),
    RENC_RV(CKR_WRAPPED_KEY_LEN_RANGE), RENC_RV(CKR_WRAPPING_KEY_HANDLE_INVALID),
    RENC_RV(CKR_WRAPPING_KEY_TYPE_INCONSISTENT), RENC_RV(CKR_BUFFER_TOO_SMALL),
    RENC_RV(CKR_CRYPTOKI_NOT_INITIALIZED), RENC_RV(CKR_CRYPTOKI_ALREADY_INITIALIZED),
    RENC_RV(CKR_DATA_LEN_RANGE), RENC_RV(CKR_SESSION_COUNT),
#undef RENC_RV
};

const char *renc_p11_rv_name(unsigned long rv, char *buf, size_t max)
{
    for (size_t i = 0; i < sizeof renc_p11_rvs / sizeof renc_p11_rvs[0]; i++)
        if (renc_p11_rvs[i].rv == rv)
            return renc_p11_rvs[i].name;
    snprintf(buf, max, "CKR_0x%lx", rv);
    return buf;
}

int renc_p11_rv_error(unsigned long rv)
{
    switch (rv) {
    case CKR_OK:
        return 0;
    case CKR_HOST_MEMORY:
        return -RENC_E_NOMEM;
    case CKR_PIN_INCORRECT: case CKR_PIN_INVALID: case CKR_PIN_LEN_RANGE:
    case CKR_PIN_EXPIRED: case CKR_PIN_LOCKED: case CKR_USER_NOT_LOGGED_IN:
        return -RENC_E_HSM_LOGIN;
    case CKR_DEVICE_REMOVED: case CKR_TOKEN_NOT_PRESENT: case CKR_TOKEN_NOT_RECOGNIZED:
    case CKR_SLOT_ID_INVALID: case CKR_SESSION_CLOSED: case CKR_SESSION_HANDLE_INVALID:
    case CKR_DEVICE_ERROR:
        return -RENC_E_HSM_TOKEN;
    case CKR_KEY_HANDLE_INVALID: case CKR_OBJECT_HANDLE_INVALID:
    case CKR_WRAPPING_KEY_HANDLE_INVALID: case CKR_UNWRAPPING_KEY_HANDLE_INVALID:
        return -RENC_E_KEY_NOT_FOUND;
    case CKR_KEY_FUNCTION_NOT_PERMITTED:
        return -RENC_E_KEY_DISABLED;
    case CKR_MECHANISM_INVALID: case CKR_MECHANISM_PARAM_INVALID:
    case CKR_KEY_TYPE_INCONSISTENT: case CKR_WRAPPING_KEY_TYPE_INCONSISTENT:
    case CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT:
        return -RENC_E_KEY_TYPE;
    case CKR_WRAPPED_KEY_INVALID: case CKR_WRAPPED_KEY_LEN_RANGE:
    case CKR_ENCRYPTED_DATA_INVALID: case CKR_ENCRYPTED_DATA_LEN_RANGE:
        return -RENC_E_UNWRAP;
    default:
        return -RENC_E_HSM;
    }
}

void renc_p11_note(struct renc_p11 *p, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    if (!p->o.note)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    p->o.note(p->o.note_arg, line);
}

int renc_p11_fail(struct renc_p11 *p, const char *fn, CK_RV rv)
{
    int rc = renc_p11_rv_error(rv);
    /* A wrong wrapped DEK is an ordinary outcome (another slot may open);
     * the rest is said once per value, naming the token's answer. */
    if (rc == 0 || rc == -RENC_E_UNWRAP)
        return rc;
    int seen = 0;
    pthread_mutex_lock(&p->note_lock);
    for (size_t i = 0; i < p->n_noted; i++)
        seen |= p->noted[i] == rv;
    if (!seen && p->n_noted < RENC_P11_NOTED_MAX)
        p->noted[p->n_noted++] = rv;
    pthread_mutex_unlock(&p->note_lock);
    if (!seen) {
        char buf[32];
        renc_p11_note(p, "pkcs11: %s: %s: %s", fn, renc_p11_rv_name(rv, buf, sizeof buf),
                      renc_strerror(rc));
    }
    return rc;
}

void renc_p11_count(struct renc_p11 *p, uint64_t *counter)
{
    pthread_mutex_lock(&p->lock);
    (*counter)++;
    p->st.calls++;
    pthread_mutex_unlock(&p->lock);
}

int renc_p11_new(struct renc_p11 **out, const struct renc_p11_options *o)
{
    struct renc_p11 *p = renc_calloc(1, sizeof *p);
    RENC_RETURN_IF(!p, -RENC_E_NOMEM);
    p->o = *o;
    p->o.pin = NULL;
    if (o->pin && renc_key_from_bytes(&p->pin, (const uint8_t *)o->pin, strlen(o->pin))) {
        renc_free(p);
        return -RENC_E_NOMEM;
    }
    pthread_mutex_init(&p->lock, NULL);
    pthread_mutex_init(&p->note_lock, NULL);
    *out = p;
    return 0;
}

void renc_p11_free(struct renc_p11 *p)
{
    if (!p)
        return;
    if (p->f && p->pid == getpid()) {
        for (size_t i = 0; i < p->n_tokens; i++)
            for (size_t k = 0; k < p->tokens[i].n_idle; k++)
                p->f->C_CloseSession(p->tokens[i].idle[k]);
        if (p->finalize)
            p->f->C_Finalize(NULL);
    }
    if (p->dl)
        dlclose(p->dl);
    renc_key_free(p->pin);
    pthread_mutex_destroy(&p->lock);
    pthread_mutex_destroy(&p->note_lock);
    renc_free(p);
}

int renc_p11_uri(const char *text, P11KitUri **out)
{
    P11KitUri *u = p11_kit_uri_new();
    RENC_RETURN_IF(!u, -RENC_E_NOMEM);
    if (p11_kit_uri_parse(text, P11_KIT_URI_FOR_ANY, u) != P11_KIT_URI_OK) {
        p11_kit_uri_free(u);
        return -RENC_E_BAD_KEYREF;
    }
    *out = u;
    return 0;
}

/* The module, loaded once (under p->lock): the URI's module-path= or the
 * configured one.  A second, different module in one process is refused:
 * one C_Initialize'd library serves every token of a run. */
static int renc_p11_module(struct renc_p11 *p, P11KitUri *u)
{
    const char *path = p11_kit_uri_get_module_path(u);
    if (!path)
        path = p->o.module;
    if (p->f) {
        RENC_RETURN_IF(p->pid != getpid(), -RENC_E_HSM_MODULE); /* forked: see pkcs11.h */
        if (path && strcmp(path, p->module) != 0) {
            renc_p11_note(p, "pkcs11: module %s asked while %s is loaded: one module per run",
                          path, p->module);
            return -RENC_E_UNSUPPORTED;
        }
        return 0;
    }
    RENC_RETURN_IF(!path || strlen(path) >= sizeof p->module, -RENC_E_HSM_MODULE);
    p->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!p->dl) {
        renc_p11_note(p, "pkcs11: cannot load module %s", path);
        return -RENC_E_HSM_MODULE;
    }
    CK_C_GetFunctionList get = (CK_C_GetFunctionList)dlsym(p->dl, "C_GetFunctionList");
    CK_RV rv = get ? get(&p->f) : CKR_FUNCTION_NOT_SUPPORTED;
    if (rv == CKR_OK) {
        CK_C_INITIALIZE_ARGS args = {.flags = CKF_OS_LOCKING_OK};
        rv = p->f->C_Initialize(&args);
        p->finalize = rv == CKR_OK;
        if (rv == CKR_CRYPTOKI_ALREADY_INITIALIZED)
            rv = CKR_OK;
    }
    if (rv != CKR_OK) {
        renc_p11_fail(p, "C_Initialize", rv);
        p->f = NULL;
        dlclose(p->dl);
        p->dl = NULL;
        return -RENC_E_HSM_MODULE;
    }
    strcpy(p->module, path);
    p->pid = getpid();
    return 0;
}

static int renc_p11_has_mech(struct renc_p11 *p, CK_SLOT_ID slot, CK_MECHANISM_TYPE m)
{
    CK_MECHANISM_INFO info;
    return p->f->C_GetMechanismInfo(slot, m, &info) == CKR_OK;
}

/* Finds t's slot among those with a token present (slot ids are not
 * stable: SoftHSM moves a new token to a random one). */
static int renc_p11_find_slot(struct renc_p11 *p, struct renc_p11_token *t, P11KitUri *u)
{
    CK_SLOT_ID slots[64];
    CK_ULONG n = 64;
    CK_RV rv = p->f->C_GetSlotList(CK_TRUE, slots, &n);
    if (rv != CKR_OK)
        return renc_p11_fail(p, "C_GetSlotList", rv);
    for (CK_ULONG i = 0; i < n; i++) {
        CK_TOKEN_INFO info;
        if (p->f->C_GetTokenInfo(slots[i], &info) != CKR_OK ||
            !p11_kit_uri_match_token_info(u, &info))
            continue;
        t->slot = slots[i];
        t->found = 1;
        t->has_kwp = renc_p11_has_mech(p, t->slot, CKM_AES_KEY_WRAP_PAD);
        t->has_kw = renc_p11_has_mech(p, t->slot, CKM_AES_KEY_WRAP);
        t->has_oaep = renc_p11_has_mech(p, t->slot, CKM_RSA_PKCS_OAEP);
        t->oaep256 = -1;
        return 0;
    }
    return -RENC_E_HSM_TOKEN;
}

static struct renc_p11_token *renc_p11_token_for(struct renc_p11 *p, P11KitUri *u)
{
    CK_TOKEN_INFO *want = p11_kit_uri_get_token_info(u);
    for (size_t i = 0; i < p->n_tokens; i++)
        if (memcmp(&p->tokens[i].want, want, sizeof *want) == 0)
            return &p->tokens[i];
    if (p->n_tokens == RENC_P11_TOKENS_MAX)
        return NULL;
    struct renc_p11_token *t = &p->tokens[p->n_tokens++];
    memset(t, 0, sizeof *t);
    t->want = *want;
    return t;
}

/* The PIN: the URI's pin-source (a file, its first line) or
 * RENC_PKCS11_PIN.  Never in a message. */
static int renc_p11_pin(struct renc_p11 *p, P11KitUri *u, struct renc_key **pin)
{
    const char *src = p11_kit_uri_get_pin_source(u);
    if (!src)
        return p->pin ? renc_key_dup(pin, p->pin) : -RENC_E_HSM_LOGIN;
    if (strncmp(src, "file:", 5) == 0)
        src += 5;
    FILE *f = fopen(src, "re");
    RENC_RETURN_IF(!f, -RENC_E_HSM_LOGIN);
    struct stat st;
    /* As the keyring's files and the client secret's: others may not read it. */
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) || (st.st_mode & 077)) {
        fclose(f);
        renc_p11_note(p, "pkcs11: the pin-source file %s must be a file of mode 0600 or stricter",
                      src);
        return -RENC_E_INSECURE_PERMS;
    }
    struct renc_key *k = renc_key_new(256);
    int rc = k ? 0 : -RENC_E_NOMEM;
    if (rc == 0 && !fgets((char *)k->bytes, 256, f))
        rc = -RENC_E_HSM_LOGIN;
    fclose(f);
    if (rc == 0) {
        k->len = strcspn((char *)k->bytes, "\r\n");
        *pin = k;
    } else {
        renc_key_free(k);
    }
    return rc;
}

/* Logs the token in once (under p->lock): PKCS#11 logins are per
 * application and token, so every session of the pool shares it. */
static int renc_p11_login(struct renc_p11 *p, struct renc_p11_token *t, P11KitUri *u,
                          CK_SESSION_HANDLE h)
{
    struct renc_key *pin = NULL;
    int rc = renc_p11_pin(p, u, &pin);
    if (rc == -RENC_E_HSM_LOGIN)
        renc_p11_note(p, "pkcs11: no PIN for the token: set RENC_PKCS11_PIN or pin-source= "
                         "(a readable file)");
    if (rc)
        return rc;
    CK_RV rv = p->f->C_Login(h, CKU_USER, pin->bytes, pin->len);
    renc_key_free(pin);
    p->st.logins++;
    if (rv == CKR_USER_ALREADY_LOGGED_IN)
        rv = CKR_OK;
    if (rv == CKR_OK)
        t->logged_in = 1;
    return rv == CKR_OK ? 0 : renc_p11_fail(p, "C_Login", rv);
}

int renc_p11_session(struct renc_p11 *p, P11KitUri *u, struct renc_p11_sess *s)
{
    pthread_mutex_lock(&p->lock);
    int rc = renc_p11_module(p, u);
    struct renc_p11_token *t = rc ? NULL : renc_p11_token_for(p, u);
    if (rc == 0 && !t)
        rc = -RENC_E_TOO_BIG;
    if (rc == 0 && !t->found)
        rc = renc_p11_find_slot(p, t, u);
    if (rc == 0 && t->n_idle) {
        s->t = t;
        s->h = t->idle[--t->n_idle];
        pthread_mutex_unlock(&p->lock);
        return 0;
    }
    CK_RV rv = CKR_OK;
    if (rc == 0) {
        rv = p->f->C_OpenSession(t->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s->h);
        rc = rv == CKR_OK ? 0 : renc_p11_fail(p, "C_OpenSession", rv);
        if (rc == 0)
            p->st.sessions++;
    }
    if (rc == 0 && !t->logged_in && (rc = renc_p11_login(p, t, u, s->h)) != 0)
        p->f->C_CloseSession(s->h);
    if (rc == -RENC_E_HSM_TOKEN && t)
        t->found = 0; /* looked up again next time */
    pthread_mutex_unlock(&p->lock);
    if (rc == 0)
        s->t = t;
    return rc;
}

void renc_p11_release(struct renc_p11 *p, struct renc_p11_sess *s, int rc)
{
    pthread_mutex_lock(&p->lock);
    if (rc == -RENC_E_HSM_TOKEN || rc == -RENC_E_HSM_LOGIN ||
        s->t->n_idle == RENC_P11_IDLE_MAX) {
        p->f->C_CloseSession(s->h);
        if (rc == -RENC_E_HSM_TOKEN || rc == -RENC_E_HSM_LOGIN) {
            s->t->found = 0;
            s->t->logged_in = 0;
        }
    } else {
        s->t->idle[s->t->n_idle++] = s->h;
    }
    pthread_mutex_unlock(&p->lock);
}

void renc_p11_stats(struct renc_p11 *p, struct renc_p11_stats *out)
{
    pthread_mutex_lock(&p->lock);
    *out = p->st;
    pthread_mutex_unlock(&p->lock);
}
