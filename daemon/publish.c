/* SPDX-License-Identifier: MIT */
/*
 * publish: stream messages from committed rounds; see publish.h.  It
 * remembers each run's last published status and health, so that a run
 * message goes out only on a change.  Step summaries are snapshots:
 * the values of the few steps that get a message, found in one pass
 * over the batch's series, copied with their names into one allocation
 * that the stream turns into JSON (publish_step_build_cb) only when it
 * sends it.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "log.h"
#include "publish.h"
#include "store_rowjson.h"
#include "store_json.h"
#include "wire_json.h"
#include "ws_stream.h"
#include "xmalloc.h"

/* A run's state as last published. */
struct publish_run {
	int64_t		 id;
	char		*status;
	char		*health;
};

/*
 * One step summary, copied from a batch on the writer thread and turned
 * into JSON on the stream's thread only if a viewer is sent it: most
 * are superseded unsent.  One allocation: this, then vals, then the
 * run key and the series names.
 */
struct publish_val {
	enum series_kind	 kind;
	const char		*name;
	double			 v;
};

struct publish_step {
	int64_t			 step;
	const char		*run;
	size_t			 n;
	struct publish_val	*vals;	/* in the batch's series order */
};

/* A point of series si that goes into message msg. */
struct publish_hit {
	size_t		 msg;
	size_t		 si;
	double		 v;
};

struct publish {
	struct ws_stream	*ws;
	struct publish_run	*runs;	/* sorted by id */
	size_t			 nruns, caprun;
};

struct publish *
publish_new(struct ws_stream *ws)
{
	struct publish	*p;

	p = xcalloc(1, sizeof *p);
	p->ws = ws;
	return p;
}

void
publish_free(struct publish *p)
{
	size_t	i;

	if (p == NULL)
		return;
	for (i = 0; i < p->nruns; i++) {
		free(p->runs[i].status);
		free(p->runs[i].health);
	}
	free(p->runs);
	free(p);
}

int
publish_is_wanted(struct publish *p)
{
	return p != NULL && ws_stream_clients(p->ws) > 0;
}

/* Serialise o (consumed) and publish it. */
static void
publish_send(struct publish *p, enum ws_stream_kind kind, const char *run,
    json_t *o)
{
	char	*s;

	if (o == NULL)
		fatalx("publish: json_pack failed");
	if ((s = json_dumps(o, JSON_COMPACT)) == NULL)
		fatalx("publish: json_dumps failed");
	json_decref(o);
	ws_stream_publish(p->ws, kind, run, s, strlen(s));
	free(s);
}

