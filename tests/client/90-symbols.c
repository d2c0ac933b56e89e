/* SPDX-License-Identifier: MIT */
/*
 * The library's surface: the shared object exports gw_ functions and
 * nothing else (nm -D), every function of the header among them, and
 * has its SONAME; the static archive defines no global outside gw_;
 * gradwatch.h compiles alone (C and C++) and the usage example in its
 * top comment compiles; `make install` puts the header, both libraries,
 * gradwatch.pc and the gradwatch program under a prefix, and a program
 * built with pkg-config against them runs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gradwatch.h"
#include "gwt.h"

static const char *const api[] = {
	"gw_open", "gw_layer", "gw_layer_shape", "gw_metric", "gw_loss",
	"gw_grad_norm", "gw_lr", "gw_layer_grad", "gw_layer_weight", "gw_layer_update", "gw_layer_adam_ratio", "gw_clip",
	"gw_skipped", "gw_metric_value", "gw_step_time", "gw_health",
	"gw_alerts", "gw_dropped", "gw_run", "gw_errmsg", "gw_flush",
	"gw_close", "gw_close_status", "gw_strerror", "gw_version", "gw_sync",
};
#define NAPI	(sizeof api / sizeof api[0])

static char	top[400], build[450];

/* Run cmd; its output's lines in out (each NUL-terminated, n of them). */
static int
run_lines(const char *cmd, char lines[][128], int max, int *n)
{
	char	 line[512];
	FILE	*p;

	*n = 0;
	if ((p = popen(cmd, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof line, p) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		if (*n < max)
			snprintf(lines[(*n)++], 128, "%.127s", line);
	}
	return pclose(p);
}

static void
test_exports(void)
{
	static char	lines[4096][128];
	char		cmd[1200], sym[128], type[8], bad[128] = "";
	int		n, i, found[NAPI], nbad = 0, rc;
	size_t		k;

	memset(found, 0, sizeof found);
	snprintf(cmd, sizeof cmd, "nm -D --defined-only '%s/libgradwatch.so'",
	    build);
	rc = run_lines(cmd, lines, 4096, &n);
	if (!ok(rc == 0 && n > 0, "nm -D --defined-only libgradwatch.so"))
		return;
	for (i = 0; i < n; i++) {
		if (sscanf(lines[i], "%*s %7s %127s", type, sym) != 2)
			continue;
		if (strncmp(sym, "gw_", 3) != 0 || strncmp(sym, "gw__", 4) == 0) {
			nbad++;
			snprintf(bad, sizeof bad, "%s", sym);
		}
		for (k = 0; k < NAPI; k++)
			if (strcmp(sym, api[k]) == 0)
				found[k] = 1;
	}
	if (!ok(nbad == 0, "only gw_ symbols are exported (%d found)", n))
		diag("e.g. %s", bad);
	for (k = 0; k < NAPI; k++)
		if (!found[k])
			break;
	ok(k == NAPI, "every function of gradwatch.h is exported%s%s",
	    k < NAPI ? ": missing " : "", k < NAPI ? api[k] : "");
	is_int(n, (long long)NAPI, "and nothing more");

	snprintf(cmd, sizeof cmd, "readelf -d '%s/libgradwatch.so' | "
	    "grep SONAME", build);
	rc = run_lines(cmd, lines, 4, &n);
	ok(rc == 0 && n == 1 && strstr(lines[0], "[libgradwatch.so.0]") !=
	    NULL, "SONAME libgradwatch.so.0");

	snprintf(cmd, sizeof cmd, "nm -g --defined-only '%s/libgradwatch.a' | "
	    "awk 'NF == 3 { print $3 }'", build);
	rc = run_lines(cmd, lines, 4096, &n);
	nbad = 0;
	for (i = 0; i < n; i++)
		if (strncmp(lines[i], "gw_", 3) != 0 &&
		    strncmp(lines[i], "__odr_asan", 10) != 0) {	/* ASan's own */
			nbad++;
			snprintf(bad, sizeof bad, "%.127s", lines[i]);
		}
	if (!ok(rc == 0 && n > 0 && nbad == 0, "libgradwatch.a defines only "
	    "gw_ and gw__ globals (%d)", n))
		diag("e.g. %s", bad);
}

static void
test_header(void)
{
	char	cmd[4000], path[600], line[512];
	FILE	*h, *out;
	int	in = 0, rc;

	snprintf(cmd, sizeof cmd, "echo '#include \"gradwatch.h\"' | cc "
	    "-std=c99 -Wall -Wextra -Werror -pedantic -I'%s/client_lib/include' "
	    "-x c -fsyntax-only - 2>&1", top);
	ok(system(cmd) == 0, "gradwatch.h compiles alone as C99");
	if (system("command -v c++ > /dev/null 2>&1") == 0) {
		snprintf(cmd, sizeof cmd, "echo '#include \"gradwatch.h\"' | "
		    "c++ -Wall -Werror -I'%s/client_lib/include' -x c++ "
		    "-fsyntax-only - 2>&1", top);
		ok(system(cmd) == 0, "and as C++");
	}

	/* The example in the header's top comment, inside a function. */
	snprintf(path, sizeof path, "%s/client_lib/include/gradwatch.h", top);
	h = fopen(path, "r");
	snprintf(path, sizeof path, "%s/example.c", gwt_tmpdir());
	out = fopen(path, "w");
	if (!ok(h != NULL && out != NULL, "extract the header's example")) {
		if (h != NULL)
			fclose(h);
		if (out != NULL)
			fclose(out);
		return;
	}
	fprintf(out, "#include <stdio.h>\n#include \"gradwatch.h\"\n"
	    "struct net { struct { float grad[1]; } fc1; };\n"
	    "static double train_step(struct net *n) { (void)n; return 1; }\n"
	    "static double global_norm(struct net *n) { (void)n; return 1; }\n"
	    "static double norm2(const float *g, long n) { (void)g; (void)n; "
	    "return 1; }\n"
	    "int main(void) {\n struct net net; long step, nsteps = 3; "
	    "double loss;\n");
	while (fgets(line, sizeof line, h) != NULL) {
		if (strncmp(line, " *\tstruct gw_options", 20) == 0)
			in = 1;
		if (in && strncmp(line, " *", 2) == 0)
			fputs(line + (line[2] == '\t' ? 3 : 2), out);
		if (in && strstr(line, "gw_close(gw, 2000);") != NULL)
			break;
	}
	fprintf(out, " (void)loss;\n return 0;\n}\n");
	fclose(h);
	fclose(out);
	snprintf(cmd, sizeof cmd, "cc -std=c11 -Wall -Wextra -Werror "
	    "-I'%s/client_lib/include' -o '%s/example' '%s' -L'%s' "
	    "-Wl,-rpath,'%s' -lgradwatch 2>&1 && GRADWATCH_URL=http://"
	    "127.0.0.1:1 '%s/example' 2>&1", top, gwt_tmpdir(), path, build,
	    build, gwt_tmpdir());
	if (strcmp(build + strlen(build) - 6, "/build") != 0) {
		/* A sanitizer build's library needs its runtime: compile only. */
		snprintf(cmd, sizeof cmd, "cc -std=c11 -Wall -Wextra -Werror "
		    "-I'%s/client_lib/include' -c -o '%s/example.o' '%s' 2>&1",
		    top, gwt_tmpdir(), path);
	}
	rc = system(cmd);
	ok(in && rc == 0, "the usage example in gradwatch.h compiles (and "
	    "runs)");
}

static void
test_install(void)
{
	char		cmd[4000], prefix[600];
	const char	*b = getenv("GW_BUILD");

	if (b != NULL && strcmp(b, "build") != 0) {
		ok(1, "# SKIP make install is checked in the default build only");
		return;
	}
	snprintf(prefix, sizeof prefix, "%s/prefix", gwt_tmpdir());
	snprintf(cmd, sizeof cmd, "cd '%s' && env -u MAKEFLAGS -u MAKELEVEL "
	    "-u MFLAGS make -s install-lib PREFIX='%s' > '%s/install.log' 2>&1",
	    top, prefix, gwt_tmpdir());
	if (!ok(system(cmd) == 0, "make install-lib PREFIX=..."))
		return;
	snprintf(cmd, sizeof cmd, "test -f '%1$s/include/gradwatch.h' && "
	    "test -f '%1$s/lib/libgradwatch.a' && test -L "
	    "'%1$s/lib/libgradwatch.so' && test -f '%1$s/lib/libgradwatch.so.0' "
	    "&& test -f '%1$s/lib/pkgconfig/gradwatch.pc'", prefix);
	ok(system(cmd) == 0, "it installs the header, both libraries and "
	    "gradwatch.pc");
	snprintf(cmd, sizeof cmd, "'%s/bin/gradwatch' --version | grep -qx "
	    "'gradwatch %s'", prefix, GW_VERSION);
	ok(system(cmd) == 0, "and the gradwatch program, which runs from "
	    "there");
	snprintf(cmd, sizeof cmd, "cd '%2$s' && printf '#include <stdio.h>\\n"
	    "#include <gradwatch.h>\\nint main(void) { printf(\"%%%%s\", "
	    "gw_version()); return gw_loss(NULL, 0, 1); }\\n' > v.c && "
	    "export PKG_CONFIG_PATH='%1$s/lib/pkgconfig' && "
	    "cc -o v v.c $(pkg-config --cflags --libs gradwatch) && "
	    "LD_LIBRARY_PATH='%1$s/lib' ./v | grep -qx '%3$s' && "
	    "cc -o vs v.c $(pkg-config --cflags gradwatch) "
	    "'%1$s/lib/libgradwatch.a' $(pkg-config --libs libcurl jansson zlib) "
	    "-lm -pthread && ./vs | grep -qx '%3$s'", prefix, gwt_tmpdir(),
	    GW_VERSION);
	ok(system(cmd) == 0, "a program built with pkg-config links and runs "
	    "(and one linked with libgradwatch.a)");
}

int
main(void)
{
	const char	*t = getenv("GW_TOP"), *b = getenv("GW_BUILD");

	if (t == NULL && getcwd(top, sizeof top) == NULL)
		return 2;
	if (t != NULL)
		snprintf(top, sizeof top, "%.399s", t);
	if (b == NULL)
		b = "build";
	if (b[0] == '/')
		snprintf(build, sizeof build, "%.440s", b);
	else
		snprintf(build, sizeof build, "%.399s/%.40s", top, b);
	test_exports();
	test_header();
	test_install();
	return done_testing();
}
