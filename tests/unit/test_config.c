/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of config.c: the defaults; every directive as a flag sets
 * it (config_set, as main applies --http and the rest) and as a line of
 * a config file (comments, blank lines, tabs, CRLF, a last line without
 * a newline), flags after the file winning; number, size and seconds
 * values with their suffixes and bounds; each refused value giving a
 * cause that names the problem (a file's with path:line and the line)
 * and leaving the config as it was; receivers (alertmanager, webhook,
 * slack-webhook, repeatable, one name each) and detector.<name> lines;
 * config_finish: the ws address defaulting to the HTTP host and port+1,
 * the token file's first line, the default external URL, and refusing
 * a listener beyond loopback without a token unless allow-remote; the
 * loopback test; the --help text naming exactly the known directives.
 * Files are written under a mkdtemp directory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "alert_kind.h"
#include "config.h"
#include "detector.h"
#include "detector_int.h"
#include "receiver.h"
#include "remote_target.h"
#include "xmalloc.h"

static char	tmpdir[] = "/tmp/test_config.XXXXXX";
static char	*tmpfiles[32];
static size_t	ntmpfiles;

/* Write body to name under the temporary directory; the path (owned here). */
static const char *
write_file(const char *name, const char *body)
{
	FILE	*f;
	char	*path;

	xasprintf(&path, "%s/%s", tmpdir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(body, 1, strlen(body), f), strlen(body));
	assert_int_equal(fclose(f), 0);
	if (ntmpfiles == sizeof tmpfiles / sizeof tmpfiles[0])
		fail_msg("too many temporary files");
	tmpfiles[ntmpfiles++] = path;
	return path;
}

static int
group_setup(void **state)
{
	(void)state;
	return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int
group_teardown(void **state)
{
	size_t	i;

	(void)state;
	for (i = 0; i < ntmpfiles; i++) {
		unlink(tmpfiles[i]);
		free(tmpfiles[i]);
	}
	ntmpfiles = 0;
	return rmdir(tmpdir);
}

static const char *
str(const char *s)
{
	return s != NULL ? s : "(null)";
}

/* Everything cfg holds, as text, to see that a refusal changed nothing. */
static char *
describe(const struct config *cfg)
{
	char	*s, *t;
	size_t	 i, j;

	xasprintf(&s, "http=%s:%u ws=%s:%u db=%s tf=%s tok=%s web=%s v=%d "
	    "ar=%d det=%d mb=%zu mmc=%zu qp=%zu ht=%u w=%u ext=%s res=%g to=%g "
	    "mbo=%g n=%zu", str(cfg->http_host), cfg->http_port,
	    str(cfg->ws_host), cfg->ws_port, str(cfg->db_path),
	    str(cfg->token_file), str(cfg->token), str(cfg->web_root),
	    cfg->verbose, cfg->allow_remote, cfg->detect, cfg->max_body,
	    cfg->max_meta_config, cfg->queue_points,
	    cfg->http_threads, cfg->workers, str(cfg->external_url),
	    cfg->notify_resend, cfg->notify_timeout, cfg->notify_max_backoff,
	    cfg->nreceivers);
	for (i = 0; i < cfg->nreceivers; i++) {
		const struct receiver	*r = &cfg->receivers[i];

		xasprintf(&t, "%s [%d %s %s %s %d %s", s, (int)r->kind,
		    str(r->name), str(r->url), str(r->post_url),
		    r->min_severity, str(r->bearer));
		free(s);
		s = t;
		for (j = 0; r->projects != NULL && r->projects[j] != NULL;
		    j++) {
			xasprintf(&t, "%s %s", s, r->projects[j]);
			free(s);
			s = t;
		}
		xasprintf(&t, "%s]", s);
		free(s);
		s = t;
	}
	return s;
}

static void
set_ok(struct config *cfg, const char *directive, const char *value)
{
	char	*cause = NULL;

	if (config_set(cfg, directive, value, &cause) != 0)
		fail_msg("%s '%s': %s", directive, value, str(cause));
	assert_null(cause);
}

/* directive value is refused with a cause holding want; cfg unchanged. */
static void
set_fails(struct config *cfg, const char *directive, const char *value,
    const char *want)
{
	struct detector_config	 det;
	char			*before, *after, *cause = NULL;

	before = describe(cfg);
	memcpy(&det, cfg->detector, sizeof det);
	if (config_set(cfg, directive, value, &cause) != -1)
		fail_msg("%s '%s' was accepted", directive, value);
	if (cause == NULL)
		fail_msg("%s '%s': no cause", directive, value);
	if (strstr(cause, want) == NULL)
		fail_msg("%s '%s': cause '%s' lacks '%s'", directive, value,
		    cause, want);
	after = describe(cfg);
	if (strcmp(before, after) != 0)
		fail_msg("%s '%s' changed the config:\n  %s\n  %s", directive,
		    value, before, after);
	assert_memory_equal(&det, cfg->detector, sizeof det);
	free(before);
	free(after);
	free(cause);
}

/* config_finish answers -1 with a cause holding want. */
static void
finish_fails(struct config *cfg, const char *want)
{
	char	*cause = NULL;

	assert_int_equal(config_finish(cfg, &cause), -1);
	assert_non_null(cause);
	if (strstr(cause, want) == NULL)
		fail_msg("cause '%s' lacks '%s'", cause, want);
	free(cause);
}

static void
finish_ok(struct config *cfg)
{
	char	*cause = NULL;

	if (config_finish(cfg, &cause) != 0)
		fail_msg("config_finish: %s", str(cause));
	assert_null(cause);
}

static void
test_defaults(void **state)
{
	struct config		 cfg;
	struct detector_config	*def;

	(void)state;
	config_init(&cfg);
	assert_string_equal(cfg.http_host, CONFIG_DEFAULT_HOST);
	assert_int_equal(cfg.http_port, CONFIG_DEFAULT_PORT);
	assert_null(cfg.ws_host);
	assert_int_equal(cfg.ws_port, 0);
	assert_string_equal(cfg.db_path, CONFIG_DEFAULT_DB);
	assert_null(cfg.token_file);
	assert_null(cfg.token);
	assert_null(cfg.web_root);
	assert_int_equal(cfg.verbose, 0);
	assert_int_equal(cfg.allow_remote, 0);
	assert_int_equal(cfg.detect, 1);
	assert_int_equal(cfg.max_body, 16 << 20);
	assert_int_equal(cfg.max_meta_config, 64 << 10);
	assert_int_equal(cfg.queue_points, 8 << 20);
	assert_int_equal(cfg.http_threads, 2);
	assert_int_equal(cfg.workers, 4);
	assert_int_equal(cfg.nreceivers, 0);
	assert_null(cfg.receivers);
	assert_null(cfg.external_url);
	assert_true(cfg.notify_resend == 60);
	assert_true(cfg.notify_timeout == 10);
	assert_true(cfg.notify_max_backoff == 60);
	/* The detector's thresholds are its own defaults. */
	assert_non_null(cfg.detector);
	def = detector_config_new();
	assert_memory_equal(def, cfg.detector, sizeof *def);
	detector_config_free(def);

	/* The defaults pass the final checks as they are. */
	finish_ok(&cfg);
	assert_string_equal(cfg.ws_host, "127.0.0.1");
	assert_int_equal(cfg.ws_port, 7071);
	assert_null(cfg.token);
	assert_string_equal(cfg.external_url, "http://127.0.0.1:7070");
	config_cleanup(&cfg);
	/* Cleaning twice, or after init only, is fine. */
	config_cleanup(&cfg);
	config_init(&cfg);
	config_cleanup(&cfg);
}

/* Every directive, as main applies a command-line flag. */
static void
test_directives(void **state)
{
	struct config	cfg;

	(void)state;
	config_init(&cfg);
	set_ok(&cfg, "http", "10.0.0.1:8080");
	assert_string_equal(cfg.http_host, "10.0.0.1");
	assert_int_equal(cfg.http_port, 8080);
	set_ok(&cfg, "http", "[::1]:8081");	/* brackets come off */
	assert_string_equal(cfg.http_host, "::1");
	assert_int_equal(cfg.http_port, 8081);
	set_ok(&cfg, "http", "gw.example:80");
	assert_string_equal(cfg.http_host, "gw.example");
	assert_int_equal(cfg.http_port, 80);
	set_ok(&cfg, "ws", "127.0.0.1:9000");
	assert_string_equal(cfg.ws_host, "127.0.0.1");
	assert_int_equal(cfg.ws_port, 9000);
	set_ok(&cfg, "ws", "[::]:65535");
	assert_string_equal(cfg.ws_host, "::");
	assert_int_equal(cfg.ws_port, 65535);
	set_ok(&cfg, "db", "/var/lib/gw/gw.db");
	assert_string_equal(cfg.db_path, "/var/lib/gw/gw.db");
	set_ok(&cfg, "token-file", "/etc/gw/token");
	assert_string_equal(cfg.token_file, "/etc/gw/token");
	assert_null(cfg.token);		/* read by config_finish only */
	set_ok(&cfg, "web-root", "./web");
	assert_string_equal(cfg.web_root, "./web");
	set_ok(&cfg, "web-root", "/srv/www");	/* the last one wins */
	assert_string_equal(cfg.web_root, "/srv/www");

	set_ok(&cfg, "verbose", "yes");
	assert_int_equal(cfg.verbose, 1);
	set_ok(&cfg, "verbose", "false");
	assert_int_equal(cfg.verbose, 0);
	set_ok(&cfg, "verbose", "1");
	assert_int_equal(cfg.verbose, 1);
	set_ok(&cfg, "allow-remote", "true");
	assert_int_equal(cfg.allow_remote, 1);
	set_ok(&cfg, "allow-remote", "no");
	assert_int_equal(cfg.allow_remote, 0);
	set_ok(&cfg, "detect", "0");
	assert_int_equal(cfg.detect, 0);
	set_ok(&cfg, "detect", "yes");
	assert_int_equal(cfg.detect, 1);

	set_ok(&cfg, "http-threads", "8");
	assert_int_equal(cfg.http_threads, 8);
	set_ok(&cfg, "workers", "64");
	assert_int_equal(cfg.workers, 64);
	set_ok(&cfg, "workers", "1");
	assert_int_equal(cfg.workers, 1);
	set_ok(&cfg, "external-url", "https://gw.example/dash");
	assert_string_equal(cfg.external_url, "https://gw.example/dash");
	set_ok(&cfg, "external-url", "http://10.0.0.1:7070");
	assert_string_equal(cfg.external_url, "http://10.0.0.1:7070");
	config_cleanup(&cfg);
}

/* Sizes take k and M; seconds take s, m and h; both have bounds. */
static void
test_numbers(void **state)
{
	struct config	cfg;

	(void)state;
	config_init(&cfg);
	set_ok(&cfg, "max-body", "1024");		/* the least */
	assert_int_equal(cfg.max_body, 1024);
	set_ok(&cfg, "max-body", "64k");
	assert_int_equal(cfg.max_body, 64 << 10);
	set_ok(&cfg, "max-body", "64K");
	assert_int_equal(cfg.max_body, 64 << 10);
	set_ok(&cfg, "max-body", "2M");
	assert_int_equal(cfg.max_body, 2 << 20);
	set_ok(&cfg, "max-body", "1024M");		/* the most: 1 GiB */
	assert_int_equal(cfg.max_body, (size_t)1 << 30);
	set_fails(&cfg, "max-body", "1023", "out of range");
	set_fails(&cfg, "max-body", "1025M", "out of range");
	set_fails(&cfg, "max-body", "1G", "expected a number (with k or M)");
	set_fails(&cfg, "max-body", "2m", "expected a number (with k or M)");
	set_fails(&cfg, "max-body", "12 k", "expected a number (with k or M)");
	set_fails(&cfg, "max-body", "-2048", "expected a number");
	set_fails(&cfg, "max-body", "lots", "expected a number, got 'lots'");
	set_fails(&cfg, "max-body", "", "expected a number");
	set_fails(&cfg, "max-body", "99999999999999999999999",
	    "expected a number");
	assert_int_equal(cfg.max_body, (size_t)1 << 30);
	set_ok(&cfg, "max-meta-config", "16");	/* the least */
	assert_int_equal(cfg.max_meta_config, 16);
	set_ok(&cfg, "max-meta-config", "1M");
	assert_int_equal(cfg.max_meta_config, 1 << 20);
	set_fails(&cfg, "max-meta-config", "15", "out of range");
	set_fails(&cfg, "max-meta-config", "1025M", "out of range");
	assert_int_equal(cfg.max_meta_config, 1 << 20);

	set_ok(&cfg, "queue-points", "1000");
	assert_int_equal(cfg.queue_points, 1000);
	set_ok(&cfg, "queue-points", "4096M");	/* 2^32, the most */
	assert_int_equal(cfg.queue_points, (size_t)1 << 32);
	set_fails(&cfg, "queue-points", "999", "999 is out of range");
	set_fails(&cfg, "queue-points", "4097M", "out of range");

	set_fails(&cfg, "http-threads", "0", "0 is out of range [1, 64]");
	set_fails(&cfg, "http-threads", "65", "out of range [1, 64]");
	set_fails(&cfg, "workers", "1k", "out of range");
	set_fails(&cfg, "workers", "four", "expected a number");

	set_ok(&cfg, "notify-resend", "90");
	assert_true(cfg.notify_resend == 90);
	set_ok(&cfg, "notify-resend", "90s");
	assert_true(cfg.notify_resend == 90);
	set_ok(&cfg, "notify-resend", "5m");
	assert_true(cfg.notify_resend == 300);
	set_ok(&cfg, "notify-resend", "1h");		/* the most */
	assert_true(cfg.notify_resend == 3600);
	set_fails(&cfg, "notify-resend", "0.5", "out of range");
	set_fails(&cfg, "notify-resend", "61m", "61m is out of range");
	set_fails(&cfg, "notify-resend", "1d", "expected seconds");
	set_fails(&cfg, "notify-resend", "-5", "expected seconds");
	set_fails(&cfg, "notify-resend", "nan", "expected seconds");
	set_fails(&cfg, "notify-resend", "soon",
	    "expected seconds (90, 90s, 5m, 1h), got 'soon'");
	assert_true(cfg.notify_resend == 3600);

	assert_true(cfg.run_idle_evict == 600);		/* the default */
	set_ok(&cfg, "run-idle-evict", "0");		/* never */
	assert_true(cfg.run_idle_evict == 0);
	set_ok(&cfg, "run-idle-evict", "1.5");
	assert_true(cfg.run_idle_evict == 1.5);
	set_ok(&cfg, "run-idle-evict", "1h");
	assert_true(cfg.run_idle_evict == 3600);
	set_fails(&cfg, "run-idle-evict", "31d", "expected seconds");
	set_fails(&cfg, "run-idle-evict", "745h", "out of range");
	set_fails(&cfg, "run-idle-evict", "-1", "expected seconds");
	assert_true(cfg.run_idle_evict == 3600);

	assert_true(cfg.ws_ping == 30);			/* the default */
	set_ok(&cfg, "ws-ping", "2.4");			/* whole seconds */
	assert_true(cfg.ws_ping == 2);
	set_ok(&cfg, "ws-ping", "1m");
	assert_true(cfg.ws_ping == 60);
	set_fails(&cfg, "ws-ping", "0", "out of range");
	set_fails(&cfg, "ws-ping", "2h", "out of range");
	assert_true(cfg.ws_ping == 60);

	set_ok(&cfg, "notify-timeout", "0.1");		/* the least */
	assert_true(cfg.notify_timeout == 0.1);
	set_ok(&cfg, "notify-timeout", "2.5s");
	assert_true(cfg.notify_timeout == 2.5);
	set_ok(&cfg, "notify-timeout", "5m");		/* the most */
	assert_true(cfg.notify_timeout == 300);
	set_fails(&cfg, "notify-timeout", "0.05", "out of range");
	set_fails(&cfg, "notify-timeout", "301", "out of range");
	set_fails(&cfg, "notify-timeout", "inf", "out of range");

	set_ok(&cfg, "notify-max-backoff", "24h");	/* the most */
	assert_true(cfg.notify_max_backoff == 86400);
	set_ok(&cfg, "notify-max-backoff", "1");	/* the least */
	assert_true(cfg.notify_max_backoff == 1);
	set_fails(&cfg, "notify-max-backoff", "25h", "out of range");
	set_fails(&cfg, "notify-max-backoff", "0s", "out of range");
	config_cleanup(&cfg);
}

/* A refused value says why and changes nothing, whatever came before. */
static void
test_errors_change_nothing(void **state)
{
	static const struct {
		const char	*directive, *value, *want;
	} cases[] = {
		{ "nope", "1", "unknown directive 'nope'" },
		{ "HTTP", "127.0.0.1:80", "unknown directive 'HTTP'" },
		{ "", "x", "unknown directive ''" },
		{ "http", "7070", "expected ADDR:PORT, got '7070'" },
		{ "http", ":7070", "expected ADDR:PORT, got ':7070'" },
		{ "http", "localhost:", "bad port in 'localhost:'" },
		{ "http", "localhost:65536", "bad port in 'localhost:65536'" },
		{ "http", "localhost:80x", "bad port" },
		{ "http", "localhost:-1", "bad port" },
		{ "http", "localhost:99999999999999999999", "bad port" },
		{ "ws", "", "expected ADDR:PORT" },
		{ "ws", "[::1]", "bad port" },
		{ "db", "", "empty path" },
		{ "token-file", "", "empty path" },
		{ "web-root", "", "empty path" },
		{ "verbose", "maybe", "expected yes or no, got 'maybe'" },
		{ "verbose", "YES", "expected yes or no" },
		{ "allow-remote", "", "expected yes or no" },
		{ "detect", "2", "expected yes or no" },
		{ "external-url", "gw.example", "expected an http:// or "
		    "https:// URL, got 'gw.example'" },
		{ "external-url", "ftp://gw.example", "expected an http://" },
		{ "alertmanager", "", "expected a URL" },
		{ "alertmanager", "ftp://am:9093", "expected an http:// or "
		    "https:// URL" },
		{ "webhook", "nohost", "not a URL: 'nohost'" },
		{ "webhook", "http://hook.example severity=loud",
		    "severity=loud: expected info, warning or critical" },
		{ "webhook", "http://hook.example colour=red",
		    "unknown option 'colour'" },
		{ "webhook", "http://hook.example loose",
		    "expected option=value after the URL, got 'loose'" },
		{ "slack-webhook", "https://hooks.slack.example/x name=a b",
		    "expected option=value" },
		{ "slack-webhook", "https://hooks.slack.example/x name=a!",
		    "name=a!: use [A-Za-z0-9._:/-]" },
		{ "webhook", "http://hook.example project=",
		    "project= needs at least one project" },
		{ "webhook", "http://hook.example project=a,,b",
		    "an empty project name" },
		{ "detector.nope", "1", "unknown detector threshold 'nope'" },
		{ "detector.", "1", "unknown detector threshold ''" },
		{ "detector.stall.min_steps", "2.5", "out of range" },
		{ "detector.stall.min_steps", "1", "out of range" },
		{ "detector.grad.alpha", "high", "'high' is not a number" },
		{ "detector.grad.alpha", "nan", "is not a number" },
	};
	struct config	cfg;
	size_t		i;

	(void)state;
	/* Once on the defaults, once on a config with everything set. */
	config_init(&cfg);
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++)
		set_fails(&cfg, cases[i].directive, cases[i].value,
		    cases[i].want);
	config_cleanup(&cfg);

	config_init(&cfg);
	set_ok(&cfg, "http", "127.0.0.1:8000");
	set_ok(&cfg, "ws", "127.0.0.1:8500");
	set_ok(&cfg, "token-file", "/t");
	set_ok(&cfg, "web-root", "/w");
	set_ok(&cfg, "verbose", "yes");
	set_ok(&cfg, "external-url", "http://x:1");
	set_ok(&cfg, "webhook",
	    "http://hook.example/a project=p severity=info");
	set_ok(&cfg, "detector.grad.alpha", "0.5");
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++)
		set_fails(&cfg, cases[i].directive, cases[i].value,
		    cases[i].want);
	assert_string_equal(cfg.http_host, "127.0.0.1");
	assert_int_equal(cfg.nreceivers, 1);
	config_cleanup(&cfg);
}

