/* SPDX-License-Identifier: MIT */
/*
 * internal.h: what the files of libgradwatch share and nothing else sees
 * (every name is gw__, and none is exported).  The hot path lives here as
 * static inline functions so that a logging call is one function call
 * deep: a fork-generation check, one lock-free ring push and, now and
 * then, a wake-up of the sender.  Who owns each field of struct gw_client
 * is written beside it; "{lock}" means c->lock guards it.
 */
#ifndef GW_INTERNAL_H
#define GW_INTERNAL_H

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "gradwatch.h"
#include "wire.h"

/* What a logged value is: the top 4 bits of a record's key. */
enum gw__kind {
	GW__LOSS = 0,
	GW__GRAD_NORM,
	GW__LR,
	GW__LOSS_SCALE,
	GW__SKIPPED,
	GW__CLIP_MAX,
	GW__CLIP_PRE,
	GW__TIME,
	GW__NSCALARS,		/* the kinds above are one value per step */
	GW__LAYER_GRAD = GW__NSCALARS,
	GW__LAYER_WEIGHT,
	GW__METRIC,
	GW__LAYER_UPDATE,	/* a tensor's update norm */
	GW__LAYER_ADAM,		/* a tensor's ||g||^2 / sum(v) */
	GW__NKINDS
};
/* The per-tensor kinds, in the order the encoder keeps their columns. */
#define GW__NTENSOR		4
extern const unsigned gw__tensor_kinds[GW__NTENSOR];
#define GW__KEY(kind, id)	(((uint32_t)(kind) << 28) | (uint32_t)(id))
#define GW__KEY_KIND(key)	((unsigned)((key) >> 28))
#define GW__KEY_ID(key)		((uint32_t)((key) & 0x0fffffffu))

/* Limits (the daemon's where it has one). */
#define GW__NAMES_SEG		1024	/* entries per registry segment */
#define GW__NAMES_NSEG		1024	/* segments: 1M layers or metrics */
#define GW__RING_MAX		((size_t)1 << 28)
#define GW__RING_DEFAULT	((size_t)1 << 20)
#define GW__FLUSH_DEFAULT	250	/* ms */
#define GW__FLUSH_MAX		600000
#define GW__ALERTS_MAX		64	/* firing alerts kept from an answer */
#define GW__ERRMSG_SIZE		256
#define GW__JSON_DEPTH_MAX	29	/* config: the daemon takes 32 levels */
#define GW__SPOOL_DEFAULT	((size_t)256 << 20)
#define GW__SPOOL_RETRY_MS	5000	/* after the spool could not be opened */

/* Batching: one request carries at most this much. */
#define GW__REQ_STEPS		100
#define GW__REQ_BYTES		((size_t)1 << 20)

/* Retries: exponential backoff with jitter, and request timeouts. */
#define GW__BACKOFF_MIN_MS	100
#define GW__BACKOFF_MAX_MS	5000
#define GW__RETRY_AFTER_MAX_MS	60000
#define GW__REQ_TIMEOUT_MS	15000
#define GW__CONNECT_TIMEOUT_MS	3000

/* The fork generation no live handle carries: a closing handle has it. */
#define GW__GEN_CLOSED		0xffffffffu

/*
 * One cell of a ring: Vyukov's bounded queue.  seq is the ring position
 * the cell waits for (a producer may fill it when seq == pos, the
 * consumer may take it when seq == pos + 1); 32 bits of it suffice
 * because a ring is shorter than 2^31.
 */
struct gw__cell {
	_Atomic uint32_t	 seq;
	uint32_t		 key;		/* GW__KEY(kind, id) */
	int64_t			 step;
	double			 value;
};

/* A bounded multi-producer, single-consumer ring of records. */
struct gw__ring {
	struct gw__cell		*cells;
	uint64_t		 mask;		/* size - 1, size a power of 2 */
	char			 pad0[48];
	_Atomic uint64_t	 tail;		/* producers: next to claim */
	char			 pad1[56];
	_Atomic uint64_t	 head;		/* the consumer's next; it alone writes */
	char			 pad2[56];
};

/* A registered layer or metric; immutable once published. */
struct gw__name {
	char		*name;
	size_t		 len;
	int64_t		 numel;		/* -1: unknown */
	int		 depth;		/* -1: unknown */
	int		 ndim;		/* -1: no shape */
	int64_t		*shape;
};

