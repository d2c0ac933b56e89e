/* SPDX-License-Identifier: MIT */
/*
 * ingest_core: what ingest.c (the Jansson path) and ingest_scan.c (the
 * fast path for the client's shape) share, so that both build a batch
 * the same way: the per-call state, the series table and the point
 * appends, defined in ingest_core.c.  Private to the ingest modules.
 */
#ifndef GW_INGEST_CORE_H
#define GW_INGEST_CORE_H

#include <stddef.h>
#include <stdint.h>

#include "batch.h"

#define INGEST_NONE		SIZE_MAX
#define INGEST_KIND_NAME	SERIES_KIND_COUNT /* table: layer_names */
/* The keys of a step object. */
enum ingest_key {
	KEY_UNKNOWN,
	KEY_STEP,
	KEY_TIME,
	KEY_LOSS,
	KEY_GRAD_NORM,
	KEY_LR,
	KEY_LAYERS,
	KEY_WEIGHTS,
	KEY_CLIP,
	KEY_SKIPPED,
	KEY_LOSS_SCALE,
	KEY_METRICS,
	KEY_UPDATES,
	KEY_ADAM
};

/* One entry of "layer_names": its name (borrowed) and its series. */
struct ingest_name {
	const char	*s;
	size_t		 len;
	size_t		 grad;		/* layer_grad series, or INGEST_NONE */
	size_t		 weight;	/* layer_weight series, or INGEST_NONE */
	size_t		 update;	/* layer_update series, or INGEST_NONE */
	size_t		 adam;		/* layer_adam_ratio series, or INGEST_NONE */
};

/* One entry of the name table; name is borrowed from the body or batch. */
struct ingest_slot {
	const char	*name;		/* NULL: free slot */
	size_t		 len;
	uint64_t	 hash;
	size_t		 kind;		/* series kind or INGEST_KIND_NAME */
	size_t		 val;		/* series index, or layer_names index */
};

/* The state of one ingest_parse() call; lives on its stack. */
struct ingest {
	struct batch		*b;
	const char		*code;
	char			*cause;
	size_t			 nsteps;	/* entries of "steps" (or more) */
	size_t			 budget;	/* points still reservable */
	size_t			 series_cap;	/* allocated b->series */
	size_t			 scalar[SERIES_KIND_COUNT];
	struct ingest_slot	*tab;
	size_t			 tabmask;	/* table size - 1 */
	size_t			 tabused;
	uint64_t		 seed;
	int			 names_given;	/* "layer_names" not null */
	struct ingest_name	*names;
	size_t			 nnames;
	size_t			 names_cap;
	size_t			 max_config;	/* meta.config's bytes */
};

/*
 * The fast path: parse body into ig->b when it is valid and in the
 * shape the client library sends.  0 when done; -1 when the body is
 * anything else (ig is then only fit for freeing).
 */
int		 ingest_scan(struct ingest *ig, const char *body, size_t len);

/* Ready ig for one parse of a body of len bytes; ingest_cleanup() after. */
void		 ingest_init(struct ingest *ig, const char *body, size_t len);
/* Free ig's tables (not its batch or cause). */
void		 ingest_cleanup(struct ingest *ig);
/* Record a bad_request cause; returns -1 for the caller to pass on. */
int		 ingest_fail(struct ingest *ig, const char *fmt, ...)
		    __attribute__((format(printf, 2, 3)));

enum ingest_key	 ingest_step_key(const char *k, size_t len);
/* Append name (borrowed) to layer_names; -1 (with a cause) if repeated. */
int		 ingest_name_add(struct ingest *ig, const char *s, size_t len);
/*
 * Index of the named series (kind, name), added when new, first seen
 * in steps[stepi]; INGEST_NONE (with a cause) past INGEST_MAX_SERIES.
 */
size_t		 ingest_series(struct ingest *ig, enum series_kind kind,
		    const char *name, size_t len, size_t stepi);
/* The series of tensor kind (layer_*) of layer_names[i]. */
size_t		 ingest_layer_series(struct ingest *ig, enum series_kind kind,
		    size_t i, size_t stepi);
/* Append to the scalar series of kind, named after it. */
int		 ingest_scalar(struct ingest *ig, enum series_kind kind,
		    size_t stepi, int64_t step, double v);
void		 ingest_grow(struct batch_series *s);

static inline void
ingest_push(struct ingest *ig, size_t si, int64_t step, double v)
{
	struct batch_series	*s = &ig->b->series[si];

	if (s->n == s->cap)
		ingest_grow(s);
	s->steps[s->n] = step;
	s->values[s->n] = v;
	s->n++;
	ig->b->npoints++;
}

#endif
