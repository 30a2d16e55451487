#include "common/error.h"

#include <string.h>

static const char *const renc_messages[] = {
    [RENC_E_INVALID - RENC_E_BASE] = "invalid argument",
    [RENC_E_NOMEM - RENC_E_BASE] = "out of memory",
    [RENC_E_TOO_BIG - RENC_E_BASE] = "length exceeds its limit",
    [RENC_E_BAD_MAGIC - RENC_E_BASE] = "not a RENC file (bad magic)",
    [RENC_E_BAD_VERSION - RENC_E_BASE] = "unsupported RENC version",
    [RENC_E_BAD_SEG_SHIFT - RENC_E_BASE] = "segment size out of range (seg_shift not in 12..24)",
    [RENC_E_BAD_HEADER_LEN - RENC_E_BASE] = "header_len too short for the header's fields",
    [RENC_E_BAD_PADDING - RENC_E_BASE] = "header padding is not all zero",
    [RENC_E_BAD_FLAGS - RENC_E_BASE] = "unknown header flag bits",
    [RENC_E_BAD_CONTEXT - RENC_E_BASE] = "header context malformed or not canonical",
    [RENC_E_NO_ENV - RENC_E_BASE] = "header context lacks the required env key",
    [RENC_E_BAD_SLOT_COUNT - RENC_E_BASE] = "slot count not in 1..8",
    [RENC_E_BAD_ALG - RENC_E_BASE] = "unknown key slot algorithm",
    [RENC_E_HEADER_AUTH - RENC_E_BASE] = "header authentication failed (header_tag does not verify)",
    [RENC_E_RECORD_AUTH - RENC_E_BASE] = "record authentication failed (tampered or wrong key)",
    [RENC_E_BAD_RECORD - RENC_E_BASE] = "malformed record length word",
    [RENC_E_TRUNCATED - RENC_E_BASE] = "truncated: input ends before its last record",
    [RENC_E_TRAILING - RENC_E_BASE] = "trailing bytes after the last record",
    [RENC_E_LENGTH_MISMATCH - RENC_E_BASE] = "segment sizes do not match plaintext_len",
    [RENC_E_DECOMPRESS - RENC_E_BASE] = "compressed segment does not decode to its size",
    [RENC_E_CRYPTO - RENC_E_BASE] = "crypto library failure",
    [RENC_E_BAD_KEYREF - RENC_E_BASE] = "key reference does not parse",
    [RENC_E_KEY_NOT_FOUND - RENC_E_BASE] = "key not found",
    [RENC_E_KEY_DISABLED - RENC_E_BASE] = "key version is disabled",
    [RENC_E_KEY_REVOKED - RENC_E_BASE] = "key access revoked",
    [RENC_E_KEY_TYPE - RENC_E_BASE] = "key type does not fit the slot algorithm",
    [RENC_E_KEY_EXISTS - RENC_E_BASE] = "key already exists",
    [RENC_E_UNWRAP - RENC_E_BASE] = "wrapped data key did not unwrap under this key",
    [RENC_E_NO_SLOT - RENC_E_BASE] = "no key slot could be opened with the available keys",
    [RENC_E_INSECURE_PERMS - RENC_E_BASE] = "insecure permissions: readable by group or others",
    [RENC_E_BAD_KEYRING - RENC_E_BASE] = "keyring state malformed",
    [RENC_E_UNSUPPORTED - RENC_E_BASE] = "not supported",
    [RENC_E_BUSY - RENC_E_BASE] = "in use by another run",
    [RENC_E_BAD_JOURNAL - RENC_E_BASE] = "not a reencrypt journal (or of a newer schema)",
    [RENC_E_JOURNAL - RENC_E_BASE] = "the journal database failed",
    [RENC_E_HEADER_MISMATCH - RENC_E_BASE] =
        "header matches neither the journaled old nor new header: left alone",
    [RENC_E_ENV_NOT_FOUND - RENC_E_BASE] = "no such environment",
    [RENC_E_ENV_EXISTS - RENC_E_BASE] = "environment already exists",
    [RENC_E_ENV_LOCKED - RENC_E_BASE] = "environment is locked: nothing is read or written",
    [RENC_E_CMK_LIMIT - RENC_E_BASE] = "the limit on cmk environments is reached",
    [RENC_E_NOT_ALLOWED - RENC_E_BASE] = "not allowed by the restore and copy rules",
    [RENC_E_KEY_NEEDED - RENC_E_BASE] = "key version is still needed by blobs or backups",
    [RENC_E_BAD_ARCHIVE - RENC_E_BASE] = "backup archive malformed",
    [RENC_E_BAD_CATALOG - RENC_E_BASE] = "not a reencrypt catalog (or of a newer schema)",
    [RENC_E_CATALOG - RENC_E_BASE] = "the catalog database failed",
    [RENC_E_NOT_REGULAR - RENC_E_BASE] =
        "a symbolic link or special file, not a regular file or folder (links are never followed)",
    [RENC_E_KEY_EXPIRED - RENC_E_BASE] =
        "key version is expired or not yet valid: it can unwrap but not wrap",
    [RENC_E_KEY_OP - RENC_E_BASE] = "the key does not permit this operation (key_ops)",
    [RENC_E_VAULT_AUTH - RENC_E_BASE] =
        "no token for the key vault: credentials missing or refused",
    [RENC_E_VAULT_NETWORK - RENC_E_BASE] =
        "the key vault could not be reached (network, TLS or timeout), retries exhausted",
    [RENC_E_VAULT_THROTTLED - RENC_E_BASE] =
        "the key vault kept throttling requests (429), retries exhausted",
    [RENC_E_VAULT - RENC_E_BASE] = "the key vault answered with an unexpected error",
    [RENC_E_CHANGED - RENC_E_BASE] =
        "changed during the run (replaced, modified or removed by another writer): left as it is",
    [RENC_E_HARDLINKED - RENC_E_BASE] =
        "has other hard links (its other names would keep the old version or be rewritten): left as it is",
    [RENC_E_KEY_DELETED - RENC_E_BASE] =
        "the key vault has no such key (deleted, or never created there): recover it in the "
        "vault, or nothing under it can be opened",
    [RENC_E_VAULT_DENIED - RENC_E_BASE] =
        "the key vault refused this machine by a network rule (its firewall or private-link "
        "setting), not the key's access: nothing is locked; allow this client in the vault's "
        "network settings",
    [RENC_E_NET_RESOLVE - RENC_E_BASE] = "the host name did not resolve",
    [RENC_E_NET_CONNECT - RENC_E_BASE] = "the connection could not be made",
    [RENC_E_NET_TLS - RENC_E_BASE] = "the TLS handshake or the server's certificate failed",
    [RENC_E_NET_TIMEOUT - RENC_E_BASE] = "no answer within the request's time",
    [RENC_E_NET_IO - RENC_E_BASE] = "the connection broke off or the answer was malformed",
    [RENC_E_NET_TOO_BIG - RENC_E_BASE] = "the answer is larger than a buffered request accepts",
    [RENC_E_NET_THROTTLED - RENC_E_BASE] = "the server kept throttling requests (429), retries exhausted",
    [RENC_E_STORE_AUTH - RENC_E_BASE] = "the storage account refused the credentials (or none were given)",
    [RENC_E_STORE_NOT_FOUND - RENC_E_BASE] = "the storage container does not exist",
    [RENC_E_STORE_NETWORK - RENC_E_BASE] = "the storage account could not be reached (network, TLS or timeout)",
    [RENC_E_STORE_BUSY - RENC_E_BASE] = "the storage service stayed busy (503/500/408), retries exhausted",
    [RENC_E_STORE - RENC_E_BASE] = "the storage service answered with an unexpected error",
    [RENC_E_HSM_MODULE - RENC_E_BASE] =
        "the PKCS#11 module could not be loaded (give module-path= in the URI, "
        "--pkcs11-module or RENC_PKCS11_MODULE)",
    [RENC_E_HSM_LOGIN - RENC_E_BASE] =
        "the token refused the login: wrong or missing PIN (pin-source= in the URI or "
        "RENC_PKCS11_PIN)",
    [RENC_E_HSM_TOKEN - RENC_E_BASE] = "no token matches the reference (missing or removed)",
    [RENC_E_HSM - RENC_E_BASE] = "the token failed the operation",
};

const char *renc_strerror(int err)
{
    if (err == 0)
        return "success";
    int e = err < 0 ? -err : err;
    if (e > RENC_E_BASE && e < RENC_E_END) {
        const char *m = renc_messages[e - RENC_E_BASE];
        return m ? m : "unknown error";
    }
    if (e < RENC_E_BASE)
        return strerror(e);
    return "unknown error";
}
