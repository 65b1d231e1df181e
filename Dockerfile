# syntax=docker/dockerfile:1
# The parkpulse image: the `parkpulse` console script (worker, produce, targets, status …).
# docker-compose.yml runs it as the worker and as the one-shot demo producer.

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml ./
COPY parkpulse ./parkpulse
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PARKPULSE_DATA_DIR=/app/var \
    PARKPULSE_METRICS_HOST=0.0.0.0 \
    PARKPULSE_METRICS_PORT=9464 \
    PARKPULSE_API_HOST=0.0.0.0 \
    PARKPULSE_API_PORT=6066
RUN useradd --system --uid 10001 --user-group --home-dir /app --create-home parkpulse
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links=/wheels parkpulse && rm -rf /wheels
# The bundled plan targets as a plain file, for `parkpulse targets` in the demo producer.
COPY parkpulse/reference/plan_targets.csv /app/reference/plan_targets.csv
USER parkpulse
WORKDIR /app
# Faust table state and the demo feed; docker-compose mounts a volume here for the worker.
RUN mkdir -p /app/var
EXPOSE 6066 9464
ENTRYPOINT ["parkpulse"]
CMD ["worker"]
