/*
 * anoncheck: run scenario statements on the real kernel, as /init of a VM.
 *
 * Part of `python -m anonlib kernel-check` (anonlib/kernelcheck/). The Python
 * side compiles each scenario into a job of low-level commands
 * (/job.txt in the initramfs); this program sets the machine up (proc, sys,
 * debugfs, swap on zram, THP, hugetlb, KSM knobs; per scenario the mTHP sizes in
 * hugepages-<size>kB/enabled; zswap on and off once so that zram swaps mTHPs
 * back in as small folios), carries the commands out
 * and prints one result line per statement to /dev/ttyS1 (the console,
 * ttyS0, keeps the kernel's messages). Then it powers the VM off.
 *
 * Every scenario process is a real process, driven over a pair of FIFOs by
 * this program (pid 1, the controller): `spawn` forks from the controller
 * (the child maps nothing the scenario can see), `P fork Q` is a real fork()
 * in P. The controller never maps scenario memory; it observes it through
 * /proc/PID/pagemap, /proc/kpageflags, /proc/kpagecount and smaps, and it
 * does what the kernel does behind the processes' backs (MADV_PAGEOUT via
 * process_madvise, move_pages, KSM, debugfs split_huge_pages, hwpoison
 * corrupt-pfn, clear_refs).
 *
 * References held outside the page tables: `get ro` is vmsplice() into a
 * pipe (FOLL_GET); reading it tee()s the pipe into a scratch pipe and reads
 * that, so the page is read at read time and the handle can be read again.
 * `pin rw longterm` is an io_uring fixed buffer (FOLL_PIN | FOLL_WRITE |
 * FOLL_LONGTERM); `H read` is IORING_OP_WRITE_FIXED into a memfd, `H write`
 * IORING_OP_READ_FIXED from one. io_uring is driven with raw system calls.
 * `pin ro longterm` is gup_test.ko's PIN_LONGTERM_TEST_START, called by the
 * process on one of RPIN_SLOTS module instances; the controller keeps a copy of
 * the instance's file (pidfd_getfd) and reads (PIN_LONGTERM_TEST_READ) and unpins
 * (PIN_LONGTERM_TEST_STOP) through it. Without gup_test it is, where the job says
 * "odirect", an O_DIRECT write of the block to the brd ramdisk /dev/ram0 (the same
 * R/O FOLL_PIN while the I/O runs), and the scenario stops after that statement.
 * A reference covers the whole block of subpages that stands for one model
 * page (see anonlib/kernelcheck/plan.py); `H write` writes every subpage of
 * it, `H read` reads the first.
 *
 * A `write` replies with the page faults of its first store (getrusage), so the
 * Python side can tell whether the entry was present and writable before it.
 * Observations add the page's own struct page, read through /proc/kcore (a tail
 * page's PG_anon_exclusive, which /proc/kpageflags does not show).
 *
 * A value lives in the first VALUE_BYTES bytes of a page, NUL padded; the
 * value "0" is all zero bytes, so a written "0" equals a never-written page.
 *
 * Build: gcc -static -O2 -o anoncheck anoncheck.c   (done by the Python side)
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/io_uring.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/ioctl.h>
#include <sys/reboot.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/swap.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "kcore.h"

#define PAGE 4096UL
#define VALUE_BYTES 64
#define MAXPROC 64
#define MAXHANDLE 64
#define REPLY_TIMEOUT_MS 20000
#define MADV_COLLAPSE_ 25
#define MPOL_MF_MOVE_ALL_ (1 << 2)
#define THP_SYSFS "/sys/kernel/mm/transparent_hugepage"

/* mm/gup_test.h (6.12): the R/O long-term pin of gup_test.ko */
struct pin_longterm_test {
	uint64_t addr;
	uint64_t size;
	uint32_t flags;
};
#define PIN_LONGTERM_TEST_START _IOW('g', 7, struct pin_longterm_test)
#define PIN_LONGTERM_TEST_STOP _IO('g', 8)
#define PIN_LONGTERM_TEST_READ _IOW('g', 9, uint64_t)
#define PIN_LONGTERM_TEST_FLAG_USE_FAST 2
/* gup_test instances (one held pin set each): /sys/kernel/debug/gup_test, gup_test1, ... */
#define RPIN_SLOTS 4

static int out_fd = 1;

