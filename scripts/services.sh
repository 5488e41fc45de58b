#!/usr/bin/env bash
# Installs and starts the real servers that integration tests and benchmarks talk to, natively
# (no Docker on these machines). Idempotent: a server already answering on its port is left alone.
#
#   scripts/services.sh install        install what is missing (downloads cached in .cache/)
#   scripts/services.sh up [NAME…]     install and start the named servers (default: all) that are not
#                                      running; prints the names it started
#   scripts/services.sh down [NAME…]   stop the named servers (default: all) that this script started
#   scripts/services.sh env            print the environment variables that point at the servers
#
# Servers: valkey (Valkey 8, bookworm-backports), valkey-cluster (six Valkey 8 nodes: three
# primaries, three replicas), sqs (fauxqs: SQS + S3), snowflake (fakesnow in a Python venv behind
# scripts/snowflake-server.py), kafka (Apache Kafka 4.4, KRaft, jars from Maven Central; PLAINTEXT,
# SASL and TLS listeners: scripts/kafka/server.properties).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE="$ROOT/.cache"
RUN="$CACHE/run"
VALKEY_PORT=${FFD_VALKEY_PORT:-16379}
# The cluster's six nodes listen on this port and the five after it.
VALKEY_CLUSTER_PORT=${FFD_VALKEY_CLUSTER_PORT:-17001}
SQS_PORT=${FFD_SQS_PORT:-14566}
SNOWFLAKE_PORT=${FFD_SNOWFLAKE_PORT:-15080}
SNOWFLAKE_VENV="$CACHE/snowflake-venv"
KAFKA_PORT=19092  # fixed in scripts/kafka/server.properties (controller: 19093), as are these:
KAFKA_SASL_PORT=19094   # SASL_PLAINTEXT: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512
KAFKA_SSL_PORT=19095    # SSL, server certificate from the CA generated at start
KAFKA_MTLS_PORT=19096   # SSL requiring a client certificate from that CA
KAFKA_TLS="$RUN/kafka-tls"
# Test-only users of the SASL listener (PLAIN ones are in server.properties, SCRAM ones are added
# when the storage is formatted).
KAFKA_PLAIN_USER=ffdplain KAFKA_PLAIN_PASSWORD=ffdplain-secret
KAFKA_SCRAM_USER=ffdscram KAFKA_SCRAM_PASSWORD=ffdscram-secret
# The one user that ACLs restrict (SCRAM-SHA-256): every other principal is a super user.
KAFKA_ACL_USER=ffdacl KAFKA_ACL_PASSWORD=ffdacl-secret
KAFKA_LIB="$CACHE/kafka/lib"
ALL_SERVICES=(valkey valkey-cluster sqs snowflake kafka)

