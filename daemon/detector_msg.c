/* SPDX-License-Identifier: MIT */
/*
 * detector_msg: the words and the details of the detector's alerts.
 * Each message says what happened, where (the tensor), since when (the
 * onset step), how far from the baseline (ratio, z) and what a person
 * can do about it; each detail is a small JSON object of the numbers
 * behind it.  Called only when an alert changes state, so allocating
 * here is fine.  The detector's thread, like the rest of it.
 */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "detector.h"
#include "detector_detail.h"
#include "detector_int.h"
#include "xmalloc.h"

#define TOP_LAYERS	5	/* tensors named in an explosion or spike */
#define NONFINITE_NAMES	10	/* tensors named in a nonfinite alert */
#define RESTART_BACK	100	/* "restart ~100 steps before the onset" */


static int64_t
restart_step(int64_t onset)
{
	return onset > RESTART_BACK ? onset - RESTART_BACK : 0;
}

/* ln(g / baseline) of a tensor's last point; 0 before its baseline. */
static double
layer_dy(const struct layer *l)
{
	if (!baseline_is_ready(&l->base) || !(l->last > 0) ||
	    !isfinite(l->last))
		return 0;
	return baseline_ln(l->last) - l->base.m;
}

/* A tensor's z at its last point, against its baseline's scale. */
static double
layer_z(const struct run *r, const struct layer *l)
{
	return layer_dy(l) / baseline_scale(&l->base, r->cfg->grad_s_floor);
}

/* The up to TOP_LAYERS tensors with the highest z at step, worst first. */
static size_t
top_layers(const struct run *r, int64_t step, const struct layer **top,
    double *z)
{
	const struct layer	*l;
	size_t			 n = 0, k;
	uint32_t		 i;
	double			 lz;

	for (i = 0; i < r->nlayers; i++) {
		l = r->layers[i];
		if (l->z_step != step || (lz = layer_z(r, l)) <= 0)
			continue;
		if (n < TOP_LAYERS)
			n++;
		else if (lz <= z[n - 1])
			continue;
		for (k = n - 1; k > 0 && z[k - 1] < lz; k--) {
			top[k] = top[k - 1];
			z[k] = z[k - 1];
		}
		top[k] = l;
		z[k] = lz;
	}
	return n;
}

static void
jb_top_layers(struct jb *j, const struct layer **top, const double *z,
    size_t n)
{
	size_t	i;

	jb_key(j, "top_layers");
	jb_put(j, "[");
	for (i = 0; i < n; i++) {
		jb_put(j, "%s{", i > 0 ? "," : "");
		j->first = 1;
		jb_str(j, "layer", top[i]->name);
		jb_num(j, "z", z[i]);
		jb_num(j, "ratio", exp(layer_dy(top[i])));
		jb_put(j, "}");
	}
	jb_put(j, "]");
	j->first = 0;
}

/* "; largest in a (x12), b (x8)" for a message. */
static void
text_top_layers(char *buf, size_t len, const struct layer **top,
    const double *z, size_t n)
{
	size_t	i, off;
	int	w;

	buf[0] = '\0';
	if (n == 0)
		return;
	w = snprintf(buf, len, "; largest in ");
	off = w > 0 ? (size_t)w : 0;
	for (i = 0; i < n && i < 3 && off < len; i++) {
		w = snprintf(buf + off, len - off, "%s%s (x%.3g, z %.1f)",
		    i > 0 ? ", " : "", top[i]->name, exp(layer_dy(top[i])), z[i]);
		if (w < 0)
			break;
		off += (size_t)w;
	}
}

static int
layer_depth_cmp(const void *a, const void *b)
{
	const struct layer	*x = *(const struct layer *const *)a;
	const struct layer	*y = *(const struct layer *const *)b;

	return detector_depth_cmp(x->depth, x->order, y->depth, y->order);
}

