/* The TCP service's insides, shared by its files and by nothing else: the sizes, a connection
 * and a thread as the event loop (tcp.c) keeps them, and what admin.c, which starts and stops
 * the threads and answers stats conns from any thread, needs of it. */
#ifndef MC_TCP_INT_H
#define MC_TCP_INT_H

#include "tcp.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <time.h>

#define RBUF (64 * 1024)      /* a thread's read buffer: one read's worth */
#define OBUF (64 * 1024)      /* a thread's reply text before it spills */
#define SOFT (64 * 1024)      /* replies gathered before they are written */
#define FREE_BYTES (16 * 1024) /* what a connection may hold uncharged */
#define LINE_ROOM 4096        /* a request line, beside the largest value */
#define READS_PER_EVENT 16    /* fairness: then the next connection */
#define MAX_EVENTS 64
#define TOO_MANY "ERROR Too many open connections\r\n"

/* What a connection has not yet written: pieces of its own copy of the text and values in item
 * memory under a reference. */
struct seg {
	const uint8_t *p;
	size_t len;
	uint8_t *ref; /* the store reference to put once written, or NULL */
};
struct pending {
	size_t nseg, i;
	uint8_t *text;
	size_t text_len;
	struct seg seg[];
};

struct conn {
	int fd;
	uint8_t proto;      /* enum mc_stream_proto */
	bool closing;       /* close once the replies are written */
	uint8_t *in;        /* an unfinished request (NULL: none) */
	size_t inlen, incap;
	uint64_t swallow;   /* bytes of a refused value still to discard */
	struct mc_dump dump; /* an lru_crawler metadump under way: it goes on as replies drain */
	struct pending *out; /* replies waiting for the socket (NULL: none) */
	size_t held;        /* bytes of in and out */
	size_t charged;     /* of them, charged to the shared budget */
	uint64_t last_req;  /* when a request last completed (or the connection opened) */
	uint64_t stuck_since; /* when a partial request or a blocked reply began, 0 = neither */
	struct sockaddr_storage peer; /* for stats conns */
	struct conn *prev, *next;
};

struct tcp_thread {
	struct mc_tcp *t;
	pthread_t th;
	bool started;
	int ep, lfd, lfd6, stopfd; /* listeners: IPv4, IPv6 (-1: none) */
	struct mc_proto_ctx px;
	uint8_t *rbuf, *obuf, *spill;
	size_t spill_cap;
	struct conn *conns;
	/* Held while conns gains or loses a member, and by stats conns (mc_tcp_conns) from any
	 * thread while it walks the list; the owner walks its own list without it. */
	pthread_mutex_t conns_lock;
	struct conn *cur;     /* the connection process() runs, for stats conns */
	uint64_t opened;      /* when the listener opened, for its secs_since_last_cmd */
	bool accept_paused;   /* out of descriptors: accepting again at the next sweep */
	struct mc_tcp_stats st;
};

struct mc_tcp {
	struct mc_tcp_settings set;
	uint16_t port;
	size_t hard_cap;            /* the most one request may be buffered */
	atomic_size_t mem_used;     /* charged bytes, all connections */
	atomic_uint_fast32_t nconns;
	bool stopped;
	unsigned int nthreads;
	struct tcp_thread th[];
};

static inline uint64_t
now_secs(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec;
}

/* The epoll tag of listener lfd (the thread's own address) or lfd6 (its lfd6 field's). */
static inline void *
listener_tag(struct tcp_thread *w, bool v6)
{
	return v6 ? (void *)&w->lfd6 : (void *)w;
}

/* ---- between tcp.c and admin.c ---- */

/* tcp.c: a thread's epoll loop (pthread_create's start routine), and the close of one of its
 * connections: admin.c's teardown closes what is left once the thread has stopped (or when it
 * never started). */
void *mc_tcp_thread_main(void *arg);
void mc_tcp_conn_close(struct tcp_thread *w, struct conn *c);

#endif
