/* The app's counters, one source for every reader: memcached's `stats` lines, DPDK telemetry
 * (/mcbox/stats, /mcbox/queues) and the log's stats line. Every counter comes from an X-macro
 * list (store, protocol, service, dataplane), so a name cannot appear in one and not another. */
#include "app.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <rte_ethdev.h>
#include <rte_spinlock.h>
#include <rte_telemetry.h>

static struct mc_app *tel_app;

/* Every worker's store, protocol and service counters, summed. */
struct app_sums {
	struct mc_store_ctx_stats sx;
	struct mc_proto_stats px;
	struct mc_svc_stats svc;
	struct mc_dp_stats dp;
	struct mc_store_part_stats part;
	struct mc_tcp_stats tcp;
};

static void
app_sum(const struct mc_app *a, struct app_sums *s)
{
	unsigned int q;
	memset(s, 0, sizeof(*s));
	for (q = 0; q < a->nworkers; q++) {
		const struct mc_service *svc = a->workers[q].svc;
#define X(n) s->sx.n += svc->px.sx.st.n;
		MC_STORE_CTX_COUNTERS(X)
#undef X
#define X(n) s->px.n += svc->px.st.n;
		MC_PROTO_COUNTERS(X)
#undef X
#define X(n, help) s->svc.n += svc->st.n;
		MC_SVC_COUNTERS(X)
#undef X
	}
	mc_tcp_sum(a->tcp, &s->tcp, &s->sx, &s->px);
	mc_dp_stats_sum(a->workers, a->nworkers, &s->dp);
	mc_store_part_stats(a->store, &s->part);
}

/* "stats reset": the sums as they stood then, taken off what `stats` prints (telemetry keeps
 * the raw counters: its readers take rates and must not see them jump back). */
static struct app_sums reset_base;
static rte_spinlock_t reset_lock = RTE_SPINLOCK_INITIALIZER;

static void
app_reset(const struct mc_app *a)
{
	struct app_sums now;
	app_sum(a, &now);
	/* Gauges, not counters: they stay. */
	now.tcp.curr_connections = 0;
	now.tcp.conn_buffer_bytes = 0;
	rte_spinlock_lock(&reset_lock);
	reset_base = now;
	rte_spinlock_unlock(&reset_lock);
}

/* stats settings: memcached's names for the app's settings. */
static void
app_settings(const struct mc_app *a, struct mc_out *o)
{
	char v[32];
	snprintf(v, sizeof(v), "%u.%u.%u.%u", a->cfg.ip >> 24, (a->cfg.ip >> 16) & 255,
		 (a->cfg.ip >> 8) & 255, a->cfg.ip & 255);
	mc_proto_stat_u64(o, "maxconns", a->cfg.max_conns);
	mc_proto_stat_u64(o, "tcpport", a->cfg.tcp_port);
	mc_proto_stat_u64(o, "udpport", a->cfg.udp_port);
	mc_proto_stat_str(o, "inter", v);
	snprintf(v, sizeof(v), "%.2f", a->cfg.growth_factor);
	mc_proto_stat_str(o, "growth_factor", v);
	mc_proto_stat_u64(o, "num_threads", a->tcp != NULL ? mc_tcp_threads(a->tcp) : 0);
	mc_proto_stat_u64(o, "tcp_backlog", a->cfg.max_conns);
	mc_proto_stat_u64(o, "idle_timeout", a->cfg.idle_timeout);
}