static void out(const char *fmt, ...)
{
	char buf[8192];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof buf - 2, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (n > (int)sizeof buf - 2)
		n = sizeof buf - 2;
	buf[n++] = '\n';
	for (int off = 0; off < n;) {
		ssize_t w = write(out_fd, buf + off, n - off);
		if (w <= 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		off += w;
	}
}


static int write_file(const char *path, const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	int fd = open(path, O_WRONLY);
	if (fd < 0)
		return -errno;
	ssize_t n = write(fd, buf, strlen(buf));
	int err = n < 0 ? -errno : 0;
	close(fd);
	return err;
}

static long read_long(const char *path)
{
	char buf[64] = {0};
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return -1;
	return strtol(buf, NULL, 10);
}

static const char *errname(int e)
{
	switch (e) {
	case EFAULT: return "EFAULT";
	case EINVAL: return "EINVAL";
	case EAGAIN: return "EAGAIN";
	case ENOMEM: return "ENOMEM";
	case EBUSY: return "EBUSY";
	case EPERM: return "EPERM";
	case EACCES: return "EACCES";
	case ENOENT: return "ENOENT";
	case EEXIST: return "EEXIST";
	case ENOSPC: return "ENOSPC";
	case EOPNOTSUPP: return "EOPNOTSUPP";
	case EIO: return "EIO";
	case EHWPOISON: return "EHWPOISON";
	case ENOSYS: return "ENOSYS";
	default: {
		static char buf[32];
		snprintf(buf, sizeof buf, "E%d", e);
		return buf;
	}
	}
}

/* ------------------------------------------------------------------ values */

static void hex_encode(const unsigned char *v, size_t n, char *out_hex)
{
	static const char d[] = "0123456789abcdef";
	size_t len = strnlen((const char *)v, n);
	if (len == 0) {
		strcpy(out_hex, "-");
		return;
	}
	for (size_t i = 0; i < len; i++) {
		out_hex[2 * i] = d[v[i] >> 4];
		out_hex[2 * i + 1] = d[v[i] & 15];
	}
	out_hex[2 * len] = 0;
}

static void hex_decode(const char *hex, unsigned char *v)
{
	memset(v, 0, VALUE_BYTES);
	if (strcmp(hex, "-") == 0)
		return;
	for (size_t i = 0; hex[2 * i] && hex[2 * i + 1] && i < VALUE_BYTES - 1; i++) {
		char b[3] = {hex[2 * i], hex[2 * i + 1], 0};
		v[i] = (unsigned char)strtoul(b, NULL, 16);
	}
}

/* ------------------------------------------------------------------ lines */

struct lineio {
	int fd;
	char buf[65536];
	size_t len;
};

/* Read one line (without the newline); timeout_ms < 0 waits for ever. 0 ok, -1 eof, -2 timeout. */
static int read_line(struct lineio *io, char *line, size_t max, int timeout_ms)
{
	for (;;) {
		char *nl = memchr(io->buf, '\n', io->len);
		if (nl) {
			size_t n = nl - io->buf;
			if (n >= max)
				n = max - 1;
			memcpy(line, io->buf, n);
			line[n] = 0;
			size_t rest = io->len - (nl - io->buf) - 1;
			memmove(io->buf, nl + 1, rest);
			io->len = rest;
			return 0;
		}
		if (timeout_ms >= 0) {
			struct pollfd p = {.fd = io->fd, .events = POLLIN};
			int r = poll(&p, 1, timeout_ms);
			if (r == 0)
				return -2;
			if (r < 0 && errno == EINTR)
				continue;
		}
		ssize_t n = read(io->fd, io->buf + io->len, sizeof io->buf - io->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		io->len += n;
	}
}

static int split_words(char *line, char **w, int max)
{
	int n = 0;
	char *save = NULL;
	for (char *t = strtok_r(line, " \t", &save); t && n < max; t = strtok_r(NULL, " \t", &save))
		w[n++] = t;
	return n;
}

/* ================================================================== the scenario process */

struct uring {
	int fd;
	void *sq_ptr, *cq_ptr;
	size_t sq_sz, cq_sz;
	struct io_uring_sqe *sqes;
	size_t sqes_sz;
	unsigned *sq_tail, *sq_mask, *sq_array, *cq_head, *cq_tail, *cq_mask;
	struct io_uring_cqe *cqes;
};

struct handle {
	char name[64];
	int used;
	int is_pin;
	int pipefd[2];
	struct uring ring;
	int memfd;
	unsigned long addr;
	long count;
};

static struct handle handles[MAXHANDLE];
static sigjmp_buf fault_jmp;
static volatile sig_atomic_t fault_sig;

static void on_fault(int sig)
{
	fault_sig = sig;
	siglongjmp(fault_jmp, 1);
}

static struct handle *find_handle(const char *name)
{
	for (int i = 0; i < MAXHANDLE; i++)
		if (handles[i].used && strcmp(handles[i].name, name) == 0)
			return &handles[i];
	return NULL;
}

static struct handle *new_handle(const char *name)
{
	for (int i = 0; i < MAXHANDLE; i++)
		if (!handles[i].used) {
			memset(&handles[i], 0, sizeof handles[i]);
			handles[i].used = 1;
			snprintf(handles[i].name, sizeof handles[i].name, "%s", name);
			handles[i].pipefd[0] = handles[i].pipefd[1] = -1;
			handles[i].memfd = -1;
			handles[i].ring.fd = -1;
			return &handles[i];
		}
	return NULL;
}

static int uring_setup(struct uring *r)
{
	struct io_uring_params p;
	memset(&p, 0, sizeof p);
	r->fd = syscall(__NR_io_uring_setup, 4, &p);
	if (r->fd < 0)
		return -errno;
	r->sq_sz = p.sq_off.array + p.sq_entries * sizeof(unsigned);
	r->cq_sz = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
	if (p.features & IORING_FEAT_SINGLE_MMAP) {
		if (r->cq_sz > r->sq_sz)
			r->sq_sz = r->cq_sz;
		r->cq_sz = r->sq_sz;
	}
	r->sq_ptr = mmap(0, r->sq_sz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd,
			 IORING_OFF_SQ_RING);
	if (r->sq_ptr == MAP_FAILED)
		return -errno;
	if (p.features & IORING_FEAT_SINGLE_MMAP)
		r->cq_ptr = r->sq_ptr;
	else {
		r->cq_ptr = mmap(0, r->cq_sz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
				 r->fd, IORING_OFF_CQ_RING);
		if (r->cq_ptr == MAP_FAILED)
			return -errno;
	}
	r->sqes_sz = p.sq_entries * sizeof(struct io_uring_sqe);
	r->sqes = mmap(0, r->sqes_sz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd,
		       IORING_OFF_SQES);
	if (r->sqes == MAP_FAILED)
		return -errno;
	char *sq = r->sq_ptr, *cq = r->cq_ptr;
	r->sq_tail = (unsigned *)(sq + p.sq_off.tail);
	r->sq_mask = (unsigned *)(sq + p.sq_off.ring_mask);
	r->sq_array = (unsigned *)(sq + p.sq_off.array);
	r->cq_head = (unsigned *)(cq + p.cq_off.head);
	r->cq_tail = (unsigned *)(cq + p.cq_off.tail);
	r->cq_mask = (unsigned *)(cq + p.cq_off.ring_mask);
	r->cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);
	return 0;
}

static void uring_close(struct uring *r)
{
	if (r->fd < 0)
		return;
	syscall(__NR_io_uring_register, r->fd, IORING_UNREGISTER_BUFFERS, NULL, 0);
	if (r->sqes && r->sqes != MAP_FAILED)
		munmap(r->sqes, r->sqes_sz);
	if (r->cq_ptr && r->cq_ptr != MAP_FAILED && r->cq_ptr != r->sq_ptr)
		munmap(r->cq_ptr, r->cq_sz);
	if (r->sq_ptr && r->sq_ptr != MAP_FAILED)
		munmap(r->sq_ptr, r->sq_sz);
	close(r->fd);
	r->fd = -1;
}

/* One fixed-buffer request (READ_FIXED or WRITE_FIXED) of VALUE_BYTES at offset 0; returns res. */
static int uring_rw_fixed(struct uring *r, int opcode, int fd, unsigned long addr)
{
	unsigned tail = *r->sq_tail;
	unsigned idx = tail & *r->sq_mask;
	struct io_uring_sqe *sqe = &r->sqes[idx];
	memset(sqe, 0, sizeof *sqe);
	sqe->opcode = opcode;
	sqe->fd = fd;
	sqe->addr = addr;
	sqe->len = VALUE_BYTES;
	sqe->off = 0;
	sqe->buf_index = 0;
	r->sq_array[idx] = idx;
	__atomic_store_n(r->sq_tail, tail + 1, __ATOMIC_RELEASE);
	int ret = syscall(__NR_io_uring_enter, r->fd, 1, 1, IORING_ENTER_GETEVENTS, NULL, 0);
	if (ret < 0)
		return -errno;
	unsigned head = __atomic_load_n(r->cq_head, __ATOMIC_ACQUIRE);
	while (head == __atomic_load_n(r->cq_tail, __ATOMIC_ACQUIRE)) {
		ret = syscall(__NR_io_uring_enter, r->fd, 0, 1, IORING_ENTER_GETEVENTS, NULL, 0);
		if (ret < 0)
			return -errno;
	}
	int res = r->cqes[head & *r->cq_mask].res;
	__atomic_store_n(r->cq_head, head + 1, __ATOMIC_RELEASE);
	return res;
}

static void close_handle(struct handle *h)
{
	if (h->pipefd[0] >= 0)
		close(h->pipefd[0]);
	if (h->pipefd[1] >= 0)
		close(h->pipefd[1]);
	uring_close(&h->ring);
	if (h->memfd >= 0)
		close(h->memfd);
	h->used = 0;
}

static int proc_cmd_fd = -1, proc_resp_fd = -1;
static struct lineio proc_in;

static void reply(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
	va_end(ap);
	buf[n++] = '\n';
	if (write(proc_resp_fd, buf, n) < 0)
		_exit(3);
}

static void open_fifos(const char *name)
{
	char c[128], r[128];
	snprintf(c, sizeof c, "/run/%s.c", name);
	snprintf(r, sizeof r, "/run/%s.r", name);
	proc_cmd_fd = open(c, O_RDONLY);
	proc_resp_fd = open(r, O_WRONLY);
	if (proc_cmd_fd < 0 || proc_resp_fd < 0)
		_exit(4);
	proc_in.fd = proc_cmd_fd;
	proc_in.len = 0;
}

static unsigned long parse_addr(const char *s) { return strtoul(s, NULL, 16); }

static int advice_of(const char *s)
{
	if (!strcmp(s, "dontneed")) return MADV_DONTNEED;
	if (!strcmp(s, "dontfork")) return MADV_DONTFORK;
	if (!strcmp(s, "dofork")) return MADV_DOFORK;
	if (!strcmp(s, "collapse")) return MADV_COLLAPSE_;
	if (!strcmp(s, "mergeable")) return MADV_MERGEABLE;
	if (!strcmp(s, "hugepage")) return MADV_HUGEPAGE;
	if (!strcmp(s, "nohugepage")) return MADV_NOHUGEPAGE;
	return -1;
}

static void setup_signals_in_process(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_fault;
	sa.sa_flags = SA_NODEFER;
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
	signal(SIGCHLD, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
}

static void scenario_process(const char *name) __attribute__((noreturn));

/* Carry out one command in a scenario process and reply. */
static void proc_command(char *line)
{
	char *w[16];
	int n = split_words(line, w, 16);
	if (n == 0) {
		reply("error empty");
		return;
	}
	const char *c = w[0];
	if (!strcmp(c, "mmap") && n == 4) {
		unsigned long addr = parse_addr(w[1]), len = parse_addr(w[2]);
		int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE;
		if (!strcmp(w[3], "hugetlb"))
			flags |= MAP_HUGETLB;
		void *p = mmap((void *)addr, len, PROT_READ | PROT_WRITE, flags, -1, 0);
		if (p == MAP_FAILED) {
			reply("%s", errname(errno));
			return;
		}
		if (!strcmp(w[3], "thp") || !strcmp(w[3], "mthp"))
			madvise(p, len, MADV_HUGEPAGE);
		else if (!strcmp(w[3], "base"))
			madvise(p, len, MADV_NOHUGEPAGE);
		reply("ok");
	} else if (!strcmp(c, "write") && n == 4) {
		unsigned long addr = parse_addr(w[1]);
		long count = strtol(w[2], NULL, 10);
		static unsigned char v[VALUE_BYTES];
		hex_decode(w[3], v);
		fault_sig = 0;
		/*
		 * The page faults of the first store, the value into the first subpage:
		 * none means its PTE (or PMD) was present and writable. Nothing else
		 * between the two counts may write a page a fork may have write-protected:
		 * sigsetjmp writes fault_jmp (this program's data) before the first count,
		 * and getrusage is called once before, so its own code and stack are mapped.
		 */
		struct rusage r0, r1;
		if (sigsetjmp(fault_jmp, 1) == 0) {
			getrusage(RUSAGE_SELF, &r0);
			getrusage(RUSAGE_SELF, &r0);
			memcpy((void *)addr, v, VALUE_BYTES);
			getrusage(RUSAGE_SELF, &r1);
			for (long k = 1; k < count; k++)
				memcpy((void *)(addr + k * PAGE), v, VALUE_BYTES);
			reply("ok faults=%ld", (r1.ru_minflt - r0.ru_minflt) +
			      (r1.ru_majflt - r0.ru_majflt));
		} else
			reply("%s", fault_sig == SIGBUS ? "SIGBUS" : "SIGSEGV");
	} else if (!strcmp(c, "read") && n == 3) {
		unsigned long addr = parse_addr(w[1]);
		long count = strtol(w[2], NULL, 10);
		static unsigned char first[VALUE_BYTES], cur[VALUE_BYTES];
		static char hex[2 * VALUE_BYTES + 2];
		static volatile int mixed;
		mixed = 0;
		fault_sig = 0;
		if (sigsetjmp(fault_jmp, 1) == 0) {
			memcpy(first, (void *)addr, VALUE_BYTES);
			for (long k = 1; k < count; k++) {
				memcpy(cur, (void *)(addr + k * PAGE), VALUE_BYTES);
				if (memcmp(cur, first, VALUE_BYTES))
					mixed = 1;
			}
			hex_encode(first, VALUE_BYTES, hex);
			reply("val %s%s", hex, mixed ? " mixed" : "");
		} else
			reply("%s", fault_sig == SIGBUS ? "SIGBUS" : "SIGSEGV");
	} else if (!strcmp(c, "fork") && n == 2) {
		pid_t pid = fork();
		if (pid < 0) {
			reply("%s", errname(errno));
			return;
		}
		if (pid == 0) {
			/* the child: drop the parent's FIFOs and references (pipes, rings) */
			syscall(__NR_close_range, 3, ~0U, 0);
			for (int i = 0; i < MAXHANDLE; i++)
				handles[i].used = 0;
			scenario_process(w[1]);
		}
		reply("ok %d", (int)pid);
	} else if (!strcmp(c, "get") && n == 4) {
		/* FOLL_GET on every subpage of the block: vmsplice them into one pipe */
		struct handle *h = new_handle(w[1]);
		unsigned long addr = parse_addr(w[2]);
		long count = strtol(w[3], NULL, 10);
		if (!h || pipe(h->pipefd) < 0) {
			reply("error handle");
			return;
		}
		if (fcntl(h->pipefd[1], F_SETPIPE_SZ, (count + 1) * PAGE) < 0) {
			close_handle(h);
			reply("error pipe size");
			return;
		}
		size_t done = 0, want = count * PAGE;
		while (done < want) {
			struct iovec iov = {.iov_base = (void *)(addr + done), .iov_len = want - done};
			ssize_t r = vmsplice(h->pipefd[1], &iov, 1, 0);
			if (r <= 0) {
				int e = r < 0 ? errno : EIO;
				close_handle(h);
				reply("%s", errname(e));
				return;
			}
			done += r;
		}
		h->addr = addr;
		h->count = count;
		reply("ok");
	} else if (!strcmp(c, "pin") && n == 4) {
		/* FOLL_PIN | FOLL_WRITE | FOLL_LONGTERM on the block: one io_uring fixed buffer */
		struct handle *h = new_handle(w[1]);
		unsigned long addr = parse_addr(w[2]);
		long count = strtol(w[3], NULL, 10);
		if (!h) {
			reply("error handle");
			return;
		}
		h->is_pin = 1;
		int e = uring_setup(&h->ring);
		if (e < 0) {
			close_handle(h);
			reply("error io_uring_setup %s", errname(-e));
			return;
		}
		struct iovec iov = {.iov_base = (void *)addr, .iov_len = count * PAGE};
		if (syscall(__NR_io_uring_register, h->ring.fd, IORING_REGISTER_BUFFERS, &iov, 1) < 0) {
			e = errno;
			close_handle(h);
			reply("%s", errname(e));
			return;
		}
		h->memfd = memfd_create("anoncheck-handle", 0);
		if (h->memfd < 0 || ftruncate(h->memfd, PAGE) < 0) {
			close_handle(h);
			reply("error memfd");
			return;
		}
		h->addr = addr;
		h->count = count;
		reply("ok");
	} else if (!strcmp(c, "rpin") && n == 5) {
		/*
		 * FOLL_PIN | FOLL_LONGTERM, read-only, on the block: gup_test's
		 * PIN_LONGTERM_TEST_START (pin_user_pages[_fast] in this process's mm) on
		 * the instance file w[4] the controller chose. The file stays open here;
		 * the controller takes a copy of it (pidfd_getfd), reads and unpins
		 * through that, and keeps the pin when this process exits.
		 */
		int fd = open(w[4], O_RDWR);
		if (fd < 0) {
			reply("error open %s %s", w[4], errname(errno));
			return;
		}
		struct pin_longterm_test a = {.addr = parse_addr(w[1]),
					      .size = strtol(w[2], NULL, 10) * PAGE,
					      .flags = !strcmp(w[3], "fast") ?
						       PIN_LONGTERM_TEST_FLAG_USE_FAST : 0};
		if (ioctl(fd, PIN_LONGTERM_TEST_START, &a) < 0) {
			int e = errno;
			close(fd);
			reply("%s", errname(e));
			return;
		}
		reply("ok %d", fd);
	} else if (!strcmp(c, "odirect") && n == 3) {
		/* a R/O FOLL_PIN for the length of one I/O: an O_DIRECT write of the block
		 * to the ramdisk (the bio pins the user pages without FOLL_WRITE) */
		size_t len = strtol(w[2], NULL, 10) * PAGE;
		int fd = open("/dev/ram0", O_WRONLY | O_DIRECT);
		if (fd < 0) {
			reply("error open /dev/ram0 %s", errname(errno));
			return;
		}
		ssize_t r = pwrite(fd, (void *)parse_addr(w[1]), len, 0);
		int e = errno;
		close(fd);
		if (r != (ssize_t)len)
			reply("%s", r < 0 ? errname(e) : "EIO");
		else
			reply("ok");
	} else if (!strcmp(c, "hread") && n == 2) {
		struct handle *h = find_handle(w[1]);
		static unsigned char v[PAGE];
		static char hex[2 * VALUE_BYTES + 2];
		if (!h) {
			reply("error no handle");
			return;
		}
		memset(v, 0, sizeof v);
		if (h->is_pin) {
			int res = uring_rw_fixed(&h->ring, IORING_OP_WRITE_FIXED, h->memfd, h->addr);
			if (res != VALUE_BYTES) {
				reply("%s", res < 0 ? errname(-res) : "EIO");
				return;
			}
			if (pread(h->memfd, v, VALUE_BYTES, 0) != VALUE_BYTES) {
				reply("error pread");
				return;
			}
		} else {
			int t[2];
			if (pipe(t) < 0) {
				reply("error pipe");
				return;
			}
			fcntl(t[1], F_SETPIPE_SZ, 16 * PAGE);
			ssize_t r = tee(h->pipefd[0], t[1], PAGE, SPLICE_F_NONBLOCK);
			if (r <= 0) {
				int e = r < 0 ? errno : EIO;
				close(t[0]);
				close(t[1]);
				reply("%s", errname(e));
				return;
			}
			ssize_t got = 0;
			while (got < r) {
				ssize_t k = read(t[0], v + got, PAGE - got);
				if (k <= 0)
					break;
				got += k;
			}
			close(t[0]);
			close(t[1]);
		}
		hex_encode(v, VALUE_BYTES, hex);
		reply("val %s", hex);
	} else if (!strcmp(c, "hwrite") && n == 3) {
		struct handle *h = find_handle(w[1]);
		static unsigned char v[VALUE_BYTES];
		if (!h || !h->is_pin) {
			reply("error no pin handle");
			return;
		}
		hex_decode(w[2], v);
		if (pwrite(h->memfd, v, VALUE_BYTES, 0) != VALUE_BYTES) {
			reply("error pwrite");
			return;
		}
		for (long k = 0; k < h->count; k++) {
			int res = uring_rw_fixed(&h->ring, IORING_OP_READ_FIXED, h->memfd,
						 h->addr + k * PAGE);
			if (res != VALUE_BYTES) {
				reply("%s", res < 0 ? errname(-res) : "EIO");
				return;
			}
		}
		reply("ok");
	} else if ((!strcmp(c, "put") || !strcmp(c, "unpin")) && n == 2) {
		struct handle *h = find_handle(w[1]);
		if (!h) {
			reply("error no handle");
			return;
		}
		close_handle(h);
		reply("ok");
	} else if (!strcmp(c, "mprotect") && n == 4) {
		int prot = !strcmp(w[3], "rw") ? PROT_READ | PROT_WRITE : PROT_READ;
		if (mprotect((void *)parse_addr(w[1]), parse_addr(w[2]), prot) < 0)
			reply("%s", errname(errno));
		else
			reply("ok");
	} else if (!strcmp(c, "madvise") && n == 4) {
		int adv = advice_of(w[3]);
		if (madvise((void *)parse_addr(w[1]), parse_addr(w[2]), adv) < 0)
			reply("%s", errname(errno));
		else
			reply("ok");
	} else if (!strcmp(c, "splitpmd") && n == 2) {
		/* a VMA split at a non-PMD-aligned address splits the PMD; merge the VMA back */
		void *p = (void *)(parse_addr(w[1]) + PAGE);
		if (madvise(p, PAGE, MADV_NOHUGEPAGE) < 0 || madvise(p, PAGE, MADV_HUGEPAGE) < 0)
			reply("%s", errname(errno));
		else
			reply("ok");
	} else if (!strcmp(c, "munmap") && n == 3) {
		if (munmap((void *)parse_addr(w[1]), parse_addr(w[2])) < 0)
			reply("%s", errname(errno));
		else
			reply("ok");
	} else if (!strcmp(c, "mremap") && n == 4) {
		/* move [old, old + len) to the unused slot at new (P mremap A[i] B) */
		void *to = mremap((void *)parse_addr(w[1]), parse_addr(w[2]), parse_addr(w[2]),
				  MREMAP_MAYMOVE | MREMAP_FIXED, (void *)parse_addr(w[3]));
		if (to == MAP_FAILED)
			reply("%s", errname(errno));
		else
			reply("ok");
	} else if (!strcmp(c, "exit") && n == 1) {
		for (int i = 0; i < MAXHANDLE; i++)
			if (handles[i].used)
				close_handle(&handles[i]);
		reply("ok");
		_exit(0);
	} else
		reply("error unknown command %s", c);
}

static void scenario_process(const char *name)
{
	char pname[64];
	snprintf(pname, sizeof pname, "%s", name);
	setup_signals_in_process();
	open_fifos(pname);
	static char line[4096];
	for (;;) {
		int r = read_line(&proc_in, line, sizeof line, -1);
		if (r < 0)
			_exit(0);
		proc_command(line);
	}
}

/* ================================================================== the controller */

struct proc {
	char name[64];
	int used;
	pid_t pid;
	int pidfd;
	int cmd_fd;
	struct lineio in;
};

static struct proc procs[MAXPROC];
static char handle_owner[MAXHANDLE][2][64]; /* handle name -> owner process */
static int kpageflags_fd = -1, kpagecount_fd = -1;
/* R/O long-term pins: the handle holding each gup_test instance, and the controller's copy
 * of the instance's file (the pin lives until STOP or the file's last close) */
static char rpin_slot[RPIN_SLOTS][64];
static int rpin_fd[RPIN_SLOTS] = {-1, -1, -1, -1};
static long rpin_pages[RPIN_SLOTS];

static void rpin_path(int k, char *path, size_t max)
{
	if (k == 0)
		snprintf(path, max, "/sys/kernel/debug/gup_test");
	else
		snprintf(path, max, "/sys/kernel/debug/gup_test%d", k);
}

static int rpin_find(const char *handle)
{
	for (int k = 0; k < RPIN_SLOTS; k++)
		if (rpin_slot[k][0] && !strcmp(rpin_slot[k], handle))
			return k;
	return -1;
}

static void rpin_stop(int k)
{
	if (rpin_fd[k] >= 0) {
		ioctl(rpin_fd[k], PIN_LONGTERM_TEST_STOP);
		close(rpin_fd[k]);
	}
	rpin_fd[k] = -1;
	rpin_slot[k][0] = 0;
}

/* H read of a R/O long-term pin: PIN_LONGTERM_TEST_READ copies the pinned pages out */
static void rpin_read(const char *seq, int k)
{
	static char hex[2 * VALUE_BYTES + 2];
	unsigned char *buf = calloc(rpin_pages[k], PAGE);
	uint64_t to = (uintptr_t)buf;
	if (!buf || ioctl(rpin_fd[k], PIN_LONGTERM_TEST_READ, &to) < 0) {
		out("@r %s %s", seq, errname(buf ? errno : ENOMEM));
		free(buf);
		return;
	}
	hex_encode(buf, VALUE_BYTES, hex);
	free(buf);
	out("@r %s val %s", seq, hex);
}

static struct proc *find_proc(const char *name)
{
	for (int i = 0; i < MAXPROC; i++)
		if (procs[i].used && !strcmp(procs[i].name, name))
			return &procs[i];
	return NULL;
}

static void set_owner(const char *h, const char *p)
{
	for (int i = 0; i < MAXHANDLE; i++)
		if (!handle_owner[i][0][0] || !strcmp(handle_owner[i][0], h)) {
			snprintf(handle_owner[i][0], 64, "%s", h);
			snprintf(handle_owner[i][1], 64, "%s", p);
			return;
		}
}

static const char *owner_of(const char *h)
{
	for (int i = 0; i < MAXHANDLE; i++)
		if (!strcmp(handle_owner[i][0], h))
			return handle_owner[i][1];
	return NULL;
}

static int make_fifos(const char *name)
{
	char c[128], r[128];
	snprintf(c, sizeof c, "/run/%s.c", name);
	snprintf(r, sizeof r, "/run/%s.r", name);
	unlink(c);
	unlink(r);
	if (mkfifo(c, 0600) < 0 || mkfifo(r, 0600) < 0)
		return -errno;
	return 0;
}

static struct proc *attach_proc(const char *name, pid_t pid)
{
	struct proc *p = NULL;
	for (int i = 0; i < MAXPROC; i++)
		if (!procs[i].used) {
			p = &procs[i];
			break;
		}
	if (!p)
		return NULL;
	memset(p, 0, sizeof *p);
	char c[128], r[128];
	snprintf(c, sizeof c, "/run/%s.c", name);
	snprintf(r, sizeof r, "/run/%s.r", name);
	p->cmd_fd = open(c, O_WRONLY);
	p->in.fd = open(r, O_RDONLY);
	unlink(c);
	unlink(r);
	if (p->cmd_fd < 0 || p->in.fd < 0)
		return NULL;
	p->used = 1;
	p->pid = pid;
	p->pidfd = syscall(__NR_pidfd_open, pid, 0);
	snprintf(p->name, sizeof p->name, "%s", name);
	return p;
}

static void forget_proc(struct proc *p)
{
	close(p->cmd_fd);
	close(p->in.fd);
	if (p->pidfd >= 0)
		close(p->pidfd);
	p->used = 0;
}

/* Wait until the process has exited (its mm is gone). */
static int wait_gone(struct proc *p, int timeout_ms)
{
	if (p->pidfd < 0)
		return 0;
	struct pollfd pf = {.fd = p->pidfd, .events = POLLIN};
	int r;
	do
		r = poll(&pf, 1, timeout_ms);
	while (r < 0 && errno == EINTR);
	return r > 0 ? 0 : -1;
}

static void kill_all(void)
{
	for (int i = 0; i < MAXPROC; i++)
		if (procs[i].used) {
			kill(procs[i].pid, SIGKILL);
			wait_gone(&procs[i], 5000);
			forget_proc(&procs[i]);
		}
	memset(handle_owner, 0, sizeof handle_owner);
	for (int k = 0; k < RPIN_SLOTS; k++)
		rpin_stop(k);
}

/* Send one command to a process; its reply goes to `rep`. 0 ok, <0 the process is lost. */
static int ask(struct proc *p, char *rep, size_t max, const char *fmt, ...)
{
	char buf[4096];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
	va_end(ap);
	buf[n++] = '\n';
	if (write(p->cmd_fd, buf, n) != n)
		return -1;
	int r = read_line(&p->in, rep, max, REPLY_TIMEOUT_MS);
	if (r == -2) {
		snprintf(rep, max, "timeout");
		return -2;
	}
	if (r < 0) {
		snprintf(rep, max, "lost");
		return -1;
	}
	return 0;
}

/* ---------------------------------------------------------------- observation */

static uint64_t pread64u(int fd, uint64_t index, int *ok)
{
	uint64_t v = 0;
	*ok = pread(fd, &v, 8, index * 8) == 8;
	return v;
}

static uint64_t pagemap_of(pid_t pid, unsigned long addr, int *ok)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/pagemap", (int)pid);
	int fd = open(path, O_RDONLY);
	if (fd < 0) {
		*ok = 0;
		return 0;
	}
	uint64_t v = pread64u(fd, addr / PAGE, ok);
	close(fd);
	return v;
}

#define PM_PRESENT (1ULL << 63)
#define PM_SWAP (1ULL << 62)
#define PM_PFN(x) ((x) & ((1ULL << 55) - 1))
#define KPF_COMPOUND_HEAD 15
#define KPF_COMPOUND_TAIL 16
#define KPF_THP 22
#define KPF_KSM 21
#define KPF_HWPOISON 19

static uint64_t kflags(uint64_t pfn)
{
	int ok;
	uint64_t v = pread64u(kpageflags_fd, pfn, &ok);
	return ok ? v : 0;
}

static uint64_t kcount(uint64_t pfn)
{
	int ok;
	uint64_t v = pread64u(kpagecount_fd, pfn, &ok);
	return ok ? v : 0;
}

/* The head frame of the compound page containing pfn (pfn itself for a small page). */
static uint64_t head_of(uint64_t pfn)
{
	uint64_t h = pfn;
	for (int i = 0; i < 512 && h > 0 && (kflags(h) >> KPF_COMPOUND_TAIL & 1); i++)
		h--;
	return h;
}

static uint64_t folio_pages(uint64_t head)
{
	if (!(kflags(head) >> KPF_COMPOUND_HEAD & 1))
		return 1;
	uint64_t n = 1;
	while (n < 512 && (kflags(head + n) >> KPF_COMPOUND_TAIL & 1))
		n++;
	return n;
}

/*
 * A page's own struct page, read through /proc/kcore: kpageflags shows the folio's
 * flags on every page of a large folio, so a tail page's own PG_anon_exclusive is
 * read from its struct page in the vmemmap (x86-64, SPARSEMEM_VMEMMAP: the struct
 * page of frame pfn is at vmemmap_base + pfn * 64; flags is its first word,
 * compound_head, the head's struct page + 1 on a tail page, its second). The
 * Python side checks the layout on every observation against kpageflags.
 */
#define STRUCT_PAGE 64
static uint64_t vmemmap;

static void kcore_setup(void)
{
	const char *err = kcore_open();
	if (err) {
		out("@kcore none open %s", err);
		return;
	}
	uint64_t sym = kallsyms_address("vmemmap_base");
	if (!sym || kcore_read(sym, &vmemmap, 8) < 0) {
		out("@kcore none vmemmap_base %llx", (unsigned long long)sym);
		vmemmap = 0;
		return;
	}
	out("@kcore vmemmap=%llx segments=%d", (unsigned long long)vmemmap, nksegs);
}

/* " pf=FLAGS pfh=HEAD" (pfh: the frame a tail's compound_head points to, or -), or "" */
static void own_page(uint64_t pfn, char *buf, size_t max)
{
	uint64_t w[2];
	buf[0] = 0;
	if (!vmemmap || kcore_read(vmemmap + pfn * STRUCT_PAGE, w, sizeof w) < 0)
		return;
	if (w[1] & 1)
		snprintf(buf, max, " pf=%llx pfh=%llx", (unsigned long long)w[0],
			 (unsigned long long)((w[1] - 1 - vmemmap) / STRUCT_PAGE));
	else
		snprintf(buf, max, " pf=%llx pfh=-", (unsigned long long)w[0]);
}

/* AnonHugePages (kB) of the VMA of pid containing addr; -1 if none. */
static long anon_huge_kb(pid_t pid, unsigned long addr)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/smaps", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	char line[512];
	int in = 0;
	long kb = -1;
	while (fgets(line, sizeof line, f)) {
		unsigned long s, e;
		if (sscanf(line, "%lx-%lx ", &s, &e) == 2 && strchr(line, '-') < strchr(line, ' ')) {
			if (in)
				break;
			in = addr >= s && addr < e;
			continue;
		}
		if (in && !strncmp(line, "AnonHugePages:", 14)) {
			kb = strtol(line + 14, NULL, 10);
			break;
		}
	}
	fclose(f);
	return kb;
}

