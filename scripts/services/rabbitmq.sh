#!/usr/bin/env bash
# Idempotent: make sure a RabbitMQ broker answers on 127.0.0.1:5672 (guest/guest) for the bus
# tests and benchmark. Installs rabbitmq-server with apt when missing, starts it detached when
# down, and waits for the broker to finish booting AND for the AMQP port to accept connections
# (`rabbitmq-diagnostics ping` answers before 5672 listens).
set -euo pipefail

HOST=127.0.0.1
PORT="${MIDPLANE_AMQP_PORT:-5672}"
TIMEOUT="${MIDPLANE_RABBITMQ_TIMEOUT:-60}"

log() { echo "rabbitmq.sh: $*" >&2; }

port_open() {
    # bash's /dev/tcp: no extra tools needed.
    (exec 3<>"/dev/tcp/${HOST}/${PORT}") 2>/dev/null
}

if ! command -v rabbitmq-server >/dev/null 2>&1; then
    log "rabbitmq-server not installed; installing with apt"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends rabbitmq-server >/dev/null
fi

node_up() { rabbitmq-diagnostics -q ping >/dev/null 2>&1; }
# `status` fails while the node runs with the broker app stopped.
app_up() { rabbitmqctl -q status >/dev/null 2>&1; }

if port_open && app_up; then
    log "already running on ${HOST}:${PORT}"
    exit 0
fi

if ! node_up; then
    log "starting rabbitmq-server -detached"
    # apt does not start services here (no systemd); the node runs as the invoking user.
    rabbitmq-server -detached
elif ! app_up; then
    # Node up but the broker app stopped (e.g. after `rabbitmqctl stop_app`).
    log "node is up but the broker app is stopped; start_app"
    rabbitmqctl -q start_app
fi

# await_startup fails if the node is not reachable yet; retry until the deadline.
deadline=$((SECONDS + TIMEOUT))
until rabbitmqctl -q await_startup --timeout "${TIMEOUT}" >/dev/null 2>&1; do
    if (( SECONDS >= deadline )); then
        log "broker did not finish starting within ${TIMEOUT}s"; exit 1
    fi
    sleep 1
done
until port_open; do
    if (( SECONDS >= deadline )); then
        log "broker booted but ${HOST}:${PORT} does not accept connections after ${TIMEOUT}s"; exit 1
    fi
    sleep 0.5
done
log "ready on ${HOST}:${PORT} ($(rabbitmqctl -q version 2>/dev/null || echo 'version unknown'))"
