/* TCP service: memcached over the kernel's TCP stack, over the same store and codecs as the UDP
 * fast path. Each thread is an epoll loop with its own listening socket on the same port
 * (SO_REUSEPORT: the kernel spreads connections), its own protocol context and its own
 * connections, so threads share nothing but the store (lock-free reads, partition locks for
 * writes, as a foreign lcore) and a few counters.
 *
 * A connection runs memcached's state machine: read what is there, run every complete request
 * (mc_proto_stream), keep a partial one, swallow a value too large to keep, write replies (text,
 * and long values straight from item memory under a reference, with writev), and stop reading
 * while replies wait for the socket. Memory is bounded: a connection owns nothing while it is
 * between requests; what partial requests and unsent replies hold beyond 16 KiB per connection
 * is charged to one budget (conn_memory), and a request that would need more is answered
 * "SERVER_ERROR out of memory storing object" and swallowed, or the connection closed. */
#ifndef MC_TCP_H
#define MC_TCP_H

#include <sched.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../proto/proto.h"
#include "../store/store.h"

#define MC_TCP_MAX_THREADS 64
/* Values this long go out from item memory (a reference and sendmsg), shorter ones are copied
 * into the reply text: see docs/PERFORMANCE.md, "TCP: copy or reference". */
#define MC_TCP_ZC_MIN 16384

struct mc_tcp_settings {
	uint32_t ip;            /* host order; 0 = any address (unless ip6_only) */
	uint8_t ip6[16];        /* with has_ip6: a second listener, on this IPv6 address */
	bool has_ip6;
	bool ip6_only;          /* no IPv4 listener (an IPv6-only box) */
	uint16_t port;          /* 0 = any free port (tests), see mc_tcp_port */
	unsigned int threads;
	uint32_t max_conns;
	uint32_t idle_timeout;  /* seconds without a request before a close, 0 = never */
	uint32_t read_timeout;  /* seconds a partial request or a blocked reply may last, 0 = never */
	size_t conn_memory;     /* bytes all connections may hold beyond 16 KiB each */
	uint32_t max_item_size;
	uint32_t zc_min;        /* values this long are written from item memory, 0 = copied */
	/* CPUs the threads run on (NULL: the caller's). Not the polling lcores' CPUs: a TCP
	 * thread preempted there by a spinning poller stalls its clients, and a writer preempted
	 * mid-write stalls the readers spinning on its bucket. */
	const cpu_set_t *cpus;
	/* The allow list at accept (NULL: everyone); addr in host order, a6 16 bytes. */
	int (*allowed)(const void *arg, uint32_t addr);
	int (*allowed6)(const void *arg, const uint8_t *a6);
	const void *allowed_arg;
};

/* Counters, as memcached names them where it has the name; X(name). conn_buffer_bytes is a
 * gauge: what connections hold now beyond their free 16 KiB each. */
#define MC_TCP_COUNTERS(X)                                                                     \
	X(curr_connections) X(total_connections) X(rejected_connections) X(bytes_read)         \
	X(bytes_written) X(conn_not_allowed) X(conn_closed_idle) X(conn_closed_slow)           \
	X(conn_closed_memory) X(conn_closed_error) X(bytes_swallowed) X(write_blocked)         \
	X(listen_disabled_num) X(conn_buffer_bytes)

struct mc_tcp_stats {
#define X(n) uint64_t n;
	MC_TCP_COUNTERS(X)
#undef X
};

struct mc_tcp;

/* Bind, listen and start the threads. NULL with a reason in err. stats_fn/arg: the app's lines
 * of `stats`, as the UDP path has them. */
struct mc_tcp *mc_tcp_start(const struct mc_tcp_settings *set, struct mc_store *s,
			    const struct mc_proto_conf *conf, mc_proto_stats_fn stats_fn,
			    void *stats_arg, char *err, size_t errlen);
/* Stop the threads, close every connection (releasing what they hold, so the store may go
 * next) and free their buffers; the counters stay readable (mc_tcp_sum) until mc_tcp_free. */
void mc_tcp_stop(struct mc_tcp *t);
void mc_tcp_free(struct mc_tcp *t);
/* The port listened on. */
uint16_t mc_tcp_port(const struct mc_tcp *t);
unsigned int mc_tcp_threads(const struct mc_tcp *t);
/* memcached's "stats conns": per listener and connection of every thread, its fd's
 * addr, listen_addr, state (conn_listening, conn_waiting, conn_nread for a partial request,
 * conn_mwrite for replies waiting, conn_closing, conn_parse_cmd for asker's own) and
 * secs_since_last_cmd. Any thread; it holds each thread's list lock while it walks it. */
void mc_tcp_conns(struct mc_tcp *t, const struct mc_proto_ctx *asker, struct mc_out *o);
/* Every thread's counters summed; sx and px (may be NULL) get the threads' store and protocol
 * counters added. */
void mc_tcp_sum(const struct mc_tcp *t, struct mc_tcp_stats *ts, struct mc_store_ctx_stats *sx,
		struct mc_proto_stats *px);

#endif