static void
test_receivers(void **state)
{
	struct config	 cfg;
	struct receiver	*r;
	const char	*bearer;

	(void)state;
	bearer = write_file("bearer", "hook-secret\n");
	config_init(&cfg);
	set_ok(&cfg, "alertmanager", "http://127.0.0.1:9093");
	set_ok(&cfg, "webhook", "http://hooks.example severity=critical "
	    "project=alpha,beta");
	set_ok(&cfg, "slack-webhook", "https://hooks.example");
	assert_int_equal(cfg.nreceivers, 3);

	r = &cfg.receivers[0];
	assert_int_equal(r->kind, RECEIVER_ALERTMANAGER);
	assert_string_equal(r->url, "http://127.0.0.1:9093");
	assert_string_equal(r->post_url, "http://127.0.0.1:9093/api/v2/alerts");
	assert_string_equal(r->name, "alertmanager:127.0.0.1:9093");
	assert_int_equal(r->min_severity, ALERT_WARNING);
	assert_null(r->projects);
	assert_null(r->bearer);

	r = &cfg.receivers[1];
	assert_int_equal(r->kind, RECEIVER_WEBHOOK);
	assert_string_equal(r->post_url, "http://hooks.example");
	assert_string_equal(r->name, "webhook:hooks.example");
	assert_int_equal(r->min_severity, ALERT_CRITICAL);
	assert_non_null(r->projects);
	assert_string_equal(r->projects[0], "alpha");
	assert_string_equal(r->projects[1], "beta");
	assert_null(r->projects[2]);

	/* Another kind at the same host has a name of its own. */
	r = &cfg.receivers[2];
	assert_int_equal(r->kind, RECEIVER_SLACK);
	assert_string_equal(r->name, "slack:hooks.example");

	/* The same name twice is refused, naming it; name= tells apart. */
	set_fails(&cfg, "alertmanager", "http://127.0.0.1:9093 severity=info",
	    "a second receiver named alertmanager:127.0.0.1:9093");
	set_fails(&cfg, "webhook", "http://other.example name=webhook:"
	    "hooks.example", "a second receiver named webhook:hooks.example");
	set_ok(&cfg, "alertmanager", "http://127.0.0.1:9093 name=am2 "
	    "severity=info");
	assert_int_equal(cfg.nreceivers, 4);
	assert_string_equal(cfg.receivers[3].name, "am2");
	assert_int_equal(cfg.receivers[3].min_severity, ALERT_INFO);

	/* bearer-file= reads the token's first line. */
	{
		char	*spec;

		xasprintf(&spec, "https://hooks.example/b bearer-file=%s "
		    "name=with-bearer", bearer);
		set_ok(&cfg, "webhook", spec);
		free(spec);
	}
	assert_int_equal(cfg.nreceivers, 5);
	assert_string_equal(cfg.receivers[4].bearer, "hook-secret");
	{
		char	*spec, *want;

		xasprintf(&spec, "https://hooks.example/c bearer-file=%s/none",
		    tmpdir);
		xasprintf(&want, "bearer-file=%s/none: %s", tmpdir,
		    strerror(ENOENT));
		set_fails(&cfg, "webhook", spec, want);
		free(spec);
		free(want);
	}
	assert_int_equal(cfg.nreceivers, 5);
	config_cleanup(&cfg);
	assert_int_equal(cfg.nreceivers, 0);
	assert_null(cfg.receivers);
}

