/* SPDX-License-Identifier: MIT */
/*
 * config: the directive table, file parsing and final checks.  Runs on
 * the main thread during start-up only.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "detector.h"
#include "receiver.h"
#include "remote_target.h"
#include "xmalloc.h"

struct config_directive {
	const char	*name;
	int		(*set)(struct config *, const char *, char **);
	const char	*help;
};

static int
config_parse_addr(const char *value, char **host, uint16_t *port,
    char **cause)
{
	const char	*colon;
	char		*end;
	unsigned long	 p;
	size_t		 hlen;

	colon = strrchr(value, ':');
	if (colon == NULL || colon == value) {
		xasprintf(cause, "expected ADDR:PORT, got '%s'", value);
		return -1;
	}
	errno = 0;
	p = strtoul(colon + 1, &end, 10);
	if (colon[1] == '\0' || *end != '\0' || errno != 0 || p > 65535) {
		xasprintf(cause, "bad port in '%s'", value);
		return -1;
	}
	hlen = (size_t)(colon - value);
	if (value[0] == '[' && hlen >= 2 && value[hlen - 1] == ']')
		*host = xstrndup(value + 1, hlen - 2);
	else
		*host = xstrndup(value, hlen);
	*port = (uint16_t)p;
	return 0;
}

static int
config_parse_size(const char *value, size_t min, size_t max, size_t *out,
    char **cause)
{
	char			*end;
	unsigned long long	 v;

	errno = 0;
	v = strtoull(value, &end, 10);
	if (end == value || errno != 0 || value[0] == '-') {
		xasprintf(cause, "expected a number, got '%s'", value);
		return -1;
	}
	if (strcmp(end, "k") == 0 || strcmp(end, "K") == 0)
		v <<= 10;
	else if (strcmp(end, "M") == 0)
		v <<= 20;
	else if (*end != '\0') {
		xasprintf(cause, "expected a number (with k or M), got '%s'",
		    value);
		return -1;
	}
	if (v < min || v > max) {
		xasprintf(cause, "%llu is out of range [%zu, %zu]", v, min, max);
		return -1;
	}
	*out = (size_t)v;
	return 0;
}

static int
config_parse_bool(const char *value, int *out, char **cause)
{
	if (strcmp(value, "yes") == 0 || strcmp(value, "true") == 0 ||
	    strcmp(value, "1") == 0)
		*out = 1;
	else if (strcmp(value, "no") == 0 || strcmp(value, "false") == 0 ||
	    strcmp(value, "0") == 0)
		*out = 0;
	else {
		xasprintf(cause, "expected yes or no, got '%s'", value);
		return -1;
	}
	return 0;
}

static int
config_set_http(struct config *cfg, const char *v, char **cause)
{
	char		*host = NULL;
	uint16_t	 port;

	if (config_parse_addr(v, &host, &port, cause) == -1)
		return -1;
	free(cfg->http_host);
	cfg->http_host = host;
	cfg->http_port = port;
	return 0;
}

static int
config_set_ws(struct config *cfg, const char *v, char **cause)
{
	char		*host = NULL;
	uint16_t	 port;

	if (config_parse_addr(v, &host, &port, cause) == -1)
		return -1;
	free(cfg->ws_host);
	cfg->ws_host = host;
	cfg->ws_port = port;
	return 0;
}

static int
config_set_path(char **dst, const char *v, char **cause)
{
	if (*v == '\0') {
		xasprintf(cause, "empty path");
		return -1;
	}
	free(*dst);
	*dst = xstrdup(v);
	return 0;
}

static int
config_set_db(struct config *cfg, const char *v, char **cause)
{
	return config_set_path(&cfg->db_path, v, cause);
}

static int
config_set_token_file(struct config *cfg, const char *v, char **cause)
{
	return config_set_path(&cfg->token_file, v, cause);
}

static int
config_set_web_root(struct config *cfg, const char *v, char **cause)
{
	return config_set_path(&cfg->web_root, v, cause);
}

static int
config_set_verbose(struct config *cfg, const char *v, char **cause)
{
	return config_parse_bool(v, &cfg->verbose, cause);
}

static int
config_set_allow_remote(struct config *cfg, const char *v, char **cause)
{
	return config_parse_bool(v, &cfg->allow_remote, cause);
}

static int
config_set_detect(struct config *cfg, const char *v, char **cause)
{
	return config_parse_bool(v, &cfg->detect, cause);
}

static int
config_set_max_body(struct config *cfg, const char *v, char **cause)
{
	return config_parse_size(v, 1024, (size_t)1 << 30, &cfg->max_body,
	    cause);
}

static int
config_set_max_meta_config(struct config *cfg, const char *v, char **cause)
{
	return config_parse_size(v, 16, (size_t)1 << 30,
	    &cfg->max_meta_config, cause);
}

static int
config_set_queue_points(struct config *cfg, const char *v, char **cause)
{
	return config_parse_size(v, 1000, (size_t)1 << 32,
	    &cfg->queue_points, cause);
}

static int
config_set_threads(unsigned int *dst, const char *v, char **cause)
{
	size_t	n;

	if (config_parse_size(v, 1, 64, &n, cause) == -1)
		return -1;
	*dst = (unsigned int)n;
	return 0;
}

static int
config_set_http_threads(struct config *cfg, const char *v, char **cause)
{
	return config_set_threads(&cfg->http_threads, v, cause);
}

static int
config_set_workers(struct config *cfg, const char *v, char **cause)
{
	return config_set_threads(&cfg->workers, v, cause);
}

/* Seconds, with an optional s, m or h: "90", "90s", "5m", "1h". */
static int
config_parse_seconds(const char *value, double min, double max, double *out,
    char **cause)
{
	char	*end;
	double	 v;

	errno = 0;
	v = strtod(value, &end);
	if (end == value || errno != 0 || !(v >= 0)) {
		xasprintf(cause, "expected seconds (90, 90s, 5m, 1h), got '%s'",
		    value);
		return -1;
	}
	if (strcmp(end, "m") == 0)
		v *= 60;
	else if (strcmp(end, "h") == 0)
		v *= 3600;
	else if (*end != '\0' && strcmp(end, "s") != 0) {
		xasprintf(cause, "expected seconds (90, 90s, 5m, 1h), got '%s'",
		    value);
		return -1;
	}
	if (v < min || v > max) {
		xasprintf(cause, "%s is out of range [%gs, %gs]", value, min,
		    max);
		return -1;
	}
	*out = v;
	return 0;
}

