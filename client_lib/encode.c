/* SPDX-License-Identifier: MIT */
/*
 * encode: turns the records the sender drained from the rings into one
 * ingest body in the compact form of the wire contract: "layer_names"
 * once, then each step's "layers" and "weights" as arrays aligned with
 * it (null where a layer has no value that step).  Records are grouped
 * by step; when a value was logged twice for a step, the later one wins.
 * Numbers are written with %.17g (exact) in the C locale, which the
 * sender thread sets for itself; non-finite values as "NaN",
 * "Infinity", "-Infinity".  Sender thread only.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

void
gw__buf_reserve(struct gw__buf *b, size_t more)
{
	size_t	 want;
	char	*p;

	if (b->failed || b->len + more + 1 <= b->cap)
		return;
	want = b->cap == 0 ? 4096 : b->cap;
	while (want < b->len + more + 1)
		want *= 2;
	if ((p = realloc(b->p, want)) == NULL) {
		b->failed = 1;
		return;
	}
	b->p = p;
	b->cap = want;
}

void
gw__buf_put(struct gw__buf *b, const char *s, size_t n)
{
	gw__buf_reserve(b, n);
	if (b->failed)
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void
gw__buf_puts(struct gw__buf *b, const char *s)
{
	gw__buf_put(b, s, strlen(s));
}

void
gw__buf_int(struct gw__buf *b, int64_t v)
{
	char		 tmp[24];
	char		*p = tmp + sizeof tmp;
	uint64_t	 u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;

	do {
		*--p = (char)('0' + u % 10);
		u /= 10;
	} while (u != 0);
	if (v < 0)
		*--p = '-';
	gw__buf_put(b, p, (size_t)(tmp + sizeof tmp - p));
}

void
gw__buf_double(struct gw__buf *b, double v)
{
	const char	*s;
	int		 n;

	if ((s = wire_nonfinite_str(v)) != NULL) {
		gw__buf_put(b, "\"", 1);
		gw__buf_put(b, s, strlen(s));
		gw__buf_put(b, "\"", 1);
		return;
	}
	if (fabs(v) < 1e15 && v == (double)(int64_t)v) {
		gw__buf_int(b, (int64_t)v);	/* 65536, 0, -3: short and exact */
		return;
	}
	gw__buf_reserve(b, 32);
	if (b->failed)
		return;
	n = snprintf(b->p + b->len, 32, "%.17g", v);
	if (n > 0 && n < 32)
		b->len += (size_t)n;
	else
		b->failed = 1;
}

void
gw__buf_string(struct gw__buf *b, const char *s, size_t n)
{
	static const char	 hex[] = "0123456789abcdef";
	char			 esc[6] = { '\\', 'u', '0', '0', 0, 0 };
	size_t			 i, start = 0;
	unsigned char		 ch;

	gw__buf_put(b, "\"", 1);
	for (i = 0; i < n; i++) {
		ch = (unsigned char)s[i];
		if (ch >= 0x20 && ch != '"' && ch != '\\')
			continue;
		gw__buf_put(b, s + start, i - start);
		start = i + 1;
		if (ch == '"')
			gw__buf_put(b, "\\\"", 2);
		else if (ch == '\\')
			gw__buf_put(b, "\\\\", 2);
		else {
			esc[4] = hex[ch >> 4];
			esc[5] = hex[ch & 15];
			gw__buf_put(b, esc, 6);
		}
	}
	gw__buf_put(b, s + start, n - start);
	gw__buf_put(b, "\"", 1);
}

void
gw__buf_free(struct gw__buf *b)
{
	free(b->p);
	memset(b, 0, sizeof *b);
}

const unsigned	gw__tensor_kinds[GW__NTENSOR] = {
	GW__LAYER_GRAD, GW__LAYER_WEIGHT, GW__LAYER_UPDATE, GW__LAYER_ADAM
};
/* The step fields of the tensor kinds, in the same order. */
static const char *const gw__tensor_fields[GW__NTENSOR] = {
	",\"layers\":", ",\"weights\":", ",\"updates\":", ",\"adam_ratio\":"
};

/* The column slot of a per-tensor kind, or -1 for any other kind. */
static int
gw__tensor_slot(unsigned kind)
{
	int	t;

	for (t = 0; t < GW__NTENSOR; t++)
		if (gw__tensor_kinds[t] == kind)
			return t;
	return -1;
}

