/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of receiver.c: parsing a receiver's directive (URL,
 * options, default names, Alertmanager's API path), its errors, and
 * which alerts it wants.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "detector.h"
#include "receiver.h"

static void
parse_ok(struct receiver *r, enum receiver_kind kind, const char *spec)
{
	char	*cause = NULL;

	if (receiver_parse(r, kind, spec, &cause) != 0)
		fail_msg("'%s': %s", spec, cause);
}

/* The cause of a refused spec (allocated). */
static char *
parse_fails(enum receiver_kind kind, const char *spec)
{
	struct receiver	 r;
	char		*cause = NULL;

	assert_int_equal(receiver_parse(&r, kind, spec, &cause), -1);
	assert_non_null(cause);
	assert_null(r.url);	/* nothing half-parsed is left */
	receiver_cleanup(&r);
	return cause;
}

static void
test_alertmanager_urls(void **state)
{
	static const struct {
		const char	*spec, *post, *name;
	} cases[] = {
		{ "http://127.0.0.1:9093", "http://127.0.0.1:9093/api/v2/alerts",
		    "alertmanager:127.0.0.1:9093" },
		{ "http://am:9093/", "http://am:9093/api/v2/alerts", NULL },
		{ "https://am.example/prefix", "https://am.example/prefix/api/v2/alerts",
		    NULL },
		{ "http://am:9093/api/v2/alerts", "http://am:9093/api/v2/alerts",
		    NULL },
		{ "http://am:9093/p/api/v2/alerts/", "http://am:9093/p/api/v2/alerts",
		    NULL },
	};
	struct receiver	r;
	size_t		i;

	(void)state;
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		parse_ok(&r, RECEIVER_ALERTMANAGER, cases[i].spec);
		assert_string_equal(r.post_url, cases[i].post);
		assert_string_equal(r.url, cases[i].spec);
		if (cases[i].name != NULL)
			assert_string_equal(r.name, cases[i].name);
		assert_int_equal(r.min_severity, ALERT_WARNING);
		assert_null(r.projects);
		receiver_cleanup(&r);
	}
}

static void
test_names(void **state)
{
	struct receiver	a, b;

	(void)state;
	/* A path may be a secret (Slack's is): the name shows a hash. */
	parse_ok(&a, RECEIVER_SLACK, "https://hooks.slack.com/services/T0/B0/xyz");
	parse_ok(&b, RECEIVER_SLACK, "https://hooks.slack.com/services/T0/B0/abc");
	assert_non_null(strstr(a.name, "slack:hooks.slack.com/"));
	assert_null(strstr(a.name, "xyz"));
	assert_string_not_equal(a.name, b.name);
	assert_string_equal(a.post_url, "https://hooks.slack.com/services/T0/B0/xyz");
	receiver_cleanup(&a);
	receiver_cleanup(&b);
	/* The same URL names the same receiver after a restart. */
	parse_ok(&a, RECEIVER_WEBHOOK, "http://h:8080/hook");
	parse_ok(&b, RECEIVER_WEBHOOK, "http://h:8080/hook");
	assert_string_equal(a.name, b.name);
	receiver_cleanup(&a);
	receiver_cleanup(&b);
	parse_ok(&a, RECEIVER_WEBHOOK, "http://h:8080/hook name=ops-hook");
	assert_string_equal(a.name, "ops-hook");
	receiver_cleanup(&a);
}

static void
test_options(void **state)
{
	struct receiver	 r;
	char		 path[] = "/tmp/gw-receiver.XXXXXX";
	char		 spec[128], *cause;
	int		 fd;

	(void)state;
	parse_ok(&r, RECEIVER_WEBHOOK,
	    "http://h/x  severity=critical\tproject=cifar,imagenet");
	assert_int_equal(r.min_severity, ALERT_CRITICAL);
	assert_string_equal(r.projects[0], "cifar");
	assert_string_equal(r.projects[1], "imagenet");
	assert_null(r.projects[2]);
	assert_null(r.bearer);
	receiver_cleanup(&r);

	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "s3cret \nignored\n", 16), 16);
	close(fd);
	snprintf(spec, sizeof spec, "http://h/x bearer-file=%s", path);
	parse_ok(&r, RECEIVER_ALERTMANAGER, spec);
	assert_string_equal(r.bearer, "s3cret");
	receiver_cleanup(&r);
	/* Twice: refused (the first token is not leaked: fuzz_config). */
	snprintf(spec, sizeof spec, "http://h/x bearer-file=%s bearer-file=%s",
	    path, path);
	cause = parse_fails(RECEIVER_ALERTMANAGER, spec);
	assert_non_null(strstr(cause, "bearer-file= given twice"));
	free(cause);
	unlink(path);
}

static void
test_errors(void **state)
{
	static const struct {
		const char	*spec, *says;
	} cases[] = {
		{ "", "expected a URL" },
		{ "ftp://h/x", "http://" },
		{ "not-a-url", "not a URL" },
		{ "http://", "not a URL" },
		{ "http://h/x severity=loud", "severity=loud" },
		{ "http://h/x loud", "option=value" },
		{ "http://h/x colour=red", "unknown option 'colour'" },
		{ "http://h/x project=", "at least one project" },
		{ "http://h/x project=a,,b", "empty project" },
		{ "http://h/x project=a project=b", "given twice" },
		{ "http://h/x name=a b", "option=value" },
		{ "http://h/x name=a$b", "name=a$b" },
		{ "http://h/x bearer-file=/nonexistent/t", "/nonexistent/t" },
	};
	size_t	 i;
	char	*cause;

	(void)state;
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		cause = parse_fails(RECEIVER_WEBHOOK, cases[i].spec);
		if (strstr(cause, cases[i].says) == NULL)
			fail_msg("'%s': cause '%s' lacks '%s'", cases[i].spec,
			    cause, cases[i].says);
		free(cause);
	}
}

static void
test_wants(void **state)
{
	struct receiver	r;

	(void)state;
	parse_ok(&r, RECEIVER_WEBHOOK, "http://h/x");
	assert_false(receiver_wants(&r, ALERT_INFO, "p"));
	assert_true(receiver_wants(&r, ALERT_WARNING, "p"));
	assert_true(receiver_wants(&r, ALERT_CRITICAL, NULL));
	receiver_cleanup(&r);
	parse_ok(&r, RECEIVER_WEBHOOK, "http://h/x severity=info project=a,b");
	assert_true(receiver_wants(&r, ALERT_INFO, "a"));
	assert_true(receiver_wants(&r, ALERT_CRITICAL, "b"));
	assert_false(receiver_wants(&r, ALERT_CRITICAL, "c"));
	assert_false(receiver_wants(&r, ALERT_CRITICAL, NULL));
	assert_false(receiver_wants(&r, ALERT_CRITICAL, "ab"));
	receiver_cleanup(&r);
	receiver_cleanup(NULL);
	assert_string_equal(receiver_kind_name(RECEIVER_SLACK), "slack");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_alertmanager_urls),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_options),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_wants),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