/* remote-write targets: names, secrets, headers, layer-every, refusals. */
static void
test_remote_write(void **state)
{
	struct config		 cfg;
	struct remote_target	*t;
	const char		*bearer, *pw;

	(void)state;
	bearer = write_file("rw-bearer", "rw-token\n");
	pw = write_file("rw-password", "s3cret\n");
	config_init(&cfg);
	set_ok(&cfg, "remote-write", "http://127.0.0.1:8428/api/v1/write");
	t = &cfg.remotes[0];
	assert_string_equal(t->name, "127.0.0.1:8428");
	assert_int_equal(t->layer_every, 1);
	assert_null(t->bearer);
	assert_int_equal(t->nheaders, 0);

	/* https's default port names it; a second one needs a name=. */
	set_ok(&cfg, "remote-write", "https://mimir.example/api/v1/push");
	assert_string_equal(cfg.remotes[1].name, "mimir.example:443");
	set_fails(&cfg, "remote-write", "https://mimir.example/other",
	    "a second remote-write target named mimir.example:443");

	{
		char	*spec;

		xasprintf(&spec, "https://mimir.example/api/v1/push name=m2 "
		    "bearer-file=%s header=X-Scope-OrgID:team-a layer-every=10",
		    bearer);
		set_ok(&cfg, "remote-write", spec);
		free(spec);
		xasprintf(&spec, "http://vm.example:8428/api/v1/write name=vm "
		    "user=gw password-file=%s", pw);
		set_ok(&cfg, "remote-write", spec);
		free(spec);
	}
	t = &cfg.remotes[2];
	assert_string_equal(t->name, "m2");
	assert_string_equal(t->bearer, "rw-token");
	assert_int_equal(t->nheaders, 1);
	assert_string_equal(t->headers[0], "X-Scope-OrgID: team-a");
	assert_int_equal(t->layer_every, 10);
	t = &cfg.remotes[3];
	assert_string_equal(t->user, "gw");
	assert_string_equal(t->password, "s3cret");

	set_fails(&cfg, "remote-write", "ftp://x.example", "expected an "
	    "http:// or https:// URL");
	set_fails(&cfg, "remote-write", "http://x.example layer-every=0",
	    "layer-every=0: expected 1 to");
	set_fails(&cfg, "remote-write", "http://x.example user=gw",
	    "user= and password-file= go together");
	set_fails(&cfg, "remote-write", "http://x.example header=:v",
	    "expected Name:value");
	set_fails(&cfg, "remote-write", "http://x.example header=a b:v",
	    "header=a: expected Name:value");
	set_fails(&cfg, "remote-write", "http://x.example every=2",
	    "unknown option 'every'");
	assert_int_equal(cfg.nremotes, 4);
	config_cleanup(&cfg);
}

