"""Benchmark: memory per large model upload (``POST /api/v1/submissions/``) against receiving the same body alone.

Usage::

    .venv/bin/python benchmarks/upload_memory.py [--megabytes 190] [--uploads 2] [--database-url URL]

gunicorn (the real app, sync workers: one more than ``--uploads``) receives ``--uploads`` uploads of one ONNX model
of about ``--megabytes`` MiB at once, each from its own client and account. For each row the workers' peak
resident memory is reset (``/proc/PID/clear_refs``) before the uploads and read (``VmHWM``) after them; a worker's
growth is its peak less its resident memory before. "x file" is the largest growth of a worker over the file's
size: what one upload costs the process that handles it.

1. **receive**: the same multipart body, with the form's ``name`` left out: Django streams the file to a temporary
   file and the API answers 400 without looking at the model. The cost of receiving alone: the peer.
2. **submit**: a whole submission (201): the upload streamed to a temporary file, hashed and checked there (its
   skeleton: the structure without the large weights' bytes, benchmark.leaderboard.evaluation.skeleton) and moved into
   storage. "over receive" is its growth less the peer's, over the file's size: what the submission's own code
   costs.

Then the limit: ``--uploads`` + 1 uploads at once with ``UPLOAD_LARGE_CONCURRENT`` = ``--uploads``; the one beyond
the limit must get 503 ``uploads_busy`` (reported, not timed).

The script creates a fresh PostgreSQL database (``--database-url``) and a temporary DATA_DIR and removes both, and
stops gunicorn, even on error.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import harness  # noqa: E402  (needs ROOT on sys.path)

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/bench_upload_memory"
REQUEST_TIMEOUT_S = 600.0
HOP = 160  # samples per frame of the model's input


@dataclass
class Row:
    name: str
    statuses: Counter
    growth_bytes: list[int]  # per worker that handled an upload
    elapsed_s: float
    refusals: list[str]


# --- the model and the request --------------------------------------------------------------------------------------
def model_bytes(megabytes: float) -> bytes:
    """A valid submission (frames of 160 samples -> one linear layer -> log-softmax over the phone inventory)
    carrying ``megabytes`` MiB of float32 weights in a second initializer, as a large acoustic model would."""
    from onnx import TensorProto, helper, numpy_helper

    from speech.phones import INVENTORY

    classes = len(INVENTORY)  # what the default (greedy) decoder reads
    rng = np.random.default_rng(0)
    weights = numpy_helper.from_array(rng.standard_normal((HOP, classes)).astype(np.float32) * 0.01, "W")
    shape = numpy_helper.from_array(np.array([1, -1, HOP], dtype=np.int64), "frame_shape")
    bulk = numpy_helper.from_array(np.ones(int(megabytes * 1024 * 1024 / 4), np.float32), "bulk")
    graph = helper.make_graph(
        [
            helper.make_node("Reshape", ["waveform", "frame_shape"], ["frames"]),
            helper.make_node("MatMul", ["frames", "W"], ["logits"]),
            helper.make_node("LogSoftmax", ["logits"], ["log_probs"], axis=-1),
        ],
        "submission",
        [helper.make_tensor_value_info("waveform", TensorProto.FLOAT, [1, "samples"])],
        [helper.make_tensor_value_info("log_probs", TensorProto.FLOAT, [1, "frames", classes])],
        initializer=[weights, shape, bulk],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return model.SerializeToString()


def multipart(model: bytes, *, name: str | None) -> tuple[bytes, str]:
    """One multipart body (built once, sent by every client), and its content type."""
    boundary = "----upload-memory-benchmark"
    parts = []
    if name is not None:
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="name"\r\n\r\n{name}\r\n'.encode())
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="model.onnx"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n".encode()
    )
    return b"".join([*parts, model, f"\r\n--{boundary}--\r\n".encode()]), f"multipart/form-data; boundary={boundary}"


def tokens_create(count: int) -> list[str]:
    from django.contrib.auth import get_user_model
    from django.test import override_settings
    from rest_framework.authtoken.models import Token

    users = get_user_model()
    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        made = [users.objects.create_user(username=f"bench-upload-{k}", password=f"pw-{k}") for k in range(count)]
    return [Token.objects.create(user=user).key for user in made]


# --- gunicorn's workers' memory ------------------------------------------------------------------------------------
def worker_pids(master: int) -> list[int]:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return sorted(int(pid) for pid in children)


def status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def warm(base_url: str, workers: int) -> None:
    """Every worker imports Django and opens its database connection before anything is measured."""
    with requests.Session() as session:
        for _ in range(workers * 4):
            session.get(f"{base_url}/healthz", timeout=30)


def measure(name: str, base_url: str, master: int, body: bytes, content_type: str, tokens: list[str]) -> Row:
    pids = worker_pids(master)
    before = {pid: status_kib(pid, "VmRSS") for pid in pids}
    for pid in pids:
        Path(f"/proc/{pid}/clear_refs").write_text("5")  # VmHWM starts again from VmRSS
    statuses: list[int] = []
    refusals: list[str] = []
    start = threading.Barrier(len(tokens))

    def upload(token: str) -> None:
        start.wait()
        response = requests.post(
            f"{base_url}/api/v1/submissions/",
            data=body,
            headers={"Content-Type": content_type, "Authorization": f"Token {token}"},
            timeout=REQUEST_TIMEOUT_S,
        )
        statuses.append(response.status_code)
        if response.status_code >= 400:
            refusals.append(response.text[:300])

    began = time.perf_counter()
    threads = [threading.Thread(target=upload, args=(token,)) for token in tokens]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    growth = sorted(((status_kib(pid, "VmHWM") - before[pid]) * 1024 for pid in pids), reverse=True)
    return Row(name=name, statuses=Counter(statuses), growth_bytes=growth, elapsed_s=elapsed, refusals=refusals)


# --- the report -----------------------------------------------------------------------------------------------------
def print_report(rows: list[Row], limit_row: Row, *, size: int, uploads: int, load_before: str) -> None:
    mib = 1024 * 1024
    print()
    print(f"upload memory: {uploads} concurrent uploads of a {size / mib:.1f} MiB ONNX model")
    print(f"machine: {harness.cpu_model()}, {os.cpu_count()} cores; load average before: {load_before}, after: "
          f"{harness.load_average()}; gunicorn {uploads + 1} sync workers, PostgreSQL")  # fmt: skip
    print()
    print("| row      | answers        | peak growth per worker, MiB | x file | over receive, x file |")
    print("|----------|----------------|-----------------------------|--------|----------------------|")
    peer = max(rows[0].growth_bytes[:uploads]) / size
    for row in rows:
        answers = ", ".join(f"{n}x {code}" for code, n in sorted(row.statuses.items()))
        growth = ", ".join(f"{g / mib:.0f}" for g in row.growth_bytes)
        worst = max(row.growth_bytes[:uploads]) / size
        print(f"| {row.name:<8} | {answers:<14} | {growth:<27} | {worst:>6.2f} | {worst - peer:>20.2f} |")
    print()
    answers = ", ".join(f"{n}x {code}" for code, n in sorted(limit_row.statuses.items()))
    print(f"limit: {uploads + 1} uploads at once with UPLOAD_LARGE_CONCURRENT={uploads}: {answers}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--megabytes", type=float, default=190.0, help="MiB of weights in the model (under the cap)")
    parser.add_argument("--uploads", type=int, default=2, help="uploads at once")
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    with ExitStack() as stack:
        # Django's temporary upload files, on the same disk as the media (both under the system's temporary folder)
        upload_tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-upload-memory-tmp-"))
        env = {"UPLOAD_LARGE_CONCURRENT": str(args.uploads), "SUBMISSION_DAILY_QUOTA": "100", "TMPDIR": upload_tmp}
        scratch = stack.enter_context(harness.scratch_site(args.database_url, prefix="bench-upload-memory-", env=env))
        tokens = tokens_create(args.uploads + 1)
        harness.close_django_connections()
        model = model_bytes(args.megabytes)
        full, content_type = multipart(model, name="bench")
        nameless, _ = multipart(model, name=None)
        workers = args.uploads + 1  # one free to answer the upload beyond the limit
        log_path = scratch.data_dir / "gunicorn.log"
        base_url, server = stack.enter_context(
            harness.gunicorn_process(scratch.env, workers, log_path, timeout_s=REQUEST_TIMEOUT_S)
        )
        warm(base_url, workers)
        rows = [
            measure("receive", base_url, server.pid, nameless, content_type, tokens[: args.uploads]),
            measure("submit", base_url, server.pid, full, content_type, tokens[: args.uploads]),
        ]
        limit_row = measure("limit", base_url, server.pid, full, content_type, tokens)
        print_report(rows, limit_row, size=len(model), uploads=args.uploads, load_before=scratch.load_before)
        failed = rows[0].statuses != Counter({400: args.uploads}) or rows[1].statuses != Counter({201: args.uploads})
        if failed:
            print("unexpected answers:", *rows[0].refusals[:1], *rows[1].refusals[:1], sep="\n")
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
