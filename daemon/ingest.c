/* SPDX-License-Identifier: MIT */
/*
 * ingest: turns the body of POST /api/v1/ingest into a struct batch
 * (API.md, "Ingest").  Jansson builds the tree; one pass over it then
 * validates every part and writes the points straight into the batch's
 * series columns, resolving compact-form layers by index and named
 * series through a hash table local to the call.  Pure and reentrant:
 * any thread may call it and nothing is shared between calls.
 *
 * A body in the shape the client library sends goes through
 * ingest_scan() first, which builds the same batch without a tree; any
 * other body, and every invalid one, is left to the Jansson path here,
 * which alone words the causes.
 */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "batch.h"
#include "ingest.h"
#include "ingest_core.h"
#include "log.h"
#include "xmalloc.h"

/*
 * Duplicate keys are rejected rather than resolved "last wins": a
 * request must mean one thing.  The check costs one extra lookup per
 * key inside Jansson, which the compact form barely has.
 */
#define INGEST_JSON_FLAGS	JSON_REJECT_DUPLICATES

#define INGEST_QUOTE_MAX	64	/* name bytes quoted in a cause */
#define INGEST_QUOTE_SIZE	(INGEST_QUOTE_MAX * 6 + 8)
#define INGEST_VALUE_WANT \
	"expected a number or \"NaN\", \"Infinity\", \"-Infinity\" (or null)"

/* A growable byte buffer for the compact dumps. */
struct ingest_buf {
	char	*p;
	size_t	 len;
	size_t	 cap;
};

static int	ingest_fail(struct ingest *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));
static void	ingest_dump(struct ingest_buf *, json_t *);

/* Record a bad_request cause; returns -1 for the caller to pass on. */
static int
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

static void
ingest_buf_put(struct ingest_buf *bf, const char *s, size_t len)
{
	if (bf->cap - bf->len < len + 1) {
		while (bf->cap - bf->len < len + 1)
			bf->cap = bf->cap == 0 ? 64 : bf->cap * 2;
		bf->p = xreallocarray(bf->p, bf->cap, 1);
	}
	memcpy(bf->p + bf->len, s, len);
	bf->len += len;
	bf->p[bf->len] = '\0';
}

/* Append s as a JSON string literal. */
static void
ingest_dump_string(struct ingest_buf *bf, const char *s, size_t len)
{
	char		 esc[8];
	const char	*e;
	size_t		 i, start = 0;
	unsigned char	 c;

	ingest_buf_put(bf, "\"", 1);
	for (i = 0; i < len; i++) {
		c = (unsigned char)s[i];
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		ingest_buf_put(bf, s + start, i - start);
		switch (c) {
		case '"':  e = "\\\""; break;
		case '\\': e = "\\\\"; break;
		case '\b': e = "\\b"; break;
		case '\f': e = "\\f"; break;
		case '\n': e = "\\n"; break;
		case '\r': e = "\\r"; break;
		case '\t': e = "\\t"; break;
		default:
			snprintf(esc, sizeof esc, "\\u%04x", c);
			e = esc;
			break;
		}
		ingest_buf_put(bf, e, strlen(e));
		start = i + 1;
	}
	ingest_buf_put(bf, s + start, len - start);
	ingest_buf_put(bf, "\"", 1);
}

/*
 * Append d in the shortest form that reads back as the same double, and
 * as a real ("3.0", not "3"); Jansson's own dump would write 0.1 as
 * 0.10000000000000001, which is what a person would then see as config.
 * Assumes the C locale for numbers, which the daemon never changes.
 */
static void
ingest_dump_real(struct ingest_buf *bf, double d)
{
	char	s[40];
	int	prec;

	for (prec = 15; prec < 17; prec++) {
		snprintf(s, sizeof s, "%.*g", prec, d);
		if (strtod(s, NULL) == d)
			break;
	}
	if (prec == 17)
		snprintf(s, sizeof s, "%.17g", d);
	if (strpbrk(s, ".eE") == NULL)
		strcat(s, ".0");
	ingest_buf_put(bf, s, strlen(s));
}

