/* Dataplane: ports and queues, the per-lcore poll, the burst pipeline (L2-L4 parsed once,
 * keys hashed, items prefetched, frames executed), ARP, IPv6 neighbor discovery, ICMP and
 * ICMPv6 echo, IPv4 and IPv6 reassembly, the reply builders and the TX backlog, per-source
 * budgets. The only module that touches rte_ethdev; it calls the
 * memcached UDP codec (udp/), the protocol (proto/) and the store. */
#ifndef MC_DATAPLANE_H
#define MC_DATAPLANE_H

#include <stdbool.h>
#include <stdint.h>

#include <rte_common.h>
#include <rte_ether.h>
#include <rte_ip_frag.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include "../config/config.h"
#include "../proto/proto.h"
#include "../udp/udp.h"

#define MC_BURST 32
#define MC_MAX_PORTS 8
/* Reply frames a worker holds for its TX queue. A reply goes in whole or not at all: what the
 * queue does not take at once waits here for the next poll, so a multi-datagram reply is
 * never cut. Twice the datagrams of the largest UDP reply (1 MiB cap). */
#define MC_TX_BACKLOG 2048
#define MC_TX_FLUSH_AT 64   /* hand frames to the queue once this many wait */
/* Exception path: each frame for the kernel costs the worker a write on a TAP, so a flood for
 * the kernel (SYNs, say) must not take its time from the fast path: at most MC_EXC_PPS frames a
 * second per worker go (a token bucket of MC_EXC_BUCKET frames), the rest are counted drops.
 * A few microseconds a frame: 200k/s is at most a fifth of the worker, and well above what
 * TCP clients need on this path (memcaslap -c 16: under 100k frames/s). */
#define MC_EXC_BURST MC_BURST
#define MC_EXC_PPS 200000
#define MC_EXC_BUCKET 512
/* Under load (full RX bursts) the exception queue is read every this many polls: on a TAP an
 * empty read is a syscall. A poll whose burst was not full reads it every time. */
#define MC_EXC_POLL_EVERY 16
/* Neighbor solicitations answered a second per worker (a bucket of MC_ND_BUCKET): their own
 * budget, not the source's, since any on-link host may send them with any source address. A
 * neighbour solicits a few times a minute. The defence of our address against duplicate
 * address detection goes to all nodes: one a second. */
#define MC_ND_PPS 1000
#define MC_ND_BUCKET 64

