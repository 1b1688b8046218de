/* Config: defaults, command line, INI file, precedence, and clear errors for bad values. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config/config.h"

static int
parse(struct mc_config *cfg, char *err, const char *const *args)
{
	char *argv[32];
	int argc = 0;
	argv[argc++] = (char *)"mcbox";
	while (*args)
		argv[argc++] = (char *)*args++;
	argv[argc] = NULL;
	mc_config_defaults(cfg);
	return mc_config_parse(cfg, argc, argv, err, 512);
}

static void
test_defaults_and_ip(void **state)
{
	struct mc_config c;
	char err[512];
	const char *a[] = {"--ip", "198.18.0.1", NULL};
	(void)state;
	assert_int_equal(parse(&c, err, a), 0);
	assert_int_equal(c.ip, 0xc6120001u);
	assert_int_equal(c.udp_port, 11211);
	assert_int_equal(c.memory_mb, 64);
	assert_int_equal(c.max_item_size, 1048576);
	assert_int_equal(c.queues, 1);
	assert_true(c.growth_factor > 1.249 && c.growth_factor < 1.251);
	assert_int_equal(c.udp_admin, 0);
	assert_int_equal(c.udp_writes, 0);
	assert_int_equal(c.tcp_port, 11211);
	assert_string_equal(c.exception, "tap");
	/* Default allow list: our own subnet only. */
	assert_true(mc_config_allowed(&c, 0xc6120002u));
	assert_false(mc_config_allowed(&c, 0xc6130002u));
}

/* --ip6 ADDR/PREFIX, IPv6 entries in the allow list, and an IPv6-only box. */
static void
test_ip6_and_allow6(void **state)
{
	struct mc_config c;
	char err[512];
	static const uint8_t ours[16] = {0x20, 0x01, 0, 2, [15] = 1};
	uint8_t a[16] = {0x20, 0x01, 0, 2, [15] = 9}, far[16] = {0x20, 0x01, 0, 3, [15] = 9};
	const char *both[] = {"--ip", "198.18.0.1", "--ip6", "2001:2::1/64", NULL};
	const char *only6[] = {"--ip6", "2001:2::1/64", NULL};
	const char *list[] = {"--ip6", "2001:2::1/64", "--allow", "2001:3::/32,10.0.0.0/8", NULL};
	const char *bad[][3] = {{"--ip6", "2001:2::1/129", NULL}, {"--ip6", "ff02::1/64", NULL}, {"--ip6", "2001:2::1", NULL},
				{"--ip6", "fe80::1/64", NULL}, {"--ip6", "::/64", NULL},
				{"--ip6", "::ffff:1.2.3.4/64", NULL}, {"--ip6", "198.18.0.1", NULL},
				{"--allow", "2001:2::/200", NULL}};
	size_t i;
	(void)state;
	assert_int_equal(parse(&c, err, both), 0);
	assert_memory_equal(c.ip6.net, ours, 16);
	assert_int_equal(c.ip6.bits, 64);
	/* No allow list: the subnets of both addresses. */
	assert_true(mc_config_allowed6(&c, a));
	assert_false(mc_config_allowed6(&c, far));
	assert_true(mc_config_allowed(&c, 0xc6120002u));
	assert_int_equal(parse(&c, err, only6), 0);
	assert_int_equal(c.ip, 0);
	assert_false(mc_config_allowed(&c, 0xc6120002u));
	assert_true(mc_config_allowed6(&c, a));
	/* A list names what is served, of either family. */
	assert_int_equal(parse(&c, err, list), 0);
	assert_int_equal(c.n_allow6, 1);
	assert_false(mc_config_allowed6(&c, a));
	assert_true(mc_config_allowed6(&c, far));
	assert_true(mc_config_allowed(&c, 0x0a010203u));
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *args[5] = {"--ip", "198.18.0.1", bad[i][0], bad[i][1], NULL};
		assert_int_equal(parse(&c, err, args), -1);
		assert_non_null(strstr(err, bad[i][0]));
	}
	/* Neither address: one line naming --ip. */
	{
		const char *none[] = {"-m", "64", NULL};
		assert_int_equal(parse(&c, err, none), -1);
		assert_non_null(strstr(err, "--ip"));
	}
}

