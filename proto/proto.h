/* Protocol: memcached's ASCII, meta and binary commands, transport-agnostic. A request is a
 * byte view (no copy); replies go to an mc_out. The store is reached only through store.h.
 * Behaviour follows stock memcached 1.6 (Debian's 1.6.18) word for word, as its tests show. */
#ifndef MC_PROTO_H
#define MC_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../store/hot.h"

#define MC_VERSION_STRING "1.6.18-mcbox"

struct mc_item;

/* A value sent from item memory instead of copied (zero-copy): it sits in the reply stream
 * at logical position lpos, before text byte `at`. Holds a store reference until released. */
struct mc_out_ref {
	size_t lpos;
	size_t at;
	uint8_t *ref;   /* from mc_store_read_ref */
	const uint8_t *p;
	uint32_t len;
};
#define MC_OUT_MAX_REFS 64
#define MC_OUT_MAX_SUMS 8
#define MC_OUT_SUM_MIN 128 /* values this long have their kept sums used (mcbench: 32 B loses) */

/* Reply bytes. Text goes to buf; when it fills, everything so far moves to spill (once) and
 * writing continues there. Values of at least zc_min bytes may instead be referenced (refs);
 * the reply stream is the text with each ref's bytes spliced in before its `at`. The limit
 * caps the whole reply, text and references (amplification defence); MC_OUT_RESERVE bytes of
 * it are kept for the line that stands in for a reply that did not fit (mc_proto_cut). */
#define MC_OUT_RESERVE 64
struct mc_out {
	uint8_t *buf;
	size_t len;
	size_t cap;
	uint8_t *spill;
	size_t spill_cap;
	size_t limit;       /* what replies may use: the hard limit less the reserve */
	size_t hard_limit;
	bool full;      /* a write did not fit: the reply was cut */
	bool spilled;
	bool udp;       /* a cut reply says: too large for UDP, retry over TCP */
	uint32_t zc_min; /* 0 = always copy */
	uint16_t nrefs;
	size_t reflen;
	struct mc_out_ref refs[MC_OUT_MAX_REFS];
	/* Values copied into the text, with their sums from the store, so the reply's checksum
	 * can add a value's sum instead of reading it again; nsums > MC_OUT_MAX_SUMS: too many
	 * were copied, sum everything. */
	uint8_t nsums;
	struct mc_out_sum {
		uint32_t pos; /* offset in the text */
		uint32_t len;
		uint16_t sum; /* as if the value began at an even offset */
	} sums[MC_OUT_MAX_SUMS];
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
	o->hard_limit = limit;
	o->limit = limit > MC_OUT_RESERVE ? limit - MC_OUT_RESERVE : 0;
	o->full = false;
	o->spilled = false;
	o->udp = false;
	o->zc_min = 0;
	o->nrefs = 0;
	o->reflen = 0;
	o->nsums = 0;
}

/* Logical position (text and referenced bytes): a mark for mc_out_rewind. */
static inline size_t
mc_out_pos(const struct mc_out *o)
{
	return o->len + o->reflen;
}
/* Drop everything written after mark, releasing the references taken since. */
void mc_out_rewind(struct mc_out *o, size_t mark);

/* memcpy for the short, variable lengths of keys and small values, without a call: up to 32
 * bytes as two overlapping moves, longer ones by memcpy. d and s do not overlap. */
