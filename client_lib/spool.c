/* SPDX-License-Identifier: MIT */
/*
 * spool: a run's spool file, where the sender keeps the request bodies
 * the daemon could not take yet and where gw_sync reads them back.  The
 * file is a sequence of records, each describing itself:
 *
 *	offset	size
 *	0	4	magic "GWS1"
 *	4	1	type: 'i' an ingest body, 'f' a finish body
 *	5	1	flags: 1 once the daemon took it (outside the CRC)
 *	6	1	k, the run key's length (1 to 128)
 *	7	1	0
 *	8	4	n, the body's length (little-endian; at most 64 MiB)
 *	12	4	the values in the body (little-endian)
 *	16	4	CRC-32 (IEEE) of byte 4, bytes 6 to 15, the key and the body
 *	20	k	the run key
 *	20+k	n	the body, JSON as it is posted
 *
 * Records are only appended (a failed write is cut off again) and the
 * flag is the only byte ever rewritten, so a crash leaves at most a torn
 * last record: a reader that meets bytes that are no intact record skips
 * to the next intact one, or to the end, and says how many it passed.
 * Whoever has the file open holds flock(LOCK_EX) on it, and a file is
 * emptied before it is removed, so a reader that opened it just before
 * finds nothing left to send.  A struct gw__spool belongs to one thread:
 * the sender's, or the one in gw_sync.
 */
#define _GNU_SOURCE		/* memmem, asprintf */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

#include "internal.h"

#define GW__SPOOL_HEAD		20
#define GW__SPOOL_BODY_MAX	((size_t)64 << 20)
#define GW__SPOOL_SENT		0x01
#define GW__SPOOL_CHUNK		65536

static const unsigned char	 gw__spool_magic[4] = { 'G', 'W', 'S', '1' };

struct gw__spool {
	int		 fd;
	char		*path;
	size_t		 max;		/* appends stop here (but forced ones) */
	int64_t		 size;		/* where the next record goes */
	int64_t		 head;		/* the read position */
	int		 dirty;		/* appended to since it was opened */
	struct gw__buf	 buf;		/* the key and body last read */
};

/* CRC-32 (zlib's: the IEEE polynomial) of p[0..n) continuing from crc. */
static uint32_t
gw__crc(uint32_t crc, const void *p, size_t n)
{
	return (uint32_t)crc32_z(crc, p, n);
}

static void
gw__put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16);
	p[3] = (unsigned char)(v >> 24);
}

static uint32_t
gw__get32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24;
}

/* The CRC of a record: its header (less magic, flags and CRC), key, body. */
static uint32_t
gw__spool_crc(const unsigned char *h, const char *key, size_t k,
    const char *body, size_t n)
{
	uint32_t	crc;

	crc = gw__crc(0, h + 4, 1);
	crc = gw__crc(crc, h + 6, 10);
	crc = gw__crc(crc, key, k);
	return gw__crc(crc, body, n);
}

/* Read exactly n bytes at off; 0, or -1 (short: errno 0). */
static int
gw__pread_all(int fd, void *p, size_t n, int64_t off)
{
	ssize_t	r;
	char	*b = p;

	while (n > 0) {
		r = pread(fd, b, n, (off_t)off);
		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0) {
			if (r == 0)
				errno = 0;
			return -1;
		}
		b += r;
		n -= (size_t)r;
		off += r;
	}
	return 0;
}

static int
gw__pwrite_all(int fd, const void *p, size_t n, int64_t off)
{
	const char	*b = p;
	ssize_t		 r;

	while (n > 0) {
		r = pwrite(fd, b, n, (off_t)off);
		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0) {
			if (r == 0)
				errno = EIO;
			return -1;
		}
		b += r;
		n -= (size_t)r;
		off += r;
	}
	return 0;
}

char *
gw__spool_path(const char *dir, const char *run)
{
	char	*p;

	if (asprintf(&p, "%s/%s%s", strcmp(dir, "/") == 0 ? "" : dir, run,
	    GW__SPOOL_SUFFIX) == -1)
		return NULL;
	return p;
}