/*
 * Layers or metrics, by id.  Entries sit in segments that never move, so
 * the sender reads entries below count without a lock; registration (and
 * the name index) is under lock.
 */
struct gw__names {
	pthread_mutex_t		 lock;
	struct gw__name		*seg[GW__NAMES_NSEG];	/* {lock} to add */
	_Atomic uint32_t	 count;		/* published entries */
	uint32_t		*index;		/* {lock} open addressing: id + 1 */
	size_t			 index_cap;	/* {lock} a power of 2 or 0 */
};

struct gw__sender;
struct gw__transport;

/*
 * A client.  The hot path reads the first group only.  The options are
 * immutable after gw_open.  The sender thread owns snd and tr; the other
 * shared fields name their guard.
 */
struct gw_client {
	struct gw__ring		 ring;		/* every value */
	struct gw__ring		 prio;		/* reserve: evidence only */
	_Atomic unsigned	 gen;		/* == gw__fork_gen while usable */
	uint64_t		 wake_mask;	/* check the level when pos & mask == 0 */
	uint64_t		 wake_level;	/* half the ring */
	_Atomic int		 wake_pending;	/* a wake-up is on its way */
	_Atomic uint64_t	 dropped;	/* values lost (full, refused) */
	_Atomic int		 health;	/* GW_HEALTH_* of the last answer */
	struct gw__names	 layers;
	struct gw__names	 metrics;

	/* Options. */
	char			*url;		/* without a trailing slash */
	char			*url_ingest;
	char			*url_finish;
	char			*run;
	char			*project;	/* or NULL */
	char			*config_json;	/* compact JSON object or NULL */
	char			*meta_extra;	/* meta_json's members, compact, without
						   the braces; or NULL */
	char			*spool_path;	/* <dir>/<run>.gwspool, or NULL: no spool */
	size_t			 spool_max;
	char			*auth;		/* "Authorization: Bearer ..." or NULL */
	unsigned int		 flush_ms;
	int			 debug;		/* GRADWATCH_DEBUG=1 */

	pthread_t		 thread;
	int			 thread_started;
	pthread_mutex_t		 lock;
	pthread_cond_t		 cv_sender;	/* the sender waits here */
	pthread_cond_t		 cv_done;	/* flush and close wait here */
	int			 wake;		/* {lock} half full: drain now */
	int			 flush_req;	/* {lock} someone waits in gw_flush */
	int			 closing;	/* {lock} gw_close was called */
	int			 close_status;	/* {lock} GW_RUN_* */
	_Atomic int64_t		 deadline;	/* ms, monotonic: close's; or INT64_MAX */
	_Atomic int64_t		 flush_deadline; /* closing: stop flushing then */
	int			 sender_done;	/* {lock} the sender has stopped */
	int			 abandoned;	/* {lock} the sender frees c itself */
	uint64_t		 done_main;	/* {lock} resolved through this ring position */
	uint64_t		 done_prio;	/* {lock} likewise in the reserve */
	int			 last_err;	/* {lock} GW_OK or the last failure */
	uint64_t		 nrefused;	/* {lock} requests refused so far */
	int			 finish_rc;	/* {lock} the finish request's result */
	int			 spooled;	/* {lock} closing put the rest in the spool */
	char			 errmsg[GW__ERRMSG_SIZE];	/* {lock} */
	struct gw_alert		 alerts[GW__ALERTS_MAX];	/* {lock} */
	int			 nalerts;	/* {lock} firing (may exceed the array) */
	int			 nalerts_kept;	/* {lock} entries of alerts[] set */

	struct gw__sender	*snd;		/* sender thread only */
	struct gw__transport	*tr;		/* sender thread only (but wakeup) */
	_Atomic int		 parked;	/* the sender waits for work: snd and
						   tr are whole (read after fork()) */
};

/* Bumped in a child of fork(); handles of the parent then disagree. */
extern _Atomic unsigned gw__fork_gen;

/* ring.c */
int	 gw__ring_init(struct gw__ring *r, size_t size);
void	 gw__ring_cleanup(struct gw__ring *r);
/* Consumer only: copy the next record out without taking it; 0 or -1 (none ready). */
int	 gw__ring_peek(struct gw__ring *r, uint32_t *key, int64_t *step,
	    double *value);
/* Consumer only: release the record gw__ring_peek returned. */
void	 gw__ring_pop(struct gw__ring *r);
/* Values waiting (approximate while producers run). */
uint64_t gw__ring_level(struct gw__ring *r);