/* Per-lcore counters; X(name, help). Drop reasons start with drop_. */
#define MC_DP_COUNTERS(X)                                                                      \
	X(rx_packets, "frames received")                                                       \
	X(tx_packets, "frames sent")                                                           \
	X(tx_deferred, "times the TX queue took only part of the backlog (the rest waited)")    \
	X(drop_tx_backlog, "replies refused whole, or kernel frames refused: no room in the TX "  \
			   "backlog")                                                          \
	X(exc_to_kernel, "frames handed to the kernel interface (exception path)")            \
	X(exc_from_kernel, "frames the kernel interface sent, queued for the port")            \
	X(arp_replies, "ARP replies sent")                                                     \
	X(icmp_replies, "ICMP and ICMPv6 echo replies sent")                                   \
	X(nd_replies, "IPv6 neighbor advertisements sent (answers, and one unsolicited at start)") \
	X(frag_received, "IP fragments taken in for reassembly")                               \
	X(frag_reassembled, "datagrams reassembled from fragments")                            \
	X(frag_dropped, "fragments given up in reassembly: timed out, overlapping, duplicated, " \
			"too many, or no room in the table")                                   \
	X(udp_requests, "memcached datagrams handled")                                         \
	X(drop_short, "frame shorter than its headers")                                        \
	X(drop_l2_dst, "not addressed to our MAC or broadcast")                                \
	X(drop_l2_src, "broadcast or multicast source MAC")                                    \
	X(drop_ethertype, "neither IPv4, ARP nor IPv6 (IPv6 too without --ip6)")               \
	X(drop_arp, "ARP that is neither a request for our address nor a reply to it (replies " \
		    "too with --exception off)")                                               \
	X(drop_ip_version, "IP version not that of the Ethernet type")                        \
	X(drop_ip_hdr, "IPv4 header length below 20 or past the frame")                        \
	X(drop_ip_options, "IPv4 options present")                                             \
	X(drop_ip_len, "IPv4 total length or IPv6 payload length disagrees with the frame")   \
	X(drop_ip_cksum, "bad IPv4 header checksum")                                           \
	X(drop_ip_frag, "IP fragment refused before reassembly: not UDP, empty, misaligned, past " \
			"64 KiB, a first fragment without the UDP header, or (IPv6) after other " \
			"extension headers")                                                   \
	X(drop_ip_dst, "IP destination is not our address")                                    \
	X(drop_ip_src, "IP source zero, broadcast, multicast, loopback, ours, IPv4-mapped, or our " \
		       "subnet's network or broadcast address")                                \
	X(drop_ip_proto, "IP protocol other than ICMP, UDP and TCP (TCP too with --exception " \
			 "off)")                                                               \
	X(drop_ip6_ext, "IPv6 extension header not walked: a routing header with segments left, " \
			"hop-by-hop not first, too many, or past the frame")                   \
	X(drop_nd, "IPv6 neighbor discovery malformed, hop limit not 255, or not for our address") \
	X(drop_nd_rate, "neighbor solicitations beyond MC_ND_PPS a second per worker (those of " \
			"duplicate address detection: beyond one a second)")                  \
	X(drop_icmp, "ICMP short, badly summed, or an echo request with a code (any ICMP but "  \
		     "echo requests too with --exception off)")                                \
	X(drop_tcp_cksum, "TCP for the kernel with a bad checksum")                            \
	X(drop_udp_len, "UDP length disagrees with the IPv4 length")                           \
	X(drop_udp_cksum, "bad UDP checksum")                                                  \
	X(drop_udp_port, "UDP to a port other than memcached's")                               \
	X(drop_tcp_port, "TCP to a port other than the TCP service's (-p)")                    \
	X(drop_src_port, "UDP from a well-known service port (reflection loops)")               \
	X(drop_not_allowed, "source (IPv4, ICMP or ARP sender) not in the allow list")          \
	X(drop_ratelimit, "source over its request or reply-byte budget")                      \
	X(drop_frame, "memcached frame header short or multi-datagram request")                \
	X(drop_nombuf, "no mbuf for a reply datagram")                                         \
	X(drop_exc_cap, "frames for the kernel beyond MC_EXC_PPS a second per worker")           \
	X(drop_exc_full, "frames for the kernel its exception queue refused")                  \
	X(drop_no_exception, "frames for the kernel with no exception path here (it could not " \
			     "be created, or the port is not port 0)")

enum mc_dp_counter {
#define X(name, help) MC_DP_CTR_##name,
	MC_DP_COUNTERS(X)
#undef X
	MC_DP_NCOUNTERS
};

/* By name, or by enum mc_dp_counter (the parse stage's verdicts). */
struct mc_dp_stats {
	union {
		struct {
#define X(name, help) uint64_t name;
			MC_DP_COUNTERS(X)
#undef X
		};
		uint64_t c[MC_DP_NCOUNTERS];
	};
};

/* One received frame as the parse stage leaves it for the later stages. HELD: a fragment the
 * reassembly table keeps (nothing more to do with it). */
enum mc_frame_kind {
	MC_FRAME_DROP, MC_FRAME_ARP, MC_FRAME_ICMP, MC_FRAME_MEMCACHED, MC_FRAME_KERNEL,
	MC_FRAME_ND, MC_FRAME_HELD
};
/* Frames ahead of the one executing whose items' other lines are requested (burst.c). */
#define MC_ITEM_AHEAD 4

