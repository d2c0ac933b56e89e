/* SPDX-License-Identifier: MIT */
/*
 * detector: gradwatch's health rules (DETECTION.md); see detector.h.
 * Each committed batch is walked step by step; every run keeps O(1)
 * state per series (robust EW baselines in the log domain, CUSUMs, EW
 * rates, counters) and each rule drives one alert through its
 * lifecycle.  This file holds the runs and tensors, the walk through a
 * batch, restore and the stall timer; the alert lifecycle is in
 * detector_alert.c, the rules in detector_rules.c and detector_group.c,
 * the statistics in baseline.c, the threshold table in
 * detector_config.c, messages and details in detector_msg.c.  Why the
 * defaults differ from the literature: docs/DETECTION.md section 4.7.
 * One thread owns a struct detector and everything in it: the writer while
 * it rebuilds the state after a restart, then the detection thread.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "baseline.h"
#include "batch.h"
#include "detector.h"
#include "detector_int.h"
#include "xmalloc.h"

/* ---- runs and layers ---------------------------------------------------- */

static uint64_t
detector_hash(const char *s)
{
	uint64_t	h = 1469598103934665603ULL;

	while (*s != '\0') {
		h ^= (unsigned char)*s++;
		h *= 1099511628211ULL;
	}
	return h;
}

static void
detector_alert_init(struct alert *al)
{
	memset(al, 0, sizeof *al);
	al->onset_step = al->fire_step = -1;
	al->resolved_step = -1;
	al->window_start = -1;
}

/* 1 if s[0..len) contains the NUL-terminated needle. */
static int
detector_contains(const char *s, size_t len, const char *needle)
{
	size_t	n = strlen(needle), i;

	for (i = 0; i + n <= len; i++)
		if (memcmp(s + i, needle, n) == 0)
			return 1;
	return 0;
}

/*
 * 1 if a tensor's name says it may take part in the vanishing rules
 * when its shape is unknown: not a bias, not a normalisation's scale or
 * shift (1-D), not an embedding (sparse rows).
 */
static int
detector_name_eligible(const char *name)
{
	const char	*c = name, *dot;
	size_t		 len;

	for (;;) {
		dot = strchr(c, '.');
		len = dot != NULL ? (size_t)(dot - c) : strlen(c);
		if ((len >= 4 && strncmp(c, "bias", 4) == 0) ||
		    (len >= 3 && strncmp(c, "emb", 3) == 0) ||
		    (len == 3 && (strncmp(c, "wte", 3) == 0 ||
		    strncmp(c, "wpe", 3) == 0)) ||
		    (len >= 2 && (strncmp(c, "ln", 2) == 0 ||
		    strncmp(c, "bn", 2) == 0) && (len == 2 ||
		    c[2] == '_' || (c[2] >= '0' && c[2] <= '9'))))
			return 0;
		if (detector_contains(c, len, "norm") ||
		    detector_contains(c, len, "embed"))
			return 0;
		if (dot == NULL)
			return 1;
		c = dot + 1;
	}
}

static struct layer *
detector_layer_new(struct run *r, const char *name, uint64_t h)
{
	struct layer	*l;
	double		 w;

	l = xcalloc(1, sizeof *l);
	l->name = xstrdup(name);
	l->hash = h;
	l->depth = -1;
	l->order = r->nlayers;
	l->eligible = detector_name_eligible(name);
	/* Fed every layer.every steps: warm up over as many steps as the norm. */
	w = ceil(r->cfg->grad_warmup / r->cfg->layer_every);
	baseline_init(&l->base, w < 5 ? 5 : (uint32_t)w);
	l->first_step = -1;
	l->ymax = -INFINITY;
	l->uref = NAN;
	l->zero_since = -1;
	l->v_onset = -1;
	detector_alert_init(&l->al_van);
	detector_alert_init(&l->al_dead);
	detector_alert_init(&l->al_never);
	detector_alert_init(&l->al_dom);
	detector_alert_init(&l->al_adam);
	l->fall_since = -1;
	l->ylow = INFINITY;
	l->ylow_step = -1;
	baseline_init(&l->adam, (uint32_t)r->cfg->grad_warmup);
	return l;
}

