/* Protocol core: the reply buffer, memcached's number and token rules, dispatch, stats. */
#include "proto_int.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
mc_out_rewind(struct mc_out *o, size_t mark)
{
	while (o->nrefs > 0 && o->refs[o->nrefs - 1].lpos >= mark) {
		struct mc_out_ref *r = &o->refs[--o->nrefs];
		o->reflen -= r->len;
		mc_store_ref_put(r->ref);
	}
	o->len = mark - o->reflen;
	while (o->nsums > 0 && o->nsums <= MC_OUT_MAX_SUMS && o->sums[o->nsums - 1].pos >= o->len)
		o->nsums--;
}

int
mc_out_value_ref(struct mc_out *o, const struct mc_store_read *r)
{
	uint8_t *ref;
	if (o->nrefs >= MC_OUT_MAX_REFS || mc_out_pos(o) + r->vlen > o->limit)
		return 2;
	ref = mc_store_read_ref(r);
	if (ref != NULL) {
		struct mc_out_ref *f = &o->refs[o->nrefs++];
		f->lpos = mc_out_pos(o);
		f->at = o->len;
		f->ref = ref;
		f->p = r->value;
		f->len = r->vlen;
		o->reflen += r->vlen;
		return 1;
	}
	/* Changed, or the refcount saturated: then copy instead. */
	return mc_store_read_check(r) ? 2 : 0;
}

bool
mc_proto_cut(struct mc_proto_ctx *cx, struct mc_out *o, size_t mark)
{
	mc_out_rewind(o, mark);
	o->full = false;
	o->limit = o->hard_limit;
	if (o->udp) {
		cx->st.reply_too_large_udp++;
		return true;
	}
	cx->st.reply_cut++;
	return false;
}

void
mc_proto_cut_line(struct mc_proto_ctx *cx, struct mc_out *o, size_t mark)
{
	if (mc_proto_cut(cx, o, mark))
		MC_OUT_STR(o, MC_TOO_LARGE_UDP "\r\n");
	else
		MC_OUT_STR(o, "SERVER_ERROR out of memory writing get response\r\n");
	o->full = true;
}

uint8_t *
mc_out_room_slow(struct mc_out *o, size_t n)
{
	if (o->len + o->reflen + n > o->limit) {
		o->full = true;
		return NULL;
	}
	if (o->len + n <= o->cap)
		return o->buf + o->len;
	if (!o->spilled && o->spill != NULL && o->len + n <= o->spill_cap) {
		memcpy(o->spill, o->buf, o->len);
		o->buf = o->spill;
		o->cap = o->spill_cap;
		o->spilled = true;
		return o->buf + o->len;
	}
	o->full = true;
	return NULL;
}

const char mc_digit_pairs[201] = "00010203040506070809101112131415161718192021222324"
				 "25262728293031323334353637383940414243444546474849"
				 "50515253545556575859606162636465666768697071727374"
				 "75767778798081828384858687888990919293949596979899";

bool
mc_out_u64(struct mc_out *o, uint64_t v)
{
	unsigned int n = mc_u64_digits(v);
	uint8_t *d = mc_out_room(o, n);
	if (d == NULL)
		return false;
	mc_put_u64(d, v, n);
	o->len += n;
	return true;
}

bool
mc_out_i64(struct mc_out *o, int64_t v)
{
	if (v < 0) {
		if (!MC_OUT_STR(o, "-"))
			return false;
		return mc_out_u64(o, (uint64_t)(-(v + 1)) + 1);
	}
	return mc_out_u64(o, (uint64_t)v);
}

/* First ' ' in p[e..len), or len: eight bytes a step (a zero byte in w ^ "        "). */
static inline size_t
next_space(const uint8_t *p, size_t e, size_t len)
{
	while (e + 8 <= len) {
		uint64_t w, x, t;
		memcpy(&w, p + e, 8);
		x = w ^ 0x2020202020202020ull;
		t = (x - 0x0101010101010101ull) & ~x & 0x8080808080808080ull;
		if (t)
			return e + ((size_t)__builtin_ctzll(t) >> 3);
		e += 8;
	}
	while (e < len && p[e] != ' ')
		e++;
	return e;
}

