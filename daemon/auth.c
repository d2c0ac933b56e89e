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

int
auth_host_name_ok(const char *host, const struct config *cfg)
{
	struct addrinfo	 hints, *res = NULL;

	if (strcasecmp(host, "localhost") == 0 ||
	    strcasecmp(host, cfg->http_host) == 0 ||
	    strcasecmp(host, cfg->ws_host) == 0)
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
	char		 ohost[256], hhost[256];
	const char	*p;
	long		 oport, hport;
	int		 https;

	if (origin == NULL)
		return 1;	/* not a browser */
	if (host == NULL)
		return 0;
	if (strncasecmp(origin, "http://", 7) == 0) {
		https = 0;
		p = origin + 7;
	} else if (strncasecmp(origin, "https://", 8) == 0) {
		https = 1;
		p = origin + 8;
	} else
		return 0;
	if (auth_split_hostport(p, ohost, sizeof ohost, &oport) == -1 ||
	    auth_split_hostport(host, hhost, sizeof hhost, &hport) == -1)
		return 0;
	if (oport == 0)
		oport = https ? 443 : 80;
	if (strcasecmp(ohost, hhost) != 0 || !auth_host_name_ok(ohost, cfg))
		return 0;
	return cfg->http_port == 0 || oport == cfg->http_port;
}
