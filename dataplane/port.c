/* Port bring-up and the per-lcore poll loop. */
#include "dp_int.h"

#include <rte_cycles.h>
#include "../store/store.h"
#include <rte_eth_ring.h>
#include <sys/prctl.h>

#include <rte_ethdev.h>
#include <rte_flow.h>
#include <rte_ring.h>
#include <rte_lcore.h>
#include <rte_malloc.h>

#include <time.h>

#define RX_DESC 1024
#define TX_DESC 1024
#define POOL_CACHE 256

unsigned int
mc_dp_ports_find(const struct mc_config *cfg, uint16_t *ids, unsigned int max)
{
	uint16_t pid;
	unsigned int n = 0;
	if (cfg->ethdev[0] != '\0')
		return rte_eth_dev_get_port_by_name(cfg->ethdev, &ids[0]) == 0 ? 1 : 0;
	RTE_ETH_FOREACH_DEV(pid) {
		if (n < max)
			ids[n++] = pid;
	}
	return n;
}

/* Client steering: UDP port udp_port + p goes to the queue that owns store partition p (on this
 * port, queue q owns partition first_part + q), so a client that picks the port from the key's
 * partition reaches the owner without a cross-core hop. Validated first; without support, RSS spreads requests and any
 * queue serves any key. */
static void
flow_steer(const struct mc_config *cfg, struct mc_port *port)
{
	struct rte_flow_error err;
	struct rte_flow *flows[MC_MAX_QUEUES];
	uint16_t q;
	memset(&err, 0, sizeof(err));
	for (q = 0; q < port->queues; q++) {
		struct rte_flow_attr attr = {.ingress = 1};
		/* Unfragmented only: a fragment goes by RSS, which hashes a fragmented
		 * datagram's fragments by addresses alone, so they meet in one worker's table. */
		struct rte_flow_item_ipv4 ip = {.hdr.dst_addr = rte_cpu_to_be_32(cfg->ip)};
		struct rte_flow_item_ipv4 ipm = {.hdr.dst_addr = RTE_BE32(0xffffffff),
						 .hdr.fragment_offset = RTE_BE16(0x3fff)};
		struct rte_flow_item_udp udp = {
			.hdr.dst_port = rte_cpu_to_be_16((uint16_t)(cfg->udp_port + port->first_part + q))};
		struct rte_flow_item_udp udpm = {.hdr.dst_port = RTE_BE16(0xffff)};
		struct rte_flow_item pattern[] = {
			{.type = RTE_FLOW_ITEM_TYPE_ETH},
			{.type = RTE_FLOW_ITEM_TYPE_IPV4, .spec = &ip, .mask = &ipm},
			{.type = RTE_FLOW_ITEM_TYPE_UDP, .spec = &udp, .mask = &udpm},
			{.type = RTE_FLOW_ITEM_TYPE_END},
		};
		struct rte_flow_action_queue qa = {.index = q};
		struct rte_flow_action actions[] = {
			{.type = RTE_FLOW_ACTION_TYPE_QUEUE, .conf = &qa},
			{.type = RTE_FLOW_ACTION_TYPE_END},
		};
		if (rte_flow_validate(port->port_id, &attr, pattern, actions, &err) != 0 ||
		    (flows[q] = rte_flow_create(port->port_id, &attr, pattern, actions, &err)) == NULL) {
			while (q > 0)
				rte_flow_destroy(port->port_id, flows[--q], NULL);
			MC_LOG(NOTICE, "port %s: rte_flow steering not supported (%s); RSS spreads "
				       "requests, any queue serves any key\n",
			       port->name, err.message ? err.message : "no reason given");
			return;
		}
	}
	port->flow_steering = true;
	MC_LOG(NOTICE, "port %s: rte_flow steers UDP ports %u-%u to queues 0-%u\n", port->name,
	       cfg->udp_port + port->first_part, cfg->udp_port + port->first_part + port->queues - 1,
	       port->queues - 1);
}

