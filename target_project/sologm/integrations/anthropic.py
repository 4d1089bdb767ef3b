"""Thin client for Anthropic's Messages API.

The real ``anthropic`` package is optional; the client is only needed for the
oracle, and tests always replace it with a mock.
"""

import logging
from typing import Optional

from sologm.utils.config import get_config
from sologm.utils.errors import APIError

logger = logging.getLogger(__name__)


class AnthropicClient:
    """Sends prompts to Claude and returns the text of the answer."""

    def __init__(self, api_key: Optional[str] = None, model: Optional[str] = None) -> None:
        config = get_config()
        self.api_key = api_key or config.get("anthropic_api_key")
        self.model = model or config.get("oracle_model")
        if not self.api_key:
            raise APIError(
                "No Anthropic API key: set SOLOGM_ANTHROPIC_API_KEY or add it to config.json"
            )
        self._client = None

    def _get_client(self):  # pragma: no cover - needs the network
        if self._client is None:
            try:
                import anthropic
            except ImportError as e:
                raise APIError("The 'anthropic' package is not installed") from e
            self._client = anthropic.Anthropic(api_key=self.api_key)
        return self._client

    def send_message(
        self, prompt: str, max_tokens: int = 1000, temperature: float = 0.7
    ) -> str:  # pragma: no cover - needs the network
        """Send ``prompt`` and return the response text."""
        logger.debug("Sending prompt of %d characters", len(prompt))
        try:
            response = self._get_client().messages.create(
                model=self.model,
                max_tokens=max_tokens,
                temperature=temperature,
                messages=[{"role": "user", "content": prompt}],
            )
        except APIError:
            raise
        except Exception as e:
            raise APIError(f"Failed to get response from Claude: {e}") from e
        return response.content[0].text
