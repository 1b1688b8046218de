/* mcbox settings: defaults, INI file (rte_cfgfile) and command line, in that order of
 * precedence (command line beats file beats default), plus the log type every module uses. */
#ifndef MC_CONFIG_H
#define MC_CONFIG_H

#include <stdint.h>
#include <stddef.h>

#include <rte_log.h>

extern int mc_logtype;
#define MC_LOG(level, ...) rte_log(RTE_LOG_##level, mc_logtype, "mcbox: " __VA_ARGS__)

#define MC_VERSION "0.1.0"
#define MC_MAX_QUEUES 16
#define MC_MAX_ALLOW 16
#define MC_MAX_TCP_THREADS 64

struct mc_cidr {
	uint32_t net;  /* host byte order */
	uint32_t mask; /* host byte order */
};

/* An IPv6 address and prefix length (bits 0: none). */
struct mc_cidr6 {
	uint8_t net[16];
	uint8_t bits;
};

struct mc_config {
	uint32_t ip;            /* host byte order; 0 = no IPv4 (then --ip6 is required) */
	uint32_t netmask;       /* host byte order */
	struct mc_cidr6 ip6;    /* --ip6 ADDR/PREFIX; bits 0 = no IPv6 */
	uint16_t udp_port;
	uint32_t memory_mb;
	uint32_t max_item_size; /* bytes */
	double growth_factor;
	char memory_file[256];  /* -e: the store lives in this file (warm restart); empty = off */
	uint16_t queues;
	char ethdev[64];        /* ethdev name; empty = every probed port */
	uint32_t stats_interval; /* seconds; 0 = never print */
	int verbosity;          /* 0 = notice, 1 = info, 2+ = debug */
	uint32_t idle_sleep_us; /* nap when a queue is idle; 0 = pure polling */
	/* Network safety. */
	struct mc_cidr allow[MC_MAX_ALLOW];
	unsigned int n_allow;   /* IPv4 entries of the allow list */
	struct mc_cidr6 allow6[MC_MAX_ALLOW];
	unsigned int n_allow6;  /* IPv6 entries; no entries at all = the subnets of ip and ip6 */
	int udp_admin;          /* stats/flush_all/verbosity over UDP */
	int udp_writes;         /* storage commands over UDP */
	uint32_t max_reply_ratio; /* reply bytes per request byte, 0 = unlimited */
	uint32_t zc_min;        /* values at least this long are sent zero-copy; 0 = always copy */
	uint32_t src_rps;       /* requests per second per source address, 0 = unlimited */
	uint32_t src_kbps;      /* reply kilobytes per second per source address, 0 = unlimited */
	uint32_t src_burst_ms;  /* a source's burst: this many milliseconds of each rate */
	uint32_t udp_reply_max; /* reply bytes one UDP request may draw (amplification cap) */
	/* TCP service, through the kernel's stack. */
	uint16_t tcp_port;      /* 0 = off */
	uint16_t tcp_threads;
	uint32_t max_conns;
	uint32_t idle_timeout;  /* seconds, 0 = never */
	uint32_t read_timeout;  /* seconds a partial request may take, 0 = never */
	uint32_t conn_memory_mb; /* grown connection buffers, all connections together */
	/* Exception path: frames the fast path does not consume go to the kernel. */
	char exception[16];     /* tap, virtio or off */
	char kernel_if[16];     /* the kernel interface's name (IFNAMSIZ) */
	char config_file[256];
};

/* Fill cfg with the defaults (from the one table of options in config.c). */
void mc_config_defaults(struct mc_config *cfg);
/* The default of file key `key` as its text ("" for none); -1 for an unknown key. */
int mc_config_default_of(const char *key, const char **def);
/* How many options (file keys) there are. */
unsigned int mc_config_nkeys(void);

/* Parse app options (argv after EAL's "--"). Loads -c/--config FILE first, then applies the
 * command line over it. Returns 0, 1 when --help/--version was printed (caller exits 0), or -1
 * with a one-line reason in err. */
int mc_config_parse(struct mc_config *cfg, int argc, char **argv, char *err, size_t errlen);

/* Apply one INI file over cfg. Returns 0 or -1 with a reason in err. */
int mc_config_load_file(struct mc_config *cfg, const char *path, char *err, size_t errlen);

/* Print usage to stdout. */
void mc_config_usage(const char *prog);

/* Is addr (host order) allowed by cfg's allow list? Inline: every request asks. */
static inline int
mc_config_allowed(const struct mc_config *cfg, uint32_t addr)
{
	unsigned int i;
	if (cfg->n_allow + cfg->n_allow6 == 0)
		return cfg->ip != 0 && (addr & cfg->netmask) == (cfg->ip & cfg->netmask);
	for (i = 0; i < cfg->n_allow; i++)
		if ((addr & cfg->allow[i].mask) == cfg->allow[i].net)
			return 1;
	return 0;
}
/* Is the IPv6 address a (16 bytes, network order) allowed by cfg's allow list? */
int mc_config_allowed6(const struct mc_config *cfg, const uint8_t *a);
/* Do the first bits of a and b agree? */
int mc_ip6_prefix_match(const uint8_t *a, const uint8_t *b, unsigned int bits);

#endif
