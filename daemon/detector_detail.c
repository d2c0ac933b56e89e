/* SPDX-License-Identifier: MIT */
/* detector_detail: alerts' detail objects and numbers; see detector_detail.h. */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "detector_detail.h"
#include "wire.h"
#include "xmalloc.h"

void
jb_put(struct jb *j, const char *fmt, ...)
{
	va_list	ap;
	int	n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(j->p + j->len, j->cap - j->len, fmt, ap);
		va_end(ap);
		if (n < 0)
			return;
		if ((size_t)n < j->cap - j->len) {
			j->len += (size_t)n;
			return;
		}
		j->cap = (j->cap + (size_t)n + 1) * 2;
		j->p = xreallocarray(j->p, j->cap, 1);
	}
}

void
jb_begin(struct jb *j)
{
	j->cap = 256;
	j->p = xmalloc(j->cap);
	j->len = 0;
	j->p[0] = '\0';
	jb_put(j, "{");
	j->first = 1;
}

void
jb_key(struct jb *j, const char *k)
{
	jb_put(j, "%s\"%s\":", j->first ? "" : ",", k);
	j->first = 0;
}

/* A number, or null when it is not finite (JSON has no NaN). */
void
jb_num(struct jb *j, const char *k, double v)
{
	jb_key(j, k);
	if (isfinite(v))
		jb_put(j, "%.6g", v);
	else
		jb_put(j, "null");
}

void
jb_int(struct jb *j, const char *k, int64_t v)
{
	jb_key(j, k);
	jb_put(j, "%lld", (long long)v);
}

void
jb_quote(struct jb *j, const char *s)
{
	const unsigned char	*u = (const unsigned char *)s;

	jb_put(j, "\"");
	for (; *u != '\0'; u++) {
		if (*u == '"' || *u == '\\')
			jb_put(j, "\\%c", *u);
		else if (*u < 0x20)
			jb_put(j, "\\u%04x", *u);
		else
			jb_put(j, "%c", *u);
	}
	jb_put(j, "\"");
}

void
jb_str(struct jb *j, const char *k, const char *s)
{
	jb_key(j, k);
	jb_quote(j, s);
}

char *
jb_end(struct jb *j)
{
	jb_put(j, "}");
	return j->p;
}

/* A value for a person: 3 significant digits. */
const char *
fmtv(char *buf, size_t len, double v)
{
	const char	*s = wire_nonfinite_str(v);

	if (s != NULL)
		snprintf(buf, len, "%s", s);
	else
		snprintf(buf, len, "%.3g", v);
	return buf;
}