void
mc_app_stats(void *arg, struct mc_proto_ctx *cx, struct mc_out *o, const char *group, size_t glen)
{
	const struct mc_app *a = arg;
	struct app_sums s, b;
	if (glen == 5 && !memcmp(group, "reset", 5)) {
		app_reset(a);
		return;
	}
	if (glen == 8 && !memcmp(group, "settings", 8)) {
		app_settings(a, o);
		return;
	}
	if (glen == 5 && !memcmp(group, "conns", 5)) {
		if (a->tcp != NULL)
			mc_tcp_conns(a->tcp, cx, o);
		return;
	}
	if (glen != 0) {
		if (glen == 6 && !memcmp(group, "queues", 6)) {
			unsigned int q;
			char name[64];
			for (q = 0; q < a->nworkers; q++) {
#define X(n, help)                                                                             \
	snprintf(name, sizeof(name), "q%u:%s", q, #n);                                         \
	mc_proto_stat_u64(o, name, a->workers[q].st.n);
				MC_DP_COUNTERS(X)
#undef X
			}
		}
		return;
	}
	app_sum(a, &s);
	rte_spinlock_lock(&reset_lock);
	b = reset_base;
	rte_spinlock_unlock(&reset_lock);
	mc_proto_stat_u64(o, "pid", (uint64_t)getpid());
	mc_proto_stat_u64(o, "uptime", (uint64_t)(time(NULL) - a->started));
	mc_proto_stat_u64(o, "time", (uint64_t)time(NULL));
	mc_proto_stat_u64(o, "pointer_size", 64);
	/* memcached's threads serve connections: here the TCP threads. */
	mc_proto_stat_u64(o, "threads", a->tcp != NULL ? mc_tcp_threads(a->tcp) : 0);
	mc_proto_stat_u64(o, "max_connections", a->cfg.max_conns);
	mc_proto_stat_u64(o, "udp_queues", a->nworkers);
	mc_proto_stat_u64(o, "ports", a->nports);
#define X(n) mc_proto_stat_u64(o, #n, s.tcp.n - b.tcp.n);
	MC_TCP_COUNTERS(X)
#undef X
#define X(n) mc_proto_stat_u64(o, #n, s.sx.n - b.sx.n);
	MC_STORE_CTX_COUNTERS(X)
#undef X
#define X(n) mc_proto_stat_u64(o, #n, s.px.n - b.px.n);
	MC_PROTO_COUNTERS(X)
#undef X
#define X(n, help) mc_proto_stat_u64(o, #n, s.svc.n - b.svc.n);
	MC_SVC_COUNTERS(X)
#undef X
#define X(n, help) mc_proto_stat_u64(o, #n, s.dp.n - b.dp.n);
	MC_DP_COUNTERS(X)
#undef X
}

void
mc_app_stats_log(const struct mc_app *a)
{
	struct mc_dp_stats s;
	char line[2048];
	mc_dp_stats_sum(a->workers, a->nworkers, &s);
	mc_dp_stats_line(&s, line, sizeof(line));
	MC_LOG(NOTICE, "stats: %s\n", line);
}

static void
add_dp(struct rte_tel_data *d, const struct mc_dp_stats *s)
{
#define X(name, help) rte_tel_data_add_dict_u64(d, #name, s->name);
	MC_DP_COUNTERS(X)
#undef X
}

static int
tel_stats(const char *cmd, const char *params, struct rte_tel_data *d)
{
	const struct mc_app *a = tel_app;
	struct app_sums s;
	uint64_t avail = 0, size = 0, ipk = 0, imiss = 0, ierr = 0, oerr = 0, up = 0;
	unsigned int i;
	(void)cmd;
	(void)params;
	rte_tel_data_start_dict(d);
	app_sum(a, &s);
	add_dp(d, &s.dp);
#define X(n) rte_tel_data_add_dict_u64(d, #n, s.sx.n);
	MC_STORE_CTX_COUNTERS(X)
#undef X
#define X(n) rte_tel_data_add_dict_u64(d, #n, s.px.n);
	MC_PROTO_COUNTERS(X)
#undef X
#define X(n) rte_tel_data_add_dict_u64(d, #n, s.part.n);
	MC_STORE_PART_COUNTERS(X)
#undef X
#define X(n, help) rte_tel_data_add_dict_u64(d, #n, s.svc.n);
	MC_SVC_COUNTERS(X)
#undef X
#define X(n) rte_tel_data_add_dict_u64(d, #n, s.tcp.n);
	MC_TCP_COUNTERS(X)
#undef X
	for (i = 0; i < a->nports; i++) {
		struct rte_eth_stats es;
		avail += rte_mempool_avail_count(a->ports[i].pool);
		size += a->ports[i].pool->size;
		up += a->link_up[i] == 2;
		if (rte_eth_stats_get(a->ports[i].port_id, &es) == 0) {
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
	rte_tel_data_add_dict_u64(d, "ports", a->nports);
	rte_tel_data_add_dict_u64(d, "link_up", up);
	rte_tel_data_add_dict_u64(d, "link_changes", a->link_changes);
	return 0;
}

static int
tel_queues(const char *cmd, const char *params, struct rte_tel_data *d)
{
	const struct mc_app *a = tel_app;
	unsigned int q;
	(void)cmd;
	(void)params;
	rte_tel_data_start_dict(d);
	for (q = 0; q < a->nworkers; q++) {
		struct rte_tel_data *qd = rte_tel_data_alloc();
		char name[16];
		if (qd == NULL)
			return -ENOMEM;
		rte_tel_data_start_dict(qd);
		rte_tel_data_add_dict_u64(qd, "lcore", a->workers[q].lcore_id);
		rte_tel_data_add_dict_u64(qd, "port", a->workers[q].port_id);
		rte_tel_data_add_dict_u64(qd, "queue", a->workers[q].queue_id);
		add_dp(qd, &a->workers[q].st);
		snprintf(name, sizeof(name), "q%u", q);
		rte_tel_data_add_dict_container(d, name, qd, 0);
	}
	return 0;
}

void
mc_app_telemetry_setup(struct mc_app *a)
{
	tel_app = a;
	rte_telemetry_register_cmd("/mcbox/stats", tel_stats,
				   "mcbox counters summed over queues: rx, tx, drops by reason, store");
	rte_telemetry_register_cmd("/mcbox/queues", tel_queues,
				   "mcbox counters per queue. Takes no parameters");
}
