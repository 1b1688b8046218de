/* mcgen: a memcached UDP load generator on DPDK, for any ethdev: memif (the lab: mcbox and
 * mcgen joined by shared memory, no kernel in between), af_xdp, af_packet, or a NIC by PCI
 * address. One lcore, one queue pair, no locks, no syscalls on the path.
 *
 * It builds Ethernet/IPv4/UDP frames around memcached requests (ASCII, meta or binary; keys,
 * sizes and the get/set mix as mcload: tools/workload.c) or replays the requests of a pcap from
 * scripts/mkpcap.py; resolves the target's MAC by ARP and answers ARP for its own address;
 * runs closed loop (a window of requests in flight) or open loop (a rate); matches replies by
 * request id and checks each against its request (tools/mcgen_match.c); keeps TSC latencies
 * in a histogram; counts loss, wrong replies and reorders; prints a progress line once a
 * second and writes JSON. Always bounded: --duration and --max-requests.
 *
 * mcgen [EAL args] -- [--dst-ip A] [--src-ip A] [--dst-mac M] [--port NAME] [-d s] [-w s]
 *       [-c window | -r rate] [--preload] [--pcap FILE] [workload options] [--json FILE] */
#include "mcgen_match.h"
#include "mcgen_net.h"
#include "workload.h"

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_ether.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>

#include <arpa/inet.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BURST 32
#define PREFETCH 4 /* frames ahead */
#define RING_SIZE 1024
#define NB_MBUFS 8191
#define LINK_WAIT_S 10
#define ARP_WAIT_S 3
#define PRELOAD_MAX_S 30
#define DRAWS (1u << 21) /* a Zipf draw is a binary search over a large table: draw in advance */

static volatile bool force_quit;

static struct {
	char port[RTE_ETH_NAME_MAX_LEN];
	struct mcg_flow fl;
	bool have_dst_mac;
	double duration, warmup, timeout, rate;
	unsigned int window;
	uint64_t max_requests;
	const char *json, *pcap;
	bool preload;
} opt = {.fl = {.src_ip = 0xc6120002u, .dst_ip = 0xc6120001u, .sport = 40000, .nsports = 16,
		.dport = 11211},
	 .duration = 5, .warmup = 1, .timeout = 1.0, .window = 64, .max_requests = 1000000000};

struct gen {
	uint16_t port;
	struct rte_mempool *pool;
	struct mc_wl wl;
	struct mcg_match mt;
	struct mcg_pcap pc;
	uint64_t hz, seed;
	uint32_t pcap_next;
	uint64_t preload_next;
	bool preloading;
	uint64_t measured_sent; /* for --max-requests */
	uint64_t tx_refused, bad_csum, other, arp_answered;
	uint64_t work_tsc, phase_tsc; /* measured: cycles spent sending and receiving; in all */
	uint32_t *draws; /* key numbers drawn in advance (DRAWS of them, used in turn) */
	uint32_t draw_next;
};

static void
on_signal(int sig)
{
	(void)sig;
	force_quit = true;
}

/* ---- requests ---- */

/* Pick distinct keys for one generated request; returns how many. */
static unsigned int
pick_keys(struct gen *g, bool get, struct mc_wl_key *k, char (*buf)[MC_WL_MAX_KEY + 1],
	  struct mc_wl_req *r)
{
	unsigned int want = get ? g->wl.mget : 1, nk = 0, tries = 0;
	while (nk < want && tries++ < 4 * want) {
		uint64_t id = g->preloading ? g->preload_next++ : g->draws[g->draw_next++ % DRAWS];
		bool dup = false;
		for (unsigned int j = 0; j < nk; j++)
			dup |= r->ids[j] == id;
		if (dup)
			continue;
		k[nk].text = mc_wl_key(&g->wl, id, buf[nk], &k[nk].len);
		k[nk].id = id;
		r->ids[nk++] = (uint32_t)id;
	}
	return nk;
}

