/* memcached's binary protocol: 24-byte headers, every opcode memcached serves, its statuses
 * and error bodies, quiet variants answered only on error, pipelines ending in NOOP. Lengths
 * are checked against each other and against the datagram before anything is read. */
#include "proto_int.h"

#include <rte_byteorder.h>

#include <string.h>

enum {
	OP_GET = 0x00, OP_SET = 0x01, OP_ADD = 0x02, OP_REPLACE = 0x03, OP_DELETE = 0x04,
	OP_INCR = 0x05, OP_DECR = 0x06, OP_QUIT = 0x07, OP_FLUSH = 0x08, OP_GETQ = 0x09,
	OP_NOOP = 0x0a, OP_VERSION = 0x0b, OP_GETK = 0x0c, OP_GETKQ = 0x0d, OP_APPEND = 0x0e,
	OP_PREPEND = 0x0f, OP_STAT = 0x10, OP_SETQ = 0x11, OP_ADDQ = 0x12, OP_REPLACEQ = 0x13,
	OP_DELETEQ = 0x14, OP_INCRQ = 0x15, OP_DECRQ = 0x16, OP_QUITQ = 0x17, OP_FLUSHQ = 0x18,
	OP_APPENDQ = 0x19, OP_PREPENDQ = 0x1a, OP_TOUCH = 0x1c, OP_GAT = 0x1d, OP_GATQ = 0x1e,
	OP_GATK = 0x23, OP_GATKQ = 0x24,
};

enum {
	ST_OK = 0x00, ST_ENOENT = 0x01, ST_EEXISTS = 0x02, ST_E2BIG = 0x03, ST_EINVAL = 0x04,
	ST_NOT_STORED = 0x05, ST_DELTA_BADVAL = 0x06, ST_AUTH_ERROR = 0x20,
	ST_UNKNOWN = 0x81, ST_ENOMEM = 0x82,
};

#define HDR 24

struct breq {
	uint8_t op;
	uint16_t keylen;
	uint8_t extlen;
	uint32_t bodylen;
	uint32_t opaque; /* as sent: echoed unchanged */
	uint64_t cas;
	const uint8_t *ext, *key, *val;
	uint32_t vlen;
};

static bool
hdr(struct mc_out *o, const struct breq *r, uint16_t status, uint16_t keylen, uint8_t extlen,
    uint32_t bodylen, uint64_t cas)
{
	uint8_t *d = mc_out_room(o, HDR);
	uint16_t v16;
	uint32_t v32;
	uint64_t v64;
	if (d == NULL)
		return false;
	d[0] = 0x81;
	d[1] = r->op;
	v16 = rte_cpu_to_be_16(keylen);
	memcpy(d + 2, &v16, 2);
	d[4] = extlen;
	d[5] = 0;
	v16 = rte_cpu_to_be_16(status);
	memcpy(d + 6, &v16, 2);
	v32 = rte_cpu_to_be_32(bodylen);
	memcpy(d + 8, &v32, 4);
	memcpy(d + 12, &r->opaque, 4);
	v64 = rte_cpu_to_be_64(cas);
	memcpy(d + 16, &v64, 8);
	o->len += HDR;
	return true;
}

static void
error(struct mc_out *o, const struct breq *r, uint16_t status, const char *msg)
{
	size_t n = strlen(msg);
	if (hdr(o, r, status, 0, 0, (uint32_t)n, 0))
		mc_out_put(o, msg, n);
}

static const char *
status_text(uint16_t st)
{
	switch (st) {
	case ST_ENOENT: return "Not found";
	case ST_EEXISTS: return "Data exists for key.";
	case ST_E2BIG: return "Too large.";
	case ST_EINVAL: return "Invalid arguments";
	case ST_NOT_STORED: return "Not stored.";
	case ST_DELTA_BADVAL: return "Non-numeric server-side value for incr or decr";
	case ST_AUTH_ERROR: return "Auth failure.";
	case ST_UNKNOWN: return "Unknown command";
	case ST_ENOMEM: return "Out of memory";
	default: return "";
	}
}

