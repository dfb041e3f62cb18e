# The one image for every service: ingress, exporter, packager, canvas, and the operator CLI.
#
#   docker build -t benchling-webhook .
#   docker run --rm -p 8080:8080 benchling-webhook                          # the ingress (CMD)
#   docker run --rm -p 8080:8080 benchling-webhook /usr/local/bin/exporter  # another service
#   docker run --rm benchling-webhook /usr/local/bin/benchling-webhook      # the operator CLI
#   docker build --target standins .   # compose's Benchling and Quilt stand-ins (compose/)
#
# Every service binary takes `--health` (GET /health/ready on 127.0.0.1:$PORT, exit 0 on 200),
# so a health check needs no shell: ["CMD", "/usr/local/bin/exporter", "--health"]. Each ECS
# task or compose service sets its own command; there is no ENTRYPOINT. docs/deploy.md explains
# the stages and the sizes; infra/cli/tests/it/image.rs checks this file against the workspace.

ARG RUST_VERSION=1.95

# Rust (the workspace's rust-version) plus cargo-chef. The slim image already has gcc and
# libc6-dev, all that aws-lc-sys's cc builder needs (no cmake), so there is no apt-get step.
FROM rust:${RUST_VERSION}-slim-bookworm AS chef
RUN cargo install cargo-chef --locked --version 0.1.78
WORKDIR /app

# The recipe: every manifest and Cargo.lock, no sources. It changes only when dependencies do.
FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

# Dependencies first (cached while the recipe is unchanged), then the five binaries. Both steps
# name the same binaries so cargo resolves the same features and reuses the cooked artefacts.
FROM chef AS builder
# The image's binaries only: fat LTO and one codegen unit cut them by a quarter (docs/deploy.md,
# "Sizes"); the workspace's release profile, which benchmarks and tests build, stays quicker to link.
ENV CARGO_PROFILE_RELEASE_STRIP=symbols \
    CARGO_PROFILE_RELEASE_LTO=fat \
    CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1
COPY --from=planner /app/recipe.json recipe.json
RUN cargo chef cook --release --locked --recipe-path recipe.json \
      --bin ingress --bin exporter --bin packager --bin canvas --bin benchling-webhook
COPY . .
RUN cargo build --release --locked \
      --bin ingress --bin exporter --bin packager --bin canvas --bin benchling-webhook

# Compose's stand-ins for Benchling's API and Quilt's packager (never deployed): built from the
# same sources and dependency layer, in their own image.
FROM builder AS standins-build
RUN cargo build --release --locked --bin benchling-standin --bin quilt-standin

FROM gcr.io/distroless/cc-debian12 AS standins
COPY --from=standins-build \
      /app/target/release/benchling-standin \
      /app/target/release/quilt-standin \
      /usr/local/bin/
USER 1000:1000

# glibc, libgcc and CA certificates (rustls' platform verifier reads them); no shell, no package
# manager. Debian 12, like the builder, so the binaries' glibc symbols are all there.
FROM gcr.io/distroless/cc-debian12 AS runtime
ARG SOURCE_URL=https://github.com/quiltdata/benchling-webhook
LABEL org.opencontainers.image.source="${SOURCE_URL}" \
      org.opencontainers.image.title="benchling-webhook" \
      org.opencontainers.image.description="Benchling to Quilt webhook: ingress, exporter, packager and canvas services, and the benchling-webhook operator CLI" \
      org.opencontainers.image.licenses="Apache-2.0"
# One COPY, so one layer holds all five binaries.
COPY --from=builder \
      /app/target/release/ingress \
      /app/target/release/exporter \
      /app/target/release/packager \
      /app/target/release/canvas \
      /app/target/release/benchling-webhook \
      /usr/local/bin/
USER 1000:1000
ENV PORT=8080
EXPOSE 8080
CMD ["/usr/local/bin/ingress"]