void
mc_dp_port_setup(const struct mc_config *cfg, uint16_t port_id, uint16_t first_part,
		 uint16_t nparts, struct mc_port *port)
{
	struct rte_eth_conf conf;
	struct rte_eth_dev_info info;
	uint16_t nb_rxd = RX_DESC, nb_txd = TX_DESC, q;
	unsigned int nb_mbufs;
	int ret;

	memset(port, 0, sizeof(*port));
	memset(&conf, 0, sizeof(conf));
	port->port_id = port_id;
	port->first_part = first_part;
	port->nparts = nparts;
	rte_eth_dev_get_name_by_port(port->port_id, port->name);
	ret = rte_eth_dev_info_get(port->port_id, &info);
	if (ret != 0)
		rte_exit(EXIT_FAILURE, "cannot get info of port %u: err=%d\n", port->port_id, ret);
	if (cfg->queues > info.max_rx_queues || cfg->queues > info.max_tx_queues)
		rte_exit(EXIT_FAILURE, "port %s has %u RX / %u TX queues, --queues %u asked\n",
			 port->name, info.max_rx_queues, info.max_tx_queues, cfg->queues);
	port->queues = cfg->queues;
	port->socket = rte_eth_dev_socket_id(port->port_id);
	if (port->socket < 0)
		port->socket = (int)rte_socket_id();

	if (cfg->queues > 1) {
		uint64_t hf = (RTE_ETH_RSS_IPV4 | RTE_ETH_RSS_NONFRAG_IPV4_UDP | RTE_ETH_RSS_IPV6 |
			       RTE_ETH_RSS_NONFRAG_IPV6_UDP) &
			      info.flow_type_rss_offloads;
		if (hf != 0) {
			conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
			conf.rx_adv_conf.rss_conf.rss_hf = hf;
		}
		MC_LOG(NOTICE, "port %s: %u queues, RSS %s\n", port->name, cfg->queues,
		       hf ? "on IPv4/UDP and IPv6/UDP" : "not offered (the driver spreads queues itself)");
	}
	const uint64_t want = RTE_ETH_TX_OFFLOAD_IPV4_CKSUM | RTE_ETH_TX_OFFLOAD_UDP_CKSUM;
	if ((info.tx_offload_capa & want) == want)
		port->tx_offloads |= want;
	if (info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_MULTI_SEGS)
		port->tx_offloads |= RTE_ETH_TX_OFFLOAD_MULTI_SEGS;
	conf.txmode.offloads = port->tx_offloads;
	/* RX checksum verdicts in ol_flags spare the software check of every request. */
	{
		const uint64_t rx = RTE_ETH_RX_OFFLOAD_IPV4_CKSUM | RTE_ETH_RX_OFFLOAD_UDP_CKSUM;
		if ((info.rx_offload_capa & rx) == rx)
			conf.rxmode.offloads |= rx;
	}

	ret = rte_eth_dev_configure(port->port_id, cfg->queues, cfg->queues, &conf);
	if (ret != 0)
		rte_exit(EXIT_FAILURE, "cannot configure port %s: err=%d\n", port->name, ret);
	ret = rte_eth_dev_adjust_nb_rx_tx_desc(port->port_id, &nb_rxd, &nb_txd);
	if (ret != 0)
		rte_exit(EXIT_FAILURE, "cannot adjust descriptors of port %s: err=%d\n", port->name, ret);

	/* RX rings full, TX rings full, bursts in flight, per-lcore caches, and reply datagrams. */
	nb_mbufs = cfg->queues * (nb_rxd + nb_txd + MC_TX_BACKLOG + 2 * MC_BURST + POOL_CACHE +
				  MC_FRAG_MAX_DGRAMS * RTE_LIBRTE_IP_FRAG_MAX_FRAG) + 4096;
	nb_mbufs = rte_align32pow2(nb_mbufs) - 1;
	char pname[RTE_MEMPOOL_NAMESIZE];
	snprintf(pname, sizeof(pname), "mc_pool_%u", port->port_id);
	port->pool = rte_pktmbuf_pool_create(pname, nb_mbufs, POOL_CACHE, 0,
					     RTE_MBUF_DEFAULT_BUF_SIZE, port->socket);
	if (port->pool == NULL)
		rte_exit(EXIT_FAILURE, "cannot create mbuf pool of %u on socket %d: %s\n", nb_mbufs,
			 port->socket, rte_strerror(rte_errno));

	for (q = 0; q < cfg->queues; q++) {
		struct rte_eth_txconf txc = info.default_txconf;
		txc.offloads = conf.txmode.offloads;
		ret = rte_eth_rx_queue_setup(port->port_id, q, nb_rxd, (unsigned int)port->socket,
					     NULL, port->pool);
		if (ret < 0)
			rte_exit(EXIT_FAILURE, "rx queue %u setup on port %s: err=%d\n", q, port->name, ret);
		ret = rte_eth_tx_queue_setup(port->port_id, q, nb_txd, (unsigned int)port->socket, &txc);
		if (ret < 0)
			rte_exit(EXIT_FAILURE, "tx queue %u setup on port %s: err=%d\n", q, port->name, ret);
	}
	ret = rte_eth_macaddr_get(port->port_id, &port->mac);
	if (ret != 0)
		rte_exit(EXIT_FAILURE, "cannot read MAC of port %s: err=%d\n", port->name, ret);
	ret = rte_eth_dev_start(port->port_id);
	if (ret < 0)
		rte_exit(EXIT_FAILURE, "cannot start port %s: err=%d\n", port->name, ret);
	if (port->queues > 1)
		flow_steer(cfg, port);
	if (cfg->ip6.bits != 0) {
		/* Neighbor solicitations come to our solicited-node group's MAC, multicast
		 * listener queries to all nodes'. */
		struct rte_ether_addr mc[2] = {
			{{0x33, 0x33, 0xff, cfg->ip6.net[13], cfg->ip6.net[14], cfg->ip6.net[15]}},
			{{0x33, 0x33, 0, 0, 0, 1}}};
		if (rte_eth_dev_set_mc_addr_list(port->port_id, mc, 2) != 0 &&
		    rte_eth_allmulticast_enable(port->port_id) != 0 &&
		    rte_eth_promiscuous_get(port->port_id) != 1)
			MC_LOG(WARNING, "port %s: cannot receive multicast; IPv6 neighbors must be "
					"told our MAC some other way\n", port->name);
	}
	MC_LOG(NOTICE, "port %s (%u) up: MAC " RTE_ETHER_ADDR_PRT_FMT ", %u queue(s), %u+%u descriptors, "
		       "%u mbufs, checksum offload TX %s, RX %s\n",
	       port->name, port->port_id, RTE_ETHER_ADDR_BYTES(&port->mac), port->queues, nb_rxd,
	       nb_txd, nb_mbufs, (port->tx_offloads & want) ? "on" : "off (software)",
	       (conf.rxmode.offloads & RTE_ETH_RX_OFFLOAD_UDP_CKSUM) ? "on" : "off (software)");
}