void
detector_layer_free(struct layer *l)
{
	if (l == NULL)
		return;
	baseline_cleanup(&l->base);
	baseline_cleanup(&l->adam);
	free(l->name);
	free(l);
}

uint32_t
detector_layer_get(struct run *r, const char *name)
{
	uint64_t	 h = detector_hash(name);
	uint32_t	 i, mask, cap, *nh, k;
	struct layer	*l;

	if (r->lhash_cap > 0) {
		mask = r->lhash_cap - 1;
		for (i = (uint32_t)h & mask; r->lhash[i] != 0;
		    i = (i + 1) & mask) {
			l = r->layers[r->lhash[i] - 1];
			if (l->hash == h && strcmp(l->name, name) == 0)
				return r->lhash[i] - 1;
		}
	}
	if (r->nlayers == r->caplayers) {
		r->caplayers = r->caplayers == 0 ? 16 : r->caplayers * 2;
		r->layers = xreallocarray(r->layers, r->caplayers,
		    sizeof *r->layers);
	}
	r->layers[r->nlayers] = detector_layer_new(r, name, h);
	r->nlayers++;
	r->nunseen++;
	r->order_dirty = 1;
	if (r->nlayers * 2 > r->lhash_cap) {
		cap = r->lhash_cap == 0 ? 32 : r->lhash_cap * 2;
		nh = xcalloc(cap, sizeof *nh);
		for (k = 0; k < r->nlayers; k++) {
			for (i = (uint32_t)r->layers[k]->hash & (cap - 1);
			    nh[i] != 0; i = (i + 1) & (cap - 1))
				;
			nh[i] = k + 1;
		}
		free(r->lhash);
		r->lhash = nh;
		r->lhash_cap = cap;
	} else {
		mask = r->lhash_cap - 1;
		for (i = (uint32_t)h & mask; r->lhash[i] != 0;
		    i = (i + 1) & mask)
			;
		r->lhash[i] = r->nlayers;
	}
	return r->nlayers - 1;
}

struct run *
detector_run_new(struct detector *d, int64_t id)
{
	struct run	*r;
	int		 k;

	r = xcalloc(1, sizeof *r);
	r->id = id;
	r->cfg = d->cfg;
	r->last_step = -1;
	r->first_step = -1;
	r->rebase_until = -1;
	r->warmup_over = 1;
	r->explosion_fire = -1;
	baseline_init(&r->gbase, (uint32_t)r->cfg->grad_warmup);
	cusum_reset(&r->gcusum);
	r->gprev = NAN;
	r->gmin = INFINITY;
	r->lprev = NAN;
	r->ljump = -1;
	baseline_init(&r->lbase, (uint32_t)r->cfg->loss_warmup);
	cusum_reset(&r->lcusum);
	r->linit = NAN;
	r->lmin = INFINITY;
	r->glast = r->llast = NAN;
	r->glast_step = r->llast_step = -1;
	r->zero_global_since = -1;
	r->sat_since = -1;
	r->kappa_ref = r->kappa_prev = NAN;
	r->skip_since = -1;
	detector_alert_init(&r->al_scaler);
	for (k = 0; k < ALERT_KIND_COUNT; k++)
		detector_alert_init(&r->al[k]);
	return r;
}

void
detector_run_free(struct run *r)
{
	uint32_t	i;

	if (r == NULL)
		return;
	for (i = 0; i < r->nlayers; i++)
		detector_layer_free(r->layers[i]);
	free(r->layers);
	free(r->lhash);
	free(r->byorder);
	baseline_cleanup(&r->gbase);
	baseline_cleanup(&r->lbase);
	for (i = 0; i < ALERT_KIND_COUNT; i++)
		detector_group_cleanup(&r->grp[i]);
	for (i = 0; i < r->nkept; i++)
		free(r->kept[i].name);
	free(r->kept);
	detector_config_free(r->own);
	free(r);
}

struct run *
detector_run_find(struct detector *d, int64_t id)
{
	struct run	*r;

	for (r = d->bucket[(uint64_t)id & (d->nbucket - 1)]; r != NULL;
	    r = r->next)
		if (r->id == id)
			return r;
	return NULL;
}

