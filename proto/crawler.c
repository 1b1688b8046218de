/* memcached's lru_crawler command and its metadump, over the store's lock-free walk.
 *
 * memcached hands a metadump connection to its crawler thread, which walks each class's LRU
 * under the LRU locks and writes to the socket itself; one crawl at a time (BUSY otherwise).
 * mcbox has no LRU lists to walk: the dump walks the index a few buckets at a time, without a
 * lock (mc_store_walk), as part of the connection's own work in mc_proto_stream, so any number
 * of connections may dump at once and none holds up a writer or the UDP fast path. Over UDP
 * (no dump state: cx->dump is NULL) it is refused, as its reply has no bound. */
#include "proto_int.h"

#include <string.h>

#define DUMP_CHUNK 16 /* items walked between checks of the reply's size */

static void
out_line(struct mc_out *o, const char *s)
{
	mc_out_put(o, s, strlen(s));
	MC_OUT_STR(o, "\r\n");
}

/* memcached's crawler_metadump_eval line: "key=<uriencoded> exp=<abs or -1> la=<abs>
 * cas=<n> fetch=<yes|no> cls=<id> size=<ITEM_ntotal>\n" (LF only; END ends with CRLF). mcbox
 * keeps no last-access time, so la is now. */
static void
dump_line(struct mc_out *o, const struct mc_store_meta *m, int64_t started, uint32_t now)
{
	static const char hex[] = "0123456789ABCDEF";
	uint8_t *d = mc_out_room(o, 4 + 3 * (size_t)m->klen);
	uint32_t i;
	if (d == NULL)
		return;
	memcpy(d, "key=", 4);
	d += 4;
	for (i = 0; i < m->klen; i++) {
		const uint8_t c = m->key[i];
		/* util.c's uriencode: alphanumerics and "-._~" stay, the rest is %XX. */
		if ((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    c == '-' || c == '.' || c == '_' || c == '~') {
			*d++ = c;
		} else {
			*d++ = '%';
			*d++ = (uint8_t)hex[c >> 4];
			*d++ = (uint8_t)hex[c & 15];
		}
	}
	o->len = (size_t)(d - o->buf);
	MC_OUT_STR(o, " exp=");
	if (m->exptime == 0)
		MC_OUT_STR(o, "-1");
	else
		mc_out_i64(o, (int64_t)m->exptime + started);
	MC_OUT_STR(o, " la=");
	mc_out_i64(o, (int64_t)now + started);
	MC_OUT_STR(o, " cas=");
	mc_out_u64(o, m->cas);
	if (m->fetched)
		MC_OUT_STR(o, " fetch=yes cls=");
	else
		MC_OUT_STR(o, " fetch=no cls=");
	mc_out_u64(o, (uint64_t)m->cls + 1);
	MC_OUT_STR(o, " size=");
	mc_out_u64(o, mc_proto_item_ntotal(m->klen, m->vlen, m->flags));
	MC_OUT_STR(o, "\n");
}

void
mc_crawler_dump_more(struct mc_proto_ctx *cx, struct mc_out *o, size_t soft)
{
	struct mc_dump *d = cx->dump;
	const struct mc_store *s = cx->sx.s;
	struct mc_store_meta m[DUMP_CHUNK];
	while (d->active && mc_out_pos(o) < soft) {
		const uint64_t cursor = d->cursor;
		const size_t mark = mc_out_pos(o);
		const int64_t started = mc_store_started(s);
		const uint32_t now = mc_store_now(s);
		unsigned int n = mc_store_walk(s, &d->cursor, m, DUMP_CHUNK), i;
		for (i = 0; i < n; i++) {
			const unsigned int id = m[i].cls + 1u;
			if (d->all || (id < 64 && (d->classes >> id & 1)))
				dump_line(o, &m[i], started, now);
		}
		if (d->cursor == MC_STORE_WALK_DONE)
			MC_OUT_STR(o, "END\r\n");
		if (o->full) {
			/* Out of room: this chunk again once what is there has gone (o->full
			 * stays set, so the caller sends it first). */
			mc_out_rewind(o, mark);
			d->cursor = cursor;
			return;
		}
		if (d->cursor == MC_STORE_WALK_DONE)
			d->active = false;
	}
}

/* memcached's lru_crawler_crawl argument: "all", "hash" (the hash table's order; here the
 * same walk) or class ids split at commas (strtok: empty pieces are skipped), each
 * safe_strtoul and 1..63. Returns false for BADCLASS. */
static bool
parse_classes(const struct mc_tok *t, bool *all, uint64_t *classes)
{
	size_t i = 0;
	*all = false;
	*classes = 0;
	if (TOK_IS(t, "all") || TOK_IS(t, "hash")) {
		*all = true;
		return true;
	}
	while (i < t->len) {
		size_t e = i;
		uint32_t id;
		while (e < t->len && t->p[e] != ',')
			e++;
		if (e > i) {
			struct mc_tok piece = {t->p + i, (uint32_t)(e - i)};
			if (!mc_strtoul32(&piece, &id) || id < 1 || id >= 64)
				return false;
			*classes |= 1ull << id;
		}
		i = e + 1;
	}
	return true;
}

/* "lru_crawler crawl|metadump <classes>", as process_lru_crawler_command answers them. */
static void
crawl_or_dump(struct mc_proto_ctx *cx, const struct mc_tok *t, bool dump, struct mc_out *o)
{
	bool all;
	uint64_t classes;
	if (cx->conf->crawler_off) {
		out_line(o, "CLIENT_ERROR lru crawler disabled");
		return;
	}
	if (dump && cx->dump == NULL) {
		cx->st.admin_refused++;
		out_line(o, "CLIENT_ERROR metadump not allowed over UDP");
		return;
	}
	if (!parse_classes(&t[2], &all, &classes)) {
		out_line(o, "BADCLASS invalid class id");
		return;
	}
	if (!all && classes == 0) {
		out_line(o, "NOTSTARTED no items to crawl");
		return;
	}
	if (!dump) {
		/* The sweeper reclaims expired items all the time: nothing to start. */
		out_line(o, "OK");
		return;
	}
	*cx->dump = (struct mc_dump){.active = true, .all = all, .classes = classes};
}

void
mc_crawler_command(struct mc_proto_ctx *cx, const struct mc_tok *t, size_t nt, struct mc_out *o)
{
	struct mc_proto_conf *conf = (struct mc_proto_conf *)(uintptr_t)cx->conf;
	uint32_t v;
	if (!mc_proto_admin_ok(cx)) {
		out_line(o, "CLIENT_ERROR lru_crawler not allowed");
		return;
	}
	if (nt == 4 && TOK_IS(&t[1], "crawl")) {
		crawl_or_dump(cx, t, false, o);
	} else if (nt == 4 && TOK_IS(&t[1], "metadump")) {
		crawl_or_dump(cx, t, true, o);
	} else if (nt == 4 && (TOK_IS(&t[1], "tocrawl") || TOK_IS(&t[1], "sleep"))) {
		/* memcached's crawler pacing; mcbox's walk is paced by the reply's size. */
		if (!mc_strtoul32(&t[2], &v))
			out_line(o, "CLIENT_ERROR bad command line format");
		else if (t[1].p[0] == 's' && v > 1000000)
			out_line(o, "CLIENT_ERROR sleep must be one second or less");
		else
			out_line(o, "OK");
	} else if (nt == 3 && TOK_IS(&t[1], "enable")) {
		if (!conf->crawler_off) {
			out_line(o, "ERROR failed to start lru crawler thread");
			return;
		}
		conf->crawler_off = false;
		out_line(o, "OK");
	} else if (nt == 3 && TOK_IS(&t[1], "disable")) {
		conf->crawler_off = true;
		out_line(o, "OK");
	} else {
		out_line(o, "ERROR");
	}
}
