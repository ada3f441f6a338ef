# One image for every CloudFS node: the published host plus the tools an operator uses against it.
FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
WORKDIR /src
COPY . .
RUN dotnet publish CloudFs.Host/CloudFs.Host.csproj -c Release -o /app

FROM mcr.microsoft.com/dotnet/aspnet:10.0
RUN apt-get update && apt-get install -y --no-install-recommends qemu-utils libnbd-bin curl && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /app .
VOLUME /data
EXPOSE 4053 8090 10809
ENTRYPOINT ["dotnet", "/app/cloudfs.dll"]
CMD ["node", "--device", "/data/cloudfs.log"]
