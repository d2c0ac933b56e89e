/* SPDX-License-Identifier: MIT */
/* auth: token, Host and Origin rules; see auth.h. */
#include <sys/socket.h>
#include <sys/types.h>

#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth.h"
#include "config.h"

int
auth_token_equal(const char *cand, const char *tok)
{
	size_t		 i, n = strlen(cand), m = strlen(tok);
	unsigned char	 diff = n != m;

	for (i = 0; i < m; i++)
		diff |= (unsigned char)tok[i] ^
		    (unsigned char)(i < n ? cand[i] : 0);
	return diff == 0;
}

int
auth_bearer_ok(const char *authorization, const char *token)
{
	if (token == NULL)
		return 1;
	if (authorization == NULL || strncmp(authorization, "Bearer ", 7) != 0)
		return 0;
	return auth_token_equal(authorization + 7, token);
}

int
auth_split_hostport(const char *s, char *host, size_t hostsz, long *port)
{
	const char	*end, *colon;
	size_t		 n;
	char		*ep;

	*port = 0;
	if (*s == '[') {
		if ((end = strchr(s, ']')) == NULL)
			return -1;
		s++;
		n = (size_t)(end - s);
		colon = end[1] == ':' ? end + 1 : NULL;
		if (end[1] != '\0' && colon == NULL)
			return -1;
	} else {
		colon = strchr(s, ':');
		n = colon != NULL ? (size_t)(colon - s) : strlen(s);
	}
	if (n == 0 || n >= hostsz)
		return -1;
	memcpy(host, s, n);
	host[n] = '\0';
	if (colon != NULL) {
		*port = strtol(colon + 1, &ep, 10);
		if (*ep != '\0' || *port <= 0 || *port > 65535)
			return -1;
	}
	return 0;
}

/*
 * Split an http:// or https:// URL's authority (up to its path) into
 * host and *port (the scheme's when none).  0, or -1.
 */
static int
auth_split_url(const char *url, char *host, size_t hostsz, long *port)
{
	char		 auth[512];
	const char	*p;
	size_t		 n;
	int		 https;

	if (strncasecmp(url, "http://", 7) == 0) {
		https = 0;
		p = url + 7;
	} else if (strncasecmp(url, "https://", 8) == 0) {
		https = 1;
		p = url + 8;
	} else
		return -1;
	n = strcspn(p, "/?#");
	if (n >= sizeof auth)
		return -1;
	memcpy(auth, p, n);
	auth[n] = '\0';
	if (auth_split_hostport(auth, host, hostsz, port) == -1)
		return -1;
	if (*port == 0)
		*port = https ? 443 : 80;
	return 0;
}

int
auth_host_name_ok(const char *host, const struct config *cfg)
{
	struct addrinfo	 hints, *res = NULL;
	char		 ext[256];
	long		 port;
	size_t		 i;

	if (strcasecmp(host, "localhost") == 0 ||
	    strcasecmp(host, cfg->http_host) == 0 ||
	    strcasecmp(host, cfg->ws_host) == 0)
		return 1;
	for (i = 0; i < cfg->nallow_hosts; i++)
		if (strcasecmp(host, cfg->allow_hosts[i]) == 0)
			return 1;
	if (cfg->external_url != NULL && auth_split_url(cfg->external_url,
	    ext, sizeof ext, &port) == 0 && strcasecmp(host, ext) == 0)
		return 1;
	memset(&hints, 0, sizeof hints);
	hints.ai_flags = AI_NUMERICHOST;
	if (getaddrinfo(host, NULL, &hints, &res) != 0)
		return 0;
	freeaddrinfo(res);
	return 1;
}

int
auth_origin_ok(const char *origin, const char *host, const struct config *cfg)
{
	char		 ohost[256], hhost[256], ext[256];
	long		 oport, hport, eport;

	if (origin == NULL)
		return 1;	/* not a browser */
	if (host == NULL)
		return 0;
	/* An origin is scheme://host[:port], nothing after. */
	if (auth_split_url(origin, ohost, sizeof ohost, &oport) == -1 ||
	    strpbrk(strstr(origin, "//") + 2, "/?#") != NULL ||
	    auth_split_hostport(host, hhost, sizeof hhost, &hport) == -1)
		return 0;
	if (strcasecmp(ohost, hhost) != 0 || !auth_host_name_ok(ohost, cfg))
		return 0;
	/* The dashboard's own port, or the page behind --external-url. */
	if (cfg->http_port == 0 || oport == cfg->http_port)
		return 1;
	return cfg->external_url != NULL && auth_split_url(cfg->external_url,
	    ext, sizeof ext, &eport) == 0 && strcasecmp(ohost, ext) == 0 &&
	    oport == eport;
}
