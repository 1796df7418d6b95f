#!/usr/bin/env bash
# Usage: scripts/postgres-secret.sh [FILE]
#
# Writes FILE (default k8s/variants/postgres/postgres.env), the input of that variant's
# secretGenerator, with a random POSTGRES_PASSWORD, unless it exists already: the
# password is never committed (.gitignore), and a second run keeps it (the database
# was initialised with it). mode 0600.
set -euo pipefail
cd "$(dirname "$0")/.."
file=${1:-k8s/variants/postgres/postgres.env}
[[ -s "$file" ]] && exit 0
umask 077
password=$(head -c 24 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
printf 'POSTGRES_PASSWORD=%s\n' "$password" > "$file.tmp"
mv "$file.tmp" "$file"
echo "wrote $file (a random PostgreSQL password for the secretGenerator)"
