/* SPDX-License-Identifier: MIT */
/*
 * log: formats a line with a timestamp and level and writes it to
 * stderr in one write(2).  Safe from any thread; errno is preserved.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static int	log_verbose;

void
log_init(int verbose)
{
	log_verbose = verbose;
}

int
log_is_verbose(void)
{
	return log_verbose;
}

static void
log_vemit(const char *level, const char *errstr, const char *fmt, va_list ap)
{
	char		 line[2048];
	struct timespec	 ts;
	struct tm	 tm;
	int		 n, m;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = (int)strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
	n += snprintf(line + n, sizeof line - (size_t)n, ".%03ldZ %s ",
	    ts.tv_nsec / 1000000, level);
	m = vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
	if (m < 0)
		m = 0;
	n += m;
	if (n > (int)sizeof line - 2)
		n = (int)sizeof line - 2;
	if (errstr != NULL) {
		m = snprintf(line + n, sizeof line - (size_t)n, ": %s", errstr);
		n += m;
		if (n > (int)sizeof line - 2)
			n = (int)sizeof line - 2;
	}
	line[n++] = '\n';
	(void)!write(STDERR_FILENO, line, (size_t)n);
}

#define LOG_BODY(level, errstr)				\
	do {						\
		int	saved = errno;			\
		va_list	ap;				\
		va_start(ap, fmt);			\
		log_vemit(level, errstr, fmt, ap);	\
		va_end(ap);				\
		errno = saved;				\
	} while (0)

void
log_warn(const char *fmt, ...)
{
	const char	*e = strerror(errno);

	LOG_BODY("warn", e);
}

void
log_warnx(const char *fmt, ...)
{
	LOG_BODY("warn", NULL);
}

void
log_info(const char *fmt, ...)
{
	LOG_BODY("info", NULL);
}

void
log_debug(const char *fmt, ...)
{
	if (!log_verbose)
		return;
	LOG_BODY("debug", NULL);
}

void
fatal(const char *fmt, ...)
{
	const char	*e = strerror(errno);

	LOG_BODY("fatal", e);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	LOG_BODY("fatal", NULL);
	exit(1);
}