static int
config_set_max_connections(struct config *cfg, const char *v, char **cause)
{
	return config_parse_size(v, 16, 1000000, &cfg->max_connections,
	    cause);
}

static int
config_set_max_connections_per_ip(struct config *cfg, const char *v,
    char **cause)
{
	return config_parse_size(v, 1, 1000000, &cfg->max_connections_per_ip,
	    cause);
}

/* Whole seconds from 1 s to an hour, rounded. */
static int
config_parse_whole_seconds(const char *v, unsigned int *out, char **cause)
{
	double	sec;

	if (config_parse_seconds(v, 1, 3600, &sec, cause) == -1)
		return -1;
	*out = (unsigned int)(sec + 0.5);
	return 0;
}

static int
config_set_run_idle_evict(struct config *cfg, const char *v, char **cause)
{
	return config_parse_seconds(v, 0, 30 * 86400.0, &cfg->run_idle_evict,
	    cause);
}

static int
config_set_idle_timeout(struct config *cfg, const char *v, char **cause)
{
	return config_parse_whole_seconds(v, &cfg->idle_timeout, cause);
}

static int
config_set_ws_ping(struct config *cfg, const char *v, char **cause)
{
	return config_parse_whole_seconds(v, &cfg->ws_ping, cause);
}

static int
config_add_receiver(struct config *cfg, enum receiver_kind kind,
    const char *v, char **cause)
{
	struct receiver	r;
	size_t		i;

	if (receiver_parse(&r, kind, v, cause) == -1)
		return -1;
	for (i = 0; i < cfg->nreceivers; i++)
		if (strcmp(cfg->receivers[i].name, r.name) == 0) {
			xasprintf(cause, "a second receiver named %s (give one "
			    "a name=)", r.name);
			receiver_cleanup(&r);
			return -1;
		}
	cfg->receivers = xreallocarray(cfg->receivers, cfg->nreceivers + 1,
	    sizeof *cfg->receivers);
	cfg->receivers[cfg->nreceivers++] = r;
	return 0;
}

static int
config_set_alertmanager(struct config *cfg, const char *v, char **cause)
{
	return config_add_receiver(cfg, RECEIVER_ALERTMANAGER, v, cause);
}

static int
config_set_webhook(struct config *cfg, const char *v, char **cause)
{
	return config_add_receiver(cfg, RECEIVER_WEBHOOK, v, cause);
}

static int
config_set_slack_webhook(struct config *cfg, const char *v, char **cause)
{
	return config_add_receiver(cfg, RECEIVER_SLACK, v, cause);
}

