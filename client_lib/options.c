/* SPDX-License-Identifier: MIT */
/*
 * options: gw_open's checks and defaults.  Validates what the daemon
 * would refuse later (the run key, a config that is not a JSON object,
 * a URL that is not http or https) so the caller hears it at once, and
 * derives the defaults: the URL and token from the environment, a run
 * key from the program name, the start time and a random suffix.  Runs
 * on the thread that calls gw_open.
 */
#define _GNU_SOURCE		/* program_invocation_short_name */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

static int
gw__run_char_ok(int ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	    (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == ':' ||
	    ch == '-';
}

int
gw__run_key_is_valid(const char *s)
{
	size_t	i;

	for (i = 0; s[i] != '\0'; i++)
		if (i >= GW__RUN_KEY_MAX || !gw__run_char_ok((unsigned char)s[i]))
			return 0;
	return i > 0;
}

/* program-YYYYmmdd-HHMMSS-xxxxxx, from what the process is called. */
static char *
gw__run_default(void)
{
	char		 prog[64], stamp[32], *key;
	const char	*name = program_invocation_short_name;
	unsigned int	 rnd;
	struct tm	 tm;
	time_t		 now;
	size_t		 i, j;

	for (i = j = 0; name != NULL && name[i] != '\0' && j < 48; i++)
		if (gw__run_char_ok((unsigned char)name[i]))
			prog[j++] = name[i];
		else if (j > 0 && prog[j - 1] != '-')
			prog[j++] = '-';
	while (j > 0 && prog[j - 1] == '-')
		j--;
	if (j == 0)
		j = (size_t)snprintf(prog, sizeof prog, "run");
	prog[j] = '\0';
	now = time(NULL);
	if (localtime_r(&now, &tm) == NULL ||
	    strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm) == 0)
		snprintf(stamp, sizeof stamp, "%lld", (long long)now);
	if (getrandom(&rnd, sizeof rnd, GRND_NONBLOCK) != sizeof rnd)
		rnd = (unsigned int)getpid() * 2654435761u ^
		    (unsigned int)clock();
	if (asprintf(&key, "%s-%s-%06x", prog, stamp, rnd & 0xffffff) == -1)
		return NULL;
	return key;
}

static int
gw__json_depth_ok(const json_t *v, int left)
{
	const json_t	*m;
	const char	*k;
	size_t		 i;

	if (!json_is_object(v) && !json_is_array(v))
		return 1;
	if (left == 0)
		return 0;
	if (json_is_object(v)) {
		json_object_foreach((json_t *)(uintptr_t)v, k, m)
			if (!gw__json_depth_ok(m, left - 1))
				return 0;
	} else {
		json_array_foreach(v, i, m)
			if (!gw__json_depth_ok(m, left - 1))
				return 0;
	}
	return 1;
}

/* The URL without its trailing slashes, or NULL (*rc set) when not http(s). */
static char *
gw__url_check(const char *url, int *rc)
{
	size_t	len, skip;
	char	*s;

	*rc = GW_EINVAL;
	if (strncasecmp(url, "http://", 7) == 0)
		skip = 7;
	else if (strncasecmp(url, "https://", 8) == 0)
		skip = 8;
	else
		return NULL;
	len = strlen(url);
	while (len > skip && url[len - 1] == '/')
		len--;
	if (len == skip || url[skip] == '/' || strpbrk(url, " \t\r\n") != NULL)
		return NULL;
	*rc = GW_ENOMEM;
	if ((s = strndup(url, len)) == NULL)
		return NULL;
	*rc = GW_OK;
	return s;
}

