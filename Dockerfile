# syntax=docker/dockerfile:1
#
# Idemgate container image: docker build -t idemgate:0.1.0 .
# Stage 1 builds the shaded jar with Maven on JDK 17; stage 2 runs it on a JRE 17 as a non-root user.
# Tags are pinned to exact versions (never "latest") so a rebuild gives the same image; pin digests
# (image@sha256:...) too where your registry policy asks for it.

FROM maven:3.9.11-eclipse-temurin-17 AS build
WORKDIR /build
# Dependencies first, in their own layer: it is rebuilt only when pom.xml changes.
COPY pom.xml ./
RUN mvn -B -q -Dmaven.repo.local=/build/.m2 dependency:go-offline
COPY src ./src
COPY conf ./conf
# Tests need PostgreSQL and Redis, which a build container does not have: CI runs them before the image is built.
RUN mvn -B -q -Dmaven.repo.local=/build/.m2 package -DskipTests

FROM eclipse-temurin:17.0.16_8-jre-noble AS runtime
LABEL org.opencontainers.image.title="idemgate" \
      org.opencontainers.image.description="Payment idempotency gateway: exactly-once POST /pay in front of payment providers"

# A fixed numeric uid/gid, so Kubernetes' runAsNonRoot can verify it without a passwd lookup.
RUN groupadd --system --gid 10001 idemgate \
 && useradd --system --uid 10001 --gid 10001 --home-dir /app --no-create-home --shell /usr/sbin/nologin idemgate

WORKDIR /app
# Owned by root and read-only to the service user: the process cannot rewrite its own code or defaults.
COPY --from=build /build/target/idemgate.jar /app/idemgate.jar
COPY conf/ /app/conf/

# The config file only, no setting: the environment wins over the file, so a setting set here
# would silently override the ConfigMap's (http_port and management_port did until session 33).
ENV IDEMGATE_CONFIG=/app/conf/idemgate.yaml

USER 10001:10001
EXPOSE 8080 9090

# The JRE image has no curl; bash's /dev/tcp speaks just enough HTTP to read the status line of /health/live.
# On the management port the gateway listens on: a container run with another IDEMGATE_MANAGEMENT_PORT
# was reported unhealthy while it served. A port changed in the config file instead is not seen here:
# set IDEMGATE_MANAGEMENT_PORT too (Kubernetes uses its own probes, not this check).
HEALTHCHECK --interval=10s --timeout=3s --start-period=40s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${IDEMGATE_MANAGEMENT_PORT:-9090} && printf 'GET /health/live HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q ' 200 '"]

# Heap from the container's memory limit, not the node's; leave 40 % for metaspace, Netty's direct
# buffers, thread stacks and the collector (155-197 MB beside a 256 MB heap, docs/performance.md). An OutOfMemoryError leaves a process in an unknown state, so it
# exits and the orchestrator restarts it; PostgreSQL-backed recovery finishes whatever was in flight.
# Direct memory is bounded on its own: by default the JVM allows as much as the heap, so heap plus
# direct buffers could pass the container's limit and the kernel would kill the pod with no
# OutOfMemoryError. Measured at 3.4 MB under 1,000 connections and 2 MB during a 212 MB upload
# (session 21): 64 MB leaves room. Past it a buffer allocation fails, and with it one request only
# (ExitOnOutOfMemoryError does not act on errors thrown by Java code).
# JAVA_TOOL_OPTIONS adds flags without rebuilding.
ENTRYPOINT ["java", "-XX:MaxRAMPercentage=60.0", "-XX:InitialRAMPercentage=50.0", "-XX:MaxDirectMemorySize=64m", "-XX:+ExitOnOutOfMemoryError", "-XX:+UseG1GC", "-Djava.io.tmpdir=/tmp", "-jar", "/app/idemgate.jar"]
CMD ["serve"]
