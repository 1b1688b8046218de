/* memcached's meta commands: mg, ms, md, ma, mn, me, with 1.6.18's flags, reply codes, flag
 * echo order and error strings. */
#include "proto_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define MAX_OPT_TOKENS 20  /* memcached's MFLAG_MAX_OPT_LENGTH */
#define MAX_OPAQUE 32

struct mflags {
	bool key_binary, value, no_reply, no_update, vivify, new_ttl, set_stale, recache;
	bool has_cas, has_error;
	char mode;
	uint32_t client_flags;
	uint32_t exptime, viv_exptime, recache_time;
	uint64_t cas, initial, delta;
};

static void
line(struct mc_out *o, const char *s)
{
	mc_out_put(o, s, strlen(s));
	MC_OUT_STR(o, "\r\n");
}

/* The read-only gate, answered as memcached answers meta errors: whatever q says. */
static bool
writes_ok(struct mc_proto_ctx *cx, struct mc_out *o)
{
	if (mc_proto_writes_ok(cx))
		return true;
	line(o, "CLIENT_ERROR writes not allowed");
	return false;
}

/* The checks every meta command starts with, in memcached's order. Returns false when it has
 * already answered. too_many is the command's own wording for too many flags (NULL: skip). */
static bool
meta_head(struct mc_out *o, const struct mc_tok *t, size_t nt, const char *too_many)
{
	if (nt < 3) {
		MC_OUT_STR(o, "ERROR\r\n");
		return false;
	}
	if (t[1].len > MC_KEY_MAX) {
		line(o, "CLIENT_ERROR bad command line format");
		return false;
	}
	if (too_many != NULL && nt > MAX_OPT_TOKENS) {
		line(o, too_many);
		return false;
	}
	return true;
}

/* Parse flags from t[start] on (memcached's _meta_flag_preparse); decodes a base64 key into
 * kbuf. Returns 0, or -1 with *err set. */
static int
preparse(struct mc_proto_ctx *cx, struct mc_tok *t, size_t start, struct mflags *f,
	 uint8_t *kbuf, const char **err)
{
	uint8_t seen[128] = {0};
	size_t i;
	int32_t v;
	memset(f, 0, sizeof(*f));
	f->delta = 1;
	for (i = start; t[i].len != 0; i++) {
		uint8_t c = t[i].p[0];
		struct mc_tok arg = {t[i].p + 1, t[i].len - 1};
		if (c >= 127 || seen[c]) {
			*err = "CLIENT_ERROR duplicate flag";
			return -1;
		}
		seen[c] = 1;
		switch (c) {
		case 'b': {
			int n = mc_base64_decode(t[1].p, t[1].len, kbuf, MC_KEY_MAX);
			if (n <= 0) {
				*err = "CLIENT_ERROR error decoding key";
				f->has_error = true;
				break;
			}
			t[1].p = kbuf;
			t[1].len = (uint32_t)n;
			f->key_binary = true;
			break;
		}
		case 'N':
			f->vivify = true;
			if (!mc_strtol32(&arg, &v)) {
				*err = "CLIENT_ERROR bad token in command line format";
				f->has_error = true;
			} else {
				f->viv_exptime = mc_proto_exptime(cx, v);
			}
			break;
		case 'T':
			if (!mc_strtol32(&arg, &v)) {
				*err = "CLIENT_ERROR bad token in command line format";
				f->has_error = true;
			} else {
				f->exptime = mc_proto_exptime(cx, v);
				f->new_ttl = true;
			}
			break;
		case 'R':
			if (!mc_strtol32(&arg, &v)) {
				*err = "CLIENT_ERROR bad token in command line format";
				f->has_error = true;
			} else {
				f->recache_time = mc_proto_exptime(cx, v);
				f->recache = true;
			}
			break;
		case 'l': case 'O': case 'P': case 'L': case 'k': case 's': case 't': case 'c':
		case 'f': case 'h':
			break;
		case 'v':
			f->value = true;
			break;
		case 'u':
			f->no_update = true;
			break;
		case 'q':
			f->no_reply = true;
			break;
		case 'F':
			if (!mc_strtoul32(&arg, &f->client_flags))
				f->has_error = true;
			break;
		case 'C':
			if (!mc_strtoull(&arg, &f->cas)) {
				*err = "CLIENT_ERROR bad token in command line format";
				f->has_error = true;
			} else {
				f->has_cas = true;
			}
			break;
		case 'M':
			if (t[i].len != 2) {
				*err = "CLIENT_ERROR incorrect length for M token";
				f->has_error = true;
			} else {
				f->mode = (char)t[i].p[1];
			}
			break;
		case 'J':
			if (!mc_strtoull(&arg, &f->initial)) {
				*err = "CLIENT_ERROR invalid numeric initial value";
				f->has_error = true;
			}
			break;
		case 'D':
			if (!mc_strtoull(&arg, &f->delta)) {
				*err = "CLIENT_ERROR invalid numeric delta value";
				f->has_error = true;
			}
			break;
		case 'I':
			f->set_stale = true;
			break;
		default:
			*err = "CLIENT_ERROR invalid flag";
			return -1;
		}
	}
	return f->has_error ? -1 : 0;
}