/* Make path's directory (not its parents); errno as mkdir left it. */
static int
gw__spool_mkdir(const char *path)
{
	char	*dir, *slash;
	int	 rc;

	if ((dir = strdup(path)) == NULL)
		return -1;
	if ((slash = strrchr(dir, '/')) == NULL || slash == dir) {
		free(dir);
		errno = ENOENT;
		return -1;
	}
	*slash = '\0';
	rc = mkdir(dir, 0700);
	if (rc == -1 && errno == EEXIST)
		rc = 0;
	free(dir);
	return rc;
}

/*
 * Is the record at pos intact?  1 with *rec (and *sent) filled, 0 when
 * the bytes there are no intact record, -1 on an I/O error.
 */
static int
gw__spool_read_at(struct gw__spool *sp, int64_t pos, struct gw__spool_rec *rec,
    int *sent, char *why, size_t whylen)
{
	unsigned char	 h[GW__SPOOL_HEAD];
	size_t		 k, n;

	if (sp->size - pos < GW__SPOOL_HEAD)
		return 0;
	if (gw__pread_all(sp->fd, h, sizeof h, pos) == -1)
		goto io;
	k = h[6];
	n = gw__get32(h + 8);
	if (memcmp(h, gw__spool_magic, 4) != 0 ||
	    (h[4] != GW__SPOOL_INGEST && h[4] != GW__SPOOL_FINISH) ||
	    k == 0 || k > WIRE_RUN_KEY_MAX || h[7] != 0 ||
	    n > GW__SPOOL_BODY_MAX ||
	    (int64_t)(GW__SPOOL_HEAD + k + n) > sp->size - pos)
		return 0;
	sp->buf.len = 0;
	sp->buf.failed = 0;
	gw__buf_reserve(&sp->buf, k + n + 1);
	if (sp->buf.failed) {
		snprintf(why, whylen, "out of memory for a record of %zu bytes",
		    n);
		return -1;
	}
	if (gw__pread_all(sp->fd, sp->buf.p, k + n, pos + GW__SPOOL_HEAD) ==
	    -1)
		goto io;
	sp->buf.p[k + n] = '\0';
	if (gw__spool_crc(h, sp->buf.p, k, sp->buf.p + k, n) !=
	    gw__get32(h + 16))
		return 0;
	memcpy(rec->run, sp->buf.p, k);
	rec->run[k] = '\0';
	if (!wire_is_run_key(rec->run))
		return 0;
	rec->type = h[4];
	rec->values = gw__get32(h + 12);
	rec->body = sp->buf.p + k;
	rec->len = n;
	rec->off = pos;
	rec->end = pos + GW__SPOOL_HEAD + (int64_t)(k + n);
	*sent = (h[5] & GW__SPOOL_SENT) != 0;
	return 1;

io:
	snprintf(why, whylen, "%s: read: %s", sp->path, errno != 0 ?
	    strerror(errno) : "the file shrank");
	return -1;
}

/* Where the magic next occurs at or after from (sp->size if nowhere); -1 on an I/O error. */
static int64_t
gw__spool_find(struct gw__spool *sp, int64_t from, char *why, size_t whylen)
{
	char		 chunk[GW__SPOOL_CHUNK];
	const char	*hit;
	size_t		 n;

	while (from < sp->size) {
		n = sp->size - from < (int64_t)sizeof chunk ?
		    (size_t)(sp->size - from) : sizeof chunk;
		if (gw__pread_all(sp->fd, chunk, n, from) == -1) {
			snprintf(why, whylen, "%s: read: %s", sp->path,
			    errno != 0 ? strerror(errno) : "the file shrank");
			return -1;
		}
		hit = memmem(chunk, n, gw__spool_magic, sizeof gw__spool_magic);
		if (hit != NULL)
			return from + (hit - chunk);
		if (n < sizeof gw__spool_magic)
			break;
		from += (int64_t)(n - (sizeof gw__spool_magic - 1));
	}
	return sp->size;
}

/*
 * The first intact record at or after pos, taken or not: 1, 0 (none), -1.
 * *skipped: the damaged bytes before it; *torn: they ran to the end.
 */
static int
gw__spool_scan(struct gw__spool *sp, int64_t pos, struct gw__spool_rec *rec,
    int *sent, int64_t *skipped, int *torn, char *why, size_t whylen)
{
	int64_t	at;
	int	r;

	*skipped = 0;
	*torn = 0;
	while (pos < sp->size) {
		if ((r = gw__spool_read_at(sp, pos, rec, sent, why, whylen)) !=
		    0)
			return r;
		if ((at = gw__spool_find(sp, pos + 1, why, whylen)) == -1)
			return -1;
		*skipped += at - pos;
		pos = at;
	}
	*torn = *skipped > 0;
	return 0;
}