void
detector_msg_nonfinite(const struct detector *d, const struct run *r,
    const struct detector_step *x, struct detector_report *rep)
{
	const struct alert	*ex = &r->al[ALERT_GRAD_EXPLOSION];
	const struct layer	**bad = NULL;
	struct jb		 j;
	char			 fields[256], names[512], v1[32], v2[32];
	char			 lead[160], before[96], gbefore[96];
	const char		*hint;
	size_t			 i, nbad = 0, off;
	int			 loss_bad, grad_bad, w;

	loss_bad = ((x->has >> SERIES_LOSS) & 1) && !isfinite(x->loss);
	grad_bad = (((x->has >> SERIES_GRAD_NORM) & 1) && !isfinite(x->grad)) ||
	    (((x->has >> SERIES_CLIP_PRE_NORM) & 1) && !isfinite(x->cpre));
	if (x->nnonfinite > 0) {
		bad = xreallocarray(NULL, x->nnonfinite, sizeof *bad);
		for (i = 0; i < x->nl; i++)
			if (!isfinite(d->lval[i]))
				bad[nbad++] = r->layers[d->lslot[i]];
		qsort(bad, nbad, sizeof *bad, layer_depth_cmp);
	}
	fields[0] = '\0';
	off = 0;
	if (loss_bad) {
		w = snprintf(fields, sizeof fields, "the loss (%s)",
		    fmtv(v1, sizeof v1, x->loss));
		off = w > 0 ? (size_t)w : 0;
	}
	if (grad_bad) {
		w = snprintf(fields + off, sizeof fields - off, "%sthe global "
		    "gradient norm (%s)", off > 0 ? (nbad > 0 ? ", " : " and ") :
		    "", fmtv(v1, sizeof v1, ((x->has >> SERIES_GRAD_NORM) & 1) ?
		    x->grad : x->cpre));
		off += w > 0 ? (size_t)w : 0;
	}
	if (nbad > 0 && off < sizeof fields)
		snprintf(fields + off, sizeof fields - off, "%s%zu tensor "
		    "gradient%s", off > 0 ? " and " : "", nbad,
		    nbad > 1 ? "s" : "");
	names[0] = '\0';
	off = 0;
	for (i = 0; i < nbad && i < NONFINITE_NAMES; i++) {
		w = snprintf(names + off, sizeof names - off, "%s%s",
		    i > 0 ? ", " : "", bad[i]->name);
		if (w < 0 || (size_t)w >= sizeof names - off)
			break;
		off += (size_t)w;
	}
	lead[0] = '\0';
	if (ex->firing)
		snprintf(lead, sizeof lead, " grad_explosion fired %lld steps "
		    "earlier (step %lld, onset %lld).",
		    (long long)(x->step - ex->fire_step),
		    (long long)ex->fire_step, (long long)ex->onset_step);
	if (ex->firing)
		hint = "The gradients grew before it: restart from a "
		    "checkpoint before the explosion's onset and lower the "
		    "learning rate or clip gradients.";
	else if (loss_bad && !grad_bad && nbad == 0)
		hint = "The gradients are finite, so the loss itself produced "
		    "it: check the loss for log, sqrt or division of values "
		    "that can reach zero or below (e.g. a variance without "
		    "softplus), and the targets of this batch.";
	else if (!loss_bad && nbad > 0 && nbad <= 3 && nbad < r->nlayers)
		hint = "The loss is finite and only these tensors are not "
		    "(the global norm follows from them): check their layers' "
		    "operations and any gradient hooks, then restart from a "
		    "checkpoint before this step.";
	else
		hint = "Nothing grew before it, so suspect the data: check the "
		    "batch of this step for NaN/Inf inputs, then restart from "
		    "a checkpoint before it.";
	/* A last finite value has a step; before the first, it has none. */
	if (((x->has >> SERIES_LOSS) & 1) && isfinite(x->loss))
		snprintf(before, sizeof before, "the loss is finite (%s)",
		    fmtv(v1, sizeof v1, x->loss));
	else if (r->llast_step < 0)
		snprintf(before, sizeof before, "no finite loss seen yet");
	else
		snprintf(before, sizeof before, "last finite loss %s at step "
		    "%lld", fmtv(v1, sizeof v1, r->llast),
		    (long long)r->llast_step);
	if (r->glast_step < 0)
		snprintf(gbefore, sizeof gbefore, "no finite gradient norm "
		    "seen yet");
	else
		snprintf(gbefore, sizeof gbefore, "last finite gradient norm "
		    "%s at step %lld", fmtv(v2, sizeof v2, r->glast),
		    (long long)r->glast_step);
	xasprintf(&rep->message, "Non-finite values at step %lld in %s%s%s%s "
	    "(%s; %s).%s %s", (long long)x->step, fields, nbad > 0 ? ": " : "",
	    names, nbad > NONFINITE_NAMES ? ", ..." : "", before, gbefore,
	    lead, hint);
	jb_begin(&j);
	jb_key(&j, "fields");
	jb_put(&j, "[");
	jb_put(&j, "%s%s", loss_bad ? "\"loss\"" : "",
	    loss_bad && grad_bad ? "," : "");
	jb_put(&j, "%s", grad_bad ? "\"grad_norm\"" : "");
	jb_put(&j, "]");
	jb_key(&j, "tensors");
	jb_put(&j, "[");
	for (i = 0; i < nbad && i < NONFINITE_NAMES; i++) {
		jb_put(&j, "%s", i > 0 ? "," : "");
		jb_quote(&j, bad[i]->name);
	}
	jb_put(&j, "]");
	jb_int(&j, "tensors_nonfinite", (int64_t)nbad);
	jb_num(&j, "last_finite_loss", r->llast);
	jb_int(&j, "last_finite_loss_step", r->llast_step);
	jb_num(&j, "last_finite_grad_norm", r->glast);
	if ((x->has >> SERIES_LOSS_SCALE) & 1)
		jb_num(&j, "loss_scale", x->loss_scale);
	jb_int(&j, "skipped_steps_before", (int64_t)r->nskipped);
	if (ex->firing) {
		jb_int(&j, "lead_steps", x->step - ex->fire_step);
		jb_int(&j, "explosion_fire_step", ex->fire_step);
		jb_int(&j, "explosion_onset_step", ex->onset_step);
	} else if (r->explosion_fire >= 0)
		jb_int(&j, "last_explosion_step", r->explosion_fire);
	rep->detail = jb_end(&j);
	rep->value = loss_bad ? x->loss : grad_bad ?
	    (((x->has >> SERIES_GRAD_NORM) & 1) ? x->grad : x->cpre) :
	    nbad > 0 ? bad[0]->last : NAN;
	rep->baseline = NAN;
	rep->threshold = NAN;
	free(bad);
}