/* The read-only gate, answered as memcached answers a refused command: Auth failure. */
static bool
writes_ok(struct mc_proto_ctx *cx, const struct breq *r, struct mc_out *o)
{
	if (mc_proto_writes_ok(cx))
		return true;
	error(o, r, ST_AUTH_ERROR, status_text(ST_AUTH_ERROR));
	return false;
}

static inline uint32_t
be32_at(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return rte_be_to_cpu_32(v);
}

static inline uint64_t
be64_at(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return rte_be_to_cpu_64(v);
}

/* An exptime from the extras: uint32 on the wire and unsigned in memcached (proto_bin.c,
 * realtime(ntohl(expiration)) with no EXPTIME_TO_POSITIVE_TIME), so 2^31 and above are far
 * future, not the ASCII protocol's negative "already expired". */
static uint32_t
bin_exptime(const struct mc_proto_ctx *cx, const uint8_t *p)
{
	return mc_store_realtime(cx->sx.s, (int64_t)be32_at(p));
}

static bool
is_quiet(uint8_t op)
{
	switch (op) {
	case OP_GETQ: case OP_GETKQ: case OP_SETQ: case OP_ADDQ: case OP_REPLACEQ:
	case OP_DELETEQ: case OP_INCRQ: case OP_DECRQ: case OP_QUITQ: case OP_FLUSHQ:
	case OP_APPENDQ: case OP_PREPENDQ: case OP_GATQ: case OP_GATKQ:
		return true;
	default:
		return false;
	}
}

struct get_head {
	const struct breq *r;
	bool with_key;
	bool with_value;
};

static enum mc_hit_head
get_head(struct mc_proto_ctx *cx, struct mc_out *o, const struct mc_store_read *rd, size_t mark,
	 void *arg)
{
	const struct get_head *g = arg;
	const struct breq *r = g->r;
	const uint32_t kl = g->with_key ? r->keylen : 0;
	uint32_t fl;
	(void)cx;
	(void)mark;
	if (!hdr(o, r, ST_OK, (uint16_t)kl, 4, 4 + kl + (g->with_value ? rd->vlen : 0), rd->cas))
		return MC_HEAD_OK; /* o->full says so */
	fl = rte_cpu_to_be_32(rd->flags);
	mc_out_put(o, &fl, 4);
	if (kl)
		mc_out_put(o, r->key, kl);
	return MC_HEAD_OK;
}

/* get, getk, gat, gatk, touch and their quiet forms. */
static void
do_get(struct mc_proto_ctx *cx, const struct breq *r, bool with_key, bool touch,
       bool with_value, struct mc_out *o)
{
	struct get_head g = {r, with_key, with_value};
	struct mc_key k;
	struct mc_store_read rd;
	size_t mark;
	mc_proto_key(cx, &k, r->key, r->keylen);
	if (touch && !writes_ok(cx, r, o))
		return;
	switch (mc_proto_hit(cx, &k, o, with_value, NULL, 0, get_head, &g, &rd, &mark)) {
	case MC_HIT_OK: break;
	case MC_HIT_MISS:
		if (touch)
			mc_proto_touch_missed(cx);
		if (is_quiet(r->op))
			return;
		if (with_key) {
			if (hdr(o, r, ST_ENOENT, r->keylen, 0, r->keylen, 0))
				mc_out_put(o, r->key, r->keylen);
		} else {
			error(o, r, ST_ENOENT, status_text(ST_ENOENT));
		}
		return;
	default:
		if (mc_proto_cut(cx, o, mark))
			error(o, r, ST_E2BIG, "Too large for UDP; retry over TCP");
		else
			error(o, r, ST_ENOMEM, "Out of memory writing get response");
		o->full = true;
		return;
	}
	mc_store_read_touch(&rd);
	/* memcached's item_touch fetches, then sets the time: the hit is answered even when
	 * the new exptime is already past. */
	if (touch)
		mc_store_touch(&cx->sx, &k, bin_exptime(cx, r->ext));
}

