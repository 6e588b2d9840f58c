# Sourced by tools/device_check.sh and tools/device_trace.sh: runs the kit's
# test binaries within a time budget, one JSON line each into $results
# ("pass": "tests": status, passed, failed, seconds; or "skipped" once the
# budget is spent). Uses the caller's $kit, $out_dir, $results, $start and
# say(); a failing binary's failures and tail go to $log (default: stderr).
#   run_test_binaries BUDGET_SECONDS NAME...
run_test_binaries() {
    local budget=$1
    shift
    local log_to=${log:-/dev/stderr}
    export WGPU_CONV2D_TEST_DATA="$(pwd)/tests/data"
    # The CPU reference (f64) is most of the tests' time: one thread per core, at most 8.
    local threads
    threads=$(nproc 2>/dev/null || echo 4)
    threads=$(( threads > 8 ? 8 : threads ))
    local name left t0 status passed failed output
    for name in "$@"; do
        left=$(( budget - ($(date +%s) - start) ))
        if (( left < 10 )); then
            say "$name: skipped, the test budget is spent"
            echo "{\"pass\": \"tests\", \"binary\": \"$name\", \"skipped\": true}" >> "$results"
            continue
        fi
        output="$out_dir/$name.out"
        t0=$(date +%s)
        status=0
        timeout "$left" "$kit/$name" --test-threads "$threads" >"$output" 2>&1 || status=$?
        passed=$(grep -o '[0-9]* passed' "$output" | tail -1 | cut -d' ' -f1 || true)
        failed=$(grep -o '[0-9]* failed' "$output" | tail -1 | cut -d' ' -f1 || true)
        say "$name: status $status, ${passed:-?} passed, ${failed:-?} failed"
        grep -E "^test .* FAILED|panicked" "$output" | head -20 >> "$log_to" || true
        if (( status != 0 )); then tail -40 "$output" >> "$log_to"; fi
        echo "{\"pass\": \"tests\", \"binary\": \"$name\", \"status\": $status, \"passed\": ${passed:-null}, \"failed\": ${failed:-null}, \"seconds\": $(( $(date +%s) - t0 ))}" >> "$results"
        rm -f "$output"
    done
}
