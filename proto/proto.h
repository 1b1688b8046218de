/* Protocol: memcached's ASCII, meta and binary commands, transport-agnostic. A request is a
 * byte view (no copy); replies go to an mc_out. The store is reached only through store.h.
 * Behaviour follows stock memcached 1.6 (Debian's 1.6.18) word for word, as its tests show. */
#ifndef MC_PROTO_H
#define MC_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../store/store.h"

#define MC_VERSION_STRING "1.6.18-mcbox"

/* Reply bytes. Writes go to buf; when it fills, everything so far moves to spill (once) and
 * writing continues there. limit caps the whole reply (amplification defence). */
struct mc_out {
	uint8_t *buf;
	size_t len;
	size_t cap;
	uint8_t *spill;
	size_t spill_cap;
	size_t limit;
	bool full;      /* a write did not fit: the reply was cut */
	bool spilled;
};

static inline void
mc_out_init(struct mc_out *o, uint8_t *buf, size_t cap, uint8_t *spill, size_t spill_cap,
	    size_t limit)
{
	o->buf = buf;
	o->len = 0;
	o->cap = cap;
	o->spill = spill;
	o->spill_cap = spill_cap;
	o->limit = limit;
	o->full = false;
	o->spilled = false;
}

/* Room for n more bytes (pointer to them, length not yet advanced), or NULL. */
uint8_t *mc_out_room_slow(struct mc_out *o, size_t n);
static inline uint8_t *
mc_out_room(struct mc_out *o, size_t n)
{
	if (__builtin_expect(o->len + n <= o->cap && o->len + n <= o->limit, 1))
		return o->buf + o->len;
	return mc_out_room_slow(o, n);
}
static inline bool
mc_out_put(struct mc_out *o, const void *p, size_t n)
{
	uint8_t *d = mc_out_room(o, n);
	if (d == NULL)
		return false;
	__builtin_memcpy(d, p, n);
	o->len += n;
	return true;
}
#define MC_OUT_STR(o, s) mc_out_put((o), (s), sizeof(s) - 1)

/* Counters kept per lcore; X(name). */
#define MC_PROTO_COUNTERS(X)                                                                   \
	X(cmd_ascii) X(cmd_meta) X(cmd_binary) X(proto_errors) X(proto_incomplete)             \
	X(reply_cut) X(admin_refused) X(write_refused)

struct mc_proto_stats {
#define X(n) uint64_t n;
	MC_PROTO_COUNTERS(X)
#undef X
};

/* Settings shared by all lcores. */
struct mc_proto_conf {
	bool udp_admin;        /* stats, flush_all, verbosity allowed */
	bool udp_writes;       /* storage commands allowed */
	uint32_t max_item_size;
	volatile int verbosity;
};

struct mc_proto_ctx;
/* The app's extra "stats" lines (dataplane counters, uptime...): group is "" for plain stats. */
typedef void (*mc_proto_stats_fn)(void *arg, struct mc_proto_ctx *cx, struct mc_out *o,
				  const char *group, size_t glen);

struct mc_proto_ctx {
	struct mc_store_ctx sx;
	const struct mc_proto_conf *conf;
	struct mc_proto_stats st;
	mc_proto_stats_fn stats_fn;
	void *stats_arg;
};

void mc_proto_ctx_init(struct mc_proto_ctx *cx, struct mc_store *s, const struct mc_proto_conf *conf);

/* Execute every command in req (one datagram's payload) in order, appending replies to o.
 * Binary if the first byte is 0x80, else ASCII/meta. Returns the number of commands run. */
unsigned int mc_proto_execute(struct mc_proto_ctx *cx, const uint8_t *req, size_t len,
			      struct mc_out *o);

/* "STAT name value\r\n" helpers for stats writers. */
void mc_proto_stat_u64(struct mc_out *o, const char *name, uint64_t v);
void mc_proto_stat_str(struct mc_out *o, const char *name, const char *v);

#endif
