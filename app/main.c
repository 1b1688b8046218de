/* mcbox: EAL init, options, ports, the store, the workers and their lcores, signals, the main
 * lcore's tick (link monitor, stats line), teardown. Each step is a setup function; main()
 * reads as the list of them. */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_pdump.h>

#include "app.h"

static volatile bool force_quit;
static struct mc_app app;
static unsigned int worker_of_lcore[RTE_MAX_LCORE];

static void
on_signal(int sig)
{
	(void)sig;
	force_quit = true;
}

/* Options after EAL's "--". Returns -1 to go on, else the exit status (0 after --help). */
static int
setup_options(int argc, char **argv)
{
	char err[512];
	int ret;
	mc_config_defaults(&app.cfg);
	ret = mc_config_parse(&app.cfg, argc, argv, err, sizeof(err));
	if (ret != 0) {
		if (ret < 0)
			fprintf(stderr, "mcbox: %s\n", err);
		return ret < 0 ? 2 : 0;
	}
	rte_log_set_level(mc_logtype, app.cfg.verbosity >= 2   ? RTE_LOG_DEBUG
				      : app.cfg.verbosity == 1 ? RTE_LOG_INFO
							       : RTE_LOG_NOTICE);
	return -1;
}

/* Every port (or the one named), each with --queues queue pairs, one lcore per queue pair.
 * Returns -1 to go on, else the exit status. */
static int
setup_ports(void)
{
	uint16_t ids[MC_MAX_PORTS];
	unsigned int i;
	app.nports = mc_dp_ports_find(&app.cfg, ids, MC_MAX_PORTS);
	if (app.nports == 0)
		rte_exit(2, "no port %s%s(give one with -a PCI or --vdev, see README)\n",
			 app.cfg.ethdev[0] ? "named " : "", app.cfg.ethdev);
	app.nworkers = app.nports * app.cfg.queues;
	if (rte_lcore_count() < app.nworkers) {
		fprintf(stderr, "mcbox: %u port(s) x --queues %u needs %u lcores, EAL gave %u "
				"(use -l, or --ethdev to pick one port)\n",
			app.nports, app.cfg.queues, app.nworkers, rte_lcore_count());
		return 2;
	}
	for (i = 0; i < app.nports; i++)
		mc_dp_port_setup(&app.cfg, ids[i], (uint16_t)(i * app.cfg.queues),
				 (uint16_t)app.nworkers, &app.ports[i]);
	return -1;
}

/* The exception path on port 0 (docs/DESIGN.md): a kernel interface with the port's MAC and
 * --ip. The default, tap, warns and runs without it when the TAP cannot be made; virtio, asked
 * for by name, must work. Returns -1 to go on, else the exit status. */
static int
setup_exception(void)
{
	const struct mc_config *c = &app.cfg;
	const bool virtio = strcmp(c->exception, "virtio") == 0;
	const char *dev = virtio ? "/dev/vhost-net" : "/dev/net/tun";
	char err[512];
	bool missing = false;
	if (strcmp(c->exception, "off") == 0) {
		MC_LOG(NOTICE, "exception path off: TCP, ARP replies, ICMP other than echo and "
			       "UDP to other ports are dropped and counted\n");
		return -1;
	}
	if (access(dev, R_OK | W_OK) != 0) {
		missing = errno == ENOENT;
		snprintf(err, sizeof(err), "%s: %s", dev, strerror(errno));
	} else if (mc_dp_exception_create(c->exception, c->kernel_if, &app.ports[0], &app.exc, err,
					  sizeof(err)) == 0 &&
		   mc_dp_exception_kernel_if(&app.exc, &app.ports[0], c->ip, c->netmask, &c->ip6, err,
					     sizeof(err)) == 0) {
		MC_LOG(NOTICE, "exception path: %s %s (port %u), %u queue pair(s), for port %s%s\n",
		       virtio ? "virtio-user" : "TAP", c->kernel_if, app.exc.port_id,
		       app.exc.queues, app.ports[0].name,
		       app.nports > 1 ? " only (frames for the kernel on other ports are dropped: "
					"drop_no_exception)" : "");
		return -1;
	}
	mc_dp_exception_destroy(&app.exc);
	if (virtio) {
		fprintf(stderr, "mcbox: --exception virtio: %s%s\n", err,
			missing ? " (load vhost_net, or use --exception tap)" : "");
		return 2;
	}
	MC_LOG(WARNING, "exception path off: %s (frames for the kernel are dropped as "
			"drop_no_exception)\n", err);
	return -1;
}

