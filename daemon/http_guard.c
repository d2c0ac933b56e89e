/* SPDX-License-Identifier: MIT */
/* http_guard: connection caps, query size and browser rules; see http_guard.h. */
#include <sys/resource.h>

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <microhttpd.h>

#include "auth.h"
#include "config.h"
#include "http_guard.h"
#include "log.h"

#define HTTP_GUARD_FD_RESERVE	256	/* descriptors kept for all but HTTP */

unsigned int
http_guard_connection_limit(const struct config *cfg)
{
	struct rlimit	rl;
	size_t		limit = cfg->max_connections;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    (size_t)rl.rlim_cur < limit + HTTP_GUARD_FD_RESERVE) {
		limit = rl.rlim_cur > 2 * HTTP_GUARD_FD_RESERVE ?
		    (size_t)rl.rlim_cur - HTTP_GUARD_FD_RESERVE :
		    HTTP_GUARD_FD_RESERVE;
		log_warnx("http: %zu connections at most, not %zu: the "
		    "descriptor limit is %llu", limit, cfg->max_connections,
		    (unsigned long long)rl.rlim_cur);
	}
	return (unsigned int)limit;
}

int
http_guard_cut_query(char *uri)
{
	char		*query;
	const char	*p;
	size_t		 n = 1;

	if ((query = strchr(uri, '?')) == NULL)
		return 0;
	for (p = query; *p != '\0'; p++)
		if (*p == '&' || *p == ';')
			n++;
	if (n <= HTTP_GUARD_QUERY_PARAMS_MAX)
		return 0;
	query[1] = '\0';
	return 1;
}

/* 1 if a Content-Type value is application/json (parameters aside). */
static int
http_guard_is_json(const char *type)
{
	size_t	n;

	if (type == NULL)
		return 0;
	type += strspn(type, " \t");
	n = strcspn(type, "; \t");
	return n == 16 && strncasecmp(type, "application/json", n) == 0;
}

const char *
http_guard_browser(struct MHD_Connection *conn, const struct config *cfg,
    int is_write, const char **message)
{
	const char	*host, *origin;
	char		 name[256];
	long		 port;

	host = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_HOST);
	origin = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	    "Origin");
	/* With a token a rebound page gets 401s: it cannot know it. */
	if (cfg->token == NULL && host != NULL &&
	    (auth_split_hostport(host, name, sizeof name, &port) == -1 ||
	    !auth_host_name_ok(name, cfg))) {
		*message = "this Host is not a name of gradwatchd's: use an "
		    "address, localhost, or a name given with --allow-host";
		return "forbidden";
	}
	if (!auth_origin_ok(origin, host, cfg)) {
		*message = "a page of another origin may not use this API "
		    "(Origin); see --allow-host and --external-url";
		return "forbidden";
	}
	if (is_write && !http_guard_is_json(MHD_lookup_connection_value(conn,
	    MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE))) {
		*message = "expected 'Content-Type: application/json'";
		return "unsupported_media_type";
	}
	return NULL;
}
