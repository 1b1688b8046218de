/* workload: requests built and replies checked for mcload and mcgen (see workload.h). */
#include "workload.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEYTAB_MAX (256ull << 20) /* the key table is kept only below this size */

/* Every value is a window of this: 'a'..'z' over and over; key id's starts at id % 26. */
static uint8_t pattern[MC_WL_MAX_VALUE + 26];

void
mc_wl_defaults(struct mc_wl *wl)
{
	memset(wl, 0, sizeof(*wl));
	wl->keys = 100000;
	wl->zipf = 0.99;
	wl->get_ratio = 0.9;
	wl->mget = 1;
	wl->proto = MC_WL_ASCII;
	wl->key_min = wl->key_max = 16;
	wl->value_min = wl->value_max = 32;
}

/* "N" or "MIN-MAX". */
static int
range(const char *arg, unsigned int *lo, unsigned int *hi)
{
	char *end;
	unsigned long a = strtoul(arg, &end, 10), b = a;
	if (end == arg)
		return -1;
	if (*end == '-') {
		const char *s = end + 1;
		b = strtoul(s, &end, 10);
		if (end == s)
			return -1;
	}
	if (*end != '\0' || b < a || b > 100000)
		return -1;
	*lo = (unsigned int)a;
	*hi = (unsigned int)b;
	return 0;
}

int
mc_wl_option(struct mc_wl *wl, int c, const char *arg)
{
	char *end = NULL;
	switch (c) {
	case 'k': wl->keys = strtoull(arg, &end, 10); break;
	case 'z': wl->zipf = strtod(arg, &end); break;
	case 'g': wl->get_ratio = strtod(arg, &end); break;
	case 'm': wl->mget = (unsigned int)strtoul(arg, &end, 10); break;
	case 'p':
		if (!strcmp(arg, "ascii"))
			wl->proto = MC_WL_ASCII;
		else if (!strcmp(arg, "binary"))
			wl->proto = MC_WL_BINARY;
		else if (!strcmp(arg, "meta"))
			wl->proto = MC_WL_META;
		else
			return -1;
		return 1;
	case 'K': return range(arg, &wl->key_min, &wl->key_max) ? -1 : 1;
	case 'V': return range(arg, &wl->value_min, &wl->value_max) ? -1 : 1;
	default: return 0;
	}
	return end == arg || *end != '\0' ? -1 : 1;
}

const char *
mc_wl_setup(struct mc_wl *wl, bool key_table)
{
	unsigned int i;
	if (wl->keys == 0 || wl->keys > UINT32_MAX)
		return "--keys must be 1..4294967295";
	if (wl->mget == 0 || wl->mget > MC_WL_MAX_MGET)
		return "--mget must be 1..16";
	if (wl->key_min < 8 || wl->key_max > MC_WL_MAX_KEY || wl->key_min > wl->key_max)
		return "--key-size must lie in 8..250";
	if (wl->value_min < 1 || wl->value_max > MC_WL_MAX_VALUE || wl->value_min > wl->value_max)
		return "--value-size must lie in 1..1300 (one datagram)";
	if (wl->get_ratio < 0 || wl->get_ratio > 1 || wl->zipf < 0)
		return "--get-ratio must be 0..1 and --zipf at least 0";
	for (i = 0; i < sizeof(pattern); i++)
		pattern[i] = (uint8_t)('a' + i % 26);
	if (wl->zipf > 0) {
		double sum = 0;
		wl->zipf_cdf = malloc(wl->keys * sizeof(double));
		if (wl->zipf_cdf == NULL)
			return "out of memory for the Zipf table";
		for (uint64_t k = 0; k < wl->keys; k++) {
			sum += 1.0 / pow((double)(k + 1), wl->zipf);
			wl->zipf_cdf[k] = sum;
		}
		for (uint64_t k = 0; k < wl->keys; k++)
			wl->zipf_cdf[k] /= sum;
	}
	if (key_table && wl->keys * (wl->key_max + 1ull) <= KEYTAB_MAX) {
		char k[MC_WL_MAX_KEY + 1];
		wl->keytab = malloc(wl->keys * (wl->key_max + 1));
		wl->keylen = malloc(wl->keys);
		if (wl->keytab == NULL || wl->keylen == NULL)
			return "out of memory for the key table";
		for (uint64_t id = 0; id < wl->keys; id++) {
			size_t n = mc_wl_key_text(wl, k, id);
			memcpy(wl->keytab + id * (wl->key_max + 1), k, n);
			wl->keylen[id] = (uint8_t)n;
		}
	}
	return NULL;
}

