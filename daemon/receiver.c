/* SPDX-License-Identifier: MIT */
/*
 * receiver: parsing a receiver's directive and its filter; see
 * receiver.h.  URLs are checked with libcurl's URL parser, the one
 * that will later send to them.  Main thread, start-up only.
 */
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "detector.h"
#include "log.h"
#include "receiver.h"
#include "xmalloc.h"

#define RECEIVER_AM_PATH	"/api/v2/alerts"

static const char *const receiver_kind_names[RECEIVER_KIND_COUNT] = {
	"alertmanager", "webhook", "slack"
};

const char *
receiver_kind_name(enum receiver_kind kind)
{
	return kind < RECEIVER_KIND_COUNT ? receiver_kind_names[kind] : "?";
}

void
receiver_cleanup(struct receiver *r)
{
	size_t	i;

	if (r == NULL)
		return;
	free(r->name);
	free(r->url);
	free(r->post_url);
	if (r->projects != NULL)
		for (i = 0; r->projects[i] != NULL; i++)
			free(r->projects[i]);
	free(r->projects);
	if (r->bearer != NULL)
		explicit_bzero(r->bearer, strlen(r->bearer));
	free(r->bearer);
	memset(r, 0, sizeof *r);
}

/* FNV-1a of s, for a default name that does not show a secret path. */
static uint32_t
receiver_hash(const char *s)
{
	uint32_t	h = 2166136261u;

	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 16777619u;
	}
	return h;
}

/*
 * Check url (http or https, with a host) and derive the default name
 * and the URL to post to.  0, or -1 with *cause.
 */
static int
receiver_set_url(struct receiver *r, const char *url, char **cause)
{
	CURLU		*u;
	char		*host = NULL, *port = NULL, *path = NULL;
	char		*query = NULL, *whole = NULL;
	size_t		 plen;
	int		 rc = -1;

	if ((u = receiver_url_parse(url, cause)) == NULL)
		return -1;
	curl_url_get(u, CURLUPART_HOST, &host, 0);
	curl_url_get(u, CURLUPART_PORT, &port, 0);
	if (curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK)
		path = NULL;
	curl_url_get(u, CURLUPART_QUERY, &query, 0);
	r->url = xstrdup(url);
	if (r->kind == RECEIVER_ALERTMANAGER) {
		/* The base URL (maybe with a route prefix), or the full path. */
		plen = path != NULL ? strlen(path) : 0;
		while (plen > 0 && path[plen - 1] == '/')
			plen--;
		if (plen >= strlen(RECEIVER_AM_PATH) && strncmp(path + plen -
		    strlen(RECEIVER_AM_PATH), RECEIVER_AM_PATH,
		    strlen(RECEIVER_AM_PATH)) == 0)
			plen -= strlen(RECEIVER_AM_PATH);
		xasprintf(&whole, "%.*s%s", (int)plen, path != NULL ? path : "",
		    RECEIVER_AM_PATH);
		if (curl_url_set(u, CURLUPART_PATH, whole, 0) != CURLUE_OK ||
		    curl_url_get(u, CURLUPART_URL, &r->post_url, 0) !=
		    CURLUE_OK) {
			xasprintf(cause, "cannot make the API URL of '%s'", url);
			goto out;
		}
		/* curl allocated it: hand the caller a malloc'd copy. */
		free(whole);
		whole = r->post_url;
		r->post_url = xstrdup(whole);
		curl_free(whole);
		whole = NULL;
	} else
		r->post_url = xstrdup(url);
	if (r->name == NULL) {
		if ((path != NULL && strcmp(path, "/") != 0 &&
		    *path != '\0') || query != NULL)
			xasprintf(&r->name, "%s:%s%s%s/%08x",
			    receiver_kind_name(r->kind), host,
			    port != NULL ? ":" : "", port != NULL ? port : "",
			    receiver_hash(url));
		else
			xasprintf(&r->name, "%s:%s%s%s",
			    receiver_kind_name(r->kind), host,
			    port != NULL ? ":" : "", port != NULL ? port : "");
	}
	rc = 0;
out:
	free(whole);
	curl_free(host);
	curl_free(port);
	curl_free(path);
	curl_free(query);
	curl_url_cleanup(u);
	return rc;
}

static int
receiver_set_projects(struct receiver *r, const char *v, char **cause)
{
	const char	*p, *comma;
	size_t		 n = 1, i = 0;

	if (*v == '\0') {
		xasprintf(cause, "project= needs at least one project");
		return -1;
	}
	for (p = v; *p != '\0'; p++)
		if (*p == ',')
			n++;
	r->projects = xcalloc(n + 1, sizeof *r->projects);
	for (p = v; i < n; p = comma + 1) {
		comma = strchr(p, ',');
		if (comma == NULL)
			comma = p + strlen(p);
		if (comma == p) {
			xasprintf(cause, "project=: an empty project name");
			return -1;
		}
		r->projects[i++] = xstrndup(p, (size_t)(comma - p));
	}
	return 0;
}