static struct run *
detector_run_get(struct detector *d, int64_t id)
{
	struct run	*r, **nb, *next;
	size_t		 i, cap;

	if ((r = detector_run_find(d, id)) != NULL)
		return r;
	if (d->nrun + 1 > d->nbucket) {
		cap = d->nbucket * 2;
		nb = xcalloc(cap, sizeof *nb);
		for (i = 0; i < d->nbucket; i++)
			for (r = d->bucket[i]; r != NULL; r = next) {
				next = r->next;
				r->next = nb[(uint64_t)r->id & (cap - 1)];
				nb[(uint64_t)r->id & (cap - 1)] = r;
			}
		free(d->bucket);
		d->bucket = nb;
		d->nbucket = cap;
	}
	r = detector_run_new(d, id);
	r->next = d->bucket[(uint64_t)id & (d->nbucket - 1)];
	d->bucket[(uint64_t)id & (d->nbucket - 1)] = r;
	d->nrun++;
	return r;
}

struct detector *
detector_new(const struct detector_config *cfg)
{
	struct detector	*d;

	d = xcalloc(1, sizeof *d);
	d->cfg = cfg;
	d->nbucket = 64;
	d->bucket = xcalloc(d->nbucket, sizeof *d->bucket);
	return d;
}

void
detector_free(struct detector *d)
{
	struct run	*r, *next;
	size_t		 i;

	if (d == NULL)
		return;
	for (i = 0; i < d->nbucket; i++)
		for (r = d->bucket[i]; r != NULL; r = next) {
			next = r->next;
			detector_run_free(r);
		}
	free(d->bucket);
	free(d->cur);
	free(d->slot);
	free(d->view);
	free(d->steps);
	free(d->lslot);
	free(d->lval);
	free(d->aslot);
	free(d->alslot);
	free(d->alval);
	free(d->tmp);
	free(d->sorted);
	free(d);
}

void
detector_forget(struct detector *d, int64_t run_id)
{
	struct run	**pp, *r;

	for (pp = &d->bucket[(uint64_t)run_id & (d->nbucket - 1)];
	    (r = *pp) != NULL; pp = &r->next)
		if (r->id == run_id) {
			*pp = r->next;
			detector_run_free(r);
			d->nrun--;
			return;
		}
}

/* The run's overrides from meta: a copy of the defaults, then the names. */
static void
detector_run_meta(struct detector *d, struct run *r, const char *meta_json)
{
	struct detector_config	*c;

	c = detector_config_new();
	*c = r->own != NULL ? *r->own : *d->cfg;
	if (detector_config_apply_meta(c, meta_json) == 0) {
		detector_config_free(c);
		return;
	}
	detector_config_free(r->own);
	r->own = c;
	r->cfg = c;
}

/* ndim from a shape such as "[64,3,3,3]"; -1 if unknown. */
static int
detector_shape_ndim(const char *shape)
{
	int	n = 0, digits = 0;

	if (shape == NULL)
		return -1;
	for (; *shape != '\0'; shape++) {
		if (*shape >= '0' && *shape <= '9')
			digits = 1;
		else if (*shape == ',') {
			n += digits;
			digits = 0;
		}
	}
	return n + digits;
}

static void
detector_run_layers_meta(struct run *r, const struct batch *b)
{
	const struct batch_layer_meta	*lm;
	struct layer			*l;
	size_t				 i;
	uint32_t			 idx;
	int				 ndim;

	for (i = 0; i < b->nlayers_meta; i++) {
		lm = &b->layers_meta[i];
		idx = detector_layer_get(r, lm->name);	/* may move r->layers */
		l = r->layers[idx];
		if (lm->depth >= 0)
			l->depth = lm->depth;
		if (lm->numel > 0)
			l->half_ln_numel = 0.5 * log((double)lm->numel);
		if ((ndim = detector_shape_ndim(lm->shape_json)) >= 0)
			l->eligible = ndim >= 2 &&
			    detector_name_eligible(lm->name) ? 1 : 0;
		r->order_dirty = 1;
	}
}


/* ---- feeding ------------------------------------------------------------ */

