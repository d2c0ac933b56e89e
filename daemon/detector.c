/* SPDX-License-Identifier: MIT */
/*
 * detector: gradwatch's health rules (DETECTION.md); see detector.h.
 * Each committed batch is walked step by step; every run keeps O(1)
 * state per series (robust EW baselines in the log domain, CUSUMs, EW
 * rates, counters) and each rule drives one alert through its
 * lifecycle.  This file holds the runs, the walk, the rules and the
 * lifecycle; the statistics are in baseline.c, the threshold table in
 * detector_config.c, messages and details in detector_msg.c.  The
 * writer thread owns a struct detector and everything in it.
 *
 * Defaults changed from DETECTION.md, and why (each checked on every
 * trace of tests/data/traces, never on one alone):
 *
 * TUNING-NOTES
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

#define LN10	2.302585092994046

static const char *const alert_kind_names[ALERT_KIND_COUNT] = {
	"nonfinite", "grad_explosion", "grad_spike", "vanishing",
	"loss_spike", "divergence", "clip_saturation", "clip_surge",
	"dead_layer", "no_gradient", "stall"
};

static const char *const alert_severity_names[] = {
	"info", "warning", "critical"
};

const char *
alert_kind_name(enum alert_kind kind)
{
	if ((unsigned)kind >= ALERT_KIND_COUNT)
		return "unknown";
	return alert_kind_names[kind];
}

int
alert_kind_parse(const char *name)
{
	int	i;

	for (i = 0; i < ALERT_KIND_COUNT; i++)
		if (strcmp(alert_kind_names[i], name) == 0)
			return i;
	return -1;
}

const char *
alert_severity_name(enum alert_severity sev)
{
	if ((unsigned)sev > ALERT_CRITICAL)
		return "unknown";
	return alert_severity_names[sev];
}

int
alert_severity_parse(const char *name)
{
	int	i;

	for (i = 0; i <= ALERT_CRITICAL; i++)
		if (strcmp(alert_severity_names[i], name) == 0)
			return i;
	return -1;
}

void
detector_events_clear(struct detector_events *list)
{
	size_t	i;

	for (i = 0; i < list->n; i++) {
		free(list->ev[i].series);
		free(list->ev[i].message);
		free(list->ev[i].detail_json);
	}
	list->n = 0;
}

void
detector_events_cleanup(struct detector_events *list)
{
	detector_events_clear(list);
	free(list->ev);
	memset(list, 0, sizeof *list);
}

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

	l = xcalloc(1, sizeof *l);
	l->name = xstrdup(name);
	l->hash = h;
	l->depth = -1;
	l->order = r->nlayers;
	l->eligible = detector_name_eligible(name);
	baseline_init(&l->base, (uint32_t)r->cfg->grad_warmup);
	l->ymax = -INFINITY;
	l->uref = NAN;
	l->zero_since = -1;
	l->v_onset = -1;
	detector_alert_init(&l->al_van);
	detector_alert_init(&l->al_dead);
	return l;
}

static void
detector_layer_free(struct layer *l)
{
	if (l == NULL)
		return;
	baseline_cleanup(&l->base);
	free(l->name);
	free(l);
}

/* Index of layer name in r, adding it when absent. */
static uint32_t
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

static struct run *
detector_run_new(struct detector *d, int64_t id)
{
	struct run	*r;
	int		 k;

	r = xcalloc(1, sizeof *r);
	r->id = id;
	r->cfg = d->cfg;
	r->last_step = -1;
	r->rebase_until = -1;
	r->warmup_over = 1;
	r->explosion_fire = -1;
	baseline_init(&r->gbase, (uint32_t)r->cfg->grad_warmup);
	cusum_reset(&r->gcusum);
	r->gprev = NAN;
	baseline_init(&r->lbase, (uint32_t)r->cfg->loss_warmup);
	cusum_reset(&r->lcusum);
	r->linit = NAN;
	r->lmin = INFINITY;
	r->glast = r->llast = NAN;
	r->glast_step = r->llast_step = -1;
	r->zero_global_since = -1;
	r->sat_since = -1;
	r->kappa_ref = r->kappa_prev = NAN;
	for (k = 0; k < ALERT_KIND_COUNT; k++)
		detector_alert_init(&r->al[k]);
	return r;
}

static void
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
	detector_config_free(r->own);
	free(r);
}

static struct run *
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

struct detector_order {
	int64_t		depth;
	uint32_t	order;
	uint32_t	idx;
};