/* Cut off a torn tail (what a crash while appending leaves); a note in why. */
static int
gw__spool_repair(struct gw__spool *sp, char *why, size_t whylen)
{
	struct gw__spool_rec	rec;
	int64_t			pos = 0, skipped;
	int			r, sent, torn;

	for (;;) {
		r = gw__spool_scan(sp, pos, &rec, &sent, &skipped, &torn, why,
		    whylen);
		if (r == -1)
			return -1;
		if (r == 0)
			break;
		pos = rec.end;
	}
	if (!torn)
		return 0;
	if (ftruncate(sp->fd, (off_t)(sp->size - skipped)) == -1) {
		snprintf(why, whylen, "%s: truncate: %s", sp->path,
		    strerror(errno));
		return -1;
	}
	snprintf(why, whylen, "%s: cut off a torn record (%lld bytes at "
	    "%lld)", sp->path, (long long)skipped,
	    (long long)(sp->size - skipped));
	sp->size -= skipped;
	return 0;
}

int
gw__spool_open(const char *path, int flags, size_t max,
    struct gw__spool **out, char *why, size_t whylen)
{
	struct gw__spool	*sp;
	struct stat		 st, now;
	unsigned char		 m[4];
	size_t			 n;
	int			 tries, rc = GW_ENOMEM, made = 0;

	*out = NULL;
	why[0] = '\0';
	if ((sp = calloc(1, sizeof *sp)) == NULL) {
		snprintf(why, whylen, "out of memory");
		return GW_ENOMEM;
	}
	sp->fd = -1;
	sp->max = max;
	if ((sp->path = strdup(path)) == NULL) {
		snprintf(why, whylen, "out of memory");
		goto fail;
	}
	rc = GW_EINVAL;
	for (tries = 0;; tries++) {
		sp->fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW |
		    (flags & GW__SPOOL_CREATE ? O_CREAT : 0), 0600);
		if (sp->fd == -1 && errno == ENOENT &&
		    (flags & GW__SPOOL_CREATE) && !made) {
			made = 1;
			if (gw__spool_mkdir(path) == 0)
				continue;
			errno = ENOENT;
		}
		if (sp->fd == -1 && errno == ENOENT &&
		    !(flags & GW__SPOOL_CREATE)) {
			rc = GW_OK;		/* none: nothing to do */
			goto fail;
		}
		if (sp->fd == -1) {
			snprintf(why, whylen, "%s: %s", path, strerror(errno));
			goto fail;
		}
		if (flock(sp->fd, LOCK_EX | LOCK_NB) == -1) {
			rc = errno == EWOULDBLOCK ? GW_EBUSY : GW_EINVAL;
			snprintf(why, whylen, "%s: %s", path, rc == GW_EBUSY ?
			    "in use by another process" : strerror(errno));
			goto fail;
		}
		if (fstat(sp->fd, &st) == -1) {
			snprintf(why, whylen, "%s: %s", path, strerror(errno));
			goto fail;
		}
		/* Its last holder may have removed it before we got the lock. */
		if (st.st_nlink > 0 && stat(path, &now) == 0 &&
		    now.st_ino == st.st_ino && now.st_dev == st.st_dev)
			break;
		close(sp->fd);
		sp->fd = -1;
		if (tries == 4) {
			rc = GW_EBUSY;
			snprintf(why, whylen, "%s: removed and made again "
			    "while we opened it", path);
			goto fail;
		}
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(why, whylen, "%s: not a regular file", path);
		goto fail;
	}
	sp->size = st.st_size;
	n = sp->size < 4 ? (size_t)sp->size : 4;
	if (n > 0 && (gw__pread_all(sp->fd, m, n, 0) == -1 ||
	    memcmp(m, gw__spool_magic, n) != 0)) {
		snprintf(why, whylen, "%s: not a gradwatch spool file", path);
		goto fail;
	}
	if ((flags & GW__SPOOL_REPAIR) && sp->size > 0 &&
	    gw__spool_repair(sp, why, whylen) == -1)
		goto fail;
	*out = sp;
	return GW_OK;

