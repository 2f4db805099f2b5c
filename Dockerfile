# One image for every Driftwise process: the command picks the process, e.g.
#   docker run IMAGE agent drift --port 8600
#   docker run IMAGE mcp prometheus --transport http --port 8611
#   docker run IMAGE sandbox /app/scenarios --host 0.0.0.0 --port 8680
# Build: docker build -t driftwise:0.1.0 .

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/driftwise
WORKDIR /src
# Metadata first so the dependency layer is reused while only code changes.
COPY pyproject.toml README.md ./
COPY protocol ./protocol
COPY agents ./agents
COPY mcp_servers ./mcp_servers
COPY driftwise ./driftwise
# The wheel carries these too (share/driftwise/): the guardrail's default policies, the demo's scenarios.
COPY policies ./policies
COPY scenarios ./scenarios
RUN /opt/driftwise/bin/pip install .

FROM python:3.11-slim
ENV PATH=/opt/driftwise/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DRIFTWISE_HOST=0.0.0.0 \
    DRIFTWISE_STATE_DIR=/var/lib/driftwise \
    DRIFTWISE_POLICY__POLICY_DIR=/app/policies
# A fixed numeric uid so Kubernetes `runAsNonRoot` can verify it without a passwd lookup.
RUN groupadd --system --gid 10001 driftwise \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/driftwise --shell /usr/sbin/nologin driftwise \
    && mkdir -p /var/lib/driftwise \
    && chown 10001:10001 /var/lib/driftwise
COPY --from=build /opt/driftwise /opt/driftwise
# The Rego policies (also what an OPA server would serve) and the labelled scenarios for the sandbox.
COPY policies /app/policies
COPY scenarios /app/scenarios
WORKDIR /app
USER 10001:10001
VOLUME ["/var/lib/driftwise"]
ENTRYPOINT ["driftwise"]
CMD ["--help"]
