/* mcbench: mcbox's numbers. Store micro-benchmarks, per-item overhead, a Zipf(0.99) hit-ratio
 * replay against mcbox's store and stock memcached (same trace, same memory), and the
 * in-process dataplane benchmark: the production burst function fed pre-built request mbufs on
 * a ring port, rte_rdtsc around whole bursts. Writes results.json (see DESIGN.md) and a table.
 *
 * mcbench [EAL args] -- --out FILE [--memcached-port P] [--quick] */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <getopt.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_ip.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_ring.h>
#include <rte_udp.h>

#include "../dataplane/dataplane.h"
#include "../proto/proto.h"
#include "../store/store.h"
#include "../udp/udp.h"
#include "../tests/unit/common/frame.h"

#define MAX_RESULTS 64

struct result {
	char name[48];
	char unit[16];
	double value;
	char params[640];
};

static struct result results[MAX_RESULTS];
static unsigned int nresults;
static int quick;
static int no_prefetch; /* A/B of the burst-wide bucket prefetch */
static const char *only; /* run only cases whose name contains this */
static double tsc_ghz;

static void
add(const char *name, const char *unit, double v, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void
add(const char *name, const char *unit, double v, const char *fmt, ...)
{
	struct result *r = &results[nresults++];
	va_list ap;
	snprintf(r->name, sizeof(r->name), "%s", name);
	snprintf(r->unit, sizeof(r->unit), "%s", unit);
	r->value = v;
	va_start(ap, fmt);
	vsnprintf(r->params, sizeof(r->params), fmt, ap);
	va_end(ap);
	printf("  %-28s %14.3f %-8s %s\n", name, v, unit, r->params);
	fflush(stdout);
}

static void
key16(char *k, uint64_t i)
{
	char tmp[32];
	snprintf(tmp, sizeof(tmp), "key:%012llu", (unsigned long long)i);
	memcpy(k, tmp, 16);
}

static uint64_t
xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static struct mc_store *
store_make(size_t bytes, unsigned int parts)
{
	struct mc_store_settings set = {.mem_bytes = bytes, .nparts = parts,
					.max_item_size = 1 << 20, .factor = 1.25, .chunk_min = 48};
	void *mem = rte_malloc(NULL, bytes, 64);
	if (mem == NULL)
		rte_exit(EXIT_FAILURE, "bench: cannot allocate %zu bytes\n", bytes);
	return mc_store_create(mem, bytes, &set);
}

/* ---- store ---- */

static void
bench_store(void)
{
	const uint64_t n = quick ? 200000 : 1000000;
	struct mc_store *s = store_make(256u << 20, 1);
	struct mc_store_ctx cx = {.s = s};
	char *keys = malloc(2 * n * 16), v[32], out[64], k[16];
	uint64_t i, t0, seed = 42, *order = malloc(n * sizeof(uint64_t));
	uint32_t vlen;
	struct mc_key key;

	/* Keys are made before the clock starts: only the store is timed (hash included). */
	for (i = 0; i < 2 * n; i++)
		key16(keys + 16 * i, i);
	for (i = 0; i < n; i++)
		order[i] = xorshift(&seed) % n;
	memset(v, 'v', sizeof(v));
	t0 = rte_rdtsc();
	for (i = 0; i < n; i++) {
		mc_key_init(&key, s, keys + 16 * i, 16);
		mc_store_store(&cx, &key,
			       &(struct mc_store_args){.mode = MC_SET, .val = v, .vlen = 32}, NULL);
	}
	add("store_set_ns", "ns", (double)(rte_rdtsc() - t0) / tsc_ghz / (double)n,
	    "\"keys\": %llu, \"key_bytes\": 16, \"value_bytes\": 32, \"threads\": 1",
	    (unsigned long long)n);
	t0 = rte_rdtsc();
	for (i = 0; i < n; i++) {
		mc_key_init(&key, s, keys + 16 * order[i], 16);
		if (mc_store_get(&cx, &key, out, sizeof(out), &vlen, NULL, NULL) != MC_OK)
			rte_exit(EXIT_FAILURE, "bench: key %llu missing\n", (unsigned long long)order[i]);
	}
	add("store_get_hit_ns", "ns", (double)(rte_rdtsc() - t0) / tsc_ghz / (double)n,
	    "\"keys\": %llu, \"order\": \"uniform random\", \"includes\": \"hash + lookup + copy\"",
	    (unsigned long long)n);
	t0 = rte_rdtsc();
	for (i = 0; i < n; i++) {
		mc_key_init(&key, s, keys + 16 * (n + order[i]), 16);
		mc_store_get(&cx, &key, out, sizeof(out), &vlen, NULL, NULL);
	}
	add("store_get_miss_ns", "ns", (double)(rte_rdtsc() - t0) / tsc_ghz / (double)n,
	    "\"keys\": %llu", (unsigned long long)n);
	free(order);
	free(keys);
	rte_free(s);

	/* Overhead: fill a 64 MiB store far past full; bytes per item minus key and value. */
	{
		const size_t mem = 64u << 20;
		struct mc_store_part_stats ps;
		s = store_make(mem, 1);
		cx.s = s;
		memset(v, 'v', sizeof(v));
		for (i = 0; i < 3 * mem / 48; i++) {
			key16(k, i);
			mc_key_init(&key, s, k, 16);
			mc_store_store(
				&cx, &key,
				&(struct mc_store_args){.mode = MC_SET, .val = v, .vlen = 32},
				NULL);
		}
		mc_store_part_stats(s, &ps);
		add("store_item_overhead_bytes", "bytes", (double)mem / (double)ps.curr_items - 48.0,
		    "\"memory_bytes\": %zu, \"items_held\": %llu, \"key_bytes\": 16, \"value_bytes\": 32, "
		    "\"counts\": \"all memory incl. index and slab rounding\", \"memcached_estimate\": 64",
		    mem, (unsigned long long)ps.curr_items);
		rte_free(s);
	}
}

/* ---- warm restart: save a full store, reattach it at another address ---- */

/* A store filled with small items up to its first eviction, a tenth deleted (free chunks, whose
 * list the reattach walks): the time mc_store_save takes, and mc_store_attach once the memory
 * shows up elsewhere (the copy that stands in for the new mapping is not timed). */
static void
bench_restart(void)
{
	const size_t bytes = (quick ? 64u : 256u) << 20;
	static uint8_t meta[MC_STORE_META_SIZE];
	struct mc_store_settings set = {.mem_bytes = bytes, .nparts = 1,
					.max_item_size = 1 << 20, .factor = 1.25, .chunk_min = 48};
	struct mc_store *s = store_make(bytes, 1);
	struct mc_store_ctx cx = {.s = s};
	struct mc_store_part_stats ps = {0};
	struct mc_key key;
	char k[16], v[32], why[256];
	uint64_t i, n, t0, t_save, t_attach;
	void *mem2;
	memset(v, 'v', sizeof(v));
	for (n = 0; ps.evictions == 0; n++) {
		key16(k, n);
		mc_key_init(&key, s, k, 16);
		mc_store_store(&cx, &key, &(struct mc_store_args){.mode = MC_SET, .val = v, .vlen = 32},
			       NULL);
		if ((n & 0xfff) == 0)
			mc_store_part_stats(s, &ps);
	}
	for (i = 0; i < n; i += 10) {
		key16(k, i);
		mc_key_init(&key, s, k, 16);
		mc_store_delete(&cx, &key, 0);
	}
	mc_store_part_stats(s, &ps);
	t0 = rte_rdtsc();
	mc_store_save(s, meta, (int64_t)time(NULL));
	t_save = rte_rdtsc() - t0;
	mem2 = rte_malloc(NULL, bytes, 64);
	if (mem2 == NULL)
		rte_exit(EXIT_FAILURE, "bench: cannot allocate %zu bytes\n", bytes);
	memcpy(mem2, s, bytes);
	rte_free(s);
	t0 = rte_rdtsc();
	s = mc_store_attach(mem2, bytes, meta, &set, (int64_t)time(NULL), NULL, why, sizeof(why));
	t_attach = rte_rdtsc() - t0;
	if (s == NULL)
		rte_exit(EXIT_FAILURE, "bench: reattach failed: %s\n", why);
	add("store_restart_save_ms", "ms", (double)t_save / tsc_ghz / 1e6,
	    "\"memory_bytes\": %zu, \"items\": %llu, \"free_chunks\": %llu", bytes,
	    (unsigned long long)ps.curr_items, (unsigned long long)(n / 10));
	add("store_restart_attach_ms", "ms", (double)t_attach / tsc_ghz / 1e6,
	    "\"memory_bytes\": %zu, \"items\": %llu, \"free_chunks\": %llu, \"includes\": "
	    "\"checks, pointer moves, free-list walk\"", bytes, (unsigned long long)ps.curr_items,
	    (unsigned long long)(n / 10));
	rte_free(mem2);
}

/* ---- Zipf hit ratio: mcbox's store and memcached over TCP, the same trace ---- */

struct zipf {
	double *cdf;
	uint64_t n;
};

static void
zipf_init(struct zipf *z, uint64_t n, double s)
{
	double sum = 0;
	uint64_t i;
	z->n = n;
	z->cdf = malloc(n * sizeof(double));
	for (i = 0; i < n; i++) {
		sum += 1.0 / pow((double)(i + 1), s);
		z->cdf[i] = sum;
	}
	for (i = 0; i < n; i++)
		z->cdf[i] /= sum;
}

static uint64_t
zipf_next(const struct zipf *z, uint64_t *seed)
{
	double u = (double)(xorshift(seed) >> 11) / (double)(1ull << 53);
	uint64_t lo = 0, hi = z->n - 1;
	while (lo < hi) {
		uint64_t mid = (lo + hi) / 2;
		if (z->cdf[mid] < u)
			lo = mid + 1;
		else
			hi = mid;
	}
	/* Scatter ranks over the key space so hot keys are not neighbours. */
	return (lo * 0x9e3779b97f4a7c15ull) % z->n;
}

#define BATCH 64

static int
mc_connect(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
		return -1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

/* Make sure buf[off..len) holds one whole get reply (ending in END); return its length. */
static long
next_reply(int fd, char *buf, size_t cap, size_t *len, size_t off)
{
	for (;;) {
		char *e = memmem(buf + off, *len - off, "END\r\n", 5);
		ssize_t r;
		if (e != NULL)
			return (long)(e + 5 - (buf + off));
		r = read(fd, buf + *len, cap - *len);
		if (r <= 0)
			return -1;
		*len += (size_t)r;
	}
}

static void
bench_hit_ratio(int mc_port)
{
	const uint64_t nkeys = quick ? 200000 : 1000000, nreq = quick ? 400000 : 2000000;
	const size_t mem_mb = quick ? 2 : 8;
	struct zipf z;
	uint64_t seed = 7, *trace = malloc(nreq * sizeof(uint64_t)), i, hits = 0;
	struct mc_store *s = store_make(mem_mb << 20, 1);
	struct mc_store_ctx cx = {.s = s};
	char k[16], v[32], out[64];
	uint32_t vlen;

	zipf_init(&z, nkeys, 0.99);
	for (i = 0; i < nreq; i++)
		trace[i] = zipf_next(&z, &seed);
	memset(v, 'v', sizeof(v));
	/* Batches of 64 gets, then the sets of the misses in order: replayed identically on both. */
	for (i = 0; i < nreq; i += BATCH) {
		uint64_t j, end = RTE_MIN(i + BATCH, nreq);
		bool miss[BATCH];
		for (j = i; j < end; j++) {
			struct mc_key key;
			key16(k, trace[j]);
			mc_key_init(&key, s, k, 16);
			miss[j - i] = mc_store_get(&cx, &key, out, sizeof(out), &vlen, NULL, NULL) != MC_OK;
			hits += !miss[j - i];
		}
		for (j = i; j < end; j++) {
			struct mc_key key;
			if (!miss[j - i])
				continue;
			key16(k, trace[j]);
			mc_key_init(&key, s, k, 16);
			mc_store_store(
				&cx, &key,
				&(struct mc_store_args){.mode = MC_SET, .val = v, .vlen = 32},
				NULL);
		}
	}
	add("store_hit_ratio_zipf", "ratio", (double)hits / (double)nreq,
	    "\"keys\": %llu, \"requests\": %llu, \"zipf\": 0.99, \"memory_mb\": %zu, "
	    "\"key_bytes\": 16, \"value_bytes\": 32, \"policy\": \"get, set on miss, batches of 64\"",
	    (unsigned long long)nkeys, (unsigned long long)nreq, mem_mb);
	rte_free(s);

	if (mc_port > 0) {
		int fd = mc_connect(mc_port);
		static char buf[1 << 20];
		if (fd < 0) {
			printf("  memcached_hit_ratio_zipf: cannot connect to port %d\n", mc_port);
		} else {
			hits = 0;
			for (i = 0; i < nreq; i += BATCH) {
				uint64_t j, end = RTE_MIN(i + BATCH, nreq);
				size_t len = 0, off = 0;
				bool miss[BATCH];
				for (j = i; j < end; j++) {
					key16(k, trace[j]);
					len += (size_t)snprintf(buf + len, sizeof(buf) - len, "get %.16s\r\n", k);
				}
				if (write(fd, buf, len) != (ssize_t)len)
					break;
				len = 0;
				for (j = i; j < end; j++) {
					/* Each reply is END, or VALUE ... data END (values hold no END). */
					long rl = next_reply(fd, buf, sizeof(buf), &len, off);
					if (rl < 0)
						break;
					miss[j - i] = rl == 5;
					hits += !miss[j - i];
					off += (size_t)rl;
				}
				len = 0;
				for (j = i; j < end; j++) {
					if (!miss[j - i])
						continue;
					key16(k, trace[j]);
					len += (size_t)snprintf(buf + len, sizeof(buf) - len,
								"set %.16s 0 0 32 noreply\r\n%.32s\r\n", k, v);
				}
				if (len && write(fd, buf, len) != (ssize_t)len)
					break;
			}
			close(fd);
			add("memcached_hit_ratio_zipf", "ratio", (double)hits / (double)nreq,
			    "\"keys\": %llu, \"requests\": %llu, \"zipf\": 0.99, \"memory_mb\": %zu, "
			    "\"server\": \"memcached 1.6 -m %zu -t 1 over TCP on loopback (its minimum)\"",
			    (unsigned long long)nkeys, (unsigned long long)nreq, mem_mb, mem_mb);
		}
	}
	free(trace);
	free(z.cdf);
}

/* ---- dataplane, in process ---- */

static struct rte_mempool *pool;
static struct rte_ring *tx_ring;
static struct mc_worker w;
static struct mc_config cfg;
static struct mc_proto_conf pconf = {.udp_admin = false, .udp_writes = true};
static uint8_t our_mac[6];
static const uint8_t cli_mac[6] = {2, 0, 0, 0, 0, 2};

static const uint8_t bench_ip6_box[16] = {0x20, 0x01, 0, 2, [15] = 1};
/* Requests over IPv6 instead (dp_get_hit6). */
static int over_ip6;

static void
dp_setup(void)
{
	struct mc_port port;
	struct mc_store *s;
	struct rte_ether_addr mac = {{2, 0, 0, 0, 0, 1}};
	pool = rte_pktmbuf_pool_create("bench_pool", 8191, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE, 0);
	if (pool == NULL || mc_dp_ring_port("bench_ring", pool, &mac, &port, &tx_ring) != 0)
		rte_exit(EXIT_FAILURE, "bench: cannot set up the ring port\n");
	mc_config_defaults(&cfg);
	cfg.ip = 0xc6120001u;
	/* IPv6 as well (dp_get_hit6): 2001:2::1/64, and clients from 2001:2:0:N::2 (a /64 each,
	 * so each has its own budget), all allowed. */
	memcpy(cfg.ip6.net, bench_ip6_box, 16);
	cfg.ip6.bits = 64;
	cfg.allow[0] = (struct mc_cidr){.net = 0xc6120000u, .mask = 0xfffe0000u};
	cfg.n_allow = 1;
	memcpy(cfg.allow6[0].net, bench_ip6_box, 4);
	cfg.allow6[0].bits = 32;
	cfg.n_allow6 = 1;
	/* Defaults as a user runs them, per-source rate limits included: the requests come from
	 * NSRC client addresses, each well inside its limits. */
	mc_dp_worker_init(&w, &cfg, &port, 0, 0, mc_dp_rl_create(&cfg, rte_get_tsc_hz(), 0),
			  rte_rdtsc());
	w.rl->shared = false; /* one worker, as the app runs it with one queue */
	w.no_batch_prefetch = (uint8_t)no_prefetch;
	s = store_make(256u << 20, 1);
	w.svc = mc_dp_service_create(s, &pconf, cfg.max_item_size, 0);
	memcpy(our_mac, port.mac.addr_bytes, 6);
}

/* From 198.18.0.2 .. 198.18.0.201, port 40000, to 198.18.0.1:11211. */
#define NSRC 200

/* Build one request frame (valid IPv4 and UDP checksums, as a kernel client sends). */
static struct rte_mbuf *
frame(const uint8_t *payload, size_t plen, uint16_t rid)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(pool);
	const size_t hl = over_ip6 ? MC_FRAME6_HDR_LEN : MC_FRAME_HDR_LEN;
	uint8_t *p = m ? (uint8_t *)rte_pktmbuf_append(m, (uint16_t)(hl + plen)) : NULL;
	if (p == NULL)
		rte_exit(EXIT_FAILURE, "bench: out of mbufs\n");
	if (over_ip6) {
		uint8_t src[16] = {0x20, 0x01, 0, 2, 0, 0, 0, 0, [15] = 2};
		src[7] = (uint8_t)(rid % NSRC);
		mc_frame_request6(p, our_mac, cli_mac, src, bench_ip6_box, 40000, 11211, rid, payload,
				  plen);
	} else {
		mc_frame_request(p, our_mac, cli_mac, 0xc6120002u + rid % NSRC, 0xc6120001u, 40000,
				 11211, rid, payload, plen);
	}
	return m;
}

typedef size_t (*req_fn)(uint8_t *buf, uint64_t i);

static size_t r_get(uint8_t *b, uint64_t i) { char k[17]; key16(k, i % 10000); k[16] = 0; return (size_t)sprintf((char *)b, "get %s\r\n", k); }
static size_t r_miss(uint8_t *b, uint64_t i) { char k[17]; key16(k, 1000000 + i % 10000); k[16] = 0; return (size_t)sprintf((char *)b, "get %s\r\n", k); }
static size_t r_set(uint8_t *b, uint64_t i) { char k[17]; key16(k, i % 10000); k[16] = 0; return (size_t)sprintf((char *)b, "set %s 0 0 32\r\n%032llu\r\n", k, (unsigned long long)i); }
static size_t r_mg(uint8_t *b, uint64_t i) { char k[17]; key16(k, i % 10000); k[16] = 0; return (size_t)sprintf((char *)b, "mg %s v f\r\n", k); }
static size_t r_get1m(uint8_t *b, uint64_t i) { char k[17]; uint64_t x = i * 0x9e3779b97f4a7c15ull; key16(k, 2000000 + (x >> 44) % 1000000); k[16] = 0; return (size_t)sprintf((char *)b, "get %s\r\n", k); }
static size_t r_get1k(uint8_t *b, uint64_t i) { char k[17]; key16(k, 500000 + i % 1000); k[16] = 0; return (size_t)sprintf((char *)b, "get %s\r\n", k); }
static size_t
r_mget10(uint8_t *b, uint64_t i)
{
	size_t n = (size_t)sprintf((char *)b, "get");
	for (int j = 0; j < 10; j++) {
		char k[17];
		key16(k, (i * 10 + (uint64_t)j) % 10000);
		k[16] = 0;
		n += (size_t)sprintf((char *)b + n, " %s", k);
	}
	return n + (size_t)sprintf((char *)b + n, "\r\n");
}
static size_t
r_bin_getk(uint8_t *b, uint64_t i)
{
	char k[17];
	key16(k, i % 10000);
	memset(b, 0, 24);
	b[0] = 0x80;
	b[1] = 0x0c;
	b[3] = 16;
	b[11] = 16;
	memcpy(b + 24, k, 16);
	return 40;
}

static void
dp_prefill(void)
{
	struct mc_store_ctx *cx = &w.svc->px.sx;
	char k[16], v[1024];
	uint64_t i;
	memset(v, 'v', sizeof(v));
	for (i = 0; i < 10000; i++) {
		struct mc_key key;
		key16(k, i);
		mc_key_init(&key, cx->s, k, 16);
		mc_store_store(cx, &key,
			       &(struct mc_store_args){.mode = MC_SET, .val = v, .vlen = 32}, NULL);
	}
	for (i = 0; i < 1000; i++) {
		struct mc_key key;
		key16(k, 500000 + i);
		mc_key_init(&key, cx->s, k, 16);
		mc_store_store(cx, &key,
			       &(struct mc_store_args){.mode = MC_SET, .val = v, .vlen = 1024},
			       NULL);
	}
	/* A million more for the case that misses the CPU caches. */
	for (i = 0; i < 1000000; i++) {
		struct mc_key key;
		key16(k, 2000000 + i);
		mc_key_init(&key, cx->s, k, 16);
		mc_store_store(cx, &key,
			       &(struct mc_store_args){.mode = MC_SET, .val = v, .vlen = 32}, NULL);
	}
}

/* What the NIC does for us: nothing (checksums in software, as on af_packet or af_xdp), or
 * IPv4/UDP checksums verified on RX (ol_flags) and filled in on TX, as on any server NIC. */
static int nic_cksum;
/* An exception port is attached (this names it): the worker's cadence runs after each burst. */
static const char *exc_note;

static int
cmp_double(const void *a, const void *b)
{
	const double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Bursts in a chunk for the best-chunk figure: 1,600 requests, about a tenth of a millisecond. */
#define DP_CHUNK 50

/* How fast the core runs just now: TSC cycles an iteration of a chain of one-cycle adds (about
 * 1 ms). 0.72 on the development VM when the core is ours alone, more while a neighbour shares
 * it: a run's figure is only as quiet as its gauge, which results carry beside each run. */
static double
dp_gauge(void)
{
	const uint64_t t0 = rte_rdtsc();
	uint64_t x = 0, i;
	for (i = 0; i < 1000000; i++) {
		__asm__ volatile("" : "+r"(x));
		x += 1;
	}
	return (double)(rte_rdtsc() - t0) / (double)x;
}

/* One run of a case: rounds bursts after 100 that warm the caches, every request answered
 * (or the process exits: the numbers would measure drops). Returns TSC cycles a request, and
 * lowers *best (0: none yet) to the cycles a request of its quickest chunk of DP_CHUNK bursts:
 * on a shared host the neighbours' load comes and goes within a run, and the best chunk shows
 * the code's own cost where a run's average shows theirs too. */
static double
dp_case_run(const char *name, req_fn fn, unsigned int rounds, uint64_t *seq, double *best)
{
	struct rte_mbuf *pkts[MC_BURST];
	void *done[512];
	uint8_t req[512];
	uint64_t cycles = 0, nreq = 0, i = *seq, chunk = 0;
	unsigned int r, j, n, in_chunk = 0;

	memset(&w.st, 0, sizeof(w.st));
#ifdef MC_STAGE_TSC
	memset(mc_dp_stage_tsc, 0, sizeof(mc_dp_stage_tsc));
#endif
	for (r = 0; r < rounds + 100; r++) {
		uint64_t t0;
		for (j = 0; j < MC_BURST; j++, i++) {
			size_t len = fn(req, i);
			pkts[j] = frame(req, len, (uint16_t)i);
			if (nic_cksum)
				pkts[j]->ol_flags |= RTE_MBUF_F_RX_IP_CKSUM_GOOD | RTE_MBUF_F_RX_L4_CKSUM_GOOD;
		}
		t0 = rte_rdtsc();
		mc_dp_handle_burst(&w, pkts, MC_BURST);
		if (exc_note != NULL)
			mc_dp_exception_poll(&w, MC_BURST); /* as mc_dp_poll after a full burst */
		mc_dp_tx_flush(&w);
		if (r >= 100) { /* the first rounds warm caches */
			const uint64_t d = rte_rdtsc() - t0;
			cycles += d;
			nreq += MC_BURST;
			chunk += d;
			if (++in_chunk == DP_CHUNK) {
				const double c = (double)chunk / (DP_CHUNK * MC_BURST);
				if (*best == 0 || c < *best)
					*best = c;
				chunk = 0;
				in_chunk = 0;
			}
		}
		while ((n = rte_ring_dequeue_burst(tx_ring, done, 512, NULL)) != 0)
			rte_pktmbuf_free_bulk((struct rte_mbuf **)done, n);
	}
	*seq = i;
#ifdef MC_STAGE_TSC
	{
		/* Every round's, the warming ones too: a measurement build's breakdown. */
		static const char *const stage[MC_DP_STAGES] = {"setup", "parse", "hash", "items",
								"execute"};
		const double nr = (double)(rounds + 100) * MC_BURST;
		printf("  %s stages:", name);
		for (j = 0; j < MC_DP_STAGES; j++) {
			printf(" %s %.1f", stage[j], (double)mc_dp_stage_tsc[j] / nr);
		}
		printf("\n");
	}
#endif
	{
		uint64_t drops = 0;
#define X(n, help) drops += strncmp(#n, "drop_", 5) == 0 ? w.st.n : 0;
		MC_DP_COUNTERS(X)
#undef X
		if (drops != 0 || w.st.udp_requests != (uint64_t)(rounds + 100) * MC_BURST ||
		    w.st.tx_packets < w.st.udp_requests)
			rte_exit(EXIT_FAILURE, "bench: %s: %llu drops, %llu requests, %llu sent\n", name,
				 (unsigned long long)drops, (unsigned long long)w.st.udp_requests,
				 (unsigned long long)w.st.tx_packets);
	}
	return (double)cycles / (double)nreq;
}

/* A dataplane case's result from its runs' cycles a request (sorted here): the median, with
 * the spread in its params. This VM's neighbours add 10-50% to a run now and then, for a
 * second or more at a time; one run's figure said more about them than about the code. */
#define DP_RUNS 5
static void
dp_case_report(const char *name, const char *what, double *c, const double *g,
	       unsigned int runs, unsigned int rounds, double best)
{
	double med, core[DP_RUNS];
	char nm[64], order[8 * DP_RUNS + 2] = "", gauge[7 * DP_RUNS + 2] = "";
	unsigned int k;
	/* The runs in the order they ran, each with the gauge read just before it: a slow first
	 * run is a warm-up, slow runs with a high gauge are the neighbours. */
	for (k = 0; k < runs; k++) {
		snprintf(order + strlen(order), sizeof(order) - strlen(order), "%s%.1f",
			 k ? ", " : "", c[k]);
		snprintf(gauge + strlen(gauge), sizeof(gauge) - strlen(gauge), "%s%.2f",
			 k ? ", " : "", g[k]);
		core[k] = c[k] / g[k]; /* the run in core clock cycles, as the gauge has it */
	}
	qsort(core, runs, sizeof(core[0]), cmp_double);
	qsort(c, runs, sizeof(c[0]), cmp_double);
	med = c[runs / 2];
	snprintf(nm, sizeof(nm), "%s_cycles", name);
	add(nm, "cycles", med,
	    "\"burst\": %d, \"requests\": %llu, \"runs\": %u, \"min\": %.1f, \"max\": %.1f, "
	    "\"in_order\": [%s], \"gauge\": [%s], \"core_clocks\": %.1f, \"best_chunk\": %.1f, "
	    "\"request\": \"%s\", \"path\": \"rx burst to tx burst, checksums %s, rate limits on "
	    "(%d sources)\"%s%s%s",
	    MC_BURST, (unsigned long long)rounds * MC_BURST, runs, c[0], c[runs - 1], order, gauge,
	    core[runs / 2], best, what,
	    nic_cksum ? "by the NIC (RX verdict, TX offload)" : "in software", NSRC,
	    exc_note ? ", \"exception\": \"" : "", exc_note ? exc_note : "", exc_note ? "\"" : "");
	snprintf(nm, sizeof(nm), "%s_mrps", name);
	add(nm, "Mreq/s", tsc_ghz * 1e3 / med, "\"lcores\": 1, \"request\": \"%s\"", what);
}

static bool
dp_selected(const char *name)
{
	return !only || strcmp(name, only) == 0 ||
	       (strncmp(only, "dp_get_zc", 9) == 0 && strncmp(name, "dp_get_zc", 9) == 0);
}

/* A case run DP_RUNS times in a row (one with --quick): the cases with set-up of their own. */
static void
bench_dp_case(const char *name, req_fn fn, const char *what)
{
	const unsigned int rounds = quick ? 2000 : 20000, runs = quick ? 1 : DP_RUNS;
	double c[DP_RUNS], g[DP_RUNS], best = 0;
	uint64_t seq = 0;
	unsigned int k;
	if (!dp_selected(name))
		return;
	w.tx_cksum_offload = (uint8_t)nic_cksum;
	for (k = 0; k < runs; k++) {
		g[k] = dp_gauge();
		c[k] = dp_case_run(name, fn, rounds, &seq, &best);
	}
	dp_case_report(name, what, c, g, runs, rounds, best);
}

/* Copy or zero-copy: the same get at several value sizes, both ways; the crossover is the
 * default for --zero-copy-min. */
static uint32_t zc_size;
static size_t
r_getsz(uint8_t *b, uint64_t i)
{
	return (size_t)sprintf((char *)b, "get zs%u:%llu\r\n", zc_size, (unsigned long long)(i % 256));
}

static void
bench_zero_copy(void)
{
	static const uint32_t sizes[] = {256, 512, 1024, 1300, 2048, 4096, 8192};
	struct mc_store_ctx *cx = &w.svc->px.sx;
	static char v[8192];
	unsigned int si, i;
	char name[48], k[32];
	if (only && strncmp(only, "dp_get_zc", 9) != 0)
		return;
	memset(v, 'z', sizeof(v));
	if (mc_dp_service_zero_copy(w.svc, 1, 0) != 0)
		rte_exit(EXIT_FAILURE, "bench: no zero-copy pool\n");
	for (si = 0; si < RTE_DIM(sizes); si++) {
		char what[96];
		zc_size = sizes[si];
		for (i = 0; i < 256; i++) {
			struct mc_key key;
			int n = snprintf(k, sizeof(k), "zs%u:%u", zc_size, i);
			mc_key_init(&key, cx->s, k, (uint32_t)n);
			mc_store_store(
				cx, &key,
				&(struct mc_store_args){.mode = MC_SET, .val = v, .vlen = zc_size},
				NULL);
		}
		snprintf(what, sizeof(what), "ASCII get, %u B value, copied", zc_size);
		w.svc->zc_min = 0;
		snprintf(name, sizeof(name), "dp_get_zc%u_copy", zc_size);
		bench_dp_case(name, r_getsz, what);
		snprintf(what, sizeof(what), "ASCII get, %u B value, zero-copy extbuf", zc_size);
		w.svc->zc_min = 1;
		snprintf(name, sizeof(name), "dp_get_zc%u_ref", zc_size);
		bench_dp_case(name, r_getsz, what);
	}
	w.svc->zc_min = 0;
}

/* dp_get_hit with the exception path on: an exception port attached to the worker and the
 * worker's cadence in the loop (its queue read every MC_EXC_POLL_EVERY full bursts), so the
 * fast path's cost with it shows next to dp_get_hit. A real TAP (no address, IPv6 off, so the
 * kernel sends nothing) when we are root with /dev/net/tun, else a ring port. */
static void
bench_dp_exc(void)
{
	struct mc_port port = {.port_id = w.port_id, .queues = 1, .nparts = 1, .pool = pool};
	struct mc_exc exc;
	char err[256], note[128];
	bool tap = false;
	if (only && strcmp(only, "dp_get_hit_exc") != 0)
		return;
	memcpy(port.mac.addr_bytes, our_mac, 6);
	snprintf(port.name, sizeof(port.name), "bench_ring");
	if (geteuid() == 0 && access("/dev/net/tun", R_OK | W_OK) == 0) {
		char ifname[16];
		snprintf(ifname, sizeof(ifname), "mcbxb%d", (int)getpid());
		if (mc_dp_exception_create("tap", ifname, &port, &exc, err, sizeof(err)) == 0 &&
		    mc_dp_exception_kernel_if(&exc, &port, 0, 0, NULL, err, sizeof(err)) == 0)
			tap = true;
		else
			printf("  (no TAP: %s; a ring port instead)\n", err);
		if (!tap)
			mc_dp_exception_destroy(&exc);
		snprintf(note, sizeof(note), "net_tap %s, read every %d full bursts", ifname,
			 MC_EXC_POLL_EVERY);
	}
	if (!tap) {
		struct mc_port kport;
		struct rte_ring *ktx;
		if (mc_dp_ring_port("bench_exc", pool, &port.mac, &kport, &ktx) != 0)
			rte_exit(EXIT_FAILURE, "bench: cannot set up the exception ring port\n");
		memset(&exc, 0, sizeof(exc));
		exc.port_id = kport.port_id;
		exc.queues = 1;
		exc.up = true;
		snprintf(note, sizeof(note), "ring port (not root or no /dev/net/tun), read every %d "
					     "full bursts", MC_EXC_POLL_EVERY);
	}
	mc_dp_worker_exception(&w, &exc);
	exc_note = note;
	bench_dp_case("dp_get_hit_exc", r_get, "ASCII get, 16 B key, 32 B value, exception path on");
	exc_note = NULL;
	w.exc = MC_EXC_OFF;
	if (tap)
		mc_dp_exception_destroy(&exc);
}

/* The main cases, run in DP_RUNS passes over all of them (one with --quick), so that each
 * case's runs are spread over the whole bench rather than a second of it. */
static const struct dp_main_case {
	const char *name;
	req_fn fn;
	const char *what;
	int ip6, nic;
} dp_main[] = {
	{"dp_get_hit", r_get, "ASCII get, 16 B key, 32 B value", 0, 0},
	{"dp_get_hit6", r_get, "ASCII get over IPv6, 16 B key, 32 B value", 1, 0},
	{"dp_get_miss", r_miss, "ASCII get, 16 B key, miss", 0, 0},
	{"dp_set", r_set, "ASCII set, 16 B key, 32 B value", 0, 0},
	{"dp_mget10", r_mget10, "ASCII get of 10 keys, 32 B values", 0, 0},
	{"dp_bin_getk", r_bin_getk, "binary GETK, 16 B key, 32 B value", 0, 0},
	{"dp_get_hit_1k", r_get1k, "ASCII get, 1 KiB value (copied)", 0, 0},
	{"dp_get_hit_1m", r_get1m, "ASCII get, 32 B value, random over 1M keys (cache-cold)", 0, 0},
	{"dp_mg", r_mg, "meta mg v f, 32 B value", 0, 0},
	{"dp_get_hit_nic", r_get, "ASCII get, 16 B key, 32 B value, NIC checksums", 0, 1},
	{"dp_bin_getk_nic", r_bin_getk, "binary GETK, 16 B key, 32 B value, NIC checksums", 0, 1},
};

static void
bench_dp(void)
{
	const unsigned int rounds = quick ? 2000 : 20000, runs = quick ? 1 : DP_RUNS;
	static double c[RTE_DIM(dp_main)][DP_RUNS], g[RTE_DIM(dp_main)][DP_RUNS],
		best[RTE_DIM(dp_main)];
	uint64_t seq[RTE_DIM(dp_main)] = {0};
	unsigned int pass, i;
	dp_setup();
	dp_prefill();
	for (pass = 0; pass < runs; pass++) {
		for (i = 0; i < RTE_DIM(dp_main); i++) {
			if (!dp_selected(dp_main[i].name))
				continue;
			over_ip6 = dp_main[i].ip6;
			nic_cksum = dp_main[i].nic;
			w.tx_cksum_offload = (uint8_t)nic_cksum;
			g[i][pass] = dp_gauge();
			c[i][pass] = dp_case_run(dp_main[i].name, dp_main[i].fn, rounds, &seq[i],
						 &best[i]);
		}
	}
	for (i = 0; i < RTE_DIM(dp_main); i++) {
		if (!dp_selected(dp_main[i].name))
			continue;
		nic_cksum = dp_main[i].nic;
		dp_case_report(dp_main[i].name, dp_main[i].what, c[i], g[i], runs, rounds,
			       best[i]);
	}
	over_ip6 = 0;
	nic_cksum = 0;
	w.tx_cksum_offload = 0;
	bench_dp_exc();
	bench_zero_copy();
}

static void
write_json(const char *path, const char *machine)
{
	FILE *f = fopen(path, "w");
	unsigned int i;
	if (f == NULL)
		rte_exit(EXIT_FAILURE, "bench: cannot write %s\n", path);
	fprintf(f, "[\n");
	for (i = 0; i < nresults; i++)
		fprintf(f, "  {\"name\": \"%s\", \"unit\": \"%s\", \"value\": %.6g, \"params\": {%s%s%s}}%s\n",
			results[i].name, results[i].unit, results[i].value, results[i].params,
			results[i].params[0] && machine[0] ? ", " : "", machine,
			i + 1 < nresults ? "," : "");
	fprintf(f, "]\n");
	fclose(f);
}

int
main(int argc, char **argv)
{
	int ret = rte_eal_init(argc, argv), c, mc_port = 0;
	const char *out = "build/bench/results.json", *machine = "";
	static const struct option lo[] = {{"out", 1, NULL, 'o'}, {"memcached-port", 1, NULL, 'p'},
					   {"quick", 0, NULL, 'q'}, {"machine", 1, NULL, 'm'}, {"only", 1, NULL, 'n'}, {"no-prefetch", 0, NULL, 'P'},
					   {NULL, 0, NULL, 0}};
	if (ret < 0)
		rte_exit(EXIT_FAILURE, "bench: EAL init failed\n");
	argc -= ret;
	argv += ret;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		if (c == 'o')
			out = optarg;
		else if (c == 'p')
			mc_port = atoi(optarg);
		else if (c == 'q')
			quick = 1;
		else if (c == 'm')
			machine = optarg;
		else if (c == 'n')
			only = optarg;
		else if (c == 'P')
			no_prefetch = 1;
	}
	tsc_ghz = (double)rte_get_tsc_hz() / 1e9;
	printf("mcbench: TSC %.3f GHz%s\n", tsc_ghz, quick ? " (quick)" : "");
	bench_dp();
	if (!only || strstr("store_", only)) {
		bench_store();
		bench_restart();
		bench_hit_ratio(mc_port);
	} else if (strcmp(only, "store_restart") == 0) {
		bench_restart();
	}
	write_json(out, machine);
	printf("mcbench: wrote %s\n", out);
	rte_eal_cleanup();
	return 0;
}
