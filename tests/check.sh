# Sourced by the shell tests: counts checks, and reads .npy files.
# A test ends with: echo "$passed passed, $failed failed"; [ "$failed" -eq 0 ]
passed=0
failed=0

check() { # check DESCRIPTION COMMAND...: passes when the command succeeds
    local what=$1
    shift
    if "$@"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "check failed: $what" >&2
    fi
}

# The shape of a .npy file, as "64, 51".
npy_shape() {
    head -c 256 "$1" | tr -d '\0' | grep -ao "'shape': ([0-9, ]*" | sed "s/'shape': (//; s/,$//"
}

# The float32 values of a .npy file, one a line.
npy_values() {
    local header_length
    header_length=$(od -An -tu2 -j8 -N2 "$1" | tr -d ' ')
    od -An -v -tf4 -w4 -j$((10 + header_length)) "$1" | tr -d ' '
}
