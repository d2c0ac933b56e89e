/* SPDX-License-Identifier: MIT */
/*
 * batch: one parsed ingest request, laid out by series so that the
 * store can write each series' points as one chunk.  A batch is built
 * by ingest_parse() on a worker thread, then owned by the writer
 * thread until batch_free().  Series names are as API.md gives them:
 * scalar series are named after their kind ("loss", "grad_norm", "lr",
 * "clip_pre_norm", "clip_max_norm", "loss_scale", "skipped", "time"),
 * the per-tensor series (layer_grad, layer_weight, layer_update,
 * layer_adam_ratio) after their tensor, metrics after
 * their key.  A series is identified by (kind, name).
 */
#ifndef GW_BATCH_H
#define GW_BATCH_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

enum series_kind {
	SERIES_LOSS = 0,
	SERIES_GRAD_NORM,
	SERIES_LR,
	SERIES_LAYER_GRAD,
	SERIES_LAYER_WEIGHT,
	SERIES_CLIP_PRE_NORM,
	SERIES_CLIP_MAX_NORM,
	SERIES_METRIC,
	SERIES_LOSS_SCALE,	/* additions to API.md's kinds */
	SERIES_SKIPPED,		/* 1.0 when the optimizer skipped the step */
	SERIES_TIME,		/* the step's wall time, seconds since the epoch */
	SERIES_LAYER_UPDATE,	/* a tensor's update norm, ||W after - W before|| */
	SERIES_LAYER_ADAM,	/* a tensor's ||g||^2 / sum(v) (Adam's second moment) */
	SERIES_KIND_COUNT
};

/* Wire name of a kind ("loss", "layer_grad", ...). */
const char	*series_kind_name(enum series_kind);
/* Kind for a wire name; -1 if unknown. */
int		 series_kind_parse(const char *name);
/* 1 if the kind's series are named after the kind itself. */
int		 series_kind_is_scalar(enum series_kind);
/* 1 if the kind's series are named after a tensor (layer_*). */
int		 series_kind_is_tensor(enum series_kind);

/* One series' points in request order; a step may repeat (last wins). */
struct batch_series {
	enum series_kind	 kind;
	char			*name;		/* NUL-terminated UTF-8 */
	size_t			 n;
	size_t			 cap;
	int64_t			*steps;
	double			*values;	/* NaN and +-Inf as themselves */
};

/* Per-layer metadata from meta.layers, for the store and the detector. */
struct batch_layer_meta {
	char		*name;
	int64_t		 numel;		/* -1 when not given */
	int64_t		 depth;		/* -1 when not given */
	char		*shape_json;	/* e.g. "[64,3,3,3]"; NULL when absent */
};

struct batch {
	char			*run;		/* validated run key */
	char			*meta_json;	/* compact JSON object or NULL */
	char			*project;	/* meta.project or NULL */
	char			*config_json;	/* meta.config as JSON or NULL */
	struct batch_layer_meta	*layers_meta;
	size_t			 nlayers_meta;
	int64_t			 dropped;	/* >= 0 */
	size_t			 nsteps;
	int64_t			*steps;		/* step numbers, request order */
	size_t			 nseries;
	struct batch_series	*series;
	size_t			 npoints;	/* sum of series[i].n */
	_Atomic unsigned	 refs;		/* owners besides the first */
};

/* An empty batch for run (copied). */
struct batch	*batch_new(const char *run);
/*
 * Free b and everything it owns, or drop one reference when batch_ref()
 * gave out more.  NULL is fine.  A batch shared by threads is read-only.
 */
void		 batch_free(struct batch *b);
/* Another owner of b, who frees it with batch_free(); b itself. */
struct batch	*batch_ref(struct batch *b);
/*
 * Index of series (kind, name) in b, adding it when absent.  Linear
 * for small batches; ingest keeps its own index for layer names.
 */
size_t		 batch_series_get(struct batch *b, enum series_kind kind,
		    const char *name);
/* Append one point to series index si. */
void		 batch_series_push(struct batch *b, size_t si, int64_t step,
		    double value);
/* The greatest of b's steps; -1 if it has none. */
int64_t		 batch_last_step(const struct batch *b);

#endif
