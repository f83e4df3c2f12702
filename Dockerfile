# Gatehouse container image.
#   docker build -t gatehouse .
#   docker run -d -p 8080:8080 -v gatehouse-data:/var/lib/gatehouse gatehouse

# Build: a release binary with the Swift runtime linked in, so the runtime image needs no toolchain.
FROM swift:6.1-bookworm AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends libhiredis-dev libargon2-dev libsqlite3-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Package.resolved is deliberately not copied: dependencies resolve from Package.swift.
COPY Package.swift ./
COPY Sources ./Sources
COPY Tests ./Tests
RUN swift build -c release --product gatehouse --static-swift-stdlib \
    && install -D -m 0755 "$(swift build -c release --show-bin-path)/gatehouse" /out/gatehouse

# Runtime: Debian 12 with only the C libraries the binary links.
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends libhiredis0.14 libargon2-1 libsqlite3-0 ca-certificates \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --system --user-group --uid 10001 --home-dir /var/lib/gatehouse --shell /usr/sbin/nologin gatehouse \
    && install -d -o gatehouse -g gatehouse -m 0750 /var/lib/gatehouse
COPY --from=build /out/gatehouse /usr/local/bin/gatehouse
COPY conf/ /etc/gatehouse/
# GATEHOUSE_CONFIG lets `docker exec <container> gatehouse user list` find the same file as serve.
ENV GATEHOUSE_CONFIG=/etc/gatehouse/gatehouse.yaml \
    GATEHOUSE_DATABASE_PATH=/var/lib/gatehouse/gatehouse.sqlite \
    GATEHOUSE_LISTEN=0.0.0.0:8080
# The numeric uid:gid of the gatehouse user above, so that the runtime (Kubernetes'
# runAsNonRoot among them) can tell it is not root without reading /etc/passwd.
USER 10001:10001
WORKDIR /var/lib/gatehouse
VOLUME /var/lib/gatehouse
EXPOSE 8080
# The binary is its own probe, no curl needed: `gatehouse health` reads GATEHOUSE_CONFIG (and
# GATEHOUSE_LISTEN), sends GET /healthz to the listen address (0.0.0.0 is probed on
# 127.0.0.1) and exits 0 on a 200, 1 otherwise. Liveness only: a database that cannot serve
# shows in GET /readyz (`gatehouse health --ready`), which the load balancer should probe.
# Docker's --timeout stays above the probe's own, so a hung probe reports its own error.
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD ["gatehouse", "health", "--timeout", "5s"]
ENTRYPOINT ["gatehouse"]
CMD ["serve", "--config", "/etc/gatehouse/gatehouse.yaml"]
