# One image for every Hookline service; the command picks the service:
#   docker run IMAGE python -m services.ingest     (or config, mapper, executor)
# Build from the repository root:  docker build -t hookline .

FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/hookline
ENV PATH=/opt/hookline/bin:$PATH
WORKDIR /src
# Dependencies first, in their own layer: it is rebuilt only when pyproject.toml changes.
COPY pyproject.toml README.md ./
RUN mkdir libs services \
    && touch libs/__init__.py services/__init__.py \
    && pip install . \
    && pip uninstall -y hookline
COPY libs ./libs
COPY services ./services
RUN pip install --no-deps . && python -m compileall -q /opt/hookline

FROM python:3.11-slim-bookworm
ENV PATH=/opt/hookline/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOOKLINE_HOST=0.0.0.0 \
    HOOKLINE_DATA_DIR=/tmp/hookline
RUN useradd --system --uid 10001 --user-group --no-create-home hookline
COPY --from=build /opt/hookline /opt/hookline
USER 10001:10001
WORKDIR /tmp
# ingest 8000, config 8080, mapper 8081, executor 8082: each serves /metrics /healthz /readyz.
EXPOSE 8000 8080 8081 8082
# SIGTERM is a graceful stop: intake closes, in-flight messages finish and are acked.
STOPSIGNAL SIGTERM
CMD ["python", "-m", "services.ingest"]
