# syntax=docker/dockerfile:1
# Build: docker build -t coderunner .
# Run:   docker run -p 8200:8200 -e CODERUNNER__SECURITY__WEBHOOK_SECRETS_FILE=/run/secrets/webhook ... coderunner
# Dev emulator (default features, for deploy/compose): docker build --target emulator -t coderunner-emulator .

FROM rust:1-slim-bookworm AS build
# TLS is rustls and the production build leaves out the emulator (and with it
# SQLite): besides the Rust toolchain, only `make`, to build jemalloc.
RUN apt-get update && apt-get install -y --no-install-recommends make \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY handlers ./handlers
COPY config ./config
# Cargo.toml declares the test and bench targets; their files must exist.
COPY tests ./tests
COPY benches ./benches
# The workspace's other member (the standalone example app) must exist too.
COPY examples ./examples
# `-p coderunner`: without it the example app's crate, a default member of
# the workspace that depends on coderunner with its default features, turns
# the emulator (and SQLite) back on.
RUN cargo build --release --locked -p coderunner --no-default-features --features jemalloc --bin coderunner

# The dev emulator: the same binary with the default features (the emulator,
# SQLite bundled). Only `--target emulator` builds these two stages: BuildKit
# builds just the stages the chosen target needs, so the default image below
# is built exactly as before.
FROM build AS build-emulator
RUN cargo build --release --locked --bin coderunner

FROM debian:bookworm-slim AS emulator
RUN useradd --system --uid 10001 --no-create-home coderunner
COPY --from=build-emulator /src/target/release/coderunner /usr/local/bin/coderunner
# In a container the emulator must listen on all interfaces, not 127.0.0.1.
ENV CODERUNNER__EMULATOR__LISTEN=0.0.0.0:8100
USER 10001
EXPOSE 8100
ENTRYPOINT ["coderunner"]
CMD ["emulator"]

# The production image (the default target): keep it the last stage.
FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home coderunner
COPY --from=build /src/target/release/coderunner /usr/local/bin/coderunner
# Only the documented defaults: the dev overlay carries a public webhook secret.
COPY config/default.toml /etc/coderunner/default.toml
ENV CODERUNNER__SERVER__LISTEN=0.0.0.0:8200
# Numeric, so that Kubernetes can verify runAsNonRoot (the user coderunner).
USER 10001
EXPOSE 8200
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
    CMD ["coderunner", "probe", "http://127.0.0.1:8200/healthz"]
ENTRYPOINT ["coderunner"]
CMD ["serve"]
