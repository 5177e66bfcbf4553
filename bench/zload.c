/*
 * zload: closed-loop load client for a ZeroMQ request server (the contract
 * of bench/handlers.js), on libzmq.
 *
 *   cc -O2 -Wall -o zload bench/zload.c -lzmq -pthread
 *   zload -e tcp://127.0.0.1:PORT -c CLIENTS -d SECONDS -w WARMUP_SECONDS
 *         [-p SERVER_PID] [-l LABEL] [-m echo|sleep] [-o OFFSET] [-t IO_THREADS]
 *         [-k SERVER_PUBLIC_Z85 [-K CLIENT_SECRET_Z85]]
 *
 * echo mode (default): CLIENTS threads, each with one DEALER whose routing
 * id is Client<N> (N = OFFSET, OFFSET+1, ...). Each sends {"command":"reply"}
 * and waits for the reply before sending the next, and checks that the
 * reply is the one frame "Reply to Client<N>" (anything else counts as bad).
 * After WARMUP_SECONDS, it measures for SECONDS: requests sent and answered
 * inside the window count, with their latency. With -p, the server's CPU
 * time (utime+stime of /proc/PID/stat) is read at the start and the end of
 * the window.
 *
 * sleep mode: CLIENTS DEALERs (one thread, zmq_poll) each send one
 * {"command":"sleep"} and wait for its reply, for at most SECONDS (default
 * 30). It reports how many replies came back, their latency, how many came
 * before the 10 s the handler sleeps (early=), and when the first and the
 * last reply came, in seconds since zload started (first_s=, last_s=): the
 * handlers were all held between last_s-10 and first_s.
 *
 * CURVE: with -k, every DEALER connects over CURVE (ZMQ_CURVE_SERVERKEY)
 * with the client key pair whose secret key -K gives (Z85, 40 characters; its
 * public key is derived with zmq_curve_public); without -K, a fresh key pair
 * from zmq_curve_keypair. All the clients of a run share that key pair.
 *
 * Output: one line
 *   RESULT label=L mode=M sec=null|curve clients=C secs=S replies=R qps=Q p50_us=.. p99_us=..
 *          max_us=.. bad=B cpu_us_per_req=.. server_cores=.. [more fields]
 * (cpu fields are "-" without -p). The exit status is 0 when every request
 * was answered correctly, 1 otherwise, 2 on bad usage.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define RECV_TIMEOUT_MS 5000
#define SLEEP_HANDLER_MS 10000

static const char ECHO_REQ[] = "{\"command\":\"reply\"}";
static const char SLEEP_REQ[] = "{\"command\":\"sleep\"}";

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void sleep_until(int64_t t) {
    struct timespec ts = {t / 1000000000, t % 1000000000};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

/* A growable array of latencies in nanoseconds. */
typedef struct {
    int64_t *v;
    size_t n, cap;
} lats_t;

static int lats_push(lats_t *l, int64_t x) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 4096;
        int64_t *v = realloc(l->v, cap * sizeof *v);
        if (!v)
            return -1;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = x;
    return 0;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of a sorted array, in microseconds. */
static double pct_us(const lats_t *l, double p) {
    if (l->n == 0)
        return 0;
    size_t k = (size_t)(p * l->n + 0.999999);
    if (k < 1)
        k = 1;
    if (k > l->n)
        k = l->n;
    return l->v[k - 1] / 1e3;
}

