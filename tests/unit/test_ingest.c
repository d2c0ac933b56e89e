/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for ingest: full requests in the object and the compact
 * form checked point by point, the edges of every limit, a long table
 * of refused bodies (each with its error code and the path its cause
 * must name), the finish body and run keys.  Every request case under
 * tests/data/ingest/ ($GW_TOP, or the current directory) is run too, so
 * the daemon-level cases and the parser cannot drift apart.
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
#include "wire.h"

/* ---- helpers ------------------------------------------------------------ */

static struct batch *
parse_ok(const char *body)
{
	struct batch	*b;
	const char	*code = NULL;
	char		*cause = NULL;

	b = ingest_parse(body, strlen(body), SIZE_MAX, &code, &cause);
	if (b == NULL)
		fail_msg("refused (%s): %s\nbody: %.300s", code, cause, body);
	return b;
}

/* Parse body (len bytes) and check it is refused with code and causes. */
static void
parse_bad(const char *body, size_t len, const char *want_code,
    const char *want, const char *want2)
{
	struct batch	*b;
	const char	*code = NULL;
	char		*cause = NULL;

	b = ingest_parse(body, len, SIZE_MAX, &code, &cause);
	if (b != NULL) {
		batch_free(b);
		fail_msg("accepted: %.300s", body);
	}
	assert_non_null(code);
	assert_non_null(cause);
	if (strcmp(code, want_code) != 0 || strstr(cause, want) == NULL ||
	    (want2 != NULL && strstr(cause, want2) == NULL)) {
		print_error("got %s: %s\n", code, cause);
		free(cause);
		fail_msg("want %s with \"%s\"%s%s", want_code, want,
		    want2 ? " and " : "", want2 ? want2 : "");
	}
	free(cause);
}

static const struct batch_series *
find_series(const struct batch *b, enum series_kind kind, const char *name)
{
	size_t	i;

	for (i = 0; i < b->nseries; i++)
		if (b->series[i].kind == kind &&
		    strcmp(b->series[i].name, name) == 0)
			return &b->series[i];
	fail_msg("no series %s \"%s\"", series_kind_name(kind), name);
	return NULL;
}

/* Series (kind, name) holds exactly n points: steps[i], values[i]. */
static void
check_series(const struct batch *b, enum series_kind kind, const char *name,
    size_t n, const int64_t *steps, const double *values)
{
	const struct batch_series	*s = find_series(b, kind, name);
	size_t				 i;

	assert_int_equal(s->n, n);
	assert_true(s->cap >= s->n);
	for (i = 0; i < n; i++) {
		assert_int_equal(s->steps[i], steps[i]);
		if (isnan(values[i]))
			assert_true(isnan(s->values[i]));
		else if (s->values[i] != values[i])
			fail_msg("%s[%zu] = %.17g, want %.17g", name, i,
			    s->values[i], values[i]);
	}
}

/* The invariants every batch keeps: npoints is the sum, no empty series. */
static void
check_invariants(const struct batch *b)
{
	size_t	i, j, sum = 0;

	for (i = 0; i < b->nseries; i++) {
		assert_true(b->series[i].n > 0);
		assert_true(b->series[i].n <= b->series[i].cap);
		assert_true(strlen(b->series[i].name) >= 1);
		for (j = 0; j < i; j++)
			assert_false(b->series[i].kind == b->series[j].kind &&
			    strcmp(b->series[i].name, b->series[j].name) == 0);
		sum += b->series[i].n;
	}
	assert_int_equal(b->npoints, sum);
}

/* ---- full requests --------------------------------------------------- */

#define META_JSON \
	"{\"project\":\"cifar\",\"config\":{\"lr\":0.1,\"batch\":128," \
	"\"tags\":[\"a\",\"b\\\"c\"],\"warm\":3.0,\"on\":true,\"none\":null," \
	"\"big\":1e300,\"neg\":-2.5e-7}," \
	"\"layers\":{\"conv1.weight\":{\"numel\":1728,\"shape\":[64,3,3,3]," \
	"\"depth\":0},\"fc.bias\":{\"numel\":10}},\"owner\":\"ann\"}"

/* META_JSON as ingest dumps it: reals in their shortest exact form. */
#define META_OUT \
	"{\"project\":\"cifar\",\"config\":{\"lr\":0.1,\"batch\":128," \
	"\"tags\":[\"a\",\"b\\\"c\"],\"warm\":3.0,\"on\":true,\"none\":null," \
	"\"big\":1e+300,\"neg\":-2.5e-07}," \
	"\"layers\":{\"conv1.weight\":{\"numel\":1728,\"shape\":[64,3,3,3]," \
	"\"depth\":0},\"fc.bias\":{\"numel\":10}},\"owner\":\"ann\"}"

/* The same request in both forms; the object form with spaces. */
static const char full_object[] =
    "{\"run\": \"resnet18-lr0.1-s1\",\n"
    " \"meta\": {\"project\": \"cifar\", \"config\": {\"lr\": 0.1,"
    " \"batch\": 128, \"tags\": [\"a\", \"b\\\"c\"], \"warm\": 3.0,"
    " \"on\": true, \"none\": null, \"big\": 1e300, \"neg\": -2.5e-7},\n"
    "   \"layers\": {\"conv1.weight\": {\"numel\": 1728,"
    " \"shape\": [64, 3, 3, 3], \"depth\": 0},"
    " \"fc.bias\": {\"numel\": 10}}, \"owner\": \"ann\"},\n"
    " \"steps\": [\n"
    "  {\"step\": 1200, \"time\": 1764061200.25, \"loss\": 2.31,"
    " \"grad_norm\": 4.5, \"lr\": 0.1,\n"
    "   \"layers\": {\"conv1.weight\": 0.12, \"fc.bias\": \"NaN\"},\n"
    "   \"weights\": {\"conv1.weight\": 8.1},\n"
    "   \"clip\": {\"max_norm\": 1.0, \"pre_norm\": 4.5},\n"
    "   \"skipped\": false, \"loss_scale\": 65536,\n"
    "   \"metrics\": {\"accuracy\": 0.61}},\n"
    "  {\"step\": 1201, \"time\": 1764061201, \"loss\": \"Infinity\","
    " \"grad_norm\": \"-Infinity\", \"lr\": null,\n"
    "   \"layers\": {\"conv1.weight\": 0.5, \"fc.bias\": null},\n"
    "   \"weights\": {\"conv1.weight\": 8.2, \"fc.bias\": 0.3},\n"
    "   \"clip\": {\"max_norm\": 1, \"pre_norm\": null},\n"
    "   \"skipped\": true, \"loss_scale\": 32768.5,\n"
    "   \"metrics\": {\"accuracy\": null, \"top5\": 0.9}}\n"
    " ],\n"
    " \"dropped\": 7}\n";

static const char full_compact[] =
    "{\"run\":\"resnet18-lr0.1-s1\",\"meta\":" META_JSON ","
    "\"layer_names\":[\"conv1.weight\",\"fc.bias\"],"
    "\"steps\":[{\"step\":1200,\"time\":1764061200.25,\"loss\":2.31,"
    "\"grad_norm\":4.5,\"lr\":0.1,\"layers\":[0.12,\"NaN\"],"
    "\"weights\":[8.1,null],\"clip\":{\"max_norm\":1.0,\"pre_norm\":4.5},"
    "\"skipped\":false,\"loss_scale\":65536,\"metrics\":{\"accuracy\":0.61}},"
    "{\"step\":1201,\"time\":1764061201,\"loss\":\"Infinity\","
    "\"grad_norm\":\"-Infinity\",\"lr\":null,\"layers\":[0.5,null],"
    "\"weights\":[8.2,0.3],\"clip\":{\"max_norm\":1,\"pre_norm\":null},"
    "\"skipped\":true,\"loss_scale\":32768.5,"
    "\"metrics\":{\"accuracy\":null,\"top5\":0.9}}],\"dropped\":7}";

