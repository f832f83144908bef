#!/usr/bin/env bash
# Makes docs/dashboard/screenshot.png from a real roleplay-bench run:
#   1. starts a private Prometheus (its own TSDB in a temp dir, a free
#      loopback port, 1 s scrapes) that scrapes one fixed metrics address;
#   2. runs roleplay-bench with ROLEPLAY_BENCH_METRICS_LISTEN set to that
#      address, so every roleplay server the bench starts serves /metrics there;
#   3. renders the dashboard's own queries over the run's window with
#      render.mjs (uPlot in headless Chromium; not Grafana);
#   4. stops Prometheus and removes the temp dir.
# Loopback only; the bench is bounded by BENCH_TIMEOUT.
#
# Needs: prometheus and chromium (Debian: apt-get install prometheus chromium),
# Node 20 with npm, and release binaries (cargo build --release --bins).
#
# Environment:
#   ROLEPLAY_BIN_DIR  where roleplay-bench and roleplay-server are (default: target/release)
#   BENCH_ARGS        scenarios to run (default: --only 1,3,4,6,7,8; see roleplay-bench --help)
#   BENCH_TIMEOUT     seconds before the bench is stopped (default 900)
#   OUT               the PNG (default: docs/dashboard/screenshot.png)
#   KEEP_TSDB=1       keep the temp dir with the Prometheus data and the bench report
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
bin_dir=${ROLEPLAY_BIN_DIR:-$repo/target/release}
bench_args=${BENCH_ARGS:---only 1,3,4,6,7,8}
bench_timeout=${BENCH_TIMEOUT:-900}
out=${OUT:-$here/screenshot.png}

for tool in prometheus node npm curl /usr/bin/chromium; do
  command -v "$tool" >/dev/null || { echo "run.sh: $tool is missing (apt-get install prometheus chromium nodejs npm curl)" >&2; exit 2; }
done
for b in roleplay-bench roleplay-server; do
  [[ -x "$bin_dir/$b" ]] || { echo "run.sh: $bin_dir/$b is not built (cargo build --release --bins, or set ROLEPLAY_BIN_DIR)" >&2; exit 2; }
done
if [[ ! -d "$here/node_modules/uplot" || ! -d "$here/node_modules/playwright-core" ]]; then
  # playwright-core downloads no browser; render.mjs uses /usr/bin/chromium.
  (cd "$here" && npm ci --no-audit --no-fund)
fi

free_port() {
  node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });'
}

work=$(mktemp -d -t roleplay-dashboard.XXXXXX)
prom_pid=
cleanup() {
  if [[ -n "$prom_pid" ]]; then
    kill "$prom_pid" 2>/dev/null || true
    wait "$prom_pid" 2>/dev/null || true
  fi
  if [[ "${KEEP_TSDB:-0}" == 1 ]]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

metrics_port=$(free_port)
prom_port=$(free_port)
cat >"$work/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: roleplay-server
    static_configs:
      - targets: ['127.0.0.1:$metrics_port']
EOF

prometheus \
  --config.file="$work/prometheus.yml" \
  --storage.tsdb.path="$work/tsdb" \
  --storage.tsdb.retention.time=1d \
  --web.listen-address="127.0.0.1:$prom_port" \
  --log.level=warn >"$work/prometheus.log" 2>&1 &
prom_pid=$!
prom="http://127.0.0.1:$prom_port"
for _ in $(seq 1 60); do
  curl -fsS "$prom/-/ready" >/dev/null 2>&1 && break
  kill -0 "$prom_pid" 2>/dev/null || { cat "$work/prometheus.log" >&2; exit 1; }
  sleep 0.5
done
curl -fsS "$prom/-/ready" >/dev/null || { echo "run.sh: prometheus did not become ready" >&2; exit 1; }
echo "prometheus on $prom scraping 127.0.0.1:$metrics_port every 1 s"

start=$(date +%s)
echo "roleplay-bench $bench_args (at most ${bench_timeout}s)"
# shellcheck disable=SC2086 # BENCH_ARGS is a list of arguments
ROLEPLAY_BENCH_METRICS_LISTEN="127.0.0.1:$metrics_port" \
  timeout --kill-after=10 "$bench_timeout" "$bin_dir/roleplay-bench" $bench_args --out "$work/bench.md"
# Two more scrapes after the last server stopped, so the window ends on it.
sleep 2
end=$(date +%s)
echo "bench ran $((end - start)) s; samples scraped: $(curl -fsS "$prom/api/v1/query" --data-urlencode 'query=sum(count_over_time(up[1h]))' | sed -E 's/.*"value":\[[^,]*,"([0-9]+)".*/\1/')"

node "$here/render.mjs" \
  --prometheus "$prom" \
  --start "$start" --end "$end" \
  --scrape-interval 1 \
  --subtitle "Data: one roleplay-bench run ($bench_args), scraped every 1 s." \
  --out "$out"