/* Write request rid's payload (frame header included) at p; fill its record r. */
static size_t
build_request(struct gen *g, uint8_t *p, uint16_t rid, struct mc_wl_req *r)
{
	static char buf[MC_WL_MAX_MGET][MC_WL_MAX_KEY + 1];
	struct mc_wl_key k[MC_WL_MAX_MGET];
	bool get;
	if (g->pc.n) { /* replay: the pcap's request, our request id */
		uint32_t i = g->pcap_next++ % g->pc.n;
		size_t len = g->pc.off[i + 1] - g->pc.off[i];
		p[0] = (uint8_t)(rid >> 8);
		p[1] = (uint8_t)rid;
		memcpy(p + 2, "\0\0\0\1\0\0", 6);
		memcpy(p + MC_WL_UDP_HDR, g->pc.body + g->pc.off[i], len);
		*r = g->pc.req[i];
		return MC_WL_UDP_HDR + len;
	}
	get = !g->preloading && mc_wl_unit(&g->seed) < g->wl.get_ratio;
	r->proto = g->wl.proto;
	r->get = get;
	r->known = true;
	r->mn = false;
	r->nk = (uint8_t)pick_keys(g, get, k, buf, r);
	return mc_wl_build(&g->wl, p, rid, get, k, r->nk);
}

/* Send n requests in one burst; those the port refuses are forgotten. */
static void
send_requests(struct gen *g, unsigned int n, uint64_t now)
{
	struct rte_mbuf *ms[BURST];
	uint16_t rids[BURST], sent;
	unsigned int i;
	if (rte_pktmbuf_alloc_bulk(g->pool, ms, n) != 0)
		return;
	for (i = 0; i < n && i < PREFETCH; i++)
		__builtin_prefetch(rte_pktmbuf_mtod(ms[i], void *), 1);
	for (i = 0; i < n; i++) {
		uint8_t *f = rte_pktmbuf_mtod(ms[i], uint8_t *);
		if (i + PREFETCH < n)
			__builtin_prefetch(rte_pktmbuf_mtod(ms[i + PREFETCH], void *), 1);
		struct mc_wl_req *r = mcg_issue(&g->mt, now, &rids[i]);
		size_t plen = build_request(g, f + MCG_HDRS, rids[i], r);
		uint16_t sport = (uint16_t)(opt.fl.sport + rids[i] % opt.fl.nsports);
		ms[i]->data_len = (uint16_t)mcg_frame_request(f, &opt.fl, sport, plen);
		ms[i]->pkt_len = ms[i]->data_len;
		if (g->mt.measuring)
			g->measured_sent++;
	}
	sent = rte_eth_tx_burst(g->port, 0, ms, (uint16_t)n);
	for (i = sent; i < n; i++) {
		mcg_unissue(&g->mt, rids[i]);
		g->tx_refused++;
		if (g->mt.measuring)
			g->measured_sent--;
	}
	if (sent < n)
		rte_pktmbuf_free_bulk(ms + sent, n - sent);
}

/* Answer or learn from an ARP frame; mac gets the target's when it replies. */
static void
handle_arp(struct gen *g, struct rte_mbuf *m, uint8_t mac[6], bool *learned)
{
	int r = mcg_arp(rte_pktmbuf_mtod(m, uint8_t *), m->data_len, &opt.fl, mac);
	if (r == 2)
		*learned = true;
	if (r == 1 && rte_eth_tx_burst(g->port, 0, &m, 1) == 1) {
		g->arp_answered++;
		return;
	}
	rte_pktmbuf_free(m);
}

/* One RX burst: replies to the matcher, ARP answered. Returns frames received; *done is the
 * TSC when they were dealt with. */
