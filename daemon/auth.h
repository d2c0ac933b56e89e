/* SPDX-License-Identifier: MIT */
/*
 * auth: who may talk to gradwatchd, one set of rules for the HTTP API
 * and the live stream: the bearer token (compared in constant time),
 * and, for browsers, the names a request may use to reach us (Host) and
 * the origins a page may come from (Origin), so that neither a page of
 * another site nor a DNS-rebound name can use a browser as a proxy.
 * Pure functions of header values and the configuration; any thread.
 */
#ifndef GW_AUTH_H
#define GW_AUTH_H

#include <stddef.h>

struct config;

/* 1 if cand equals the token; time independent of where they differ. */
int	auth_token_equal(const char *cand, const char *tok);
/*
 * 1 if the request may pass: no token is configured, or the value of
 * its Authorization header (NULL: none) is "Bearer <token>".
 */
int	auth_bearer_ok(const char *authorization, const char *token);
/*
 * Split "host[:port]" or "[v6][:port]" into host (hostsz bytes) and
 * *port (0: none).  0, or -1 when it is not of that shape.
 */
int	auth_split_hostport(const char *s, char *host, size_t hostsz,
	    long *port);
/*
 * 1 if host (a name, no port) is one a browser may use for us: an IP
 * address literal, "localhost", a name we listen on, one of allow-host,
 * or external-url's.
 */
int	auth_host_name_ok(const char *host, const struct config *cfg);
/*
 * 1 if a browser's Origin (NULL: not a browser, allowed) is the
 * dashboard: the name of the Host header (which must pass
 * auth_host_name_ok()) and the HTTP port, or external-url's host and
 * port (a dashboard behind a proxy).
 */
int	auth_origin_ok(const char *origin, const char *host,
	    const struct config *cfg);

#endif
