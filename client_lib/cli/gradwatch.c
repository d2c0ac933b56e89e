/* SPDX-License-Identifier: MIT */
/*
 * gradwatch: the command-line companion of libgradwatch.  `gradwatch sync`
 * sends the spool files that training programs left behind (the daemon
 * was away until they ended) to the daemon, through gw_sync(), and says
 * what it sent.  One thread; it exits 0 only when everything went.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gradwatch.h"

#define SYNC_TIMEOUT_S	60

static void
usage(FILE *f)
{
	fprintf(f,
"usage: gradwatch [-hV] sync [-q] [-t seconds] [--url url] [--token token]\n"
"                 [--token-file file] [file|dir ...]\n"
"\n"
"gradwatch sync sends spool files to gradwatchd: each file's records in\n"
"order, each until the daemon takes it (retrying while it is down or\n"
"busy), removing each file once all of it was taken.  A directory stands\n"
"for its *.gwspool files, oldest first; without a path, $GRADWATCH_SPOOL.\n"
"A file a running program is writing is left alone.  Exits 0 only if\n"
"everything went.\n"
"\n"
"  -h, --help          show this help\n"
"  -V, --version       print the version\n"
"  -q, --quiet         say only what went wrong\n"
"  -t, --timeout secs  give up after this long, retries included (default %d)\n"
"  --url url           the daemon (default $GRADWATCH_URL, else\n"
"                      http://127.0.0.1:7070)\n"
"  --token token       its bearer token (default $GRADWATCH_TOKEN)\n"
"  --token-file file   read the token from the file's first line\n",
	    SYNC_TIMEOUT_S);
}

/* The first line of path, allocated; NULL (and said) on failure. */
static char *
read_token(const char *path)
{
	char	*line = NULL;
	size_t	 cap = 0;
	ssize_t	 n;
	FILE	*f;

	if ((f = fopen(path, "r")) == NULL) {
		perror(path);
		return NULL;
	}
	n = getline(&line, &cap, f);
	fclose(f);
	if (n <= 0) {
		fprintf(stderr, "gradwatch: %s: no token in it\n", path);
		free(line);
		return NULL;
	}
	line[strcspn(line, "\r\n")] = '\0';
	return line;
}

/* gw_sync's lines: progress to stdout, problems to stderr. */
static void
say_cb(void *arg, const char *line)
{
	int	quiet = *(int *)arg;
	int	good = strstr(line, "; removed") != NULL;

	if (good && quiet)
		return;
	fprintf(good ? stdout : stderr, "gradwatch: %s\n", line);
}

static int
cmd_sync(int argc, char **argv)
{
	static const struct option	 longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "timeout", required_argument, NULL, 't' },
		{ "url", required_argument, NULL, 1 },
		{ "token", required_argument, NULL, 2 },
		{ "token-file", required_argument, NULL, 3 },
		{ NULL, 0, NULL, 0 }
	};
	struct gw_options	 opt = { 0 };
	struct gw_sync_stats	 st, sum = { 0 };
	char			*token = NULL, *end, *env[2] = { NULL, NULL };
	double			 secs = SYNC_TIMEOUT_S, left;
	int			 ch, i, rc, status = 0, quiet = 0, timeout_ms;
	unsigned long long	 start, now;
	struct timespec		 ts;

	while ((ch = getopt_long(argc, argv, "hqt:", longopts, NULL)) != -1) {
		switch (ch) {
		case 'h':
			usage(stdout);
			free(token);
			return 0;
		case 'q':
			quiet = 1;
			break;
		case 't':
			secs = strtod(optarg, &end);
			if (end == optarg || *end != '\0' || !(secs > 0) ||
			    secs > 2e6) {
				fprintf(stderr, "gradwatch: --timeout: expected "
				    "seconds, got '%s'\n", optarg);
				free(token);
				return 2;
			}
			break;
		case 1:
			opt.url = optarg;
			break;
		case 2:
		case 3:
			free(token);
			token = ch == 2 ? strdup(optarg) : read_token(optarg);
			if (token == NULL)
				return 2;
			opt.token = token;
			break;
		default:
			usage(stderr);
			free(token);
			return 2;
		}
	}
	if (optind == argc) {
		/* No path: the spool directory programs use by default. */
		env[0] = getenv("GRADWATCH_SPOOL");
		if (env[0] == NULL || env[0][0] == '\0') {
			fprintf(stderr, "gradwatch: sync: no path given and "
			    "$GRADWATCH_SPOOL is not set\n");
			free(token);
			return 2;
		}
		argv = env;
		argc = 1;
		optind = 0;
	}
	clock_gettime(CLOCK_MONOTONIC, &ts);
	start = (unsigned long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	for (i = optind; i < argc; i++) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		now = (unsigned long long)ts.tv_sec * 1000 +
		    ts.tv_nsec / 1000000;
		left = secs * 1000 - (double)(now - start);
		timeout_ms = left < 1 ? 1 : (int)left;
		rc = gw_sync(argv[i], &opt, timeout_ms, &st, say_cb, &quiet);
		sum.files += st.files;
		sum.files_done += st.files_done;
		sum.records += st.records;
		sum.values += st.values;
		sum.refused += st.refused;
		sum.damaged_bytes += st.damaged_bytes;
		if (rc != GW_OK)
			status = 1;	/* gw_sync said why, through say_cb */
	}
	if (!quiet || status != 0)
		printf("gradwatch: sent %llu records (%llu values); %u of %u "
		    "files done%s\n", (unsigned long long)sum.records,
		    (unsigned long long)sum.values, sum.files_done, sum.files,
		    status != 0 ? "; not everything went" : "");
	if (token != NULL)
		memset(token, 0, strlen(token));
	free(token);
	return status;
}

int
main(int argc, char **argv)
{
	static const struct option	 longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	int				 ch;

	/* Options before the command are the program's own. */
	while ((ch = getopt_long(argc, argv, "+hV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("gradwatch %s\n", gw_version());
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc && strcmp(argv[optind], "sync") == 0) {
		argc -= optind;
		argv += optind;
		optind = 1;
		return cmd_sync(argc, argv);
	}
	if (optind < argc)
		fprintf(stderr, "gradwatch: unknown command '%s'\n",
		    argv[optind]);
	usage(stderr);
	return 2;
}