static inline void
mc_copy(void *d, const void *s, size_t n)
{
	uint8_t *dp = d;
	const uint8_t *sp = s;
	if (n > 32) {
		__builtin_memcpy(d, s, n);
	} else if (n >= 16) {
		struct { uint64_t a, b; } x, y;
		__builtin_memcpy(&x, sp, 16);
		__builtin_memcpy(&y, sp + n - 16, 16);
		__builtin_memcpy(dp, &x, 16);
		__builtin_memcpy(dp + n - 16, &y, 16);
	} else if (n >= 8) {
		uint64_t x, y;
		__builtin_memcpy(&x, sp, 8);
		__builtin_memcpy(&y, sp + n - 8, 8);
		__builtin_memcpy(dp, &x, 8);
		__builtin_memcpy(dp + n - 8, &y, 8);
	} else if (n >= 4) {
		uint32_t x, y;
		__builtin_memcpy(&x, sp, 4);
		__builtin_memcpy(&y, sp + n - 4, 4);
		__builtin_memcpy(dp, &x, 4);
		__builtin_memcpy(dp + n - 4, &y, 4);
	} else if (n != 0) {
		/* 1 to 3 bytes: first, middle and last (some the same). */
		uint8_t x = sp[0], y = sp[n / 2], z = sp[n - 1];
		dp[0] = x;
		dp[n / 2] = y;
		dp[n - 1] = z;
	}
}

/* Room for n more bytes (pointer to them, length not yet advanced), or NULL. */
uint8_t *mc_out_room_slow(struct mc_out *o, size_t n);
static inline uint8_t *
mc_out_room(struct mc_out *o, size_t n)
{
	if (__builtin_expect(o->len + n <= o->cap && o->len + o->reflen + n <= o->limit, 1))
		return o->buf + o->len;
	return mc_out_room_slow(o, n);
}
static inline bool
mc_out_put(struct mc_out *o, const void *p, size_t n)
{
	uint8_t *d = mc_out_room(o, n);
	if (d == NULL)
		return false;
	mc_copy(d, p, n);
	o->len += n;
	return true;
}
#define MC_OUT_STR(o, s) mc_out_put((o), (s), sizeof(s) - 1)

/* mc_out_value's zero-copy side: 1 referenced, 0 the item changed, 2 copy it instead. */
int mc_out_value_ref(struct mc_out *o, const struct mc_store_read *r);

/* A validated read's value: referenced when the reply allows zero-copy and the value is long
 * enough, copied otherwise. Returns 1 done, 0 the item changed (rewind and read again), -1 the
 * reply is full. */
static inline int
mc_out_value(struct mc_out *o, const struct mc_store_read *r)
{
	size_t pos;
	if (__builtin_expect(o->zc_min != 0 && r->vlen >= o->zc_min, 0)) {
		const int v = mc_out_value_ref(o, r);
		if (v != 2)
			return v;
	}
	pos = o->len;
	if (!mc_out_put(o, r->value, r->vlen))
		return -1;
	/* Short values are summed faster than their pieces are kept track of. */
	if (r->vlen >= MC_OUT_SUM_MIN && r->vlen <= MC_VSUM_MAX) {
		if (o->nsums < MC_OUT_MAX_SUMS)
			o->sums[o->nsums] = (struct mc_out_sum){(uint32_t)pos, r->vlen, r->vsum};
		if (o->nsums <= MC_OUT_MAX_SUMS)
			o->nsums++;
	}
	/* The sum was read with the value: the same check validates both. */
	return mc_store_read_check(r) ? 1 : 0;
}

/* Counters kept per lcore; X(name). */
#define MC_PROTO_COUNTERS(X)                                                                   \
	X(cmd_ascii) X(cmd_meta) X(cmd_binary) X(proto_errors) X(proto_incomplete)             \
	X(reply_cut) X(reply_too_large_udp) X(admin_refused) X(write_refused) X(cmd_get_fast)

struct mc_proto_stats {
#define X(n) uint64_t n;
	MC_PROTO_COUNTERS(X)
#undef X
};

/* Settings shared by all lcores. */
struct mc_proto_conf {
	bool udp_admin;        /* stats, flush_all, verbosity allowed */
	bool udp_writes;       /* anything that changes the store allowed */
	uint32_t max_item_size;
	volatile int verbosity;
	volatile bool crawler_off; /* "lru_crawler disable": metadump refused until enabled */
	/* "stats reset": the store's counters as they stood then, taken off what stats prints
	 * (the counters themselves belong to their writers). Under a version, odd while a reset
	 * writes it, so any thread may print while another resets. */
	struct mc_stats_base {
		uint32_t ver;
		struct mc_store_part_stats part;
		uint64_t evicted[MC_STORE_MAX_CLASSES];
	} base;
};

