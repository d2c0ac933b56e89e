/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for ingest_scan, the fast path of ingest_parse: a
 * differential test against the Jansson path.  Whenever the fast path
 * takes a body, the Jansson path must take it too and build an equal
 * batch (every series, step and value, bit for bit).  Bodies: random
 * ones in the client library's shape (which the fast path must take),
 * every request case under tests/data/ingest/, thousands of mutations
 * of valid bodies, and a list of bodies it must leave to Jansson.
 */
#include <dirent.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "batch.h"
#include "ingest.h"

static uint64_t	rng_state = 0x2545f4914f6cdd1dULL;

static uint64_t
rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

/* ---- a growable string ---------------------------------------------- */

struct str {
	char	*p;
	size_t	 len, cap;
};

static void
str_add(struct str *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
str_add(struct str *s, const char *fmt, ...)
{
	va_list	ap;
	int	n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	assert_true(n >= 0);
	if (s->len + (size_t)n + 1 > s->cap) {
		s->cap = (s->len + (size_t)n + 1) * 2;
		s->p = realloc(s->p, s->cap);
		assert_non_null(s->p);
	}
	va_start(ap, fmt);
	vsnprintf(s->p + s->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	s->len += (size_t)n;
}

/* ---- the comparison --------------------------------------------------- */

static int
str_same(const char *a, const char *b)
{
	return (a == NULL && b == NULL) ||
	    (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* Fails unless a and b hold the same request, bit for bit. */
static void
check_equal(const struct batch *a, const struct batch *b, const char *body)
{
	const struct batch_series	*x, *y;
	size_t				 i;

	if (!str_same(a->run, b->run) || a->dropped != b->dropped ||
	    a->nsteps != b->nsteps || a->nseries != b->nseries ||
	    a->npoints != b->npoints || !str_same(a->meta_json, b->meta_json))
		fail_msg("batches differ in their header; body: %.400s", body);
	if (a->nsteps > 0 &&
	    memcmp(a->steps, b->steps, a->nsteps * sizeof *a->steps) != 0)
		fail_msg("step lists differ; body: %.400s", body);
	for (i = 0; i < a->nseries; i++) {
		x = &a->series[i];
		y = &b->series[i];
		if (x->kind != y->kind || strcmp(x->name, y->name) != 0 ||
		    x->n != y->n || x->n > x->cap ||
		    memcmp(x->steps, y->steps, x->n * sizeof *x->steps) != 0 ||
		    memcmp(x->values, y->values, x->n * sizeof *x->values) != 0)
			fail_msg("series %zu (%s) differs; body: %.400s", i,
			    y->name, body);
	}
}

/*
 * Both paths on body: 1 if the fast path took it (and then Jansson's
 * took it too, equally), 0 if it declined.
 */
static int
check_body(const char *body, size_t len)
{
	struct batch	*fast, *tree;
	const char	*code = NULL;
	char		*cause = NULL;

	fast = ingest_parse_fast(body, len);
	tree = ingest_parse_tree(body, len, SIZE_MAX, &code, &cause);
	if (fast != NULL && tree == NULL)
		fail_msg("fast path took a body Jansson refuses (%s: %s): "
		    "%.*s", code, cause, (int)(len < 400 ? len : 400), body);
	if (fast != NULL)
		check_equal(fast, tree, body);
	batch_free(fast);
	batch_free(tree);
	free(cause);
	return fast != NULL;
}

/* ---- bodies in the client's shape ------------------------------------- */

static void
gen_value(struct str *s, int allow_null)
{
	double	d;

	switch (rng() % 16) {
	case 0:
		str_add(s, allow_null ? "null" : "1");
		return;
	case 1:
		str_add(s, "\"NaN\"");
		return;
	case 2:
		str_add(s, rng() % 2 ? "\"Infinity\"" : "\"-Infinity\"");
		return;
	case 3:
		str_add(s, "%d", (int)(rng() % 2000) - 1000);
		return;
	}
	d = exp(((double)(rng() % 1000000) / 1e6 - 0.5) * 50);
	if (rng() % 8 == 0)
		d = -d;
	switch (rng() % 4) {
	case 0:
		str_add(s, "%.9g", d);
		break;
	case 1:
		str_add(s, "%.6e", d);
		break;
	default:
		str_add(s, "%.17g", (double)(float)d);
		break;
	}
}

/* A body as the client library writes it, with random optional parts. */
static void
gen_body(struct str *s, int pretty)
{
	const char	*sp = pretty ? " " : "";
	size_t		 nl = rng() % 40, ns = 1 + rng() % 12, i, j;
	int		 swap;
	int64_t		 step = (int64_t)(rng() % 100000);

	s->len = 0;
	str_add(s, "{\"run\":%s\"run-%u.x\"", sp, (unsigned)(rng() % 7));
	str_add(s, ",%s\"layer_names\":%s[", sp, sp);
	for (i = 0; i < nl; i++)
		str_add(s, "%s\"model.layers.%zu.weight\"", i ? "," : "", i);
	str_add(s, "],%s\"steps\":[", pretty ? "\n " : "");
	for (i = 0; i < ns; i++) {
		str_add(s, "%s{\"step\":%s%lld", i ? "," : "", sp,
		    (long long)(step + (int64_t)i));
		if (rng() % 4)
			str_add(s, ",\"time\":%.3f", 1.7e9 + (double)i);
		if (rng() % 4) {
			str_add(s, ",\"loss\":");
			gen_value(s, 1);
		}
		if (rng() % 4) {
			str_add(s, ",\"grad_norm\":");
			gen_value(s, 1);
		}
		if (rng() % 2)
			str_add(s, ",\"lr\":%.17g", 0.1 / (double)(i + 1));
		if (rng() % 4) {
			str_add(s, ",%s\"layers\":%s[", sp, sp);
			for (j = 0; j < nl; j++) {
				str_add(s, j ? ",%s" : "", sp);
				gen_value(s, 1);
			}
			str_add(s, "]");
		}
		if (rng() % 3 == 0) {
			str_add(s, ",\"weights\":[");
			for (j = 0; j < nl; j++) {
				str_add(s, j ? "," : "");
				gen_value(s, 1);
			}
			str_add(s, "]");
		} else if (rng() % 3 == 0) {
			/* the object form; keys mostly in the same order */
			swap = rng() % 4 == 0;
			str_add(s, ",\"weights\":{");
			for (j = 0; j < nl; j++) {
				str_add(s, "%s\"w.%zu\":", j ? "," : "",
				    swap && (j ^ 1) < nl ? j ^ 1 : j);
				gen_value(s, 0);
			}
			str_add(s, "}");
		}
		if (rng() % 3 == 0) {
			str_add(s, ",\"clip\":{\"max_norm\":1.0,\"pre_norm\":");
			gen_value(s, 0);
			str_add(s, "}");
		}
		if (rng() % 4 == 0)
			str_add(s, ",\"skipped\":%s", rng() % 2 ? "true" :
			    "false");
		if (rng() % 4 == 0)
			str_add(s, ",\"loss_scale\":65536");
		if (rng() % 4 == 0) {
			str_add(s, ",\"metrics\":{\"accuracy\":");
			gen_value(s, 0);
			str_add(s, ",\"tokens_per_s\":%u}",
			    (unsigned)(rng() % 100000));
		}
		str_add(s, "}");
	}
	str_add(s, "]");
	if (rng() % 2)
		str_add(s, ",\"dropped\":%u", (unsigned)(rng() % 10));
	str_add(s, "}%s", pretty ? "\n" : "");
}

static void
test_client_shape(void **state)
{
	struct str	s = { NULL, 0, 0 };
	size_t		i;

	(void)state;
	for (i = 0; i < 3000; i++) {
		gen_body(&s, (int)(i % 5 == 0));
		if (!check_body(s.p, s.len))
			fail_msg("fast path declined a client body: %.400s",
			    s.p);
	}
	free(s.p);
}

/* Layers and metrics as objects of name -> value: taken too. */
static void
test_object_form(void **state)
{
	static const char *const bodies[] = {
		"{\"run\":\"a\",\"steps\":[{\"step\":1,\"layers\":{\"fc.w\":"
		"0.5,\"fc.b\":\"NaN\"},\"weights\":{\"fc.w\":3}}]}",
		"{\"run\":\"a\",\"steps\":[{\"step\":1,\"layers\":{}},{\"step\""
		":2,\"metrics\":{\"acc\":0.5,\"loss\":1}}]}",
		"{\"steps\":[{\"step\":0}],\"run\":\"a\"}",
		"{\"run\":\"a\",\"steps\":[],\"dropped\":null}",
		"{\"run\":\"a\",\"layer_names\":null,\"steps\":null}",
		" {\"run\" : \"a\" , \"steps\" : [ { \"step\" : 3 , \"loss\" :"
		" -0.0 } ] }\r\n\t",
	};
	size_t	i;

	(void)state;
	for (i = 0; i < sizeof bodies / sizeof bodies[0]; i++)
		if (!check_body(bodies[i], strlen(bodies[i])))
			fail_msg("fast path declined: %s", bodies[i]);
}

/* Valid bodies it leaves to Jansson, and invalid ones it must refuse. */
static void
test_declines(void **state)
{
	static const char *const valid[] = {
		"{\"run\":\"a\",\"meta\":{\"project\":\"p\"},\"steps\":[]}",
		"{\"run\":\"a\",\"steps\":[{\"loss\":1,\"step\":1}]}",
		"{\"run\":\"a\",\"steps\":[{\"step\":1,\"metrics\":"
		"{\"\\u00e9\":1}}]}",
		"{\"run\":\"a\",\"steps\":[{\"step\":1,\"metrics\":"
		"{\"\xc3\xa9\":1}}]}",
		"{\"run\":\"a\",\"steps\":[{\"step\":1,\"metrics\":{\"a\":null}}]}",
		"{\"run\":\"a\",\"steps\":[{\"step\":1,\"layers\":[1]}],"
		"\"layer_names\":[\"x\"]}",
		"{\"run\":\"a\",\"steps\":[{\"step\":1,\"loss\":"
		"12345678901234567890123456789012345678901234567890"
		"123456789012345.5}]}",
	};
	static const char *const invalid[] = {
		"", "{}", "[]", "{\"run\":\"a\"} x", "{\"run\":\"a\",}",
		"{\"run\":\"a\",\"run\":\"b\"}", "{\"run\":\"a b\"}",
		"{\"run\":\"a\",\"steps\":[{\"step\":1,\"step\":2}]}",
		"{\"run\":\"a\",\"steps\":[{\"step\":-1}]}",
		"{\"run\":\"a\",\"steps\":[{\"step\":1.0}]}",
		"{\"run\":\"a\",\"steps\":[{\"step\":1,\"loss\":1,\"loss\":2}]}",
		"{\"run\":\"a\",\"steps\":[{\"step\":1,\"layers\":{\"x\":1,"
		"\"x\":2}}]}",
		"{\"run\":\"a\",\"steps\":[{\"step\":1,\"clip\":{\"max_norm\":1,"
		"\"max_norm\":1}}]}",
		"{\"run\":\"a\",\"layer_names\":[\"x\",\"x\"],\"steps\":[]}",
		"{\"run\":\"a\",\"layer_names\":[\"x\"],\"steps\":[{\"step\":1,"
		"\"layers\":[1,2]}]}",
		"{\"run\":\"a\",\"layer_names\":[\"x\",\"y\"],\"steps\":"
		"[{\"step\":1,\"layers\":[1]}]}",
		"{\"run\":\"a\",\"steps\":[{\"step\":1,\"layers\":[1]}]}",
		"{\"run\":\"a\",\"steps\":[{\"step\":1,\"loss\":\"nan\"}]}",
		"{\"run\":\"a\",\"steps\":[{\"step\":1,\"loss\":1e400}]}",
		"{\"run\":\"a\",\"steps\":[{\"step\":1,\"time\":-1}]}",
		"{\"run\":\"a\",\"steps\":[{\"step\":1,\"skipped\":1}]}",
		"{\"run\":\"a\",\"steps\":[{\"step\":1,\"extra\":1}]}",
		"{\"run\":\"a\",\"dropped\":-1}",
		"{\"run\":\"a\",\"steps\":[{\"step\":1,\"loss\":01}]}",
		"{\"run\":\"a\",\"steps\":[{\"step\":1,\"loss\":1,}]}",
		"{\"run\":\"a\",\"steps\":[{\"step\":1}",
	};
	const char	*code;
	char		*cause;
	struct batch	*b;
	size_t		 i;

	(void)state;
	for (i = 0; i < sizeof valid / sizeof valid[0]; i++) {
		assert_null(ingest_parse_fast(valid[i], strlen(valid[i])));
		b = ingest_parse(valid[i], strlen(valid[i]), SIZE_MAX, &code,
		    &cause);
		if (b == NULL)
			fail_msg("refused (%s): %s", cause, valid[i]);
		batch_free(b);
	}
	for (i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
		assert_null(ingest_parse_fast(invalid[i], strlen(invalid[i])));
		cause = NULL;
		b = ingest_parse(invalid[i], strlen(invalid[i]), SIZE_MAX,
		    &code, &cause);
		if (b != NULL)
			fail_msg("accepted: %s", invalid[i]);
		assert_non_null(cause);	/* Jansson's path words it */
		free(cause);
	}
}

/* Every request case the daemon-level tests use. */
static void
test_corpus(void **state)
{
	struct dirent	*de;
	const char	*top;
	char		 path[4096], *buf;
	size_t		 n = 0, taken = 0, len;
	FILE		*f;
	DIR		*d;

	(void)state;
	if ((top = getenv("GW_TOP")) == NULL)
		top = ".";
	snprintf(path, sizeof path, "%s/tests/data/ingest", top);
	if ((d = opendir(path)) == NULL)
		fail_msg("%s: cannot open (run from the top of the tree or "
		    "set GW_TOP)", path);
	buf = malloc(1 << 24);
	assert_non_null(buf);
	while ((de = readdir(d)) != NULL) {
		len = strlen(de->d_name);
		if (len <= 5 || strcmp(de->d_name + len - 5, ".json") != 0)
			continue;
		snprintf(path, sizeof path, "%s/tests/data/ingest/%s", top,
		    de->d_name);
		assert_non_null(f = fopen(path, "rb"));
		len = fread(buf, 1, 1 << 24, f);
		fclose(f);
		taken += (size_t)check_body(buf, len);
		n++;
	}
	closedir(d);
	free(buf);
	print_message("# %zu request cases, %zu taken by the fast path\n", n,
	    taken);
	assert_true(n >= 20);
	assert_true(taken > 0);
}

/* Random damage to valid bodies: whatever it takes, Jansson agrees. */
static void
test_mutations(void **state)
{
	static const char bytes[] = "\"\\,:{}[]n-.e0 9tfE+\x80";
	struct str	 s = { NULL, 0, 0 };
	char		*m;
	size_t		 i, k, pos, len, taken = 0, tries = 0;

	(void)state;
	for (i = 0; i < 400; i++) {
		gen_body(&s, (int)(i % 3 == 0));
		m = malloc(s.len + 2);
		assert_non_null(m);
		for (k = 0; k < 40; k++) {
			memcpy(m, s.p, s.len);
			len = s.len;
			pos = (size_t)(rng() % len);
			switch (rng() % 4) {
			case 0:		/* replace a byte */
				m[pos] = bytes[rng() % (sizeof bytes - 1)];
				break;
			case 1:		/* drop a byte */
				memmove(m + pos, m + pos + 1, len - pos - 1);
				len--;
				break;
			case 2:		/* repeat a byte */
				memmove(m + pos + 1, m + pos, len - pos);
				len++;
				break;
			default:	/* cut the body short */
				len = pos;
				break;
			}
			taken += (size_t)check_body(m, len);
			tries++;
		}
		free(m);
	}
	free(s.p);
	print_message("# %zu mutated bodies, %zu still taken by the fast "
	    "path (and equal)\n", tries, taken);
	assert_true(taken > tries / 20);	/* the comparison was exercised */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_client_shape),
		cmocka_unit_test(test_object_form),
		cmocka_unit_test(test_declines),
		cmocka_unit_test(test_corpus),
		cmocka_unit_test(test_mutations),
	};

	return cmocka_run_group_tests_name("ingest_scan", tests, NULL, NULL);
}
