#!/bin/sh
# Secrets arrive as files (Docker and Kubernetes secrets). For every NAME_FILE variable
# this exports NAME with the file's content, so the code only reads environment variables
# while the values stay out of compose files and `docker inspect`. The convention is the
# one the official postgres image uses (POSTGRES_PASSWORD_FILE). An empty file leaves NAME
# unset: an optional secret that is not used yet needs no placeholder value.
set -eu

for name in $(env | sed -n 's/^\([A-Za-z0-9_]*\)_FILE=.*$/\1/p'); do
    file=$(printenv "${name}_FILE")
    if printenv "$name" >/dev/null 2>&1; then
        echo "docker-entrypoint: both $name and ${name}_FILE are set; keep one" >&2
        exit 64
    fi
    if [ ! -r "$file" ]; then
        echo "docker-entrypoint: ${name}_FILE names $file, which cannot be read" >&2
        exit 66
    fi
    value=$(cat "$file")
    unset "${name}_FILE"
    if [ -n "$value" ]; then
        export "$name=$value"
    fi
done

exec "$@"
