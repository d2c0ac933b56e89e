/* SPDX-License-Identifier: MIT */
/*
 * ingest_scan: the fast path of ingest_parse() for the bodies the client
 * library sends: "run", "layer_names", "steps" and "dropped", each step
 * opening with "step", its layers as arrays aligned with layer_names or
 * as objects, numbers without escapes to undo.  It reads the body once,
 * front to back, and writes points straight into the batch through the
 * same table and appends as the Jansson path (ingest_core.h), so both
 * paths build the same batch from the same body.
 *
 * Jansson stays the parser of record.  This path declines (-1) as soon
 * as anything is unusual or wrong (a "meta" key, escapes or non-ASCII
 * in a string, a duplicate key, any error at all), and ingest_parse()
 * then parses the body again with Jansson, which alone words the error.
 * Declining is always safe; accepting must mean exactly what Jansson's
 * parse would have meant.  Why it exists: building Jansson's tree of a
 * compact body costs about 0.3 CPU-us a point, most of the daemon's
 * budget; this path costs about a tenth of that.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "ingest.h"
#include "ingest_core.h"
#include "numscan.h"
#include "wire.h"
#include "xmalloc.h"

struct scan {
	struct ingest	*ig;
	const char	*p;		/* the next byte to read */
	const char	*end;
	size_t		*pushed;	/* per series: stepi + 1 of its point */
	size_t		 pushed_cap;
	/* Per kind: the series of the i-th key of the last such object. */
	size_t		*guess[SERIES_KIND_COUNT];
	size_t		 guess_cap[SERIES_KIND_COUNT];
};

/* Top-level keys, as bits of a "seen" set. */
#define TOP_RUN		0x1u
#define TOP_DROPPED	0x2u
#define TOP_NAMES	0x4u
#define TOP_STEPS	0x8u

static inline void
scan_ws(struct scan *sc)
{
	while (sc->p < sc->end && (*sc->p == ' ' || *sc->p == '\n' ||
	    *sc->p == '\r' || *sc->p == '\t'))
		sc->p++;
}

/* The next byte past whitespace; NUL at the end (NUL is never valid). */
static inline char
scan_peek(struct scan *sc)
{
	scan_ws(sc);
	return sc->p < sc->end ? *sc->p : '\0';
}

/* Consume c, the next byte past whitespace; -1 if it is not there. */
static inline int
scan_char(struct scan *sc, char c)
{
	if (scan_peek(sc) != c)
		return -1;
	sc->p++;
	return 0;
}

static int
scan_literal(struct scan *sc, const char *lit, size_t len)
{
	scan_ws(sc);
	if ((size_t)(sc->end - sc->p) < len || memcmp(sc->p, lit, len) != 0)
		return -1;
	sc->p += len;
	return 0;
}

/* A string of printable ASCII without escapes: [*s, *s + *len). */
static int
scan_string(struct scan *sc, const char **s, size_t *len)
{
	const char	*q;
	unsigned char	 c;

	if (scan_char(sc, '"') == -1)
		return -1;
	for (q = sc->p; q < sc->end; q++) {
		c = (unsigned char)*q;
		if (c == '"') {
			*s = sc->p;
			*len = (size_t)(q - sc->p);
			sc->p = q + 1;
			return 0;
		}
		if (c == '\\' || c < 0x20 || c >= 0x80)
			return -1;
	}
	return -1;
}

/* An object key and its colon. */
static int
scan_key(struct scan *sc, const char **k, size_t *len)
{
	if (scan_string(sc, k, len) == -1)
		return -1;
	return scan_char(sc, ':');
}

/* A number: integers as Jansson's json_integer, then as a double. */
static int
scan_number(struct scan *sc, enum numscan_kind *kind, int64_t *iv,
    double *d)
{
	scan_ws(sc);
	*kind = numscan(sc->p, sc->end, &sc->p, iv, d);
	if (*kind == NUMSCAN_INT)
		*d = (double)*iv;
	return *kind == NUMSCAN_NONE ? -1 : 0;
}

/* A non-negative integer. */
static int
scan_count(struct scan *sc, int64_t *v)
{
	enum numscan_kind	kind;
	double			d;

	if (scan_number(sc, &kind, v, &d) == -1 || kind != NUMSCAN_INT ||
	    *v < 0)
		return -1;
	return 0;
}