static void observe(const char *seq, struct proc *p, const char *id, unsigned long addr)
{
	int ok;
	uint64_t pm = pagemap_of(p->pid, addr, &ok);
	if (!ok) {
		out("@o %s %s gone", seq, id);
		return;
	}
	uint64_t kf = 0, hkf = 0, kc = 0, head = 0;
	if (pm & PM_PRESENT) {
		uint64_t pfn = PM_PFN(pm);
		kf = kflags(pfn);
		kc = kcount(pfn);
		head = head_of(pfn);
		hkf = kflags(head);
	}
	long huge = anon_huge_kb(p->pid, addr);
	char np[32] = "", own[96] = "";
	if (pm & PM_PRESENT) {
		snprintf(np, sizeof np, " np=%llu", (unsigned long long)folio_pages(head));
		own_page(PM_PFN(pm), own, sizeof own);
	}
	out("@o %s %s pm=%llx kf=%llx head=%llx hkf=%llx kc=%llu ahp=%ld%s%s", seq, id,
	    (unsigned long long)pm, (unsigned long long)kf, (unsigned long long)head,
	    (unsigned long long)hkf, (unsigned long long)kc, huge, np, own);
}

/* ---------------------------------------------------------------- kernel actions */

static long read_stat(const char *dir, const char *name)
{
	char path[192];
	snprintf(path, sizeof path, "%s%s", dir, name);
	return read_long(path);
}

