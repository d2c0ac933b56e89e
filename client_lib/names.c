/* SPDX-License-Identifier: MIT */
/*
 * names: the registries of layers and of metrics, so that the hot path
 * logs a small integer id and never hashes a string.  Registration runs
 * on any thread under the registry's lock (a hash index finds a name
 * again); entries live in segments that never move and are published by
 * a release store of the count, so the sender reads them without a lock.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

void
gw__names_init(struct gw__names *n)
{
	memset(n, 0, sizeof *n);
	pthread_mutex_init(&n->lock, NULL);
	atomic_init(&n->count, 0);
}

/*
 * The published entries, the segments and the index.  Safe without the
 * lock even where an add stopped half-way at a fork: an entry is counted
 * only once whole, and every pointer here is to a live block at each
 * step of an add (the new index is stored before the old one is freed).
 */
static void
gw__names_free(struct gw__names *n)
{
	uint32_t	 i, count;
	struct gw__name	*e;

	count = atomic_load(&n->count);
	for (i = 0; i < count; i++) {
		e = &n->seg[i / GW__NAMES_SEG][i % GW__NAMES_SEG];
		free(e->name);
		free(e->shape);
	}
	for (i = 0; i < GW__NAMES_NSEG && n->seg[i] != NULL; i++)
		free(n->seg[i]);
	free(n->index);
}

void
gw__names_cleanup(struct gw__names *n)
{
	gw__names_free(n);
	pthread_mutex_destroy(&n->lock);
	memset(n, 0, sizeof *n);
}

void
gw__names_forget(struct gw__names *n)
{
	gw__names_free(n);
	memset(n, 0, sizeof *n);
}

const struct gw__name *
gw__names_get(const struct gw__names *n, uint32_t id)
{
	return &n->seg[id / GW__NAMES_SEG][id % GW__NAMES_SEG];
}

int
gw__utf8_is_valid(const char *s, size_t len)
{
	const unsigned char	*p = (const unsigned char *)s;
	size_t			 i = 0, k, need;
	uint32_t		 cp;

	while (i < len) {
		if (p[i] == 0)
			return 0;
		if (p[i] < 0x80) {
			i++;
			continue;
		}
		if ((p[i] & 0xe0) == 0xc0) {
			need = 1;
			cp = p[i] & 0x1f;
		} else if ((p[i] & 0xf0) == 0xe0) {
			need = 2;
			cp = p[i] & 0x0f;
		} else if ((p[i] & 0xf8) == 0xf0) {
			need = 3;
			cp = p[i] & 0x07;
		} else
			return 0;
		if (len - i <= need)
			return 0;
		for (k = 1; k <= need; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (p[i + k] & 0x3f);
		}
		/* Overlong forms, surrogates and beyond U+10FFFF. */
		if ((need == 1 && cp < 0x80) || (need == 2 && cp < 0x800) ||
		    (need == 3 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += need + 1;
	}
	return 1;
}

static uint64_t
gw__names_hash(const char *s, size_t len)
{
	uint64_t	h = 0xcbf29ce484222325ULL;	/* FNV-1a */
	size_t		i;

	for (i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

/* Under lock: the index slot of name, or of the free slot it would take. */
static size_t
gw__names_slot(struct gw__names *n, const char *name, size_t len)
{
	const struct gw__name	*e;
	size_t			 i;

	i = gw__names_hash(name, len) & (n->index_cap - 1);
	while (n->index[i] != 0) {
		e = gw__names_get(n, n->index[i] - 1);
		if (e->len == len && memcmp(e->name, name, len) == 0)
			break;
		i = (i + 1) & (n->index_cap - 1);
	}
	return i;
}

/* Under lock: room for one more of count entries, at most half full. */
static int
gw__names_grow(struct gw__names *n, uint32_t count)
{
	const struct gw__name	*e;
	uint32_t		*old = n->index, id;
	size_t			 oldcap = n->index_cap, cap;

	if (oldcap != 0 && ((size_t)count + 1) * 2 <= oldcap)
		return 0;
	cap = oldcap == 0 ? 64 : oldcap * 2;
	if ((n->index = calloc(cap, sizeof *n->index)) == NULL) {
		n->index = old;
		return -1;
	}
	n->index_cap = cap;
	for (id = 0; id < count; id++) {
		e = gw__names_get(n, id);
		n->index[gw__names_slot(n, e->name, e->len)] = id + 1;
	}
	free(old);
	return 0;
}

int
gw__names_add(struct gw__names *n, const char *name, int64_t numel,
    int depth, const int64_t *shape, int ndim)
{
	struct gw__name	*e;
	uint32_t	 count;
	size_t		 len, slot;
	int		 rc, i;

	if (name == NULL)
		return GW_EINVAL;
	len = strlen(name);
	if (len == 0 || len > WIRE_NAME_MAX || !gw__utf8_is_valid(name, len))
		return GW_EINVAL;
	if (ndim < 0 || ndim > 32 || (ndim > 0 && shape == NULL))
		return GW_EINVAL;
	for (i = 0; i < ndim; i++)
		if (shape[i] < 0)
			return GW_EINVAL;

	pthread_mutex_lock(&n->lock);
	count = atomic_load_explicit(&n->count, memory_order_relaxed);
	if (n->index_cap != 0) {
		slot = gw__names_slot(n, name, len);
		if (n->index[slot] != 0) {
			rc = (int)(n->index[slot] - 1);
			goto out;
		}
	}
	rc = GW_EINVAL;
	if (count >= (uint32_t)GW__NAMES_SEG * GW__NAMES_NSEG)
		goto out;
	rc = GW_ENOMEM;
	if (gw__names_grow(n, count) == -1)
		goto out;
	if (n->seg[count / GW__NAMES_SEG] == NULL &&
	    (n->seg[count / GW__NAMES_SEG] = calloc(GW__NAMES_SEG,
	    sizeof *e)) == NULL)
		goto out;
	e = &n->seg[count / GW__NAMES_SEG][count % GW__NAMES_SEG];
	if ((e->name = strdup(name)) == NULL)
		goto out;
	if (ndim > 0) {
		if ((e->shape = calloc((size_t)ndim, sizeof *shape)) == NULL) {
			free(e->name);
			e->name = NULL;
			goto out;
		}
		memcpy(e->shape, shape, (size_t)ndim * sizeof *shape);
	}
	e->len = len;
	e->numel = numel < 0 ? -1 : numel;
	e->depth = depth < 0 ? -1 : depth;
	e->ndim = shape == NULL ? -1 : ndim;
	n->index[gw__names_slot(n, name, len)] = count + 1;
	/* Publish: readers that see the new count see the entry. */
	atomic_store_explicit(&n->count, count + 1, memory_order_release);
	rc = (int)count;
out:
	pthread_mutex_unlock(&n->lock);
	return rc;
}
