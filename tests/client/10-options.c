/* SPDX-License-Identifier: MIT */
/*
 * Against no daemon: gw_open's checks (bad URL, run key, config, token,
 * sizes) and defaults ($GRADWATCH_URL, the generated run key), argument
 * checks of the other calls, the NULL handle as a no-op everywhere,
 * gw_strerror, and silence by default (GRADWATCH_DEBUG=1 logs).
 */
#include <fcntl.h>
#include <math.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gradwatch.h"
#include "gwt.h"

static int
open_rc(const struct gw_options *opt)
{
	struct gw_client	*gw = (struct gw_client *)&gw;	/* not NULL */
	int			 rc;

	rc = gw_open(&gw, opt);
	if (rc != GW_OK && gw != NULL)
		return 999;	/* a failed open must leave *out NULL */
	if (gw != NULL)
		gw_close(gw, 0);
	return rc;
}

static void
test_null_handle(void)
{
	struct gw_alert	a[2];
	int		bad = 0;

	bad |= gw_layer(NULL, "x", 1, 0) != 0;
	bad |= gw_layer_shape(NULL, "x", NULL, 0, 0) != 0;
	bad |= gw_metric(NULL, "m") != 0;
	bad |= gw_loss(NULL, 1, 1) != GW_OK;
	bad |= gw_grad_norm(NULL, 1, 1) != GW_OK;
	bad |= gw_lr(NULL, 1, 1) != GW_OK;
	bad |= gw_layer_grad(NULL, 1, 0, 1) != GW_OK;
	bad |= gw_layer_weight(NULL, 1, 0, 1) != GW_OK;
	bad |= gw_clip(NULL, 1, 1, 2) != GW_OK;
	bad |= gw_skipped(NULL, 1, 1, 2) != GW_OK;
	bad |= gw_metric_value(NULL, 1, 0, 1) != GW_OK;
	bad |= gw_step_time(NULL, 1, 1) != GW_OK;
	bad |= gw_health(NULL) != GW_HEALTH_UNKNOWN;
	bad |= gw_alerts(NULL, a, 2) != 0;
	bad |= gw_dropped(NULL) != 0;
	bad |= strcmp(gw_run(NULL), "") != 0;
	bad |= gw_errmsg(NULL) == NULL;
	bad |= gw_flush(NULL, 100) != GW_OK;
	bad |= gw_close(NULL, 100) != GW_OK;
	bad |= gw_close_status(NULL, GW_RUN_FAILED, 100) != GW_OK;
	ok(!bad, "a NULL handle is a no-op in every call");
}