static int swapout(struct proc *p, unsigned long addr, unsigned long map, unsigned long len,
		   char *why, size_t whymax)
{
	int ok;
	uint64_t pm = pagemap_of(p->pid, addr, &ok);
	if (!ok || !(pm & PM_PRESENT)) {
		snprintf(why, whymax, "skipped not-present");
		return 0;
	}
	uint64_t pfn = PM_PFN(pm), head = head_of(pfn), npages = folio_pages(head);
	/* MADV_PAGEOUT leaves alone folios that another mapping shares */
	for (uint64_t k = 0; k < npages; k++)
		if (kcount(head + k) > 1) {
			snprintf(why, whymax, "inexpressible MADV_PAGEOUT skips a folio mapped by "
				 "more than one process (map count %llu)",
				 (unsigned long long)kcount(head + k));
			return 0;
		}
	/* the virtual ranges of this process that map the folio */
	struct iovec iov[512];
	int niov = 0;
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/pagemap", (int)p->pid);
	int fd = open(path, O_RDONLY);
	for (unsigned long a = map; fd >= 0 && a < map + len; a += PAGE) {
		uint64_t e = pread64u(fd, a / PAGE, &ok);
		if (!ok || !(e & PM_PRESENT) || PM_PFN(e) < head || PM_PFN(e) >= head + npages)
			continue;
		if (niov && (unsigned long)iov[niov - 1].iov_base + iov[niov - 1].iov_len == a)
			iov[niov - 1].iov_len += PAGE;
		else if (niov < 512) {
			iov[niov].iov_base = (void *)a;
			iov[niov].iov_len = PAGE;
			niov++;
		}
	}
	if (fd >= 0)
		close(fd);
	/* an mTHP: its size's swap-out counters say whether it went out whole */
	char stat[128] = "";
	long out0 = -1, fb0 = -1, split0 = -1, partial = -1;
	if (npages > 1 && npages < 512) {
		snprintf(stat, sizeof stat, THP_SYSFS "/hugepages-%llukB/stats/",
			 (unsigned long long)(npages * PAGE / 1024));
		out0 = read_stat(stat, "swpout");
		fb0 = read_stat(stat, "swpout_fallback");
		split0 = read_stat(stat, "split");
		partial = read_stat(stat, "nr_anon_partially_mapped");
	}
	long r = syscall(__NR_process_madvise, p->pidfd, iov, niov, MADV_PAGEOUT, 0);
	if (r < 0) {
		snprintf(why, whymax, "error process_madvise %s", errname(errno));
		return 0;
	}
	pm = pagemap_of(p->pid, addr, &ok);
	snprintf(why, whymax, "%s", (pm & PM_SWAP) && !(pm & PM_PRESENT) ? "ok" : "skipped");
	if (out0 >= 0)
		snprintf(why + strlen(why), whymax - strlen(why),
			 " %llu-page folio: swpout +%ld swpout_fallback +%ld split +%ld"
			 " (nr_anon_partially_mapped was %ld)",
			 (unsigned long long)npages, read_stat(stat, "swpout") - out0,
			 read_stat(stat, "swpout_fallback") - fb0, read_stat(stat, "split") - split0,
			 partial);
	return 0;
}