static void
check_full(const struct batch *b)
{
	static const int64_t	both[] = { 1200, 1201 }, first[] = { 1200 },
				second[] = { 1201 };
	const struct batch_series	*s;

	assert_string_equal(b->run, "resnet18-lr0.1-s1");
	assert_string_equal(b->project, "cifar");
	assert_string_equal(b->meta_json, META_OUT);
	assert_string_equal(b->config_json,
	    "{\"lr\":0.1,\"batch\":128,\"tags\":[\"a\",\"b\\\"c\"],"
	    "\"warm\":3.0,\"on\":true,\"none\":null,\"big\":1e+300,"
	    "\"neg\":-2.5e-07}");
	assert_int_equal(b->dropped, 7);

	assert_int_equal(b->nlayers_meta, 2);
	assert_string_equal(b->layers_meta[0].name, "conv1.weight");
	assert_int_equal(b->layers_meta[0].numel, 1728);
	assert_int_equal(b->layers_meta[0].depth, 0);
	assert_string_equal(b->layers_meta[0].shape_json, "[64,3,3,3]");
	assert_string_equal(b->layers_meta[1].name, "fc.bias");
	assert_int_equal(b->layers_meta[1].numel, 10);
	assert_int_equal(b->layers_meta[1].depth, -1);
	assert_null(b->layers_meta[1].shape_json);

	assert_int_equal(b->nsteps, 2);
	assert_int_equal(b->steps[0], 1200);
	assert_int_equal(b->steps[1], 1201);
	assert_int_equal(b->nseries, 14);
	assert_int_equal(b->npoints, 22);
	check_invariants(b);

	check_series(b, SERIES_TIME, "time", 2, both,
	    (double[]){ 1764061200.25, 1764061201.0 });
	check_series(b, SERIES_LOSS, "loss", 2, both,
	    (double[]){ 2.31, INFINITY });
	check_series(b, SERIES_GRAD_NORM, "grad_norm", 2, both,
	    (double[]){ 4.5, -INFINITY });
	check_series(b, SERIES_LR, "lr", 1, first, (double[]){ 0.1 });
	check_series(b, SERIES_LAYER_GRAD, "conv1.weight", 2, both,
	    (double[]){ 0.12, 0.5 });
	check_series(b, SERIES_LAYER_GRAD, "fc.bias", 1, first,
	    (double[]){ NAN });
	check_series(b, SERIES_LAYER_WEIGHT, "conv1.weight", 2, both,
	    (double[]){ 8.1, 8.2 });
	check_series(b, SERIES_LAYER_WEIGHT, "fc.bias", 1, second,
	    (double[]){ 0.3 });
	check_series(b, SERIES_CLIP_MAX_NORM, "clip_max_norm", 2, both,
	    (double[]){ 1.0, 1.0 });
	check_series(b, SERIES_CLIP_PRE_NORM, "clip_pre_norm", 1, first,
	    (double[]){ 4.5 });
	check_series(b, SERIES_SKIPPED, "skipped", 2, both,
	    (double[]){ 0.0, 1.0 });
	check_series(b, SERIES_LOSS_SCALE, "loss_scale", 2, both,
	    (double[]){ 65536.0, 32768.5 });
	check_series(b, SERIES_METRIC, "accuracy", 1, first,
	    (double[]){ 0.61 });
	check_series(b, SERIES_METRIC, "top5", 1, second, (double[]){ 0.9 });

	/* Non-finite values are themselves, with their sign. */
	s = find_series(b, SERIES_LOSS, "loss");
	assert_true(isinf(s->values[1]) && s->values[1] > 0);
	s = find_series(b, SERIES_GRAD_NORM, "grad_norm");
	assert_true(isinf(s->values[1]) && signbit(s->values[1]));
	s = find_series(b, SERIES_LAYER_GRAD, "fc.bias");
	assert_true(isnan(s->values[0]));
	/* A layer and a weight of one tensor are two series. */
	assert_ptr_not_equal(find_series(b, SERIES_LAYER_GRAD, "fc.bias"),
	    find_series(b, SERIES_LAYER_WEIGHT, "fc.bias"));
}

static void
test_full_object(void **state)
{
	struct batch	*b;

	(void)state;
	b = parse_ok(full_object);
	check_full(b);
	batch_free(b);
}

static void
test_full_compact(void **state)
{
	struct batch	*b;

	(void)state;
	b = parse_ok(full_compact);
	check_full(b);
	batch_free(b);
}

/* Both forms in one request name the same series. */
static void
test_mixed_forms(void **state)
{
	static const int64_t	steps[] = { 0, 1, 2 };
	struct batch		*b;

	(void)state;
	b = parse_ok("{\"run\":\"m\",\"layer_names\":[\"a\",\"b\",\"c\"],"
	    "\"steps\":[{\"step\":0,\"layers\":[1,null,3]},"
	    "{\"step\":1,\"layers\":{\"c\":30,\"a\":10,\"d\":40}},"
	    "{\"step\":2,\"layers\":[100,200,null],"
	    "\"weights\":{\"a\":\"-Infinity\"}}]}");
	assert_int_equal(b->nseries, 5);
	check_series(b, SERIES_LAYER_GRAD, "a", 3, steps,
	    (double[]){ 1, 10, 100 });
	check_series(b, SERIES_LAYER_GRAD, "b", 1, (int64_t[]){ 2 },
	    (double[]){ 200 });
	check_series(b, SERIES_LAYER_GRAD, "c", 2, (int64_t[]){ 0, 1 },
	    (double[]){ 3, 30 });
	check_series(b, SERIES_LAYER_GRAD, "d", 1, (int64_t[]){ 1 },
	    (double[]){ 40 });
	check_series(b, SERIES_LAYER_WEIGHT, "a", 1, (int64_t[]){ 2 },
	    (double[]){ -INFINITY });
	assert_int_equal(b->npoints, 8);
	check_invariants(b);
	batch_free(b);
}

/* Null entries of a compact array are no points, and no series. */
static void
test_compact_nulls(void **state)
{
	struct batch	*b;

	(void)state;
	b = parse_ok("{\"run\":\"n\",\"layer_names\":[\"x\",\"y\",\"z\"],"
	    "\"steps\":[{\"step\":5,\"layers\":[null,2.5,null],"
	    "\"weights\":[null,null,null]},"
	    "{\"step\":6,\"layers\":[null,\"NaN\",null]}]}");
	assert_int_equal(b->nseries, 1);
	assert_int_equal(b->npoints, 2);
	check_series(b, SERIES_LAYER_GRAD, "y", 2, (int64_t[]){ 5, 6 },
	    (double[]){ 2.5, NAN });
	assert_int_equal(b->nsteps, 2);
	batch_free(b);
}