/* " k<key>" (base64 and " b" for binary keys). */
static void
put_key(struct mc_out *o, const struct mc_tok *key, bool binary)
{
	MC_OUT_STR(o, " k");
	if (!binary) {
		mc_out_put(o, key->p, key->len);
	} else {
		uint8_t enc[(MC_KEY_MAX + 2) / 3 * 4 + 4];
		int n = mc_base64_encode(key->p, key->len, enc, sizeof(enc));
		if (n > 0)
			mc_out_put(o, enc, (size_t)n);
		MC_OUT_STR(o, " b");
	}
}

/* Is any O flag longer than memcached's MFLAG_MAX_OPAQUE_LENGTH (the O counted)? */
static bool
opaque_too_long(const struct mc_tok *t, size_t nt, size_t start)
{
	size_t i;
	for (i = start; i < nt - 1; i++)
		if (t[i].p[0] == 'O' && t[i].len > MAX_OPAQUE)
			return true;
	return false;
}

/* Echo O, k and (when cas is given) c flags in request order: mg misses, ms, md, ma
 * failures. Returns false if an opaque is too long. */
static bool
put_ok_flags(struct mc_out *o, const struct mc_tok *t, size_t nt, const struct mc_tok *key,
	     bool binary, const uint64_t *cas)
{
	size_t i;
	for (i = 2; i < nt - 1; i++) {
		if (t[i].p[0] == 'O') {
			if (t[i].len > MAX_OPAQUE)
				return false;
			MC_OUT_STR(o, " ");
			mc_out_put(o, t[i].p, t[i].len);
		} else if (t[i].p[0] == 'k') {
			put_key(o, key, binary);
		} else if (t[i].p[0] == 'c' && cas != NULL) {
			MC_OUT_STR(o, " c");
			mc_out_u64(o, *cas);
		}
	}
	return true;
}

/* mg's state across the reads of one command (mc_proto_hit may read more than once). */
struct mg_head {
	const struct mflags *f;
	const struct mc_tok *t;
	size_t nt;
	const struct mc_key *k;
	struct mc_meta_res mr;
	bool locked;
};

