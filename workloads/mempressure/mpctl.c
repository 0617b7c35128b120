// SPDX-License-Identifier: GPL-2.0
/*
 * mpctl - drive memory.pressure_shrinker step by step.
 *
 * Runs the operations given on the command line in order, in one process,
 * so that the eventfds it creates stay alive between operations, and prints
 * one line per operation:
 *
 *   OP <op> ok [key=value ...]
 *   OP <op> err <ERRNO_NAME> <strerror>
 *
 * See README.md for the operations. Exit status: 0 if every operation ran
 * (errors are reported, not fatal), 2 on a usage error, 3 if
 * memory.pressure_shrinker does not exist, 1 if it cannot be opened for
 * another reason.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_CGROUP "/sys/fs/cgroup/memory"

static const char *cgroup = DEFAULT_CGROUP;
static char shrinker_path[4096];
static char control_path[4096];
static int sfd = -1;	/* memory.pressure_shrinker, O_RDWR */
static int cur = -1;	/* current eventfd */

struct opdef {
	const char *name;
	int nargs;
};

static const struct opdef opdefs[] = {
	{ "register", 1 },
	{ "register-raw", 2 },
	{ "add", 1 },
	{ "write", 1 },
	{ "add-unregistered", 1 },
	{ "read", 0 },
	{ "read-all", 0 },
	{ "hog", 2 },
	{ "wait", 1 },
	{ "sleep", 1 },
	{ "close", 0 },
};

static const char *errname(int err)
{
	const char *name = strerrorname_np(err);

	return name ? name : "EUNKNOWN";
}

static void op_err(const char *op, int err)
{
	printf("OP %s err %s %s\n", op, errname(err), strerror(err));
}

static void usage(void)
{
	fprintf(stderr,
		"usage: mpctl [--cgroup PATH] OP...\n"
		"ops: register <chunk> | register-raw <eventfd|devnull> <chunk-text>\n"
		"     add <text> | write <text> | add-unregistered <text>\n"
		"     read | read-all | hog <MiB> <hold_ms> | wait <ms> | sleep <ms>\n"
		"     close\n");
	exit(2);
}

/* Write the whole string in one write(2); returns 0 or an errno. */
static int write_str(int fd, const char *s)
{
	ssize_t n = write(fd, s, strlen(s));

	if (n < 0)
		return errno;
	if ((size_t)n != strlen(s))
		return EIO;
	return 0;
}

/* The eventfd-id of an eventfd, from /proc/self/fdinfo; -1 if unknown. */
static long eventfd_id(int fd)
{
	char path[64], line[256];
	long id = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "eventfd-id: %ld", &id) == 1)
			break;
	fclose(f);
	return id;
}

/* Read memory.pressure_shrinker whole; returns malloc'ed text or NULL. */
static char *read_shrinker_file(int *err)
{
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);
	int fd;

	if (!buf) {
		*err = ENOMEM;
		return NULL;
	}
	fd = open(shrinker_path, O_RDONLY);
	if (fd < 0) {
		*err = errno;
		free(buf);
		return NULL;
	}
	for (;;) {
		ssize_t n;

		if (cap - len < 1024) {
			char *nb = realloc(buf, cap * 2);

			if (!nb) {
				*err = ENOMEM;
				free(buf);
				close(fd);
				return NULL;
			}
			buf = nb;
			cap *= 2;
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n < 0) {
			*err = errno;
			free(buf);
			close(fd);
			return NULL;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	return buf;
}

static int do_register(const char *op, int efd, const char *chunk)
{
	char cmd[512];
	int cfd, err;

	cfd = open(control_path, O_WRONLY);
	if (cfd < 0)
		return errno;
	snprintf(cmd, sizeof(cmd), "%d %d %s", efd, sfd, chunk);
	err = write_str(cfd, cmd);
	close(cfd);
	(void)op;
	return err;
}

static void op_register(const char *op, const char *kind, const char *chunk)
{
	int fd, err;
	int is_eventfd = !kind || !strcmp(kind, "eventfd");

	if (is_eventfd)
		fd = eventfd(0, EFD_CLOEXEC);
	else
		fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		op_err(op, errno);
		return;
	}
	err = do_register(op, fd, chunk);
	if (err) {
		close(fd);
		op_err(op, err);
		return;
	}
	if (!is_eventfd) {
		/* Not expected to succeed; report it and forget the fd. */
		printf("OP %s ok fd=%d\n", op, fd);
		close(fd);
		return;
	}
	cur = fd;
	printf("OP %s ok efd=%d id=%ld\n", op, fd, eventfd_id(fd));
}

