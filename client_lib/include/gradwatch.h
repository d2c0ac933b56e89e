/* SPDX-License-Identifier: MIT */
/*
 * gradwatch.h: the client library for gradwatchd, the training-health
 * monitor.  The only public header of libgradwatch.
 *
 * A training loop opens a client, registers its layers once, and logs
 * every step's values.  Logging never blocks, never allocates, makes no
 * system call and never fails the loop: values are copied into a bounded
 * in-memory buffer, and one background thread per client batches them
 * and posts them to the daemon, retrying while it is down.  Only
 * gw_flush() and gw_close() wait, each at most its timeout.  A handle
 * may be shared by threads.  A NULL handle is accepted everywhere and
 * ignored, so a failed gw_open() never forces ifs into the loop.
 * The library never prints (unless GRADWATCH_DEBUG=1, to stderr), never
 * aborts and never exits.  With a spool directory (below), what the
 * daemon could not take waits on disk instead of being dropped.
 *
 *	struct gw_options	 opt = { .project = "mnist" };
 *	struct gw_client	*gw = NULL;
 *	int			 fc1, rc;
 *
 *	if ((rc = gw_open(&gw, &opt)) != GW_OK)	// gw stays NULL: no-ops
 *		fprintf(stderr, "monitoring off: %s\n", gw_strerror(rc));
 *	fc1 = gw_layer(gw, "fc1.weight", 784 * 256, 0);
 *	for (step = 0; step < nsteps; step++) {
 *		loss = train_step(&net);
 *		gw_loss(gw, step, loss);
 *		gw_grad_norm(gw, step, global_norm(&net));
 *		gw_layer_grad(gw, step, fc1, norm2(net.fc1.grad, 784 * 256));
 *		if (gw_health(gw) == GW_HEALTH_CRITICAL)
 *			break;			// e.g. stop before NaN weights
 *	}
 *	gw_close(gw, 2000);			// flush, mark finished, free
 */
#ifndef GRADWATCH_H
#define GRADWATCH_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(GW_BUILDING_LIBRARY)
#define GW_API	__attribute__((visibility("default")))
#else
#define GW_API
#endif

#define GW_VERSION	"0.1.0"

/* Result codes: 0 or negative. */
#define GW_OK		 0
#define GW_EINVAL	-1	/* bad argument or option */
#define GW_ENOMEM	-2	/* out of memory (gw_open, gw_layer, gw_metric only) */
#define GW_EFULL	-3	/* buffer full: the value was dropped and counted */
#define GW_ECONN	-4	/* the daemon could not be reached (yet) */
#define GW_ETIMEDOUT	-5	/* gw_flush/gw_close: not everything was sent in time */
#define GW_ECLOSED	-6	/* the handle is closing, or belongs to the parent of a fork */
#define GW_EREFUSED	-7	/* the daemon refused the data (4xx); see gw_errmsg */
#define GW_ESPOOLED	-8	/* gw_close: not everything reached the daemon; the
				   rest is in the spool file, for gw_sync */
#define GW_EBUSY	-9	/* gw_sync: a spool file is in use by a running program */

/* Run health as the daemon last reported it. */
#define GW_HEALTH_UNKNOWN	0	/* no answer from the daemon yet */
#define GW_HEALTH_OK		1
#define GW_HEALTH_WARNING	2
#define GW_HEALTH_CRITICAL	3

/* Run end states for gw_close_status(). */
#define GW_RUN_FINISHED		0
#define GW_RUN_FAILED		1

struct gw_client;

/* Zero-initialise; zero or NULL means the default.  New fields go at the end. */
struct gw_options {
	const char	*url;		/* NULL: $GRADWATCH_URL, else http://127.0.0.1:7070 */
	const char	*run;		/* run key, copied; NULL: program-YYYYmmdd-HHMMSS-xxxxxx */
	const char	*project;	/* copied; NULL: none */
	const char	*config_json;	/* a JSON object, copied; sent as meta.config */
	const char	*token;		/* NULL: $GRADWATCH_TOKEN, else none */
	size_t		 buffer_points;	/* values buffered (rounded up to a power
					   of 2, plus a reserve of 1/16 for
					   evidence); 0: 1048576 */
	unsigned int	 flush_interval_ms; /* 0: 250 */
	const char	*meta_json;	/* a JSON object, copied; its members are sent
					   in the run's meta beside project, config
					   and layers (it may not name those, nor
					   detector); NULL: none */
	const char	*spool_dir;	/* NULL: $GRADWATCH_SPOOL; unset or "": no
					   spool (see below) */
	size_t		 spool_max_bytes; /* a spool file's limit; 0: 256 MiB */
};

