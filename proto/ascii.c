/* memcached's classic ASCII commands (text protocol), with its replies and quirks word for word:
 * the tokenizer, noreply, error strings, which errors swallow the data block and which let it be
 * read as the next command (then answered "ERROR"). */
#include "proto_int.h"

#include <stdio.h>
#include <string.h>

#define KEY_MAX MC_KEY_MAX

/* out_string(): a reply line, unless noreply is set for this command. */
static void
reply(struct mc_out *o, bool noreply, const char *s, size_t n)
{
	uint8_t *d;
	if (noreply)
		return;
	d = mc_out_room(o, n + 2);
	if (d == NULL)
		return;
	memcpy(d, s, n);
	d[n] = '\r';
	d[n + 1] = '\n';
	o->len += n + 2;
}
#define REPLY(o, nr, lit) reply((o), (nr), (lit), sizeof(lit) - 1)

/* set_noreply_maybe(): the last real token is "noreply". */
static bool
noreply_of(const struct mc_tok *t, size_t nt)
{
	return nt >= 2 && TOK_IS(&t[nt - 2], "noreply");
}

static bool
writes_allowed(struct mc_proto_ctx *cx, struct mc_out *o, bool noreply)
{
	if (mc_proto_writes_ok(cx))
		return true;
	REPLY(o, noreply, "CLIENT_ERROR writes not allowed");
	return false;
}

static bool
admin_allowed(struct mc_proto_ctx *cx, struct mc_out *o, const char *what, size_t n)
{
	char msg[64];
	int len;
	if (mc_proto_admin_ok(cx))
		return true;
	len = snprintf(msg, sizeof(msg), "CLIENT_ERROR %.*s not allowed", (int)n, what);
	reply(o, false, msg, (size_t)len);
	return false;
}

/* "VALUE <key> <flags> <bytes>[ <cas>]\r\n", sized first so one room check covers it. The
 * numbers may be torn (the caller validates the read afterwards); any value prints. */
static bool
put_value_line(struct mc_out *o, const struct mc_tok *key, const struct mc_store_read *r,
	       bool with_cas)
{
	const unsigned int nf = mc_u64_digits(r->flags), nv = mc_u64_digits(r->vlen),
			   nc = with_cas ? mc_u64_digits(r->cas) : 0;
	const size_t n = 6 + key->len + 1 + nf + 1 + nv + (with_cas ? 1 + nc : 0) + 2;
	uint8_t *d = mc_out_room(o, n);
	if (d == NULL)
		return false;
	memcpy(d, "VALUE ", 6);
	d += 6;
	mc_copy(d, key->p, key->len);
	d += key->len;
	*d++ = ' ';
	mc_put_u64(d, r->flags, nf);
	d += nf;
	*d++ = ' ';
	mc_put_u64(d, r->vlen, nv);
	d += nv;
	if (with_cas) {
		*d++ = ' ';
		mc_put_u64(d, r->cas, nc);
		d += nc;
	}
	d[0] = '\r';
	d[1] = '\n';
	o->len += n;
	return true;
}

struct value_line {
	const struct mc_tok *key;
	bool with_cas;
};

static enum mc_hit_head
value_head(struct mc_proto_ctx *cx, struct mc_out *o, const struct mc_store_read *r, size_t mark,
	   void *arg)
{
	const struct value_line *vl = arg;
	(void)cx;
	(void)mark;
	put_value_line(o, vl->key, r, vl->with_cas);
	return MC_HEAD_OK;
}

/* One hit of get/gets/gat/gats: the VALUE line and data block (mc_proto_hit). Returns 1 on a
 * hit, 0 on a miss, -1 when the reply is full. */
static int
emit_value(struct mc_proto_ctx *cx, struct mc_out *o, const struct mc_tok *key,
	   const struct mc_key *k, bool with_cas)
{
	struct value_line vl = {key, with_cas};
	struct mc_store_read r;
	size_t mark;
	switch (mc_proto_hit(cx, k, o, true, "\r\n", 2, value_head, &vl, &r, &mark)) {
	case MC_HIT_OK: mc_store_read_touch(&r); return 1;
	case MC_HIT_MISS: return 0;
	default: return -1;
	}
}

