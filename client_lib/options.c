/* SPDX-License-Identifier: MIT */
/*
 * options: gw_open's checks and defaults.  Validates what the daemon
 * would refuse later (the run key, a config that is not a JSON object,
 * a meta that names what other options set, a URL that is not http or
 * https) so the caller hears it at once, and derives the defaults: the
 * URL, token and spool directory from the environment, a run key from
 * the program name, the start time and a random suffix.  Runs on the
 * thread that calls gw_open (or gw_sync).
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
		if (wire_run_key_char_ok((unsigned char)name[i]))
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
gw__options_endpoint(const struct gw_options *opt, char **urlp, char **authp,
    char *why, size_t whylen)
{
	static const struct gw_options	 none;
	const char			*url, *token, *env;
	char				*s = NULL;
	int				 rc;

	*urlp = NULL;
	*authp = NULL;
	if (opt == NULL)
		opt = &none;
	url = opt->url;
	if (url == NULL && (env = getenv("GRADWATCH_URL")) != NULL &&
	    env[0] != '\0')
		url = env;
	if (url == NULL)
		url = "http://127.0.0.1:7070";
	if ((s = gw__url_check(url, &rc)) == NULL) {
		if (rc == GW_ENOMEM)
			snprintf(why, whylen, "out of memory");
		else
			snprintf(why, whylen, "url: expected http://host[:port] "
			    "or https://..., got '%.100s'", url);
		return rc;
	}
	token = opt->token;
	if (token == NULL && (env = getenv("GRADWATCH_TOKEN")) != NULL &&
	    env[0] != '\0')
		token = env;
	if (token != NULL && (token[0] == '\0' ||
	    strpbrk(token, "\r\n") != NULL)) {
		snprintf(why, whylen, "token: expected one line of text");
		free(s);
		return GW_EINVAL;
	}
	if (token != NULL && asprintf(authp, "Authorization: Bearer %s",
	    token) == -1) {
		*authp = NULL;
		snprintf(why, whylen, "out of memory");
		free(s);
		return GW_ENOMEM;
	}
	*urlp = s;
	return GW_OK;
}

/* Check a JSON object option; the parsed object, or NULL with why set. */
static json_t *
gw__json_object_opt(const char *name, const char *text, int depth,
    char *why, size_t whylen)
{
	json_error_t	 jerr;
	json_t		*v;

	if ((v = json_loads(text, JSON_REJECT_DUPLICATES, &jerr)) == NULL) {
		snprintf(why, whylen, "%s: line %d: %s", name, jerr.line,
		    jerr.text);
		return NULL;
	}
	if (!json_is_object(v)) {
		snprintf(why, whylen, "%s: expected a JSON object", name);
		goto fail;
	}
	if (!gw__json_depth_ok(v, depth)) {
		snprintf(why, whylen, "%s: nested deeper than %d levels", name,
		    depth);
		goto fail;
	}
	return v;

fail:
	json_decref(v);
	return NULL;
}

/* meta_json's members, compact and without the braces ("" when none). */
static char *
gw__meta_members(json_t *meta)
{
	char	*s;
	size_t	 len;

	if ((s = json_dumps(meta, JSON_COMPACT | JSON_PRESERVE_ORDER)) == NULL)
		return NULL;
	len = strlen(s);
	if (len < 2 || s[0] != '{' || s[len - 1] != '}') {
		free(s);		/* cannot be: it dumped an object */
		return NULL;
	}
	memmove(s, s + 1, len - 2);
	s[len - 2] = '\0';
	return s;
}