static int node_of(pid_t pid, unsigned long addr)
{
	void *pages[1] = {(void *)addr};
	int status[1] = {-1};
	if (syscall(__NR_move_pages, pid, 1, pages, NULL, status, 0) < 0)
		return -errno;
	return status[0];
}

static void migrate(struct proc *p, unsigned long addr, char *res, size_t max)
{
	int ok;
	uint64_t before = pagemap_of(p->pid, addr, &ok);
	int node = node_of(p->pid, addr);
	if (node < 0) {
		snprintf(res, max, "skipped node %d", node);
		return;
	}
	void *pages[1] = {(void *)addr};
	int nodes[1] = {node == 0 ? 1 : 0};
	int status[1] = {-1};
	long r = syscall(__NR_move_pages, p->pid, 1, pages, nodes, status, MPOL_MF_MOVE_ALL_);
	uint64_t after = pagemap_of(p->pid, addr, &ok);
	int now = node_of(p->pid, addr);
	if (r >= 0 && now == nodes[0] && PM_PFN(after) != PM_PFN(before))
		snprintf(res, max, "ok");
	else
		snprintf(res, max, "skipped r=%ld status=%d", r, status[0]);
}

static void ksm(struct proc *p, unsigned long a1, struct proc *q, unsigned long a2, char *res,
		size_t max)
{
	char rep[256];
	if (ask(p, rep, sizeof rep, "madvise %lx %lx mergeable", a1, PAGE) < 0 ||
	    ask(q, rep, sizeof rep, "madvise %lx %lx mergeable", a2, PAGE) < 0) {
		snprintf(res, max, "error madvise %s", rep);
		return;
	}
	long start = read_long("/sys/kernel/mm/ksm/full_scans");
	write_file("/sys/kernel/mm/ksm/run", "1");
	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int merged = 0;
	for (;;) {
		long scans = read_long("/sys/kernel/mm/ksm/full_scans");
		int ok1, ok2;
		uint64_t e1 = pagemap_of(p->pid, a1, &ok1), e2 = pagemap_of(q->pid, a2, &ok2);
		merged = (e1 & PM_PRESENT) && (e2 & PM_PRESENT) && PM_PFN(e1) == PM_PFN(e2) &&
			 (kflags(PM_PFN(e1)) >> KPF_KSM & 1);
		if (merged || scans >= start + 4)
			break;
		clock_gettime(CLOCK_MONOTONIC, &t);
		if (t.tv_sec - t0.tv_sec > 30)
			break;
		usleep(2000);
	}
	write_file("/sys/kernel/mm/ksm/run", "0");
	snprintf(res, max, "%s", merged ? "ok" : "skipped");
}

