/* mcbox: EAL init, options and config, port and lcore launch, signals, stats, teardown. */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_errno.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_memzone.h>
#include <rte_pdump.h>

#include "../config/config.h"
#include "../dataplane/dataplane.h"
#include "../proto/proto.h"
#include "../store/store.h"
#include "../udp/udp.h"
#include "telemetry.h"

static volatile bool force_quit;
static struct mc_config cfg;
static struct mc_port port;
static struct mc_worker *workers; /* one per queue */
static unsigned int queue_of_lcore[RTE_MAX_LCORE];
static struct mc_store *store;
static struct mc_proto_conf proto_conf;
static time_t started;

/* Sum every worker's store, protocol and service counters. */
struct app_sums {
	struct mc_store_ctx_stats sx;
	struct mc_proto_stats px;
	uint64_t dgrams_out, replies_split, zc_values, zc_fallbacks;
};

static void
app_sum(struct app_sums *a)
{
	unsigned int q;
	memset(a, 0, sizeof(*a));
	for (q = 0; q < port.queues; q++) {
		const struct mc_service *svc = workers[q].svc;
#define X(n) a->sx.n += svc->px.sx.st.n;
		MC_STORE_CTX_COUNTERS(X)
#undef X
#define X(n) a->px.n += svc->px.st.n;
		MC_PROTO_COUNTERS(X)
#undef X
		a->dgrams_out += svc->dgrams_out;
		a->zc_values += svc->zc_values;
		a->zc_fallbacks += svc->zc_fallbacks;
		a->replies_split += svc->replies_split;
	}
}

/* memcached's "stats" lines that belong to the app, and the dataplane's counters. */
static void
app_stats(void *arg, struct mc_proto_ctx *cx, struct mc_out *o, const char *group, size_t glen)
{
	struct app_sums a;
	struct mc_dp_stats d;
	(void)arg;
	(void)cx;
	if (glen != 0) {
		if (glen == 6 && !memcmp(group, "queues", 6)) {
			unsigned int q;
			char name[64];
			for (q = 0; q < port.queues; q++) {
#define X(n, help)                                                                             	snprintf(name, sizeof(name), "q%u:%s", q, #n);                                          	mc_proto_stat_u64(o, name, workers[q].st.n);
				MC_DP_COUNTERS(X)
#undef X
			}
		}
		return;
	}
	app_sum(&a);
	mc_dp_stats_sum(workers, port.queues, &d);
	mc_proto_stat_u64(o, "pid", (uint64_t)getpid());
	mc_proto_stat_u64(o, "uptime", (uint64_t)(time(NULL) - started));
	mc_proto_stat_u64(o, "time", (uint64_t)time(NULL));
	mc_proto_stat_u64(o, "pointer_size", 64);
	mc_proto_stat_u64(o, "threads", port.queues);
#define X(n) mc_proto_stat_u64(o, #n, a.sx.n);
	MC_STORE_CTX_COUNTERS(X)
#undef X
#define X(n) mc_proto_stat_u64(o, #n, a.px.n);
	MC_PROTO_COUNTERS(X)
#undef X
	mc_proto_stat_u64(o, "reply_datagrams", a.dgrams_out);
	mc_proto_stat_u64(o, "replies_split", a.replies_split);
#define X(n, help) mc_proto_stat_u64(o, #n, d.n);
	MC_DP_COUNTERS(X)
#undef X
}

static void
on_signal(int sig)
{
	(void)sig;
	force_quit = true;
}

static void
print_stats(void)
{
	struct mc_dp_stats s;
	char line[2048];
	mc_dp_stats_sum(workers, port.queues, &s);
	mc_dp_stats_line(&s, line, sizeof(line));
	MC_LOG(NOTICE, "stats: %s\n", line);
}

static uint64_t link_changes;
static int link_up = -1;

/* Link status, once a second: log changes (a NIC or veth peer going away and coming back). */
static void
check_link(void)
{
	struct rte_eth_link l;
	if (rte_eth_link_get_nowait(port.port_id, &l) != 0)
		return;
	if (l.link_status != link_up) {
		if (link_up != -1)
			link_changes++;
		link_up = l.link_status;
		MC_LOG(NOTICE, "port %s: link %s\n", port.name, link_up ? "up" : "down");
	}
}

