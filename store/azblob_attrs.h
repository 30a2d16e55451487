/* store/azblob_attrs.h — what a listing said of one blob's version (its
 * content headers, metadata, tag count and index tags), kept in its scan
 * item (struct renc_scan_item.attrs) so that rewriting the blob needs no
 * Get Blob Properties nor Get Blob Tags: the commit's If-Match on the
 * listed ETag makes what was listed exactly what the replaced version had.
 * Only store/azblob.c reads or writes it. */
#ifndef RENC_STORE_AZBLOB_ATTRS_H
#define RENC_STORE_AZBLOB_ATTRS_H

#include "azure/blob.h"

/* renc_azb_attrs_make: p and tags (NULL: not listed) as one string in *out
 * (malloc'd).  *out is NULL (and 0 returned) when p is NULL or a value
 * holds a line break, which the form cannot carry: the store then asks
 * the service at rewrite time. */
int renc_azb_attrs_make(char **out, const struct renc_blob_props *p, const char *tags);

/* renc_azb_attrs_read: attrs back into *p (content headers, metadata, tag
 * count; the caller cleans it up) and *tags (malloc'd, NULL when the
 * listing did not give them).  -RENC_E_INVALID when attrs is not of the
 * form above (nothing is left in p or tags). */
int renc_azb_attrs_read(const char *attrs, struct renc_blob_props *p, char **tags);

#endif
