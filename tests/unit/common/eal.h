/* EAL for unit tests: no shared config, no hugepages, no PCI, a unique file prefix. */
#ifndef MC_TEST_EAL_H
#define MC_TEST_EAL_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <dirent.h>
#include <limits.h>

#include <rte_eal.h>

static inline void
mc_test_eal_init(const char *extra_vdev)
{
	char prefix[64];
	char *argv[16];
	int argc = 0;
	snprintf(prefix, sizeof(prefix), "--file-prefix=mcut-%d", (int)getpid());
	argv[argc++] = (char *)"unit";
	argv[argc++] = (char *)"--no-huge";
	argv[argc++] = (char *)"--no-pci";
	argv[argc++] = (char *)"--no-shconf";
	argv[argc++] = (char *)"-m";
	argv[argc++] = (char *)"256";
	argv[argc++] = (char *)"-l";
	argv[argc++] = (char *)"0";
	argv[argc++] = (char *)"--log-level=lib.*:error";
	argv[argc++] = prefix;
	if (extra_vdev) {
		argv[argc++] = (char *)"--vdev";
		argv[argc++] = (char *)extra_vdev;
	}
	if (rte_eal_init(argc, argv) < 0) {
		fprintf(stderr, "unit: EAL init failed\n");
		exit(1);
	}
}

/* Release EAL and remove its runtime directory, so a test run leaves nothing behind. */
static inline void
mc_test_eal_cleanup(void)
{
	char dir[PATH_MAX], path[PATH_MAX + 256];
	DIR *d;
	struct dirent *e;
	snprintf(dir, sizeof(dir), "%s", rte_eal_get_runtime_dir());
	rte_eal_cleanup();
	d = opendir(dir);
	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		remove(path);
	}
	closedir(d);
	rmdir(dir);
}

#endif
