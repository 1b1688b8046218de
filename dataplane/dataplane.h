/* Dataplane: ports and queues, the per-lcore RX/TX loop, L2/L3 (Ethernet, ARP, ICMP echo,
 * IPv4, UDP) and reply transmission. The only module that touches rte_ethdev. */
#ifndef MC_DATAPLANE_H
#define MC_DATAPLANE_H

#include <stdbool.h>
#include <stdint.h>

#include <rte_common.h>
#include <rte_ether.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include "../config/config.h"

#define MC_BURST 32
#define MC_MAX_PORTS 8
#define MC_TX_BUF 256

/* Per-lcore counters; X(name, help). Drop reasons start with drop_. */
#define MC_DP_COUNTERS(X)                                                                      \
	X(rx_packets, "frames received")                                                       \
	X(tx_packets, "frames sent")                                                           \
	X(tx_full, "frames the TX queue refused (freed)")                                      \
	X(arp_replies, "ARP replies sent")                                                     \
	X(icmp_replies, "ICMP echo replies sent")                                              \
	X(udp_requests, "memcached datagrams handled")                                         \
	X(drop_short, "frame shorter than its headers")                                        \
	X(drop_l2_dst, "not addressed to our MAC or broadcast")                                \
	X(drop_l2_src, "broadcast or multicast source MAC")                                    \
	X(drop_ethertype, "neither IPv4 nor ARP")                                              \
	X(drop_arp, "ARP that is not a request for our address")                               \
	X(drop_ip_version, "IP version not 4")                                                 \
	X(drop_ip_hdr, "IPv4 header length below 20 or past the frame")                        \
	X(drop_ip_options, "IPv4 options present")                                             \
	X(drop_ip_len, "IPv4 total length disagrees with the frame")                           \
	X(drop_ip_cksum, "bad IPv4 header checksum")                                           \
	X(drop_ip_frag, "IPv4 fragment (no reassembly)")                                       \
	X(drop_ip_dst, "IPv4 destination is not our address")                                  \
	X(drop_ip_src, "IPv4 source is zero, broadcast, multicast or loopback")                \
	X(drop_ip_proto, "IPv4 protocol other than ICMP and UDP")                              \
	X(drop_icmp, "ICMP other than a valid echo request")                                   \
	X(drop_udp_len, "UDP length disagrees with the IPv4 length")                           \
	X(drop_udp_cksum, "bad UDP checksum")                                                  \
	X(drop_udp_port, "UDP to a port other than memcached's")                               \
	X(drop_not_allowed, "source not in the allow list")                                    \
	X(drop_ratelimit, "source over its request or reply-byte rate")                        \
	X(drop_frame, "memcached frame header short or multi-datagram request")                \
	X(drop_nombuf, "no mbuf for a reply datagram")

struct mc_dp_stats {
#define X(name, help) uint64_t name;
	MC_DP_COUNTERS(X)
#undef X
};

struct mc_service; /* the memcached service (udp/), opaque here */

/* Per-source token buckets: a small direct-mapped table per lcore; a new source takes the
 * slot of whatever hashed there before (bounded memory whatever the number of sources). */
#define MC_RL_SLOTS 4096
struct mc_rl_slot {
	uint32_t addr;      /* network order; 0 = empty */
	double req_tokens;  /* fractions accumulate: a slow rate still refills under load */
	double byte_tokens;
	uint64_t last;      /* TSC of the last refill */
};

