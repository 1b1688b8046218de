/* mcload: a memcached UDP load generator for the lab and real networks.
 *
 * One IO thread per core, each with a UDP socket per server, batches of requests sent with
 * sendmmsg and replies read with recvmmsg. Closed loop (a window of outstanding requests per
 * thread) or open loop (a target rate). Keys uniform or Zipf; get/set mix; ASCII, binary or
 * meta; multi-key gets split per server and de-duplicated; several servers chosen by ketama
 * consistent hashing as libmemcached does it with MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED and
 * twemproxy with "distribution: ketama, hash: md5" (tools/ketama.c).
 * Reports throughput, timeouts, reorders and latency percentiles from a log-linear histogram,
 * as text and JSON; a progress line once a second on a terminal. Always bounded: --duration
 * and --max-requests.
 *
 * mcload -s 198.18.0.1:11211 [-s HOST:PORT ...] [-T threads] [-d seconds] [-w warmup]
 *        [-c window | -r rate] [-k keys] [-z zipf_s] [-g get_ratio] [-m keys_per_get]
 *        [-p ascii|binary|meta] [--key-size N|MIN-MAX] [--value-size N|MIN-MAX]
 *        [--preload] [--json FILE] [--cdf FILE]; sizes given as MIN-MAX are uniform in the
 *        range. Keys, sizes, the mix and the requests come from tools/workload.c. */
#define _GNU_SOURCE
#include "ketama.h"
#include "workload.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_SERVERS 16
#define MAX_THREADS 64
#define BATCH 32
#define SLOTS 65536 /* request ids per socket */

/* ---- ketama (tools/ketama.c; ketama_check proves it against libmemcached) ---- */

static struct mc_ketama ring;

/* ---- options ---- */

static struct mc_wl wl; /* keys, sizes, mix, protocol (tools/workload.c) */
static struct {
	char host[MAX_SERVERS][64];
	uint16_t port[MAX_SERVERS];
	struct sockaddr_in addr[MAX_SERVERS];
	unsigned int nservers;
	unsigned int threads;
	double duration, warmup;
	unsigned int window;
	double rate; /* requests/s in total; 0 = closed loop */
	uint64_t max_requests;
	double timeout;
	bool preload; /* set every key once before the warm-up */
	const char *json;
	const char *cdf; /* latency CDF: "microseconds fraction" lines, for gnuplot */
} opt = {.threads = 1, .duration = 5, .warmup = 1, .window = 32, .max_requests = 100000000,
	 .timeout = 1.0};

static double
now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static uint64_t
now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- per-thread state ---- */

struct pending {
	uint64_t sent_ns;
	uint16_t got, total;
	uint16_t next_seq;
	bool live, measured;
};

struct worker {
	pthread_t th;
	unsigned int id;
	int fd[MAX_SERVERS];
	uint16_t rid[MAX_SERVERS];
	struct pending *pend[MAX_SERVERS];
	unsigned int outstanding;
	uint64_t seed;
	uint64_t sent, done, timeouts, reorders, hits, misses, bytes_in;
	struct mc_hist h;
	_Atomic uint64_t progress;
};

static struct worker workers[MAX_THREADS];
static volatile bool measuring, stopping, preloading;
static _Atomic uint64_t preload_next; /* --preload: the next key to set */

