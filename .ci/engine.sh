#!/usr/bin/env bash
# Source me: makes a container engine answer, or says in one line why it cannot.
#   ci_engine  -> 0 with $DOCKER set to a client whose daemon answers; 1 with $CI_ENGINE_WHY set.
# Installs Debian's docker.io when no engine is there, and starts dockerd when none runs.

ci_engine() {
  DOCKER=""
  for c in /usr/bin/docker "$(command -v docker 2>/dev/null)"; do
    if [ -n "$c" ] && [ -x "$c" ]; then DOCKER=$c; break; fi
  done
  if [ -n "$DOCKER" ] && "$DOCKER" info >/dev/null 2>&1; then return 0; fi
  if ! command -v dockerd >/dev/null 2>&1; then
    if ! (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null 2>&1); then
      CI_ENGINE_WHY="docker.io could not be installed with apt-get"; return 1
    fi
    DOCKER=/usr/bin/docker
  fi
  if ! pgrep -x dockerd >/dev/null 2>&1; then
    mkdir -p /var/log
    (setsid dockerd >/var/log/ci-dockerd.log 2>&1 &)
  fi
  for _ in $(seq 1 60); do
    if "$DOCKER" info >/dev/null 2>&1; then return 0; fi
    sleep 1  # waiting for the daemon's socket
  done
  CI_ENGINE_WHY="dockerd did not answer within 60 s: $(tail -n 1 /var/log/ci-dockerd.log 2>/dev/null)"
  return 1
}
