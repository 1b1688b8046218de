/* Shared inside proto/: parsers of memcached's number rules, tokens, reply helpers. */
#ifndef MC_PROTO_INT_H
#define MC_PROTO_INT_H

#include "proto.h"

#define MC_MAX_TOKENS 24

struct mc_tok {
	const uint8_t *p;
	uint32_t len;
};

/* memcached's tokenize_command over line[0..len): split on spaces, at most max-1 tokens; the
 * final entry is a terminator whose p points at the unscanned rest (NULL when all was read)
 * and whose len is 0. Returns the count including the terminator. */
size_t mc_tokenize(const uint8_t *line, size_t len, struct mc_tok *t, size_t max);

/* memcached's safe_strto* (strtol family rules on a token). */
bool mc_strtol32(const struct mc_tok *t, int32_t *out);
bool mc_strtoul32(const struct mc_tok *t, uint32_t *out);
bool mc_strtoull(const struct mc_tok *t, uint64_t *out);
bool mc_strtol32_raw(const uint8_t *p, size_t len, int32_t *out);
bool mc_strtoull_raw(const uint8_t *p, size_t len, uint64_t *out);

static inline bool
tok_is(const struct mc_tok *t, const char *s, uint32_t n)
{
	return t->len == n && __builtin_memcmp(t->p, s, n) == 0;
}
#define TOK_IS(t, lit) tok_is((t), (lit), sizeof(lit) - 1)

/* Decimal numbers appended (mc_u64_digits and mc_put_u64 are in proto.h). */
bool mc_out_u64(struct mc_out *o, uint64_t v);
bool mc_out_i64(struct mc_out *o, int64_t v);

/* memcached's EXPTIME_TO_POSITIVE_TIME + realtime(). */
uint32_t mc_proto_exptime(const struct mc_proto_ctx *cx, int32_t exptime);

/* The read-only gate (conf->udp_writes), for every command that would change the store; a
 * refusal is counted here and answered by the caller in its codec's words. Call it before
 * anything is changed, deletes included. */
bool mc_proto_writes_ok(struct mc_proto_ctx *cx);
/* The admin gate (conf->udp_admin) for stats, flush_all and verbosity; counts a refusal. */
bool mc_proto_admin_ok(struct mc_proto_ctx *cx);

/* A stream request whose data block is not all here (req[*pos..len) holds its start, vlen + 2
 * bytes are needed). Returns MC_DATA_WAIT: nothing done, cx->ev = MC_EV_MORE (the caller
 * returns at once); MC_DATA_TOO_LARGE or MC_DATA_NO_MEMORY (more than the transport can buffer
 * for it): the caller answers with that error, the data is swallowed (*pos moves to len,
 * cx->swallow holds the rest). */
enum mc_data { MC_DATA_WAIT, MC_DATA_TOO_LARGE, MC_DATA_NO_MEMORY };
enum mc_data mc_proto_stream_data(struct mc_proto_ctx *cx, size_t len, size_t *pos,
				  uint64_t vlen, bool too_large);
/* Run one binary request at *pos (stream mode: may set cx->ev); false: stop processing. */
bool mc_binary_one(struct mc_proto_ctx *cx, const uint8_t *req, size_t len, size_t *pos,
		   struct mc_out *o, unsigned int *ncmd);

/* A reply that did not fit under the limit: rewind to mark, count it, and open the reserve for
 * the line that stands in for it. Returns true when the limit was the UDP cap (the answer is
 * "fetch it over TCP"), false when memory ran out (memcached's out-of-memory answer). The
 * caller writes its codec's line and sets o->full. */
bool mc_proto_cut(struct mc_proto_ctx *cx, struct mc_out *o, size_t mark);
/* ---- the reply to a hit: one place for the read under the item's version ---- */

/* What a hit's reply writes before its value, from the snapshot r (validated afterwards): OK,
 * AGAIN (the head changed the item, e.g. claimed meta's recache win: read it again), or DONE
 * (the head answered the command itself, rewinding to mark first). A write that did not fit
 * shows in o->full. */
enum mc_hit_head { MC_HEAD_OK, MC_HEAD_AGAIN, MC_HEAD_DONE };
typedef enum mc_hit_head (*mc_hit_head_fn)(struct mc_proto_ctx *cx, struct mc_out *o,
					   const struct mc_store_read *r, size_t mark, void *arg);

enum mc_hit { MC_HIT_MISS = 0, MC_HIT_OK = 1, MC_HIT_FULL = -1, MC_HIT_DONE = 2 };

/* The reply to a get-like command for k: head, then (with_value) the value, copied or
 * referenced for zero-copy, then tail. If the item changes meanwhile, all of it is rewound and
 * read again; only a reply of one unchanged version of the item is ever left in o. Counts
 * cmd_get, get_hits and get_misses. Returns MC_HIT_OK (r holds the read, for the caller's
 * touch), MC_HIT_MISS (nothing written), MC_HIT_FULL (the reply did not fit: rewound to *mark,
 * for the caller's cut line) or MC_HIT_DONE (the head answered). Inline, so each codec's head
 * is inlined into it. */