/* Issue one logical request: keys picked, de-duplicated, split per server. */
static void
issue(struct worker *w, struct mmsghdr *mm, struct iovec *iov, uint8_t (*bufs)[MC_WL_REQ_MAX], unsigned int *nm)
{
	static __thread char keys[MAX_SERVERS][16][256];
	static __thread size_t klen[MAX_SERVERS][16];
	static __thread struct mc_wl_key req[16];
	uint64_t ids[MAX_SERVERS][16];
	unsigned int cnt[MAX_SERVERS] = {0}, s, i, j;
	bool get = !preloading && mc_wl_unit(&w->seed) < wl.get_ratio;
	unsigned int nk = get ? wl.mget : 1;
	for (i = 0; i < nk; i++) {
		char k[256];
		uint64_t id = preloading ? atomic_fetch_add(&preload_next, 1) : mc_wl_pick_key(&wl, &w->seed);
		if (id >= wl.keys)
			return; /* preloaded */
		size_t kl = mc_wl_key_text(&wl, k, id);
		unsigned int sv = mc_ketama_server(&ring, k, kl);
		bool dup = false;
		for (j = 0; j < cnt[sv]; j++)
			dup |= klen[sv][j] == kl && !memcmp(keys[sv][j], k, kl);
		if (dup || cnt[sv] == 16)
			continue;
		memcpy(keys[sv][cnt[sv]], k, kl);
		ids[sv][cnt[sv]] = id;
		klen[sv][cnt[sv]++] = kl;
	}
	for (s = 0; s < opt.nservers; s++) {
		struct pending *p;
		uint16_t rid;
		if (cnt[s] == 0 || *nm == BATCH)
			continue;
		rid = ++w->rid[s];
		p = &w->pend[s][rid];
		if (p->live) { /* the id came round while still pending: count it lost */
			w->timeouts++;
			w->outstanding--;
		}
		iov[*nm].iov_base = bufs[*nm];
		for (j = 0; j < cnt[s]; j++)
			req[j] = (struct mc_wl_key){keys[s][j], klen[s][j], ids[s][j]};
		iov[*nm].iov_len = mc_wl_build(&wl, bufs[*nm], rid, get, req, cnt[s]);
		memset(&mm[*nm].msg_hdr, 0, sizeof(mm[*nm].msg_hdr));
		mm[*nm].msg_hdr.msg_iov = &iov[*nm];
		mm[*nm].msg_hdr.msg_iovlen = 1;
		mm[*nm].msg_hdr.msg_name = &opt.addr[s];
		mm[*nm].msg_hdr.msg_namelen = sizeof(opt.addr[s]);
		p->sent_ns = now_ns();
		p->got = 0;
		p->total = 0;
		p->next_seq = 0;
		p->live = true;
		p->measured = measuring;
		w->outstanding++;
		w->sent++;
		(*nm)++;
	}
}

static void
complete(struct worker *w, struct pending *p, uint64_t t)
{
	p->live = false;
	w->outstanding--;
	if (p->measured && measuring) {
		w->done++;
		mc_hist_add(&w->h, t - p->sent_ns);
	}
	atomic_fetch_add_explicit(&w->progress, 1, memory_order_relaxed);
}

static void
receive(struct worker *w, unsigned int s, const uint8_t *d, size_t len, uint64_t t)
{
	uint16_t rid, seq, total;
	struct pending *p;
	if (len < 8)
		return;
	rid = (uint16_t)(d[0] << 8 | d[1]);
	seq = (uint16_t)(d[2] << 8 | d[3]);
	total = (uint16_t)(d[4] << 8 | d[5]);
	p = &w->pend[s][rid];
	if (!p->live || total == 0)
		return;
	if (seq != p->next_seq)
		w->reorders++;
	p->next_seq = (uint16_t)(seq + 1);
	p->total = total;
	w->bytes_in += len;
	if (len > 8 + 5) {
		if (wl.proto == MC_WL_BINARY)
			*(d[8 + 7] == 0 ? &w->hits : &w->misses) += 1;
		else if (!memcmp(d + 8, "VALUE", 5) || !memcmp(d + 8, "VA ", 3))
			w->hits++;
	}
	/* memcached sends one message per reply object, each total 1: a get is done at END, a
	 * meta pipeline at MN; a sequenced reply at its last datagram. */
	if (++p->got >= total) {
		bool end = total > 1 || wl.proto == MC_WL_BINARY || (len >= 13 && !memcmp(d + len - 5, "END\r\n", 5)) ||
			   (len >= 12 && !memcmp(d + len - 4, "MN\r\n", 4)) || wl.mget == 1 ||
			   memcmp(d + 8, "VALUE", 5) != 0;
		/* A meta multi-get ends at MN; a set's reply (HD) is not a VA block. */
		if (wl.proto == MC_WL_META && wl.mget > 1)
			end = (len >= 12 && !memcmp(d + len - 4, "MN\r\n", 4)) || memcmp(d + 8, "VA ", 3) != 0;
		if (end)
			complete(w, p, t);
	}
}

