/* Load generator for netscope's storm tests and `make bench`: UDP at the highest rate one core can
 * reach, batched with sendmmsg/recvmmsg so the syscall cost does not hide the kernel's per-packet work.
 *
 *   loadgen send DST_IPV4 PORT SECONDS [PAYLOAD_BYTES [SRC_PORT [PPS]]]
 *                                                        prints "<datagrams sent> <seconds>"
 *   loadgen recv PORT SECONDS [PERIOD_MS]                prints "<datagrams received> <seconds>"
 *                                                        (slow reader, on SIGUSR1: "<received> <p50_ns> <p99_ns>")
 *   loadgen flows DST_IPV4 BASE_PORT PORTS SOCKETS SECONDS [PPS]
 *                                                        prints "<datagrams sent> <seconds>"
 *
 * `flows` keeps SOCKETS x PORTS concurrent flows busy: each of SOCKETS sockets (source ports the
 * kernel picks) sends in turn to every port from BASE_PORT on, round robin, so every flow carries
 * the same share of the packets.
 *
 * PPS paces the sender (0: as fast as it can); PERIOD_MS makes a slow reader that drains its socket
 * every PERIOD_MS (its receive buffer forced to 64 MB so that it drops nothing meanwhile). The slow
 * reader measures each datagram's wait itself, from the kernel's receive timestamp (SO_TIMESTAMPNS)
 * to the batch's read, so that a test has the true copy latency of its own run, however the
 * machine's load stretched the reader's period; SIGUSR1 prints the percentiles so far.
 *
 * The seconds printed are the program's own clock from its first to its last batch, so a rate
 * computed from them does not include process start-up. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define MAX_PAYLOAD 1472

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int usage(void)
{
	fprintf(stderr, "usage: loadgen send DST_IPV4 PORT SECONDS [PAYLOAD_BYTES [SRC_PORT [PPS]]]\n"
			"       loadgen recv PORT SECONDS [PERIOD_MS]\n"
			"       loadgen flows DST_IPV4 BASE_PORT PORTS SOCKETS SECONDS [PPS]\n");
	return 2;
}

static void sleep_s(double s)
{
	struct timespec ts = { .tv_sec = (time_t)s, .tv_nsec = (long)((s - (time_t)s) * 1e9) };

	nanosleep(&ts, NULL);
}

static int flood(const char *dst, int port, double seconds, size_t size, int src_port, double pps)
{
	static char payload[MAX_PAYLOAD];
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(port) };
	struct mmsghdr msgs[BATCH];
	struct iovec iov = { .iov_base = payload, .iov_len = size };
	unsigned long long sent = 0;
	double start, end, t;
	int fd, i, n;

	if (inet_pton(AF_INET, dst, &to.sin_addr) != 1 || size > MAX_PAYLOAD)
		return usage();
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	/* A fixed source port (0: any) keeps one 5-tuple across runs, for a screen that watches it. */
	struct sockaddr_in from = { .sin_family = AF_INET, .sin_port = htons(src_port) };
	if (fd >= 0 && src_port && bind(fd, (struct sockaddr *)&from, sizeof(from)) < 0) {
		perror("loadgen: bind");
		return 1;
	}
	/* Connected: no route lookup per datagram. ICMP port-unreachable replies come back as
	 * ECONNREFUSED on a later call; that call sent nothing and is simply repeated. */
	if (fd < 0 || connect(fd, (struct sockaddr *)&to, sizeof(to)) < 0) {
		perror("loadgen: socket");
		return 1;
	}
	memset(msgs, 0, sizeof(msgs));
	for (i = 0; i < BATCH; i++) {
		msgs[i].msg_hdr.msg_iov = &iov;
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	start = t = now();
	end = start + seconds;
	while (t < end) {
		if (pps > 0 && sent + BATCH > (t - start) * pps) { /* ahead of the pace: wait for it */
			sleep_s((sent + BATCH) / pps - (t - start));
			t = now();
			continue;
		}
		n = sendmmsg(fd, msgs, BATCH, 0);
		if (n > 0)
			sent += n;
		else if (n < 0 && errno != ECONNREFUSED && errno != ENOBUFS && errno != EAGAIN) {
			perror("loadgen: sendmmsg");
			return 1;
		}
		t = now();
	}
	printf("%llu %.6f\n", sent, t - start);
	return 0;
}