static void
grad_detail(struct jb *j, const struct detector_grad_eval *e)
{
	jb_num(j, "ratio", e->ratio);
	jb_num(j, "z", e->z);
	jb_num(j, "baseline", exp(e->m));
	jb_num(j, "scale_ln", e->s);
	jb_num(j, "cusum", e->cusum);
	jb_num(j, "growth_per_step", exp(e->r));
	jb_num(j, "steps_to_overflow", e->to_overflow);
}

void
detector_msg_explosion(const struct detector *d, const struct run *r,
    const struct detector_grad_eval *e, struct detector_report *rep)
{
	const struct layer	*top[TOP_LAYERS];
	double			 tz[TOP_LAYERS];
	struct jb		 j;
	char			 v1[32], v2[32], tl[512], ovf[96];
	const char		*why;
	size_t			 n;

	(void)d;
	n = top_layers(r, e->step, top, tz);
	text_top_layers(tl, sizeof tl, top, tz, n);
	why = e->by_ratio ? "rule: a jump past the hard ratio" :
	    e->by_overflow ? "rule: overflow within a few steps at this "
	    "growth" : e->early ? "rule: growth from the first steps, before "
	    "any baseline" : "rule: sustained growth (CUSUM)";
	ovf[0] = '\0';
	if (e->r > 0 && isfinite(e->to_overflow))
		snprintf(ovf, sizeof ovf, ", growing x%.3g per step, ~%.0f "
		    "steps from overflow", exp(e->r), e->to_overflow);
	if (e->early)
		xasprintf(&rep->message, "Gradient norm growing since step %lld, "
		    "before the run had a baseline: %s at step %lld, %.3gx its "
		    "lowest %s%s%s [%s]. A run sick from its first steps: check "
		    "the initialisation and the learning rate (and its warm-up) "
		    "before a restart.", (long long)e->onset,
		    fmtv(v1, sizeof v1, e->g), (long long)e->step, e->ratio,
		    fmtv(v2, sizeof v2, exp(e->m)), ovf, tl, why);
	else
		xasprintf(&rep->message, "Gradient norm exploding since step "
		    "%lld: %s at step %lld, %.3gx its baseline %s (z %.1f)%s%s "
		    "[%s]. Restart from a checkpoint before step %lld and skip "
		    "the batches in between, lower the learning rate, or clip "
		    "gradients.", (long long)e->onset, fmtv(v1, sizeof v1, e->g),
		    (long long)e->step, e->ratio, fmtv(v2, sizeof v2, exp(e->m)),
		    e->z, ovf, tl, why, (long long)restart_step(e->onset));
	jb_begin(&j);
	grad_detail(&j, e);
	jb_str(&j, "rule", e->by_ratio ? "ratio" : e->by_overflow ?
	    "overflow" : e->early ? "early_growth" : "cusum");
	jb_top_layers(&j, top, tz, n);
	jb_int(&j, "restart_before_step", restart_step(e->onset));
	rep->detail = jb_end(&j);
	rep->value = e->g;
	rep->baseline = exp(e->m);
	rep->threshold = exp(e->m) * (e->by_ratio ?
	    r->cfg->grad_explosion_hard_ratio : r->cfg->grad_explosion_ratio);
}

