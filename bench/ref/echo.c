/*
 * echo: the raw-libzmq reference server of the benchmark (the contract of
 * bench/handlers.js), one ROUTER socket on one thread.
 *
 *   cc -O2 -Wall -o echo bench/ref/echo.c -lzmq
 *   ./echo PORT|ENDPOINT        (a bare port means tcp://127.0.0.1:PORT)
 *   CURVE_SECRET=Z85 ./echo PORT (the same, over CURVE)
 *
 * For every message, the last frame is the request and the frames before it
 * are the envelope (DEALER: identity; REQ: identity, empty delimiter), sent
 * back unchanged in front of the reply:
 *   a request holding "sleep"  -> "Reply to <identity>" 10 s later (a timer
 *                                 queue served by zmq_poll's timeout)
 *   a request holding "reply"  -> "Reply to <identity>" at once
 *   anything else              -> {"error":"unknown command"}
 * The ROUTER's send high-water mark is lifted, so no reply is dropped for a
 * client that reads slowly. SIGINT or SIGTERM stops it.
 *
 * With CURVE_SECRET set to a Z85 secret key (40 characters), the ROUTER is a
 * CURVE server (ZMQ_CURVE_SERVER, ZMQ_CURVE_SECRETKEY) and refuses NULL
 * clients. There is no ZAP handler, so any client key is let in: encryption
 * without an allow-list, as moebius-js with curve_key and no curve_allow.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#define MAX_FRAMES 64
#define SLEEP_MS 10000
#define BATCH 256 /* messages read per wake-up before timers are looked at */

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig; stop = 1; }

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A reply waiting for its deadline: the envelope frames, moved here. */
typedef struct {
    int64_t deadline;
    int n;
    zmq_msg_t *env;
} pending_t;

/* FIFO of pending replies: all wait the same time, so deadlines ascend. */
static pending_t *q;
static size_t q_head, q_tail, q_cap;

static int q_push(pending_t p) {
    if (q_tail == q_cap) {
        if (q_head > 0) {
            memmove(q, q + q_head, (q_tail - q_head) * sizeof *q);
            q_tail -= q_head;
            q_head = 0;
        } else {
            size_t cap = q_cap ? q_cap * 2 : 1024;
            pending_t *nq = realloc(q, cap * sizeof *nq);
            if (!nq)
                return -1;
            q = nq;
            q_cap = cap;
        }
    }
    q[q_tail++] = p;
    return 0;
}

/* Sends env[0..n-1] then body; the envelope messages are consumed. */
static void send_reply(void *s, zmq_msg_t *env, int n, const void *body, size_t len) {
    for (int i = 0; i < n; i++) {
        if (zmq_msg_send(&env[i], s, ZMQ_SNDMORE) < 0) {
            /* the peer is gone (or the process is stopping): drop it */
            for (int k = i; k < n; k++)
                zmq_msg_close(&env[k]);
            return;
        }
    }
    zmq_send(s, body, len, 0);
}

/* The reply body for an identity frame: "Reply to " + its bytes. */
static size_t reply_body(char *buf, size_t cap, zmq_msg_t *id) {
    static const char prefix[] = "Reply to ";
    size_t plen = sizeof prefix - 1, idlen = zmq_msg_size(id);
    if (plen + idlen > cap)
        idlen = cap - plen;
    memcpy(buf, prefix, plen);
    memcpy(buf + plen, zmq_msg_data(id), idlen);
    return plen + idlen;
}

static int contains(zmq_msg_t *m, const char *word) {
    return memmem(zmq_msg_data(m), zmq_msg_size(m), word, strlen(word)) != NULL;
}