static enum mc_hit_head
mg_head(struct mc_proto_ctx *cx, struct mc_out *o, const struct mc_store_read *r, size_t mark,
	void *arg)
{
	struct mg_head *g = arg;
	const struct mc_tok *t = g->t;
	size_t i;
	if (!g->locked) {
		if ((r->state & MC_IT_STALE) && !(r->state & MC_IT_TOKEN) &&
		    (cx->stream || cx->conf->udp_writes)) {
			/* A stale item hands out one win: claim it under the lock. Read-only, nothing
			 * is claimed (a claim marks the item): X without W. */
			struct mc_meta_args none = {0};
			mc_store_meta_prep(&cx->sx, g->k, &none, &g->mr);
			g->locked = true;
			return MC_HEAD_AGAIN;
		}
		g->mr.token = (r->state & MC_IT_TOKEN) != 0;
		g->mr.stale = (r->state & MC_IT_STALE) != 0;
	}
	if (g->f->value) {
		MC_OUT_STR(o, "VA ");
		mc_out_u64(o, r->vlen);
	} else {
		MC_OUT_STR(o, "HD");
	}
	for (i = 2; i < g->nt - 1; i++) {
		switch (t[i].p[0]) {
		case 's':
			MC_OUT_STR(o, " s");
			mc_out_u64(o, r->vlen);
			break;
		case 't':
			MC_OUT_STR(o, " t");
			if (r->exptime == 0)
				MC_OUT_STR(o, "-1");
			else
				mc_out_i64(o, (int64_t)r->exptime - mc_store_now(cx->sx.s));
			break;
		case 'c':
			MC_OUT_STR(o, " c");
			mc_out_u64(o, r->cas);
			break;
		case 'f':
			MC_OUT_STR(o, " f");
			mc_out_u64(o, r->flags);
			break;
		case 'l':
			/* Last-access time is not tracked (no room in the 24-byte header). */
			MC_OUT_STR(o, " l0");
			break;
		case 'h':
			if (r->fetched)
				MC_OUT_STR(o, " h1");
			else
				MC_OUT_STR(o, " h0");
			break;
		case 'O':
			if (t[i].len > MAX_OPAQUE) {
				mc_out_rewind(o, mark);
				line(o, "CLIENT_ERROR opaque token too long");
				return MC_HEAD_DONE;
			}
			MC_OUT_STR(o, " ");
			mc_out_put(o, t[i].p, t[i].len);
			break;
		case 'k': put_key(o, &t[1], (r->state & MC_IT_KEYBIN) != 0); break;
		default: break;
		}
	}
	if (g->mr.token && !g->mr.created && !(g->locked && g->mr.won))
		MC_OUT_STR(o, " Z");
	if (g->mr.stale)
		MC_OUT_STR(o, " X");
	if (g->mr.won)
		MC_OUT_STR(o, " W");
	MC_OUT_STR(o, "\r\n");
	return MC_HEAD_OK;
}

static void
cmd_mg(struct mc_proto_ctx *cx, struct mc_tok *t, size_t nt, struct mc_out *o)
{
	struct mflags f;
	const char *err = "CLIENT_ERROR bad command line format";
	uint8_t kbuf[MC_KEY_MAX + 4];
	struct mc_key k;
	struct mg_head g = {.f = &f, .t = t, .nt = nt, .k = &k};
	struct mc_store_read r;
	size_t mark;

	if (!meta_head(o, t, nt, "CLIENT_ERROR options flags are too long"))
		return;
	if (preparse(cx, t, 2, &f, kbuf, &err) != 0) {
		line(o, err);
		return;
	}
	mc_proto_key(cx, &k, t[1].p, t[1].len);
	g.locked = f.vivify || f.new_ttl || f.recache;
	/* N creates the item, T sets its TTL, R may hand out the recache token: all writes. */
	if (g.locked && !writes_ok(cx, o))
		return;
	if (g.locked) {
		struct mc_meta_args a = {.vivify = f.vivify, .viv_exptime = f.viv_exptime,
					 .set_ttl = f.new_ttl, .ttl = f.exptime,
					 .recache = f.recache, .recache_time = f.recache_time};
		mc_store_meta_prep(&cx->sx, &k, &a, &g.mr);
	}
	switch (mc_proto_hit(cx, &k, o, f.value, "\r\n", f.value ? 2 : 0, mg_head, &g, &r, &mark)) {
	case MC_HIT_OK:
		if (!f.no_update)
			mc_store_read_touch(&r);
		return;
	case MC_HIT_MISS:
		if (f.no_reply)
			return;
		mark = mc_out_pos(o);
		MC_OUT_STR(o, "EN");
		if (!put_ok_flags(o, t, nt, &t[1], f.key_binary, NULL)) {
			mc_out_rewind(o, mark);
			line(o, "CLIENT_ERROR opaque token too long");
			return;
		}
		MC_OUT_STR(o, "\r\n");
		return;
	case MC_HIT_DONE: return;
	default: mc_proto_cut_line(cx, o, mark); return;
	}
}

