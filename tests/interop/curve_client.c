/* A libzmq C CURVE client for tests/curve_interop_test.go.
 *
 *   curve_client ENDPOINT SERVER_KEY PUBLIC_KEY SECRET_KEY FRAME...
 *
 * A DEALER with ZMQ_CURVE_SERVERKEY, ZMQ_CURVE_PUBLICKEY and
 * ZMQ_CURVE_SECRETKEY (Z85 text) sends one message of the given text frames
 * and prints the reply as one JSON line {"reply": [hex...]}. It exits 1 with
 * a message on stderr when something fails or no reply comes within 5 s.
 */
#include <stdio.h>
#include <string.h>
#include <zmq.h>

static int fail(const char *what)
{
    fprintf(stderr, "curve_client.c: %s: %s\n", what, zmq_strerror(zmq_errno()));
    return 1;
}

static int set_key(void *sock, int option, const char *name, const char *z85)
{
    /* A Z85 key is 40 characters; with its terminating NUL libzmq decodes it. */
    if (strlen(z85) != 40) {
        fprintf(stderr, "curve_client.c: %s is not 40 characters of Z85\n", name);
        return 1;
    }
    if (zmq_setsockopt(sock, option, z85, 41) != 0)
        return fail(name);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 6) {
        fprintf(stderr, "usage: %s ENDPOINT SERVER_KEY PUBLIC_KEY SECRET_KEY FRAME...\n", argv[0]);
        return 2;
    }
    if (!zmq_has("curve")) {
        fprintf(stderr, "curve_client.c: this libzmq has no CURVE\n");
        return 1;
    }
    void *ctx = zmq_ctx_new();
    void *sock = zmq_socket(ctx, ZMQ_DEALER);
    if (sock == NULL)
        return fail("zmq_socket");
    int linger = 0, timeout = 5000;
    if (zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger) != 0 ||
        zmq_setsockopt(sock, ZMQ_RCVTIMEO, &timeout, sizeof timeout) != 0 ||
        zmq_setsockopt(sock, ZMQ_SNDTIMEO, &timeout, sizeof timeout) != 0)
        return fail("zmq_setsockopt");
    if (set_key(sock, ZMQ_CURVE_SERVERKEY, "ZMQ_CURVE_SERVERKEY", argv[2]) ||
        set_key(sock, ZMQ_CURVE_PUBLICKEY, "ZMQ_CURVE_PUBLICKEY", argv[3]) ||
        set_key(sock, ZMQ_CURVE_SECRETKEY, "ZMQ_CURVE_SECRETKEY", argv[4]))
        return 1;
    if (zmq_connect(sock, argv[1]) != 0)
        return fail("zmq_connect");
    for (int i = 5; i < argc; i++) {
        if (zmq_send(sock, argv[i], strlen(argv[i]), i < argc - 1 ? ZMQ_SNDMORE : 0) < 0)
            return fail("zmq_send");
    }

    /* Read the whole reply before printing, so a failure prints nothing. */
    static char out[1 << 20];
    size_t len = 0;
    int more = 1;
    len += snprintf(out + len, sizeof out - len, "{\"reply\":[");
    for (int n = 0; more; n++) {
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        if (zmq_msg_recv(&msg, sock, 0) < 0)
            return fail("no reply (zmq_msg_recv)");
        const unsigned char *data = zmq_msg_data(&msg);
        size_t size = zmq_msg_size(&msg);
        if (len + 2 * size + 8 > sizeof out) {
            fprintf(stderr, "curve_client.c: reply too long\n");
            return 1;
        }
        len += snprintf(out + len, sizeof out - len, "%s\"", n ? "," : "");
        for (size_t i = 0; i < size; i++)
            len += snprintf(out + len, sizeof out - len, "%02x", data[i]);
        out[len++] = '"';
        more = zmq_msg_more(&msg);
        zmq_msg_close(&msg);
    }
    len += snprintf(out + len, sizeof out - len, "]}\n");
    fputs(out, stdout);
    zmq_close(sock);
    zmq_ctx_term(ctx);
    return 0;
}
