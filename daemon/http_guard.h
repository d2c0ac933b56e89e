/* SPDX-License-Identifier: MIT */
/*
 * http_guard: what the HTTP side holds against hostile clients and
 * pages before a request is routed (its token aside: auth.h).  The
 * connection caps given to libmicrohttpd; a query of too many
 * parameters; and the browser rules, so that without a token neither
 * another site's page (a text/plain cross-origin POST needs no
 * preflight) nor a DNS-rebound name can use a browser on this machine
 * to write runs or read them.  Any thread; no state of its own.
 */
#ifndef GW_HTTP_GUARD_H
#define GW_HTTP_GUARD_H

#include <microhttpd.h>

struct config;

/* More query parameters than the API ever reads: refused. */
#define HTTP_GUARD_QUERY_PARAMS_MAX	256

/*
 * The connection cap: cfg's, less when the descriptor limit leaves too
 * few for the database, the stream and its viewers (logged once).
 */
unsigned int	 http_guard_connection_limit(const struct config *cfg);
/*
 * 1 if uri's query has more than HTTP_GUARD_QUERY_PARAMS_MAX parameters;
 * then it is cut to nothing, in place (see http_api.c's http_uri_cb).
 */
int		 http_guard_cut_query(char *uri);
/*
 * The browser rules for a request on conn (is_write: a POST): its Host,
 * when no token is configured, must be a name we may be reached by
 * (auth_host_name_ok); an Origin, when sent, must be the dashboard's
 * (auth_origin_ok); a write's Content-Type must be application/json.
 * NULL if it passes; else the error code (docs/API.md) and *message.
 */
const char	*http_guard_browser(struct MHD_Connection *conn,
		    const struct config *cfg, int is_write,
		    const char **message);

#endif