/* utime+stime of a process, in clock ticks; -1 when it cannot be read. */
static long long proc_cpu_ticks(long pid) {
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    /* The command name (field 2) may hold spaces: parse after its ')'. */
    char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    unsigned long long ut, st;
    /* fields 3..13 skipped, then 14 utime and 15 stime */
    if (sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (long long)(ut + st);
}

static double self_cpu_secs(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
           (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* The CURVE keys of every DEALER (Z85 text), when curve_on. */
static int curve_on;
static char curve_server[41], curve_public[41], curve_secret[41];

static void *new_dealer(void *ctx, const char *endpoint, long n) {
    void *s = zmq_socket(ctx, ZMQ_DEALER);
    if (!s) {
        fprintf(stderr, "zload: socket: %s\n", zmq_strerror(zmq_errno()));
        return NULL;
    }
    char id[32];
    int idlen = snprintf(id, sizeof id, "Client%ld", n);
    int linger = 0, tmo = RECV_TIMEOUT_MS;
    zmq_setsockopt(s, ZMQ_ROUTING_ID, id, idlen);
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(s, ZMQ_RCVTIMEO, &tmo, sizeof tmo);
    zmq_setsockopt(s, ZMQ_SNDTIMEO, &tmo, sizeof tmo);
    if (curve_on && (zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, curve_server, 40) != 0 ||
                     zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, curve_public, 40) != 0 ||
                     zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, curve_secret, 40) != 0)) {
        fprintf(stderr, "zload: CURVE keys: %s\n", zmq_strerror(zmq_errno()));
        zmq_close(s);
        return NULL;
    }
    if (zmq_connect(s, endpoint) != 0) {
        fprintf(stderr, "zload: connect %s: %s\n", endpoint, zmq_strerror(zmq_errno()));
        zmq_close(s);
        return NULL;
    }
    return s;
}

/* Reads one message; returns 1 if it is the single frame expect, 0 if it is
 * something else, -1 on error (timeout). */
static int recv_reply(void *s, const char *expect, size_t explen) {
    char buf[256];
    int n = zmq_recv(s, buf, sizeof buf, 0);
    if (n < 0)
        return -1;
    int ok = (size_t)n == explen && memcmp(buf, expect, explen) == 0;
    int more = 0;
    size_t sz = sizeof more;
    zmq_getsockopt(s, ZMQ_RCVMORE, &more, &sz);
    while (more) { /* a multi-frame reply is not the contract */
        ok = 0;
        if (zmq_recv(s, buf, sizeof buf, 0) < 0)
            return -1;
        zmq_getsockopt(s, ZMQ_RCVMORE, &more, &sz);
    }
    return ok;
}

/* ---- echo mode ---- */

typedef struct {
    void *ctx;
    const char *endpoint;
    long n; /* client number */
    pthread_barrier_t *ready;
    const int64_t *t_start, *t_end; /* set by main before the barrier opens */
    long replies, bad, errors;
    lats_t lats;
} client_t;

static void *echo_client(void *arg) {
    client_t *c = arg;
    void *s = new_dealer(c->ctx, c->endpoint, c->n);
    pthread_barrier_wait(c->ready);
    if (!s) {
        c->errors++;
        return NULL;
    }
    char expect[64];
    size_t explen = (size_t)snprintf(expect, sizeof expect, "Reply to Client%ld", c->n);
    const int64_t t_start = *c->t_start, t_end = *c->t_end;
    for (;;) {
        int64_t ts = now_ns();
        if (ts >= t_end)
            break;
        if (zmq_send(s, ECHO_REQ, sizeof ECHO_REQ - 1, 0) < 0) {
            c->errors++;
            break;
        }
        int ok = recv_reply(s, expect, explen);
        int64_t te = now_ns();
        if (ok < 0) {
            fprintf(stderr, "zload: Client%ld: no reply: %s\n", c->n, zmq_strerror(zmq_errno()));
            c->errors++;
            break; /* a late reply would pair with the next request: stop */
        }
        if (!ok)
            c->bad++;
        if (ts >= t_start && te <= t_end) {
            c->replies++;
            if (lats_push(&c->lats, te - ts) != 0) {
                c->errors++;
                break;
            }
        }
    }
    zmq_close(s);
    return NULL;
}

