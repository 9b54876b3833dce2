#!/bin/sh
# Entry point of the chronoforce image: `docker run IMAGE run|web|worker|…` runs that command.
# Secrets arrive as files (Docker and Compose secrets in /run/secrets), which chronoforce reads
# from CHRONOFORCE_SECRETS_DIR. The one exception is PostgreSQL's password: libpq takes it from
# PGPASSWORD, so a `pgpassword` file there is exported as such (never printed).
set -eu

: "${CHRONOFORCE_SECRETS_DIR:=/run/secrets}"
export CHRONOFORCE_SECRETS_DIR
if [ ! -d "$CHRONOFORCE_SECRETS_DIR" ]; then
    unset CHRONOFORCE_SECRETS_DIR  # no secrets mounted: the environment alone
elif [ -z "${PGPASSWORD:-}" ] && [ -r "$CHRONOFORCE_SECRETS_DIR/pgpassword" ]; then
    PGPASSWORD=$(cat "$CHRONOFORCE_SECRETS_DIR/pgpassword")
    export PGPASSWORD
fi

if [ "$#" -eq 0 ]; then
    set -- run
fi

case "$1" in
    run | web | worker)
        # Migrations before serving. Scaled out, compose's one-shot `migrate` service has done
        # it already and this is a no-op; CHRONOFORCE_SKIP_MIGRATE=1 skips it.
        if [ "${CHRONOFORCE_SKIP_MIGRATE:-0}" != "1" ]; then
            chronoforce db upgrade
        fi
        ;;
esac

exec chronoforce "$@"