static int
publish_cmp_step(const void *a, const void *b)
{
	int64_t	x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

static int
publish_is_step_series(enum series_kind k)
{
	return k == SERIES_LOSS || k == SERIES_GRAD_NORM || k == SERIES_LR ||
	    k == SERIES_LAYER_GRAD || k == SERIES_CLIP_PRE_NORM ||
	    k == SERIES_CLIP_MAX_NORM;
}

/* Set v into the summary o as a series of kind and name says. */
static void
publish_set(json_t *o, enum series_kind kind, const char *name, double v)
{
	json_t	*sub;

	switch (kind) {
	case SERIES_LAYER_GRAD:
		json_object_set_new(json_object_get(o, "layers"), name,
		    wire_json_number(v));
		break;
	case SERIES_CLIP_PRE_NORM:
	case SERIES_CLIP_MAX_NORM:
		if ((sub = json_object_get(o, "clip")) == NULL) {
			sub = json_object();
			json_object_set_new(o, "clip", sub);
		}
		json_object_set_new(sub, kind == SERIES_CLIP_PRE_NORM ?
		    "pre_norm" : "max_norm", wire_json_number(v));
		break;
	default:
		json_object_set_new(o, name, wire_json_number(v));
		break;
	}
}

/* Stream thread: the step message of a snapshot (ws_stream_build_cb). */
static char *
publish_step_build_cb(void *arg, size_t *len)
{
	const struct publish_step	*ps = arg;
	json_t				*o;
	char				*s;
	size_t				 i;

	o = json_pack("{s:s, s:s, s:I, s:o}", "type", "step", "run", ps->run,
	    "step", (json_int_t)ps->step, "layers", json_object());
	if (o == NULL)
		fatalx("publish: json_pack failed");
	/* In the batch's order: for a repeated step, the last wins. */
	for (i = 0; i < ps->n; i++)
		publish_set(o, ps->vals[i].kind, ps->vals[i].name,
		    ps->vals[i].v);
	if ((s = json_dumps(o, JSON_COMPACT)) == NULL)
		fatalx("publish: json_dumps failed");
	json_decref(o);
	*len = strlen(s);
	return s;
}

/* Any thread: a snapshot is one allocation. */
static void
publish_step_free_cb(void *arg)
{
	free(arg);
}

/*
 * Hand the stream a snapshot of step: the points hits[0..nhits), with
 * their names copied out of b.
 */
static void
publish_step_send(struct publish *p, const struct batch *b, int64_t step,
    enum ws_stream_kind kind, const struct publish_hit *hits, size_t nhits)
{
	struct publish_step	*ps;
	const char		*name;
	char			*at;
	size_t			 i, bytes, runlen, len, json = 64;

	runlen = strlen(b->run) + 1;
	bytes = runlen;
	for (i = 0; i < nhits; i++)
		bytes += strlen(b->series[hits[i].si].name) + 1;
	ps = xmalloc(sizeof *ps + nhits * sizeof *ps->vals + bytes);
	ps->step = step;
	ps->n = nhits;
	ps->vals = (struct publish_val *)(ps + 1);
	at = (char *)(ps->vals + nhits);
	memcpy(at, b->run, runlen);
	ps->run = at;
	at += runlen;
	for (i = 0; i < nhits; i++) {
		name = b->series[hits[i].si].name;
		len = strlen(name) + 1;
		memcpy(at, name, len);
		ps->vals[i].kind = b->series[hits[i].si].kind;
		ps->vals[i].name = at;
		ps->vals[i].v = hits[i].v;
		at += len;
		json += len + 26;	/* "name":-1.2345678901234567e-300, */
	}
	ws_stream_publish_lazy(p->ws, kind, b->run, ps, json + runlen,
	    publish_step_build_cb, publish_step_free_cb);
}

void
publish_batch(struct publish *p, const struct batch *b)
{
	const struct batch_series	*s;
	struct publish_hit		*hits = NULL, *sorted;
	int64_t				*steps = NULL, *hit, last;
	size_t				*at, i, j, n = 0, nnf = 0, nhits = 0;
	size_t				 caphits;

	if (!publish_is_wanted(p) || b->nsteps == 0)
		return;
	/* The steps that get a message: non-finite ones, then the last. */
	last = b->steps[0];
	for (i = 1; i < b->nsteps; i++)
		if (b->steps[i] > last)
			last = b->steps[i];
	steps = xreallocarray(NULL, PUBLISH_MAX_NONFINITE + 1, sizeof *steps);
	for (i = 0; i < b->nseries; i++) {
		s = &b->series[i];
		if (s->kind != SERIES_LOSS && s->kind != SERIES_GRAD_NORM &&
		    s->kind != SERIES_LAYER_GRAD)
			continue;
		for (j = 0; j < s->n; j++) {
			if (isfinite(s->values[j]))
				continue;
			if (nnf > 0 && bsearch(&s->steps[j], steps, nnf,
			    sizeof *steps, publish_cmp_step) != NULL)
				continue;
			if (nnf == PUBLISH_MAX_NONFINITE) {
				/* Keep the earliest: replace the latest. */
				if (s->steps[j] >= steps[nnf - 1])
					continue;
				steps[nnf - 1] = s->steps[j];
			} else
				steps[nnf++] = s->steps[j];
			qsort(steps, nnf, sizeof *steps, publish_cmp_step);
		}
	}
	n = nnf;
	if (nnf == 0 || bsearch(&last, steps, nnf, sizeof *steps,
	    publish_cmp_step) == NULL)
		steps[n++] = last;	/* the largest: order kept */
	/* The points that go into a message, in series order. */
	caphits = b->nseries + 1;
	hits = xreallocarray(NULL, caphits, sizeof *hits);
	for (i = 0; i < b->nseries; i++) {
		s = &b->series[i];
		if (!publish_is_step_series(s->kind) || s->n == 0)
			continue;
		if (nnf > 0) {		/* rare: look every point up */
			for (j = 0; j < s->n; j++) {
				hit = bsearch(&s->steps[j], steps, n,
				    sizeof *steps, publish_cmp_step);
				if (hit == NULL)
					continue;
				if (nhits == caphits) {
					caphits *= 2;
					hits = xreallocarray(hits, caphits,
					    sizeof *hits);
				}
				hits[nhits].msg = (size_t)(hit - steps);
				hits[nhits].si = i;
				hits[nhits++].v = s->values[j];
			}
			continue;
		}
		/* Only the last step: from the end, where it usually is. */
		for (j = s->n; j > 0; j--)
			if (s->steps[j - 1] == last) {
				hits[nhits].msg = 0;
				hits[nhits].si = i;
				hits[nhits++].v = s->values[j - 1];
				break;
			}
	}
	if (nnf == 0) {
		publish_step_send(p, b, last, WS_STREAM_STEP, hits, nhits);
		goto out;
	}
	/* Group the hits by message, keeping the series order in each. */
	at = xcalloc(n + 1, sizeof *at);
	for (i = 0; i < nhits; i++)
		at[hits[i].msg + 1]++;
	for (i = 0; i < n; i++)
		at[i + 1] += at[i];
	sorted = xreallocarray(NULL, nhits + 1, sizeof *sorted);
	for (i = 0; i < nhits; i++)
		sorted[at[hits[i].msg]++] = hits[i];
	for (i = 0, j = 0; i < n; i++) {	/* at[i]: the end of i's */
		publish_step_send(p, b, steps[i], i < nnf ?
		    WS_STREAM_STEP_NONFINITE : WS_STREAM_STEP, sorted + j,
		    at[i] - j);
		j = at[i];
	}
	free(sorted);
	free(at);
out:
	free(hits);
	free(steps);
}

static struct publish_run *
publish_run_find(struct publish *p, int64_t id, size_t *at)
{
	size_t	lo = 0, hi = p->nruns, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (p->runs[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	*at = lo;
	return lo < p->nruns && p->runs[lo].id == id ? &p->runs[lo] : NULL;
}

void
publish_run(struct publish *p, struct store *st, int64_t run_id,
    int maybe_changed)
{
	struct publish_run	*r;
	json_t			*o;
	const char		*status, *health, *key;
	char			*run;
	size_t			 at;

	if (!publish_is_wanted(p))
		return;
	if (!maybe_changed && publish_run_find(p, run_id, &at) != NULL)
		return;
	if ((o = store_json_run(st, run_id)) == NULL)
		return;
	status = json_string_value(json_object_get(o, "status"));
	health = json_string_value(json_object_get(o, "health"));
	key = json_string_value(json_object_get(o, "run"));
	if (status == NULL || health == NULL || key == NULL) {
		json_decref(o);
		return;
	}
	if ((r = publish_run_find(p, run_id, &at)) != NULL &&
	    maybe_changed != PUBLISH_RUN_ALWAYS &&
	    strcmp(r->status, status) == 0 && strcmp(r->health, health) == 0) {
		json_decref(o);
		return;
	}
	if (r == NULL) {
		if (p->nruns == p->caprun) {
			p->caprun = p->caprun == 0 ? 64 : p->caprun * 2;
			p->runs = xreallocarray(p->runs, p->caprun,
			    sizeof *p->runs);
		}
		memmove(&p->runs[at + 1], &p->runs[at],
		    (p->nruns - at) * sizeof *p->runs);
		p->nruns++;
		r = &p->runs[at];
		r->id = run_id;
	} else {
		free(r->status);
		free(r->health);
	}
	r->status = xstrdup(status);
	r->health = xstrdup(health);
	/* The stream's run carries no meta: it can be large, and is in GET. */
	json_object_del(o, "meta");
	run = xstrdup(key);		/* o goes with the message */
	publish_send(p, WS_STREAM_RUN, run,
	    json_pack("{s:s, s:o}", "type", "run", "run", o));
	free(run);
}

void
publish_alert(struct publish *p, struct store *st, int64_t alert_id)
{
	json_t		*o;
	char		*run;

	if (!publish_is_wanted(p))
		return;
	if ((o = store_json_alert(st, alert_id)) == NULL)
		return;
	run = xstrdup(json_string_value(json_object_get(o, "run")) != NULL ?
	    json_string_value(json_object_get(o, "run")) : "");
	publish_send(p, WS_STREAM_ALERT, run,
	    json_pack("{s:s, s:o}", "type", "alert", "alert", o));
	free(run);
}
