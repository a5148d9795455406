# llmbench in a container: built with the Rust toolchain, shipped on a distroless base
# (glibc, CA certificates, no shell). The charts' font is compiled
# in, so nothing else is needed at run time.
#
#   docker build -t llmbench .
#   docker run --rm llmbench --help
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin llmbench \
    && strip target/release/llmbench

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/llmbench /usr/local/bin/llmbench
WORKDIR /results
ENTRYPOINT ["/usr/local/bin/llmbench"]
CMD ["--help"]
