#!/usr/bin/env bash
# Start the loopback services that the database and message-bus tests use, when they are
# installed on this machine but not running (PostgreSQL, MariaDB, RabbitMQ). Never installs
# anything: a test whose service is still absent afterwards skips with the reason.
set -uo pipefail

answering() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() {  # port name seconds
    for _ in $(seq 1 "$3"); do answering "$1" && return 0; sleep 1; done
    echo "services: $2 did not answer on 127.0.0.1:$1; its tests will be skipped" >&2
    return 1
}

if ! answering 5432 && command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
    echo "services: starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start >/dev/null 2>&1
    wait_for 5432 PostgreSQL 20
fi
if ! answering 3306 && [ -x /usr/sbin/mariadbd ]; then
    echo "services: starting MariaDB"
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd >/dev/null 2>&1
    wait_for 3306 MariaDB 30
fi
if ! answering 5672 && command -v rabbitmq-server >/dev/null; then
    echo "services: starting RabbitMQ"
    rabbitmq-server -detached >/dev/null 2>&1
    wait_for 5672 RabbitMQ 60
fi
exit 0
