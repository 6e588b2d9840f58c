#!/usr/bin/env bash
# The JavaScript package and its tests.
#
#   tools/web.sh build OUTDIR   the ES-module package: OUTDIR/wgpu_conv2d.js, wgpu_conv2d_bg.wasm,
#                               wgpu_conv2d.d.ts, package.json
#   tools/web.sh test           the wasm-bindgen tests (web/tests) in headless Chromium and in Deno,
#                               and the demo (examples/web) in headless Chromium, checked against
#                               the CPU reference of the native CLI
#   tools/web.sh serve [PORT]   builds the demo's package and serves examples/ on localhost
#                               (default port 8000): open http://localhost:PORT/web/
#   tools/web.sh bench [ROUNDS] the same layers on the same driver, web against native: Chromium's
#                               WebGPU on SwiftShader against the CLI's bench on SwiftShader's
#                               Vulkan driver, alternating (raw lines: docs/bench/web_vs_native.jsonl)
#   tools/web.sh setup          installs what the others need and this machine lacks
#
# Needs: the wasm32-unknown-unknown target (rustup), wasm-bindgen-cli of the version in
# Cargo.lock (installed into target/web-tools), Debian's chromium and chromium-driver, and
# Deno 2 from npm (installed into target/web-tools). `setup` fetches what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
tools="$root/target/web-tools"
export PATH="$tools/bin:$tools/npm/node_modules/.bin:$PATH"
export NODEVICE_SELECT=1

wasm_bindgen_version() {
    awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock
}

setup() {
    rustup target list --installed | grep -qx wasm32-unknown-unknown ||
        rustup target add wasm32-unknown-unknown
    local want
    want=$(wasm_bindgen_version)
    if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$want" ]; then
        echo "installing wasm-bindgen-cli $want into $tools"
        cargo install --quiet --root "$tools" wasm-bindgen-cli --version "$want"
    fi
    if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
        echo "installing chromium and chromium-driver"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver
    fi
    if ! deno --version >/dev/null 2>&1; then
        echo "installing deno (npm) into $tools/npm"
        mkdir -p "$tools/npm"
        npm install --silent --prefix "$tools/npm" deno@2 >/dev/null
    fi
}

build() {
    local out=${1:?usage: tools/web.sh build OUTDIR}
    cargo build --release --target wasm32-unknown-unknown -p wgpu-conv2d-web
    wasm-bindgen --target web --out-dir "$out" --out-name wgpu_conv2d \
        target/wasm32-unknown-unknown/release/wgpu_conv2d_web.wasm
    local version
    version=$(awk -F'"' '/^version = / { print $2; exit }' web/Cargo.toml)
    cat > "$out/package.json" <<JSON
{
  "name": "wgpu-conv2d",
  "version": "$version",
  "description": "PyTorch's nn.Conv2d, forward and backward, with SGD and Adam, on WebGPU",
  "type": "module",
  "main": "wgpu_conv2d.js",
  "types": "wgpu_conv2d.d.ts",
  "files": ["wgpu_conv2d.js", "wgpu_conv2d_bg.wasm", "wgpu_conv2d.d.ts", "wgpu_conv2d_bg.wasm.d.ts"],
  "license": "MIT OR Apache-2.0"
}
JSON
    echo "package written to $out"
}

# Runs the wasm-bindgen tests with the runner of this environment.
wasm_tests() {
    CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
        WASM_BINDGEN_NO_DEBUG=1 WASM_BINDGEN_TEST_TIMEOUT=1800 \
        cargo test --release --target wasm32-unknown-unknown -p wgpu-conv2d-web --test web
}

# Serves examples/ on a free localhost port ($port) until the script exits.
serve_examples() {
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    python3 -m http.server --bind 127.0.0.1 --directory examples "$port" >/dev/null 2>&1 &
    server=$!
    trap 'kill "$server" 2>/dev/null || true' EXIT
    for _ in $(seq 100); do
        python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/')" \
            2>/dev/null && return
        sleep 0.1
    done
}

test_all() {
    setup
    echo "=== wasm-bindgen tests in headless Chromium (WebGPU: Dawn, Tint, SwiftShader)"
    (cd web && CHROMEDRIVER=$(command -v chromedriver) WASM_BINDGEN_USE_BROWSER=1 wasm_tests)
    echo "=== the same tests in Deno (WebGPU: wgpu over the machine's Vulkan)"
    # wasm-bindgen-test-runner's Deno script assumes Deno 1's `window`: the shim mends it.
    PATH="$root/tools/deno-shim:$PATH" WASM_BINDGEN_USE_DENO=1 wasm_tests
    build examples/web/pkg >/dev/null
    echo "=== the seed examples in a Deno script (examples/web/seeds_deno.js)"
    deno run --allow-read examples/web/seeds_deno.js
    echo "=== the browser demo in headless Chromium, against the CPU reference"
    cargo build --release --quiet --bin wgpu-conv2d
    serve_examples
    python3 tools/web_demo_check.py "http://127.0.0.1:$port/web/index.html" \
        target/release/wgpu-conv2d "$(command -v chromedriver)"
}

bench() {
    setup
    build examples/web/pkg >/dev/null
    cargo build --release --quiet --bin wgpu-conv2d
    serve_examples
    : > docs/bench/web_vs_native.jsonl
    python3 tools/web_bench.py "http://127.0.0.1:$port/web/bench.html" target/release/wgpu-conv2d \
        docs/bench/web_vs_native.jsonl "${1:-3}"
}

case "${1:-}" in
setup) setup ;;
bench) shift; bench "$@" ;;
build) shift; build "$@" ;;
test) test_all ;;
serve)
    port=${2:-8000}
    build examples/web/pkg
    echo "serving examples/ on http://localhost:$port/web/ (Ctrl-C to stop)"
    python3 -m http.server --bind 127.0.0.1 --directory examples "$port"
    ;;
*) sed -n '2,20p' "$0"; exit 2 ;;
esac