/* names.c */
void	 gw__names_init(struct gw__names *n);
void	 gw__names_cleanup(struct gw__names *n);
/*
 * In a child of fork(): free what n holds without its lock, which a
 * thread of the parent may have held (an entry it was adding is left).
 */
void	 gw__names_forget(struct gw__names *n);
/* Register name (copied; validated UTF-8 of 1..256 bytes); its id or a GW_E code. */
int	 gw__names_add(struct gw__names *n, const char *name, int64_t numel,
	    int depth, const int64_t *shape, int ndim);
/* Entry id, which must be below count (any thread). */
const struct gw__name *gw__names_get(const struct gw__names *n, uint32_t id);
/* 1 if s[0..len) is valid UTF-8 without NUL, else 0. */
int	 gw__utf8_is_valid(const char *s, size_t len);

/* encode.c: the request body (sender thread). */
struct gw__buf {			/* a growing string; failed sticks */
	char		*p;
	size_t		 len;
	size_t		 cap;
	int		 failed;
};
struct gw__srec {			/* a drained record */
	int64_t		 step;
	double		 value;
	uint32_t	 key;
	uint32_t	 ord;		/* drain order: the later value wins */
};
struct gw__enc {			/* the encoder's scratch, reused */
	uint32_t	*colof;		/* layer id -> column this request */
	uint32_t	*colgen;	/* layer id -> serial that set colof */
	uint32_t	*cols;		/* the request's layer ids, ascending */
	size_t		 ncols;
	double		*tv[GW__NTENSOR];	/* a step's values by column */
	uint8_t		*tset[GW__NTENSOR];	/* and whether set */
	uint32_t	*mpos;		/* metric id -> index in mids */
	uint32_t	*mgen;		/* metric id -> stepserial that set mpos */
	uint32_t	*mids;		/* a step's metrics, first-seen order */
	double		*mvals;
	size_t		 colcap_id, colgencap, colscap;
	size_t		 tvcap[GW__NTENSOR], tsetcap[GW__NTENSOR];
	size_t		 mposcap, mgencap, midscap, mvalscap;
	uint32_t	 serial;
	uint32_t	 stepserial;
	int64_t		 max_stamped;	/* the highest step given a time */
	int		 stamped;
};
void	 gw__buf_reserve(struct gw__buf *b, size_t more);
void	 gw__buf_put(struct gw__buf *b, const char *s, size_t n);
void	 gw__buf_puts(struct gw__buf *b, const char *s);
void	 gw__buf_int(struct gw__buf *b, int64_t v);
/* A JSON number, or "NaN", "Infinity", "-Infinity" (C locale assumed). */
void	 gw__buf_double(struct gw__buf *b, double v);
/* A JSON string of s[0..n), which is valid UTF-8. */
void	 gw__buf_string(struct gw__buf *b, const char *s, size_t n);
void	 gw__buf_free(struct gw__buf *b);
void	 gw__enc_free(struct gw__enc *e);
/*
 * Sort recs[0..n) by step and write one ingest body into b (replacing
 * its contents): meta when with_meta (layers below meta_layers), the
 * steps, and dropped.  0, or -1 when out of memory.
 */
int	 gw__encode_request(const struct gw_client *c, struct gw__enc *e,
	    struct gw__srec *recs, size_t n, uint32_t meta_layers,
	    int with_meta, uint64_t dropped, double now, struct gw__buf *b);

/* sender.c: the sender thread. */
int	 gw__sender_start(struct gw_client *c);
/* Sender state; NULL is fine. */
void	 gw__sender_free(struct gw__sender *s);

/* transport.c: one kept-alive connection (sender thread, but wakeup). */
struct gw__reply {
	long		 status;	/* HTTP status, 0 when none came */
	int		 aborted;	/* the deadline passed (closing) */
	long		 retry_after_ms;	/* Retry-After, or -1 */
	const char	*body;		/* NUL-terminated, owned by the transport */
	size_t		 len;
	char		 error[GW__ERRMSG_SIZE];	/* no status: why */
};
struct gw__transport *gw__transport_new(const char *auth);
void	 gw__transport_free(struct gw__transport *tr);
/*
 * In a child of fork(), tr whole (not in the middle of a request): free
 * it, unless it may have used TLS, whose teardown would take OpenSSL's
 * locks and write on the parent's connection; then it is left.
 */