/*
 * The spool.  With a spool directory, what the daemon cannot take waits
 * on disk instead of being dropped.  When the daemon has been unreachable
 * (connection refused, timeout, 5xx) and the buffer passes half full, or
 * when gw_close runs out of time with values unsent, the sender appends
 * the request bodies it would have posted, in order, to one file per run,
 * <spool_dir>/<run>.gwspool (mode 0600; the directory is made if missing,
 * not its parents).  While that file holds anything unsent, new values go
 * to it too, so that the daemon gets the steps in order; once the daemon
 * answers again, the sender posts the file's records first, each until it
 * is accepted, removes the file when it is drained and carries on as
 * before; gw_flush waits for that.  The run's finish (gw_close) is
 * appended after the values when they are spooled, or when it cannot be
 * delivered itself (or gw_close leaves no time to try); gw_close then
 * returns GW_ESPOOLED.  A file at spool_max_bytes takes no more: further
 * values are dropped and counted as when the buffer is full (the finish,
 * and a last record that tells the daemon how many were dropped, are
 * written whatever the limit).
 *
 * Only the sender thread touches the file: the logging calls stay as they
 * are.  Records are appended, not synced to disk until gw_close; each has
 * its length and a CRC-32, so a record torn by a crash is recognised and
 * skipped.  A process holds its run's file locked (flock) while it has it
 * open; another process logging the same run key does not spool meanwhile.
 * A file left behind (the program ended, or crashed, before the daemon
 * came back) is sent by gw_sync() or `gradwatch sync FILE|DIR`, or first
 * thing by the next client that opens the same run with the same spool
 * directory (which skips the finish in it: the run goes on).  Problems
 * with the spool are said by gw_errmsg and never stop the run.  The file
 * format is described in client_lib/spool.c.
 */

/* A firing alert as the daemon reported it (strings owned by the caller's buffer). */
struct gw_alert {
	char		 kind[32];	/* "nonfinite", "grad_explosion", ... */
	char		 severity[16];	/* "info", "warning", "critical" */
	char		 series[128];	/* the layer or series, "" for the run */
	int64_t		 onset_step;	/* -1 when unknown */
	int64_t		 fire_step;
	char		 message[256];
};

/*
 * Open a client: validate the options, copy them and start the sender.
 * Does not contact the daemon (so it never blocks on it).  On failure
 * *out is NULL, a negative code is returned and gw_errmsg(NULL) says
 * why.  A handle inherited by a child of fork() is inert there (its
 * calls return GW_ECLOSED or a neutral value at once, and gw_close frees
 * the child's copy); the child may open its own.
 */
GW_API int	 gw_open(struct gw_client **out, const struct gw_options *opt);

/*
 * Register a parameter tensor once; returns its id (>= 0) for the
 * logging calls, or a negative code.  Registering a name again returns
 * the same id.  numel and depth may be -1 when unknown.
 */
GW_API int	 gw_layer(struct gw_client *c, const char *name, int64_t numel,
		    int depth);
/* As gw_layer, with the tensor's shape (ndim entries). */
GW_API int	 gw_layer_shape(struct gw_client *c, const char *name,
		    const int64_t *shape, int ndim, int depth);
/* Register a named scalar (accuracy, throughput, ...); returns its id. */
GW_API int	 gw_metric(struct gw_client *c, const char *name);

/*
 * The hot path.  Each copies one value for step into the buffer and
 * returns GW_OK, or GW_EFULL when the buffer is full (the value is
 * dropped and counted; non-finite values and clip events are kept
 * longest), GW_EINVAL for an unknown id or a negative step, GW_ECLOSED.
 * NaN and infinities are fine: they are what gradwatch looks for.
 */
GW_API int	 gw_loss(struct gw_client *c, int64_t step, double loss);
GW_API int	 gw_grad_norm(struct gw_client *c, int64_t step, double norm);
GW_API int	 gw_lr(struct gw_client *c, int64_t step, double lr);
GW_API int	 gw_layer_grad(struct gw_client *c, int64_t step, int layer,
		    double norm);
GW_API int	 gw_layer_weight(struct gw_client *c, int64_t step, int layer,
		    double norm);
/* The L2 norm of this step's update of the tensor, ||W after - W before||. */
GW_API int	 gw_layer_update(struct gw_client *c, int64_t step, int layer,
		    double norm);
/*
 * For Adam-family optimizers: the tensor's ||g||^2 / sum(v), the squared
 * gradient over the optimizer's second-moment estimate before this step
 * (a jump of it comes before loss spikes).
 */
GW_API int	 gw_layer_adam_ratio(struct gw_client *c, int64_t step,
		    int layer, double ratio);
