/* SPDX-License-Identifier: MIT */
/*
 * gradwatchd: start-up, the wait for a signal, and shutdown in reverse
 * order.  Signals are blocked before any thread starts and the main
 * thread takes them with sigwait(), so no other thread is interrupted.
 */
#include <sys/resource.h>

#include <curl/curl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "detector.h"
#include "http_api.h"
#include "jsonarena.h"
#include "log.h"
#include "notify.h"
#include "remote.h"
#include "store.h"
#include "webfiles.h"
#include "writer.h"
#include "ws_stream.h"
#include "xmalloc.h"

#define GRADWATCHD_VERSION	"0.1.0"
#define MAIN_NOFILE		65536	/* descriptors we ask for */
#define SHUTDOWN_ANSWER_MS	1500	/* of the 2 s a shutdown may take */

static void
usage(FILE *f)
{
	fprintf(f,
"usage: gradwatchd [-hnvV] [-c file] [--http addr:port] [--ws addr:port]\n"
"                  [--db file] [--token-file file] [--web-root dir]\n"
"                  [--alertmanager url] [--webhook url] [--slack-webhook url]\n"
"                  [--external-url url] [--allow-host name]\n"
"                  [--remote-write url]\n"
"\n"
"gradwatchd takes training metrics over HTTP, stores them in SQLite,\n"
"watches them for failing training and serves the dashboard.\n"
"\n"
"  -c file             read directives from file (flags override it)\n"
"  -n                  check the configuration and exit\n"
"  -v                  log debug messages\n"
"  -h, --help          show this help\n"
"  -V, --version       print the version\n"
"  --http addr:port    HTTP API and dashboard (default 127.0.0.1:7070)\n"
"  --ws addr:port      WebSocket stream (default: HTTP port + 1)\n"
"  --db file           SQLite database (default ./gradwatch.db)\n"
"  --token-file file   require 'Authorization: Bearer <token>'\n"
"  --web-root dir      serve the dashboard from dir (development)\n"
"  --allow-remote      listen beyond loopback without a token\n"
"  --alertmanager url  post alerts to this Alertmanager (repeatable)\n"
"  --webhook url       post a JSON notice of every alert change (repeatable)\n"
"  --slack-webhook url post alert changes to a Slack incoming webhook\n"
"  --external-url url  the dashboard's address in notices' links (its host\n"
"                      may be used by browsers, like --allow-host)\n"
"  --allow-host name   a host name browsers may use to reach us, beside\n"
"                      addresses, localhost and --http's (repeatable)\n"
"  --remote-write url  send every stored point there, as Prometheus\n"
"                      remote-write (repeatable)\n"
"\n"
"A receiver's URL may be followed by options, in the same argument:\n"
"severity=info|warning|critical (the least it hears of; default warning),\n"
"project=a,b (only these projects), name=NAME (in /metrics),\n"
"bearer-file=FILE (send its first line as a bearer token).\n"
"A remote-write URL may be followed by name=NAME, bearer-file=FILE,\n"
"user=NAME with password-file=FILE, header=Name:value (repeatable) and\n"
"layer-every=N (layer series only every Nth step).\n"
"\n"
"Configuration file directives (one 'directive value' per line):\n%s"
"\n"
"Detector thresholds, as 'detector.<name> value' lines (a run may override\n"
"them in its meta as {\"detector\": {\"<name>\": value}}):\n%s",
	    config_directives_help(), detector_config_help());
}

/*
 * Raise the soft descriptor limit to the hard one (up to MAIN_NOFILE):
 * the HTTP connection cap is kept below it.
 */
static void
main_raise_nofile(void)
{
	struct rlimit	rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		return;
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < MAIN_NOFILE &&
	    rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max < MAIN_NOFILE ? rl.rlim_max :
		    MAIN_NOFILE;
		if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
			log_warn("setrlimit RLIMIT_NOFILE");
	}
}

/* A flag and the directive it sets. */
struct main_flag {
	const char	*directive;
	const char	*value;
};

/* What the HTTP hooks reach: the stream and the dashboard's files. */
struct main_parts {
	struct ws_stream	*ws;
	struct webfiles		*wf;
	struct notify		*notify;	/* NULL: no receivers */
	struct remote		*remote;	/* NULL: no remote-write */
};

static size_t
main_stream_clients(void *arg)
{
	struct main_parts	*p = arg;

	return ws_stream_clients(p->ws);
}

static char *
main_extra_metrics(void *arg)
{
	struct main_parts	*p = arg;

	char			*a, *b, *both;

	a = notify_metrics(p->notify);
	b = remote_metrics(p->remote);
	xasprintf(&both, "%s%s", a, b);
	free(a);
	free(b);
	return both;
}

static int
main_static_file(void *arg, const char *path, const void **body,
    size_t *len, const char **type)
{
	struct main_parts	*p = arg;

	return webfiles_get_cb(p->wf, path, body, len, type);
}

