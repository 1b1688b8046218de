/* mcgen's request table: every request in flight by its memcached request id, and the matching
 * of reply datagrams to it. A reply is reassembled (datagrams by seq within a message, messages
 * in arrival order, as memcached sends one message per object), checked against its request
 * (tools/workload.c), timed, and counted: replies, hits, misses, wrong replies (errors),
 * requests never answered within the timeout (loss), replies that came after a reply to a
 * later request or datagrams out of seq order (reorders), and datagrams for no request in
 * flight (late). No DPDK here: frames come in as UDP payloads and times as TSC values, so the
 * unit tests feed it directly. */
#ifndef MC_MCGEN_MATCH_H
#define MC_MCGEN_MATCH_H

#include <stdbool.h>
#include <stdint.h>

#include "workload.h"

#define MCG_SLOTS 65536   /* one per request id */
#define MCG_ASM_DGRAMS 32 /* the longest reply reassembled: 32 datagrams */
#define MCG_ASM_POOL 64   /* replies reassembled at once; more are matched but not checked */

struct mcg_asm {
	uint8_t buf[MCG_ASM_DGRAMS * MC_WL_DGRAM_PAYLOAD];
	uint32_t len;       /* bytes of the whole messages so far */
	uint32_t got;       /* the current message's datagrams, a bit per seq */
	uint16_t last_len;  /* its last datagram's payload */
	struct mcg_asm *next_free;
};

struct mcg_req {
	uint64_t sent;  /* TSC */
	uint64_t order; /* send order, from 1 */
	struct mcg_asm *as; /* NULL unless the reply spans datagrams or messages */
	uint16_t msg_total, msg_got, next_seq;
	bool live, measured, unchecked;
	struct mc_wl_req r;
};

#define MCG_COUNTERS(X)                                                                        \
	X(requests)                                                                            \
	X(replies)                                                                             \
	X(hits)                                                                                \
	X(misses)                                                                              \
	X(errors)                                                                              \
	X(loss)                                                                                \
	X(reorders)                                                                            \
	X(late)                                                                                \
	X(unchecked)

struct mcg_counters {
#define X(name) uint64_t name;
	MCG_COUNTERS(X)
#undef X
};

struct mcg_match {
	const struct mc_wl *wl;
	struct mcg_req *slot;
	struct mcg_asm *pool, *free_asm;
	uint16_t next_rid, oldest_rid;
	uint64_t order, newest_answered;
	unsigned int outstanding;
	uint64_t timeout;   /* TSC ticks */
	double ns_per_tick;
	bool measuring;     /* requests issued now are measured */
	struct mcg_counters all, measured; /* every request; those issued while measuring */
	struct mc_hist h;   /* latencies of measured requests, ns */
	const char *why;    /* the last wrong reply: what was wrong */
	uint8_t bad[64];    /* and its first bytes */
	uint32_t bad_len;
};

/* Returns 0 or -1 (out of memory). */
int mcg_match_create(struct mcg_match *m, const struct mc_wl *wl, uint64_t timeout_ticks,
		     double ns_per_tick);
void mcg_match_destroy(struct mcg_match *m);

/* A new request sent at now: returns the record the caller fills (r) and its id. A request
 * whose id comes round again while it is still in flight is counted lost first. */
struct mc_wl_req *mcg_issue(struct mcg_match *m, uint64_t now, uint16_t *rid);
/* The request rid was never sent (the port refused it): forget it. */
void mcg_unissue(struct mcg_match *m, uint16_t rid);
/* One reply datagram (memcached frame header and payload) received at now. */
void mcg_reply(struct mcg_match *m, const uint8_t *d, size_t len, uint64_t now);
/* Count as lost every request in flight longer than the timeout (oldest first; cheap). */
void mcg_expire(struct mcg_match *m, uint64_t now);
/* Count as lost every request still in flight (the end of a run). */
void mcg_expire_all(struct mcg_match *m);

#endif
