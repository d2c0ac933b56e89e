/* SPDX-License-Identifier: MIT */
/* batch: the parsed form of an ingest request; see batch.h. */
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "xmalloc.h"

static const char *const series_kind_names[SERIES_KIND_COUNT] = {
	[SERIES_LOSS] = "loss",
	[SERIES_GRAD_NORM] = "grad_norm",
	[SERIES_LR] = "lr",
	[SERIES_LAYER_GRAD] = "layer_grad",
	[SERIES_LAYER_WEIGHT] = "layer_weight",
	[SERIES_CLIP_PRE_NORM] = "clip_pre_norm",
	[SERIES_CLIP_MAX_NORM] = "clip_max_norm",
	[SERIES_METRIC] = "metric",
	[SERIES_LOSS_SCALE] = "loss_scale",
	[SERIES_SKIPPED] = "skipped",
	[SERIES_TIME] = "time",
	[SERIES_LAYER_UPDATE] = "layer_update",
	[SERIES_LAYER_ADAM] = "layer_adam_ratio",
};

const char *
series_kind_name(enum series_kind kind)
{
	if ((int)kind < 0 || kind >= SERIES_KIND_COUNT)
		return "unknown";
	return series_kind_names[kind];
}

int
series_kind_parse(const char *name)
{
	int	i;

	for (i = 0; i < SERIES_KIND_COUNT; i++)
		if (strcmp(series_kind_names[i], name) == 0)
			return i;
	return -1;
}

int
series_kind_is_scalar(enum series_kind kind)
{
	return !series_kind_is_tensor(kind) && kind != SERIES_METRIC;
}

int
series_kind_is_tensor(enum series_kind kind)
{
	return kind == SERIES_LAYER_GRAD || kind == SERIES_LAYER_WEIGHT ||
	    kind == SERIES_LAYER_UPDATE || kind == SERIES_LAYER_ADAM;
}

struct batch *
batch_new(const char *run)
{
	struct batch	*b;

	b = xcalloc(1, sizeof *b);
	b->run = xstrdup(run);
	return b;
}

void
batch_free(struct batch *b)
{
	size_t	i;

	if (b == NULL)
		return;
	/* acq_rel: the last owner sees every other owner's reads done. */
	if (atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) > 0)
		return;
	for (i = 0; i < b->nseries; i++) {
		free(b->series[i].name);
		free(b->series[i].steps);
		free(b->series[i].values);
	}
	for (i = 0; i < b->nlayers_meta; i++) {
		free(b->layers_meta[i].name);
		free(b->layers_meta[i].shape_json);
	}
	free(b->layers_meta);
	free(b->series);
	free(b->steps);
	free(b->run);
	free(b->meta_json);
	free(b->project);
	free(b->config_json);
	free(b);
}

struct batch *
batch_ref(struct batch *b)
{
	atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
	return b;
}

size_t
batch_series_get(struct batch *b, enum series_kind kind, const char *name)
{
	struct batch_series	*s;
	size_t			 i;

	for (i = 0; i < b->nseries; i++)
		if (b->series[i].kind == kind &&
		    strcmp(b->series[i].name, name) == 0)
			return i;
	b->series = xreallocarray(b->series, b->nseries + 1, sizeof *s);
	s = &b->series[b->nseries];
	memset(s, 0, sizeof *s);
	s->kind = kind;
	s->name = xstrdup(name);
	return b->nseries++;
}

void
batch_series_push(struct batch *b, size_t si, int64_t step, double value)
{
	struct batch_series	*s = &b->series[si];

	if (s->n == s->cap) {
		s->cap = s->cap == 0 ? 16 : s->cap * 2;
		s->steps = xreallocarray(s->steps, s->cap, sizeof *s->steps);
		s->values = xreallocarray(s->values, s->cap,
		    sizeof *s->values);
	}
	s->steps[s->n] = step;
	s->values[s->n] = value;
	s->n++;
	b->npoints++;
}

int64_t
batch_last_step(const struct batch *b)
{
	int64_t	last = -1;
	size_t	i;

	for (i = 0; i < b->nsteps; i++)
		if (b->steps[i] > last)
			last = b->steps[i];
	return last;
}
