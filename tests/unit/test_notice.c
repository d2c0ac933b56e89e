/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of notice.c: the webhook notice, its dashboard link, the
 * Slack text (with Slack's escapes) and Alertmanager's postable alerts
 * for a fire, a severity change and a resolve.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "notice.h"

#define NOW	1764061200.25	/* 2025-11-25T09:00:00.250Z */

static json_t *
alert(const char *state, const char *severity)
{
	json_t	*a;

	a = json_pack("{s:i, s:s, s:s, s:s, s:s, s:s, s:i, s:i, s:f, s:s,"
	    " s:f, s:n, s:s}",
	    "id", 7, "run", "gpt-small", "kind", "grad_explosion",
	    "severity", severity, "state", state, "series", "h.0.attn<q>&k",
	    "onset_step", 900, "fire_step", 910, "fired_at", NOW - 60,
	    "value", "Infinity", "baseline", 1.5, "threshold",
	    "message", "gradient norm 1000x its baseline");
	if (strcmp(state, "resolved") == 0) {
		json_object_set_new(a, "resolve_step", json_integer(1000));
		json_object_set_new(a, "resolved_at", json_real(NOW - 5));
	} else {
		json_object_set_new(a, "resolve_step", json_null());
		json_object_set_new(a, "resolved_at", json_null());
	}
	return a;
}

static json_t *
run(void)
{
	return json_pack("{s:s, s:s, s:s, s:{s:i}}", "run", "gpt-small",
	    "project", "lm", "status", "running", "meta", "layers", 3);
}

static json_t *
make(enum notice_change change, const char *state, const char *sev,
    const char *prev)
{
	struct notice_head	h = { "abcd", 7, 3, change, prev,
				    "http://gw.example:7070/", NOW };

	return notice_new(&h, alert(state, sev), run());
}

static void
test_webhook_notice(void **state)
{
	json_t	*n;

	(void)state;
	n = make(NOTICE_FIRED, "firing", "warning", NULL);
	assert_int_equal(json_integer_value(json_object_get(n, "version")), 1);
	assert_string_equal(json_string_value(json_object_get(n, "id")), "abcd-7");
	assert_int_equal(json_integer_value(json_object_get(n, "seq")), 3);
	assert_string_equal(json_string_value(json_object_get(n, "status")), "firing");
	assert_string_equal(json_string_value(json_object_get(n, "change")), "fired");
	assert_null(json_object_get(n, "previous_severity"));
	assert_null(json_object_get(json_object_get(n, "run"), "meta"));
	assert_string_equal(json_string_value(json_object_get(json_object_get(n,
	    "alert"), "kind")), "grad_explosion");
	/* From onset 900 to fire 910, padded by at least 20 steps. */
	assert_string_equal(json_string_value(json_object_get(n, "dashboard")),
	    "http://gw.example:7070/#/run/gpt-small?from=880&to=930");
	json_decref(n);
	n = make(NOTICE_RESOLVED, "resolved", "critical", NULL);
	assert_string_equal(json_string_value(json_object_get(n, "status")),
	    "resolved");
	/* 900..1000: padded by half the span. */
	assert_string_equal(json_string_value(json_object_get(n, "dashboard")),
	    "http://gw.example:7070/#/run/gpt-small?from=850&to=1050");
	json_decref(n);
	n = make(NOTICE_SEVERITY, "firing", "critical", "warning");
	assert_string_equal(json_string_value(json_object_get(n,
	    "previous_severity")), "warning");
	json_decref(n);
}

static void
test_slack(void **state)
{
	json_t		*n, *o;
	const char	*text;
	char		*s;

	(void)state;
	n = make(NOTICE_SEVERITY, "firing", "critical", "warning");
	s = notice_slack(n);
	o = json_loads(s, 0, NULL);
	assert_non_null(o);
	text = json_string_value(json_object_get(o, "text"));
	assert_non_null(strstr(text, ":rotating_light: *CRITICAL* `grad_explosion`"
	    " in run *gpt-small* (project lm), layer `h.0.attn&lt;q&gt;&amp;k`"
	    " (was warning)"));
	assert_non_null(strstr(text, "gradient norm 1000x its baseline"));
	assert_non_null(strstr(text, "Onset at step 900, fired at step 910"));
	assert_non_null(strstr(text, "<http://gw.example:7070/#/run/gpt-small?"
	    "from=880&to=930|open the run>"));
	assert_string_equal(json_string_value(json_object_get(json_object_get(
	    json_array_get(json_object_get(o, "blocks"), 0), "text"), "text")),
	    text);
	json_decref(o);
	free(s);
	json_decref(n);
	n = make(NOTICE_RESOLVED, "resolved", "warning", NULL);
	s = notice_slack(n);
	assert_non_null(strstr(s, ":white_check_mark: *RESOLVED*"));
	assert_non_null(strstr(s, "Resolved at step 1000"));
	free(s);
	json_decref(n);
}

static json_t *
am_one(json_t *arr, size_t i, const char *key)
{
	return json_object_get(json_array_get(arr, i), key);
}

static void
test_alertmanager(void **state)
{
	json_t	*n, *arr, *l;

	(void)state;
	arr = json_array();
	n = make(NOTICE_FIRED, "firing", "warning", NULL);
	notice_alertmanager(arr, n, NOW, 240);
	assert_int_equal(json_array_size(arr), 1);
	l = am_one(arr, 0, "labels");
	assert_string_equal(json_string_value(json_object_get(l, "alertname")),
	    "gradwatch_grad_explosion");
	assert_string_equal(json_string_value(json_object_get(l, "run")), "gpt-small");
	assert_string_equal(json_string_value(json_object_get(l, "project")), "lm");
	assert_string_equal(json_string_value(json_object_get(l, "kind")),
	    "grad_explosion");
	assert_string_equal(json_string_value(json_object_get(l, "severity")),
	    "warning");
	assert_string_equal(json_string_value(json_object_get(l, "series")),
	    "h.0.attn<q>&k");
	assert_string_equal(json_string_value(json_object_get(am_one(arr, 0,
	    "annotations"), "summary")), "gradient norm 1000x its baseline");
	assert_non_null(strstr(json_string_value(json_object_get(am_one(arr, 0,
	    "annotations"), "description")), "Value Infinity, baseline 1.5, "
	    "threshold none"));
	assert_string_equal(json_string_value(am_one(arr, 0, "startsAt")),
	    "2025-11-25T08:59:00.250Z");
	assert_string_equal(json_string_value(am_one(arr, 0, "endsAt")),
	    "2025-11-25T09:04:00.250Z");
	json_decref(n);
	json_array_clear(arr);

	/* A severity change ends the old label set at the change. */
	n = make(NOTICE_SEVERITY, "firing", "critical", "warning");
	notice_alertmanager(arr, n, NOW + 10, 240);
	assert_int_equal(json_array_size(arr), 2);
	assert_string_equal(json_string_value(json_object_get(am_one(arr, 0,
	    "labels"), "severity")), "warning");
	assert_string_equal(json_string_value(am_one(arr, 0, "endsAt")),
	    "2025-11-25T09:00:00.250Z");
	assert_string_equal(json_string_value(json_object_get(am_one(arr, 1,
	    "labels"), "severity")), "critical");
	json_decref(n);
	json_array_clear(arr);

	n = make(NOTICE_RESOLVED, "resolved", "critical", NULL);
	notice_alertmanager(arr, n, NOW + 100, 240);
	assert_int_equal(json_array_size(arr), 1);
	assert_string_equal(json_string_value(am_one(arr, 0, "endsAt")),
	    "2025-11-25T08:59:55.250Z");
	json_decref(n);
	json_decref(arr);
}

static void
test_rfc3339(void **state)
{
	char	buf[32];

	(void)state;
	notice_rfc3339(0, buf);
	assert_string_equal(buf, "1970-01-01T00:00:00.000Z");
	notice_rfc3339(951782400.999, buf);	/* a leap day */
	assert_string_equal(buf, "2000-02-29T00:00:00.999Z");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_webhook_notice),
		cmocka_unit_test(test_slack),
		cmocka_unit_test(test_alertmanager),
		cmocka_unit_test(test_rfc3339),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
