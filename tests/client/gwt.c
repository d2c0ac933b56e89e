/* SPDX-License-Identifier: MIT */
/*
 * gwt: helpers for the client tests (see gwt.h): TAP, a real daemon, a
 * fake one, and reading back exports.  Runs on the test's main thread,
 * except the fake's server loop which has its own.
 */
#define _GNU_SOURCE		/* memmem, strcasestr */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "gwt.h"

static int	 t_n;
static int	 t_fail;
static char	 t_tmp[256];
static pid_t	 t_owner;
static struct {			/* every daemon started, for cleanup */
	pid_t	 pid;
	char	 log[512];
} t_daemons[16];
static int	 t_ndaemons;
static int	 t_logs_dumped;

int
ok(int cond, const char *fmt, ...)
{
	va_list	ap;

	t_n++;
	printf("%s %d - ", cond ? "ok" : "not ok", t_n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	if (!cond)
		t_fail++;
	return cond;
}

void
diag(const char *fmt, ...)
{
	va_list	ap;

	printf("#   ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

int
is_int(long long got, long long want, const char *name)
{
	if (ok(got == want, "%s", name))
		return 1;
	diag("got:  %lld", got);
	diag("want: %lld", want);
	return 0;
}

void
gwt_dump_logs(void)
{
	char	line[512];
	FILE	*f;
	int	i, n;

	if (t_logs_dumped++)
		return;
	for (i = 0; i < t_ndaemons; i++) {
		if ((f = fopen(t_daemons[i].log, "r")) == NULL)
			continue;
		diag("daemon log %s:", t_daemons[i].log);
		for (n = 0; fgets(line, sizeof line, f) != NULL && n < 40; n++) {
			line[strcspn(line, "\n")] = '\0';
			diag("  %s", line);
		}
		fclose(f);
	}
}

int
done_testing(void)
{
	if (t_fail > 0)
		gwt_dump_logs();
	printf("1..%d\n", t_n);
	fflush(stdout);
	return t_fail > 0 ? 1 : 0;
}

double
gwt_now(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

void
gwt_sleep_ms(int ms)
{
	struct timespec	ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

int
gwt_slow(void)
{
	const char	*b = getenv("GW_BUILD");

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
	(void)b;
	return 1;
#else
	return getenv("GWT_SLOW") != NULL ||
	    (b != NULL && strstr(b, "san-") != NULL);
#endif
}

int
gwt_free_port(void)
{
	struct sockaddr_in	sa;
	socklen_t		len = sizeof sa;
	int			fd, port = -1;

	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		return -1;
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
		port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

static void
gwt_cleanup(void)
{
	char	cmd[600];
	int	i;

	if (getpid() != t_owner)
		return;
	for (i = 0; i < t_ndaemons; i++)
		if (t_daemons[i].pid > 0) {
			kill(t_daemons[i].pid, SIGKILL);
			waitpid(t_daemons[i].pid, NULL, 0);
		}
	if (t_tmp[0] != '\0' && getenv("GWT_KEEP") == NULL) {
		snprintf(cmd, sizeof cmd, "rm -rf '%s'", t_tmp);
		if (system(cmd) != 0)
			fprintf(stderr, "gwt: could not remove %s\n", t_tmp);
	}
}

const char *
gwt_tmpdir(void)
{
	const char	*base;

	if (t_tmp[0] != '\0')
		return t_tmp;
	base = getenv("TMPDIR");
	snprintf(t_tmp, sizeof t_tmp, "%s/gw-client.XXXXXX",
	    base != NULL ? base : "/tmp");
	if (mkdtemp(t_tmp) == NULL) {
		perror("mkdtemp");
		exit(2);
	}
	t_owner = getpid();
	atexit(gwt_cleanup);
	return t_tmp;
}

static void
gwt_build_path(char *out, size_t size, const char *name)
{
	const char	*top = getenv("GW_TOP"), *build = getenv("GW_BUILD");

	if (build == NULL)
		build = "build";
	if (build[0] == '/' || top == NULL)
		snprintf(out, size, "%s/%s", build, name);
	else
		snprintf(out, size, "%s/%s/%s", top, build, name);
}

int
gwt_daemon_start(struct gwt_daemon *d, const char *conf_text)
{
	char	 bin[512], http[64], ws[64], *answer;
	FILE	*f;
	double	 end;
	int	 fd, status;

	gwt_tmpdir();
	if (d->port == 0) {
		d->port = gwt_free_port();
		d->ws_port = gwt_free_port();
		snprintf(d->db, sizeof d->db, "%s/gw-%d.db", t_tmp, d->port);
		snprintf(d->log, sizeof d->log, "%s/daemon-%d.log", t_tmp,
		    d->port);
		snprintf(d->url, sizeof d->url, "http://127.0.0.1:%d",
		    d->port);
		d->conf[0] = '\0';
	}
	if (conf_text != NULL) {
		snprintf(d->conf, sizeof d->conf, "%s/gw-%d.conf", t_tmp,
		    d->port);
		if ((f = fopen(d->conf, "w")) == NULL)
			return -1;
		fputs(conf_text, f);
		fclose(f);
	}
	if (d->slot == 0 && t_ndaemons < 16) {
		d->slot = ++t_ndaemons;
		snprintf(t_daemons[d->slot - 1].log, sizeof t_daemons[0].log,
		    "%s", d->log);
	}
	gwt_build_path(bin, sizeof bin, "gradwatchd");
	snprintf(http, sizeof http, "127.0.0.1:%d", d->port);
	snprintf(ws, sizeof ws, "127.0.0.1:%d", d->ws_port);
	if ((d->pid = fork()) == -1)
		return -1;
	if (d->pid == 0) {
		if ((fd = open(d->log, O_WRONLY | O_CREAT | O_APPEND, 0644)) != -1)
			dup2(fd, 2);
		if ((fd = open("/dev/null", O_RDWR)) != -1) {
			dup2(fd, 0);
			dup2(fd, 1);
		}
		if (d->conf[0] != '\0')
			execl(bin, bin, "-c", d->conf, "--http", http, "--ws", ws,
			    "--db", d->db, (char *)NULL);
		else
			execl(bin, bin, "--http", http, "--ws", ws, "--db",
			    d->db, (char *)NULL);
		_exit(127);
	}
	if (d->slot > 0)
		t_daemons[d->slot - 1].pid = d->pid;
	end = gwt_now() + 10;
	while (gwt_now() < end) {
		if (waitpid(d->pid, &status, WNOHANG) == d->pid) {
			diag("gradwatchd exited at start (see %s)", d->log);
			d->pid = 0;
			if (d->slot > 0)
				t_daemons[d->slot - 1].pid = 0;
			return -1;
		}
		snprintf(bin, sizeof bin, "%s/healthz", d->url);
		if (gwt_http("GET", bin, NULL, &answer) == 200) {
			free(answer);
			return 0;
		}
		free(answer);
		gwt_sleep_ms(20);
	}
	diag("gradwatchd did not answer /healthz");
	return -1;
}

void
gwt_daemon_stop(struct gwt_daemon *d, int sig)
{
	int	status;

	if (d->pid <= 0)
		return;
	kill(d->pid, sig);
	waitpid(d->pid, &status, 0);
	d->pid = 0;
	if (d->slot > 0)
		t_daemons[d->slot - 1].pid = 0;
}

struct gwt_buf {
	char	*p;
	size_t	 len;
};

static size_t
gwt_write_cb(char *data, size_t size, size_t n, void *arg)
{
	struct gwt_buf	*b = arg;
	char		*p;

	if ((p = realloc(b->p, b->len + size * n + 1)) == NULL)
		return 0;
	b->p = p;
	memcpy(b->p + b->len, data, size * n);
	b->len += size * n;
	b->p[b->len] = '\0';
	return size * n;
}

long
gwt_http(const char *method, const char *url, const char *body,
    char **answer)
{
	struct curl_slist	*h = NULL;
	struct gwt_buf		 b = { NULL, 0 };
	CURL			*e;
	long			 status = 0;

	if (answer != NULL)
		*answer = NULL;
	if ((e = curl_easy_init()) == NULL)
		return 0;
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT, 30L);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, gwt_write_cb);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, &b);
	if (body != NULL) {
		h = curl_slist_append(h, "Content-Type: application/json");
		curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
	}
	if (curl_easy_perform(e) == CURLE_OK)
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(e);
	curl_slist_free_all(h);
	if (answer != NULL)
		*answer = b.p;
	else
		free(b.p);
	return status;
}

json_t *
gwt_get_json(const char *base, const char *path)
{
	char	 url[1024], *answer;
	json_t	*j = NULL;

	snprintf(url, sizeof url, "%s%s", base, path);
	if (gwt_http("GET", url, NULL, &answer) == 200 && answer != NULL)
		j = json_loads(answer, 0, NULL);
	free(answer);
	return j;
}

void
gwt_point_add(struct gwt_point **v, size_t *n, const char *kind,
    const char *series, int64_t step, double value)
{
	struct gwt_point	*p;

	if ((*n & (*n - 1)) == 0 || *n == 0) {
		p = realloc(*v, (*n == 0 ? 1 : *n * 2) * sizeof *p);
		if (p == NULL)
			abort();
		*v = p;
	}
	p = &(*v)[(*n)++];
	memset(p, 0, sizeof *p);
	snprintf(p->kind, sizeof p->kind, "%s", kind);
	snprintf(p->series, sizeof p->series, "%s", series);
	p->step = step;
	p->value = value;
}

static double
gwt_value(json_t *v)
{
	const char	*s;

	if (json_is_number(v))
		return json_number_value(v);
	s = json_string_value(v);
	if (s == NULL)
		return -12345.6789;	/* no value: never equal */
	if (strcmp(s, "NaN") == 0)
		return NAN;
	if (strcmp(s, "Infinity") == 0)
		return INFINITY;
	if (strcmp(s, "-Infinity") == 0)
		return -INFINITY;
	return -12345.6789;
}

static const char *
gwt_str(json_t *v)
{
	return json_is_string(v) ? json_string_value(v) : "?";
}

int
gwt_export(const char *base, const char *run, struct gwt_point **out,
    size_t *n, int *ordered)
{
	struct gwt_point	*last;
	char			 url[1024], *answer, *line, *nl;
	json_t			*j;
	int			 rc = -1;

	*out = NULL;
	*n = 0;
	*ordered = 1;
	snprintf(url, sizeof url, "%s/api/v1/runs/%s/export?format=jsonl",
	    base, run);
	if (gwt_http("GET", url, NULL, &answer) != 200 || answer == NULL)
		goto out;
	for (line = answer; *line != '\0'; line = nl) {
		if ((nl = strchr(line, '\n')) != NULL)
			*nl++ = '\0';
		else
			nl = line + strlen(line);
		if (*line == '\0')
			continue;
		if ((j = json_loads(line, 0, NULL)) == NULL)
			goto out;
		gwt_point_add(out, n, gwt_str(json_object_get(j, "kind")),
		    gwt_str(json_object_get(j, "series")),
		    json_integer_value(json_object_get(j, "step")),
		    gwt_value(json_object_get(j, "value")));
		last = *n > 1 ? &(*out)[*n - 2] : NULL;
		if (last != NULL && strcmp(last->kind, (*out)[*n - 1].kind) == 0 &&
		    strcmp(last->series, (*out)[*n - 1].series) == 0 &&
		    last->step >= (*out)[*n - 1].step)
			*ordered = 0;
		json_decref(j);
	}
	rc = 0;
out:
	free(answer);
	return rc;
}

static int
gwt_point_cmp(const void *a, const void *b)
{
	const struct gwt_point	*x = a, *y = b;
	int			 c;

	if ((c = strcmp(x->kind, y->kind)) != 0)
		return c;
	if ((c = strcmp(x->series, y->series)) != 0)
		return c;
	return x->step < y->step ? -1 : x->step > y->step;
}

static int
gwt_same_value(double a, double b)
{
	if (isnan(a) || isnan(b))
		return isnan(a) && isnan(b);
	return a == b;
}

int
gwt_points_equal(struct gwt_point *got, size_t ngot, struct gwt_point *want,
    size_t nwant, char *why, size_t whylen)
{
	size_t	i;

	why[0] = '\0';
	if (ngot > 0)
		qsort(got, ngot, sizeof *got, gwt_point_cmp);
	if (nwant > 0)
		qsort(want, nwant, sizeof *want, gwt_point_cmp);
	for (i = 0; i < ngot && i < nwant; i++) {
		if (gwt_point_cmp(&got[i], &want[i]) != 0 ||
		    !gwt_same_value(got[i].value, want[i].value)) {
			snprintf(why, whylen, "at %zu: got %s %s step %lld = %.17g,"
			    " want %s %s step %lld = %.17g", i, got[i].kind,
			    got[i].series, (long long)got[i].step, got[i].value,
			    want[i].kind, want[i].series,
			    (long long)want[i].step, want[i].value);
			return -1;
		}
	}
	if (ngot != nwant) {
		snprintf(why, whylen, "got %zu points, want %zu", ngot, nwant);
		return -1;
	}
	return 0;
}

/* ---- the fake daemon ---------------------------------------------------- */

static long
gwt_fake_default(struct gwt_fake *f, int i, const struct gwt_req *r,
    char *headers, size_t hlen, char *body, size_t blen)
{
	(void)f;
	(void)i;
	(void)r;
	(void)headers;
	(void)hlen;
	snprintf(body, blen, "{\"accepted\":1,\"health\":\"ok\",\"alerts\":[]}");
	return 200;
}

static int
gwt_fake_stopping(struct gwt_fake *f)
{
	int	stop;

	pthread_mutex_lock(&f->lock);
	stop = f->stop;
	pthread_mutex_unlock(&f->lock);
	return stop;
}

/* Read until buf holds "\r\n\r\n" and the body; 0, or -1 on EOF/stop. */
static int
gwt_fake_read(struct gwt_fake *f, int fd, char **buf, size_t *len,
    size_t *cap, size_t *hdr_end, size_t *body_len)
{
	struct pollfd	 pfd = { fd, POLLIN, 0 };
	char		*p, *cl;
	ssize_t		 r;

	for (;;) {
		if (*hdr_end == 0 && *len > 0 &&
		    (p = memmem(*buf, *len, "\r\n\r\n", 4)) != NULL) {
			*hdr_end = (size_t)(p - *buf) + 4;
			(*buf)[*hdr_end - 1] = '\0';
			cl = strcasestr(*buf, "\ncontent-length:");
			*body_len = cl != NULL ? strtoul(cl + 16, NULL, 10) : 0;
			(*buf)[*hdr_end - 1] = '\n';
		}
		if (*hdr_end != 0 && *len >= *hdr_end + *body_len)
			return 0;
		if (*len + 65536 > *cap) {
			*cap = (*cap + 65536) * 2;
			if ((p = realloc(*buf, *cap)) == NULL)
				return -1;
			*buf = p;
		}
		if (poll(&pfd, 1, 100) == 0) {
			if (gwt_fake_stopping(f))
				return -1;
			continue;
		}
		if ((r = read(fd, *buf + *len, *cap - *len - 1)) <= 0)
			return -1;
		*len += (size_t)r;
		(*buf)[*len] = '\0';
	}
}

struct gwt_conn {
	pthread_t	 thread;
	struct gwt_fake	*f;
	int		 fd;
	int		 conn;
};

/* One connection's thread: read requests, record them, answer. */
static void *
gwt_fake_serve(void *arg)
{
	struct gwt_conn	*cn = arg;
	struct gwt_fake	*f = cn->f;
	struct gwt_req	 req;
	char		*buf = NULL, headers[1024], body[8192], out[10240];
	size_t		 len = 0, cap = 0, hdr_end, body_len, total;
	long		 status;
	int		 i, n, fd = cn->fd;

	for (;;) {
		hdr_end = body_len = 0;
		if (gwt_fake_read(f, fd, &buf, &len, &cap, &hdr_end,
		    &body_len) == -1)
			break;
		memset(&req, 0, sizeof req);
		req.t = gwt_now();
		req.conn = cn->conn;
		sscanf(buf, "%7s %255s", req.method, req.path);
		snprintf(req.headers, sizeof req.headers, "%.*s",
		    (int)hdr_end, buf);
		req.len = body_len;
		if ((req.body = malloc(body_len + 1)) == NULL)
			break;
		memcpy(req.body, buf + hdr_end, body_len);
		req.body[body_len] = '\0';
		pthread_mutex_lock(&f->lock);
		i = f->nreqs++;
		f->reqs = realloc(f->reqs, (size_t)f->nreqs * sizeof *f->reqs);
		f->reqs[i] = req;
		pthread_mutex_unlock(&f->lock);
		headers[0] = body[0] = '\0';
		status = f->cb(f, i, &req, headers, sizeof headers, body,
		    sizeof body);
		pthread_mutex_lock(&f->lock);
		f->reqs[i].status = status;
		pthread_mutex_unlock(&f->lock);
		total = hdr_end + body_len;
		memmove(buf, buf + total, len - total);
		len -= total;
		if (status <= 0)	/* drop the connection, no answer */
			break;
		n = snprintf(out, sizeof out, "HTTP/1.1 %ld X\r\nContent-Type: "
		    "application/json\r\nContent-Length: %zu\r\n%s\r\n%s",
		    status, strlen(body), headers, body);
		if (send(fd, out, (size_t)n, MSG_NOSIGNAL) != n)
			break;
	}
	free(buf);
	close(fd);
	return NULL;
}

static void *
gwt_fake_main(void *arg)
{
	struct gwt_fake	*f = arg;
	struct pollfd	 pfd = { f->lfd, POLLIN, 0 };
	struct gwt_conn	*cn;
	int		 fd;

	while (!gwt_fake_stopping(f)) {
		if (poll(&pfd, 1, 100) <= 0)
			continue;
		if ((fd = accept(f->lfd, NULL, NULL)) == -1)
			continue;
		pthread_mutex_lock(&f->lock);
		if (f->nconns == GWT_FAKE_CONNS ||
		    (cn = calloc(1, sizeof *cn)) == NULL) {
			pthread_mutex_unlock(&f->lock);
			close(fd);
			continue;
		}
		cn->f = f;
		cn->fd = fd;
		cn->conn = f->nconns;
		f->conns[f->nconns++] = cn;
		pthread_create(&cn->thread, NULL, gwt_fake_serve, cn);
		pthread_mutex_unlock(&f->lock);
	}
	return NULL;
}

int
gwt_fake_start(struct gwt_fake *f, gwt_fake_cb cb, void *arg)
{
	struct sockaddr_in	sa;
	socklen_t		len = sizeof sa;
	int			one = 1;

	memset(f, 0, sizeof *f);
	pthread_mutex_init(&f->lock, NULL);
	f->cb = cb != NULL ? cb : gwt_fake_default;
	f->arg = arg;
	if ((f->lfd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		return -1;
	setsockopt(f->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(f->lfd, (struct sockaddr *)&sa, sizeof sa) == -1 ||
	    getsockname(f->lfd, (struct sockaddr *)&sa, &len) == -1 ||
	    listen(f->lfd, 16) == -1)
		return -1;
	f->port = ntohs(sa.sin_port);
	snprintf(f->url, sizeof f->url, "http://127.0.0.1:%d", f->port);
	return pthread_create(&f->thread, NULL, gwt_fake_main, f) == 0 ? 0 : -1;
}

void
gwt_fake_stop(struct gwt_fake *f)
{
	int	i;

	pthread_mutex_lock(&f->lock);
	f->stop = 1;
	pthread_mutex_unlock(&f->lock);
	pthread_join(f->thread, NULL);
	for (i = 0; i < f->nconns; i++) {
		pthread_join(f->conns[i]->thread, NULL);
		free(f->conns[i]);
	}
	close(f->lfd);
	for (i = 0; i < f->nreqs; i++)
		free(f->reqs[i].body);
	free(f->reqs);
	pthread_mutex_destroy(&f->lock);
}

int
gwt_fake_count(struct gwt_fake *f)
{
	int	n;

	pthread_mutex_lock(&f->lock);
	n = f->nreqs;
	pthread_mutex_unlock(&f->lock);
	return n;
}

long long
gwt_metric(const char *base, const char *name)
{
	char		 u[256], *answer = NULL, *p;
	long long	 v = -1;

	snprintf(u, sizeof u, "%s/metrics", base);
	if (gwt_http("GET", u, NULL, &answer) == 200 &&
	    (p = strstr(answer, name)) != NULL)
		v = strtoll(p + strlen(name), NULL, 10);
	free(answer);
	return v;
}
