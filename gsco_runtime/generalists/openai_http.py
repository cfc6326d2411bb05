"""OpenAI-compatible HTTP backend, as vLLM and lmdeploy serve MedDr.

``POST {base_url}/v1/chat/completions`` with a system message, then a user message whose content
is the image (base64 PNG ``data:`` URL in an ``image_url`` part, first, as MedDr's template puts
``<image>`` before the question) and the prompt text; ``temperature`` 0 and ``max_tokens``.
Timeouts, connection errors, 429 and 5xx are retried a bounded number of times with backoff.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import numpy as np

from gsco_common.errors import ConfigError, GeneralistError
from gsco_runtime.generalists.base import DEFAULT_MAX_NEW_TOKENS, png_data_url, register_backend

_RETRY_STATUS = {408, 429, 500, 502, 503, 504}


class OpenAIBackend:
    """Chat-completions client with bounded retries."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        timeout_s: float = 60.0,
        max_retries: int = 2,
        max_tokens: int = DEFAULT_MAX_NEW_TOKENS,
        backoff_s: float = 0.5,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ConfigError("generalist.base_url must start with http:// or https://")
        if max_retries < 0 or timeout_s <= 0 or max_tokens < 1:
            raise ConfigError("generalist: max_retries >= 0, timeout_s > 0 and max_tokens >= 1 are required")
        root = base_url.rstrip("/")
        self.url = (root if root.endswith("/v1") else root + "/v1") + "/chat/completions"
        self.model = model
        self.name = f"openai:{model}"
        self.max_retries = max_retries
        self.max_tokens = max_tokens
        self.backoff_s = backoff_s
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(timeout=timeout_s, headers=headers)

    def payload(self, image: np.ndarray, prompt: str, system: str | None) -> dict[str, Any]:
        messages: list[dict[str, Any]] = []
        if system:
            messages.append({"role": "system", "content": system})
        messages.append(
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": png_data_url(image)}},
                    {"type": "text", "text": prompt},
                ],
            }
        )
        return {"model": self.model, "messages": messages, "temperature": 0, "max_tokens": self.max_tokens}

    def generate(self, image: np.ndarray, prompt: str, *, system: str | None = None) -> str:
        body = self.payload(image, prompt, system)
        last_problem = "no attempt made"
        for attempt in range(self.max_retries + 1):
            if attempt:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            try:
                response = self._client.post(self.url, json=body)
            except httpx.TimeoutException:
                last_problem = "timed out"
                continue
            except httpx.TransportError:
                last_problem = "could not be reached"
                continue
            if response.status_code in _RETRY_STATUS:
                last_problem = f"answered HTTP {response.status_code}"
                continue
            if response.status_code != 200:
                raise GeneralistError(
                    f"the generalist server refused the request (HTTP {response.status_code})",
                    hint="check generalist.model and the server's logs",
                )
            return _content(response)
        raise GeneralistError(
            f"the generalist server {last_problem} after {self.max_retries + 1} attempts",
            hint="check that the server is up, or raise the timeout",
        )

    def close(self) -> None:
        self._client.close()


def _content(response: httpx.Response) -> str:
    """The assistant text of a chat-completions response (string or list of text parts)."""
    try:
        content = response.json()["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise GeneralistError("the generalist server's answer is not a chat completion") from exc
    if isinstance(content, list):
        content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
    if not isinstance(content, str):
        raise GeneralistError("the generalist server's answer has no text content")
    return content


@register_backend("openai")
def create_openai(**kwargs: Any) -> OpenAIBackend:
    return OpenAIBackend(**kwargs)