/* Worker q on the q-th lcore (the main lcore first): port q / queues, its queue q % queues,
 * store partition q, its service, and the rate limiter all workers share. */
static void
setup_workers(void)
{
	unsigned int lcore, q = 0;
	app.workers = rte_zmalloc_socket("mc_workers", sizeof(*app.workers) * app.nworkers,
					 RTE_CACHE_LINE_SIZE, app.ports[0].socket);
	if (app.workers == NULL)
		rte_exit(EXIT_FAILURE, "cannot allocate %u workers\n", app.nworkers);
	app.proto_conf.udp_admin = app.cfg.udp_admin;
	app.proto_conf.udp_writes = app.cfg.udp_writes;
	app.proto_conf.max_item_size = app.cfg.max_item_size;
	app.proto_conf.verbosity = app.cfg.verbosity;
	/* One rate limiter for every queue of every port: a source has one budget. */
	app.rate_limiter = mc_dp_rl_create(&app.cfg, rte_get_tsc_hz(), app.ports[0].socket);
	if (app.rate_limiter != NULL)
		app.rate_limiter->shared = app.nworkers > 1;
	for (lcore = 0; lcore < RTE_MAX_LCORE; lcore++)
		worker_of_lcore[lcore] = UINT32_MAX;
	worker_of_lcore[rte_get_main_lcore()] = q++;
	RTE_LCORE_FOREACH_WORKER(lcore) {
		if (q < app.nworkers)
			worker_of_lcore[lcore] = q++;
	}
	for (lcore = 0; lcore < RTE_MAX_LCORE; lcore++) {
		const struct mc_port *port;
		struct mc_worker *w;
		q = worker_of_lcore[lcore];
		if (q == UINT32_MAX)
			continue;
		port = &app.ports[q / app.cfg.queues];
		w = &app.workers[q];
		mc_dp_worker_init(w, &app.cfg, port, (uint16_t)(q % app.cfg.queues), (uint16_t)q,
				  app.rate_limiter, app.clock_tsc0);
		if (port == &app.ports[0])
			mc_dp_worker_exception(w, &app.exc);
		w->store = app.store;
		w->lcore_id = lcore;
		w->svc = mc_dp_service_create(app.store, &app.proto_conf, app.cfg.max_item_size,
					      port->socket);
		if (w->queue_id == 0)
			mc_dp_announce(w); /* IPv6: an unsolicited advertisement, sent first */
		if (w->svc == NULL)
			rte_exit(EXIT_FAILURE, "cannot allocate the service of queue %u (%zu bytes of "
					       "reply scratch)\n",
				 q, mc_dp_scratch_size(app.cfg.max_item_size));
		w->svc->px.stats_fn = mc_app_stats;
		w->svc->px.stats_arg = &app;
		if ((port->tx_offloads & RTE_ETH_TX_OFFLOAD_MULTI_SEGS) &&
		    mc_dp_service_zero_copy(w->svc, app.cfg.zc_min, port->socket) != 0)
			rte_exit(EXIT_FAILURE, "cannot create the zero-copy pool of queue %u\n", q);
	}
}

static int
tcp_allowed(const void *arg, uint32_t addr)
{
	return mc_config_allowed(arg, addr);
}

static int
tcp_allowed6(const void *arg, const uint8_t *a6)
{
	return mc_config_allowed6(arg, a6);
}

/* The TCP service on --ip:-p with -t threads over the same store; off with -p 0. Returns -1 to
 * go on, else the exit status. */