void
gw__enc_free(struct gw__enc *e)
{
	int	t;

	free(e->colof);
	free(e->colgen);
	free(e->cols);
	for (t = 0; t < GW__NTENSOR; t++) {
		free(e->tv[t]);
		free(e->tset[t]);
	}
	free(e->mpos);
	free(e->mgen);
	free(e->mids);
	free(e->mvals);
	memset(e, 0, sizeof *e);
}

/* Grow *pp to hold n elements of size sz; -1 when out of memory. */
static int
gw__grow(void *pp, size_t *cap, size_t n, size_t sz, int zero)
{
	void	**p = pp, *q;
	size_t	  want;

	if (n <= *cap)
		return 0;
	want = *cap == 0 ? 64 : *cap;
	while (want < n)
		want *= 2;
	if ((q = realloc(*p, want * sz)) == NULL)
		return -1;
	if (zero)
		memset((char *)q + *cap * sz, 0, (want - *cap) * sz);
	*p = q;
	*cap = want;
	return 0;
}

static int
gw__srec_cmp(const void *a, const void *b)
{
	const struct gw__srec	*x = a, *y = b;

	if (x->step != y->step)
		return x->step < y->step ? -1 : 1;
	return x->ord < y->ord ? -1 : x->ord > y->ord;
}

