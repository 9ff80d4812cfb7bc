/* Open-loop HTTP/1.1 load generator for `failover-sim bench core`.
 *
 * Why C: on two cores the generator shares a core with the backend, and the
 * Python generator falls behind its schedule above ~20k req/s, so latency at
 * 50% and 75% of a balancer's maximum could not be measured. This one keeps
 * a fixed schedule (request k is due at start + k / rate), sends each due
 * request on an idle keep-alive connection or queues it until one is free,
 * and measures every latency from the intended send time, so a stall of the
 * target shows as latency instead of as fewer requests (no coordinated
 * omission). It writes the raw latencies (uint32 microseconds) to a file;
 * sim.bench.openloop turns them into an HdrHistogram.
 *
 * Usage: openloop PORT RATE DURATION WARMUP CONNECTIONS OUTFILE
 * Prints one JSON object on stdout. Loopback only (127.0.0.1).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define BUF 65536
static const char REQUEST[] = "GET / HTTP/1.1\r\nHost: bench\r\n\r\n";

typedef struct {
    int fd;
    int busy;
    int dead;
    double intended;
    size_t have;
    long need; /* bytes of the current response still to read, -1 until its head is read */
    char buf[BUF];
} conn_t;

/* the generator's state: one loop, so file-scope */
static conn_t *conns;
static int *idle, nidle, ep;
static long errors, dead, inflight;

/* the generator's own lateness (intended send time to the send, for requests a free
 * connection was waiting for), in 10 us buckets up to 100 ms: a generator late by
 * as much as the latencies it reports measures itself, not the target */
#define LATE_BUCKETS 10001
static long late_hist[LATE_BUCKETS], late_n;

static void late_record(double seconds) {
    long b = (long)(seconds * 1e5);
    late_hist[b < 0 ? 0 : b >= LATE_BUCKETS ? LATE_BUCKETS - 1 : b]++;
    late_n++;
}