struct mc_frame {
	struct rte_mbuf *m;
	uint8_t kind;            /* enum mc_frame_kind */
	uint8_t drop;            /* MC_FRAME_DROP: its enum mc_dp_counter; MC_FRAME_KERNEL: the
				  * counter it falls to with --exception off */
	uint8_t v6;              /* IPv6 (else IPv4) */
	uint8_t l3_len;          /* IP header length before L4: 20, or 40 (an IPv6 frame we answer
				  * has its extension headers cut out first) */
	uint16_t l2;             /* Ethernet header length (14, or 18 with 802.1Q) */
	uint16_t l4_len;         /* IP payload length (L4 header and data) */
	uint16_t payload_len;    /* UDP payload: memcached frame header and request */
	uint16_t reply_off;      /* where an in-place reply goes in the buffer */
	bool hdr_ok;             /* the memcached frame header parsed (stage 2, or execution) */
	uint8_t lone;            /* the request is exactly "get <key>\r\n" (1) or "gets" (2), key
				  * hashed: mc_dp_reply_lone may answer it */
	uint64_t src_key;        /* the source's budget: its IPv4 address, or its IPv6 /64 */
	struct mc_rl_slot *rl_slot; /* src_key's budget slot, for the request's admission and its
				     * reply's charge (a memcached frame's, from stage 2; unset
				     * without limits) */
	const uint8_t *payload;  /* the UDP payload in view, or NULL (chained: copied later) */
	uint64_t ck_sum;         /* a UDP checksum stage 2 verifies: its pseudo header's sum (never
				  * 0); 0: none to verify (none sent, or the NIC's verdict) */
	struct mc_udp_frame hdr; /* the memcached frame header */
	struct mc_key key;       /* the request's first key, hashed (p NULL: none found) */
	const void *item_later[2]; /* its item's lines to request nearer its turn (stage 2b) */
};

/* The service's counters, as `stats` and telemetry name them; X(name, help). */
#define MC_SVC_COUNTERS(X)                                                                     \
	X(reply_datagrams, "reply datagrams built")                                            \
	X(replies_split, "replies that needed more than one datagram")                         \
	X(zc_values, "values sent from item memory (zero-copy)")                               \
	X(zc_fallbacks, "zero-copy replies copied after all (holders or mbufs short)")

struct mc_svc_stats {
#define X(name, help) uint64_t name;
	MC_SVC_COUNTERS(X)
#undef X
};

/* Per-worker memcached service state: the protocol context (with this lcore's store handle),
 * the scratch a long reply spills into, the zero-copy holders and reply counters. */
struct mc_service {
	struct mc_proto_ctx px;
	uint8_t *scratch;
	size_t scratch_cap;
	uint8_t *lin;           /* a chained request is linearised here */
	uint32_t zc_min;        /* values this long go zero-copy; 0 = off */
	struct rte_mempool *zc_pool; /* zero-copy holders (shared info + item reference) */
	struct mc_svc_stats st;
};

/* Largest reply kept for one request: enough for a multi-get of two maximal items. */
static inline size_t
mc_dp_scratch_size(uint32_t max_item_size)
{
	size_t n = 2 * (size_t)max_item_size + 65536;
	return n < (4u << 20) ? (4u << 20) : n;
}

/* Create a worker's service on socket: protocol context over store, reply scratch and the
 * linearising buffer. NULL if memory is short. */
struct mc_service *mc_dp_service_create(struct mc_store *store, const struct mc_proto_conf *conf,
					uint32_t max_item_size, int socket);
/* Turn on zero-copy for values of at least min bytes (the port must take chained mbufs). */
int mc_dp_service_zero_copy(struct mc_service *svc, uint32_t min, int socket);
void mc_dp_service_destroy(struct mc_service *svc);

