// SPDX-License-Identifier: GPL-2.0
/*
 * mpstress - stress test for memory.pressure_shrinker.
 *
 * Adapted from the 2013 mempressure_test.c of the userland shrinker
 * series. Two threads: the allocator mmaps chunks, touches every page and
 * advertises them to the kernel in batches; the listener reads the
 * eventfd and frees as many chunks as the kernel asks for. With more
 * memory wanted than RAM plus swap, the two fight, and the process should
 * not be OOM-killed. After a request the allocator holds no more than
 * what it kept and regrows by one chunk per --regrow ms (0: grow straight
 * back to --max-chunks, as the 2013 test did). With --no-reclaim the listener ignores the requests
 * and every chunk is mlock()ed:
 * the negative control, which should be OOM-killed.
 *
 * Output (stdout, line-buffered; t is CLOCK_BOOTTIME in seconds):
 *   EV <t> registered chunk_size=<bytes> efd=<fd>
 *   EV <t> phase name=<idle|stress>
 *   EV <t> added n=<chunks> held=<held> advertised=<total>
 *   EV <t> asked n=<chunks> requests=<count> asked_total=<total>
 *   EV <t> freed n=<chunks> held=<held>
 *   SUMMARY {"added":N,...,"end":"signal:SIGTERM"}
 * See README.md. Exit: 0 on signal or end of duration, 2 on usage error,
 * 3 if the shrinker cannot be registered, 1 on other failures.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/sysinfo.h>
#include <time.h>
#include <unistd.h>

static const char *cgroup = "/sys/fs/cgroup/memory";
static uint64_t chunk_size = 1048576;
static long duration;		/* stress phase, seconds; 0 = until signal */
static long idle;		/* idle phase, seconds */
static uint64_t max_chunks;
static uint64_t batch;
static int no_reclaim;
static int mlock_warned;
static long regrow_ms = 100;	/* 0 = never lower the target (the seed) */

static int efd = -1, sfd = -1;
static size_t page_size;

/* Everything below is protected by lock. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static void **stack;		/* held chunks */
static uint64_t held, max_held;
static uint64_t target;		/* most chunks the allocator may hold now */
static double last_regrow;
static uint64_t advertised, asked, freed, requests;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, int err, int code)
{
	fprintf(stderr, "mpstress: %s: %s (%s)\n", what, strerror(err),
		strerrorname_np(err) ?: "?");
	exit(code);
}

static void usage(void)
{
	fprintf(stderr,
		"usage: mpstress [--cgroup PATH] [--chunk-size BYTES] [--duration SEC]\n"
		"                [--idle SEC] [--max-chunks N] [--batch N] [--regrow MS]\n"
		"                [--no-reclaim]\n");
	exit(2);
}

static uint64_t parse_u64(const char *s, const char *opt, int allow_zero)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *s == '-' || !*s || *end || (!allow_zero && !v)) {
		fprintf(stderr, "mpstress: bad value for %s: '%s'\n", opt, s);
		usage();
	}
	return v;
}

static void register_shrinker(void)
{
	char path[4096], cmd[128];
	int cfd, n;

	snprintf(path, sizeof(path), "%s/memory.pressure_shrinker", cgroup);
	sfd = open(path, O_RDWR | O_CLOEXEC);
	if (sfd < 0)
		die(path, errno, 3);

	efd = eventfd(0, EFD_CLOEXEC);
	if (efd < 0)
		die("eventfd", errno, 1);

	snprintf(path, sizeof(path), "%s/cgroup.event_control", cgroup);
	cfd = open(path, O_WRONLY | O_CLOEXEC);
	if (cfd < 0)
		die(path, errno, 3);
	n = snprintf(cmd, sizeof(cmd), "%d %d %" PRIu64, efd, sfd, chunk_size);
	if (write(cfd, cmd, (size_t)n) != n)
		die(path, errno, 3);
	close(cfd);

	printf("EV %.3f registered chunk_size=%" PRIu64 " efd=%d\n", now(),
	       chunk_size, efd);
}

static void advertise(uint64_t n)
{
	char cmd[64];
	int len = snprintf(cmd, sizeof(cmd), "%d +%" PRIu64, efd, n);

	if (write(sfd, cmd, (size_t)len) != len)
		fprintf(stderr, "mpstress: advertise +%" PRIu64 ": %s\n", n,
			strerror(errno));
}

static void *allocator(void *arg)
{
	uint64_t pending = 0;

	(void)arg;
	for (;;) {
		struct timespec pause = { 0, 10 * 1000 * 1000 };
		char *p;
		int full;

		pthread_mutex_lock(&lock);
		if (regrow_ms && target < max_chunks &&
		    now() - last_regrow >= (double)regrow_ms / 1000) {
			target++;
			last_regrow = now();
		}
		full = held >= target;
		pthread_mutex_unlock(&lock);
		if (full) {
			nanosleep(&pause, NULL);
			continue;
		}

		p = mmap(NULL, chunk_size, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED) {
			nanosleep(&pause, NULL);
			continue;
		}
		/*
		 * --no-reclaim pins what it holds, like a cache that cannot be
		 * evicted behind its back. Without the pin, a swap-backed guest
		 * under emulation thrashes for many minutes before the OOM
		 * killer acts, and the negative control would prove nothing
		 * within any sane time limit.
		 */
		if (no_reclaim && mlock(p, chunk_size) && !mlock_warned) {
			fprintf(stderr, "mpstress: mlock: %s\n", strerror(errno));
			mlock_warned = 1;
		}
		for (size_t off = 0; off < chunk_size; off += page_size)
			p[off] = (char)((off / page_size) | 1);

		pthread_mutex_lock(&lock);
		stack[held++] = p;
		if (held > max_held)
			max_held = held;
		pthread_mutex_unlock(&lock);

		if (++pending >= batch) {
			uint64_t h, a;

			advertise(pending);
			pthread_mutex_lock(&lock);
			advertised += pending;
			h = held;
			a = advertised;
			pthread_mutex_unlock(&lock);
			printf("EV %.3f added n=%" PRIu64 " held=%" PRIu64
			       " advertised=%" PRIu64 "\n", now(), pending, h, a);
			pending = 0;
		}
	}
	return NULL;
}

