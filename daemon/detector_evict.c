/* SPDX-License-Identifier: MIT */
/*
 * detector_evict: a quiet run's memory; see detector.h.  A run that sent
 * no step for a while (the writer decides: evict.h) gives up its
 * tensors, the state that grows with its series (about 1 KB each), and
 * keeps its run-level state whole: baselines of the loss and the global
 * norm, every run-level alert and pattern, its rhythm and stall alert,
 * so the stall timer goes on ticking it.  Its tensors' firing alerts are
 * kept as (tensor, kind, alert).  When it comes back, the writer reads
 * its recent history and detector_refill() replays it into fresh tensors,
 * as a restart does, with the kept alerts armed first.  The detector's
 * thread, like the rest of it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "detector.h"
#include "detector_int.h"
#include "xmalloc.h"

/* The kinds a tensor's own alerts have (detector_layer_alert). */
static const enum alert_kind detector_tensor_kinds[] = {
	ALERT_VANISHING, ALERT_DEAD_LAYER, ALERT_NO_GRADIENT,
	ALERT_GRAD_EXPLOSION, ALERT_INSTABILITY
};
#define DETECTOR_NTENSOR_KINDS \
	(sizeof detector_tensor_kinds / sizeof detector_tensor_kinds[0])

/* Keep the firing alerts of l in r->kept. */
static void
detector_evict_keep(struct run *r, struct layer *l)
{
	struct kept_alert	*k;
	struct alert		*al;
	size_t			 i;

	for (i = 0; i < DETECTOR_NTENSOR_KINDS; i++) {
		al = detector_layer_alert(l, detector_tensor_kinds[i]);
		if (!al->firing)
			continue;
		r->kept = xreallocarray(r->kept, r->nkept + 1,
		    sizeof *r->kept);
		k = &r->kept[r->nkept++];
		k->name = xstrdup(l->name);
		k->kind = detector_tensor_kinds[i];
		k->al = *al;
	}
}

void
detector_evict(struct detector *d, int64_t run_id)
{
	struct run	*r;
	uint32_t	 i;

	if ((r = detector_run_find(d, run_id)) == NULL || r->evicted)
		return;
	for (i = 0; i < r->nlayers; i++) {
		detector_evict_keep(r, r->layers[i]);
		detector_layer_free(r->layers[i]);
	}
	free(r->layers);
	free(r->lhash);
	free(r->byorder);
	r->layers = NULL;
	r->lhash = NULL;
	r->byorder = NULL;
	r->nlayers = r->caplayers = r->nunseen = 0;
	r->lhash_cap = r->nbyorder = 0;
	r->order_dirty = 0;
	r->evicted = 1;
}

int
detector_is_evicted(struct detector *d, int64_t run_id)
{
	struct run	*r = detector_run_find(d, run_id);

	return r != NULL && r->evicted;
}

/* Move t's tensors to r (whose own are gone); t is left without any. */
static void
detector_evict_take(struct run *r, struct run *t)
{
	r->layers = t->layers;
	r->nlayers = t->nlayers;
	r->caplayers = t->caplayers;
	r->nunseen = t->nunseen;
	r->lhash = t->lhash;
	r->lhash_cap = t->lhash_cap;
	r->ndied = t->ndied;
	r->order_dirty = 1;	/* byorder is made again when read */
	t->layers = NULL;
	t->lhash = NULL;
	t->nlayers = t->caplayers = t->lhash_cap = 0;
}

void
detector_refill(struct detector *d, int64_t run_id, const struct batch *b,
    double now, struct detector_events *out)
{
	struct run	*r, *t;
	struct alert	*al;
	size_t		 i;
	uint32_t	 idx;

	if ((r = detector_run_find(d, run_id)) == NULL) {
		if (b != NULL)
			detector_feed(d, run_id, b, now, 1, out);
		return;
	}
	if (!r->evicted)
		return;
	/*
	 * The replay runs on a scratch run t with r's alerts (they decide
	 * which baselines freeze), its tensors first seen in their stored
	 * order, the kept alerts armed on them.  Then r takes t's tensors
	 * and keeps its own run-level state, which saw every step.
	 */
	t = detector_run_new(d, run_id);
	t->cfg = r->cfg;
	memcpy(t->al, r->al, sizeof t->al);
	t->al_scaler = r->al_scaler;
	for (i = 0; b != NULL && i < b->nseries; i++)
		if (series_kind_is_tensor(b->series[i].kind))
			(void)detector_layer_get(t, b->series[i].name);
	for (i = 0; i < r->nkept; i++) {
		idx = detector_layer_get(t, r->kept[i].name);
		al = detector_layer_alert(t->layers[idx], r->kept[i].kind);
		*al = r->kept[i].al;
		free(r->kept[i].name);
	}
	free(r->kept);
	r->kept = NULL;
	r->nkept = 0;
	if (b != NULL)
		detector_feed_run(d, t, b, now, 1, out);
	detector_evict_take(r, t);
	r->evicted = 0;
	detector_run_free(t);
}

void
detector_counts(const struct detector *d, size_t *runs, size_t *evicted,
    size_t *tensors)
{
	const struct run	*r;
	size_t			 i;

	*runs = *evicted = *tensors = 0;
	for (i = 0; i < d->nbucket; i++)
		for (r = d->bucket[i]; r != NULL; r = r->next) {
			if (r->evicted)
				(*evicted)++;
			else
				(*runs)++;
			*tensors += r->nlayers;
		}
}