/* An lru_crawler metadump under way on one stream connection. The transport keeps one per
 * connection and points cx->dump at it; mc_proto_stream goes on with it, a bounded chunk at a
 * time, before it runs the connection's next request (memcached's crawler writes to the
 * connection from its own thread meanwhile). */
struct mc_dump {
	bool active;
	bool all;         /* every class, else those in classes */
	uint64_t classes; /* bit c: memcached's slab class id c (1..63) */
	uint64_t cursor;  /* mc_store_walk's */
};

struct mc_proto_ctx;
/* The app's extra "stats" lines (dataplane counters, uptime...): group is "" for plain stats;
 * "reset" asks it to take its counters as they stand now as zero (it writes nothing then). */
typedef void (*mc_proto_stats_fn)(void *arg, struct mc_proto_ctx *cx, struct mc_out *o,
				  const char *group, size_t glen);

/* What a command tells a stream transport (mc_proto_ctx.ev). */
enum mc_proto_ev {
	MC_EV_NONE,
	MC_EV_MORE,  /* the request is not all here: nothing was done, wait for more bytes */
	MC_EV_CLOSE, /* quit, or an error after which memcached closes the connection */
};

struct mc_proto_ctx {
	struct mc_store_ctx sx;
	/* A byte stream (TCP), set by the transport: a request may arrive in pieces, quit and
	 * protocol errors close, and the udp_admin/udp_writes gates do not apply. */
	bool stream;
	uint8_t ev;          /* enum mc_proto_ev, set by the command just run */
	size_t need;         /* MC_EV_MORE: bytes the request needs from its start, 0 = unknown */
	size_t req_start;    /* where the request being run starts */
	uint64_t swallow;    /* bytes after the datagram/buffer to discard (a too-large value) */
	size_t stream_cap;   /* the most the transport buffers for one request */
	/* The hint of the request being executed (mc_proto_execute's argument): the hashed (and
	 * placed) key view the transport found; mc_proto_key takes it for that very view. */
	const struct mc_key *hint;
	const struct mc_proto_conf *conf;
	/* The connection's metadump state, set by a stream transport that can carry one (NULL:
	 * metadump is refused, as over UDP: its reply has no bound). */
	struct mc_dump *dump;
	struct mc_proto_stats st;
	mc_proto_stats_fn stats_fn;
	void *stats_arg;
};

/* A key for the store, taking the transport's hash when it is for this very view. */
static inline void
mc_proto_key(const struct mc_proto_ctx *cx, struct mc_key *k, const uint8_t *p, uint32_t len)
{
	if (cx->hint != NULL && p == cx->hint->p && len == cx->hint->len) {
		*k = *cx->hint;
		return;
	}
	mc_key_init(k, cx->sx.s, p, len);
}

void mc_proto_ctx_init(struct mc_proto_ctx *cx, struct mc_store *s, const struct mc_proto_conf *conf);

/* Execute every command in req (one datagram's payload) in order, appending replies to o.
 * Binary if the first byte is 0x80, else ASCII/meta. hint (may be NULL): the request's first
 * key as a view into req, already hashed (the transport's burst pre-pass found it with
 * mc_proto_first_key); a lone get of it skips the tokenizer. Returns the commands run. */
unsigned int mc_proto_execute(struct mc_proto_ctx *cx, const uint8_t *req, size_t len,
			      const struct mc_key *hint, struct mc_out *o);
/* Decimal numbers: the digit count of v, and v written as exactly n digits at d. */
extern const char mc_digit_pairs[201];

static inline unsigned int
mc_u64_digits(uint64_t v)
{
	static const uint64_t pow10[20] = {
		1ull, 10ull, 100ull, 1000ull, 10000ull, 100000ull, 1000000ull, 10000000ull,
		100000000ull, 1000000000ull, 10000000000ull, 100000000000ull, 1000000000000ull,
		10000000000000ull, 100000000000000ull, 1000000000000000ull, 10000000000000000ull,
		100000000000000000ull, 1000000000000000000ull, 10000000000000000000ull};
	/* log10(2) ~ 1233/4096: the bit length gives the digit count or one less. */
	unsigned int t = ((64u - (unsigned int)__builtin_clzll(v | 1)) * 1233u) >> 12;
	return t + ((v | 1) >= pow10[t]); /* v | 1: zero has one digit */
}