static unsigned int
receive(struct gen *g, uint8_t mac[6], bool *learned, uint64_t *done)
{
	struct rte_mbuf *ms[BURST], *done_ms[BURST];
	uint16_t n = rte_eth_rx_burst(g->port, 0, ms, BURST), i, nd = 0;
	uint64_t now;
	if (n == 0)
		return 0;
	now = rte_rdtsc();
	for (i = 0; i < n && i < PREFETCH; i++)
		rte_prefetch0(rte_pktmbuf_mtod(ms[i], void *));
	for (i = 0; i < n; i++) {
		const uint8_t *p;
		size_t plen;
		struct rte_mbuf *m = ms[i];
		if (i + PREFETCH < n)
			rte_prefetch0(rte_pktmbuf_mtod(ms[i + PREFETCH], void *));
		if (m->nb_segs != 1) { /* a chained reply: mcgen reads one segment */
			g->other++;
			done_ms[nd++] = m;
			continue;
		}
		switch (mcg_frame_parse(rte_pktmbuf_mtod(m, uint8_t *), m->data_len, &opt.fl, &p, &plen)) {
		case MCG_RX_REPLY: mcg_reply(&g->mt, p, plen, now); break;
		case MCG_RX_ARP: handle_arp(g, m, mac, learned); continue;
		case MCG_RX_BAD_CSUM: g->bad_csum++; break;
		case MCG_RX_OTHER: g->other++; break;
		}
		done_ms[nd++] = m;
	}
	rte_pktmbuf_free_bulk(done_ms, nd);
	*done = rte_rdtsc();
	return n;
}

/* ---- phases ---- */

static double
since(const struct gen *g, uint64_t t0)
{
	return (double)(rte_rdtsc() - t0) / (double)g->hz;
}

/* Resolve the target's MAC by ARP (a request every 100 ms). */
static int
resolve(struct gen *g)
{
	uint64_t t0 = rte_rdtsc(), next = 0, done;
	bool learned = false;
	while (!learned && !force_quit && since(g, t0) < ARP_WAIT_S) {
		if (rte_rdtsc() >= next) {
			struct rte_mbuf *m = rte_pktmbuf_alloc(g->pool);
			if (m != NULL) {
				m->data_len = m->pkt_len =
					(uint16_t)mcg_arp_request(rte_pktmbuf_mtod(m, uint8_t *), &opt.fl);
				if (rte_eth_tx_burst(g->port, 0, &m, 1) != 1)
					rte_pktmbuf_free(m);
			}
			next = rte_rdtsc() + g->hz / 10;
		}
		receive(g, opt.fl.dst_mac, &learned, &done);
	}
	return learned ? 0 : -1;
}

enum phase { PH_PRELOAD, PH_WARMUP, PH_MEASURE };

static void
progress(const struct gen *g, double t, uint64_t *last)
{
	const struct mcg_counters *c = &g->mt.measured;
	fprintf(stderr, "mcgen: %.0fs %.3f Mreq/s, %llu replies, %llu lost, %llu wrong, %llu reordered, "
			"p99 %.1f us\n", t, (double)(c->replies - *last) / 1e6, (unsigned long long)c->replies,
		(unsigned long long)c->loss, (unsigned long long)c->errors,
		(unsigned long long)c->reorders, mc_hist_percentile(&g->mt.h, 0.99) / 1e3);
	*last = c->replies;
}

/* Send and receive for secs seconds (a preload ends when every key is stored). */
static double
run_phase(struct gen *g, enum phase ph, double secs)
{
	const uint64_t t0 = rte_rdtsc(), end = t0 + (uint64_t)(secs * (double)g->hz);
	uint64_t sent = 0, next_progress = t0 + g->hz, last = 0, now, mark, done, work = 0;
	uint8_t mac[6];
	bool learned;
	g->preloading = ph == PH_PRELOAD;
	g->mt.measuring = ph == PH_MEASURE;
	while (!force_quit && (now = rte_rdtsc()) < end) {
		unsigned int n = BURST;
		if (ph == PH_PRELOAD && g->preload_next >= g->wl.keys) {
			n = 0;
			if (g->mt.outstanding == 0)
				break;
		} else if (opt.rate > 0 && ph != PH_PRELOAD) {
			uint64_t due = (uint64_t)((double)(now - t0) / (double)g->hz * opt.rate);
			n = due > sent ? (unsigned int)RTE_MIN(due - sent, (uint64_t)BURST) : 0;
		} else {
			n = g->mt.outstanding >= opt.window ? 0 : RTE_MIN(opt.window - g->mt.outstanding, n);
		}
		if (ph == PH_PRELOAD)
			n = (unsigned int)RTE_MIN((uint64_t)n, g->wl.keys - g->preload_next);
		if (ph == PH_MEASURE) {
			n = (unsigned int)RTE_MIN((uint64_t)n, opt.max_requests - g->measured_sent);
			if (g->measured_sent >= opt.max_requests && g->mt.outstanding == 0)
				break;
		}
		mark = now;
		if (n) {
			send_requests(g, n, now);
			sent += n;
			mark = rte_rdtsc();
			work += mark - now;
		}
		if (receive(g, mac, &learned, &done))
			work += done - mark;
		mcg_expire(&g->mt, now);
		if (ph == PH_MEASURE && now >= next_progress) {
			progress(g, (double)(now - t0) / (double)g->hz, &last);
			next_progress += g->hz;
		}
	}
	g->mt.measuring = false;
	g->preloading = false;
	if (ph == PH_MEASURE) {
		g->work_tsc += work;
		g->phase_tsc += rte_rdtsc() - t0;
	}
	return since(g, t0);
}