static int
setup_tcp(void)
{
	const struct mc_config *c = &app.cfg;
	struct mc_tcp_settings set = {
		.ip = c->ip, .port = c->tcp_port, .threads = c->tcp_threads,
		.max_conns = c->max_conns, .idle_timeout = c->idle_timeout,
		.read_timeout = c->read_timeout, .conn_memory = (size_t)c->conn_memory_mb << 20,
		.max_item_size = c->max_item_size, .zc_min = MC_TCP_ZC_MIN,
		.allowed = tcp_allowed, .allowed6 = tcp_allowed6, .allowed_arg = c,
		.has_ip6 = c->ip6.bits != 0, .ip6_only = c->ip == 0,
	};
	char err[256];
	cpu_set_t free_cpus;
	unsigned int lcore, cpu, n = 0;
	if (c->tcp_port == 0)
		return -1;
	memcpy(set.ip6, c->ip6.net, 16);
	/* The TCP threads get the CPUs no lcore polls on (as EAL's control threads do). */
	CPU_ZERO(&free_cpus);
	for (cpu = 0; cpu < CPU_SETSIZE && cpu < (unsigned int)sysconf(_SC_NPROCESSORS_ONLN); cpu++)
		CPU_SET(cpu, &free_cpus);
	RTE_LCORE_FOREACH(lcore) {
		rte_cpuset_t lc = rte_lcore_cpuset(lcore);
		for (cpu = 0; cpu < CPU_SETSIZE; cpu++)
			if (CPU_ISSET(cpu, &lc))
				CPU_CLR(cpu, &free_cpus);
	}
	n = (unsigned int)CPU_COUNT(&free_cpus);
	if (n == 0) {
		/* Every CPU polls: let the scheduler place them anywhere rather than inherit
		 * the main lcore's one CPU. */
		MC_LOG(WARNING, "TCP threads share the CPUs of the polling lcores (no CPU is left "
				"for them): expect TCP latency spikes; give EAL fewer lcores\n");
		for (cpu = 0; cpu < CPU_SETSIZE && cpu < (unsigned int)sysconf(_SC_NPROCESSORS_ONLN);
		     cpu++)
			CPU_SET(cpu, &free_cpus);
	}
	set.cpus = &free_cpus;
	app.tcp = mc_tcp_start(&set, app.store, &app.proto_conf, mc_app_stats, &app, err,
			       sizeof(err));
	if (app.tcp == NULL) {
		fprintf(stderr, "mcbox: %s (-p 0 turns TCP off)\n", err);
		return 2;
	}
	return -1;
}

/* Link status: log changes (a NIC or veth peer going away and coming back). */
static void
check_link(void)
{
	unsigned int i;
	for (i = 0; i < app.nports; i++) {
		struct rte_eth_link l;
		if (rte_eth_link_get_nowait(app.ports[i].port_id, &l) != 0)
			continue;
		if (l.link_status + 1 != app.link_up[i]) {
			if (app.link_up[i] != 0)
				app.link_changes++;
			app.link_up[i] = l.link_status + 1;
			MC_LOG(NOTICE, "port %s: link %s\n", app.ports[i].name,
			       l.link_status ? "up" : "down");
		}
	}
}

/* The main lcore's tick, ten times a second however busy its queue: the link check once a
 * second, the stats line every stats_interval seconds. */
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
	if (app.cfg.stats_interval == 0)
		return;
	if (next == 0)
		next = now + app.cfg.stats_interval * rte_get_tsc_hz();
	if (now >= next) {
		next = now + app.cfg.stats_interval * rte_get_tsc_hz();
		mc_app_stats_log(&app);
	}
}

static int
lcore_main(void *arg)
{
	const unsigned int lcore = rte_lcore_id(), q = worker_of_lcore[lcore];
	struct mc_worker *w;
	(void)arg;
	if (q == UINT32_MAX)
		return 0; /* an lcore with no queue: nothing to poll */
	w = &app.workers[q];
	MC_LOG(INFO, "lcore %u polls port %u queue %u (partition %u)\n", lcore, w->port_id,
	       w->queue_id, w->part);
	if (lcore == rte_get_main_lcore())
		w->tick = main_tick;
	mc_dp_worker_loop(w, &force_quit);
	return 0;
}