/* Per-source budgets, one table shared by every worker of every port (RSS spreads one source
 * over all queues; it still has one budget). Each budget is a GCRA: the theoretical arrival
 * time (TSC) of the source's next request or byte; a charge moves it on by the cost and is
 * refused if that would put it more than the burst window ahead of now. A new source starts
 * with the burst, not a second's worth. Slots are chosen by a keyed multiply-shift hash and
 * hold no address: sources that collide share one budget, so alternating two colliding
 * sources earns nothing, and an attacker cannot aim at a victim's slot without the secret. */
#define MC_RL_SLOTS 65536
struct mc_rl_slot {
	uint64_t req_tat;
	uint64_t byte_tat;
};
struct mc_rl {
	struct mc_rl_slot *slot;
	uint64_t k0, k1;         /* hash secret (k1 odd) */
	uint64_t req_cost;       /* TSC ticks a request costs; 0 = no request limit */
	uint64_t req_window;     /* burst: how far ahead of now the arrival time may run */
	uint64_t byte_cost_fp;   /* TSC ticks a reply byte costs, << 16; 0 = no byte limit */
	uint64_t byte_window;
	uint64_t byte_min;       /* the cost of the smallest reply: a budget without it is spent */
	bool shared;             /* more than one worker charges it (compare-and-swap); the app
				  * clears it when it runs a single worker */
};

struct mc_store;

/* A worker's exception path: off by --exception off (kernel-bound frames count their old drop
 * reasons), asked for but missing on this worker (drop_no_exception), or on. */
enum mc_exc_state { MC_EXC_OFF, MC_EXC_MISSING, MC_EXC_ON };

