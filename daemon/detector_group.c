/* SPDX-License-Identifier: MIT */
/*
 * detector_group: tensor alerts as patterns (see detector_int.h).  A
 * vanishing net raises one vanishing alert that lists its tensors, not
 * twenty: the first tensor to fire fires the run's alert of that kind,
 * later ones join it (an update listing them all), and it resolves with
 * its last member.  The detector's thread, like the rest of it.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "detector.h"
#include "detector_int.h"
#include "xmalloc.h"

#define GROUP_NAMES	50	/* tensors listed in a pattern's detail */

struct alert *
detector_layer_alert(struct layer *l, enum alert_kind kind)
{
	switch (kind) {
	case ALERT_VANISHING:
		return &l->al_van;
	case ALERT_DEAD_LAYER:
		return &l->al_dead;
	case ALERT_NO_GRADIENT:
		return &l->al_never;
	case ALERT_GRAD_EXPLOSION:
		return &l->al_dom;
	default:
		return &l->al_adam;
	}
}

void
detector_group_cleanup(struct group *g)
{
	free(g->leader);
	free(g->first_msg);
	g->leader = g->first_msg = NULL;
}

/* The firing members of kind, in depth order: up to max names, and their count. */
static size_t
detector_group_names(struct run *r, enum alert_kind kind, const char **names,
    size_t max, enum alert_severity *top)
{
	struct layer	*l;
	size_t		 n = 0, total = 0;
	uint32_t	 i;

	*top = ALERT_INFO;
	if (r->order_dirty)
		detector_run_order(r);
	/* Eligible tensors in depth order first, then the rest. */
	for (i = 0; i < r->nbyorder; i++) {
		l = r->layers[r->byorder[i]];
		if (!detector_layer_alert(l, kind)->firing)
			continue;
		if (n < max)
			names[n++] = l->name;
		total++;
		if (detector_layer_alert(l, kind)->severity > *top)
			*top = detector_layer_alert(l, kind)->severity;
	}
	for (i = 0; i < r->nlayers; i++) {
		l = r->layers[i];
		if (l->eligible || !detector_layer_alert(l, kind)->firing)
			continue;
		if (n < max)
			names[n++] = l->name;
		total++;
		if (detector_layer_alert(l, kind)->severity > *top)
			*top = detector_layer_alert(l, kind)->severity;
	}
	return total;
}

/*
 * The pattern changed (a member joined, left or changed severity): an
 * update with the message and detail of its members now.  rep's detail
 * (the last member's numbers) is kept under the tensor list.
 */
static void
detector_group_changed(struct detector *d, struct run *r, enum alert_kind kind,
    struct detector_report *rep)
{
	struct group		*g = &r->grp[kind];
	const char		*names[GROUP_NAMES];
	enum alert_severity	 top;
	size_t			 total, n;
	char			*detail;

	total = detector_group_names(r, kind, names, GROUP_NAMES, &top);
	n = total < GROUP_NAMES ? total : GROUP_NAMES;
	free(rep->message);
	rep->message = detector_msg_group(kind, g->first_msg, names, n, total);
	detail = detector_detail_group(rep->detail, names, n, total);
	free(rep->detail);
	rep->detail = detail;
	/* The pattern's severity is its worst member's. */
	detector_alert_update(d, r, &g->al, kind, g->leader, top, rep);
}

void
detector_member_fire(struct detector *d, struct run *r, struct layer *l,
    enum alert_kind kind, enum alert_severity sev, int64_t onset,
    int64_t step, struct detector_report *rep)
{
	struct group	*g = &r->grp[kind];
	const char	*names[1] = { l->name };
	char		*detail;

	detector_alert_arm(r, detector_layer_alert(l, kind), sev, onset, step,
	    rep->value);
	g->members++;
	if (g->al.firing) {
		detector_group_changed(d, r, kind, rep);
		return;
	}
	detector_group_cleanup(g);
	g->leader = xstrdup(l->name);
	g->first_msg = xstrdup(rep->message);
	detail = detector_detail_group(rep->detail, names, 1, 1);
	free(rep->detail);
	rep->detail = detail;
	detector_alert_fire(d, r, &g->al, kind, g->leader, sev, onset, step,
	    rep);
}

void
detector_member_update(struct detector *d, struct run *r, struct layer *l,
    enum alert_kind kind, enum alert_severity sev,
    struct detector_report *rep)
{
	struct alert	*m = detector_layer_alert(l, kind);

	if (d->replay || !m->firing) {
		free(rep->message);
		free(rep->detail);
		return;
	}
	m->severity = (uint8_t)sev;
	detector_group_changed(d, r, kind, rep);
}

void
detector_member_resolve(struct detector *d, struct run *r, struct layer *l,
    enum alert_kind kind, int64_t step, char *message)
{
	struct alert		*m = detector_layer_alert(l, kind);
	struct group		*g = &r->grp[kind];
	struct detector_report	 rep;

	if (d->replay || !m->firing) {
		free(message);
		return;
	}
	detector_alert_disarm(m, step);
	if (g->members > 0)
		g->members--;
	if (g->members == 0) {
		detector_alert_resolve(d, r, &g->al, kind, g->leader != NULL ?
		    g->leader : l->name, step, message, NULL);
		return;
	}
	memset(&rep, 0, sizeof rep);
	rep.value = g->al.peak;
	rep.baseline = rep.threshold = NAN;
	rep.message = message;
	detector_group_changed(d, r, kind, &rep);
}

void
detector_group_restore(struct run *r, struct layer *l, enum alert_kind kind,
    enum alert_severity sev, int64_t onset, int64_t fire)
{
	struct group	*g = &r->grp[kind];
	struct alert	*m = detector_layer_alert(l, kind);

	detector_alert_arm(r, m, sev, onset, fire, NAN);
	detector_alert_arm(r, &g->al, sev, onset, fire, NAN);
	detector_group_cleanup(g);
	g->leader = xstrdup(l->name);
	g->first_msg = xstrdup("");
	g->members = 1;
}