void
detector_msg_spike(const struct detector *d, const struct run *r,
    const struct detector_grad_eval *e, struct detector_report *rep)
{
	const struct layer	*top[TOP_LAYERS];
	double			 tz[TOP_LAYERS];
	struct jb		 j;
	char			 v1[32], v2[32], tl[512];
	size_t			 n;

	(void)d;
	n = top_layers(r, e->step, top, tz);
	text_top_layers(tl, sizeof tl, top, tz, n);
	xasprintf(&rep->message, "Gradient norm spike at step %lld: %s, %.3gx "
	    "its baseline %s (z %.1f)%s. A lone spike is usually one bad "
	    "batch: check the data of step %lld; if spikes repeat or grow, "
	    "lower the learning rate or clip gradients.", (long long)e->step,
	    fmtv(v1, sizeof v1, e->g), e->ratio, fmtv(v2, sizeof v2,
	    exp(e->m)), e->z, tl, (long long)e->step);
	jb_begin(&j);
	grad_detail(&j, e);
	jb_top_layers(&j, top, tz, n);
	rep->detail = jb_end(&j);
	rep->value = e->g;
	rep->baseline = exp(e->m);
	rep->threshold = fmax(exp(e->m + e->zth * e->s),
	    exp(e->m) * r->cfg->grad_spike_ratio);
}

static double
loss_base(const struct detector_loss_eval *e, double y)
{
	return e->raw ? y : exp(y);
}

static void
loss_detail(struct jb *j, const struct detector_loss_eval *e)
{
	jb_num(j, "ratio", e->ratio);
	jb_num(j, "z", e->z);
	jb_num(j, "baseline", loss_base(e, e->m));
	jb_num(j, "cusum", e->cusum);
	jb_num(j, "initial_loss", loss_base(e, e->linit));
	jb_num(j, "loss_level", loss_base(e, e->level));
}

void
detector_msg_loss_spike(const struct detector *d, const struct run *r,
    const struct detector_loss_eval *e, struct detector_report *rep)
{
	const struct alert	*g = &r->al[ALERT_GRAD_SPIKE];
	const struct alert	*gx = &r->al[ALERT_GRAD_EXPLOSION];
	struct jb		 j;
	char			 v1[32], v2[32], co[96];

	(void)d;
	co[0] = '\0';
	if ((g->firing && e->step - g->fire_step <= 5) ||
	    (gx->firing && e->step - gx->fire_step <= 5))
		snprintf(co, sizeof co, " The gradient norm spiked too (step "
		    "%lld).", (long long)(gx->firing ? gx->fire_step :
		    g->fire_step));
	xasprintf(&rep->message, "Loss spike at step %lld: %s, %.3gx its "
	    "baseline %s (z %.1f).%s Check the data of step %lld (a corrupt or "
	    "mislabelled batch); if spikes repeat, lower the learning rate.",
	    (long long)e->step, fmtv(v1, sizeof v1, e->loss), e->ratio,
	    fmtv(v2, sizeof v2, loss_base(e, e->m)), e->z, co,
	    (long long)e->step);
	jb_begin(&j);
	loss_detail(&j, e);
	rep->detail = jb_end(&j);
	rep->value = e->loss;
	rep->baseline = loss_base(e, e->m);
	rep->threshold = e->raw ? e->m + e->zth * e->s :
	    fmax(exp(e->m + e->zth * e->s), exp(e->m) *
	    r->cfg->loss_spike_ratio);
}