int
mc_dp_ring_port(const char *name, struct rte_mempool *pool, const struct rte_ether_addr *mac,
		struct mc_port *port, struct rte_ring **tx)
{
	char rn[RTE_RING_NAMESIZE];
	struct rte_ring *rx;
	struct rte_eth_conf conf;
	int pid;
	snprintf(rn, sizeof(rn), "%s_rx", name);
	rx = rte_ring_create(rn, 1024, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
	snprintf(rn, sizeof(rn), "%s_tx", name);
	*tx = rte_ring_create(rn, 4096, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
	if (rx == NULL || *tx == NULL)
		return -1;
	pid = rte_eth_from_rings(name, &rx, 1, tx, 1, 0);
	memset(&conf, 0, sizeof(conf));
	if (pid < 0 || rte_eth_dev_configure((uint16_t)pid, 1, 1, &conf) != 0 ||
	    rte_eth_rx_queue_setup((uint16_t)pid, 0, 512, 0, NULL, pool) != 0 ||
	    rte_eth_tx_queue_setup((uint16_t)pid, 0, 512, 0, NULL) != 0 ||
	    rte_eth_dev_start((uint16_t)pid) != 0)
		return -1;
	memset(port, 0, sizeof(*port));
	port->port_id = (uint16_t)pid;
	port->queues = 1;
	port->nparts = 1;
	port->pool = pool;
	port->mac = *mac;
	snprintf(port->name, sizeof(port->name), "%s", name);
	return 0;
}

void
mc_dp_port_teardown(struct mc_port *port)
{
	int ret;
	if (port->flow_steering)
		rte_flow_flush(port->port_id, NULL);
	ret = rte_eth_dev_stop(port->port_id);
	if (ret != 0)
		MC_LOG(WARNING, "stopping port %s: err=%d\n", port->name, ret);
	rte_eth_dev_close(port->port_id);
}

void
mc_dp_worker_init(struct mc_worker *w, const struct mc_config *cfg, const struct mc_port *port,
		  uint16_t q, uint16_t part, struct mc_rl *rl, uint64_t clock_tsc0)
{
	memset(w, 0, sizeof(*w));
	w->port_id = port->port_id;
	w->queue_id = q;
	w->part = part;
	w->ip_be = rte_cpu_to_be_32(cfg->ip);
	w->mask_be = rte_cpu_to_be_32(cfg->netmask);
	if ((~cfg->netmask >> 1) != 0) {
		w->src_net = cfg->ip & cfg->netmask;
		w->src_bcast = (cfg->ip & cfg->netmask) | ~cfg->netmask;
	}
	if (cfg->ip6.bits != 0) {
		static const uint8_t sn[13] = {0xff, 0x02, [11] = 1, [12] = 0xff};
		w->has_ip6 = 1;
		memcpy(w->ip6, cfg->ip6.net, 16);
		memcpy(w->ip6_sn, sn, 13);
		memcpy(w->ip6_sn + 13, cfg->ip6.net + 13, 3);
		w->ip6_sn_mac = (struct rte_ether_addr){{0x33, 0x33, 0xff, w->ip6[13], w->ip6[14],
							  w->ip6[15]}};
	}
	w->udp_port_be = rte_cpu_to_be_16(cfg->udp_port);
	w->udp_port = cfg->udp_port;
	w->nports = port->nparts > 1 ? port->nparts : 1;
	w->tx_cksum_offload = (port->tx_offloads & RTE_ETH_TX_OFFLOAD_UDP_CKSUM) != 0;
	w->mac = port->mac;
	w->cfg = cfg;
	w->pool = port->pool;
	w->rl = rl;
	w->tsc_hz = rte_get_tsc_hz();
	w->clock_tsc0 = clock_tsc0;
	w->hk_next = clock_tsc0;
	w->tick_next = clock_tsc0;
	/* An exception queue is given later (mc_dp_worker_exception), to port 0's workers. */
	w->exc = strcmp(cfg->exception, "off") != 0 ? MC_EXC_MISSING : MC_EXC_OFF;
	if (mc_dp_frag_init(w, port->socket) != 0)
		MC_LOG(WARNING, "queue %u of port %s: no reassembly table (fragments are dropped)\n",
		       q, port->name);
}

void
mc_dp_worker_fini(struct mc_worker *w)
{
	mc_dp_frag_fini(w);
	while (w->tx_n != 0) {
		rte_pktmbuf_free(w->tx[w->tx_head]);
		w->tx_head = (uint16_t)((w->tx_head + 1) % MC_TX_BACKLOG);
		w->tx_n--;
	}
}

#define HK_PER_SEC 1000     /* housekeeping steps a second */
#define HK_SWEEP 64         /* chunks swept a step: 64,000 a second, bounded per step */
#define HK_IDLE_SWEEP 256   /* and more when the queue is idle */
#define TICKS_PER_SEC 10    /* tick callbacks a second */

/* One housekeeping step: bounded work, whatever the load. */
static void
housekeep(struct mc_worker *w, uint64_t now)
{
	uint64_t secs;
	w->hk_next = now + w->tsc_hz / HK_PER_SEC;
	mc_dp_frag_expire(w, now);
	/* Buffers the port still holds for frames it has sent go back to the pool once nothing
	 * more is sent: af_xdp frees a sent frame's mbuf only when a later TX call finds its
	 * completion, so after a busy spell it would keep the spell's last burst until the next
	 * request. A call with no frames is that later call (for other ports a no-op, or their
	 * own clean-up), made once, a step after the last frame went. */
	if (w->st.tx_packets == w->hk_tx_seen && w->tx_reclaimed != w->hk_tx_seen &&
	    w->tx_n == 0) {
		(void)rte_eth_tx_burst(w->port_id, w->queue_id, w->tx, 0);
		w->tx_reclaimed = w->hk_tx_seen;
	}
	w->hk_tx_seen = w->st.tx_packets;
	if (w->store == NULL)
		return;
	/* The store's clock: monotonic seconds from the TSC (every worker ticks the same clock;
	 * whichever is first moves it), the wall clock read once a second for absolute times. */
	secs = (now - w->clock_tsc0) / w->tsc_hz;
	if (secs != w->clock_secs) {
		w->clock_secs = secs;
		mc_store_clock_tick(w->store, secs, (int64_t)time(NULL));
	}
	mc_store_sweep(w->store, w->part, HK_SWEEP);
	if (w->tick != NULL && now >= w->tick_next) {
		w->tick_next = now + w->tsc_hz / TICKS_PER_SEC;
		w->tick(w->tick_arg);
	}
}

unsigned int
mc_dp_poll(struct mc_worker *w, uint64_t now)
{
	struct rte_mbuf *pkts[MC_BURST];
	uint16_t n;
	w->tx_stalled = 0;
	n = rte_eth_rx_burst(w->port_id, w->queue_id, pkts, MC_BURST);
	if (n != 0)
		mc_dp_handle_burst(w, pkts, n);
	mc_dp_exception_poll(w, n);
	mc_dp_tx_flush(w);
	if (unlikely(now >= w->hk_next))
		housekeep(w, now);
	return n;
}

void
mc_dp_worker_loop(struct mc_worker *w, volatile bool *quit)
{
	/* With --idle-sleep, a queue with nothing for one nap's length of polling naps, and goes
	 * on napping after every empty poll until frames come: on a machine whose cores the
	 * clients and the kernel's softirqs share (the lab), a poller that spins between
	 * requests takes the core they need. The nap is exact: timer slack would round a
	 * 20 us sleep up by 50 us. Without it (0, the default), the loop polls flat out. */
	const uint64_t spin = w->tsc_hz / 1000000 * w->cfg->idle_sleep_us;
	uint64_t idle_since = 0;
	bool napping = false;
	unsigned int sweeps = 0;

	if (w->cfg->idle_sleep_us)
		prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
	while (!*quit) {
		const uint64_t now = rte_rdtsc();
		if (mc_dp_poll(w, now) != 0 || w->tx_n != 0) {
			idle_since = 0;
			napping = false;
			continue;
		}
		if (idle_since == 0)
			idle_since = now;
		/* Idle: a longer sweep now and then, and the nap. */
		if (++sweeps == 1024) {
			sweeps = 0;
			if (w->store != NULL)
				mc_store_sweep(w->store, w->part, HK_IDLE_SWEEP);
		}
		if (w->cfg->idle_sleep_us == 0 || (!napping && now - idle_since < spin))
			continue;
		napping = true;
		rte_delay_us_sleep(w->cfg->idle_sleep_us);
		if (w->exc == MC_EXC_ON)
			mc_dp_exception_rx(w);
	}
	mc_dp_tx_flush(w);
}