/* Repeated steps stay, in request order; the store lets the last win. */
static void
test_duplicate_steps(void **state)
{
	static const int64_t	steps[] = { 5, 3, 5, 5 };
	struct batch		*b;
	size_t			 i;

	(void)state;
	b = parse_ok("{\"run\":\"d\",\"steps\":[{\"step\":5,\"loss\":1},"
	    "{\"step\":3,\"loss\":2},{\"step\":5,\"loss\":3},"
	    "{\"step\":5,\"loss\":null,\"metrics\":{\"m\":4}}]}");
	assert_int_equal(b->nsteps, 4);
	for (i = 0; i < 4; i++)
		assert_int_equal(b->steps[i], steps[i]);
	check_series(b, SERIES_LOSS, "loss", 3, steps, (double[]){ 1, 2, 3 });
	check_series(b, SERIES_METRIC, "m", 1, (int64_t[]){ 5 },
	    (double[]){ 4 });
	batch_free(b);
}

/* A run alone, empty steps, nulls everywhere: valid, no points. */
static void
test_empty(void **state)
{
	static const char *const bodies[] = {
		"{\"run\":\"r\"}",
		"{\"run\":\"r\",\"steps\":[]}",
		"{\"run\":\"r\",\"steps\":null,\"meta\":null,\"dropped\":null,"
		    "\"layer_names\":null}",
		"{\"run\":\"r\",\"layer_names\":[],\"steps\":[{\"step\":0,"
		    "\"layers\":[],\"weights\":[]}]}",
	};
	struct batch	*b;
	size_t		 i;

	(void)state;
	for (i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
		b = parse_ok(bodies[i]);
		assert_string_equal(b->run, "r");
		assert_int_equal(b->nseries, 0);
		assert_int_equal(b->npoints, 0);
		assert_int_equal(b->dropped, 0);
		assert_null(b->meta_json);
		assert_null(b->project);
		assert_null(b->config_json);
		assert_int_equal(b->nlayers_meta, 0);
		batch_free(b);
	}
	b = parse_ok("{\"run\":\"r\",\"steps\":[{\"step\":9,\"time\":null,"
	    "\"loss\":null,\"grad_norm\":null,\"lr\":null,\"layers\":null,"
	    "\"weights\":null,\"clip\":null,\"skipped\":null,"
	    "\"loss_scale\":null,\"metrics\":null},{\"step\":10,"
	    "\"layers\":{\"a\":null},\"clip\":{},\"metrics\":{}}]}");
	assert_int_equal(b->nsteps, 2);
	assert_int_equal(b->steps[0], 9);
	assert_int_equal(b->steps[1], 10);
	assert_int_equal(b->nseries, 0);
	assert_int_equal(b->npoints, 0);
	batch_free(b);
}

/* Meta: nulls, other keys kept, project without config and the reverse. */
static void
test_meta(void **state)
{
	struct batch	*b;

	(void)state;
	b = parse_ok("{\"run\":\"m\",\"meta\":{\"project\":null,\"config\":7,"
	    "\"layers\":{\"a\":null,\"b\":{\"shape\":[],\"numel\":null,"
	    "\"depth\":3},\"c\":{}},\"note\":\"\\u00e9\\n\"}}");
	assert_null(b->project);
	assert_string_equal(b->config_json, "7");
	assert_string_equal(b->meta_json, "{\"project\":null,\"config\":7,"
	    "\"layers\":{\"a\":null,\"b\":{\"shape\":[],\"numel\":null,"
	    "\"depth\":3},\"c\":{}},\"note\":\"\xc3\xa9\\n\"}");
	assert_int_equal(b->nlayers_meta, 2);
	assert_string_equal(b->layers_meta[0].name, "b");
	assert_string_equal(b->layers_meta[0].shape_json, "[]");
	assert_int_equal(b->layers_meta[0].numel, -1);
	assert_int_equal(b->layers_meta[0].depth, 3);
	assert_string_equal(b->layers_meta[1].name, "c");
	assert_null(b->layers_meta[1].shape_json);
	assert_int_equal(b->layers_meta[1].numel, -1);
	assert_int_equal(b->layers_meta[1].depth, -1);
	batch_free(b);

	b = parse_ok("{\"run\":\"m\",\"meta\":{\"config\":null,"
	    "\"project\":\"\"}}");
	assert_string_equal(b->project, "");
	assert_null(b->config_json);
	assert_string_equal(b->meta_json, "{\"config\":null,\"project\":\"\"}");
	batch_free(b);

	/* Reals come back in their shortest exact form. */
	b = parse_ok("{\"run\":\"m\",\"meta\":{\"config\":[0.3,1e-300,"
	    "123456789.123,0.1e1,-0.0,5e22,0.30000000000000004]}}");
	assert_string_equal(b->config_json, "[0.3,1e-300,123456789.123,1.0,"
	    "-0.0,5e+22,0.30000000000000004]");
	batch_free(b);
}

/*
 * max_config bounds meta.config as stored (compact JSON), not as sent:
 * at the limit it is taken, a byte over it the request is refused.
 */
static void
test_meta_config_limit(void **state)
{
	struct batch	*b;
	const char	*body, *code = NULL;
	char		*cause = NULL;

	(void)state;
	/* Stored as {"lr":0.1,"s":"abc"}: 20 bytes; the spaces do not count. */
	body = "{\"run\":\"m\",\"meta\":{\"config\": {\"lr\": 0.1, "
	    "\"s\": \"abc\"}}, \"steps\": [{\"step\": 1, \"loss\": 2}]}";
	b = ingest_parse(body, strlen(body), 20, &code, &cause);
	assert_non_null(b);
	assert_string_equal(b->config_json, "{\"lr\":0.1,\"s\":\"abc\"}");
	batch_free(b);
	b = ingest_parse(body, strlen(body), 19, &code, &cause);
	assert_null(b);
	assert_string_equal(code, "bad_request");
	assert_non_null(strstr(cause, "meta.config: 20 bytes"));
	assert_non_null(strstr(cause, "limit of 19 (max-meta-config)"));
	free(cause);
	/* A null config, and any other member of meta, is not counted. */
	body = "{\"run\":\"m\",\"meta\":{\"config\":null,\"note\":\"x\"}}";
	b = ingest_parse(body, strlen(body), 0, &code, &cause);
	assert_non_null(b);
	assert_null(b->config_json);
	batch_free(b);
}

/* Values at the edges: big integers as doubles, tiny reals, big steps. */
static void
test_number_edges(void **state)
{
	struct batch	*b;

	(void)state;
	b = parse_ok("{\"run\":\"e\",\"steps\":[{\"step\":9223372036854775807,"
	    "\"loss\":9007199254740993,\"lr\":1e-300,\"grad_norm\":-0.0,"
	    "\"loss_scale\":-9223372036854775808,\"time\":0,"
	    "\"metrics\":{\"tiny\":1e-400,\"big\":1.7976931348623157e308}}]}");
	assert_int_equal(b->steps[0], INT64_MAX);
	check_series(b, SERIES_LOSS, "loss", 1, (int64_t[]){ INT64_MAX },
	    (double[]){ 9007199254740992.0 });
	check_series(b, SERIES_LR, "lr", 1, (int64_t[]){ INT64_MAX },
	    (double[]){ 1e-300 });
	check_series(b, SERIES_LOSS_SCALE, "loss_scale", 1,
	    (int64_t[]){ INT64_MAX }, (double[]){ -9223372036854775808.0 });
	check_series(b, SERIES_TIME, "time", 1, (int64_t[]){ INT64_MAX },
	    (double[]){ 0 });
	check_series(b, SERIES_METRIC, "tiny", 1, (int64_t[]){ INT64_MAX },
	    (double[]){ 0 });
	check_series(b, SERIES_METRIC, "big", 1, (int64_t[]){ INT64_MAX },
	    (double[]){ 1.7976931348623157e308 });
	assert_true(signbit(find_series(b, SERIES_GRAD_NORM,
	    "grad_norm")->values[0]));
	batch_free(b);

	b = parse_ok("{\"run\":\"e\",\"steps\":[{\"step\":-0}]}");
	assert_int_equal(b->steps[0], 0);
	batch_free(b);
}

