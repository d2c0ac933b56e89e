/* SPDX-License-Identifier: MIT */
/*
 * util: the library's clocks and its debug line, used by every thread
 * of a client (the caller's and the sender).  No state of its own.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "internal.h"

int64_t
gw__now_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

double
gw__wall_time(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

void
gw__debug(const struct gw_client *c, const char *fmt, ...)
{
	char	line[512];
	va_list	ap;
	int	saved = errno;

	if (!c->debug)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	fprintf(stderr, "gradwatch: %s: %s\n", c->run, line);
	errno = saved;
}
