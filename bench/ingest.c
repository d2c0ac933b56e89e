/* SPDX-License-Identifier: MIT */
/*
 * bench/ingest: a load generator for POST /api/v1/ingest.  Each of
 * --conns threads owns one keep-alive HTTP/1.1 connection and posts
 * pre-encoded bodies of realistic training steps (per-layer gradient
 * norms plus loss, grad_norm, lr and time) in the compact or the object
 * form, patching the step numbers in place so that every request
 * appends new steps; it counts the points the daemon says it committed.
 * The main thread samples the daemon's CPU time, RSS and anonymous
 * memory (RssAnon) from /proc and prints the figures, ending with one
 * machine-readable RESULT line, which also gives the rate of each
 * quarter of the points acknowledged (in order of their answers), so
 * that a slowdown as the database grows shows within one run.  With
 * --fill it instead sends a fixed number of steps to one run, shared
 * by the --conns connections in order (each takes the next request's
 * steps), to build a database or to time a run of a given size.
 * With --f32 the loss and the norms are float32 values widened to
 * double and written exactly (17 digits), as PyTorch's are; without
 * it they are decimals of --digits significant digits.
 */
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <dirent.h>

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define STEP_FIELD	12	/* width of a patched step number */
#define MAX_RETRIES	50	/* 503s or reconnects in a row, then give up */

enum form {
	FORM_COMPACT,
	FORM_OBJECT
};

/* A pre-encoded request body whose step numbers are patched per send. */
struct body {
	char		*buf;
	size_t		 len;
	size_t		*step_off;	/* offset of each step's STEP_FIELD */
};

/* A growable byte buffer. */
struct sbuf {
	char		*p;
	size_t		 len;
	size_t		 cap;
};

/* Buffered reader over one socket, for HTTP responses. */
struct reader {
	int		 fd;
	char		*buf;
	size_t		 cap;
	size_t		 start;
	size_t		 end;
};

/* One of the daemon's threads and its CPU seconds. */
struct task_cpu {
	long		 tid;
	char		 comm[32];
	double		 cpu;
};

#define MAX_TASKS	256

/* An answered request: when, and how many points it committed. */
struct done {
	double		 t;
	uint32_t	 n;
};

/* A sample of the daemon from /proc. */
struct sample {
	double		 t;
	double		 cpu;		/* seconds, utime + stime */
	long		 rss;		/* kB, VmRSS */
	long		 anon;		/* kB, RssAnon */
};

/* One connection and its thread; only that thread touches it until join. */
struct conn {
	int		 id;
	int		 fd;
	pthread_t	 thread;
	char		 run[160];
	struct body	*bodies;
	size_t		 nbodies;
	uint64_t	 next_step;
	struct reader	 rd;
	struct sbuf	 resp;		/* the latest response body */
	/* Counters for responses that arrived inside the window. */
	uint64_t	 points;
	uint64_t	 reqs;
	double		*lat;		/* ms */
	size_t		 nlat;
	size_t		 caplat;
	struct done	*done;		/* answers in the window, in order */
	size_t		 ndone;
	size_t		 capdone;
	/* Counters over the whole run. */
	uint64_t	 points_all;
	uint64_t	 reqs_all;
	uint64_t	 n503;
	uint64_t	 reconnects;
	int		 failed;
	char		 error[256];
};

static struct {
	const char	*host;
	int		 port;
	struct sockaddr_in addr;
	int		 conns;
	int		 layers;
	int		 steps_per_req;
	double		 seconds;
	double		 warmup;
	enum form	 form;
	long		 pid;
	const char	*run;
	uint64_t	 fill;
	uint64_t	 first_step;
	int		 f32;
	int		 digits;
	int		 nbodies;
	int		 quiet;
	double		 t_window;	/* monotonic seconds */
	double		 t_end;
	char		 hosthdr[128];
} opt;

static atomic_int	stop;
static atomic_int	conns_done;	/* threads that have finished */
static atomic_uint_fast64_t next_block;	/* fill mode: the next request */
static uint64_t		nblocks;	/* fill mode: requests to send */
static uint64_t		rng_state = 0x9e3779b97f4a7c15ULL;