log() { echo "services: $*" >&2; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for_port() { # name port
  for _ in $(seq 1 200); do
    port_open "$2" && return 0
    sleep 0.1
  done
  log "$1 did not open port $2 within 20 s; see $RUN/$1.log"
  return 1
}

install_valkey() {
  command -v valkey-server >/dev/null && return 0
  [ "$(id -u)" = 0 ] || { log "valkey-server is missing and installing it needs root (apt-get)"; return 1; }
  log "installing valkey-server 8 from bookworm-backports"
  local list=/etc/apt/sources.list.d/backports.list
  grep -qs bookworm-backports "$list" || echo "deb http://deb.debian.org/debian bookworm-backports main" >"$list"
  mkdir -p "$CACHE/apt/partial"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -t bookworm-backports \
    -o Dir::Cache::archives="$CACHE/apt" valkey-server >/dev/null
}

install_sqs() {
  # fauxqs (SQS + S3 in Node) is a pinned devDependency: npm ci already brought it.
  [ -f "$ROOT/node_modules/fauxqs/package.json" ] || { log "fauxqs missing: run npm ci first"; return 1; }
}

install_snowflake() {
  local requirements="$ROOT/scripts/snowflake-requirements.txt" marker="$SNOWFLAKE_VENV/.requirements"
  if [ -f "$marker" ] && cmp -s "$requirements" "$marker"; then return 0; fi
  log "installing the Snowflake-protocol test server (fakesnow) into $SNOWFLAKE_VENV"
  python3 -m venv "$SNOWFLAKE_VENV"
  PIP_CACHE_DIR="$CACHE/pip" "$SNOWFLAKE_VENV/bin/pip" install -q --disable-pip-version-check -r "$requirements" >&2
  cp "$requirements" "$marker"
}

install_kafka() {
  [ -f "$KAFKA_LIB/kafka_2.13-4.4.0.jar" ] && return 0
  log "fetching the Kafka broker's jars from Maven Central into $KAFKA_LIB"
  # stdout carries the names of started services; Maven's output goes to stderr.
  mvn -q -B -Dstyle.color=never -f "$ROOT/scripts/kafka/pom.xml" -Dmaven.repo.local="$CACHE/m2" \
    dependency:copy-dependencies -DoutputDirectory="$KAFKA_LIB" -DincludeScope=runtime >&2
}

start_valkey() {
  valkey-server --port "$VALKEY_PORT" --bind 127.0.0.1 --daemonize yes --save "" --appendonly no \
    --pidfile "$RUN/valkey.pid" --logfile "$RUN/valkey.log"
  wait_for_port valkey "$VALKEY_PORT"
}

cluster_ports() { seq "$VALKEY_CLUSTER_PORT" $((VALKEY_CLUSTER_PORT + 5)); }

start_valkey-cluster() {
  local dir="$RUN/valkey-cluster" port nodes=()
  rm -rf "$dir" && mkdir -p "$dir"
  : >"$RUN/valkey-cluster.pid"
  for port in $(cluster_ports); do
    valkey-server --port "$port" --bind 127.0.0.1 --daemonize yes --save "" --appendonly no \
      --cluster-enabled yes --cluster-config-file "$dir/nodes-$port.conf" --cluster-node-timeout 2000 --cluster-replica-validity-factor 0 \
      --dir "$dir" --pidfile "$dir/$port.pid" --logfile "$dir/$port.log"
    wait_for_port valkey-cluster "$port"
    cat "$dir/$port.pid" >>"$RUN/valkey-cluster.pid"
    nodes+=("127.0.0.1:$port")
  done
  valkey-cli --cluster create "${nodes[@]}" --cluster-replicas 1 --cluster-yes >"$dir/create.log" 2>&1
  for _ in $(seq 1 100); do
    # Every slot served, and every replica in sync with its primary.
    if valkey-cli -p "$VALKEY_CLUSTER_PORT" cluster info | grep -q 'cluster_state:ok' \
      && [ "$(for port in $(cluster_ports); do valkey-cli -p "$port" info replication; done | grep -c 'master_link_status:up')" = 3 ]; then return 0; fi
    sleep 0.1
  done
  log "the Valkey cluster did not become ready; see $dir/create.log"
  return 1
}

start_sqs() {
  FAUXQS_PORT="$SQS_PORT" nohup "$ROOT/scripts/use-node.sh" node "$ROOT/scripts/fauxqs-server.mjs" >"$RUN/sqs.log" 2>&1 &
  echo $! >"$RUN/sqs.pid"
  wait_for_port sqs "$SQS_PORT"
}

start_snowflake() {
  nohup "$SNOWFLAKE_VENV/bin/python" "$ROOT/scripts/snowflake-server.py" "$SNOWFLAKE_PORT" >"$RUN/snowflake.log" 2>&1 &
  echo $! >"$RUN/snowflake.pid"
  wait_for_port snowflake "$SNOWFLAKE_PORT"
}

# A CA, the broker's certificate (127.0.0.1, localhost) and a client certificate, fresh at each
# start and only under .cache/run: tests trust this CA alone.
make_kafka_tls() {
  local dir="$KAFKA_TLS" tls_log="$RUN/kafka-tls.log"
  rm -rf "$dir" && mkdir -p "$dir" && : >"$tls_log"
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=ff-detector test CA" -keyout "$dir/ca.key" -out "$dir/ca.pem" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>>"$tls_log" || { log "openssl failed; see $tls_log"; return 1; }
  local name subject san
  for name in server client; do
    if [ "$name" = server ]; then subject="/CN=localhost" san="subjectAltName=IP:127.0.0.1,DNS:localhost"; else subject="/CN=ffd-client" san="extendedKeyUsage=clientAuth"; fi
    openssl req -newkey rsa:2048 -nodes -subj "$subject" -keyout "$dir/$name.key" -out "$dir/$name.csr" 2>>"$tls_log" || { log "openssl failed; see $tls_log"; return 1; }
    openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial -days 30 \
      -extfile <(echo "$san") -out "$dir/$name.pem" 2>>"$tls_log" || { log "openssl failed; see $tls_log"; return 1; }
  done
  # Kafka's PEM key store: the PKCS#8 key and its certificate in one file.
  cat "$dir/server.key" "$dir/server.pem" >"$dir/server-keystore.pem"
}

start_kafka() {
  local data="$RUN/kafka-data" config="$RUN/kafka.properties" port
  make_kafka_tls
  cp "$ROOT/scripts/kafka/server.properties" "$config"
  {
    echo "log.dirs=$data"
    echo "ssl.keystore.location=$KAFKA_TLS/server-keystore.pem"
    echo "ssl.truststore.location=$KAFKA_TLS/ca.pem"
  } >>"$config"
  # A fresh cluster each start: tests create their own topics and groups.
  rm -rf "$data"
  java -cp "$KAFKA_LIB/*" kafka.tools.StorageTool format -t "$(java -cp "$KAFKA_LIB/*" kafka.tools.StorageTool random-uuid)" \
    -c "$config" --ignore-formatted \
    --add-scram "SCRAM-SHA-256=[name=$KAFKA_SCRAM_USER,password=$KAFKA_SCRAM_PASSWORD]" \
    --add-scram "SCRAM-SHA-512=[name=$KAFKA_SCRAM_USER,password=$KAFKA_SCRAM_PASSWORD]" \
    --add-scram "SCRAM-SHA-256=[name=$KAFKA_ACL_USER,password=$KAFKA_ACL_PASSWORD]" >"$RUN/kafka-format.log" 2>&1
  nohup java -Xms64m -Xmx256m -Dkafka.logs.dir="$RUN/kafka-logs" -Dlog4j2.configurationFile="$ROOT/scripts/kafka/log4j2.properties" \
    -cp "$KAFKA_LIB/*" kafka.Kafka "$config" >"$RUN/kafka.log" 2>&1 &
  echo $! >"$RUN/kafka.pid"
  for port in "$KAFKA_PORT" "$KAFKA_SASL_PORT" "$KAFKA_SSL_PORT" "$KAFKA_MTLS_PORT"; do wait_for_port kafka "$port"; done
  for _ in $(seq 1 100); do
    node "$ROOT/scripts/kafka/ready.mjs" "127.0.0.1:$KAFKA_PORT" && return 0
    sleep 0.2
  done
  log "kafka did not answer metadata requests; see $RUN/kafka.log"
  return 1
}

port_of() { case "$1" in valkey) echo "$VALKEY_PORT" ;; valkey-cluster) echo "$VALKEY_CLUSTER_PORT" ;; sqs) echo "$SQS_PORT" ;; snowflake) echo "$SNOWFLAKE_PORT" ;; kafka) echo "$KAFKA_PORT" ;; esac; }

# Both valkey servers come from the same package.
install_of() { case "$1" in valkey-cluster) echo install_valkey ;; *) echo "install_$1" ;; esac; }

cmd_install() { install_valkey; install_sqs; install_snowflake; install_kafka; }

# The names given, checked (an unknown one is an error before anything starts), or every service.
services_named() {
  local name known
  [ $# -gt 0 ] || set -- "${ALL_SERVICES[@]}"
  for name in "$@"; do
    for known in "${ALL_SERVICES[@]}"; do [ "$name" = "$known" ] && continue 2; done
    log "unknown service '$name' (known: ${ALL_SERVICES[*]})"
    return 2
  done
  printf '%s\n' "$@"
}

cmd_up() {
  local names name
  names=$(services_named "$@") || exit 2
  # Installs only what the named services need: `up valkey sqs` never fetches Kafka or fakesnow.
  for name in $names; do "$(install_of "$name")"; done
  mkdir -p "$RUN"
  for name in $names; do
    if port_open "$(port_of "$name")"; then
      log "$name already answers on port $(port_of "$name")"
      # A broker started by an older version of this script lacks the secured listeners.
      if [ "$name" = kafka ] && ! port_open "$KAFKA_SASL_PORT"; then
        log "kafka has no SASL listener on $KAFKA_SASL_PORT (started before it was added?): scripts/services.sh down kafka && scripts/services.sh up kafka"
      fi
    else
      log "starting $name on port $(port_of "$name")"
      "start_$name"
      echo "$name"
    fi
  done
}

cmd_down() {
  local names=("$@") name pid
  [ ${#names[@]} -gt 0 ] || names=("${ALL_SERVICES[@]}")
  for name in "${names[@]}"; do
    [ -f "$RUN/$name.pid" ] || continue
    # One process per line (the cluster has six).
    while read -r pid; do
      if kill "$pid" 2>/dev/null; then
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
      fi
    done <"$RUN/$name.pid"
    log "stopped $name"
    rm -f "$RUN/$name.pid"
  done
}

cmd_env() {
  cat <<ENV
export FFD_TEST_VALKEY_URL=redis://127.0.0.1:$VALKEY_PORT
export FFD_TEST_VALKEY_CLUSTER_URL=redis://127.0.0.1:$VALKEY_CLUSTER_PORT
export FFD_TEST_AWS_ENDPOINT=http://127.0.0.1:$SQS_PORT
export FFD_TEST_SNOWFLAKE_URL=http://127.0.0.1:$SNOWFLAKE_PORT
export FFD_TEST_KAFKA_BROKERS=127.0.0.1:$KAFKA_PORT
export FFD_TEST_KAFKA_SASL_BROKERS=127.0.0.1:$KAFKA_SASL_PORT
export FFD_TEST_KAFKA_SASL_PLAIN_USER=$KAFKA_PLAIN_USER FFD_TEST_KAFKA_SASL_PLAIN_PASSWORD=$KAFKA_PLAIN_PASSWORD
export FFD_TEST_KAFKA_SASL_SCRAM_USER=$KAFKA_SCRAM_USER FFD_TEST_KAFKA_SASL_SCRAM_PASSWORD=$KAFKA_SCRAM_PASSWORD
export FFD_TEST_KAFKA_SASL_ACL_USER=$KAFKA_ACL_USER FFD_TEST_KAFKA_SASL_ACL_PASSWORD=$KAFKA_ACL_PASSWORD
export FFD_TEST_KAFKA_SSL_BROKERS=127.0.0.1:$KAFKA_SSL_PORT
export FFD_TEST_KAFKA_MTLS_BROKERS=127.0.0.1:$KAFKA_MTLS_PORT
export FFD_TEST_KAFKA_CA=$KAFKA_TLS/ca.pem
export FFD_TEST_KAFKA_CLIENT_CERT=$KAFKA_TLS/client.pem FFD_TEST_KAFKA_CLIENT_KEY=$KAFKA_TLS/client.key
export KAFKAJS_NO_PARTITIONER_WARNING=1
ENV
}

case "${1:-up}" in
  install) cmd_install ;;
  up) [ $# -eq 0 ] || shift; cmd_up "$@" ;;
  down) shift; cmd_down "$@" ;;
  env) cmd_env ;;
  *) echo "usage: $0 install|up [name…]|down [name…]|env" >&2; exit 2 ;;
esac
