/* SPDX-License-Identifier: MIT */
/*
 * fuzz_ingest: a libFuzzer harness for the ingest parser.  Each input is
 * the body of POST /api/v1/ingest, given to both paths: whenever the
 * fast path (ingest_parse_fast) takes it, the Jansson path
 * (ingest_parse_tree) must take it too and build the same batch, bit
 * for bit.  When the fast path declines, ingest_parse() falls back to
 * Jansson, so there is nothing to compare.  Every number token that
 * numscan() accepts anywhere in the input must also be what strtod()
 * (strtoll() for an integer) makes of the same token, bit for bit.  A
 * mismatch aborts, so libFuzzer keeps the input; ASan, UBSan and
 * LeakSanitizer catch the rest.  Built and run by `make fuzz`.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "ingest.h"
#include "numscan.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void	fuzz_fail(const char *fmt, ...)
		    __attribute__((format(printf, 1, 2), noreturn));

/* Report a mismatch and abort, so that libFuzzer saves the input. */
static void
fuzz_fail(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	fputs("fuzz_ingest: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	abort();
}

static uint64_t
fuzz_bits(double d)
{
	uint64_t	u;

	memcpy(&u, &d, sizeof u);
	return u;
}

/* numscan's answer for the token [s, e) against the C library's. */
static void
fuzz_number(const char *s, const char *e, enum numscan_kind kind,
    int64_t iv, double dv)
{
	size_t		 len = (size_t)(e - s);
	char		*tok, *stop;
	long long	 ll;
	double		 d;

	if ((tok = malloc(len + 1)) == NULL)
		abort();
	memcpy(tok, s, len);
	tok[len] = '\0';
	errno = 0;
	if (kind == NUMSCAN_INT) {
		ll = strtoll(tok, &stop, 10);
		if (stop != tok + len || errno != 0 || ll != iv)
			fuzz_fail("numscan gives the integer %lld for '%s', "
			    "strtoll %lld (%s)", (long long)iv, tok, ll,
			    errno != 0 ? "out of range" : "in range");
	} else {
		d = strtod(tok, &stop);
		if (stop != tok + len)
			fuzz_fail("numscan takes '%s' whole, strtod only "
			    "%zu bytes of it", tok, (size_t)(stop - tok));
		if (errno == ERANGE && isinf(d))
			fuzz_fail("numscan takes '%s', which overflows",
			    tok);
		if (fuzz_bits(d) != fuzz_bits(dv))
			fuzz_fail("numscan gives %.17g (0x%016llx) for '%s', "
			    "strtod %.17g (0x%016llx)", dv,
			    (unsigned long long)fuzz_bits(dv), tok, d,
			    (unsigned long long)fuzz_bits(d));
	}
	free(tok);
}

/* Every number token numscan accepts in [p, end), left to right. */
static void
fuzz_numbers(const char *p, const char *end)
{
	enum numscan_kind	 kind;
	const char		*q;
	int64_t			 iv;
	double			 dv;

	while (p < end) {
		if (*p != '-' && (*p < '0' || *p > '9')) {
			p++;
			continue;
		}
		q = p;
		kind = numscan(p, end, &q, &iv, &dv);
		if (kind == NUMSCAN_NONE || q <= p) {
			p++;
			continue;
		}
		fuzz_number(p, q, kind, iv, dv);
		p = q;
	}
}

static int
str_same(const char *a, const char *b)
{
	return (a == NULL && b == NULL) ||
	    (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* A batch's own bookkeeping: series within their capacity, npoints. */
static void
fuzz_batch_ok(const struct batch *b, const char *path)
{
	size_t	i, n = 0;

	if (b->run == NULL)
		fuzz_fail("%s path: a batch without a run", path);
	for (i = 0; i < b->nseries; i++) {
		if (b->series[i].n > b->series[i].cap)
			fuzz_fail("%s path: series %zu holds %zu points in %zu",
			    path, i, b->series[i].n, b->series[i].cap);
		n += b->series[i].n;
	}
	if (n != b->npoints)
		fuzz_fail("%s path: npoints %zu, the series hold %zu", path,
		    b->npoints, n);
}

/* Abort unless a (the fast path's) and b (Jansson's) are the same. */
static void
fuzz_same(const struct batch *a, const struct batch *b)
{
	const struct batch_series	*x, *y;
	const struct batch_layer_meta	*l, *m;
	size_t				 i, j;

	if (!str_same(a->run, b->run) || a->dropped != b->dropped ||
	    a->nsteps != b->nsteps || a->nseries != b->nseries ||
	    a->npoints != b->npoints || !str_same(a->meta_json, b->meta_json) ||
	    !str_same(a->project, b->project) ||
	    !str_same(a->config_json, b->config_json) ||
	    a->nlayers_meta != b->nlayers_meta)
		fuzz_fail("the paths' batches differ in their header: run "
		    "%s/%s, %zu/%zu steps, %zu/%zu series, %zu/%zu points",
		    a->run, b->run, a->nsteps, b->nsteps, a->nseries,
		    b->nseries, a->npoints, b->npoints);
	if (a->nsteps > 0 &&
	    memcmp(a->steps, b->steps, a->nsteps * sizeof *a->steps) != 0)
		fuzz_fail("the paths' step lists differ");
	for (i = 0; i < a->nlayers_meta; i++) {
		l = &a->layers_meta[i];
		m = &b->layers_meta[i];
		if (!str_same(l->name, m->name) || l->numel != m->numel ||
		    l->depth != m->depth ||
		    !str_same(l->shape_json, m->shape_json))
			fuzz_fail("meta.layers entry %zu differs", i);
	}
	for (i = 0; i < a->nseries; i++) {
		x = &a->series[i];
		y = &b->series[i];
		if (x->kind != y->kind || strcmp(x->name, y->name) != 0 ||
		    x->n != y->n)
			fuzz_fail("series %zu differs: %s (%zu points) against "
			    "%s (%zu points)", i, x->name, x->n, y->name, y->n);
		for (j = 0; j < x->n; j++)
			if (x->steps[j] != y->steps[j] ||
			    fuzz_bits(x->values[j]) != fuzz_bits(y->values[j]))
				fuzz_fail("series %zu (%s), point %zu: fast "
				    "path step %lld value %.17g (0x%016llx), "
				    "Jansson step %lld value %.17g (0x%016llx)",
				    i, x->name, j, (long long)x->steps[j],
				    x->values[j],
				    (unsigned long long)fuzz_bits(x->values[j]),
				    (long long)y->steps[j], y->values[j],
				    (unsigned long long)fuzz_bits(y->values[j]));
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char	*body = (const char *)data;
	const char	*code = NULL;
	char		*cause = NULL;
	struct batch	*fast, *tree;

	fast = ingest_parse_fast(body, size);
	/* A small meta.config bound, so fuzz-sized bodies reach its refusal. */
	tree = ingest_parse_tree(body, size, 1024, &code, &cause);
	if (tree == NULL && (code == NULL || cause == NULL))
		fuzz_fail("the Jansson path refuses without a code and cause");
	if (tree != NULL)
		fuzz_batch_ok(tree, "Jansson");
	if (fast != NULL) {
		fuzz_batch_ok(fast, "fast");
		if (tree == NULL)
			fuzz_fail("the fast path takes a body Jansson refuses "
			    "(%s: %s)", code, cause);
		fuzz_same(fast, tree);
	}
	batch_free(fast);
	batch_free(tree);
	free(cause);
	fuzz_numbers(body, body + size);
	return 0;
}
