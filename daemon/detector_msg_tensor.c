/* SPDX-License-Identifier: MIT */
/*
 * detector_msg_tensor: the words and details of the alerts about
 * tensors (vanishing, dead, no gradient, the patterns of many tensors,
 * a dominant tensor, never-active tensors, Adam's ratio).  Like
 * detector_msg.c, which has the run-level ones: called only when an
 * alert changes state, on the detector's thread.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "detector.h"
#include "detector_detail.h"
#include "detector_int.h"
#include "xmalloc.h"

void
detector_msg_vanishing(const struct detector *d, const struct run *r,
    const struct detector_vanish_eval *e, struct detector_report *rep)
{
	const struct layer	*l = e->l;
	struct jb		 j;
	char			 v1[32], v2[32], how[256], share[96];
	const char		*rule, *hint;
	double			 dec, r1, r2, r3;
	uint32_t		 i, nfiring = 0;

	(void)d;
	for (i = 0; i < r->nbyorder; i++)
		if (r->layers[r->byorder[i]]->al_van.firing ||
		    r->layers[r->byorder[i]] == l)
			nfiring++;
	if (e->nfiring > 0)
		nfiring = e->nfiring;
	/* The rule furthest past its own threshold speaks. */
	r1 = l->c1 / (r->cfg->vanish_v1_decades * LN10);
	r2 = l->c2 / (r->cfg->vanish_v2_decades * LN10);
	r3 = l->c3 / (r->cfg->vanish_v3_decades * LN10);
	if (r3 >= r1 && r3 >= r2 && l->c3 > 0) {
		rule = "V3";
		dec = l->c3 / LN10;
		snprintf(how, sizeof how, "%.1f decades below the last layers "
		    "(median %s); the first quarter of the net is %.1f decades "
		    "below the last", dec, fmtv(v2, sizeof v2, exp(e->qlast)),
		    -e->dq / LN10);
		hint = "The net is broken from the start: check the "
		    "initialisation (weights too small), saturating activations "
		    "(sigmoid, tanh), and add normalisation or residual "
		    "connections; the early layers are not learning.";
	} else if (r1 >= r2) {
		rule = "V1";
		dec = l->c1 / LN10;
		snprintf(how, sizeof how, "%.1f decades below its own peak",
		    dec);
		hint = "The layer stopped learning: check for saturated or "
		    "dead units, a learning rate that reached zero, or a layer "
		    "frozen by mistake.";
	} else {
		rule = "V2";
		dec = l->c2 / LN10;
		snprintf(how, sizeof how, "%.1f decades lower relative to the "
		    "median tensor (%s) than at the reference", dec,
		    fmtv(v2, sizeof v2, exp(e->med)));
		hint = "This layer fell behind the rest: check for saturating "
		    "activations after it (e.g. weights that grew large), and "
		    "consider normalisation or a lower learning rate.";
	}
	share[0] = '\0';
	if (nfiring > 1)
		snprintf(share, sizeof share, " %u of %u tensors are affected.",
		    nfiring, e->n);
	xasprintf(&rep->message, "Vanishing gradient in %s since step %lld: "
	    "typical %s %s, %s.%s %s", l->name,
	    (long long)(l->al_van.firing ? l->al_van.onset_step :
	    l->v_bad > 0 ? l->v_onset : l->first_step),
	    l->half_ln_numel > 0 ? "per-element gradient" : "gradient norm",
	    fmtv(v1, sizeof v1, exp(l->ybar.p)), how, share, hint);
	jb_begin(&j);
	jb_str(&j, "rule", rule);
	jb_num(&j, "decades", dec);
	jb_num(&j, "v1_decades", l->c1 / LN10);
	jb_num(&j, "v2_decades", l->c2 / LN10);
	jb_num(&j, "v3_decades", l->c3 / LN10);
	jb_num(&j, "depth_profile_decades", e->dq / LN10);
	jb_num(&j, "level", exp(l->ybar.p));
	jb_num(&j, "median_level", exp(e->med));
	jb_int(&j, "tensors_firing", nfiring);
	jb_int(&j, "tensors", e->n);
	rep->detail = jb_end(&j);
	rep->value = exp(l->ybar.p);
	rep->baseline = rule[1] == '3' ? exp(e->qlast) : rule[1] == '1' ?
	    exp(l->ymax) : exp(e->med + l->uref);
	rep->threshold = rep->baseline * pow(10, -(rule[1] == '3' ?
	    r->cfg->vanish_v3_decades : rule[1] == '1' ?
	    r->cfg->vanish_v1_decades : r->cfg->vanish_v2_decades));
}

