/* SPDX-License-Identifier: MIT */
/*
 * detector: gradwatch's health rules (DETECTION.md); see detector.h.
 * Each committed batch is walked step by step; every run keeps O(1)
 * state per series (robust EW baselines in the log domain, CUSUMs, EW
 * rates, counters) and each rule drives one alert through its
 * lifecycle.  This file holds the runs and tensors, the walk through a
 * batch, restore, the stall timer and the alert lifecycle; the rules
 * are in detector_rules.c, the statistics in baseline.c, the threshold
 * table in detector_config.c, messages and details in detector_msg.c.
 * One thread owns a struct detector and everything in it: the writer while
 * it rebuilds the state after a restart, then the detection thread.
 *
 * Defaults and rules changed from DETECTION.md, and why.  Checked on all
 * 15 traces of tests/data/traces and on 10 more recorded with the same
 * recorder but not shipped (5 healthy: SGDR with a x0.1 decay, a resume
 * from a checkpoint, batch-4 tanh Adam, fp16 with a 2^24 initial scale,
 * a 3-block transformer without clipping; and clip, Inf-hook, scale
 * collapse, random-token and saturation runs).  Margins on the 7 shipped
 * healthy traces: grad z at ratio >= 3 at most 3.1 (fires at 6), CUSUM
 * 3.2 (12), loss z 3.5 (6), loss CUSUM 2.1 (20), V1 0.41 decades (3),
 * V2 0.19 (2), clip rate 0.24 (0.9).
 *
 * - vanish.persist 50 (was 100).  The level is already a 100-step EMA;
 *   100 more steps of hold find a 10^3 collapse at t only at t + 231
 *   (test_vanishing_midrun), past the 200-step goal; 50 gives t + 181.
 *   The healthy peaks above leave the margin intact.
 * - divergence "loss >= L_init" is judged on an unfrozen EW level of the
 *   loss (loss.level_alpha) and only once the level had fallen 1.5x
 *   below L_init (loss.init_progress).  vanishing_deep_tanh never learns:
 *   its level sits 0.1% below L_init for 800 steps (1.6105 / 1.6120), so
 *   the literal rule is a coin flip; healthy_adam_batch2 has single
 *   losses 24x their median, so a per-value rule would page.
 * - divergence resolves (DETECTION.md gives no rule) when the level is
 *   within loss.resolve_z scales of the baseline for 100 steps: with
 *   "z < 2 for 100 steps in a row" heavy-tailed losses reset the count;
 *   explode_rnn_tanh_high_lr's 5-step burst at 307 stayed firing 421
 *   steps, now 317.
 * - grad_explosion by CUSUM also needs the norm above its value where
 *   the CUSUM left 0.  The EW growth r (0.8) remembers a burst's first
 *   jump while the burst decays: 5 random-token batches (held-out run,
 *   now tuned on) fired an explosion 1 step after the burst.  The two
 *   exploding traces are unchanged (leads 12 and 20 steps).
 * - clip_saturation's critical form (p_s >= 0.99 and clipped norms
 *   >= 10x the threshold) runs from clip.early_start = 200 clip steps;
 *   the warning form keeps T_clip = 1000.  A threshold 85x too low is a
 *   misconfiguration at any phase: clip_saturated_tiny_threshold fires
 *   at 199 instead of 999; healthy clip rates peak at 0.24 (GRU) and
 *   0.12 (transformer).  Clip rates are EW means with a warm start.
 * - grad.freeze_steps F = 1000 (DETECTION.md gives F for the loss only).
 * - nonfinite and stall have no cool-down: every NaN at delay 0.
 * - Tensors without a shape: a name component "bias*", "*norm*", "ln",
 *   "bn", "emb*", "wte", "wpe" marks a 1-D or sparse tensor, not eligible
 *   for vanishing (so vanishing_deep_tanh's biases are found through
 *   their layers' weights).  Without depth, order of first sight.
 * - V3 names tensors: with the profile at <= -3 decades, every tensor
 *   3 decades below the last quartile's median fires (info at 2).
 * - no_gradient's "10% of tensors dead" counts tensors that died, not
 *   ones never active (unused parameters are info only).
 * - The loss scaler's rules (overflow rate, collapse) are raised as
 *   nonfinite on the series "loss_scale"; the API has no kind of its own.
 * - min_step counts a series' points, not step numbers, so a run that
 *   starts at step 10000 waits too; loss.min_step is 150 (the early
 *   descent DETECTION.md (d) mentions).
 * - Stall rhythm: the longer of the step interval and the interval
 *   between batches, so a client that buffers is not "stalled".
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

static const char *const alert_kind_names[ALERT_KIND_COUNT] = {
	"nonfinite", "grad_explosion", "grad_spike", "vanishing",
	"loss_spike", "divergence", "clip_saturation", "clip_surge",
	"dead_layer", "no_gradient", "stall", "instability"
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

static void
detector_layer_free(struct layer *l)
{
	if (l == NULL)
		return;
	baseline_cleanup(&l->base);
	baseline_cleanup(&l->adam);
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

static struct run *
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
	for (i = 0; i < ALERT_KIND_COUNT; i++)
		detector_group_cleanup(&r->grp[i]);
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

struct detector_order {
	int64_t		depth;
	uint32_t	order;
	uint32_t	idx;
};

static int
detector_order_cmp(const void *a, const void *b)
{
	const struct detector_order	*x = a, *y = b;

	return detector_depth_cmp(x->depth, x->order, y->depth, y->order);
}

void
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
struct detector_event *
detector_event_of(struct detector *d, struct run *r,
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
	ev->prev_severity = ev->severity;
	ev->series = xstrdup(series != NULL ? series : "");
	ev->onset_step = al->onset_step;
	ev->fire_step = al->fire_step;
	ev->resolve_step = -1;
	ev->value = ev->baseline = ev->threshold = NAN;
	return ev;
}

int
detector_alert_may_fire(const struct detector *d, const struct run *r,
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

/* Give ev the report's figures; the event takes its strings. */
static void
detector_event_report(struct detector_event *ev,
    const struct detector_report *rep)
{
	ev->value = rep->value;
	ev->baseline = rep->baseline;
	ev->threshold = rep->threshold;
	ev->message = rep->message;
	ev->detail_json = rep->detail;
}

