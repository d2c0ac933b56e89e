/* SPDX-License-Identifier: MIT */
/*
 * ingest_dump: compact JSON text of a Jansson value for what the daemon
 * stores as text (a run's meta and config), with reals written so that
 * they read back the same, and names quoted for error causes.  Pure and
 * reentrant; any thread.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ingest_dump.h"
#include "xmalloc.h"

static void	ingest_dump(struct ingest_buf *, json_t *);

static void
ingest_buf_put(struct ingest_buf *bf, const char *s, size_t len)
{
	if (bf->cap - bf->len < len + 1) {
		while (bf->cap - bf->len < len + 1)
			bf->cap = bf->cap == 0 ? 64 : bf->cap * 2;
		bf->p = xreallocarray(bf->p, bf->cap, 1);
	}
	memcpy(bf->p + bf->len, s, len);
	bf->len += len;
	bf->p[bf->len] = '\0';
}

/* Append s as a JSON string literal. */
static void
ingest_dump_string(struct ingest_buf *bf, const char *s, size_t len)
{
	char		 esc[8];
	const char	*e;
	size_t		 i, start = 0;
	unsigned char	 c;

	ingest_buf_put(bf, "\"", 1);
	for (i = 0; i < len; i++) {
		c = (unsigned char)s[i];
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		ingest_buf_put(bf, s + start, i - start);
		switch (c) {
		case '"':  e = "\\\""; break;
		case '\\': e = "\\\\"; break;
		case '\b': e = "\\b"; break;
		case '\f': e = "\\f"; break;
		case '\n': e = "\\n"; break;
		case '\r': e = "\\r"; break;
		case '\t': e = "\\t"; break;
		default:
			snprintf(esc, sizeof esc, "\\u%04x", c);
			e = esc;
			break;
		}
		ingest_buf_put(bf, e, strlen(e));
		start = i + 1;
	}
	ingest_buf_put(bf, s + start, len - start);
	ingest_buf_put(bf, "\"", 1);
}

/*
 * Append d in the shortest form that reads back as the same double, and
 * as a real ("3.0", not "3"); Jansson's own dump would write 0.1 as
 * 0.10000000000000001, which is what a person would then see as config.
 * Assumes the C locale for numbers, which the daemon never changes.
 */
static void
ingest_dump_real(struct ingest_buf *bf, double d)
{
	char	s[40];
	int	prec;

	for (prec = 15; prec < 17; prec++) {
		snprintf(s, sizeof s, "%.*g", prec, d);
		if (strtod(s, NULL) == d)
			break;
	}
	if (prec == 17)
		snprintf(s, sizeof s, "%.17g", d);
	if (strpbrk(s, ".eE") == NULL)
		strcat(s, ".0");
	ingest_buf_put(bf, s, strlen(s));
}

/* Append v as compact JSON.  Recursion is bounded: depth was checked. */
static void
ingest_dump(struct ingest_buf *bf, json_t *v)
{
	char	 num[32];
	void	*it;
	size_t	 i, n;

	switch (json_typeof(v)) {
	case JSON_OBJECT:
		ingest_buf_put(bf, "{", 1);
		for (it = json_object_iter(v); it != NULL;
		    it = json_object_iter_next(v, it)) {
			if (it != json_object_iter(v))
				ingest_buf_put(bf, ",", 1);
			ingest_dump_string(bf, json_object_iter_key(it),
			    json_object_iter_key_len(it));
			ingest_buf_put(bf, ":", 1);
			ingest_dump(bf, json_object_iter_value(it));
		}
		ingest_buf_put(bf, "}", 1);
		break;
	case JSON_ARRAY:
		ingest_buf_put(bf, "[", 1);
		n = json_array_size(v);
		for (i = 0; i < n; i++) {
			if (i > 0)
				ingest_buf_put(bf, ",", 1);
			ingest_dump(bf, json_array_get(v, i));
		}
		ingest_buf_put(bf, "]", 1);
		break;
	case JSON_STRING:
		ingest_dump_string(bf, json_string_value(v),
		    json_string_length(v));
		break;
	case JSON_INTEGER:
		snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT,
		    json_integer_value(v));
		ingest_buf_put(bf, num, strlen(num));
		break;
	case JSON_REAL:
		ingest_dump_real(bf, json_real_value(v));
		break;
	case JSON_TRUE:
		ingest_buf_put(bf, "true", 4);
		break;
	case JSON_FALSE:
		ingest_buf_put(bf, "false", 5);
		break;
	case JSON_NULL:
		ingest_buf_put(bf, "null", 4);
		break;
	}
}

/* v as compact JSON; the caller frees. */
char *
ingest_dumps(json_t *v)
{
	struct ingest_buf	bf = { NULL, 0, 0 };

	ingest_dump(&bf, v);
	return bf.p;
}

/*
 * Write name as a JSON string into dst (INGEST_QUOTE_SIZE bytes) for a
 * cause, cut at a character boundary past INGEST_QUOTE_MAX bytes.
 */
const char *
ingest_quote(char *dst, const char *name, size_t len)
{
	struct ingest_buf	bf = { NULL, 0, 0 };
	size_t			cut = len;

	if (cut > INGEST_QUOTE_MAX) {
		cut = INGEST_QUOTE_MAX;
		while (cut > 0 && ((unsigned char)name[cut] & 0xc0) == 0x80)
			cut--;
	}
	ingest_dump_string(&bf, name, cut);
	if (cut < len) {
		bf.len--;	/* reopen the string for the ellipsis */
		ingest_buf_put(&bf, "...\"", 4);
	}
	snprintf(dst, INGEST_QUOTE_SIZE, "%s", bf.p);
	free(bf.p);
	return dst;
}
