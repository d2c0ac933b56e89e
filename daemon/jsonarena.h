/* SPDX-License-Identifier: MIT */
/*
 * jsonarena: a per-thread bump allocator for Jansson.  Decoding a
 * request makes one small allocation per JSON value (tens of thousands
 * for one ingest body), and malloc/free of those cost more than a tenth
 * of the daemon's ingest CPU.  Between jsonarena_begin() and
 * jsonarena_end() a thread's Jansson allocations come from large
 * blocks and frees are no-ops; jsonarena_end() releases them at once.
 * Outside that window, and on every other thread, Jansson uses malloc.
 * Contract: every json_t made inside the window is released (decref)
 * before jsonarena_end(), and none crosses threads (STYLE.md rule 6).
 */
#ifndef GW_JSONARENA_H
#define GW_JSONARENA_H

/* Route Jansson through the arena hooks; call once before any thread. */
void	jsonarena_install(void);
/* Start this thread's arena window. */
void	jsonarena_begin(void);
/* End the window, releasing every allocation made in it. */
void	jsonarena_end(void);
/* Free the block this thread keeps between windows (at thread exit). */
void	jsonarena_release(void);

#endif