void	 gw__transport_forget(struct gw__transport *tr);
/*
 * POST body to url; gives up at *deadline (ms, monotonic; re-read while
 * waiting, so a closer may lower it and call gw__transport_wakeup).
 * Once the body is sent, calls idle_cb(arg) (if not NULL) while waiting
 * for the answer, until it returns 1.  Returns 0 with *out filled
 * (status 0 for a network error).
 */
int	 gw__transport_post(struct gw__transport *tr, const char *url,
	    const char *body, size_t len, _Atomic int64_t *deadline,
	    int (*idle_cb)(void *), void *arg, struct gw__reply *out);
/* Any thread: interrupt a wait in gw__transport_post. */
void	 gw__transport_wakeup(struct gw__transport *tr);
/* 1 if status is an answer that resending the same body cannot change. */
int	 gw__reply_is_refusal(long status);
/* The wait before attempt attempts + 1 (ms): backoff, jitter from rnd, Retry-After. */
int64_t	 gw__backoff_ms(int attempts, long retry_after_ms, uint64_t rnd);
/* A short "code: message" from an error answer, for people. */
void	 gw__reply_text(const struct gw__reply *r, char *out, size_t size);

/*
 * spool.c: a run's spool file (see the format in spool.c).  One struct
 * gw__spool belongs to one thread: the sender's, or gw_sync's caller.
 */
#define GW__SPOOL_INGEST	'i'	/* a body for POST /api/v1/ingest */
#define GW__SPOOL_FINISH	'f'	/* a body for POST /api/v1/runs/{run}/finish */
#define GW__SPOOL_SUFFIX	".gwspool"
#define GW__SPOOL_CREATE	0x1	/* gw__spool_open: make it if missing */
#define GW__SPOOL_REPAIR	0x2	/* gw__spool_open: cut off a torn tail */
struct gw__spool;
struct gw__spool_rec {			/* a record as read back */
	int		 type;		/* GW__SPOOL_INGEST or GW__SPOOL_FINISH */
	uint32_t	 values;	/* the values in the body */
	char		 run[WIRE_RUN_KEY_MAX + 1];
	const char	*body;		/* NUL-terminated, owned by the spool until
					   its next read */
	size_t		 len;
	int64_t		 off;		/* where it starts in the file */
	int64_t		 end;		/* where the next one starts */
};
/* "<dir>/<run>.gwspool", allocated; NULL when out of memory. */
char	*gw__spool_path(const char *dir, const char *run);
/*
 * Open and lock (flock, without waiting) the spool file at path.  0 with
 * *out set, or with *out NULL when the file does not exist and flags has
 * no GW__SPOOL_CREATE; otherwise a GW_E code and why: GW_EBUSY when
 * another process holds it, GW_EINVAL when it is no spool file.  A note
 * may be left in why on success too (a torn tail that was cut off).
 */
int	 gw__spool_open(const char *path, int flags, size_t max,
	    struct gw__spool **out, char *why, size_t whylen);
/*
 * Close sp: sync it to disk if it holds records not yet accepted, else
 * (unless keep) empty and remove the file.  NULL is fine.
 */
void	 gw__spool_close(struct gw__spool *sp, int keep);
/*
 * In a child of fork(): close this process's descriptor and free sp,
 * leaving the file (and the parent's lock on it) as they are.
 */
void	 gw__spool_forget(struct gw__spool *sp);
/*
 * Append one record.  0; 1 when it would pass the limit (and force is 0:
 * nothing written); -1 on an I/O error (why set, the file as it was).
 */
int	 gw__spool_append(struct gw__spool *sp, int type, const char *run,
	    const char *body, size_t len, uint32_t values, int force,
	    char *why, size_t whylen);
/*
 * Read the first record not yet accepted from the read position on: 1
 * with *rec, 0 when there is none, -1 on an I/O error (why set).
 * *skipped gets the damaged bytes passed over to get there, and *torn is
 * 1 when they ran to the end of the file (what a crash leaves).
 */
int	 gw__spool_next(struct gw__spool *sp, struct gw__spool_rec *rec,
	    int64_t *skipped, int *torn, char *why, size_t whylen);
/* rec was taken (or refused for good): mark it so and move past it. */
void	 gw__spool_done(struct gw__spool *sp, const struct gw__spool_rec *rec);
/* 1 while records may wait past the read position. */
int	 gw__spool_has_pending(const struct gw__spool *sp);
int64_t	 gw__spool_size(const struct gw__spool *sp);
/* The URL to post rec to, allocated; NULL when out of memory. */
char	*gw__spool_url(const char *base, const struct gw__spool_rec *rec);

