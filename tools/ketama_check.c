/* ketama_check: mcload's ketama (tools/ketama.c) against libmemcached itself. For several
 * server lists, random keys go through both; any key they place on different servers is a
 * mismatch. Prints one line per list and exits 1 on any mismatch.
 *
 * ketama_check [-n keys] [-s seed] [-b weighted|ketama|consistent]
 * -b picks libmemcached's behaviour; mcload implements "weighted"
 * (MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED), the other two are there to show they differ. */
#include "ketama.h"

#include <libmemcached/memcached.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_LIST 10

struct server_list {
	const char *what;
	unsigned int n;
	const char *host[MAX_LIST];
	uint16_t port[MAX_LIST];
};

/* Default-port lists (names "host-i") and other-port lists (names "host:port-i"). */
static const struct server_list lists[] = {
	{"1 lab box", 1, {"198.18.0.1"}, {11211}},
	{"2 lab boxes", 2, {"198.18.0.1", "198.18.1.1"}, {11211, 11211}},
	{"3 lab boxes", 3, {"198.18.0.1", "198.18.1.1", "198.18.2.1"}, {11211, 11211, 11211}},
	{"5 servers, one host, ports 11211..11215", 5,
	 {"127.0.0.1", "127.0.0.1", "127.0.0.1", "127.0.0.1", "127.0.0.1"},
	 {11211, 11212, 11213, 11214, 11215}},
	{"10 servers, mixed ports", 10,
	 {"10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.1.1", "10.0.1.2",
	  "10.0.1.3", "192.168.100.200", "172.16.0.9"},
	 {11211, 11211, 22122, 11211, 11311, 11211, 9999, 11211, 11211, 65535}},
};

static uint64_t
next_rand(uint64_t *s)
{
	/* splitmix64: a fixed seed gives the same keys on every run. */
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* memcached key characters (no space or control), 1..250 bytes: several MD5 blocks. */
static size_t
random_key(char *k, uint64_t *seed)
{
	size_t len = 1 + next_rand(seed) % 250, i;
	for (i = 0; i < len; i++)
		k[i] = (char)(33 + next_rand(seed) % 94);
	return len;
}

static memcached_st *
libmemcached_for(const struct server_list *l, const char *behaviour)
{
	memcached_st *memc = memcached_create(NULL);
	memcached_return_t rc = MEMCACHED_SUCCESS;
	unsigned int i;

	if (memc == NULL)
		return NULL;
	if (!strcmp(behaviour, "weighted"))
		rc = memcached_behavior_set(memc, MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED, 1);
	else if (!strcmp(behaviour, "ketama"))
		rc = memcached_behavior_set(memc, MEMCACHED_BEHAVIOR_KETAMA, 1);
	else
		rc = memcached_behavior_set(memc, MEMCACHED_BEHAVIOR_DISTRIBUTION,
					    MEMCACHED_DISTRIBUTION_CONSISTENT);
	for (i = 0; i < l->n && rc == MEMCACHED_SUCCESS; i++)
		rc = memcached_server_add(memc, l->host[i], l->port[i]);
	if (rc != MEMCACHED_SUCCESS) {
		fprintf(stderr, "ketama_check: libmemcached: %s\n", memcached_strerror(memc, rc));
		memcached_free(memc);
		return NULL;
	}
	return memc;
}

/* Mismatches over nkeys keys, or -1 when a side could not be set up. */
static long
check_list(const struct server_list *l, const char *behaviour, unsigned long nkeys,
	   uint64_t seed, unsigned long *used)
{
	struct mc_ketama k;
	memcached_st *memc;
	unsigned long i, hits[MAX_LIST] = {0};
	long bad = 0;
	char key[256];
	unsigned int s;

	if (mc_ketama_create(&k, l->host, l->port, l->n) != 0)
		return -1;
	memc = libmemcached_for(l, behaviour);
	if (memc == NULL) {
		mc_ketama_destroy(&k);
		return -1;
	}
	for (i = 0; i < nkeys; i++) {
		size_t len = random_key(key, &seed);
		unsigned int ours = mc_ketama_server(&k, key, len);
		uint32_t theirs = memcached_generate_hash(memc, key, len);
		if (ours != theirs) {
			if (bad < 3)
				fprintf(stderr, "  key %.*s%s: mcload %u, libmemcached %u\n",
					len > 40 ? 40 : (int)len, key, len > 40 ? "..." : "", ours,
					(unsigned int)theirs);
			bad++;
		}
		hits[ours < MAX_LIST ? ours : 0]++;
	}
	/* Every server of the list owns some keys: a degenerate ring would agree trivially. */
	*used = 0;
	for (s = 0; s < l->n; s++)
		*used += hits[s] > 0;
	memcached_free(memc);
	mc_ketama_destroy(&k);
	return bad;
}

int
main(int argc, char **argv)
{
	unsigned long nkeys = 20000, used;
	uint64_t seed = 13;
	const char *behaviour = "weighted";
	size_t i;
	int c, failed = 0;

	while ((c = getopt(argc, argv, "n:s:b:")) != -1) {
		switch (c) {
		case 'n': nkeys = strtoul(optarg, NULL, 10); break;
		case 's': seed = strtoull(optarg, NULL, 10); break;
		case 'b': behaviour = optarg; break;
		default:
			fprintf(stderr, "usage: %s [-n keys] [-s seed] [-b weighted|ketama|consistent]\n",
				argv[0]);
			return 2;
		}
	}
	for (i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
		long bad = check_list(&lists[i], behaviour, nkeys, seed + i, &used);
		if (bad < 0) {
			printf("FAIL %s: cannot set up\n", lists[i].what);
			failed++;
			continue;
		}
		printf("%s %s: %ld of %lu keys on another server than libmemcached's (%s), "
		       "%lu of %u servers used\n",
		       bad == 0 && used == lists[i].n ? "ok  " : "FAIL", lists[i].what, bad, nkeys,
		       behaviour, used, lists[i].n);
		failed += bad != 0 || used != lists[i].n;
	}
	printf("ketama_check: %d of %zu server lists mismatched\n", failed,
	       sizeof(lists) / sizeof(lists[0]));
	return failed ? 1 : 0;
}