/* Collect the replies still in flight (at most the timeout); the rest are lost. */
static void
drain(struct gen *g)
{
	const uint64_t t0 = rte_rdtsc();
	uint64_t done;
	uint8_t mac[6];
	bool learned;
	while (!force_quit && g->mt.outstanding > 0 && since(g, t0) < opt.timeout)
		receive(g, mac, &learned, &done);
	mcg_expire_all(&g->mt);
}

/* ---- report ---- */

/* TSC cycles mcgen spent building, sending, receiving and checking, per reply (polls that
 * found nothing are not counted): what a request costs the generator. */
static double
work_per_req(const struct gen *g)
{
	return g->mt.measured.replies ? (double)g->work_tsc / (double)g->mt.measured.replies : 0.0;
}

/* The share of the measured time mcgen did such work: well below 1, it was not the limit. */
static double
work_share(const struct gen *g)
{
	return g->phase_tsc ? (double)g->work_tsc / (double)g->phase_tsc : 0.0;
}

static void
report(const struct gen *g, double secs)
{
	const struct mcg_counters *c = &g->mt.measured;
	const struct mc_hist *h = &g->mt.h;
	const char *mode = g->pc.n ? "replay" : opt.rate > 0 ? "open" : "closed";
	printf("mcgen: %s loop, %s, %.2fs: %.0f req/s, %llu requests, %llu replies, %llu lost, "
	       "%llu wrong, %llu reordered, %llu hits, %llu misses; latency us p50 %.1f p99 %.1f "
	       "p99.9 %.1f\n", mode, mc_wl_proto_name(g->wl.proto), secs, (double)c->replies / secs,
	       (unsigned long long)c->requests, (unsigned long long)c->replies,
	       (unsigned long long)c->loss, (unsigned long long)c->errors,
	       (unsigned long long)c->reorders, (unsigned long long)c->hits,
	       (unsigned long long)c->misses, mc_hist_percentile(h, 0.5) / 1e3,
	       mc_hist_percentile(h, 0.99) / 1e3, mc_hist_percentile(h, 0.999) / 1e3);
	if (g->mt.all.errors)
		printf("mcgen: %llu wrong replies in all (preload and warm-up too); the last: %s: \"%.*s\"\n",
		       (unsigned long long)g->mt.all.errors, g->mt.why, (int)g->mt.bad_len, g->mt.bad);
	printf("mcgen: busy %.0f%% of the time, %.0f cycles a request (so it could drive about %.2f "
	       "Mreq/s)\n", 100.0 * work_share(g), work_per_req(g),
	       work_per_req(g) > 0 ? (double)g->hz / work_per_req(g) / 1e6 : 0.0);
	if (g->bad_csum || g->tx_refused)
		printf("mcgen: %llu replies with a bad checksum, %llu requests the port refused\n",
		       (unsigned long long)g->bad_csum, (unsigned long long)g->tx_refused);
	if (opt.json) {
		FILE *f = fopen(opt.json, "w");
		if (f == NULL) {
			perror("mcgen: json");
			return;
		}
		fprintf(f, "{\"mode\": \"%s\", \"rps\": %.1f, \"seconds\": %.3f", mode,
			(double)c->replies / secs, secs);
#define X(name) fprintf(f, ", \"%s\": %llu", #name, (unsigned long long)c->name);
		MCG_COUNTERS(X)
#undef X
		fprintf(f, ", \"errors_all\": %llu, \"loss_all\": %llu, \"bad_checksum\": %llu, "
			   "\"tx_refused\": %llu, \"gen_busy\": %.4f, \"gen_cycles_per_req\": %.0f, \"p50_us\": %.3f, \"p90_us\": %.3f, \"p99_us\": %.3f, "
			   "\"p999_us\": %.3f, \"window\": %u, \"rate\": %.0f, \"proto\": \"%s\", "
			   "\"keys\": %llu, \"zipf\": %.2f, \"get_ratio\": %.2f, \"mget\": %u, "
			   "\"key_size\": \"%u-%u\", \"value_size\": \"%u-%u\", \"preload\": %s, "
			   "\"pcap_frames\": %u}\n",
			(unsigned long long)g->mt.all.errors, (unsigned long long)g->mt.all.loss,
			(unsigned long long)g->bad_csum, (unsigned long long)g->tx_refused,
			work_share(g), work_per_req(g), mc_hist_percentile(h, 0.5) / 1e3, mc_hist_percentile(h, 0.9) / 1e3,
			mc_hist_percentile(h, 0.99) / 1e3, mc_hist_percentile(h, 0.999) / 1e3,
			opt.window, opt.rate, mc_wl_proto_name(g->wl.proto),
			(unsigned long long)g->wl.keys, g->wl.zipf, g->wl.get_ratio, g->wl.mget,
			g->wl.key_min, g->wl.key_max, g->wl.value_min, g->wl.value_max,
			opt.preload ? "true" : "false", g->pc.n);
		fclose(f);
	}
}