/* v as exactly n digits at d (n = mc_u64_digits(v)). Returns their ones'-complement sum as
 * if they began at an even offset, unfolded (mc_sum_fold), from the digit pairs in hand: a
 * reply's checksum can add it without reading the digits back. */
static inline uint64_t
mc_put_u64(uint8_t *d, uint64_t v, unsigned int n)
{
	uint64_t sum = 0;
	d += n;
	/* Pairs end at n: they all start at n's parity. A pair's bytes as a 16-bit word are its
	 * sum at an even offset; at an odd one, that shifted a byte up. */
	while (v >= 100) {
		unsigned int r = (unsigned int)(v % 100) * 2;
		v /= 100;
		*--d = (uint8_t)mc_digit_pairs[r + 1];
		*--d = (uint8_t)mc_digit_pairs[r];
		sum += (uint8_t)mc_digit_pairs[r] | (uint64_t)(uint8_t)mc_digit_pairs[r + 1] << 8;
	}
	if (v >= 10) {
		*--d = (uint8_t)mc_digit_pairs[v * 2 + 1];
		*--d = (uint8_t)mc_digit_pairs[v * 2];
		return sum + ((uint8_t)mc_digit_pairs[v * 2] |
			      (uint64_t)(uint8_t)mc_digit_pairs[v * 2 + 1] << 8);
	}
	*--d = (uint8_t)('0' + v);
	return (sum << 8) + '0' + v; /* n odd: the pairs at odd offsets, this digit at 0 */
}

/* A sum of bytes taken as if they began at an even offset, placed at offset off. */
static inline uint64_t
mc_sum_at(uint64_t sum, size_t off)
{
	return sum << (8 * (off & 1));
}

/* Two bytes' sum at an even offset, as a little-endian host sums them. */
#define MC_SUM2(a, b) ((uint64_t)(uint8_t)(a) | (uint64_t)(uint8_t)(b) << 8)

/* What mc_proto_lone_fill returns when the item changed while it was copied (counted in
 * read_retries, nothing else): look it up again. */
#define MC_LONE_CHANGED SIZE_MAX

/* mc_proto_lone_write after its lookup: r the hit, NULL a miss. MC_LONE_CHANGED when the
 * item changed under the copy. Apart, so that a caller can run the lookup itself and hand a
 * changed item to another path rather than loop (the UDP fast path, reply_lone: 2
 * instructions a GET fewer than the loop). */
