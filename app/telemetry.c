/* DPDK telemetry endpoints: /mcbox/stats (totals) and /mcbox/queues (per queue), readable with
 * dpdk-telemetry.py or any client of the telemetry socket. */
#include "telemetry.h"

#include <rte_telemetry.h>

static const struct mc_worker *tel_workers;
static unsigned int tel_n;

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
	struct mc_dp_stats s;
	(void)cmd;
	(void)params;
	rte_tel_data_start_dict(d);
	mc_dp_stats_sum(tel_workers, tel_n, &s);
	add_dp(d, &s);
	mc_app_stats_extra(d);
	return 0;
}

static int
tel_queues(const char *cmd, const char *params, struct rte_tel_data *d)
{
	unsigned int q;
	(void)cmd;
	(void)params;
	rte_tel_data_start_dict(d);
	for (q = 0; q < tel_n; q++) {
		struct rte_tel_data *qd = rte_tel_data_alloc();
		char name[16];
		if (qd == NULL)
			return -ENOMEM;
		rte_tel_data_start_dict(qd);
		rte_tel_data_add_dict_u64(qd, "lcore", tel_workers[q].lcore_id);
		rte_tel_data_add_dict_u64(qd, "port", tel_workers[q].port_id);
		rte_tel_data_add_dict_u64(qd, "queue", tel_workers[q].queue_id);
		add_dp(qd, &tel_workers[q].st);
		snprintf(name, sizeof(name), "q%u", q);
		rte_tel_data_add_dict_container(d, name, qd, 0);
	}
	return 0;
}

void
mc_app_telemetry_setup(const struct mc_worker *workers, unsigned int n)
{
	tel_workers = workers;
	tel_n = n;
	rte_telemetry_register_cmd("/mcbox/stats", tel_stats,
				   "mcbox counters summed over queues: rx, tx, drops by reason, store");
	rte_telemetry_register_cmd("/mcbox/queues", tel_queues,
				   "mcbox counters per queue. Takes no parameters");
}
