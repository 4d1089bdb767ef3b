"""Sends notices by e-mail through the library's SMTP server."""

import logging
import smtplib
from email.message import EmailMessage
from typing import Optional
from urllib.parse import urlsplit

from libris.config import get_smtp_url
from libris.errors import ConfigurationError

log = logging.getLogger(__name__)


class Mailer:
    def __init__(self, url: str, sender: str = "desk@libris.invalid"):
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ConfigurationError(f"Not an SMTP URL: {url!r}")
        self.host = parts.hostname
        self.port = parts.port or (465 if parts.scheme == "smtps" else 587)
        self.username = parts.username
        self.password = parts.password
        self.use_ssl = parts.scheme == "smtps"
        self.sender = sender

    @classmethod
    def from_env(cls) -> "Mailer":
        url = get_smtp_url()
        if url is None:
            raise ConfigurationError("LIBRIS_SMTP_URL is not set; notices cannot be sent")
        return cls(url)

    def send(self, to: str, subject: str, body: str) -> None:  # pragma: no cover - talks to a server
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = to
        message["Subject"] = subject
        message.set_content(body)
        smtp_cls = smtplib.SMTP_SSL if self.use_ssl else smtplib.SMTP
        with smtp_cls(self.host, self.port, timeout=30) as smtp:
            if not self.use_ssl:
                smtp.starttls()
            if self.username:
                smtp.login(self.username, self.password or "")
            smtp.send_message(message)
        log.info("sent %r to %s", subject, to)
