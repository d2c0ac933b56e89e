/* SPDX-License-Identifier: MIT */
/*
 * thread_name: name the calling thread (at most 15 characters), as `top
 * -H`, `ps -L` and debuggers show it.  Linux only; elsewhere a no-op.
 */
#ifndef GW_THREAD_NAME_H
#define GW_THREAD_NAME_H

#ifdef __linux__
#include <sys/prctl.h>
#endif

static inline void
thread_name(const char *name)
{
#ifdef __linux__
	(void)prctl(PR_SET_NAME, name, 0, 0, 0);
#else
	(void)name;
#endif
}

#endif
