/* Telemetry endpoints of the app. */
#ifndef MC_APP_TELEMETRY_H
#define MC_APP_TELEMETRY_H

#include <rte_telemetry.h>

#include "../dataplane/dataplane.h"

/* Register /mcbox/stats and /mcbox/queues over the n workers. */
void mc_app_telemetry_setup(const struct mc_worker *workers, unsigned int n);
/* Add the app's other counters (store, service) to a stats dict; defined in main.c. */
void mc_app_stats_extra(struct rte_tel_data *d);

#endif