static void
do_update(struct mc_proto_ctx *cx, const struct breq *r, int mode, struct mc_out *o)
{
	struct mc_key k;
	uint32_t flags = 0, exptime = 0;
	uint64_t cas = 0;
	enum mc_store_status rc;
	uint16_t st;
	bool has_ext = r->extlen == 8;
	mc_proto_key(cx, &k, r->key, r->keylen);
	if (has_ext) {
		flags = be32_at(r->ext);
		exptime = bin_exptime(cx, r->ext + 4);
	}
	if (!writes_ok(cx, r, o))
		return;
	if (mc_store_too_large(cx->sx.s, r->keylen, r->vlen)) {
		error(o, r, ST_E2BIG, status_text(ST_E2BIG));
		if (mode == MC_SET)
			mc_store_delete(&cx->sx, &k, 0);
		return;
	}
	/* A CAS in the header turns set, add and replace into cas (memcached). */
	if (r->cas != 0 && (mode == MC_SET || mode == MC_ADD || mode == MC_REPLACE))
		mode = MC_CAS;
	rc = mc_store_store(&cx->sx, &k,
			    &(struct mc_store_args){.mode = (enum mc_store_mode)mode,
						    .flags = flags,
						    .exptime = exptime,
						    .val = r->val,
						    .vlen = r->vlen,
						    .cas_in = r->cas},
			    &cas);
	switch (rc) {
	case MC_STORED:
		if (!is_quiet(r->op))
			hdr(o, r, ST_OK, 0, 0, 0, cas);
		return;
	case MC_EXISTS: st = ST_EEXISTS; break;
	case MC_MISS: st = ST_ENOENT; break;
	case MC_TOO_LARGE: st = ST_E2BIG; break;
	case MC_NO_MEMORY:
		error(o, r, ST_ENOMEM, "Out of memory allocating item");
		return;
	default:
		st = (r->op == OP_ADD || r->op == OP_ADDQ) ? ST_EEXISTS
		     : (r->op == OP_REPLACE || r->op == OP_REPLACEQ) ? ST_ENOENT
								     : ST_NOT_STORED;
		break;
	}
	error(o, r, st, status_text(st));
}

static void
do_delete(struct mc_proto_ctx *cx, const struct breq *r, struct mc_out *o)
{
	struct mc_key k;
	enum mc_store_status rc;
	if (!writes_ok(cx, r, o))
		return;
	mc_proto_key(cx, &k, r->key, r->keylen);
	rc = mc_store_delete(&cx->sx, &k, r->cas);
	if (rc == MC_DELETED) {
		if (!is_quiet(r->op))
			hdr(o, r, ST_OK, 0, 0, 0, 0);
	} else if (rc == MC_EXISTS) {
		error(o, r, ST_EEXISTS, status_text(ST_EEXISTS));
	} else {
		error(o, r, ST_ENOENT, status_text(ST_ENOENT));
	}
}

static void
do_delta(struct mc_proto_ctx *cx, const struct breq *r, bool incr, struct mc_out *o)
{
	struct mc_key k;
	struct mc_delta_args a = {.incr = incr};
	uint32_t exp = be32_at(r->ext + 16);
	uint64_t v = 0, cas = 0, be;
	enum mc_store_status rc;
	if (!writes_ok(cx, r, o))
		return;
	a.delta = be64_at(r->ext);
	a.initial = be64_at(r->ext + 8);
	a.create = exp != 0xffffffffu;
	a.exptime = a.create ? bin_exptime(cx, r->ext + 16) : 0;
	a.cas_in = r->cas;
	mc_proto_key(cx, &k, r->key, r->keylen);
	rc = mc_store_delta(&cx->sx, &k, &a, &v, &cas);
	switch (rc) {
	case MC_OK:
	case MC_STORED: /* created from the initial value */
		if (is_quiet(r->op))
			return;
		if (hdr(o, r, ST_OK, 0, 0, 8, cas)) {
			be = rte_cpu_to_be_64(v);
			mc_out_put(o, &be, 8);
		}
		return;
	case MC_EXISTS: error(o, r, ST_EEXISTS, status_text(ST_EEXISTS)); return;
	case MC_NON_NUMERIC: error(o, r, ST_DELTA_BADVAL, status_text(ST_DELTA_BADVAL)); return;
	case MC_NO_MEMORY: error(o, r, ST_ENOMEM, status_text(ST_ENOMEM)); return;
	default: error(o, r, ST_ENOENT, status_text(ST_ENOENT)); return;
	}
}

