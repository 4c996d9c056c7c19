# One image for web, workers and beat. CPU torch by default; the GPU worker is built with
#   docker compose build --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128 gpu-worker
FROM python:3.11-slim-bookworm

ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DATA_DIR=/data MEDIA_ROOT=/data/media STATIC_ROOT=/app/staticfiles

RUN apt-get update \
    && apt-get install -y --no-install-recommends espeak-ng \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 1000 app \
    && mkdir -p /data && chown app /data

WORKDIR /app
RUN pip install torch --index-url "$TORCH_INDEX_URL"
COPY pyproject.toml README.md ./
COPY config ./config
COPY speech ./speech
COPY core ./core
COPY contributors ./contributors
COPY benchmark ./benchmark
COPY training ./training
COPY frontend ./frontend
COPY demo ./demo
COPY manage.py ./
COPY docs/submission-spec.md ./docs/submission-spec.md
RUN pip install '.[s3]' \
    && SECRET_KEY=build-only DATA_DIR=/tmp/build python manage.py collectstatic --noinput

USER app
EXPOSE 8000
CMD ["gunicorn", "config.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "4"]