static int
config_add_remote_write(struct config *cfg, const char *v, char **cause)
{
	struct remote_target	t;
	size_t			i;

	if (remote_target_parse(&t, v, cause) == -1)
		return -1;
	for (i = 0; i < cfg->nremotes; i++)
		if (strcmp(cfg->remotes[i].name, t.name) == 0) {
			xasprintf(cause, "a second remote-write target named %s "
			    "(give one a name=)", t.name);
			remote_target_cleanup(&t);
			return -1;
		}
	cfg->remotes = xreallocarray(cfg->remotes, cfg->nremotes + 1,
	    sizeof *cfg->remotes);
	cfg->remotes[cfg->nremotes++] = t;
	return 0;
}

static int
config_set_external_url(struct config *cfg, const char *v, char **cause)
{
	if (strncmp(v, "http://", 7) != 0 && strncmp(v, "https://", 8) != 0) {
		xasprintf(cause, "expected an http:// or https:// URL, got "
		    "'%s'", v);
		return -1;
	}
	free(cfg->external_url);
	cfg->external_url = xstrdup(v);
	return 0;
}

/* A name (no port) a browser may use for us: in Host and in Origin. */
static int
config_add_allow_host(struct config *cfg, const char *v, char **cause)
{
	const char	*p;

	if (*v == '\0' || strlen(v) > 253) {
		xasprintf(cause, "expected a host name of 1 to 253 characters");
		return -1;
	}
	for (p = v; *p != '\0'; p++)
		if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-') {
			xasprintf(cause, "'%s': a host name, without port or "
			    "scheme ([A-Za-z0-9.-])", v);
			return -1;
		}
	cfg->allow_hosts = xreallocarray(cfg->allow_hosts,
	    cfg->nallow_hosts + 1, sizeof *cfg->allow_hosts);
	cfg->allow_hosts[cfg->nallow_hosts++] = xstrdup(v);
	return 0;
}

static int
config_set_notify_resend(struct config *cfg, const char *v, char **cause)
{
	return config_parse_seconds(v, 1, 3600, &cfg->notify_resend, cause);
}

static int
config_set_notify_timeout(struct config *cfg, const char *v, char **cause)
{
	return config_parse_seconds(v, 0.1, 300, &cfg->notify_timeout, cause);
}

static int
config_set_notify_max_backoff(struct config *cfg, const char *v,
    char **cause)
{
	return config_parse_seconds(v, 1, 86400, &cfg->notify_max_backoff,
	    cause);
}

static const struct config_directive config_directives[] = {
	{ "http", config_set_http,
	    "ADDR:PORT  HTTP API and dashboard (default 127.0.0.1:7070)" },
	{ "ws", config_set_ws,
	    "ADDR:PORT  WebSocket stream (default: the HTTP port + 1)" },
	{ "db", config_set_db,
	    "FILE       SQLite database (default ./gradwatch.db)" },
	{ "token-file", config_set_token_file,
	    "FILE       require 'Authorization: Bearer <token>' (first line)" },
	{ "web-root", config_set_web_root,
	    "DIR        serve the dashboard from DIR instead of the binary" },
	{ "verbose", config_set_verbose,
	    "yes|no     debug logging" },
	{ "allow-remote", config_set_allow_remote,
	    "yes|no     listen beyond loopback without a token" },
	{ "detect", config_set_detect,
	    "yes|no     watch runs for failing training (default yes)" },
	{ "max-body", config_set_max_body,
	    "BYTES      largest request body (default 16M)" },
	{ "max-meta-config", config_set_max_meta_config,
	    "BYTES      largest meta.config, as compact JSON (default 64K)" },
	{ "queue-points", config_set_queue_points,
	    "N          points waiting for the disk before 503 (default 8M)" },
	{ "http-threads", config_set_http_threads,
	    "N          HTTP I/O threads (default 2)" },
	{ "workers", config_set_workers,
	    "N          parse and query threads (default 4)" },
	{ "max-connections", config_set_max_connections,
	    "N          HTTP connections at once, all peers (default 4096)" },
	{ "max-connections-per-ip", config_set_max_connections_per_ip,
	    "N          HTTP connections at once from one address (default 256)" },
	{ "idle-timeout", config_set_idle_timeout,
	    "SECONDS    close an HTTP connection silent this long (default 30)" },
	{ "run-idle-evict", config_set_run_idle_evict,
	    "SECONDS    evict a run idle this long from memory (default 600; 0 never)" },
	{ "ws-ping", config_set_ws_ping,
	    "SECONDS    ping a viewer this long after its last pong; close it at 4x (default 30)" },
	{ "alertmanager", config_set_alertmanager,
	    "URL [opt]  post alerts to this Alertmanager (repeatable)" },
	{ "webhook", config_set_webhook,
	    "URL [opt]  post a JSON notice of every alert change (repeatable)" },
	{ "slack-webhook", config_set_slack_webhook,
	    "URL [opt]  post alert changes to a Slack incoming webhook" },
	{ "remote-write", config_add_remote_write,
	    "URL [opt]  send every stored point there (Prometheus remote-write)" },
	{ "allow-host", config_add_allow_host,
	    "NAME       a host name browsers may use for us (repeatable)" },
	{ "external-url", config_set_external_url,
	    "URL        the dashboard's address in notices (default: http)" },
	{ "notify-resend", config_set_notify_resend,
	    "SECONDS    re-send firing alerts to Alertmanager (default 60)" },
	{ "notify-timeout", config_set_notify_timeout,
	    "SECONDS    longest wait for a receiver's answer (default 10)" },
	{ "notify-max-backoff", config_set_notify_max_backoff,
	    "SECONDS    longest wait between retries (default 60)" },
};
#define CONFIG_NDIRECTIVES \
	(sizeof config_directives / sizeof config_directives[0])

