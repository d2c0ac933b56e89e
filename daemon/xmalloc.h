/* SPDX-License-Identifier: MIT */
/*
 * xmalloc: allocation that treats out-of-memory as fatal, as the
 * daemon does everywhere.  Any thread.
 */
#ifndef GW_XMALLOC_H
#define GW_XMALLOC_H

#include <stdarg.h>
#include <stddef.h>

void	*xmalloc(size_t);
void	*xcalloc(size_t, size_t);
void	*xreallocarray(void *, size_t, size_t);
char	*xstrdup(const char *);
char	*xstrndup(const char *, size_t);
/* Allocate a formatted string into *ret; returns its length. */
int	 xasprintf(char **ret, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
int	 xvasprintf(char **ret, const char *fmt, va_list ap)
	    __attribute__((format(printf, 2, 0)));
/*
 * After freeing much (a run's state): hand the free pages back to the
 * system, so that the process's resident size falls.  Any thread.
 */
void	 xmalloc_release(void);

#endif
