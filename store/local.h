/* store/local.h — the local-filesystem store (store/local.c). */
#ifndef RENC_STORE_LOCAL_H
#define RENC_STORE_LOCAL_H

#include "store/store.h"

/* renc_store_local_new: a local store over spec (borrowed: its strings
 * must outlive the store; NULL: a store for item operations only). */
int renc_store_local_new(struct renc_store **out, const struct renc_store_spec *spec);

#endif