size_t
mc_tokenize(const uint8_t *line, size_t len, struct mc_tok *t, size_t max)
{
	size_t n = 0, s = 0, e;
	for (;;) {
		e = next_space(line, s, len);
		if (e >= len) {
			e = len;
			break;
		}
		if (e != s) {
			t[n].p = line + s;
			t[n].len = (uint32_t)(e - s);
			n++;
			if (n == max - 1) {
				e++;
				s = e;
				break;
			}
		}
		s = e + 1;
	}
	if (s != e) {
		t[n].p = line + s;
		t[n].len = (uint32_t)(e - s);
		n++;
	}
	/* Terminator: points at what was not scanned, NULL when everything was. */
	t[n].p = e < len ? line + e : NULL;
	t[n].len = 0;
	return n + 1;
}

/* Copy a token into a NUL-terminated buffer for the strto* family. */
static bool
cstr(const uint8_t *p, size_t len, char *buf, size_t cap)
{
	if (len >= cap)
		return false;
	memcpy(buf, p, len);
	buf[len] = '\0';
	return true;
}

/* memcached's safe_strtol: strtol's rules, then a plain store into an int32_t. There is no
 * range check, so "4294967297" is 1 (util.c, 1.6.18; a set with that length stores 1 byte). */
bool
mc_strtol32_raw(const uint8_t *p, size_t len, int32_t *out)
{
	char buf[256], *end;
	long l;
	if (!cstr(p, len, buf, sizeof(buf)))
		return false;
	errno = 0;
	l = strtol(buf, &end, 10);
	if (errno == ERANGE || end == buf)
		return false;
	if (isspace((unsigned char)*end) || *end == '\0') {
		*out = (int32_t)l;
		return true;
	}
	return false;
}

/* memcached's safe_strtoull, and safe_strtoul too: on LP64 strtoul is strtoull, and both
 * refuse a '-' anywhere in the token when the value would be negative as a signed one. */
bool
mc_strtoull_raw(const uint8_t *p, size_t len, uint64_t *out)
{
	return mc_store_strtoull(p, len, out);
}

bool
mc_strtol32(const struct mc_tok *t, int32_t *out)
{
	return t->p != NULL && mc_strtol32_raw(t->p, t->len, out);
}

bool
mc_strtoull(const struct mc_tok *t, uint64_t *out)
{
	return t->p != NULL && mc_strtoull_raw(t->p, t->len, out);
}

bool
mc_strtoul32(const struct mc_tok *t, uint32_t *out)
{
	/* safe_strtoul: the unsigned long stored into 32 bits, no range check. */
	uint64_t v;
	if (!mc_strtoull(t, &v))
		return false;
	*out = (uint32_t)v;
	return true;
}

uint32_t
mc_proto_exptime(const struct mc_proto_ctx *cx, int32_t exptime)
{
	/* EXPTIME_TO_POSITIVE_TIME: negative means REALTIME_MAXDELTA + 1, i.e. long past. */
	int64_t e = exptime < 0 ? MC_REALTIME_MAXDELTA + 1 : exptime;
	return mc_store_realtime(cx->sx.s, e);
}

bool
mc_proto_writes_ok(struct mc_proto_ctx *cx)
{
	if (cx->stream || cx->conf->udp_writes)
		return true;
	cx->st.write_refused++;
	return false;
}

bool
mc_proto_admin_ok(struct mc_proto_ctx *cx)
{
	if (cx->stream || cx->conf->udp_admin)
		return true;
	cx->st.admin_refused++;
	return false;
}