/* One worker: one lcore, one RX/TX queue pair, one store partition. */
struct mc_worker {
	uint16_t port_id;
	uint16_t queue_id;
	uint16_t part;         /* the store partition this worker owns: its sweep, its steering */
	unsigned int lcore_id;
	uint32_t ip_be;        /* our address, network order (0: no IPv4) */
	uint32_t mask_be;      /* our netmask, network order */
	/* Our subnet's network and broadcast addresses, host order, sources no request may
	 * have; both 0 for a /31 or /32 (which have no such addresses; 0 is refused anyway). */
	uint32_t src_net, src_bcast;
	uint8_t has_ip6;       /* --ip6 given */
	uint8_t ip6[16];       /* our IPv6 address */
	uint8_t ip6_sn[16];    /* its solicited-node multicast address */
	struct rte_ether_addr ip6_sn_mac; /* and that group's MAC (33:33:ff:..) */
	uint16_t udp_port_be;  /* memcached port, network order */
	uint16_t udp_port;     /* host order: the first of nports served ports */
	uint16_t nports;       /* ports udp_port .. udp_port + nports - 1 (one per partition) */
	uint8_t tx_cksum_offload; /* port offers IPv4+UDP checksum offload */
	uint8_t no_batch_prefetch; /* measurement only: skip the burst-wide bucket prefetch */
	struct rte_ether_addr mac;
	const struct mc_config *cfg;
	struct rte_mempool *pool;
	struct mc_service *svc;
	struct mc_rl *rl;        /* shared; NULL when rate limits are off */
	uint64_t now;            /* TSC when the burst being handled arrived */
	/* The burst's admission bounds from now (mc_dp_rl_bounds; with rl): a request is refused
	 * when its source's req_tat is past the first or its byte_tat past the second. */
	uint64_t rl_req_lim, rl_byte_lim;
	/* And its byte charges (mc_dp_rl_charge_at): the cost of a byte (rl's byte_cost_fp; 0
	 * without rl or a byte limit) and the byte_tat a charge may not take the budget past. */
	uint64_t rl_byte_fp, rl_byte_end;
	/* The burst's amplification cap, from the config (a change applies from the next burst):
	 * the bytes one request may draw (udp_reply_max, within the scratch) and per request byte
	 * (max_reply_ratio, 0: none). */
	uint32_t reply_max, reply_ratio;
	/* Housekeeping (mc_dp_poll), on time however busy the queue: the store's clock, a
	 * bounded sweep of this worker's partition, and the tick callback. */
	struct mc_store *store;
	void (*tick)(void *);    /* the main lcore's: stats line, link check */
	void *tick_arg;
	uint64_t tsc_hz;
	uint64_t clock_tsc0;     /* TSC when the store's clock started (the same for all) */
	uint64_t hk_next;        /* TSC of the next housekeeping step */
	uint64_t hk_tx_seen;     /* st.tx_packets at the last housekeeping step */
	uint64_t tx_reclaimed;   /* st.tx_packets at the last TX call with no frames */
	uint64_t tick_next;
	uint64_t clock_secs;     /* monotonic seconds last given to the store */
	uint16_t tx_head;        /* TX backlog: a ring of tx_n frames from tx_head */
	uint16_t tx_n;
	uint8_t tx_stalled;      /* the queue refused frames this poll: pushes do not retry */
	/* The exception path (exception.c): queue queue_id of exc_port, both ways. */
	uint8_t exc;             /* enum mc_exc_state */
	uint8_t exc_skip;        /* full-burst polls since the exception queue was read */
	uint16_t exc_port;
	uint16_t exc_n;          /* kernel-bound frames of the burst being handled */
	uint64_t exc_tat;        /* the kernel's token bucket: theoretical arrival (TSC) */
	uint64_t nd_tat, dad_tat; /* neighbor advertisements' buckets (ip6.c) */
	struct rte_mbuf *exc_tx[MC_EXC_BURST];
	/* Reassembly (frag.c): this worker's table, and the fragments it gave up, freed after
	 * each burst. NULL table: fragments are refused (drop_ip_frag). */
	struct rte_ip_frag_tbl *frag;
	struct rte_ip_frag_death_row dr;
	/* The burst being handled, stage by stage, and MC_ITEM_AHEAD more frames whose
	 * item_later point at something cached: the execute loop requests frame
	 * i + MC_ITEM_AHEAD's without a bounds check. */
	struct mc_frame frames[MC_BURST + MC_ITEM_AHEAD];
	/* IPv4 sources that passed the source checks (bad_source_ip, the allowed list: both fixed
	 * once the worker starts), by their address's last byte: a's entry is a | 1 << 32, so
	 * the zeroed table holds none. A collision only means checking again. */
	uint64_t src_ok[256];
	struct rte_mbuf *tx[MC_TX_BACKLOG];
	struct mc_dp_stats st;
} __rte_cache_aligned;

struct mc_port {
	uint16_t port_id;
	uint16_t queues;
	int socket;
	uint64_t tx_offloads;
	struct rte_ether_addr mac;
	struct rte_mempool *pool;
	uint16_t first_part;    /* the store partition of queue 0 (queue q owns first_part + q) */
	uint16_t nparts;        /* partitions of the whole box: UDP ports udp_port + 0..nparts-1 */
	bool flow_steering;     /* rte_flow rules steer udp_port + first_part + q to queue q */
	char name[64];
};

/* The ports to drive: the one named by --port, else every probed port. Returns how many. */
unsigned int mc_dp_ports_find(const struct mc_config *cfg, uint16_t *ids, unsigned int max);
/* Configure port_id, its queues and mempool, and start it; its queues own store partitions
 * first_part.. of nparts in all. rte_exit on failure. */
void mc_dp_port_setup(const struct mc_config *cfg, uint16_t port_id, uint16_t first_part,
		      uint16_t nparts, struct mc_port *port);
/* A started one-queue port on rings (DPDK's net_ring): what it sends lands in *tx, for tests,
 * fuzzing and the in-process benchmark. Fills port (id, pool, mac). Returns 0 or -1. */
