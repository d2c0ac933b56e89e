/* SPDX-License-Identifier: MIT */
/*
 * detector_rules: the detector's rules, one step of one run at a time
 * (DETECTION.md (a) to (f)): non-finite values and the loss scaler,
 * gradient spikes and explosions, loss spikes and divergence, dead
 * layers and missing gradients, vanishing gradients, clipping, and the
 * run's rhythm for stalls.  Each rule updates its O(1) statistics and
 * drives its alerts through detector.c's lifecycle.  The detector's
 * thread.
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


/* The batch's values at one step, gathered by detector_feed(). */
static void	detector_dominant(struct detector *, struct run *,
		    struct layer *, const struct detector_step *, double);

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
		if (al->firing && detector_alert_settled(r, al, 1,
		    c->nonfinite_resolve_steps))
			detector_alert_resolve(d, r, al, ALERT_NONFINITE, "", x->step,
			    detector_msg_resolved(r, al, ALERT_NONFINITE, "",
			    x->step, "recovered: finite values again"), NULL);
		return;
	}
	if (al->firing) {
		al->ok = 0;
		al->count++;
		return;
	}
	if (!detector_alert_may_fire(d, r, al, ALERT_NONFINITE, ALERT_CRITICAL,
	    x->step))
		return;
	detector_msg_nonfinite(d, r, x, &rep);
	/* Supersession: the NaN ends the explosion (recording its lead). */
	if (ex->firing)
		detector_alert_resolve(d, r, ex, ALERT_GRAD_EXPLOSION, "", x->step,
		    detector_msg_superseded(r, ex, ALERT_GRAD_EXPLOSION,
		    ALERT_NONFINITE, x->step), detector_detail_lead(ex,
		    x->step));
	if (sp->firing)
		detector_alert_resolve(d, r, sp, ALERT_GRAD_SPIKE, "", x->step,
		    detector_msg_superseded(r, sp, ALERT_GRAD_SPIKE,
		    ALERT_NONFINITE, x->step), NULL);
	detector_alert_fire(d, r, al, ALERT_NONFINITE, "", ALERT_CRITICAL, x->step,
	    x->step, &rep);
}

/*
 * The loss scaler (DETECTION.md (c)): a skipped step is an overflow, and
 * benign; but a high overflow rate, a skip at the minimum scale or a run
 * of skips with a non-finite loss means mixed precision has failed (and
 * a run that only skips would otherwise look silent).  Raised as
 * nonfinite on the series "loss_scale", apart from NaN/Inf values.
 */