static bool
cmd_get(struct mc_proto_ctx *cx, struct mc_tok *t, size_t nt, bool with_cas, bool touch,
	struct mc_out *o)
{
	struct mc_tok *kt = &t[1];
	struct mc_key k;
	uint32_t exptime = 0;
	int32_t e;
	int hit;
	(void)nt;
	if (touch) {
		if (!mc_strtol32(&t[1], &e)) {
			REPLY(o, false, "CLIENT_ERROR invalid exptime argument");
			return true;
		}
		exptime = mc_proto_exptime(cx, e);
		/* gat/gats set a new exptime: a write. */
		if (!writes_allowed(cx, o, false))
			return true;
		kt++;
	}
	for (;;) {
		while (kt->len != 0) {
			if (kt->len > KEY_MAX) {
				/* memcached culls every reply not yet sent, then complains. */
				mc_out_rewind(o, 0);
				o->full = false;
				REPLY(o, false, "CLIENT_ERROR bad command line format");
				return true;
			}
			mc_proto_key(cx, &k, kt->p, kt->len);
			hit = emit_value(cx, o, kt, &k, with_cas);
			if (hit < 0) {
				mc_proto_cut_line(cx, o, mc_out_pos(o));
				return false;
			}
			/* memcached's item_touch fetches, then sets the time: the value goes out
			 * even when the new exptime is already past. */
			if (touch && hit)
				mc_store_touch(&cx->sx, &k, exptime);
			else if (touch)
				mc_proto_touch_missed(cx);
			kt++;
		}
		if (kt->p == NULL)
			break;
		/* More keys than one tokenizer pass holds: tokenize the rest. */
		{
			const uint8_t *rest = kt->p;
			const uint8_t *end = rest;
			while (*end != '\r' && *end != '\n' && *end != '\0')
				end++;
			nt = mc_tokenize(rest, (size_t)(end - rest), t, MC_MAX_TOKENS);
			kt = t;
		}
	}
	if (!MC_OUT_STR(o, "END\r\n"))
		return false;
	return true;
}

static const char *
store_reply(enum mc_store_status rc, size_t *n)
{
	const char *s;
	switch (rc) {
	case MC_STORED: s = "STORED"; break;
	case MC_NOT_STORED: s = "NOT_STORED"; break;
	case MC_EXISTS: s = "EXISTS"; break;
	case MC_MISS: s = "NOT_FOUND"; break;
	case MC_TOO_LARGE: s = "SERVER_ERROR object too large for cache"; break;
	case MC_NO_MEMORY: s = "SERVER_ERROR out of memory storing object"; break;
	default: s = "SERVER_ERROR Unhandled storage type."; break;
	}
	*n = strlen(s);
	return s;
}

static bool
cmd_update(struct mc_proto_ctx *cx, struct mc_tok *t, size_t nt, enum mc_store_mode mode,
	   const uint8_t *req, size_t len, size_t *pos, struct mc_out *o)
{
	bool noreply = noreply_of(t, nt);
	uint32_t flags;
	int32_t exptime, vlen;
	uint64_t cas = 0;
	const uint8_t *data;
	struct mc_key k;
	enum mc_store_status rc;
	const char *s;
	size_t n;

	if (t[1].len > KEY_MAX) {
		REPLY(o, noreply, "CLIENT_ERROR bad command line format");
		return true;
	}
	if (!(mc_strtoul32(&t[2], &flags) && mc_strtol32(&t[3], &exptime) &&
	      mc_strtol32(&t[4], &vlen))) {
		REPLY(o, noreply, "CLIENT_ERROR bad command line format");
		return true;
	}
	if (mode == MC_CAS && !mc_strtoull(&t[5], &cas)) {
		REPLY(o, noreply, "CLIENT_ERROR bad command line format");
		return true;
	}
	if (vlen < 0 || vlen > INT32_MAX - 2) {
		REPLY(o, noreply, "CLIENT_ERROR bad command line format");
		return true;
	}
	if (len - *pos < (size_t)vlen + 2 && cx->stream) {
		/* A stream waits for the data block, unless it is more than it may hold. */
		switch (mc_proto_stream_data(cx, len, pos, (uint64_t)vlen,
					     mc_store_too_large(cx->sx.s, t[1].len, (uint32_t)vlen))) {
		case MC_DATA_WAIT: return false;
		case MC_DATA_NO_MEMORY:
			REPLY(o, noreply, "SERVER_ERROR out of memory storing object");
			break;
		case MC_DATA_TOO_LARGE:
			REPLY(o, noreply, "SERVER_ERROR object too large for cache");
			break;
		}
		/* memcached unlinks the old item of a set it could not store. */
		if (mode == MC_SET) {
			mc_proto_key(cx, &k, t[1].p, t[1].len);
			mc_store_delete(&cx->sx, &k, 0);
		}
		return true;
	}
	/* The data block must be in this datagram; memcached would wait for more and send
	 * nothing, so neither do we. */
	if (len - *pos < (size_t)vlen + 2) {
		cx->st.proto_incomplete++;
		mc_out_rewind(o, 0);
		*pos = len;
		return false;
	}
	data = req + *pos;
	*pos += (size_t)vlen + 2;
	/* Before the size check: an oversize set deletes the old item, which a read-only box
	 * must not do either. */
	if (!writes_allowed(cx, o, noreply))
		return true;
	if (mc_store_too_large(cx->sx.s, t[1].len, (uint32_t)vlen)) {
		REPLY(o, noreply, "SERVER_ERROR object too large for cache");
		if (mode == MC_SET) {
			mc_proto_key(cx, &k, t[1].p, t[1].len);
			mc_store_delete(&cx->sx, &k, 0);
		}
		return true;
	}
	if (data[vlen] != '\r' || data[vlen + 1] != '\n') {
		REPLY(o, noreply, "CLIENT_ERROR bad data chunk");
		return true;
	}
	mc_proto_key(cx, &k, t[1].p, t[1].len);
	rc = mc_store_store(&cx->sx, &k,
			    &(struct mc_store_args){.mode = mode,
						    .flags = flags,
						    .exptime = mc_proto_exptime(cx, exptime),
						    .val = data,
						    .vlen = (uint32_t)vlen,
						    .cas_in = cas},
			    NULL);
	s = store_reply(rc, &n);
	reply(o, noreply, s, n);
	return true;
}

