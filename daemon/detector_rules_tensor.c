/* SPDX-License-Identifier: MIT */
/*
 * detector_rules_tensor: the detector's rules about tensors, one step
 * of one run at a time: each tensor's levels and attribution baseline,
 * dead layers and missing gradients, tensors never active, a dominant
 * tensor, vanishing gradients (DETECTION.md (b), (f)) and Adam's ratio.
 * Called by detector_rules_step(); the detector's thread.
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

static void	detector_dominant(struct detector *, struct run *,
		    struct layer *, const struct detector_step *, double);

/* Whether this step updates the tensor levels (every layer.every steps). */
static int
detector_layer_sampled(const struct run *r)
{
	return (r->nsteps - 1) % (uint64_t)r->cfg->layer_every == 0;
}

/*
 * Each tensor present at this step.  Every layer.every steps (the steps
 * detector_feed reads the tensors on, besides those that may need them:
 * a NaN, a tensor not seen yet, an unusual global norm): its attribution
 * baseline, its vanishing levels (decays scaled to the stride, so that
 * they mean the same number of steps), its runs of zeros (counted in
 * steps), the dead-layer alert and the dominant-tensor rule.  On other
 * steps read, only what attribution and NaN need.  Sampling keeps the
 * detector's cost a point low on nets of many tensors; the levels are
 * slow, and a sudden change shows in the global norm first.
 */

void
detector_layers(struct detector *d, struct run *r,
    const struct detector_step *x)
{
	const struct detector_config	*c = r->cfg;
	struct layer			*l;
	struct detector_report		 rep;
	double				 v, y, a, va, fa;
	size_t				 i;
	int				 frozen, global_pos, sample;
	uint32_t			 need, every;

	frozen = detector_alert_freezes(&r->al[ALERT_GRAD_EXPLOSION], x->step) ||
	    detector_alert_freezes(&r->al[ALERT_GRAD_SPIKE], x->step);
	a = 1 - c->grad_alpha;
	if (detector_rebasing(r, x->step) && a < c->rebase_a)
		a = c->rebase_a;
	va = 1 - c->vanish_alpha;
	fa = 0.1;
	/* Levels every layer.every steps, with the decays over as many. */
	every = (uint32_t)c->layer_every;
	sample = detector_layer_sampled(r);
	if (sample && every > 1) {
		a = 1 - pow(1 - a, every);
		va = 1 - pow(1 - va, every);
		fa = 1 - pow(1 - fa, every);
	}
	need = (uint32_t)c->dead_steps;
	global_pos = detector_has(x, SERIES_GRAD_NORM) ? x->grad > 0 :
	    x->npositive > 0;
	for (i = 0; i < x->nl; i++) {
		l = r->layers[d->lslot[i]];
		v = d->lval[i];
		l->last = v;
		if (l->ngrad++ == 0)
			r->nunseen--;
		if (!isfinite(v))
			continue;
		if (v > c->dead_zero)
			l->z_step = x->step;	/* attribution: see layer_z() */
		if (!sample)
			continue;	/* a step read for attribution or NaN */
		/* Runs of zeros and non-zeros, in steps, seen every `every`. */
		if (v <= c->dead_zero) {
			if (global_pos) {
				if (l->zero_run == 0)
					l->zero_since = x->step;
				l->zero_run = (uint32_t)(x->step -
				    l->zero_since + 1);
				l->nonzero_run = 0;
			}
		} else {
			l->ever_nonzero = 1;
			if (l->nonzero_run == 0)
				l->nonzero_since = x->step;
			l->nonzero_run = (uint32_t)(x->step - l->nonzero_since +
			    1);
			l->zero_run = 0;
			if (l->first_step < 0)
				l->first_step = x->step;
			y = baseline_ln(v);
			if (!frozen || !baseline_is_ready(&l->base))
				baseline_add(&l->base, y, a, c->grad_s_floor,
				    c->grad_winsor);
			ewmean_add(&l->ybar, y - l->half_ln_numel, va);
			ewmean_add(&l->yfast, y - l->half_ln_numel, fa);
			/* A fall: the fast level a decade under the slow one. */
			if ((double)l->ybar.n * every >= 20 && l->fall_since < 0 &&
			    l->yfast.p < l->ybar.p - LN10) {
				l->fall_since = x->step;
				l->fall_from = l->ybar.p;
			} else if (l->fall_since >= 0 &&
			    l->yfast.p >= l->fall_from - LN10 / 2)
				l->fall_since = -1;
		}
		/* Dead layer: exact zeros while others learn. */
		if (l->zero_run >= need && l->ever_nonzero && !l->died) {
			l->died = 1;
			r->ndied++;
		} else if (l->died && l->nonzero_run >=
		    (uint32_t)c->dead_resolve_steps) {
			l->died = 0;
			r->ndied--;
		}
		/* A tensor that never had one is never_active's (below). */
		if (l->al_dead.firing) {
			if (detector_alert_settled(r, &l->al_dead,
			    l->nonzero_run > 0, (c->dead_resolve_steps + every -
			    1) / every))
				detector_member_resolve(d, r, l, ALERT_DEAD_LAYER,
				    x->step, detector_msg_resolved(r,
				    &l->al_dead, ALERT_DEAD_LAYER, l->name,
				    x->step, "recovered: non-zero gradients "
				    "again"));
		} else if (l->zero_run >= need && l->ever_nonzero &&
		    detector_alert_may_fire(d, r, &l->al_dead, ALERT_DEAD_LAYER,
		    ALERT_WARNING, x->step)) {
			detector_msg_dead(d, r, l, x, &rep);
			detector_member_fire(d, r, l, ALERT_DEAD_LAYER,
			    ALERT_WARNING, l->zero_since, x->step, &rep);
		}
		detector_dominant(d, r, l, x, v);
	}
}

