/* What the store's unit tests share: a store in plain memory, and keys and values by string. */
#ifndef MC_TEST_STORE_H
#define MC_TEST_STORE_H

#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "store/store.h"

#define T0 1700000000LL

static void *mem;
static struct mc_store *s;
static struct mc_store_ctx cx;

static inline struct mc_store *
make(size_t mb, unsigned int parts, uint32_t max_item)
{
	struct mc_store_settings set = {
		.mem_bytes = mb << 20, .nparts = parts, .max_item_size = max_item,
		.factor = 1.25, .chunk_min = 48, .unix_now = T0,
		.hash_seed = {0x6d63626f78ull, 0x7465737473ull},
	};
	free(mem);
	mem = aligned_alloc(64, mb << 20);
	assert_non_null(mem);
	s = mc_store_create(mem, mb << 20, &set);
	assert_non_null(s);
	memset(&cx, 0, sizeof(cx));
	cx.s = s;
	return s;
}

static inline int
setup(void **state)
{
	(void)state;
	make(16, 1, 1 << 20);
	return 0;
}

static inline struct mc_key
K(const char *str)
{
	struct mc_key k;
	mc_key_init(&k, s, str, (uint32_t)strlen(str));
	return k;
}

static inline enum mc_store_status
set(const char *key, const char *val, uint32_t flags, uint32_t exp)
{
	struct mc_key k = K(key);
	return mc_store_store(&cx, &k,
			      &(struct mc_store_args){.mode = MC_SET,
						      .flags = flags,
						      .exptime = exp,
						      .val = val,
						      .vlen = (uint32_t)strlen(val)},
			      NULL);
}

static inline enum mc_store_status
op(enum mc_store_mode mode, const char *key, const char *val, uint64_t cas_in)
{
	struct mc_key k = K(key);
	return mc_store_store(
		&cx, &k,
		&(struct mc_store_args){
			.mode = mode, .val = val, .vlen = (uint32_t)strlen(val), .cas_in = cas_in},
		NULL);
}

/* Value as a string, or NULL on a miss. */
static inline const char *
get(const char *key)
{
	static char buf[1 << 21];
	uint32_t vlen;
	struct mc_key k = K(key);
	if (mc_store_get(&cx, &k, buf, sizeof(buf) - 1, &vlen, NULL, NULL) != MC_OK)
		return NULL;
	buf[vlen] = '\0';
	return buf;
}

/* The key hash is keyed: the same secret gives the same hashes, another secret other ones, and
 * a store created without one draws its own (hash flooding needs the secret to aim). */
static inline uint64_t
delta(const char *key, bool incr, uint64_t d, enum mc_store_status *rc)
{
	struct mc_key k = K(key);
	struct mc_delta_args a = {.incr = incr, .delta = d};
	uint64_t v = 0;
	*rc = mc_store_delta(&cx, &k, &a, &v, NULL);
	return v;
}


static inline int
teardown(void **state)
{
	(void)state;
	free(mem);
	mem = NULL;
	return 0;
}

#endif