static void print_cpu(long long t0, long long t1, long replies, double secs) {
    if (t0 < 0 || t1 < 0 || replies <= 0) {
        printf(" cpu_us_per_req=- server_cores=-");
        return;
    }
    double cpu = (double)(t1 - t0) / sysconf(_SC_CLK_TCK);
    printf(" cpu_us_per_req=%.2f server_cores=%.3f", cpu * 1e6 / replies, cpu / secs);
}

static int run_echo(void *ctx, const char *endpoint, long clients, long offset, double dur,
                    double warm, long pid, const char *label) {
    client_t *cs = calloc(clients, sizeof *cs);
    pthread_t *th = calloc(clients, sizeof *th);
    if (!cs || !th) {
        fprintf(stderr, "zload: out of memory\n");
        return 1;
    }
    pthread_barrier_t ready;
    pthread_barrier_init(&ready, NULL, (unsigned)clients + 1);
    int64_t t_start = 0, t_end = 0;
    long started = 0;
    for (long i = 0; i < clients; i++) {
        cs[i] = (client_t){.ctx = ctx, .endpoint = endpoint, .n = offset + i, .ready = &ready,
                           .t_start = &t_start, .t_end = &t_end};
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, 256 * 1024);
        int rc = pthread_create(&th[i], &attr, echo_client, &cs[i]);
        pthread_attr_destroy(&attr);
        if (rc != 0) {
            fprintf(stderr, "zload: pthread_create: %s\n", strerror(rc));
            exit(1); /* the barrier would never open */
        }
        started++;
    }
    t_start = now_ns() + (int64_t)(warm * 1e9);
    t_end = t_start + (int64_t)(dur * 1e9);
    pthread_barrier_wait(&ready);

    sleep_until(t_start);
    long long cpu0 = pid > 0 ? proc_cpu_ticks(pid) : -1;
    double self0 = self_cpu_secs();
    sleep_until(t_end);
    long long cpu1 = pid > 0 ? proc_cpu_ticks(pid) : -1;
    double self1 = self_cpu_secs();

    long replies = 0, bad = 0, errors = 0;
    lats_t all = {0};
    for (long i = 0; i < started; i++) {
        pthread_join(th[i], NULL);
        replies += cs[i].replies;
        bad += cs[i].bad;
        errors += cs[i].errors;
        for (size_t k = 0; k < cs[i].lats.n; k++)
            if (lats_push(&all, cs[i].lats.v[k]) != 0) {
                fprintf(stderr, "zload: out of memory\n");
                return 1;
            }
        free(cs[i].lats.v);
    }
    qsort(all.v, all.n, sizeof *all.v, cmp_i64);
    printf("RESULT label=%s mode=echo sec=%s clients=%ld secs=%.3f replies=%ld qps=%.0f "
           "p50_us=%.1f p99_us=%.1f max_us=%.1f bad=%ld",
           label, curve_on ? "curve" : "null", clients, dur, replies, replies / dur,
           pct_us(&all, 0.50), pct_us(&all, 0.99),
           all.n ? all.v[all.n - 1] / 1e3 : 0.0, bad);
    print_cpu(cpu0, cpu1, replies, dur);
    printf(" client_cores=%.3f errors=%ld\n", (self1 - self0) / dur, errors);
    fflush(stdout);
    free(all.v);
    free(cs);
    free(th);
    pthread_barrier_destroy(&ready);
    return (bad || errors || replies == 0) ? 1 : 0;
}

/* ---- sleep mode ---- */

