# ticket-gateway: build with the Rust toolchain, run on a slim Debian with nothing but the
# binary and CA certificates, as an unprivileged user.
#
#   docker build -t ticket-gateway .
#   docker run --rm -p 8080:8080 -p 4243:4243 \
#     -v "$PWD/deploy/gateway-a.toml:/etc/ticket-gateway/gateway.toml:ro" ticket-gateway
#
# The configuration must listen on 0.0.0.0 (the embedded defaults listen on loopback only).

FROM rust:1-bookworm AS builder
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p ticket-gateway \
 && install -D -m 0755 target/release/ticket-gateway /out/ticket-gateway

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin gateway \
 && mkdir -p /etc/ticket-gateway
COPY --from=builder /out/ticket-gateway /usr/local/bin/ticket-gateway
USER gateway
# 8080: the browser-facing front end; 4243: the QPS REST API and /healthz, /readyz.
EXPOSE 8080 4243
# SIGTERM starts the graceful shutdown ([shutdown] grace_seconds).
STOPSIGNAL SIGTERM
ENTRYPOINT ["ticket-gateway"]
CMD ["--config", "/etc/ticket-gateway/gateway.toml"]