static void
test_memcached_style_flags(void **state)
{
	struct mc_config c;
	char err[512];
	const char *a[] = {"--ip", "10.0.0.1", "-U", "11311", "-m", "128", "-I", "2m", "-f", "1.5",
			   "--queues", "2", "--allow", "10.0.0.0/8,192.0.2.7", "--udp-admin", "on",
			   "-vv", "-p", "0", "-t", "4", "-e", "/dev/hugepages/mcbox", NULL};
	(void)state;
	assert_int_equal(parse(&c, err, a), 0);
	assert_int_equal(c.udp_port, 11311);
	assert_int_equal(c.memory_mb, 128);
	assert_int_equal(c.max_item_size, 2 * 1048576);
	assert_int_equal(c.queues, 2);
	assert_int_equal(c.udp_admin, 1);
	assert_int_equal(c.verbosity, 2);
	assert_int_equal(c.n_allow, 2);
	assert_int_equal(c.tcp_port, 0);
	assert_int_equal(c.tcp_threads, 4);
	assert_string_equal(c.memory_file, "/dev/hugepages/mcbox");
	assert_true(mc_config_allowed(&c, 0x0a010203u));
	assert_true(mc_config_allowed(&c, 0xc0000207u));
	assert_false(mc_config_allowed(&c, 0xc0000208u));
}

static void
test_bad_values_say_which_option(void **state)
{
	static const struct {
		const char *args[8];
		const char *needle;
	} cases[] = {
		{{"--ip", "1.2.3", NULL}, "--ip"},
		{{"--ip", "1.2.3.4", "-U", "0", NULL}, "--udp-port"},
		{{"--ip", "1.2.3.4", "-U", "70000", NULL}, "--udp-port"},
		{{"--ip", "1.2.3.4", "-m", "abc", NULL}, "--memory-limit"},
		{{"--ip", "1.2.3.4", "-I", "9m", NULL}, "--max-item-size"},
		{{"--ip", "1.2.3.4", "-f", "0.5", NULL}, "--slab-growth-factor"},
		{{"--ip", "1.2.3.4", "--queues", "0", NULL}, "--queues"},
		{{"--ip", "1.2.3.4", "--allow", "1.2.3.4/33", NULL}, "--allow"},
		{{"--ip", "1.2.3.4", "--udp-admin", "maybe", NULL}, "--udp-admin"},
		{{"--ip", "1.2.3.4", "--bogus", NULL}, "unknown option"},
		{{"-m", "64", NULL}, "--ip: required"},
		{{"--ip", "1.2.3.4", "-m", "8", "-I", "8m", NULL}, "more than half"},
		{{"--ip", "1.2.3.4", "-p", "65536", NULL}, "--port"},
		{{"--ip", "1.2.3.4", "-t", "0", NULL}, "--threads"},
		{{"--ip", "1.2.3.4", "--exception", "kni", NULL}, "--exception"},
		{{"--ip", "1.2.3.4", "-e", "/dev/hugepages/a-path-longer-than-any-memory-file-may-be-"
		  "0123456789012345678901234567890123456789012345678901234567890123456789012345678901"
		  "0123456789012345678901234567890123456789012345678901234567890123456789012345678901"
		  "0123456789012345678901234567890123456789012345678901234567890123456789012345678901",
		  NULL}, "--memory-file"},
		{{"--ip", "1.2.3.4", "--kernel-if", "a-name-far-too-long-for-linux", NULL}, "--kernel-if"},
	};
	size_t i;
	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct mc_config c;
		char err[512] = "";
		assert_int_equal(parse(&c, err, cases[i].args), -1);
		if (strstr(err, cases[i].needle) == NULL)
			fail_msg("case %zu: '%s' lacks '%s'", i, err, cases[i].needle);
	}
}