static char *
repeat(char c, size_t n)
{
	char	*s;

	s = malloc(n + 1);
	assert_non_null(s);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

/* Series names of 1 and 256 bytes and UTF-8 pass; 0 and 257 do not. */
static void
test_name_limits(void **state)
{
	struct batch	*b;
	char		*n256, *n257, body[1024];

	(void)state;
	n256 = repeat('n', 256);
	n257 = repeat('n', 257);
	snprintf(body, sizeof body, "{\"run\":\"x\",\"steps\":[{\"step\":0,"
	    "\"layers\":{\"%s\":1,\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\":2,"
	    "\"a\":3}}]}", n256);
	b = parse_ok(body);
	assert_int_equal(b->nseries, 3);
	assert_int_equal(strlen(b->series[0].name), 256);
	assert_string_equal(b->series[1].name,
	    "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
	batch_free(b);

	snprintf(body, sizeof body, "{\"run\":\"x\",\"steps\":[{\"step\":0,"
	    "\"layers\":{\"%s\":1}}]}", n257);
	parse_bad(body, strlen(body), "bad_request", "steps[0].layers[\"nnnn",
	    "...\"]: expected a series name of 1 to 256 bytes");
	snprintf(body, sizeof body, "{\"run\":\"x\",\"steps\":[{\"step\":0,"
	    "\"metrics\":{\"%s\":null}}]}", n257);
	parse_bad(body, strlen(body), "bad_request", "steps[0].metrics[\"nnn",
	    "expected a series name of 1 to 256 bytes");
	snprintf(body, sizeof body, "{\"run\":\"x\",\"layer_names\":[\"a\","
	    "\"%s\"]}", n257);
	parse_bad(body, strlen(body), "bad_request", "layer_names[1]: "
	    "expected a series name of 1 to 256 bytes", NULL);
	snprintf(body, sizeof body, "{\"run\":\"x\",\"layer_names\":[\"%s\"],"
	    "\"steps\":[{\"step\":0,\"layers\":[1]}]}", n256);
	b = parse_ok(body);
	assert_string_equal(b->series[0].name, n256);
	batch_free(b);
	free(n256);
	free(n257);
}

/* Run keys in a body follow wire_is_run_key exactly. */
static void
test_run_key_limits(void **state)
{
	struct batch	*b;
	char		*k128, *k129, body[512];

	(void)state;
	k128 = repeat('k', 128);
	k129 = repeat('k', 129);
	snprintf(body, sizeof body, "{\"run\":\"%s\"}", k128);
	b = parse_ok(body);
	assert_string_equal(b->run, k128);
	batch_free(b);
	b = parse_ok("{\"run\":\"AZaz09._:-\"}");
	assert_string_equal(b->run, "AZaz09._:-");
	batch_free(b);
	snprintf(body, sizeof body, "{\"run\":\"%s\"}", k129);
	parse_bad(body, strlen(body), "bad_request",
	    "run: expected 1 to 128 characters of [A-Za-z0-9._:-]", NULL);
	free(k128);
	free(k129);
}

static char *
nested(const char *before, int levels, const char *after)
{
	size_t	 n = strlen(before) + 2 * (size_t)levels + strlen(after) + 1;
	char	*s, *p;
	int	 i;

	s = p = malloc(n);
	assert_non_null(s);
	p = stpcpy(p, before);
	for (i = 0; i < levels; i++)
		*p++ = '[';
	for (i = 0; i < levels; i++)
		*p++ = ']';
	strcpy(p, after);
	return s;
}

/* The root is level 1 and meta level 2: config may add 30 more. */
static void
test_depth(void **state)
{
	struct batch	*b;
	char		*s;

	(void)state;
	s = nested("{\"run\":\"d\",\"meta\":{\"config\":", INGEST_MAX_DEPTH - 2,
	    "}}");
	b = parse_ok(s);
	assert_int_equal(strlen(b->config_json), 2 * (INGEST_MAX_DEPTH - 2));
	batch_free(b);
	free(s);
	s = nested("{\"run\":\"d\",\"meta\":{\"config\":", INGEST_MAX_DEPTH - 1,
	    "}}");
	parse_bad(s, strlen(s), "bad_request",
	    "meta.config: nested deeper than 32 levels", NULL);
	free(s);
	s = nested("{\"run\":\"d\",\"meta\":{\"config\":", 100, "}}");
	parse_bad(s, strlen(s), "bad_request",
	    "meta.config: nested deeper than 32 levels", NULL);
	free(s);
	s = nested("{\"run\":\"d\",\"meta\":{\"x y\":{\"a\":", 40, "}}}");
	parse_bad(s, strlen(s), "bad_request",
	    "meta[\"x y\"]: nested deeper than 32 levels", NULL);
	free(s);
	s = nested("{\"run\":\"d\",\"steps\":[{\"step\":0,\"layers\":{\"a\":",
	    100, "}}]}");
	parse_bad(s, strlen(s), "bad_request",
	    "steps[0].layers[\"a\"]: expected a number", NULL);
	free(s);
	s = nested("{\"run\":\"d\",\"meta\":{\"config\":", 5000, "}}");
	parse_bad(s, strlen(s), "bad_json", "invalid JSON", NULL);
	free(s);
}

/*
 * Many sparse series over many steps: past the reserve budget columns
 * grow, and every point must still land in order.
 */
static void
test_sparse_growth(void **state)
{
	struct batch			*b;
	const struct batch_series	*s;
	char				*body, *p, name[16];
	size_t				 i, nsteps = 3000;

	(void)state;
	body = p = malloc(nsteps * 64 + 64);
	assert_non_null(body);
	p += sprintf(p, "{\"run\":\"g\",\"steps\":[");
	for (i = 0; i < nsteps; i++)
		p += sprintf(p, "%s{\"step\":%zu,\"metrics\":{\"m%zu\":%zu,"
		    "\"all\":%zu}}", i ? "," : "", i, i % 37, i, i * 2);
	strcpy(p, "]}");
	b = parse_ok(body);
	assert_int_equal(b->nseries, 38);
	assert_int_equal(b->npoints, 2 * nsteps);
	check_invariants(b);
	s = find_series(b, SERIES_METRIC, "all");
	assert_int_equal(s->n, nsteps);
	for (i = 0; i < nsteps; i++) {
		assert_int_equal(s->steps[i], i);
		assert_true(s->values[i] == (double)(i * 2));
	}
	snprintf(name, sizeof name, "m%d", 36);
	s = find_series(b, SERIES_METRIC, name);
	assert_int_equal(s->n, (nsteps - 1 - 36) / 37 + 1);
	for (i = 0; i < s->n; i++)
		assert_int_equal(s->steps[i], 36 + 37 * i);
	batch_free(b);
	free(body);
}

/* At most INGEST_MAX_SERIES distinct series in a request. */
static void
test_max_series(void **state)
{
	struct batch	*b;
	char		*body, *p;
	size_t		 i, n = INGEST_MAX_SERIES;

	(void)state;
	body = p = malloc(n * 16 + 64);
	assert_non_null(body);
	p += sprintf(p, "{\"run\":\"s\",\"steps\":[{\"step\":0,\"metrics\":{");
	for (i = 0; i < n - 1; i++)
		p += sprintf(p, "%s\"%zx\":1", i ? "," : "", i);
	p += sprintf(p, "},\"loss\":1}]}");
	b = parse_ok(body);
	assert_int_equal(b->nseries, INGEST_MAX_SERIES);
	batch_free(b);

	p = body;
	p += sprintf(p, "{\"run\":\"s\",\"steps\":[{\"step\":0,\"metrics\":{");
	for (i = 0; i < n; i++)
		p += sprintf(p, "%s\"%zx\":1", i ? "," : "", i);
	p += sprintf(p, "},\"loss\":1}]}");
	parse_bad(body, strlen(body), "bad_request",
	    "steps[0]: more than 100000 distinct series", NULL);
	free(body);
}

/* ---- refused bodies -------------------------------------------------- */

struct bad_case {
	const char	*name;
	const char	*body;
	size_t		 len;		/* 0: strlen(body) */
	const char	*code;
	const char	*want;		/* substring of the cause */
	const char	*want2;		/* another one, or NULL */
};

#define BR	"bad_request"
#define BJ	"bad_json"
#define S0	"{\"run\":\"r\",\"steps\":[{\"step\":0,"
#define NM	"\"layer_names\":[\"a\",\"b\",\"c\"],"
#define VAL	"expected a number or \"NaN\""

static const struct bad_case bad_cases[] = {
	/* Not JSON, or not the JSON we take. */
	{ "syntax error", "{\"run\":\"r\",}", 0, BJ,
	    "invalid JSON at line 1, column 12", "string or '}' expected" },
	{ "syntax error line 3", "{\n\"run\":\"r\",\n\"steps\":[}", 0, BJ,
	    "line 3", NULL },
	{ "truncated", S0 "\"loss\":1", 0, BJ, "end of file", NULL },
	{ "truncated string", "{\"run\":\"r", 0, BJ, "premature end", NULL },
	{ "trailing garbage", "{\"run\":\"r\"} x", 0, BJ,
	    "end of file expected", NULL },
	{ "two objects", "{\"run\":\"r\"}{\"run\":\"r\"}", 0, BJ,
	    "end of file expected", NULL },
	{ "empty body", "", 0, BJ, "invalid JSON", NULL },
	{ "whitespace body", " \n", 0, BJ, "invalid JSON", NULL },
	{ "top-level array", "[{\"run\":\"r\"}]", 0, BR,
	    "expected a JSON object at the top level", NULL },
	{ "top-level string", "\"r\"", 0, BJ, "invalid JSON", NULL },
	{ "top-level number", "3", 0, BJ, "invalid JSON", NULL },
	{ "invalid UTF-8 0xff in a key", S0 "\"metrics\":{\"a\xff\":1}}]}", 0,
	    BJ, "unable to decode byte 0xff", NULL },
	{ "invalid UTF-8 overlong", "{\"run\":\"\xc0\xaf\"}", 0, BJ,
	    "unable to decode byte 0xc0", NULL },
	{ "invalid UTF-8 cut sequence", S0 "\"metrics\":{\"\xe2\x82\":1}}]}",
	    0, BJ, "invalid JSON", NULL },
	{ "invalid UTF-8 surrogate", "{\"run\":\"r\",\"layer_names\":"
	    "[\"\xed\xa0\x80\"]}", 0, BJ, "invalid JSON", NULL },
	{ "lone surrogate escape", S0 "\"layers\":{\"\\ud800\":1}}]}", 0, BJ,
	    "invalid Unicode", NULL },
	{ "\\u0000 in a series name", S0 "\"layers\":{\"a\\u0000b\":1}}]}",
	    0, BJ, "\\u0000 (NUL) is not allowed", NULL },
	{ "\\u0000 in layer_names", "{\"run\":\"r\",\"layer_names\":"
	    "[\"fc\\u0000\"]}", 0, BJ, "\\u0000 (NUL) is not allowed", NULL },
	{ "\\u0000 in the run", "{\"run\":\"r\\u0000\"}", 0, BJ,
	    "\\u0000 (NUL) is not allowed", NULL },
	{ "raw NUL byte", "{\"run\":\"r\0\"}", 12, BJ, "invalid JSON", NULL },
	{ "duplicate key", "{\"run\":\"r\",\"run\":\"s\"}", 0, BJ,
	    "duplicate object key", NULL },
	{ "duplicate series key", S0 "\"layers\":{\"a\":1,\"a\":2}}]}", 0, BJ,
	    "duplicate object key", NULL },
	{ "real overflow", S0 "\"loss\":1e400}]}", 0, BJ,
	    "real number overflow", NULL },
	{ "negative real overflow", S0 "\"metrics\":{\"m\":-1e400}}]}", 0, BJ,
	    "real number overflow", NULL },
	{ "step 2^64", "{\"run\":\"r\",\"steps\":[{\"step\":"
	    "18446744073709551616}]}", 0, BJ, "too big integer", NULL },
	{ "step 2^63", "{\"run\":\"r\",\"steps\":[{\"step\":"
	    "9223372036854775808}]}", 0, BJ, "too big integer", NULL },
	{ "NaN literal", S0 "\"loss\":NaN}]}", 0, BJ, "invalid JSON", NULL },

	/* Top level. */
	{ "missing run", "{\"steps\":[]}", 0, BR, "missing \"run\"", NULL },
	{ "run null", "{\"run\":null}", 0, BR, "run: expected 1 to 128", NULL },
	{ "run number", "{\"run\":7}", 0, BR, "run: expected 1 to 128", NULL },
	{ "run empty", "{\"run\":\"\"}", 0, BR,
	    "run: expected 1 to 128 characters of [A-Za-z0-9._:-]", NULL },
	{ "run with a space", "{\"run\":\"a b\"}", 0, BR,
	    "run: expected 1 to 128", NULL },
	{ "run with a slash", "{\"run\":\"a/b\"}", 0, BR,
	    "run: expected 1 to 128", NULL },
	{ "run non-ASCII", "{\"run\":\"\xc3\xa9\"}", 0, BR,
	    "run: expected 1 to 128", NULL },
	{ "unknown top-level key", "{\"run\":\"r\",\"stepz\":[]}", 0, BR,
	    "unknown key \"stepz\"", NULL },
	{ "unknown key is quoted", "{\"run\":\"r\",\"a\\\"\\n\":1}", 0, BR,
	    "unknown key \"a\\\"\\n\"", NULL },
	{ "steps an object", "{\"run\":\"r\",\"steps\":{}}", 0, BR,
	    "steps: expected an array", NULL },
	{ "dropped negative", "{\"run\":\"r\",\"dropped\":-1}", 0, BR,
	    "dropped: expected a non-negative integer", NULL },
	{ "dropped real", "{\"run\":\"r\",\"dropped\":1.5}", 0, BR,
	    "dropped: expected a non-negative integer", NULL },
	{ "dropped string", "{\"run\":\"r\",\"dropped\":\"3\"}", 0, BR,
	    "dropped: expected a non-negative integer", NULL },

	/* Steps. */
	{ "step not an object", "{\"run\":\"r\",\"steps\":[{\"step\":0},7]}",
	    0, BR, "steps[1]: expected an object", NULL },
	{ "missing step", "{\"run\":\"r\",\"steps\":[{\"step\":0},{\"step\":1},"
	    "{\"loss\":1}]}", 0, BR, "steps[2]: missing \"step\"", NULL },
	{ "negative step", "{\"run\":\"r\",\"steps\":[{\"step\":-1}]}", 0, BR,
	    "steps[0].step: expected a non-negative integer", NULL },
	{ "real step", "{\"run\":\"r\",\"steps\":[{\"step\":3.5}]}", 0, BR,
	    "steps[0].step: expected a non-negative integer", NULL },
	{ "integral real step", "{\"run\":\"r\",\"steps\":[{\"step\":0},"
	    "{\"step\":3.0}]}", 0, BR,
	    "steps[1].step: expected a non-negative integer", NULL },
	{ "exponent step", "{\"run\":\"r\",\"steps\":[{\"step\":1e3}]}", 0, BR,
	    "steps[0].step: expected a non-negative integer", NULL },
	{ "string step", "{\"run\":\"r\",\"steps\":[{\"step\":\"1\"}]}", 0, BR,
	    "steps[0].step: expected a non-negative integer", NULL },
	{ "null step", "{\"run\":\"r\",\"steps\":[{\"step\":null}]}", 0, BR,
	    "steps[0].step: expected a non-negative integer", NULL },
	{ "unknown step key", S0 "\"lose\":1}]}", 0, BR,
	    "steps[0]: unknown key \"lose\"", NULL },
	{ "unknown step key later", "{\"run\":\"r\",\"steps\":[{\"step\":0},"
	    "{\"step\":1},{\"step\":2},{\"step\":3,\"Loss\":1}]}", 0, BR,
	    "steps[3]: unknown key \"Loss\"", NULL },

	/* Values. */
	{ "loss lower-case nan", S0 "\"loss\":\"nan\"}]}", 0, BR,
	    "steps[0].loss: " VAL, NULL },
	{ "loss numeric string", S0 "\"loss\":\"1.0\"}]}", 0, BR,
	    "steps[0].loss: " VAL, NULL },
	{ "loss inf", S0 "\"loss\":\"inf\"}]}", 0, BR,
	    "steps[0].loss: " VAL, NULL },
	{ "loss +Infinity", S0 "\"loss\":\"+Infinity\"}]}", 0, BR,
	    "steps[0].loss: " VAL, NULL },
	{ "loss true", S0 "\"loss\":true}]}", 0, BR,
	    "steps[0].loss: " VAL, NULL },
	{ "loss array", S0 "\"loss\":[1]}]}", 0, BR,
	    "steps[0].loss: " VAL, NULL },
	{ "grad_norm object", S0 "\"grad_norm\":{}}]}", 0, BR,
	    "steps[0].grad_norm: " VAL, NULL },
	{ "lr string", S0 "\"lr\":\"0.1\"}]}", 0, BR,
	    "steps[0].lr: " VAL, NULL },
	{ "loss_scale false", S0 "\"loss_scale\":false}]}", 0, BR,
	    "steps[0].loss_scale: " VAL, NULL },
	{ "time negative", S0 "\"time\":-1}]}", 0, BR,
	    "steps[0].time: expected a finite number >= 0", NULL },
	{ "time NaN", S0 "\"time\":\"NaN\"}]}", 0, BR,
	    "steps[0].time: expected a finite number >= 0", NULL },
	{ "time string", S0 "\"time\":\"1764061200\"}]}", 0, BR,
	    "steps[0].time: expected a finite number >= 0", NULL },
	{ "layer value string", S0 "\"layers\":{\"fc.weight\":\"Inf\"}}]}",
	    0, BR, "steps[0].layers[\"fc.weight\"]: " VAL, NULL },
	{ "layer value nested", S0 "\"layers\":{\"fc.weight\":[0.1]}}]}",
	    0, BR, "steps[0].layers[\"fc.weight\"]: " VAL, NULL },
	{ "weight value bool", S0 "\"weights\":{\"w\":true}}]}", 0, BR,
	    "steps[0].weights[\"w\"]: " VAL, NULL },
	{ "metric value object", S0 "\"metrics\":{\"acc\":{}}}]}", 0, BR,
	    "steps[0].metrics[\"acc\"]: " VAL, NULL },
	{ "layers a number", S0 "\"layers\":3}]}", 0, BR,
	    "steps[0].layers: expected an object of name -> value, or an "
	    "array aligned with layer_names", NULL },
	{ "weights a string", S0 "\"weights\":\"a\"}]}", 0, BR,
	    "steps[0].weights: expected an object", NULL },
	{ "metrics an array", S0 "\"metrics\":[1]}]}", 0, BR,
	    "steps[0].metrics: expected an object", NULL },
	{ "empty layer name", S0 "\"layers\":{\"\":1}}]}", 0, BR,
	    "steps[0].layers[\"\"]: expected a series name of 1 to 256 bytes",
	    NULL },
	{ "empty metric name", S0 "\"metrics\":{\"\":null}}]}", 0, BR,
	    "steps[0].metrics[\"\"]: expected a series name", NULL },
	{ "skipped a number", S0 "\"skipped\":1}]}", 0, BR,
	    "steps[0].skipped: expected true, false or null", NULL },
	{ "skipped a string", S0 "\"skipped\":\"true\"}]}", 0, BR,
	    "steps[0].skipped: expected true, false or null", NULL },
	{ "clip a number", S0 "\"clip\":1.0}]}", 0, BR,
	    "steps[0].clip: expected an object", NULL },
	{ "clip an array", S0 "\"clip\":[1,2]}]}", 0, BR,
	    "steps[0].clip: expected an object", NULL },
	{ "clip unknown key", S0 "\"clip\":{\"max\":1}}]}", 0, BR,
	    "steps[0].clip: unknown key \"max\"", NULL },
	{ "clip bad value", S0 "\"clip\":{\"max_norm\":1,\"pre_norm\":\"x\"}}]}",
	    0, BR, "steps[0].clip.pre_norm: " VAL, NULL },
	{ "clip bad max_norm", S0 "\"clip\":{\"max_norm\":true}}]}", 0, BR,
	    "steps[0].clip.max_norm: " VAL, NULL },

	/* The compact form. */
	{ "compact without layer_names", S0 "\"layers\":[1,2]}]}", 0, BR,
	    "steps[0].layers: an array needs \"layer_names\"", NULL },
	{ "compact weights without layer_names", S0 "\"weights\":[]}]}", 0,
	    BR, "steps[0].weights: an array needs \"layer_names\"", NULL },
	{ "compact too short", "{\"run\":\"r\"," NM "\"steps\":[{\"step\":0,"
	    "\"layers\":[1,2,3]},{\"step\":1,\"layers\":[1,2]}]}", 0, BR,
	    "steps[1].layers: expected 3 entries, one per layer_names entry, "
	    "not 2", NULL },
	{ "compact too long", "{\"run\":\"r\"," NM "\"steps\":[{\"step\":0,"
	    "\"weights\":[1,2,3,4]}]}", 0, BR,
	    "steps[0].weights: expected 3 entries", NULL },
	{ "compact bad value", "{\"run\":\"r\"," NM "\"steps\":[{\"step\":0,"
	    "\"layers\":[1,\"x\",3]}]}", 0, BR,
	    "steps[0].layers[1] (\"b\"): " VAL, NULL },
	{ "compact nested value", "{\"run\":\"r\"," NM "\"steps\":[{\"step\":0,"
	    "\"weights\":[1,2,[3]]}]}", 0, BR,
	    "steps[0].weights[2] (\"c\"): " VAL, NULL },
	{ "layer_names duplicate", "{\"run\":\"r\",\"layer_names\":[\"a\","
	    "\"b\",\"a\"]}", 0, BR, "layer_names[2]: \"a\" repeats "
	    "layer_names[0]", NULL },
	{ "layer_names an object", "{\"run\":\"r\",\"layer_names\":{}}", 0, BR,
	    "layer_names: expected an array of names", NULL },
	{ "layer_names a number inside", "{\"run\":\"r\",\"layer_names\":"
	    "[\"a\",1]}", 0, BR, "layer_names[1]: expected a series name",
	    NULL },
	{ "layer_names empty name", "{\"run\":\"r\",\"layer_names\":[\"\"]}", 0,
	    BR, "layer_names[0]: expected a series name of 1 to 256 bytes",
	    NULL },
	{ "layer_names null inside", "{\"run\":\"r\",\"layer_names\":[null]}",
	    0, BR, "layer_names[0]: expected a series name", NULL },

	/* Meta. */
	{ "meta an array", "{\"run\":\"r\",\"meta\":[]}", 0, BR,
	    "meta: expected an object", NULL },
	{ "meta.project a number", "{\"run\":\"r\",\"meta\":{\"project\":3}}",
	    0, BR, "meta.project: expected a string or null", NULL },
	{ "meta.layers an array", "{\"run\":\"r\",\"meta\":{\"layers\":[]}}",
	    0, BR, "meta.layers: expected an object", NULL },
	{ "meta.layers entry a number", "{\"run\":\"r\",\"meta\":{\"layers\":"
	    "{\"fc\":3}}}", 0, BR, "meta.layers[\"fc\"]: expected an object",
	    NULL },
	{ "meta.layers numel negative", "{\"run\":\"r\",\"meta\":{\"layers\":"
	    "{\"fc\":{\"numel\":-1}}}}", 0, BR,
	    "meta.layers[\"fc\"].numel: expected a non-negative integer", NULL },
	{ "meta.layers numel real", "{\"run\":\"r\",\"meta\":{\"layers\":"
	    "{\"fc\":{\"numel\":10.0}}}}", 0, BR,
	    "meta.layers[\"fc\"].numel: expected a non-negative integer", NULL },
	{ "meta.layers depth string", "{\"run\":\"r\",\"meta\":{\"layers\":"
	    "{\"fc\":{\"depth\":\"1\"}}}}", 0, BR,
	    "meta.layers[\"fc\"].depth: expected a non-negative integer", NULL },
	{ "meta.layers shape a number", "{\"run\":\"r\",\"meta\":{\"layers\":"
	    "{\"fc\":{\"shape\":64}}}}", 0, BR,
	    "meta.layers[\"fc\"].shape: expected an array of non-negative "
	    "integers", NULL },
	{ "meta.layers shape negative", "{\"run\":\"r\",\"meta\":{\"layers\":"
	    "{\"fc\":{\"shape\":[64,-3]}}}}", 0, BR,
	    "meta.layers[\"fc\"].shape[1]: expected a non-negative integer",
	    NULL },
	{ "meta.layers shape nested", "{\"run\":\"r\",\"meta\":{\"layers\":"
	    "{\"fc\":{\"shape\":[[64]]}}}}", 0, BR,
	    "meta.layers[\"fc\"].shape[0]: expected a non-negative integer",
	    NULL },
	{ "meta.layers unknown key", "{\"run\":\"r\",\"meta\":{\"layers\":"
	    "{\"fc\":{\"nmel\":3}}}}", 0, BR,
	    "meta.layers[\"fc\"]: unknown key \"nmel\"", NULL },
	{ "meta.layers empty name", "{\"run\":\"r\",\"meta\":{\"layers\":"
	    "{\"\":{}}}}", 0, BR,
	    "meta.layers[\"\"]: expected a layer name of 1 to 256 bytes", NULL },

	/* The whole request is refused: a late error after good points. */
	{ "late error", "{\"run\":\"r\",\"steps\":[{\"step\":0,\"loss\":1},"
	    "{\"step\":1,\"loss\":2,\"layers\":{\"a\":1}},{\"step\":2,"
	    "\"loss\":\"oops\"}]}", 0, BR, "steps[2].loss: " VAL, NULL },
};

static void
test_bad_case(void **state)
{
	const struct bad_case	*c = *state;

	parse_bad(c->body, c->len ? c->len : strlen(c->body), c->code,
	    c->want, c->want2);
}

/* ---- finish and run keys --------------------------------------------- */

static void
test_finish(void **state)
{
	static const struct {
		const char	*body, *code, *want;
	} bad[] = {
		{ "{\"status\":\"done\"}", BR,
		    "status: expected \"finished\" or \"failed\"" },
		{ "{\"status\":\"Finished\"}", BR, "status: expected" },
		{ "{\"status\":null}", BR, "status: expected" },
		{ "{\"status\":1}", BR, "status: expected" },
		{ "{}", BR, "missing \"status\"" },
		{ "{\"status\":\"failed\",\"why\":\"oom\"}", BR,
		    "unknown key \"why\"" },
		{ "[\"finished\"]", BR, "expected a JSON object" },
		{ "\"finished\"", BJ, "invalid JSON" },
		{ "{\"status\":\"failed\"", BJ, "invalid JSON" },
		{ "{\"status\":\"failed\"}x", BJ, "end of file expected" },
		{ "{\"status\":\"failed\",\"status\":\"finished\"}", BJ,
		    "duplicate object key" },
		{ " ", BJ, "invalid JSON" },
		{ "{\"status\":\"\xff\"}", BJ, "unable to decode byte 0xff" },
	};
	const char	*code, *st;
	char		*cause;
	size_t		 i;

	(void)state;
	assert_string_equal(ingest_parse_finish("", 0, &code, &cause),
	    "finished");
	assert_string_equal(ingest_parse_finish(NULL, 0, &code, &cause),
	    "finished");
	assert_string_equal(ingest_parse_finish("{\"status\":\"finished\"}",
	    21, &code, &cause), "finished");
	st = " {\"status\": \"failed\"}\n";
	assert_string_equal(ingest_parse_finish(st, strlen(st), &code, &cause),
	    "failed");
	/* Not NUL-terminated: only len bytes count. */
	assert_string_equal(ingest_parse_finish("{\"status\":\"failed\"}garbage",
	    19, &code, &cause), "failed");
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		code = NULL;
		cause = NULL;
		st = ingest_parse_finish(bad[i].body, strlen(bad[i].body),
		    &code, &cause);
		if (st != NULL)
			fail_msg("accepted finish body %s", bad[i].body);
		assert_non_null(cause);
		if (strcmp(code, bad[i].code) != 0 ||
		    strstr(cause, bad[i].want) == NULL)
			fail_msg("%s: got %s: %s", bad[i].body, code, cause);
		free(cause);
	}
}

static void
test_is_run_key(void **state)
{
	static const char *const good[] = { "a", "Z", "0", "resnet18-lr0.1-s1",
	    "run:2026-11-25T10:00", "a_b.c-d:e", "...", "-" };
	static const char *const bad[] = { "", "a b", "\xc3\xa9", "a/b", "a\"",
	    "a\tb", "a\nb", "run#1", "a%20b", "a?b", "a+b", "a~b", "a,b" };
	char	*k;
	size_t	 i;

	(void)state;
	for (i = 0; i < sizeof good / sizeof good[0]; i++)
		if (!wire_is_run_key(good[i]))
			fail_msg("refused run key \"%s\"", good[i]);
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (wire_is_run_key(bad[i]))
			fail_msg("accepted run key \"%s\"", bad[i]);
	assert_false(wire_is_run_key(NULL));
	k = repeat('k', 128);
	assert_true(wire_is_run_key(k));
	free(k);
	k = repeat('k', 129);
	assert_false(wire_is_run_key(k));
	free(k);
	k = repeat('k', 100000);
	assert_false(wire_is_run_key(k));
	free(k);
}

/* The body need not be NUL-terminated, and bytes past len do not count. */
static void
test_not_terminated(void **state)
{
	static const char	body[] = "{\"run\":\"r\",\"steps\":[{\"step\":1,"
	    "\"loss\":2}]}{{{garbage";
	struct batch		*b;
	const char		*code;
	char			*cause, *copy;
	size_t			 len = strlen(body) - strlen("{{{garbage");

	(void)state;
	copy = malloc(len);		/* exactly len bytes: no NUL */
	assert_non_null(copy);
	memcpy(copy, body, len);
	b = ingest_parse(copy, len, SIZE_MAX, &code, &cause);
	assert_non_null(b);
	assert_int_equal(b->npoints, 1);
	batch_free(b);
	parse_bad(body, len - 1, BJ, "invalid JSON", NULL);
	free(copy);
}

/* ---- the request cases for the daemon-level test --------------------- */

struct data_case {
	char	*json;		/* path of NAME.json */
	char	*expect;	/* path of NAME.expect */
};

static char *
path_join(const char *dir, const char *name, size_t namelen,
    const char *suffix)
{
	size_t	 n = strlen(dir) + namelen + strlen(suffix) + 2;
	char	*p;

	if ((p = malloc(n)) == NULL)
		abort();
	snprintf(p, n, "%s/%.*s%s", dir, (int)namelen, name, suffix);
	return p;
}

static char *
slurp(const char *path, size_t *lenp)
{
	FILE	*f;
	char	*buf;
	long	 n;

	if ((f = fopen(path, "rb")) == NULL)
		fail_msg("%s: cannot open", path);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n >= 0);
	rewind(f);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	*lenp = (size_t)n;
	return buf;
}

