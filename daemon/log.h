/* SPDX-License-Identifier: MIT */
/*
 * log: stderr logging in OpenSMTPD's style.  Messages start with
 * "module: " and carry no trailing period.  Any thread may log; each
 * message is written with one write(2) so lines never interleave.
 */
#ifndef GW_LOG_H
#define GW_LOG_H

#include <stdarg.h>

/* Enable debug messages when verbose is non-zero. */
void	log_init(int verbose);
/* Non-zero when debug messages are enabled. */
int	log_is_verbose(void);

void	log_warn(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_warnx(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_info(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_debug(const char *, ...) __attribute__((format(printf, 1, 2)));
/* Log (with strerror(errno) for fatal) and exit(1). */
void	fatal(const char *, ...)
	    __attribute__((format(printf, 1, 2), noreturn));
void	fatalx(const char *, ...)
	    __attribute__((format(printf, 1, 2), noreturn));

#endif