enum mc_data
mc_proto_stream_data(struct mc_proto_ctx *cx, size_t len, size_t *pos, uint64_t vlen,
		     bool too_large)
{
	const uint64_t end = (uint64_t)*pos + vlen + 2;
	if (!too_large && end - cx->req_start <= cx->stream_cap) {
		cx->ev = MC_EV_MORE;
		cx->need = (size_t)(end - cx->req_start);
		return MC_DATA_WAIT;
	}
	/* memcached answers at once and swallows the value as it arrives. */
	cx->swallow = end - len;
	*pos = len;
	return too_large ? MC_DATA_TOO_LARGE : MC_DATA_NO_MEMORY;
}

size_t
mc_proto_stream(struct mc_proto_ctx *cx, const uint8_t *buf, size_t len, struct mc_out *o,
		size_t soft, uint8_t *proto, enum mc_proto_ev *ev)
{
	size_t pos = 0;
	unsigned int n = 0;
	cx->hint = NULL;
	cx->swallow = 0;
	*ev = MC_EV_NONE;
	while ((pos < len || (cx->dump != NULL && cx->dump->active)) && cx->swallow == 0) {
		if (o->full || mc_out_pos(o) >= soft || o->nrefs >= MC_OUT_MAX_REFS / 2)
			return pos;
		if (cx->dump != NULL && cx->dump->active) {
			/* A metadump goes on before the connection's next request. */
			mc_crawler_dump_more(cx, o, soft);
			continue;
		}
		const struct mc_proto_stats before = cx->st;
		cx->ev = MC_EV_NONE;
		cx->need = 0;
		cx->req_start = pos;
		if (*proto == MC_SP_NEW)
			*proto = buf[pos] == 0x80 ? MC_SP_BINARY : MC_SP_ASCII;
		if (*proto == MC_SP_BINARY) {
			mc_binary_one(cx, buf, len, &pos, o, &n);
		} else {
			cx->st.cmd_ascii++;
			mc_ascii_command(cx, buf, len, &pos, o);
		}
		if (cx->ev == MC_EV_MORE) {
			/* Nothing was done: run it again once the rest is here (and count it
			 * then). */
			cx->st = before;
			*ev = MC_EV_MORE;
			return cx->req_start;
		}
		if (cx->ev == MC_EV_CLOSE) {
			*ev = MC_EV_CLOSE;
			return pos;
		}
	}
	return pos;
}

void
mc_proto_flush_all(struct mc_proto_ctx *cx, int64_t exptime)
{
	/* memcached: oldest_live = realtime(exptime) - 1 (current_time for 0, as realtime(0) - 1
	 * would wrap); items at or before it are gone once the clock reaches it. */
	uint32_t now = mc_store_now(cx->sx.s);
	uint32_t new_oldest = exptime > 0 ? mc_store_realtime(cx->sx.s, exptime) : now;
	mc_store_flush(cx->sx.s, new_oldest - 1 > now ? new_oldest - 1 - now : 0);
}

void
mc_proto_ctx_init(struct mc_proto_ctx *cx, struct mc_store *s, const struct mc_proto_conf *conf)
{
	memset(cx, 0, sizeof(*cx));
	cx->sx.s = s;
	cx->conf = conf;
}

unsigned int
mc_proto_execute(struct mc_proto_ctx *cx, const uint8_t *req, size_t len,
		 const struct mc_key *hint, struct mc_out *o)
{
	size_t pos = 0;
	unsigned int n = 0;
	if (len == 0)
		return 0;
	cx->hint = hint;
	if (req[0] == 0x80) {
		mc_binary_execute(cx, req, len, o, &n);
	} else if (hint != NULL && (uintptr_t)hint->p - (uintptr_t)req - 4 <= 1 &&
		   mc_ascii_hinted(cx, req, len, o)) {
		/* (The key 4 or 5 bytes in: "get " or "gets ", not mg's "mg ".) */
		cx->st.cmd_ascii++;
		n = 1;
	} else {
		while (pos < len) {
			n++;
			cx->st.cmd_ascii++;
			if (!mc_ascii_command(cx, req, len, &pos, o))
				break;
			if (o->full)
				break;
		}
	}
	cx->hint = NULL;
	return n;
}