/* One key/value stat packet (an empty one ends the list). */
static void
stat_packet(struct mc_out *o, const struct breq *r, const uint8_t *k, size_t kl,
	    const uint8_t *v, size_t vl)
{
	/* The empty packet that ends the list has no key or value to copy (NULL). */
	if (hdr(o, r, ST_OK, (uint16_t)kl, 0, (uint32_t)(kl + vl), 0) && kl + vl != 0) {
		mc_out_put(o, k, kl);
		mc_out_put(o, v, vl);
	}
}

static void
do_stat(struct mc_proto_ctx *cx, const struct breq *r, struct mc_out *o)
{
	/* Render the ASCII stats into a scratch and re-frame each STAT line as a packet. */
	static __thread uint8_t scratch[64 * 1024];
	struct mc_out tmp;
	struct mc_tok g = {r->key, r->keylen};
	size_t i = 0;
	if (!mc_proto_admin_ok(cx)) {
		error(o, r, ST_AUTH_ERROR, status_text(ST_AUTH_ERROR));
		return;
	}
	mc_out_init(&tmp, scratch, sizeof(scratch), NULL, 0, sizeof(scratch));
	mc_proto_stats(cx, &tmp, r->keylen ? &g : NULL);
	if (r->keylen && tmp.len == 0) {
		error(o, r, ST_ENOENT, status_text(ST_ENOENT));
		return;
	}
	while (i + 5 < tmp.len) {
		const uint8_t *line = tmp.buf + i + 5; /* after "STAT " */
		const uint8_t *end = memchr(line, '\r', tmp.len - i - 5);
		const uint8_t *sp;
		if (end == NULL)
			break;
		sp = memchr(line, ' ', (size_t)(end - line));
		if (sp != NULL)
			stat_packet(o, r, line, (size_t)(sp - line), sp + 1, (size_t)(end - sp - 1));
		i = (size_t)(end - tmp.buf) + 2;
	}
	stat_packet(o, r, NULL, 0, NULL, 0);
}

/* ---- the opcode table ---- */

/* Each opcode's shape, as memcached checks it before anything runs: its extras length
 * (EXT_0_OR_4: flush's optional delay), whether it takes a key, and whether the body is
 * exactly extras and key. */
#define EXT_0_OR_4 0xff
enum { KEY_NONE, KEY_REQ, KEY_ANY };

struct bop {
	/* false: stop the datagram (quit) */
	bool (*fn)(struct mc_proto_ctx *cx, const struct breq *r, struct mc_out *o, int arg);
	int arg;
	uint8_t ext;
	uint8_t key;
	bool exact;
};

static bool
shape_ok(const struct bop *op, const struct breq *r)
{
	if (op->ext == EXT_0_OR_4 ? (r->extlen != 0 && r->extlen != 4) : r->extlen != op->ext)
		return false;
	if ((op->key == KEY_REQ && r->keylen == 0) || (op->key == KEY_NONE && r->keylen != 0))
		return false;
	return !op->exact || r->bodylen == (uint32_t)r->keylen + r->extlen;
}

enum { GET_KEY = 1, GET_TOUCH = 2, GET_VALUE = 4 };

static bool
b_get(struct mc_proto_ctx *cx, const struct breq *r, struct mc_out *o, int arg)
{
	do_get(cx, r, arg & GET_KEY, arg & GET_TOUCH, arg & GET_VALUE, o);
	return true;
}

