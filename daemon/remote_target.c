/* SPDX-License-Identifier: MIT */
/*
 * remote_target: a remote-write target's directive; see remote_target.h.
 * The URL is checked with libcurl's URL parser, the one that will send
 * to it; secrets are read as receivers read theirs.  Main thread,
 * start-up only.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "log.h"
#include "receiver.h"
#include "remote_target.h"
#include "xmalloc.h"

static void
remote_target_wipe(char *secret)
{
	if (secret != NULL)
		explicit_bzero(secret, strlen(secret));
	free(secret);
}

void
remote_target_cleanup(struct remote_target *t)
{
	size_t	i;

	if (t == NULL)
		return;
	free(t->name);
	free(t->url);
	remote_target_wipe(t->bearer);
	free(t->user);
	remote_target_wipe(t->password);
	for (i = 0; i < t->nheaders; i++)
		remote_target_wipe(t->headers[i]);
	memset(t, 0, sizeof *t);
}

/* Check url (http or https, with a host); default the name to host:port. */
static int
remote_target_set_url(struct remote_target *t, const char *url, char **cause)
{
	CURLU	*u;
	char	*host = NULL, *port = NULL;

	if ((u = receiver_url_parse(url, cause)) == NULL)
		return -1;
	curl_url_get(u, CURLUPART_HOST, &host, 0);
	curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT);
	t->url = xstrdup(url);
	if (t->name == NULL)
		xasprintf(&t->name, "%s:%s", host, port != NULL ? port : "");
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
	return 0;
}

static int
remote_target_set_name(struct remote_target *t, const char *v, char **cause)
{
	if (receiver_name_check(v, cause) == -1)
		return -1;
	free(t->name);
	t->name = xstrdup(v);
	return 0;
}

/* header=Name:value into "Name: value"; the name is an HTTP token. */
static int
remote_target_add_header(struct remote_target *t, const char *v,
    char **cause)
{
	const char	*colon = strchr(v, ':'), *p;

	if (colon == NULL || colon == v) {
		xasprintf(cause, "header=%s: expected Name:value", v);
		return -1;
	}
	for (p = v; p < colon; p++)
		if (!isalnum((unsigned char)*p) && strchr("!#$%&'*+.^_`|~-",
		    *p) == NULL) {
			xasprintf(cause, "header=%s: not a header name", v);
			return -1;
		}
	if (t->nheaders == REMOTE_TARGET_HEADERS_MAX) {
		xasprintf(cause, "more than %d header= options",
		    REMOTE_TARGET_HEADERS_MAX);
		return -1;
	}
	xasprintf(&t->headers[t->nheaders++], "%.*s: %s", (int)(colon - v), v,
	    colon + 1);
	return 0;
}

static int
remote_target_set_every(struct remote_target *t, const char *v, char **cause)
{
	char		*end;
	long long	 n;

	n = strtoll(v, &end, 10);
	if (*v == '\0' || *end != '\0' || n < 1 ||
	    n > REMOTE_TARGET_EVERY_MAX) {
		xasprintf(cause, "layer-every=%s: expected 1 to %d", v,
		    REMOTE_TARGET_EVERY_MAX);
		return -1;
	}
	t->layer_every = n;
	return 0;
}

/* A secret option given once: read its file into *dst. */
static int
remote_target_secret(const char *opt, const char *v, char **dst,
    char **cause)
{
	if (*dst != NULL) {
		xasprintf(cause, "%s= given twice", opt);
		return -1;
	}
	return receiver_read_secret(opt, v, dst, cause);
}

/* Apply one "option=value" word. */
static int
remote_target_option(struct remote_target *t, const char *word,
    char **cause)
{
	const char	*eq = strchr(word, '=');
	const char	*v;

	if (eq == NULL) {
		xasprintf(cause, "expected option=value after the URL, got '%s'",
		    word);
		return -1;
	}
	v = eq + 1;
	if (strncmp(word, "name=", 5) == 0)
		return remote_target_set_name(t, v, cause);
	if (strncmp(word, "bearer-file=", 12) == 0)
		return remote_target_secret("bearer-file", v, &t->bearer, cause);
	if (strncmp(word, "password-file=", 14) == 0)
		return remote_target_secret("password-file", v, &t->password,
		    cause);
	if (strncmp(word, "user=", 5) == 0) {
		free(t->user);
		t->user = xstrdup(v);
		return 0;
	}
	if (strncmp(word, "header=", 7) == 0)
		return remote_target_add_header(t, v, cause);
	if (strncmp(word, "layer-every=", 12) == 0)
		return remote_target_set_every(t, v, cause);
	xasprintf(cause, "unknown option '%.*s' (name, bearer-file, user, "
	    "password-file, header, layer-every)", (int)(eq - word), word);
	return -1;
}

int
remote_target_parse(struct remote_target *t, const char *spec, char **cause)
{
	char	*copy, *word, *save = NULL, *url = NULL;
	int	 rc = -1;

	memset(t, 0, sizeof *t);
	t->layer_every = 1;
	copy = xstrdup(spec);
	for (word = strtok_r(copy, " \t", &save); word != NULL;
	    word = strtok_r(NULL, " \t", &save)) {
		if (url == NULL)
			url = word;
		else if (remote_target_option(t, word, cause) == -1)
			goto out;
	}
	if (url == NULL) {
		xasprintf(cause, "expected a URL");
		goto out;
	}
	if ((t->user == NULL) != (t->password == NULL)) {
		xasprintf(cause, "user= and password-file= go together");
		goto out;
	}
	if (t->user != NULL && t->bearer != NULL) {
		xasprintf(cause, "bearer-file= or user=, not both");
		goto out;
	}
	if (remote_target_set_url(t, url, cause) == -1)
		goto out;
	rc = 0;
out:
	free(copy);
	if (rc == -1)
		remote_target_cleanup(t);
	return rc;
}
