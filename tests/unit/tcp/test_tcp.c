/* The TCP service over loopback: real sockets against mc_tcp threads over a store in plain
 * memory. Requests in pieces, pipelines larger than the socket buffers, values written from item
 * memory, the limits (connections, allow list, memory, garbage) and that closing gives back
 * everything a connection held. Waits are bounded polls on a condition, never fixed sleeps. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "tcp/tcp.h"

static void *mem;
static struct mc_store *s;
static struct mc_proto_conf conf = {.udp_admin = false, .udp_writes = false};
static struct mc_tcp *t;
static int refuse_all;

static int
allowed(const void *arg, uint32_t addr)
{
	(void)arg;
	return !refuse_all && addr == 0x7f000001u;
}

static struct mc_tcp_settings
settings(void)
{
	return (struct mc_tcp_settings){.ip = 0x7f000001u, .port = 0, .threads = 2,
					.max_conns = 64, .conn_memory = 8 << 20,
					.max_item_size = 1 << 20, .zc_min = 4096,
					.allowed = allowed};
}

/* The app's part of stats that the TCP service answers itself: stats conns. */
static void
stats_fn(void *arg, struct mc_proto_ctx *cx, struct mc_out *o, const char *group, size_t glen)
{
	(void)arg;
	if (glen == 5 && !memcmp(group, "conns", 5))
		mc_tcp_conns(t, cx, o);
}

static void
start(const struct mc_tcp_settings *set)
{
	struct mc_store_settings ss = {.mem_bytes = 64 << 20, .nparts = 2,
				       .max_item_size = set->max_item_size, .factor = 1.25,
				       .chunk_min = 48};
	char err[256];
	mem = aligned_alloc(64, 64 << 20);
	s = mc_store_create(mem, 64 << 20, &ss);
	assert_non_null(s);
	refuse_all = 0;
	t = mc_tcp_start(set, s, &conf, stats_fn, NULL, err, sizeof(err));
	if (t == NULL)
		fail_msg("%s", err);
}

static void
stop(void)
{
	mc_tcp_free(t);
	t = NULL;
	free(mem);
}