static bool
b_update(struct mc_proto_ctx *cx, const struct breq *r, struct mc_out *o, int mode)
{
	do_update(cx, r, mode, o);
	return true;
}

static bool
b_delete(struct mc_proto_ctx *cx, const struct breq *r, struct mc_out *o, int arg)
{
	(void)arg;
	do_delete(cx, r, o);
	return true;
}

static bool
b_delta(struct mc_proto_ctx *cx, const struct breq *r, struct mc_out *o, int incr)
{
	do_delta(cx, r, incr, o);
	return true;
}

static bool
b_noop(struct mc_proto_ctx *cx, const struct breq *r, struct mc_out *o, int arg)
{
	(void)cx;
	(void)arg;
	hdr(o, r, ST_OK, 0, 0, 0, 0);
	return true;
}

static bool
b_version(struct mc_proto_ctx *cx, const struct breq *r, struct mc_out *o, int arg)
{
	(void)cx;
	(void)arg;
	if (hdr(o, r, ST_OK, 0, 0, sizeof(MC_VERSION_STRING) - 1, 0))
		MC_OUT_STR(o, MC_VERSION_STRING);
	return true;
}

static bool
b_quit(struct mc_proto_ctx *cx, const struct breq *r, struct mc_out *o, int arg)
{
	(void)arg;
	/* Over a stream QUIT is answered, QUITQ not, then the connection closes; over UDP
	 * memcached drops the rest of the datagram and the quit's reply. */
	if (cx->stream && r->op == OP_QUIT)
		hdr(o, r, ST_OK, 0, 0, 0, 0);
	return false;
}

static bool
b_flush(struct mc_proto_ctx *cx, const struct breq *r, struct mc_out *o, int arg)
{
	(void)arg;
	if (!mc_proto_admin_ok(cx)) {
		error(o, r, ST_AUTH_ERROR, status_text(ST_AUTH_ERROR));
		return true;
	}
	if (!writes_ok(cx, r, o))
		return true;
	/* Unsigned, as the exptimes: memcached reads it into a time_t. */
	mc_proto_flush_all(cx, r->extlen ? (int64_t)be32_at(r->ext) : 0);
	if (r->op == OP_FLUSH)
		hdr(o, r, ST_OK, 0, 0, 0, 0);
	return true;
}

static bool
b_stat(struct mc_proto_ctx *cx, const struct breq *r, struct mc_out *o, int arg)
{
	(void)arg;
	do_stat(cx, r, o);
	return true;
}

