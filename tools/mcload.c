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
 *        [--json FILE] [--cdf FILE]; sizes given as MIN-MAX are uniform in the range. */
#define _GNU_SOURCE
#include "ketama.h"

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
#define HBUCKETS (64 * 16)

/* ---- ketama (tools/ketama.c; ketama_check proves it against libmemcached) ---- */

static struct mc_ketama ring;

/* ---- options ---- */

enum proto { P_ASCII, P_BINARY, P_META };
static struct {
	char host[MAX_SERVERS][64];
	uint16_t port[MAX_SERVERS];
	struct sockaddr_in addr[MAX_SERVERS];
	unsigned int nservers;
	unsigned int threads;
	double duration, warmup;
	unsigned int window;
	double rate; /* requests/s in total; 0 = closed loop */
	uint64_t keys;
	double zipf;
	double get_ratio;
	unsigned int mget;
	enum proto proto;
	unsigned int key_size, value_size;    /* the largest of each range */
	unsigned int key_min, value_min;      /* sizes are uniform in [min, size] */
	uint64_t max_requests;
	double timeout;
	const char *json;
	const char *cdf; /* latency CDF: "microseconds fraction" lines, for gnuplot */
} opt = {.threads = 1, .duration = 5, .warmup = 1, .window = 32, .keys = 100000, .zipf = 0.99,
	 .get_ratio = 0.9, .mget = 1, .proto = P_ASCII, .key_size = 16, .value_size = 32,
	 .key_min = 16, .value_min = 32,
	 .max_requests = 100000000, .timeout = 1.0};

static double *zipf_cdf;

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

struct hist {
	uint64_t b[HBUCKETS];
	uint64_t n;
};

static unsigned int
hbucket(uint64_t ns)
{
	unsigned int lg;
	if (ns < 16)
		return (unsigned int)ns;
	lg = 63u - (unsigned int)__builtin_clzll(ns); /* >= 4 */
	return (lg - 3) * 16 + (unsigned int)((ns >> (lg - 4)) & 15);
}

static uint64_t
hvalue(unsigned int b)
{
	unsigned int lg;
	if (b < 16)
		return b;
	lg = b / 16 + 3;
	return (1ull << lg) | ((uint64_t)(b % 16) << (lg - 4));
}

struct worker {
	pthread_t th;
	unsigned int id;
	int fd[MAX_SERVERS];
	uint16_t rid[MAX_SERVERS];
	struct pending *pend[MAX_SERVERS];
	unsigned int outstanding;
	uint64_t seed;
	uint64_t sent, done, timeouts, reorders, hits, misses, bytes_in;
	struct hist h;
	_Atomic uint64_t progress;
};

static struct worker workers[MAX_THREADS];
static volatile bool measuring, stopping;

static uint64_t
rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static uint64_t
pick_key(struct worker *w)
{
	double u = (double)(rnd(&w->seed) >> 11) / (double)(1ull << 53);
	uint64_t lo = 0, hi = opt.keys - 1;
	if (zipf_cdf == NULL)
		return rnd(&w->seed) % opt.keys;
	while (lo < hi) {
		uint64_t mid = (lo + hi) / 2;
		if (zipf_cdf[mid] < u)
			lo = mid + 1;
		else
			hi = mid;
	}
	return (lo * 0x9e3779b97f4a7c15ull) % opt.keys;
}

/* A key's size is a function of the key, so every client agrees on it. */
static size_t
key_text(char *k, uint64_t i)
{
	int n = snprintf(k, 251, "key:%llu", (unsigned long long)i);
	unsigned int want = opt.key_min + (unsigned int)((i * 0x9e3779b97f4a7c15ull >> 40) %
						       (opt.key_size - opt.key_min + 1));
	while ((unsigned int)n < want && n < 250)
		k[n++] = '0';
	return (size_t)n;
}

static __thread uint64_t vseed = 88172645463325252ull;
static unsigned int
value_len(void)
{
	return opt.value_min + (unsigned int)(rnd(&vseed) % (opt.value_size - opt.value_min + 1));
}