static int
detector_order_cmp(const void *a, const void *b)
{
	const struct detector_order	*x = a, *y = b;
	int64_t				 dx, dy;

	/* Known depths first, in order; then the rest by first sight. */
	dx = x->depth >= 0 ? x->depth : INT64_MAX;
	dy = y->depth >= 0 ? y->depth : INT64_MAX;
	if (dx != dy)
		return dx < dy ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

/* r->byorder: the eligible layers from the input side to the output. */
static void
detector_run_order(struct run *r)
{
	struct detector_order	*o;
	uint32_t		 i, n = 0;

	o = xreallocarray(NULL, r->nlayers + 1, sizeof *o);
	for (i = 0; i < r->nlayers; i++) {
		if (!r->layers[i]->eligible)
			continue;
		o[n].depth = r->layers[i]->depth;
		o[n].order = r->layers[i]->order;
		o[n].idx = i;
		n++;
	}
	qsort(o, n, sizeof *o, detector_order_cmp);
	free(r->byorder);
	r->byorder = xreallocarray(NULL, n + 1, sizeof *r->byorder);
	for (i = 0; i < n; i++)
		r->byorder[i] = o[i].idx;
	r->nbyorder = n;
	r->order_dirty = 0;
	free(o);
}

/* ---- lifecycle ---------------------------------------------------------- */

/* A new event for al (kind, series) of run r, appended to d->out. */
static struct detector_event *
detector_event_add(struct detector *d, struct run *r,
    enum detector_event_type type, enum alert_kind kind, const char *series,
    const struct alert *al)
{
	struct detector_events	*out = d->out;
	struct detector_event	*ev;

	if (out->n == out->cap) {
		out->cap = out->cap == 0 ? 16 : out->cap * 2;
		out->ev = xreallocarray(out->ev, out->cap, sizeof *out->ev);
	}
	ev = &out->ev[out->n++];
	memset(ev, 0, sizeof *ev);
	ev->type = type;
	ev->run_id = r->id;
	ev->kind = kind;
	ev->severity = (enum alert_severity)al->severity;
	ev->series = xstrdup(series != NULL ? series : "");
	ev->onset_step = al->onset_step;
	ev->fire_step = al->fire_step;
	ev->resolve_step = -1;
	ev->value = ev->baseline = ev->threshold = NAN;
	return ev;
}

static int
detector_may_fire(const struct detector *d, const struct run *r,
    const struct alert *al, enum alert_kind kind, enum alert_severity sev,
    int64_t step)
{
	if (d->replay || al->firing)
		return 0;
	/* Hard, immediate kinds have no cool-down: every NaN, every stall. */
	if (kind == ALERT_NONFINITE || kind == ALERT_STALL)
		return 1;
	if (al->resolved_step >= 0 &&
	    step - al->resolved_step < (int64_t)r->cfg->cooldown &&
	    (int)sev <= (int)al->last_severity)
		return 0;
	return 1;
}

static void
detector_fire(struct detector *d, struct run *r, struct alert *al,
    enum alert_kind kind, const char *series, enum alert_severity sev,
    int64_t onset, int64_t step, const struct detector_report *rep)
{
	struct detector_event	*ev;

	if (al->window_start < 0 ||
	    step - al->window_start > (int64_t)r->cfg->flap_window) {
		al->window_start = step;
		al->cycles = 0;
	}
	if (al->cycles < UINT8_MAX)
		al->cycles++;
	al->firing = 1;
	al->severity = (uint8_t)sev;
	al->onset_step = onset >= 0 && onset <= step ? onset : step;
	al->fire_step = step;
	al->ok = 0;
	al->count = 1;
	al->peak = rep->value;
	ev = detector_event_add(d, r, DETECTOR_FIRE, kind, series, al);
	ev->value = rep->value;
	ev->baseline = rep->baseline;
	ev->threshold = rep->threshold;
	ev->message = rep->message;
	ev->detail_json = rep->detail;
}

static void
detector_update(struct detector *d, struct run *r, struct alert *al,
    enum alert_kind kind, const char *series, enum alert_severity sev,
    const struct detector_report *rep)
{
	struct detector_event	*ev;

	if (d->replay || !al->firing) {
		free(rep->message);
		free(rep->detail);
		return;
	}
	al->severity = (uint8_t)sev;
	ev = detector_event_add(d, r, DETECTOR_UPDATE, kind, series, al);
	ev->value = rep->value;
	ev->baseline = rep->baseline;
	ev->threshold = rep->threshold;
	ev->message = rep->message;
	ev->detail_json = rep->detail;
}

static void
detector_resolve(struct detector *d, struct run *r, struct alert *al,
    enum alert_kind kind, const char *series, int64_t step,
    char *message, char *detail)
{
	struct detector_event	*ev;

	if (d->replay || !al->firing) {
		free(message);
		free(detail);
		return;
	}
	ev = detector_event_add(d, r, DETECTOR_RESOLVE, kind, series, al);
	ev->resolve_step = step;
	ev->value = al->peak;
	ev->message = message;
	ev->detail_json = detail;
	al->firing = 0;
	al->last_severity = al->severity;
	al->resolved_step = step;
	al->ok = 0;
}

/*
 * Count one evaluation of a firing alert: ok says the resolve condition
 * held.  1 when it has held long enough (steps, doubled for a flapping
 * alert).
 */
static int
detector_settled(const struct run *r, struct alert *al, int ok,
    double steps)
{
	if (!ok) {
		al->ok = 0;
		return 0;
	}
	al->ok++;
	if (al->cycles > (uint8_t)r->cfg->flap_cycles)
		steps *= 2;
	return al->ok >= steps;
}

/* 1 if al fires and the point at step must not move its baseline. */
static int
detector_freezes(const struct alert *al, int64_t step)
{
	return al->firing && step >= al->fire_step;
}

/* ---- rules -------------------------------------------------------------- */

/* The batch's values at one step, gathered by detector_feed(). */
static int
detector_has(const struct detector_step *x, enum series_kind k)
{
	return (x->has >> k) & 1;
}

static void
detector_nonfinite(struct detector *d, struct run *r,
    const struct detector_step *x)
{
	const struct detector_config	*c = r->cfg;
	struct alert			*al = &r->al[ALERT_NONFINITE];
	struct alert			*ex = &r->al[ALERT_GRAD_EXPLOSION];
	struct alert			*sp = &r->al[ALERT_GRAD_SPIKE];
	struct detector_report		 rep;
	int				 bad;

	bad = (detector_has(x, SERIES_LOSS) && !isfinite(x->loss)) ||
	    (detector_has(x, SERIES_GRAD_NORM) && !isfinite(x->grad)) ||
	    (detector_has(x, SERIES_CLIP_PRE_NORM) && !isfinite(x->cpre)) ||
	    x->nnonfinite > 0;
	if (!bad) {
		if (al->firing && detector_settled(r, al, 1,
		    c->nonfinite_resolve_steps))
			detector_resolve(d, r, al, ALERT_NONFINITE, "", x->step,
			    detector_msg_resolved(r, al, ALERT_NONFINITE, "",
			    x->step, "recovered: finite values again"), NULL);
		return;
	}
	if (al->firing) {
		al->ok = 0;
		al->count++;
		return;
	}
	if (!detector_may_fire(d, r, al, ALERT_NONFINITE, ALERT_CRITICAL,
	    x->step))
		return;
	detector_msg_nonfinite(d, r, x, &rep);
	/* Supersession: the NaN ends the explosion (recording its lead). */
	if (ex->firing)
		detector_resolve(d, r, ex, ALERT_GRAD_EXPLOSION, "", x->step,
		    detector_msg_superseded(r, ex, ALERT_GRAD_EXPLOSION,
		    ALERT_NONFINITE, x->step), detector_detail_lead(ex,
		    x->step));
	if (sp->firing)
		detector_resolve(d, r, sp, ALERT_GRAD_SPIKE, "", x->step,
		    detector_msg_superseded(r, sp, ALERT_GRAD_SPIKE,
		    ALERT_NONFINITE, x->step), NULL);
	detector_fire(d, r, al, ALERT_NONFINITE, "", ALERT_CRITICAL, x->step,
	    x->step, &rep);
}

/* A one-step lr change by rebase.lr_factor or more re-baselines. */
static void
detector_lr(struct run *r, const struct detector_step *x)
{
	double	lr = x->lr;

	if (!detector_has(x, SERIES_LR) || !isfinite(lr) || lr <= 0)
		return;
	if (r->lr > 0) {
		if (fabs(log(lr / r->lr)) >= log(r->cfg->rebase_lr_factor)) {
			r->rebase_until = x->step +
			    (int64_t)r->cfg->rebase_steps;
			cusum_reset(&r->gcusum);
			cusum_reset(&r->lcusum);
		}
		if (lr > r->lr * (1 + 1e-9)) {
			if (r->nlr == 1 || r->lr_rising)
				r->lr_rising = 1;
			r->warmup_over = !r->lr_rising;
		} else if (r->lr_rising) {
			r->lr_rising = 0;
			r->warmup_over = 1;
		}
	}
	r->lr = lr;
	r->nlr++;
}

static int
detector_rebasing(const struct run *r, int64_t step)
{
	return step <= r->rebase_until;
}

/* Explosion and spike of the global gradient norm (DETECTION.md (a)). */
static void
detector_grad(struct detector *d, struct run *r,
    const struct detector_step *x)
{
	const struct detector_config	*c = r->cfg;
	struct alert			*ex = &r->al[ALERT_GRAD_EXPLOSION];
	struct alert			*sp = &r->al[ALERT_GRAD_SPIKE];
	struct alert			*nf = &r->al[ALERT_NONFINITE];
	struct baseline			*b = &r->gbase;
	struct detector_report		 rep;
	struct detector_grad_eval	 e;
	double				 a, g = x->grad;
	int				 zrules, rebasing, explode, spike;

	if (!detector_has(x, SERIES_GRAD_NORM) || !isfinite(g) || g <= 0)
		return;
	memset(&e, 0, sizeof e);
	e.step = x->step;
	e.g = g;
	e.y = baseline_ln(g);
	rebasing = detector_rebasing(r, x->step);
	a = 1 - c->grad_alpha;
	if (rebasing && a < c->rebase_a)
		a = c->rebase_a;
	if (baseline_is_ready(b)) {
		e.m = b->m;
		e.s = baseline_scale(b, c->grad_s_floor);
		e.z = (e.y - e.m) / e.s;
		e.ratio = exp(e.y - e.m);
		cusum_add(&r->gcusum, e.z, c->grad_cusum_k, c->grad_cusum_cap,
		    x->step);
		if (!isnan(r->gprev))
			r->gr = c->grad_growth_beta * r->gr +
			    (1 - c->grad_growth_beta) * (e.y - r->gprev);
		e.r = r->gr;
		e.cusum = r->gcusum.s;
		e.to_overflow = e.r > 0 ? (c->grad_overflow_ln - e.y) / e.r :
		    INFINITY;
		zrules = r->ngrad >= c->min_step;
		e.zth = c->grad_spike_z + (rebasing ? c->rebase_z_add : 0);
		e.by_cusum = zrules && e.cusum >= c->grad_explosion_cusum &&
		    e.r > 0 && e.ratio >= c->grad_explosion_ratio;
		e.by_ratio = e.ratio >= c->grad_explosion_hard_ratio;
		e.by_overflow = e.to_overflow <= c->grad_overflow_steps;
		explode = e.by_cusum || e.by_ratio || e.by_overflow;
		spike = zrules && e.z >= e.zth &&
		    e.ratio >= c->grad_spike_ratio;

		if (ex->firing) {
			if (e.ratio > ex->peak)
				ex->peak = e.ratio;
			if (detector_settled(r, ex,
			    e.z < c->grad_explosion_resolve_z,
			    c->grad_explosion_resolve_steps))
				detector_resolve(d, r, ex,
				    ALERT_GRAD_EXPLOSION, "", x->step,
				    detector_msg_resolved(r, ex,
				    ALERT_GRAD_EXPLOSION, "", x->step,
				    "recovered: the norm is back near its "
				    "baseline"), NULL);
		} else if (explode && !nf->firing && detector_may_fire(d, r,
		    ex, ALERT_GRAD_EXPLOSION, ALERT_CRITICAL, x->step)) {
			e.onset = r->gcusum.onset >= 0 ? r->gcusum.onset :
			    x->step;
			detector_msg_explosion(d, r, &e, &rep);
			if (sp->firing)
				detector_resolve(d, r, sp, ALERT_GRAD_SPIKE,
				    "", x->step, detector_msg_superseded(r,
				    sp, ALERT_GRAD_SPIKE, ALERT_GRAD_EXPLOSION,
				    x->step), NULL);
			detector_fire(d, r, ex, ALERT_GRAD_EXPLOSION, "",
			    ALERT_CRITICAL, e.onset, x->step, &rep);
			ex->peak = e.ratio;
			r->explosion_fire = x->step;
		}
		if (sp->firing) {
			if (e.ratio > sp->peak)
				sp->peak = e.ratio;
			if (detector_settled(r, sp,
			    e.z < c->grad_spike_resolve_z,
			    c->grad_spike_resolve_steps))
				detector_resolve(d, r, sp, ALERT_GRAD_SPIKE,
				    "", x->step, detector_msg_resolved(r, sp,
				    ALERT_GRAD_SPIKE, "", x->step,
				    "recovered: the norm is back near its "
				    "baseline"), NULL);
		} else if (spike && !ex->firing && !nf->firing &&
		    detector_may_fire(d, r, sp, ALERT_GRAD_SPIKE,
		    ALERT_WARNING, x->step)) {
			e.onset = x->step;
			detector_msg_spike(d, r, &e, &rep);
			detector_fire(d, r, sp, ALERT_GRAD_SPIKE, "",
			    ALERT_WARNING, x->step, x->step, &rep);
			sp->peak = e.ratio;
		}
	}
	r->gprev = e.y;
	r->glast = g;
	r->glast_step = x->step;
	r->ngrad++;
	/* Frozen while its alert fires; a warm-up always completes. */
	if (baseline_is_ready(b) && (detector_freezes(ex, x->step) ||
	    detector_freezes(sp, x->step))) {
		if (++r->gfrozen < c->grad_freeze_steps)
			return;
		/* A lasting new level: start a new baseline. */
		baseline_reset(b, (uint32_t)c->grad_warmup);
		cusum_reset(&r->gcusum);
		r->gfrozen = 0;
		if (ex->firing)
			detector_resolve(d, r, ex, ALERT_GRAD_EXPLOSION, "",
			    x->step, detector_msg_resolved(r, ex,
			    ALERT_GRAD_EXPLOSION, "", x->step, "re-baselined: "
			    "the norm settled at a new level"), NULL);
		if (sp->firing)
			detector_resolve(d, r, sp, ALERT_GRAD_SPIKE, "",
			    x->step, detector_msg_resolved(r, sp,
			    ALERT_GRAD_SPIKE, "", x->step, "re-baselined: the "
			    "norm settled at a new level"), NULL);
		return;
	}
	r->gfrozen = 0;
	baseline_add(b, e.y, a, c->grad_s_floor, c->grad_winsor);
}

/* Loss spikes and divergence (DETECTION.md (d)). */
static void
detector_loss(struct detector *d, struct run *r,
    const struct detector_step *x)
{
	const struct detector_config	*c = r->cfg;
	struct alert			*dv = &r->al[ALERT_DIVERGENCE];
	struct alert			*sp = &r->al[ALERT_LOSS_SPIKE];
	struct alert			*nf = &r->al[ALERT_NONFINITE];
	struct baseline			*b = &r->lbase;
	struct detector_report		 rep;
	struct detector_loss_eval	 e;
	double				 a, floor, loss = x->loss;
	int				 zrules, rebasing, spike;

	if (!detector_has(x, SERIES_LOSS) || !isfinite(loss))
		return;
	if (!r->lraw && loss <= 0) {
		/* A signed loss: the raw domain from now on. */
		r->lraw = 1;
		baseline_reset(b, (uint32_t)c->loss_warmup);
		cusum_reset(&r->lcusum);
		r->linit = NAN;
		r->lmin = INFINITY;
		memset(&r->llevel, 0, sizeof r->llevel);
	}
	memset(&e, 0, sizeof e);
	e.step = x->step;
	e.loss = loss;
	e.y = r->lraw ? loss : baseline_ln(loss);
	e.raw = r->lraw;
	rebasing = detector_rebasing(r, x->step);
	a = 1 - c->loss_alpha;
	if (rebasing && a < c->rebase_a)
		a = c->rebase_a;
	floor = c->loss_s_floor;
	if (baseline_is_ready(b)) {
		if (r->lraw)
			floor = fmax(c->loss_s_floor * fabs(b->m), 1e-12);
		if (isnan(r->linit))
			r->linit = b->m;
		ewmean_add(&r->llevel, e.y, 1 - c->loss_level_alpha);
		if (r->llevel.p < r->lmin)
			r->lmin = r->llevel.p;
		e.m = b->m;
		e.s = baseline_scale(b, floor);
		e.z = (e.y - e.m) / e.s;
		if (r->lraw)
			e.ratio = e.m != 0 ? 1 + (loss - e.m) / fabs(e.m) :
			    INFINITY;
		else
			e.ratio = exp(e.y - e.m);
		cusum_add(&r->lcusum, e.z, c->loss_cusum_k, c->loss_cusum_cap,
		    x->step);
		e.cusum = r->lcusum.s;
		e.linit = r->linit;
		e.level = r->llevel.p;
		zrules = r->nloss >= c->loss_min_step;
		e.zth = c->loss_spike_z + (rebasing ? c->rebase_z_add : 0);
		spike = zrules && e.z >= e.zth &&
		    e.ratio >= c->loss_spike_ratio;
		e.by_cusum = zrules &&
		    e.cusum >= c->loss_divergence_cusum;
		e.by_init = zrules && !r->lraw &&
		    e.level >= r->linit + log(c->loss_init_factor) &&
		    r->lmin <= r->linit - log(c->loss_init_progress);
		e.by_linger = sp->firing &&
		    x->step - sp->fire_step >= (int64_t)c->loss_linger_steps;

		if (dv->firing) {
			/* On the unfrozen level: single noisy steps do not reset it. */
			if (detector_settled(r, dv, e.level < e.m +
			    c->loss_resolve_z * e.s && !e.by_init,
			    c->loss_divergence_resolve_steps))
				detector_resolve(d, r, dv, ALERT_DIVERGENCE,
				    "", x->step, detector_msg_resolved(r, dv,
				    ALERT_DIVERGENCE, "", x->step, "recovered: "
				    "the loss is back near its baseline"),
				    NULL);
		} else if ((e.by_cusum || e.by_init || e.by_linger) &&
		    !nf->firing && detector_may_fire(d, r, dv,
		    ALERT_DIVERGENCE, ALERT_CRITICAL, x->step)) {
			e.onset = e.by_linger ? sp->onset_step :
			    e.by_cusum && r->lcusum.onset >= 0 ?
			    r->lcusum.onset : x->step;
			detector_msg_divergence(d, r, &e, &rep);
			if (sp->firing)
				detector_resolve(d, r, sp, ALERT_LOSS_SPIKE,
				    "", x->step, detector_msg_superseded(r,
				    sp, ALERT_LOSS_SPIKE, ALERT_DIVERGENCE,
				    x->step), NULL);
			detector_fire(d, r, dv, ALERT_DIVERGENCE, "",
			    ALERT_CRITICAL, e.onset, x->step, &rep);
		}
		if (sp->firing) {
			if (e.ratio > sp->peak)
				sp->peak = e.ratio;
			if (detector_settled(r, sp, e.z < c->loss_resolve_z,
			    c->loss_resolve_steps))
				detector_resolve(d, r, sp, ALERT_LOSS_SPIKE,
				    "", x->step, detector_msg_resolved(r, sp,
				    ALERT_LOSS_SPIKE, "", x->step, "recovered: "
				    "the loss is back near its baseline"),
				    NULL);
		} else if (spike && !dv->firing && detector_may_fire(d, r, sp,
		    ALERT_LOSS_SPIKE, ALERT_WARNING, x->step)) {
			e.onset = x->step;
			detector_msg_loss_spike(d, r, &e, &rep);
			detector_fire(d, r, sp, ALERT_LOSS_SPIKE, "",
			    ALERT_WARNING, x->step, x->step, &rep);
			sp->peak = e.ratio;
		}
	}
	r->llast = loss;
	r->llast_step = x->step;
	r->nloss++;
	if (baseline_is_ready(b) && (detector_freezes(dv, x->step) ||
	    detector_freezes(sp, x->step))) {
		if (++r->lfrozen < c->loss_freeze_steps)
			return;
		baseline_reset(b, (uint32_t)c->loss_warmup);
		cusum_reset(&r->lcusum);
		r->lfrozen = 0;
		if (dv->firing)
			detector_resolve(d, r, dv, ALERT_DIVERGENCE, "",
			    x->step, detector_msg_resolved(r, dv,
			    ALERT_DIVERGENCE, "", x->step, "re-baselined: the "
			    "loss settled at a new level"), NULL);
		if (sp->firing)
			detector_resolve(d, r, sp, ALERT_LOSS_SPIKE, "",
			    x->step, detector_msg_resolved(r, sp,
			    ALERT_LOSS_SPIKE, "", x->step, "re-baselined: the "
			    "loss settled at a new level"), NULL);
		return;
	}
	r->lfrozen = 0;
	baseline_add(b, e.y, a, floor, c->loss_winsor);
}

/*
 * Each tensor present at this step: its attribution baseline, its
 * vanishing level, and the dead-layer counters and alert.
 */
static void
detector_layers(struct detector *d, struct run *r,
    const struct detector_step *x)
{
	const struct detector_config	*c = r->cfg;
	struct layer			*l;
	struct detector_report		 rep;
	double				 v, y, a, va;
	size_t				 i;
	int				 frozen, global_pos;
	uint32_t			 need;

	frozen = detector_freezes(&r->al[ALERT_GRAD_EXPLOSION], x->step) ||
	    detector_freezes(&r->al[ALERT_GRAD_SPIKE], x->step);
	a = 1 - c->grad_alpha;
	if (detector_rebasing(r, x->step) && a < c->rebase_a)
		a = c->rebase_a;
	va = 1 - c->vanish_alpha;
	global_pos = detector_has(x, SERIES_GRAD_NORM) ? x->grad > 0 :
	    x->npositive > 0;
	for (i = 0; i < x->nl; i++) {
		l = r->layers[d->lslot[i]];
		v = d->lval[i];
		l->last = v;
		if (!isfinite(v))
			continue;
		if (v <= c->dead_zero) {
			if (global_pos) {
				if (l->zero_run++ == 0)
					l->zero_since = x->step;
				l->nonzero_run = 0;
			}
		} else {
			l->ever_nonzero = 1;
			l->nonzero_run++;
			l->zero_run = 0;
			y = baseline_ln(v);
			if (baseline_is_ready(&l->base)) {
				/* z = dy / scale, worked out only for messages. */
				l->dy = y - l->base.m;
				l->zv = l->base.v;
				l->z_step = x->step;
			}
			if (!frozen || !baseline_is_ready(&l->base))
				baseline_add(&l->base, y, a, c->grad_s_floor,
				    c->grad_winsor);
			if (l->ybar.n == 0)
				l->first_step = x->step;
			ewmean_add(&l->ybar, y - l->half_ln_numel, va);
		}
		/* Dead layer: exact zeros while others learn. */
		need = (uint32_t)c->dead_steps;
		if (l->zero_run >= need && l->ever_nonzero && !l->died) {
			l->died = 1;
			r->ndied++;
		} else if (l->died && l->nonzero_run >=
		    (uint32_t)c->dead_resolve_steps) {
			l->died = 0;
			r->ndied--;
		}
		if (l->al_dead.firing) {
			if (detector_settled(r, &l->al_dead,
			    l->nonzero_run > 0, c->dead_resolve_steps))
				detector_resolve(d, r, &l->al_dead,
				    ALERT_DEAD_LAYER, l->name, x->step,
				    detector_msg_resolved(r, &l->al_dead,
				    ALERT_DEAD_LAYER, l->name, x->step,
				    "recovered: non-zero gradients again"),
				    NULL);
		} else if (l->zero_run >= need) {
			enum alert_severity sev = l->ever_nonzero ?
			    ALERT_WARNING : ALERT_INFO;

			if (detector_may_fire(d, r, &l->al_dead,
			    ALERT_DEAD_LAYER, sev, x->step)) {
				detector_msg_dead(d, r, l, x, &rep);
				detector_fire(d, r, &l->al_dead,
				    ALERT_DEAD_LAYER, l->name, sev,
				    l->zero_since, x->step, &rep);
			}
		}
	}
}

/* Zero global norm with a finite loss, or a share of dead tensors. */
static void
detector_no_gradient(struct detector *d, struct run *r,
    const struct detector_step *x)
{
	const struct detector_config	*c = r->cfg;
	struct alert			*al = &r->al[ALERT_NO_GRADIENT];
	struct detector_report		 rep;
	int				 by_global, by_share, loss_ok;

	if (detector_has(x, SERIES_GRAD_NORM) && isfinite(x->grad)) {
		loss_ok = !detector_has(x, SERIES_LOSS) || isfinite(x->loss);
		if (x->grad <= c->dead_zero && loss_ok) {
			if (r->zero_global++ == 0)
				r->zero_global_since = x->step;
		} else if (x->grad > c->dead_zero)
			r->zero_global = 0;
	}
	by_global = r->zero_global >= (uint32_t)c->dead_global_steps;
	by_share = r->ndied > 0 && r->nlayers > 0 &&
	    (double)r->ndied >= c->dead_share * (double)r->nlayers;
	if (al->firing) {
		if (detector_settled(r, al, !by_global && !by_share,
		    c->dead_resolve_steps))
			detector_resolve(d, r, al, ALERT_NO_GRADIENT, "",
			    x->step, detector_msg_resolved(r, al,
			    ALERT_NO_GRADIENT, "", x->step, "recovered: "
			    "gradients flow again"), NULL);
	} else if ((by_global || by_share) && detector_may_fire(d, r, al,
	    ALERT_NO_GRADIENT, ALERT_CRITICAL, x->step)) {
		detector_msg_no_gradient(d, r, x, by_global, &rep);
		detector_fire(d, r, al, ALERT_NO_GRADIENT, "", ALERT_CRITICAL,
		    by_global ? r->zero_global_since : x->step, x->step, &rep);
	}
}

/* Fill e for a message about l. */
static void
detector_vanish_eval(struct detector_vanish_eval *e, const struct layer *l,
    double med, double qlast, double dq, uint32_t n, uint32_t nfiring)
{
	memset(e, 0, sizeof *e);
	e->l = l;
	e->med = med;
	e->qlast = qlast;
	e->dq = dq;
	e->n = n;
	e->nfiring = nfiring;
}

/*
 * Vanishing gradients per tensor (DETECTION.md (b)): V1 against its own
 * peak, V2 against the median tensor, V3 the depth profile.  O(L) a
 * step, with selection on a reused buffer.  A first pass grades every
 * tensor, so that an alert fires at once at critical when half the net
 * is affected; a second drives the alerts.
 */
static void
detector_vanishing(struct detector *d, struct run *r,
    const struct detector_step *x)
{
	const struct detector_config	*c = r->cfg;
	struct layer			*l;
	struct detector_report		 rep;
	struct detector_vanish_eval	 e;
	double				 med, dq = 0, qlast = NAN;
	double				 v1, v2, v3, v3i, res;
	uint32_t			 i, n = 0, q, nwarn = 0;
	int				 sev, crit;

	if (r->order_dirty)
		detector_run_order(r);
	if (r->nbyorder == 0)
		return;
	if (d->captmp < r->nbyorder) {
		d->captmp = r->nbyorder * 2;
		d->tmp = xreallocarray(d->tmp, d->captmp, sizeof *d->tmp);
	}
	/* The levels in depth order; selection permutes only slices. */
	for (i = 0; i < r->nbyorder; i++) {
		l = r->layers[r->byorder[i]];
		if (l->ybar.n > 0)
			d->tmp[n++] = l->ybar.p;
	}
	if (n < (uint32_t)c->vanish_min_layers)
		return;
	q = n / 4 > 0 ? n / 4 : 1;
	if (r->nsteps >= c->vanish_v3_start) {
		qlast = baseline_median(d->tmp + n - q, q);
		dq = baseline_median(d->tmp, q) - qlast;
	}
	med = baseline_median(d->tmp, n);
	v1 = c->vanish_v1_decades * LN10;
	v2 = c->vanish_v2_decades * LN10;
	v3 = c->vanish_v3_decades * LN10;
	v3i = c->vanish_v3_info_decades * LN10;
	res = c->vanish_resolve_decades * LN10;

	for (i = 0; i < r->nbyorder; i++) {
		l = r->layers[r->byorder[i]];
		l->sev = -1;
		if (l->ybar.n == 0)
			continue;
		if (!l->has_ref && l->ybar.n >= c->vanish_t_ref &&
		    r->warmup_over) {
			l->has_ref = 1;
			l->uref = l->ybar.p - med;
			l->ymax = l->ybar.p;
		}
		l->c1 = l->c2 = l->c3 = 0;
		if (l->has_ref) {
			if (l->ybar.p > l->ymax)
				l->ymax = l->ybar.p;
			l->c1 = l->ymax - l->ybar.p;
			l->c2 = l->uref - (l->ybar.p - med);
		}
		if (dq <= -v3i)
			l->c3 = qlast - l->ybar.p;
		if (l->c1 >= v1 || l->c2 >= v2) {
			if (l->v_bad++ == 0)
				l->v_onset = x->step;
		} else
			l->v_bad = 0;
		if (l->v_bad >= c->vanish_persist || (dq <= -v3 && l->c3 >= v3))
			l->sev = ALERT_WARNING;
		else if (l->c3 >= v3i)
			l->sev = ALERT_INFO;
		if (l->sev >= ALERT_WARNING || (l->al_van.firing &&
		    l->al_van.severity >= ALERT_WARNING))
			nwarn++;
	}
	/* Half the tensors or more: the net, not a layer, is broken. */
	crit = nwarn > 0 && (double)nwarn >= c->vanish_critical_share * n;

	for (i = 0; i < r->nbyorder; i++) {
		l = r->layers[r->byorder[i]];
		if (l->ybar.n == 0)
			continue;
		sev = l->sev;
		if (sev == ALERT_WARNING && crit)
			sev = ALERT_CRITICAL;
		if (l->al_van.firing) {
			if (detector_settled(r, &l->al_van, l->c1 < res &&
			    l->c2 < res && l->c3 < res,
			    c->vanish_resolve_steps))
				detector_resolve(d, r, &l->al_van,
				    ALERT_VANISHING, l->name, x->step,
				    detector_msg_resolved(r, &l->al_van,
				    ALERT_VANISHING, l->name, x->step,
				    "recovered: the gradient is back within a "
				    "decade"), NULL);
			else if (sev > (int)l->al_van.severity ||
			    (crit && l->al_van.severity == ALERT_WARNING)) {
				detector_vanish_eval(&e, l, med, qlast, dq, n,
				    nwarn);
				detector_msg_vanishing(d, r, &e, &rep);
				detector_update(d, r, &l->al_van,
				    ALERT_VANISHING, l->name, crit ?
				    ALERT_CRITICAL : (enum alert_severity)sev,
				    &rep);
			}
		} else if (sev >= 0 && detector_may_fire(d, r, &l->al_van,
		    ALERT_VANISHING, (enum alert_severity)sev, x->step)) {
			detector_vanish_eval(&e, l, med, qlast, dq, n, nwarn);
			detector_msg_vanishing(d, r, &e, &rep);
			detector_fire(d, r, &l->al_van, ALERT_VANISHING,
			    l->name, (enum alert_severity)sev,
			    l->v_bad >= c->vanish_persist ? l->v_onset :
			    l->first_step, x->step, &rep);
		}
	}
}

/* Clipping pathologies (DETECTION.md (e)), from the clip series. */
static void
detector_clip(struct detector *d, struct run *r,
    const struct detector_step *x)
{
	const struct detector_config	*c = r->cfg;
	struct alert			*sat = &r->al[ALERT_CLIP_SATURATION];
	struct alert			*sur = &r->al[ALERT_CLIP_SURGE];
	struct detector_report		 rep;
	double				 clipped;
	int				 crit, active, early, surge;

	if (!detector_has(x, SERIES_CLIP_PRE_NORM) ||
	    !detector_has(x, SERIES_CLIP_MAX_NORM) || !isfinite(x->cpre) ||
	    !isfinite(x->cmax) || x->cmax <= 0)
		return;
	clipped = x->cpre > x->cmax ? 1 : 0;
	ewmean_add(&r->ps, clipped, 1 / c->clip_short);
	if (!detector_freezes(sur, x->step))
		ewmean_add(&r->pl, clipped, 1 / c->clip_long);
	if (clipped) {
		ewmean_add(&r->kappa, log(x->cpre / x->cmax), 1 / c->clip_short);
		if (++r->kappa_n >= 500) {
			r->kappa_prev = r->kappa_ref;
			r->kappa_ref = r->kappa.p;
			r->kappa_n = 0;
		}
	}
	r->nclip++;
	if (r->ps.p >= c->clip_saturation_rate) {
		if (r->sat_run++ == 0)
			r->sat_since = x->step;
	} else
		r->sat_run = 0;
	active = r->nclip >= c->clip_start && r->warmup_over;
	early = r->nclip >= c->clip_early_start && r->warmup_over;
	crit = r->ps.p >= c->clip_critical_rate && r->kappa.n > 0 &&
	    (r->kappa.p >= log(c->clip_critical_ratio) ||
	    (!isnan(r->kappa_prev) && r->kappa.p - r->kappa_prev > log(2)));
	if (sat->firing) {
		if (detector_settled(r, sat,
		    r->ps.p <= c->clip_saturation_resolve,
		    c->clip_resolve_steps))
			detector_resolve(d, r, sat, ALERT_CLIP_SATURATION, "",
			    x->step, detector_msg_resolved(r, sat,
			    ALERT_CLIP_SATURATION, "", x->step, "recovered: "
			    "clipping is occasional again"), NULL);
		else if (crit && sat->severity < ALERT_CRITICAL) {
			detector_msg_clip(d, r, x, ALERT_CLIP_SATURATION, 1,
			    &rep);
			detector_update(d, r, sat, ALERT_CLIP_SATURATION, "",
			    ALERT_CRITICAL, &rep);
		}
	} else if (r->sat_run >= c->clip_saturation_steps &&
	    ((crit && early) || active)) {
		enum alert_severity sev = crit ? ALERT_CRITICAL : ALERT_WARNING;

		if (detector_may_fire(d, r, sat, ALERT_CLIP_SATURATION, sev,
		    x->step)) {
			detector_msg_clip(d, r, x, ALERT_CLIP_SATURATION, crit,
			    &rep);
			detector_fire(d, r, sat, ALERT_CLIP_SATURATION, "", sev,
			    r->sat_since, x->step, &rep);
		}
	}
	surge = active && r->ps.p >= c->clip_surge_rate &&
	    r->ps.p >= c->clip_surge_factor * r->pl.p;
	if (sur->firing) {
		if (detector_settled(r, sur,
		    r->ps.p <= c->clip_surge_resolve_factor * r->pl.p,
		    c->clip_resolve_steps))
			detector_resolve(d, r, sur, ALERT_CLIP_SURGE, "",
			    x->step, detector_msg_resolved(r, sur,
			    ALERT_CLIP_SURGE, "", x->step, "recovered: the "
			    "clip rate is back to its long-run level"),
			    NULL);
	} else if (surge && !sat->firing && detector_may_fire(d, r, sur,
	    ALERT_CLIP_SURGE, ALERT_WARNING, x->step)) {
		detector_msg_clip(d, r, x, ALERT_CLIP_SURGE, 0, &rep);
		detector_fire(d, r, sur, ALERT_CLIP_SURGE, "", ALERT_WARNING,
		    x->step, x->step, &rep);
	}
}

/* The run's rhythm and the end of a stall: a new step arrived. */
static void
detector_rhythm(struct detector *d, struct run *r,
    const struct detector_step *x)
{
	struct alert	*al = &r->al[ALERT_STALL];
	double		 t;

	t = detector_has(x, SERIES_TIME) ? x->time : d->now;
	if (r->nsteps > 0 && t > r->last_time)
		ewmean_add(&r->dt_step, log(t - r->last_time),
		    r->cfg->stall_alpha);
	r->last_time = t;
	if (d->now > r->last_advance)
		r->last_advance = d->now;
	if (al->firing)
		detector_resolve(d, r, al, ALERT_STALL, "", x->step,
		    detector_msg_stall_end(r, al, x->step, d->now), NULL);
}

/* One new step of run r. */
static void
detector_step(struct detector *d, struct run *r,
    const struct detector_step *x)
{
	detector_rhythm(d, r, x);
	r->last_step = x->step;
	r->nsteps++;
	if (detector_has(x, SERIES_SKIPPED) && x->skipped != 0) {
		/* A loss-scaler overflow: benign, counted, never a baseline. */
		r->nskipped++;
		return;
	}
	detector_nonfinite(d, r, x);
	detector_lr(r, x);
	detector_layers(d, r, x);	/* first: attribution z for the rules */
	detector_grad(d, r, x);
	detector_loss(d, r, x);
	detector_no_gradient(d, r, x);
	detector_vanishing(d, r, x);
	detector_clip(d, r, x);
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
	const struct batch_series	*s;
	struct detector_step		 x;
	struct run			*r;
	int64_t				*steps, step;
	size_t				 i, j, nsteps, nlayer = 0;
	size_t				 scalar[SERIES_KIND_COUNT];
	double				 v;
	int				 sorted = 1, advanced = 0;

	r = detector_run_get(d, run_id);
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
		} else if (series_kind_is_scalar(s->kind))
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
		for (j = 0; j < nlayer; j++) {
			if (!detector_take(d, d->slot[j], step, &v))
				continue;
			d->lslot[x.nl] = d->view[d->slot[j]].layer;
			d->lval[x.nl++] = v;
			if (!isfinite(v))
				x.nnonfinite++;
			else if (v > 0)
				x.npositive++;
		}
		detector_step(d, r, &x);
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
	if ((kind == ALERT_VANISHING || kind == ALERT_DEAD_LAYER) &&
	    series != NULL && *series != '\0') {
		idx = detector_layer_get(r, series);	/* may move r->layers */
		l = r->layers[idx];
		al = kind == ALERT_VANISHING ? &l->al_van : &l->al_dead;
	} else
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
					detector_update(d, r, al, ALERT_STALL, "",
					    ALERT_CRITICAL, &rep);
				} else if (!al->firing) {
					detector_msg_stall(r, gap, typ,
					    deadline, ALERT_CRITICAL, &rep);
					detector_fire(d, r, al, ALERT_STALL, "",
					    ALERT_CRITICAL, r->last_step,
					    r->last_step, &rep);
				}
			} else if (gap >= deadline && !al->firing) {
				detector_msg_stall(r, gap, typ, deadline,
				    ALERT_WARNING, &rep);
				detector_fire(d, r, al, ALERT_STALL, "",
				    ALERT_WARNING, r->last_step, r->last_step,
				    &rep);
			}
			if (al->firing && gap > al->peak)
				al->peak = gap;
		}
	d->out = NULL;
}
