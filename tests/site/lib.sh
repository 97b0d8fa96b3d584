# Shared by the site's bash tests: checks that count, servers that are always stopped, free
# ports. Source it after `set -u`; it sets a trap on EXIT that stops every server started
# with `started` and removes $work.

passed=0
failed=0
started_pids=()
work=$(mktemp -d "${EAR_TEST_TMP:-/tmp}/${test_name:-site}.XXXXXX")

# check DESCRIPTION COMMAND...: counts one check; prints the description when it fails.
check() {
    local description=$1
    shift
    if "$@"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "FAILED: $description" >&2
    fi
}

finish() {
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}

# started PID: stops PID (TERM, then KILL after 5 s) when the test ends, however it ends.
started() {
    started_pids+=("$1")
}

stop_process() {
    local pid=$1
    # 0, -1 or nothing would signal a whole process group: never.
    [[ $pid =~ ^[0-9]+$ ]] && [ "$pid" -gt 1 ] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    return 0
}

cleanup() {
    local pid
    for pid in "${started_pids[@]}"; do
        stop_process "$pid"
    done
    rm -rf "$work"
}
trap cleanup EXIT

# free_port: prints a loopback TCP port nobody listens on (not 8000 or 5001, which a developer
# may be using), chosen at random so that tests running side by side do not collide.
free_port() {
    local port
    for _ in $(seq 200); do
        port=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
    return 1
}

# wait_for_port PORT [SECONDS]: until something listens there.
wait_for_port() {
    local deadline=$((SECONDS + ${2:-10}))
    while [ $SECONDS -le $deadline ]; do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.05
    done
    return 1
}

# start_site LOG ARGS...: starts ear-site on a port the system picks; sets site_pid, site_port.
start_site() {
    local log=$1
    shift
    "$EAR_SITE_BIN" --port 0 "$@" 2>"$log" &
    site_pid=$!
    started "$site_pid"
    site_port=
    for _ in $(seq 200); do
        [ -f "$log" ] &&
            site_port=$(sed -n 's|^ear-site: serving http://[^ ]*:\([0-9]*\)/.*|\1|p' "$log")
        [ -n "$site_port" ] && return 0
        kill -0 "$site_pid" 2>/dev/null || break
        sleep 0.05
    done
    echo "ear-site did not start:" >&2
    cat "$log" >&2
    return 1
}

# status URL [CURL_ARGS...]: prints the HTTP status (000 when no answer); the body goes to
# $work/body and the headers to $work/headers.
status() {
    local url=$1
    shift
    curl -s --max-time 60 -o "$work/body" -D "$work/headers" -w '%{http_code}' "$@" "$url" ||
        true
}

# header NAME: the value of a header in $work/headers (last one if repeated).
header() {
    tr -d '\r' <"$work/headers" | sed -n "s/^$1: //Ip" | tail -n 1
}

# stopped_cleanly DESCRIPTION PID LOG: stops a server we started with SIGTERM and checks
# that it exited 0 with no sanitizer report (leaks included) in its log.
stopped_cleanly() {
    local exit_code=0
    kill -TERM "$2" 2>/dev/null
    wait "$2" || exit_code=$?
    check "$1 stops on SIGTERM with status 0 ($exit_code)" [ "$exit_code" = 0 ]
    check "$1 logged no sanitizer report" \
        bash -c "! grep -qE 'Sanitizer|runtime error' '$3'"
}

# Whether the binary is built with AddressSanitizer (its memory figures mean nothing then).
sanitized() {
    grep -q __asan_init "$1" 2>/dev/null
}

# rss_kb PID: resident memory in KiB.
rss_kb() {
    sed -n "s/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p" "/proc/$1/status"
}
