#!/bin/sh
# Creates deploy/secrets/ for docker compose: a random PostgreSQL password and the two
# URLs built from it, plus empty files for the optional secrets (an empty file means
# "not set"). Never overwrites an existing file, so it is safe to run again.
set -eu
cd "$(dirname "$0")"
umask 077
mkdir -p secrets

write() {  # write NAME VALUE: only when secrets/NAME does not exist yet
    if [ ! -e "secrets/$1" ]; then
        printf '%s' "$2" >"secrets/$1"
        echo "created secrets/$1"
    fi
}

if [ ! -e secrets/postgres_password ]; then
    write postgres_password "$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')"
fi
password=$(cat secrets/postgres_password)
# The agent console's shared password (HTTP Basic, any user name).
write console_password "$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
# Grafana's admin password (user admin).
write grafana_admin_password "$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
write database_url "postgresql://kb:${password}@postgres:5432/kb"
# Dagster needs the driver spelled out (psycopg2): with SQLAlchemy 2 and psycopg 3 both
# installed, a plain postgresql:// URL breaks dagster-postgres.
write dagster_pg_url "postgresql+psycopg2://kb:${password}@postgres:5432/dagster"
for name in pyrus_security_key confluence_token llm_api_key embedding_api_key notify_webhook_url; do
    write "$name" ""
done
echo "secrets are in $(pwd)/secrets; fill the empty ones the configuration in kb.env uses"