/* ---- setup ---- */

static void
usage(void)
{
	fprintf(stderr,
		"usage: mcgen [EAL args: -l CORE --no-pci --file-prefix P --vdev net_memif0,...] --\n"
		"  [--port ETHDEV] [--src-ip A] [--dst-ip A] [--dst-mac M] [--dport N] [--sport N]\n"
		"  [--sports N] [-d seconds] [-w warmup] [-c window | -r rate] [-n max_requests]\n"
		"  [--timeout s] [--preload] [--pcap FILE] [--json FILE]\n" MC_WL_USAGE);
	exit(2);
}

static void
parse_args(struct gen *g, int argc, char **argv)
{
	static const struct option lo[] = {
		{"port", 1, NULL, 'P'}, {"src-ip", 1, NULL, 'S'}, {"dst-ip", 1, NULL, 'D'},
		{"dst-mac", 1, NULL, 'M'}, {"dport", 1, NULL, 'O'}, {"sport", 1, NULL, 'o'},
		{"sports", 1, NULL, 'N'}, {"duration", 1, NULL, 'd'}, {"warmup", 1, NULL, 'w'},
		{"window", 1, NULL, 'c'}, {"rate", 1, NULL, 'r'}, {"max-requests", 1, NULL, 'n'},
		{"timeout", 1, NULL, 't'}, {"preload", 0, NULL, 'L'}, {"pcap", 1, NULL, 'C'},
		{"json", 1, NULL, 'j'}, MC_WL_LONGOPTS, {NULL, 0, NULL, 0}};
	struct in_addr a;
	int c;
	while ((c = getopt_long(argc, argv, "d:w:c:r:n:t:" MC_WL_OPTSTRING, lo, NULL)) != -1) {
		int taken = mc_wl_option(&g->wl, c, optarg);
		if (taken < 0)
			usage();
		if (taken)
			continue;
		switch (c) {
		case 'P': snprintf(opt.port, sizeof(opt.port), "%s", optarg); break;
		case 'S':
		case 'D':
			if (inet_pton(AF_INET, optarg, &a) != 1)
				usage();
			*(c == 'S' ? &opt.fl.src_ip : &opt.fl.dst_ip) = ntohl(a.s_addr);
			break;
		case 'M':
			if (rte_ether_unformat_addr(optarg, (struct rte_ether_addr *)opt.fl.dst_mac) != 0)
				usage();
			opt.have_dst_mac = true;
			break;
		case 'O': opt.fl.dport = (uint16_t)atoi(optarg); break;
		case 'o': opt.fl.sport = (uint16_t)atoi(optarg); break;
		case 'N': opt.fl.nsports = (uint16_t)atoi(optarg); break;
		case 'd': opt.duration = atof(optarg); break;
		case 'w': opt.warmup = atof(optarg); break;
		case 'c': opt.window = (unsigned int)atoi(optarg); break;
		case 'r': opt.rate = atof(optarg); break;
		case 'n': opt.max_requests = strtoull(optarg, NULL, 10); break;
		case 't': opt.timeout = atof(optarg); break;
		case 'L': opt.preload = true; break;
		case 'C': opt.pcap = optarg; break;
		case 'j': opt.json = optarg; break;
		default: usage();
		}
	}
	if (optind != argc || opt.duration <= 0 || opt.duration > 3600 || opt.warmup < 0 ||
	    opt.warmup > 600 || opt.window == 0 || opt.window > 60000 || opt.rate < 0 ||
	    opt.timeout <= 0 || opt.timeout > 60 || opt.fl.nsports == 0 || opt.max_requests == 0 ||
	    (uint32_t)opt.fl.sport + opt.fl.nsports > 65536)
		usage();
}