static int run_sleep(void *ctx, const char *endpoint, long clients, long offset, double dur,
                     long pid, const char *label) {
    void **socks = calloc(clients, sizeof *socks);
    int64_t *sent = calloc(clients, sizeof *sent);
    long *idx = calloc(clients, sizeof *idx); /* poll slot -> client */
    zmq_pollitem_t *items = calloc(clients, sizeof *items);
    char *done = calloc(clients, 1);
    if (!socks || !sent || !idx || !items || !done) {
        fprintf(stderr, "zload: out of memory\n");
        return 1;
    }
    int64_t t0 = now_ns();
    long long cpu0 = pid > 0 ? proc_cpu_ticks(pid) : -1;
    long errors = 0;
    for (long i = 0; i < clients; i++) {
        socks[i] = new_dealer(ctx, endpoint, offset + i);
        if (!socks[i]) {
            errors++;
            done[i] = 1;
            continue;
        }
        sent[i] = now_ns();
        if (zmq_send(socks[i], SLEEP_REQ, sizeof SLEEP_REQ - 1, 0) < 0) {
            fprintf(stderr, "zload: Client%ld: send: %s\n", offset + i, zmq_strerror(zmq_errno()));
            errors++;
            done[i] = 1;
        }
    }
    int64_t deadline = t0 + (int64_t)(dur * 1e9);
    int64_t first = -1, last = -1;
    long replies = 0, bad = 0, early = 0, waiting = clients - errors;
    lats_t lats = {0};
    while (waiting > 0) {
        int64_t now = now_ns();
        if (now >= deadline)
            break;
        int n = 0;
        for (long i = 0; i < clients; i++)
            if (!done[i]) {
                items[n] = (zmq_pollitem_t){socks[i], 0, ZMQ_POLLIN, 0};
                idx[n++] = i;
            }
        long tmo = (long)((deadline - now) / 1000000) + 1;
        int rc = zmq_poll(items, n, tmo);
        if (rc < 0) {
            if (zmq_errno() == EINTR)
                continue;
            fprintf(stderr, "zload: poll: %s\n", zmq_strerror(zmq_errno()));
            break;
        }
        for (int k = 0; k < n; k++) {
            if (!(items[k].revents & ZMQ_POLLIN))
                continue;
            long i = idx[k];
            char expect[64];
            size_t explen = (size_t)snprintf(expect, sizeof expect, "Reply to Client%ld", offset + i);
            int ok = recv_reply(socks[i], expect, explen);
            int64_t te = now_ns();
            done[i] = 1;
            waiting--;
            if (ok < 0) {
                errors++;
                continue;
            }
            if (!ok)
                bad++;
            replies++;
            lats_push(&lats, te - sent[i]);
            if (te - sent[i] < (int64_t)SLEEP_HANDLER_MS * 1000000)
                early++;
            if (first < 0)
                first = te;
            last = te;
        }
    }
    int64_t t1 = now_ns();
    long long cpu1 = pid > 0 ? proc_cpu_ticks(pid) : -1;
    double secs = (t1 - t0) / 1e9;
    qsort(lats.v, lats.n, sizeof *lats.v, cmp_i64);
    printf("RESULT label=%s mode=sleep sec=%s clients=%ld secs=%.3f replies=%ld qps=%.0f "
           "p50_us=%.1f p99_us=%.1f max_us=%.1f bad=%ld",
           label, curve_on ? "curve" : "null", clients, secs, replies, replies / secs,
           pct_us(&lats, 0.50), pct_us(&lats, 0.99),
           lats.n ? lats.v[lats.n - 1] / 1e3 : 0.0, bad);
    print_cpu(cpu0, cpu1, replies, secs);
    printf(" min_us=%.1f early=%ld first_s=%.3f last_s=%.3f missing=%ld errors=%ld\n",
           lats.n ? lats.v[0] / 1e3 : 0.0, early, first < 0 ? 0.0 : (first - t0) / 1e9,
           last < 0 ? 0.0 : (last - t0) / 1e9, clients - replies, errors);
    fflush(stdout);
    for (long i = 0; i < clients; i++)
        if (socks[i])
            zmq_close(socks[i]);
    free(lats.v);
    free(socks);
    free(sent);
    free(idx);
    free(items);
    free(done);
    return (bad || early || replies != clients) ? 1 : 0;
}