static int
store_mode(char m, bool has_cas, int *mode)
{
	/* Upper case only, as memcached's mode switch. */
	switch (m) {
	case 0: case 'S': *mode = MC_SET; break;
	case 'E': *mode = MC_ADD; break;
	case 'A': *mode = MC_APPEND; break;
	case 'P': *mode = MC_PREPEND; break;
	case 'R': *mode = MC_REPLACE; break;
	default: return -1;
	}
	if (has_cas && (*mode == MC_SET || *mode == MC_REPLACE))
		*mode = MC_CAS;
	return 0;
}

static void
cmd_ms(struct mc_proto_ctx *cx, struct mc_tok *t, size_t nt, const uint8_t *req, size_t len,
       size_t *pos, struct mc_out *o)
{
	struct mflags f;
	const char *err = "CLIENT_ERROR bad command line format";
	uint8_t kbuf[MC_KEY_MAX + 4];
	int32_t vlen;
	int mode = MC_SET;
	const uint8_t *data = NULL;
	struct mc_key k;
	enum mc_store_status rc;
	struct mc_store_args a = {0};
	uint64_t cas = 0;
	size_t mark;
	enum mc_data swallowed = MC_DATA_WAIT; /* a stream's value too long to hold */

	if (!meta_head(o, t, nt, NULL))
		return;
	if (nt == 3) {
		line(o, "CLIENT_ERROR bad command line format");
		return;
	}
	if (nt > MAX_OPT_TOKENS) {
		line(o, "CLIENT_ERROR options flags too long");
		return;
	}
	if (!mc_strtol32(&t[2], &vlen) || vlen < 0 || vlen > INT32_MAX - 2) {
		line(o, "CLIENT_ERROR bad command line format");
		return;
	}
	if (len - *pos < (size_t)vlen + 2 && cx->stream) {
		/* A stream waits for the data block, unless it is more than it may hold: then
		 * it is swallowed, and answered as memcached answers a failed allocation (after
		 * the flag errors, which swallow it too). */
		swallowed = mc_proto_stream_data(cx, len, pos, (uint64_t)vlen,
						 mc_store_too_large(cx->sx.s, t[1].len, (uint32_t)vlen));
		if (swallowed == MC_DATA_WAIT)
			return;
	} else if (len - *pos < (size_t)vlen + 2) {
		/* From here on an error swallows the data block, so it must be in the
		 * datagram. */
		cx->st.proto_incomplete++;
		mc_out_rewind(o, 0);
		*pos = len;
		return;
	} else {
		data = req + *pos;
		*pos += (size_t)vlen + 2;
	}
	if (preparse(cx, t, 3, &f, kbuf, &err) != 0) {
		line(o, err);
		return;
	}
	if (opaque_too_long(t, nt, 3)) {
		line(o, "CLIENT_ERROR opaque token too long");
		return;
	}
	if (store_mode(f.mode, f.has_cas, &mode) != 0) {
		line(o, "CLIENT_ERROR invalid mode for ms M token");
		return;
	}
	/* Before the size check: an oversize ms deletes the old item (memcached: for any
	 * failed allocation, so that no stale value stays). */
	if (!writes_ok(cx, o))
		return;
	mc_proto_key(cx, &k, t[1].p, t[1].len);
	if (swallowed == MC_DATA_NO_MEMORY) {
		line(o, "SERVER_ERROR out of memory storing object");
		mc_store_delete(&cx->sx, &k, 0);
		return;
	}
	if (swallowed == MC_DATA_TOO_LARGE || mc_store_too_large(cx->sx.s, k.len, (uint32_t)vlen)) {
		line(o, "SERVER_ERROR object too large for cache");
		mc_store_delete(&cx->sx, &k, 0);
		return;
	}
	if (data[vlen] != '\r' || data[vlen + 1] != '\n') {
		line(o, "CLIENT_ERROR bad data chunk");
		return;
	}
	a.mode = (enum mc_store_mode)mode;
	a.flags = f.client_flags;
	a.exptime = f.exptime;
	a.val = data;
	a.vlen = (uint32_t)vlen;
	a.cas_in = f.cas;
	a.stale_ok = f.set_stale && mode == MC_CAS;
	a.key_binary = f.key_binary;
	rc = MC_NOT_STORED;
	if (f.vivify && (mode == MC_APPEND || mode == MC_PREPEND)) {
		/* Append/prepend with N: create the item when it is missing. */
		struct mc_store_args add = a;
		add.mode = MC_ADD;
		add.exptime = f.viv_exptime;
		add.cas_in = 0;
		add.stale_ok = false;
		rc = mc_store_store(&cx->sx, &k, &add, &cas);
	}
	if (rc == MC_NOT_STORED)
		rc = mc_store_store(&cx->sx, &k, &a, &cas);
	mark = mc_out_pos(o);
	switch (rc) {
	case MC_STORED: MC_OUT_STR(o, "HD"); break;
	case MC_EXISTS: MC_OUT_STR(o, "EX"); break;
	case MC_MISS: MC_OUT_STR(o, "NF"); break;
	case MC_NOT_STORED: MC_OUT_STR(o, "NS"); break;
	case MC_TOO_LARGE: line(o, "SERVER_ERROR object too large for cache"); return;
	case MC_NO_MEMORY: line(o, "SERVER_ERROR out of memory storing object"); return;
	default: line(o, "SERVER_ERROR Unhandled storage type."); return;
	}
	if (rc != MC_STORED)
		cas = 0; /* memcached: c is 0 unless stored */
	put_ok_flags(o, t, nt, &t[1], f.key_binary, &cas); /* opaques were checked above */
	MC_OUT_STR(o, "\r\n");
	if (rc == MC_STORED && f.no_reply)
		mc_out_rewind(o, mark);
}