/*
 * One tensor grown by decades over its own low and now carrying most
 * of the global norm: an explosion in the making that the global norm
 * hides while the others stay put (a loss-scale bug on one embedding,
 * say).  Told as grad_explosion on that tensor (a pattern).
 */
static void
detector_dominant(struct detector *d, struct run *r, struct layer *l,
    const struct detector_step *x, double v)
{
	const struct detector_config	*c = r->cfg;
	struct alert			*al = &l->al_dom;
	struct detector_report		 rep;
	double				 grown, share;
	enum alert_severity		 sev;
	int				 bad;

	if (!isfinite(v) || v <= c->dead_zero ||
	    (double)l->ybar.n * c->layer_every < 50)
		return;
	if (l->ybar.p < l->ylow) {
		l->ylow = l->ybar.p;
		l->ylow_step = x->step;
	}
	if (!detector_has(x, SERIES_GRAD_NORM) || !isfinite(x->grad) ||
	    x->grad <= 0)
		return;
	/* The common case, without a division or a log() a point. */
	if (!al->firing && v * v < c->grad_dominant_share * x->grad * x->grad)
		return;
	share = v * v / (x->grad * x->grad);
	grown = l->ybar.p - l->ylow;
	bad = grown >= log(c->grad_dominant_growth) &&
	    share >= c->grad_dominant_share && l->yfast.p >= l->ybar.p;
	sev = grown >= log(c->grad_dominant_growth) + LN10 ? ALERT_CRITICAL :
	    ALERT_WARNING;
	if (al->firing) {
		if (detector_alert_settled(r, al, share < c->grad_dominant_share
		    / 2 || grown < LN10, c->grad_explosion_resolve_steps))
			detector_member_resolve(d, r, l, ALERT_GRAD_EXPLOSION,
			    x->step, detector_msg_resolved(r, al,
			    ALERT_GRAD_EXPLOSION, l->name, x->step, "recovered: "
			    "the tensor is back within a decade of its low"));
		else if (bad && sev > (enum alert_severity)al->severity) {
			detector_msg_dominant(r, l, x, grown, share, &rep);
			detector_member_update(d, r, l, ALERT_GRAD_EXPLOSION, sev,
			    &rep);
		}
		return;
	}
	if (bad && !r->al[ALERT_NONFINITE].firing &&
	    detector_alert_may_fire(d, r, al, ALERT_GRAD_EXPLOSION, sev,
	    x->step)) {
		detector_msg_dominant(r, l, x, grown, share, &rep);
		detector_member_fire(d, r, l, ALERT_GRAD_EXPLOSION, sev,
		    l->ylow_step, x->step, &rep);
	}
}