/* Called by the main lcore's worker about ten times a second. */
static void
main_tick(void *arg)
{
	static uint64_t next, next_link;
	uint64_t now = rte_get_tsc_cycles();
	(void)arg;
	mc_store_clock_set(store, (int64_t)time(NULL));
	if (now >= next_link) {
		next_link = now + rte_get_tsc_hz();
		check_link();
	}
	if (cfg.stats_interval == 0)
		return;
	if (next == 0)
		next = now + cfg.stats_interval * rte_get_tsc_hz();
	if (now >= next) {
		next = now + cfg.stats_interval * rte_get_tsc_hz();
		print_stats();
	}
}

void
mc_app_stats_extra(struct rte_tel_data *d)
{
	struct app_sums a;
	struct mc_store_part_stats ps;
	app_sum(&a);
	mc_store_part_stats(store, &ps);
#define X(n) rte_tel_data_add_dict_u64(d, #n, a.sx.n);
	MC_STORE_CTX_COUNTERS(X)
#undef X
#define X(n) rte_tel_data_add_dict_u64(d, #n, a.px.n);
	MC_PROTO_COUNTERS(X)
#undef X
#define X(n) rte_tel_data_add_dict_u64(d, #n, ps.n);
	MC_STORE_PART_COUNTERS(X)
#undef X
	rte_tel_data_add_dict_u64(d, "reply_datagrams", a.dgrams_out);
	rte_tel_data_add_dict_u64(d, "replies_split", a.replies_split);
	rte_tel_data_add_dict_u64(d, "zc_values", a.zc_values);
	rte_tel_data_add_dict_u64(d, "zc_fallbacks", a.zc_fallbacks);
	rte_tel_data_add_dict_u64(d, "mempool_avail", rte_mempool_avail_count(port.pool));
	{
		struct rte_eth_stats es;
		if (rte_eth_stats_get(port.port_id, &es) == 0) {
			rte_tel_data_add_dict_u64(d, "port_ipackets", es.ipackets);
			rte_tel_data_add_dict_u64(d, "port_imissed", es.imissed);
			rte_tel_data_add_dict_u64(d, "port_ierrors", es.ierrors);
			rte_tel_data_add_dict_u64(d, "port_oerrors", es.oerrors);
		}
	}
	rte_tel_data_add_dict_u64(d, "link_up", link_up == 1);
	rte_tel_data_add_dict_u64(d, "link_changes", link_changes);
	rte_tel_data_add_dict_u64(d, "mempool_size", port.pool->size);
}

static int
lcore_main(void *arg)
{
	unsigned int lcore = rte_lcore_id();
	unsigned int q = queue_of_lcore[lcore];
	bool is_main = lcore == rte_get_main_lcore();
	(void)arg;
	if (q == UINT32_MAX) {
		/* An lcore with no queue: nothing to poll. */
		return 0;
	}
	MC_LOG(INFO, "lcore %u polls port %u queue %u\n", lcore, workers[q].port_id, q);
	mc_dp_worker_loop(&workers[q], &force_quit, is_main ? main_tick : NULL, NULL);
	return 0;
}