/* util.c: clocks (monotonic ms, wall seconds) and the debug line. */
int64_t	 gw__now_ms(void);
double	 gw__wall_time(void);
void	 gw__debug(const struct gw_client *c, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));

/* sender.c: free c and all it owns (the sender gone or the caller). */
void	 gw__client_free(struct gw_client *c);
/*
 * sender.c: in a child of fork(), free this process's copy of a handle of
 * the parent without a lock, a wait or a word to the daemon.
 */
void	 gw__client_forget(struct gw_client *c);

/* client.c */
/* Any thread: wake the sender now (once per crossing of the half mark). */
void	 gw__wake(struct gw_client *c);

/* options.c */
/* Validate opt and fill c's option fields; GW_OK or a code with *why set. */
int	 gw__options_apply(struct gw_client *c, const struct gw_options *opt,
	    char *why, size_t whylen);
/*
 * The daemon's URL (without a trailing slash) and the Authorization
 * header (or NULL) from opt and the environment, both allocated; GW_OK or
 * a code with why set.
 */
int	 gw__options_endpoint(const struct gw_options *opt, char **url,
	    char **auth, char *why, size_t whylen);

/* Evidence, kept longest: non-finite values, clip events, skipped steps. */
static inline int
gw__is_evidence(uint32_t key, double v)
{
	unsigned	kind = GW__KEY_KIND(key);

	if (!isfinite(v))
		return 1;
	return kind == GW__CLIP_MAX || kind == GW__CLIP_PRE ||
	    (kind == GW__SKIPPED && v != 0);
}

/*
 * Any thread: claim a cell and copy one record in.  Returns 0 and the
 * position taken, or -1 when the ring is full.  Lock-free: one CAS on
 * the tail, one release store.
 */
static inline int
gw__ring_push(struct gw__ring *r, uint32_t key, int64_t step, double v,
    uint64_t *posp)
{
	struct gw__cell	*cell;
	uint64_t	 pos;
	uint32_t	 seq;
	int32_t		 dif;

	pos = atomic_load_explicit(&r->tail, memory_order_relaxed);
	for (;;) {
		cell = &r->cells[pos & r->mask];
		seq = atomic_load_explicit(&cell->seq, memory_order_acquire);
		dif = (int32_t)(seq - (uint32_t)pos);
		if (dif == 0) {
			if (atomic_compare_exchange_weak_explicit(&r->tail,
			    &pos, pos + 1, memory_order_relaxed,
			    memory_order_relaxed))
				break;
		} else if (dif < 0)
			return -1;
		else
			pos = atomic_load_explicit(&r->tail,
			    memory_order_relaxed);
	}
	cell->key = key;
	cell->step = step;
	cell->value = v;
	atomic_store_explicit(&cell->seq, (uint32_t)pos + 1,
	    memory_order_release);
	*posp = pos;
	return 0;
}

/*
 * Any thread: the hot path behind every logging call.  No allocation,
 * no system call (but the rare wake-up), no lock.
 */
static inline int
gw__log(struct gw_client *c, uint32_t key, int64_t step, double v)
{
	uint64_t	pos;

	if (__builtin_expect(atomic_load_explicit(&c->gen,
	    memory_order_relaxed) != atomic_load_explicit(&gw__fork_gen,
	    memory_order_relaxed), 0))
		return GW_ECLOSED;
	if (__builtin_expect(gw__ring_push(&c->ring, key, step, v, &pos) == 0,
	    1)) {
		if (__builtin_expect((pos & c->wake_mask) == 0, 0) &&
		    pos - atomic_load_explicit(&c->ring.head,
		    memory_order_relaxed) >= c->wake_level &&
		    !atomic_load_explicit(&c->wake_pending,
		    memory_order_relaxed))
			gw__wake(c);
		return GW_OK;
	}
	if (!atomic_load_explicit(&c->wake_pending, memory_order_relaxed))
		gw__wake(c);
	if (gw__is_evidence(key, v) &&
	    gw__ring_push(&c->prio, key, step, v, &pos) == 0)
		return GW_OK;
	atomic_fetch_add_explicit(&c->dropped, 1, memory_order_relaxed);
	return GW_EFULL;
}

#endif /* GW_INTERNAL_H */
