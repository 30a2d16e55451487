/* store/azblob.h — the blob-storage store (store/azblob.c). */
#ifndef RENC_STORE_AZBLOB_H
#define RENC_STORE_AZBLOB_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

struct renc_blob_account_opts;

/* renc_store_azblob_new: the store over the container (or prefix) url
 * names, with o's credentials (may be NULL: only a SAS in the URL). */
int renc_store_azblob_new(struct renc_store **out, const char *url,
                          const struct renc_blob_account_opts *o, char *why, size_t why_max);

/* renc_store_azblob_make_container: the container made when missing
 * (a credential that may not make one, such as a container SAS, is not an
 * error here: the first commit says whether the container is there). */
void renc_store_azblob_make_container(struct renc_store *s);

#endif