void
mc_wl_teardown(struct mc_wl *wl)
{
	free(wl->zipf_cdf);
	free(wl->keytab);
	free(wl->keylen);
	wl->zipf_cdf = NULL;
	wl->keytab = NULL;
	wl->keylen = NULL;
}

const char *
mc_wl_proto_name(enum mc_wl_proto p)
{
	return p == MC_WL_BINARY ? "binary" : p == MC_WL_META ? "meta" : "ascii";
}

uint64_t
mc_wl_pick_key(const struct mc_wl *wl, uint64_t *seed)
{
	double u = mc_wl_unit(seed);
	uint64_t lo = 0, hi = wl->keys - 1;
	if (wl->zipf_cdf == NULL)
		return mc_wl_rnd(seed) % wl->keys;
	while (lo < hi) {
		uint64_t mid = (lo + hi) / 2;
		if (wl->zipf_cdf[mid] < u)
			lo = mid + 1;
		else
			hi = mid;
	}
	return (lo * 0x9e3779b97f4a7c15ull) % wl->keys; /* hot keys are not neighbours */
}

size_t
mc_wl_key_text(const struct mc_wl *wl, char *k, uint64_t id)
{
	int n = snprintf(k, MC_WL_MAX_KEY + 1, "key:%llu", (unsigned long long)id);
	unsigned int want = wl->key_min + (unsigned int)((id * 0x9e3779b97f4a7c15ull >> 40) %
							 (wl->key_max - wl->key_min + 1));
	/* Padded with a letter: with '0', key 9082 and key 90820 would be one key. */
	while ((unsigned int)n < want && n < MC_WL_MAX_KEY)
		k[n++] = 'x';
	return (size_t)n;
}

const char *
mc_wl_key(const struct mc_wl *wl, uint64_t id, char *k, size_t *len)
{
	if (wl->keytab != NULL) {
		*len = wl->keylen[id];
		return wl->keytab + id * (wl->key_max + 1);
	}
	*len = mc_wl_key_text(wl, k, id);
	return k;
}

unsigned int
mc_wl_value_len(const struct mc_wl *wl, uint64_t id)
{
	return wl->value_min + (unsigned int)((id * 0xc2b2ae3d27d4eb4full >> 40) %
					      (wl->value_max - wl->value_min + 1));
}

const uint8_t *
mc_wl_value(uint64_t id)
{
	return pattern + id % 26;
}

/* ---- building requests ---- */

static size_t
put(uint8_t *b, size_t n, const void *s, size_t len)
{
	memcpy(b + n, s, len);
	return n + len;
}

static size_t
put_u(uint8_t *b, size_t n, unsigned int v)
{
	char t[12];
	int i = 0;
	do
		t[i++] = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	while (i > 0)
		b[n++] = (uint8_t)t[--i];
	return n;
}

