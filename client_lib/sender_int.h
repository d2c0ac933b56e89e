/* SPDX-License-Identifier: MIT */
/*
 * sender_int: the sender thread's state (struct gw__sender, its two
 * requests), shared by the files of the sender: sender.c (the thread's
 * loop), sender_req.c (requests built, answers read, outcomes
 * published) and sender_spool.c (the run's spool file).  Only the
 * sender thread touches a struct gw__sender.
 */
#ifndef GW_SENDER_INT_H
#define GW_SENDER_INT_H

#include <locale.h>

#include "internal.h"

/* An encoded request: the one in flight, or the next. */
struct gw__req {
	struct gw__buf	 body;
	int		 valid;
	size_t		 points;
	uint64_t	 dropped;	/* "dropped" in body */
	uint64_t	 main;		/* ring positions before its records */
	uint64_t	 prio;
	int		 more;		/* its drain stopped at a limit */
	int		 meta;		/* it carries the meta */
};

struct gw__sender {
	struct gw__srec	*recs;		/* drained, not yet encoded */
	size_t		 n;
	size_t		 cap;
	struct gw__enc	 enc;
	struct gw__req	 req[2];	/* req[cur] goes first */
	int		 cur;

	uint64_t	 claimed;	/* drops counted in built requests */
	uint32_t	 meta_layers;	/* layers sent in meta so far */
	int		 meta_sent;
	int		 accepted;	/* the daemon has taken a request */
	int		 attempts;	/* failures in a row */
	int64_t		 retry_at;	/* ms, monotonic */
	int64_t		 next_tick;	/* ms, monotonic */
	uint64_t	 rng;
	uint64_t	 drops_logged;
	locale_t	 loc;
	struct gw_client *c;

	struct gw__spool *sp;		/* the run's spool file while open */
	int		 move;		/* spooling: move the rings to sp now */
	int		 backlog;	/* spooling: the last move stopped early */
	int64_t		 spool_retry;	/* ms, monotonic: no open before */
};

#define GW__CUR(s)	(&(s)->req[(s)->cur])
#define GW__NEXT(s)	(&(s)->req[1 - (s)->cur])

enum gw__next {
	GW__WORK,		/* drain and send, or resend */
	GW__FINISH,		/* closing: mark the run and stop */
	GW__EXIT		/* closing and out of time */
};

/* sender_req.c */
/* 1 while the spool holds records to send before anything new. */
int	 gw__sender_is_spooling(const struct gw__sender *s);
/* What has been resolved, for flushers (_locked: c->lock held). */
void	 gw__sender_publish_locked(struct gw_client *c, struct gw__sender *s);
void	 gw__sender_publish(struct gw_client *c, struct gw__sender *s);
/* The latest failure, for gw_errmsg and gw_flush. */
void	 gw__sender_error(struct gw_client *c, int code, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));
/* A spool problem, for gw_errmsg; flush's verdict stays. */
void	 gw__sender_note(struct gw_client *c, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
/* Drain the rings into request r. */
void	 gw__sender_build(struct gw_client *c, struct gw__sender *s,
	    struct gw__req *r);
/* The transport's idle callback: encode the next request meanwhile. */
int	 gw__sender_idle_cb(void *arg);
/* Read an accepted answer: health and alerts. */
void	 gw__sender_answer(struct gw_client *c, const char *body, size_t len);
/* Schedule the resend of a failed request (backoff, Retry-After). */
void	 gw__sender_retry(struct gw_client *c, struct gw__sender *s,
	    const struct gw__reply *r, const char *url);
/* The body of the run's finish request. */
const char *gw__finish_body(struct gw_client *c);

/* sender_spool.c */
int	gw__sender_spool_open(struct gw_client *c, struct gw__sender *s,
	    int create);
void	gw__sender_spool_drained(struct gw_client *c, struct gw__sender *s);
void	gw__sender_spool_begin(struct gw_client *c, struct gw__sender *s);
int	gw__sender_spool_work(struct gw_client *c, struct gw__sender *s);
int	gw__sender_spool_finish(struct gw_client *c, struct gw__sender *s);
void	gw__sender_spool_rest(struct gw_client *c, struct gw__sender *s);

#endif