static void *
run(void *arg)
{
	struct worker *w = arg;
	struct mmsghdr mm[BATCH], rm[BATCH];
	struct iovec iov[BATCH], riov[BATCH];
	static __thread uint8_t bufs[BATCH][MC_WL_REQ_MAX], rbufs[BATCH][2048];
	struct pollfd pfd[MAX_SERVERS];
	unsigned int s, i;
	const double per_thread_rate = opt.rate / opt.threads;
	double next_send = now_s();
	for (s = 0; s < opt.nservers; s++) {
		pfd[s].fd = w->fd[s];
		pfd[s].events = POLLIN;
	}
	for (i = 0; i < BATCH; i++) {
		riov[i].iov_base = rbufs[i];
		riov[i].iov_len = sizeof(rbufs[i]);
	}
	while (!stopping) {
		unsigned int nm = 0;
		double t = now_s();
		/* Send: fill the window (closed loop) or catch up with the schedule (open loop). */
		while (nm + opt.nservers <= BATCH && w->sent < opt.max_requests / opt.threads) {
			if (opt.rate > 0) {
				if (t < next_send)
					break;
				next_send += 1.0 / per_thread_rate;
			} else if (w->outstanding >= opt.window) {
				break;
			}
			unsigned int before = nm;
			issue(w, mm, iov, bufs, &nm);
			if (nm == before)
				break; /* preloaded: nothing to send until the run starts */
		}
		if (nm) {
			/* Group by destination: sendmmsg on each server's socket. */
			for (s = 0; s < opt.nservers; s++) {
				struct mmsghdr out[BATCH];
				unsigned int k = 0;
				for (i = 0; i < nm; i++)
					if (mm[i].msg_hdr.msg_name == &opt.addr[s])
						out[k++] = mm[i];
				for (i = 0; i < k; i++)
					out[i].msg_hdr.msg_name = NULL, out[i].msg_hdr.msg_namelen = 0;
				if (k && sendmmsg(w->fd[s], out, k, 0) < 0 && errno != EAGAIN)
					perror("mcload: sendmmsg");
			}
		}
		if (poll(pfd, opt.nservers, opt.rate > 0 ? 0 : 1) > 0) {
			uint64_t tn = now_ns();
			for (s = 0; s < opt.nservers; s++) {
				int r;
				if (!(pfd[s].revents & POLLIN))
					continue;
				for (i = 0; i < BATCH; i++) {
					memset(&rm[i].msg_hdr, 0, sizeof(rm[i].msg_hdr));
					rm[i].msg_hdr.msg_iov = &riov[i];
					rm[i].msg_hdr.msg_iovlen = 1;
				}
				r = recvmmsg(w->fd[s], rm, BATCH, MSG_DONTWAIT, NULL);
				for (i = 0; r > 0 && i < (unsigned int)r; i++)
					receive(w, s, rbufs[i], rm[i].msg_len, tn);
			}
		}
		/* Expire requests older than the timeout (counted as lost). */
		if ((w->sent & 1023) == 0 || w->outstanding >= opt.window) {
			uint64_t tn = now_ns(), lim = (uint64_t)(opt.timeout * 1e9);
			for (s = 0; s < opt.nservers; s++)
				for (i = 0; i < SLOTS; i += (w->outstanding >= opt.window) ? 1 : SLOTS) {
					struct pending *p = &w->pend[s][i];
					if (p->live && tn - p->sent_ns > lim) {
						p->live = false;
						w->outstanding--;
						if (p->measured)
							w->timeouts++;
					}
				}
		}
	}
	return NULL;
}