static inline __attribute__((always_inline)) size_t
mc_proto_lone_fill(struct mc_proto_ctx *cx, const struct mc_key *k,
		   const struct mc_store_read *r, bool with_cas, uint8_t *out, size_t cap,
		   uint32_t zc_min, struct mc_out_sum *vs, uint64_t *tsum)
{
	unsigned int nf, nv, nc;
	size_t line, n;
	uint64_t sf, sv, sc = 0;
	uint8_t *d;
	if (r == NULL) {
		if (cap < 5)
			return 0;
		cx->sx.st.cmd_get++;
		cx->sx.st.get_misses++;
		__builtin_memcpy(out, "END\r\n", 5);
		if (vs != NULL)
			vs->len = 0;
		if (tsum != NULL)
			*tsum = __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
					? MC_SUM2('E', 'N') + MC_SUM2('D', '\r') + '\n'
					: 0;
		return 5;
	}
	nf = r->flags == 0 ? 1 : mc_u64_digits(r->flags); /* most items carry no flags */
	nv = mc_u64_digits(r->vlen);
	nc = with_cas ? mc_u64_digits(r->cas) : 0;
	line = 6 + k->len + 1 + nf + 1 + nv + (with_cas ? 1 + nc : 0) + 2;
	n = line + r->vlen + 7;
	if (__builtin_expect(zc_min != 0 && r->vlen >= zc_min, 0) || n > cap)
		return 0;
	d = out;
	__builtin_memcpy(d, "VALUE ", 6);
	d += 6;
	mc_copy(d, k->p, k->len);
	d += k->len;
	*d++ = ' ';
	sf = mc_put_u64(d, r->flags, nf);
	d += nf;
	*d++ = ' ';
	sv = mc_put_u64(d, r->vlen, nv);
	d += nv;
	if (with_cas) {
		*d++ = ' ';
		sc = mc_put_u64(d, r->cas, nc);
		d += nc;
	}
	__builtin_memcpy(d, "\r\n", 2);
	d += 2;
	mc_copy(d, r->value, r->vlen);
	__builtin_memcpy(d + r->vlen, "\r\nEND\r\n", 7);
	if (__builtin_expect(!mc_store_read_check(r), 0)) {
		cx->sx.st.read_retries++;
		return MC_LONE_CHANGED;
	}
	/* As mc_out_value notes a copied value's kept sum. */
	if (vs != NULL) {
		if (r->vlen >= MC_OUT_SUM_MIN && r->vlen <= MC_VSUM_MAX)
			*vs = (struct mc_out_sum){(uint32_t)line, r->vlen, r->vsum};
		else
			vs->len = 0;
	}
	/* The text's sum from its parts (the key's from mc_store_key_text_hot, the value's
	 * kept), each at its offset's parity, a piece and the one after it together when
	 * their parities differ by a known amount: nothing just written is read back. */
	if (tsum != NULL) {
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
		const size_t o = 6 + k->len; /* the space before the flags */
		uint64_t t = MC_SUM2('V', 'A') + MC_SUM2('L', 'U') + MC_SUM2('E', ' ') + k->sum +
			     mc_sum_at(' ' + (sf << 8), o) +
			     mc_sum_at(' ' + (sv << 8), o + 1 + nf) +
			     mc_sum_at(MC_SUM2('\r', '\n') + r->vsum, line) +
			     mc_sum_at(MC_SUM2('\r', '\n') + MC_SUM2('E', 'N') +
					       MC_SUM2('D', '\r') + '\n',
				       line + r->vlen);
		if (with_cas)
			t += mc_sum_at(' ' + (sc << 8), o + 2 + nf + nv);
		*tsum = r->vlen <= MC_VSUM_MAX ? t : 0; /* longer: no kept sum */
#else
		*tsum = 0; /* the pieces' sums above are little-endian words */
#endif
	}
	cx->sx.st.cmd_get++;
	cx->sx.st.get_hits++;
	mc_store_read_touch(r);
	return n;
}

/* A lone get or gets (mc_proto_lone_key's key, hashed) written in one go into out[0..cap): the
 * VALUE line, the value and "\r\nEND\r\n" under one room check, one version check after all
 * of it (a seqlock read: the line's numbers and the value are of one version, or it is read
 * again); a miss is "END\r\n". Counts as cmd_get counts. Returns the bytes written, with (each
 * when not NULL) *vs the copied value's place and kept sum when it is long enough for that sum
 * to be worth adding (vs->len 0: sum it all), and *tsum the whole text's ones'-complement sum,
 * unfolded (mc_sum_fold), as if it began at an even offset (0: not known; k must come from
 * mc_store_key_text_hot for it); 0, having written and counted nothing, when the value would
 * be referenced (zero-copy, zc_min) or the reply does not fit: cmd_get then answers. */
static inline __attribute__((always_inline)) size_t
mc_proto_lone_write(struct mc_proto_ctx *cx, const struct mc_key *k, bool with_cas, uint8_t *out,
		    size_t cap, uint32_t zc_min, struct mc_out_sum *vs, uint64_t *tsum)
{
	for (;;) {
		struct mc_store_read r;
		const bool hit = mc_store_read_hot(&cx->sx, k, &r) == MC_OK;
		const size_t n =
			mc_proto_lone_fill(cx, k, hit ? &r : NULL, with_cas, out, cap, zc_min, vs, tsum);
		if (n != MC_LONE_CHANGED)
			return n;
	}
}

