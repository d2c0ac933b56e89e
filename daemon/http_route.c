/* SPDX-License-Identifier: MIT */
/*
 * http_route: API.md's paths as routes; see http_route.h.
 */
#include <stdlib.h>
#include <string.h>

#include "http_route.h"
#include "xmalloc.h"

#define HTTP_API_PREFIX		"/api/v1/"

const char *const http_param_names[P_COUNT] = {
	"series", "from", "to", "max", "buckets", "project", "status",
	"run", "state", "since", "format", "config"
};

enum http_route
http_route_path(const char *url, char **run)
{
	const char	*p, *slash;
	size_t		 n;

	*run = NULL;
	if (strcmp(url, "/healthz") == 0)
		return ROUTE_HEALTHZ;
	if (strcmp(url, "/metrics") == 0)
		return ROUTE_METRICS;
	if (strncmp(url, HTTP_API_PREFIX, strlen(HTTP_API_PREFIX)) != 0)
		return ROUTE_NONE;
	p = url + strlen(HTTP_API_PREFIX);
	if (strcmp(p, "ingest") == 0)
		return ROUTE_INGEST;
	if (strcmp(p, "runs") == 0)
		return ROUTE_RUNS;
	if (strcmp(p, "alerts") == 0)
		return ROUTE_ALERTS;
	if (strcmp(p, "info") == 0)
		return ROUTE_INFO;
	if (strncmp(p, "runs/", 5) != 0)
		return ROUTE_NONE;
	p += 5;
	slash = strchr(p, '/');
	n = slash == NULL ? strlen(p) : (size_t)(slash - p);
	if (n == 0)
		return ROUTE_NONE;
	*run = xstrndup(p, n);
	if (slash == NULL)
		return ROUTE_RUN;
	slash++;
	if (strcmp(slash, "points") == 0)
		return ROUTE_POINTS;
	if (strcmp(slash, "heatmap") == 0)
		return ROUTE_HEATMAP;
	if (strcmp(slash, "export") == 0)
		return ROUTE_EXPORT;
	if (strcmp(slash, "finish") == 0)
		return ROUTE_FINISH;
	free(*run);
	*run = NULL;
	return ROUTE_NONE;
}

int
http_route_is_post(enum http_route r)
{
	return r == ROUTE_INGEST || r == ROUTE_FINISH || r == ROUTE_RUN_PATCH;
}

int
http_is_static(enum http_route r, const char *url)
{
	return r == ROUTE_NONE && strncmp(url, "/api/", 5) != 0;
}

enum metrics_route
http_metrics_route(enum http_route r)
{
	switch (r) {
	case ROUTE_INGEST:
	case ROUTE_FINISH:
	case ROUTE_RUN_PATCH:
		return METRICS_ROUTE_INGEST;
	case ROUTE_EXPORT:
		return METRICS_ROUTE_EXPORT;
	case ROUTE_RUNS:
	case ROUTE_RUN:
	case ROUTE_POINTS:
	case ROUTE_HEATMAP:
	case ROUTE_ALERTS:
		return METRICS_ROUTE_QUERY;
	default:
		return METRICS_ROUTE_OTHER;
	}
}
