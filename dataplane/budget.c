/* Per-source budgets: GCRA over a table shared by every worker (dataplane.h, struct mc_rl). */
#include "dataplane.h"

#include <rte_malloc.h>

#include <sys/random.h>

static inline struct mc_rl_slot *
rl_slot(const struct mc_rl *rl, uint32_t src)
{
	/* Multiply-shift with a secret: 2-universal, so no two sources collide by design. */
	return &rl->slot[((src ^ rl->k0) * rl->k1) >> (64 - 16)];
}

/* GCRA: move *tat on by cost unless that puts it more than window ahead of now. Lock-free:
 * workers on other queues may charge the same slot. */
static inline bool
gcra_take(const struct mc_rl *rl, uint64_t *tat, uint64_t now, uint64_t cost, uint64_t window)
{
	uint64_t t = __atomic_load_n(tat, __ATOMIC_RELAXED), n;
	if (!rl->shared) {
		/* One worker: nobody else writes the slot, a plain update will do (a locked
		 * compare-and-swap costs about 20 cycles a request, twice). */
		n = (t > now ? t : now) + cost;
		if (n - now > window)
			return false;
		__atomic_store_n(tat, n, __ATOMIC_RELAXED);
		return true;
	}
	do {
		n = (t > now ? t : now) + cost;
		if (n - now > window)
			return false;
	} while (!__atomic_compare_exchange_n(tat, &t, n, true, __ATOMIC_RELAXED,
					      __ATOMIC_RELAXED));
	return true;
}

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

bool
mc_dp_rl_admit(struct mc_worker *w, uint32_t src)
{
	const struct mc_rl *rl = w->rl;
	struct mc_rl_slot *s;
	if (rl == NULL)
		return true;
	s = rl_slot(rl, src);
	/* A source whose byte budget cannot pay even the smallest reply gets no request in
	 * either: nothing is parsed, looked up or copied for it. */
	if (rl->byte_cost_fp != 0 &&
	    __atomic_load_n(&s->byte_tat, __ATOMIC_RELAXED) + rl->byte_min > w->now + rl->byte_window)
		return false;
	return rl->req_cost == 0 || gcra_take(rl, &s->req_tat, w->now, rl->req_cost, rl->req_window);
}

bool
mc_dp_rl_charge(struct mc_worker *w, uint32_t src, uint32_t bytes)
{
	const struct mc_rl *rl = w->rl;
	if (rl == NULL || rl->byte_cost_fp == 0)
		return true;
	return gcra_take(rl, &rl_slot(rl, src)->byte_tat, w->now, (bytes * rl->byte_cost_fp) >> 16,
			 rl->byte_window);
}