static void
test_detector_directives(void **state)
{
	struct config		 cfg;
	struct detector_config	*def;

	(void)state;
	def = detector_config_new();
	config_init(&cfg);
	set_ok(&cfg, "detector.stall.min_steps", "7");
	assert_true(cfg.detector->stall_min_steps == 7);
	set_ok(&cfg, "detector.grad.alpha", "0.5");
	assert_true(cfg.detector->grad_alpha == 0.5);
	set_ok(&cfg, "detector.dead.zero", "1e-20");
	assert_true(cfg.detector->dead_zero == 1e-20);
	/* Nothing else moved. */
	cfg.detector->stall_min_steps = def->stall_min_steps;
	cfg.detector->grad_alpha = def->grad_alpha;
	cfg.detector->dead_zero = def->dead_zero;
	assert_memory_equal(def, cfg.detector, sizeof *def);
	/* Only the prefix routes: these are config's own, and unknown. */
	set_fails(&cfg, "detector", "1", "unknown directive 'detector'");
	set_fails(&cfg, "stall.min_steps", "7", "unknown directive");
	config_cleanup(&cfg);
	detector_config_free(def);
}

static void
test_file(void **state)
{
	struct config	 cfg;
	const char	*path;

	(void)state;
	path = write_file("good.conf",
	    "# gradwatchd.conf\n"
	    "\n"
	    "   \t\n"
	    "  http   127.0.0.1:8100   # the API\n"
	    "db\t/var/lib/gw.db\n"
	    "verbose yes\r\n"
	    "detect no\n"
	    "max-body 64k\n"
	    "#workers 9\n"
	    "webhook http://hooks.example/a severity=critical project=p1,p2 "
	    "name=hook-a\n"
	    "alertmanager\thttp://127.0.0.1:9093\tseverity=info\n"
	    "detector.stall.min_steps 7\n"
	    "notify-resend 2m # twice a run\n"
	    "http-threads 3");	/* no newline at the end */
	config_init(&cfg);
	{
		char	*cause = NULL;

		if (config_load_file(&cfg, path, &cause) != 0)
			fail_msg("%s", str(cause));
		assert_null(cause);
	}
	assert_string_equal(cfg.http_host, "127.0.0.1");
	assert_int_equal(cfg.http_port, 8100);
	assert_string_equal(cfg.db_path, "/var/lib/gw.db");
	assert_int_equal(cfg.verbose, 1);
	assert_int_equal(cfg.detect, 0);
	assert_int_equal(cfg.max_body, 64 << 10);
	assert_int_equal(cfg.workers, 4);	/* commented out */
	assert_int_equal(cfg.http_threads, 3);
	assert_true(cfg.notify_resend == 120);
	assert_true(cfg.detector->stall_min_steps == 7);
	assert_int_equal(cfg.nreceivers, 2);
	assert_string_equal(cfg.receivers[0].name, "hook-a");
	assert_string_equal(cfg.receivers[0].url, "http://hooks.example/a");
	assert_int_equal(cfg.receivers[0].min_severity, ALERT_CRITICAL);
	assert_string_equal(cfg.receivers[0].projects[1], "p2");
	assert_int_equal(cfg.receivers[1].kind, RECEIVER_ALERTMANAGER);
	assert_int_equal(cfg.receivers[1].min_severity, ALERT_INFO);
	finish_ok(&cfg);
	assert_int_equal(cfg.ws_port, 8101);
	config_cleanup(&cfg);

	/* An empty file, or one of comments only, changes nothing. */
	config_init(&cfg);
	{
		char	*before = describe(&cfg), *after, *cause = NULL;

		assert_int_equal(config_load_file(&cfg, write_file("empty.conf",
		    ""), &cause), 0);
		assert_int_equal(config_load_file(&cfg, write_file(
		    "comments.conf", "# nothing\n\n  # here\n"), &cause), 0);
		assert_null(cause);
		after = describe(&cfg);
		assert_string_equal(before, after);
		free(before);
		free(after);
	}
	config_cleanup(&cfg);
}