#define MAX_SOCKETS 1024

static int flows(const char *dst, int base_port, int ports, int sockets, double seconds, double pps)
{
	static char payload[32];
	static struct sockaddr_in to[BATCH];
	static int fds[MAX_SOCKETS];
	struct mmsghdr msgs[BATCH];
	struct iovec iov = { .iov_base = payload, .iov_len = sizeof(payload) };
	struct in_addr addr;
	unsigned long long sent = 0, next = 0; /* flow number: port in the low part, socket above */
	double start, end, t;
	int i, n;

	if (inet_pton(AF_INET, dst, &addr) != 1 || ports < 1 || sockets < 1 || sockets > MAX_SOCKETS ||
	    base_port < 1 || base_port + ports > 65536)
		return usage();
	for (i = 0; i < sockets; i++) {
		fds[i] = socket(AF_INET, SOCK_DGRAM, 0);
		if (fds[i] < 0) {
			perror("loadgen: socket");
			return 1;
		}
	}
	memset(msgs, 0, sizeof(msgs));
	for (i = 0; i < BATCH; i++) {
		to[i].sin_family = AF_INET;
		to[i].sin_addr = addr;
		msgs[i].msg_hdr.msg_iov = &iov;
		msgs[i].msg_hdr.msg_iovlen = 1;
		msgs[i].msg_hdr.msg_name = &to[i];
		msgs[i].msg_hdr.msg_namelen = sizeof(to[i]);
	}
	start = t = now();
	end = start + seconds;
	while (t < end) {
		if (pps > 0 && sent + BATCH > (t - start) * pps) {
			sleep_s((sent + BATCH) / pps - (t - start));
			t = now();
			continue;
		}
		/* One batch from one socket, to the next ports in turn, up to the last port: the next
		 * sweep of the ports is the next socket's. */
		int fd = fds[(next / ports) % sockets];
		int k = ports - (int)(next % ports) < BATCH ? ports - (int)(next % ports) : BATCH;
		for (i = 0; i < k; i++)
			to[i].sin_port = htons(base_port + (next + i) % ports);
		n = sendmmsg(fd, msgs, k, 0);
		if (n > 0) {
			sent += n;
			next += n;
		} else if (n < 0 && errno != ECONNREFUSED && errno != ENOBUFS && errno != EAGAIN) {
			perror("loadgen: sendmmsg");
			return 1;
		}
		t = now();
	}
	printf("%llu %.6f\n", sent, t - start);
	return 0;
}

/* Waits in 10-us steps up to 10 s: the slow reader's own truth. */
#define WAIT_STEP_NS 10000ULL
#define WAIT_STEPS 1000000
static unsigned int waits[WAIT_STEPS];
static unsigned long long waited;
static volatile sig_atomic_t report;

static void on_usr1(int sig)
{
	(void)sig;
	report = 1;
}

static unsigned long long wait_percentile(double q)
{
	unsigned long long seen = 0;
	int i;

	for (i = 0; i < WAIT_STEPS; i++) {
		seen += waits[i];
		if (seen > 0 && seen >= q / 100.0 * waited)
			return i * WAIT_STEP_NS + WAIT_STEP_NS / 2;
	}
	return 0;
}

