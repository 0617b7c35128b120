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
 * back to --max-chunks, as the 2013 test did). With --no-reclaim the
 * listener ignores the requests: the same workload without the kernel's
 * help, the negative control, which should be OOM-killed.
 *
 * The stress phase ends on a signal, after --duration seconds, or, with
 * --until-bytes N, once the allocator has touched N bytes in total (work
 * done, not time spent: a kernel that never asks for memory back cannot
 * pass by the workload merely outlasting a timer).
 *
 * Output (line-buffered, stdout or --events PATH; t is CLOCK_BOOTTIME in s):
 *   EV <t> registered chunk_size=<bytes> efd=<fd>
 *   EV <t> phase name=<idle|stress>
 *   EV <t> added n=<chunks> held=<held> advertised=<total>
 *   EV <t> asked n=<chunks> requests=<count> asked_total=<total>
 *   EV <t> freed n=<chunks> held=<held>
 *   EV <t> progress touched=<bytes>
 *   SUMMARY {"added":N,...,"touched":N,"end":"work"}
 * See README.md. Exit: 0 on signal, end of duration or work done, 2 on
 * usage error, 3 if the shrinker cannot be registered, 1 on other failures.
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
static long regrow_ms = 100;	/* 0 = never lower the target (the seed) */
static uint64_t until_bytes;	/* end the stress phase after touching this; 0 = never */
static uint64_t progress_step;	/* bytes touched between progress lines */
static FILE *ev;		/* event lines: stdout or --events PATH */

static int efd = -1, sfd = -1;
static size_t page_size;

/* Everything below is protected by lock. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static void **stack;		/* held chunks */
static uint64_t held, max_held;
static uint64_t target;		/* most chunks the allocator may hold now */
static double last_regrow;
static uint64_t advertised, asked, freed, requests;
static uint64_t touched, next_progress;
static int work_done;

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
		"                [--until-bytes N] [--events PATH] [--no-reclaim]\n");
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

	fprintf(ev, "EV %.3f registered chunk_size=%" PRIu64 " efd=%d\n", now(),
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
		uint64_t t;
		int full, report, done;
		char *p;

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
		for (size_t off = 0; off < chunk_size; off += page_size)
			p[off] = (char)((off / page_size) | 1);

		pthread_mutex_lock(&lock);
		stack[held++] = p;
		if (held > max_held)
			max_held = held;
		touched += chunk_size;
		t = touched;
		report = t >= next_progress;
		if (report)
			next_progress = (t / progress_step + 1) * progress_step;
		done = until_bytes && t >= until_bytes && !work_done;
		if (done)
			work_done = 1;
		pthread_mutex_unlock(&lock);

		if (report)
			fprintf(ev, "EV %.3f progress touched=%" PRIu64 "\n",
				now(), t);
		/* The main thread waits for this in sigtimedwait(). */
		if (done)
			kill(getpid(), SIGUSR1);

		if (++pending >= batch) {
			uint64_t h, a;

			advertise(pending);
			pthread_mutex_lock(&lock);
			advertised += pending;
			h = held;
			a = advertised;
			pthread_mutex_unlock(&lock);
			fprintf(ev, "EV %.3f added n=%" PRIu64 " held=%" PRIu64
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
		fprintf(ev, "EV %.3f asked n=%" PRIu64 " requests=%" PRIu64
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
		fprintf(ev, "EV %.3f freed n=%" PRIu64 " held=%" PRIu64 "\n", now(),
			k, h);
	}
	return NULL;
}

/*
 * The last line, on the event stream and, if that is not stdout, on stdout
 * too: whoever collects stdout at the end always finds the verdict there.
 */
static void summary(const char *end)
{
	char line[512];

	pthread_mutex_lock(&lock);
	snprintf(line, sizeof(line),
		 "SUMMARY {\"added\":%" PRIu64 ",\"asked\":%" PRIu64
		 ",\"freed\":%" PRIu64 ",\"bytes_freed\":%" PRIu64
		 ",\"requests\":%" PRIu64 ",\"chunk_size\":%" PRIu64
		 ",\"max_held\":%" PRIu64 ",\"touched\":%" PRIu64
		 ",\"end\":\"%s\"}\n",
		 advertised, asked, freed, freed * chunk_size, requests,
		 chunk_size, max_held, touched, end);
	fputs(line, ev);
	fflush(ev);
	if (ev != stdout) {
		fputs(line, stdout);
		fflush(stdout);
	}
	_exit(0);
}

/*
 * Wait for SIGINT/SIGTERM, or the allocator's SIGUSR1 once its work is done,
 * for up to secs (0 = forever). Returns the signal, or 0 on timeout. A
 * SIGUSR1 that did not come from the allocator (work not done) is ignored.
 */
static int wait_signal(const sigset_t *set, long secs)
{
	double deadline = now() + (double)secs;

	for (;;) {
		double left = deadline - now();
		struct timespec ts;
		int sig;

		if (secs && left <= 0)
			return 0;
		ts.tv_sec = (time_t)left;
		ts.tv_nsec = (long)((left - (double)ts.tv_sec) * 1e9);
		sig = secs ? sigtimedwait(set, NULL, &ts)
			   : sigwaitinfo(set, NULL);
		if (sig < 0 && errno == EAGAIN)
			return 0;
		if (sig < 0)
			continue;	/* EINTR */
		if (sig == SIGUSR1) {
			int w;

			pthread_mutex_lock(&lock);
			w = work_done;
			pthread_mutex_unlock(&lock);
			if (!w)
				continue;
		}
		return sig;
	}
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
		{ "until-bytes", required_argument, NULL, 'u' },
		{ "events", required_argument, NULL, 'e' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	pthread_t alloc_thr, listen_thr;
	struct sysinfo si;
	sigset_t set;
	const char *events = NULL;
	char end[32];
	int c, sig;

	setvbuf(stdout, NULL, _IOLBF, 0);
	ev = stdout;
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
		case 'u': until_bytes = parse_u64(optarg, "--until-bytes", 0); break;
		case 'e': events = optarg; break;
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
	/* A progress line every tenth of the work, or of RAM + swap without a goal. */
	progress_step = (until_bytes ? until_bytes : max_chunks * chunk_size) / 10;
	if (progress_step < chunk_size)
		progress_step = chunk_size;
	next_progress = progress_step;

	if (events) {
		/* A virtio-serial port or any file: the host reads events without polling. */
		int fd = open(events, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);

		if (fd < 0 || !(ev = fdopen(fd, "a")))
			die(events, errno, 1);
		setvbuf(ev, NULL, _IOLBF, 0);
	}

	stack = calloc(max_chunks, sizeof(*stack));
	if (!stack)
		die("calloc", ENOMEM, 1);

	/* Only the main thread takes SIGINT/SIGTERM, synchronously. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	register_shrinker();

	if (pthread_create(&listen_thr, NULL, listener, NULL))
		die("pthread_create", EAGAIN, 1);

	if (idle) {
		fprintf(ev, "EV %.3f phase name=idle\n", now());
		sig = wait_signal(&set, idle);
		if (sig)
			goto out;
	}

	fprintf(ev, "EV %.3f phase name=stress\n", now());
	if (pthread_create(&alloc_thr, NULL, allocator, NULL))
		die("pthread_create", EAGAIN, 1);

	sig = wait_signal(&set, duration);
out:
	if (sig == SIGUSR1)
		snprintf(end, sizeof(end), "work");
	else if (sig)
		snprintf(end, sizeof(end), "signal:SIG%s", sigabbrev_np(sig));
	else
		snprintf(end, sizeof(end), "duration");
	summary(end);
	return 0;
}