int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "http", required_argument, NULL, 1 },
		{ "ws", required_argument, NULL, 2 },
		{ "db", required_argument, NULL, 3 },
		{ "token-file", required_argument, NULL, 4 },
		{ "web-root", required_argument, NULL, 5 },
		{ "allow-remote", no_argument, NULL, 6 },
		{ "alertmanager", required_argument, NULL, 7 },
		{ "webhook", required_argument, NULL, 8 },
		{ "slack-webhook", required_argument, NULL, 9 },
		{ "external-url", required_argument, NULL, 10 },
		{ "allow-host", required_argument, NULL, 11 },
		{ "remote-write", required_argument, NULL, 12 },
		{ NULL, 0, NULL, 0 }
	};
	static const char *const flag_directives[] = {
		NULL, "http", "ws", "db", "token-file", "web-root",
		"allow-remote", "alertmanager", "webhook", "slack-webhook",
		"external-url", "allow-host", "remote-write"
	};
	struct main_flag	 flags[32];
	struct config		 cfg;
	struct store		*st;
	struct writer		*w;
	struct notify		*nt = NULL;
	struct remote		*rw = NULL;
	struct http		*h;
	struct main_parts	 parts;
	struct http_hooks	 hooks;
	const char		*conf_file = NULL;
	char			*cause = NULL;
	sigset_t		 set;
	size_t			 nflags = 0, i;
	int			 ch, verbose = 0, check_only = 0, sig;

	while ((ch = getopt_long(argc, argv, "c:hnvV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			conf_file = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'n':
			check_only = 1;
			break;
		case 'v':
			verbose = 1;
			break;
		case 'V':
			printf("gradwatchd %s\n", GRADWATCHD_VERSION);
			return 0;
		case 1: case 2: case 3: case 4: case 5: case 6: case 7:
		case 8: case 9: case 10: case 11: case 12:
			if (nflags == sizeof flags / sizeof flags[0]) {
				fprintf(stderr, "gradwatchd: too many flags\n");
				return 2;
			}
			flags[nflags].directive = flag_directives[ch];
			flags[nflags].value = ch == 6 ? "yes" : optarg;
			nflags++;
			break;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}

	config_init(&cfg);
	if (conf_file != NULL && config_load_file(&cfg, conf_file, &cause) == -1)
		goto config_fail;
	for (i = 0; i < nflags; i++)
		if (config_set(&cfg, flags[i].directive, flags[i].value,
		    &cause) == -1) {
			char	*why = cause;

			xasprintf(&cause, "--%s: %s", flags[i].directive, why);
			free(why);
			goto config_fail;
		}
	if (verbose)
		cfg.verbose = 1;
	if (config_finish(&cfg, &cause) == -1)
		goto config_fail;
	log_init(cfg.verbose);
	if (check_only) {
		printf("gradwatchd: configuration OK\n");
		config_cleanup(&cfg);
		return 0;
	}

	/* Every thread inherits this mask; main takes the signals itself. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	main_raise_nofile();
	jsonarena_install();
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		fatalx("gradwatchd: curl_global_init failed");
	if ((st = store_open(cfg.db_path, &cause)) == NULL)
		fatalx("%s", cause);
	/* After the store, which adds the outbox to an older database. */
	if (cfg.nreceivers > 0 && (nt = notify_start(&cfg, &cause)) == NULL)
		fatalx("%s", cause);
	if (cfg.nremotes > 0 && (rw = remote_start(&cfg, &cause)) == NULL)
		fatalx("%s", cause);
	if ((parts.wf = webfiles_new(cfg.web_root, &cause)) == NULL)
		fatalx("%s", cause);
	if ((parts.ws = ws_stream_start(&cfg, &cause)) == NULL)
		fatalx("%s", cause);
	w = writer_start(st, &cfg, parts.ws, nt, rw);
	parts.notify = nt;
	parts.remote = rw;
	hooks.stream_clients = main_stream_clients;
	hooks.metrics_extra = main_extra_metrics;
	hooks.static_file = main_static_file;
	hooks.arg = &parts;
	if ((h = http_start(&cfg, w, &hooks, &cause)) == NULL)
		fatalx("%s", cause);
	log_info("gradwatchd %s: listening on http://%s:%u, stream on "
	    "ws://%s:%u, database %s", GRADWATCHD_VERSION, cfg.http_host,
	    http_port(h), cfg.ws_host, cfg.ws_port, cfg.db_path);
	if (strcmp(cfg.db_path, ":memory:") == 0)
		log_info("gradwatchd: in-memory database (for benchmarks): "
		    "nothing is kept after exit, and the query routes answer "
		    "500 (they read the database on connections of their own)");
	if (cfg.web_root != NULL)
		log_info("gradwatchd: serving the dashboard from %s",
		    cfg.web_root);
	if (cfg.token == NULL)
		log_info("gradwatchd: no token file: %s",
		    cfg.allow_remote ? "anyone who can reach the port may "
		    "read and write" : "listening on loopback only");

	for (;;) {
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			log_info("gradwatchd: SIGHUP ignored; restart to reload");
			continue;
		}
		break;
	}
	log_info("gradwatchd: %s: shutting down", strsignal(sig));
	http_quiesce(h);	/* no new connections */
	http_drain(h);		/* parse what has arrived */
	notify_stop(nt);	/* abandon deliveries in flight */
	remote_stop(rw);	/* likewise */
	writer_stop(w);		/* commit and answer everything queued */
	http_stop(h, SHUTDOWN_ANSWER_MS);
	writer_free(w);
	notify_free(nt);		/* after the writer took its outcomes */
	remote_free(rw);		/* and its cursors */
	ws_stream_stop(parts.ws);	/* after the writer, its publisher */
	webfiles_free(parts.wf);	/* after MHD, which sent its files */
	config_cleanup(&cfg);
	curl_global_cleanup();
	log_info("gradwatchd: stopped");
	return 0;

config_fail:
	fprintf(stderr, "gradwatchd: %s\n", cause);
	free(cause);
	config_cleanup(&cfg);
	return 1;
}