/* The port: one RX and one TX queue, no offloads; waits for the link. */
static void
port_setup(struct gen *g)
{
	struct rte_eth_conf conf;
	struct rte_eth_link link;
	uint16_t nrx = RING_SIZE, ntx = RING_SIZE;
	uint64_t t0;
	int ret;
	if (opt.port[0] != '\0') {
		if (rte_eth_dev_get_port_by_name(opt.port, &g->port) != 0)
			rte_exit(EXIT_FAILURE, "mcgen: no ethdev named %s\n", opt.port);
	} else {
		if (rte_eth_dev_count_avail() == 0)
			rte_exit(EXIT_FAILURE, "mcgen: no ethdev (give --vdev or -a)\n");
		g->port = (uint16_t)rte_eth_find_next_owned_by(0, RTE_ETH_DEV_NO_OWNER);
	}
	g->pool = rte_pktmbuf_pool_create("mcgen_pool", NB_MBUFS, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
					  (int)rte_socket_id());
	if (g->pool == NULL)
		rte_exit(EXIT_FAILURE, "mcgen: mbuf pool: %s\n", rte_strerror(rte_errno));
	memset(&conf, 0, sizeof(conf));
	ret = rte_eth_dev_configure(g->port, 1, 1, &conf);
	if (ret == 0)
		ret = rte_eth_dev_adjust_nb_rx_tx_desc(g->port, &nrx, &ntx);
	if (ret == 0)
		ret = rte_eth_rx_queue_setup(g->port, 0, nrx, rte_eth_dev_socket_id(g->port), NULL, g->pool);
	if (ret == 0)
		ret = rte_eth_tx_queue_setup(g->port, 0, ntx, rte_eth_dev_socket_id(g->port), NULL);
	/* A memif client may find the server still closing its previous peer: try again. */
	if (ret == 0) {
		int tries = 0;
		while ((ret = rte_eth_dev_start(g->port)) != 0 && ++tries < 50 && !force_quit)
			rte_delay_ms(100);
	}
	if (ret != 0)
		rte_exit(EXIT_FAILURE, "mcgen: port %u setup: err=%d\n", g->port, ret);
	rte_eth_macaddr_get(g->port, (struct rte_ether_addr *)opt.fl.src_mac);
	t0 = rte_rdtsc();
	do {
		rte_eth_link_get_nowait(g->port, &link);
		if (link.link_status == RTE_ETH_LINK_UP)
			return;
		rte_delay_ms(10);
	} while (!force_quit && since(g, t0) < LINK_WAIT_S);
	rte_exit(EXIT_FAILURE, "mcgen: port %u: link down after %d s (is the peer up?)\n", g->port,
		 LINK_WAIT_S);
}