/* Append v as compact JSON.  Recursion is bounded: depth was checked. */
static void
ingest_dump(struct ingest_buf *bf, json_t *v)
{
	char	 num[32];
	void	*it;
	size_t	 i, n;

	switch (json_typeof(v)) {
	case JSON_OBJECT:
		ingest_buf_put(bf, "{", 1);
		for (it = json_object_iter(v); it != NULL;
		    it = json_object_iter_next(v, it)) {
			if (it != json_object_iter(v))
				ingest_buf_put(bf, ",", 1);
			ingest_dump_string(bf, json_object_iter_key(it),
			    json_object_iter_key_len(it));
			ingest_buf_put(bf, ":", 1);
			ingest_dump(bf, json_object_iter_value(it));
		}
		ingest_buf_put(bf, "}", 1);
		break;
	case JSON_ARRAY:
		ingest_buf_put(bf, "[", 1);
		n = json_array_size(v);
		for (i = 0; i < n; i++) {
			if (i > 0)
				ingest_buf_put(bf, ",", 1);
			ingest_dump(bf, json_array_get(v, i));
		}
		ingest_buf_put(bf, "]", 1);
		break;
	case JSON_STRING:
		ingest_dump_string(bf, json_string_value(v),
		    json_string_length(v));
		break;
	case JSON_INTEGER:
		snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT,
		    json_integer_value(v));
		ingest_buf_put(bf, num, strlen(num));
		break;
	case JSON_REAL:
		ingest_dump_real(bf, json_real_value(v));
		break;
	case JSON_TRUE:
		ingest_buf_put(bf, "true", 4);
		break;
	case JSON_FALSE:
		ingest_buf_put(bf, "false", 5);
		break;
	case JSON_NULL:
		ingest_buf_put(bf, "null", 4);
		break;
	}
}

/* v as compact JSON; the caller frees. */
static char *
ingest_dumps(json_t *v)
{
	struct ingest_buf	bf = { NULL, 0, 0 };

	ingest_dump(&bf, v);
	return bf.p;
}

/*
 * Write name as a JSON string into dst (INGEST_QUOTE_SIZE bytes) for a
 * cause, cut at a character boundary past INGEST_QUOTE_MAX bytes.
 */
static const char *
ingest_quote(char *dst, const char *name, size_t len)
{
	struct ingest_buf	bf = { NULL, 0, 0 };
	size_t			cut = len;

	if (cut > INGEST_QUOTE_MAX) {
		cut = INGEST_QUOTE_MAX;
		while (cut > 0 && ((unsigned char)name[cut] & 0xc0) == 0x80)
			cut--;
	}
	ingest_dump_string(&bf, name, cut);
	if (cut < len) {
		bf.len--;	/* reopen the string for the ellipsis */
		ingest_buf_put(&bf, "...\"", 4);
	}
	snprintf(dst, INGEST_QUOTE_SIZE, "%s", bf.p);
	free(bf.p);
	return dst;
}

/* 1 if v, a container at nesting level depth, stays within the limit. */
static int
ingest_depth_ok(json_t *v, int depth)
{
	void	*it;
	size_t	 i, n;

	if (!json_is_object(v) && !json_is_array(v))
		return 1;
	if (depth > INGEST_MAX_DEPTH)
		return 0;
	if (json_is_array(v)) {
		n = json_array_size(v);
		for (i = 0; i < n; i++)
			if (!ingest_depth_ok(json_array_get(v, i), depth + 1))
				return 0;
		return 1;
	}
	for (it = json_object_iter(v); it != NULL;
	    it = json_object_iter_next(v, it))
		if (!ingest_depth_ok(json_object_iter_value(it), depth + 1))
			return 0;
	return 1;
}