static void
test_data_case(void **state)
{
	const struct data_case	*dc = *state;
	struct batch		*b;
	const char		*code = NULL;
	char			*body, *expect, *line[4] = { NULL }, *p, *cause;
	size_t			 len, elen, i;

	body = slurp(dc->json, &len);
	expect = slurp(dc->expect, &elen);
	for (i = 0, p = expect; i < 4 && p != NULL && *p != '\0'; i++) {
		line[i] = p;
		if ((p = strchr(p, '\n')) != NULL)
			*p++ = '\0';
	}
	if (line[0] == NULL || line[1] == NULL || line[2] == NULL)
		fail_msg("%s: needs three lines", dc->expect);
	b = ingest_parse(body, len, SIZE_MAX, &code, &cause);
	if (strcmp(line[0], "200") == 0) {
		if (b == NULL)
			fail_msg("%s: refused (%s): %s", dc->json, code, cause);
		check_invariants(b);
		if (line[3] != NULL && strcmp(line[3], "-") != 0 &&
		    b->npoints != strtoull(line[3], NULL, 10))
			fail_msg("%s: %zu points, want %s", dc->json,
			    b->npoints, line[3]);
		batch_free(b);
	} else {
		assert_string_equal(line[0], "400");
		if (b != NULL)
			fail_msg("%s: accepted", dc->json);
		if (strcmp(code, line[1]) != 0 || (strcmp(line[2], "-") != 0 &&
		    strstr(cause, line[2]) == NULL))
			fail_msg("%s: got %s: %s\nwant %s: %s", dc->json, code,
			    cause, line[1], line[2]);
		free(cause);
	}
	free(body);
	free(expect);
}