int
main(int argc, char **argv)
{
	char err[512];
	unsigned int lcore, q;
	int ret;

	ret = rte_eal_init(argc, argv);
	if (ret < 0)
		rte_exit(2, "EAL init failed (see the EAL messages above)\n");
	argc -= ret;
	argv += ret;
	argv[0] = (char *)"mcbox";

	mc_config_defaults(&cfg);
	ret = mc_config_parse(&cfg, argc, argv, err, sizeof(err));
	if (ret != 0) {
		if (ret < 0)
			fprintf(stderr, "mcbox: %s\n", err);
		rte_eal_cleanup();
		return ret < 0 ? 2 : 0;
	}
	rte_log_set_level(mc_logtype, cfg.verbosity >= 2 ? RTE_LOG_DEBUG
				      : cfg.verbosity == 1 ? RTE_LOG_INFO
							   : RTE_LOG_NOTICE);
	if (rte_lcore_count() < cfg.queues) {
		fprintf(stderr, "mcbox: --queues %u needs %u lcores, EAL gave %u (use -l)\n",
			cfg.queues, cfg.queues, rte_lcore_count());
		rte_eal_cleanup();
		return 2;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);

	mc_dp_port_setup(&cfg, &port);
	workers = rte_zmalloc_socket("mc_workers", sizeof(*workers) * port.queues,
				     RTE_CACHE_LINE_SIZE, port.socket);
	if (workers == NULL)
		rte_exit(EXIT_FAILURE, "cannot allocate %u workers\n", port.queues);

	/* The store: all of -m from one memzone on the port's socket (hugepages). */
	{
		size_t bytes = (size_t)cfg.memory_mb << 20;
		struct mc_store_settings set = {
			.mem_bytes = bytes, .nparts = port.queues, .max_item_size = cfg.max_item_size,
			.factor = cfg.growth_factor, .chunk_min = 48,
		};
		const struct rte_memzone *mz = rte_memzone_reserve_aligned(
			"mc_store", bytes, port.socket, 0, RTE_CACHE_LINE_SIZE);
		if (mz == NULL)
			rte_exit(EXIT_FAILURE, "cannot reserve %u MiB for the store on socket %d: %s "
				 "(more hugepages, or a smaller -m)\n", cfg.memory_mb, port.socket,
				 rte_strerror(rte_errno));
		store = mc_store_create(mz->addr, mz->len, &set);
		if (store == NULL)
			rte_exit(EXIT_FAILURE, "-m %u MiB is too small for %u partition(s)\n",
				 cfg.memory_mb, port.queues);
		started = time(NULL);
		mc_store_clock_set(store, (int64_t)started);
	}
	proto_conf.udp_admin = cfg.udp_admin;
	proto_conf.udp_writes = cfg.udp_writes;
	proto_conf.max_item_size = cfg.max_item_size;
	proto_conf.verbosity = cfg.verbosity;

	/* Queue i goes to the i-th lcore, the main lcore first. */
	for (lcore = 0; lcore < RTE_MAX_LCORE; lcore++)
		queue_of_lcore[lcore] = UINT32_MAX;
	q = 0;
	queue_of_lcore[rte_get_main_lcore()] = q++;
	RTE_LCORE_FOREACH_WORKER(lcore) {
		if (q < port.queues)
			queue_of_lcore[lcore] = q++;
	}
	for (lcore = 0; lcore < RTE_MAX_LCORE; lcore++) {
		q = queue_of_lcore[lcore];
		if (q == UINT32_MAX)
			continue;
		mc_dp_worker_init(&workers[q], &cfg, &port, (uint16_t)q);
		workers[q].lcore_id = lcore;
		workers[q].svc = mc_udp_service_create(store, &proto_conf, cfg.max_item_size,
						       port.socket);
		if (workers[q].svc == NULL)
			rte_exit(EXIT_FAILURE, "cannot allocate the service of queue %u (%zu bytes of "
				 "reply scratch)\n", q, mc_udp_scratch_size(cfg.max_item_size));
		workers[q].svc->px.stats_fn = app_stats;
		if ((port.tx_offloads & RTE_ETH_TX_OFFLOAD_MULTI_SEGS) &&
		    mc_udp_service_zero_copy(workers[q].svc, cfg.zc_min, port.socket) != 0)
			rte_exit(EXIT_FAILURE, "cannot create the zero-copy pool of queue %u\n", q);
	}

	mc_app_telemetry_setup(workers, port.queues);
	/* Let dpdk-dumpcap (a secondary process) capture this port's traffic. */
	if (rte_pdump_init() != 0)
		MC_LOG(WARNING, "pdump: not available (%s); capture with dpdk-dumpcap is off\n",
		       rte_strerror(rte_errno));
	MC_LOG(NOTICE, "zero-copy values: %s\n",
	       !(port.tx_offloads & RTE_ETH_TX_OFFLOAD_MULTI_SEGS) ? "off (port has no multi-segment TX)"
	       : cfg.zc_min ? "from the configured size up" : "off (zero_copy_min = 0)");
	MC_LOG(NOTICE, "serving memcached on %u.%u.%u.%u udp/%u with %u MiB, %u queue(s)\n",
	       cfg.ip >> 24, (cfg.ip >> 16) & 0xff, (cfg.ip >> 8) & 0xff, cfg.ip & 0xff,
	       cfg.udp_port, cfg.memory_mb, port.queues);
	rte_eal_mp_remote_launch(lcore_main, NULL, CALL_MAIN);
	rte_eal_mp_wait_lcore();

	MC_LOG(NOTICE, "shutting down\n");
	rte_pdump_uninit();
	print_stats();
	mc_dp_port_teardown(&port);
	for (q = 0; q < port.queues; q++) {
		mc_udp_service_destroy(workers[q].svc);
		mc_dp_worker_fini(&workers[q]);
	}
	rte_memzone_free(rte_memzone_lookup("mc_store"));
	rte_free(workers);
	ret = rte_eal_cleanup();
	if (ret != 0)
		fprintf(stderr, "mcbox: EAL cleanup: err=%d\n", ret);
	return 0;
}
