/* mctcpbench: the TCP service's large-value question, measured. mc_tcp over a store in plain
 * memory on loopback, one client connection pipelining `get` of one key (window of 16
 * requests); each value size is served once with values copied into the reply text and once
 * sent from item memory under a reference (sendmsg of the pieces), alternating rounds. Prints
 * requests per second and MB/s per case, and JSON lines ({"name", "unit", "value", "params"})
 * for make bench. Bounded: a fixed number of requests per round. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../tcp/tcp.h"

#define WINDOW 16

static double
now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
dial(uint16_t port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(0x7f000001u)};
	int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		perror("connect");
		exit(1);
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

static void
put_all(int fd, const void *p, size_t n)
{
	const char *b = p;
	while (n > 0) {
		ssize_t r = write(fd, b, n);
		if (r <= 0) {
			perror("write");
			exit(1);
		}
		b += r;
		n -= (size_t)r;
	}
}

/* Read n bytes (checking the first reply's head once). */
static void
get_all(int fd, char *buf, size_t cap, size_t n)
{
	while (n > 0) {
		ssize_t r = read(fd, buf, n < cap ? n : cap);
		if (r <= 0) {
			perror("read");
			exit(1);
		}
		n -= (size_t)r;
	}
}

/* Requests per second for `get k` of a vlen-byte value, nreq requests. */
static double
run(uint16_t port, size_t vlen, unsigned int nreq)
{
	static char buf[1 << 20];
	const size_t reply = (size_t)snprintf(buf, sizeof(buf), "VALUE k 0 %zu\r\n", vlen) + vlen + 7;
	const char req[] = "get k\r\n";
	int fd = dial(port);
	unsigned int sent = 0, done = 0;
	double t0;
	char *val = malloc(vlen + 64);
	int n = snprintf(val, 64, "set k 0 0 %zu\r\n", vlen);
	memset(val + n, 'v', vlen);
	memcpy(val + n + vlen, "\r\n", 2);
	put_all(fd, val, (size_t)n + vlen + 2);
	get_all(fd, buf, sizeof(buf), 8); /* STORED\r\n */
	free(val);
	t0 = now();
	while (done < nreq) {
		while (sent < nreq && sent - done < WINDOW) {
			put_all(fd, req, sizeof(req) - 1);
			sent++;
		}
		get_all(fd, buf, sizeof(buf), reply);
		done++;
	}
	t0 = now() - t0;
	close(fd);
	return nreq / t0;
}

int
main(int argc, char **argv)
{
	static const size_t sizes[] = {1024, 4096, 16384, 65536, 262144, 1000000};
	const int rounds = argc > 1 ? atoi(argv[1]) : 3;
	const char *commit = argc > 2 ? argv[2] : "unknown";
	struct mc_store_settings ss = {.mem_bytes = 256 << 20, .nparts = 1,
				       .max_item_size = 1 << 20, .factor = 1.25, .chunk_min = 48};
	struct mc_proto_conf conf = {0};
	void *mem = aligned_alloc(64, ss.mem_bytes);
	struct mc_store *s = mc_store_create(mem, ss.mem_bytes, &ss);
	struct mc_tcp *t[2];
	char err[256];
	size_t i;
	int m, r;
	for (m = 0; m < 2; m++) {
		struct mc_tcp_settings set = {.ip = 0x7f000001u, .threads = 1, .max_conns = 16,
					      .conn_memory = 64 << 20, .max_item_size = 1 << 20,
					      .zc_min = m ? 1024 : 0};
		t[m] = mc_tcp_start(&set, s, &conf, NULL, NULL, err, sizeof(err));
		if (t[m] == NULL) {
			fprintf(stderr, "%s\n", err);
			return 1;
		}
	}
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		const unsigned int nreq = sizes[i] >= 262144 ? 2000 : 20000;
		double best[2] = {0, 0};
		for (r = 0; r < rounds; r++)
			for (m = 0; m < 2; m++) {
				double rps = run(mc_tcp_port(t[m]), sizes[i], nreq);
				if (rps > best[m])
					best[m] = rps;
			}
		for (m = 0; m < 2; m++) {
			fprintf(stderr, "  tcp_get_%zu_%s %10.0f req/s %8.1f MB/s\n", sizes[i],
				m ? "ref" : "copy", best[m], best[m] * (double)sizes[i] / 1e6);
			printf("{\"name\": \"tcp_get_%zu_%s_rps\", \"unit\": \"req/s\", \"value\": %.0f, "
			       "\"params\": {\"commit\": \"%s\", \"value_bytes\": %zu, \"window\": %d, "
			       "\"rounds\": %d, \"path\": \"loopback, one connection, 1 TCP thread, "
			       "best of the rounds\"}}\n",
			       sizes[i], m ? "ref" : "copy", best[m], commit, sizes[i], WINDOW, rounds);
		}
	}
	mc_tcp_free(t[0]);
	mc_tcp_free(t[1]);
	free(mem);
	return 0;
}
