# herald container image.
#
# Two stages on Debian 12 (the platform herald is developed and tested on):
# the build stage compiles with the -dev packages; the runtime stage holds
# only the binary, the shared libraries it links (Debian's runtime packages
# of the same libraries) and the CA store for HTTPS webhooks. It runs as an
# unprivileged numeric user, so Kubernetes' runAsNonRoot can verify it, and
# writes no files, so a read-only root filesystem works.
#
#   docker build -t herald .
#   docker run --rm -v "$PWD/herald.conf:/etc/herald/herald.conf:ro" herald

FROM debian:12 AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      cmake gcc libc6-dev make pkg-config \
      librdkafka-dev libcurl4-openssl-dev libssl-dev libhiredis-dev \
      libcjson-dev libmicrohttpd-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -B build -DCMAKE_BUILD_TYPE=Release -DHERALD_TESTS=OFF \
 && cmake --build build --parallel \
 && strip build/herald

FROM debian:12-slim AS runtime
# The runtime halves of the -dev packages above; ca-certificates for HTTPS.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      librdkafka1 libcurl4 libssl3 libhiredis0.14 libcjson1 libmicrohttpd12 \
      ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/build/herald /usr/local/bin/herald
# Fail the build, not the first start, if a shared library is missing. An
# empty config file lets the image run on defaults plus HERALD_* variables;
# the Helm chart mounts its ConfigMap over /etc/herald.
RUN if ldd /usr/local/bin/herald | grep -q 'not found'; then \
      ldd /usr/local/bin/herald; exit 1; \
    fi \
 && mkdir -p /etc/herald \
 && : > /etc/herald/herald.conf \
 && chmod 0444 /etc/herald/herald.conf

USER 10001:10001
# /metrics, /healthz, /readyz (config http.listen).
EXPOSE 9464
ENTRYPOINT ["herald", "run"]
CMD ["--config", "/etc/herald/herald.conf"]