static void split_folio(struct proc *p, unsigned long addr, unsigned long len, char *res,
			size_t max)
{
	int ok;
	uint64_t pm = pagemap_of(p->pid, addr, &ok);
	if (!(pm & PM_PRESENT) || !(kflags(PM_PFN(pm)) >> KPF_THP & 1)) {
		snprintf(res, max, "skipped not-thp");
		return;
	}
	int e = write_file("/sys/kernel/debug/split_huge_pages", "%d,0x%lx,0x%lx", (int)p->pid,
			   addr, addr + len);
	pm = pagemap_of(p->pid, addr, &ok);
	if (e < 0)
		snprintf(res, max, "skipped error %s", errname(-e));
	else if ((pm & PM_PRESENT) && (kflags(PM_PFN(pm)) >> KPF_THP & 1))
		snprintf(res, max, "skipped still-thp");
	else
		snprintf(res, max, "ok");
}

static void poison(struct proc *p, unsigned long addr, char *res, size_t max)
{
	int ok;
	uint64_t pm = pagemap_of(p->pid, addr, &ok);
	if (!(pm & PM_PRESENT)) {
		snprintf(res, max, "skipped not-present");
		return;
	}
	uint64_t pfn = PM_PFN(pm);
	int e = write_file("/sys/kernel/debug/hwpoison/corrupt-pfn", "0x%llx",
			   (unsigned long long)pfn);
	pm = pagemap_of(p->pid, addr, &ok);
	if (e < 0 && e != -EBUSY)
		snprintf(res, max, "skipped error %s", errname(-e));
	else if (!(pm & PM_PRESENT))
		snprintf(res, max, "ok");
	else
		snprintf(res, max, "skipped %s", e ? errname(-e) : "still-mapped");
}

/* ---------------------------------------------------------------- the job */

struct scen {
	int stopped;
	char name[256];
	char stop_after[32]; /* stop once this statement's observations are done */
	char stop_why[256];
};

static void proc_reply_to_result(const char *seq, struct proc *p, int r, const char *rep,
				 struct scen *s)
{
	if (r < 0) {
		out("@r %s lost %s (%s)", seq, p ? p->name : "?", rep);
		s->stopped = 1;
		return;
	}
	out("@r %s %s", seq, rep);
}

