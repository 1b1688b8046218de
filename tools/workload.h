/* workload: what a memcached load generator asks and what it should hear back. Shared by mcload
 * (sockets) and mcgen (DPDK): the workload options, key choice (uniform or Zipf), key and
 * value sizes, the get/set mix, request building in ASCII, meta and binary with memcached's
 * 8-byte UDP frame header, the check of a reply stream against its request, and the latency
 * histogram. No DPDK, no sockets.
 *
 * A key's text, its value's length and its value's bytes are all functions of the key number,
 * so every client agrees on them and a get that hits can be checked byte for byte. */
#ifndef MC_WORKLOAD_H
#define MC_WORKLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MC_WL_MAX_MGET 16
#define MC_WL_MAX_KEY 250
#define MC_WL_MAX_VALUE 1300   /* one datagram with its VALUE line */
#define MC_WL_UDP_HDR 8
#define MC_WL_DGRAM_PAYLOAD 1392 /* memcached's 1400-byte datagrams less the frame header */
#define MC_WL_REQ_MAX 4608       /* room for any request this module builds, header included */

enum mc_wl_proto { MC_WL_ASCII, MC_WL_BINARY, MC_WL_META };

struct mc_wl {
	uint64_t keys;
	double zipf;      /* Zipf exponent; 0 = uniform */
	double get_ratio; /* share of gets */
	unsigned int mget; /* keys per get, 1..MC_WL_MAX_MGET */
	enum mc_wl_proto proto;
	unsigned int key_min, key_max;     /* key length uniform over keys in [min, max] */
	unsigned int value_min, value_max; /* value length uniform over keys in [min, max] */
	/* Set by mc_wl_setup. */
	double *zipf_cdf;
	char *keytab;      /* key texts, stride key_max + 1; NULL when too large to keep */
	uint8_t *keylen;
};

/* The workload options both tools take (getopt letters and long names). */
#define MC_WL_OPTSTRING "k:z:g:m:p:K:V:"
#define MC_WL_LONGOPTS                                                                         \
	{"keys", 1, NULL, 'k'}, {"zipf", 1, NULL, 'z'}, {"get-ratio", 1, NULL, 'g'},             \
		{"mget", 1, NULL, 'm'}, {"proto", 1, NULL, 'p'}, {"key-size", 1, NULL, 'K'},     \
		{"value-size", 1, NULL, 'V'}
#define MC_WL_USAGE                                                                            \
	"  [-k keys] [-z zipf_s (0 = uniform)] [-g get_ratio] [-m keys_per_get]\n"               \
	"  [-p ascii|binary|meta] [--key-size N|MIN-MAX] [--value-size N|MIN-MAX]\n"

void mc_wl_defaults(struct mc_wl *wl);
/* Apply option c (one of MC_WL_OPTSTRING's letters): 1 when taken, 0 when c is not a workload
 * option, -1 when its value is bad. */
int mc_wl_option(struct mc_wl *wl, int c, const char *arg);
/* Check the ranges and build the Zipf table (and, with key_table, every key's text).
 * Returns NULL or what is wrong. */
const char *mc_wl_setup(struct mc_wl *wl, bool key_table);
void mc_wl_teardown(struct mc_wl *wl);
const char *mc_wl_proto_name(enum mc_wl_proto p);

/* xorshift64; the state must not be 0. */
static inline uint64_t
mc_wl_rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static inline double
mc_wl_unit(uint64_t *s)
{
	return (double)(mc_wl_rnd(s) >> 11) / (double)(1ull << 53);
}

uint64_t mc_wl_pick_key(const struct mc_wl *wl, uint64_t *seed);
/* A key's text: "key:<n>" padded with 'x' to its length. Writes to k (MC_WL_MAX_KEY + 1 bytes)
 * and returns the length. */
size_t mc_wl_key_text(const struct mc_wl *wl, char *k, uint64_t id);
/* The same, from the table when there is one (k is then not written). */
const char *mc_wl_key(const struct mc_wl *wl, uint64_t id, char *k, size_t *len);
unsigned int mc_wl_value_len(const struct mc_wl *wl, uint64_t id);
/* The first byte of key id's value (its length is mc_wl_value_len). */
const uint8_t *mc_wl_value(uint64_t id);

/* One request's keys. */
struct mc_wl_key {
	const char *text;
	size_t len;
	uint64_t id;
};

/* Write the frame header (request id rid, seq 0, total 1) and one request to b
 * (MC_WL_REQ_MAX bytes): a get of nk keys (ASCII "get k1 k2", meta "mg k v" or with several
 * keys "mg k k v q" ... "mn", binary GETKQ ... GETK) or a set of keys[0] (nk = 1).
 * Returns the datagram's length. */
size_t mc_wl_build(const struct mc_wl *wl, uint8_t *b, uint16_t rid, bool get,
		   const struct mc_wl_key *keys, unsigned int nk);

/* What a request was, for checking its reply. ids are known for generated requests; a
 * replayed one (from a pcap) is checked for shape only. */
struct mc_wl_req {
	enum mc_wl_proto proto;
	bool get;
	bool known; /* ids[] and keys follow the workload */
	bool mn;    /* a meta pipeline closed by mn (ends at MN) */
	uint8_t nk;
	uint32_t ids[MC_WL_MAX_MGET];
};

/* Classify a request payload (after the frame header) as mcgen replays it: protocol, get or
 * set, keys. Returns 0, or -1 when it is none of the requests mc_wl_build or mkpcap.py write. */
int mc_wl_classify(const uint8_t *p, size_t len, struct mc_wl_req *r);

enum mc_wl_verdict { MC_WL_DONE = 0, MC_WL_MORE = 1, MC_WL_BAD = -1 };

struct mc_wl_result {
	unsigned int hits, misses;
	const char *why; /* when MC_WL_BAD */
};

/* Check a reply stream (frame headers removed, datagrams joined) against its request:
 * DONE when it is the whole right answer, MORE when it is a right answer's beginning, BAD
 * when it cannot be (wrong shape, wrong key, wrong value length or bytes, a set not stored,
 * an error line). */
enum mc_wl_verdict mc_wl_check(const struct mc_wl *wl, const struct mc_wl_req *r, const uint8_t *p,
			       size_t n, struct mc_wl_result *res);

/* Log-linear latency histogram over nanoseconds: 16 linear steps per power of two. */
#define MC_HIST_BUCKETS (64 * 16)
struct mc_hist {
	uint64_t b[MC_HIST_BUCKETS];
	uint64_t n;
};

static inline unsigned int
mc_hist_bucket(uint64_t ns)
{
	unsigned int lg;
	if (ns < 16)
		return (unsigned int)ns;
	lg = 63u - (unsigned int)__builtin_clzll(ns); /* >= 4 */
	return (lg - 3) * 16 + (unsigned int)((ns >> (lg - 4)) & 15);
}

static inline void
mc_hist_add(struct mc_hist *h, uint64_t ns)
{
	h->b[mc_hist_bucket(ns)]++;
	h->n++;
}

uint64_t mc_hist_value(unsigned int bucket);
/* The q-quantile in nanoseconds (0 for an empty histogram). */
uint64_t mc_hist_percentile(const struct mc_hist *h, double q);
void mc_hist_merge(struct mc_hist *into, const struct mc_hist *h);

#endif