static void count_waits(struct mmsghdr *msgs, int n)
{
	struct timespec read_at;
	struct cmsghdr *c;
	long long wait;
	int i;

	clock_gettime(CLOCK_REALTIME, &read_at);
	for (i = 0; i < n; i++)
		for (c = CMSG_FIRSTHDR(&msgs[i].msg_hdr); c; c = CMSG_NXTHDR(&msgs[i].msg_hdr, c)) {
			struct timespec at;

			if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_TIMESTAMPNS)
				continue;
			memcpy(&at, CMSG_DATA(c), sizeof(at));
			wait = (read_at.tv_sec - at.tv_sec) * 1000000000LL + (read_at.tv_nsec - at.tv_nsec);
			wait = wait < 0 ? 0 : wait / (long long)WAIT_STEP_NS;
			waits[wait < WAIT_STEPS ? wait : WAIT_STEPS - 1]++;
			waited++;
		}
}

static int sink(int port, double seconds, double period)
{
	static char bufs[BATCH][MAX_PAYLOAD];
	static char controls[BATCH][CMSG_SPACE(sizeof(struct timespec))];
	struct sockaddr_in at = { .sin_family = AF_INET, .sin_port = htons(port) };
	struct timeval tick = { .tv_sec = 0, .tv_usec = 100000 };
	struct mmsghdr msgs[BATCH];
	struct iovec iovs[BATCH];
	unsigned long long got = 0;
	int size = period > 0 ? 64 << 20 : 8 << 20;
	double start = 0, last = 0, end;
	int fd, i, n, on = 1;

	fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&at, sizeof(at)) < 0) {
		perror("loadgen: bind");
		return 1;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tick, sizeof(tick));
	if (period > 0) {
		signal(SIGUSR1, on_usr1);
		if (setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof(on)) < 0) {
			perror("loadgen: SO_TIMESTAMPNS");
			return 1;
		}
	}
	memset(msgs, 0, sizeof(msgs));
	for (i = 0; i < BATCH; i++) {
		iovs[i].iov_base = bufs[i];
		iovs[i].iov_len = MAX_PAYLOAD;
		msgs[i].msg_hdr.msg_iov = &iovs[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	printf("ready\n");
	fflush(stdout);
	end = now() + seconds;
	while (now() < end) {
		if (period > 0) { /* a slow reader: sleep, then drain what waited */
			sleep_s(period);
			for (;;) {
				for (i = 0; i < BATCH; i++) {
					msgs[i].msg_hdr.msg_control = controls[i];
					msgs[i].msg_hdr.msg_controllen = sizeof(controls[i]);
				}
				n = recvmmsg(fd, msgs, BATCH, MSG_DONTWAIT, NULL);
				if (n <= 0)
					break;
				count_waits(msgs, n);
				last = now();
				if (!got)
					start = last;
				got += n;
			}
			if (report) {
				report = 0;
				printf("%llu %llu %llu\n", got, wait_percentile(50), wait_percentile(99));
				fflush(stdout);
			}
			continue;
		}
		n = recvmmsg(fd, msgs, BATCH, MSG_WAITFORONE, NULL);
		if (n <= 0)
			continue;
		last = now();
		if (!got)
			start = last;
		got += n;
	}
	printf("%llu %.6f\n", got, last - start);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 5 && !strcmp(argv[1], "send"))
		return flood(argv[2], atoi(argv[3]), atof(argv[4]), argc > 5 ? (size_t)atoi(argv[5]) : 32,
			     argc > 6 ? atoi(argv[6]) : 0, argc > 7 ? atof(argv[7]) : 0);
	if ((argc == 7 || argc == 8) && !strcmp(argv[1], "flows"))
		return flows(argv[2], atoi(argv[3]), atoi(argv[4]), atoi(argv[5]), atof(argv[6]),
			     argc > 7 ? atof(argv[7]) : 0);
	if ((argc == 4 || argc == 5) && !strcmp(argv[1], "recv"))
		return sink(atoi(argv[2]), atof(argv[3]), argc > 4 ? atof(argv[4]) / 1000 : 0);
	return usage();
}