const uint8_t *
mc_proto_first_key(const uint8_t *p, size_t len, uint32_t *klen)
{
	size_t off, e;
	if (len >= 24 && p[0] == 0x80) {
		uint8_t op = p[1];
		uint32_t kl = (uint32_t)(p[2] << 8 | p[3]);
		if (op != 0x00 && op != 0x09 && op != 0x0c && op != 0x0d)
			return NULL;
		off = 24u + p[4];
		if (kl == 0 || kl > MC_KEY_MAX || off + kl > len)
			return NULL;
		*klen = kl;
		return p + off;
	}
	if (len > 4 && !memcmp(p, "get ", 4))
		off = 4;
	else if (len > 5 && !memcmp(p, "gets ", 5))
		off = 5;
	else if (len > 3 && !memcmp(p, "mg ", 3))
		off = 3;
	else
		return NULL;
	/* The key ends at the first byte below '!' (space, CR, LF), found 8 bytes a step; a key
	 * with control characters just gets a useless prefetch and no reused hash. */
	e = off;
	while (e + 8 <= len) {
		uint64_t v, t;
		memcpy(&v, p + e, 8);
		t = (v - 0x2121212121212121ull) & ~v & 0x8080808080808080ull;
		if (t) {
			e += (size_t)__builtin_ctzll(t) >> 3;
			goto found;
		}
		e += 8;
	}
	while (e < len && p[e] > ' ')
		e++;
found:
	if (e == off || e == len || e - off > MC_KEY_MAX)
		return NULL;
	*klen = (uint32_t)(e - off);
	return p + off;
}

void
mc_proto_stat_u64(struct mc_out *o, const char *name, uint64_t v)
{
	MC_OUT_STR(o, "STAT ");
	mc_out_put(o, name, strlen(name));
	MC_OUT_STR(o, " ");
	mc_out_u64(o, v);
	MC_OUT_STR(o, "\r\n");
}

void
mc_proto_stat_str(struct mc_out *o, const char *name, const char *v)
{
	MC_OUT_STR(o, "STAT ");
	mc_out_put(o, name, strlen(name));
	MC_OUT_STR(o, " ");
	mc_out_put(o, v, strlen(v));
	MC_OUT_STR(o, "\r\n");
}

/* The reset base, read under its version. */
static void
stats_base(const struct mc_proto_conf *conf, struct mc_stats_base *b)
{
	const struct mc_stats_base *src = &conf->base;
	uint32_t v;
	for (;;) {
		v = __atomic_load_n(&src->ver, __ATOMIC_ACQUIRE);
		if ((v & 1) == 0) {
			memcpy(&b->part, &src->part, sizeof(b->part));
			memcpy(b->evicted, src->evicted, sizeof(b->evicted));
			__atomic_thread_fence(__ATOMIC_ACQUIRE);
			if (__atomic_load_n(&src->ver, __ATOMIC_RELAXED) == v)
				return;
		}
		sched_yield();
	}
}

void
mc_proto_stats_reset(struct mc_proto_ctx *cx)
{
	struct mc_stats_base *b = &((struct mc_proto_conf *)(uintptr_t)cx->conf)->base;
	uint32_t v = __atomic_load_n(&b->ver, __ATOMIC_RELAXED);
	unsigned int c;
	/* A reset already under way on another thread does this one's work. */
	if ((v & 1) || !__atomic_compare_exchange_n(&b->ver, &v, v + 1, false, __ATOMIC_ACQUIRE,
						    __ATOMIC_RELAXED))
		goto app;
	__atomic_thread_fence(__ATOMIC_RELEASE);
	mc_store_part_stats(cx->sx.s, &b->part);
	/* Gauges, not counters: they stay as they are. */
	b->part.curr_items = 0;
	b->part.bytes = 0;
	b->part.zombies = 0;
	b->part.slab_pages = 0;
	for (c = 0; c < mc_store_nclasses(cx->sx.s) && c < MC_STORE_MAX_CLASSES; c++) {
		struct mc_store_class_info ci;
		mc_store_class_stats(cx->sx.s, c, &ci);
		b->evicted[c] = ci.evictions;
	}
	__atomic_store_n(&b->ver, v + 2, __ATOMIC_RELEASE);
app:
	if (cx->stats_fn)
		cx->stats_fn(cx->stats_arg, cx, NULL, "reset", 5);
}