/*
 * Tensors that require a gradient and never got one (known from
 * meta.layers or their weight norms, absent from the gradients, or
 * present with exact zeros from the start) after dead.steps steps: a
 * detached branch, an unused module.  One warning for the group.
 */
void
detector_never_active(struct detector *d, struct run *r,
    const struct detector_step *x)
{
	const struct detector_config	*c = r->cfg;
	struct detector_report		 rep;
	struct layer			*l;
	uint32_t			 i;
	int				 never;

	if (r->nsteps < c->dead_steps || r->nsteps - r->never_checked < 10)
		return;
	r->never_checked = (uint32_t)r->nsteps;
	for (i = 0; i < r->nlayers; i++) {
		l = r->layers[i];
		never = !l->ever_nonzero && (l->ngrad == 0 ||
		    l->zero_run >= (uint32_t)c->dead_steps);
		if (l->al_never.firing) {
			if (l->ever_nonzero)
				detector_member_resolve(d, r, l,
				    ALERT_NO_GRADIENT, x->step,
				    detector_msg_resolved(r, &l->al_never,
				    ALERT_NO_GRADIENT, l->name, x->step,
				    "it got a gradient"));
		} else if (never && detector_alert_may_fire(d, r, &l->al_never,
		    ALERT_NO_GRADIENT, ALERT_WARNING, x->step)) {
			detector_msg_never(r, l, x, &rep);
			detector_member_fire(d, r, l, ALERT_NO_GRADIENT,
			    ALERT_WARNING, r->first_step, x->step, &rep);
		}
	}
}