static double late_quantile(double q) {
    long want = (long)(q * late_n), seen = 0;
    if (want >= late_n) want = late_n - 1; /* q = 1: the largest */
    for (int b = 0; b < LATE_BUCKETS; b++)
        if ((seen += late_hist[b]) > want) return b * 10.0;
    return 0; /* nothing recorded */
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Where the response at the start of buf ends, or -1 if its head is incomplete. Every
 * target here answers with a Content-Length; anything else would desynchronise the
 * count silently, so it stops the generator instead. */
static long response_length(const char *buf, size_t have) {
    const char *end = memmem(buf, have, "\r\n\r\n", 4);
    if (!end) return -1;
    long head = (end - buf) + 4, body = 0;
    for (const char *p = buf; p < end; p++) {
        if (p[0] != '\n') continue;
        if ((size_t)(end - p) > 16 && strncasecmp(p + 1, "content-length:", 15) == 0)
            body = strtol(p + 16, NULL, 10);
        else if ((size_t)(end - p) > 19 && strncasecmp(p + 1, "transfer-encoding:", 18) == 0) {
            fprintf(stderr, "openloop: a response with Transfer-Encoding; only Content-Length is counted\n");
            exit(3);
        }
    }
    if (body < 0 || body > (1L << 40)) {
        fprintf(stderr, "openloop: a response with Content-Length %ld\n", body);
        exit(3);
    }
    return head + body;
}

/* A connection that closed, reset or failed a write: out of the pool, its request lost. */
static void kill_conn(int id) {
    conn_t *c = &conns[id];
    if (c->dead) return;
    c->dead = 1;
    dead++;
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    if (c->busy) {
        c->busy = 0;
        errors++;
        inflight--;
    } else {
        for (int j = 0; j < nidle; j++)
            if (idle[j] == id) { idle[j] = idle[--nidle]; break; }
    }
}

/* MSG_NOSIGNAL: a target that reset the connection must not kill us with SIGPIPE */
static void send_request(int id, double due) {
    conn_t *c = &conns[id];
    c->busy = 1;
    c->intended = due;
    inflight++;
    if (send(c->fd, REQUEST, sizeof REQUEST - 1, MSG_NOSIGNAL) != (ssize_t)(sizeof REQUEST - 1))
        kill_conn(id);
}

int main(int argc, char **argv) {
    if (argc != 7) {
        fprintf(stderr, "usage: %s PORT RATE DURATION WARMUP CONNECTIONS OUTFILE\n", argv[0]);
        return 2;
    }
    int port = atoi(argv[1]), nconn = atoi(argv[5]);
    double rate = atof(argv[2]), duration = atof(argv[3]), warmup = atof(argv[4]);
    FILE *out = fopen(argv[6], "wb");
    if (!out || rate <= 0 || nconn <= 0) {
        fprintf(stderr, "openloop: bad arguments or cannot write %s\n", argv[6]);
        return 2;
    }
    size_t cap = (size_t)(rate * duration * 1.1) + 1024, nlat = 0;
    uint32_t *lat = malloc(cap * sizeof *lat);
    /* the backlog holds intended times of requests due while every connection is busy */
    size_t bcap = (size_t)(rate * 6) + 1024, bhead = 0, btail = 0, max_backlog = 0;
    double *backlog = malloc(bcap * sizeof *backlog);
    conns = calloc(nconn, sizeof *conns);
    idle = malloc(nconn * sizeof *idle);
    ep = epoll_create1(0);
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    if (!lat || !backlog || !conns || !idle) return 2;
    for (int i = 0; i < nconn; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
        if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
            fprintf(stderr, "openloop: connect to 127.0.0.1:%d: %s\n", port, strerror(errno));
            return 1;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        conns[i].fd = fd;
        conns[i].need = -1;
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
        idle[nidle++] = i;
    }
    struct epoll_event tev = {.events = EPOLLIN, .data.u32 = UINT32_MAX};
    epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &tev);

    double start = now_s() + 0.05, measure_from = start + warmup, end = measure_from + duration;
    double interval = 1.0 / rate;
    long k = 0, sent = 0, completed = 0;
    int overloaded = 0;
    struct epoll_event evs[256];
    for (;;) {
        double t = now_s();
        /* until the schedule's last request is issued: a wake after `end` still issues those due before it */
        int sending = start + k * interval < end && !overloaded;
        /* issue every request whose intended time has come */
        while (sending) {
            double due = start + k * interval;
            if (due > t || due >= end) break;
            k++;
            if (nidle > 0) {
                if (due >= measure_from) late_record(t - due);
                send_request(idle[--nidle], due);
                sent++;
            } else {
                backlog[btail] = due;
                btail = (btail + 1) % bcap;
                size_t depth = (btail + bcap - bhead) % bcap;
                if (depth > max_backlog) max_backlog = depth;
                if (depth + 16 >= bcap) { /* far behind: stop measuring a queue of our own */
                    overloaded = 1;
                    break;
                }
            }
        }
        if (!sending && inflight <= 0 && bhead == btail) break;
        if (dead == nconn) break; /* every connection gone: nothing left to measure with */
        if (!sending && t > end + 5) break; /* in-flight requests that never answer */
        /* sleep until the next due request or an answer, whichever is first */
        double next = start + k * interval;
        if (sending) { /* at the latest, wake at the end of the step */
            struct itimerspec its = {0};
            double when = next < end ? next : end;
            if (when <= t) when = t + 1e-6;
            its.it_value.tv_sec = (time_t)when;
            its.it_value.tv_nsec = (long)((when - (time_t)when) * 1e9);
            timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);
        }
        int n = epoll_wait(ep, evs, 256, sending ? -1 : 100);
        for (int e = 0; e < n; e++) {
            uint32_t id = evs[e].data.u32;
            if (id == UINT32_MAX) {
                uint64_t x;
                if (read(tfd, &x, sizeof x) < 0) { /* spurious wake-up: nothing to do */ }
                continue;
            }
            conn_t *c = &conns[id];
            ssize_t r = read(c->fd, c->buf + c->have, BUF - c->have);
            if (r <= 0) {
                kill_conn((int)id);
                continue;
            }
            c->have += (size_t)r;
            while (c->busy) {
                if (c->need < 0) c->need = response_length(c->buf, c->have);
                if (c->need < 0) break;
                if ((size_t)c->need > c->have) {
                    /* body still coming: count its bytes, do not keep them (any size fits) */
                    c->need -= (long)c->have;
                    c->have = 0;
                    break;
                }
                double done = now_s();
                if (c->intended >= measure_from && c->intended < end) {
                    double us = (done - c->intended) * 1e6;
                    if (nlat < cap) lat[nlat++] = us < 1 ? 1 : (uint32_t)us;
                    completed++;
                }
                memmove(c->buf, c->buf + c->need, c->have - (size_t)c->need);
                c->have -= (size_t)c->need;
                c->need = -1;
                c->busy = 0;
                inflight--;
                if (bhead != btail) { /* the oldest waiting request goes out now */
                    double due = backlog[bhead];
                    bhead = (bhead + 1) % bcap;
                    send_request((int)id, due);
                    sent++;
                } else {
                    idle[nidle++] = (int)id;
                }
            }
        }
    }
    fwrite(lat, sizeof *lat, nlat, out);
    fclose(out);
    printf("{\"rate\": %.3f, \"intended\": %ld, \"sent\": %ld, \"completed\": %ld, \"errors\": %ld, "
           "\"lost\": %ld, \"max_backlog\": %zu, \"backlog_left\": %zu, \"overloaded\": %s, "
           "\"send_late_p50_us\": %.0f, \"send_late_p99_us\": %.0f, \"send_late_max_us\": %.0f}\n",
           rate, k, sent, completed, errors, dead, max_backlog, (btail + bcap - bhead) % bcap,
           overloaded ? "true" : "false", late_quantile(0.5), late_quantile(0.99), late_quantile(1.0));
    return 0;
}