static void
be16(uint8_t *p, unsigned int v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static size_t
build_binary(const struct mc_wl *wl, uint8_t *b, size_t n, bool get, const struct mc_wl_key *keys,
	     unsigned int nk)
{
	for (unsigned int i = 0; i < nk; i++) {
		const unsigned int vlen = get ? 0 : mc_wl_value_len(wl, keys[i].id);
		const uint32_t bl = (uint32_t)keys[i].len + (get ? 0 : 8 + vlen);
		uint8_t *h = b + n;
		memset(h, 0, 24);
		h[0] = 0x80;
		h[1] = get ? (i + 1 < nk ? 0x0d : 0x0c) : 0x01; /* GETKQ ... GETK; SET */
		be16(h + 2, (unsigned int)keys[i].len);
		h[4] = get ? 0 : 8;
		be16(h + 8, bl >> 16);
		be16(h + 10, bl & 0xffff);
		n += 24;
		if (!get) {
			memset(b + n, 0, 8); /* flags, expiry */
			n += 8;
		}
		n = put(b, n, keys[i].text, keys[i].len);
		if (!get)
			n = put(b, n, mc_wl_value(keys[i].id), vlen);
	}
	return n;
}

size_t
mc_wl_build(const struct mc_wl *wl, uint8_t *b, uint16_t rid, bool get,
	    const struct mc_wl_key *keys, unsigned int nk)
{
	size_t n = MC_WL_UDP_HDR;
	unsigned int i, vlen;
	be16(b, rid);
	be16(b + 2, 0);
	be16(b + 4, 1);
	be16(b + 6, 0);
	if (wl->proto == MC_WL_BINARY)
		return build_binary(wl, b, n, get, keys, nk);
	if (!get) {
		vlen = mc_wl_value_len(wl, keys[0].id);
		n = wl->proto == MC_WL_META ? put(b, n, "ms ", 3) : put(b, n, "set ", 4);
		n = put(b, n, keys[0].text, keys[0].len);
		n = wl->proto == MC_WL_META ? put(b, n, " ", 1) : put(b, n, " 0 0 ", 5);
		n = put_u(b, n, vlen);
		n = wl->proto == MC_WL_META ? put(b, n, " T0\r\n", 5) : put(b, n, "\r\n", 2);
		n = put(b, n, mc_wl_value(keys[0].id), vlen);
		return put(b, n, "\r\n", 2);
	}
	if (wl->proto == MC_WL_META) {
		/* Several keys: quiet (misses say nothing) with the key in each hit, then mn. */
		for (i = 0; i < nk; i++) {
			n = put(b, n, "mg ", 3);
			n = put(b, n, keys[i].text, keys[i].len);
			n = nk > 1 ? put(b, n, " k v q\r\n", 8) : put(b, n, " v\r\n", 4);
		}
		return nk > 1 ? put(b, n, "mn\r\n", 4) : n;
	}
	n = put(b, n, "get", 3);
	for (i = 0; i < nk; i++) {
		n = put(b, n, " ", 1);
		n = put(b, n, keys[i].text, keys[i].len);
	}
	return put(b, n, "\r\n", 2);
}

/* ---- classifying replayed requests ---- */

static unsigned int
rd16(const uint8_t *p)
{
	return (unsigned int)p[0] << 8 | p[1];
}

static uint32_t
rd32(const uint8_t *p)
{
	return (uint32_t)rd16(p) << 16 | rd16(p + 2);
}

static bool
starts(const uint8_t *p, size_t n, const char *s)
{
	size_t l = strlen(s);
	return n >= l && !memcmp(p, s, l);
}

static int
classify_binary(const uint8_t *p, size_t len, struct mc_wl_req *r)
{
	size_t pos = 0;
	while (pos + 24 <= len && p[pos] == 0x80) {
		uint8_t op = p[pos + 1];
		bool get = op == 0x00 || op == 0x09 || op == 0x0c || op == 0x0d;
		if (!get && op != 0x01)
			return -1;
		if (r->nk > 0 && get != r->get)
			return -1;
		r->get = get;
		r->nk++;
		pos += 24 + rd32(p + pos + 8);
	}
	return pos == len && r->nk > 0 && (r->get || r->nk == 1) ? 0 : -1;
}

int
mc_wl_classify(const uint8_t *p, size_t len, struct mc_wl_req *r)
{
	size_t i;
	memset(r, 0, sizeof(*r));
	if (len > 0 && p[0] == 0x80) {
		r->proto = MC_WL_BINARY;
		return classify_binary(p, len, r);
	}
	if (starts(p, len, "get ") || starts(p, len, "gets ")) {
		r->proto = MC_WL_ASCII;
		r->get = true;
		for (i = 3; i < len && p[i] != '\r'; i++)
			if (p[i] == ' ' && i + 1 < len && p[i + 1] != ' ' && p[i + 1] != '\r')
				r->nk++;
		return r->nk ? 0 : -1;
	}
	if (starts(p, len, "set ") || starts(p, len, "ms ")) {
		r->proto = p[0] == 's' ? MC_WL_ASCII : MC_WL_META;
		r->nk = 1;
		return 0;
	}
	if (starts(p, len, "mg ")) {
		r->proto = MC_WL_META;
		r->get = true;
		for (i = 0; i + 3 <= len; i++)
			if ((i == 0 || p[i - 1] == '\n') && starts(p + i, len - i, "mg "))
				r->nk++;
		for (i = 0; i + 4 <= len; i++)
			if ((i == 0 || p[i - 1] == '\n') && starts(p + i, len - i, "mn\r\n"))
				r->mn = true;
		return 0;
	}
	return -1;
}

/* ---- checking replies ---- */

#define MAX_LINE 400

/* The line at p[0..n): its length without "\r\n", -1 when incomplete, -2 when too long. */
static long
line(const uint8_t *p, size_t n)
{
	const uint8_t *nl = memchr(p, '\n', n < MAX_LINE ? n : MAX_LINE);
	if (nl == NULL)
		return n < MAX_LINE ? -1 : -2;
	if (nl == p || nl[-1] != '\r')
		return -2;
	return nl - p - 1;
}

static bool
digits(const uint8_t *p, size_t n, size_t *pos, uint64_t *v)
{
	size_t start = *pos;
	*v = 0;
	while (*pos < n && p[*pos] >= '0' && p[*pos] <= '9' && *pos - start < 19)
		*v = *v * 10 + (uint64_t)(p[(*pos)++] - '0');
	return *pos > start;
}

static enum mc_wl_verdict
bad(struct mc_wl_result *res, const char *why)
{
	res->why = why;
	return MC_WL_BAD;
}

/* A hit of key k (klen bytes, NULL when the reply does not name it) with a value of vlen bytes
 * at v: is it the value of one of the request's keys? */
static enum mc_wl_verdict
check_hit(const struct mc_wl *wl, const struct mc_wl_req *r, const uint8_t *k, size_t klen,
	  const uint8_t *v, size_t vlen, struct mc_wl_result *res)
{
	if (++res->hits > r->nk)
		return bad(res, "more values than keys asked for");
	if (!r->known)
		return MC_WL_DONE;
	for (unsigned int i = 0; i < r->nk; i++) {
		char buf[MC_WL_MAX_KEY + 1];
		size_t len;
		const char *t = mc_wl_key(wl, r->ids[i], buf, &len);
		if (k != NULL && (len != klen || memcmp(t, k, len) != 0))
			continue;
		if (vlen != mc_wl_value_len(wl, r->ids[i]))
			return bad(res, "wrong value length");
		if (memcmp(v, mc_wl_value(r->ids[i]), vlen) != 0)
			return bad(res, "wrong value bytes");
		return MC_WL_DONE;
	}
	return bad(res, "a value for a key not asked for");
}

/* Anything that is an error line. */
static enum mc_wl_verdict
other_line(const uint8_t *p, size_t n, struct mc_wl_result *res)
{
	if (starts(p, n, "SERVER_ERROR") || starts(p, n, "CLIENT_ERROR") || starts(p, n, "ERROR"))
		return bad(res, "an error reply");
	return bad(res, "a reply of the wrong shape");
}

/* A reply that must be exactly s (a set's), or its beginning. */
static enum mc_wl_verdict
exact(const uint8_t *p, size_t n, const char *s, struct mc_wl_result *res)
{
	size_t l = strlen(s);
	if (n <= l && !memcmp(p, s, n))
		return n == l ? MC_WL_DONE : MC_WL_MORE;
	if (n > l && !memcmp(p, s, l))
		return bad(res, "bytes after the reply");
	if (starts(p, n, "SERVER_ERROR") || starts(p, n, "CLIENT_ERROR") || starts(p, n, "ERROR"))
		return bad(res, "an error reply");
	return bad(res, "set not stored");
}

/* "VALUE <key> <flags> <bytes> [<cas>]" (l bytes at p): the key and the value's length. */
static bool
ascii_value_line(const uint8_t *p, size_t l, size_t *kstart, size_t *klen, uint64_t *vlen)
{
	size_t q = 6;
	uint64_t x;
	*kstart = q;
	while (q < l && p[q] != ' ')
		q++;
	*klen = q - *kstart;
	if (*klen == 0 || q >= l || p[q++] != ' ' || !digits(p, l, &q, &x))
		return false;
	if (q >= l || p[q++] != ' ' || !digits(p, l, &q, vlen))
		return false;
	if (q < l && (p[q++] != ' ' || !digits(p, l, &q, &x))) /* gets: the cas unique */
		return false;
	return q == l;
}

static enum mc_wl_verdict
check_ascii_get(const struct mc_wl *wl, const struct mc_wl_req *r, const uint8_t *p, size_t n,
		struct mc_wl_result *res)
{
	size_t pos = 0;
	for (;;) {
		long l = line(p + pos, n - pos);
		size_t kstart, klen;
		uint64_t v;
		enum mc_wl_verdict ok;
		if (l == -1)
			return MC_WL_MORE;
		if (l == -2)
			return bad(res, "a reply of the wrong shape");
		if (l == 3 && !memcmp(p + pos, "END", 3)) {
			if (pos + 5 != n)
				return bad(res, "bytes after END");
			res->misses = r->nk - res->hits;
			return MC_WL_DONE;
		}
		if (!starts(p + pos, (size_t)l, "VALUE "))
			return other_line(p + pos, n - pos, res);
		if (!ascii_value_line(p + pos, (size_t)l, &kstart, &klen, &v))
			return bad(res, "a malformed VALUE line");
		kstart += pos;
		pos += (size_t)l + 2;
		if (n - pos < v + 2)
			return MC_WL_MORE;
		if (p[pos + v] != '\r' || p[pos + v + 1] != '\n')
			return bad(res, "a value not ending in \\r\\n where its length says");
		ok = check_hit(wl, r, p + kstart, klen, p + pos, v, res);
		if (ok != MC_WL_DONE)
			return ok;
		pos += v + 2;
	}
}

/* "VA <len> [flags]": the length and the key of a k flag (NULL without one). */
static bool
meta_va(const uint8_t *p, size_t l, uint64_t *vlen, const uint8_t **key, size_t *klen)
{
	size_t q = 3;
	*key = NULL;
	*klen = 0;
	if (!digits(p, l, &q, vlen))
		return false;
	while (q < l) {
		size_t t;
		if (p[q] != ' ')
			return false;
		t = ++q;
		while (q < l && p[q] != ' ')
			q++;
		if (q > t && p[t] == 'k') {
			*key = p + t + 1;
			*klen = q - t - 1;
		}
	}
	return true;
}

static enum mc_wl_verdict
check_meta_get(const struct mc_wl *wl, const struct mc_wl_req *r, const uint8_t *p, size_t n,
	       struct mc_wl_result *res)
{
	const bool piped = r->nk > 1 || r->mn;
	size_t pos = 0;
	for (;;) {
		long l = line(p + pos, n - pos);
		uint64_t vlen;
		const uint8_t *key;
		size_t klen;
		enum mc_wl_verdict ok;
		if (l == -1)
			return MC_WL_MORE;
		if (l == -2)
			return bad(res, "a reply of the wrong shape");
		if (l == 2 && !memcmp(p + pos, piped ? "MN" : "EN", 2)) {
			if (pos + 4 != n)
				return bad(res, piped ? "bytes after MN" : "bytes after EN");
			res->misses = r->nk - res->hits;
			return MC_WL_DONE;
		}
		if (!starts(p + pos, (size_t)l, "VA ") || !meta_va(p + pos, (size_t)l, &vlen, &key, &klen))
			return other_line(p + pos, n - pos, res);
		if (piped && key == NULL && r->nk > 1)
			return bad(res, "a quiet hit without its key");
		pos += (size_t)l + 2;
		if (n - pos < vlen + 2)
			return MC_WL_MORE;
		if (p[pos + vlen] != '\r' || p[pos + vlen + 1] != '\n')
			return bad(res, "a value not ending in \\r\\n where its length says");
		ok = check_hit(wl, r, key, klen, p + pos, vlen, res);
		if (ok != MC_WL_DONE)
			return ok;
		pos += vlen + 2;
		if (!piped) {
			if (pos != n)
				return bad(res, "bytes after the value");
			return MC_WL_DONE;
		}
	}
}

static enum mc_wl_verdict
check_binary(const struct mc_wl *wl, const struct mc_wl_req *r, const uint8_t *p, size_t n,
	     struct mc_wl_result *res)
{
	size_t pos = 0;
	for (;;) {
		const uint8_t *h = p + pos;
		unsigned int op, klen, elen, status;
		uint32_t blen;
		enum mc_wl_verdict ok;
		if (n - pos < 24)
			return MC_WL_MORE;
		op = h[1];
		klen = rd16(h + 2);
		elen = h[4];
		status = rd16(h + 6);
		blen = rd32(h + 8);
		if (h[0] != 0x81 || (size_t)klen + elen > blen)
			return bad(res, "a malformed binary response");
		if (n - pos - 24 < blen)
			return MC_WL_MORE;
		pos += 24 + blen;
		if (!r->get) {
			if (op != 0x01 || status != 0)
				return bad(res, op == 0x01 ? "set not stored" : "a reply of the wrong shape");
			return pos == n ? MC_WL_DONE : bad(res, "bytes after the reply");
		}
		if (op != 0x00 && op != 0x09 && op != 0x0c && op != 0x0d)
			return bad(res, "a reply of the wrong shape");
		if (status == 0) {
			ok = check_hit(wl, r, (op == 0x0c || op == 0x0d) ? h + 24 + elen : NULL, klen,
				       h + 24 + elen + klen, blen - elen - klen, res);
			if (ok != MC_WL_DONE)
				return ok;
		} else if (status == 1 && (op == 0x00 || op == 0x0c)) {
			res->misses++;
		} else {
			return bad(res, "an error status");
		}
		if (op == 0x00 || op == 0x0c) { /* the last, loud one */
			if (pos != n)
				return bad(res, "bytes after the reply");
			res->misses = r->nk - res->hits;
			return MC_WL_DONE;
		}
	}
}

enum mc_wl_verdict
mc_wl_check(const struct mc_wl *wl, const struct mc_wl_req *r, const uint8_t *p, size_t n,
	    struct mc_wl_result *res)
{
	res->hits = res->misses = 0;
	res->why = NULL;
	if (r->proto == MC_WL_BINARY)
		return check_binary(wl, r, p, n, res);
	if (!r->get)
		return exact(p, n, r->proto == MC_WL_META ? "HD\r\n" : "STORED\r\n", res);
	if (r->proto == MC_WL_META)
		return check_meta_get(wl, r, p, n, res);
	return check_ascii_get(wl, r, p, n, res);
}

/* ---- latency histogram ---- */

uint64_t
mc_hist_value(unsigned int b)
{
	unsigned int lg;
	if (b < 16)
		return b;
	lg = b / 16 + 3;
	return (1ull << lg) | ((uint64_t)(b % 16) << (lg - 4));
}

uint64_t
mc_hist_percentile(const struct mc_hist *h, double q)
{
	uint64_t want = (uint64_t)ceil(q * (double)h->n), acc = 0;
	for (unsigned int b = 0; b < MC_HIST_BUCKETS; b++) {
		acc += h->b[b];
		if (acc >= want && h->n)
			return mc_hist_value(b);
	}
	return 0;
}

void
mc_hist_merge(struct mc_hist *into, const struct mc_hist *h)
{
	for (unsigned int b = 0; b < MC_HIST_BUCKETS; b++)
		into->b[b] += h->b[b];
	into->n += h->n;
}