/* The spool directory, absolute and without trailing slashes; NULL: none. */
static int
gw__spool_dir(const struct gw_options *opt, char **out, char *why,
    size_t whylen)
{
	const char	*dir = opt->spool_dir;
	char		 cwd[4096];
	size_t		 len;
	int		 n;

	*out = NULL;
	if (dir == NULL)
		dir = getenv("GRADWATCH_SPOOL");
	if (dir == NULL || dir[0] == '\0')
		return GW_OK;
	len = strlen(dir);
	while (len > 1 && dir[len - 1] == '/')
		len--;
	if (dir[0] == '/')
		n = asprintf(out, "%.*s", (int)len, dir);
	else if (getcwd(cwd, sizeof cwd) != NULL)
		n = asprintf(out, "%s/%.*s", strcmp(cwd, "/") == 0 ? "" : cwd,
		    (int)len, dir);
	else {
		snprintf(why, whylen, "spool_dir: '%.100s' is relative and the "
		    "working directory is unknown", dir);
		return GW_EINVAL;
	}
	if (n == -1) {
		*out = NULL;
		snprintf(why, whylen, "out of memory");
		return GW_ENOMEM;
	}
	if (strlen(*out) + 1 + WIRE_RUN_KEY_MAX + sizeof GW__SPOOL_SUFFIX >
	    4096) {
		snprintf(why, whylen, "spool_dir: too long");
		free(*out);
		*out = NULL;
		return GW_EINVAL;
	}
	return GW_OK;
}

int
gw__options_apply(struct gw_client *c, const struct gw_options *opt,
    char *why, size_t whylen)
{
	static const char *const	 reserved[] = {
		"project", "config", "layers", "detector"
	};
	static const struct gw_options	 none;
	json_t				*cfg = NULL, *meta = NULL;
	char				*spool_dir = NULL;
	const char			*env;
	size_t				 size, i;
	int				 rc;

	if (opt == NULL)
		opt = &none;

	if ((rc = gw__options_endpoint(opt, &c->url, &c->auth, why,
	    whylen)) != GW_OK)
		goto fail;
	rc = GW_EINVAL;
	if (opt->run != NULL && !wire_is_run_key(opt->run)) {
		snprintf(why, whylen, "run: expected 1 to %d characters of "
		    "[A-Za-z0-9._:-], got '%.140s'", WIRE_RUN_KEY_MAX, opt->run);
		goto fail;
	}
	if (opt->project != NULL && (strlen(opt->project) > WIRE_NAME_MAX ||
	    !gw__utf8_is_valid(opt->project, strlen(opt->project)))) {
		snprintf(why, whylen, "project: expected UTF-8 of at most %d "
		    "bytes", WIRE_NAME_MAX);
		goto fail;
	}
	if (opt->config_json != NULL && (cfg = gw__json_object_opt(
	    "config_json", opt->config_json, GW__JSON_DEPTH_MAX, why,
	    whylen)) == NULL)
		goto fail;
	/* meta is a level above config: one more level inside it. */
	if (opt->meta_json != NULL && (meta = gw__json_object_opt("meta_json",
	    opt->meta_json, GW__JSON_DEPTH_MAX + 1, why, whylen)) == NULL)
		goto fail;
	for (i = 0; meta != NULL && i < sizeof reserved / sizeof reserved[0];
	    i++)
		if (json_object_get(meta, reserved[i]) != NULL) {
			snprintf(why, whylen, "meta_json: \"%s\" is not "
			    "allowed (project, config, layers and detector "
			    "have options or calls of their own)", reserved[i]);
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
	if ((rc = gw__spool_dir(opt, &spool_dir, why, whylen)) != GW_OK)
		goto fail;
	c->spool_max = opt->spool_max_bytes == 0 ? GW__SPOOL_DEFAULT :
	    opt->spool_max_bytes;

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
	if (meta != NULL && json_object_size(meta) > 0 &&
	    (c->meta_extra = gw__meta_members(meta)) == NULL)
		goto fail;
	if (spool_dir != NULL && (c->spool_path = gw__spool_path(spool_dir,
	    c->run)) == NULL)
		goto fail;
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
	json_decref(meta);
	free(spool_dir);
	why[0] = '\0';
	return GW_OK;

fail:
	json_decref(cfg);
	json_decref(meta);
	free(spool_dir);
	return rc;
}