static int
gw__u32_cmp(const void *a, const void *b)
{
	uint32_t	x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* meta: project, config, meta_json's members and every layer so far (nlayers). */
static void
gw__encode_meta(const struct gw_client *c, uint32_t nlayers,
    struct gw__buf *b)
{
	const struct gw__name	*e;
	uint32_t		 id;
	int			 k, first = 1;

	gw__buf_puts(b, "\"meta\":{");
	if (c->project != NULL) {
		gw__buf_puts(b, "\"project\":");
		gw__buf_string(b, c->project, strlen(c->project));
		first = 0;
	}
	if (c->config_json != NULL) {
		gw__buf_puts(b, first ? "\"config\":" : ",\"config\":");
		gw__buf_puts(b, c->config_json);
		first = 0;
	}
	if (c->meta_extra != NULL) {	/* meta_json's members, as given */
		if (!first)
			gw__buf_put(b, ",", 1);
		gw__buf_puts(b, c->meta_extra);
		first = 0;
	}
	if (nlayers > 0) {
		gw__buf_puts(b, first ? "\"layers\":{" : ",\"layers\":{");
		for (id = 0; id < nlayers; id++) {
			e = gw__names_get(&c->layers, id);
			if (id > 0)
				gw__buf_put(b, ",", 1);
			gw__buf_string(b, e->name, e->len);
			gw__buf_put(b, ":{", 2);
			first = 1;
			if (e->numel >= 0) {
				gw__buf_puts(b, "\"numel\":");
				gw__buf_int(b, e->numel);
				first = 0;
			}
			if (e->depth >= 0) {
				gw__buf_puts(b, first ? "\"depth\":" :
				    ",\"depth\":");
				gw__buf_int(b, e->depth);
				first = 0;
			}
			if (e->ndim >= 0) {
				gw__buf_puts(b, first ? "\"shape\":[" :
				    ",\"shape\":[");
				for (k = 0; k < e->ndim; k++) {
					if (k > 0)
						gw__buf_put(b, ",", 1);
					gw__buf_int(b, e->shape[k]);
				}
				gw__buf_put(b, "]", 1);
			}
			gw__buf_put(b, "}", 1);
		}
		gw__buf_put(b, "}", 1);
	}
	gw__buf_put(b, "}", 1);
}

/* One aligned array: values where set[i], else null. */
static void
gw__encode_aligned(struct gw__buf *b, const double *v, const uint8_t *set,
    size_t n)
{
	size_t	i;

	gw__buf_put(b, "[", 1);
	for (i = 0; i < n; i++) {
		if (i > 0)
			gw__buf_put(b, ",", 1);
		if (set[i])
			gw__buf_double(b, v[i]);
		else
			gw__buf_put(b, "null", 4);
	}
	gw__buf_put(b, "]", 1);
}

/* Prepare the per-request scratch: columns for the layers present. */
static int
gw__encode_columns(const struct gw_client *c, struct gw__enc *e,
    const struct gw__srec *recs, size_t n)
{
	uint32_t	nlayers, nmetrics, id;
	unsigned	kind;
	size_t		i;
	int		t;

	nlayers = atomic_load_explicit(&c->layers.count, memory_order_acquire);
	nmetrics = atomic_load_explicit(&c->metrics.count,
	    memory_order_acquire);
	if (gw__grow(&e->colof, &e->colcap_id, nlayers, sizeof *e->colof, 0) ||
	    gw__grow(&e->colgen, &e->colgencap, nlayers, sizeof *e->colgen, 1) ||
	    gw__grow(&e->mpos, &e->mposcap, nmetrics, sizeof *e->mpos, 0) ||
	    gw__grow(&e->mgen, &e->mgencap, nmetrics, sizeof *e->mgen, 1) ||
	    gw__grow(&e->mids, &e->midscap, n, sizeof *e->mids, 0) ||
	    gw__grow(&e->mvals, &e->mvalscap, n, sizeof *e->mvals, 0))
		return -1;
	if (++e->serial == 0)
		e->serial = 1;
	e->ncols = 0;
	for (i = 0; i < n; i++) {
		kind = GW__KEY_KIND(recs[i].key);
		if (gw__tensor_slot(kind) < 0)
			continue;
		id = GW__KEY_ID(recs[i].key);
		if (e->colgen[id] == e->serial)
			continue;
		e->colgen[id] = e->serial;
		if (gw__grow(&e->cols, &e->colscap, e->ncols + 1,
		    sizeof *e->cols, 0))
			return -1;
		e->cols[e->ncols++] = id;
	}
	if (e->ncols > 1)
		qsort(e->cols, e->ncols, sizeof *e->cols, gw__u32_cmp);
	for (i = 0; i < e->ncols; i++)
		e->colof[e->cols[i]] = (uint32_t)i;
	for (t = 0; t < GW__NTENSOR; t++)
		if (gw__grow(&e->tv[t], &e->tvcap[t], e->ncols,
		    sizeof *e->tv[t], 0) ||
		    gw__grow(&e->tset[t], &e->tsetcap[t], e->ncols, 1, 0))
			return -1;
	return 0;
}

/* recs[0..n) all of one step. */
static void
gw__encode_step(const struct gw_client *c, struct gw__enc *e,
    const struct gw__srec *recs, size_t n, double now, struct gw__buf *b)
{
	const struct gw__name	*nm;
	double			 sc[GW__NSCALARS];
	unsigned		 have = 0, kind;
	uint32_t		 id, col;
	size_t			 i, nm_count = 0;
	int64_t			 step = recs[0].step;
	int			 any[GW__NTENSOR] = { 0 }, t;

	for (t = 0; t < GW__NTENSOR && e->ncols > 0; t++)
		memset(e->tset[t], 0, e->ncols);
	if (++e->stepserial == 0)
		e->stepserial = 1;
	for (i = 0; i < n; i++) {
		kind = GW__KEY_KIND(recs[i].key);
		id = GW__KEY_ID(recs[i].key);
		if ((t = gw__tensor_slot(kind)) >= 0) {
			col = e->colof[id];
			e->tv[t][col] = recs[i].value;
			e->tset[t][col] = 1;
			any[t] = 1;
			continue;
		}
		switch (kind) {
		case GW__METRIC:
			if (e->mgen[id] != e->stepserial) {
				e->mgen[id] = e->stepserial;
				e->mpos[id] = (uint32_t)nm_count;
				e->mids[nm_count++] = id;
			}
			e->mvals[e->mpos[id]] = recs[i].value;
			break;
		default:
			sc[kind] = recs[i].value;
			have |= 1u << kind;
			break;
		}
	}

	gw__buf_puts(b, "{\"step\":");
	gw__buf_int(b, step);
	if (have & (1u << GW__TIME)) {
		gw__buf_puts(b, ",\"time\":");
		gw__buf_double(b, sc[GW__TIME]);
	} else if (!e->stamped || step > e->max_stamped) {
		/* A step seen for the first time: now is when it was seen. */
		gw__buf_puts(b, ",\"time\":");
		gw__buf_double(b, now);
	}
	if (!e->stamped || step > e->max_stamped)
		e->max_stamped = step;
	e->stamped = 1;
	if (have & (1u << GW__LOSS)) {
		gw__buf_puts(b, ",\"loss\":");
		gw__buf_double(b, sc[GW__LOSS]);
	}
	if (have & (1u << GW__GRAD_NORM)) {
		gw__buf_puts(b, ",\"grad_norm\":");
		gw__buf_double(b, sc[GW__GRAD_NORM]);
	}
	if (have & (1u << GW__LR)) {
		gw__buf_puts(b, ",\"lr\":");
		gw__buf_double(b, sc[GW__LR]);
	}
	for (t = 0; t < GW__NTENSOR; t++) {
		if (!any[t])
			continue;
		gw__buf_puts(b, gw__tensor_fields[t]);
		gw__encode_aligned(b, e->tv[t], e->tset[t], e->ncols);
	}
	if (have & (1u << GW__CLIP_MAX | 1u << GW__CLIP_PRE)) {
		gw__buf_puts(b, ",\"clip\":{");
		if (have & (1u << GW__CLIP_MAX)) {
			gw__buf_puts(b, "\"max_norm\":");
			gw__buf_double(b, sc[GW__CLIP_MAX]);
		}
		if (have & (1u << GW__CLIP_PRE)) {
			gw__buf_puts(b, (have & (1u << GW__CLIP_MAX)) ?
			    ",\"pre_norm\":" : "\"pre_norm\":");
			gw__buf_double(b, sc[GW__CLIP_PRE]);
		}
		gw__buf_put(b, "}", 1);
	}
	if (have & (1u << GW__SKIPPED))
		gw__buf_puts(b, sc[GW__SKIPPED] != 0 ? ",\"skipped\":true" :
		    ",\"skipped\":false");
	if (have & (1u << GW__LOSS_SCALE)) {
		gw__buf_puts(b, ",\"loss_scale\":");
		gw__buf_double(b, sc[GW__LOSS_SCALE]);
	}
	if (nm_count > 0) {
		gw__buf_puts(b, ",\"metrics\":{");
		for (i = 0; i < nm_count; i++) {
			nm = gw__names_get(&c->metrics, e->mids[i]);
			if (i > 0)
				gw__buf_put(b, ",", 1);
			gw__buf_string(b, nm->name, nm->len);
			gw__buf_put(b, ":", 1);
			gw__buf_double(b, e->mvals[i]);
		}
		gw__buf_put(b, "}", 1);
	}
	gw__buf_put(b, "}", 1);
}

int
gw__encode_request(const struct gw_client *c, struct gw__enc *e,
    struct gw__srec *recs, size_t n, uint32_t meta_layers, int with_meta,
    uint64_t dropped, double now, struct gw__buf *b)
{
	const struct gw__name	*nm;
	size_t			 i, j;

	b->len = 0;
	b->failed = 0;
	for (i = 1; i < n; i++)
		if (recs[i].step < recs[i - 1].step)
			break;
	if (i < n)
		qsort(recs, n, sizeof *recs, gw__srec_cmp);
	if (gw__encode_columns(c, e, recs, n) == -1)
		return -1;

	gw__buf_puts(b, "{\"run\":");
	gw__buf_string(b, c->run, strlen(c->run));
	if (with_meta) {
		gw__buf_put(b, ",", 1);
		gw__encode_meta(c, meta_layers, b);
	}
	if (e->ncols > 0) {
		gw__buf_puts(b, ",\"layer_names\":[");
		for (i = 0; i < e->ncols; i++) {
			nm = gw__names_get(&c->layers, e->cols[i]);
			if (i > 0)
				gw__buf_put(b, ",", 1);
			gw__buf_string(b, nm->name, nm->len);
		}
		gw__buf_put(b, "]", 1);
	}
	gw__buf_puts(b, ",\"steps\":[");
	for (i = 0; i < n; i = j) {
		for (j = i + 1; j < n && recs[j].step == recs[i].step; j++)
			;
		if (i > 0)
			gw__buf_put(b, ",", 1);
		gw__encode_step(c, e, recs + i, j - i, now, b);
	}
	gw__buf_puts(b, "],\"dropped\":");
	gw__buf_int(b, (int64_t)dropped);
	gw__buf_put(b, "}", 1);
	return b->failed ? -1 : 0;
}