static int
dial(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(mc_tcp_port(t)),
				 .sin_addr.s_addr = htonl(0x7f000001u)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

static struct mc_tcp_stats stats(void);

static void
put(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;
	while (n > 0) {
		ssize_t r = send(fd, b, n, MSG_NOSIGNAL);
		if (r <= 0) {
			struct mc_tcp_stats st = stats();
			fail_msg("send: %s (closed: memory %lu slow %lu error %lu)", strerror(errno),
				 (unsigned long)st.conn_closed_memory, (unsigned long)st.conn_closed_slow,
				 (unsigned long)st.conn_closed_error);
		}
		b += r;
		n -= (size_t)r;
	}
}

static void
puts_(int fd, const char *str)
{
	put(fd, str, strlen(str));
}

/* Read exactly n bytes (10 s at most); returns how many came before EOF. */
static size_t
get_n(int fd, void *p, size_t n)
{
	uint8_t *b = p;
	size_t got = 0;
	while (got < n) {
		struct pollfd pf = {.fd = fd, .events = POLLIN};
		ssize_t r;
		if (poll(&pf, 1, 10000) != 1)
			fail_msg("no reply within 10 s (%zu of %zu bytes)", got, n);
		r = read(fd, b + got, n - got);
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	return got;
}

static void
expect(int fd, const char *want)
{
	size_t n = strlen(want);
	char *got = malloc(n + 1);
	size_t g = get_n(fd, got, n);
	got[g] = '\0';
	if (g != n || memcmp(got, want, n) != 0)
		fail_msg("want %.200s\n got %.200s", want, got);
	free(got);
}

/* The server closed: EOF within 10 s. */
static bool
closed(int fd)
{
	char b[256];
	for (;;) {
		struct pollfd pf = {.fd = fd, .events = POLLIN};
		ssize_t r;
		if (poll(&pf, 1, 10000) != 1)
			return false;
		r = read(fd, b, sizeof(b));
		if (r == 0 || (r < 0 && errno == ECONNRESET))
			return true;
		if (r < 0)
			return false;
	}
}

static struct mc_tcp_stats
stats(void)
{
	struct mc_tcp_stats st;
	mc_tcp_sum(t, &st, NULL, NULL);
	return st;
}

/* Poll (bounded) until no connection is open. */
static void
wait_no_conns(void)
{
	int i;
	for (i = 0; i < 10000 && stats().curr_connections != 0; i++) {
		struct timespec ts = {0, 1000000};
		nanosleep(&ts, NULL);
	}
	assert_int_equal(stats().curr_connections, 0);
}

static void
test_requests_in_pieces_and_pipelines(void **state)
{
	struct mc_tcp_settings set = settings();
	const char *req = "set a 1 0 5\r\nhello\r\nget a\r\nincr n 1\r\nversion\r\n";
	size_t i;
	int fd;
	(void)state;
	start(&set);
	fd = dial();
	/* One byte at a time. */
	for (i = 0; req[i]; i++)
		put(fd, req + i, 1);
	expect(fd, "STORED\r\nVALUE a 1 5\r\nhello\r\nEND\r\nNOT_FOUND\r\nVERSION " MC_VERSION_STRING
		   "\r\n");
	/* Writes and admin are allowed over TCP whatever the UDP gates say. */
	puts_(fd, "stats settings\r\n");
	{
		char b[16];
		get_n(fd, b, 5);
		assert_memory_equal(b, "STAT ", 5);
	}
	close(fd);
	wait_no_conns();
	stop();
}

/* A client that sends a long pipeline before reading a byte: replies larger than the socket
 * buffers wait in the connection (text copied, values referenced) and all arrive, in order. */
static void
test_pipeline_larger_than_the_socket(void **state)
{
	struct mc_tcp_settings set = settings();
	static char big[100000], line[256];
	char *reply;
	size_t n, i, want;
	int fd;
	(void)state;
	start(&set);
	fd = dial();
	memset(big, 'v', sizeof(big));
	snprintf(line, sizeof(line), "set big 0 0 %zu\r\n", sizeof(big));
	puts_(fd, line);
	put(fd, big, sizeof(big));
	puts_(fd, "\r\nset small 0 0 3\r\nabc\r\n");
	expect(fd, "STORED\r\nSTORED\r\n");
	for (i = 0; i < 200; i++)
		puts_(fd, "get big small\r\n");
	n = strlen("VALUE big 0 100000\r\n") + sizeof(big) + 2 + strlen("VALUE small 0 3\r\nabc\r\nEND\r\n");
	want = n * 200;
	reply = malloc(want);
	assert_int_equal(get_n(fd, reply, want), want);
	for (i = 0; i < 200; i++) {
		const char *r = reply + i * n;
		assert_memory_equal(r, "VALUE big 0 100000\r\nvvvv", 24);
		assert_memory_equal(r + n - 29, "\r\nVALUE small 0 3\r\nabc\r\nEND\r\n", 29);
	}
	free(reply);
	assert_true(stats().write_blocked > 0);
	close(fd);
	wait_no_conns();
	assert_int_equal(stats().conn_buffer_bytes, 0);
	stop();
}

static void
test_connection_limit_and_allow_list(void **state)
{
	struct mc_tcp_settings set = settings();
	int a, b, c;
	(void)state;
	set.max_conns = 2;
	start(&set);
	a = dial();
	b = dial();
	puts_(a, "version\r\n");
	expect(a, "VERSION " MC_VERSION_STRING "\r\n");
	puts_(b, "version\r\n");
	expect(b, "VERSION " MC_VERSION_STRING "\r\n");
	c = dial();
	expect(c, "ERROR Too many open connections\r\n");
	assert_true(closed(c));
	close(c);
	assert_int_equal(stats().rejected_connections, 1);
	close(a);
	close(b);
	wait_no_conns();
	refuse_all = 1;
	c = dial();
	assert_true(closed(c));
	close(c);
	assert_int_equal(stats().conn_not_allowed, 1);
	stop();
}

/* Garbage without a newline past 2048 bytes closes (memcached); a value too large for the
 * store is answered and swallowed; one the connection budget cannot hold is refused as out of
 * memory; afterwards nothing is held. */
static void
test_garbage_and_large_values_cost_bounded_memory(void **state)
{
	struct mc_tcp_settings set = settings();
	static char junk[8192], line[128];
	static char val[300000];
	int fd;
	(void)state;
	set.conn_memory = 64 * 1024;
	start(&set);
	fd = dial();
	memset(junk, 'x', sizeof(junk));
	/* The server may close before all of it is sent. */
	if (send(fd, junk, sizeof(junk), MSG_NOSIGNAL) < 0)
		assert_true(errno == EPIPE || errno == ECONNRESET);
	assert_true(closed(fd));
	close(fd);

	fd = dial();
	memset(val, 'z', sizeof(val));
	snprintf(line, sizeof(line), "set k 0 0 %d\r\n", 2 << 20);
	puts_(fd, line);
	for (int i = 0; i < 6; i++)
		put(fd, val, sizeof(val));
	put(fd, val, (2 << 20) - 6 * sizeof(val));
	puts_(fd, "\r\nset k2 0 0 200000\r\n");
	put(fd, val, 200000);
	puts_(fd, "\r\nget k k2\r\n");
	expect(fd, "SERVER_ERROR object too large for cache\r\n"
		   "SERVER_ERROR out of memory storing object\r\nEND\r\n");
	assert_true(stats().bytes_swallowed > 0);
	close(fd);
	wait_no_conns();
	assert_int_equal(stats().conn_buffer_bytes, 0);
	stop();
}

/* A client that declares a large value and sends a few bytes of it holds only what it sent
 * (and room for one read): ten of them cannot take the budget from a real set. */
static void
test_declared_lengths_do_not_reserve_memory(void **state)
{
	struct mc_tcp_settings set = settings();
	static char val[300000], line[64];
	int fds[10], fd, i;
	(void)state;
	set.conn_memory = 1 << 20;
	start(&set);
	for (i = 0; i < 10; i++) {
		fds[i] = dial();
		snprintf(line, sizeof(line), "set atk%d 0 0 1000000\r\nx", i);
		puts_(fds[i], line);
	}
	/* All ten have been read (bounded poll on the budget's gauge moving). */
	for (i = 0; i < 10000 && stats().conn_buffer_bytes == 0; i++) {
		struct timespec ts = {0, 1000000};
		nanosleep(&ts, NULL);
	}
	fd = dial();
	memset(val, 'v', sizeof(val));
	puts_(fd, "set legit 0 0 300000\r\n");
	put(fd, val, sizeof(val));
	puts_(fd, "\r\n");
	expect(fd, "STORED\r\n");
	assert_true(stats().conn_buffer_bytes < (1 << 20));
	close(fd);
	for (i = 0; i < 10; i++)
		close(fds[i]);
	wait_no_conns();
	stop();
}

/* The read timeout is for one request's bytes: a client pipelining sets in pieces that never
 * line up with requests keeps its connection while requests complete. */
static void
test_busy_pipeline_is_not_slow(void **state)
{
	struct mc_tcp_settings set = settings();
	static char req[20000];
	struct timespec t0, t1;
	size_t n, off = 0, sent = 0;
	int fd;
	(void)state;
	set.read_timeout = 1;
	start(&set);
	fd = dial();
	n = (size_t)snprintf(req, sizeof(req), "set pk 0 0 10000 noreply\r\n");
	memset(req + n, 'p', 10000);
	memcpy(req + n + 10000, "\r\n", 2);
	n += 10002;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		/* 7001-byte pieces: every read ends inside a request. */
		size_t k = 7001, i;
		char piece[7001];
		for (i = 0; i < k; i++)
			piece[i] = req[(off + i) % n];
		off = (off + k) % n;
		put(fd, piece, k);
		sent += k;
		clock_gettime(CLOCK_MONOTONIC, &t1);
	} while (t1.tv_sec - t0.tv_sec < 3);
	/* Finish the request in flight, then ask: the connection is alive. */
	{
		size_t left = n - off, i;
		char *rest = malloc(left);
		for (i = 0; i < left; i++)
			rest[i] = req[off + i];
		put(fd, rest, left);
		free(rest);
	}
	puts_(fd, "version\r\n");
	expect(fd, "VERSION " MC_VERSION_STRING "\r\n");
	assert_int_equal(stats().conn_closed_slow, 0);
	close(fd);
	wait_no_conns();
	stop();
}

/* Read until the reply ends with end (10 s at most); returns it (malloc'd). */
static char *
read_until(int fd, const char *end, size_t *len)
{
	size_t cap = 1 << 16, n = 0, el = strlen(end);
	char *b = malloc(cap + 1);
	for (;;) {
		struct pollfd pf = {.fd = fd, .events = POLLIN};
		ssize_t r;
		if (n >= el && !memcmp(b + n - el, end, el))
			break;
		if (poll(&pf, 1, 10000) != 1)
			fail_msg("no end within 10 s (%zu bytes)", n);
		if (n == cap)
			b = realloc(b, (cap *= 2) + 1);
		r = read(fd, b + n, cap - n < 4096 ? cap - n : 4096);
		if (r <= 0)
			fail_msg("closed after %zu bytes", n);
		n += (size_t)r;
	}
	b[n] = '\0';
	*len = n;
	return b;
}

/* metadump through the connection state machine: a dump far larger than the socket buffers,
 * read slowly through a small window, arrives whole (every key once, END once) after waiting
 * on the socket, and the request pipelined behind it is answered after it. */
static void
test_metadump_to_a_slow_reader(void **state)
{
	enum { N = 60000, BATCH = 1000 }; /* about 4 MB of dump */
	struct mc_tcp_settings set = settings();
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001u)};
	static char req[32 * BATCH];
	size_t n, len, i, j;
	int fd, small = 4096;
	char *got, key[32];
	(void)state;
	start(&set);
	fd = dial();
	for (i = 0; i < N; i += BATCH) {
		for (n = 0, j = i; j < i + BATCH; j++)
			n += (size_t)snprintf(req + n, sizeof(req) - n, "set k%zu 0 0 1\r\nv\r\n", j);
		put(fd, req, n);
		for (j = 0; j < BATCH; j++)
			expect(fd, "STORED\r\n");
	}
	close(fd);
	/* The window is set before connecting, so it is small from the handshake on. */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	sa.sin_port = htons(mc_tcp_port(t));
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	puts_(fd, "lru_crawler metadump all\r\nmn\r\n");
	{
		/* Not reading yet: the socket fills and the dump must wait for it. */
		struct timespec ts = {0, 200000000};
		nanosleep(&ts, NULL);
	}
	got = read_until(fd, "END\r\nMN\r\n", &len);
	for (i = 0; i < N; i += 997) {
		const char *p;
		snprintf(key, sizeof(key), "key=k%zu ", i);
		p = strstr(got, key);
		assert_non_null(p);
		assert_null(strstr(p + 1, key));
	}
	assert_int_equal(strstr(got, "END\r\n") - got, (long)len - 9);
	assert_true(stats().write_blocked > 0);
	free(got);
	close(fd);
	wait_no_conns();
	stop();
}

