/* What the protocol's unit tests share: a store in plain memory, a protocol context over it,
 * and requests run to their exact reply bytes (ASCII by string, binary packets built here). */
#ifndef MC_TEST_PROTO_H
#define MC_TEST_PROTO_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/proto.h"
#include "proto/proto_int.h"
#include "store/store.h"

#define T0 1700000000LL

static void *mem;
static struct mc_store *s;
static struct mc_proto_conf conf = {.udp_admin = true, .udp_writes = true};
static struct mc_proto_ctx cx;
static uint8_t outbuf[1 << 16], spill[4 << 20];

/* A fresh store with memcached's -I of max_item bytes. */
static inline void
fresh_sized(uint32_t max_item)
{
	struct mc_store_settings set = {.mem_bytes = 16 << 20, .nparts = 1,
					.max_item_size = max_item, .factor = 1.25,
					.chunk_min = 48, .unix_now = T0};
	free(mem);
	mem = aligned_alloc(64, 16 << 20);
	s = mc_store_create(mem, 16 << 20, &set);
	assert_non_null(s);
	conf.udp_admin = true;
	conf.udp_writes = true;
	mc_proto_ctx_init(&cx, s, &conf);
}

static inline void
fresh(void)
{
	fresh_sized(1 << 20);
}

/* Run one datagram payload; return the reply (NUL-terminated copy) and its length. */
static bool out_udp; /* run as the UDP transport does: a cut reply says retry over TCP */
static const struct mc_key *run_hint; /* the transport's hashed first key, if any */

static inline const char *
run_n(const void *req, size_t len, size_t *outlen, size_t limit)
{
	static char copy[(4 << 20) + 1];
	struct mc_out o;
	mc_out_init(&o, outbuf, 1400, spill, sizeof(spill), limit ? limit : sizeof(spill));
	o.udp = out_udp;
	mc_proto_execute(&cx, req, len, run_hint, &o);
	memcpy(copy, o.buf, o.len);
	copy[o.len] = '\0';
	*outlen = o.len;
	return copy;
}

static inline const char *
run(const char *req)
{
	size_t n;
	return run_n(req, strlen(req), &n, 0);
}

/* A request of `head` followed by a value of vlen 'v' bytes and `tail` (malloc'd; free it). */
static inline char *
with_value(const char *head, size_t vlen, const char *tail, size_t *len)
{
	size_t hl = strlen(head), tl = strlen(tail);
	char *p = malloc(hl + vlen + tl + 1);
	memcpy(p, head, hl);
	memset(p + hl, 'v', vlen);
	memcpy(p + hl + vlen, tail, tl + 1);
	*len = hl + vlen + tl;
	return p;
}

struct ascii_case {
	const char *req;
	const char *want;
};

static inline void
check_table(const struct ascii_case *c, size_t n)
{
	size_t i;
	for (i = 0; i < n; i++) {
		const char *got = run(c[i].req);
		if (strcmp(got, c[i].want) != 0)
			fail_msg("case %zu: %s\n  want: %s\n  got:  %s", i, c[i].req, c[i].want, got);
	}
}

/* ---- binary ---- */

static inline size_t
breq(uint8_t *p, uint8_t op, const char *key, const void *ext, uint8_t extlen, const void *val,
     size_t vlen, uint64_t cas)
{
	size_t kl = key ? strlen(key) : 0;
	uint32_t bl = (uint32_t)(kl + extlen + vlen);
	memset(p, 0, 24);
	p[0] = 0x80;
	p[1] = op;
	p[2] = (uint8_t)(kl >> 8);
	p[3] = (uint8_t)kl;
	p[4] = extlen;
	p[8] = (uint8_t)(bl >> 24);
	p[9] = (uint8_t)(bl >> 16);
	p[10] = (uint8_t)(bl >> 8);
	p[11] = (uint8_t)bl;
	memcpy(p + 12, "\xde\xad\xbe\xef", 4);
	for (int i = 0; i < 8; i++)
		p[16 + i] = (uint8_t)(cas >> (56 - 8 * i));
	if (extlen)
		memcpy(p + 24, ext, extlen);
	if (kl)
		memcpy(p + 24 + extlen, key, kl);
	if (vlen)
		memcpy(p + 24 + extlen + kl, val, vlen);
	return 24 + bl;
}

static inline uint16_t
status_of(const uint8_t *r)
{
	return (uint16_t)(r[6] << 8 | r[7]);
}

static inline void
be32_put(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* Binary GET of key: its status (0 hit, 1 miss). */
static inline uint16_t
bget(const char *key)
{
	uint8_t req[300];
	size_t n, len = breq(req, 0x00, key, NULL, 0, NULL, 0, 0);
	return status_of((const uint8_t *)run_n(req, len, &n, 0));
}

#endif
