/* SPDX-License-Identifier: MIT */
/*
 * API.md's paths as routes (http_route.c): every route and its {run},
 * the near misses that are no route, which routes write, which paths
 * are dashboard files, and each route's /metrics family.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "http_route.h"

/* url routes to want, with {run} want_run (NULL: none). */
static void
route_is(const char *url, enum http_route want, const char *want_run)
{
	static char	 unset[] = "unset";
	char		*run = unset;

	assert_int_equal(http_route_path(url, &run), want);
	if (want_run == NULL)
		assert_null(run);
	else
		assert_string_equal(run, want_run);
	free(run);
}

static void
test_paths(void **state)
{
	(void)state;
	route_is("/healthz", ROUTE_HEALTHZ, NULL);
	route_is("/metrics", ROUTE_METRICS, NULL);
	route_is("/api/v1/ingest", ROUTE_INGEST, NULL);
	route_is("/api/v1/runs", ROUTE_RUNS, NULL);
	route_is("/api/v1/alerts", ROUTE_ALERTS, NULL);
	route_is("/api/v1/info", ROUTE_INFO, NULL);
	route_is("/api/v1/runs/r1", ROUTE_RUN, "r1");
	route_is("/api/v1/runs/r1/points", ROUTE_POINTS, "r1");
	route_is("/api/v1/runs/r1/heatmap", ROUTE_HEATMAP, "r1");
	route_is("/api/v1/runs/r1/export", ROUTE_EXPORT, "r1");
	route_is("/api/v1/runs/a.b-c_d/finish", ROUTE_FINISH, "a.b-c_d");
}

static void
test_no_route(void **state)
{
	(void)state;
	route_is("/", ROUTE_NONE, NULL);
	route_is("/index.html", ROUTE_NONE, NULL);
	route_is("/api/v1/", ROUTE_NONE, NULL);
	route_is("/api/v1/runs/", ROUTE_NONE, NULL);
	route_is("/api/v1/runs//points", ROUTE_NONE, NULL);
	route_is("/api/v1/runs/r1/", ROUTE_NONE, NULL);
	route_is("/api/v1/runs/r1/points/x", ROUTE_NONE, NULL);
	route_is("/api/v1/runs/r1/nothing", ROUTE_NONE, NULL);
	route_is("/api/v2/runs", ROUTE_NONE, NULL);
	route_is("/api/v1/ingestx", ROUTE_NONE, NULL);
	route_is("/healthz/", ROUTE_NONE, NULL);
}

static void
test_kinds(void **state)
{
	(void)state;
	assert_true(http_route_is_post(ROUTE_INGEST));
	assert_true(http_route_is_post(ROUTE_FINISH));
	assert_true(http_route_is_post(ROUTE_RUN_PATCH));
	assert_false(http_route_is_post(ROUTE_RUN));
	assert_false(http_route_is_post(ROUTE_EXPORT));
	assert_true(http_is_static(ROUTE_NONE, "/app.js"));
	assert_true(http_is_static(ROUTE_NONE, "/"));
	assert_false(http_is_static(ROUTE_NONE, "/api/v1/nothing"));
	assert_false(http_is_static(ROUTE_RUNS, "/api/v1/runs"));
	assert_int_equal(http_metrics_route(ROUTE_INGEST), METRICS_ROUTE_INGEST);
	assert_int_equal(http_metrics_route(ROUTE_RUN_PATCH),
	    METRICS_ROUTE_INGEST);
	assert_int_equal(http_metrics_route(ROUTE_EXPORT), METRICS_ROUTE_EXPORT);
	assert_int_equal(http_metrics_route(ROUTE_POINTS), METRICS_ROUTE_QUERY);
	assert_int_equal(http_metrics_route(ROUTE_HEALTHZ), METRICS_ROUTE_OTHER);
	assert_string_equal(http_param_names[P_SERIES], "series");
	assert_string_equal(http_param_names[P_CONFIG], "config");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_paths),
		cmocka_unit_test(test_no_route),
		cmocka_unit_test(test_kinds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