void
config_init(struct config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->http_host = xstrdup(CONFIG_DEFAULT_HOST);
	cfg->http_port = CONFIG_DEFAULT_PORT;
	cfg->db_path = xstrdup(CONFIG_DEFAULT_DB);
	cfg->max_body = (size_t)16 << 20;
	cfg->max_meta_config = (size_t)64 << 10;
	cfg->queue_points = (size_t)8 << 20;
	cfg->http_threads = 2;
	cfg->workers = 4;
	cfg->max_connections = 4096;
	cfg->max_connections_per_ip = 256;
	cfg->idle_timeout = 30;
	cfg->run_idle_evict = 600;
	cfg->ws_ping = 30;
	cfg->detect = 1;
	cfg->detector = detector_config_new();
	cfg->notify_resend = 60;
	cfg->notify_timeout = 10;
	cfg->notify_max_backoff = 60;
}

void
config_cleanup(struct config *cfg)
{
	size_t	i;

	free(cfg->http_host);
	free(cfg->ws_host);
	free(cfg->db_path);
	free(cfg->token_file);
	if (cfg->token != NULL)
		explicit_bzero(cfg->token, strlen(cfg->token));
	free(cfg->token);
	free(cfg->web_root);
	detector_config_free(cfg->detector);
	for (i = 0; i < cfg->nreceivers; i++)
		receiver_cleanup(&cfg->receivers[i]);
	free(cfg->receivers);
	for (i = 0; i < cfg->nremotes; i++)
		remote_target_cleanup(&cfg->remotes[i]);
	free(cfg->remotes);
	for (i = 0; i < cfg->nallow_hosts; i++)
		free(cfg->allow_hosts[i]);
	free(cfg->allow_hosts);
	free(cfg->external_url);
	memset(cfg, 0, sizeof *cfg);
}

int
config_set(struct config *cfg, const char *directive, const char *value,
    char **cause)
{
	size_t	i;

	if (strncmp(directive, CONFIG_DETECTOR_PREFIX,
	    strlen(CONFIG_DETECTOR_PREFIX)) == 0)
		return detector_config_set(cfg->detector,
		    directive + strlen(CONFIG_DETECTOR_PREFIX), value, cause);
	for (i = 0; i < CONFIG_NDIRECTIVES; i++)
		if (strcmp(config_directives[i].name, directive) == 0)
			return config_directives[i].set(cfg, value, cause);
	xasprintf(cause, "unknown directive '%s'", directive);
	return -1;
}

const char *
config_directives_help(void)
{
	static char	buf[4096];
	size_t		i, n = 0;

	for (i = 0; i < CONFIG_NDIRECTIVES && n < sizeof buf; i++)
		n += (size_t)snprintf(buf + n, sizeof buf - n, "  %-13s %s\n",
		    config_directives[i].name, config_directives[i].help);
	return buf;
}

