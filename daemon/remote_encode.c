/* SPDX-License-Identifier: MIT */
/*
 * remote_encode: a span of a run's stored points as remote-write
 * series, and the request body; see remote_encode.h.  Each series of
 * the run becomes one TimeSeries of a span, labelled __name__, layer or
 * name (tensor and metric series), project and run, in that (sorted)
 * order as the spec asks; gradwatch_step and gradwatch_run_health are
 * added for every step of the span.  Metric and label names are fixed
 * here and valid by Prometheus' rules ([a-zA-Z_:][a-zA-Z0-9_:]*); label
 * values are the stored UTF-8 as it is.  Sender threads only.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <snappy-c.h>

#include "batch.h"
#include "query_remote.h"
#include "remote_encode.h"
#include "remote_write.pb-c.h"
#include "xmalloc.h"

/* Prometheus' NaN: its stale marker is another NaN, never sent. */
#define REMOTE_NORMAL_NAN	0x7ff8000000000001ULL
#define REMOTE_LABELS_MAX	4

/*
 * A request is packed series by series as it is built: each series is
 * one WriteRequest holding one TimeSeries, packed by protobuf-c after the
 * ones before it.  Protobuf reads messages one after the other as one
 * message with their repeated fields joined, and a WriteRequest's only
 * field is its series, so the bytes are those protobuf-c packs for the
 * whole request at once, while only one series' messages are in memory
 * (a request has ~100,000 samples: the cache keeps the writer's data,
 * not ours).  Buffers are kept from request to request: no allocation a
 * series or a sample.
 */
struct remote_enc {
	Prometheus__Sample	 *spool;	/* a series' samples, initialised */
	Prometheus__Sample	**sptr;		/* spool[i] at [i] */
	size_t			  scap;
	size_t			  samples;	/* since the reset */
	char			 *str;		/* a series' label strings */
	size_t			  strcap;
	struct remote_points	 *pts;	/* each series' points */
	size_t			  npts;
	struct remote_points	  times;	/* the span's time series */
	int64_t			 *steps;	/* the span's steps */
	size_t			  nsteps;
	size_t			  nfirst;	/* the first series' */
	size_t			  stepcap;
	int64_t			 *ms;		/* their timestamps */
	double			 *vals;		/* stepcap of them: scratch */
	uint8_t			 *raw;		/* the packed request */
	size_t			  rawlen;
	size_t			  rawcap;
	char			 *body;		/* raw, compressed */
	size_t			  bodycap;
};

static const char *const remote_metrics[SERIES_KIND_COUNT] = {
	[SERIES_LOSS] = "gradwatch_loss",
	[SERIES_GRAD_NORM] = "gradwatch_grad_norm",
	[SERIES_LR] = "gradwatch_lr",
	[SERIES_LAYER_GRAD] = "gradwatch_layer_grad_norm",
	[SERIES_LAYER_WEIGHT] = "gradwatch_layer_weight_norm",
	[SERIES_CLIP_PRE_NORM] = "gradwatch_clip_pre_norm",
	[SERIES_CLIP_MAX_NORM] = "gradwatch_clip_max_norm",
	[SERIES_METRIC] = "gradwatch_metric",
	[SERIES_LOSS_SCALE] = "gradwatch_loss_scale",
	[SERIES_SKIPPED] = "gradwatch_skipped",
	[SERIES_TIME] = NULL,		/* the samples' timestamps */
	[SERIES_LAYER_UPDATE] = "gradwatch_layer_update_norm",
	[SERIES_LAYER_ADAM] = "gradwatch_layer_adam_ratio",
};

const char *
remote_enc_metric(int kind)
{
	if (kind < 0 || kind >= SERIES_KIND_COUNT)
		return NULL;
	return remote_metrics[kind];
}

struct remote_enc *
remote_enc_new(void)
{
	return xcalloc(1, sizeof(struct remote_enc));
}

void
remote_enc_reset(struct remote_enc *e)
{
	e->samples = e->rawlen = 0;
}

void
remote_enc_free(struct remote_enc *e)
{
	if (e == NULL)
		return;
	free(e->spool);
	free(e->sptr);
	free(e->str);
	for (; e->npts > 0; e->npts--)
		remote_points_cleanup(&e->pts[e->npts - 1]);
	free(e->pts);
	remote_points_cleanup(&e->times);
	free(e->steps);
	free(e->ms);
	free(e->vals);
	free(e->raw);
	free(e->body);
	free(e);
}

size_t
remote_enc_samples(const struct remote_enc *e)
{
	return e->samples;
}

/* Room for a series of n samples, and len more bytes packed. */
static void
remote_enc_room(struct remote_enc *e, size_t n, size_t len)
{
	size_t	cap, i;

	if (n > e->scap) {
		for (cap = e->scap == 0 ? 4096 : e->scap; cap < n;)
			cap *= 2;
		e->spool = xreallocarray(e->spool, cap, sizeof *e->spool);
		e->sptr = xreallocarray(e->sptr, cap, sizeof *e->sptr);
		for (i = 0; i < cap; i++) {
			if (i >= e->scap)
				prometheus__sample__init(&e->spool[i]);
			e->sptr[i] = &e->spool[i];
		}
		e->scap = cap;
	}
	if (e->rawlen + len > e->rawcap) {
		for (cap = e->rawcap == 0 ? 1 << 21 : e->rawcap;
		    cap < e->rawlen + len;)
			cap *= 2;
		e->raw = xreallocarray(e->raw, cap, 1);
		e->rawcap = cap;
	}
}