/* The file's error: "path:line: why: 'line'", and nothing of that line. */
static void
file_fails(const char *name, const char *body, int line, const char *why,
    const char *shown, size_t nreceivers)
{
	struct config	 cfg;
	const char	*path;
	char		*cause = NULL, *want;

	path = write_file(name, body);
	config_init(&cfg);
	assert_int_equal(config_load_file(&cfg, path, &cause), -1);
	assert_non_null(cause);
	xasprintf(&want, "%s:%d: %s: '%s'", path, line, why, shown);
	assert_string_equal(cause, want);
	free(want);
	free(cause);
	/* Nothing from the bad line or after it. */
	assert_int_equal(cfg.verbose, 0);
	assert_int_equal(cfg.workers, 4);
	assert_string_equal(cfg.db_path, CONFIG_DEFAULT_DB);
	assert_int_equal(cfg.nreceivers, nreceivers);	/* lines before */
	config_cleanup(&cfg);
}

static void
test_file_errors(void **state)
{
	struct config	 cfg;
	char		*cause = NULL, *want, *path, *before, *after;

	(void)state;
	file_fails("bad-bool.conf",
	    "# first\n"
	    "\n"
	    "verbose maybe   # not a yes\n"
	    "workers 8\n", 3, "expected yes or no, got 'maybe'",
	    "verbose maybe   # not a yes", 0);
	file_fails("no-value.conf",
	    "http-threads 3\n"
	    "db   # the value went missing\n"
	    "workers 8\n", 2, "missing value", "db   # the value went missing",
	    0);
	file_fails("unknown.conf",
	    "\tcolour blue\t\n"
	    "verbose yes\n", 1, "unknown directive 'colour'", "colour blue", 0);
	file_fails("bad-receiver.conf",
	    "http 127.0.0.1:7000\n"
	    "webhook ftp://x.example\n"
	    "verbose yes\n", 2, "expected an http:// or https:// URL, got "
	    "'ftp://x.example'", "webhook ftp://x.example", 0);
	file_fails("bad-detector.conf",
	    "detector.stall.min_steps x\n", 1,
	    "detector.stall.min_steps: 'x' is not a number",
	    "detector.stall.min_steps x", 0);
	file_fails("bad-dup.conf",
	    "webhook http://h.example\n"
	    "webhook http://h.example\n", 2,
	    "a second receiver named webhook:h.example (give one a name=)",
	    "webhook http://h.example", 1);

	/* No such file, and a directory: the path and the system's word. */
	config_init(&cfg);
	before = describe(&cfg);
	xasprintf(&path, "%s/absent.conf", tmpdir);
	assert_int_equal(config_load_file(&cfg, path, &cause), -1);
	xasprintf(&want, "%s: %s", path, strerror(ENOENT));
	assert_string_equal(cause, want);
	free(want);
	free(cause);
	free(path);
	cause = NULL;
	assert_int_equal(config_load_file(&cfg, tmpdir, &cause), -1);
	xasprintf(&want, "%s: %s", tmpdir, strerror(EISDIR));
	assert_string_equal(cause, want);
	free(want);
	free(cause);
	after = describe(&cfg);
	assert_string_equal(before, after);
	free(before);
	free(after);
	config_cleanup(&cfg);
}

