/* SPDX-License-Identifier: MIT */
/*
 * test_runmeta: the body of PATCH /api/v1/runs/{run}: what is stored for
 * good bodies, and that every bad one is refused with the right code, a
 * cause that names the fault, and nothing filled in.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "runmeta.h"

/* Parse body; 0 or -1 as runmeta_parse, with code and cause kept. */
static int
parse(const char *body, struct runmeta *m, const char **code, char **cause)
{
	*code = NULL;
	*cause = NULL;
	memset(m, 0, sizeof *m);
	return runmeta_parse(body, strlen(body), m, code, cause);
}

static void
good(const char *body, const char *tags, const char *note)
{
	struct runmeta	 m;
	const char	*code;
	char		*cause;

	assert_int_equal(parse(body, &m, &code, &cause), 0);
	assert_null(cause);
	if (tags == NULL)
		assert_null(m.tags);
	else
		assert_string_equal(m.tags, tags);
	if (note == NULL)
		assert_null(m.note);
	else
		assert_string_equal(m.note, note);
	runmeta_cleanup(&m);
	assert_null(m.tags);
	assert_null(m.note);
}

static void
bad(const char *body, const char *want_code, const char *fragment)
{
	struct runmeta	 m;
	const char	*code;
	char		*cause;

	assert_int_equal(parse(body, &m, &code, &cause), -1);
	assert_non_null(code);
	assert_string_equal(code, want_code);
	assert_non_null(cause);
	if (strstr(cause, fragment) == NULL)
		fail_msg("cause \"%s\" does not name \"%s\"", cause, fragment);
	assert_null(m.tags);
	assert_null(m.note);
	free(cause);
}

static void
test_good(void **state)
{
	(void)state;
	good("{\"tags\": [\"a\", \"b c\"], \"note\": \"x\\ny\"}",
	    "[\"a\",\"b c\"]", "x\ny");
	good("{\"tags\": [\"only\"]}", "[\"only\"]", NULL);
	good("{\"note\": \"\\u00e9t\\u00e9\"}", NULL, "\xc3\xa9t\xc3\xa9");
	good("{\"tags\": [], \"note\": \"\"}", "[]", "");
	good("{\"tags\": null, \"note\": null}", "[]", "");
}

static void
test_limits(void **state)
{
	char	body[8192], note[RUNMETA_NOTE_BYTES + 1], *p;
	int	i;

	(void)state;
	/* 32 tags of 64 bytes: taken; 33, or one of 65 bytes: not. */
	p = body + sprintf(body, "{\"tags\": [");
	for (i = 0; i < RUNMETA_TAGS_MAX; i++)
		p += sprintf(p, "%s\"%02d%062d\"", i ? "," : "", i, 0);
	sprintf(p, "]}");
	{
		struct runmeta	 m;
		const char	*code;
		char		*cause;

		assert_int_equal(parse(body, &m, &code, &cause), 0);
		runmeta_cleanup(&m);
	}
	sprintf(p, ",\"extra\"]}");
	bad(body, "bad_request", "33 tags, over the limit of 32");
	sprintf(body, "{\"tags\": [\"%065d\"]}", 0);
	bad(body, "bad_request", "tags[0]: expected 1 to 64 bytes, got 65");
	/* A note of 4096 bytes: taken; 4097: not. */
	memset(note, 'n', RUNMETA_NOTE_BYTES);
	note[RUNMETA_NOTE_BYTES] = '\0';
	sprintf(body, "{\"note\": \"%s\"}", note);
	good(body, NULL, note);
	sprintf(body, "{\"note\": \"%sn\"}", note);
	bad(body, "bad_request", "4097 bytes, over the limit of 4096");
}

static void
test_bad(void **state)
{
	(void)state;
	bad("", "bad_json", "invalid JSON");
	bad("{\"tags\": [", "bad_json", "invalid JSON");
	bad("{\"note\": \"a\", \"note\": \"b\"}", "bad_json", "duplicate");
	bad("[\"a\"]", "bad_request", "object");
	bad("{}", "bad_request", "\"tags\", \"note\" or both");
	bad("{\"tags\": [\"a\"], \"colour\": 1}", "bad_request", "colour");
	bad("{\"tags\": \"a,b\"}", "bad_request", "tags: expected an array");
	bad("{\"tags\": [\"a\", 1]}", "bad_request", "tags[1]: expected a string");
	bad("{\"tags\": [\"\"]}", "bad_request", "tags[0]: expected 1 to 64");
	bad("{\"tags\": [\"a\", \"b\", \"a\"]}", "bad_request",
	    "tags[2]: the same tag as tags[0]");
	bad("{\"tags\": [\"a\\tb\"]}", "bad_request", "control");
	bad("{\"tags\": [\"a\\u007fb\"]}", "bad_request", "control");
	bad("{\"note\": 5}", "bad_request", "note: expected a string");
	bad("{\"note\": \"a\\u0000b\"}", "bad_json", "invalid JSON");
	bad("{\"tags\": [\"ok\"], \"note\": []}", "bad_request", "note");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_bad),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