static void controller_command(char **w, int n, struct scen *s)
{
	const char *seq = w[0], *c = w[1];
	char rep[4096];
	if (!strcmp(c, "spawn") && n == 3) {
		if (make_fifos(w[2]) < 0) {
			out("@r %s error mkfifo", seq);
			s->stopped = 1;
			return;
		}
		pid_t pid = fork();
		if (pid == 0) {
			syscall(__NR_close_range, 3, ~0U, 0);
			scenario_process(w[2]);
		}
		struct proc *p = attach_proc(w[2], pid);
		out(p ? "@r %s ok" : "@r %s error attach", seq);
		if (!p)
			s->stopped = 1;
		return;
	}
	if (!strcmp(c, "fork") && n == 4) {
		struct proc *p = find_proc(w[2]);
		if (!p || make_fifos(w[3]) < 0) {
			out("@r %s error fork", seq);
			s->stopped = 1;
			return;
		}
		int r = ask(p, rep, sizeof rep, "fork %s", w[3]);
		if (r < 0 || strncmp(rep, "ok ", 3)) {
			proc_reply_to_result(seq, p, r < 0 ? r : 0, rep, s);
			return;
		}
		struct proc *q = attach_proc(w[3], (pid_t)atoi(rep + 3));
		out(q ? "@r %s ok" : "@r %s error attach", seq);
		if (!q)
			s->stopped = 1;
		return;
	}
	if (!strcmp(c, "observe") && n == 5) {
		struct proc *p = find_proc(w[2]);
		if (!p)
			out("@o %s %s gone", seq, w[3]);
		else
			observe(seq, p, w[3], parse_addr(w[4]));
		return;
	}
	if ((!strcmp(c, "hread") || !strcmp(c, "unpin")) && n == 3 && rpin_find(w[2]) >= 0) {
		int k = rpin_find(w[2]);
		if (!strcmp(c, "hread"))
			rpin_read(seq, k);
		else {
			rpin_stop(k);
			out("@r %s ok", seq);
		}
		return;
	}
	if ((!strcmp(c, "hread") || !strcmp(c, "hwrite") || !strcmp(c, "put") ||
	     !strcmp(c, "unpin")) && n >= 3) {
		const char *o = owner_of(w[2]);
		struct proc *p = o ? find_proc(o) : NULL;
		if (!p) {
			out("@r %s error no owner of %s", seq, w[2]);
			return;
		}
		char cmd[512];
		snprintf(cmd, sizeof cmd, "%s %s%s%s", c, w[2], n > 3 ? " " : "", n > 3 ? w[3] : "");
		int r = ask(p, rep, sizeof rep, "%s", cmd);
		proc_reply_to_result(seq, p, r, rep, s);
		return;
	}
	if (!strcmp(c, "rpin") && n == 8) {
		/* seq rpin P H ADDR COUNT fast|slow odirect|-: a free gup_test instance,
		 * pinned by P */
		struct proc *p = find_proc(w[2]);
		char path[64];
		int k = 0;
		while (k < RPIN_SLOTS && rpin_slot[k][0])
			k++;
		rpin_path(0, path, sizeof path);
		if (access(path, F_OK) != 0 && p && !strcmp(w[7], "odirect") &&
		    access("/dev/ram0", F_OK) == 0) {
			/* no gup_test: the pin an O_DIRECT write takes, then the scenario stops */
			int r = ask(p, rep, sizeof rep, "odirect %s %s", w[4], w[5]);
			proc_reply_to_result(seq, p, r, rep, s);
			snprintf(s->stop_after, sizeof s->stop_after, "%s", seq);
			snprintf(s->stop_why, sizeof s->stop_why, "no gup_test module: the R/O pin was "
				 "an O_DIRECT write to a ramdisk, which holds it only while the I/O runs");
			return;
		}
		if (access(path, F_OK) != 0) {
			out("@r %s inexpressible no gup_test module in this kernel (a R/O long-term "
			    "pin needs mm/gup_test.c)", seq);
			s->stopped = 1;
			return;
		}
		if (k < RPIN_SLOTS)
			rpin_path(k, path, sizeof path);
		if (k == RPIN_SLOTS || access(path, F_OK) != 0) {
			out("@r %s inexpressible more R/O long-term pins held at once than gup_test "
			    "instances loaded (%d)", seq, k);
			s->stopped = 1;
			return;
		}
		if (!p) {
			out("@r %s error no process %s", seq, w[2]);
			return;
		}
		int r = ask(p, rep, sizeof rep, "rpin %s %s %s %s", w[4], w[5], w[6], path);
		if (r == 0 && !strncmp(rep, "ok ", 3)) {
			rpin_fd[k] = syscall(__NR_pidfd_getfd, p->pidfd, atoi(rep + 3), 0);
			if (rpin_fd[k] < 0) {
				out("@r %s error pidfd_getfd %s", seq, errname(errno));
				s->stopped = 1;
				return;
			}
			snprintf(rpin_slot[k], sizeof rpin_slot[k], "%s", w[3]);
			rpin_pages[k] = strtol(w[5], NULL, 10);
			snprintf(rep, sizeof rep, "ok");
		}
		proc_reply_to_result(seq, p, r, rep, s);
		return;
	}
	if (!strcmp(c, "clearrefs") && n == 3) {
		struct proc *p = find_proc(w[2]);
		char path[64];
		snprintf(path, sizeof path, "/proc/%d/clear_refs", p ? (int)p->pid : 0);
		int e = p ? write_file(path, "4") : -ESRCH;
		out(e ? "@r %s error %d" : "@r %s ok", seq, e);
		return;
	}
	if (!strcmp(c, "swapout") && n == 6) {
		struct proc *p = find_proc(w[2]);
		if (!p) {
			out("@r %s error no process", seq);
			return;
		}
		swapout(p, parse_addr(w[3]), parse_addr(w[4]), parse_addr(w[5]), rep, sizeof rep);
		out("@r %s %s", seq, rep);
		if (!strncmp(rep, "inexpressible", 13))
			s->stopped = 1;
		return;
	}
	if (!strcmp(c, "migrate") && n == 4) {
		struct proc *p = find_proc(w[2]);
		if (!p) {
			out("@r %s error no process", seq);
			return;
		}
		migrate(p, parse_addr(w[3]), rep, sizeof rep);
		out("@r %s %s", seq, rep);
		return;
	}
	if (!strcmp(c, "ksm") && n == 6) {
		struct proc *p = find_proc(w[2]), *q = find_proc(w[4]);
		if (!p || !q) {
			out("@r %s error no process", seq);
			return;
		}
		ksm(p, parse_addr(w[3]), q, parse_addr(w[5]), rep, sizeof rep);
		out("@r %s %s", seq, rep);
		return;
	}
	if (!strcmp(c, "splitpmd") && n == 4) {
		struct proc *p = find_proc(w[2]);
		unsigned long a = parse_addr(w[3]);
		if (!p) {
			out("@r %s error no process", seq);
			return;
		}
		if (anon_huge_kb(p->pid, a) <= 0) {
			out("@r %s skipped not-pmd-mapped", seq);
			return;
		}
		int r = ask(p, rep, sizeof rep, "splitpmd %lx", a);
		proc_reply_to_result(seq, p, r, rep, s);
		return;
	}
	if (!strcmp(c, "splitfolio") && n == 5) {
		struct proc *p = find_proc(w[2]);
		if (!p) {
			out("@r %s error no process", seq);
			return;
		}
		split_folio(p, parse_addr(w[3]), parse_addr(w[4]), rep, sizeof rep);
		out("@r %s %s", seq, rep);
		return;
	}
	if (!strcmp(c, "poison") && n == 4) {
		struct proc *p = find_proc(w[2]);
		if (!p) {
			out("@r %s error no process", seq);
			return;
		}
		poison(p, parse_addr(w[3]), rep, sizeof rep);
		out("@r %s %s", seq, rep);
		return;
	}
	/* everything else is carried out by the process named in w[2] */
	if (n < 3) {
		out("@r %s error bad command", seq);
		return;
	}
	struct proc *p = find_proc(w[2]);
	if (!p) {
		out("@r %s error no process %s", seq, w[2]);
		return;
	}
	char cmd[4096] = "";
	size_t off = 0;
	off += snprintf(cmd + off, sizeof cmd - off, "%s", c);
	for (int i = 3; i < n; i++)
		off += snprintf(cmd + off, sizeof cmd - off, " %s", w[i]);
	if ((!strcmp(c, "get") || !strcmp(c, "pin")) && n >= 4)
		set_owner(w[3], w[2]);
	int r = ask(p, rep, sizeof rep, "%s", cmd);
	if (!strcmp(c, "exit")) {
		if (r == 0 && wait_gone(p, 10000) < 0)
			snprintf(rep, sizeof rep, "error still running");
		forget_proc(p);
		out("@r %s %s", seq, r == 0 ? rep : "lost");
		return;
	}
	proc_reply_to_result(seq, p, r, rep, s);
}

/*
 * mTHP sizes: every hugepages-<size>kB/enabled below the PMD size says "never",
 * then each size of `kb_list` ("16,32", or "-" for none) "madvise". Returns the
 * number of sizes that could not be set (their directory or enabled file is missing).
 */
#define PMD_KB 2048