fail:
	gw__spool_close(sp, 1);
	return rc;
}

void
gw__spool_close(struct gw__spool *sp, int keep)
{
	if (sp == NULL)
		return;
	if (sp->fd != -1) {
		if (!keep && !gw__spool_has_pending(sp)) {
			/* Emptied first: a reader that has it open finds nothing. */
			if (ftruncate(sp->fd, 0) == 0)
				unlink(sp->path);
		} else if (sp->dirty)
			fdatasync(sp->fd);
		close(sp->fd);		/* and the lock goes with it */
	}
	gw__buf_free(&sp->buf);
	free(sp->path);
	free(sp);
}

void
gw__spool_forget(struct gw__spool *sp)
{
	if (sp == NULL)
		return;
	if (sp->fd != -1)
		close(sp->fd);	/* flock's lock stays: the parent's fd holds it */
	gw__buf_free(&sp->buf);
	free(sp->path);
	free(sp);
}

int
gw__spool_append(struct gw__spool *sp, int type, const char *run,
    const char *body, size_t len, uint32_t values, int force, char *why,
    size_t whylen)
{
	unsigned char	h[GW__SPOOL_HEAD];
	size_t		k = strlen(run);
	int64_t		off = sp->size;
	int		rc;

	if (k == 0 || k > WIRE_RUN_KEY_MAX || len > GW__SPOOL_BODY_MAX) {
		snprintf(why, whylen, "%s: a record of %zu bytes is too large "
		    "to spool", sp->path, len);
		return -1;
	}
	if (!force && (uint64_t)sp->size + GW__SPOOL_HEAD + k + len > sp->max)
		return 1;
	memcpy(h, gw__spool_magic, 4);
	h[4] = (unsigned char)type;
	h[5] = 0;
	h[6] = (unsigned char)k;
	h[7] = 0;
	gw__put32(h + 8, (uint32_t)len);
	gw__put32(h + 12, values);
	gw__put32(h + 16, gw__spool_crc(h, run, k, body, len));
	if (gw__pwrite_all(sp->fd, h, sizeof h, off) == -1 ||
	    gw__pwrite_all(sp->fd, run, k, off + GW__SPOOL_HEAD) == -1 ||
	    gw__pwrite_all(sp->fd, body, len, off + GW__SPOOL_HEAD +
	    (int64_t)k) == -1) {
		snprintf(why, whylen, "%s: write: %s", sp->path,
		    strerror(errno));
		/* Should this fail too, the next append overwrites it. */
		rc = ftruncate(sp->fd, (off_t)off);
		(void)rc;
		return -1;
	}
	sp->size = off + GW__SPOOL_HEAD + (int64_t)(k + len);
	sp->dirty = 1;
	return 0;
}

int
gw__spool_next(struct gw__spool *sp, struct gw__spool_rec *rec,
    int64_t *skipped, int *torn, char *why, size_t whylen)
{
	int64_t	s;
	int	r, sent, t;

	*skipped = 0;
	*torn = 0;
	for (;;) {
		r = gw__spool_scan(sp, sp->head, rec, &sent, &s, &t, why,
		    whylen);
		*skipped += s;
		if (r == 0) {
			sp->head = sp->size;
			*torn = t;
		}
		if (r != 1)
			return r;
		if (!sent) {
			sp->head = rec->off;
			return 1;
		}
		sp->head = rec->end;		/* taken before */
	}
}

void
gw__spool_done(struct gw__spool *sp, const struct gw__spool_rec *rec)
{
	unsigned char	flag = GW__SPOOL_SENT;

	/* If this fails the record is sent again: the daemon replaces it. */
	(void)gw__pwrite_all(sp->fd, &flag, 1, rec->off + 5);
	sp->head = rec->end;
}

int
gw__spool_has_pending(const struct gw__spool *sp)
{
	return sp->head < sp->size;
}

int64_t
gw__spool_size(const struct gw__spool *sp)
{
	return sp->size;
}

char *
gw__spool_url(const char *base, const struct gw__spool_rec *rec)
{
	char	*u;
	int	 n;

	if (rec->type == GW__SPOOL_FINISH)
		n = asprintf(&u, "%s/api/v1/runs/%s/finish", base, rec->run);
	else
		n = asprintf(&u, "%s/api/v1/ingest", base);
	return n == -1 ? NULL : u;
}
