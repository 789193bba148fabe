#!/bin/sh
# Debian's redis-server runs without a config file here, so protected mode (on by default) would
# refuse every client not on loopback; the official image builds with it off. Arguments after the
# command's own win, so `--protected-mode yes` in the command turns it back on.
set -eu
if [ "${1:-}" = redis-server ]; then
  shift
  exec redis-server --protected-mode no --dir /data "$@"
fi
exec "$@"