static void
cmd_arith(struct mc_proto_ctx *cx, struct mc_tok *t, size_t nt, bool incr, struct mc_out *o)
{
	bool noreply = noreply_of(t, nt);
	struct mc_delta_args a = {.incr = incr};
	struct mc_key k;
	uint64_t v;
	if (t[1].len > KEY_MAX) {
		REPLY(o, noreply, "CLIENT_ERROR bad command line format");
		return;
	}
	if (!mc_strtoull(&t[2], &a.delta)) {
		REPLY(o, noreply, "CLIENT_ERROR invalid numeric delta argument");
		return;
	}
	if (!writes_allowed(cx, o, noreply))
		return;
	mc_proto_key(cx, &k, t[1].p, t[1].len);
	switch (mc_store_delta(&cx->sx, &k, &a, &v, NULL)) {
	case MC_OK:
		if (!noreply) {
			mc_out_u64(o, v);
			MC_OUT_STR(o, "\r\n");
		}
		break;
	case MC_NON_NUMERIC:
		REPLY(o, noreply, "CLIENT_ERROR cannot increment or decrement non-numeric value");
		break;
	case MC_NO_MEMORY:
		REPLY(o, noreply, "SERVER_ERROR out of memory");
		break;
	default:
		REPLY(o, noreply, "NOT_FOUND");
		break;
	}
}

static void
cmd_delete(struct mc_proto_ctx *cx, struct mc_tok *t, size_t nt, struct mc_out *o)
{
	bool noreply = false;
	struct mc_key k;
	if (nt > 3) {
		bool hold_is_zero = TOK_IS(&t[2], "0");
		bool sets_noreply = noreply_of(t, nt);
		bool valid = (nt == 4 && (hold_is_zero || sets_noreply)) ||
			     (nt == 5 && hold_is_zero && sets_noreply);
		noreply = sets_noreply;
		if (!valid) {
			REPLY(o, noreply, "CLIENT_ERROR bad command line format.  "
					  "Usage: delete <key> [noreply]");
			return;
		}
	}
	if (t[1].len > KEY_MAX) {
		REPLY(o, noreply, "CLIENT_ERROR bad command line format");
		return;
	}
	if (!writes_allowed(cx, o, noreply))
		return;
	mc_proto_key(cx, &k, t[1].p, t[1].len);
	if (mc_store_delete(&cx->sx, &k, 0) == MC_DELETED)
		REPLY(o, noreply, "DELETED");
	else
		REPLY(o, noreply, "NOT_FOUND");
}