static void
die(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	fputs("ingest: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

static void *
xmalloc(size_t n)
{
	void	*p;

	if ((p = malloc(n == 0 ? 1 : n)) == NULL)
		die("out of memory");
	return p;
}

static void *
xrealloc(void *p, size_t n)
{
	if ((p = realloc(p, n == 0 ? 1 : n)) == NULL)
		die("out of memory");
	return p;
}

static double
now_mono(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
sleep_until(double t)
{
	struct timespec	ts;
	double		d;

	while ((d = t - now_mono()) > 0) {
		ts.tv_sec = (time_t)d;
		ts.tv_nsec = (long)((d - ts.tv_sec) * 1e9);
		nanosleep(&ts, NULL);
	}
}

/* xorshift64*; the bodies are the same from run to run. */
static double
rng_uniform(void)
{
	uint64_t	x = rng_state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	rng_state = x;
	return ((x * 0x2545f4914f6cdd1dULL) >> 11) * (1.0 / 9007199254740992.0);
}

static double
rng_normal(void)
{
	double	u1, u2;

	do {
		u1 = rng_uniform();
	} while (u1 <= 0.0);
	u2 = rng_uniform();
	return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

static void
sbuf_grow(struct sbuf *b, size_t more)
{
	if (b->len + more + 1 <= b->cap)
		return;
	while (b->len + more + 1 > b->cap)
		b->cap = b->cap == 0 ? 4096 : b->cap * 2;
	b->p = xrealloc(b->p, b->cap);
}

static void
sbuf_add(struct sbuf *b, const char *s, size_t n)
{
	sbuf_grow(b, n);
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void
sbuf_printf(struct sbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
sbuf_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list	ap;
	int	n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		die("vsnprintf failed");
	sbuf_grow(b, (size_t)n);
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

/*
 * Tensor names as a transformer reports them: 9 tensors per block,
 * then the embedding and the head; layer i gets name i.
 */
static void
layer_name(int i, char *out, size_t len)
{
	static const char *const part[] = {
		"self_attn.q_proj.weight", "self_attn.k_proj.weight",
		"self_attn.v_proj.weight", "self_attn.o_proj.weight",
		"mlp.gate_proj.weight", "mlp.up_proj.weight",
		"mlp.down_proj.weight", "input_layernorm.weight",
		"post_attention_layernorm.weight"
	};

	if (i == 0)
		snprintf(out, len, "model.embed_tokens.weight");
	else
		snprintf(out, len, "model.layers.%d.%s", (i - 1) / 9,
		    part[(i - 1) % 9]);
}

/* Write v right-aligned into a STEP_FIELD-wide field of spaces. */
static void
patch_step(char *p, uint64_t v)
{
	int	i = STEP_FIELD;

	memset(p, ' ', STEP_FIELD);
	do {
		p[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0 && i > 0);
}

/* 1 if s contains word, ignoring case (strcasestr is not POSIX). */
static int
has_word(const char *s, const char *word)
{
	size_t	n = strlen(word);

	for (; *s != '\0'; s++)
		if (strncasecmp(s, word, n) == 0)
			return 1;
	return 0;
}

/* A value as the client would send it: rounded to --digits. */
static void
add_number(struct sbuf *b, double v)
{
	sbuf_printf(b, "%.*g", opt.digits, v);
}

/*
 * A value from the model: with --f32 the float32 nearest v, widened
 * and written with 17 digits so that it parses back to exactly that
 * double (as Python's repr() of a tensor's item() does); else as
 * add_number().
 */
static void
add_value(struct sbuf *b, double v)
{
	if (opt.f32)
		sbuf_printf(b, "%.17g", (double)(float)v);
	else
		add_number(b, v);
}

/* v as the model computes it: a float32 with --f32. */
static double
model_value(double v)
{
	return opt.f32 ? (double)(float)v : v;
}

/*
 * Encode one body for run: steps_per_req steps of loss, grad_norm, lr,
 * time and one gradient norm per layer.  Each layer's norm is
 * log-normal around its own scale and drifts from step to step; body
 * number k uses its own draw so that the bodies differ.
 */
static void
body_build(struct body *bd, const char *run, const double *scale, int k)
{
	struct sbuf	 b = { NULL, 0, 0 };
	char		 name[128];
	double		 drift, gn;
	int		 i, l;

	bd->step_off = xmalloc(sizeof *bd->step_off * opt.steps_per_req);
	sbuf_printf(&b, "{\"run\":\"%s\",", run);
	if (opt.form == FORM_COMPACT && opt.layers > 0) {
		sbuf_add(&b, "\"layer_names\":[", 15);
		for (l = 0; l < opt.layers; l++) {
			layer_name(l, name, sizeof name);
			sbuf_printf(&b, "%s\"%s\"", l ? "," : "", name);
		}
		sbuf_add(&b, "],", 2);
	}
	sbuf_add(&b, "\"steps\":[", 9);
	for (i = 0; i < opt.steps_per_req; i++) {
		drift = 1.0 + 0.05 * sin((k * opt.steps_per_req + i) / 37.0);
		gn = 0.0;
		sbuf_printf(&b, "%s{\"step\":", i ? "," : "");
		bd->step_off[i] = b.len;
		sbuf_grow(&b, STEP_FIELD);
		patch_step(b.p + b.len, 0);
		b.len += STEP_FIELD;
		b.p[b.len] = '\0';
		sbuf_printf(&b, ",\"time\":%.3f,\"loss\":",
		    1764061200.0 + 0.25 * (k * opt.steps_per_req + i));
		add_value(&b, 2.3 * exp(-0.01 * k) *
		    (1 + 0.02 * rng_normal()));
		if (opt.layers > 0)
			sbuf_add(&b, opt.form == FORM_COMPACT ?
			    ",\"layers\":[" : ",\"layers\":{", 11);
		for (l = 0; l < opt.layers; l++) {
			double	v = model_value(scale[l] * drift *
			    exp(0.15 * rng_normal()));

			gn += v * v;
			if (l)
				sbuf_add(&b, ",", 1);
			if (opt.form == FORM_OBJECT) {
				layer_name(l, name, sizeof name);
				sbuf_printf(&b, "\"%s\":", name);
			}
			add_value(&b, v);
		}
		if (opt.layers > 0)
			sbuf_add(&b, opt.form == FORM_COMPACT ? "]" : "}", 1);
		sbuf_add(&b, ",\"grad_norm\":", 13);
		add_value(&b, opt.layers > 0 ? sqrt(gn) :
		    exp(0.2 * rng_normal()));
		sbuf_add(&b, ",\"lr\":", 6);
		add_number(&b, 3e-4 * drift);
		sbuf_add(&b, "}", 1);
	}
	sbuf_add(&b, "]}", 2);
	bd->buf = b.p;
	bd->len = b.len;
}

static void
conn_bodies(struct conn *c, const double *scale)
{
	int	k;

	c->nbodies = (size_t)opt.nbodies;
	c->bodies = xmalloc(sizeof *c->bodies * c->nbodies);
	for (k = 0; k < opt.nbodies; k++)
		body_build(&c->bodies[k], c->run, scale, k);
}

static void
conn_close(struct conn *c)
{
	if (c->fd != -1)
		close(c->fd);
	c->fd = -1;
	c->rd.start = c->rd.end = 0;
}

static int
conn_connect(struct conn *c)
{
	int	one = 1;

	conn_close(c);
	if ((c->fd = socket(AF_INET, SOCK_STREAM, 0)) == -1) {
		snprintf(c->error, sizeof c->error, "socket: %s",
		    strerror(errno));
		return -1;
	}
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (connect(c->fd, (struct sockaddr *)&opt.addr,
	    sizeof opt.addr) == -1) {
		snprintf(c->error, sizeof c->error, "connect %s:%d: %s",
		    opt.host, opt.port, strerror(errno));
		conn_close(c);
		return -1;
	}
	c->rd.fd = c->fd;
	return 0;
}

/* Read more bytes into the reader; -1 on error or end of stream. */
static int
reader_fill(struct reader *r)
{
	ssize_t	n;

	if (r->start > 0 && r->start == r->end)
		r->start = r->end = 0;
	if (r->end == r->cap) {
		if (r->start > 0) {
			memmove(r->buf, r->buf + r->start, r->end - r->start);
			r->end -= r->start;
			r->start = 0;
		} else {
			r->cap = r->cap == 0 ? 65536 : r->cap * 2;
			r->buf = xrealloc(r->buf, r->cap);
		}
	}
	do {
		n = read(r->fd, r->buf + r->end, r->cap - r->end);
	} while (n == -1 && errno == EINTR);
	if (n <= 0)
		return -1;
	r->end += (size_t)n;
	return 0;
}

/* Next CRLF-terminated line, NUL-terminated in place; NULL on error. */
static char *
reader_line(struct reader *r)
{
	char	*line, *nl;

	for (;;) {
		if (r->end > r->start &&
		    (nl = memchr(r->buf + r->start, '\n',
		    r->end - r->start)) != NULL) {
			line = r->buf + r->start;
			r->start = (size_t)(nl - r->buf) + 1;
			*nl = '\0';
			if (nl > line && nl[-1] == '\r')
				nl[-1] = '\0';
			return line;
		}
		if (r->end == r->cap && r->start == 0 && r->cap >= (1 << 20))
			return NULL;	/* a line over 1 MiB: not HTTP */
		if (reader_fill(r) == -1)
			return NULL;
	}
}

/* Append n body bytes to out. */
static int
reader_bytes(struct reader *r, struct sbuf *out, size_t n)
{
	size_t	k;

	while (n > 0) {
		if (r->start == r->end && reader_fill(r) == -1)
			return -1;
		k = r->end - r->start;
		if (k > n)
			k = n;
		sbuf_add(out, r->buf + r->start, k);
		r->start += k;
		n -= k;
	}
	return 0;
}

/*
 * Read one response: its status, Retry-After, whether the server will
 * close, and the body (Content-Length or chunked) into c->resp.
 */
static int
conn_read_response(struct conn *c, int *status, int *retry_after,
    int *closing)
{
	char		*line, *v;
	long long	 clen = -1;
	unsigned long	 chunk;
	int		 chunked = 0, minor = 1;

	*retry_after = 1;
	*closing = 0;
	c->resp.len = 0;
	if ((line = reader_line(&c->rd)) == NULL)
		return -1;
	if (sscanf(line, "HTTP/1.%d %d", &minor, status) != 2)
		return -1;
	if (minor == 0)
		*closing = 1;
	while ((line = reader_line(&c->rd)) != NULL && *line != '\0') {
		if ((v = strchr(line, ':')) == NULL)
			continue;
		*v++ = '\0';
		while (*v == ' ' || *v == '\t')
			v++;
		if (strcasecmp(line, "Content-Length") == 0)
			clen = strtoll(v, NULL, 10);
		else if (strcasecmp(line, "Transfer-Encoding") == 0 &&
		    has_word(v, "chunked"))
			chunked = 1;
		else if (strcasecmp(line, "Retry-After") == 0)
			*retry_after = atoi(v);
		else if (strcasecmp(line, "Connection") == 0 &&
		    has_word(v, "close"))
			*closing = 1;
	}
	if (line == NULL)
		return -1;
	if (chunked) {
		for (;;) {
			if ((line = reader_line(&c->rd)) == NULL)
				return -1;
			chunk = strtoul(line, NULL, 16);
			if (chunk == 0)
				break;
			if (reader_bytes(&c->rd, &c->resp, chunk) == -1 ||
			    reader_line(&c->rd) == NULL)
				return -1;
		}
		while ((line = reader_line(&c->rd)) != NULL && *line != '\0')
			;	/* trailers */
		if (line == NULL)
			return -1;
	} else if (clen >= 0) {
		if (reader_bytes(&c->rd, &c->resp, (size_t)clen) == -1)
			return -1;
	} else {
		/* Neither: the body runs to the end of the stream. */
		while (reader_fill(&c->rd) == 0)
			;
		sbuf_add(&c->resp, c->rd.buf + c->rd.start,
		    c->rd.end - c->rd.start);
		c->rd.start = c->rd.end;
		*closing = 1;
	}
	sbuf_add(&c->resp, "", 0);	/* NUL-terminate an empty body */
	return 0;
}

static int
write_all(int fd, struct iovec *iov, int iovcnt)
{
	ssize_t	n;

	while (iovcnt > 0) {
		n = writev(fd, iov, iovcnt);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		while (iovcnt > 0 && (size_t)n >= iov->iov_len) {
			n -= (ssize_t)iov->iov_len;
			iov++;
			iovcnt--;
		}
		if (iovcnt > 0) {
			iov->iov_base = (char *)iov->iov_base + n;
			iov->iov_len -= (size_t)n;
		}
	}
	return 0;
}

/*
 * Post body bd until it is answered with something other than 503.
 * Returns the final status, or -1 with c->error on transport failure.
 */
static int
conn_post(struct conn *c, struct body *bd)
{
	struct iovec	 iov[2];
	char		 hdr[256];
	int		 hlen, status, retry, closing, tries = 0;

	hlen = snprintf(hdr, sizeof hdr,
	    "POST /api/v1/ingest HTTP/1.1\r\nHost: %s\r\n"
	    "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
	    opt.hosthdr, bd->len);
	for (;;) {
		if (++tries > MAX_RETRIES) {
			snprintf(c->error, sizeof c->error,
			    "gave up after %d tries", MAX_RETRIES);
			return -1;
		}
		if (c->fd == -1) {
			if (conn_connect(c) == -1)
				return -1;
			c->reconnects++;
		}
		iov[0].iov_base = hdr;
		iov[0].iov_len = (size_t)hlen;
		iov[1].iov_base = bd->buf;
		iov[1].iov_len = bd->len;
		if (write_all(c->fd, iov, 2) == -1 ||
		    conn_read_response(c, &status, &retry, &closing) == -1) {
			/* The server may close an idle keep-alive: retry. */
			conn_close(c);
			usleep(10000);
			continue;
		}
		if (closing)
			conn_close(c);
		if (status != 503)
			return status;
		c->n503++;
		if (atomic_load(&stop))
			return status;
		sleep(retry > 0 && retry < 30 ? (unsigned)retry : 1);
	}
}

/* "accepted": N from a 200 body; -1 if absent. */
static long long
accepted_count(const char *body)
{
	const char	*p;

	if ((p = strstr(body, "\"accepted\"")) == NULL)
		return -1;
	p += strlen("\"accepted\"");
	while (*p == ' ' || *p == ':')
		p++;
	return strtoll(p, NULL, 10);
}

static void
conn_record(struct conn *c, double t0, double t1, long long n)
{
	c->points_all += (uint64_t)n;
	c->reqs_all++;
	/* Completions inside the window measure its throughput. */
	if (t1 < opt.t_window || t1 > opt.t_end)
		return;
	c->points += (uint64_t)n;
	c->reqs++;
	if (c->ndone == c->capdone) {
		c->capdone = c->capdone ? c->capdone * 2 : 1024;
		c->done = xrealloc(c->done, sizeof *c->done * c->capdone);
	}
	c->done[c->ndone].t = t1;
	c->done[c->ndone++].n = (uint32_t)n;
	if (c->nlat == c->caplat) {
		c->caplat = c->caplat ? c->caplat * 2 : 1024;
		c->lat = xrealloc(c->lat, sizeof *c->lat * c->caplat);
	}
	c->lat[c->nlat++] = (t1 - t0) * 1e3;
}

/*
 * Connection thread: post until the end of the window, or in fill mode
 * until every request has been taken (each thread takes the next).
 */
static void *
conn_main(void *arg)
{
	struct conn	*c = arg;
	struct body	*bd;
	double		 t0, t1;
	long long	 n;
	uint64_t	 first, blk;
	size_t		 k = 0;
	int		 i, status;

	if (conn_connect(c) == -1) {
		c->failed = 1;
		atomic_store(&stop, 1);
		atomic_fetch_add(&conns_done, 1);
		return NULL;
	}
	for (;;) {
		if (opt.fill) {
			blk = atomic_fetch_add(&next_block, 1);
			if (blk >= nblocks || atomic_load(&stop))
				break;
			first = opt.first_step +
			    blk * (uint64_t)opt.steps_per_req;
		} else {
			if (atomic_load(&stop) || now_mono() >= opt.t_end)
				break;
			first = c->next_step;
		}
		bd = &c->bodies[k++ % c->nbodies];
		for (i = 0; i < opt.steps_per_req; i++)
			patch_step(bd->buf + bd->step_off[i],
			    first + (uint64_t)i);
		t0 = now_mono();
		status = conn_post(c, bd);
		t1 = now_mono();
		if (status == -1) {
			c->failed = 1;
			break;
		}
		if (status == 503 && atomic_load(&stop))
			break;		/* the window closed while shedding */
		if (status != 200) {
			snprintf(c->error, sizeof c->error,
			    "HTTP %d: %.200s", status, c->resp.p);
			c->failed = 1;
			break;
		}
		if ((n = accepted_count(c->resp.p)) < 0) {
			snprintf(c->error, sizeof c->error,
			    "200 without \"accepted\": %.200s", c->resp.p);
			c->failed = 1;
			break;
		}
		conn_record(c, t0, t1, n);
		c->next_step += (uint64_t)opt.steps_per_req;
	}
	conn_close(c);
	if (c->failed)
		atomic_store(&stop, 1);
	atomic_fetch_add(&conns_done, 1);
	return NULL;
}

/*
 * CPU seconds (utime + stime) from a /proc stat file, and the thread's
 * name into comm; -1 if unreadable.
 */
static double
stat_cpu(const char *path, char *comm, size_t commlen)
{
	char		 buf[4096], *p, *q;
	unsigned long	 ut, st;
	FILE		*f;
	size_t		 n;

	if ((f = fopen(path, "r")) == NULL)
		return -1;
	n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* Fields after the parenthesised name: state is field 3. */
	if ((p = strrchr(buf, ')')) == NULL || (q = strchr(buf, '(')) == NULL)
		return -1;
	if (comm != NULL)
		snprintf(comm, commlen, "%.*s", (int)(p - q - 1), q + 1);
	if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
	    "%lu %lu", &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* The daemon's CPU seconds; -1 if unreadable. */
static double
proc_cpu(long pid)
{
	char	path[64];

	snprintf(path, sizeof path, "/proc/%ld/stat", pid);
	return stat_cpu(path, NULL, 0);
}

/* CPU seconds of each of the daemon's threads; returns how many. */
static size_t
proc_tasks(long pid, struct task_cpu *t, size_t max)
{
	struct dirent	*de;
	DIR		*d;
	char		 path[300];
	size_t		 n = 0;

	snprintf(path, sizeof path, "/proc/%ld/task", pid);
	if ((d = opendir(path)) == NULL)
		return 0;
	while (n < max && (de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "/proc/%ld/task/%s/stat", pid,
		    de->d_name);
		t[n].tid = atol(de->d_name);
		if ((t[n].cpu = stat_cpu(path, t[n].comm,
		    sizeof t[n].comm)) >= 0)
			n++;
	}
	closedir(d);
	return n;
}

static int
cmp_task(const void *a, const void *b)
{
	double	x = ((const struct task_cpu *)a)->cpu;
	double	y = ((const struct task_cpu *)b)->cpu;

	return (x < y) - (x > y);	/* busiest first */
}

/*
 * Print the busiest threads over the window: one thread near 1.00
 * core while the rest idle shows a serial bottleneck.
 */
static void
print_tasks(struct task_cpu *t0, size_t n0, struct task_cpu *t1, size_t n1,
    double elapsed)
{
	size_t	i, j;

	for (i = 0; i < n1; i++)
		for (j = 0; j < n0; j++)
			if (t0[j].tid == t1[i].tid) {
				t1[i].cpu -= t0[j].cpu;
				break;
			}
	qsort(t1, n1, sizeof *t1, cmp_task);
	printf("  daemon threads, cores busy:");
	for (i = 0; i < n1 && i < 6 && t1[i].cpu > 0; i++)
		printf(" %s/%ld %.2f", t1[i].comm, t1[i].tid,
		    t1[i].cpu / elapsed);
	printf("\n");
}

/*
 * The daemon's VmRSS into *rss and its RssAnon (heap and stacks, not
 * the mapped database file) into *anon, in kB; -1 if unreadable.
 */
static long
proc_rss(long pid, long *anon)
{
	char	 path[64], line[256];
	long	 kb = -1, v;
	FILE	*f;

	*anon = -1;
	snprintf(path, sizeof path, "/proc/%ld/status", pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof line, f) != NULL) {
		if (sscanf(line, "VmRSS: %ld", &v) == 1)
			kb = v;
		else if (sscanf(line, "RssAnon: %ld", &v) == 1)
			*anon = v;
	}
	fclose(f);
	return kb;
}

static double
self_cpu(void)
{
	struct rusage	ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	    ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static int
cmp_double(const void *a, const void *b)
{
	double	x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double
percentile(const double *v, size_t n, double p)
{
	size_t	i;

	if (n == 0)
		return 0;
	i = (size_t)ceil(p * (double)n);
	if (i > 0)
		i--;
	if (i >= n)
		i = n - 1;
	return v[i];
}

static void
usage(void)
{
	fprintf(stderr,
	    "usage: ingest [-q] [--url HOST:PORT] [--conns N] [--layers N]\n"
	    "              [--steps-per-req N] [--seconds S] [--warmup S]\n"
	    "              [--form compact|object] [--pid PID] [--run KEY]\n"
	    "              [--fill STEPS] [--first-step N] [--f32 | --digits N]\n"
	    "              [--bodies K]\n");
	exit(2);
}

static long long
parse_num(const char *s, const char *what, long long lo, long long hi)
{
	char		*end;
	long long	 v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < lo || v > hi)
		die("%s: %s: expected an integer in %lld..%lld", what, s, lo,
		    hi);
	return v;
}

static void
parse_args(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "url", required_argument, NULL, 'u' },
		{ "conns", required_argument, NULL, 'c' },
		{ "layers", required_argument, NULL, 'l' },
		{ "steps-per-req", required_argument, NULL, 's' },
		{ "seconds", required_argument, NULL, 't' },
		{ "warmup", required_argument, NULL, 'w' },
		{ "form", required_argument, NULL, 'f' },
		{ "pid", required_argument, NULL, 'p' },
		{ "run", required_argument, NULL, 'r' },
		{ "fill", required_argument, NULL, 'F' },
		{ "digits", required_argument, NULL, 'd' },
		{ "bodies", required_argument, NULL, 'b' },
		{ "first-step", required_argument, NULL, 'S' },
		{ "f32", no_argument, NULL, '3' },
		{ "quiet", no_argument, NULL, 'q' },
		{ NULL, 0, NULL, 0 }
	};
	static char	 host[64];
	const char	*url = "127.0.0.1:7070", *colon;
	char		*end;
	int		 ch, conns_set = 0;

	opt.conns = 4;
	opt.layers = 200;
	opt.steps_per_req = 50;
	opt.seconds = 10;
	opt.warmup = 1;
	opt.form = FORM_COMPACT;
	opt.pid = -1;
	opt.digits = 9;
	opt.nbodies = 4;
	while ((ch = getopt_long(argc, argv, "q", longopts, NULL)) != -1) {
		switch (ch) {
		case '3':
			opt.f32 = 1;
			break;
		case 'b':
			opt.nbodies = (int)parse_num(optarg, "--bodies", 1, 64);
			break;
		case 'c':
			opt.conns = (int)parse_num(optarg, "--conns", 1, 256);
			conns_set = 1;
			break;
		case 'd':
			opt.digits = (int)parse_num(optarg, "--digits", 1, 17);
			break;
		case 'F':
			opt.fill = (uint64_t)parse_num(optarg, "--fill", 1,
			    INT64_MAX / 2);
			break;
		case 'f':
			if (strcmp(optarg, "compact") == 0)
				opt.form = FORM_COMPACT;
			else if (strcmp(optarg, "object") == 0)
				opt.form = FORM_OBJECT;
			else
				die("--form: compact or object");
			break;
		case 'l':
			opt.layers = (int)parse_num(optarg, "--layers", 0,
			    100000);
			break;
		case 'p':
			opt.pid = (long)parse_num(optarg, "--pid", 1,
			    INT32_MAX);
			break;
		case 'q':
			opt.quiet = 1;
			break;
		case 'r':
			opt.run = optarg;
			break;
		case 'S':
			opt.first_step = (uint64_t)parse_num(optarg,
			    "--first-step", 0, INT64_MAX / 4);
			break;
		case 's':
			opt.steps_per_req = (int)parse_num(optarg,
			    "--steps-per-req", 1, 1000000);
			break;
		case 't':
			opt.seconds = strtod(optarg, &end);
			if (*end != '\0' || !(opt.seconds > 0))
				die("--seconds: %s: expected a positive number",
				    optarg);
			break;
		case 'u':
			url = optarg;
			break;
		case 'w':
			opt.warmup = strtod(optarg, &end);
			if (*end != '\0' || !(opt.warmup >= 0))
				die("--warmup: %s: expected a number >= 0",
				    optarg);
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	if (strncmp(url, "http://", 7) == 0)
		url += 7;
	if ((colon = strrchr(url, ':')) == NULL ||
	    (size_t)(colon - url) >= sizeof host)
		die("--url: %s: expected HOST:PORT", url);
	memcpy(host, url, (size_t)(colon - url));
	host[colon - url] = '\0';
	opt.host = host;
	opt.port = (int)parse_num(colon + 1, "--url port", 1, 65535);
	opt.addr.sin_family = AF_INET;
	opt.addr.sin_port = htons((uint16_t)opt.port);
	if (strcmp(host, "localhost") == 0)
		strcpy(host, "127.0.0.1");
	if (inet_pton(AF_INET, host, &opt.addr.sin_addr) != 1)
		die("--url: %s: expected a numeric IPv4 address", host);
	snprintf(opt.hosthdr, sizeof opt.hosthdr, "%s:%d", host, opt.port);
	/* Fill mode: one connection unless told more. */
	if (opt.fill && !conns_set)
		opt.conns = 1;
	if (opt.fill)
		nblocks = (opt.fill + (uint64_t)opt.steps_per_req - 1) /
		    (uint64_t)opt.steps_per_req;
}

#define SAMPLE_PERIOD	0.25	/* seconds between samples of the daemon */

/* The samples of the daemon, taken by the main thread only. */
static struct sample	*samples;
static size_t		 nsamples, capsamples;

/* Sample the daemon's CPU time, RSS and RssAnon now (with --pid). */
static void
sample_take(void)
{
	struct sample	s;

	if (opt.pid <= 0)
		return;
	s.t = now_mono();
	s.cpu = proc_cpu(opt.pid);
	s.rss = proc_rss(opt.pid, &s.anon);
	if (s.cpu < 0 || s.rss < 0)
		return;
	if (nsamples == capsamples) {
		capsamples = capsamples ? capsamples * 2 : 256;
		samples = xrealloc(samples, sizeof *samples * capsamples);
	}
	samples[nsamples++] = s;
}

/* The sample taken nearest to t; NULL if there is none. */
static const struct sample *
sample_near(double t)
{
	const struct sample	*best = NULL;
	size_t			 i;

	for (i = 0; i < nsamples; i++)
		if (best == NULL || fabs(samples[i].t - t) < fabs(best->t - t))
			best = &samples[i];
	return best;
}

/* The daemon's CPU seconds at t, linear between samples; -1 if unknown. */
static double
sample_cpu_at(double t)
{
	size_t	i;
	double	f;

	if (nsamples == 0)
		return -1;
	if (t <= samples[0].t)
		return samples[0].cpu;
	for (i = 1; i < nsamples; i++)
		if (samples[i].t >= t) {
			f = (t - samples[i - 1].t) /
			    (samples[i].t - samples[i - 1].t);
			return samples[i - 1].cpu +
			    f * (samples[i].cpu - samples[i - 1].cpu);
		}
	return samples[nsamples - 1].cpu;
}

/* A quarter of the points acknowledged, in the order of their answers. */
struct quarter {
	double		 t0;
	double		 t1;
	uint64_t	 points;
	double		 pps;
	double		 cpu_us;	/* daemon CPU a point; -1 unknown */
	long		 anon;		/* RssAnon (kB) at its end; -1 unknown */
};

static int
cmp_done(const void *a, const void *b)
{
	double	x = ((const struct done *)a)->t;
	double	y = ((const struct done *)b)->t;

	return (x > y) - (x < y);
}

/*
 * Cut the answers d[0..n-1] (sorted by time) into four quarters of the
 * points, the first starting at t_start, and rate each.
 */
static void
quarters_compute(const struct done *d, size_t n, double t_start,
    struct quarter q[4])
{
	const struct sample	*s;
	uint64_t		 total = 0, cum = 0, cprev = 0;
	double			 tprev = t_start, c0, c1;
	size_t			 i;
	int			 k = 0;

	memset(q, 0, 4 * sizeof *q);
	for (k = 0; k < 4; k++) {
		q[k].cpu_us = -1;
		q[k].anon = -1;
	}
	k = 0;
	for (i = 0; i < n; i++)
		total += d[i].n;
	for (i = 0; i < n && k < 4; i++) {
		cum += d[i].n;
		while (k < 4 && cum * 4 >= total * (uint64_t)(k + 1)) {
			q[k].t0 = tprev;
			q[k].t1 = d[i].t;
			q[k].points = cum - cprev;
			if (q[k].t1 > q[k].t0)
				q[k].pps = (double)q[k].points /
				    (q[k].t1 - q[k].t0);
			c0 = sample_cpu_at(q[k].t0);
			c1 = sample_cpu_at(q[k].t1);
			if (c0 >= 0 && c1 >= 0 && q[k].points > 0)
				q[k].cpu_us = (c1 - c0) * 1e6 /
				    (double)q[k].points;
			if ((s = sample_near(q[k].t1)) != NULL)
				q[k].anon = s->anon;
			tprev = d[i].t;
			cprev = cum;
			k++;
		}
	}
}

/* Sleep until t, or until every connection thread is done (fill mode). */
static void
sleep_sample(double t)
{
	double	d;

	while ((d = t - now_mono()) > 0) {
		if (opt.fill ? atomic_load(&conns_done) >= opt.conns :
		    atomic_load(&stop))
			return;
		sleep_until(now_mono() + (d < 0.01 ? d : 0.01));
	}
}

int
main(int argc, char **argv)
{
	static struct task_cpu tasks0[MAX_TASKS], tasks1[MAX_TASKS];
	struct quarter	 q[4];
	struct conn	*conns;
	struct done	*done;
	const char	*form;
	char		 values[16];
	double		*scale, *lat, t_start, t0, cpu0 = -1, cpu1 = -1;
	double		 self0 = 0, self1 = 0, t;
	double		 elapsed = 0, pps, cpu_pp = -1;
	long		 rss_min = -1, rss_max = -1, rss_first = -1;
	long		 rss_quarter = -1, rss_last = -1;
	long		 anon_min = -1, anon_max = -1, anon_first = -1;
	long		 anon_last = -1;
	uint64_t	 points = 0, reqs = 0, points_all = 0, n503 = 0;
	uint64_t	 reconnects = 0;
	size_t		 nlat = 0, ndone = 0, ntasks0 = 0, ntasks1 = 0, k;
	int		 i, l, failed = 0, tick;

	parse_args(argc, argv);
	signal(SIGPIPE, SIG_IGN);
	form = opt.form == FORM_COMPACT ? "compact" : "object";
	if (opt.f32)
		snprintf(values, sizeof values, "f32");
	else
		snprintf(values, sizeof values, "decimal%d", opt.digits);

	scale = xmalloc(sizeof *scale * (opt.layers + 1));
	for (l = 0; l < opt.layers; l++)
		scale[l] = exp(-3.0 + 1.2 * rng_normal());
	conns = calloc((size_t)opt.conns, sizeof *conns);
	if (conns == NULL)
		die("out of memory");
	for (i = 0; i < opt.conns; i++) {
		struct conn	*c = &conns[i];

		c->id = i;
		c->fd = -1;
		if (opt.fill)	/* one run, shared */
			snprintf(c->run, sizeof c->run, "%s",
			    opt.run ? opt.run : "bench-fill");
		else if (opt.run != NULL && opt.conns == 1)
			snprintf(c->run, sizeof c->run, "%s", opt.run);
		else
			snprintf(c->run, sizeof c->run, "%s-%d",
			    opt.run ? opt.run : opt.form == FORM_COMPACT ?
			    "bench-compact" : "bench-object", i);
		c->next_step = opt.first_step;
		conn_bodies(c, scale);
	}
	if (!opt.quiet) {
		fprintf(stderr, "ingest: %d conns, %d layers x %d steps a "
		    "request, %s form, %s values, %zu bytes a body\n",
		    opt.conns, opt.layers, opt.steps_per_req, form, values,
		    conns[0].bodies[0].len);
		if (opt.fill)
			fprintf(stderr, "ingest: filling run %s, steps %"
			    PRIu64 "..%" PRIu64 "\n", conns[0].run,
			    opt.first_step, opt.first_step + nblocks *
			    (uint64_t)opt.steps_per_req - 1);
	}

	t_start = now_mono();
	if (opt.fill) {
		opt.t_window = t_start;
		opt.t_end = 1e300;
	} else {
		opt.t_window = t_start + opt.warmup;
		opt.t_end = opt.t_window + opt.seconds;
	}
	t0 = opt.t_window;
	if (opt.fill) {
		self0 = self_cpu();
		if (opt.pid > 0) {
			cpu0 = proc_cpu(opt.pid);
			ntasks0 = proc_tasks(opt.pid, tasks0, MAX_TASKS);
			sample_take();
		}
	}
	for (i = 0; i < opt.conns; i++)
		if (pthread_create(&conns[i].thread, NULL, conn_main,
		    &conns[i]) != 0)
			die("pthread_create failed");

	if (!opt.fill) {
		sleep_until(opt.t_window);
		self0 = self_cpu();
		if (opt.pid > 0) {
			cpu0 = proc_cpu(opt.pid);
			ntasks0 = proc_tasks(opt.pid, tasks0, MAX_TASKS);
			sample_take();
		}
	}
	/* Sample the daemon through the window, or until the fill is done. */
	for (tick = 1;; tick++) {
		t = t0 + tick * SAMPLE_PERIOD;
		if (!opt.fill && t > opt.t_end)
			t = opt.t_end;
		sleep_sample(t);
		sample_take();
		if (opt.fill ? atomic_load(&conns_done) >= opt.conns :
		    atomic_load(&stop) || now_mono() >= opt.t_end)
			break;
	}
	if (opt.pid > 0) {
		cpu1 = proc_cpu(opt.pid);
		ntasks1 = proc_tasks(opt.pid, tasks1, MAX_TASKS);
	}
	self1 = self_cpu();
	if (!opt.fill) {
		atomic_store(&stop, 1);	/* ends any Retry-After wait */
		elapsed = now_mono() - opt.t_window;
		if (elapsed > opt.seconds)
			elapsed = opt.seconds;	/* the window's own length */
	}
	for (i = 0; i < opt.conns; i++)
		pthread_join(conns[i].thread, NULL);
	if (opt.fill)
		elapsed = now_mono() - t_start;

	for (i = 0; i < opt.conns; i++) {
		points += conns[i].points;
		reqs += conns[i].reqs;
		points_all += conns[i].points_all;
		n503 += conns[i].n503;
		reconnects += conns[i].reconnects;
		nlat += conns[i].nlat;
		ndone += conns[i].ndone;
		if (conns[i].failed) {
			failed = 1;
			fprintf(stderr, "ingest: conn %d (%s): %s\n", i,
			    conns[i].run, conns[i].error);
		}
	}
	lat = xmalloc(sizeof *lat * (nlat + 1));
	done = xmalloc(sizeof *done * (ndone + 1));
	nlat = ndone = 0;
	for (i = 0; i < opt.conns; i++) {
		memcpy(lat + nlat, conns[i].lat,
		    sizeof *lat * conns[i].nlat);
		nlat += conns[i].nlat;
		memcpy(done + ndone, conns[i].done,
		    sizeof *done * conns[i].ndone);
		ndone += conns[i].ndone;
	}
	qsort(lat, nlat, sizeof *lat, cmp_double);
	qsort(done, ndone, sizeof *done, cmp_done);
	quarters_compute(done, ndone, t0, q);
	pps = elapsed > 0 ? (double)points / elapsed : 0;
	if (cpu0 >= 0 && cpu1 >= 0 && points > 0)
		cpu_pp = (cpu1 - cpu0) * 1e6 / (double)points;
	for (k = 0; k < nsamples; k++) {
		const struct sample	*s = &samples[k];

		if (k == 0) {
			rss_first = rss_min = rss_max = s->rss;
			anon_first = anon_min = anon_max = s->anon;
		}
		if (s->rss < rss_min)
			rss_min = s->rss;
		if (s->rss > rss_max)
			rss_max = s->rss;
		if (s->anon < anon_min)
			anon_min = s->anon;
		if (s->anon > anon_max)
			anon_max = s->anon;
		if (rss_quarter < 0 && s->t - t0 >= elapsed / 4)
			rss_quarter = s->rss;
		rss_last = s->rss;
		anon_last = s->anon;
	}

	if (!opt.quiet) {
		printf("ingest %s: %.0f points/s committed, %.1f requests/s "
		    "(%" PRIu64 " points in %.2f s, %d conns, %s values)\n",
		    form, pps, elapsed > 0 ? reqs / elapsed : 0, points,
		    elapsed, opt.conns, values);
		printf("  by quarter of the points: %.0f, %.0f, %.0f, %.0f "
		    "points/s (last/first %.3f)\n", q[0].pps, q[1].pps,
		    q[2].pps, q[3].pps, q[0].pps > 0 ? q[3].pps / q[0].pps :
		    0.0);
		if (cpu_pp >= 0)
			printf("  daemon CPU %.3f us/point (%.2f cores busy); "
			    "by quarter %.3f, %.3f, %.3f, %.3f\n", cpu_pp,
			    (cpu1 - cpu0) / elapsed, q[0].cpu_us, q[1].cpu_us,
			    q[2].cpu_us, q[3].cpu_us);
		if (ntasks1 > 0)
			print_tasks(tasks0, ntasks0, tasks1, ntasks1, elapsed);
		printf("  generator CPU %.3f us/point\n",
		    points ? (self1 - self0) * 1e6 / points : 0.0);
		if (rss_min >= 0)
			printf("  daemon RSS: first %ld kB, min %ld kB, max %ld"
			    " kB, at 1/4 %ld kB, last %ld kB\n", rss_first,
			    rss_min, rss_max, rss_quarter, rss_last);
		if (anon_min >= 0)
			printf("  daemon RssAnon: first %ld kB, max %ld kB; at "
			    "the quarters' ends %ld, %ld, %ld, %ld kB\n",
			    anon_first, anon_max, q[0].anon, q[1].anon,
			    q[2].anon, q[3].anon);
		printf("  request latency: p50 %.1f ms, p99 %.1f ms, max "
		    "%.1f ms; %" PRIu64 " answered 503, %" PRIu64
		    " reconnects\n", percentile(lat, nlat, 0.5),
		    percentile(lat, nlat, 0.99),
		    nlat ? lat[nlat - 1] : 0.0, n503, reconnects);
	}
	printf("RESULT bench=ingest form=%s conns=%d layers=%d "
	    "steps_per_req=%d values=%s body_bytes=%zu seconds=%.3f "
	    "points=%" PRIu64 " points_all=%" PRIu64 " points_per_s=%.0f "
	    "reqs_per_s=%.2f cpu_us_per_point=%.4f "
	    "gen_cpu_us_per_point=%.4f "
	    "rss_first_kb=%ld rss_min_kb=%ld rss_max_kb=%ld "
	    "rss_quarter_kb=%ld rss_last_kb=%ld anon_first_kb=%ld "
	    "anon_min_kb=%ld anon_max_kb=%ld anon_last_kb=%ld "
	    "q1_pps=%.0f q2_pps=%.0f q3_pps=%.0f q4_pps=%.0f "
	    "q1_cpu_us=%.4f q2_cpu_us=%.4f q3_cpu_us=%.4f q4_cpu_us=%.4f "
	    "q1_anon_kb=%ld q2_anon_kb=%ld q3_anon_kb=%ld q4_anon_kb=%ld "
	    "p50_ms=%.2f p99_ms=%.2f "
	    "n503=%" PRIu64 " reconnects=%" PRIu64 " failed=%d\n",
	    form, opt.conns, opt.layers, opt.steps_per_req, values,
	    conns[0].bodies[0].len, elapsed, points, points_all, pps,
	    elapsed > 0 ? reqs / elapsed : 0, cpu_pp,
	    points ? (self1 - self0) * 1e6 / points : 0.0, rss_first, rss_min,
	    rss_max, rss_quarter, rss_last, anon_first, anon_min, anon_max,
	    anon_last, q[0].pps, q[1].pps, q[2].pps, q[3].pps, q[0].cpu_us,
	    q[1].cpu_us, q[2].cpu_us, q[3].cpu_us, q[0].anon, q[1].anon,
	    q[2].anon, q[3].anon, percentile(lat, nlat, 0.5),
	    percentile(lat, nlat, 0.99), n503, reconnects, failed);
	return failed ? 1 : 0;
}