/* As main: defaults, then the file, then the flags, which win. */
static void
test_file_then_flags(void **state)
{
	struct config	 cfg;
	const char	*path;
	char		*cause = NULL;

	(void)state;
	path = write_file("flags.conf",
	    "http 127.0.0.1:8000\n"
	    "db file.db\n"
	    "webhook http://hooks.example/file name=from-file\n"
	    "allow-remote no\n");
	config_init(&cfg);
	assert_int_equal(config_load_file(&cfg, path, &cause), 0);
	set_ok(&cfg, "http", "127.0.0.1:9000");		/* --http */
	set_ok(&cfg, "webhook", "http://hooks.example/flag name=from-flag");
	set_ok(&cfg, "allow-remote", "yes");		/* --allow-remote */
	assert_int_equal(cfg.http_port, 9000);
	assert_string_equal(cfg.db_path, "file.db");	/* not overridden */
	assert_int_equal(cfg.allow_remote, 1);
	assert_int_equal(cfg.nreceivers, 2);		/* repeatable */
	assert_string_equal(cfg.receivers[0].name, "from-file");
	assert_string_equal(cfg.receivers[1].name, "from-flag");
	finish_ok(&cfg);
	assert_int_equal(cfg.ws_port, 9001);
	config_cleanup(&cfg);
}

