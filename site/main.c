/* ear-site: the main site's entry point. Serves until SIGTERM or SIGINT, then finishes the
 * requests under way and exits 0 (what supervisor and systemd send to stop it). */
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "site.h"

enum { EXIT_USAGE = 2 };

static void print_help(FILE *out)
{
    fprintf(out,
            "usage: ear-site [OPTIONS]\n\n"
            "Serves the personal site: the home page, the blog rendered from Markdown, its Atom\n"
            "feed and static files. In production nginx sends /ear/ to the Ear service; with\n"
            "--dev the site forwards /ear/ itself, so the whole site works on one port.\n\n"
            "options:\n"
            "  --host H              address to listen on (default 127.0.0.1)\n"
            "  --port P              port (default 8000; 0: any free one, printed at start)\n"
            "  --content DIR         the content folder (default site/content): index.md,\n"
            "                        posts/*.md, templates/layout.html, static/\n"
            "  --base-url URL        the public address used in the feed's links (default:\n"
            "                        index.md's `url`, else the request's Host)\n"
            "  --dev                 forward /ear/... to Ear with /ear stripped, as nginx does,\n"
            "                        and re-read the content folder on every page request\n"
            "  --ear-upstream H:P    where Ear listens, for --dev (default 127.0.0.1:5001)\n"
            "  --ear-redirect URL    redirect /ear/... to URL... instead of forwarding (implies\n"
            "                        --dev)\n"
            "  --quiet               no access log on stderr\n"
            "  --help                this help\n\n"
            "Exit status: 0 stopped by SIGTERM/SIGINT, 1 failed, 2 bad usage.\n");
}

static int usage_error(const char *format, const char *value)
{
    fprintf(stderr, "ear-site: ");
    fprintf(stderr, format, value);
    fprintf(stderr, "\n(see `ear-site --help`)\n");
    return EXIT_USAGE;
}

int main(int argc, char **argv)
{
    ear_site_options options = {
        .host = "127.0.0.1",
        .port = 8000,
        .content = "site/content",
    };
    const char *upstream = "127.0.0.1:5001";
    static const struct option long_options[] = {
        {"host", required_argument, NULL, 'H'},
        {"port", required_argument, NULL, 'p'},
        {"content", required_argument, NULL, 'c'},
        {"base-url", required_argument, NULL, 'b'},
        {"dev", no_argument, NULL, 'd'},
        {"ear-upstream", required_argument, NULL, 'u'},
        {"ear-redirect", required_argument, NULL, 'r'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    opterr = 0;
    int option;
    while ((option = getopt_long(argc, argv, "", long_options, NULL)) != -1) {
        char *end;
        switch (option) {
        case 'H': options.host = optarg; break;
        case 'p':
            options.port = (int)strtol(optarg, &end, 10);
            if (!*optarg || *end || options.port < 0 || options.port > 65535)
                return usage_error("--port '%s': expected a number from 0 to 65535", optarg);
            break;
        case 'c': options.content = optarg; break;
        case 'b': options.base_url = optarg; break;
        case 'd': options.dev = 1; break;
        case 'u': upstream = optarg; break;
        case 'r':
            if (strncmp(optarg, "http://", 7) && strncmp(optarg, "https://", 8) && optarg[0] != '/')
                return usage_error("--ear-redirect '%s': expected http(s)://... or /...", optarg);
            options.ear_redirect = optarg;
            options.dev = 1;
            break;
        case 'q': options.quiet = 1; break;
        case 'h': print_help(stdout); return 0;
        default:
            return usage_error("unknown option or missing value: '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return usage_error("unexpected argument '%s'", argv[optind]);
    ear_error err;
    if (ear_site_upstream_parse(upstream, &options.upstream, &err) != 0)
        return usage_error("--ear-upstream %s", err.message);

    /* Blocked before any thread starts, so only sigwait below sees them. */
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
    signal(SIGPIPE, SIG_IGN);

    ear_site_server *server = ear_site_server_start(&options, &err);
    if (!server) {
        fprintf(stderr, "ear-site: %s\n", err.message);
        return 1;
    }
    fprintf(stderr, "ear-site: serving http://%s:%d/ from %s", options.host,
            ear_site_server_port(server), options.content);
    if (options.ear_redirect)
        fprintf(stderr, " (dev: /ear/ redirects to %s)\n", options.ear_redirect);
    else if (options.dev)
        fprintf(stderr, " (dev: /ear/ forwarded to %s:%s)\n", options.upstream.host,
                options.upstream.port);
    else
        fprintf(stderr, "\n");
    int received;
    sigwait(&stop_signals, &received);
    fprintf(stderr, "ear-site: %s, stopping\n", received == SIGTERM ? "SIGTERM" : "SIGINT");
    ear_site_server_stop(server);
    return 0;
}
