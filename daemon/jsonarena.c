/* SPDX-License-Identifier: MIT */
/*
 * jsonarena: Jansson's allocation hooks with a thread-local bump arena;
 * see jsonarena.h.  Each thread touches only its own arena.
 */
#include <stdint.h>
#include <stdlib.h>

#include <jansson.h>

#include "jsonarena.h"
#include "xmalloc.h"

#define JSONARENA_BLOCK		((size_t)1 << 20)	/* first block */
#define JSONARENA_KEEP		((size_t)4 << 20)	/* kept between windows */
#define JSONARENA_ALIGN		16

struct jsonarena_block {
	struct jsonarena_block	*next;
	size_t			 size;		/* usable bytes after the header */
	size_t			 used;
	_Alignas(JSONARENA_ALIGN) unsigned char data[];
};

struct jsonarena {
	int			 active;
	struct jsonarena_block	*blocks;	/* newest first */
};

static _Thread_local struct jsonarena	jsonarena;

static struct jsonarena_block *
jsonarena_block_new(size_t size, struct jsonarena_block *next)
{
	struct jsonarena_block	*b;

	b = xmalloc(sizeof *b + size);
	b->next = next;
	b->size = size;
	b->used = 0;
	return b;
}

static void *
jsonarena_malloc_cb(size_t n)
{
	struct jsonarena	*a = &jsonarena;
	struct jsonarena_block	*b;
	size_t			 need;
	void			*p;

	if (!a->active)
		return malloc(n);
	need = (n + JSONARENA_ALIGN - 1) & ~(size_t)(JSONARENA_ALIGN - 1);
	b = a->blocks;
	if (b == NULL || b->size - b->used < need) {
		size_t	size = b == NULL ? JSONARENA_BLOCK : b->size * 2;

		while (size < need)
			size *= 2;
		b = a->blocks = jsonarena_block_new(size, a->blocks);
	}
	p = b->data + b->used;
	b->used += need;
	return p;
}

/* 1 if p lies in one of this thread's arena blocks. */
static int
jsonarena_owns(const struct jsonarena *a, const void *p)
{
	const struct jsonarena_block	*b;
	uintptr_t			 u = (uintptr_t)p;

	for (b = a->blocks; b != NULL; b = b->next)
		if (u >= (uintptr_t)b->data && u < (uintptr_t)b->data + b->size)
			return 1;
	return 0;
}

static void
jsonarena_free_cb(void *p)
{
	struct jsonarena	*a = &jsonarena;

	if (p == NULL)
		return;
	if (a->active && jsonarena_owns(a, p))
		return;		/* released at jsonarena_end() */
	free(p);
}

void
jsonarena_install(void)
{
	json_set_alloc_funcs(jsonarena_malloc_cb, jsonarena_free_cb);
}

void
jsonarena_begin(void)
{
	jsonarena.active = 1;
}

void
jsonarena_end(void)
{
	struct jsonarena	*a = &jsonarena;
	struct jsonarena_block	*b, *next, *keep = NULL;

	a->active = 0;
	/* Keep the largest block that fits the budget; free the rest. */
	for (b = a->blocks; b != NULL; b = next) {
		next = b->next;
		if (keep == NULL && b->size <= JSONARENA_KEEP) {
			keep = b;
			keep->next = NULL;
			keep->used = 0;
		} else
			free(b);
	}
	a->blocks = keep;
}

void
jsonarena_release(void)
{
	jsonarena_end();
	free(jsonarena.blocks);
	jsonarena.blocks = NULL;
}