/* One worker: one lcore, one RX/TX queue pair. */
struct mc_worker {
	uint16_t port_id;
	uint16_t queue_id;
	unsigned int lcore_id;
	uint32_t ip_be;        /* our address, network order */
	uint16_t udp_port_be;  /* memcached port, network order */
	uint16_t udp_port;     /* host order: the first of nports served ports */
	uint16_t nports;       /* ports udp_port .. udp_port + nports - 1 (one per queue) */
	uint8_t tx_cksum_offload; /* port offers IPv4+UDP checksum offload */
	uint8_t no_batch_prefetch; /* measurement only: skip the burst-wide bucket prefetch */
	struct rte_ether_addr mac;
	const struct mc_config *cfg;
	struct rte_mempool *pool;
	struct mc_service *svc;
	struct mc_rl_slot *rl;   /* NULL when rate limits are off */
	double rl_sec_per_tick;  /* 1 / TSC ticks per second */
	uint64_t now;            /* TSC when the burst being handled arrived */
	uint16_t tx_n;
	uint16_t cur;            /* index in the burst of the frame being handled */
	struct mc_prehash {      /* the burst pre-pass's first key per frame, for reuse */
		const uint8_t *key;
		uint32_t len;
		uint64_t hash;
	} pre[MC_BURST];
	struct rte_mbuf *tx[MC_TX_BUF];
	struct mc_dp_stats st;
} __rte_cache_aligned;

struct mc_port {
	uint16_t port_id;
	uint16_t queues;
	int socket;
	uint64_t tx_offloads;
	struct rte_ether_addr mac;
	struct rte_mempool *pool;
	bool flow_steering;     /* rte_flow rules steer port udp_port + q to queue q */
	char name[64];
};

/* The ports to drive: the one named by --port, else every probed port. Returns how many. */
unsigned int mc_dp_ports_find(const struct mc_config *cfg, uint16_t *ids, unsigned int max);
/* Configure port_id, its queues and mempool, and start it. rte_exit on failure. */
void mc_dp_port_setup(const struct mc_config *cfg, uint16_t port_id, struct mc_port *port);
/* A started one-queue port on rings (DPDK's net_ring): what it sends lands in *tx, for tests,
 * fuzzing and the in-process benchmark. Fills port (id, pool, mac). Returns 0 or -1. */
int mc_dp_ring_port(const char *name, struct rte_mempool *pool, const struct rte_ether_addr *mac,
		    struct mc_port *port, struct rte_ring **tx);
/* Stop and close the port. */
void mc_dp_port_teardown(struct mc_port *port);
/* Prepare worker w for queue q of port. */
void mc_dp_worker_init(struct mc_worker *w, const struct mc_config *cfg,
		       const struct mc_port *port, uint16_t q);

/* Release what mc_dp_worker_init allocated. */
void mc_dp_worker_fini(struct mc_worker *w);

/* Handle one burst of received frames: replies are queued on w->tx (flushed to the queue when
 * it fills) and everything else is freed and counted. The production per-burst function. */
void mc_dp_handle_burst(struct mc_worker *w, struct rte_mbuf **pkts, uint16_t n);
/* Send what is queued on w->tx; free and count what the queue refuses. */
void mc_dp_tx_flush(struct mc_worker *w);
/* Queue one reply frame for TX. */
void mc_dp_tx_push(struct mc_worker *w, struct rte_mbuf *m);

/* The worker loop: polls until *quit is set; when idle, calls tick(arg) about 10 times a
 * second (the main lcore prints stats from it). */
void mc_dp_worker_loop(struct mc_worker *w, volatile bool *quit, void (*tick)(void *), void *arg);

/* Sum the counters of n workers into out. */
void mc_dp_stats_sum(const struct mc_worker *ws, unsigned int n, struct mc_dp_stats *out);
/* Format a one-line summary (rx, tx, non-zero drops) into buf. */
int mc_dp_stats_line(const struct mc_dp_stats *s, char *buf, size_t len);

/* Rate limits: may src (network order) send a request at w->now (the burst's TSC)? Charge
 * reply bytes after. */
bool mc_dp_rl_admit(struct mc_worker *w, uint32_t src);
void mc_dp_rl_charge(struct mc_worker *w, uint32_t src, uint32_t bytes);

/* Fill IPv4/UDP lengths and checksums of a reply whose L2..L4 headers were swapped in place.
 * l2_len is the Ethernet header length (14 or 18), payload_len the UDP payload length. */
void mc_dp_udp_finish(const struct mc_worker *w, struct rte_mbuf *m, uint16_t l2_len,
		      uint16_t payload_len);

#endif
