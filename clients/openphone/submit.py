"""Submit an ONNX model to the leaderboard from a shell.

    python -m openphone.submit submit model.onnx --name "Mimic 8k" --description "..." --url https://... \\
        [--decoder greedy|greedy_ctc] [--server https://openphone.example] [--token KEY]

The token comes from ``--token`` or ``$OPENPHONE_TOKEN`` (get one with ``POST /api/v1/auth/token``). Errors exit
non-zero with one sentence on stderr; success prints the submission's id and status.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

DEFAULT_SERVER = "http://127.0.0.1:8000"


class ClientError(Exception):
    """A failure worth one sentence to the user."""


def submit(
    path: Path,
    *,
    name: str,
    description: str = "",
    url: str = "",
    decoder: str = "greedy",
    server: str = DEFAULT_SERVER,
    token: str = "",
    timeout: float = 600.0,
) -> dict:
    """POST the model to ``/api/v1/submissions/``; the created submission as JSON, or ClientError."""
    import requests  # a dependency of the client only

    if not path.is_file():
        raise ClientError(f"{path} is not a file.")
    if not token:
        raise ClientError("No API token: pass --token or set OPENPHONE_TOKEN.")
    endpoint = server.rstrip("/") + "/api/v1/submissions/"
    fields = {"name": name, "description": description, "url": url, "decoder": decoder}
    try:
        with path.open("rb") as handle:
            response = requests.post(
                endpoint,
                data=fields,
                files={"file": (path.name, handle, "application/octet-stream")},
                headers={"Authorization": f"Token {token}"},
                timeout=timeout,
            )
    except requests.RequestException as exc:
        raise ClientError(f"Could not reach {endpoint}: {exc}.") from exc
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code != 201:
        message = body.get("message") or response.reason or "no message"
        code = body.get("code", "error")
        raise ClientError(f"The server refused the submission ({response.status_code} {code}): {message}")
    return body


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m openphone.submit", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    send = commands.add_parser("submit", help="Submit an ONNX model for evaluation.")
    send.add_argument("model", type=Path)
    send.add_argument("--name", required=True)
    send.add_argument("--description", default="")
    send.add_argument("--url", default="")
    send.add_argument("--decoder", choices=["greedy", "greedy_ctc"], default="greedy")
    send.add_argument("--server", default=os.environ.get("OPENPHONE_SERVER", DEFAULT_SERVER))
    send.add_argument("--token", default=os.environ.get("OPENPHONE_TOKEN", ""))
    args = parser.parse_args(argv)
    try:
        body = submit(
            args.model,
            name=args.name,
            description=args.description,
            url=args.url,
            decoder=args.decoder,
            server=args.server,
            token=args.token,
        )
    except ClientError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    quota = body.get("quota_left")
    print(f"Submission {body['id']} is {body['status']}" + (f"; {quota} left today." if quota is not None else "."))
    return 0


if __name__ == "__main__":
    sys.exit(main())
