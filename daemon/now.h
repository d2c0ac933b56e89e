/* SPDX-License-Identifier: MIT */
/*
 * now: the daemon's two clocks as seconds in a double.  now_mono() for
 * intervals and deadlines (never jumps), now_wall() for times that are
 * stored or shown (seconds since the epoch).  Any thread.
 */
#ifndef GW_NOW_H
#define GW_NOW_H

#include <stdint.h>

double	now_mono(void);
double	now_wall(void);
/* now_mono() in whole microseconds, for timers on integer grids. */
int64_t	now_mono_us(void);
/*
 * The wall-clock time ms milliseconds from now, as the absolute
 * deadline pthread_cond_timedwait() takes.
 */
struct timespec;
void	now_deadline(struct timespec *ts, int64_t ms);

#endif
