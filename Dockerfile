# One image for every CloudFS node: the published host plus the tools an operator uses against it.
FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
WORKDIR /src
COPY . .
RUN dotnet publish CloudFs.Host/CloudFs.Host.csproj -c Release -o /app

FROM mcr.microsoft.com/dotnet/aspnet:10.0
# fuse3, e2fsprogs, mount and nbdkit: `cloudfs mount` (docs/MOUNT.md; the container needs /dev/fuse, loop devices and
# CAP_SYS_ADMIN for it, e.g. --privileged).
RUN apt-get update && apt-get install -y --no-install-recommends qemu-utils libnbd-bin curl fuse3 e2fsprogs mount nbdkit && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /app .
# `cloudfs` on PATH (docker exec), and the entry point: no arguments = one node on the container's address.
COPY docker/cloudfs docker/entrypoint.sh /usr/local/bin/
RUN chmod 0755 /usr/local/bin/cloudfs /usr/local/bin/entrypoint.sh
VOLUME /data
EXPOSE 4053 8090 10809
# 200 while the node serves; docker-compose.yml probes /ready over HTTPS instead.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s CMD curl -fsS "http://$(hostname -i | cut -d' ' -f1):8090/health" || exit 1
ENTRYPOINT ["entrypoint.sh"]
