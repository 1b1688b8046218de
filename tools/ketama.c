/* ketama as libmemcached builds it; see ketama.h. */
#include "ketama.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* libmemcached's (and twemproxy's) defaults: 160 points per server, 4 from each digest. */
#define KETAMA_POINTS 160
#define KETAMA_PER_DIGEST 4
#define KETAMA_DEFAULT_PORT 11211

/* ---- MD5 (RFC 1321) ---- */

static const uint32_t md5_k[64] = {
	0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
	0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
	0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
	0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
	0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
	0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
	0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
	0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391};
static const uint8_t md5_r[64] = {7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22,
				  5, 9,  14, 20, 5, 9,  14, 20, 5, 9,  14, 20, 5, 9,  14, 20,
				  4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23,
				  6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21};

static void
md5_block(uint32_t h[4], const uint8_t *p)
{
	uint32_t w[16], a = h[0], b = h[1], c = h[2], d = h[3];
	for (int i = 0; i < 16; i++)
		w[i] = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 |
		       (uint32_t)p[4 * i + 2] << 16 | (uint32_t)p[4 * i + 3] << 24;
	for (int i = 0; i < 64; i++) {
		uint32_t f, g;
		if (i < 16) { f = (b & c) | (~b & d); g = (uint32_t)i; }
		else if (i < 32) { f = (d & b) | (~d & c); g = (5u * i + 1) % 16; }
		else if (i < 48) { f = b ^ c ^ d; g = (3u * i + 5) % 16; }
		else { f = c ^ (b | ~d); g = (7u * i) % 16; }
		f = f + a + md5_k[i] + w[g];
		a = d;
		d = c;
		c = b;
		b = b + (f << md5_r[i] | f >> (32 - md5_r[i]));
	}
	h[0] += a; h[1] += b; h[2] += c; h[3] += d;
}

/* Whole blocks straight from msg, the tail and padding in a stack buffer: no allocation
 * (mcload hashes every key it sends). */
void
mc_ketama_md5(const void *msg, size_t len, uint8_t out[16])
{
	uint32_t h[4] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476};
	const uint8_t *p = msg;
	uint8_t tail[128];
	size_t off, rest, tlen;
	uint64_t bits = (uint64_t)len * 8;

	for (off = 0; off + 64 <= len; off += 64)
		md5_block(h, p + off);
	rest = len - off;
	tlen = rest + 1 + 8 <= 64 ? 64 : 128;
	memset(tail, 0, sizeof(tail));
	memcpy(tail, p + off, rest);
	tail[rest] = 0x80;
	for (int i = 0; i < 8; i++)
		tail[tlen - 8 + i] = (uint8_t)(bits >> (8 * i));
	for (off = 0; off < tlen; off += 64)
		md5_block(h, tail + off);
	for (int i = 0; i < 4; i++)
		for (int j = 0; j < 4; j++)
			out[4 * i + j] = (uint8_t)(h[i] >> (8 * j));
}

/* ---- the continuum ---- */

/* Little-endian word `which` (0..3) of the digest, as libmemcached's ketama_server_hash. */
static uint32_t
digest_word(const uint8_t d[16], unsigned int which)
{
	const uint8_t *w = d + 4 * which;
	return (uint32_t)w[3] << 24 | (uint32_t)w[2] << 16 | (uint32_t)w[1] << 8 | w[0];
}

static int
point_cmp(const void *a, const void *b)
{
	const struct mc_ketama_point *x = a, *y = b;
	return x->value < y->value ? -1 : x->value > y->value;
}

int
mc_ketama_create(struct mc_ketama *k, const char *const *hosts, const uint16_t *ports,
		 unsigned int n)
{
	unsigned int s, i, j;

	memset(k, 0, sizeof(*k));
	if (n == 0)
		return -1;
	k->points = calloc((size_t)n * KETAMA_POINTS, sizeof(*k->points));
	if (k->points == NULL)
		return -1;
	k->nservers = n;
	for (s = 0; s < n; s++) {
		for (i = 0; i < KETAMA_POINTS / KETAMA_PER_DIGEST; i++) {
			char name[300];
			uint8_t d[16];
			/* libmemcached leaves the default port out of the name, for compatibility
			 * with libketama's "host-i"; twemproxy does the same. */
			int len = ports[s] == KETAMA_DEFAULT_PORT
					  ? snprintf(name, sizeof(name), "%s-%u", hosts[s], i)
					  : snprintf(name, sizeof(name), "%s:%u-%u", hosts[s],
						     (unsigned int)ports[s], i);
			if (len < 0 || (size_t)len >= sizeof(name))
				len = (int)sizeof(name) - 1;
			mc_ketama_md5(name, (size_t)len, d);
			for (j = 0; j < KETAMA_PER_DIGEST; j++) {
				k->points[k->npoints].value = digest_word(d, j);
				k->points[k->npoints].server = s;
				k->npoints++;
			}
		}
	}
	qsort(k->points, k->npoints, sizeof(*k->points), point_cmp);
	return 0;
}

void
mc_ketama_destroy(struct mc_ketama *k)
{
	free(k->points);
	memset(k, 0, sizeof(*k));
}

unsigned int
mc_ketama_server(const struct mc_ketama *k, const void *key, size_t len)
{
	uint8_t d[16];
	uint32_t h;
	unsigned int lo = 0, hi = k->npoints;

	/* libmemcached skips hashing when there is one server. */
	if (k->nservers <= 1)
		return 0;
	mc_ketama_md5(key, len, d);
	h = digest_word(d, 0);
	while (lo < hi) {
		unsigned int mid = lo + (hi - lo) / 2;
		if (k->points[mid].value < h)
			lo = mid + 1;
		else
			hi = mid;
	}
	return k->points[lo == k->npoints ? 0 : lo].server;
}
