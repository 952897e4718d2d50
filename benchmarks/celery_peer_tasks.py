"""The peer for bench_fleet.py: Celery 5 with Redis as broker and result backend, acks_late (a task is
acknowledged after it ran, so a killed worker's tasks go back to the queue: after the Redis transport's
visibility timeout, 1 h by default). Tasks: `noop` returns its input (echo's no-op job), `sleep` sleeps
(echo's {"sleep": s}). Environment: BENCH_REDIS_URL; BENCH_TRACK_STARTED=1 records STARTED with the
worker's pid (the kill test uses it to find which worker holds which task)."""
import os
import time

from celery import Celery

URL = os.environ["BENCH_REDIS_URL"]

app = Celery("bench", broker=URL, backend=URL)
app.conf.update(
    task_acks_late=True,
    task_track_started=os.environ.get("BENCH_TRACK_STARTED") == "1",
    broker_connection_retry_on_startup=True,
)


@app.task(name="noop")
def noop(payload):
    return payload


@app.task(name="sleep")
def sleep(seconds):
    time.sleep(seconds)
    return seconds
