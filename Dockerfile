# syntax=docker/dockerfile:1
#
# dbhook container image: the Rust binary on distroless, nothing else.
#
#   docker build -t ghcr.io/dbhook/dbhook:0.1.0 .
#   docker buildx build --platform linux/amd64,linux/arm64 -t ghcr.io/dbhook/dbhook:0.1.0 --push .
#
# Build stage: the official Rust image on Debian 12 (bookworm), the same Debian release as the
# runtime image, so the binary links against the glibc it will run with. TLS is rustls with the
# ring provider: no OpenSSL, so no libssl is needed at build or run time (ring's C and assembly
# parts need only the C compiler the image ships).
#
# Runtime stage: gcr.io/distroless/cc-debian12:nonroot — glibc, libgcc_s (Rust's panic unwinding),
# CA certificates and tzdata; no shell, no package manager (~23 MB). :nonroot runs as UID/GID
# 65532. gcr.io/distroless/static would need a musl build, which gains little here.

ARG RUST_IMAGE=rust:1-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot

FROM ${RUST_IMAGE} AS build
WORKDIR /src
# Only what the build reads (see .dockerignore); Cargo.lock pins every dependency.
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
# The registry and target directories are BuildKit cache mounts: rebuilds after a source change
# recompile only dbhook itself. The binary is copied out of the cache mount before it goes.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked --bin dbhook \
 && install -D -m 0755 target/release/dbhook /out/dbhook \
 && strip /out/dbhook \
 && /out/dbhook --version

FROM ${RUNTIME_IMAGE}
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="dbhook" \
      org.opencontainers.image.description="Kubernetes admission webhook and CI tool for CloudNativePG users: DB_URL injection, migration lockstep, backup policy" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/dbhook/dbhook"
COPY --from=build /out/dbhook /usr/local/bin/dbhook
# Numeric, so that the kubelet can verify runAsNonRoot without a runAsUser in the pod spec.
USER 65532:65532
# 8443: HTTPS webhook (POST /mutate, /validate); 8080: admin (/livez, /readyz, /metrics, /report).
EXPOSE 8443 8080
ENTRYPOINT ["/usr/local/bin/dbhook"]
CMD ["--help"]
