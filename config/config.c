/* Settings: defaults, INI file through rte_cfgfile, command line through getopt_long. Each
 * setting is one row of MC_OPTIONS, so its flag, its file key and its help line stay together. */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_cfgfile.h>

RTE_LOG_REGISTER_DEFAULT(mc_logtype, NOTICE);

enum mc_opt_kind { K_IP, K_IP6, K_U16, K_U32, K_SIZE, K_DOUBLE, K_STR, K_BOOL, K_CIDRS, K_VERB };

/* X(long name, short, file key, kind, field, min, max, default, help): the one table of options.
 * The defaults, the help text and the shipped config/mcbox.conf (a unit test checks it) all come
 * from here; an empty default leaves the field zero. */
#define MC_OPTIONS(X)                                                                        \
	X("ip", 0, "ip", K_IP, ip, 0, 0, "", "IPv4 address mcbox answers on (this or --ip6 is required)") \
	X("netmask", 0, "netmask", K_IP, netmask, 0, 0, "255.255.255.0", "netmask of --ip") \
	X("ip6", 0, "ip6", K_IP6, ip6, 0, 0, "", "IPv6 address and prefix mcbox answers on, ADDR/PREFIX (e.g. 2001:2::1/64)") \
	X("udp-port", 'U', "udp_port", K_U16, udp_port, 1, 65535, "11211", "memcached UDP port") \
	X("memory-limit", 'm', "memory_mb", K_U32, memory_mb, 8, 1048576, "64", "item memory in MiB") \
	X("max-item-size", 'I', "max_item_size", K_SIZE, max_item_size, 1024, 8388608, "1m", "largest item, e.g. 1m, 512k, at most 8m") \
	X("slab-growth-factor", 'f', "growth_factor", K_DOUBLE, growth_factor, 0, 0, "1.25", "slab class growth factor, 1.01..4") \
	X("memory-file", 'e', "memory_file", K_STR, memory_file, 0, sizeof(((struct mc_config *)0)->memory_file), "", "warm restart: the cache lives in this file (hugetlbfs or tmpfs); a clean stop (SIGTERM, SIGUSR1) saves it and a start with the same -m, -I, -f and queues reattaches it") \
	X("queues", 'q', "queues", K_U16, queues, 1, MC_MAX_QUEUES, "1", "RX/TX queue pairs, one worker lcore each") \
	X("ethdev", 0, "ethdev", K_STR, ethdev, 0, sizeof(((struct mc_config *)0)->ethdev), "", "ethdev name to drive (default: every probed port)") \
	X("stats-interval", 0, "stats_interval", K_U32, stats_interval, 0, 86400, "5", "seconds between stats lines, 0 = off") \
	X("idle-sleep", 0, "idle_sleep_us", K_U32, idle_sleep_us, 0, 100000, "0", "microseconds to nap when a queue is idle, 0 = poll") \
	X("verbose", 'v', "verbosity", K_VERB, verbosity, 0, 3, "0", "more logging; repeat for more") \
	X("allow", 0, "allow", K_CIDRS, allow, 0, 0, "", "comma-separated IPv4 and IPv6 CIDRs served (default: the subnets of --ip and --ip6)") \
	X("udp-admin", 0, "udp_admin", K_BOOL, udp_admin, 0, 1, "off", "on|off: stats, flush_all, verbosity over UDP") \
	X("udp-writes", 0, "udp_writes", K_BOOL, udp_writes, 0, 1, "off", "on|off: over UDP, anything that changes the store (off: read-only UDP, writes over TCP)") \
	X("max-reply-ratio", 0, "max_reply_ratio", K_U32, max_reply_ratio, 0, 1000000, "0", "reply bytes per request byte over UDP, 0 = unlimited") \
	X("zero-copy-min", 0, "zero_copy_min", K_U32, zc_min, 0, 16777216, "0", "values of at least this many bytes go out from item memory, 0 = always copy (see docs/PERFORMANCE.md)") \
	X("source-rps", 0, "src_rps", K_U32, src_rps, 0, 100000000, "200000", "requests per second from one source address, 0 = unlimited") \
	X("source-kbps", 0, "src_kbps", K_U32, src_kbps, 0, 100000000, "100000", "reply kilobytes per second to one source address, 0 = unlimited") \
	X("source-burst-ms", 0, "src_burst_ms", K_U32, src_burst_ms, 1, 1000, "5", "a source's burst: this many milliseconds of each rate, from the first request on") \
	X("udp-reply-max", 0, "udp_reply_max", K_SIZE, udp_reply_max, 1400, 1048576, "64k", "reply bytes one UDP request may draw; a larger reply becomes SERVER_ERROR, fetch over TCP") \
	X("port", 'p', "tcp_port", K_U16, tcp_port, 0, 65535, "11211", "memcached TCP port (through the kernel's stack), 0 = off") \
	X("threads", 't', "tcp_threads", K_U16, tcp_threads, 1, MC_MAX_TCP_THREADS, "2", "TCP threads, each an epoll loop over its connections") \
	X("max-conns", 0, "max_conns", K_U32, max_conns, 1, 1000000, "1024", "TCP connections at once; more are accepted and closed at once, counted") \
	X("idle-timeout", 0, "idle_timeout", K_U32, idle_timeout, 0, 86400, "0", "seconds a TCP connection may sit idle, 0 = forever (as memcached)") \
	X("read-timeout", 0, "read_timeout", K_U32, read_timeout, 0, 3600, "30", "seconds a partly received TCP request may take to complete, 0 = forever (slow-drip defence)") \
	X("conn-memory", 0, "conn_memory_mb", K_U32, conn_memory_mb, 1, 65536, "64", "MiB that TCP connection buffers beyond their first 16 KiB may take together") \
	X("exception", 0, "exception", K_STR, exception, 0, sizeof(((struct mc_config *)0)->exception), "tap", "tap|virtio|off: frames the fast path does not consume go to a kernel interface (TAP PMD, or virtio-user over vhost-net)") \
	X("kernel-if", 0, "kernel_if", K_STR, kernel_if, 0, sizeof(((struct mc_config *)0)->kernel_if), "mcbox0", "name of that kernel interface; it carries the port's MAC and --ip")