static void
cmd_md(struct mc_proto_ctx *cx, struct mc_tok *t, size_t nt, struct mc_out *o)
{
	struct mflags f;
	const char *err = NULL;
	uint8_t kbuf[MC_KEY_MAX + 4];
	struct mc_key k;
	enum mc_store_status rc;
	size_t mark;

	if (!meta_head(o, t, nt, "CLIENT_ERROR options flags too long"))
		return;
	if (preparse(cx, t, 2, &f, kbuf, &err) != 0) {
		line(o, "CLIENT_ERROR invalid or duplicate flag");
		return;
	}
	if (!writes_ok(cx, o))
		return;
	mc_proto_key(cx, &k, t[1].p, t[1].len);
	if (f.set_stale)
		rc = mc_store_invalidate(&cx->sx, &k, f.has_cas ? f.cas : 0, f.new_ttl, f.exptime);
	else
		rc = mc_store_delete(&cx->sx, &k, f.has_cas ? f.cas : 0);
	mark = mc_out_pos(o);
	if (rc == MC_DELETED)
		MC_OUT_STR(o, "HD");
	else if (rc == MC_EXISTS)
		MC_OUT_STR(o, "EX");
	else
		MC_OUT_STR(o, "NF");
	if (!put_ok_flags(o, t, nt, &t[1], f.key_binary, NULL)) {
		mc_out_rewind(o, mark);
		line(o, "CLIENT_ERROR opaque token too long");
		return;
	}
	MC_OUT_STR(o, "\r\n");
	if (rc == MC_DELETED && f.no_reply)
		mc_out_rewind(o, mark);
}