static void *listener(void *arg)
{
	(void)arg;
	for (;;) {
		uint64_t n, r, t, k = 0, h;
		ssize_t ret = read(efd, &n, sizeof(n));

		if (ret != (ssize_t)sizeof(n)) {
			if (ret < 0 && errno == EINTR)
				continue;
			die("read eventfd", ret < 0 ? errno : EIO, 1);
		}

		pthread_mutex_lock(&lock);
		requests++;
		asked += n;
		r = requests;
		t = asked;
		pthread_mutex_unlock(&lock);
		printf("EV %.3f asked n=%" PRIu64 " requests=%" PRIu64
		       " asked_total=%" PRIu64 "\n", now(), n, r, t);

		if (no_reclaim)
			continue;

		while (k < n) {
			void *p = NULL;

			pthread_mutex_lock(&lock);
			if (held)
				p = stack[--held];
			pthread_mutex_unlock(&lock);
			if (!p)
				break;
			munmap(p, chunk_size);
			k++;
		}
		pthread_mutex_lock(&lock);
		freed += k;
		h = held;
		/*
		 * Like a cache told to shrink: do not grow straight back to
		 * where the kernel had to ask, regrow slowly from here.
		 */
		if (regrow_ms && target > held) {
			target = held;
			last_regrow = now();
		}
		pthread_mutex_unlock(&lock);
		printf("EV %.3f freed n=%" PRIu64 " held=%" PRIu64 "\n", now(),
		       k, h);
	}
	return NULL;
}

static void summary(const char *end)
{
	pthread_mutex_lock(&lock);
	printf("SUMMARY {\"added\":%" PRIu64 ",\"asked\":%" PRIu64
	       ",\"freed\":%" PRIu64 ",\"bytes_freed\":%" PRIu64
	       ",\"requests\":%" PRIu64 ",\"chunk_size\":%" PRIu64
	       ",\"max_held\":%" PRIu64 ",\"end\":\"%s\"}\n",
	       advertised, asked, freed, freed * chunk_size, requests,
	       chunk_size, max_held, end);
	fflush(stdout);
	_exit(0);
}

/* Wait for SIGINT/SIGTERM for up to secs (0 = forever); 0 on timeout. */
static int wait_signal(const sigset_t *set, long secs, int forever)
{
	struct timespec ts = { secs, 0 };
	int sig;

	do {
		sig = forever ? sigwaitinfo(set, NULL)
			      : sigtimedwait(set, NULL, &ts);
	} while (sig < 0 && errno == EINTR);
	return sig < 0 ? 0 : sig;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "cgroup", required_argument, NULL, 'c' },
		{ "chunk-size", required_argument, NULL, 's' },
		{ "duration", required_argument, NULL, 'd' },
		{ "idle", required_argument, NULL, 'i' },
		{ "max-chunks", required_argument, NULL, 'm' },
		{ "batch", required_argument, NULL, 'b' },
		{ "no-reclaim", no_argument, NULL, 'n' },
		{ "regrow", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	pthread_t alloc_thr, listen_thr;
	struct sysinfo si;
	sigset_t set;
	char end[32];
	int c, sig;

	setvbuf(stdout, NULL, _IOLBF, 0);
	page_size = (size_t)sysconf(_SC_PAGESIZE);

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'c': cgroup = optarg; break;
		case 's': chunk_size = parse_u64(optarg, "--chunk-size", 0); break;
		case 'd': duration = (long)parse_u64(optarg, "--duration", 1); break;
		case 'i': idle = (long)parse_u64(optarg, "--idle", 1); break;
		case 'm': max_chunks = parse_u64(optarg, "--max-chunks", 0); break;
		case 'b': batch = parse_u64(optarg, "--batch", 0); break;
		case 'n': no_reclaim = 1; break;
		case 'r': regrow_ms = (long)parse_u64(optarg, "--regrow", 1); break;
		default: usage();
		}
	}
	if (optind != argc)
		usage();

	if (!max_chunks) {
		if (sysinfo(&si))
			die("sysinfo", errno, 1);
		max_chunks = ((uint64_t)si.totalram + si.totalswap) *
			     si.mem_unit / chunk_size;
		if (!max_chunks)
			max_chunks = 1;
	}
	if (!batch)
		batch = max_chunks / 10 ? max_chunks / 10 : 1;
	target = max_chunks;

	stack = calloc(max_chunks, sizeof(*stack));
	if (!stack)
		die("calloc", ENOMEM, 1);

	/* Only the main thread takes SIGINT/SIGTERM, synchronously. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	register_shrinker();

	if (pthread_create(&listen_thr, NULL, listener, NULL))
		die("pthread_create", EAGAIN, 1);

	if (idle) {
		printf("EV %.3f phase name=idle\n", now());
		sig = wait_signal(&set, idle, 0);
		if (sig)
			goto out;
	}

	printf("EV %.3f phase name=stress\n", now());
	if (pthread_create(&alloc_thr, NULL, allocator, NULL))
		die("pthread_create", EAGAIN, 1);

	sig = wait_signal(&set, duration, duration == 0);
out:
	if (sig)
		snprintf(end, sizeof(end), "signal:SIG%s", sigabbrev_np(sig));
	else
		snprintf(end, sizeof(end), "duration");
	summary(end);
	return 0;
}
