// SPDX-License-Identifier: MIT
/*
 * kcore.h: kernel memory read from user space, for the kernel check's guest programs
 * (anoncheck.c, drgn-crosscheck-init.c). /proc/kcore is an ELF core file of the running
 * kernel: each PT_LOAD segment maps a range of kernel virtual addresses to a file offset.
 * /proc/kallsyms gives a symbol's address (vmemmap_base, where the struct pages start on
 * x86-64 with SPARSEMEM_VMEMMAP). Both need root; the guests run as /init.
 */
#ifndef KCORE_H
#define KCORE_H

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

struct kseg {
	uint64_t vaddr, size, off;
};
static struct kseg ksegs[256];
static int nksegs, kcore_fd = -1;

/* n bytes at kernel address va; 0, or -1 if no segment holds them all */
static int kcore_read(uint64_t va, void *buf, size_t n)
{
	for (int i = 0; i < nksegs; i++)
		if (va >= ksegs[i].vaddr && va + n <= ksegs[i].vaddr + ksegs[i].size)
			return pread(kcore_fd, buf, n, ksegs[i].off + (va - ksegs[i].vaddr)) ==
			       (ssize_t)n ? 0 : -1;
	return -1;
}

/* Open /proc/kcore and read its segments: NULL, or why it could not (strerror) */
static const char *kcore_open(void)
{
	Elf64_Ehdr eh;
	kcore_fd = open("/proc/kcore", O_RDONLY);
	if (kcore_fd < 0 || pread(kcore_fd, &eh, sizeof eh, 0) != sizeof eh)
		return strerror(errno);
	for (int i = 0; i < eh.e_phnum && nksegs < 256; i++) {
		Elf64_Phdr ph;
		if (pread(kcore_fd, &ph, sizeof ph, eh.e_phoff + i * sizeof ph) != sizeof ph)
			break;
		if (ph.p_type == PT_LOAD)
			ksegs[nksegs++] = (struct kseg){ph.p_vaddr, ph.p_filesz, ph.p_offset};
	}
	return NULL;
}

/* The address of a kernel symbol from /proc/kallsyms, or 0 */
static uint64_t kallsyms_address(const char *symbol)
{
	FILE *f = fopen("/proc/kallsyms", "r");
	char line[256];
	uint64_t sym = 0;
	while (f && fgets(line, sizeof line, f)) {
		unsigned long long a;
		char t, name[200];
		if (sscanf(line, "%llx %c %199s", &a, &t, name) == 3 && !strcmp(name, symbol)) {
			sym = a;
			break;
		}
	}
	if (f)
		fclose(f);
	return sym;
}

#endif
