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

# -O1, as the sanitizers' own documents advise: the tests run about a tenth faster than
# at -O0, and the compiler's checks see more (format truncation, for one).  UBSan's
# checks trap instead of calling libubsan: without that library loaded, LeakSanitizer's
# scan at each process's exit reads 6 MB less (the suite runs thousands of processes).
# ASan's SIGILL handler (handle_sigill) then reports the check that failed with its
# file and line, and the process aborts.
sanitize=${LIANGDI_TEST_SANITIZE:-1}
asan_args=(-Db_sanitize=address -Db_lundef=false -Doptimization=1
           "-Dc_args=-fsanitize=undefined -fsanitize-undefined-trap-on-error")
asan_log=$(mktemp)
trap 'rm -f "$asan_log"' EXIT
if [ "$sanitize" != 0 ]; then
    # The sanitizer build compiles while the plain tests run, at the lowest priority:
    # the tests wait on their processes and sockets a fifth of the time, and the build
    # takes only what they leave of the two cores.  Its output follows the tests'.
    (renice -n 19 -p "$BASHPID" >/dev/null; ld_build build-asan "${asan_args[@]}") \
        >"$asan_log" 2>&1 &
    asan_build=$!
fi
status=0
meson test -C build --print-errorlogs ${LIANGDI_TEST_ARGS:-} || status=1
took tests

if [ "$sanitize" != 0 ]; then
    asan_ok=1
    wait "$asan_build" || asan_ok=0
    cat "$asan_log"
    took "sanitizer build (the rest of it)"
    if [ "$asan_ok" = 0 ]; then
        echo "liangdi: the sanitizer build failed (its output above)" >&2
        status=1
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

fuzz_seconds=${LIANGDI_FUZZ_SECONDS:-10}
if [ "$fuzz_seconds" != 0 ]; then
    dirs+=(build-fuzz)
    LIANGDI_FUZZ_SECONDS=$fuzz_seconds bash deploy/fuzz.sh || status=1
    took fuzzing
fi

echo
printf 'stages: %s\n' "$(IFS=,; echo "${times[*]}" | sed 's/,/, /g')"
ld_count_results "${dirs[@]}" || status=1
exit "$status"
