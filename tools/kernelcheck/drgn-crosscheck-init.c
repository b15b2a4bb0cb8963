/*
 * drgn-crosscheck-init: /init of the VM that tools/kernelcheck/drgn_crosscheck.py
 * dumps, to check the kernel check's /proc/kcore reading of a page's own
 * struct page against drgn's reading of a memory dump.
 *
 * It makes a PTE-mapped THP whose pages' own PG_anon_exclusive differ from
 * its head's: a 2 MiB THP written whole (exclusive), its second half
 * MADV_DONTFORK (which splits the VMA and so the PMD: every page keeps the
 * flag), then a fork (the first half, the head with it, loses the flag in the
 * parent). It prints, for a few pages, the frame, /proc/kpageflags and the
 * first two words of the page's struct page read through /proc/kcore
 * (flags, compound_head), then "READY", and waits to be dumped.
 *
 * Build: gcc -static -O2 -o init drgn-crosscheck-init.c   (done by the script)
 */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "kcore.h"

#define PAGE 4096UL
#define STRUCT_PAGE 64
#define THP (2UL << 20)

static uint64_t read_u64(const char *path, uint64_t index)
{
	uint64_t v = 0;
	int fd = open(path, O_RDONLY);
	if (fd < 0 || pread(fd, &v, 8, index * 8) != 8)
		v = 0;
	if (fd >= 0)
		close(fd);
	return v;
}

static void write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY);
	if (fd >= 0) {
		if (write(fd, text, strlen(text)) < 0)
			printf("@log write %s: %s\n", path, strerror(errno));
		close(fd);
	}
}

int main(void)
{
	mkdir("/proc", 0755);
	mkdir("/sys", 0755);
	mount("proc", "/proc", "proc", 0, NULL);
	mount("sysfs", "/sys", "sysfs", 0, NULL);
	setvbuf(stdout, NULL, _IOLBF, 0);
	/* qemu_fw_cfg: drgn recognizes the dump by the vmcoreinfo it passes to QEMU */
	int m = open("/qemu_fw_cfg.ko", O_RDONLY);
	if (m < 0 || syscall(__NR_finit_module, m, "", 0) < 0)
		printf("@error qemu_fw_cfg: %s\n", strerror(errno));
	write_file("/sys/kernel/mm/transparent_hugepage/enabled", "always");

	const char *err = kcore_open();
	if (err) {
		printf("@error /proc/kcore: %s\n", err);
		return 1;
	}
	uint64_t sym = kallsyms_address("vmemmap_base");
	uint64_t vmemmap = 0;
	if (!sym || kcore_read(sym, &vmemmap, 8) < 0) {
		printf("@error vmemmap_base not found or not readable\n");
		return 1;
	}
	printf("@vmemmap %llx\n", (unsigned long long)vmemmap);

	char *p = mmap((void *)0x200000000UL, 2 * THP, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (p == MAP_FAILED) {
		printf("@error mmap: %s\n", strerror(errno));
		return 1;
	}
	madvise(p, THP, MADV_HUGEPAGE);
	memset(p, 1, THP);
	madvise(p + THP / 2, THP / 2, MADV_DONTFORK);
	if (fork() == 0)
		for (;;)
			pause();
	sleep(1);
	char pagemap[64];
	snprintf(pagemap, sizeof pagemap, "/proc/%d/pagemap", (int)getpid());
	static const int subpages[] = {0, 1, 255, 256, 300, 511};
	for (unsigned k = 0; k < sizeof subpages / sizeof subpages[0]; k++) {
		uint64_t pm = read_u64(pagemap, ((uintptr_t)p / PAGE) + subpages[k]);
		uint64_t pfn = pm & ((1ULL << 55) - 1), w[2] = {0, 0};
		if (kcore_read(vmemmap + pfn * STRUCT_PAGE, w, sizeof w) < 0)
			printf("@error kcore read of pfn %llx\n", (unsigned long long)pfn);
		printf("@page %d pfn=%llx kpageflags=%llx flags=%llx compound_head=%llx\n",
		       subpages[k], (unsigned long long)pfn,
		       (unsigned long long)read_u64("/proc/kpageflags", pfn),
		       (unsigned long long)w[0], (unsigned long long)w[1]);
	}
	printf("@ready\n");
	for (;;)
		pause();
}
