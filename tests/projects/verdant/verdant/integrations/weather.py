"""Tiny client for the (fictional) OpenSky weather API."""

import json
import urllib.request
from typing import Any, Dict


class WeatherClient:
    BASE_URL = "https://api.opensky-weather.example/v1"

    def __init__(self, api_key: str) -> None:
        if not api_key:
            raise ValueError("api_key is required")
        self.api_key = api_key

    def forecast(self, location: str) -> Dict[str, Any]:
        """``{"rain_mm": float, "temp_c": float}`` for the next 24 hours."""
        url = f"{self.BASE_URL}/forecast?q={location}&key={self.api_key}"
        with urllib.request.urlopen(url, timeout=10) as resp:  # pragma: no cover
            return json.load(resp)