/* Build one request for server s (keys already grouped); returns its length. */
static size_t
build(uint8_t *b, uint16_t rid, bool get, char keys[][256], size_t *klen, unsigned int nk)
{
	size_t n = 8;
	unsigned int i;
	b[0] = (uint8_t)(rid >> 8); b[1] = (uint8_t)rid; b[2] = 0; b[3] = 0; b[4] = 0; b[5] = 1; b[6] = 0; b[7] = 0;
	const unsigned int vlen = get ? 0 : value_len();
	if (opt.proto == P_BINARY) {
		for (i = 0; i < nk; i++) {
			uint32_t bl = (uint32_t)klen[i] + (get ? 0 : 8 + vlen);
			uint8_t *h = b + n;
			memset(h, 0, 24);
			h[0] = 0x80;
			h[1] = get ? (i + 1 < nk ? 0x0d : 0x0c) : 0x01; /* GETKQ ... GETK; SET */
			h[2] = (uint8_t)(klen[i] >> 8); h[3] = (uint8_t)klen[i];
			h[4] = get ? 0 : 8;
			h[8] = (uint8_t)(bl >> 24); h[9] = (uint8_t)(bl >> 16); h[10] = (uint8_t)(bl >> 8); h[11] = (uint8_t)bl;
			n += 24;
			if (!get) {
				memset(b + n, 0, 8);
				n += 8;
			}
			memcpy(b + n, keys[i], klen[i]);
			n += klen[i];
			if (!get) {
				memset(b + n, 'v', vlen);
				n += vlen;
			}
		}
		return n;
	}
	if (!get) {
		n += (size_t)(opt.proto == P_META ? sprintf((char *)b + n, "ms %.*s %u T0\r\n", (int)klen[0], keys[0], vlen)
						  : sprintf((char *)b + n, "set %.*s 0 0 %u\r\n", (int)klen[0], keys[0], vlen));
		memset(b + n, 'v', vlen);
		n += vlen;
		memcpy(b + n, "\r\n", 2);
		return n + 2;
	}
	if (opt.proto == P_META) {
		for (i = 0; i < nk; i++)
			n += (size_t)sprintf((char *)b + n, "mg %.*s v%s\r\n", (int)klen[i], keys[i], nk > 1 ? " q" : "");
		if (nk > 1)
			n += (size_t)sprintf((char *)b + n, "mn\r\n");
		return n;
	}
	n += (size_t)sprintf((char *)b + n, "get");
	for (i = 0; i < nk; i++)
		n += (size_t)sprintf((char *)b + n, " %.*s", (int)klen[i], keys[i]);
	return n + (size_t)sprintf((char *)b + n, "\r\n");
}

