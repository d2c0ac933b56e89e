/* SPDX-License-Identifier: MIT */
/*
 * config: gradwatchd's settings, from defaults, then an optional file
 * of "directive value" lines, then command-line flags (which use the
 * same directive setters, so a flag and a line mean the same thing).
 * Built by main before any thread starts; read-only afterwards.
 */
#ifndef GW_CONFIG_H
#define GW_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define CONFIG_DEFAULT_HOST	"127.0.0.1"
#define CONFIG_DEFAULT_PORT	7070
#define CONFIG_DEFAULT_DB	"./gradwatch.db"
#define CONFIG_DETECTOR_PREFIX	"detector."

struct detector_config;
struct receiver;
struct remote_target;

struct config {
	char		*http_host;
	uint16_t	 http_port;
	char		*ws_host;
	uint16_t	 ws_port;	/* 0: http_port + 1 */
	char		*db_path;
	char		*token_file;
	char		*token;		/* read from token_file by config_finish */
	char		*web_root;	/* NULL: serve the embedded dashboard */
	int		 verbose;
	int		 allow_remote;	/* listen beyond loopback without a token */
	char		**allow_hosts;	/* more names browsers may use for us */
	size_t		 nallow_hosts;
	int		 detect;	/* run the detector (default yes) */
	size_t		 max_body;	/* bytes of one request body */
	size_t		 max_meta_config; /* meta.config's bytes */
	size_t		 queue_points;	/* points waiting for the writer */
	unsigned int	 http_threads;
	unsigned int	 workers;	/* parse and query threads */
	size_t		 max_connections;	/* HTTP connections, all peers */
	size_t		 max_connections_per_ip;
	unsigned int	 idle_timeout;	/* seconds a silent connection lives */
	double		 run_idle_evict;	/* seconds a quiet run stays in memory; 0 ever */
	unsigned int	 ws_ping;	/* seconds without a pong before a ping */
	struct detector_config *detector; /* "detector.<name> value" lines */
	struct receiver	*receivers;	/* alertmanager, webhook, slack-webhook */
	size_t		 nreceivers;
	char		*external_url;	/* links in notices; NULL: from http */
	double		 notify_resend;	/* seconds between Alertmanager re-sends */
	double		 notify_timeout;	/* seconds a receiver may take */
	double		 notify_max_backoff;	/* longest wait between retries */
	struct remote_target *remotes;	/* remote-write targets */
	size_t		 nremotes;
};

/* Fill cfg with the defaults. */
void	config_init(struct config *cfg);
/* Free what cfg owns.  Fine after a failed load. */
void	config_cleanup(struct config *cfg);
/*
 * Apply one directive.  0, or -1 with an allocated *cause that names
 * the problem (without file:line; the caller adds where it came from).
 */
int	config_set(struct config *cfg, const char *directive,
	    const char *value, char **cause);
/*
 * Read path: "directive value" lines, '#' comments and blank lines.
 * On the first bad line -1 with *cause as "path:line: why: 'line'".
 */
int	config_load_file(struct config *cfg, const char *path, char **cause);
/* Final checks after all sources (reads the token file). */
int	config_finish(struct config *cfg, char **cause);
/* 1 if host resolves only to loopback addresses. */
int	config_is_loopback(const char *host);
/* Print every directive with its meaning, for --help. */
const char *config_directives_help(void);

#endif