/* The step's clipping: pre_norm > max_norm means it clipped. */
GW_API int	 gw_clip(struct gw_client *c, int64_t step, double max_norm,
		    double pre_norm);
/* Mixed precision: the step was skipped (overflow) or not, at this loss scale (<= 0: none). */
GW_API int	 gw_skipped(struct gw_client *c, int64_t step, int skipped,
		    double loss_scale);
GW_API int	 gw_metric_value(struct gw_client *c, int64_t step, int metric,
		    double value);
/* The step's wall time (seconds since the epoch); otherwise stamped when sent. */
GW_API int	 gw_step_time(struct gw_client *c, int64_t step, double time);

/* Non-blocking views of the daemon's latest answer. */
GW_API int	 gw_health(struct gw_client *c);
/* Copy up to max firing alerts into out; returns how many are firing. */
GW_API int	 gw_alerts(struct gw_client *c, struct gw_alert *out, int max);
/* Values dropped so far: the buffer was full, or the daemon refused them. */
GW_API uint64_t	 gw_dropped(struct gw_client *c);
/* The run key in use (owned by the handle). */
GW_API const char *gw_run(struct gw_client *c);
/*
 * The last error the sender met, for a person ("" if none); owned by
 * the handle, valid until the next call on it from this thread.  With a
 * NULL handle: why this thread's last gw_open failed.
 */
GW_API const char *gw_errmsg(struct gw_client *c);

/*
 * Wait until everything logged before the call has been accepted by the
 * daemon, at most timeout_ms.  GW_OK; GW_EREFUSED when some of it was
 * refused (and dropped); otherwise GW_ECONN if the daemon could not be
 * reached, GW_ETIMEDOUT if it was slow or overloaded.
 */
GW_API int	 gw_flush(struct gw_client *c, int timeout_ms);
/*
 * Flush (within timeout_ms), mark the run finished, stop the sender and
 * free c.  Returns as gw_flush, or GW_ESPOOLED when what was left (or just
 * the finish) went to the spool file; c is freed whatever it returns.  No
 * other call on c may run at the same time or after.  In a child of
 * fork(), on a handle of the parent, it returns GW_ECLOSED at once,
 * without sending anything or waiting, and frees this process's copy:
 * only what the parent's sender was in the middle of at the fork (a
 * request, libcurl's transfer) is left, and libcurl's state after TLS or
 * through a proxy, as its teardown would take OpenSSL's locks.
 */
GW_API int	 gw_close(struct gw_client *c, int timeout_ms);
/* As gw_close, with GW_RUN_FINISHED or GW_RUN_FAILED. */
GW_API int	 gw_close_status(struct gw_client *c, int status, int timeout_ms);

/* What gw_sync did, summed over the files. */
struct gw_sync_stats {
	unsigned int	 files;		/* spool files found */
	unsigned int	 files_done;	/* sent in full and removed */
	uint64_t	 records;	/* records the daemon accepted */
	uint64_t	 values;	/* the values in them */
	uint64_t	 refused;	/* records it refused (4xx): dropped */
	uint64_t	 damaged_bytes;	/* torn or corrupt bytes skipped */
};

/*
 * Send spool files to the daemon: path is a spool file, or a directory
 * whose *.gwspool files are sent, oldest first.  A file's records go in
 * order, each until it is accepted (a refused connection, a timeout or a
 * 5xx is retried with backoff and Retry-After), and the file is removed
 * once all of it was taken; a torn or corrupt record is skipped and said.
 * Gives up when timeout_ms (> 0) has passed, leaving the rest in place.
 * opt gives url and token as for gw_open (NULL fields from the
 * environment) and may be NULL; its other fields are ignored.  say_cb, if
 * not NULL, is called on the calling thread with a line for a person
 * about each file and each problem.  stats, if not NULL, is filled.
 * Returns GW_OK when every intact record was accepted; otherwise the
 * first problem: GW_EINVAL (a bad option, or a path that is neither a
 * spool file nor a directory), GW_EBUSY (a file in use by a running
 * program was skipped), GW_EREFUSED (records were refused and dropped),
 * GW_ECONN or GW_ETIMEDOUT (out of time), GW_ENOMEM.  Blocks; it is for
 * scripts and the `gradwatch` program, not for a training loop.
 */
GW_API int	 gw_sync(const char *path, const struct gw_options *opt,
		    int timeout_ms, struct gw_sync_stats *stats,
		    void (*say_cb)(void *arg, const char *line), void *arg);

/* A static description of a result code. */
GW_API const char *gw_strerror(int code);
/* The library's version, GW_VERSION at build time. */
GW_API const char *gw_version(void);

#ifdef __cplusplus
}
#endif
#endif