int
gw__options_apply(struct gw_client *c, const struct gw_options *opt,
    char *why, size_t whylen)
{
	static const struct gw_options	 none;
	const char			*url, *token, *env;
	json_error_t			 jerr;
	json_t				*cfg = NULL;
	size_t				 size;
	int				 rc;

	if (opt == NULL)
		opt = &none;

	url = opt->url;
	if (url == NULL && (env = getenv("GRADWATCH_URL")) != NULL &&
	    env[0] != '\0')
		url = env;
	if (url == NULL)
		url = "http://127.0.0.1:7070";
	if ((c->url = gw__url_check(url, &rc)) == NULL) {
		snprintf(why, whylen, "url: expected http://host[:port] or "
		    "https://..., got '%.100s'", url);
		goto fail;
	}

	rc = GW_EINVAL;
	if (opt->run != NULL && !gw__run_key_is_valid(opt->run)) {
		snprintf(why, whylen, "run: expected 1 to %d characters of "
		    "[A-Za-z0-9._:-], got '%.140s'", GW__RUN_KEY_MAX, opt->run);
		goto fail;
	}
	if (opt->project != NULL && (strlen(opt->project) > GW__NAME_MAX ||
	    !gw__utf8_is_valid(opt->project, strlen(opt->project)))) {
		snprintf(why, whylen, "project: expected UTF-8 of at most %d "
		    "bytes", GW__NAME_MAX);
		goto fail;
	}
	if (opt->config_json != NULL) {
		cfg = json_loads(opt->config_json, JSON_REJECT_DUPLICATES, &jerr);
		if (cfg == NULL) {
			snprintf(why, whylen, "config_json: line %d: %s",
			    jerr.line, jerr.text);
			goto fail;
		}
		if (!json_is_object(cfg)) {
			snprintf(why, whylen, "config_json: expected a JSON "
			    "object");
			goto fail;
		}
		if (!gw__json_depth_ok(cfg, GW__JSON_DEPTH_MAX)) {
			snprintf(why, whylen, "config_json: nested deeper than "
			    "%d levels", GW__JSON_DEPTH_MAX);
			goto fail;
		}
	}
	token = opt->token;
	if (token == NULL && (env = getenv("GRADWATCH_TOKEN")) != NULL &&
	    env[0] != '\0')
		token = env;
	if (token != NULL && (token[0] == '\0' ||
	    strpbrk(token, "\r\n") != NULL)) {
		snprintf(why, whylen, "token: expected one line of text");
		goto fail;
	}
	size = opt->buffer_points == 0 ? GW__RING_DEFAULT : opt->buffer_points;
	if (size > GW__RING_MAX) {
		snprintf(why, whylen, "buffer_points: at most %zu",
		    GW__RING_MAX);
		goto fail;
	}
	if (opt->flush_interval_ms > GW__FLUSH_MAX) {
		snprintf(why, whylen, "flush_interval_ms: at most %d",
		    GW__FLUSH_MAX);
		goto fail;
	}
	c->flush_ms = opt->flush_interval_ms == 0 ? GW__FLUSH_DEFAULT :
	    opt->flush_interval_ms;

	rc = GW_ENOMEM;
	snprintf(why, whylen, "out of memory");
	c->run = opt->run != NULL ? strdup(opt->run) : gw__run_default();
	if (c->run == NULL)
		goto fail;
	if (opt->project != NULL && (c->project = strdup(opt->project)) == NULL)
		goto fail;
	if (cfg != NULL && (c->config_json = json_dumps(cfg,
	    JSON_COMPACT | JSON_PRESERVE_ORDER)) == NULL)
		goto fail;
	if (token != NULL && asprintf(&c->auth, "Authorization: Bearer %s",
	    token) == -1) {
		c->auth = NULL;
		goto fail;
	}
	if (asprintf(&c->url_ingest, "%s/api/v1/ingest", c->url) == -1) {
		c->url_ingest = NULL;
		goto fail;
	}
	if (asprintf(&c->url_finish, "%s/api/v1/runs/%s/finish", c->url,
	    c->run) == -1) {
		c->url_finish = NULL;
		goto fail;
	}
	env = getenv("GRADWATCH_DEBUG");
	c->debug = env != NULL && env[0] != '\0' && strcmp(env, "0") != 0;
	json_decref(cfg);
	why[0] = '\0';
	return GW_OK;

fail:
	json_decref(cfg);
	return rc;
}
