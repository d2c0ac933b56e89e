/* SPDX-License-Identifier: MIT */
/*
 * gwt: helpers for the client tests.  TAP output; a real gradwatchd on
 * free loopback ports with a scratch database (stopped at exit); plain
 * HTTP calls to read back what it stored; and a fake daemon, a small
 * HTTP/1.1 server on a thread that records every request and answers
 * as the test scripts it.  Not thread-safe unless a function says so.
 */
#ifndef GWT_H
#define GWT_H

#include <jansson.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* TAP.  ok() returns cond; done_testing() prints the plan, returns the exit status. */
int	 ok(int cond, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void	 diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int	 is_int(long long got, long long want, const char *name);
int	 done_testing(void);
/* Called on failure paths: print the daemons' logs as diagnostics once. */
void	 gwt_dump_logs(void);

double	 gwt_now(void);		/* seconds, monotonic */
void	 gwt_sleep_ms(int ms);
int	 gwt_free_port(void);
/* A scratch directory for this process, removed at exit. */
const char *gwt_tmpdir(void);
/* Is it a slow build (valgrind, sanitizers)?  Tests then do less. */
int	 gwt_slow(void);

/* A real gradwatchd. */
struct gwt_daemon {
	pid_t		 pid;
	int		 port;		/* 0: pick a free one at start */
	int		 ws_port;
	char		 db[512];
	char		 log[512];
	char		 conf[512];	/* "" or a config file */
	char		 url[64];
	int		 slot;		/* the helper's own */
};
/* Start (or restart on the same port and database); 0 once /healthz answers. */
int	 gwt_daemon_start(struct gwt_daemon *d, const char *conf_text);
/* Stop with sig (SIGTERM waits for a clean exit, SIGKILL is a crash). */
void	 gwt_daemon_stop(struct gwt_daemon *d, int sig);

/* HTTP: the answer's status, *body a malloc'd NUL-terminated string (or NULL). */
/* The value of the /metrics line starting "\nname " at base; -1 if none. */
long long gwt_metric(const char *base, const char *name);
long	 gwt_http(const char *method, const char *url, const char *body,
	    char **answer);
/* GET url + path as JSON (NULL on any failure). */
json_t	*gwt_get_json(const char *base, const char *path);

/* A point as the export gives it. */
struct gwt_point {
	char		 kind[24];
	char		 series[64];
	int64_t		 step;
	double		 value;
};
/*
 * The run's export (jsonl) as points; -1 on failure.  *ordered says
 * whether each series came in strictly increasing steps.
 */
int	 gwt_export(const char *base, const char *run, struct gwt_point **out,
	    size_t *n, int *ordered);
/* Append a point to a growing array. */
void	 gwt_point_add(struct gwt_point **v, size_t *n, const char *kind,
	    const char *series, int64_t step, double value);
/*
 * Compare two point sets (any order); 0 when equal, exactly once each.
 * Otherwise -1 and a description of the first difference in why.
 */
int	 gwt_points_equal(struct gwt_point *got, size_t ngot,
	    struct gwt_point *want, size_t nwant, char *why, size_t whylen);

/* A fake daemon. */
struct gwt_req {
	double		 t;		/* gwt_now() when it was read */
	char		 method[8];
	char		 path[256];
	char		 headers[2048];	/* the request line and headers */
	char		*body;
	size_t		 len;
	int		 conn;		/* which accepted connection */
	long		 status;	/* what was answered */
};
struct gwt_fake;
/*
 * Decides the answer to request i: returns the status (0: close the
 * connection without an answer), may fill extra headers ("Name: value\r\n"
 * lines) and the body.  Runs on the thread of the request's connection
 * (one per connection).
 */
typedef long	(*gwt_fake_cb)(struct gwt_fake *f, int i, const struct gwt_req *r,
		    char *headers, size_t hlen, char *body, size_t blen);
#define GWT_FAKE_CONNS	64
struct gwt_conn;
struct gwt_fake {
	int		 lfd;
	int		 port;
	char		 url[64];
	pthread_t	 thread;
	int		 stop;		/* {lock} */
	pthread_mutex_t	 lock;
	struct gwt_req	*reqs;		/* {lock} */
	int		 nreqs;		/* {lock} */
	int		 nconns;	/* {lock} connections accepted */
	struct gwt_conn	*conns[GWT_FAKE_CONNS];	/* {lock} one thread each */
	gwt_fake_cb	 cb;
	void		*arg;
};
/* Start the fake on a free port; cb NULL answers 200 {"accepted":..}. */
int	 gwt_fake_start(struct gwt_fake *f, gwt_fake_cb cb, void *arg);
void	 gwt_fake_stop(struct gwt_fake *f);
/* Any thread: how many requests so far. */
int	 gwt_fake_count(struct gwt_fake *f);

#endif /* GWT_H */
