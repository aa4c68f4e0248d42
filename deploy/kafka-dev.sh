#!/usr/bin/env bash
# A single-node Apache Kafka broker on loopback for development and the demo:
#   deploy/kafka-dev.sh start DIR   -> last stdout line: bootstrap=127.0.0.1:PORT
#   deploy/kafka-dev.sh stop DIR | status DIR | fetch
# The implementation is shared with the integration tests; see docs/kafka-dev.md.
exec "$(dirname "$(readlink -f "$0")")/../tests/kafka/broker.sh" "$@"