#define MAX_TESTS	1024

int
main(void)
{
	static const struct CMUnitTest	fixed[] = {
		cmocka_unit_test(test_full_object),
		cmocka_unit_test(test_full_compact),
		cmocka_unit_test(test_mixed_forms),
		cmocka_unit_test(test_compact_nulls),
		cmocka_unit_test(test_duplicate_steps),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_meta),
		cmocka_unit_test(test_meta_config_limit),
		cmocka_unit_test(test_number_edges),
		cmocka_unit_test(test_name_limits),
		cmocka_unit_test(test_run_key_limits),
		cmocka_unit_test(test_depth),
		cmocka_unit_test(test_sparse_growth),
		cmocka_unit_test(test_max_series),
		cmocka_unit_test(test_finish),
		cmocka_unit_test(test_is_run_key),
		cmocka_unit_test(test_not_terminated),
	};
	static struct CMUnitTest	tests[MAX_TESTS];
	static struct data_case		cases[MAX_TESTS];
	struct dirent			*de;
	struct data_case		*dc;
	const char			*top;
	char				 dir[4096];
	size_t				 n = 0, ncases = 0, i, l;
	DIR				*d;
	int				 rc;

	for (i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
		tests[n++] = fixed[i];
	for (i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
		tests[n] = (struct CMUnitTest)cmocka_unit_test(test_bad_case);
		tests[n].name = bad_cases[i].name;
		tests[n++].initial_state = (void *)(uintptr_t)&bad_cases[i];
	}
	if ((top = getenv("GW_TOP")) == NULL)
		top = ".";
	snprintf(dir, sizeof dir, "%s/tests/data/ingest", top);
	if ((d = opendir(dir)) == NULL) {
		fprintf(stderr, "test_ingest: %s: cannot open (run from the "
		    "top of the tree or set GW_TOP)\n", dir);
		return 1;
	}
	while ((de = readdir(d)) != NULL) {
		l = strlen(de->d_name);
		if (l <= 5 || strcmp(de->d_name + l - 5, ".json") != 0)
			continue;
		if (n == MAX_TESTS) {
			fprintf(stderr, "test_ingest: over %d tests\n",
			    MAX_TESTS);
			return 1;
		}
		dc = &cases[ncases++];
		dc->json = path_join(dir, de->d_name, l, "");
		dc->expect = path_join(dir, de->d_name, l - 5, ".expect");
		tests[n] = (struct CMUnitTest)cmocka_unit_test(test_data_case);
		tests[n].name = path_join("tests/data/ingest", de->d_name, l,
		    "");
		tests[n++].initial_state = dc;
	}
	closedir(d);
	if (ncases < 20) {
		fprintf(stderr, "test_ingest: %s: %zu request cases, want 20 "
		    "or more\n", dir, ncases);
		return 1;
	}
	rc = _cmocka_run_group_tests("ingest", tests, n, NULL, NULL);
	for (i = 0; i < ncases; i++) {
		free(cases[i].json);
		free(cases[i].expect);
	}
	for (i = sizeof fixed / sizeof fixed[0] +
	    sizeof bad_cases / sizeof bad_cases[0]; i < n; i++)
		free((void *)(uintptr_t)tests[i].name);
	return rc;
}
