#!/usr/bin/env bash
# test.sh: the README's test command.  On a fresh Debian 12 machine it installs what is
# missing, builds liangdi twice (plain, and with AddressSanitizer + UBSan), runs every test
# in both builds, runs each libFuzzer target for a bounded time (deploy/fuzz.sh), and ends
# with one line: "N passed, N failed".
#
# Environment: LIANGDI_TEST_SANITIZE=0 skips the sanitizer build;
#              LIANGDI_FUZZ_SECONDS=N runs each fuzz target N seconds (default 10; 0 skips);
#              LIANGDI_TEST_ARGS passes extra arguments to `meson test`.
set -euo pipefail
cd "$(dirname "$0")/.."
. deploy/lib.sh

# took WHAT: adds "WHAT N s" (the seconds since the last call) to the stages' times,
# printed before the result so that a slow run says which stage was slow.
times=()
stage_start=$SECONDS
took() {
    times+=("$1 $((SECONDS - stage_start)) s")
    stage_start=$SECONDS
}

# nats-server and libnats: the JetStream store and its cluster tests
ld_install_deps nats-server libnats-dev
took install
dirs=(build)
ld_build build
took build

sanitize=${LIANGDI_TEST_SANITIZE:-1}
fuzz_seconds=${LIANGDI_FUZZ_SECONDS:-10}
# -O1, as the sanitizers' own documents advise: the tests run about a tenth faster than
# at -O0, and the compiler's checks see more (format truncation, for one).  UBSan's
# checks trap instead of calling libubsan: without that library loaded, LeakSanitizer's
# scan at each process's exit reads 6 MB less (the suite runs thousands of processes).
# ASan's SIGILL handler (handle_sigill) then reports the check that failed with its
# file and line, and the process aborts.
asan_args=(-Db_sanitize=address -Db_lundef=false -Doptimization=1
           "-Dc_args=-fsanitize=undefined -fsanitize-undefined-trap-on-error")
logs=$(mktemp -d)

# behind NAME COMMAND...: runs COMMAND (a program) in the background at the lowest
# priority, in a process group of its own, its output into $logs/NAME, while this script
# runs tests in the foreground: the tests wait on their processes and sockets a fifth of
# the time, and a build takes only what they leave of the two cores.  `ahead NAME` waits
# for it and prints its output.  A job still running when the script ends is stopped
# with its whole group (meson, ninja and the compilers under it).
declare -A behind_pid
behind() {
    local name=$1
    shift
    setsid nice -n 19 "$@" >"$logs/$name" 2>&1 &
    behind_pid[$name]=$!
}
ahead() {
    local rc=0
    wait "${behind_pid[$1]}" || rc=$?
    unset "behind_pid[$1]"
    cat "$logs/$1"
    return "$rc"
}
stop_behind() {
    local pid
    for pid in "${behind_pid[@]}"; do
        kill -- "-$pid" 2>/dev/null || true
    done
    wait
    rm -rf "$logs"
}
trap stop_behind EXIT

status=0
# the sanitizer build compiles while the plain tests run
[ "$sanitize" = 0 ] || behind asan bash -c 'set -euo pipefail; . deploy/lib.sh; ld_build "$@"' \
    ld_build build-asan "${asan_args[@]}"
meson test -C build --print-errorlogs ${LIANGDI_TEST_ARGS:-} || status=1
took tests

if [ "$sanitize" != 0 ]; then
    asan_ok=1
    ahead asan || asan_ok=0
    took "sanitizer build (the rest of it)"
    # the fuzz targets compile while the sanitizer tests run (what they need installed
    # first, here: apt-get may ask for a password)
    if [ "$fuzz_seconds" != 0 ]; then
        ld_install_deps clang libclang-rt-14-dev
        behind fuzz env LIANGDI_FUZZ_SECONDS="$fuzz_seconds" bash deploy/fuzz.sh --build-only
    fi
    if [ "$asan_ok" = 0 ]; then
        echo "liangdi: the sanitizer build failed (its output above)" >&2
        status=1
        rm -f build-asan/meson-logs/testlog.json    # counted below as a failure, not
        dirs+=(build-asan)                          # as an older run's results
    else
        dirs+=(build-asan)
        # A freed block stays poisoned (a use after free is caught) until 64 MB more
        # have been freed after it, not ASan's default 256 MB: the tests that move tens
        # of thousands of changes then reuse memory instead of faulting in new pages,
        # and test_sync_crash takes a fifth less CPU.
        ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:handle_sigill=1:quarantine_size_mb=64 \
            meson test -C build-asan --print-errorlogs ${LIANGDI_TEST_ARGS:-} || status=1
        took "sanitizer tests"
    fi
fi

if [ "$fuzz_seconds" != 0 ]; then
    dirs+=(build-fuzz)
    if [ "$sanitize" != 0 ]; then
        ahead fuzz || true                 # a failed build fails again below, named
        took "fuzz build (the rest of it)"
    fi
    LIANGDI_FUZZ_SECONDS=$fuzz_seconds bash deploy/fuzz.sh || status=1
    took fuzzing
fi

echo
printf 'stages: %s\n' "$(IFS=,; echo "${times[*]}" | sed 's/,/, /g')"
ld_count_results "${dirs[@]}" || status=1
exit "$status"