static void
test_open_checks(void)
{
	struct gw_options	 opt = { 0 };
	char			 long_key[200], deep[200];
	int			 i;

	is_int(gw_open(NULL, NULL), GW_EINVAL, "gw_open(NULL) is EINVAL");

	opt.url = "ftp://127.0.0.1:1";
	is_int(open_rc(&opt), GW_EINVAL, "ftp:// URL refused");
	ok(strstr(gw_errmsg(NULL), "url") != NULL, "gw_errmsg(NULL) says why "
	    "(%s)", gw_errmsg(NULL));
	opt.url = "127.0.0.1:7070";
	is_int(open_rc(&opt), GW_EINVAL, "URL without a scheme refused");
	opt.url = "http://";
	is_int(open_rc(&opt), GW_EINVAL, "URL without a host refused");
	opt.url = "";
	is_int(open_rc(&opt), GW_EINVAL, "empty URL refused");
	opt.url = "http://127.0.0.1:1/";
	is_int(open_rc(&opt), GW_OK, "http:// URL with a trailing slash");
	opt.url = "HTTPS://example.invalid";
	is_int(open_rc(&opt), GW_OK, "https:// URL (not contacted at open)");

	opt.url = "http://127.0.0.1:1";
	opt.run = "";
	is_int(open_rc(&opt), GW_EINVAL, "empty run key refused");
	opt.run = "has space";
	is_int(open_rc(&opt), GW_EINVAL, "run key with a space refused");
	opt.run = "a/b";
	is_int(open_rc(&opt), GW_EINVAL, "run key with a slash refused");
	memset(long_key, 'k', 129);
	long_key[129] = '\0';
	opt.run = long_key;
	is_int(open_rc(&opt), GW_EINVAL, "129-character run key refused");
	long_key[128] = '\0';
	is_int(open_rc(&opt), GW_OK, "128-character run key accepted");
	opt.run = "A-z_0.9:x";
	is_int(open_rc(&opt), GW_OK, "every allowed character");
	opt.run = NULL;

	opt.config_json = "[1, 2]";
	is_int(open_rc(&opt), GW_EINVAL, "config that is an array refused");
	opt.config_json = "42";
	is_int(open_rc(&opt), GW_EINVAL, "config that is a number refused");
	opt.config_json = "{\"lr\": ";
	is_int(open_rc(&opt), GW_EINVAL, "config that is not JSON refused");
	ok(strstr(gw_errmsg(NULL), "config_json") != NULL, "and says so (%s)",
	    gw_errmsg(NULL));
	memcpy(deep, "{\"a\":", 5);	/* {"a":[[[...]]]}, 41 levels */
	for (i = 5; i < 45; i++)
		deep[i] = '[';
	for (i = 45; i < 85; i++)
		deep[i] = ']';
	deep[85] = '}';
	deep[86] = '\0';
	opt.config_json = deep;
	is_int(open_rc(&opt), GW_EINVAL, "config nested too deep for the "
	    "daemon refused");
	opt.config_json = "{\"lr\": 0.1, \"layers\": [1, 2]}";
	is_int(open_rc(&opt), GW_OK, "config object accepted");
	opt.config_json = NULL;

	opt.token = "two\nlines";
	is_int(open_rc(&opt), GW_EINVAL, "token with a newline refused");
	opt.token = NULL;
	opt.project = "\xff\xfe";
	is_int(open_rc(&opt), GW_EINVAL, "project that is not UTF-8 refused");
	opt.project = NULL;
	opt.buffer_points = (size_t)1 << 40;
	is_int(open_rc(&opt), GW_EINVAL, "absurd buffer_points refused");
	opt.buffer_points = 3;
	is_int(open_rc(&opt), GW_OK, "tiny buffer_points rounded up");
	opt.buffer_points = 0;
	opt.flush_interval_ms = 100000000;
	is_int(open_rc(&opt), GW_EINVAL, "absurd flush interval refused");
}

static void
test_environment(void)
{
	struct gw_client	*gw = NULL;
	regex_t			 re;
	int			 rc;

	setenv("GRADWATCH_URL", "gopher://nope", 1);
	is_int(open_rc(NULL), GW_EINVAL, "a bad $GRADWATCH_URL is refused");
	setenv("GRADWATCH_URL", "http://127.0.0.1:1", 1);
	rc = gw_open(&gw, NULL);
	is_int(rc, GW_OK, "gw_open with no options at all");
	regcomp(&re, "^10-options-[0-9]{8}-[0-9]{6}-[0-9a-f]{6}$",
	    REG_EXTENDED | REG_NOSUB);
	ok(regexec(&re, gw_run(gw), 0, NULL, 0) == 0, "default run key from "
	    "the program name, time and a random suffix (%s)", gw_run(gw));
	regfree(&re);
	gw_close(gw, 0);
	unsetenv("GRADWATCH_URL");
}