static void
test_ws_default(void **state)
{
	struct config	cfg;

	(void)state;
	/* Unset: the HTTP host and the next port. */
	config_init(&cfg);
	set_ok(&cfg, "http", "127.0.0.2:8000");
	finish_ok(&cfg);
	assert_string_equal(cfg.ws_host, "127.0.0.2");
	assert_int_equal(cfg.ws_port, 8001);
	config_cleanup(&cfg);

	/* Given: kept as given, whatever the HTTP port. */
	config_init(&cfg);
	set_ok(&cfg, "ws", "[::1]:9999");
	set_ok(&cfg, "http", "127.0.0.1:8000");
	finish_ok(&cfg);
	assert_string_equal(cfg.ws_host, "::1");
	assert_int_equal(cfg.ws_port, 9999);
	assert_string_equal(cfg.http_host, "127.0.0.1");
	assert_int_equal(cfg.http_port, 8000);
	config_cleanup(&cfg);

	/* HTTP on the last port: no next port for the stream, said so. */
	config_init(&cfg);
	set_ok(&cfg, "http", "127.0.0.1:65535");
	finish_fails(&cfg, "http port 65535 leaves no next port for the "
	    "stream: give ws ADDR:PORT");
	config_cleanup(&cfg);

	/* Port 0 (the system picks) for HTTP: the stream's too. */
	config_init(&cfg);
	set_ok(&cfg, "http", "127.0.0.1:0");
	finish_ok(&cfg);
	assert_int_equal(cfg.ws_port, 0);
	config_cleanup(&cfg);

	/* The default port from the last http given. */
	config_init(&cfg);
	set_ok(&cfg, "http", "127.0.0.1:1000");
	set_ok(&cfg, "http", "[::1]:2000");
	finish_ok(&cfg);
	assert_string_equal(cfg.ws_host, "::1");
	assert_int_equal(cfg.ws_port, 2001);
	assert_string_equal(cfg.external_url, "http://[::1]:2000");
	config_cleanup(&cfg);
}

static void
test_token_rule(void **state)
{
	static const struct {
		const char	*http, *ws, *named;
	} refused[] = {
		{ "0.0.0.0:7070", NULL, "0.0.0.0" },
		{ "[::]:7070", NULL, "::" },
		{ "192.0.2.7:7070", NULL, "192.0.2.7" },
		{ "127.0.0.1:7070", "0.0.0.0:7071", "0.0.0.0" },
		{ "127.0.0.1:7070", "[2001:db8::1]:7071", "2001:db8::1" },
		{ "10.1.1.1:7070", "127.0.0.1:7071", "10.1.1.1" },
	};
	struct config	 cfg;
	const char	*token;
	char		*want;
	size_t		 i;

	(void)state;
	token = write_file("token", "  s3cret \nsecond line\n");
	for (i = 0; i < sizeof refused / sizeof refused[0]; i++) {
		/* No token: refused, naming the address beyond loopback. */
		config_init(&cfg);
		set_ok(&cfg, "http", refused[i].http);
		if (refused[i].ws != NULL)
			set_ok(&cfg, "ws", refused[i].ws);
		xasprintf(&want, "refusing to listen on %s without a token: "
		    "use --token-file, or allow-remote yes", refused[i].named);
		finish_fails(&cfg, want);
		free(want);
		config_cleanup(&cfg);

		/* allow-remote yes: let through, still without a token. */
		config_init(&cfg);
		set_ok(&cfg, "http", refused[i].http);
		if (refused[i].ws != NULL)
			set_ok(&cfg, "ws", refused[i].ws);
		set_ok(&cfg, "allow-remote", "yes");
		finish_ok(&cfg);
		assert_null(cfg.token);
		config_cleanup(&cfg);

		/* A token: let through. */
		config_init(&cfg);
		set_ok(&cfg, "http", refused[i].http);
		if (refused[i].ws != NULL)
			set_ok(&cfg, "ws", refused[i].ws);
		set_ok(&cfg, "token-file", token);
		finish_ok(&cfg);
		assert_string_equal(cfg.token, "s3cret");
		config_cleanup(&cfg);
	}

	/* Loopback needs no token, IPv4 or IPv6. */
	config_init(&cfg);
	set_ok(&cfg, "http", "127.9.9.9:7070");
	set_ok(&cfg, "ws", "[::1]:7071");
	finish_ok(&cfg);
	assert_null(cfg.token);
	config_cleanup(&cfg);
}