static void
announce(void)
{
	const struct mc_config *c = &app.cfg;
	/* Let dpdk-dumpcap (a secondary process) capture this port's traffic. */
	if (rte_pdump_init() != 0)
		MC_LOG(WARNING, "pdump: not available (%s); capture with dpdk-dumpcap is off\n",
		       rte_strerror(rte_errno));
	MC_LOG(NOTICE, "zero-copy values: %s\n",
	       !(app.ports[0].tx_offloads & RTE_ETH_TX_OFFLOAD_MULTI_SEGS)
		       ? "off (port has no multi-segment TX)"
	       : c->zc_min ? "from the configured size up"
			   : "off (zero_copy_min = 0)");
	{
		char a6[INET6_ADDRSTRLEN + 8] = "";
		if (c->ip6.bits != 0) {
			a6[0] = ' ';
			inet_ntop(AF_INET6, c->ip6.net, a6 + 1, INET6_ADDRSTRLEN);
			snprintf(a6 + strlen(a6), sizeof(a6) - strlen(a6), "/%u", c->ip6.bits);
		}
		MC_LOG(NOTICE, "serving memcached on %u.%u.%u.%u%s udp/%u with %u MiB, %u port(s) x "
			       "%u queue(s)\n",
		       c->ip >> 24, (c->ip >> 16) & 0xff, (c->ip >> 8) & 0xff, c->ip & 0xff, a6,
		       c->udp_port, c->memory_mb, app.nports, c->queues);
	}
	if (app.tcp != NULL)
		MC_LOG(NOTICE, "serving memcached on tcp/%u with %u thread(s), at most %u connections\n",
		       mc_tcp_port(app.tcp), mc_tcp_threads(app.tcp), c->max_conns);
	else
		MC_LOG(NOTICE, "TCP is off (-p 0)\n");
}

/* Wait lcores (done by the caller), stop and close ports, then free what the workers hold
 * before what it points into. */
static void
teardown(void)
{
	unsigned int i;
	MC_LOG(NOTICE, "shutting down\n");
	rte_pdump_uninit();
	/* TCP connections hold store references: closed before the store goes. */
	/* Threads stopped and connections closed; its counters stay readable for telemetry
	 * until the EAL is gone (mc_tcp_free in main). */
	mc_tcp_stop(app.tcp);
	mc_app_stats_log(&app);
	for (i = 0; i < app.nports; i++)
		mc_dp_port_teardown(&app.ports[i]);
	/* The kernel interface goes with the port. */
	mc_dp_exception_destroy(&app.exc);
	/* Backlogged frames first: a zero-copy one holds a holder from the service's pool. */
	for (i = 0; i < app.nworkers; i++) {
		mc_dp_worker_fini(&app.workers[i]);
		mc_dp_service_destroy(app.workers[i].svc);
	}
	/* Nothing uses the store now: with -e, saved for the next start. */
	mc_app_store_close(&app);
	mc_dp_rl_destroy(app.rate_limiter);
	rte_free(app.workers);
}

int
main(int argc, char **argv)
{
	int ret = rte_eal_init(argc, argv);
	if (ret < 0)
		rte_exit(2, "EAL init failed (see the EAL messages above)\n");
	argc -= ret;
	argv += ret;
	argv[0] = (char *)"mcbox";
	/* EAL's default log stream copies each line to syslog too: under journald (mcbox.service)
	 * every line would be there twice. stderr alone reaches the journal or the lab's log. */
	rte_openlog_stream(stderr);

	app.store_fd = -1;
	/* Before the ports: a signal while a NIC starts still ends in an orderly teardown.
	 * SIGUSR1 too, memcached's signal for a stop that saves the cache (-e). */
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGUSR1, on_signal);
	signal(SIGPIPE, SIG_IGN);
	if ((ret = setup_options(argc, argv)) >= 0 || (ret = setup_ports()) >= 0) {
		rte_eal_cleanup();
		return ret;
	}
	if ((ret = setup_exception()) >= 0) {
		unsigned int i;
		for (i = 0; i < app.nports; i++)
			mc_dp_port_teardown(&app.ports[i]);
		rte_eal_cleanup();
		return ret;
	}
	mc_app_store_setup(&app);
	setup_workers();
	if ((ret = setup_tcp()) >= 0) {
		teardown();
		rte_eal_cleanup();
		mc_app_store_unmap(&app);
		return ret;
	}
	mc_app_telemetry_setup(&app);
	announce();

	rte_eal_mp_remote_launch(lcore_main, NULL, CALL_MAIN);
	rte_eal_mp_wait_lcore();

	teardown();
	ret = rte_eal_cleanup();
	if (ret != 0)
		fprintf(stderr, "mcbox: EAL cleanup: err=%d\n", ret);
	mc_tcp_free(app.tcp);
	mc_app_store_unmap(&app);
	return 0;
}