static void
cmd_touch(struct mc_proto_ctx *cx, struct mc_tok *t, size_t nt, struct mc_out *o)
{
	bool noreply = noreply_of(t, nt);
	struct mc_key k;
	int32_t e;
	if (t[1].len > KEY_MAX) {
		REPLY(o, noreply, "CLIENT_ERROR bad command line format");
		return;
	}
	if (!mc_strtol32(&t[2], &e)) {
		REPLY(o, noreply, "CLIENT_ERROR invalid exptime argument");
		return;
	}
	if (!writes_allowed(cx, o, noreply))
		return;
	mc_proto_key(cx, &k, t[1].p, t[1].len);
	if (mc_store_touch(&cx->sx, &k, mc_proto_exptime(cx, e)) == MC_TOUCHED)
		REPLY(o, noreply, "TOUCHED");
	else
		REPLY(o, noreply, "NOT_FOUND");
}

static void
cmd_flush_all(struct mc_proto_ctx *cx, struct mc_tok *t, size_t nt, struct mc_out *o)
{
	bool noreply = noreply_of(t, nt);
	int32_t e = 0;
	if (!mc_proto_admin_ok(cx)) {
		REPLY(o, noreply, "CLIENT_ERROR flush_all not allowed");
		return;
	}
	if (nt != (noreply ? 3u : 2u) && !mc_strtol32(&t[1], &e)) {
		REPLY(o, noreply, "CLIENT_ERROR invalid exptime argument");
		return;
	}
	/* Read-only empties nothing either. */
	if (!writes_allowed(cx, o, noreply))
		return;
	mc_proto_flush_all(cx, e);
	REPLY(o, noreply, "OK");
}

static void
cmd_verbosity(struct mc_proto_ctx *cx, struct mc_tok *t, size_t nt, struct mc_out *o)
{
	bool noreply = noreply_of(t, nt);
	uint32_t level;
	if (!admin_allowed(cx, o, "verbosity", 9))
		return;
	/* memcached: safe_strtoul into an unsigned int, capped at MAX_VERBOSITY_LEVEL. */
	if (!mc_strtoul32(&t[1], &level)) {
		REPLY(o, noreply, "CLIENT_ERROR bad command line format");
		return;
	}
	((struct mc_proto_conf *)(uintptr_t)cx->conf)->verbosity = level > 2 ? 2 : (int)level;
	REPLY(o, noreply, "OK");
}

static void
cmd_stats(struct mc_proto_ctx *cx, struct mc_tok *t, size_t nt, struct mc_out *o)
{
	size_t mark;
	if (!admin_allowed(cx, o, "stats", 5))
		return;
	mark = mc_out_pos(o);
	if (nt >= 3 && TOK_IS(&t[1], "reset")) {
		/* memcached answers RESET, without END, whatever follows. */
		mc_proto_stats_reset(cx);
		REPLY(o, false, "RESET");
		return;
	}
	if (nt >= 3 && TOK_IS(&t[1], "detail")) {
		/* memcached's per-prefix detail: mcbox collects none, so it is always off; dump
		 * is the empty dump memcached gives with detail off, and on is refused. */
		if (nt >= 4 && TOK_IS(&t[2], "off"))
			REPLY(o, false, "OK");
		else if (nt >= 4 && TOK_IS(&t[2], "dump"))
			REPLY(o, false, "END");
		else if (nt >= 4 && TOK_IS(&t[2], "on"))
			REPLY(o, false, "SERVER_ERROR stats detail not supported");
		else
			REPLY(o, false, "CLIENT_ERROR usage: stats detail on|off|dump");
		return;
	}
	if (nt == 2) {
		mc_proto_stats(cx, o, NULL);
	} else {
		mc_proto_stats(cx, o, &t[1]);
		if (mc_out_pos(o) == mark) {
			REPLY(o, false, "ERROR");
			return;
		}
	}
	MC_OUT_STR(o, "END\r\n");
}

/* mc_proto_lone_write into o: false, having written and counted nothing, when it cannot. */
static bool
lone_get(struct mc_proto_ctx *cx, const struct mc_key *k, bool with_cas, struct mc_out *o)
{
	const size_t pos = mc_out_pos(o);
	struct mc_out_sum vs;
	size_t n, room = o->cap - o->len;
	if (pos >= o->limit)
		return false;
	if (room > o->limit - pos)
		room = o->limit - pos;
	n = mc_proto_lone_write(cx, k, with_cas, o->buf + o->len, room, o->zc_min, &vs, NULL);
	if (n == 0)
		return false;
	if (vs.len != 0) {
		vs.pos += (uint32_t)o->len;
		if (o->nsums < MC_OUT_MAX_SUMS)
			o->sums[o->nsums] = vs;
		if (o->nsums <= MC_OUT_MAX_SUMS)
			o->nsums++;
	}
	o->len += n;
	return true;
}

