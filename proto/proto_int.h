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

/* Append decimal numbers. */
bool mc_out_u64(struct mc_out *o, uint64_t v);
bool mc_out_i64(struct mc_out *o, int64_t v);

/* memcached's EXPTIME_TO_POSITIVE_TIME + realtime(). */
uint32_t mc_proto_exptime(const struct mc_proto_ctx *cx, int32_t exptime);

/* Commands. Each consumes its line (and data block) from *pos within req[0..len). Returns
 * false to stop processing the datagram (quit, or a reply that cannot be completed). */
bool mc_ascii_command(struct mc_proto_ctx *cx, const uint8_t *req, size_t len, size_t *pos,
		      struct mc_out *o);
void mc_meta_command(struct mc_proto_ctx *cx, char which, struct mc_tok *t, size_t nt,
		     const uint8_t *req, size_t len, size_t *pos, struct mc_out *o);
void mc_binary_execute(struct mc_proto_ctx *cx, const uint8_t *req, size_t len,
		       struct mc_out *o, unsigned int *ncmd);

/* base64 (meta's b flag). Returns decoded/encoded length or -1. */
int mc_base64_decode(const uint8_t *in, size_t len, uint8_t *out, size_t cap);
int mc_base64_encode(const uint8_t *in, size_t len, uint8_t *out, size_t cap);

/* The "stats" command body (without END). */
void mc_proto_stats(struct mc_proto_ctx *cx, struct mc_out *o, const struct mc_tok *group);

#endif
