/* A stand-in for `ear serve` that records what reaches it, so the dev proxy's tests can
 * check exactly what the site forwarded. One connection at a time:
 *
 *   fake_ear PORT_FILE RECORD_DIR
 *
 * listens on a free loopback port and writes it to PORT_FILE; for each request writes the
 * head to RECORD_DIR/head and the body to RECORD_DIR/body, then answers:
 *   /status/NNN  status NNN;
 *   /stream      200 with no Content-Length, 300000 bytes, closing to end the body;
 *   anything else 200; every body is "method PATH body N bytes" (padded for /stream), and
 *   the answer carries X-Fake-Ear: yes and Set-Cookie: fake=1. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

/* Written whole, then renamed, so a test never reads half a record. */
static int write_file(const char *path, const char *data, size_t size)
{
    char temporary[4200];
    snprintf(temporary, sizeof temporary, "%s.part", path);
    FILE *file = fopen(temporary, "wb");
    if (!file)
        return -1;
    int ok = fwrite(data, 1, size, file) == size;
    ok &= fclose(file) == 0;
    return ok ? rename(temporary, path) : -1;
}

static int send_all(int fd, const char *data, size_t size)
{
    while (size) {
        ssize_t sent = send(fd, data, size, MSG_NOSIGNAL);
        if (sent <= 0)
            return -1;
        data += sent;
        size -= (size_t)sent;
    }
    return 0;
}

static void serve_one(int client, const char *record_dir)
{
    size_t capacity = 1 << 16, filled = 0;
    char *data = malloc(capacity);
    char *head_end = NULL;
    while (data && !head_end) {
        if (filled + 1 >= capacity)
            goto done;
        ssize_t got = recv(client, data + filled, capacity - filled - 1, 0);
        if (got <= 0)
            goto done;
        filled += (size_t)got;
        data[filled] = 0;
        head_end = strstr(data, "\r\n\r\n");
    }
    if (!data)
        goto done;
    size_t head_size = (size_t)(head_end - data) + 4;
    long long length = 0;
    for (char *line = data; line < head_end; line = strstr(line, "\r\n") + 2)
        if (!strncasecmp(line, "Content-Length:", 15))
            length = atoll(line + 15);
    size_t total = head_size + (size_t)length;
    if (total + 1 > capacity) {
        char *grown = realloc(data, total + 1);
        if (!grown)
            goto done;
        data = grown;
        capacity = total + 1;
    }
    while (filled < total) {
        ssize_t got = recv(client, data + filled, total - filled, 0);
        if (got <= 0)
            break;
        filled += (size_t)got;
    }
    char record[4096];
    snprintf(record, sizeof record, "%s/head", record_dir);
    write_file(record, data, head_size);
    snprintf(record, sizeof record, "%s/body", record_dir);
    write_file(record, data + head_size, filled - head_size);

    char method[16] = "", path[2048] = "";
    sscanf(data, "%15s %2047s", method, path);
    int status = 200;
    if (!strncmp(path, "/status/", 8))
        status = atoi(path + 8);
    int stream = !strcmp(path, "/stream");
    char text[2300];
    int text_size = snprintf(text, sizeof text, "%s %s body %zu bytes\n", method, path,
                             filled - head_size);
    char head[512];
    int size;
    if (stream)
        size = snprintf(head, sizeof head, "HTTP/1.0 %d Fake\r\nContent-Type: text/plain\r\n"
                                           "X-Fake-Ear: yes\r\nSet-Cookie: fake=1\r\n\r\n",
                        status);
    else
        size = snprintf(head, sizeof head, "HTTP/1.0 %d Fake\r\nContent-Type: text/plain\r\n"
                                           "Content-Length: %d\r\nX-Fake-Ear: yes\r\n"
                                           "Set-Cookie: fake=1\r\n\r\n",
                        status, text_size);
    if (send_all(client, head, (size_t)size) != 0)
        goto done;
    if (!strcmp(method, "HEAD"))
        goto done;
    if (send_all(client, text, (size_t)text_size) != 0)
        goto done;
    if (stream) {
        char filler[1000];
        memset(filler, 'x', sizeof filler);
        for (int i = 0; i < 300; i++)
            if (send_all(client, filler, sizeof filler) != 0)
                break;
    }
done:
    free(data);
    close(client);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: fake_ear PORT_FILE RECORD_DIR\n");
        return 2;
    }
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in address = {.sin_family = AF_INET};
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    if (listener < 0 || bind(listener, (struct sockaddr *)&address, sizeof address) != 0 ||
        listen(listener, 16) != 0 ||
        getsockname(listener, (struct sockaddr *)&address, &length) != 0) {
        perror("fake_ear");
        return 1;
    }
    char port[16];
    int port_size = snprintf(port, sizeof port, "%d\n", ntohs(address.sin_port));
    if (write_file(argv[1], port, (size_t)port_size) != 0) {
        perror(argv[1]);
        return 1;
    }
    for (;;) {
        int client = accept(listener, NULL, NULL);
        if (client >= 0)
            serve_one(client, argv[2]);
    }
}