bool
mc_ascii_hinted(struct mc_proto_ctx *cx, const uint8_t *req, size_t len, struct mc_out *o)
{
	const struct mc_key *h = cx->hint;
	struct mc_tok t[3];
	uint32_t cl;
	/* Exactly "get <key>\r\n" or "gets <key>\r\n" with the hint's view as the key. Its bytes
	 * are all above ' ' (mc_proto_first_key stops at the first that is not), so no space,
	 * NUL or line end a tokenizer would split at. */
	if (h->p == req + 4 && !memcmp(req, "get ", 4))
		cl = 3;
	else if (h->p == req + 5 && !memcmp(req, "gets ", 5))
		cl = 4;
	else
		return false;
	if (h->len == 0 || h->len > KEY_MAX || cl + 1 + h->len + 2 != len || req[len - 2] != '\r' ||
	    req[len - 1] != '\n')
		return false;
	cx->st.cmd_get_fast++;
	if (__builtin_expect(lone_get(cx, h, cl == 4, o), 1))
		return true;
	/* The tokens the general path would find. */
	t[0].p = req;
	t[0].len = cl;
	t[1].p = h->p;
	t[1].len = h->len;
	t[2].p = NULL;
	t[2].len = 0;
	cmd_get(cx, t, 3, cl == 4, false, o);
	return true;
}

/* An ASCII command line, tokenized, with what a storage command reads its data block from. */
struct areq {
	struct mc_tok *t;
	size_t nt;
	const uint8_t *req;
	size_t len;
	size_t *pos;
	struct mc_out *o;
};

/* Each command: false stops the datagram (quit, or a reply that cannot be completed). */
static bool
a_get(struct mc_proto_ctx *cx, struct areq *q)
{
	return cmd_get(cx, q->t, q->nt, false, false, q->o);
}
static bool
a_gets(struct mc_proto_ctx *cx, struct areq *q)
{
	return cmd_get(cx, q->t, q->nt, true, false, q->o);
}
static bool
a_gat(struct mc_proto_ctx *cx, struct areq *q)
{
	return cmd_get(cx, q->t, q->nt, false, true, q->o);
}
static bool
a_gats(struct mc_proto_ctx *cx, struct areq *q)
{
	return cmd_get(cx, q->t, q->nt, true, true, q->o);
}
#define UPDATE(name, mode)                                                                         \
	static bool a_##name(struct mc_proto_ctx *cx, struct areq *q)                              \
	{                                                                                          \
		return cmd_update(cx, q->t, q->nt, mode, q->req, q->len, q->pos, q->o);            \
	}
UPDATE(set, MC_SET)
UPDATE(add, MC_ADD)
UPDATE(replace, MC_REPLACE)
UPDATE(append, MC_APPEND)
UPDATE(prepend, MC_PREPEND)
UPDATE(cas, MC_CAS)
#undef UPDATE
static bool
a_incr(struct mc_proto_ctx *cx, struct areq *q)
{
	cmd_arith(cx, q->t, q->nt, true, q->o);
	return true;
}
static bool
a_decr(struct mc_proto_ctx *cx, struct areq *q)
{
	cmd_arith(cx, q->t, q->nt, false, q->o);
	return true;
}
static bool
a_delete(struct mc_proto_ctx *cx, struct areq *q)
{
	cmd_delete(cx, q->t, q->nt, q->o);
	return true;
}
static bool
a_touch(struct mc_proto_ctx *cx, struct areq *q)
{
	cmd_touch(cx, q->t, q->nt, q->o);
	return true;
}
static bool
a_stats(struct mc_proto_ctx *cx, struct areq *q)
{
	cmd_stats(cx, q->t, q->nt, q->o);
	return true;
}
static bool
a_flush_all(struct mc_proto_ctx *cx, struct areq *q)
{
	cmd_flush_all(cx, q->t, q->nt, q->o);
	return true;
}
static bool
a_verbosity(struct mc_proto_ctx *cx, struct areq *q)
{
	cmd_verbosity(cx, q->t, q->nt, q->o);
	return true;
}

