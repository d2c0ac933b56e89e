/* SPDX-License-Identifier: MIT */
/*
 * detector_order: a run's tensors in order from the input to the output
 * (by depth, then by first sight), the order the vanishing profile and
 * the patterns read them in.  The detector's thread.
 */
#include <stdint.h>
#include <stdlib.h>

#include "detector.h"
#include "detector_int.h"
#include "xmalloc.h"

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