/* A lone "get <key>\r\n" (with_cas: "gets") answered into d[0..cap) without a struct mc_out,
 * for a transport that builds the reply where it lies: k is mc_proto_lone_key's key hashed by
 * mc_store_key_text_hot, so the request is exactly that, and r what mc_store_read_hot found
 * for it (NULL: a miss). mc_proto_lone_fill, counted as mc_proto_execute counts a command.
 * Inline: the UDP fast path's every GET. */
static inline __attribute__((always_inline)) size_t
mc_proto_lone_get(struct mc_proto_ctx *cx, const struct mc_key *k, const struct mc_store_read *r,
		  bool with_cas, uint8_t *d, size_t cap, uint32_t zc_min, uint64_t *tsum)
{
	const size_t n = mc_proto_lone_fill(cx, k, r, with_cas, d, cap, zc_min, NULL, tsum);
	if (__builtin_expect(n != 0 && n != MC_LONE_CHANGED, 1)) {
		cx->st.cmd_ascii++;
		cx->st.cmd_get_fast++;
	}
	return n;
}

/* A connection's protocol, fixed by its first byte as memcached fixes it (0x80: binary). */
enum mc_stream_proto { MC_SP_NEW, MC_SP_ASCII, MC_SP_BINARY };

/* Stream transports (TCP): execute the complete requests at the start of buf[0..len), in order,
 * appending replies to o, and stop early once o holds soft bytes or is full (send them, then
 * call again with the rest). Returns the bytes consumed; *ev says why it stopped: MC_EV_NONE
 * (all consumed, or o reached soft), MC_EV_MORE (an incomplete request starts at the return
 * value; cx->need bytes from there are needed, 0 = unknown) or MC_EV_CLOSE (close after
 * sending o). cx->swallow: bytes after buf to discard before the next request. *proto: the
 * connection's enum mc_stream_proto, kept by the caller (MC_SP_NEW at first). */
size_t mc_proto_stream(struct mc_proto_ctx *cx, const uint8_t *buf, size_t len, struct mc_out *o,
		       size_t soft, uint8_t *proto, enum mc_proto_ev *ev);
/* The first key of a get-like request (ASCII get/gets, mg, binary GET/GETQ/GETK/GETKQ) in
 * req[0..len), or NULL; a cheap look for the burst pre-pass, validated by execution later. */
const uint8_t *mc_proto_first_key(const uint8_t *req, size_t len, uint32_t *klen);
/* Where the key of a lone "get <key>\r\n" or "gets <key>\r\n" would be (*klen of 1 to
 * MC_KEY_MAX bytes up to the final "\r\n"), or NULL when req is not shaped so. A guess:
 * it is mc_proto_first_key's key when none of its bytes is at or below ' '
 * (mc_store_key_text_hot checks that while hashing it). */
static inline const uint8_t *
mc_proto_lone_key(const uint8_t *req, size_t len, uint32_t *klen)
{
	size_t off;
	uint32_t w, get, gets;
	if (len < 7)
		return NULL;
	__builtin_memcpy(&w, req, 4); /* one compare a prefix, in either byte order */
	__builtin_memcpy(&get, "get ", 4);
	__builtin_memcpy(&gets, "gets", 4);
	if (w == get)
		off = 4;
	else if (w == gets && req[4] == ' ')
		off = 5;
	else
		return NULL;
	if (req[len - 2] != '\r' || req[len - 1] != '\n')
		return NULL;
	if (len - 2 - off < 1 || len - 2 - off > MC_KEY_MAX)
		return NULL;
	*klen = (uint32_t)(len - 2 - off);
	return req + off;
}

/* "STAT name value\r\n" helpers for stats writers. */
void mc_proto_stat_u64(struct mc_out *o, const char *name, uint64_t v);
void mc_proto_stat_str(struct mc_out *o, const char *name, const char *v);

#endif
