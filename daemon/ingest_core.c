/* SPDX-License-Identifier: MIT */
/*
 * ingest_core: how both ingest paths (ingest.c's Jansson path and
 * ingest_scan.c's fast path) build a batch: causes, the run-key rule,
 * the call's name table, its series and point appends (ingest_core.h).
 * Pure and reentrant; any thread, nothing shared between calls.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "ingest.h"
#include "ingest_core.h"
#include "ingest_dump.h"
#include "xmalloc.h"

/* Record a bad_request cause; returns -1 for the caller to pass on. */
int
ingest_fail(struct ingest *ig, const char *fmt, ...)
{
	char	buf[1024];
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	free(ig->cause);
	ig->code = "bad_request";
	ig->cause = xstrdup(buf);
	return -1;
}

/*
 * Seeded multiply-xorshift hash of (kind, name).  The seed comes from
 * the call's stack address, so colliding names cannot be precomputed
 * as easily as for a fixed function.
 */
static uint64_t
ingest_hash(uint64_t seed, size_t kind, const char *s, size_t len)
{
	uint64_t	h, w;

	h = seed ^ ((uint64_t)kind << 56) ^ (len * 0x9e3779b97f4a7c15ULL);
	while (len >= 8) {
		memcpy(&w, s, 8);
		h = (h ^ w) * 0xff51afd7ed558ccdULL;
		h ^= h >> 32;
		s += 8;
		len -= 8;
	}
	if (len > 0) {
		w = 0;
		memcpy(&w, s, len);
		h = (h ^ w) * 0xff51afd7ed558ccdULL;
		h ^= h >> 32;
	}
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

/* The slot holding (kind, name), or the free slot where it belongs. */
static struct ingest_slot *
ingest_slot_find(struct ingest *ig, size_t kind, const char *name,
    size_t len, uint64_t h)
{
	struct ingest_slot	*sl;
	size_t			 i;

	for (i = h & ig->tabmask;; i = (i + 1) & ig->tabmask) {
		sl = &ig->tab[i];
		if (sl->name == NULL)
			return sl;
		if (sl->hash == h && sl->kind == kind && sl->len == len &&
		    memcmp(sl->name, name, len) == 0)
			return sl;
	}
}

/* Make room for one more entry, keeping the table at most half full. */
static void
ingest_slot_reserve(struct ingest *ig)
{
	struct ingest_slot	*old = ig->tab, *sl;
	size_t			 i, oldsize = ig->tab == NULL ? 0 :
				    ig->tabmask + 1, size;

	if ((ig->tabused + 1) * 2 <= oldsize)
		return;
	size = oldsize == 0 ? 256 : oldsize * 2;
	ig->tab = xcalloc(size, sizeof *ig->tab);
	ig->tabmask = size - 1;
	for (i = 0; i < oldsize; i++) {
		if (old[i].name == NULL)
			continue;
		sl = ingest_slot_find(ig, old[i].kind, old[i].name,
		    old[i].len, old[i].hash);
		*sl = old[i];
	}
	free(old);
}

static void
ingest_slot_add(struct ingest *ig, size_t kind, const char *name,
    size_t len, uint64_t h, size_t val)
{
	struct ingest_slot	*sl;

	ingest_slot_reserve(ig);
	sl = ingest_slot_find(ig, kind, name, len, h);
	sl->name = name;
	sl->len = len;
	sl->hash = h;
	sl->kind = kind;
	sl->val = val;
	ig->tabused++;
}

/*
 * Add series (kind, name) when its first point comes in steps[stepi].
 * A series gets at most one point per step, so the steps left bound its
 * length: reserve that exactly while the total stays within a budget
 * proportional to the body, and grow by doubling past it (a body of
 * many sparse series must not reserve steps x series).
 */
static size_t
ingest_series_new(struct ingest *ig, enum series_kind kind, const char *name,
    size_t len, size_t stepi)
{
	struct batch		*b = ig->b;
	struct batch_series	*s;
	size_t			 left, cap;

	/* nsteps may be an estimate (ingest_scan): at least this step. */
	left = ig->nsteps > stepi ? ig->nsteps - stepi : 1;
	if (b->nseries >= INGEST_MAX_SERIES) {
		ingest_fail(ig, "steps[%zu]: more than %d distinct series in "
		    "one request", stepi, INGEST_MAX_SERIES);
		return INGEST_NONE;
	}
	if (b->nseries == ig->series_cap) {
		ig->series_cap = ig->series_cap == 0 ? 16 : ig->series_cap * 2;
		b->series = xreallocarray(b->series, ig->series_cap,
		    sizeof *b->series);
	}
	if (left <= ig->budget) {
		cap = left;
		ig->budget -= left;
	} else
		cap = left < 8 ? left : 8;
	s = &b->series[b->nseries];
	memset(s, 0, sizeof *s);
	s->kind = kind;
	s->name = xstrndup(name, len);
	s->steps = xreallocarray(NULL, cap, sizeof *s->steps);
	s->values = xreallocarray(NULL, cap, sizeof *s->values);
	s->cap = cap;
	return b->nseries++;
}

size_t
ingest_series(struct ingest *ig, enum series_kind kind, const char *name,
    size_t len, size_t stepi)
{
	struct ingest_slot	*sl;
	uint64_t		 h;
	size_t			 si;

	h = ingest_hash(ig->seed, kind, name, len);
	if (ig->tab != NULL) {
		sl = ingest_slot_find(ig, kind, name, len, h);
		if (sl->name != NULL)
			return sl->val;
	}
	si = ingest_series_new(ig, kind, name, len, stepi);
	if (si != INGEST_NONE)
		ingest_slot_add(ig, kind, ig->b->series[si].name, len, h, si);
	return si;
}

size_t
ingest_layer_series(struct ingest *ig, enum series_kind kind, size_t i,
    size_t stepi)
{
	struct ingest_name	*nm = &ig->names[i];
	size_t			*si;

	switch (kind) {
	case SERIES_LAYER_GRAD:
		si = &nm->grad;
		break;
	case SERIES_LAYER_WEIGHT:
		si = &nm->weight;
		break;
	case SERIES_LAYER_UPDATE:
		si = &nm->update;
		break;
	default:
		si = &nm->adam;
		break;
	}

	if (*si == INGEST_NONE)
		*si = ingest_series(ig, kind, nm->s, nm->len, stepi);
	return *si;
}

int
ingest_name_add(struct ingest *ig, const char *s, size_t len)
{
	char			 q[INGEST_QUOTE_SIZE];
	struct ingest_slot	*sl;
	uint64_t		 h;
	size_t			 i = ig->nnames;

	h = ingest_hash(ig->seed, INGEST_KIND_NAME, s, len);
	if (ig->tab != NULL) {
		sl = ingest_slot_find(ig, INGEST_KIND_NAME, s, len, h);
		if (sl->name != NULL)
			return ingest_fail(ig, "layer_names[%zu]: %s repeats "
			    "layer_names[%zu]", i, ingest_quote(q, s, len),
			    sl->val);
	}
	ingest_slot_add(ig, INGEST_KIND_NAME, s, len, h, i);
	if (i == ig->names_cap) {
		ig->names_cap = ig->names_cap == 0 ? 64 : ig->names_cap * 2;
		ig->names = xreallocarray(ig->names, ig->names_cap,
		    sizeof *ig->names);
	}
	ig->names[i] = (struct ingest_name){ s, len, INGEST_NONE, INGEST_NONE,
	    INGEST_NONE, INGEST_NONE };
	ig->nnames++;
	return 0;
}

void
ingest_grow(struct batch_series *s)
{
	s->cap = s->cap == 0 ? 8 : s->cap * 2;
	s->steps = xreallocarray(s->steps, s->cap, sizeof *s->steps);
	s->values = xreallocarray(s->values, s->cap, sizeof *s->values);
}

int
ingest_scalar(struct ingest *ig, enum series_kind kind, size_t stepi,
    int64_t step, double v)
{
	const char	*name;

	if (ig->scalar[kind] == INGEST_NONE) {
		name = series_kind_name(kind);
		ig->scalar[kind] = ingest_series_new(ig, kind, name,
		    strlen(name), stepi);
		if (ig->scalar[kind] == INGEST_NONE)
			return -1;
	}
	ingest_push(ig, ig->scalar[kind], step, v);
	return 0;
}

enum ingest_key
ingest_step_key(const char *k, size_t len)
{
	static const struct {
		const char	*name;
		size_t		 len;
		enum ingest_key	 key;
	} keys[] = {
		{ "step", 4, KEY_STEP }, { "layers", 6, KEY_LAYERS },
		{ "loss", 4, KEY_LOSS }, { "grad_norm", 9, KEY_GRAD_NORM },
		{ "lr", 2, KEY_LR }, { "time", 4, KEY_TIME },
		{ "weights", 7, KEY_WEIGHTS }, { "clip", 4, KEY_CLIP },
		{ "skipped", 7, KEY_SKIPPED },
		{ "loss_scale", 10, KEY_LOSS_SCALE },
		{ "metrics", 7, KEY_METRICS },
		{ "updates", 7, KEY_UPDATES },
		{ "adam_ratio", 10, KEY_ADAM },
	};
	size_t	i;

	for (i = 0; i < sizeof keys / sizeof keys[0]; i++)
		if (len == keys[i].len && memcmp(k, keys[i].name, len) == 0)
			return keys[i].key;
	return KEY_UNKNOWN;
}

/* Ready ig for one parse of a body of len bytes. */
void
ingest_init(struct ingest *ig, const char *body, size_t len)
{
	size_t	i;

	memset(ig, 0, sizeof *ig);
	for (i = 0; i < SERIES_KIND_COUNT; i++)
		ig->scalar[i] = INGEST_NONE;
	ig->seed = ingest_hash((uintptr_t)ig, 0, (const char *)&body,
	    sizeof body);
	/* Any point takes 2 bytes or more, so this bounds the reserve. */
	ig->budget = len / 4 + 64;
	ig->b = xcalloc(1, sizeof *ig->b);
}

void
ingest_cleanup(struct ingest *ig)
{
	free(ig->tab);
	free(ig->names);
}