static int
detector_i64_cmp(const void *a, const void *b)
{
	int64_t	x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

struct detector_sortpt {
	int64_t		step;
	size_t		i;
	double		v;
};

static int
detector_sortpt_cmp(const void *a, const void *b)
{
	const struct detector_sortpt	*x = a, *y = b;

	if (x->step != y->step)
		return x->step < y->step ? -1 : 1;
	return x->i < y->i ? -1 : x->i > y->i;
}

/*
 * Point d->view[si] at series si's points in step order: its own arrays
 * when they are already ordered (the common case), else a sorted copy
 * that keeps request order among repeats (the last one wins).
 */
static void
detector_view(struct detector *d, const struct batch_series *s, size_t si)
{
	struct detector_view	*v = &d->view[si];
	struct detector_sortpt	*p;
	size_t			 i;

	v->steps = s->steps;
	v->values = s->values;
	v->n = s->n;
	for (i = 1; i < s->n; i++)
		if (s->steps[i] < s->steps[i - 1])
			break;
	if (i >= s->n)
		return;
	p = xreallocarray(NULL, s->n, sizeof *p);
	for (i = 0; i < s->n; i++) {
		p[i].step = s->steps[i];
		p[i].i = i;
		p[i].v = s->values[i];
	}
	qsort(p, s->n, sizeof *p, detector_sortpt_cmp);
	d->sorted = xreallocarray(d->sorted, d->nsorted + 2,
	    sizeof *d->sorted);
	v->own_steps = xreallocarray(NULL, s->n, sizeof *v->own_steps);
	v->own_values = xreallocarray(NULL, s->n, sizeof *v->own_values);
	for (i = 0; i < s->n; i++) {
		v->own_steps[i] = p[i].step;
		v->own_values[i] = p[i].v;
	}
	free(p);
	d->sorted[d->nsorted++] = v->own_steps;
	d->sorted[d->nsorted++] = v->own_values;
	v->steps = v->own_steps;
	v->values = v->own_values;
}

/*
 * Whether step x's global norm may be one the rules attribute to tensors
 * (a spike, an explosion): then detector_feed reads every tensor of it.
 */
static int
detector_grad_unusual(const struct run *r, const struct detector_step *x)
{
	const struct baseline	*b = &r->gbase;
	double			 dy;

	if (!((x->has >> SERIES_GRAD_NORM) & 1) || !isfinite(x->grad) ||
	    !baseline_is_ready(b) || r->al[ALERT_GRAD_SPIKE].firing ||
	    r->al[ALERT_GRAD_EXPLOSION].firing)
		return 1;
	dy = baseline_ln(x->grad) - b->m;
	return dy >= LN2 || dy >= 3 * baseline_scale(b, r->cfg->grad_s_floor);
}

/* The value of view si at step, advancing its cursor; 0 if none. */
static inline int
detector_take(struct detector *d, size_t si, int64_t step, double *out)
{
	const struct detector_view	*v = &d->view[si];
	size_t				 c = d->cur[si];
	int				 found = 0;

	while (c < v->n && v->steps[c] < step)
		c++;
	while (c < v->n && v->steps[c] == step) {
		*out = v->values[c++];
		found = 1;
	}
	d->cur[si] = c;
	return found;
}

void
detector_feed(struct detector *d, int64_t run_id, const struct batch *b,
    double now, int replay, struct detector_events *out)
{
	detector_feed_run(d, detector_run_get(d, run_id), b, now, replay, out);
}

void
detector_feed_run(struct detector *d, struct run *r, const struct batch *b,
    double now, int replay, struct detector_events *out)
{
	const struct batch_series	*s;
	struct detector_step		 x;
	int64_t				*steps, step;
	size_t				 i, j, nsteps, nlayer = 0, nadam = 0;
	size_t				 nlayer_now, scalar[SERIES_KIND_COUNT];
	double				 v;
	int				 sorted = 1, advanced = 0, layer_bad = 0;

	d->out = out;
	d->replay = replay;
	d->now = now;
	if (b->meta_json != NULL && strstr(b->meta_json, "\"detector\"") != NULL)
		detector_run_meta(d, r, b->meta_json);
	if (b->nlayers_meta > 0)
		detector_run_layers_meta(r, b);

	/* Per series: a cursor, and the layer slot or the scalar kind. */
	if (d->capseries < b->nseries) {
		d->capseries = b->nseries * 2;
		d->cur = xreallocarray(d->cur, d->capseries, sizeof *d->cur);
		d->slot = xreallocarray(d->slot, d->capseries,
		    sizeof *d->slot);
		d->view = xreallocarray(d->view, d->capseries,
		    sizeof *d->view);
		d->lslot = xreallocarray(d->lslot, d->capseries,
		    sizeof *d->lslot);
		d->lval = xreallocarray(d->lval, d->capseries,
		    sizeof *d->lval);
		d->aslot = xreallocarray(d->aslot, d->capseries,
		    sizeof *d->aslot);
		d->alslot = xreallocarray(d->alslot, d->capseries,
		    sizeof *d->alslot);
		d->alval = xreallocarray(d->alval, d->capseries,
		    sizeof *d->alval);
	}
	for (i = 0; i < SERIES_KIND_COUNT; i++)
		scalar[i] = SIZE_MAX;
	d->nsorted = 0;
	for (i = 0; i < b->nseries; i++) {
		s = &b->series[i];
		d->cur[i] = 0;
		detector_view(d, s, i);
		if (s->kind == SERIES_LAYER_GRAD) {
			d->slot[nlayer++] = (uint32_t)i;
			/* The layer index is looked up once per batch. */
			d->view[i].layer = detector_layer_get(r, s->name);
			for (j = 0; j < d->view[i].n && !layer_bad; j++)
				layer_bad = !isfinite(d->view[i].values[j]);
		} else if (s->kind == SERIES_LAYER_ADAM) {
			d->aslot[nadam++] = (uint32_t)i;
			d->view[i].layer = detector_layer_get(r, s->name);
		} else if (series_kind_is_tensor(s->kind))
			(void)detector_layer_get(r, s->name);	/* a known tensor */
		else if (series_kind_is_scalar(s->kind))
			scalar[s->kind] = i;
	}

	/* The batch's distinct steps in order. */
	for (i = 1; i < b->nsteps; i++)
		if (b->steps[i] <= b->steps[i - 1]) {
			sorted = 0;
			break;
		}
	steps = b->steps;
	nsteps = b->nsteps;
	if (!sorted) {
		if (d->capsteps < b->nsteps) {
			d->capsteps = b->nsteps;
			d->steps = xreallocarray(d->steps, d->capsteps,
			    sizeof *d->steps);
		}
		memcpy(d->steps, b->steps, b->nsteps * sizeof *d->steps);
		qsort(d->steps, b->nsteps, sizeof *d->steps,
		    detector_i64_cmp);
		for (i = j = 0; i < b->nsteps; i++)
			if (j == 0 || d->steps[i] != d->steps[j - 1])
				d->steps[j++] = d->steps[i];
		steps = d->steps;
		nsteps = j;
	}

	for (i = 0; i < nsteps; i++) {
		step = steps[i];
		if (step <= r->last_step)
			continue;	/* seen before: a retry or a replay */
		memset(&x, 0, sizeof x);
		x.step = step;
		for (j = 0; j < SERIES_KIND_COUNT; j++) {
			if (scalar[j] == SIZE_MAX ||
			    !detector_take(d, scalar[j], step, &v))
				continue;
			x.has |= 1u << j;
			switch (j) {
			case SERIES_LOSS: x.loss = v; break;
			case SERIES_GRAD_NORM: x.grad = v; break;
			case SERIES_LR: x.lr = v; break;
			case SERIES_CLIP_PRE_NORM: x.cpre = v; break;
			case SERIES_CLIP_MAX_NORM: x.cmax = v; break;
			case SERIES_LOSS_SCALE: x.loss_scale = v; break;
			case SERIES_SKIPPED: x.skipped = v; break;
			case SERIES_TIME: x.time = v; break;
			default: break;
			}
		}
		/*
		 * The tensors' values are read on the steps that update
		 * their levels (layer.every), and on any step that may need
		 * them: a NaN in the batch's tensors, a tensor not seen yet,
		 * an unusual global norm (for attribution).
		 */
		if (!layer_bad && r->nunseen == 0 &&
		    r->nsteps % (uint64_t)r->cfg->layer_every != 0 &&
		    !detector_grad_unusual(r, &x))
			nlayer_now = 0;
		else
			nlayer_now = nlayer;
		for (j = 0; j < nlayer_now; j++) {
			if (!detector_take(d, d->slot[j], step, &v))
				continue;
			d->lslot[x.nl] = d->view[d->slot[j]].layer;
			d->lval[x.nl++] = v;
			if (!isfinite(v))
				x.nnonfinite++;
			else if (v > 0)
				x.npositive++;
		}
		for (j = 0; j < nadam; j++) {
			if (!detector_take(d, d->aslot[j], step, &v))
				continue;
			d->alslot[x.na] = d->view[d->aslot[j]].layer;
			d->alval[x.na++] = v;
		}
		detector_rules_step(d, r, &x);
		advanced = 1;
	}
	if (advanced) {
		if (r->last_batch > 0 && now > r->last_batch)
			ewmean_add(&r->dt_batch, log(now - r->last_batch),
			    r->cfg->stall_alpha);
		r->last_batch = now;
	}
	for (i = 0; i < d->nsorted; i++)
		free(d->sorted[i]);
	d->nsorted = 0;
	d->out = NULL;
}

void
detector_restore(struct detector *d, int64_t run_id, enum alert_kind kind,
    const char *series, enum alert_severity severity, int64_t onset_step,
    int64_t fire_step)
{
	struct run	*r;
	struct alert	*al;
	struct layer	*l;
	uint32_t	 idx;

	if ((unsigned)kind >= ALERT_KIND_COUNT)
		return;
	r = detector_run_get(d, run_id);
	if ((kind == ALERT_VANISHING || kind == ALERT_DEAD_LAYER ||
	    kind == ALERT_NO_GRADIENT || kind == ALERT_GRAD_EXPLOSION ||
	    kind == ALERT_INSTABILITY) && series != NULL && *series != '\0') {
		idx = detector_layer_get(r, series);	/* may move r->layers */
		l = r->layers[idx];
		detector_group_restore(r, l, kind, severity, onset_step,
		    fire_step);
		return;
	} else if (kind == ALERT_NONFINITE && series != NULL &&
	    strcmp(series, DETECTOR_SCALER_SERIES) == 0)
		al = &r->al_scaler;
	else
		al = &r->al[kind];
	al->firing = 1;
	al->severity = (uint8_t)severity;
	al->onset_step = onset_step;
	al->fire_step = fire_step;
	al->ok = 0;
	al->count = 1;
	al->peak = NAN;
	if (kind == ALERT_GRAD_EXPLOSION)
		r->explosion_fire = fire_step;
}

void
detector_tick(struct detector *d, double now, struct detector_events *out)
{
	const struct detector_config	*c;
	struct detector_report		 rep;
	struct alert			*al;
	struct run			*r;
	double				 typ, deadline, gap;
	size_t				 i;

	d->out = out;
	d->replay = 0;
	d->now = now;
	for (i = 0; i < d->nbucket; i++)
		for (r = d->bucket[i]; r != NULL; r = r->next) {
			c = r->cfg;
			if (r->nsteps < c->stall_min_steps ||
			    (r->dt_step.n == 0 && r->dt_batch.n == 0))
				continue;
			typ = r->dt_step.n > 0 ? r->dt_step.p : -INFINITY;
			if (r->dt_batch.n > 0 && r->dt_batch.p > typ)
				typ = r->dt_batch.p;
			typ = exp(typ);
			deadline = fmin(fmax(c->stall_factor * typ,
			    c->stall_min_seconds), c->stall_max_seconds);
			gap = now - r->last_advance;
			al = &r->al[ALERT_STALL];
			if (gap >= c->stall_critical_factor * deadline) {
				if (al->firing && al->severity < ALERT_CRITICAL) {
					detector_msg_stall(r, gap, typ,
					    deadline, ALERT_CRITICAL, &rep);
					detector_alert_update(d, r, al, ALERT_STALL, "",
					    ALERT_CRITICAL, &rep);
				} else if (!al->firing) {
					detector_msg_stall(r, gap, typ,
					    deadline, ALERT_CRITICAL, &rep);
					detector_alert_fire(d, r, al, ALERT_STALL, "",
					    ALERT_CRITICAL, r->last_step,
					    r->last_step, &rep);
				}
			} else if (gap >= deadline && !al->firing) {
				detector_msg_stall(r, gap, typ, deadline,
				    ALERT_WARNING, &rep);
				detector_alert_fire(d, r, al, ALERT_STALL, "",
				    ALERT_WARNING, r->last_step, r->last_step,
				    &rep);
			}
			if (al->firing && gap > al->peak)
				al->peak = gap;
		}
	d->out = NULL;
}
