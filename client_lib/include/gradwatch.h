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
 * aborts and never exits.
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
};

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
 * calls return GW_ECLOSED or a neutral value at once); the child may
 * open its own.
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
 * free c.  Returns as gw_flush; c is freed whatever it returns.  No
 * other call on c may run at the same time or after.  In a child of
 * fork() it frees nothing and returns GW_ECLOSED at once.
 */
GW_API int	 gw_close(struct gw_client *c, int timeout_ms);
/* As gw_close, with GW_RUN_FINISHED or GW_RUN_FAILED. */
GW_API int	 gw_close_status(struct gw_client *c, int status, int timeout_ms);

/* A static description of a result code. */
GW_API const char *gw_strerror(int code);
/* The library's version, GW_VERSION at build time. */
GW_API const char *gw_version(void);

#ifdef __cplusplus
}
#endif
#endif