static void
test_arguments(void)
{
	struct gw_options	 opt = { .url = "http://127.0.0.1:1" };
	struct gw_client	*gw = NULL;
	char			 longname[300];
	int64_t			 shape[2] = { 3, -1 };
	int			 l, m;

	if (!ok(gw_open(&gw, &opt) == GW_OK, "open"))
		return;
	is_int(gw_layer(gw, NULL, 1, 0), GW_EINVAL, "gw_layer(NULL name)");
	is_int(gw_layer(gw, "", 1, 0), GW_EINVAL, "gw_layer(\"\")");
	memset(longname, 'n', 257);
	longname[257] = '\0';
	is_int(gw_layer(gw, longname, 1, 0), GW_EINVAL, "a 257-byte name");
	longname[256] = '\0';
	is_int(gw_layer(gw, longname, 1, 0), 0, "a 256-byte name");
	is_int(gw_layer(gw, "bad\xc3", 1, 0), GW_EINVAL, "a name that is "
	    "not UTF-8");
	is_int(gw_layer_shape(gw, "neg", shape, 2, 0), GW_EINVAL,
	    "a negative dimension");
	l = gw_layer(gw, "enc.\xc3\xa9t\xc3\xa9", 10, 1);
	is_int(l, 1, "a UTF-8 name");
	m = gw_metric(gw, "acc");
	is_int(m, 0, "metric ids count on their own");
	is_int(gw_layer_grad(gw, 1, 2, 1.0), GW_EINVAL, "unknown layer id");
	is_int(gw_layer_grad(gw, 1, -1, 1.0), GW_EINVAL, "negative layer id");
	is_int(gw_layer_weight(gw, 1, 7, 1.0), GW_EINVAL, "unknown layer id "
	    "(weights)");
	is_int(gw_metric_value(gw, 1, 1, 1.0), GW_EINVAL, "unknown metric id");
	is_int(gw_loss(gw, -1, 1.0), GW_EINVAL, "negative step");
	is_int(gw_step_time(gw, 1, NAN), GW_EINVAL, "NaN step time");
	is_int(gw_step_time(gw, 1, -5), GW_EINVAL, "negative step time");
	is_int(gw_layer_grad(gw, 1, l, NAN), GW_OK, "NaN is a fine value");
	is_int(gw_loss(gw, 1, -INFINITY), GW_OK, "so is -Inf");
	is_int(gw_alerts(gw, NULL, 0), 0, "no alerts yet");
	gw_close(gw, 0);
}

static void
test_strerror(void)
{
	const char	*seen[8];
	int		 code, bad = 0, i;

	for (code = 0; code >= -7; code--) {
		seen[-code] = gw_strerror(code);
		if (seen[-code] == NULL || seen[-code][0] == '\0')
			bad = 1;
		for (i = 0; i < -code; i++)
			if (strcmp(seen[i], seen[-code]) == 0)
				bad = 1;
	}
	ok(!bad, "gw_strerror: a distinct text for each code");
	ok(strcmp(gw_strerror(-100), "unknown error") == 0, "and for others");
	ok(strcmp(gw_version(), GW_VERSION) == 0, "gw_version is GW_VERSION");
}

/* Run a short life against no daemon with stderr going to a file. */
static long
stderr_bytes(const char *debug, char *first, size_t len)
{
	struct gw_options	 opt = { .url = "http://127.0.0.1:1",
				    .flush_interval_ms = 10 };
	struct gw_client	*gw = NULL;
	char			 path[512];
	FILE			*f;
	long			 size;
	int			 fd, saved;

	snprintf(path, sizeof path, "%s/stderr-%s", gwt_tmpdir(),
	    debug != NULL ? "debug" : "quiet");
	if (debug != NULL)
		setenv("GRADWATCH_DEBUG", debug, 1);
	else
		unsetenv("GRADWATCH_DEBUG");
	fflush(stderr);
	saved = dup(2);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	dup2(fd, 2);
	close(fd);
	if (gw_open(&gw, &opt) == GW_OK) {
		gw_loss(gw, 0, 1);
		gw_flush(gw, 150);
		gw_close(gw, 100);
	}
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	unsetenv("GRADWATCH_DEBUG");
	first[0] = '\0';
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	if (fgets(first, (int)len, f) != NULL)
		first[strcspn(first, "\n")] = '\0';
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	fclose(f);
	return size;
}

static void
test_silence(void)
{
	char	first[256];
	long	n;

	n = stderr_bytes(NULL, first, sizeof first);
	is_int(n, 0, "silent on stderr by default, even with no daemon");
	n = stderr_bytes("1", first, sizeof first);
	ok(n > 0 && strncmp(first, "gradwatch: ", 11) == 0,
	    "GRADWATCH_DEBUG=1 logs 'gradwatch: ' lines to stderr (%s)", first);
}

int
main(void)
{
	unsetenv("GRADWATCH_URL");
	unsetenv("GRADWATCH_TOKEN");
	unsetenv("GRADWATCH_DEBUG");
	test_null_handle();
	test_open_checks();
	test_environment();
	test_arguments();
	test_strerror();
	test_silence();
	return done_testing();
}