static void op_add(const char *op, int efd, const char *text)
{
	char cmd[512];
	int err;

	snprintf(cmd, sizeof(cmd), "%d %s", efd, text);
	err = write_str(sfd, cmd);
	if (err)
		op_err(op, err);
	else
		printf("OP %s ok\n", op);
}

static void op_read(const char *op, int all)
{
	char *buf, *line, *save = NULL;
	long id = cur >= 0 ? eventfd_id(cur) : -1;
	int err = 0, n = 0, found = 0;
	char entries[8192] = "";
	size_t used = 0;

	buf = read_shrinker_file(&err);
	if (!buf) {
		op_err(op, err);
		return;
	}
	for (line = strtok_r(buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		long lid;
		unsigned long long csz, chunks;

		if (sscanf(line, "%ld %llu %llu", &lid, &csz, &chunks) != 3)
			continue;
		n++;
		if (all) {
			int w = snprintf(entries + used, sizeof(entries) - used,
					 "%s%ld:%llu:%llu", used ? "," : "",
					 lid, csz, chunks);
			if (w > 0 && (size_t)w < sizeof(entries) - used)
				used += (size_t)w;
		} else if (!found && id >= 0 && lid == id) {
			printf("OP %s ok id=%ld chunk_size=%llu chunks=%llu\n",
			       op, lid, csz, chunks);
			found = 1;
		}
	}
	free(buf);
	if (all)
		printf("OP %s ok n=%d entries=%s\n", op, n, used ? entries : "-");
	else if (!found)
		op_err(op, ENOENT);
}

static void op_hog(const char *op, const char *mib_s, const char *ms_s)
{
	unsigned long mib = strtoul(mib_s, NULL, 10);
	unsigned long ms = strtoul(ms_s, NULL, 10);
	int status;
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid < 0) {
		op_err(op, errno);
		return;
	}
	if (pid == 0) {
		size_t len = mib << 20, pg = (size_t)sysconf(_SC_PAGESIZE);
		struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
		char *p = NULL;

		if (len) {
			p = mmap(NULL, len, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			if (p == MAP_FAILED)
				_exit(1);
			for (size_t off = 0; off < len; off += pg)
				p[off] = (char)(off / pg) | 1;
		}
		nanosleep(&ts, NULL);
		_exit(0);
	}
	if (waitpid(pid, &status, 0) < 0) {
		op_err(op, errno);
		return;
	}
	if (WIFSIGNALED(status))
		printf("OP %s ok status=signal:%s\n", op,
		       sigabbrev_np(WTERMSIG(status)) ?: "?");
	else
		printf("OP %s ok status=exit:%d\n", op, WEXITSTATUS(status));
}

static void op_wait(const char *op, const char *ms_s)
{
	struct pollfd pfd = { .fd = cur, .events = POLLIN };
	uint64_t n = 0;
	int r;

	if (cur < 0) {
		op_err(op, EBADF);
		return;
	}
	r = poll(&pfd, 1, (int)strtol(ms_s, NULL, 10));
	if (r < 0) {
		op_err(op, errno);
		return;
	}
	if (r == 0) {
		printf("OP %s ok n=0 timeout=1\n", op);
		return;
	}
	if (read(cur, &n, sizeof(n)) != (ssize_t)sizeof(n)) {
		op_err(op, errno);
		return;
	}
	printf("OP %s ok n=%" PRIu64 "\n", op, n);
}

int main(int argc, char **argv)
{
	int i = 1;

	setvbuf(stdout, NULL, _IOLBF, 0);

	if (i < argc && !strcmp(argv[i], "--cgroup")) {
		if (i + 1 >= argc)
			usage();
		cgroup = argv[i + 1];
		i += 2;
	} else if (i < argc && !strncmp(argv[i], "--cgroup=", 9)) {
		cgroup = argv[i] + 9;
		i++;
	}
	if (i >= argc)
		usage();

	/* Validate every op before running any. */
	for (int j = i; j < argc;) {
		size_t k;

		for (k = 0; k < sizeof(opdefs) / sizeof(opdefs[0]); k++)
			if (!strcmp(argv[j], opdefs[k].name))
				break;
		if (k == sizeof(opdefs) / sizeof(opdefs[0])) {
			fprintf(stderr, "mpctl: unknown op '%s'\n", argv[j]);
			usage();
		}
		if (j + opdefs[k].nargs >= argc) {
			fprintf(stderr, "mpctl: op '%s' needs %d argument(s)\n",
				argv[j], opdefs[k].nargs);
			usage();
		}
		if (!strcmp(argv[j], "register-raw") &&
		    strcmp(argv[j + 1], "eventfd") &&
		    strcmp(argv[j + 1], "devnull")) {
			fprintf(stderr, "mpctl: register-raw takes eventfd or devnull\n");
			usage();
		}
		j += 1 + opdefs[k].nargs;
	}

	snprintf(shrinker_path, sizeof(shrinker_path),
		 "%s/memory.pressure_shrinker", cgroup);
	snprintf(control_path, sizeof(control_path),
		 "%s/cgroup.event_control", cgroup);
	sfd = open(shrinker_path, O_RDWR | O_CLOEXEC);
	if (sfd < 0) {
		int err = errno;

		op_err("open", err);
		fprintf(stderr, "mpctl: %s: %s\n", shrinker_path, strerror(err));
		return err == ENOENT ? 3 : 1;
	}

	while (i < argc) {
		const char *op = argv[i];

		if (!strcmp(op, "register")) {
			op_register(op, NULL, argv[i + 1]);
			i += 2;
		} else if (!strcmp(op, "register-raw")) {
			op_register(op, argv[i + 1], argv[i + 2]);
			i += 3;
		} else if (!strcmp(op, "add")) {
			if (cur < 0)
				op_err(op, EBADF);
			else
				op_add(op, cur, argv[i + 1]);
			i += 2;
		} else if (!strcmp(op, "write")) {
			int err = write_str(sfd, argv[i + 1]);

			if (err)
				op_err(op, err);
			else
				printf("OP %s ok\n", op);
			i += 2;
		} else if (!strcmp(op, "add-unregistered")) {
			int efd = eventfd(0, EFD_CLOEXEC);

			if (efd < 0) {
				op_err(op, errno);
			} else {
				op_add(op, efd, argv[i + 1]);
				close(efd);
			}
			i += 2;
		} else if (!strcmp(op, "read")) {
			op_read(op, 0);
			i += 1;
		} else if (!strcmp(op, "read-all")) {
			op_read(op, 1);
			i += 1;
		} else if (!strcmp(op, "hog")) {
			op_hog(op, argv[i + 1], argv[i + 2]);
			i += 3;
		} else if (!strcmp(op, "wait")) {
			op_wait(op, argv[i + 1]);
			i += 2;
		} else if (!strcmp(op, "sleep")) {
			unsigned long ms = strtoul(argv[i + 1], NULL, 10);
			struct timespec ts = { ms / 1000,
					       (long)(ms % 1000) * 1000000L };

			nanosleep(&ts, NULL);
			printf("OP %s ok\n", op);
			i += 2;
		} else { /* close */
			if (cur < 0) {
				op_err(op, EBADF);
			} else {
				printf("OP %s ok efd=%d\n", op, cur);
				close(cur);
				cur = -1;
			}
			i += 1;
		}
	}
	return 0;
}
