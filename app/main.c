/* mcbox: EAL init, options and config, port and lcore launch, signals, stats, teardown. */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_malloc.h>

#include "../config/config.h"
#include "../dataplane/dataplane.h"
#include "telemetry.h"

static volatile bool force_quit;
static struct mc_config cfg;
static struct mc_port port;
static struct mc_worker *workers; /* one per queue */
static unsigned int queue_of_lcore[RTE_MAX_LCORE];

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

/* Called by the main lcore's worker about ten times a second. */
static void
main_tick(void *arg)
{
	static uint64_t next;
	uint64_t now = rte_get_tsc_cycles();
	(void)arg;
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
	(void)d;
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
	}

	mc_app_telemetry_setup(workers, port.queues);
	MC_LOG(NOTICE, "serving memcached on %u.%u.%u.%u udp/%u with %u MiB, %u queue(s)\n",
	       cfg.ip >> 24, (cfg.ip >> 16) & 0xff, (cfg.ip >> 8) & 0xff, cfg.ip & 0xff,
	       cfg.udp_port, cfg.memory_mb, port.queues);
	rte_eal_mp_remote_launch(lcore_main, NULL, CALL_MAIN);
	rte_eal_mp_wait_lcore();

	MC_LOG(NOTICE, "shutting down\n");
	print_stats();
	mc_dp_port_teardown(&port);
	rte_free(workers);
	ret = rte_eal_cleanup();
	if (ret != 0)
		fprintf(stderr, "mcbox: EAL cleanup: err=%d\n", ret);
	return 0;
}