/* stats conns: the listeners, then each connection with its peer and a moment's state. */
static void
test_stats_conns(void **state)
{
	struct mc_tcp_settings set = settings();
	struct sockaddr_in me;
	socklen_t sl = sizeof(me);
	char want[96], *got, *p;
	size_t len;
	int a, b, fd;
	(void)state;
	start(&set);
	a = dial();
	b = dial();
	puts_(b, "get partial"); /* no line end: a request half here */
	getsockname(b, (struct sockaddr *)&me, &sl);
	{
		int i;
		for (i = 0; i < 10000; i++) {
			struct timespec ts = {0, 1000000};
			puts_(a, "stats conns\r\n");
			got = read_until(a, "END\r\n", &len);
			snprintf(want, sizeof(want), ":addr tcp:127.0.0.1:%u\r\n", ntohs(me.sin_port));
			if ((p = strstr(got, want)) != NULL && strstr(got, "conn_nread") != NULL)
				break;
			free(got);
			got = NULL;
			nanosleep(&ts, NULL);
		}
		assert_non_null(got);
	}
	/* b's lines, by its fd on the server. */
	while (p > got && p[-1] != ' ')
		p--;
	fd = atoi(p);
	snprintf(want, sizeof(want), "STAT %d:listen_addr tcp:127.0.0.1:%u\r\nSTAT %d:state conn_nread\r\n",
		 fd, mc_tcp_port(t), fd);
	if (strstr(got, want) == NULL)
		fail_msg("no %s in\n%s", want, got);
	assert_non_null(strstr(got, ":state conn_parse_cmd\r\n")); /* a itself */
	p = strstr(got, ":state conn_listening\r\n");
	assert_non_null(p);
	assert_non_null(strstr(p + 1, ":state conn_listening\r\n")); /* one per thread */
	assert_non_null(strstr(got, "secs_since_last_cmd "));
	free(got);
	close(a);
	close(b);
	wait_no_conns();
	stop();
}


