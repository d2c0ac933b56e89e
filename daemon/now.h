/* SPDX-License-Identifier: MIT */
/*
 * now: the daemon's two clocks as seconds in a double.  now_mono() for
 * intervals and deadlines (never jumps), now_wall() for times that are
 * stored or shown (seconds since the epoch).  Any thread.
 */
#ifndef GW_NOW_H
#define GW_NOW_H

double	now_mono(void);
double	now_wall(void);

#endif
