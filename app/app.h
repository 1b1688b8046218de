/* The app: one process's ports, workers, store and settings, set up by main.c and read by
 * stats.c (memcached's `stats` lines, DPDK telemetry, the log's stats line). */
#ifndef MC_APP_H
#define MC_APP_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "../config/config.h"
#include "../dataplane/dataplane.h"
#include "../proto/proto.h"
#include "../store/store.h"
#include "../tcp/tcp.h"

struct rte_memzone;

struct mc_app {
	struct mc_config cfg;
	struct mc_port ports[MC_MAX_PORTS];
	unsigned int nports;
	struct mc_exc exc;         /* the exception path of port 0 (exc.up: it exists) */
	struct mc_worker *workers; /* worker q: port q / queues, queue q % queues, partition q */
	unsigned int nworkers;
	struct mc_store *store;
	/* The store's memory (memfile.c): a memzone, or -e FILE mapped (fd >= 0). */
	const struct rte_memzone *store_mz;
	int store_fd;
	uint8_t *store_map;        /* the file: metadata block, then the store */
	size_t store_map_len;
	bool store_extmem;         /* registered with DPDK as external memory */
	bool store_vfio;           /* DMA-mapped in VFIO's default container */
	struct mc_rl *rate_limiter;
	struct mc_proto_conf proto_conf;
	struct mc_tcp *tcp;        /* NULL: TCP off */
	time_t started;
	uint64_t clock_tsc0;       /* TSC when the store's clock started */
	uint64_t link_changes;
	int link_up[MC_MAX_PORTS]; /* 0 unknown, 1 down, 2 up */
};

/* stats.c: the app's lines of memcached's `stats` (a proto stats callback, arg = the app),
 * DPDK telemetry endpoints /mcbox/stats and /mcbox/queues, and the log's stats line. */
void mc_app_stats(void *arg, struct mc_proto_ctx *cx, struct mc_out *o, const char *group,
		  size_t glen);
void mc_app_telemetry_setup(struct mc_app *a);
void mc_app_stats_log(const struct mc_app *a);

/* memfile.c: the store's memory, a memzone or -e FILE (warm restart). setup: map or reserve,
 * reattach or create, one log line saying which and why; close: at teardown, once nothing
 * uses the store, save it to FILE (or free the memzone); unmap: after rte_eal_cleanup. */
void mc_app_store_setup(struct mc_app *a);
void mc_app_store_close(struct mc_app *a);
void mc_app_store_unmap(struct mc_app *a);

#endif
