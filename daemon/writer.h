/* SPDX-License-Identifier: MIT */
/*
 * writer: the store thread.  It owns the struct store (the only SQLite
 * writer), takes jobs from a bounded queue, commits many of them in one
 * transaction (group commit), then answers each job through its done
 * callback.  Callers never wait for the disk: they submit and are
 * called back once their job is committed and synced to disk (or has
 * failed), from the writer thread or its sync thread (walsync.h).
 */
#ifndef GW_WRITER_H
#define GW_WRITER_H

#include <stddef.h>

#include "batch.h"

struct config;
struct notify;
struct remote;
struct store;
struct writer;
struct writer_job;
struct ws_stream;

enum writer_job_kind {
	WRITER_JOB_INGEST,	/* store batch */
	WRITER_JOB_FINISH,	/* set run's status */
	WRITER_JOB_ANNOTATE,	/* set run's tags and note (runmeta.h) */
};

/* Called on the writer's or its sync thread once the job is answered. */
typedef void	(*writer_done_cb)(struct writer_job *job, void *arg);

/* Owned by the submitter; the writer fills status and body. */
struct writer_job {
	enum writer_job_kind	 kind;
	struct batch		*batch;		/* INGEST: freed by the writer */
	const char		*run;		/* FINISH, ANNOTATE: borrowed until done */
	const char		*finish_status;	/* FINISH: "finished" | "failed" */
	const char		*tags;		/* ANNOTATE: JSON array or NULL; borrowed */
	const char		*note;		/* ANNOTATE: or NULL; borrowed */
	double			 received_at;	/* seconds since the epoch */
	writer_done_cb		 done;
	void			*done_arg;
	unsigned int		 status;	/* out: HTTP status */
	char			*body;		/* out: allocated JSON */
	size_t			 points;	/* writer's: points of the batch */
	int64_t			 run_id;	/* writer's: the run, once stored */
	int64_t			 log_id;	/* writer's: store_remote_row() */
	int			 plain;		/* writer's: and its plain */
};

/*
 * Start the writer thread, which takes ownership of st, the store opened
 * at cfg->db_path (cfg borrowed: it must outlive the writer).
 * cfg->queue_points bounds the points waiting to be written.
 * Checkpoints run on a thread of their own (store_checkpoint.h); detection
 * with cfg->detector (when cfg->detect) runs on the writer thread
 * (watch.h).  After each commit the writer publishes the stream's
 * messages into ws (borrowed; NULL: none), so ws must be stopped only
 * after the writer, and wakes notify (borrowed; NULL: no receivers) for
 * the notices it added; notify must be stopped before the writer, whose
 * last transaction marks its last deliveries.  Likewise with remote
 * (borrowed; NULL: no remote-write targets): each batch adds its
 * remote_log row, the senders are woken after a commit, and their
 * cursors are written in the next transaction.
 */
struct writer	*writer_start(struct store *st, const struct config *cfg,
		    struct ws_stream *ws, struct notify *notify,
		    struct remote *remote);
/*
 * Queue job.  0, or -1 when the queue is full or stopping (the caller
 * answers 503 and keeps ownership of the job).
 */
int		 writer_submit(struct writer *w, struct writer_job *job);
/* Jobs waiting now. */
size_t		 writer_queue_depth(struct writer *w);
/*
 * Stop: refuse new jobs, commit and answer every queued one, join the
 * thread and close the store.  writer_submit() then answers -1 and
 * writer_queue_depth() 0 until writer_free().
 */
void		 writer_stop(struct writer *w);
/* Free a stopped writer.  NULL is fine. */
void		 writer_free(struct writer *w);

#endif