/*
 * Pack one TimeSeries after the request's others: metric with the label
 * pairs lab[0..2*nlab-1] (names sorted, after __name__) and n samples.
 */
static void
remote_enc_add(struct remote_enc *e, const char *metric,
    const char *const *lab, size_t nlab, const int64_t *ms,
    const double *vals, size_t n)
{
	Prometheus__Label	  label[REMOTE_LABELS_MAX + 1];
	Prometheus__Label	 *lptr[REMOTE_LABELS_MAX + 1];
	Prometheus__TimeSeries	  ts, *tsp = &ts;
	Prometheus__WriteRequest  req;
	Prometheus__Sample	 *s;
	uint64_t		  bits;
	size_t			  i, len, off, room;

	if (n == 0)
		return;
	/* The label strings, copied: protobuf-c's are not const. */
	for (i = len = 0; i < 2 * nlab; i++)
		len += strlen(lab[i]) + 1;
	len += strlen("__name__") + strlen(metric) + 2;
	if (len > e->strcap) {
		e->strcap = len + 256;
		e->str = xreallocarray(e->str, e->strcap, 1);
	}
	for (i = off = 0; i < 2 * (nlab + 1); i++) {
		const char	*from = i == 0 ? "__name__" : i == 1 ? metric :
				    lab[i - 2];
		size_t		 k = strlen(from) + 1;

		memcpy(e->str + off, from, k);
		if (i % 2 == 0) {
			prometheus__label__init(&label[i / 2]);
			label[i / 2].name = e->str + off;
			lptr[i / 2] = &label[i / 2];
		} else
			label[i / 2].value = e->str + off;
		off += k;
	}
	/*
	 * Room for the most each message can take: a sample (tag, length,
	 * a double and an int64 with their tags) 22 bytes, a label 18 and
	 * its strings, the series' and the request's tags and lengths 12.
	 */
	room = n * 22 + (nlab + 1) * 18 + len + 12;
	remote_enc_room(e, n, room);
	s = e->spool;
	for (i = 0; i < n; i++) {
		s[i].timestamp = ms[i];
		s[i].value = vals[i];
		if (isnan(vals[i])) {
			bits = REMOTE_NORMAL_NAN;
			memcpy(&s[i].value, &bits, sizeof s[i].value);
		}
	}
	prometheus__time_series__init(&ts);
	ts.n_labels = nlab + 1;
	ts.labels = lptr;
	ts.n_samples = n;
	ts.samples = e->sptr;
	prometheus__write_request__init(&req);
	req.n_timeseries = 1;
	req.timeseries = &tsp;
	e->rawlen += prometheus__write_request__pack(&req, e->raw + e->rawlen);
	e->samples += n;
}

