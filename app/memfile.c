/* The store's memory: a memzone from EAL's hugepages, or with -e FILE a shared mapping of FILE
 * (hugetlbfs or tmpfs) that outlives the process, for warm restart. The file's first
 * MC_STORE_META_SIZE bytes hold the store's metadata (store/restart.c), the store follows.
 * The mapping is registered with DPDK as external memory, so zero-copy replies find its IOVA
 * as they find a memzone's (rte_mem_virt2memseg), and DMA-mapped for the ports that need it
 * (VFIO's container). See docs/DESIGN.md, "Warm restart". */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include <rte_common.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_memory.h>
#include <rte_memzone.h>
#include <rte_vfio.h>

#include "app.h"

#define HUGETLBFS_MAGIC 0x958458f6
#define TMPFS_PAGE (2u << 20) /* registration unit on tmpfs: the mapping is aligned to it */

/* Map len bytes of fd at an address aligned to align (hugetlbfs needs its page size; the
 * registration wants whole units). MAP_POPULATE: every page is there before the first
 * request, as a memzone's are; on hugetlbfs a shortage fails here, not as a SIGBUS later. */
static void *
map_aligned(int fd, size_t len, size_t align)
{
	uint8_t *r, *a, *m;
	r = mmap(NULL, len + align, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (r == MAP_FAILED)
		return MAP_FAILED;
	a = RTE_PTR_ALIGN_CEIL(r, align);
	m = mmap(a, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED | MAP_POPULATE, fd, 0);
	if (m == MAP_FAILED) {
		const int e = errno;
		munmap(r, len + align);
		errno = e;
		return MAP_FAILED;
	}
	if (a > r)
		munmap(r, (size_t)(a - r));
	if (r + len + align > a + len)
		munmap(a + len, (size_t)(r + align - a));
	return m;
}

/* Register the mapping as external memory with its IOVAs: the address itself in IOVA-as-VA
 * mode, each hugepage's physical address in PA mode. tmpfs pages in PA mode have none (not
 * pinned, not contiguous): zero-copy replies are turned off then. */
static void
register_extmem(struct mc_app *a, size_t page, bool huge)
{
	const unsigned int n = (unsigned int)(a->store_map_len / page);
	const bool va = rte_eal_iova_mode() == RTE_IOVA_VA;
	rte_iova_t *iova = calloc(n, sizeof(*iova));
	bool have_iova = true;
	unsigned int i;
	if (iova == NULL)
		rte_exit(EXIT_FAILURE, "-e: out of memory for %u IOVAs\n", n);
	for (i = 0; i < n; i++) {
		uint8_t *p = a->store_map + (size_t)i * page;
		iova[i] = va ? (rte_iova_t)(uintptr_t)p : huge ? rte_mem_virt2phy(p) : RTE_BAD_IOVA;
		if (iova[i] == RTE_BAD_IOVA)
			have_iova = false;
	}
	if (rte_extmem_register(a->store_map, a->store_map_len, iova, n, page) != 0) {
		MC_LOG(WARNING, "-e: cannot register the file's memory with DPDK: %s\n",
		       rte_strerror(rte_errno));
		have_iova = false;
	} else {
		a->store_extmem = true;
	}
	/* With VFIO the IOMMU must know the mapping (as EAL does for its own memory; the default
	 * container holds every VFIO device). IOVA-as-PA with UIO needs nothing. */
	if (a->store_extmem && va && rte_vfio_is_enabled("vfio")) {
		if (rte_vfio_container_dma_map(RTE_VFIO_DEFAULT_CONTAINER_FD,
					       (uintptr_t)a->store_map, iova[0],
					       a->store_map_len) == 0)
			a->store_vfio = true;
		else
			have_iova = false;
	}
	/* Zero-copy replies look the IOVA up as they do for a memzone: check that they find it. */
	if (a->store_extmem) {
		const struct rte_memseg *ms = rte_mem_virt2memseg(a->store_map + MC_STORE_META_SIZE,
								  NULL);
		if (ms == NULL || ms->len != page || (have_iova && ms->iova != iova[0]))
			have_iova = false;
	}
	MC_LOG(NOTICE, "warm restart: %s mapped, %zu MiB in %u pages of %zu KiB (%s), IOVA %s\n",
	       a->cfg.memory_file, a->store_map_len >> 20, n, page >> 10,
	       huge ? "hugetlbfs" : "not hugetlbfs", !have_iova ? "unknown" : va ? "as VA" : "as PA");
	free(iova);
	if (!have_iova && a->cfg.zc_min != 0) {
		MC_LOG(NOTICE, "zero-copy values off: the memory of %s has no IOVA a NIC could use "
			       "(tmpfs in IOVA-as-PA mode, or no DMA mapping; hugetlbfs has one)\n",
		       a->cfg.memory_file);
		a->cfg.zc_min = 0;
	}
}

/* Open, lock (one process per file), size and map FILE. Returns the store's memory. */
static void *
map_file(struct mc_app *a, size_t bytes)
{
	const char *path = a->cfg.memory_file;
	struct statfs fs;
	struct stat st;
	size_t page;
	bool huge;
	a->store_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (a->store_fd < 0)
		rte_exit(2, "-e %s: %s\n", path, strerror(errno));
	if (flock(a->store_fd, LOCK_EX | LOCK_NB) != 0)
		rte_exit(2, "-e %s: in use by another process (%s)\n", path, strerror(errno));
	if (fstat(a->store_fd, &st) != 0 || !S_ISREG(st.st_mode) || fstatfs(a->store_fd, &fs) != 0)
		rte_exit(2, "-e %s: not a regular file\n", path);
	huge = fs.f_type == HUGETLBFS_MAGIC;
	page = huge ? (size_t)fs.f_bsize : TMPFS_PAGE;
	a->store_map_len = RTE_ALIGN_CEIL(MC_STORE_META_SIZE + bytes, page);
	/* A file of another size held another -m: the metadata (its head) says so, and the
	 * start is cold. */
	if ((size_t)st.st_size != a->store_map_len &&
	    ftruncate(a->store_fd, (off_t)a->store_map_len) != 0)
		rte_exit(EXIT_FAILURE, "-e %s: cannot size it to %zu bytes: %s\n", path,
			 a->store_map_len, strerror(errno));
	a->store_map = map_aligned(a->store_fd, a->store_map_len, page);
	if (a->store_map == MAP_FAILED)
		rte_exit(EXIT_FAILURE, "-e %s: cannot map %zu MiB: %s%s\n", path,
			 a->store_map_len >> 20, strerror(errno),
			 huge ? " (free hugepages, or a smaller -m)" : "");
	register_extmem(a, page, huge);
	return a->store_map + MC_STORE_META_SIZE;
}

/* The store: all of -m, one partition per worker, from a memzone on the first port's socket
 * or from -e FILE, where a clean stop's store is reattached if the settings match (else one
 * line says why it starts cold). Its clock starts now. */
void
mc_app_store_setup(struct mc_app *a)
{
	const size_t bytes = (size_t)a->cfg.memory_mb << 20;
	const struct mc_store_settings set = {
		.mem_bytes = bytes, .nparts = a->nworkers, .max_item_size = a->cfg.max_item_size,
		.factor = a->cfg.growth_factor, .chunk_min = 48,
	};
	void *mem;
	a->store_fd = -1;
	if (a->cfg.memory_file[0] != '\0') {
		char why[256];
		int64_t down = 0;
		mem = map_file(a, bytes);
		a->store = mc_store_attach(mem, bytes, a->store_map, &set, time(NULL), &down, why,
					   sizeof(why));
		if (a->store != NULL) {
			struct mc_store_part_stats ps;
			mc_store_part_stats(a->store, &ps);
			MC_LOG(NOTICE, "warm restart: reattached %s: %" PRIu64 " items, clock moved "
				       "on by %" PRId64 " s\n",
			       a->cfg.memory_file, ps.curr_items, down);
		} else {
			MC_LOG(NOTICE, "warm restart: cold start: %s (%s)\n", why, a->cfg.memory_file);
		}
	} else {
		a->store_mz = rte_memzone_reserve_aligned("mc_store", bytes, a->ports[0].socket, 0,
							  RTE_CACHE_LINE_SIZE);
		if (a->store_mz == NULL)
			rte_exit(EXIT_FAILURE, "cannot reserve %u MiB for the store on socket %d: %s "
					       "(more hugepages, or a smaller -m)\n",
				 a->cfg.memory_mb, a->ports[0].socket, rte_strerror(rte_errno));
		mem = a->store_mz->addr;
	}
	if (a->store == NULL)
		a->store = mc_store_create(mem, bytes, &set);
	if (a->store == NULL)
		rte_exit(EXIT_FAILURE, "-m %u MiB is too small for %u partition(s)\n",
			 a->cfg.memory_mb, a->nworkers);
	a->clock_tsc0 = rte_rdtsc();
	a->started = time(NULL);
}

/* Teardown, once nothing reads, writes or references the store (lcores and TCP threads
 * stopped, ports closed, every zero-copy mbuf freed): save it to FILE for the next start,
 * and undo the DMA mappings and the registration; or free the memzone. */
void
mc_app_store_close(struct mc_app *a)
{
	if (a->store_fd < 0) {
		rte_memzone_free(a->store_mz);
		a->store_mz = NULL;
		return;
	}
	if (a->store != NULL) {
		struct mc_store_part_stats ps;
		uint64_t held = mc_store_save(a->store, a->store_map, time(NULL));
		mc_store_part_stats(a->store, &ps);
		if (held != 0)
			MC_LOG(WARNING, "warm restart: %" PRIu64 " store references were still held "
					"at the stop; their items were freed\n", held);
		if (msync(a->store_map, a->store_map_len, MS_SYNC) != 0)
			MC_LOG(WARNING, "warm restart: msync %s: %s\n", a->cfg.memory_file,
			       strerror(errno));
		MC_LOG(NOTICE, "warm restart: saved %" PRIu64 " items in %s\n", ps.curr_items,
		       a->cfg.memory_file);
	}
	if (a->store_vfio)
		rte_vfio_container_dma_unmap(RTE_VFIO_DEFAULT_CONTAINER_FD, (uintptr_t)a->store_map,
					     (uintptr_t)a->store_map, a->store_map_len);
	a->store_vfio = false;
	if (a->store_extmem && rte_extmem_unregister(a->store_map, a->store_map_len) != 0)
		MC_LOG(WARNING, "warm restart: unregistering %s: %s\n", a->cfg.memory_file,
		       rte_strerror(rte_errno));
	a->store_extmem = false;
}

/* After rte_eal_cleanup (no telemetry thread reads the store's counters any more): unmap the
 * file and close it, which drops its lock. */
void
mc_app_store_unmap(struct mc_app *a)
{
	if (a->store_fd < 0)
		return;
	a->store = NULL;
	munmap(a->store_map, a->store_map_len);
	close(a->store_fd);
	a->store_fd = -1;
}