/* A point value: 1 with *d set, 0 for null, -1 to decline. */
static inline int
scan_value(struct scan *sc, double *d)
{
	enum numscan_kind	 kind;
	const char		*s;
	size_t			 len;
	int64_t			 iv;

	switch (scan_peek(sc)) {
	case 'n':
		return scan_literal(sc, "null", 4) == -1 ? -1 : 0;
	case '"':
		if (scan_string(sc, &s, &len) == -1)
			return -1;
		if (!wire_nonfinite_parse(s, len, d))
			return -1;
		return 1;
	default:
		return scan_number(sc, &kind, &iv, d) == -1 ? -1 : 1;
	}
}

/*
 * Note a point of series si in steps[stepi]; -1 if it has one already,
 * which only a repeated key in a name -> value object can cause.
 */
static int
scan_mark(struct scan *sc, size_t si, size_t stepi)
{
	size_t	cap = sc->pushed_cap;

	if (si >= cap) {
		while (si >= cap)
			cap = cap == 0 ? 256 : cap * 2;
		sc->pushed = xreallocarray(sc->pushed, cap,
		    sizeof *sc->pushed);
		memset(sc->pushed + sc->pushed_cap, 0,
		    (cap - sc->pushed_cap) * sizeof *sc->pushed);
		sc->pushed_cap = cap;
	}
	if (sc->pushed[si] == stepi + 1)
		return -1;
	sc->pushed[si] = stepi + 1;
	return 0;
}

/* A scalar field of a step: a value, or null. */
static int
scan_scalar(struct scan *sc, enum series_kind kind, size_t stepi,
    int64_t step)
{
	double	d;
	int	r;

	if ((r = scan_value(sc, &d)) <= 0)
		return r;
	return ingest_scalar(sc->ig, kind, stepi, step, d);
}

/* layers/weights as an array aligned with layer_names. */
static int
scan_aligned(struct scan *sc, enum series_kind kind, size_t stepi,
    int64_t step)
{
	struct ingest	*ig = sc->ig;
	size_t		 i = 0, si;
	double		 d;
	int		 r;

	if (!ig->names_given || scan_char(sc, '[') == -1)
		return -1;
	if (scan_peek(sc) != ']') {
		do {
			if (i == ig->nnames || (r = scan_value(sc, &d)) < 0)
				return -1;
			if (r == 1) {
				si = ingest_layer_series(ig, kind, i, stepi);
				if (si == INGEST_NONE)
					return -1;
				ingest_push(ig, si, step, d);
			}
			i++;
		} while (scan_char(sc, ',') == 0);
	}
	if (scan_char(sc, ']') == -1 || i != ig->nnames)
		return -1;
	return 0;
}

/*
 * The series of key k, the i-th of a name -> value object of kind.
 * Steps repeat their keys in the same order, so the series the i-th key
 * named last time is checked first (one memcmp) before the table.
 */
static size_t
scan_named_series(struct scan *sc, enum series_kind kind, size_t i,
    const char *k, size_t len, size_t stepi)
{
	const char	*name;
	size_t		 si, cap = sc->guess_cap[kind];

	if (i < cap && (si = sc->guess[kind][i]) != INGEST_NONE) {
		name = sc->ig->b->series[si].name;
		if (strncmp(name, k, len) == 0 && name[len] == '\0')
			return si;
	}
	if ((si = ingest_series(sc->ig, kind, k, len, stepi)) == INGEST_NONE)
		return si;
	if (i >= cap) {
		while (i >= cap)
			cap = cap == 0 ? 64 : cap * 2;
		sc->guess[kind] = xreallocarray(sc->guess[kind], cap,
		    sizeof *sc->guess[kind]);
		while (sc->guess_cap[kind] < cap)
			sc->guess[kind][sc->guess_cap[kind]++] = INGEST_NONE;
	}
	sc->guess[kind][i] = si;
	return si;
}

/* layers/weights/metrics as an object of name -> value (no nulls). */
static int
scan_named(struct scan *sc, enum series_kind kind, size_t stepi,
    int64_t step)
{
	const char	*k;
	size_t		 len, si, i = 0;
	double		 d;

	if (scan_char(sc, '{') == -1)
		return -1;
	if (scan_peek(sc) != '}') {
		do {
			if (scan_key(sc, &k, &len) == -1 || len == 0 ||
			    len > WIRE_NAME_MAX ||
			    scan_value(sc, &d) != 1)
				return -1;
			si = scan_named_series(sc, kind, i++, k, len, stepi);
			if (si == INGEST_NONE || scan_mark(sc, si, stepi) == -1)
				return -1;
			ingest_push(sc->ig, si, step, d);
		} while (scan_char(sc, ',') == 0);
	}
	return scan_char(sc, '}');
}