static bool
group_is(const char *g, size_t glen, const char *name)
{
	return glen == strlen(name) && !memcmp(g, name, glen);
}

/* stats settings: memcached's names for what the store and protocol know; the app adds its
 * own (ports, threads, connections). */
static void
stats_settings(struct mc_proto_ctx *cx, struct mc_out *o)
{
	const struct mc_store *s = cx->sx.s;
	mc_proto_stat_u64(o, "maxbytes", mc_store_limit_bytes(s));
	mc_proto_stat_u64(o, "verbosity", (uint64_t)cx->conf->verbosity);
	mc_proto_stat_str(o, "evictions", "on");
	mc_proto_stat_u64(o, "chunk_size", 48);
	mc_proto_stat_str(o, "detail_enabled", "no");
	mc_proto_stat_str(o, "cas_enabled", "yes");
	mc_proto_stat_u64(o, "item_size_max", mc_store_max_item_size(s));
	mc_proto_stat_str(o, "lru_crawler", cx->conf->crawler_off ? "no" : "yes");
	mc_proto_stat_str(o, "flush_enabled", "yes");
	mc_proto_stat_str(o, "dump_enabled", "yes");
	mc_proto_stat_str(o, "track_sizes", "no");
	mc_proto_stat_u64(o, "num_partitions", mc_store_nparts(s));
	mc_proto_stat_str(o, "udp_admin", cx->conf->udp_admin ? "yes" : "no");
	mc_proto_stat_str(o, "udp_writes", cx->conf->udp_writes ? "yes" : "no");
}

/* stats items and stats slabs: per class in use, memcached's names for what the store
 * counts per class. */
static void
stats_classes(struct mc_proto_ctx *cx, struct mc_out *o, bool slabs)
{
	const struct mc_store *s = cx->sx.s;
	struct mc_stats_base b;
	uint64_t total_pages = 0;
	unsigned int c;
	stats_base(cx->conf, &b);
	for (c = 0; c < mc_store_nclasses(s); c++) {
		struct mc_store_class_info ci;
		char name[64];
		mc_store_class_stats(s, c, &ci);
		if (ci.slabs == 0)
			continue;
		total_pages += ci.slabs;
#define CLS(field, v)                                                                          \
	do {                                                                                   \
		snprintf(name, sizeof(name), slabs ? "%u:%s" : "items:%u:%s", c + 1, field);      \
		mc_proto_stat_u64(o, name, v);                                                 \
	} while (0)
		if (slabs) {
			CLS("chunk_size", ci.chunk_size);
			CLS("chunks_per_page", ci.per_slab);
			CLS("total_pages", ci.slabs);
			CLS("total_chunks", ci.slabs * ci.per_slab);
			CLS("used_chunks", ci.used_chunks);
			CLS("free_chunks", ci.free_chunks);
		} else {
			CLS("number", ci.used_chunks);
			CLS("evicted", ci.evictions - (c < MC_STORE_MAX_CLASSES ? b.evicted[c] : 0));
		}
#undef CLS
	}
	if (slabs) {
		mc_proto_stat_u64(o, "active_slabs", total_pages);
		mc_proto_stat_u64(o, "total_malloced", total_pages * MC_PAGE_SIZE);
	}
}