/* Reads and answers one message; returns -1 when none is waiting. */
static int handle_one(void *s) {
    zmq_msg_t f[MAX_FRAMES];
    int n = 0;
    zmq_msg_init(&f[0]);
    if (zmq_msg_recv(&f[0], s, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&f[0]);
        return -1;
    }
    n = 1;
    int truncated = 0;
    while (zmq_msg_more(&f[n - 1])) {
        if (n == MAX_FRAMES) { /* too many frames: drain and drop it */
            zmq_msg_t extra;
            zmq_msg_init(&extra);
            while (zmq_msg_recv(&extra, s, 0) >= 0 && zmq_msg_more(&extra))
                ;
            zmq_msg_close(&extra);
            truncated = 1;
            break;
        }
        zmq_msg_init(&f[n]);
        if (zmq_msg_recv(&f[n], s, 0) < 0) {
            zmq_msg_close(&f[n]);
            break;
        }
        n++;
    }
    if (truncated || n < 2) { /* no request frame after the identity */
        for (int i = 0; i < n; i++)
            zmq_msg_close(&f[i]);
        return 0;
    }
    zmq_msg_t *req = &f[n - 1];
    int env_n = n - 1;
    if (contains(req, "sleep")) {
        pending_t p = {now_ms() + SLEEP_MS, env_n, malloc(env_n * sizeof(zmq_msg_t))};
        if (p.env && q_push(p) == 0) {
            for (int i = 0; i < env_n; i++) {
                zmq_msg_init(&p.env[i]);
                zmq_msg_move(&p.env[i], &f[i]);
                zmq_msg_close(&f[i]);
            }
        } else {
            free(p.env);
            for (int i = 0; i < env_n; i++)
                zmq_msg_close(&f[i]);
        }
    } else if (contains(req, "reply")) {
        char body[512];
        size_t len = reply_body(body, sizeof body, &f[0]);
        send_reply(s, f, env_n, body, len);
    } else {
        static const char err[] = "{\"error\":\"unknown command\"}";
        send_reply(s, f, env_n, err, sizeof err - 1);
    }
    zmq_msg_close(req);
    return 0;
}

/* Sends the replies whose deadline has come; returns the poll timeout. */
static long fire_timers(void *s) {
    int64_t now = now_ms();
    while (q_head < q_tail && q[q_head].deadline <= now) {
        pending_t *p = &q[q_head++];
        char body[512];
        size_t len = reply_body(body, sizeof body, &p->env[0]);
        send_reply(s, p->env, p->n, body, len);
        free(p->env);
    }
    if (q_head == q_tail) {
        q_head = q_tail = 0;
        return -1;
    }
    return (long)(q[q_head].deadline - now);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s PORT|ENDPOINT\n", argv[0]);
        return 2;
    }
    char endpoint[256];
    if (strspn(argv[1], "0123456789") == strlen(argv[1]))
        snprintf(endpoint, sizeof endpoint, "tcp://127.0.0.1:%s", argv[1]);
    else
        snprintf(endpoint, sizeof endpoint, "%s", argv[1]);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    void *ctx = zmq_ctx_new();
    void *s = zmq_socket(ctx, ZMQ_ROUTER);
    int zero = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(s, ZMQ_SNDHWM, &zero, sizeof zero);
    const char *secret = getenv("CURVE_SECRET");
    if (secret && *secret) {
        int one = 1;
        uint8_t bin[32];
        if (!zmq_has("curve")) {
            fprintf(stderr, "echo: this libzmq has no CURVE\n");
            return 1;
        }
        if (strlen(secret) != 40 || !zmq_z85_decode(bin, secret)) {
            fprintf(stderr, "echo: CURVE_SECRET: not a Z85 secret key (40 characters)\n");
            return 2;
        }
        if (zmq_setsockopt(s, ZMQ_CURVE_SERVER, &one, sizeof one) != 0 ||
            zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, secret, 40) != 0) {
            fprintf(stderr, "echo: CURVE options: %s\n", zmq_strerror(zmq_errno()));
            return 1;
        }
    }
    if (zmq_bind(s, endpoint) != 0) {
        fprintf(stderr, "echo: bind %s: %s\n", endpoint, zmq_strerror(zmq_errno()));
        return 1;
    }
    fprintf(stderr, "echo: listening on %s (%s)\n", endpoint,
            secret && *secret ? "CURVE" : "NULL");

    zmq_pollitem_t item = {s, 0, ZMQ_POLLIN, 0};
    long timeout = -1;
    while (!stop) {
        int rc = zmq_poll(&item, 1, timeout);
        if (rc < 0) {
            if (zmq_errno() == EINTR)
                continue;
            fprintf(stderr, "echo: poll: %s\n", zmq_strerror(zmq_errno()));
            break;
        }
        if (item.revents & ZMQ_POLLIN)
            for (int i = 0; i < BATCH && !stop; i++)
                if (handle_one(s) < 0)
                    break;
        timeout = fire_timers(s);
    }
    zmq_close(s);
    zmq_ctx_term(ctx);
    return 0;
}
