/*
 * pipeline: pipelined throughput of a ZeroMQ request server, from one
 * libzmq DEALER with up to WINDOW requests in flight.
 *
 *   cc -O2 -o pipeline bench/pipeline.c -lzmq
 *   ./pipeline tcp://127.0.0.1:5555 [COUNT=100000] [WINDOW=COUNT] [MESSAGE]
 *
 * It sends COUNT copies of MESSAGE (default {"command":"reply"}) as fast
 * as the socket takes them, keeping at most WINDOW unanswered, reads every
 * reply as it comes, and prints one line:
 *   RESULT mode=pipeline count=N window=W secs=S qps=Q bad=B
 * Replies that are JSON errors (starting with {"error") count as bad. The
 * socket's high-water marks are lifted so that the whole window can be in
 * flight; the server's flow control is what holds it back.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s ENDPOINT [COUNT] [WINDOW] [MESSAGE]\n", argv[0]);
        return 2;
    }
    const char *endpoint = argv[1];
    long count = argc > 2 ? atol(argv[2]) : 100000;
    long window = argc > 3 ? atol(argv[3]) : count;
    const char *msg = argc > 4 ? argv[4] : "{\"command\":\"reply\"}";
    size_t msglen = strlen(msg);
    if (count <= 0 || window <= 0) {
        fprintf(stderr, "pipeline: COUNT and WINDOW must be positive\n");
        return 2;
    }

    void *ctx = zmq_ctx_new();
    void *s = zmq_socket(ctx, ZMQ_DEALER);
    int zero = 0, linger = 0;
    zmq_setsockopt(s, ZMQ_SNDHWM, &zero, sizeof zero);
    zmq_setsockopt(s, ZMQ_RCVHWM, &zero, sizeof zero);
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_connect(s, endpoint) != 0) {
        fprintf(stderr, "pipeline: connect %s: %s\n", endpoint, zmq_strerror(zmq_errno()));
        return 1;
    }

    /* One round trip first, so the connection is up before the clock runs. */
    char buf[4096];
    zmq_send(s, msg, msglen, 0);
    if (zmq_recv(s, buf, sizeof buf, 0) < 0) {
        fprintf(stderr, "pipeline: first reply: %s\n", zmq_strerror(zmq_errno()));
        return 1;
    }

    long sent = 0, got = 0, bad = 0;
    double t0 = now();
    zmq_pollitem_t item = {s, 0, 0, 0};
    while (got < count) {
        item.events = ZMQ_POLLIN;
        if (sent < count && sent - got < window)
            item.events |= ZMQ_POLLOUT;
        if (zmq_poll(&item, 1, 10000) <= 0) {
            fprintf(stderr, "pipeline: no progress for 10 s (sent %ld, received %ld)\n", sent, got);
            return 1;
        }
        while ((item.revents & ZMQ_POLLOUT) && sent < count && sent - got < window) {
            if (zmq_send(s, msg, msglen, ZMQ_DONTWAIT) < 0)
                break;
            sent++;
        }
        for (;;) {
            int n = zmq_recv(s, buf, sizeof buf, ZMQ_DONTWAIT);
            if (n < 0)
                break;
            if (n >= 9 && memcmp(buf, "{\"error\"", 8) == 0)
                bad++;
            got++;
        }
    }
    double secs = now() - t0;
    printf("RESULT mode=pipeline count=%ld window=%ld secs=%.3f qps=%.0f bad=%ld\n",
           count, window, secs, count / secs, bad);
    zmq_close(s);
    zmq_ctx_term(ctx);
    return bad ? 1 : 0;
}
