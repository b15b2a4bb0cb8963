// SPDX-License-Identifier: GPL-2.0-only
/*
 * swap_exclusive: the selftest the kernel's cow.c lacks, for the exclusive
 * bit of a swap PTE (1493a1913e34, "mm/swap: remember PG_anon_exclusive via a
 * swp pte bit", 5.19).
 *
 * No case of cow.c tells a kernel that keeps PG_anon_exclusive in the swap
 * PTE from one that does not (the scheme `no-swp-exclusive` of the PG_anon_exclusive
 * notebooks passes all of them): every cow.c case swaps out a page that
 * nothing else references, and a swap-in proves such a page exclusive by its
 * reference count alone. Here something else holds the page while it is
 * swapped out: a pipe, through vmsplice(), takes a plain (FOLL_GET) reference
 * to a page this process mapped exclusively. Reclaim unmaps the page anyway
 * (only a pin stops it) and leaves it in the swap cache, held by the pipe.
 * When the process touches the page again, do_swap_page (mm/memory.c) finds
 * it there with a reference count above one: only the swap PTE's bit says it
 * is still exclusive. With the bit the page is mapped back exclusive and a
 * write reuses it, so the pipe, which still holds that page, reads the new
 * data; without it the page looks shared and the write copies, so the pipe
 * reads the old data. The test passes when the write goes to the page the
 * pipe holds. Each case has a mirror in the scenario library
 * (scenarios/cow/x0*-swap-exclusive-*.scn); anonlib's selftests-check runs
 * this program next to cow and gup_longterm (anonlib/kernelcheck/selftests.py).
 *
 * Built with the 6.12 source's kselftest.h and vm_util.c, as cow.c is.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include "../kselftest.h"
#include "vm_util.h"

static size_t pagesize;
static int pagemap_fd;

enum touch {
	WRITE_FAULT,	/* the write itself swaps the page in */
	READ_FIRST,	/* a read swaps it in, then the write */
};

static void run(enum touch touch)
{
	struct iovec iov;
	int fds[2];
	char *mem, got;

	ksft_print_msg("[RUN] %s ... with base page\n", touch == WRITE_FAULT ?
		       "R/O GUP reference (vmsplice) on an exclusive page swapped out, then written" :
		       "R/O GUP reference (vmsplice) on an exclusive page swapped out, read, then written");
	mem = mmap(NULL, pagesize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		ksft_test_result_fail("mmap() failed\n");
		return;
	}
	if (pipe(fds) < 0) {
		ksft_test_result_fail("pipe() failed\n");
		goto unmap;
	}
	memset(mem, 'x', pagesize);
	iov.iov_base = mem;
	iov.iov_len = pagesize;
	if (vmsplice(fds[1], &iov, 1, 0) != (ssize_t)pagesize) {
		ksft_test_result_fail("vmsplice() failed\n");
		goto close;
	}
	madvise(mem, pagesize, MADV_PAGEOUT);
	if (!pagemap_is_swapped(pagemap_fd, mem)) {
		ksft_test_result_skip("MADV_PAGEOUT did not swap out the page\n");
		goto close;
	}
	if (touch == READ_FIRST && *(volatile char *)mem != 'x') {
		ksft_test_result_fail("the page lost its data\n");
		goto close;
	}
	mem[0] = 'y';
	if (read(fds[0], &got, 1) != 1) {
		ksft_test_result_fail("read() failed\n");
		goto close;
	}
	if (got == 'y')
		ksft_test_result_pass("The write went to the page the pipe holds: the page "
				      "came back exclusive\n");
	else
		ksft_test_result_fail("The write copied the page the pipe holds: the page came "
				      "back maybe shared\n");
close:
	close(fds[0]);
	close(fds[1]);
unmap:
	munmap(mem, pagesize);
}

int main(void)
{
	pagesize = getpagesize();
	ksft_print_header();
	ksft_set_plan(2);
	pagemap_fd = open("/proc/self/pagemap", O_RDONLY);
	if (pagemap_fd < 0)
		ksft_exit_fail_msg("opening pagemap failed\n");
	run(WRITE_FAULT);
	run(READ_FIRST);
	ksft_finished();
}
