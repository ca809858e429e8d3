/* Load generator for netscope's storm tests and `make bench`: UDP at the highest rate one core can
 * reach, batched with sendmmsg/recvmmsg so the syscall cost does not hide the kernel's per-packet work.
 *
 *   loadgen send DST_IPV4 PORT SECONDS [PAYLOAD_BYTES [SRC_PORT [PPS]]]
 *                                                        prints "<datagrams sent> <seconds>"
 *   loadgen recv PORT SECONDS [PERIOD_MS]                prints "<datagrams received> <seconds>"
 *
 * PPS paces the sender (0: as fast as it can); PERIOD_MS makes a slow reader that drains its socket
 * every PERIOD_MS (its receive buffer forced to 64 MB so that it drops nothing meanwhile).
 *
 * The seconds printed are the program's own clock from its first to its last batch, so a rate
 * computed from them does not include process start-up. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
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
			"       loadgen recv PORT SECONDS [PERIOD_MS]\n");
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

static int sink(int port, double seconds, double period)
{
	static char bufs[BATCH][MAX_PAYLOAD];
	struct sockaddr_in at = { .sin_family = AF_INET, .sin_port = htons(port) };
	struct timeval tick = { .tv_sec = 0, .tv_usec = 100000 };
	struct mmsghdr msgs[BATCH];
	struct iovec iovs[BATCH];
	unsigned long long got = 0;
	int size = period > 0 ? 64 << 20 : 8 << 20;
	double start = 0, last = 0, end;
	int fd, i, n;

	fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&at, sizeof(at)) < 0) {
		perror("loadgen: bind");
		return 1;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tick, sizeof(tick));
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
			while ((n = recvmmsg(fd, msgs, BATCH, MSG_DONTWAIT, NULL)) > 0) {
				last = now();
				if (!got)
					start = last;
				got += n;
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
	if ((argc == 4 || argc == 5) && !strcmp(argv[1], "recv"))
		return sink(atoi(argv[2]), atof(argv[3]), argc > 4 ? atof(argv[4]) / 1000 : 0);
	return usage();
}