static void
test_file_then_command_line(void **state)
{
	struct mc_config c;
	char err[512], path[] = "/tmp/mcbox-conf-XXXXXX";
	int fd = mkstemp(path);
	const char *text = "; comment\n[mcbox]\nip = 198.18.0.1\nmemory_mb = 32\nudp_port = 5000\n"
			   "udp_writes = on\nallow = 198.18.0.0/15\nexception = off\n";
	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	{
		const char *a[] = {"-c", path, "-m", "48", NULL};
		assert_int_equal(parse(&c, err, a), 0);
	}
	assert_int_equal(c.ip, 0xc6120001u);
	assert_int_equal(c.memory_mb, 48); /* command line beats file */
	assert_int_equal(c.udp_port, 5000);
	assert_int_equal(c.udp_writes, 1);
	assert_string_equal(c.exception, "off");
	assert_true(mc_config_allowed(&c, 0xc6130005u));
	/* Unknown key and bad value are errors naming the key. */
	{
		FILE *f = fopen(path, "w");
		const char *a[] = {"-c", path, NULL};
		fputs("[mcbox]\nip = 198.18.0.1\nmemroy_mb = 32\n", f);
		fclose(f);
		assert_int_equal(parse(&c, err, a), -1);
		assert_non_null(strstr(err, "memroy_mb"));
		f = fopen(path, "w");
		fputs("[mcbox]\nip = 198.18.0.1\nqueues = 99\n", f);
		fclose(f);
		assert_int_equal(parse(&c, err, a), -1);
		assert_non_null(strstr(err, "queues"));
	}
	unlink(path);
	{
		const char *a[] = {"-c", "/nonexistent/mcbox.conf", NULL};
		assert_int_equal(parse(&c, err, a), -1);
		assert_non_null(strstr(err, "/nonexistent/mcbox.conf"));
	}
}

/* The shipped config/mcbox.conf loads, sets every option to its default (the one table in
 * config.c), and names every key of that table, set or commented out. */
static void
test_shipped_example_config_is_the_defaults(void **state)
{
	static const char *const keys[] = {
		"ip", "netmask", "ip6", "udp_port", "memory_mb", "max_item_size", "growth_factor",
		"memory_file", "queues", "ethdev", "stats_interval", "verbosity", "idle_sleep_us", "allow",
		"udp_admin", "udp_writes", "max_reply_ratio", "zero_copy_min", "src_rps",
		"src_kbps", "src_burst_ms", "udp_reply_max", "tcp_port", "tcp_threads", "max_conns",
		"idle_timeout", "read_timeout", "conn_memory_mb", "exception", "kernel_if",
	};
	struct mc_config def, file;
	char err[512], text[16384];
	const char *d;
	FILE *f;
	size_t n, i;
	(void)state;
	mc_config_defaults(&def);
	mc_config_defaults(&file);
	if (mc_config_load_file(&file, "config/mcbox.conf", err, sizeof(err)) != 0)
		fail_msg("config/mcbox.conf: %s", err);
	file.ip = def.ip; /* the one setting without a default */
	assert_memory_equal(&file, &def, sizeof(def));
	f = fopen("config/mcbox.conf", "r");
	assert_non_null(f);
	n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = '\0';
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		char set[64], off[64];
		assert_int_equal(mc_config_default_of(keys[i], &d), 0);
		snprintf(set, sizeof(set), "\n%s = ", keys[i]);
		snprintf(off, sizeof(off), "\n; %s =", keys[i]);
		if (strstr(text, set) == NULL && strstr(text, off) == NULL)
			fail_msg("config/mcbox.conf does not name %s", keys[i]);
	}
	/* And the list above is the whole table. */
	assert_int_equal(mc_config_default_of("no_such_key", &d), -1);
	assert_int_equal(sizeof(keys) / sizeof(keys[0]), mc_config_nkeys());
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults_and_ip),
		cmocka_unit_test(test_ip6_and_allow6),
		cmocka_unit_test(test_memcached_style_flags),
		cmocka_unit_test(test_bad_values_say_which_option),
		cmocka_unit_test(test_file_then_command_line),
		cmocka_unit_test(test_shipped_example_config_is_the_defaults),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
