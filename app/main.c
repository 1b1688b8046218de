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
static struct mc_port ports[MC_MAX_PORTS];
static unsigned int nports;
static struct mc_worker *workers; /* one per queue of each port: port p queue q at p * queues + q */
static unsigned int nworkers;
static unsigned int queue_of_lcore[RTE_MAX_LCORE];
static struct mc_store *store;
static struct mc_rl *rate_limiter;
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
	for (q = 0; q < nworkers; q++) {
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
			for (q = 0; q < nworkers; q++) {
#define X(n, help)                                                                             	snprintf(name, sizeof(name), "q%u:%s", q, #n);                                          	mc_proto_stat_u64(o, name, workers[q].st.n);
				MC_DP_COUNTERS(X)
#undef X
			}
		}
		return;
	}
	app_sum(&a);
	mc_dp_stats_sum(workers, nworkers, &d);
	mc_proto_stat_u64(o, "pid", (uint64_t)getpid());
	mc_proto_stat_u64(o, "uptime", (uint64_t)(time(NULL) - started));
	mc_proto_stat_u64(o, "time", (uint64_t)time(NULL));
	mc_proto_stat_u64(o, "pointer_size", 64);
	mc_proto_stat_u64(o, "threads", nworkers);
	mc_proto_stat_u64(o, "ports", nports);
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
	mc_dp_stats_sum(workers, nworkers, &s);
	mc_dp_stats_line(&s, line, sizeof(line));
	MC_LOG(NOTICE, "stats: %s\n", line);
}

static uint64_t link_changes;
static int link_up[MC_MAX_PORTS];

/* Link status, once a second: log changes (a NIC or veth peer going away and coming back). */
static void
check_link(void)
{
	unsigned int i;
	for (i = 0; i < nports; i++) {
		struct rte_eth_link l;
		if (rte_eth_link_get_nowait(ports[i].port_id, &l) != 0)
			continue;
		if (l.link_status + 1 != link_up[i]) {
			if (link_up[i] != 0)
				link_changes++;
			link_up[i] = l.link_status + 1;
			MC_LOG(NOTICE, "port %s: link %s\n", ports[i].name, l.link_status ? "up" : "down");
		}
	}
}

/* Called by the main lcore's worker ten times a second, however busy its queue. */
static void
main_tick(void *arg)
{
	static uint64_t next, next_link;
	uint64_t now = rte_get_tsc_cycles();
	(void)arg;
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
	{
		uint64_t avail = 0, size = 0, ipk = 0, imiss = 0, ierr = 0, oerr = 0, up = 0;
		unsigned int i;
		for (i = 0; i < nports; i++) {
			struct rte_eth_stats es;
			avail += rte_mempool_avail_count(ports[i].pool);
			size += ports[i].pool->size;
			up += link_up[i] == 2;
			if (rte_eth_stats_get(ports[i].port_id, &es) == 0) {
				ipk += es.ipackets;
				imiss += es.imissed;
				ierr += es.ierrors;
				oerr += es.oerrors;
			}
		}
		rte_tel_data_add_dict_u64(d, "mempool_avail", avail);
		rte_tel_data_add_dict_u64(d, "mempool_size", size);
		rte_tel_data_add_dict_u64(d, "port_ipackets", ipk);
		rte_tel_data_add_dict_u64(d, "port_imissed", imiss);
		rte_tel_data_add_dict_u64(d, "port_ierrors", ierr);
		rte_tel_data_add_dict_u64(d, "port_oerrors", oerr);
		rte_tel_data_add_dict_u64(d, "ports", nports);
		rte_tel_data_add_dict_u64(d, "link_up", up);
		rte_tel_data_add_dict_u64(d, "link_changes", link_changes);
	}
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
	MC_LOG(INFO, "lcore %u polls port %u queue %u (partition %u)\n", lcore, workers[q].port_id,
	       workers[q].queue_id, workers[q].part);
	if (is_main)
		workers[q].tick = main_tick;
	mc_dp_worker_loop(&workers[q], &force_quit);
	return 0;
}