int mc_dp_ring_port(const char *name, struct rte_mempool *pool, const struct rte_ether_addr *mac,
		    struct mc_port *port, struct rte_ring **tx);
/* Stop and close the port. */
void mc_dp_port_teardown(struct mc_port *port);
/* Prepare worker w for queue q of port; it owns store partition part and shares the rate
 * limiter rl (NULL: none). Housekeeping starts from clock_tsc0. */
void mc_dp_worker_init(struct mc_worker *w, const struct mc_config *cfg,
		       const struct mc_port *port, uint16_t q, uint16_t part, struct mc_rl *rl,
		       uint64_t clock_tsc0);

/* The exception port: a kernel interface (TAP PMD or virtio-user over vhost-net) carrying
 * port 0's MAC, with one queue pair per queue of port 0; queue q is worker q's both ways. */
struct mc_exc {
	uint16_t port_id;
	uint16_t queues;
	bool up;                 /* created and started */
	struct rte_mempool *pool; /* what the kernel sends is received into this */
	char dev[64];            /* the vdev's name */
	char ifname[16];
};

/* Create and start the exception device of kind "tap" or "virtio" named ifname, with port's
 * MAC and queue count; IPv6 is turned off on the interface before it can come up. Returns 0,
 * or -1 with a reason in err (nothing left behind). */
int mc_dp_exception_create(const char *kind, const char *ifname, const struct mc_port *port,
			   struct mc_exc *exc, char *err, size_t errlen);
/* Set up its kernel interface with ioctls: port's MAC (checked), port's MTU, ip/netmask (host
 * order; ip 0: no address), link up, and ip6 (NULL or bits 0: IPv6 stays off on it). Returns
 * 0, or -1 with a reason in err. */
int mc_dp_exception_kernel_if(const struct mc_exc *exc, const struct mc_port *port, uint32_t ip,
			      uint32_t netmask, const struct mc_cidr6 *ip6, char *err,
			      size_t errlen);
/* Stop, close and remove the device (its kernel interface goes with it). */
void mc_dp_exception_destroy(struct mc_exc *exc);
/* Give worker w (of port 0) exception queue w->queue_id of exc. */
void mc_dp_worker_exception(struct mc_worker *w, const struct mc_exc *exc);
/* Read the exception RX queue and queue what the kernel sent on the worker's TX backlog. */
void mc_dp_exception_rx(struct mc_worker *w);

/* After a port RX burst of n frames: read the exception queue if it is due: after every burst
 * that brought frames but did not fill (traffic, the kernel's among it perhaps), else every
 * MC_EXC_POLL_EVERY polls (on a TAP an empty read is a syscall: an idle loop must not spin
 * on it, nor a saturated one). The worker loop also reads it after each idle nap. */
static inline void
mc_dp_exception_poll(struct mc_worker *w, uint16_t n)
{
	if (w->exc != MC_EXC_ON)
		return;
	if ((n == 0 || n == MC_BURST) && ++w->exc_skip < MC_EXC_POLL_EVERY)
		return;
	mc_dp_exception_rx(w);
}

/* Release what the worker still holds (frames waiting in its TX backlog, fragments waiting
 * for the rest of their datagram). */
void mc_dp_worker_fini(struct mc_worker *w);

/* Announce our IPv6 address: one unsolicited neighbor advertisement to all nodes, queued on
 * w's TX backlog (sent with its next flush). Nothing without --ip6. Called for queue 0 of
 * each port, before the workers run. */
void mc_dp_announce(struct mc_worker *w);

/* Reassembly bounds per worker: datagrams in progress at once (each holds at most
 * RTE_LIBRTE_IP_FRAG_MAX_FRAG mbufs, so a port's pool adds this many times that per queue),
 * and how long an incomplete one may wait. */
#define MC_FRAG_MAX_DGRAMS 128
#define MC_FRAG_TIMEOUT_MS 2000