static inline __attribute__((always_inline)) enum mc_hit
mc_proto_hit(struct mc_proto_ctx *cx, const struct mc_key *k, struct mc_out *o, bool with_value,
	     const char *tail, size_t tail_len, mc_hit_head_fn head, void *arg,
	     struct mc_store_read *r, size_t *mark)
{
	cx->sx.st.cmd_get++;
	for (;;) {
		enum mc_hit_head h;
		int v = 1;
		*mark = mc_out_pos(o);
		if (mc_store_read_hot(&cx->sx, k, r) != MC_OK) {
			cx->sx.st.get_misses++;
			return MC_HIT_MISS;
		}
		h = head(cx, o, r, *mark, arg);
		if (h == MC_HEAD_DONE)
			return MC_HIT_DONE;
		if (h == MC_HEAD_AGAIN || !mc_store_read_check(r)) {
			mc_out_rewind(o, *mark);
			continue;
		}
		if (with_value && !o->full)
			v = mc_out_value(o, r);
		if (v == 0) {
			/* The item changed while its value was copied. */
			mc_out_rewind(o, *mark);
			cx->sx.st.read_retries++;
			continue;
		}
		if (tail_len != 0 && v > 0)
			mc_out_put(o, tail, tail_len);
		if (v < 0 || o->full) {
			mc_out_rewind(o, *mark);
			return MC_HIT_FULL;
		}
		cx->sx.st.get_hits++;
		return MC_HIT_OK;
	}
}

/* The ASCII and meta line for mc_proto_cut. */
void mc_proto_cut_line(struct mc_proto_ctx *cx, struct mc_out *o, size_t mark);
#define MC_TOO_LARGE_UDP "SERVER_ERROR response too large for UDP; retry over TCP"

/* A gat/touch that found nothing to touch: counted as mc_store_touch counts a miss. */
static inline void
mc_proto_touch_missed(struct mc_proto_ctx *cx)
{
	cx->sx.st.cmd_touch++;
	cx->sx.st.touch_misses++;
}

/* flush_all with memcached's delay rule: exptime <= 0 is now, else realtime(exptime). */
void mc_proto_flush_all(struct mc_proto_ctx *cx, int64_t exptime);

/* Commands. Each consumes its line (and data block) from *pos within req[0..len). Returns
 * false to stop processing the datagram (quit, or a reply that cannot be completed). */
bool mc_ascii_command(struct mc_proto_ctx *cx, const uint8_t *req, size_t len, size_t *pos,
		      struct mc_out *o);
/* A datagram that is exactly one get or gets of cx->hint's key (the transport's first key),
 * answered without the tokenizer; false when it is anything else (nothing done). */
bool mc_ascii_hinted(struct mc_proto_ctx *cx, const uint8_t *req, size_t len, struct mc_out *o);
void mc_meta_command(struct mc_proto_ctx *cx, char which, struct mc_tok *t, size_t nt,
		     const uint8_t *req, size_t len, size_t *pos, struct mc_out *o);
void mc_binary_execute(struct mc_proto_ctx *cx, const uint8_t *req, size_t len,
		       struct mc_out *o, unsigned int *ncmd);

/* base64 (meta's b flag). Returns decoded/encoded length or -1. */
int mc_base64_decode(const uint8_t *in, size_t len, uint8_t *out, size_t cap);
int mc_base64_encode(const uint8_t *in, size_t len, uint8_t *out, size_t cap);

/* The size memcached gives an item in me and metadump (ITEM_ntotal, 64-bit, CAS on): its 48-byte
 * header, the CAS, the key and its NUL, the value and its CRLF, and the client flags when they
 * are not zero. */
static inline uint64_t
mc_proto_item_ntotal(uint32_t klen, uint32_t vlen, uint32_t flags)
{
	return 48 + 8 + (uint64_t)klen + 1 + vlen + 2 + (flags != 0 ? 4 : 0);
}

/* lru_crawler (tokens as the ASCII dispatcher has them); metadump starts cx->dump. */
void mc_crawler_command(struct mc_proto_ctx *cx, const struct mc_tok *t, size_t nt,
			struct mc_out *o);
/* Go on with cx->dump until o holds soft bytes or the dump is done (then END, and inactive). */
void mc_crawler_dump_more(struct mc_proto_ctx *cx, struct mc_out *o, size_t soft);

/* "stats reset": counters as they stand now read as zero in stats from now on (gauges such as
 * curr_items and bytes are not counters and stay). */
void mc_proto_stats_reset(struct mc_proto_ctx *cx);

/* The "stats" command body (without END). */
void mc_proto_stats(struct mc_proto_ctx *cx, struct mc_out *o, const struct mc_tok *group);

#endif
