/* Per-source budgets: the table shared by every worker, its secret and costs (dataplane.h:
 * struct mc_rl, and the GCRA itself, inline there). */
#include "dataplane.h"

#include <rte_malloc.h>

#include <sys/random.h>

struct mc_rl *
mc_dp_rl_create(const struct mc_config *cfg, uint64_t tsc_hz, int socket)
{
	struct mc_rl *rl;
	uint64_t k[2];
	if (cfg->src_rps == 0 && cfg->src_kbps == 0)
		return NULL;
	rl = rte_zmalloc_socket("mc_rl", sizeof(*rl), RTE_CACHE_LINE_SIZE, socket);
	if (rl != NULL)
		rl->slot = rte_zmalloc_socket("mc_rl_slots", sizeof(*rl->slot) * MC_RL_SLOTS,
					      RTE_CACHE_LINE_SIZE, socket);
	if (rl == NULL || rl->slot == NULL || getrandom(k, sizeof(k), 0) != (ssize_t)sizeof(k))
		rte_exit(EXIT_FAILURE, "cannot set up the per-source rate limiter\n");
	rl->k0 = k[0];
	rl->k1 = k[1] | 1;
	rl->shared = true;
	if (cfg->src_rps != 0) {
		rl->req_cost = RTE_MAX(tsc_hz / cfg->src_rps, (uint64_t)1);
		rl->req_window = RTE_MAX(tsc_hz / 1000 * cfg->src_burst_ms, rl->req_cost);
	}
	if (cfg->src_kbps != 0) {
		const uint64_t bps = (uint64_t)cfg->src_kbps * 1024;
		/* The burst holds at least one reply of the largest size with its headers. */
		const uint64_t burst = RTE_MAX(bps / 1000 * cfg->src_burst_ms,
					       (uint64_t)cfg->udp_reply_max * 2);
		rl->byte_cost_fp = RTE_MAX((tsc_hz << 16) / bps, (uint64_t)1);
		rl->byte_window = (burst * rl->byte_cost_fp) >> 16;
		/* Ethernet, IPv4, UDP and memcached headers, and a 5-byte "END\r\n". */
		rl->byte_min = ((14 + 20 + 8 + 8 + 5) * rl->byte_cost_fp) >> 16;
	}
	return rl;
}

void
mc_dp_rl_destroy(struct mc_rl *rl)
{
	if (rl == NULL)
		return;
	rte_free(rl->slot);
	rte_free(rl);
}