/* Handle one burst of received frames: replies are queued on w's TX backlog and everything
 * else is freed and counted. The production per-burst function. */
void mc_dp_handle_burst(struct mc_worker *w, struct rte_mbuf **pkts, uint16_t n);
#ifdef MC_STAGE_TSC
/* A measurement build's TSC cycles by stage (mc_dp_handle_burst): set-up and header
 * prefetch, parse, hash and bucket prefetch, item prefetch, execute. */
#define MC_DP_STAGES 5
extern uint64_t mc_dp_stage_tsc[MC_DP_STAGES];
#endif
/* Hand the TX backlog to the queue; what it does not take waits for the next call. */
void mc_dp_tx_flush(struct mc_worker *w);
/* Room for n more reply frames in the TX backlog (flushing first if need be)? A reply that
 * gets false is refused whole by its caller (counted as drop_tx_backlog). */
bool mc_dp_tx_reserve(struct mc_worker *w, unsigned int n);
/* Queue one reply frame for TX (room reserved before). */
void mc_dp_tx_push(struct mc_worker *w, struct rte_mbuf *m);

/* One poll at TSC now: a burst from the RX queue, the exception queue when it is due, the TX
 * backlog flushed, and housekeeping when it is due (every millisecond, however busy the
 * queue). Returns the frames received from the port. */
unsigned int mc_dp_poll(struct mc_worker *w, uint64_t now);
/* The worker loop: mc_dp_poll until *quit is set, napping when idle if configured. */
void mc_dp_worker_loop(struct mc_worker *w, volatile bool *quit);

/* Sum the counters of n workers into out. */
void mc_dp_stats_sum(const struct mc_worker *ws, unsigned int n, struct mc_dp_stats *out);
/* Format a one-line summary (rx, tx, non-zero drops) into buf. */
int mc_dp_stats_line(const struct mc_dp_stats *s, char *buf, size_t len);

/* The shared rate limiter for cfg's source_rps, source_kbps and source_burst_ms; NULL when
 * both rates are 0. rte_exit when memory is short. */
struct mc_rl *mc_dp_rl_create(const struct mc_config *cfg, uint64_t tsc_hz, int socket);
void mc_dp_rl_destroy(struct mc_rl *rl);
/* Rate limits at w->now (the burst's TSC): may src (the frame's src_key) send a request (its
 * request budget is charged, and its byte budget must not be spent)? Then, before a reply
 * leaves, charge its bytes: false means the budget cannot pay and the reply is dropped. */
/* Inline: both run for every request (budget.c sets the table up). */
static inline struct mc_rl_slot *
mc_dp_rl_slot(const struct mc_rl *rl, uint64_t src)
{
	/* Multiply-shift with a secret: 2-universal, so no two sources collide by design. src is
	 * an IPv4 address, or an IPv6 /64 (one host's share of the address space). */
	return &rl->slot[((src ^ rl->k0) * rl->k1) >> (64 - 16)];
}

/* GCRA: move *tat on by cost unless that puts it past end (now plus the window). Lock-free:
 * workers on other queues may charge the same slot. */
static inline bool
mc_dp_gcra_take(const struct mc_rl *rl, uint64_t *tat, uint64_t now, uint64_t cost,
		uint64_t end)
{
	uint64_t t = __atomic_load_n(tat, __ATOMIC_RELAXED), n;
	if (!rl->shared) {
		/* One worker: nobody else writes the slot, a plain update will do (a locked
		 * compare-and-swap costs about 20 cycles a request, twice). */
		n = (t > now ? t : now) + cost;
		if (n > end)
			return false;
		__atomic_store_n(tat, n, __ATOMIC_RELAXED);
		return true;
	}
	do {
		n = (t > now ? t : now) + cost;
		if (n > end)
			return false;
	} while (!__atomic_compare_exchange_n(tat, &t, n, true, __ATOMIC_RELAXED,
					      __ATOMIC_RELAXED));
	return true;
}

