/* SPDX-License-Identifier: MIT */
/*
 * detector_rules: the detector's rules, one step of one run at a time
 * (DETECTION.md (a) to (f)): non-finite values and the loss scaler,
 * gradient spikes and explosions, loss spikes and divergence, dead
 * layers and missing gradients, vanishing gradients, clipping, and the
 * run's rhythm for stalls; the rules about tensors are in
 * detector_rules_tensor.c.  Each rule updates its O(1) statistics and
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