static void
detector_scaler(struct detector *d, struct run *r,
    const struct detector_step *x)
{
	const struct detector_config	*c = r->cfg;
	struct alert			*al = &r->al_scaler;
	struct detector_report		 rep;
	int				 skipped, collapse, sev = -1;

	if (!detector_has(x, SERIES_SKIPPED))
		return;
	skipped = x->skipped != 0;
	r->ovf_rate += (skipped - r->ovf_rate) / c->scaler_window;
	r->nscaler++;
	if (skipped) {
		if (r->skip_run++ == 0)
			r->skip_since = x->step;
		if (detector_has(x, SERIES_LOSS) && !isfinite(x->loss))
			r->skip_nan_run++;
		else
			r->skip_nan_run = 0;
	} else
		r->skip_run = r->skip_nan_run = 0;
	collapse = (skipped && detector_has(x, SERIES_LOSS_SCALE) &&
	    x->loss_scale <= c->scaler_min_scale) ||
	    r->skip_nan_run >= (uint32_t)c->scaler_collapse_skips;
	if (collapse)
		sev = ALERT_CRITICAL;
	else if (r->nscaler >= c->scaler_start) {
		if (r->ovf_rate > c->scaler_rate_critical)
			sev = ALERT_CRITICAL;
		else if (r->ovf_rate > c->scaler_rate_warning)
			sev = ALERT_WARNING;
	}
	if (al->firing) {
		if (detector_alert_settled(r, al, !skipped &&
		    r->ovf_rate <= c->scaler_rate_warning,
		    c->scaler_resolve_steps))
			detector_alert_resolve(d, r, al, ALERT_NONFINITE,
			    DETECTOR_SCALER_SERIES, x->step,
			    detector_msg_resolved(r, al, ALERT_NONFINITE,
			    DETECTOR_SCALER_SERIES, x->step, "recovered: the "
			    "loss scaler steps cleanly again"), NULL);
		else if (sev > (int)al->severity) {
			detector_msg_scaler(r, x, collapse, &rep);
			detector_alert_update(d, r, al, ALERT_NONFINITE,
			    DETECTOR_SCALER_SERIES, (enum alert_severity)sev,
			    &rep);
		}
	} else if (sev >= 0 && detector_alert_may_fire(d, r, al,
	    ALERT_NONFINITE, (enum alert_severity)sev, x->step)) {
		detector_msg_scaler(r, x, collapse, &rep);
		detector_alert_fire(d, r, al, ALERT_NONFINITE,
		    DETECTOR_SCALER_SERIES, (enum alert_severity)sev,
		    r->skip_run > 0 ? r->skip_since : x->step, x->step, &rep);
	}
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

/*
 * Before the norm has a baseline (its first grad.warmup points), the
 * evidence that needs none: the norm grown grad.early_growth x over its
 * lowest while still growing fast and the loss not falling (warning),
 * or past the hard ratio, or within the overflow horizon (critical).
 * So a run sick from its first step is told before it overflows.
 */
static void
detector_grad_early(struct detector *d, struct run *r,
    const struct detector_step *x, struct detector_grad_eval *e)
{
	const struct detector_config	*c = r->cfg;
	struct alert			*ex = &r->al[ALERT_GRAD_EXPLOSION];
	struct detector_report		 rep;
	enum alert_severity		 sev;
	double				 grown;
	int				 growth;

	if (r->ngrad < 2)
		return;
	grown = e->y - r->gmin;
	e->early = 1;
	e->m = r->gmin;
	e->ratio = exp(grown);
	e->r = r->gr;
	e->to_overflow = e->r > 0 ? (c->grad_overflow_ln - e->y) / e->r :
	    INFINITY;
	e->by_ratio = grown >= log(c->grad_explosion_hard_ratio);
	e->by_overflow = e->to_overflow <= c->grad_overflow_steps;
	growth = grown >= log(c->grad_early_growth) &&
	    e->r >= c->grad_early_rate && (r->nloss < 2 || r->ltrend >= 0);
	if (!growth && !e->by_ratio && !e->by_overflow)
		return;
	sev = e->by_ratio || e->by_overflow ? ALERT_CRITICAL : ALERT_WARNING;
	e->onset = r->gmin_step;
	if (ex->firing) {
		if (sev > (enum alert_severity)ex->severity) {
			detector_msg_explosion(d, r, e, &rep);
			detector_alert_update(d, r, ex, ALERT_GRAD_EXPLOSION, "",
			    sev, &rep);
		}
		return;
	}
	if (r->al[ALERT_NONFINITE].firing || !detector_alert_may_fire(d, r, ex,
	    ALERT_GRAD_EXPLOSION, sev, x->step))
		return;
	detector_msg_explosion(d, r, e, &rep);
	detector_alert_fire(d, r, ex, ALERT_GRAD_EXPLOSION, "", sev, e->onset,
	    x->step, &rep);
	ex->peak = e->ratio;
	r->explosion_fire = x->step;
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
	int				 zrules, rebasing, explode = 0, spike = 0;

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
	/* Growth of ln norm a step, from the run's second point on. */
	if (!isnan(r->gprev))
		r->gr = c->grad_growth_beta * r->gr +
		    (1 - c->grad_growth_beta) * (e.y - r->gprev);
	if (e.y < r->gmin) {
		r->gmin = e.y;
		r->gmin_step = x->step;
	}
	r->gtail = fmax(0, r->gtail - LN2 / c->tail_halflife);
	if (!baseline_is_ready(b))
		detector_grad_early(d, r, x, &e);
	else {
		e.m = b->m;
		e.s = baseline_scale(b, c->grad_s_floor);
		e.z = (e.y - e.m) / e.s;
		e.ratio = exp(e.y - e.m);
		cusum_add(&r->gcusum, e.z, c->grad_cusum_k, c->grad_cusum_cap,
		    x->step);
		if (r->gcusum.onset == x->step)
			r->gy_onset = e.y;
		e.r = r->gr;
		e.cusum = r->gcusum.s;
		e.to_overflow = e.r > 0 ? (c->grad_overflow_ln - e.y) / e.r :
		    INFINITY;
		zrules = r->ngrad >= c->min_step;
		e.zth = c->grad_spike_z + (rebasing ? c->rebase_z_add : 0);
		/*
		 * Growth: r > 0, and net growth since the CUSUM's onset (r
		 * alone still remembers the jump of a burst that decays).
		 */
		e.by_cusum = zrules && e.cusum >= c->grad_explosion_cusum &&
		    e.r > 0 && e.y > r->gy_onset &&
		    e.ratio >= c->grad_explosion_ratio;
		/*
		 * The hard ratio on a second step in a row (the first at the
		 * root of it): one step of 1000x that drops back is a bad
		 * batch, a grad_spike; an explosion stays up.
		 */
		e.by_ratio = e.ratio >= c->grad_explosion_hard_ratio &&
		    r->gdev_prev >= 0.5 * log(c->grad_explosion_hard_ratio);
		e.by_overflow = e.to_overflow <= c->grad_overflow_steps;
		explode = e.by_cusum || e.by_ratio || e.by_overflow;
		/* A spike stands out from what this run normally does. */
		spike = zrules && e.z >= e.zth &&
		    e.ratio >= c->grad_spike_ratio &&
		    e.y - e.m >= r->gtail + log(c->grad_spike_tail);

		if (ex->firing) {
			if (e.ratio > ex->peak)
				ex->peak = e.ratio;
			if (detector_alert_settled(r, ex,
			    e.z < c->grad_explosion_resolve_z,
			    c->grad_explosion_resolve_steps))
				detector_alert_resolve(d, r, ex,
				    ALERT_GRAD_EXPLOSION, "", x->step,
				    detector_msg_resolved(r, ex,
				    ALERT_GRAD_EXPLOSION, "", x->step,
				    "recovered: the norm is back near its "
				    "baseline"), NULL);
		} else if (explode && !nf->firing && detector_alert_may_fire(d, r,
		    ex, ALERT_GRAD_EXPLOSION, ALERT_CRITICAL, x->step)) {
			e.onset = r->gcusum.onset >= 0 ? r->gcusum.onset :
			    x->step;
			detector_msg_explosion(d, r, &e, &rep);
			if (sp->firing)
				detector_alert_resolve(d, r, sp, ALERT_GRAD_SPIKE,
				    "", x->step, detector_msg_superseded(r,
				    sp, ALERT_GRAD_SPIKE, ALERT_GRAD_EXPLOSION,
				    x->step), NULL);
			detector_alert_fire(d, r, ex, ALERT_GRAD_EXPLOSION, "",
			    ALERT_CRITICAL, e.onset, x->step, &rep);
			ex->peak = e.ratio;
			r->explosion_fire = x->step;
		}
		if (sp->firing) {
			if (e.ratio > sp->peak)
				sp->peak = e.ratio;
			if (detector_alert_settled(r, sp,
			    e.z < c->grad_spike_resolve_z,
			    c->grad_spike_resolve_steps))
				detector_alert_resolve(d, r, sp, ALERT_GRAD_SPIKE,
				    "", x->step, detector_msg_resolved(r, sp,
				    ALERT_GRAD_SPIKE, "", x->step,
				    "recovered: the norm is back near its "
				    "baseline"), NULL);
		} else if (spike && !ex->firing && !nf->firing &&
		    detector_alert_may_fire(d, r, sp, ALERT_GRAD_SPIKE,
		    ALERT_WARNING, x->step)) {
			e.onset = x->step;
			detector_msg_spike(d, r, &e, &rep);
			detector_alert_fire(d, r, sp, ALERT_GRAD_SPIKE, "",
			    ALERT_WARNING, x->step, x->step, &rep);
			sp->peak = e.ratio;
		}
	}
	r->gprev = e.y;
	r->gdev_prev = baseline_is_ready(b) ? e.y - e.m : 0;
	r->glast = g;
	r->glast_step = x->step;
	r->ngrad++;
	/*
	 * The run's own extremes, from the steps that are not alerts (nor
	 * ones that would be, but for a cool-down or a replay).
	 */
	if (baseline_is_ready(b) && !spike && !explode && !ex->firing &&
	    !sp->firing && e.y - e.m > r->gtail)
		r->gtail = e.y - e.m;
	/* Frozen while its alert fires; a warm-up always completes. */
	if (baseline_is_ready(b) && (detector_alert_freezes(ex, x->step) ||
	    detector_alert_freezes(sp, x->step))) {
		if (++r->gfrozen < c->grad_freeze_steps)
			return;
		/* A lasting new level: start a new baseline. */
		baseline_reset(b, (uint32_t)c->grad_warmup);
		cusum_reset(&r->gcusum);
		r->gfrozen = 0;
		if (ex->firing)
			detector_alert_resolve(d, r, ex, ALERT_GRAD_EXPLOSION, "",
			    x->step, detector_msg_resolved(r, ex,
			    ALERT_GRAD_EXPLOSION, "", x->step, "re-baselined: "
			    "the norm settled at a new level"), NULL);
		if (sp->firing)
			detector_alert_resolve(d, r, sp, ALERT_GRAD_SPIKE, "",
			    x->step, detector_msg_resolved(r, sp,
			    ALERT_GRAD_SPIKE, "", x->step, "re-baselined: the "
			    "norm settled at a new level"), NULL);
		return;
	}
	r->gfrozen = 0;
	baseline_add(b, e.y, a, c->grad_s_floor, c->grad_winsor);
}

/*
 * A loss jump under watch (r->ljump).  A spike is a transient: when the
 * loss falls back halfway (in ln) within loss.spike_confirm steps, the
 * jump is a loss_spike (onset the jump).  A jump that does not come back
 * (a curriculum switch, a new data mix; or an lr typo) is judged
 * loss.plateau_steps on, on the last half of that stretch: still coming
 * down, it is a new level and the baseline starts again; not coming down
 * and still up, divergence.  The baseline is frozen meanwhile, so what
 * the loss does after the jump is seen against where it was before.
 */
static void
detector_loss_watch(struct detector *d, struct run *r,
    const struct detector_step *x, struct detector_loss_eval *e)
{
	const struct detector_config	*c = r->cfg;
	struct alert			*dv = &r->al[ALERT_DIVERGENCE];
	struct alert			*sp = &r->al[ALERT_LOSS_SPIKE];
	struct detector_report		 rep;
	struct detector_loss_eval	 je;
	double				 m[2], v[2], se, *q;
	int64_t				 k = x->step - r->ljump;
	uint32_t			 p = (uint32_t)c->loss_plateau_steps;
	int				 h, falling, up;

	if (k <= 0)
		return;
	if (r->ljump_open) {
		if (e->y - e->m <= r->ljump_dev / 2) {
			r->ljump_open = 0;
			if (!sp->firing && !dv->firing &&
			    !r->al[ALERT_NONFINITE].firing &&
			    detector_alert_may_fire(d, r, sp, ALERT_LOSS_SPIKE,
			    ALERT_WARNING, x->step)) {
				/* Told at the jump's values. */
				je = *e;
				je.step = je.onset = r->ljump;
				je.loss = r->ljump_loss;
				je.y = e->m + r->ljump_dev;
				je.ratio = r->ljump_ratio;
				je.z = r->ljump_z;
				detector_msg_loss_spike(d, r, &je, &rep);
				detector_alert_fire(d, r, sp, ALERT_LOSS_SPIKE,
				    "", ALERT_WARNING, r->ljump, x->step, &rep);
				sp->peak = exp(r->ljump_dev);
			}
		} else if (k >= (int64_t)c->loss_spike_confirm)
			r->ljump_open = 0;	/* not a spike: watched on */
	}
	if (k > p / 2) {
		q = r->lplat[k > 3 * p / 4];
		q[0]++;
		q[1] += e->y;
		q[2] += e->y * e->y;
	}
	if (k < (int64_t)p)
		return;
	r->ljump = -1;
	for (h = 0; h < 2; h++) {
		q = r->lplat[h];
		if (q[0] < 2)
			return;
		m[h] = q[1] / q[0];
		v[h] = fmax(0, (q[2] - q[0] * m[h] * m[h]) / (q[0] - 1));
	}
	se = sqrt(v[0] / r->lplat[0][0] + v[1] / r->lplat[1][0]);
	falling = m[1] < m[0] - fmax(2 * se, 0.01);
	/* Still up: the last quarter's mean 1.5x the baseline, clearly. */
	up = m[1] - e->m >= fmax(log(1.5), 3 * sqrt(v[1] / r->lplat[1][0]));
	if (r->lraw || !up)
		return;		/* back near the baseline */
	if (falling) {
		/* A new level the run learns from: start again, L_init too. */
		baseline_reset(&r->lbase, (uint32_t)c->loss_warmup);
		cusum_reset(&r->lcusum);
		r->lfrozen = 0;
		r->linit = NAN;
		r->lmin = INFINITY;
		memset(&r->llevel, 0, sizeof r->llevel);
		if (sp->firing)
			detector_alert_resolve(d, r, sp, ALERT_LOSS_SPIKE, "",
			    x->step, detector_msg_resolved(r, sp,
			    ALERT_LOSS_SPIKE, "", x->step, "re-baselined: the "
			    "loss jumped to a new level and is coming down "
			    "from it"), NULL);
		return;
	}
	if (dv->firing || r->al[ALERT_NONFINITE].firing ||
	    !detector_alert_may_fire(d, r, dv, ALERT_DIVERGENCE, ALERT_CRITICAL,
	    x->step))
		return;
	e->by_plateau = 1;
	e->onset = x->step - k;
	detector_msg_divergence(d, r, e, &rep);
	if (sp->firing)
		detector_alert_resolve(d, r, sp, ALERT_LOSS_SPIKE, "", x->step,
		    detector_msg_superseded(r, sp, ALERT_LOSS_SPIKE,
		    ALERT_DIVERGENCE, x->step), NULL);
	detector_alert_fire(d, r, dv, ALERT_DIVERGENCE, "", ALERT_CRITICAL,
	    e->onset, x->step, &rep);
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
	int				 zrules, rebasing, spike = 0, frozen;

	if (!detector_has(x, SERIES_LOSS) || !isfinite(loss))
		return;
	if (!r->lraw && loss <= 0) {
		/* A signed loss: the raw domain from now on. */
		r->lraw = 1;
		baseline_reset(b, (uint32_t)c->loss_warmup);
		cusum_reset(&r->lcusum);
		r->ljump = -1;
		r->linit = NAN;
		r->lmin = INFINITY;
		memset(&r->llevel, 0, sizeof r->llevel);
	}
	memset(&e, 0, sizeof e);
	e.step = x->step;
	e.loss = loss;
	e.y = r->lraw ? loss : baseline_ln(loss);
	e.raw = r->lraw;
	if (!isnan(r->lprev))
		r->ltrend = 0.8 * r->ltrend + 0.2 * (e.y - r->lprev);
	r->lprev = e.y;
	r->ltail = fmax(0, r->ltail - LN2 / c->tail_halflife);
	frozen = detector_alert_freezes(dv, x->step) ||
	    detector_alert_freezes(sp, x->step) || r->ljump >= 0;
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
		/* Robust: single extreme losses move it no more than the baseline. */
		ewmean_add(&r->llevel, fmin(e.y, b->m + c->loss_winsor *
		    baseline_scale(b, floor)), 1 - c->loss_level_alpha);
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
		/* Never against a frozen baseline: a spike's recovery is no trend. */
		if (!frozen)
			cusum_add(&r->lcusum, e.z, c->loss_cusum_k,
			    c->loss_cusum_cap, x->step);
		e.cusum = r->lcusum.s;
		e.linit = r->linit;
		e.level = r->llevel.p;
		zrules = r->nloss >= c->loss_min_step;
		e.zth = c->loss_spike_z + (rebasing ? c->rebase_z_add : 0);
		spike = zrules && e.z >= e.zth &&
		    e.ratio >= c->loss_spike_ratio &&
		    (r->lraw || e.y - e.m >= r->ltail + log(c->loss_spike_tail));
		/* Climbing, not coming back down. */
		e.by_cusum = zrules &&
		    e.cusum >= c->loss_divergence_cusum && r->ltrend >= 0;
		/* Past L_init by more than the level's own noise (3 sd). */
		e.by_init = zrules && !r->lraw && r->ltrend >= 0 &&
		    e.level >= r->linit + log(c->loss_init_factor) + 3 * e.s *
		    sqrt((1 - c->loss_level_alpha) / (1 + c->loss_level_alpha)) &&
		    r->lmin <= r->linit - log(c->loss_init_progress);
		e.by_linger = sp->firing &&
		    x->step - sp->fire_step >= (int64_t)c->loss_linger_steps;

		if (dv->firing) {
			/* On the unfrozen level: single noisy steps do not reset it. */
			if (detector_alert_settled(r, dv, e.level < e.m +
			    c->loss_resolve_z * e.s && !e.by_init,
			    c->loss_divergence_resolve_steps))
				detector_alert_resolve(d, r, dv, ALERT_DIVERGENCE,
				    "", x->step, detector_msg_resolved(r, dv,
				    ALERT_DIVERGENCE, "", x->step, "recovered: "
				    "the loss is back near its baseline"),
				    NULL);
		} else if ((e.by_cusum || e.by_init || e.by_linger) &&
		    !nf->firing && detector_alert_may_fire(d, r, dv,
		    ALERT_DIVERGENCE, ALERT_CRITICAL, x->step)) {
			e.onset = e.by_linger ? sp->onset_step :
			    e.by_cusum && r->lcusum.onset >= 0 ?
			    r->lcusum.onset : x->step;
			detector_msg_divergence(d, r, &e, &rep);
			if (sp->firing)
				detector_alert_resolve(d, r, sp, ALERT_LOSS_SPIKE,
				    "", x->step, detector_msg_superseded(r,
				    sp, ALERT_LOSS_SPIKE, ALERT_DIVERGENCE,
				    x->step), NULL);
			detector_alert_fire(d, r, dv, ALERT_DIVERGENCE, "",
			    ALERT_CRITICAL, e.onset, x->step, &rep);
		}
		if (sp->firing) {
			if (e.ratio > sp->peak)
				sp->peak = e.ratio;
			if (detector_alert_settled(r, sp, e.z < c->loss_resolve_z,
			    c->loss_resolve_steps)) {
				detector_alert_resolve(d, r, sp, ALERT_LOSS_SPIKE,
				    "", x->step, detector_msg_resolved(r, sp,
				    ALERT_LOSS_SPIKE, "", x->step, "recovered: "
				    "the loss is back near its baseline"),
				    NULL);
				cusum_reset(&r->lcusum);
			}
		} else if (spike && !dv->firing && r->ljump < 0) {
			/* A jump: a spike if it comes back (above). */
			r->ljump = x->step;
			r->ljump_dev = e.y - e.m;
			r->ljump_loss = loss;
			r->ljump_ratio = e.ratio;
			r->ljump_z = e.z;
			r->ljump_open = 1;
			memset(r->lplat, 0, sizeof r->lplat);
		}
		if (r->ljump >= 0)
			detector_loss_watch(d, r, x, &e);
	}
	r->llast = loss;
	r->llast_step = x->step;
	r->nloss++;
	if (baseline_is_ready(b) && !r->lraw && !spike && !dv->firing &&
	    !sp->firing && r->ljump < 0 && e.y - e.m > r->ltail)
		r->ltail = e.y - e.m;
	if (baseline_is_ready(b) && (detector_alert_freezes(dv, x->step) ||
	    detector_alert_freezes(sp, x->step) || r->ljump >= 0)) {
		if (++r->lfrozen < c->loss_freeze_steps)
			return;
		baseline_reset(b, (uint32_t)c->loss_warmup);
		cusum_reset(&r->lcusum);
		r->lfrozen = 0;
		r->ljump = -1;
		if (dv->firing)
			detector_alert_resolve(d, r, dv, ALERT_DIVERGENCE, "",
			    x->step, detector_msg_resolved(r, dv,
			    ALERT_DIVERGENCE, "", x->step, "re-baselined: the "
			    "loss settled at a new level"), NULL);
		if (sp->firing)
			detector_alert_resolve(d, r, sp, ALERT_LOSS_SPIKE, "",
			    x->step, detector_msg_resolved(r, sp,
			    ALERT_LOSS_SPIKE, "", x->step, "re-baselined: the "
			    "loss settled at a new level"), NULL);
		return;
	}
	r->lfrozen = 0;
	baseline_add(b, e.y, a, floor, c->loss_winsor);
}

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