/* The admission bounds at now (struct mc_worker's rl_req_lim, rl_byte_lim): past the first, a
 * request would take the source's req_tat more than the burst window ahead of now (the window
 * is at least one request's cost, so a tat at or before now never is); past the second, its
 * byte budget cannot pay even the smallest reply. A limit that is off bounds nothing. */
static inline void
mc_dp_rl_bounds(const struct mc_rl *rl, uint64_t now, uint64_t *req_lim, uint64_t *byte_lim)
{
	*req_lim = rl->req_cost != 0 ? now + rl->req_window - rl->req_cost : UINT64_MAX;
	*byte_lim = rl->byte_cost_fp != 0 ? now + rl->byte_window - rl->byte_min : UINT64_MAX;
}

/* A request admitted at slot s under those bounds: its req_tat moved on by a request's cost. A
 * source whose byte budget cannot pay even the smallest reply gets no request in either:
 * nothing is parsed, looked up or copied for it. */
static inline bool
mc_dp_rl_admit_bounded(const struct mc_rl *rl, struct mc_rl_slot *s, uint64_t now,
		       uint64_t req_lim, uint64_t byte_lim)
{
	uint64_t t;
	if (__atomic_load_n(&s->byte_tat, __ATOMIC_RELAXED) > byte_lim)
		return false;
	t = __atomic_load_n(&s->req_tat, __ATOMIC_RELAXED);
	if (!rl->shared) {
		/* Without a request limit (cost 0) the tat only keeps up with now: harmless. */
		if (t > req_lim)
			return false;
		__atomic_store_n(&s->req_tat, (t > now ? t : now) + rl->req_cost, __ATOMIC_RELAXED);
		return true;
	}
	if (rl->req_cost == 0)
		return true; /* no request limit: no compare-and-swap for nothing */
	do {
		if (t > req_lim)
			return false;
	} while (!__atomic_compare_exchange_n(&s->req_tat, &t, (t > now ? t : now) + rl->req_cost,
					      true, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
	return true;
}

/* mc_dp_rl_admit and mc_dp_rl_charge at the source's slot s, looked up once for both
 * (mc_dp_rl_slot; any value when w->rl is NULL). For the burst being handled: its bounds
 * were worked out when it arrived (mc_dp_handle_burst). */
static inline bool
mc_dp_rl_admit_at(struct mc_worker *w, struct mc_rl_slot *s)
{
	return w->rl == NULL ||
	       mc_dp_rl_admit_bounded(w->rl, s, w->now, w->rl_req_lim, w->rl_byte_lim);
}

static inline bool
mc_dp_rl_charge_at(struct mc_worker *w, struct mc_rl_slot *s, uint32_t bytes)
{
	return w->rl_byte_fp == 0 ||
	       mc_dp_gcra_take(w->rl, &s->byte_tat, w->now, (bytes * w->rl_byte_fp) >> 16,
			       w->rl_byte_end);
}

/* The same at w->now as it is, bounds and all worked out here. */
static inline bool
mc_dp_rl_admit(struct mc_worker *w, uint64_t src)
{
	uint64_t req_lim, byte_lim;
	if (w->rl == NULL)
		return true;
	mc_dp_rl_bounds(w->rl, w->now, &req_lim, &byte_lim);
	return mc_dp_rl_admit_bounded(w->rl, mc_dp_rl_slot(w->rl, src), w->now, req_lim, byte_lim);
}

static inline bool
mc_dp_rl_charge(struct mc_worker *w, uint64_t src, uint32_t bytes)
{
	const struct mc_rl *rl = w->rl;
	if (rl == NULL || rl->byte_cost_fp == 0)
		return true;
	return mc_dp_gcra_take(rl, &mc_dp_rl_slot(rl, src)->byte_tat, w->now,
			       (bytes * rl->byte_cost_fp) >> 16, w->now + rl->byte_window);
}


#endif