int
ingest_run_key_ok(const char *s, size_t len)
{
	size_t	i;
	char	c;

	if (len == 0 || len > INGEST_RUN_KEY_MAX)
		return 0;
	for (i = 0; i < len; i++) {
		c = s[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		    c == ':' || c == '-'))
			return 0;
	}
	return 1;
}

int
ingest_is_run_key(const char *s)
{
	if (s == NULL)
		return 0;
	return ingest_run_key_ok(s, strnlen(s, INGEST_RUN_KEY_MAX + 1));
}

/*
 * A point value: 1 with *d set for a number or "NaN", "Infinity",
 * "-Infinity"; 0 for null (no point); -1 for anything else.
 */
static inline int
ingest_value(const json_t *v, double *d)
{
	const char	*s;

	switch (json_typeof(v)) {
	case JSON_REAL:
		*d = json_real_value(v);
		return 1;
	case JSON_INTEGER:
		*d = (double)json_integer_value(v);
		return 1;
	case JSON_NULL:
		return 0;
	case JSON_STRING:
		s = json_string_value(v);
		switch (json_string_length(v)) {
		case 3:
			if (memcmp(s, "NaN", 3) == 0) {
				*d = NAN;
				return 1;
			}
			break;
		case 8:
			if (memcmp(s, "Infinity", 8) == 0) {
				*d = INFINITY;
				return 1;
			}
			break;
		case 9:
			if (memcmp(s, "-Infinity", 9) == 0) {
				*d = -INFINITY;
				return 1;
			}
			break;
		}
		return -1;
	default:
		return -1;
	}
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

/* steps[stepi].<field> given as a value: one point of a scalar series. */
static int
ingest_scalar_value(struct ingest *ig, json_t *v, enum series_kind kind,
    const char *path, size_t stepi, int64_t step)
{
	double	d;
	int	r;

	if ((r = ingest_value(v, &d)) < 0)
		return ingest_fail(ig, "steps[%zu].%s: " INGEST_VALUE_WANT,
		    stepi, path);
	if (r == 0)
		return 0;
	return ingest_scalar(ig, kind, stepi, step, d);
}

/* steps[stepi].<field> as an object of series name -> value. */
static int
ingest_named(struct ingest *ig, json_t *obj, enum series_kind kind,
    const char *field, size_t stepi, int64_t step)
{
	char		 q[INGEST_QUOTE_SIZE];
	const char	*key;
	void		*it;
	size_t		 klen, si;
	double		 d;
	int		 r;

	for (it = json_object_iter(obj); it != NULL;
	    it = json_object_iter_next(obj, it)) {
		key = json_object_iter_key(it);
		klen = json_object_iter_key_len(it);
		if (klen == 0 || klen > INGEST_SERIES_NAME_MAX)
			return ingest_fail(ig, "steps[%zu].%s[%s]: expected a "
			    "series name of 1 to %d bytes", stepi, field,
			    ingest_quote(q, key, klen), INGEST_SERIES_NAME_MAX);
		r = ingest_value(json_object_iter_value(it), &d);
		if (r == 0)
			continue;
		if (r < 0)
			return ingest_fail(ig, "steps[%zu].%s[%s]: "
			    INGEST_VALUE_WANT, stepi, field,
			    ingest_quote(q, key, klen));
		if ((si = ingest_series(ig, kind, key, klen, stepi)) ==
		    INGEST_NONE)
			return -1;
		ingest_push(ig, si, step, d);
	}
	return 0;
}

/* steps[stepi].<field> as an array aligned with layer_names. */
static int
ingest_aligned(struct ingest *ig, json_t *arr, enum series_kind kind,
    const char *field, size_t stepi, int64_t step)
{
	char	 q[INGEST_QUOTE_SIZE];
	size_t	 i, n, si;
	double	 d;
	int	 r;

	n = json_array_size(arr);
	if (!ig->names_given)
		return ingest_fail(ig, "steps[%zu].%s: an array needs "
		    "\"layer_names\" (or give an object of name -> value)",
		    stepi, field);
	if (n != ig->nnames)
		return ingest_fail(ig, "steps[%zu].%s: expected %zu entries, "
		    "one per layer_names entry, not %zu", stepi, field,
		    ig->nnames, n);
	for (i = 0; i < n; i++) {
		r = ingest_value(json_array_get(arr, i), &d);
		if (r == 0)
			continue;
		if (r < 0)
			return ingest_fail(ig, "steps[%zu].%s[%zu] (%s): "
			    INGEST_VALUE_WANT, stepi, field, i,
			    ingest_quote(q, ig->names[i].s, ig->names[i].len));
		if ((si = ingest_layer_series(ig, kind, i, stepi)) ==
		    INGEST_NONE)
			return -1;
		ingest_push(ig, si, step, d);
	}
	return 0;
}

/* steps[stepi].layers, .weights, .updates or .adam_ratio, in either form. */
static int
ingest_tensors(struct ingest *ig, json_t *v, enum series_kind kind,
    const char *field, size_t stepi, int64_t step)
{
	if (json_is_object(v))
		return ingest_named(ig, v, kind, field, stepi, step);
	if (json_is_array(v))
		return ingest_aligned(ig, v, kind, field, stepi, step);
	if (json_is_null(v))
		return 0;
	return ingest_fail(ig, "steps[%zu].%s: expected an object of name -> "
	    "value, or an array aligned with layer_names", stepi, field);
}

static int
ingest_clip(struct ingest *ig, json_t *clip, size_t stepi, int64_t step)
{
	char		 q[INGEST_QUOTE_SIZE];
	const char	*key;
	void		*it;
	json_t		*v;

	if (json_is_null(clip))
		return 0;
	if (!json_is_object(clip))
		return ingest_fail(ig, "steps[%zu].clip: expected an object "
		    "with \"max_norm\" and \"pre_norm\"", stepi);
	for (it = json_object_iter(clip); it != NULL;
	    it = json_object_iter_next(clip, it)) {
		key = json_object_iter_key(it);
		v = json_object_iter_value(it);
		if (strcmp(key, "max_norm") == 0) {
			if (ingest_scalar_value(ig, v, SERIES_CLIP_MAX_NORM,
			    "clip.max_norm", stepi, step) == -1)
				return -1;
		} else if (strcmp(key, "pre_norm") == 0) {
			if (ingest_scalar_value(ig, v, SERIES_CLIP_PRE_NORM,
			    "clip.pre_norm", stepi, step) == -1)
				return -1;
		} else
			return ingest_fail(ig, "steps[%zu].clip: unknown key %s "
			    "(expected \"max_norm\" or \"pre_norm\")", stepi,
			    ingest_quote(q, key, json_object_iter_key_len(it)));
	}
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

/* Record steps[stepi] and its points. */
static int
ingest_step(struct ingest *ig, json_t *st, size_t stepi)
{
	char		 q[INGEST_QUOTE_SIZE];
	const char	*key;
	json_t		*v;
	void		*it;
	int64_t		 step;
	double		 d;
	int		 rc = 0;

	if (!json_is_object(st))
		return ingest_fail(ig, "steps[%zu]: expected an object",
		    stepi);
	if ((v = json_object_get(st, "step")) == NULL)
		return ingest_fail(ig, "steps[%zu]: missing \"step\"", stepi);
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return ingest_fail(ig, "steps[%zu].step: expected a "
		    "non-negative integer", stepi);
	step = json_integer_value(v);
	ig->b->steps[ig->b->nsteps++] = step;

	for (it = json_object_iter(st); it != NULL && rc == 0;
	    it = json_object_iter_next(st, it)) {
		key = json_object_iter_key(it);
		v = json_object_iter_value(it);
		switch (ingest_step_key(key, json_object_iter_key_len(it))) {
		case KEY_STEP:
			break;
		case KEY_TIME:
			if (json_is_null(v))
				break;
			if (!json_is_number(v) || json_number_value(v) < 0)
				return ingest_fail(ig, "steps[%zu].time: "
				    "expected a finite number >= 0 (seconds "
				    "since the epoch)", stepi);
			rc = ingest_scalar(ig, SERIES_TIME, stepi, step,
			    json_number_value(v));
			break;
		case KEY_LOSS:
			rc = ingest_scalar_value(ig, v, SERIES_LOSS, key,
			    stepi, step);
			break;
		case KEY_GRAD_NORM:
			rc = ingest_scalar_value(ig, v, SERIES_GRAD_NORM, key,
			    stepi, step);
			break;
		case KEY_LR:
			rc = ingest_scalar_value(ig, v, SERIES_LR, key, stepi,
			    step);
			break;
		case KEY_LOSS_SCALE:
			rc = ingest_scalar_value(ig, v, SERIES_LOSS_SCALE, key,
			    stepi, step);
			break;
		case KEY_SKIPPED:
			if (json_is_null(v))
				break;
			if (!json_is_boolean(v))
				return ingest_fail(ig, "steps[%zu].skipped: "
				    "expected true, false or null", stepi);
			d = json_is_true(v) ? 1.0 : 0.0;
			rc = ingest_scalar(ig, SERIES_SKIPPED, stepi, step, d);
			break;
		case KEY_LAYERS:
			rc = ingest_tensors(ig, v, SERIES_LAYER_GRAD, key,
			    stepi, step);
			break;
		case KEY_WEIGHTS:
			rc = ingest_tensors(ig, v, SERIES_LAYER_WEIGHT, key,
			    stepi, step);
			break;
		case KEY_UPDATES:
			rc = ingest_tensors(ig, v, SERIES_LAYER_UPDATE, key,
			    stepi, step);
			break;
		case KEY_ADAM:
			rc = ingest_tensors(ig, v, SERIES_LAYER_ADAM, key,
			    stepi, step);
			break;
		case KEY_CLIP:
			rc = ingest_clip(ig, v, stepi, step);
			break;
		case KEY_METRICS:
			if (json_is_null(v))
				break;
			if (!json_is_object(v))
				return ingest_fail(ig, "steps[%zu].metrics: "
				    "expected an object of name -> value",
				    stepi);
			rc = ingest_named(ig, v, SERIES_METRIC, key, stepi,
			    step);
			break;
		case KEY_UNKNOWN:
			return ingest_fail(ig, "steps[%zu]: unknown key %s",
			    stepi, ingest_quote(q, key,
			    json_object_iter_key_len(it)));
		}
	}
	return rc;
}

/* A non-negative integer or null (-1) for a meta.layers field. */
static int
ingest_layer_int(struct ingest *ig, json_t *v, int64_t *out,
    const char *name, size_t len, const char *field)
{
	char	q[INGEST_QUOTE_SIZE];

	if (json_is_null(v)) {
		*out = -1;
		return 0;
	}
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return ingest_fail(ig, "meta.layers[%s].%s: expected a "
		    "non-negative integer", ingest_quote(q, name, len), field);
	*out = json_integer_value(v);
	return 0;
}

/* meta.layers: name -> {"numel", "shape", "depth"}, into b->layers_meta. */
static int
ingest_layers_meta(struct ingest *ig, json_t *layers)
{
	char			 q[INGEST_QUOTE_SIZE], q2[INGEST_QUOTE_SIZE];
	struct batch		*b = ig->b;
	struct batch_layer_meta	*lm;
	const char		*name, *key;
	json_t			*info, *v;
	void			*it, *jt;
	size_t			 len, i;

	if (json_is_null(layers))
		return 0;
	if (!json_is_object(layers))
		return ingest_fail(ig, "meta.layers: expected an object of "
		    "layer name -> {\"numel\", \"shape\", \"depth\"}");
	b->layers_meta = xcalloc(json_object_size(layers),
	    sizeof *b->layers_meta);
	for (it = json_object_iter(layers); it != NULL;
	    it = json_object_iter_next(layers, it)) {
		name = json_object_iter_key(it);
		len = json_object_iter_key_len(it);
		info = json_object_iter_value(it);
		if (len == 0 || len > INGEST_SERIES_NAME_MAX)
			return ingest_fail(ig, "meta.layers[%s]: expected a "
			    "layer name of 1 to %d bytes",
			    ingest_quote(q, name, len), INGEST_SERIES_NAME_MAX);
		if (json_is_null(info))
			continue;
		if (!json_is_object(info))
			return ingest_fail(ig, "meta.layers[%s]: expected an "
			    "object with \"numel\", \"shape\", \"depth\"",
			    ingest_quote(q, name, len));
		lm = &b->layers_meta[b->nlayers_meta++];
		lm->name = xstrndup(name, len);
		lm->numel = lm->depth = -1;
		for (jt = json_object_iter(info); jt != NULL;
		    jt = json_object_iter_next(info, jt)) {
			key = json_object_iter_key(jt);
			v = json_object_iter_value(jt);
			if (strcmp(key, "numel") == 0) {
				if (ingest_layer_int(ig, v, &lm->numel, name,
				    len, key) == -1)
					return -1;
			} else if (strcmp(key, "depth") == 0) {
				if (ingest_layer_int(ig, v, &lm->depth, name,
				    len, key) == -1)
					return -1;
			} else if (strcmp(key, "shape") == 0) {
				if (json_is_null(v))
					continue;
				if (!json_is_array(v))
					return ingest_fail(ig, "meta.layers[%s]"
					    ".shape: expected an array of "
					    "non-negative integers",
					    ingest_quote(q, name, len));
				for (i = 0; i < json_array_size(v); i++) {
					if (!json_is_integer(json_array_get(v,
					    i)) || json_integer_value(
					    json_array_get(v, i)) < 0)
						return ingest_fail(ig,
						    "meta.layers[%s].shape[%zu]"
						    ": expected a non-negative "
						    "integer", ingest_quote(q,
						    name, len), i);
				}
				lm->shape_json = ingest_dumps(v);
			} else
				return ingest_fail(ig, "meta.layers[%s]: "
				    "unknown key %s (expected \"numel\", "
				    "\"shape\" or \"depth\")",
				    ingest_quote(q, name, len), ingest_quote(q2,
				    key, json_object_iter_key_len(jt)));
		}
	}
	return 0;
}

static int
ingest_meta(struct ingest *ig, json_t *meta)
{
	char		 q[INGEST_QUOTE_SIZE];
	struct batch	*b = ig->b;
	const char	*key;
	json_t		*v;
	void		*it;

	if (json_is_null(meta))
		return 0;
	if (!json_is_object(meta))
		return ingest_fail(ig, "meta: expected an object");
	/* The root is level 1 and meta level 2: its members start at 3. */
	for (it = json_object_iter(meta); it != NULL;
	    it = json_object_iter_next(meta, it)) {
		key = json_object_iter_key(it);
		if (ingest_depth_ok(json_object_iter_value(it), 3))
			continue;
		if (strcmp(key, "config") == 0 || strcmp(key, "layers") == 0)
			return ingest_fail(ig, "meta.%s: nested deeper than "
			    "%d levels", key, INGEST_MAX_DEPTH);
		return ingest_fail(ig, "meta[%s]: nested deeper than %d levels",
		    ingest_quote(q, key, json_object_iter_key_len(it)),
		    INGEST_MAX_DEPTH);
	}
	if ((v = json_object_get(meta, "project")) != NULL &&
	    !json_is_null(v)) {
		if (!json_is_string(v))
			return ingest_fail(ig, "meta.project: expected a "
			    "string or null");
		b->project = xstrndup(json_string_value(v),
		    json_string_length(v));
	}
	if ((v = json_object_get(meta, "config")) != NULL && !json_is_null(v))
		b->config_json = ingest_dumps(v);
	if ((v = json_object_get(meta, "layers")) != NULL &&
	    ingest_layers_meta(ig, v) == -1)
		return -1;
	b->meta_json = ingest_dumps(meta);
	return 0;
}

/* "layer_names": unique series names, indexed for the compact form. */
static int
ingest_layer_names(struct ingest *ig, json_t *names)
{
	json_t	*v;
	size_t	 i, n, len;

	if (json_is_null(names))
		return 0;
	if (!json_is_array(names))
		return ingest_fail(ig, "layer_names: expected an array of "
		    "names");
	n = json_array_size(names);
	ig->names_given = 1;
	for (i = 0; i < n; i++) {
		v = json_array_get(names, i);
		len = json_string_length(v);	/* 0 for a non-string */
		if (!json_is_string(v) || len == 0 ||
		    len > INGEST_SERIES_NAME_MAX)
			return ingest_fail(ig, "layer_names[%zu]: expected a "
			    "series name of 1 to %d bytes", i,
			    INGEST_SERIES_NAME_MAX);
		if (ingest_name_add(ig, json_string_value(v), len) == -1)
			return -1;
	}
	return 0;
}

static int
ingest_top(struct ingest *ig, json_t *root)
{
	char		 q[INGEST_QUOTE_SIZE];
	struct batch	*b = ig->b;
	const char	*key;
	json_t		*v;
	void		*it;
	size_t		 i, n;

	for (it = json_object_iter(root); it != NULL;
	    it = json_object_iter_next(root, it)) {
		key = json_object_iter_key(it);
		if (strcmp(key, "run") != 0 && strcmp(key, "meta") != 0 &&
		    strcmp(key, "steps") != 0 &&
		    strcmp(key, "layer_names") != 0 &&
		    strcmp(key, "dropped") != 0)
			return ingest_fail(ig, "unknown key %s (expected "
			    "\"run\", \"meta\", \"layer_names\", \"steps\" or "
			    "\"dropped\")", ingest_quote(q, key,
			    json_object_iter_key_len(it)));
	}
	if ((v = json_object_get(root, "run")) == NULL)
		return ingest_fail(ig, "missing \"run\"");
	if (!json_is_string(v) || !ingest_run_key_ok(json_string_value(v),
	    json_string_length(v)))
		return ingest_fail(ig, "run: expected 1 to %d characters of "
		    "[A-Za-z0-9._:-]", INGEST_RUN_KEY_MAX);
	b->run = xstrdup(json_string_value(v));
	if ((v = json_object_get(root, "meta")) != NULL &&
	    ingest_meta(ig, v) == -1)
		return -1;
	if ((v = json_object_get(root, "dropped")) != NULL &&
	    !json_is_null(v)) {
		if (!json_is_integer(v) || json_integer_value(v) < 0)
			return ingest_fail(ig, "dropped: expected a "
			    "non-negative integer");
		b->dropped = json_integer_value(v);
	}
	if ((v = json_object_get(root, "layer_names")) != NULL &&
	    ingest_layer_names(ig, v) == -1)
		return -1;
	if ((v = json_object_get(root, "steps")) == NULL || json_is_null(v))
		return 0;
	if (!json_is_array(v))
		return ingest_fail(ig, "steps: expected an array");
	n = json_array_size(v);
	ig->nsteps = n;
	if (n > 0)
		b->steps = xreallocarray(NULL, n, sizeof *b->steps);
	for (i = 0; i < n; i++)
		if (ingest_step(ig, json_array_get(v, i), i) == -1)
			return -1;
	return 0;
}

/* Parse body with Jansson; NULL with a bad_json cause on failure. */
static json_t *
ingest_load(struct ingest *ig, const char *body, size_t len)
{
	json_error_t	 err;
	json_t		*root;
	const char	*text, *near;

	root = json_loadb(body == NULL ? "" : body, len, INGEST_JSON_FLAGS,
	    &err);
	if (root != NULL)
		return root;
	/* Jansson's own words, but not its flag names. */
	if ((near = strstr(err.text, " near ")) == NULL)
		near = "";
	switch (json_error_code(&err)) {
	case json_error_null_character:
	case json_error_null_byte_in_key:
		text = "\\u0000 (NUL) is not allowed in strings";
		break;
	case json_error_out_of_memory:
		fatalx("ingest: jansson: %s", err.text);
	default:
		text = err.text;
		near = "";
		break;
	}
	ig->code = "bad_json";
	free(ig->cause);
	xasprintf(&ig->cause, "invalid JSON at line %d, column %d: %s%s",
	    err.line, err.column, text, near);
	return NULL;
}

/* Ready ig for one parse of a body of len bytes. */
static void
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

static void
ingest_cleanup(struct ingest *ig)
{
	free(ig->tab);
	free(ig->names);
}

struct batch *
ingest_parse_fast(const char *body, size_t len)
{
	struct ingest	ig;

	ingest_init(&ig, body, len);
	if (ingest_scan(&ig, body, len) == -1) {
		free(ig.cause);
		batch_free(ig.b);
		ig.b = NULL;
	}
	ingest_cleanup(&ig);
	return ig.b;
}

struct batch *
ingest_parse_tree(const char *body, size_t len, const char **code,
    char **cause)
{
	struct ingest	 ig;
	json_t		*root = NULL;

	ingest_init(&ig, body, len);
	if ((root = ingest_load(&ig, body, len)) == NULL)
		goto fail;
	if (!json_is_object(root)) {
		ingest_fail(&ig, "expected a JSON object at the top level");
		goto fail;
	}
	if (ingest_top(&ig, root) == -1)
		goto fail;
	json_decref(root);
	ingest_cleanup(&ig);
	return ig.b;

fail:
	*code = ig.code;
	*cause = ig.cause;
	batch_free(ig.b);
	json_decref(root);
	ingest_cleanup(&ig);
	return NULL;
}

struct batch *
ingest_parse(const char *body, size_t len, const char **code, char **cause)
{
	struct batch	*b;

	if ((b = ingest_parse_fast(body, len)) != NULL)
		return b;
	/* Not the client's shape, or not valid: Jansson decides. */
	return ingest_parse_tree(body, len, code, cause);
}

const char *
ingest_parse_finish(const char *body, size_t len, const char **code,
    char **cause)
{
	char		 q[INGEST_QUOTE_SIZE];
	struct ingest	 ig;
	const char	*status = NULL, *key;
	json_t		*root, *v;
	void		*it;

	if (len == 0)
		return "finished";
	memset(&ig, 0, sizeof ig);
	if ((root = ingest_load(&ig, body, len)) == NULL)
		goto fail;
	if (!json_is_object(root)) {
		ingest_fail(&ig, "expected a JSON object at the top level");
		goto fail;
	}
	for (it = json_object_iter(root); it != NULL;
	    it = json_object_iter_next(root, it)) {
		key = json_object_iter_key(it);
		if (strcmp(key, "status") != 0) {
			ingest_fail(&ig, "unknown key %s (expected \"status\")",
			    ingest_quote(q, key, json_object_iter_key_len(it)));
			goto fail;
		}
	}
	if ((v = json_object_get(root, "status")) == NULL) {
		ingest_fail(&ig, "missing \"status\"");
		goto fail;
	}
	if (json_is_string(v) && strcmp(json_string_value(v), "finished") == 0)
		status = "finished";
	else if (json_is_string(v) &&
	    strcmp(json_string_value(v), "failed") == 0)
		status = "failed";
	else {
		ingest_fail(&ig, "status: expected \"finished\" or \"failed\"");
		goto fail;
	}
	json_decref(root);
	return status;

fail:
	*code = ig.code;
	*cause = ig.cause;
	json_decref(root);
	return NULL;
}