static void
cmd_ma(struct mc_proto_ctx *cx, struct mc_tok *t, size_t nt, struct mc_out *o)
{
	struct mflags f;
	const char *err = "CLIENT_ERROR bad command line format";
	uint8_t kbuf[MC_KEY_MAX + 4];
	struct mc_key k;
	struct mc_delta_args a;
	enum mc_store_status rc;
	uint64_t v = 0, cas = 0;
	size_t i, mark;
	char num[24];
	int nlen;

	if (!meta_head(o, t, nt, "CLIENT_ERROR options flags too long"))
		return;
	if (preparse(cx, t, 2, &f, kbuf, &err) != 0) {
		(void)err;
		line(o, "CLIENT_ERROR invalid or duplicate flag");
		return;
	}
	memset(&a, 0, sizeof(a));
	switch (f.mode) { /* upper case only, as memcached's */
	case 0: case 'I': case '+': a.incr = true; break;
	case 'D': case '-': a.incr = false; break;
	default:
		line(o, "CLIENT_ERROR invalid mode for ma M token");
		return;
	}
	if (!writes_ok(cx, o))
		return;
	a.delta = f.delta;
	a.create = f.vivify;
	a.initial = f.initial;
	a.exptime = f.viv_exptime;
	a.cas_in = f.has_cas ? f.cas : 0;
	mc_proto_key(cx, &k, t[1].p, t[1].len);
	rc = mc_store_delta(&cx->sx, &k, &a, &v, &cas);
	mark = mc_out_pos(o);
	switch (rc) {
	case MC_OK:
	case MC_STORED: {
		/* memcached's final loop walks the flags in request order: t prints the exptime
		 * as it stands there, T sets it, N sets it on an item just made (created with
		 * none), and a too-long opaque ends the walk with an error, keeping what was done
		 * before it. The new exptime is written once, after the walk. */
		uint32_t exp = 0;
		bool retime = false, opaque_long = false;
		if (rc == MC_OK) {
			struct mc_store_read r;
			if (mc_store_read_begin(&cx->sx, &k, &r) == MC_OK)
				exp = r.exptime;
		}
		nlen = snprintf(num, sizeof(num), "%" PRIu64, v);
		if (f.value) {
			MC_OUT_STR(o, "VA ");
			mc_out_u64(o, (uint64_t)nlen);
		} else {
			MC_OUT_STR(o, "HD");
		}
		for (i = 2; i < nt - 1 && !opaque_long; i++) {
			switch (t[i].p[0]) {
			case 'O':
				if (t[i].len > MAX_OPAQUE) {
					opaque_long = true;
					break;
				}
				MC_OUT_STR(o, " ");
				mc_out_put(o, t[i].p, t[i].len);
				break;
			case 'k':
				put_key(o, &t[1], f.key_binary);
				break;
			case 't':
				MC_OUT_STR(o, " t");
				if (exp != 0)
					mc_out_i64(o, (int64_t)exp - mc_store_now(cx->sx.s));
				else
					MC_OUT_STR(o, "-1");
				break;
			case 'T':
				exp = f.exptime;
				retime = true;
				break;
			case 'N':
				if (rc == MC_STORED) {
					exp = f.viv_exptime;
					retime = true;
				}
				break;
			case 'c':
				MC_OUT_STR(o, " c");
				mc_out_u64(o, cas);
				break;
			default:
				break;
			}
		}
		if (retime)
			mc_store_touch(&cx->sx, &k, exp);
		if (opaque_long) { /* answered whatever q says */
			mc_out_rewind(o, mark);
			line(o, "CLIENT_ERROR opaque token too long");
			return;
		}
		MC_OUT_STR(o, "\r\n");
		if (f.value) {
			mc_out_put(o, num, (size_t)nlen);
			MC_OUT_STR(o, "\r\n");
		}
		/* q hides a hit, value or not, but not a creation: memcached skips the reply
		 * only on do_add_delta's OK (oracle: "ma new N0 q" answers HD). */
		if (f.no_reply && rc == MC_OK)
			mc_out_rewind(o, mark);
		return;
	}
	case MC_NON_NUMERIC:
		line(o, "CLIENT_ERROR cannot increment or decrement non-numeric value");
		return;
	case MC_NO_MEMORY:
		line(o, "SERVER_ERROR out of memory");
		return;
	case MC_EXISTS:
		MC_OUT_STR(o, "EX");
		break;
	default:
		MC_OUT_STR(o, "NF");
		break;
	}
	if (!put_ok_flags(o, t, nt, &t[1], f.key_binary, NULL)) {
		mc_out_rewind(o, mark);
		line(o, "CLIENT_ERROR opaque token too long");
		return;
	}
	MC_OUT_STR(o, "\r\n");
}

