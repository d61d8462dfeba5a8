# syntax=docker/dockerfile:1
# textcls service image: CPU by default, GPU with `--build-arg VARIANT=gpu`.
#
#   docker build -t textcls:0.1.0 .
#   docker build -t textcls:0.1.0-gpu --build-arg VARIANT=gpu .
#   docker run -p 8000:8000 -p 8001:8001 -v "$PWD/models:/models:ro" textcls:0.1.0
#
# 8000: HTTP (/classify, V2 REST, /metrics); 8001: gRPC (Open Inference Protocol V2, health).
#
# The GPU variant installs `.[gpu]` (tensorflow[and-cuda]: CUDA and cuDNN come as pip wheels),
# so both variants share this slim base; the host needs only the NVIDIA driver and the
# NVIDIA Container Toolkit (`docker run --gpus all ...`).

ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim AS builder
ARG VARIANT=cpu
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN python -m venv /opt/venv
WORKDIR /src

# Dependencies first, from pyproject.toml alone, so that a code change does not reinstall
# TensorFlow: stub packages let pip resolve the project, the real code is installed below.
# The versions are those of requirements.lock (the audited lock, .ci/audit.sh) as constraints,
# so the image runs what CI tested (hadolint's DL3013, "pin versions", cannot see that).
COPY pyproject.toml README.md requirements.lock ./
# hadolint ignore=DL3013
RUN case "${VARIANT}" in \
        cpu) extra="[encoder,fleet]" ;; \
        gpu) extra="[gpu,encoder,fleet]" ;; \
        *) echo "VARIANT must be cpu or gpu, got '${VARIANT}'" >&2; exit 1 ;; \
    esac \
    && mkdir -p app training \
    && touch app/__init__.py training/__init__.py \
    && pip install --no-cache-dir --constraint requirements.lock ".${extra}" \
    && pip uninstall --yes textcls

COPY app ./app
COPY training ./training
RUN pip install --no-cache-dir --no-deps . \
    && textcls --help > /dev/null


FROM python:${PYTHON_VERSION}-slim AS runtime
ARG VARIANT=cpu
LABEL org.opencontainers.image.title="textcls" \
      org.opencontainers.image.description="Text classifier service: /classify, /metrics, prediction log" \
      org.opencontainers.image.licenses="Apache-2.0" \
      textcls.variant="${VARIANT}"

# A fixed numeric uid so Kubernetes can check runAsNonRoot without reading /etc/passwd.
RUN groupadd --system --gid 10001 textcls \
    && useradd --system --uid 10001 --gid textcls --home-dir /home/textcls --create-home \
        --shell /usr/sbin/nologin textcls \
    && mkdir -p /models /data \
    && chown textcls:textcls /data

# Noto CJK: report plots (textcls train/evaluate in the image) draw Chinese/Japanese/Korean labels.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends fonts-noto-cjk \
    && rm -rf /var/lib/apt/lists/*

COPY --from=builder /opt/venv /opt/venv

# /models: the model repository, mounted (read-only is fine: the service only reads it).
# /data: the default SQLite prediction log and the spill file used while the database is down.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    TEXTCLS_MODEL_DIR=/models \
    TEXTCLS_DATABASE_URL=sqlite:////data/textcls.db \
    TEXTCLS_LOG_SPILL_PATH=/data/textcls.spill.jsonl \
    TEXTCLS_GRPC_PORT=8001

WORKDIR /data
USER 10001:10001
EXPOSE 8000 8001
VOLUME ["/data"]

# Liveness only (the process answers); readiness (/readyz) is for load balancers.
# The start period covers loading and warming up the models.
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"]

ENTRYPOINT ["textcls"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
