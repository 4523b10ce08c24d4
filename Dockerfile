# One image for web, workers and the sweeper: CPU-only torch, non-root by default.
FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml requirements.lock README.md alembic.ini ./
COPY service ./service
COPY exercises ./exercises
COPY worker ./worker
COPY migrations ./migrations
# PyTorch's CPU wheels keep the image small; the lock pins the same versions CI tests.
ARG TORCH_INDEX=""
RUN pip install ${TORCH_INDEX:+--extra-index-url ${TORCH_INDEX}} -c requirements.lock . \
    && useradd --system --uid 10001 --home-dir /app gradschool
USER gradschool
EXPOSE 8000
CMD ["gradschool", "web", "--bind", "0.0.0.0:8000"]