static int
scan_tensors(struct scan *sc, enum series_kind kind, size_t stepi,
    int64_t step)
{
	switch (scan_peek(sc)) {
	case '[':
		return scan_aligned(sc, kind, stepi, step);
	case '{':
		return scan_named(sc, kind, stepi, step);
	default:
		return scan_literal(sc, "null", 4);
	}
}

static int
scan_clip(struct scan *sc, size_t stepi, int64_t step)
{
	const char	*k;
	size_t		 len;
	unsigned	 seen = 0, bit;

	if (scan_peek(sc) == 'n')
		return scan_literal(sc, "null", 4);
	if (scan_char(sc, '{') == -1)
		return -1;
	if (scan_peek(sc) != '}') {
		do {
			if (scan_key(sc, &k, &len) == -1)
				return -1;
			if (len == 8 && memcmp(k, "max_norm", 8) == 0)
				bit = SERIES_CLIP_MAX_NORM;
			else if (len == 8 && memcmp(k, "pre_norm", 8) == 0)
				bit = SERIES_CLIP_PRE_NORM;
			else
				return -1;
			if (seen & (1u << bit))
				return -1;
			seen |= 1u << bit;
			if (scan_scalar(sc, (enum series_kind)bit, stepi,
			    step) == -1)
				return -1;
		} while (scan_char(sc, ',') == 0);
	}
	return scan_char(sc, '}');
}

/* One field of steps[stepi], after its key. */
static int
scan_field(struct scan *sc, enum ingest_key key, size_t stepi, int64_t step)
{
	struct ingest		*ig = sc->ig;
	enum numscan_kind	 kind;
	int64_t			 iv;
	double			 d;

	switch (key) {
	case KEY_TIME:
		if (scan_peek(sc) == 'n')
			return scan_literal(sc, "null", 4);
		if (scan_number(sc, &kind, &iv, &d) == -1 || d < 0)
			return -1;
		return ingest_scalar(ig, SERIES_TIME, stepi, step, d);
	case KEY_LOSS:
		return scan_scalar(sc, SERIES_LOSS, stepi, step);
	case KEY_GRAD_NORM:
		return scan_scalar(sc, SERIES_GRAD_NORM, stepi, step);
	case KEY_LR:
		return scan_scalar(sc, SERIES_LR, stepi, step);
	case KEY_LOSS_SCALE:
		return scan_scalar(sc, SERIES_LOSS_SCALE, stepi, step);
	case KEY_SKIPPED:
		switch (scan_peek(sc)) {
		case 'n':
			return scan_literal(sc, "null", 4);
		case 't':
			if (scan_literal(sc, "true", 4) == -1)
				return -1;
			return ingest_scalar(ig, SERIES_SKIPPED, stepi, step,
			    1.0);
		default:
			if (scan_literal(sc, "false", 5) == -1)
				return -1;
			return ingest_scalar(ig, SERIES_SKIPPED, stepi, step,
			    0.0);
		}
	case KEY_LAYERS:
		return scan_tensors(sc, SERIES_LAYER_GRAD, stepi, step);
	case KEY_WEIGHTS:
		return scan_tensors(sc, SERIES_LAYER_WEIGHT, stepi, step);
	case KEY_UPDATES:
		return scan_tensors(sc, SERIES_LAYER_UPDATE, stepi, step);
	case KEY_ADAM:
		return scan_tensors(sc, SERIES_LAYER_ADAM, stepi, step);
	case KEY_CLIP:
		return scan_clip(sc, stepi, step);
	case KEY_METRICS:
		if (scan_peek(sc) == 'n')
			return scan_literal(sc, "null", 4);
		return scan_named(sc, SERIES_METRIC, stepi, step);
	default:
		return -1;	/* "step" again, or unknown */
	}
}

/* steps[stepi]: an object whose first key is "step". */
static int
scan_step(struct scan *sc, size_t stepi)
{
	struct batch	*b = sc->ig->b;
	const char	*k;
	size_t		 len;
	int64_t		 step;
	unsigned	 seen = 1u << KEY_STEP;
	enum ingest_key	 key;

	if (scan_char(sc, '{') == -1 || scan_key(sc, &k, &len) == -1 ||
	    len != 4 || memcmp(k, "step", 4) != 0 ||
	    scan_count(sc, &step) == -1)
		return -1;
	b->steps[b->nsteps++] = step;
	while (scan_char(sc, ',') == 0) {
		if (scan_key(sc, &k, &len) == -1)
			return -1;
		key = ingest_step_key(k, len);
		if (seen & (1u << key))
			return -1;
		seen |= 1u << key;
		if (scan_field(sc, key, stepi, step) == -1)
			return -1;
	}
	return scan_char(sc, '}');
}

