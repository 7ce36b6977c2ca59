"""`autograder evaluate`: send the evaluation payload to an OpenAI-compatible chat endpoint and keep the
answer in the report (`evaluation`, see report.schema.json). Standard library only (urllib).

The report is rewritten atomically, and only when a usable answer came back: an unreachable server, an
HTTP error, a timeout or an answer that is not a chat completion leave it as it was and raise
EvaluationError with a message that says which.
"""
from __future__ import annotations

import hashlib
import json
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Dict, Optional

from autograder.report import document as report_mod
from autograder.report.evaluation import payload as evaluation_payload

ANSWER_BYTES = 1 << 20   # the most of a server's answer that is read
CONTENT_CHARS = 20000    # the most of the model's text that the report keeps


class EvaluationError(RuntimeError):
    """The endpoint gave no usable answer; the message says why (and the report is unchanged)."""


def chat_url(url: str) -> str:
    """The chat-completions URL for a server's base URL (`http://host:8000`, `.../v1`) or the full one."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise EvaluationError(f"--url must be an http:// or https:// address, not {url!r}")
    path = parts.path.rstrip("/")
    if not path.endswith("/chat/completions"):
        path += "/chat/completions" if path.endswith("/v1") else "/v1/chat/completions"
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def request(body: Dict[str, Any], url: str, model: str, api_key: Optional[str], timeout_s: float) -> Dict[str, Any]:
    """POST the payload's prompt to `url`; the parsed chat completion."""
    target = chat_url(url)
    data = json.dumps({"model": model, "temperature": 0, "messages": [
        {"role": "system", "content": body["prompt"]["system"]},
        {"role": "user", "content": body["prompt"]["user"]}]}).encode("utf-8")
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    call = urllib.request.Request(target, data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(call, timeout=timeout_s) as response:
            raw = response.read(ANSWER_BYTES)
    except urllib.error.HTTPError as exc:
        detail = exc.read(300).decode("utf-8", "replace").strip()
        raise EvaluationError(f"the evaluation endpoint {target} answered HTTP {exc.code} {exc.reason}"
                              + (f": {detail}" if detail else "")) from None
    except (socket.timeout, TimeoutError):
        raise EvaluationError(f"the evaluation endpoint {target} did not answer within {timeout_s:g} s") from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, (socket.timeout, TimeoutError)):
            raise EvaluationError(f"the evaluation endpoint {target} did not answer within {timeout_s:g} s") from None
        raise EvaluationError(f"cannot reach the evaluation endpoint {target}: {exc.reason}") from None
    try:
        answer = json.loads(raw)
        content = answer["choices"][0]["message"]["content"]
        if not isinstance(content, str):
            raise TypeError("content is not text")
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise EvaluationError(f"the evaluation endpoint {target} answered something that is not a chat "
                              f"completion ({type(exc).__name__}: {exc})") from None
    return answer


def _without_credentials(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def evaluate(document: Dict[str, Any], url: str, model: str, api_key: Optional[str] = None,
             timeout_s: float = 120.0) -> Dict[str, Any]:
    """The report with `evaluation` filled from the endpoint's answer (the argument is not modified)."""
    body = evaluation_payload(document)
    started = time.time()
    answer = request(body, url, model, api_key, timeout_s)
    choice = answer["choices"][0]
    usage = answer.get("usage") if isinstance(answer.get("usage"), dict) else {}
    evaluated = dict(document)
    evaluated["evaluation"] = {
        "model": str(answer.get("model") or model),
        "endpoint": _without_credentials(chat_url(url)),
        "requested_at": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "duration_s": round(time.time() - started, 3),
        "payload_sha256": hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest(),
        "content": choice["message"]["content"][:CONTENT_CHARS],
        "finish_reason": choice.get("finish_reason") if isinstance(choice.get("finish_reason"), str) else None,
        "usage": {k: v for k, v in usage.items() if isinstance(v, int) and not isinstance(v, bool)},
    }
    report_mod.validate(evaluated)
    return evaluated