/* The defaults go through the same parser as the command line. */
static int set_value(struct mc_config *cfg, const char *name, enum mc_opt_kind kind, void *field,
		     uint64_t mn, uint64_t mx, const char *val, char *err, size_t errlen);

void
mc_config_defaults(struct mc_config *cfg)
{
	char err[256];
	memset(cfg, 0, sizeof(*cfg));
#define X(lname, sname, key, kind, field, mn, mx, def, help)                                   \
	if (def[0] != '\0' &&                                                                  \
	    set_value(cfg, key, kind, &cfg->field, mn, mx, def, err, sizeof(err)) != 0)        \
		abort(); /* a default outside its own range: a bug in the table */
	MC_OPTIONS(X)
#undef X
}

unsigned int
mc_config_nkeys(void)
{
	return 0
#define X(lname, sname, key, kind, field, mn, mx, def, help) +1
	       MC_OPTIONS(X)
#undef X
		;
}

int
mc_config_default_of(const char *key, const char **def)
{
#define X(lname, sname, k, kind, field, mn, mx, d, help)                                       \
	if (!strcmp(key, k)) {                                                                 \
		*def = d;                                                                      \
		return 0;                                                                      \
	}
	MC_OPTIONS(X)
#undef X
	return -1;
}

void
mc_config_usage(const char *prog)
{
	printf("Usage: %s [EAL options] -- [options]\n"
	       "mcbox %s: a kernel-bypass memcached appliance (UDP) on DPDK.\n\n",
	       prog, MC_VERSION);
#define X(lname, sname, key, kind, field, mn, mx, def, help)                                   \
	if (sname)                                                                             \
		printf("  -%c, --%-20s %s%s%s%s [%s]\n", sname, lname, help,                   \
		       def[0] ? " (default " : "", def, def[0] ? ")" : "", key);               \
	else                                                                                   \
		printf("      --%-20s %s%s%s%s [%s]\n", lname, help, def[0] ? " (default " : "",  \
		       def, def[0] ? ")" : "", key);
	MC_OPTIONS(X)
#undef X
	printf("  -c, --config FILE          INI file, section [mcbox], keys in brackets above\n"
	       "  -h, --help                 this text\n"
	       "  -V, --version              print the version\n");
}