static void
test_token_file(void **state)
{
	struct config	 cfg;
	char		*want;
	const char	*p;

	(void)state;
	/* The first line, without its spaces and CRLF. */
	config_init(&cfg);
	set_ok(&cfg, "token-file", write_file("token-crlf", "\tabc123\r\n"));
	finish_ok(&cfg);
	assert_string_equal(cfg.token, "abc123");
	config_cleanup(&cfg);

	config_init(&cfg);
	set_ok(&cfg, "token-file", write_file("token-bare", "xyz"));
	finish_ok(&cfg);
	assert_string_equal(cfg.token, "xyz");
	config_cleanup(&cfg);

	/* An empty first line is no token, nor is a file of no bytes. */
	p = write_file("token-empty", "\n");
	config_init(&cfg);
	set_ok(&cfg, "token-file", p);
	xasprintf(&want, "%s: the first line holds no token", p);
	finish_fails(&cfg, want);
	free(want);
	assert_null(cfg.token);
	config_cleanup(&cfg);

	p = write_file("token-nothing", "");
	config_init(&cfg);
	set_ok(&cfg, "token-file", p);
	xasprintf(&want, "%s: the first line holds no token", p);
	finish_fails(&cfg, want);
	free(want);
	assert_null(cfg.token);
	config_cleanup(&cfg);

	p = write_file("token-late", "   \nlate\n");
	config_init(&cfg);
	set_ok(&cfg, "token-file", p);
	xasprintf(&want, "%s: the first line holds no token", p);
	finish_fails(&cfg, want);
	free(want);
	assert_null(cfg.token);
	config_cleanup(&cfg);

	/* A missing file: its path and why. */
	config_init(&cfg);
	xasprintf(&want, "%s/no-token", tmpdir);
	set_ok(&cfg, "token-file", want);
	free(want);
	xasprintf(&want, "%s/no-token: %s", tmpdir, strerror(ENOENT));
	finish_fails(&cfg, want);
	free(want);
	assert_null(cfg.token);
	config_cleanup(&cfg);
}

static void
test_loopback(void **state)
{
	(void)state;
	assert_true(config_is_loopback("127.0.0.1"));
	assert_true(config_is_loopback("127.255.0.9"));
	assert_true(config_is_loopback("::1"));
	assert_false(config_is_loopback("0.0.0.0"));
	assert_false(config_is_loopback("::"));
	assert_false(config_is_loopback("128.0.0.1"));
	assert_false(config_is_loopback("126.255.255.255"));
	assert_false(config_is_loopback("10.0.0.1"));
	assert_false(config_is_loopback("2001:db8::1"));
	assert_false(config_is_loopback("::2"));
	/* A v4-mapped address is not taken for loopback. */
	assert_false(config_is_loopback("::ffff:10.0.0.1"));
}

static void
test_external_url(void **state)
{
	struct config	 cfg;
	char		 host[256], *want;

	(void)state;
	/* Given: kept. */
	config_init(&cfg);
	set_ok(&cfg, "external-url", "https://gw.example/");
	finish_ok(&cfg);
	assert_string_equal(cfg.external_url, "https://gw.example/");
	config_cleanup(&cfg);

	/* From a wildcard listener: this machine's name. */
	config_init(&cfg);
	set_ok(&cfg, "http", "0.0.0.0:8088");
	set_ok(&cfg, "allow-remote", "yes");
	finish_ok(&cfg);
	memset(host, 0, sizeof host);
	assert_int_equal(gethostname(host, sizeof host - 1), 0);
	xasprintf(&want, "http://%s%s%s:8088", strchr(host, ':') ? "[" : "",
	    host, strchr(host, ':') ? "]" : "");
	assert_string_equal(cfg.external_url, want);
	free(want);
	config_cleanup(&cfg);

	config_init(&cfg);
	set_ok(&cfg, "http", "127.0.0.1:7000");
	finish_ok(&cfg);
	assert_string_equal(cfg.external_url, "http://127.0.0.1:7000");
	config_cleanup(&cfg);
}

/* The help names every directive, and config_set knows each it names. */
static void
test_help(void **state)
{
	static const char *const names[] = {
		"http", "ws", "db", "token-file", "web-root", "verbose",
		"allow-remote", "detect", "max-body", "max-meta-config",
		"queue-points", "http-threads", "workers", "max-connections",
		"max-connections-per-ip", "idle-timeout", "alertmanager",
		"webhook", "slack-webhook", "remote-write", "allow-host", "external-url",
		"notify-resend", "notify-timeout", "notify-max-backoff",
		"run-idle-evict", "ws-ping",
	};
	struct config	 cfg;
	const char	*help, *line, *end;
	char		 name[64], *cause, *want;
	size_t		 i, lines = 0, len;

	(void)state;
	help = config_directives_help();
	assert_non_null(help);
	for (i = 0; i < sizeof names / sizeof names[0]; i++) {
		xasprintf(&want, "\n  %s ", names[i]);
		if (strncmp(help, want + 1, strlen(want + 1)) != 0 &&
		    strstr(help, want) == NULL)
			fail_msg("the help lacks '%s'", names[i]);
		free(want);
	}
	config_init(&cfg);
	for (line = help; *line != '\0'; line = end + 1) {
		end = strchr(line, '\n');
		assert_non_null(end);
		assert_true(strncmp(line, "  ", 2) == 0);
		len = strcspn(line + 2, " ");
		assert_true(len > 0 && len < sizeof name);
		memcpy(name, line + 2, len);
		name[len] = '\0';
		cause = NULL;
		/* No directive takes an empty value: refused, not unknown. */
		if (config_set(&cfg, name, "", &cause) == 0)
			fail_msg("%s took an empty value", name);
		assert_non_null(cause);
		if (strstr(cause, "unknown directive") != NULL)
			fail_msg("the help names '%s', which is unknown",
			    name);
		free(cause);
		lines++;
	}
	config_cleanup(&cfg);
	assert_int_equal(lines, sizeof names / sizeof names[0]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_directives),
		cmocka_unit_test(test_numbers),
		cmocka_unit_test(test_errors_change_nothing),
		cmocka_unit_test(test_receivers),
		cmocka_unit_test(test_remote_write),
		cmocka_unit_test(test_detector_directives),
		cmocka_unit_test(test_file),
		cmocka_unit_test(test_file_errors),
		cmocka_unit_test(test_file_then_flags),
		cmocka_unit_test(test_ws_default),
		cmocka_unit_test(test_token_rule),
		cmocka_unit_test(test_token_file),
		cmocka_unit_test(test_loopback),
		cmocka_unit_test(test_external_url),
		cmocka_unit_test(test_help),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