/* me <key> [b]: memcached's meta debug line, as process_meta_command writes it: exp is
 * current_time - exptime (1.6.18 prints the remaining TTL negated), la the seconds since the
 * last access (mcbox keeps none: 0), size memcached's ITEM_ntotal, cls mcbox's class. */
static void
cmd_me(struct mc_proto_ctx *cx, struct mc_tok *t, size_t nt, struct mc_out *o)
{
	uint8_t kbuf[MC_KEY_MAX + 4];
	struct mc_tok key = t[1];
	struct mc_key k;
	struct mc_store_read r;
	uint8_t echo[MC_KEY_MAX * 2];
	size_t elen;
	char buf[160];
	int n;
	if (nt < 3 || t[1].len > MC_KEY_MAX) {
		line(o, "CLIENT_ERROR bad command line format");
		return;
	}
	if (nt > 3 && TOK_IS(&t[2], "b")) {
		int dl = mc_base64_decode(t[1].p, t[1].len, kbuf, MC_KEY_MAX);
		if (dl <= 0) {
			line(o, "CLIENT_ERROR bad command line format");
			return;
		}
		key.p = kbuf;
		key.len = (uint32_t)dl;
	}
	mc_proto_key(cx, &k, key.p, key.len);
	for (;;) {
		if (mc_store_read_begin(&cx->sx, &k, &r) != MC_OK) {
			MC_OUT_STR(o, "EN\r\n");
			return;
		}
		/* The key as stored: base64 again when it was stored binary. */
		if (r.state & MC_IT_KEYBIN)
			elen = (size_t)mc_base64_encode(key.p, key.len, echo, sizeof(echo));
		else
			elen = key.len;
		n = snprintf(buf, sizeof(buf),
			     " exp=%d la=0 cas=%" PRIu64 " fetch=%s cls=%u size=%" PRIu64 "\r\n",
			     r.exptime == 0 ? -1 : (int)(mc_store_now(cx->sx.s) - r.exptime), r.cas,
			     r.fetched ? "yes" : "no", (unsigned int)r.it->cls + 1,
			     mc_proto_item_ntotal(key.len, r.vlen, r.flags));
		if (mc_store_read_check(&r))
			break;
	}
	MC_OUT_STR(o, "ME ");
	mc_out_put(o, (r.state & MC_IT_KEYBIN) ? echo : key.p, elen);
	mc_out_put(o, buf, (size_t)n);
}

void
mc_meta_command(struct mc_proto_ctx *cx, char which, struct mc_tok *t, size_t nt,
		const uint8_t *req, size_t len, size_t *pos, struct mc_out *o)
{
	switch (which) {
	case 'g': cmd_mg(cx, t, nt, o); break;
	case 's': cmd_ms(cx, t, nt, req, len, pos, o); break;
	case 'd': cmd_md(cx, t, nt, o); break;
	case 'a': cmd_ma(cx, t, nt, o); break;
	case 'e': cmd_me(cx, t, nt, o); break;
	case 'n': MC_OUT_STR(o, "MN\r\n"); break;
	default: MC_OUT_STR(o, "ERROR\r\n"); break;
	}
}