static void
usage(void)
{
	fprintf(stderr, "usage: mcload -s HOST:PORT [-s ...] [-T threads] [-d seconds] [-w warmup]\n"
			"  [-c window | -r rate]\n" MC_WL_USAGE
			"  [-n max_requests] [--timeout s] [--preload] [--json FILE] [--cdf FILE]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	static const struct option lo[] = {
		{"server", 1, NULL, 's'}, {"threads", 1, NULL, 'T'}, {"duration", 1, NULL, 'd'},
		{"warmup", 1, NULL, 'w'}, {"window", 1, NULL, 'c'}, {"rate", 1, NULL, 'r'},
		MC_WL_LONGOPTS, {"max-requests", 1, NULL, 'n'}, {"timeout", 1, NULL, 't'},
		{"json", 1, NULL, 'j'}, {"cdf", 1, NULL, 'C'}, {"preload", 0, NULL, 'L'},
		{NULL, 0, NULL, 0}};
	static struct mc_hist all;
	const char *why;
	uint64_t sent = 0, done = 0, timeouts = 0, reorders = 0, hits = 0;
	double t0, elapsed;
	unsigned int i, s;
	int c;
	mc_wl_defaults(&wl);
	while ((c = getopt_long(argc, argv, "s:T:d:w:c:r:n:t:" MC_WL_OPTSTRING, lo, NULL)) != -1) {
		int taken = mc_wl_option(&wl, c, optarg);
		if (taken < 0)
			usage();
		if (taken)
			continue;
		switch (c) {
		case 's': {
			char *colon = strrchr(optarg, ':');
			if (opt.nservers == MAX_SERVERS || colon == NULL)
				usage();
			*colon = '\0';
			snprintf(opt.host[opt.nservers], sizeof(opt.host[0]), "%s", optarg);
			opt.port[opt.nservers] = (uint16_t)atoi(colon + 1);
			opt.addr[opt.nservers].sin_family = AF_INET;
			opt.addr[opt.nservers].sin_port = htons(opt.port[opt.nservers]);
			if (inet_pton(AF_INET, optarg, &opt.addr[opt.nservers].sin_addr) != 1)
				usage();
			opt.nservers++;
			break;
		}
		case 'T': opt.threads = (unsigned int)atoi(optarg); break;
		case 'd': opt.duration = atof(optarg); break;
		case 'w': opt.warmup = atof(optarg); break;
		case 'c': opt.window = (unsigned int)atoi(optarg); break;
		case 'r': opt.rate = atof(optarg); break;
		case 'n': opt.max_requests = strtoull(optarg, NULL, 10); break;
		case 't': opt.timeout = atof(optarg); break;
		case 'j': opt.json = optarg; break;
		case 'C': opt.cdf = optarg; break;
		case 'L': opt.preload = true; break;
		default: usage();
		}
	}
	if (opt.nservers == 0 || opt.threads == 0 || opt.threads > MAX_THREADS ||
	    opt.duration <= 0 || opt.duration > 3600 || opt.window == 0 || opt.window > 30000)
		usage();
	if ((why = mc_wl_setup(&wl, false)) != NULL) {
		fprintf(stderr, "mcload: %s\n", why);
		return 2;
	}
	{
		const char *hosts[MAX_SERVERS];
		for (s = 0; s < opt.nservers; s++)
			hosts[s] = opt.host[s];
		if (mc_ketama_create(&ring, hosts, opt.port, opt.nservers) != 0) {
			fprintf(stderr, "mcload: out of memory for the ketama ring\n");
			return 1;
		}
	}
	for (i = 0; i < opt.threads; i++) {
		struct worker *w = &workers[i];
		w->id = i;
		w->seed = 0x9e3779b97f4a7c15ull * (i + 1);
		for (s = 0; s < opt.nservers; s++) {
			int buf = 4 << 20;
			w->fd[s] = socket(AF_INET, SOCK_DGRAM, 0);
			setsockopt(w->fd[s], SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
			if (w->fd[s] < 0 || connect(w->fd[s], (struct sockaddr *)&opt.addr[s], sizeof(opt.addr[s])) != 0) {
				perror("mcload: socket");
				return 1;
			}
			w->pend[s] = calloc(SLOTS, sizeof(struct pending));
		}
		pthread_create(&w->th, NULL, run, w);
	}
	/* Preload (every key set once, at most 30 s), warm-up, then the measured window; progress
	 * once a second on a terminal. The warm-up collects the preload's last replies. */
	if (opt.preload) {
		preloading = true;
		t0 = now_s();
		while (atomic_load(&preload_next) < wl.keys && now_s() - t0 < 30)
			usleep(1000);
		preloading = false;
		fprintf(stderr, "mcload: preloaded %llu keys in %.2fs\n",
			(unsigned long long)(atomic_load(&preload_next) < wl.keys ? atomic_load(&preload_next) : wl.keys), now_s() - t0);
	}
	t0 = now_s();
	while (now_s() - t0 < opt.warmup)
		usleep(10000);
	measuring = true;
	t0 = now_s();
	{
		double next = t0 + 1;
		uint64_t last = 0;
		while ((elapsed = now_s() - t0) < opt.duration) {
			usleep(10000);
			if (isatty(2) && now_s() >= next) {
				uint64_t p = 0;
				for (i = 0; i < opt.threads; i++)
					p += atomic_load_explicit(&workers[i].progress, memory_order_relaxed);
				fprintf(stderr, "\rmcload: %.0fs %.0f req/s   ", now_s() - t0, (double)(p - last));
				last = p;
				next += 1;
			}
		}
	}
	measuring = false;
	elapsed = now_s() - t0;
	stopping = true;
	for (i = 0; i < opt.threads; i++) {
		struct worker *w = &workers[i];
		pthread_join(w->th, NULL);
		sent += w->sent;
		done += w->done;
		timeouts += w->timeouts;
		reorders += w->reorders;
		hits += w->hits;
		mc_hist_merge(&all, &w->h);
	}
	if (isatty(2))
		fprintf(stderr, "\n");
	printf("mcload: %u server(s), %u thread(s), %s loop%s, %s, %.1fs: %.0f req/s, %llu done, "
	       "%llu timeouts, %llu reorders, latency us p50 %.1f p90 %.1f p99 %.1f p99.9 %.1f\n",
	       opt.nservers, opt.threads, opt.rate > 0 ? "open" : "closed",
	       opt.rate > 0 ? "" : "", mc_wl_proto_name(wl.proto),
	       elapsed, (double)done / elapsed, (unsigned long long)done, (unsigned long long)timeouts,
	       (unsigned long long)reorders, mc_hist_percentile(&all, 0.5) / 1e3, mc_hist_percentile(&all, 0.9) / 1e3,
	       mc_hist_percentile(&all, 0.99) / 1e3, mc_hist_percentile(&all, 0.999) / 1e3);
	if (opt.cdf && all.n) {
		FILE *f = fopen(opt.cdf, "w");
		uint64_t acc = 0;
		if (f == NULL) {
			perror("mcload: cdf");
			return 1;
		}
		for (unsigned int b = 0; b < MC_HIST_BUCKETS; b++) {
			if (all.b[b] == 0)
				continue;
			acc += all.b[b];
			fprintf(f, "%.3f %.6f\n", mc_hist_value(b) / 1e3, (double)acc / (double)all.n);
		}
		fclose(f);
	}
	if (opt.json) {
		FILE *f = fopen(opt.json, "w");
		if (f == NULL) {
			perror("mcload: json");
			return 1;
		}
		fprintf(f, "{\"rps\": %.1f, \"done\": %llu, \"sent\": %llu, \"timeouts\": %llu, \"reorders\": %llu, "
			   "\"hits\": %llu, \"p50_us\": %.2f, \"p90_us\": %.2f, \"p99_us\": %.2f, \"p999_us\": %.2f, "
			   "\"seconds\": %.2f, \"threads\": %u, \"servers\": %u, \"window\": %u, \"rate\": %.0f, "
			   "\"keys\": %llu, \"zipf\": %.2f, \"get_ratio\": %.2f, \"mget\": %u, \"proto\": \"%s\"}\n",
			(double)done / elapsed, (unsigned long long)done, (unsigned long long)sent,
			(unsigned long long)timeouts, (unsigned long long)reorders, (unsigned long long)hits,
			mc_hist_percentile(&all, 0.5) / 1e3, mc_hist_percentile(&all, 0.9) / 1e3, mc_hist_percentile(&all, 0.99) / 1e3,
			mc_hist_percentile(&all, 0.999) / 1e3, elapsed, opt.threads, opt.nservers, opt.window, opt.rate,
			(unsigned long long)wl.keys, wl.zipf, wl.get_ratio, wl.mget,
			mc_wl_proto_name(wl.proto));
		fclose(f);
	}
	return 0;
}