static int
allowed6(const void *arg, const uint8_t *a6)
{
	(void)arg;
	return a6[15] == 1 && !refuse_all; /* ::1 */
}

/* An IPv6-only service (--ip6 without --ip): a listener on ::1 per thread that answers and
 * names itself in stats conns, and none on IPv4. */
static void
test_ipv6_only_listener(void **state)
{
	struct mc_tcp_settings set = settings();
	struct sockaddr_in6 sa6 = {.sin6_family = AF_INET6};
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001u)};
	char *got;
	size_t len;
	int fd;
	(void)state;
	set.has_ip6 = true;
	set.ip6_only = true;
	set.ip6[15] = 1;
	set.allowed6 = allowed6;
	start(&set);
	sa6.sin6_port = htons(mc_tcp_port(t));
	sa6.sin6_addr.s6_addr[15] = 1;
	fd = socket(AF_INET6, SOCK_STREAM, 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa6, sizeof(sa6)), 0);
	puts_(fd, "set six 0 0 2\r\nv6\r\nget six\r\n");
	expect(fd, "STORED\r\nVALUE six 0 2\r\nv6\r\nEND\r\n");
	puts_(fd, "stats conns\r\n");
	got = read_until(fd, "END\r\n", &len);
	assert_non_null(strstr(got, ":addr tcp6:[::1]:"));
	assert_non_null(strstr(got, ":listen_addr tcp6:[::1]:"));
	assert_null(strstr(got, "tcp:127.0.0.1"));
	free(got);
	close(fd);
	/* Nothing listens on IPv4. */
	sa.sin_port = htons(mc_tcp_port(t));
	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_not_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	wait_no_conns();
	stop();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_requests_in_pieces_and_pipelines),
		cmocka_unit_test(test_pipeline_larger_than_the_socket),
		cmocka_unit_test(test_connection_limit_and_allow_list),
		cmocka_unit_test(test_garbage_and_large_values_cost_bounded_memory),
		cmocka_unit_test(test_declared_lengths_do_not_reserve_memory),
		cmocka_unit_test(test_busy_pipeline_is_not_slow),
		cmocka_unit_test(test_metadump_to_a_slow_reader),
		cmocka_unit_test(test_stats_conns),
		cmocka_unit_test(test_ipv6_only_listener),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
