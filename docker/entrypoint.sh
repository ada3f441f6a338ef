#!/bin/sh
# The image's entry point: `docker run IMAGE ARGS` runs `cloudfs ARGS`. With no arguments it runs one node on the
# container's own address, so `docker run -p 10809:10809 -p 8090:8090 IMAGE` reaches it from the host. That node has
# no certificates, so it needs --insecure: the container's network is its boundary. A cluster (docker-compose.yml)
# runs every node with TLS.
set -e
if [ "$#" -eq 0 ]; then
  address="$(hostname -i | cut -d' ' -f1)"
  set -- node --device /data/cloudfs.log --listen "$address" --insecure
fi
exec cloudfs "$@"
