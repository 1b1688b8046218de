/* ketama: consistent hashing of keys to servers as libmemcached does it with
 * MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED (and twemproxy with "distribution: ketama, hash: md5"):
 * MD5 of "host-i" (or "host:port-i" when the port is not 11211) for i in 0..39, four points
 * per digest, 160 points per server of weight 1; a key goes to the first point at or after
 * the MD5 of the key, wrapping round. Shared by mcload and ketama_check, which proves it
 * against libmemcached itself. */
#ifndef MC_KETAMA_H
#define MC_KETAMA_H

#include <stddef.h>
#include <stdint.h>

struct mc_ketama_point {
	uint32_t value;
	uint32_t server; /* index into the list given to mc_ketama_create */
};

struct mc_ketama {
	struct mc_ketama_point *points; /* sorted by value */
	unsigned int npoints;
	unsigned int nservers;
};

/* RFC 1321. */
void mc_ketama_md5(const void *msg, size_t len, uint8_t out[16]);

/* The continuum of n servers (hosts[i] as given, e.g. "198.18.0.1", and ports[i]).
 * Returns 0, or -1 when out of memory or n is 0. */
int mc_ketama_create(struct mc_ketama *k, const char *const *hosts, const uint16_t *ports,
		     unsigned int n);
void mc_ketama_destroy(struct mc_ketama *k);

/* The index of the server that owns key. */
unsigned int mc_ketama_server(const struct mc_ketama *k, const void *key, size_t len);

#endif
