/* SPDX-License-Identifier: MIT */
/*
 * The wire rules both sides share (client_lib/wire.h) and the daemon's
 * JSON forms of them (wire_json.c): the run key's rule at its limits,
 * the non-finite strings both ways, the class of a number and back,
 * the error body (non-UTF-8 made safe) and the one table from an error
 * code to its HTTP status.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "wire.h"
#include "wire_json.h"

static void
test_run_key(void **state)
{
	char	key[WIRE_RUN_KEY_MAX + 2];

	(void)state;
	assert_true(wire_is_run_key("a"));
	assert_false(wire_is_run_key("lr=3"));
	assert_true(wire_is_run_key("job-7.rank_0:A"));
	assert_false(wire_is_run_key(""));
	assert_false(wire_is_run_key(NULL));
	assert_false(wire_is_run_key("a b"));
	assert_false(wire_is_run_key("a/b"));
	assert_false(wire_is_run_key("caf\xc3\xa9"));
	memset(key, 'k', WIRE_RUN_KEY_MAX);
	key[WIRE_RUN_KEY_MAX] = '\0';
	assert_true(wire_is_run_key(key));
	key[WIRE_RUN_KEY_MAX] = 'k';
	key[WIRE_RUN_KEY_MAX + 1] = '\0';
	assert_false(wire_is_run_key(key));
	/* A counted key: the bytes after len do not matter. */
	assert_true(wire_run_key_ok("ab cd", 2));
	assert_false(wire_run_key_ok("ab cd", 3));
	assert_false(wire_run_key_ok("ab", 0));
}

static void
test_nonfinite(void **state)
{
	double	d = 0;

	(void)state;
	assert_string_equal(wire_nonfinite_str(NAN), "NaN");
	assert_string_equal(wire_nonfinite_str(INFINITY), "Infinity");
	assert_string_equal(wire_nonfinite_str(-INFINITY), "-Infinity");
	assert_null(wire_nonfinite_str(1.5));
	assert_null(wire_nonfinite_str(0.0));

	assert_true(wire_nonfinite_parse("NaN", 3, &d));
	assert_true(isnan(d));
	assert_true(wire_nonfinite_parse("Infinity", 8, &d));
	assert_true(isinf(d) && d > 0);
	assert_true(wire_nonfinite_parse("-Infinity", 9, &d));
	assert_true(isinf(d) && d < 0);
	d = 7;
	assert_false(wire_nonfinite_parse("nan", 3, &d));
	assert_false(wire_nonfinite_parse("inf", 3, &d));
	assert_false(wire_nonfinite_parse("NaNx", 4, &d));
	assert_false(wire_nonfinite_parse("NaN", 2, &d));
	assert_true(d == 7);	/* untouched on a miss */
}

static void
test_class(void **state)
{
	const double	vals[] = { 0.0, -2.5, 1e300, NAN, INFINITY, -INFINITY };
	size_t		i;
	double		back;

	(void)state;
	assert_int_equal(wire_class(1.0), WIRE_FINITE);
	assert_int_equal(wire_class(NAN), WIRE_NAN);
	assert_int_equal(wire_class(INFINITY), WIRE_PINF);
	assert_int_equal(wire_class(-INFINITY), WIRE_NINF);
	for (i = 0; i < sizeof vals / sizeof vals[0]; i++) {
		/* A stored REAL is NULL (read as 0) for the non-finite. */
		back = wire_class_value(wire_class(vals[i]),
		    isfinite(vals[i]) ? vals[i] : 0);
		if (isnan(vals[i]))
			assert_true(isnan(back));
		else
			assert_true(back == vals[i]);
	}
}

static void
test_number(void **state)
{
	json_t	*j;

	(void)state;
	j = wire_json_number(NAN);
	assert_string_equal(json_string_value(j), "NaN");
	json_decref(j);
	j = wire_json_number(-INFINITY);
	assert_string_equal(json_string_value(j), "-Infinity");
	json_decref(j);
	j = wire_json_number(0.1);
	assert_true(json_is_real(j) && json_real_value(j) == 0.1);
	json_decref(j);
}

static void
test_error_body(void **state)
{
	json_t	*j;
	char	*s;

	(void)state;
	s = wire_error_body("bad_request", "run: want a key, not \"x y\"");
	j = json_loads(s, 0, NULL);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "error")),
	    "bad_request");
	assert_string_equal(json_string_value(json_object_get(j, "message")),
	    "run: want a key, not \"x y\"");
	assert_int_equal(json_object_size(j), 2);
	json_decref(j);
	free(s);
	/* Bytes that are not UTF-8 become '?', so the body stays JSON. */
	s = wire_error_body("bad_json", "no such series \xff\xfe.");
	j = json_loads(s, 0, NULL);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "message")),
	    "no such series ??.");
	json_decref(j);
	free(s);
}

static void
test_status(void **state)
{
	(void)state;
	assert_int_equal(wire_status("bad_json"), 400);
	assert_int_equal(wire_status("bad_request"), 400);
	assert_int_equal(wire_status("unauthorized"), 401);
	assert_int_equal(wire_status("not_found"), 404);
	assert_int_equal(wire_status("too_large"), 413);
	assert_int_equal(wire_status("overloaded"), 503);
	assert_int_equal(wire_status("internal"), 500);
	assert_int_equal(wire_status("something new"), 500);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_run_key),
		cmocka_unit_test(test_nonfinite),
		cmocka_unit_test(test_class),
		cmocka_unit_test(test_number),
		cmocka_unit_test(test_error_body),
		cmocka_unit_test(test_status),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
