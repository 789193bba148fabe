"""The LLM port on the openai SDK, against any OpenAI-compatible base URL (OpenAI, Azure, vLLM,
llama.cpp's server, Ollama).

Timeouts, refused connections, rate limits and 5xx answers are retried (`retries` more times, with a
short backoff), then raised as LLMUnavailable, a TransientError: a caller never gets an empty answer
in place of an outage. An answer with no text at all is treated the same way. 4xx answers other than
rate limits are the caller's mistake and raise ConfigError.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import structlog

from pipeline.errors import ConfigError, LLMUnavailable
from pipeline.ports import Completion
from pipeline.settings import LLMConfig

log = structlog.get_logger(__name__)


class OpenAIClient:
    """`complete(messages, ...)` over chat completions. `json_schema`: constrained decoding where the
    server supports response_format with a schema (OpenAI, llama.cpp's server, vLLM)."""

    def __init__(self, config: LLMConfig, backoff_s: float = 1.0) -> None:
        import openai

        if not config.configured:
            raise ConfigError("the LLM is not configured: set AUTOFIX_LLM_BASE_URL and AUTOFIX_LLM_MODEL")
        self.config = config
        self.model = config.model or ""
        self.backoff_s = backoff_s
        key = config.api_key.get_secret_value() if config.api_key is not None else "unused"
        # The SDK's own retries are off: ours count every try and end in one typed error.
        self._client = openai.OpenAI(base_url=config.base_url, api_key=key, timeout=config.timeout_s,
                                     max_retries=0)

    def complete(self, messages: Sequence[Mapping[str, str]], *, max_tokens: int = 2048, temperature: float = 0.0,
                 json_schema: Mapping[str, Any] | None = None, seed: int | None = None,
                 stop: Sequence[str] | None = None) -> Completion:
        import openai

        extra: dict[str, Any] = {}
        if json_schema is not None and self.config.schema_style == "llama.cpp":
            extra["response_format"] = {"type": "json_object", "schema": dict(json_schema)}
        elif json_schema is not None:
            extra["response_format"] = {"type": "json_schema",
                                        "json_schema": {"name": "edits", "schema": dict(json_schema), "strict": True}}
        if seed is not None:
            extra["seed"] = seed
        if stop:
            extra["stop"] = list(stop)
        tries = self.config.retries + 1
        last = ""
        for attempt in range(1, tries + 1):
            try:
                reply = self._client.chat.completions.create(
                    model=self.model, messages=[dict(m) for m in messages],  # type: ignore[misc]
                    max_tokens=max_tokens, temperature=temperature, **extra)
            except (openai.APITimeoutError, openai.APIConnectionError, openai.RateLimitError,
                    openai.InternalServerError) as exc:
                last = f"{type(exc).__name__}: {exc}"
            except openai.APIStatusError as exc:
                if exc.status_code >= 500:
                    last = f"HTTP {exc.status_code}: {exc.message}"
                else:
                    raise ConfigError(f"the LLM endpoint refused the request: HTTP {exc.status_code} "
                                      f"{exc.message}") from exc
            else:
                choice = reply.choices[0] if reply.choices else None
                text = (choice.message.content or "") if choice is not None else ""
                usage = reply.usage
                if text.strip():
                    return Completion(text, usage.prompt_tokens if usage else 0,
                                      usage.completion_tokens if usage else 0, reply.model or self.model,
                                      (choice.finish_reason or "") if choice is not None else "")
                last = "the endpoint answered with no text"
            log.warning("llm.retry", attempt=attempt, of=tries, reason=last[:200])
            if attempt < tries:
                time.sleep(self.backoff_s * attempt)
        raise LLMUnavailable(f"{self.config.base_url}: {last} ({tries} tries)")
