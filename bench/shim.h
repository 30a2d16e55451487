/* bench/shim.h — C entry points the Google Benchmark drivers call.
 *
 * The benchmarks are C++ (Google Benchmark), the code under test is C; this
 * seam keeps every C++ line in bench/ and every OpenSSL or RENC type out of
 * the .cc files.  A context owns keyed AEAD state (K_data derived from a
 * fixed DEK and salt, as for a blob), one record buffer for seals, and a
 * batch of sealed records for opens: an open decrypts in place, so the batch
 * is refilled (outside the timed region) once every record in it was opened.
 */
#ifndef RENC_BENCH_SHIM_H
#define RENC_BENCH_SHIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct renc_bench_ctx;

/* renc_bench_ctx_new: a context for segments of up to max_seg_size bytes on
 * the AEAD backend named `backend` ("auto", "openssl", "ipsec-mb"), with a
 * fixed plaintext and fixed keys.  0, or a negative -RENC_E_* (UNSUPPORTED
 * when that backend is not available here). */
int renc_bench_ctx_new(struct renc_bench_ctx **out, size_t max_seg_size, const char *backend);
void renc_bench_ctx_free(struct renc_bench_ctx *ctx);

/* renc_bench_backend: the backend in use (what "auto" chose). */
const char *renc_bench_backend(const struct renc_bench_ctx *ctx);

/* renc_bench_record_seal: seals one seg_size segment as a non-last record,
 * in place (the segment sits right after the word, as renc_blob_seal reads
 * it), without compression; the record index advances every call. */
int renc_bench_record_seal(struct renc_bench_ctx *ctx, size_t seg_size);

/* renc_bench_aead_seal: raw AES-256-GCM (renc_aead_seal) of len bytes in
 * place with a 4-byte AAD: the record codec minus its framing. */
int renc_bench_aead_seal(struct renc_bench_ctx *ctx, size_t len);

/* Opens: renc_bench_open_fill(ctx, raw, n) fills the batch with copies of
 * one sealed record of n plaintext bytes (raw: bare GCM ciphertext and tag
 * as renc_bench_aead_seal makes; else a RENC record) and returns how many
 * there are (>= 1), or a negative error.  renc_bench_open(ctx, i) then opens
 * copy i, in place, with renc_record_open or renc_aead_open; each copy opens
 * once.  Negative when its tag does not verify. */
int renc_bench_open_fill(struct renc_bench_ctx *ctx, int raw, size_t n);
int renc_bench_open(struct renc_bench_ctx *ctx, int i);

#ifdef __cplusplus
}
#endif

#endif
