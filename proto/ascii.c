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
	if (cx->conf->udp_admin)
		return true;
	cx->st.admin_refused++;
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
	memcpy(d, key->p, key->len);
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

/* One hit of get/gets/gat/gats: VALUE line and data block, copied under the bucket's version.
 * Returns 1 on a hit, 0 on a miss, -1 when the reply is full. */
static int
emit_value(struct mc_proto_ctx *cx, struct mc_out *o, const struct mc_tok *key,
	   const struct mc_key *k, bool with_cas)
{
	struct mc_store_read r;
	cx->sx.st.cmd_get++;
	for (;;) {
		size_t mark = mc_out_pos(o);
		bool ok;
		if (mc_store_read_begin(&cx->sx, k, &r) != MC_OK) {
			cx->sx.st.get_misses++;
			return 0;
		}
		ok = put_value_line(o, key, &r, with_cas);
		if (!mc_store_read_check(&r)) {
			mc_out_rewind(o, mark);
			continue;
		}
		if (ok) {
			int v = mc_out_value(o, &r);
			if (v == 0) {
				mc_out_rewind(o, mark);
				cx->sx.st.read_retries++;
				continue;
			}
			ok = v > 0 && MC_OUT_STR(o, "\r\n");
		}
		if (!ok) {
			mc_out_rewind(o, mark);
			return -1;
		}
		mc_store_read_touch(&r);
		cx->sx.st.get_hits++;
		return 1;
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
	if (!cx->conf->udp_admin) {
		cx->st.admin_refused++;
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

/* Does req[0..len) hold exactly "get <key>\r\n" or "gets <key>\r\n" with the hinted key,
 * a key of only bytes above ' ' (so no space, NUL or newline a tokenizer would split at)?
 * Then fill t as mc_tokenize would: command, key, terminator. */
static inline bool
hinted_get(const struct mc_proto_ctx *cx, const uint8_t *req, size_t len, struct mc_tok *t)
{
	const uint8_t *k = cx->hint_key;
	const uint32_t kl = cx->hint_len;
	uint32_t cl, i;
	if (k == req + 4 && !memcmp(req, "get ", 4))
		cl = 3;
	else if (k == req + 5 && !memcmp(req, "gets ", 5))
		cl = 4;
	else
		return false;
	if (kl == 0 || kl > KEY_MAX || cl + 1 + kl + 2 != len || req[len - 2] != '\r' ||
	    req[len - 1] != '\n')
		return false;
	for (i = 0; i + 8 <= kl; i += 8) {
		uint64_t v;
		memcpy(&v, k + i, 8);
		if ((v - 0x2121212121212121ull) & ~v & 0x8080808080808080ull)
			return false;
	}
	for (; i < kl; i++)
		if (k[i] <= ' ')
			return false;
	t[0].p = req;
	t[0].len = cl;
	t[1].p = k;
	t[1].len = kl;
	t[2].p = NULL;
	t[2].len = 0;
	return true;
}

#define WANT(cond)                                                                             \
	do {                                                                                   \
		if (!(cond)) {                                                                 \
			REPLY(o, false, "ERROR");                                              \
			return true;                                                           \
		}                                                                              \
	} while (0)

bool
mc_ascii_command(struct mc_proto_ctx *cx, const uint8_t *req, size_t len, size_t *pos,
		 struct mc_out *o)
{
	struct mc_tok t[MC_MAX_TOKENS + 1];
	const uint8_t *line = req + *pos, *nl, *z;
	size_t llen, nt;
	uint8_t c0;

	if (*pos == 0 && cx->hint_key != NULL && hinted_get(cx, req, len, t)) {
		/* The datagram is one get/gets of the key the transport hashed: the tokens the
		 * general path below would find, without looking for them. */
		*pos = len;
		cx->st.cmd_get_fast++;
		return cmd_get(cx, t, 3, t[0].len == 4, false, o);
	}
	nl = memchr(line, '\n', len - *pos);
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
	nt = mc_tokenize(line, llen, t, MC_MAX_TOKENS);
	if (nt < 2 || t[0].len < 2) {
		REPLY(o, false, "ERROR");
		return true;
	}
	c0 = t[0].p[0];
	if (c0 == 'm' && t[0].len == 2) {
		cx->st.cmd_meta++;
		mc_meta_command(cx, (char)t[0].p[1], t, nt, req, len, pos, o);
		return true;
	}
	if (c0 == 'g') {
		WANT(nt >= 3);
		if (TOK_IS(&t[0], "get"))
			return cmd_get(cx, t, nt, false, false, o);
		if (TOK_IS(&t[0], "gets"))
			return cmd_get(cx, t, nt, true, false, o);
		if (TOK_IS(&t[0], "gat"))
			return cmd_get(cx, t, nt, false, true, o);
		if (TOK_IS(&t[0], "gats"))
			return cmd_get(cx, t, nt, true, true, o);
		WANT(0);
	}
	if (TOK_IS(&t[0], "set")) {
		WANT(nt == 6 || nt == 7);
		return cmd_update(cx, t, nt, MC_SET, req, len, pos, o);
	}
	if (TOK_IS(&t[0], "add")) {
		WANT(nt == 6 || nt == 7);
		return cmd_update(cx, t, nt, MC_ADD, req, len, pos, o);
	}
	if (TOK_IS(&t[0], "append")) {
		WANT(nt == 6 || nt == 7);
		return cmd_update(cx, t, nt, MC_APPEND, req, len, pos, o);
	}
	if (TOK_IS(&t[0], "prepend")) {
		WANT(nt == 6 || nt == 7);
		return cmd_update(cx, t, nt, MC_PREPEND, req, len, pos, o);
	}
	if (TOK_IS(&t[0], "replace")) {
		WANT(nt == 6 || nt == 7);
		return cmd_update(cx, t, nt, MC_REPLACE, req, len, pos, o);
	}
	if (TOK_IS(&t[0], "cas")) {
		WANT(nt == 7 || nt == 8);
		return cmd_update(cx, t, nt, MC_CAS, req, len, pos, o);
	}
	if (TOK_IS(&t[0], "incr") || TOK_IS(&t[0], "decr")) {
		WANT(nt == 4 || nt == 5);
		cmd_arith(cx, t, nt, t[0].p[0] == 'i', o);
		return true;
	}
	if (TOK_IS(&t[0], "delete")) {
		WANT(nt >= 3 && nt <= 5);
		cmd_delete(cx, t, nt, o);
		return true;
	}
	if (TOK_IS(&t[0], "touch")) {
		WANT(nt == 4 || nt == 5);
		cmd_touch(cx, t, nt, o);
		return true;
	}
	if (TOK_IS(&t[0], "stats")) {
		cmd_stats(cx, t, nt, o);
		return true;
	}
	if (TOK_IS(&t[0], "flush_all")) {
		WANT(nt >= 2 && nt <= 4);
		cmd_flush_all(cx, t, nt, o);
		return true;
	}
	if (TOK_IS(&t[0], "version")) {
		MC_OUT_STR(o, "VERSION " MC_VERSION_STRING "\r\n");
		return true;
	}
	if (TOK_IS(&t[0], "verbosity")) {
		WANT(nt == 3 || nt == 4);
		cmd_verbosity(cx, t, nt, o);
		return true;
	}
	if (TOK_IS(&t[0], "quit")) {
		/* Over UDP memcached drops the rest of the datagram; replies so far stand. */
		*pos = len;
		return false;
	}
	REPLY(o, false, "ERROR");
	return true;
}
