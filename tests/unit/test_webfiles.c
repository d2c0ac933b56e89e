/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for webfiles: content types, the path check, the embedded
 * dashboard ("/" is index.html, uPlot under /vendor/), and a web root on
 * a scratch folder: its files win over the embedded ones, an edit is
 * seen, and "..", hidden files and symlinks out of the folder are
 * refused.
 */
#include <sys/stat.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "webfiles.h"

static char	tmpdir[64];
static char	outside[96];

static void
write_file(const char *path, const char *text)
{
	FILE	*f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* 1 if needle occurs in the len bytes at body. */
static int
contains(const char *body, size_t len, const char *needle)
{
	size_t	i, n = strlen(needle);

	for (i = 0; i + n <= len; i++)
		if (memcmp(body + i, needle, n) == 0)
			return 1;
	return 0;
}

static int
get(struct webfiles *wf, const char *path, const char **body, size_t *len,
    const char **type)
{
	const void	*b = NULL;
	int		 rc;

	rc = webfiles_get_cb(wf, path, &b, len, type);
	*body = b;
	return rc;
}

static void
test_types(void **state)
{
	(void)state;
	assert_string_equal(webfiles_type("/index.html"),
	    "text/html; charset=utf-8");
	assert_string_equal(webfiles_type("/app.js"),
	    "text/javascript; charset=utf-8");
	assert_string_equal(webfiles_type("/vendor/uPlot.min.css"),
	    "text/css; charset=utf-8");
	assert_string_equal(webfiles_type("/favicon.svg"), "image/svg+xml");
	assert_string_equal(webfiles_type("/x.bin"),
	    "application/octet-stream");
}

static void
test_safe_path(void **state)
{
	static const char *const good[] = { "/a.js", "/vendor/uPlot.esm.js",
	    "/a..b.js", "/x/y/z.css" };
	static const char *const bad[] = { "", "/", "a.js", "/../etc/passwd",
	    "/x/../../y", "/.git/config", "/x/.hidden", "//etc/passwd",
	    "/x//y", "/a\\..\\b", "/.." };
	size_t	i;

	(void)state;
	for (i = 0; i < sizeof good / sizeof good[0]; i++)
		assert_int_equal(webfiles_is_safe_path(good[i]), 1);
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(webfiles_is_safe_path(bad[i]), 0);
}

static void
test_embedded(void **state)
{
	struct webfiles	*wf;
	const char	*body, *type;
	char		*cause = NULL;
	size_t		 len;

	(void)state;
	wf = webfiles_new(NULL, &cause);
	assert_non_null(wf);
	assert_int_equal(get(wf, "/", &body, &len, &type), 0);
	assert_string_equal(type, "text/html; charset=utf-8");
	assert_true(contains(body, len, "/app.js"));
	assert_int_equal(get(wf, "/app.js", &body, &len, &type), 0);
	assert_string_equal(type, "text/javascript; charset=utf-8");
	assert_int_equal(get(wf, "/vendor/uPlot.esm.js", &body, &len, &type),
	    0);
	assert_true(len > 10000);
	assert_true(contains(body, len, "export"));
	assert_int_equal(get(wf, "/vendor/uPlot.min.css", &body, &len, &type),
	    0);
	assert_int_equal(get(wf, "/nope.js", &body, &len, &type), -1);
	assert_int_equal(get(wf, "/../index.html", &body, &len, &type), -1);
	webfiles_free(wf);
}

static void
test_root(void **state)
{
	struct webfiles	*wf;
	const char	*body, *type, *first;
	char		*cause = NULL, path[160], link[160];
	size_t		 len;

	(void)state;
	snprintf(path, sizeof path, "%s/index.html", tmpdir);
	write_file(path, "<p>dev</p>");
	snprintf(path, sizeof path, "%s/sub", tmpdir);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof path, "%s/sub/x.css", tmpdir);
	write_file(path, "a{}");
	snprintf(path, sizeof path, "%s/.secret", tmpdir);
	write_file(path, "no");
	write_file(outside, "outside");
	snprintf(link, sizeof link, "%s/out.js", tmpdir);
	assert_int_equal(symlink(outside, link), 0);

	assert_null(webfiles_new("/nonexistent/gw", &cause));
	assert_non_null(cause);
	free(cause);
	cause = NULL;
	wf = webfiles_new(tmpdir, &cause);
	assert_non_null(wf);

	assert_int_equal(get(wf, "/", &body, &len, &type), 0);
	assert_int_equal(len, 10);
	assert_memory_equal(body, "<p>dev</p>", 10);
	first = body;
	assert_int_equal(get(wf, "/index.html", &body, &len, &type), 0);
	assert_ptr_equal(body, first);		/* unchanged: the kept copy */
	assert_int_equal(get(wf, "/sub/x.css", &body, &len, &type), 0);
	assert_string_equal(type, "text/css; charset=utf-8");
	assert_memory_equal(body, "a{}", 3);
	/* Not in the root: the embedded copy. */
	assert_int_equal(get(wf, "/vendor/uPlot.esm.js", &body, &len, &type),
	    0);
	assert_true(len > 10000);
	/* Refused. */
	assert_int_equal(get(wf, "/.secret", &body, &len, &type), -1);
	assert_int_equal(get(wf, "/out.js", &body, &len, &type), -1);
	assert_int_equal(get(wf, "/../index.html", &body, &len, &type), -1);
	assert_int_equal(get(wf, "/sub/../../etc/passwd", &body, &len, &type),
	    -1);
	assert_int_equal(get(wf, "/sub", &body, &len, &type), -1);
	/* An edit is seen; the old copy stays valid for a send in flight. */
	snprintf(path, sizeof path, "%s/index.html", tmpdir);
	write_file(path, "<p>edited</p>");
	assert_int_equal(get(wf, "/index.html", &body, &len, &type), 0);
	assert_int_equal(len, 13);
	assert_memory_equal(body, "<p>edited</p>", 13);
	assert_memory_equal(first, "<p>dev</p>", 10);
	webfiles_free(wf);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_types),
		cmocka_unit_test(test_safe_path),
		cmocka_unit_test(test_embedded),
		cmocka_unit_test(test_root),
	};
	char	cmd[256];
	int	rc;

	snprintf(tmpdir, sizeof tmpdir, "/tmp/gw-webfiles.XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return 1;
	snprintf(outside, sizeof outside, "%s.outside", tmpdir);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s'", tmpdir, outside);
	if (system(cmd) != 0)
		rc = 1;
	return rc;
}