static int
parse_u64(const char *s, uint64_t *out)
{
	char *end;
	if (s == NULL || *s == '\0' || !isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return -1;
	*out = v;
	return 0;
}

static int
parse_size(const char *s, uint64_t *out)
{
	char buf[32];
	size_t n = strlen(s);
	uint64_t mult = 1;
	if (n == 0 || n >= sizeof(buf))
		return -1;
	memcpy(buf, s, n + 1);
	switch (buf[n - 1]) {
	case 'k': case 'K': mult = 1024; buf[n - 1] = '\0'; break;
	case 'm': case 'M': mult = 1024 * 1024; buf[n - 1] = '\0'; break;
	default: break;
	}
	if (parse_u64(buf, out) != 0 || *out > UINT32_MAX)
		return -1;
	*out *= mult;
	return 0;
}

static int
parse_ip(const char *s, uint32_t *out)
{
	struct in_addr a;
	if (inet_pton(AF_INET, s, &a) != 1)
		return -1;
	*out = ntohl(a.s_addr);
	return 0;
}

/* ADDR/PREFIX (PREFIX 1..128; an allow entry without one is /128, a box address must have
 * one) into c. A box address must be unicast and
 * global or unique-local: not unspecified, loopback, multicast, link-local or IPv4-mapped. */
static int
parse_cidr6(const char *s, struct mc_cidr6 *c, int box_address)
{
	char buf[INET6_ADDRSTRLEN + 8];
	char *slash;
	uint64_t bits = 128;
	struct in6_addr a;
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	if (strlen(s) >= sizeof(buf))
		return -1;
	strcpy(buf, s);
	slash = strchr(buf, '/');
	if (slash == NULL && box_address)
		return -1; /* /128 would make the default allow list nobody but us */
	if (slash != NULL) {
		*slash = '\0';
		if (parse_u64(slash + 1, &bits) != 0 || bits > 128 || (box_address && bits == 0))
			return -1;
	}
	if (inet_pton(AF_INET6, buf, &a) != 1)
		return -1;
	if (box_address) {
		static const uint8_t zero[16], loop[16] = {[15] = 1};
		if (!memcmp(a.s6_addr, zero, 16) || !memcmp(a.s6_addr, loop, 16) ||
		    a.s6_addr[0] == 0xff || (a.s6_addr[0] == 0xfe && (a.s6_addr[1] & 0xc0) == 0x80) ||
		    !memcmp(a.s6_addr, mapped, 12))
			return -1;
		memcpy(c->net, a.s6_addr, 16);
	} else {
		unsigned int i;
		for (i = 0; i < 16; i++) {
			unsigned int keep = bits >= 8 * (i + 1) ? 8 : bits > 8 * i ? (unsigned)(bits - 8 * i) : 0;
			c->net[i] = (uint8_t)(a.s6_addr[i] & (keep ? 0xff << (8 - keep) : 0));
		}
	}
	c->bits = (uint8_t)bits;
	return 0;
}

int
mc_ip6_prefix_match(const uint8_t *a, const uint8_t *b, unsigned int bits)
{
	unsigned int full = bits / 8, rest = bits % 8;
	if (memcmp(a, b, full) != 0)
		return 0;
	return rest == 0 || ((a[full] ^ b[full]) & (0xff << (8 - rest))) == 0;
}

static int
parse_bool(const char *s, int *out)
{
	if (!strcmp(s, "on") || !strcmp(s, "yes") || !strcmp(s, "1") || !strcmp(s, "true"))
		*out = 1;
	else if (!strcmp(s, "off") || !strcmp(s, "no") || !strcmp(s, "0") || !strcmp(s, "false"))
		*out = 0;
	else
		return -1;
	return 0;
}

static int
parse_cidrs(const char *s, struct mc_config *cfg)
{
	char buf[1024];
	char *save = NULL, *tok;
	unsigned int n = 0, n6 = 0;
	if (strlen(s) >= sizeof(buf))
		return -1;
	strcpy(buf, s);
	for (tok = strtok_r(buf, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
		char *slash = strchr(tok, '/');
		uint64_t bits = 32;
		uint32_t addr;
		if (strchr(tok, ':') != NULL) {
			if (n6 == MC_MAX_ALLOW || parse_cidr6(tok, &cfg->allow6[n6], 0) != 0)
				return -1;
			n6++;
			continue;
		}
		if (n == MC_MAX_ALLOW)
			return -1;
		if (slash) {
			*slash = '\0';
			if (parse_u64(slash + 1, &bits) != 0 || bits > 32)
				return -1;
		}
		if (parse_ip(tok, &addr) != 0)
			return -1;
		cfg->allow[n].mask = bits == 0 ? 0 : (uint32_t)(0xffffffffu << (32 - bits));
		cfg->allow[n].net = addr & cfg->allow[n].mask;
		n++;
	}
	if (n + n6 == 0)
		return -1;
	cfg->n_allow = n;
	cfg->n_allow6 = n6;
	return 0;
}

/* Set one option from its text value. Returns 0, or -1 with the reason in err. */
static int
set_value(struct mc_config *cfg, const char *name, enum mc_opt_kind kind, void *field,
	  uint64_t mn, uint64_t mx, const char *val, char *err, size_t errlen)
{
	uint64_t v;
	int b;
	switch (kind) {
	case K_IP:
		if (parse_ip(val, field) == 0)
			return 0;
		snprintf(err, errlen, "%s: '%s' is not an IPv4 address (A.B.C.D)", name, val);
		return -1;
	case K_IP6:
		if (parse_cidr6(val, field, 1) == 0)
			return 0;
		snprintf(err, errlen,
			 "%s: '%s' is not a unicast IPv6 address with a prefix length (ADDR/PREFIX)",
			 name, val);
		return -1;
	case K_U16:
	case K_U32:
		if (parse_u64(val, &v) == 0 && v >= mn && v <= mx) {
			if (kind == K_U16)
				*(uint16_t *)field = (uint16_t)v;
			else
				*(uint32_t *)field = (uint32_t)v;
			return 0;
		}
		snprintf(err, errlen, "%s: '%s' is not a whole number from %lu to %lu", name, val,
			 (unsigned long)mn, (unsigned long)mx);
		return -1;
	case K_SIZE:
		if (parse_size(val, &v) == 0 && v >= mn && v <= mx) {
			*(uint32_t *)field = (uint32_t)v;
			return 0;
		}
		snprintf(err, errlen, "%s: '%s' is not a size from %luk to %lum (suffix k or m)", name,
			 val, (unsigned long)(mn / 1024), (unsigned long)(mx / 1048576));
		return -1;
	case K_DOUBLE: {
		char *end;
		double d = strtod(val, &end);
		if (*val != '\0' && *end == '\0' && d >= 1.01 && d <= 4.0) {
			*(double *)field = d;
			return 0;
		}
		snprintf(err, errlen, "%s: '%s' is not a number from 1.01 to 4", name, val);
		return -1;
	}
	case K_STR: /* mx: the field's size */
		if (strlen(val) < mx) {
			snprintf(field, mx, "%s", val);
			return 0;
		}
		snprintf(err, errlen, "%s: '%s' is too long", name, val);
		return -1;
	case K_BOOL:
		if (parse_bool(val, &b) == 0) {
			*(int *)field = b;
			return 0;
		}
		snprintf(err, errlen, "%s: '%s' is not on or off", name, val);
		return -1;
	case K_CIDRS:
		if (parse_cidrs(val, cfg) == 0)
			return 0;
		snprintf(err, errlen, "%s: '%s' is not a list of up to %d IPv4 and %d IPv6 CIDRs (A.B.C.D/N,X:Y::/N,...)", name,
			 val, MC_MAX_ALLOW, MC_MAX_ALLOW);
		return -1;
	case K_VERB:
		if (parse_u64(val, &v) == 0 && v <= mx) {
			*(int *)field = (int)v;
			return 0;
		}
		snprintf(err, errlen, "%s: '%s' is not a level from 0 to %lu", name, val,
			 (unsigned long)mx);
		return -1;
	}
	return -1;
}

int
mc_config_load_file(struct mc_config *cfg, const char *path, char *err, size_t errlen)
{
	struct rte_cfgfile *f = rte_cfgfile_load(path, 0);
	int i, n;
	if (f == NULL) {
		snprintf(err, errlen, "config: cannot read '%s' as an INI file", path);
		return -1;
	}
	n = rte_cfgfile_num_sections(f, NULL, 0);
	if (n > 0 && !rte_cfgfile_has_section(f, "mcbox")) {
		snprintf(err, errlen, "config: '%s' has no [mcbox] section", path);
		rte_cfgfile_close(f);
		return -1;
	}
	int nent = rte_cfgfile_section_num_entries(f, "mcbox");
	struct rte_cfgfile_entry *ent = calloc(nent > 0 ? (size_t)nent : 1, sizeof(*ent));
	if (ent == NULL) {
		rte_cfgfile_close(f);
		snprintf(err, errlen, "config: out of memory");
		return -1;
	}
	nent = rte_cfgfile_section_entries(f, "mcbox", ent, nent);
	for (i = 0; i < nent; i++) {
		const char *k = ent[i].name, *v = ent[i].value;
		int known = 0, rc = 0;
#define X(lname, sname, key, kind, field, mn, mx, def, help)                                        \
	if (!known && !strcmp(k, key)) {                                                       \
		known = 1;                                                                     \
		rc = set_value(cfg, key, kind, &cfg->field, mn, mx, v, err, errlen);           \
	}
		MC_OPTIONS(X)
#undef X
		if (!known) {
			snprintf(err, errlen, "config: '%s': unknown key '%s' in [mcbox]", path, k);
			rc = -1;
		}
		if (rc != 0) {
			free(ent);
			rte_cfgfile_close(f);
			return -1;
		}
	}
	free(ent);
	rte_cfgfile_close(f);
	return 0;
}

enum {
#define X(lname, sname, key, kind, field, mn, mx, def, help) OPT_##field,
	MC_OPTIONS(X)
#undef X
	OPT_N,
	OPT_BASE = 256
};

/* Option id for a getopt return value, or -1. */
static int
option_id(int c)
{
	if (c >= OPT_BASE)
		return c - OPT_BASE;
#define X(lname, sname, key, kind, field, mn, mx, def, help)                                        \
	if (sname != 0 && c == sname)                                                          \
		return OPT_##field;
	MC_OPTIONS(X)
#undef X
	return -1;
}

int
mc_config_parse(struct mc_config *cfg, int argc, char **argv, char *err, size_t errlen)
{
	static const struct option longopts[] = {
#define X(lname, sname, key, kind, field, mn, mx, def, help)                                        \
	{lname, kind == K_VERB ? optional_argument : required_argument, NULL, OPT_BASE + OPT_##field},
		MC_OPTIONS(X)
#undef X
		{"config", required_argument, NULL, 'c'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	const char *shortopts = "U:m:I:f:e:q:p:t:vc:hV";
	int pass, c, verbose_count = 0;

	/* Pass 0 finds -c and loads the file; pass 1 applies the command line over it. */
	for (pass = 0; pass < 2; pass++) {
		optind = 1;
		opterr = 0;
		while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
			int id;
			if (c == 'h' || c == 'V') {
				if (pass == 0)
					continue;
				if (c == 'h')
					mc_config_usage(argv[0]);
				else
					printf("mcbox %s\n", MC_VERSION);
				return 1;
			}
			if (c == 'c') {
				if (pass == 1)
					continue;
				snprintf(cfg->config_file, sizeof(cfg->config_file), "%s", optarg);
				if (mc_config_load_file(cfg, optarg, err, errlen) != 0)
					return -1;
				continue;
			}
			if (c == '?' || c == ':') {
				snprintf(err, errlen, "unknown option or missing value: '%s' (see --help)",
					 argv[optind - 1]);
				return -1;
			}
			if (pass == 0)
				continue;
			id = option_id(c);
			if (id == OPT_verbosity) {
				if (optarg) {
					if (set_value(cfg, "--verbose", K_VERB, &cfg->verbosity, 0, 3,
						      optarg, err, errlen) != 0)
						return -1;
				} else {
					verbose_count++;
					cfg->verbosity = verbose_count > 3 ? 3 : verbose_count;
				}
				continue;
			}
#define X(lname, sname, key, kind, field, mn, mx, def, help)                                        \
	if (id == OPT_##field && set_value(cfg, "--" lname, kind, &cfg->field, mn, mx, optarg, err, \
					   errlen) != 0)                                       \
		return -1;
			MC_OPTIONS(X)
#undef X
		}
	}
	if (optind < argc) {
		snprintf(err, errlen, "unexpected argument '%s' (see --help)", argv[optind]);
		return -1;
	}
	if (cfg->ip == 0 && cfg->ip6.bits == 0) {
		snprintf(err, errlen, "--ip: required, or --ip6 (the address mcbox answers on)");
		return -1;
	}
	if (cfg->netmask != 0 && ((~cfg->netmask + 1) & ~cfg->netmask) != 0) {
		snprintf(err, errlen, "--netmask: not a contiguous mask");
		return -1;
	}
	if (strcmp(cfg->exception, "tap") && strcmp(cfg->exception, "virtio") &&
	    strcmp(cfg->exception, "off")) {
		snprintf(err, errlen, "--exception: '%s' is not tap, virtio or off", cfg->exception);
		return -1;
	}
	if (cfg->kernel_if[0] == '\0' && strcmp(cfg->exception, "off")) {
		snprintf(err, errlen, "--kernel-if: empty (give the kernel interface a name)");
		return -1;
	}
	if ((uint64_t)cfg->max_item_size * 2 > (uint64_t)cfg->memory_mb * 1048576) {
		snprintf(err, errlen, "-I: max item size %u is more than half of -m %u MiB",
			 cfg->max_item_size, cfg->memory_mb);
		return -1;
	}
	return 0;
}

int
mc_config_allowed6(const struct mc_config *cfg, const uint8_t *a)
{
	unsigned int i;
	if (cfg->n_allow + cfg->n_allow6 == 0)
		return cfg->ip6.bits != 0 && mc_ip6_prefix_match(a, cfg->ip6.net, cfg->ip6.bits);
	for (i = 0; i < cfg->n_allow6; i++)
		if (mc_ip6_prefix_match(a, cfg->allow6[i].net, cfg->allow6[i].bits))
			return 1;
	return 0;
}