static void usage(const char *argv0) {
    fprintf(stderr,
            "usage: %s -e ENDPOINT [-c CLIENTS=1] [-d SECONDS] [-w WARMUP_SECONDS=1]\n"
            "          [-p SERVER_PID] [-l LABEL] [-m echo|sleep] [-o OFFSET=0] [-t IO_THREADS=1]\n"
            "          [-k SERVER_PUBLIC_Z85 [-K CLIENT_SECRET_Z85]]\n"
            "  SECONDS: the measured window in echo mode (default 4), the longest wait in\n"
            "  sleep mode (default 30)\n"
            "  -k: connect over CURVE to the server with this public key; -K: the client's\n"
            "  secret key (default: a fresh key pair)\n",
            argv0);
}

int main(int argc, char **argv) {
    const char *endpoint = NULL, *label = "-", *mode = "echo", *server_key = NULL,
               *client_secret = NULL;
    long clients = 1, offset = 0, pid = 0, io_threads = 1;
    double dur = -1, warm = 1;
    int opt;
    while ((opt = getopt(argc, argv, "e:c:d:w:p:l:m:o:t:k:K:h")) != -1) {
        switch (opt) {
        case 'e': endpoint = optarg; break;
        case 'c': clients = atol(optarg); break;
        case 'd': dur = atof(optarg); break;
        case 'w': warm = atof(optarg); break;
        case 'p': pid = atol(optarg); break;
        case 'l': label = optarg; break;
        case 'm': mode = optarg; break;
        case 'o': offset = atol(optarg); break;
        case 't': io_threads = atol(optarg); break;
        case 'k': server_key = optarg; break;
        case 'K': client_secret = optarg; break;
        default: usage(argv[0]); return 2;
        }
    }
    int sleep_mode = strcmp(mode, "sleep") == 0;
    if (!endpoint || clients <= 0 || offset < 0 || warm < 0 || io_threads <= 0 ||
        (!sleep_mode && strcmp(mode, "echo") != 0) || optind != argc) {
        usage(argv[0]);
        return 2;
    }
    if (dur < 0)
        dur = sleep_mode ? 30 : 4;
    if (dur <= 0) {
        usage(argv[0]);
        return 2;
    }
    if (client_secret && !server_key) {
        fprintf(stderr, "zload: -K needs -k\n");
        return 2;
    }
    if (server_key) {
        if (!zmq_has("curve")) {
            fprintf(stderr, "zload: this libzmq has no CURVE\n");
            return 2;
        }
        uint8_t bin[32];
        if (strlen(server_key) != 40 || !zmq_z85_decode(bin, server_key)) {
            fprintf(stderr, "zload: -k: not a Z85 key (40 characters)\n");
            return 2;
        }
        memcpy(curve_server, server_key, 41);
        if (client_secret) {
            if (strlen(client_secret) != 40 || !zmq_z85_decode(bin, client_secret) ||
                zmq_curve_public(curve_public, client_secret) != 0) {
                fprintf(stderr, "zload: -K: not a Z85 secret key (40 characters)\n");
                return 2;
            }
            memcpy(curve_secret, client_secret, 41);
        } else if (zmq_curve_keypair(curve_public, curve_secret) != 0) {
            fprintf(stderr, "zload: zmq_curve_keypair: %s\n", zmq_strerror(zmq_errno()));
            return 1;
        }
        curve_on = 1;
    }

    void *ctx = zmq_ctx_new();
    zmq_ctx_set(ctx, ZMQ_IO_THREADS, (int)io_threads);
    if (clients + 64 > zmq_ctx_get(ctx, ZMQ_MAX_SOCKETS))
        zmq_ctx_set(ctx, ZMQ_MAX_SOCKETS, (int)clients + 64);
    int rc = sleep_mode ? run_sleep(ctx, endpoint, clients, offset, dur, pid, label)
                        : run_echo(ctx, endpoint, clients, offset, dur, warm, pid, label);
    zmq_ctx_term(ctx);
    return rc;
}