void
detector_alert_arm(const struct run *r, struct alert *al,
    enum alert_severity sev, int64_t onset, int64_t step, double value)
{
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
	al->peak = value;
}

void
detector_alert_disarm(struct alert *al, int64_t step)
{
	al->firing = 0;
	al->last_severity = al->severity;
	al->resolved_step = step;
	al->ok = 0;
}

void
detector_alert_fire(struct detector *d, struct run *r, struct alert *al,
    enum alert_kind kind, const char *series, enum alert_severity sev,
    int64_t onset, int64_t step, const struct detector_report *rep)
{
	struct detector_event	*ev;

	detector_alert_arm(r, al, sev, onset, step, rep->value);
	ev = detector_event_of(d, r, DETECTOR_FIRE, kind, series, al);
	detector_event_report(ev, rep);
}

void
detector_alert_update(struct detector *d, struct run *r, struct alert *al,
    enum alert_kind kind, const char *series, enum alert_severity sev,
    const struct detector_report *rep)
{
	struct detector_event	*ev;
	enum alert_severity	 prev;

	if (d->replay || !al->firing) {
		free(rep->message);
		free(rep->detail);
		return;
	}
	prev = (enum alert_severity)al->severity;
	al->severity = (uint8_t)sev;
	ev = detector_event_of(d, r, DETECTOR_UPDATE, kind, series, al);
	ev->prev_severity = prev;
	detector_event_report(ev, rep);
}

void
detector_alert_resolve(struct detector *d, struct run *r, struct alert *al,
    enum alert_kind kind, const char *series, int64_t step,
    char *message, char *detail)
{
	struct detector_event	*ev;

	if (d->replay || !al->firing) {
		free(message);
		free(detail);
		return;
	}
	ev = detector_event_of(d, r, DETECTOR_RESOLVE, kind, series, al);
	ev->resolve_step = step;
	ev->value = al->peak;
	ev->message = message;
	ev->detail_json = detail;
	detector_alert_disarm(al, step);
}

/*
 * Count one evaluation of a firing alert: ok says the resolve condition
 * held.  1 when it has held long enough (steps, doubled for a flapping
 * alert).
 */
int
detector_alert_settled(const struct run *r, struct alert *al, int ok,
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
int
detector_alert_freezes(const struct alert *al, int64_t step)
{
	return al->firing && step >= al->fire_step;
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
	const struct batch_series	*s;
	struct detector_step		 x;
	struct run			*r;
	int64_t				*steps, step;
	size_t				 i, j, nsteps, nlayer = 0, nadam = 0;
	size_t				 nlayer_now, scalar[SERIES_KIND_COUNT];
	double				 v;
	int				 sorted = 1, advanced = 0, layer_bad = 0;

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