/* Zero global norm with a finite loss, or a share of dead tensors. */
void
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
		if (detector_alert_settled(r, al, !by_global && !by_share,
		    c->dead_resolve_steps))
			detector_alert_resolve(d, r, al, ALERT_NO_GRADIENT, "",
			    x->step, detector_msg_resolved(r, al,
			    ALERT_NO_GRADIENT, "", x->step, "recovered: "
			    "gradients flow again"), NULL);
	} else if ((by_global || by_share) && detector_alert_may_fire(d, r, al,
	    ALERT_NO_GRADIENT, ALERT_CRITICAL, x->step)) {
		detector_msg_no_gradient(d, r, x, by_global, &rep);
		detector_alert_fire(d, r, al, ALERT_NO_GRADIENT, "", ALERT_CRITICAL,
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
 * is affected; a second drives the alerts.  Like the levels, the rules
 * run every layer.every steps, counting persistence and recovery in
 * steps all the same.
 */
void
detector_vanishing(struct detector *d, struct run *r,
    const struct detector_step *x)
{
	const struct detector_config	*c = r->cfg;
	struct layer			*l;
	struct detector_report		 rep;
	struct detector_vanish_eval	 e;
	double				 med, dq = 0, qlast = NAN;
	double				 v1, v2, v3, v3i, res;
	uint32_t			 i, n = 0, q, nwarn = 0, every;
	int				 sev, crit;

	every = (uint32_t)c->layer_every;
	if (!detector_layer_sampled(r))
		return;
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
		if (!l->has_ref && (double)l->ybar.n * every >= c->vanish_t_ref &&
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
			if (l->v_bad == 0)
				l->v_onset = x->step;
			if (l->v_bad < UINT32_MAX - every)
				l->v_bad += every;
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
			if (detector_alert_settled(r, &l->al_van, l->c1 < res &&
			    l->c2 < res && l->c3 < res,
			    (c->vanish_resolve_steps + every - 1) / every))
				detector_member_resolve(d, r, l, ALERT_VANISHING,
				    x->step, detector_msg_resolved(r,
				    &l->al_van, ALERT_VANISHING, l->name,
				    x->step, "recovered: the gradient is back "
				    "within a decade"));
			else if (sev > (int)l->al_van.severity ||
			    (crit && l->al_van.severity == ALERT_WARNING)) {
				detector_vanish_eval(&e, l, med, qlast, dq, n,
				    nwarn);
				detector_msg_vanishing(d, r, &e, &rep);
				detector_member_update(d, r, l, ALERT_VANISHING,
				    crit ? ALERT_CRITICAL :
				    (enum alert_severity)sev, &rep);
			}
		} else if (sev >= 0 && detector_alert_may_fire(d, r, &l->al_van,
		    ALERT_VANISHING, (enum alert_severity)sev, x->step)) {
			detector_vanish_eval(&e, l, med, qlast, dq, n, nwarn);
			detector_msg_vanishing(d, r, &e, &rep);
			/* Onset: where its level fell, else where the rule began. */
			detector_member_fire(d, r, l, ALERT_VANISHING,
			    (enum alert_severity)sev, l->fall_since >= 0 ?
			    l->fall_since : l->v_bad >= c->vanish_persist ?
			    l->v_onset : l->first_step, x->step, &rep);
		}
	}
}

/*
 * Adam's ratio ||g||^2 / sum(v) of each tensor (gradwatch.torch sends
 * it): far above its own baseline and recent extremes, the update is
 * far larger than Adam adapted to, which comes before loss spikes
 * (Wortsman et al. 2023).  instability (a warning, a pattern).
 */
void
detector_adam(struct detector *d, struct run *r, const struct detector_step *x)
{
	const struct detector_config	*c = r->cfg;
	struct detector_report		 rep;
	struct layer			*l;
	struct alert			*al;
	double				 ratio, y, jump, z = 0, s;
	size_t				 i;
	int				 bad, told;

	/* An early signal only: nothing to add once the loss or norm spoke. */
	told = r->al[ALERT_GRAD_SPIKE].firing ||
	    r->al[ALERT_GRAD_EXPLOSION].firing ||
	    r->al[ALERT_LOSS_SPIKE].firing || r->al[ALERT_DIVERGENCE].firing ||
	    r->al[ALERT_NONFINITE].firing || r->ljump >= 0;
	for (i = 0; i < x->na; i++) {
		l = r->layers[d->alslot[i]];
		ratio = d->alval[i];
		if (!isfinite(ratio) || ratio <= 0)
			continue;
		y = log(ratio);
		al = &l->al_adam;
		l->adam_tail = fmax(0, l->adam_tail - LN2 / c->tail_halflife);
		bad = 0;
		jump = 0;
		if (baseline_is_ready(&l->adam)) {
			s = baseline_scale(&l->adam, c->grad_s_floor);
			jump = y - l->adam.m;
			z = jump / s;
			bad = l->adam.n >= c->min_step &&
			    jump >= log(c->adam_jump) && z >= c->adam_jump_z &&
			    jump >= l->adam_tail + LN2;
		}
		if (al->firing) {
			if (detector_alert_settled(r, al, z < 2,
			    c->grad_spike_resolve_steps))
				detector_member_resolve(d, r, l,
				    ALERT_INSTABILITY, x->step,
				    detector_msg_resolved(r, al,
				    ALERT_INSTABILITY, l->name, x->step,
				    "calm: the ratio is back near its baseline"));
		} else if (bad && !told && detector_alert_may_fire(d, r, al,
		    ALERT_INSTABILITY, ALERT_WARNING, x->step)) {
			detector_msg_instability(r, l, x, ratio, jump, z, &rep);
			detector_member_fire(d, r, l, ALERT_INSTABILITY,
			    ALERT_WARNING, x->step, x->step, &rep);
		}
		if (al->firing || bad)
			continue;		/* frozen while it fires */
		if (baseline_is_ready(&l->adam) && jump > l->adam_tail)
			l->adam_tail = jump;
		baseline_add(&l->adam, y, 1 - c->grad_alpha, c->grad_s_floor,
		    c->grad_winsor);
	}
}
