# ssecast: a Server-Sent Events broadcast server.
#   docker build -t ssecast .
#   docker run --rm -p 8080:8080 --ulimit nofile=1048576:1048576 ssecast

FROM rust:1-bookworm AS build
WORKDIR /src
# Dependencies first, in a layer of their own, so source edits do not rebuild them.
COPY Cargo.toml Cargo.lock ./
COPY loadtest/Cargo.toml loadtest/Cargo.toml
RUN mkdir -p src benches loadtest/src static \
    && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && echo 'fn main() {}' > benches/alloc.rs \
    && echo 'fn main() {}' > loadtest/src/main.rs && touch loadtest/src/lib.rs \
    && cargo build --release --locked -p ssecast \
    && rm -rf src benches loadtest/src
COPY src src
COPY static static
COPY benches benches
COPY loadtest/src loadtest/src
RUN touch src/main.rs src/lib.rs && cargo build --release --locked -p ssecast

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home ssecast
COPY --from=build /src/target/release/ssecast /usr/local/bin/ssecast
USER ssecast
ENV SSECAST_LISTEN=0.0.0.0:8080
EXPOSE 8080
# The probe follows SSECAST_LISTEN: its port is what follows the last `:`.
HEALTHCHECK --interval=10s --timeout=3s --start-period=2s --retries=3 \
    CMD listen="${SSECAST_LISTEN:-0.0.0.0:8080}" \
        && curl -fsS "http://127.0.0.1:${listen##*:}/healthz" || exit 1
ENTRYPOINT ["/usr/local/bin/ssecast"]