/* Issue one logical request: keys picked, de-duplicated, split per server. */
static void
issue(struct worker *w, struct mmsghdr *mm, struct iovec *iov, uint8_t (*bufs)[1500], unsigned int *nm)
{
	static __thread char keys[MAX_SERVERS][16][256];
	static __thread size_t klen[MAX_SERVERS][16];
	unsigned int cnt[MAX_SERVERS] = {0}, s, i, j;
	bool get = (double)(rnd(&w->seed) >> 11) / (double)(1ull << 53) < opt.get_ratio;
	unsigned int nk = get ? opt.mget : 1;
	for (i = 0; i < nk; i++) {
		char k[256];
		size_t kl = key_text(k, pick_key(w));
		unsigned int sv = mc_ketama_server(&ring, k, kl);
		bool dup = false;
		for (j = 0; j < cnt[sv]; j++)
			dup |= klen[sv][j] == kl && !memcmp(keys[sv][j], k, kl);
		if (dup || cnt[sv] == 16)
			continue;
		memcpy(keys[sv][cnt[sv]], k, kl);
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
		iov[*nm].iov_len = build(bufs[*nm], rid, get, keys[s], klen[s], cnt[s]);
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
		w->h.b[hbucket(t - p->sent_ns)]++;
		w->h.n++;
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
		if (opt.proto == P_BINARY)
			*(d[8 + 7] == 0 ? &w->hits : &w->misses) += 1;
		else if (!memcmp(d + 8, "VALUE", 5) || !memcmp(d + 8, "VA ", 3))
			w->hits++;
	}
	/* memcached sends one message per reply object, each total 1: a get is done at END, a
	 * meta pipeline at MN; a sequenced reply at its last datagram. */
	if (++p->got >= total) {
		bool end = total > 1 || opt.proto == P_BINARY || (len >= 13 && !memcmp(d + len - 5, "END\r\n", 5)) ||
			   (len >= 12 && !memcmp(d + len - 4, "MN\r\n", 4)) || opt.mget == 1 ||
			   memcmp(d + 8, "VALUE", 5) != 0;
		if (opt.proto == P_META && opt.mget > 1)
			end = len >= 12 && !memcmp(d + len - 4, "MN\r\n", 4);
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
	static __thread uint8_t bufs[BATCH][1500], rbufs[BATCH][2048];
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
			issue(w, mm, iov, bufs, &nm);
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

static uint64_t
percentile(const struct hist *h, double q)
{
	uint64_t want = (uint64_t)ceil(q * (double)h->n), acc = 0;
	for (unsigned int b = 0; b < HBUCKETS; b++) {
		acc += h->b[b];
		if (acc >= want && h->n)
			return hvalue(b);
	}
	return 0;
}

static void
usage(void)
{
	fprintf(stderr, "usage: mcload -s HOST:PORT [-s ...] [-T threads] [-d seconds] [-w warmup]\n"
			"  [-c window | -r rate] [-k keys] [-z zipf_s (0 = uniform)] [-g get_ratio]\n"
			"  [-m keys_per_get] [-p ascii|binary|meta] [--key-size N|MIN-MAX] [--value-size N|MIN-MAX]\n"
			"  [-n max_requests] [--timeout s] [--json FILE]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	static const struct option lo[] = {
		{"server", 1, NULL, 's'}, {"threads", 1, NULL, 'T'}, {"duration", 1, NULL, 'd'},
		{"warmup", 1, NULL, 'w'}, {"window", 1, NULL, 'c'}, {"rate", 1, NULL, 'r'},
		{"keys", 1, NULL, 'k'}, {"zipf", 1, NULL, 'z'}, {"get-ratio", 1, NULL, 'g'},
		{"mget", 1, NULL, 'm'}, {"proto", 1, NULL, 'p'}, {"key-size", 1, NULL, 'K'},
		{"value-size", 1, NULL, 'V'}, {"max-requests", 1, NULL, 'n'}, {"timeout", 1, NULL, 't'},
		{"json", 1, NULL, 'j'}, {"cdf", 1, NULL, 'C'}, {NULL, 0, NULL, 0}};
	struct hist all = {0};
	uint64_t sent = 0, done = 0, timeouts = 0, reorders = 0, hits = 0;
	double t0, elapsed;
	unsigned int i, s;
	int c;
	while ((c = getopt_long(argc, argv, "s:T:d:w:c:r:k:z:g:m:p:n:t:", lo, NULL)) != -1) {
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
		case 'k': opt.keys = strtoull(optarg, NULL, 10); break;
		case 'z': opt.zipf = atof(optarg); break;
		case 'g': opt.get_ratio = atof(optarg); break;
		case 'm': opt.mget = (unsigned int)atoi(optarg); break;
		case 'p': opt.proto = !strcmp(optarg, "binary") ? P_BINARY : !strcmp(optarg, "meta") ? P_META : P_ASCII; break;
		case 'K':
		case 'V': { /* N or MIN-MAX: uniform in the range */
			unsigned int rlo, rhi;
			char *dash = strchr(optarg, '-');
			rlo = (unsigned int)atoi(optarg);
			rhi = dash ? (unsigned int)atoi(dash + 1) : rlo;
			if (rhi < rlo)
				usage();
			if (c == 'K') {
				opt.key_min = rlo;
				opt.key_size = rhi;
			} else {
				opt.value_min = rlo;
				opt.value_size = rhi;
			}
			break;
		}
		case 'n': opt.max_requests = strtoull(optarg, NULL, 10); break;
		case 't': opt.timeout = atof(optarg); break;
		case 'j': opt.json = optarg; break;
		case 'C': opt.cdf = optarg; break;
		default: usage();
		}
	}
	if (opt.nservers == 0 || opt.threads == 0 || opt.threads > MAX_THREADS || opt.keys == 0 ||
	    opt.mget == 0 || opt.mget > 16 || opt.value_size > 1300 || opt.key_size > 250 ||
	    opt.key_min > opt.key_size || opt.value_min > opt.value_size ||
	    opt.duration <= 0 || opt.duration > 3600 || opt.window == 0 || opt.window > 30000)
		usage();
	if (opt.zipf > 0) {
		double sum = 0;
		zipf_cdf = malloc(opt.keys * sizeof(double));
		for (uint64_t k = 0; k < opt.keys; k++) {
			sum += 1.0 / pow((double)(k + 1), opt.zipf);
			zipf_cdf[k] = sum;
		}
		for (uint64_t k = 0; k < opt.keys; k++)
			zipf_cdf[k] /= sum;
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
	/* Warm-up, then the measured window; progress once a second on a terminal. */
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
		for (unsigned int b = 0; b < HBUCKETS; b++)
			all.b[b] += w->h.b[b];
		all.n += w->h.n;
	}
	if (isatty(2))
		fprintf(stderr, "\n");
	printf("mcload: %u server(s), %u thread(s), %s loop%s, %s, %.1fs: %.0f req/s, %llu done, "
	       "%llu timeouts, %llu reorders, latency us p50 %.1f p90 %.1f p99 %.1f p99.9 %.1f\n",
	       opt.nservers, opt.threads, opt.rate > 0 ? "open" : "closed",
	       opt.rate > 0 ? "" : "", opt.proto == P_BINARY ? "binary" : opt.proto == P_META ? "meta" : "ascii",
	       elapsed, (double)done / elapsed, (unsigned long long)done, (unsigned long long)timeouts,
	       (unsigned long long)reorders, percentile(&all, 0.5) / 1e3, percentile(&all, 0.9) / 1e3,
	       percentile(&all, 0.99) / 1e3, percentile(&all, 0.999) / 1e3);
	if (opt.cdf && all.n) {
		FILE *f = fopen(opt.cdf, "w");
		uint64_t acc = 0;
		if (f == NULL) {
			perror("mcload: cdf");
			return 1;
		}
		for (unsigned int b = 0; b < HBUCKETS; b++) {
			if (all.b[b] == 0)
				continue;
			acc += all.b[b];
			fprintf(f, "%.3f %.6f\n", hvalue(b) / 1e3, (double)acc / (double)all.n);
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
			percentile(&all, 0.5) / 1e3, percentile(&all, 0.9) / 1e3, percentile(&all, 0.99) / 1e3,
			percentile(&all, 0.999) / 1e3, elapsed, opt.threads, opt.nservers, opt.window, opt.rate,
			(unsigned long long)opt.keys, opt.zipf, opt.get_ratio, opt.mget,
			opt.proto == P_BINARY ? "binary" : opt.proto == P_META ? "meta" : "ascii");
		fclose(f);
	}
	return 0;
}
