/* common/error.h — one error model for the whole tree.
 *
 * Functions return int: 0 on success, negative on failure.  io/ passes the
 * kernel's -errno through; everything else returns -RENC_E_*.  The RENC_E_*
 * values start above 4095 so they never clash with errno, and
 * renc_strerror() names both kinds.
 */
#ifndef RENC_COMMON_ERROR_H
#define RENC_COMMON_ERROR_H

enum renc_error {
    RENC_E_BASE = 4096,
    RENC_E_INVALID,        /* bad argument from the caller */
    RENC_E_NOMEM,          /* allocation failed */
    RENC_E_TOO_BIG,        /* a length exceeds a documented bound */
    RENC_E_BAD_MAGIC,      /* not a RENC file */
    RENC_E_BAD_VERSION,    /* RENC version other than 1 */
    RENC_E_BAD_SEG_SHIFT,  /* seg_shift outside 12..24 */
    RENC_E_BAD_HEADER_LEN, /* header_len too short for its fields */
    RENC_E_BAD_PADDING,    /* header padding is not all zero */
    RENC_E_BAD_FLAGS,      /* unknown flag bits set */
    RENC_E_BAD_CONTEXT,    /* context not canonical, or malformed */
    RENC_E_NO_ENV,         /* context lacks the required "env" key */
    RENC_E_BAD_SLOT_COUNT, /* slot_count 0 or over 8 */
    RENC_E_BAD_ALG,        /* unknown key slot algorithm */
    RENC_E_HEADER_AUTH,    /* header_tag does not verify */
    RENC_E_RECORD_AUTH,    /* a record's tag does not verify */
    RENC_E_BAD_RECORD,     /* record word malformed (length, compression bit) */
    RENC_E_TRUNCATED,      /* input ends before its last record */
    RENC_E_TRAILING,       /* bytes after the last record */
    RENC_E_LENGTH_MISMATCH,/* segment sizes or total differ from plaintext_len */
    RENC_E_DECOMPRESS,     /* a zstd frame does not decode to its segment */
    RENC_E_CRYPTO,         /* the crypto library failed unexpectedly */
    RENC_E_BAD_KEYREF,     /* a key reference does not parse */
    RENC_E_KEY_NOT_FOUND,  /* no such key or version */
    RENC_E_KEY_DISABLED,   /* the key version is disabled: cannot unwrap */
    RENC_E_KEY_REVOKED,    /* access to the key or version was withdrawn */
    RENC_E_KEY_TYPE,       /* the key's type does not fit the slot algorithm */
    RENC_E_KEY_EXISTS,     /* a key of that name already exists */
    RENC_E_UNWRAP,         /* a wrapped DEK did not unwrap under the key */
    RENC_E_NO_SLOT,        /* no slot of the blob could be opened */
    RENC_E_INSECURE_PERMS, /* a key or state file is readable by others */
    RENC_E_BAD_KEYRING,    /* keyring state file malformed */
    RENC_E_UNSUPPORTED,    /* a provider or feature not available here */
    RENC_E_BUSY,           /* a journal or source is in use by another run */
    RENC_E_BAD_JOURNAL,    /* not a reencrypt journal, or of a newer schema */
    RENC_E_JOURNAL,        /* the journal database failed */
    RENC_E_HEADER_MISMATCH,/* a header matches neither journaled version */
    RENC_E_ENV_NOT_FOUND,  /* no such environment in the catalog */
    RENC_E_ENV_EXISTS,     /* an environment of that id already exists */
    RENC_E_ENV_LOCKED,     /* the environment is locked: nothing is read or written */
    RENC_E_CMK_LIMIT,      /* the limit on cmk environments is reached */
    RENC_E_NOT_ALLOWED,    /* a restore or copy rule refuses the operation */
    RENC_E_KEY_NEEDED,     /* a key version is still named by blobs or backups */
    RENC_E_BAD_ARCHIVE,    /* a backup's archive is malformed */
    RENC_E_BAD_CATALOG,    /* not a reencrypt catalog (or of a newer schema) */
    RENC_E_CATALOG,        /* the catalog database failed */
    RENC_E_NOT_REGULAR,    /* a symbolic link or special file where a file or folder is expected */
    RENC_E_KEY_EXPIRED,    /* the key version is expired or not yet valid: no new wraps */
    RENC_E_KEY_OP,         /* the key's permitted operations (key_ops) exclude this one */
    RENC_E_VAULT_AUTH,     /* no token for the key vault: credentials missing or refused */
    RENC_E_VAULT_NETWORK,  /* the key vault could not be reached (network, TLS, timeout) */
    RENC_E_VAULT_THROTTLED,/* the key vault kept throttling (429) past the retry limit */
    RENC_E_VAULT,          /* the key vault answered with an error it does not document */
    RENC_E_CHANGED,        /* the file changed, was replaced or removed since it was read */
    RENC_E_HARDLINKED,     /* the file has other hard links: rewriting it would split or reach them */
    RENC_E_KEY_DELETED,    /* the key vault has no such key (deleted, or never created there) */
    RENC_E_VAULT_DENIED,   /* the key vault refused the caller by a network rule, not the key's access */
    /* net/'s own: a provider or store maps them to its domain at its boundary
     * (keys/akv.c: the transport ones to RENC_E_VAULT_NETWORK). */
    RENC_E_NET_RESOLVE,    /* the host (or proxy) name did not resolve */
    RENC_E_NET_CONNECT,    /* the connection could not be made (refused, unreachable) */
    RENC_E_NET_TLS,        /* the TLS handshake or the peer's certificate failed */
    RENC_E_NET_TIMEOUT,    /* no complete answer within the request's time */
    RENC_E_NET_IO,         /* the exchange broke off (connection dropped, bad answer) */
    RENC_E_NET_TOO_BIG,    /* a buffered answer exceeds its cap (stream it instead) */
    RENC_E_NET_THROTTLED,  /* the server kept throttling (429) past the retry policy's wait */
    /* Blob storage (azure/blob.c maps the service's answers to these). */
    RENC_E_STORE_AUTH,     /* the storage account refused the credentials, or none were given */
    RENC_E_STORE_NOT_FOUND,/* the storage container does not exist */
    RENC_E_STORE_NETWORK,  /* the storage account could not be reached (network, TLS, timeout) */
    RENC_E_STORE_BUSY,     /* the storage service kept answering busy (503/500/408) past the retries */
    RENC_E_STORE,          /* the storage service answered with an error it does not document */
    /* PKCS#11 tokens (keys/pkcs11.c maps CKR_ values to these and notes
     * the CKR_ name). */
    RENC_E_HSM_MODULE,     /* the PKCS#11 module could not be loaded or initialised */
    RENC_E_HSM_LOGIN,      /* the token refused the PIN, or no PIN was given */
    RENC_E_HSM_TOKEN,      /* no token matches the reference (missing or removed) */
    RENC_E_HSM,            /* the token failed an operation (the CKR_ value is noted) */
    RENC_E_END
};

/* renc_strerror: a static, human-readable message for any return code:
 * 0, -errno or -RENC_E_*.  Never NULL. */
const char *renc_strerror(int err);

/* Guard clause: return `err` when `cond` holds. */
#define RENC_RETURN_IF(cond, err) \
    do { if (cond) return (err); } while (0)

#endif