static bool
a_lru_crawler(struct mc_proto_ctx *cx, struct areq *q)
{
	mc_crawler_command(cx, q->t, q->nt, q->o);
	return true;
}

static bool
a_version(struct mc_proto_ctx *cx, struct areq *q)
{
	(void)cx;
	MC_OUT_STR(q->o, "VERSION " MC_VERSION_STRING "\r\n");
	return true;
}

static bool
a_quit(struct mc_proto_ctx *cx, struct areq *q)
{
	/* A stream closes (after the replies so far). */
	if (cx->stream)
		cx->ev = MC_EV_CLOSE;
	/* Over UDP memcached drops the rest of the datagram; replies so far stand. */
	*q->pos = q->len;
	return false;
}

/* memcached's commands: X(name, least tokens, most tokens or 0 for any). Token counts include
 * the terminator, as memcached's tokenizer counts them; a count outside answers ERROR. In the
 * order they are looked up: the common ones first. */
#define ASCII_COMMANDS(X)                                                                          \
	X(get, 3, 0)                                                                               \
	X(gets, 3, 0) X(set, 6, 7) X(delete, 3, 5) X(gat, 3, 0) X(gats, 3, 0) X(add, 6, 7)         \
		X(replace, 6, 7) X(append, 6, 7) X(prepend, 6, 7) X(cas, 7, 8) X(incr, 4, 5)       \
			X(decr, 4, 5) X(touch, 4, 5) X(stats, 2, 0) X(flush_all, 2, 4)             \
				X(version, 2, 0) X(verbosity, 3, 4) X(quit, 2, 0)     \
					X(lru_crawler, 2, 0)

static const struct acmd {
	char name[12];
	uint8_t len, min, max;
	bool (*fn)(struct mc_proto_ctx *cx, struct areq *q);
} acmds[] = {
#define X(n, lo, hi) {#n, sizeof(#n) - 1, lo, hi, a_##n},
	ASCII_COMMANDS(X)
#undef X
};

bool
mc_ascii_command(struct mc_proto_ctx *cx, const uint8_t *req, size_t len, size_t *pos,
		 struct mc_out *o)
{
	struct mc_tok t[MC_MAX_TOKENS + 1];
	struct areq q = {t, 0, req, len, pos, o};
	const uint8_t *line = req + *pos, *nl, *z;
	size_t llen, i;

	nl = memchr(line, '\n', len - *pos);
	if (nl == NULL && cx->stream) {
		/* memcached waits for the rest of the line, but past 2048 bytes without one it
		 * closes the connection unless the line is a (large multi-) get. */
		const uint8_t *p = line, *end = req + len;
		if (len - *pos <= 2048) {
			cx->ev = MC_EV_MORE;
			return false;
		}
		while (p < end && *p == ' ')
			p++;
		if (p - line > 100 || (end - p >= 4 && memcmp(p, "get ", 4) != 0 &&
				       (end - p < 5 || memcmp(p, "gets ", 5) != 0))) {
			cx->st.proto_errors++;
			cx->ev = MC_EV_CLOSE;
			*pos = len;
			return false;
		}
		cx->ev = MC_EV_MORE;
		return false;
	}
	if (nl == NULL) {
		/* A partial line: memcached waits for the rest, which never comes over UDP. */
		cx->st.proto_incomplete++;
		*pos = len;
		return false;
	}
	llen = (size_t)(nl - line);
	*pos += llen + 1;
	if (llen > 1 && line[llen - 1] == '\r')
		llen--;
	z = memchr(line, '\0', llen); /* memcached sees the line as a C string */
	if (z != NULL)
		llen = (size_t)(z - line);
	q.nt = mc_tokenize(line, llen, t, MC_MAX_TOKENS);
	if (q.nt < 2 || t[0].len < 2) {
		REPLY(o, false, "ERROR");
		return true;
	}
	if (t[0].p[0] == 'm' && t[0].len == 2) {
		cx->st.cmd_meta++;
		mc_meta_command(cx, (char)t[0].p[1], t, q.nt, req, len, pos, o);
		return true;
	}
	for (i = 0; i < sizeof(acmds) / sizeof(acmds[0]); i++) {
		const struct acmd *c = &acmds[i];
		if (!tok_is(&t[0], c->name, c->len))
			continue;
		if (q.nt < c->min || (c->max != 0 && q.nt > c->max))
			break;
		return c->fn(cx, &q);
	}
	REPLY(o, false, "ERROR");
	return true;
}