int
main(int argc, char **argv)
{
	char err[512];
	unsigned int lcore, q;
	uint64_t clock_tsc0;
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
	{
		uint16_t ids[MC_MAX_PORTS];
		unsigned int i;
		nports = mc_dp_ports_find(&cfg, ids, MC_MAX_PORTS);
		if (nports == 0)
			rte_exit(2, "no port %s%s(give one with -a PCI or --vdev, see README)\n",
				 cfg.port[0] ? "named " : "", cfg.port);
		nworkers = nports * cfg.queues;
		if (rte_lcore_count() < nworkers) {
			fprintf(stderr, "mcbox: %u port(s) x --queues %u needs %u lcores, EAL gave %u "
				"(use -l, or --port to pick one port)\n",
				nports, cfg.queues, nworkers, rte_lcore_count());
			rte_eal_cleanup();
			return 2;
		}
		signal(SIGINT, on_signal);
		signal(SIGTERM, on_signal);
		for (i = 0; i < nports; i++)
			mc_dp_port_setup(&cfg, ids[i], (uint16_t)(i * cfg.queues),
					 (uint16_t)nworkers, &ports[i]);
	}
	workers = rte_zmalloc_socket("mc_workers", sizeof(*workers) * nworkers,
				     RTE_CACHE_LINE_SIZE, ports[0].socket);
	if (workers == NULL)
		rte_exit(EXIT_FAILURE, "cannot allocate %u workers\n", nworkers);

	/* The store: all of -m from one memzone on the first port's socket (hugepages), one
	 * partition per worker. */
	{
		size_t bytes = (size_t)cfg.memory_mb << 20;
		struct mc_store_settings set = {
			.mem_bytes = bytes, .nparts = nworkers, .max_item_size = cfg.max_item_size,
			.factor = cfg.growth_factor, .chunk_min = 48,
		};
		const struct rte_memzone *mz = rte_memzone_reserve_aligned(
			"mc_store", bytes, ports[0].socket, 0, RTE_CACHE_LINE_SIZE);
		if (mz == NULL)
			rte_exit(EXIT_FAILURE, "cannot reserve %u MiB for the store on socket %d: %s "
				 "(more hugepages, or a smaller -m)\n", cfg.memory_mb, ports[0].socket,
				 rte_strerror(rte_errno));
		store = mc_store_create(mz->addr, mz->len, &set);
		if (store == NULL)
			rte_exit(EXIT_FAILURE, "-m %u MiB is too small for %u partition(s)\n",
				 cfg.memory_mb, nworkers);
		/* The store's clock starts now (relative 62); the workers tick it from here. */
		clock_tsc0 = rte_rdtsc();
		started = time(NULL);
	}
	proto_conf.udp_admin = cfg.udp_admin;
	proto_conf.udp_writes = cfg.udp_writes;
	proto_conf.max_item_size = cfg.max_item_size;
	proto_conf.verbosity = cfg.verbosity;

	/* Worker i goes to the i-th lcore, the main lcore first. */
	for (lcore = 0; lcore < RTE_MAX_LCORE; lcore++)
		queue_of_lcore[lcore] = UINT32_MAX;
	q = 0;
	queue_of_lcore[rte_get_main_lcore()] = q++;
	RTE_LCORE_FOREACH_WORKER(lcore) {
		if (q < nworkers)
			queue_of_lcore[lcore] = q++;
	}
	/* One rate limiter for every queue of every port: a source has one budget. */
	rate_limiter = mc_dp_rl_create(&cfg, rte_get_tsc_hz(), ports[0].socket);
	for (lcore = 0; lcore < RTE_MAX_LCORE; lcore++) {
		const struct mc_port *port;
		q = queue_of_lcore[lcore];
		if (q == UINT32_MAX)
			continue;
		/* Worker q: port q / queues, its queue q % queues, and store partition q. */
		port = &ports[q / cfg.queues];
		mc_dp_worker_init(&workers[q], &cfg, port, (uint16_t)(q % cfg.queues), (uint16_t)q,
				  rate_limiter, clock_tsc0);
		workers[q].store = store;
		workers[q].lcore_id = lcore;
		workers[q].svc = mc_dp_service_create(store, &proto_conf, cfg.max_item_size,
						       port->socket);
		if (workers[q].svc == NULL)
			rte_exit(EXIT_FAILURE, "cannot allocate the service of queue %u (%zu bytes of "
				 "reply scratch)\n", q, mc_dp_scratch_size(cfg.max_item_size));
		workers[q].svc->px.stats_fn = app_stats;
		if ((port->tx_offloads & RTE_ETH_TX_OFFLOAD_MULTI_SEGS) &&
		    mc_dp_service_zero_copy(workers[q].svc, cfg.zc_min, port->socket) != 0)
			rte_exit(EXIT_FAILURE, "cannot create the zero-copy pool of queue %u\n", q);
	}

	mc_app_telemetry_setup(workers, nworkers);
	/* Let dpdk-dumpcap (a secondary process) capture this port's traffic. */
	if (rte_pdump_init() != 0)
		MC_LOG(WARNING, "pdump: not available (%s); capture with dpdk-dumpcap is off\n",
		       rte_strerror(rte_errno));
	MC_LOG(NOTICE, "zero-copy values: %s\n",
	       !(ports[0].tx_offloads & RTE_ETH_TX_OFFLOAD_MULTI_SEGS) ? "off (port has no multi-segment TX)"
	       : cfg.zc_min ? "from the configured size up" : "off (zero_copy_min = 0)");
	MC_LOG(NOTICE, "serving memcached on %u.%u.%u.%u udp/%u with %u MiB, %u port(s) x %u queue(s)\n",
	       cfg.ip >> 24, (cfg.ip >> 16) & 0xff, (cfg.ip >> 8) & 0xff, cfg.ip & 0xff,
	       cfg.udp_port, cfg.memory_mb, nports, cfg.queues);
	rte_eal_mp_remote_launch(lcore_main, NULL, CALL_MAIN);
	rte_eal_mp_wait_lcore();

	MC_LOG(NOTICE, "shutting down\n");
	rte_pdump_uninit();
	print_stats();
	for (q = 0; q < nports; q++)
		mc_dp_port_teardown(&ports[q]);
	/* Backlogged frames first: a zero-copy one holds a holder from the service's pool. */
	for (q = 0; q < nworkers; q++) {
		mc_dp_worker_fini(&workers[q]);
		mc_dp_service_destroy(workers[q].svc);
	}
	rte_memzone_free(rte_memzone_lookup("mc_store"));
	mc_dp_rl_destroy(rate_limiter);
	rte_free(workers);
	ret = rte_eal_cleanup();
	if (ret != 0)
		fprintf(stderr, "mcbox: EAL cleanup: err=%d\n", ret);
	return 0;
}