/* X(opcode, handler, arg, extras, key, body exactly extras + key) */
#define BINARY_OPS(X)                                                                          \
	X(OP_GET, b_get, GET_VALUE, 0, KEY_REQ, true)                                          \
	X(OP_GETQ, b_get, GET_VALUE, 0, KEY_REQ, true)                                         \
	X(OP_GETK, b_get, GET_KEY | GET_VALUE, 0, KEY_REQ, true)                               \
	X(OP_GETKQ, b_get, GET_KEY | GET_VALUE, 0, KEY_REQ, true)                              \
	X(OP_SET, b_update, MC_SET, 8, KEY_REQ, false)                                         \
	X(OP_SETQ, b_update, MC_SET, 8, KEY_REQ, false)                                        \
	X(OP_ADD, b_update, MC_ADD, 8, KEY_REQ, false)                                         \
	X(OP_ADDQ, b_update, MC_ADD, 8, KEY_REQ, false)                                        \
	X(OP_REPLACE, b_update, MC_REPLACE, 8, KEY_REQ, false)                                 \
	X(OP_REPLACEQ, b_update, MC_REPLACE, 8, KEY_REQ, false)                                \
	X(OP_APPEND, b_update, MC_APPEND, 0, KEY_REQ, false)                                   \
	X(OP_APPENDQ, b_update, MC_APPEND, 0, KEY_REQ, false)                                  \
	X(OP_PREPEND, b_update, MC_PREPEND, 0, KEY_REQ, false)                                 \
	X(OP_PREPENDQ, b_update, MC_PREPEND, 0, KEY_REQ, false)                                \
	X(OP_DELETE, b_delete, 0, 0, KEY_REQ, true)                                            \
	X(OP_DELETEQ, b_delete, 0, 0, KEY_REQ, true)                                           \
	X(OP_INCR, b_delta, 1, 20, KEY_REQ, true)                                              \
	X(OP_INCRQ, b_delta, 1, 20, KEY_REQ, true)                                             \
	X(OP_DECR, b_delta, 0, 20, KEY_REQ, true)                                              \
	X(OP_DECRQ, b_delta, 0, 20, KEY_REQ, true)                                             \
	X(OP_TOUCH, b_get, GET_TOUCH, 4, KEY_REQ, false)                                       \
	X(OP_GAT, b_get, GET_TOUCH | GET_VALUE, 4, KEY_REQ, false)                             \
	X(OP_GATQ, b_get, GET_TOUCH | GET_VALUE, 4, KEY_REQ, false)                            \
	X(OP_GATK, b_get, GET_KEY | GET_TOUCH | GET_VALUE, 4, KEY_REQ, false)                  \
	X(OP_GATKQ, b_get, GET_KEY | GET_TOUCH | GET_VALUE, 4, KEY_REQ, false)                 \
	X(OP_NOOP, b_noop, 0, 0, KEY_NONE, true)                                               \
	X(OP_VERSION, b_version, 0, 0, KEY_NONE, true)                                         \
	X(OP_QUIT, b_quit, 0, 0, KEY_NONE, true)                                               \
	X(OP_QUITQ, b_quit, 0, 0, KEY_NONE, true)                                              \
	X(OP_FLUSH, b_flush, 0, EXT_0_OR_4, KEY_NONE, true)                                    \
	X(OP_FLUSHQ, b_flush, 0, EXT_0_OR_4, KEY_NONE, true)                                   \
	X(OP_STAT, b_stat, 0, 0, KEY_ANY, false)

/* Indexed by opcode; a gap (no handler) is an unknown command. */
static const struct bop bops[OP_GATKQ + 1] = {
#define X(code, f, a, e, k, x) [code] = {f, a, e, k, x},
	BINARY_OPS(X)
#undef X
};

/* A stream's request too long to buffer (its key and extras are here): memcached answers an
 * update E2BIG (or out of memory), unlinking a set's old item, an unknown opcode as unknown,
 * and swallows the body; any other opcode has a body it does not take, a protocol error. */
static void
too_long(struct mc_proto_ctx *cx, struct breq *r, const struct bop *op, struct mc_out *o)
{
	if (op != NULL && op->fn == b_update && r->extlen == op->ext && r->keylen != 0 &&
	    r->keylen <= MC_KEY_MAX && r->bodylen <= INT32_MAX) {
		/* (A body of 2 GiB or more is a negative int in memcached: invalid, closed.) */
		struct mc_key k;
		r->vlen = r->bodylen - r->keylen - r->extlen;
		if (mc_store_too_large(cx->sx.s, r->keylen, r->vlen))
			error(o, r, ST_E2BIG, status_text(ST_E2BIG));
		else
			error(o, r, ST_ENOMEM, "Out of memory allocating item");
		if (op->arg == MC_SET) {
			mc_proto_key(cx, &k, r->key, r->keylen);
			mc_store_delete(&cx->sx, &k, 0);
		}
		return;
	}
	cx->st.proto_errors++;
	if (op == NULL || op->fn == NULL) {
		error(o, r, ST_UNKNOWN, status_text(ST_UNKNOWN));
		return;
	}
	error(o, r, ST_EINVAL, status_text(ST_EINVAL));
	cx->ev = MC_EV_CLOSE;
}

/* Over a stream, what stops a datagram closes the connection (memcached's conn_closing). */
static bool
stop(struct mc_proto_ctx *cx)
{
	if (cx->stream)
		cx->ev = MC_EV_CLOSE;
	return false;
}

static bool
more(struct mc_proto_ctx *cx, size_t need)
{
	cx->ev = MC_EV_MORE;
	cx->need = need;
	return false;
}