static int set_mthp_sizes(const char *kb_list)
{
	char path[128];
	for (int kb = 8; kb < PMD_KB; kb *= 2) {
		snprintf(path, sizeof path, THP_SYSFS "/hugepages-%dkB/enabled", kb);
		if (access(path, F_OK) == 0)
			write_file(path, "never");
	}
	if (!strcmp(kb_list, "-"))
		return 0;
	int bad = 0;
	char copy[256];
	snprintf(copy, sizeof copy, "%s", kb_list);
	char *save = NULL;
	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		snprintf(path, sizeof path, THP_SYSFS "/hugepages-%skB/enabled", t);
		int e = write_file(path, "madvise");
		if (e < 0) {
			out("@log mthp: cannot set %s: %s", path, strerror(-e));
			bad++;
		}
	}
	return bad;
}

/*
 * zswap on and off once, before anything is swapped: zswap_never_enabled() is
 * false from then on, so do_swap_page's alloc_swap_folio swaps in small folios
 * from zram (6.12 does not swap a large folio in while zswap may hold part of it),
 * while every page still goes to zram (zswap is off again).
 */
static void zswap_once(void)
{
	const char *p = "/sys/module/zswap/parameters/enabled";
	int on = write_file(p, "1");
	int off = write_file(p, "0");
	out("@zswap once on=%d off=%d", on, off);
}

static void reset_machine(void)
{
	kill_all();
	set_mthp_sizes("-");
	write_file("/sys/kernel/mm/ksm/run", "0");
	write_file("/proc/sys/vm/nr_hugepages", "16");
}

static void run_job(const char *path)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0) {
		out("@fatal no job file %s", path);
		return;
	}
	static struct lineio job;
	job.fd = fd;
	static char line[8192];
	struct scen s = {0};
	while (read_line(&job, line, sizeof line, -1) == 0) {
		char *w[16];
		char copy[8192];
		snprintf(copy, sizeof copy, "%s", line);
		int n = split_words(copy, w, 16);
		if (n == 0)
			continue;
		if (!strcmp(w[0], "scenario")) {
			reset_machine();
			memset(&s, 0, sizeof s);
			snprintf(s.name, sizeof s.name, "%s", n > 1 ? w[1] : "?");
			out("@begin %s", s.name);
			continue;
		}
		if (!strcmp(w[0], "mthp") && n == 2) {
			if (set_mthp_sizes(w[1])) {
				s.stopped = 1;
				out("@stopped %s at mthp sizes %s", s.name, w[1]);
			}
			continue;
		}
		if (!strcmp(w[0], "zswap") && n == 2) {
			if (!strcmp(w[1], "once"))
				zswap_once();
			else
				out("@zswap never");
			continue;
		}
		if (!strcmp(w[0], "end")) {
			kill_all();
			out("@end %s", s.name);
			continue;
		}
		if (s.stopped)
			continue;
		if (n < 2)
			continue;
		if (s.stop_after[0] && strcmp(w[0], s.stop_after)) {
			s.stopped = 1;
			out("@stopped %s at %s (%s)", s.name, s.stop_after, s.stop_why);
			continue;
		}
		controller_command(w, n, &s);
		if (s.stopped)
			out("@stopped %s at %s", s.name, w[0]);
	}
	close(fd);
}

/* ---------------------------------------------------------------- machine setup */

static void load_modules(void)
{
	FILE *f = fopen("/modules.txt", "r");
	char name[256];
	if (!f)
		return;
	while (fgets(name, sizeof name, f)) {
		name[strcspn(name, "\n")] = 0;
		if (!name[0])
			continue;
		int fd = open(name, O_RDONLY);
		if (fd < 0 || syscall(__NR_finit_module, fd, "", 0) < 0)
			out("@log module %s: %s", name, strerror(errno));
		if (fd >= 0)
			close(fd);
	}
	fclose(f);
}

static int setup_swap(void)
{
	write_file("/sys/block/zram0/comp_algorithm", "lz4");
	if (write_file("/sys/block/zram0/disksize", "%lu", 128UL << 20) < 0)
		return -1;
	int fd = -1;
	for (int i = 0; i < 100 && fd < 0; i++) {
		fd = open("/dev/zram0", O_RDWR);
		if (fd < 0)
			usleep(10000);
	}
	if (fd < 0)
		return -2;
	static unsigned char hdr[PAGE];
	memset(hdr, 0, sizeof hdr);
	uint32_t *info = (uint32_t *)(hdr + 1024);
	info[0] = 1;				 /* version */
	info[1] = (uint32_t)((128UL << 20) / PAGE - 1); /* last_page */
	info[2] = 0;				 /* nr_badpages */
	memcpy(hdr + PAGE - 10, "SWAPSPACE2", 10);
	if (pwrite(fd, hdr, PAGE, 0) != (ssize_t)PAGE)
		return -3;
	fsync(fd);
	close(fd);
	if (swapon("/dev/zram0", 0) < 0)
		return -errno;
	return 0;
}

int main(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	mkdir("/proc", 0755);
	mkdir("/sys", 0755);
	mkdir("/dev", 0755);
	mkdir("/run", 0755);
	mount("proc", "/proc", "proc", 0, NULL);
	mount("sysfs", "/sys", "sysfs", 0, NULL);
	mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
	mount("debugfs", "/sys/kernel/debug", "debugfs", 0, NULL);
	mount("tmpfs", "/run", "tmpfs", 0, NULL);
	out_fd = open("/dev/ttyS1", O_WRONLY | O_NOCTTY);
	if (out_fd < 0)
		out_fd = 1;
	else {
		struct termios t;
		if (tcgetattr(out_fd, &t) == 0) {
			cfmakeraw(&t);
			cfsetospeed(&t, B115200);
			tcsetattr(out_fd, TCSANOW, &t);
		}
	}
	signal(SIGCHLD, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	out("@hello anoncheck");
	char rel[256] = "";
	int fd = open("/proc/sys/kernel/osrelease", O_RDONLY);
	if (fd >= 0) {
		ssize_t n = read(fd, rel, sizeof rel - 1);
		if (n > 0)
			rel[n - 1] = 0;
		close(fd);
	}
	out("@kernel %s", rel);
	load_modules();
	int sw = setup_swap();
	out("@swap %d", sw);
	/* THP: always; khugepaged must not collapse behind our back: it scans an mm
	 * of ours (below) once and then sleeps for ~49 days. */
	write_file("/sys/kernel/mm/transparent_hugepage/enabled", "always");
	write_file("/sys/kernel/mm/transparent_hugepage/defrag", "madvise");
	write_file("/sys/kernel/mm/transparent_hugepage/khugepaged/pages_to_scan", "1");
	write_file("/sys/kernel/mm/transparent_hugepage/khugepaged/scan_sleep_millisecs",
		   "4294967295");
	write_file("/sys/kernel/mm/transparent_hugepage/khugepaged/alloc_sleep_millisecs",
		   "4294967295");
	void *dummy = mmap(NULL, 4UL << 20, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (dummy != MAP_FAILED) {
		madvise(dummy, 4UL << 20, MADV_DONTFORK);
		madvise(dummy, 4UL << 20, MADV_HUGEPAGE);
	}
	usleep(100000);
	write_file("/sys/kernel/mm/ksm/pages_to_scan", "5000");
	write_file("/sys/kernel/mm/ksm/sleep_millisecs", "1");
	write_file("/sys/kernel/mm/ksm/merge_across_nodes", "1");
	write_file("/proc/sys/vm/nr_hugepages", "16");
	out("@hugepages %ld", read_long("/proc/sys/vm/nr_hugepages"));
	out("@nodes %s", access("/sys/devices/system/node/node1", F_OK) == 0 ? "2" : "1");
	out("@hwpoison %s", access("/sys/kernel/debug/hwpoison/corrupt-pfn", F_OK) == 0 ? "yes"
											  : "no");
	kpageflags_fd = open("/proc/kpageflags", O_RDONLY);
	kpagecount_fd = open("/proc/kpagecount", O_RDONLY);
	kcore_setup();
	/* NUMA balancing would make PTEs PROT_NONE behind the scenario's back (the fake
	 * nodes make it active): a write to such a PTE faults, and the page may move */
	out("@numa_balancing %d", write_file("/proc/sys/kernel/numa_balancing", "0"));
	out("@gup_test %s", access("/sys/kernel/debug/gup_test", F_OK) == 0 ? "yes" : "no");
	run_job("/job.txt");
	kill_all();
	out("@done");
	sync();
	reboot(RB_POWER_OFF);
	return 0;
}