CURLU *
receiver_url_parse(const char *url, char **cause)
{
	CURLU	*u;
	char	*scheme = NULL, *host = NULL;

	if ((u = curl_url()) == NULL)
		fatalx("receiver: curl_url failed");
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
		xasprintf(cause, "not a URL: '%s'", url);
	else if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)
		xasprintf(cause, "expected an http:// or https:// URL, got '%s'",
		    url);
	else {
		curl_free(scheme);
		curl_free(host);
		return u;
	}
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
	return NULL;
}

int
receiver_name_check(const char *v, char **cause)
{
	const char	*p;

	if (*v == '\0' || strlen(v) > RECEIVER_NAME_MAX) {
		xasprintf(cause, "name= takes 1 to %d characters",
		    RECEIVER_NAME_MAX);
		return -1;
	}
	for (p = v; *p != '\0'; p++)
		if (!isalnum((unsigned char)*p) && strchr("._:/-", *p) == NULL) {
			xasprintf(cause, "name=%s: use [A-Za-z0-9._:/-]", v);
			return -1;
		}
	return 0;
}

static int
receiver_set_name(struct receiver *r, const char *v, char **cause)
{
	if (receiver_name_check(v, cause) == -1)
		return -1;
	free(r->name);
	r->name = xstrdup(v);
	return 0;
}

int
receiver_read_secret(const char *opt, const char *path, char **secret,
    char **cause)
{
	FILE	*f;
	char	*line = NULL;
	size_t	 cap = 0, n;
	ssize_t	 len;

	if ((f = fopen(path, "r")) == NULL) {
		xasprintf(cause, "%s=%s: %s", opt, path, strerror(errno));
		return -1;
	}
	len = getline(&line, &cap, f);
	fclose(f);
	n = len > 0 ? (size_t)len : 0;
	while (n > 0 && isspace((unsigned char)line[n - 1]))
		n--;
	if (n == 0) {
		xasprintf(cause, "%s=%s: the first line holds no secret", opt,
		    path);
		free(line);
		return -1;
	}
	*secret = xstrndup(line, n);
	explicit_bzero(line, cap);
	free(line);
	return 0;
}

/* Apply one "option=value" word. */
static int
receiver_option(struct receiver *r, const char *word, char **cause)
{
	const char	*eq = strchr(word, '=');
	const char	*v;
	int		 sev;

	if (eq == NULL) {
		xasprintf(cause, "expected option=value after the URL, got '%s'",
		    word);
		return -1;
	}
	v = eq + 1;
	if (strncmp(word, "severity=", 9) == 0) {
		if ((sev = alert_severity_parse(v)) < 0) {
			xasprintf(cause, "severity=%s: expected info, warning "
			    "or critical", v);
			return -1;
		}
		r->min_severity = sev;
		return 0;
	}
	if (strncmp(word, "project=", 8) == 0) {
		if (r->projects != NULL) {
			xasprintf(cause, "project= given twice (use a,b)");
			return -1;
		}
		return receiver_set_projects(r, v, cause);
	}
	if (strncmp(word, "name=", 5) == 0)
		return receiver_set_name(r, v, cause);
	if (strncmp(word, "bearer-file=", 12) == 0) {
		if (r->bearer != NULL) {
			xasprintf(cause, "bearer-file= given twice");
			return -1;
		}
		return receiver_read_secret("bearer-file", v, &r->bearer,
		    cause);
	}
	xasprintf(cause, "unknown option '%.*s' (severity, project, name, "
	    "bearer-file)", (int)(eq - word), word);
	return -1;
}

int
receiver_parse(struct receiver *r, enum receiver_kind kind, const char *spec,
    char **cause)
{
	char	*copy, *word, *save = NULL, *url = NULL;
	int	 rc = -1;

	memset(r, 0, sizeof *r);
	r->kind = kind;
	r->min_severity = ALERT_WARNING;
	copy = xstrdup(spec);
	for (word = strtok_r(copy, " \t", &save); word != NULL;
	    word = strtok_r(NULL, " \t", &save)) {
		if (url == NULL)
			url = word;
		else if (receiver_option(r, word, cause) == -1)
			goto out;
	}
	if (url == NULL) {
		xasprintf(cause, "expected a URL");
		goto out;
	}
	if (receiver_set_url(r, url, cause) == -1)
		goto out;
	rc = 0;
out:
	free(copy);
	if (rc == -1)
		receiver_cleanup(r);
	return rc;
}

int
receiver_wants(const struct receiver *r, int severity, const char *project)
{
	size_t	i;

	if (severity < r->min_severity)
		return 0;
	if (r->projects == NULL)
		return 1;
	if (project == NULL)
		return 0;
	for (i = 0; r->projects[i] != NULL; i++)
		if (strcmp(r->projects[i], project) == 0)
			return 1;
	return 0;
}