/*
 * A bound on the steps left: every step opens with a brace and takes
 * at least the 10 bytes of {"step":0}.
 */
static size_t
scan_steps_bound(const char *p, const char *end)
{
	size_t	n = 0, most = (size_t)(end - p) / 10;

	while (n < most && (p = memchr(p, '{', (size_t)(end - p))) != NULL) {
		n++;
		p++;
	}
	return n;
}

static int
scan_steps(struct scan *sc)
{
	struct ingest	*ig = sc->ig;
	struct batch	*b = ig->b;
	size_t		 cap;

	if (scan_peek(sc) == 'n')
		return scan_literal(sc, "null", 4);
	if (scan_char(sc, '[') == -1)
		return -1;
	if (scan_peek(sc) == ']') {
		sc->p++;
		return 0;
	}
	/* Series sized for the steps left, as the Jansson path does. */
	ig->nsteps = cap = scan_steps_bound(sc->p, sc->end);
	if (cap == 0)
		return -1;
	b->steps = xreallocarray(NULL, cap, sizeof *b->steps);
	do {
		if (b->nsteps == cap)
			return -1;	/* cannot happen: the bound holds */
		if (scan_step(sc, b->nsteps) == -1)
			return -1;
	} while (scan_char(sc, ',') == 0);
	return scan_char(sc, ']');
}

static int
scan_names(struct scan *sc)
{
	const char	*s;
	size_t		 len;

	if (scan_peek(sc) == 'n')
		return scan_literal(sc, "null", 4);
	if (scan_char(sc, '[') == -1)
		return -1;
	sc->ig->names_given = 1;
	if (scan_peek(sc) != ']') {
		do {
			if (scan_string(sc, &s, &len) == -1 || len == 0 ||
			    len > WIRE_NAME_MAX ||
			    ingest_name_add(sc->ig, s, len) == -1)
				return -1;
		} while (scan_char(sc, ',') == 0);
	}
	return scan_char(sc, ']');
}

static unsigned
scan_top_key(const char *k, size_t len)
{
	if (len == 3 && memcmp(k, "run", 3) == 0)
		return TOP_RUN;
	if (len == 7 && memcmp(k, "dropped", 7) == 0)
		return TOP_DROPPED;
	if (len == 11 && memcmp(k, "layer_names", 11) == 0)
		return TOP_NAMES;
	if (len == 5 && memcmp(k, "steps", 5) == 0)
		return TOP_STEPS;
	return 0;	/* "meta" too: left to the Jansson path */
}

static int
scan_top(struct scan *sc)
{
	struct batch	*b = sc->ig->b;
	const char	*k, *s;
	size_t		 len;
	unsigned	 seen = 0, bit;

	if (scan_char(sc, '{') == -1)
		return -1;
	do {
		if (scan_key(sc, &k, &len) == -1)
			return -1;
		bit = scan_top_key(k, len);
		if (bit == 0 || (seen & bit) != 0)
			return -1;
		seen |= bit;
		switch (bit) {
		case TOP_RUN:
			if (scan_string(sc, &s, &len) == -1 ||
			    !wire_run_key_ok(s, len))
				return -1;
			b->run = xstrndup(s, len);
			break;
		case TOP_DROPPED:
			if (scan_peek(sc) == 'n') {
				if (scan_literal(sc, "null", 4) == -1)
					return -1;
			} else if (scan_count(sc, &b->dropped) == -1)
				return -1;
			break;
		case TOP_NAMES:
			/* Jansson's path reads layer_names before steps. */
			if ((seen & TOP_STEPS) != 0 || scan_names(sc) == -1)
				return -1;
			break;
		case TOP_STEPS:
			if (scan_steps(sc) == -1)
				return -1;
			break;
		}
	} while (scan_char(sc, ',') == 0);
	if (scan_char(sc, '}') == -1)
		return -1;
	scan_ws(sc);
	if (sc->p != sc->end || (seen & TOP_RUN) == 0)
		return -1;
	return 0;
}

int
ingest_scan(struct ingest *ig, const char *body, size_t len)
{
	struct scan	sc;
	size_t		i;
	int		rc;

	if (body == NULL)
		return -1;
	memset(&sc, 0, sizeof sc);
	sc.ig = ig;
	sc.p = body;
	sc.end = body + len;
	rc = scan_top(&sc);
	free(sc.pushed);
	for (i = 0; i < SERIES_KIND_COUNT; i++)
		free(sc.guess[i]);
	return rc;
}
