// SPDX-License-Identifier: MIT
/*
 * selftests-init: /init of the VM in which `python -m anonlib selftests-check`
 * runs the kernel's own mm selftests (cow, gup_longterm, built from the 6.12
 * source; see anonlib/kernelcheck/selftests.py and docs/real-kernel.md).
 *
 * It sets the machine up as the tests expect: proc, sysfs, devtmpfs, debugfs,
 * a tmpfs on /tmp (the work directory); the modules of /modules.txt (zram with
 * its compressors, and gup_test.ko, mm/gup_test.c built out of tree, since
 * Debian's kernel lacks CONFIG_GUP_TEST); 128 MiB of swap on zram; THP
 * "always" (cow.c sets every mTHP size itself through thp_settings); 2 MiB
 * (1 GiB ones are reserved on the kernel command line; one more is tried
 * here if the boot got fewer than two). Then it
 * runs every program named in /tests.txt with its output (TAP) on ttyS1,
 * between "@begin NAME" and "@end NAME STATUS" lines, prints "@done" and
 * powers the VM off.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/swap.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#define PAGE 4096UL
#define SWAP_BYTES (128UL << 20)

static int out_fd = 1;

static void out(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (n > (int)sizeof buf - 2)
		n = sizeof buf - 2;
	buf[n++] = '\n';
	if (write(out_fd, buf, n) < 0)
		return;
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
		return -1;
	ssize_t w = write(fd, buf, strlen(buf));
	close(fd);
	return w < 0 ? -1 : 0;
}

static void read_file(const char *path, char *buf, size_t len)
{
	buf[0] = 0;
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return;
	ssize_t n = read(fd, buf, len - 1);
	close(fd);
	if (n > 0) {
		buf[n] = 0;
		buf[strcspn(buf, "\n")] = 0;
	}
}

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
	if (write_file("/sys/block/zram0/disksize", "%lu", SWAP_BYTES) < 0)
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
	info[0] = 1;				/* version */
	info[1] = (uint32_t)(SWAP_BYTES / PAGE - 1); /* last_page */
	memcpy(hdr + PAGE - 10, "SWAPSPACE2", 10);
	if (pwrite(fd, hdr, PAGE, 0) != (ssize_t)PAGE)
		return -3;
	fsync(fd);
	close(fd);
	if (swapon("/dev/zram0", 0) < 0)
		return -errno;
	return 0;
}

static void run_test(const char *name)
{
	char path[300];
	snprintf(path, sizeof path, "/%s", name);
	out("@begin %s", name);
	pid_t pid = fork();
	if (pid == 0) {
		dup2(out_fd, 1);
		dup2(out_fd, 2);
		if (chdir("/tmp") < 0)
			_exit(126);
		char *argv[] = { path, NULL };
		char *envp[] = { "PATH=/", NULL };
		execve(path, argv, envp);
		_exit(127);
	}
	int status = 0;
	if (pid < 0 || waitpid(pid, &status, 0) < 0)
		status = -1;
	if (status >= 0 && WIFEXITED(status))
		out("@end %s %d", name, WEXITSTATUS(status));
	else
		out("@end %s signal-%d", name, status >= 0 && WIFSIGNALED(status)
						? WTERMSIG(status) : -1);
}

int main(void)
{
	mkdir("/proc", 0755);
	mkdir("/sys", 0755);
	mkdir("/dev", 0755);
	mkdir("/tmp", 01777);
	mount("proc", "/proc", "proc", 0, NULL);
	mount("sysfs", "/sys", "sysfs", 0, NULL);
	mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
	mount("debugfs", "/sys/kernel/debug", "debugfs", 0, NULL);
	mount("tmpfs", "/tmp", "tmpfs", 0, NULL);
	out_fd = open("/dev/ttyS1", O_WRONLY | O_NOCTTY);
	if (out_fd < 0) {
		out_fd = 1;
	} else {
		struct termios t;
		if (tcgetattr(out_fd, &t) == 0) {
			cfmakeraw(&t);
			cfsetospeed(&t, B115200);
			tcsetattr(out_fd, TCSANOW, &t);
		}
	}
	char buf[256];
	out("@hello selftests");
	read_file("/proc/sys/kernel/osrelease", buf, sizeof buf);
	out("@kernel %s", buf);
	load_modules();
	out("@swap %d", setup_swap());
	write_file("/sys/kernel/mm/transparent_hugepage/enabled", "always");
	write_file("/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages", "4");
	read_file("/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages", buf, sizeof buf);
	out("@hugetlb 2048kB %s", buf);
	/* Two 1 GiB pages (cow.c needs two of a size), if the boot did not get them. */
	write_file("/sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages", "2");
	read_file("/sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages", buf, sizeof buf);
	out("@hugetlb 1048576kB %s", buf[0] ? buf : "0");
	out("@gup_test %s", access("/sys/kernel/debug/gup_test", F_OK) == 0 ? "yes" : "no");
	FILE *f = fopen("/tests.txt", "r");
	while (f && fgets(buf, sizeof buf, f)) {
		buf[strcspn(buf, "\n")] = 0;
		if (buf[0])
			run_test(buf);
	}
	if (f)
		fclose(f);
	out("@done");
	sync();
	reboot(RB_POWER_OFF);
	return 0;
}