void
detector_msg_divergence(const struct detector *d, const struct run *r,
    const struct detector_loss_eval *e, struct detector_report *rep)
{
	struct jb	 j;
	char		 v1[32], v2[32], v3[32], why[256];

	(void)d;
	if (e->by_plateau)
		snprintf(why, sizeof why, "the loss jumped at step %lld and "
		    "has stayed up since, without coming down",
		    (long long)e->onset);
	else if (e->by_linger)
		snprintf(why, sizeof why, "a loss spike has not settled for "
		    "%lld steps", (long long)(e->step - e->onset));
	else if (e->by_init)
		snprintf(why, sizeof why, "the loss is back at its initial "
		    "level %s: training lost its progress",
		    fmtv(v3, sizeof v3, loss_base(e, e->linit)));
	else
		snprintf(why, sizeof why, "the loss has stayed far above its "
		    "baseline (CUSUM %.0f)", e->cusum);
	xasprintf(&rep->message, "Loss diverging since step %lld: %s at step "
	    "%lld, %.3gx its baseline %s (z %.1f); %s. Restart from a "
	    "checkpoint before step %lld and lower the learning rate; check "
	    "the data from step %lld.", (long long)e->onset,
	    fmtv(v1, sizeof v1, e->loss), (long long)e->step, e->ratio,
	    fmtv(v2, sizeof v2, loss_base(e, e->m)), e->z, why,
	    (long long)restart_step(e->onset), (long long)e->onset);
	jb_begin(&j);
	loss_detail(&j, e);
	jb_str(&j, "rule", e->by_plateau ? "stuck_after_jump" :
	    e->by_linger ? "lingering_spike" : e->by_init ? "initial_level" :
	    "cusum");
	jb_int(&j, "restart_before_step", restart_step(e->onset));
	rep->detail = jb_end(&j);
	rep->value = e->loss;
	rep->baseline = loss_base(e, e->m);
	rep->threshold = e->by_init ? loss_base(e, e->linit) * (e->raw ? 1 :
	    r->cfg->loss_init_factor) : NAN;
}

void
detector_msg_clip(const struct detector *d, const struct run *r,
    const struct detector_step *x, enum alert_kind kind, int critical,
    struct detector_report *rep)
{
	struct jb	 j;
	char		 v1[32], v2[32];
	double		 typ = x->cmax * exp(r->kappa.p);

	(void)d;
	if (kind == ALERT_CLIP_SATURATION)
		xasprintf(&rep->message, "Clipping saturated since step %lld: "
		    "%.0f%% of recent steps are clipped, the clipped norms "
		    "typically %.3gx the threshold %s%s. Training is in effect "
		    "normalised gradient descent with a fixed small step: check "
		    "the clip threshold and raise max_norm towards the typical "
		    "pre-clip norm (~%s).", (long long)r->sat_since,
		    100 * r->ps.p, exp(r->kappa.p), fmtv(v1, sizeof v1, x->cmax),
		    critical ? " (an order of magnitude or more)" : "",
		    fmtv(v2, sizeof v2, typ));
	else
		xasprintf(&rep->message, "Clip rate surge at step %lld: %.0f%% "
		    "of recent steps are clipped against %.0f%% over the long "
		    "run. Gradient norms are rising above the threshold %s, a "
		    "common precursor of an explosion: watch the gradient norm "
		    "and lower the learning rate if it keeps growing.",
		    (long long)x->step, 100 * r->ps.p, 100 * r->pl.p,
		    fmtv(v1, sizeof v1, x->cmax));
	jb_begin(&j);
	jb_num(&j, "clip_rate", r->ps.p);
	jb_num(&j, "clip_rate_long", r->pl.p);
	jb_num(&j, "clipped_ratio", exp(r->kappa.p));
	jb_num(&j, "max_norm", x->cmax);
	jb_num(&j, "typical_pre_norm", typ);
	rep->detail = jb_end(&j);
	rep->value = r->ps.p;
	rep->baseline = kind == ALERT_CLIP_SURGE ? r->pl.p : NAN;
	rep->threshold = kind == ALERT_CLIP_SURGE ?
	    fmax(r->cfg->clip_surge_rate, r->cfg->clip_surge_factor * r->pl.p) :
	    r->cfg->clip_saturation_rate;
}