static int
remote_enc_step_cmp(const void *a, const void *b)
{
	int64_t	x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

/* The index of step in the sorted steps[0..n-1], or n. */
static size_t
remote_enc_find(const int64_t *steps, size_t n, int64_t step)
{
	size_t	lo = 0, hi = n, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (steps[mid] < step)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && steps[lo] == step ? lo : n;
}

/*
 * Append p's steps to the span's step list (sorted and made unique
 * later), unless they are the first series' steps again, as most are.
 */
static void
remote_enc_steps_add(struct remote_enc *e, const struct remote_points *p)
{
	size_t	cap = e->stepcap == 0 ? 256 : e->stepcap;

	if (e->nsteps > 0 && p->n == e->nfirst && memcmp(e->steps, p->steps,
	    p->n * sizeof *p->steps) == 0)
		return;
	while (cap < e->nsteps + p->n)
		cap *= 2;
	if (cap != e->stepcap) {
		e->steps = xreallocarray(e->steps, cap, sizeof *e->steps);
		e->ms = xreallocarray(e->ms, cap, sizeof *e->ms);
		e->vals = xreallocarray(e->vals, cap, sizeof *e->vals);
		e->stepcap = cap;
	}
	memcpy(e->steps + e->nsteps, p->steps, p->n * sizeof *p->steps);
	if (e->nsteps == 0)
		e->nfirst = p->n;
	e->nsteps += p->n;
}

/*
 * The span's steps, sorted and unique, and each one's timestamp: its
 * time series' value, or the stored_at of the last row covering it.
 */
static void
remote_enc_stamps(struct remote_enc *e, const struct remote_row *rows,
    size_t nrows)
{
	size_t	i, k, j;
	double	t;

	qsort(e->steps, e->nsteps, sizeof *e->steps, remote_enc_step_cmp);
	for (i = k = 0; i < e->nsteps; i++)
		if (k == 0 || e->steps[i] != e->steps[k - 1])
			e->steps[k++] = e->steps[i];
	e->nsteps = k;
	for (i = 0; i < e->nsteps; i++) {
		j = remote_enc_find(e->times.steps, e->times.n, e->steps[i]);
		t = j < e->times.n ? e->times.vals[j] : NAN;
		for (k = nrows; !isfinite(t) && k > 0; k--)
			if (rows[k - 1].first <= e->steps[i] &&
			    rows[k - 1].last >= e->steps[i])
				t = rows[k - 1].at;
		if (!isfinite(t))
			t = rows[nrows - 1].at;
		e->ms[i] = llround(t * 1e3);
	}
}

/* The labels of series s of run into lab (pairs); their count. */
static size_t
remote_enc_labels(const struct remote_run *run, const struct remote_series *s,
    const char **lab)
{
	size_t	n = 0;

	if (s != NULL && series_kind_is_tensor(s->kind)) {
		lab[2 * n] = "layer";
		lab[2 * n++ + 1] = s->name;
	} else if (s != NULL && s->kind == SERIES_METRIC) {
		lab[2 * n] = "name";
		lab[2 * n++ + 1] = s->name;
	}
	if (run->project != NULL && *run->project != '\0') {
		lab[2 * n] = "project";
		lab[2 * n++ + 1] = run->project;
	}
	lab[2 * n] = "run";
	lab[2 * n++ + 1] = run->key;
	return n;
}

/* Series s's points p with their timestamps, layer_every kept. */
static void
remote_enc_series(struct remote_enc *e, const struct remote_run *run,
    const struct remote_series *s, struct remote_points *p,
    int64_t layer_every)
{
	const char	*lab[2 * REMOTE_LABELS_MAX];
	size_t		 i, k, j;

	/* Both ascending: one walk finds each point's step. */
	for (i = k = j = 0; i < p->n; i++) {
		if (layer_every > 1 && series_kind_is_tensor(s->kind) &&
		    p->steps[i] % layer_every != 0)
			continue;
		while (e->steps[j] < p->steps[i])
			j++;
		p->steps[k] = e->ms[j];	/* now a timestamp */
		p->vals[k++] = p->vals[i];
	}
	remote_enc_add(e, remote_metrics[s->kind], lab,
	    remote_enc_labels(run, s, lab), p->steps, p->vals, k);
}

int
remote_enc_span(struct remote_enc *e, const struct remote_source *src,
    const struct remote_run *run, const struct remote_series *ser,
    size_t nser, int64_t lo, int64_t hi, const struct remote_row *rows,
    size_t nrows, int64_t layer_every, char **cause)
{
	const char	*lab[2 * REMOTE_LABELS_MAX];
	size_t		 i, nlab;

	/* First every series' points, the steps and their times. */
	if (nser > e->npts) {
		e->pts = xreallocarray(e->pts, nser, sizeof *e->pts);
		memset(e->pts + e->npts, 0, (nser - e->npts) * sizeof *e->pts);
		e->npts = nser;
	}
	e->nsteps = 0;
	e->times.n = 0;
	for (i = 0; i < nser; i++) {
		e->pts[i].n = 0;
		if (ser[i].kind < 0)
			continue;
		if (src->points(src->arg, &ser[i], lo, hi,
		    ser[i].kind == SERIES_TIME ? &e->times : &e->pts[i],
		    cause) == -1)
			return -1;
		remote_enc_steps_add(e, ser[i].kind == SERIES_TIME ?
		    &e->times : &e->pts[i]);
	}
	if (e->nsteps == 0)
		return 0;
	remote_enc_stamps(e, rows, nrows);
	for (i = 0; i < nser; i++)
		if (remote_enc_metric(ser[i].kind) != NULL)
			remote_enc_series(e, run, &ser[i], &e->pts[i],
			    layer_every);
	/* The step as a series of its own, and the run's health. */
	nlab = remote_enc_labels(run, NULL, lab);
	for (i = 0; i < e->nsteps; i++)
		e->vals[i] = (double)e->steps[i];
	remote_enc_add(e, "gradwatch_step", lab, nlab, e->ms, e->vals,
	    e->nsteps);
	for (i = 0; i < e->nsteps; i++)
		e->vals[i] = run->health;
	remote_enc_add(e, "gradwatch_run_health", lab, nlab, e->ms, e->vals,
	    e->nsteps);
	return 0;
}

int
remote_enc_body(struct remote_enc *e, const char **body, size_t *len,
    char **cause)
{
	size_t	clen;

	clen = snappy_max_compressed_length(e->rawlen);
	if (clen + 1 > e->bodycap) {
		free(e->body);
		e->bodycap = clen + clen / 4 + 1;
		e->body = xmalloc(e->bodycap);
	}
	if (snappy_compress((const char *)e->raw, e->rawlen, e->body, &clen) !=
	    SNAPPY_OK) {
		xasprintf(cause, "remote_encode: snappy could not compress "
		    "%zu bytes", e->rawlen);
		return -1;
	}
	*body = e->body;
	*len = clen;
	return 0;
}
