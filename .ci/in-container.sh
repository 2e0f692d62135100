#!/usr/bin/env bash
# Runs inside the fresh CI container: the repository (mounted read-only at /repo) is copied in, then
# the README's Quick start is followed as written: `make test`, `make lint`, and `make run` until it
# serves.
set -euo pipefail
mkdir -p /work
cp -a /repo /work/main
[ -d /shared-ro ] && cp -a /shared-ro /work/shared
cd /work/main
rm -rf .venv .data  # a clean clone has neither
echo "ci: in a fresh container: $(. /etc/os-release; echo "$PRETTY_NAME"), $(python3 --version)," \
  "redis-server on PATH: $(command -v redis-server || echo none), chromium: $(chromium --version 2>/dev/null || echo none)"

set +e
if [ -n "${CI_ONLY_RUN:-}" ]; then  # CI_ONLY_RUN=1: the `make run` check alone (a quick look by hand)
  make .venv/.installed >/dev/null; rc=$?
else
  make test PYTEST_ARGS="-ra"; rc=$?
fi
set -e
if [ "$rc" -eq 5 ]; then echo "ci: pytest collected no tests; that is a failure" >&2; exit 1; fi
[ "$rc" -eq 0 ] || exit "$rc"
make lint  # ruff check and ruff format --check: a lint error fails the run

# The other command: `make run` comes up on the embedded servers and stops cleanly on Ctrl-C.
port=18080
PORT=$port METRICS_BASE_PORT=0 setsid make run >/tmp/make-run.log 2>&1 &
run_pid=$!
ready=""
for _ in $(seq 1 180); do
  if .venv/bin/python -c "import json, urllib.request, sys; \
sys.exit(0 if json.load(urllib.request.urlopen('http://127.0.0.1:$port/healthz', timeout=2)).get('ready') else 1)" 2>/dev/null; then
    ready=yes; break
  fi
  sleep 1  # polling for readiness
done
# A lecture through it, and the watch view while it plays: the groups' lag and pending are shown.
if [ -n "$ready" ]; then
  .venv/bin/python -m bench.stream "ws://127.0.0.1:$port/ws/transcribe" tests/data/lecture1 --speed 2 \
    >/tmp/stream.txt 2>&1 &
  stream_pid=$!
  for _ in $(seq 1 120); do
    REDIS_URL=redis://127.0.0.1:6399/0 .venv/bin/python -m services.watch --once >/tmp/watch.txt 2>&1 || true
    grep -qE "^ +group transcriber +- +[0-9]+ +[0-9]+" /tmp/watch.txt && break
    sleep 1  # polling the live view until the transcribers' group has figures
  done
  wait "$stream_pid" || echo "ci: the lecture through make run did not complete"
  grep -E "WER|alerts" /tmp/stream.txt | head -3
fi
kill -INT -- "-$run_pid" 2>/dev/null || true
wait "$run_pid"; run_rc=$?
grep -E "started (valkey|redis)|serving" /tmp/make-run.log || true
sed -n 1,12p /tmp/watch.txt
if [ -z "$ready" ]; then echo "ci: make run did not serve within 180 s"; tail -30 /tmp/make-run.log; exit 1; fi
if grep -q "not reported" /tmp/watch.txt || ! grep -qE "^ +group transcriber +- +[0-9]+ +[0-9]+" /tmp/watch.txt; then
  echo "ci: the watch view did not show the transcribers' lag and pending"; exit 1
fi
echo "ci: make run served http://127.0.0.1:$port and stopped with code $run_rc"