bool
mc_binary_one(struct mc_proto_ctx *cx, const uint8_t *req, size_t len, size_t *pos,
	      struct mc_out *o, unsigned int *ncmd)
{
	struct breq r;
	const uint8_t *h = req + *pos;
	const size_t avail = len - *pos;
	const struct bop *op;
	if (h[0] != 0x80) {
		/* Bad magic: memcached closes; replies so far stand. */
		cx->st.proto_errors++;
		return stop(cx);
	}
	/* memcached parses a request once its header, extras and key are in; until then it
	 * waits, and over UDP the rest never comes. Waiting to parse flushes the replies
	 * so far (oracle: a NOOP, SET or GET miss before a short request is answered), so
	 * they stand; the short request gets nothing. */
	if (avail < HDR) {
		if (cx->stream)
			return more(cx, HDR);
		cx->st.proto_incomplete++;
		return false;
	}
	r.op = h[1];
	r.keylen = (uint16_t)(h[2] << 8 | h[3]);
	r.extlen = h[4];
	r.bodylen = be32_at(h + 8);
	memcpy(&r.opaque, h + 12, 4);
	r.cas = be64_at(h + 16);
	if ((size_t)r.keylen + r.extlen > avail - HDR) {
		if (cx->stream)
			return more(cx, HDR + (size_t)r.keylen + r.extlen);
		cx->st.proto_incomplete++;
		return false;
	}
	if ((uint32_t)r.keylen + r.extlen > r.bodylen) {
		(*ncmd)++;
		cx->st.cmd_binary++;
		cx->st.proto_errors++;
		error(o, &r, ST_UNKNOWN, status_text(ST_UNKNOWN));
		return stop(cx);
	}
	r.ext = h + HDR;
	r.key = r.ext + r.extlen;
	op = r.op < sizeof(bops) / sizeof(bops[0]) ? &bops[r.op] : NULL;
	if ((uint64_t)r.bodylen > avail - HDR) {
		if (cx->stream) {
			if ((uint64_t)HDR + r.bodylen <= cx->stream_cap)
				return more(cx, HDR + (size_t)r.bodylen);
			(*ncmd)++;
			cx->st.cmd_binary++;
			cx->swallow = (uint64_t)HDR + r.bodylen - avail;
			*pos = len;
			too_long(cx, &r, op, o);
			return cx->ev != MC_EV_CLOSE;
		}
		/* The value is not all here: memcached reads on for it (no parse, so
		 * no flush) and sends nothing more. Dropping every earlier reply is its
		 * answer unless one of them flushed (a NOOP, an error reply): untracked. */
		cx->st.proto_incomplete++;
		mc_out_rewind(o, 0);
		return false;
	}
	*pos += HDR + r.bodylen;
	(*ncmd)++;
	cx->st.cmd_binary++;
	r.val = r.key + r.keylen;
	r.vlen = r.bodylen - r.keylen - r.extlen;
	if (r.keylen > MC_KEY_MAX) {
		cx->st.proto_errors++;
		error(o, &r, ST_EINVAL, status_text(ST_EINVAL));
		return stop(cx);
	}
	if (op == NULL || op->fn == NULL) {
		cx->st.proto_errors++;
		error(o, &r, ST_UNKNOWN, status_text(ST_UNKNOWN));
		return true;
	}
	if (!shape_ok(op, &r)) {
		/* memcached answers "Invalid arguments" and closes: nothing after it runs. */
		cx->st.proto_errors++;
		error(o, &r, ST_EINVAL, status_text(ST_EINVAL));
		return stop(cx);
	}
	if (!op->fn(cx, &r, o, op->arg))
		return stop(cx);
	return true;
}

void
mc_binary_execute(struct mc_proto_ctx *cx, const uint8_t *req, size_t len, struct mc_out *o,
		  unsigned int *ncmd)
{
	size_t pos = 0;
	while (pos < len && !o->full)
		if (!mc_binary_one(cx, req, len, &pos, o, ncmd))
			return;
}