void
detector_msg_dead(const struct detector *d, const struct run *r,
    const struct layer *l, const struct detector_step *x,
    struct detector_report *rep)
{
	struct jb	 j;
	char		 v1[32];

	(void)d;
	if (l->ever_nonzero)
		xasprintf(&rep->message, "Dead layer %s: its gradient has been "
		    "exactly 0 for %u steps since step %lld while the global "
		    "gradient norm is %s. Its units no longer learn: check its "
		    "pre-activations and bias (e.g. ReLUs killed by a large "
		    "negative bias or a too-high learning rate), or restart "
		    "from a checkpoint before step %lld.", l->name,
		    l->zero_run, (long long)l->zero_since,
		    fmtv(v1, sizeof v1, x->grad), (long long)l->zero_since);
	else
		xasprintf(&rep->message, "%s has never had a non-zero gradient "
		    "(%u steps since step %lld): an unused parameter or a "
		    "branch outside the graph; check requires_grad, .detach() "
		    "and the forward path.", l->name, l->zero_run,
		    (long long)l->zero_since);
	jb_begin(&j);
	jb_int(&j, "zero_steps", l->zero_run);
	jb_int(&j, "dead_tensors", r->ndied);
	jb_int(&j, "tensors", r->nlayers);
	jb_num(&j, "global_norm", x->grad);
	jb_str(&j, "cause", l->ever_nonzero ? "layer_died" : "never_active");
	rep->detail = jb_end(&j);
	rep->value = 0;
	rep->baseline = NAN;
	rep->threshold = r->cfg->dead_zero;
}

void
detector_msg_no_gradient(const struct detector *d, const struct run *r,
    const struct detector_step *x, int by_global,
    struct detector_report *rep)
{
	struct jb	 j;
	char		 names[512];
	size_t		 off = 0;
	uint32_t	 i, k = 0;
	int		 w;

	(void)d;
	names[0] = '\0';
	for (i = 0; i < r->nlayers && k < 5; i++) {
		if (!r->layers[i]->died)
			continue;
		w = snprintf(names + off, sizeof names - off, "%s%s",
		    k > 0 ? ", " : "", r->layers[i]->name);
		if (w < 0 || (size_t)w >= sizeof names - off)
			break;
		off += (size_t)w;
		k++;
	}
	if (by_global)
		xasprintf(&rep->message, "No gradient: the global gradient "
		    "norm has been 0 for %u steps since step %lld with a finite "
		    "loss. Nothing reaches the parameters: check for a detached "
		    "graph (.detach(), torch.no_grad(), .item() in the loss), "
		    "frozen parameters, or all units dead.", r->zero_global,
		    (long long)r->zero_global_since);
	else
		xasprintf(&rep->message, "No gradient in much of the net: %u "
		    "of %u tensors get exactly zero gradients (%s%s) at step "
		    "%lld. Check for dead ReLUs or a broken branch, lower the "
		    "learning rate, or restart from a checkpoint before they "
		    "died.", r->ndied, r->nlayers, names,
		    r->ndied > k ? ", ..." : "", (long long)x->step);
	jb_begin(&j);
	jb_str(&j, "rule", by_global ? "global_zero" : "dead_share");
	jb_int(&j, "dead_tensors", r->ndied);
	jb_int(&j, "tensors", r->nlayers);
	jb_int(&j, "zero_global_steps", r->zero_global);
	rep->detail = jb_end(&j);
	rep->value = by_global ? 0 : (double)r->ndied / r->nlayers;
	rep->baseline = NAN;
	rep->threshold = by_global ? r->cfg->dead_zero : r->cfg->dead_share;
}

/* ---- patterns ------------------------------------------------------------ */

static const char *
group_what(enum alert_kind kind)
{
	switch (kind) {
	case ALERT_VANISHING:
		return "Vanishing gradients";
	case ALERT_DEAD_LAYER:
		return "Dead tensors (exactly zero gradients)";
	case ALERT_NO_GRADIENT:
		return "Tensors that require a gradient and never got one";
	case ALERT_GRAD_EXPLOSION:
		return "Tensors exploding inside the global norm";
	case ALERT_INSTABILITY:
		return "Gradients far above Adam's second moment";
	default:
		return alert_kind_name(kind);
	}
}