static size_t
max_request(const struct mc_wl *wl)
{
	/* The largest of: a get of mget of the longest keys (binary's 24-byte headers are the
	 * widest framing) and a set of the longest key and value. */
	size_t get = MC_WL_UDP_HDR + wl->mget * (24u + wl->key_max + 8u) + 4;
	size_t set = MC_WL_UDP_HDR + 48u + wl->key_max + wl->value_max;
	return get > set ? get : set;
}

int
main(int argc, char **argv)
{
	static struct gen g;
	const char *why;
	double secs;
	char mac[RTE_ETHER_ADDR_FMT_SIZE];
	int ret = rte_eal_init(argc, argv);
	if (ret < 0)
		rte_exit(EXIT_FAILURE, "mcgen: EAL init failed\n");
	argc -= ret;
	argv += ret;
	mc_wl_defaults(&g.wl);
	parse_args(&g, argc, argv);
	if ((why = mc_wl_setup(&g.wl, true)) != NULL)
		rte_exit(2, "mcgen: %s\n", why);
	if (max_request(&g.wl) > MCG_MAX_PAYLOAD)
		rte_exit(2, "mcgen: requests this large (keys x --mget) do not fit one 1514-byte frame\n");
	if (opt.pcap && (why = mcg_pcap_load(&g.pc, opt.pcap)) != NULL)
		rte_exit(2, "mcgen: %s: %s\n", opt.pcap, why);
	if (g.pc.n)
		g.wl.proto = g.pc.req[0].proto; /* what the report names */
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	g.hz = rte_get_tsc_hz();
	g.seed = 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
	if (mcg_match_create(&g.mt, &g.wl, (uint64_t)(opt.timeout * (double)g.hz), 1e9 / (double)g.hz))
		rte_exit(EXIT_FAILURE, "mcgen: out of memory for the request table\n");
	g.draws = malloc(DRAWS * sizeof(*g.draws));
	if (g.draws == NULL)
		rte_exit(EXIT_FAILURE, "mcgen: out of memory for the key draws\n");
	for (uint32_t i = 0; i < DRAWS; i++)
		g.draws[i] = (uint32_t)mc_wl_pick_key(&g.wl, &g.seed);
	port_setup(&g);
	if (!opt.have_dst_mac && resolve(&g) != 0)
		rte_exit(EXIT_FAILURE, "mcgen: no ARP reply from the target in %d s\n", ARP_WAIT_S);
	rte_ether_format_addr(mac, sizeof(mac), (struct rte_ether_addr *)opt.fl.dst_mac);
	fprintf(stderr, "mcgen: port %u to %s (%s)%s%s\n", g.port, inet_ntoa((struct in_addr){htonl(opt.fl.dst_ip)}),
		mac, g.pc.n ? ", replaying " : "", g.pc.n ? opt.pcap : "");
	if (g.pc.skipped)
		fprintf(stderr, "mcgen: %u pcap frames are not memcached requests; skipped\n", g.pc.skipped);
	if (opt.preload && !g.pc.n) {
		secs = run_phase(&g, PH_PRELOAD, PRELOAD_MAX_S);
		fprintf(stderr, "mcgen: preloaded %llu keys in %.2fs (%llu wrong, %llu lost)\n",
			(unsigned long long)g.preload_next, secs, (unsigned long long)g.mt.all.errors,
			(unsigned long long)g.mt.all.loss);
	}
	if (opt.warmup > 0)
		run_phase(&g, PH_WARMUP, opt.warmup);
	secs = run_phase(&g, PH_MEASURE, opt.duration);
	drain(&g);
	report(&g, secs);
	rte_eth_dev_stop(g.port);
	rte_eth_dev_close(g.port);
	mcg_match_destroy(&g.mt);
	mcg_pcap_free(&g.pc);
	free(g.draws);
	mc_wl_teardown(&g.wl);
	rte_eal_cleanup();
	return 0;
}
