# syntax=docker/dockerfile:1
# One image for web, workers, the sweeper and the migration job (docker-compose.yml).
# CPU-only PyTorch; runs as an unprivileged user (uid 10001) unless a service says otherwise:
# only worker-code runs as root inside its container, because the sandbox needs it (docs/DEPLOY.md).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/venv/bin:$PATH
# PyTorch's CPU wheels: a few hundred MB instead of several GB of CUDA libraries.
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
RUN python -m venv /opt/venv
WORKDIR /app
# Dependencies in their own layer, pinned by the lock: a code change does not reinstall torch.
COPY pyproject.toml requirements.lock README.md ./
RUN pip install --extra-index-url "${TORCH_INDEX}" -c requirements.lock . \
    && pip uninstall -y gradschool
COPY alembic.ini ./
COPY migrations ./migrations
COPY exercises ./exercises
COPY service ./service
COPY worker ./worker
# Installed in place: migrations and alembic.ini are found next to the code, and the sandbox
# hides /app (the project's packages) from learner code, which sees only the venv and /usr.
RUN pip install --no-deps --config-settings editable_mode=compat -e . \
    && python -m compileall -q /app

FROM ${PYTHON_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PATH=/opt/venv/bin:$PATH \
    GRADSCHOOL_DATA_DIR=/tmp/gradschool LOG_FORMAT=json
RUN groupadd --system --gid 10001 gradschool \
    && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
        --shell /usr/sbin/nologin gradschool
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
WORKDIR /app
USER 10001:10001
EXPOSE 8000 9808
CMD ["gradschool", "web", "--bind", "0.0.0.0:8000"]