static char *
config_trim(char *s)
{
	char	*e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

int
config_load_file(struct config *cfg, const char *path, char **cause)
{
	FILE	*f;
	char	*line = NULL, *copy = NULL, *s, *value, *why = NULL;
	size_t	 cap = 0;
	ssize_t	 len;
	int	 lineno = 0, rc = -1;

	if ((f = fopen(path, "r")) == NULL) {
		xasprintf(cause, "%s: %s", path, strerror(errno));
		return -1;
	}
	while ((len = getline(&line, &cap, f)) != -1) {
		lineno++;
		free(copy);
		copy = xstrdup(config_trim(line));
		if ((s = strchr(line, '#')) != NULL)
			*s = '\0';
		s = config_trim(line);
		if (*s == '\0')
			continue;
		value = s + strcspn(s, " \t");
		if (*value != '\0')
			*value++ = '\0';
		value = config_trim(value);
		if (*value == '\0') {
			xasprintf(cause, "%s:%d: missing value: '%s'", path,
			    lineno, copy);
			goto out;
		}
		if (config_set(cfg, s, value, &why) == -1) {
			xasprintf(cause, "%s:%d: %s: '%s'", path, lineno, why,
			    copy);
			free(why);
			goto out;
		}
	}
	if (ferror(f)) {
		xasprintf(cause, "%s: %s", path, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	free(copy);
	free(line);
	fclose(f);
	return rc;
}

static int
config_read_token(struct config *cfg, char **cause)
{
	FILE	*f;
	char	*line = NULL, *t;
	size_t	 cap = 0;

	if ((f = fopen(cfg->token_file, "r")) == NULL) {
		xasprintf(cause, "%s: %s", cfg->token_file, strerror(errno));
		return -1;
	}
	/* getline may allocate even when it reads nothing: keep line to free. */
	t = getline(&line, &cap, f) == -1 ? NULL : config_trim(line);
	fclose(f);
	if (t == NULL || *t == '\0') {
		xasprintf(cause, "%s: the first line holds no token",
		    cfg->token_file);
		free(line);
		return -1;
	}
	cfg->token = xstrdup(t);
	explicit_bzero(line, cap);
	free(line);
	return 0;
}

int
config_is_loopback(const char *host)
{
	struct addrinfo	 hints, *res = NULL, *ai;
	int		 loop = 1;

	memset(&hints, 0, sizeof hints);
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(host, NULL, &hints, &res) != 0)
		return 0;
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		if (ai->ai_family == AF_INET) {
			const struct sockaddr_in *sin =
			    (const struct sockaddr_in *)(const void *)ai->ai_addr;

			if ((ntohl(sin->sin_addr.s_addr) >> 24) != 127)
				loop = 0;
		} else if (ai->ai_family == AF_INET6) {
			const struct sockaddr_in6 *sin6 =
			    (const struct sockaddr_in6 *)(const void *)ai->ai_addr;

			if (!IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr))
				loop = 0;
		} else
			loop = 0;
	}
	freeaddrinfo(res);
	return loop;
}

/* The dashboard's address as notices link it, from the HTTP address. */
static void
config_default_external_url(struct config *cfg)
{
	char	host[256];

	if (strcmp(cfg->http_host, "0.0.0.0") == 0 ||
	    strcmp(cfg->http_host, "::") == 0 || *cfg->http_host == '\0') {
		if (gethostname(host, sizeof host) != 0)
			snprintf(host, sizeof host, "localhost");
		host[sizeof host - 1] = '\0';
	} else
		snprintf(host, sizeof host, "%s", cfg->http_host);
	xasprintf(&cfg->external_url, "http://%s%s%s:%u",
	    strchr(host, ':') != NULL ? "[" : "", host,
	    strchr(host, ':') != NULL ? "]" : "", cfg->http_port);
}

int
config_finish(struct config *cfg, char **cause)
{
	if (cfg->ws_host == NULL)
		cfg->ws_host = xstrdup(cfg->http_host);
	if (cfg->ws_port == 0 && cfg->http_port == UINT16_MAX) {
		xasprintf(cause, "http port %u leaves no next port for the "
		    "stream: give ws ADDR:PORT", cfg->http_port);
		return -1;
	}
	if (cfg->ws_port == 0)
		cfg->ws_port = cfg->http_port == 0 ? 0 :
		    (uint16_t)(cfg->http_port + 1);
	if (cfg->token_file != NULL && config_read_token(cfg, cause) == -1)
		return -1;
	if (cfg->external_url == NULL)
		config_default_external_url(cfg);
	if (cfg->token == NULL && !cfg->allow_remote &&
	    (!config_is_loopback(cfg->http_host) ||
	    !config_is_loopback(cfg->ws_host))) {
		xasprintf(cause, "refusing to listen on %s without a token: "
		    "use --token-file, or allow-remote yes", 
		    config_is_loopback(cfg->http_host) ? cfg->ws_host :
		    cfg->http_host);
		return -1;
	}
	return 0;
}