char *
detector_msg_group(enum alert_kind kind, const char *first_msg,
    const char *const *names, size_t n, size_t total)
{
	struct jb	j;		/* used as a string builder only */
	size_t		i;

	/* One tensor: its own message says it all. */
	if (total == 1 && first_msg != NULL && *first_msg != '\0')
		return xstrdup(first_msg);
	j.cap = 256;
	j.p = xmalloc(j.cap);
	j.len = 0;
	j.p[0] = '\0';
	jb_put(&j, "%s on %zu tensor%s: ", group_what(kind), total,
	    total == 1 ? "" : "s");
	for (i = 0; i < n; i++)
		jb_put(&j, "%s%s", i > 0 ? ", " : "", names[i]);
	if (total > n)
		jb_put(&j, " and %zu more", total - n);
	if (first_msg != NULL && *first_msg != '\0')
		jb_put(&j, ". The first: %s", first_msg);
	return j.p;
}

char *
detector_detail_group(const char *detail, const char *const *names,
    size_t n, size_t total)
{
	struct jb	j;
	size_t		i, len;

	jb_begin(&j);
	/* The member's own numbers first, as they were. */
	if (detail != NULL && (len = strlen(detail)) > 2 && detail[0] == '{' &&
	    detail[len - 1] == '}') {
		jb_put(&j, "%.*s", (int)(len - 2), detail + 1);
		j.first = 0;
	}
	jb_key(&j, "tensors");
	jb_put(&j, "[");
	for (i = 0; i < n; i++) {
		if (i > 0)
			jb_put(&j, ",");
		jb_quote(&j, names[i]);
	}
	jb_put(&j, "]");
	jb_int(&j, "tensor_count", (int64_t)total);
	return jb_end(&j);
}

void
detector_msg_dominant(const struct run *r, const struct layer *l,
    const struct detector_step *x, double grown, double share,
    struct detector_report *rep)
{
	struct jb	j;
	char		v1[32], v2[32];

	(void)r;
	xasprintf(&rep->message, "%s: its gradient grew %.3gx since step %lld "
	    "(its low) and now carries %.0f%% of the squared global norm "
	    "(%s of %s at step %lld): an explosion in the making that the "
	    "global norm hides. Check what scales this tensor's gradient (a "
	    "loss scale, a per-parameter lr, a tied or embedding weight) and "
	    "lower its learning rate or clip it.", l->name, exp(grown),
	    (long long)l->ylow_step, 100 * share, fmtv(v1, sizeof v1, l->last),
	    fmtv(v2, sizeof v2, x->grad), (long long)x->step);
	jb_begin(&j);
	jb_str(&j, "rule", "dominant_tensor");
	jb_num(&j, "growth", exp(grown));
	jb_num(&j, "share", share);
	jb_int(&j, "low_step", l->ylow_step);
	rep->detail = jb_end(&j);
	rep->value = l->last;
	rep->baseline = NAN;
	rep->threshold = NAN;
}

void
detector_msg_never(const struct run *r, const struct layer *l,
    const struct detector_step *x, struct detector_report *rep)
{
	struct jb	j;

	xasprintf(&rep->message, "%s requires a gradient but got none in the "
	    "%llu steps to step %lld: a branch whose output is detached or "
	    "unused, a module left out of forward(), or a tensor meant to be "
	    "frozen with requires_grad still set.", l->name,
	    (unsigned long long)r->nsteps, (long long)x->step);
	jb_begin(&j);
	jb_str(&j, "rule", "never_active");
	jb_int(&j, "steps", (int64_t)r->nsteps);
	rep->detail = jb_end(&j);
	rep->value = l->ngrad == 0 ? NAN : 0;
	rep->baseline = NAN;
	rep->threshold = NAN;
}

void
detector_msg_instability(const struct run *r, const struct layer *l,
    const struct detector_step *x, double ratio, double jump, double z,
    struct detector_report *rep)
{
	struct jb	j;
	char		v1[32];

	(void)r;
	xasprintf(&rep->message, "%s: the squared gradient is %s times Adam's "
	    "second-moment estimate at step %lld, %.3gx its usual ratio (z "
	    "%.1f): the update is far larger than Adam has adapted to, which "
	    "in transformers comes a few steps before a loss spike. Lower the "
	    "learning rate, add warm-up, or normalise the layer (QK-norm for "
	    "attention).", l->name, fmtv(v1, sizeof v1, ratio),
	    (long long)x->step, exp(jump), z);
	jb_begin(&j);
	jb_str(&j, "rule", "adam_ratio");
	jb_num(&j, "ratio", ratio);
	jb_num(&j, "jump", exp(jump));
	jb_num(&j, "z", z);
	rep->detail = jb_end(&j);
	rep->value = ratio;
	rep->baseline = ratio / exp(jump);
	rep->threshold = NAN;
}