void
mc_proto_stats(struct mc_proto_ctx *cx, struct mc_out *o, const struct mc_tok *group)
{
	const struct mc_store *s = cx->sx.s;
	size_t glen = group && group->p ? group->len : 0;
	const char *g = glen ? (const char *)group->p : "";

	if (glen == 0) {
		struct mc_store_part_stats ps;
		struct mc_stats_base b;
		mc_store_part_stats(s, &ps);
		stats_base(cx->conf, &b);
		if (cx->stats_fn)
			cx->stats_fn(cx->stats_arg, cx, o, "", 0);
		mc_proto_stat_str(o, "version", MC_VERSION_STRING);
		mc_proto_stat_u64(o, "limit_maxbytes", mc_store_limit_bytes(s));
		mc_proto_stat_u64(o, "index_bytes", mc_store_index_bytes(s));
#define X(n) mc_proto_stat_u64(o, #n, ps.n - b.part.n);
		MC_STORE_PART_COUNTERS(X)
#undef X
		return;
	}
	if (group_is(g, glen, "settings")) {
		stats_settings(cx, o);
		if (cx->stats_fn)
			cx->stats_fn(cx->stats_arg, cx, o, g, glen);
		return;
	}
	if (group_is(g, glen, "items") || group_is(g, glen, "slabs")) {
		stats_classes(cx, o, g[0] == 's');
		return;
	}
	if (group_is(g, glen, "sizes")) {
		/* memcached with its size histogram off (the default): mcbox keeps none. */
		mc_proto_stat_str(o, "sizes_status", "disabled");
		return;
	}
	if (cx->stats_fn)
		cx->stats_fn(cx->stats_arg, cx, o, g, glen);
}

/* ---- base64 (RFC 4648, with padding) ---- */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int
mc_base64_encode(const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
	size_t i, n = 0;
	if ((len + 2) / 3 * 4 > cap)
		return -1;
	for (i = 0; i + 2 < len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		out[n++] = (uint8_t)b64[v >> 18];
		out[n++] = (uint8_t)b64[(v >> 12) & 63];
		out[n++] = (uint8_t)b64[(v >> 6) & 63];
		out[n++] = (uint8_t)b64[v & 63];
	}
	if (i < len) {
		uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < len ? (uint32_t)in[i + 1] << 8 : 0);
		out[n++] = (uint8_t)b64[v >> 18];
		out[n++] = (uint8_t)b64[(v >> 12) & 63];
		out[n++] = i + 1 < len ? (uint8_t)b64[(v >> 6) & 63] : '=';
		out[n++] = '=';
	}
	return (int)n;
}

static int
b64val(uint8_t c)
{
	if (c >= 'A' && c <= 'Z') return c - 'A';
	if (c >= 'a' && c <= 'z') return c - 'a' + 26;
	if (c >= '0' && c <= '9') return c - '0' + 52;
	if (c == '+') return 62;
	if (c == '/') return 63;
	return -1;
}

int
mc_base64_decode(const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
	size_t i, n = 0;
	if (len % 4 != 0)
		return -1;
	for (i = 0; i < len; i += 4) {
		int a = b64val(in[i]), b = b64val(in[i + 1]);
		int c = in[i + 2] == '=' ? 0 : b64val(in[i + 2]);
		int d = in[i + 3] == '=' ? 0 : b64val(in[i + 3]);
		uint32_t v;
		if (a < 0 || b < 0 || c < 0 || d < 0)
			return -1;
		if ((in[i + 2] == '=' || in[i + 3] == '=') && i + 4 != len)
			return -1;
		v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | (uint32_t)d;
		if (n + 3 > cap)
			return -1;
		out[n++] = (uint8_t)(v >> 16);
		if (in[i + 2] != '=')
			out[n++] = (uint8_t)(v >> 8);
		if (in[i + 3] != '=')
			out[n++] = (uint8_t)v;
	}
	return (int)n;
}
