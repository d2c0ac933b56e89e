/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for auth: the token comparison and the bearer header, the
 * host[:port] split, the names a browser may reach us by, and the
 * origins a page may come from (same host name as Host, the HTTP port,
 * never a name we do not know: DNS rebinding).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "auth.h"
#include "config.h"

static struct config	cfg;
static char		http_host[] = "127.0.0.1", ws_host[] = "gw.example";

static void
setup_cfg(void)
{
	memset(&cfg, 0, sizeof cfg);
	cfg.http_host = http_host;
	cfg.ws_host = ws_host;
	cfg.http_port = 8080;
}

static void
test_token(void **state)
{
	(void)state;
	assert_true(auth_token_equal("s3cret", "s3cret"));
	assert_false(auth_token_equal("s3cre", "s3cret"));
	assert_false(auth_token_equal("s3crett", "s3cret"));
	assert_false(auth_token_equal("", "s3cret"));
	assert_false(auth_token_equal("S3cret", "s3cret"));
	assert_true(auth_bearer_ok(NULL, NULL));
	assert_true(auth_bearer_ok("anything", NULL));
	assert_true(auth_bearer_ok("Bearer s3cret", "s3cret"));
	assert_false(auth_bearer_ok(NULL, "s3cret"));
	assert_false(auth_bearer_ok("s3cret", "s3cret"));
	assert_false(auth_bearer_ok("Basic s3cret", "s3cret"));
	assert_false(auth_bearer_ok("Bearer s3cret ", "s3cret"));
	assert_false(auth_bearer_ok("bearer s3cret", "s3cret"));
}

static void
test_hostport(void **state)
{
	char	h[64];
	long	port;

	(void)state;
	assert_int_equal(auth_split_hostport("a.b:81", h, sizeof h, &port), 0);
	assert_string_equal(h, "a.b");
	assert_int_equal(port, 81);
	assert_int_equal(auth_split_hostport("a.b", h, sizeof h, &port), 0);
	assert_int_equal(port, 0);
	assert_int_equal(auth_split_hostport("[::1]:9", h, sizeof h, &port), 0);
	assert_string_equal(h, "::1");
	assert_int_equal(port, 9);
	assert_int_equal(auth_split_hostport("[::1]", h, sizeof h, &port), 0);
	assert_int_equal(auth_split_hostport("[::1", h, sizeof h, &port), -1);
	assert_int_equal(auth_split_hostport("[::1]x", h, sizeof h, &port), -1);
	assert_int_equal(auth_split_hostport(":80", h, sizeof h, &port), -1);
	assert_int_equal(auth_split_hostport("a:0", h, sizeof h, &port), -1);
	assert_int_equal(auth_split_hostport("a:65536", h, sizeof h, &port), -1);
	assert_int_equal(auth_split_hostport("a:8x", h, sizeof h, &port), -1);
	assert_int_equal(auth_split_hostport(
	    "a-very-long-name-that-does-not-fit-in-sixty-four-bytes-at-all.example",
	    h, sizeof h, &port), -1);
}

static void
test_host_names(void **state)
{
	(void)state;
	setup_cfg();
	assert_true(auth_host_name_ok("localhost", &cfg));
	assert_true(auth_host_name_ok("LOCALHOST", &cfg));
	assert_true(auth_host_name_ok("127.0.0.1", &cfg));
	assert_true(auth_host_name_ok("10.1.2.3", &cfg));
	assert_true(auth_host_name_ok("::1", &cfg));
	assert_true(auth_host_name_ok("gw.example", &cfg));
	assert_false(auth_host_name_ok("evil.example", &cfg));
	assert_false(auth_host_name_ok("127.0.0.1.evil.example", &cfg));
}

static void
test_origins(void **state)
{
	(void)state;
	setup_cfg();
	assert_true(auth_origin_ok(NULL, NULL, &cfg));
	assert_true(auth_origin_ok("http://127.0.0.1:8080", "127.0.0.1:8080",
	    &cfg));
	assert_true(auth_origin_ok("http://localhost:8080", "localhost:8081",
	    &cfg));
	assert_true(auth_origin_ok("http://[::1]:8080", "[::1]:8081", &cfg));
	/* another site */
	assert_false(auth_origin_ok("http://evil.example", "127.0.0.1:8080",
	    &cfg));
	/* a rebound name: Host and Origin agree, but the name is not ours */
	assert_false(auth_origin_ok("http://evil.example:8080",
	    "evil.example:8080", &cfg));
	/* another port of ours, another scheme's default port */
	assert_false(auth_origin_ok("http://127.0.0.1:9999", "127.0.0.1:8080",
	    &cfg));
	assert_false(auth_origin_ok("https://127.0.0.1", "127.0.0.1:8080",
	    &cfg));
	assert_false(auth_origin_ok("null", "127.0.0.1:8080", &cfg));
	assert_false(auth_origin_ok("http://127.0.0.1:8080", NULL, &cfg));
	assert_false(auth_origin_ok("ftp://127.0.0.1:8080", "127.0.0.1:8080",
	    &cfg));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_token),
		cmocka_unit_test(test_hostport),
		cmocka_unit_test(test_host_names),
		cmocka_unit_test(test_origins),
	};

	return cmocka_run_group_tests_name("auth", tests, NULL, NULL);
}
