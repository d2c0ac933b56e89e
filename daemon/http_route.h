/* SPDX-License-Identifier: MIT */
/*
 * http_route: API.md's paths as routes, and what each route is (a
 * write, a dashboard file, its /metrics family).  Pure functions; any
 * thread.
 */
#ifndef GW_HTTP_ROUTE_H
#define GW_HTTP_ROUTE_H

#include "metrics.h"

enum http_route {
	ROUTE_NONE = 0,
	ROUTE_INGEST,
	ROUTE_RUNS,
	ROUTE_RUN,
	ROUTE_POINTS,
	ROUTE_HEATMAP,
	ROUTE_EXPORT,
	ROUTE_FINISH,
	ROUTE_RUN_PATCH,	/* PATCH of ROUTE_RUN's path */
	ROUTE_ALERTS,
	ROUTE_INFO,
	ROUTE_HEALTHZ,
	ROUTE_METRICS,
};

/* The query-string values a route uses, copied before dispatch. */
enum http_param {
	P_SERIES, P_FROM, P_TO, P_MAX, P_BUCKETS, P_PROJECT, P_STATUS,
	P_RUN, P_STATE, P_SINCE, P_FORMAT, P_CONFIG, P_COUNT
};
extern const char *const http_param_names[P_COUNT];

/*
 * Split url's path into a route and its {run} (*run allocated, or NULL
 * when the route has none); ROUTE_NONE when unknown.  A PATCH of a run
 * is ROUTE_RUN here: the method is the caller's to weigh.
 */
enum http_route		 http_route_path(const char *url, char **run);
/* 1 for a route that writes (POST, or PATCH of a run). */
int			 http_route_is_post(enum http_route r);
/* 1 for a dashboard file: a path outside the API and /metrics. */
int			 http_is_static(enum http_route r, const char *url);
/* The /metrics family a route's requests are counted in. */
enum metrics_route	 http_metrics_route(enum http_route r);

#endif