void
detector_msg_scaler(const struct run *r, const struct detector_step *x,
    int collapse, struct detector_report *rep)
{
	struct jb	 j;
	char		 v1[32];
	int		 has_scale = (x->has >> SERIES_LOSS_SCALE) & 1;

	if (collapse)
		xasprintf(&rep->message, "Loss scaler collapse at step %lld: "
		    "%u skipped (overflow) steps in a row since step %lld%s%s. "
		    "Mixed precision cannot find a working scale: check for "
		    "inputs or activations that overflow float16 (e.g. "
		    "unnormalised inputs), lower the learning rate, or train in "
		    "bf16 or float32; restart from a checkpoint before step "
		    "%lld.", (long long)x->step, r->skip_run,
		    (long long)r->skip_since, has_scale ? ", loss scale now " :
		    "", has_scale ? fmtv(v1, sizeof v1, x->loss_scale) : "",
		    (long long)r->skip_since);
	else
		xasprintf(&rep->message, "The loss scaler skips %.0f%% of "
		    "recent steps (overflows; %llu skipped so far). A few are "
		    "normal (one per growth interval); this many mean float16 "
		    "overflows all the time: check for growing activations or "
		    "gradients, lower the learning rate, or train in bf16.",
		    100 * r->ovf_rate, (unsigned long long)r->nskipped +
		    ((x->has >> SERIES_SKIPPED) & 1 && x->skipped != 0));
	jb_begin(&j);
	jb_str(&j, "rule", collapse ? "loss_scale_collapse" :
	    "overflow_rate");
	jb_num(&j, "overflow_rate", r->ovf_rate);
	jb_int(&j, "skipped_in_a_row", r->skip_run);
	if (has_scale)
		jb_num(&j, "loss_scale", x->loss_scale);
	rep->detail = jb_end(&j);
	rep->value = collapse && has_scale ? x->loss_scale : r->ovf_rate;
	rep->baseline = NAN;
	rep->threshold = collapse && has_scale ? r->cfg->scaler_min_scale :
	    r->cfg->scaler_rate_warning;
}

void
detector_msg_stall(const struct run *r, double gap, double typical,
    double deadline, enum alert_severity sev, struct detector_report *rep)
{
	struct jb	j;

	xasprintf(&rep->message, "%sNo new step for %.0f s after step %lld "
	    "(typical interval %.3g s, deadline %.0f s): the training loop "
	    "may be hung, crashed or paused. Check the process and its host; "
	    "if it ended, mark the run finished.", sev == ALERT_CRITICAL ?
	    "Stalled for long: " : "", gap, (long long)r->last_step, typical,
	    deadline);
	jb_begin(&j);
	jb_num(&j, "gap_seconds", gap);
	jb_num(&j, "typical_interval_seconds", typical);
	jb_num(&j, "deadline_seconds", deadline);
	jb_int(&j, "last_step", r->last_step);
	rep->detail = jb_end(&j);
	rep->value = gap;
	rep->baseline = typical;
	rep->threshold = sev == ALERT_CRITICAL ?
	    deadline * r->cfg->stall_critical_factor : deadline;
}

char *
detector_msg_stall_end(const struct run *r, const struct alert *al,
    int64_t step, double now)
{
	char	*m;

	xasprintf(&m, "Steps resumed at step %lld after %.0f s without one "
	    "(last step before: %lld).", (long long)step,
	    now - r->last_advance, (long long)al->fire_step);
	return m;
}

char *
detector_msg_resolved(const struct run *r, const struct alert *al,
    enum alert_kind kind, const char *series, int64_t step,
    const char *outcome)
{
	char	*m, peak[64];

	(void)r;
	peak[0] = '\0';
	if (isfinite(al->peak) && (kind == ALERT_GRAD_EXPLOSION ||
	    kind == ALERT_GRAD_SPIKE || kind == ALERT_LOSS_SPIKE))
		snprintf(peak, sizeof peak, ", peak %.3gx the baseline",
		    al->peak);
	xasprintf(&m, "%s%s%s resolved at step %lld after %lld steps%s: %s "
	    "(held %u steps).", alert_kind_name(kind),
	    *series != '\0' ? " on " : "", series, (long long)step,
	    (long long)(step - al->fire_step), peak, outcome, al->ok);
	return m;
}

char *
detector_msg_superseded(const struct run *r, const struct alert *al,
    enum alert_kind kind, enum alert_kind by, int64_t step)
{
	char	*m;

	(void)r;
	if (kind == ALERT_GRAD_EXPLOSION && by == ALERT_NONFINITE)
		xasprintf(&m, "grad_explosion superseded by nonfinite at step "
		    "%lld: it fired %lld steps before the first non-finite "
		    "value (fired at step %lld, onset %lld).", (long long)step,
		    (long long)(step - al->fire_step),
		    (long long)al->fire_step, (long long)al->onset_step);
	else
		xasprintf(&m, "%s superseded by %s at step %lld.",
		    alert_kind_name(kind), alert_kind_name(by),
		    (long long)step);
	return m;
}

char *
detector_detail_lead(const struct alert *al, int64_t step)
{
	struct jb	j;

	jb_begin(&j);
	jb_str(&j, "outcome", "superseded");
	jb_str(&j, "superseded_by", "nonfinite");
	jb_int(&j, "lead_steps", step - al->fire_step);
	jb_int(&j, "nonfinite_step", step);
	return jb_end(&j);
}