static void
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
static void
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
static void
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
	if (!detector_alert_freezes(sur, x->step))
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
		if (detector_alert_settled(r, sat,
		    r->ps.p <= c->clip_saturation_resolve,
		    c->clip_resolve_steps))
			detector_alert_resolve(d, r, sat, ALERT_CLIP_SATURATION, "",
			    x->step, detector_msg_resolved(r, sat,
			    ALERT_CLIP_SATURATION, "", x->step, "recovered: "
			    "clipping is occasional again"), NULL);
		else if (crit && sat->severity < ALERT_CRITICAL) {
			detector_msg_clip(d, r, x, ALERT_CLIP_SATURATION, 1,
			    &rep);
			detector_alert_update(d, r, sat, ALERT_CLIP_SATURATION, "",
			    ALERT_CRITICAL, &rep);
		}
	} else if (r->sat_run >= c->clip_saturation_steps &&
	    ((crit && early) || active)) {
		enum alert_severity sev = crit ? ALERT_CRITICAL : ALERT_WARNING;

		if (detector_alert_may_fire(d, r, sat, ALERT_CLIP_SATURATION, sev,
		    x->step)) {
			detector_msg_clip(d, r, x, ALERT_CLIP_SATURATION, crit,
			    &rep);
			detector_alert_fire(d, r, sat, ALERT_CLIP_SATURATION, "", sev,
			    r->sat_since, x->step, &rep);
		}
	}
	surge = active && r->ps.p >= c->clip_surge_rate &&
	    r->ps.p >= c->clip_surge_factor * r->pl.p;
	if (sur->firing) {
		if (detector_alert_settled(r, sur,
		    r->ps.p <= c->clip_surge_resolve_factor * r->pl.p,
		    c->clip_resolve_steps))
			detector_alert_resolve(d, r, sur, ALERT_CLIP_SURGE, "",
			    x->step, detector_msg_resolved(r, sur,
			    ALERT_CLIP_SURGE, "", x->step, "recovered: the "
			    "clip rate is back to its long-run level"),
			    NULL);
	} else if (surge && !sat->firing && detector_alert_may_fire(d, r, sur,
	    ALERT_CLIP_SURGE, ALERT_WARNING, x->step)) {
		detector_msg_clip(d, r, x, ALERT_CLIP_SURGE, 0, &rep);
		detector_alert_fire(d, r, sur, ALERT_CLIP_SURGE, "", ALERT_WARNING,
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
		detector_alert_resolve(d, r, al, ALERT_STALL, "", x->step,
		    detector_msg_stall_end(r, al, x->step, d->now), NULL);
}

void
detector_rules_step(struct detector *d, struct run *r,
    const struct detector_step *x)
{
	detector_rhythm(d, r, x);
	if (r->first_step < 0)
		r->first_step = x->step;
	r->last_step = x->step;
	r->nsteps++;
	detector_scaler(d, r, x);
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
	detector_never_active(d, r, x);
	detector_vanishing(d, r, x);
	detector_adam(d, r, x);
	detector_clip(d, r, x);
}

