"""Sending the validation mails (client-server "Email-based (identity / homeserver)": the
homeserver validates the address itself by mailing a token).

``SmtpMailer`` talks SMTP with the standard library's ``smtplib`` on a small thread pool of
its own (``MAX_MAIL_THREADS``), never on the reactor: a slow or unreachable mail server
delays only the ``requestToken`` call waiting for it (``email.smtp_timeout_s`` per mail), and
at most that many mails are in flight.  ``smtp_security``: ``starttls`` (required: a server
that does not offer it is an error, never a silent fall-back to plain text), ``tls``
(implicit TLS) or ``none`` (loopback test servers).
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any, Protocol

from twisted.internet import threads
from twisted.python.threadpool import ThreadPool

MAX_MAIL_THREADS = 2


class MailError(Exception):
    """The mail could not be handed to the SMTP server."""


class Mailer(Protocol):
    async def send(self, to: str, subject: str, text: str) -> None: ...


def build_message(sender: str, to: str, subject: str, text: str, domain: str) -> EmailMessage:
    """A plain-text UTF-8 mail.  ``to`` and ``subject`` come checked (no line breaks)."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=False, usegmt=True)
    msg["Message-ID"] = make_msgid(domain=domain)
    msg.set_content(text)
    return msg


class SmtpMailer:
    def __init__(self, reactor: Any, config: Any, server_name: str) -> None:
        self._reactor = reactor
        self._config = config  # node.config.EmailConfig
        self._server_name = server_name
        self.sender = config.from_address or f"Parta <noreply@{server_name}>"
        self._pool = ThreadPool(minthreads=0, maxthreads=MAX_MAIL_THREADS, name="parta-mail")

    async def send(self, to: str, subject: str, text: str) -> None:
        msg = build_message(self.sender, to, subject, text, self._server_name)
        if not self._pool.started:
            self._pool.start()
            self._reactor.addSystemEventTrigger("during", "shutdown", self._pool.stop)
        await threads.deferToThreadPool(self._reactor, self._pool, self._send_blocking, msg)

    def _send_blocking(self, msg: EmailMessage) -> None:
        cfg = self._config
        timeout = float(cfg.smtp_timeout_s)
        try:
            smtp: smtplib.SMTP
            if cfg.smtp_security == "tls":
                smtp = smtplib.SMTP_SSL(
                    cfg.smtp_host,
                    cfg.smtp_port,
                    timeout=timeout,
                    context=ssl.create_default_context(),
                )
            else:
                smtp = smtplib.SMTP(cfg.smtp_host, cfg.smtp_port, timeout=timeout)
            with smtp:
                if cfg.smtp_security == "starttls":
                    smtp.starttls(context=ssl.create_default_context())
                if cfg.smtp_user:
                    smtp.login(cfg.smtp_user, cfg.smtp_password)
                smtp.send_message(msg, to_addrs=[str(msg["To"])])
        except (OSError, smtplib.SMTPException) as exc:
            raise MailError(f"{type(exc).__name__}: {exc}") from None
