"""The console's e-mails (invitations), rendered from templates and sent through Django's backend
(the console backend in development, SMTP otherwise: settings.EMAIL_*)."""

from __future__ import annotations

import logging
import smtplib
from typing import Any

from django.core.mail import send_mail
from django.template.loader import render_to_string

logger = logging.getLogger("slop.dashboard")

# What a mail server that is down, refusing or misconfigured raises.
SEND_ERRORS = (smtplib.SMTPException, OSError)


def send_templated(template_prefix: str, context: dict[str, Any], to: str) -> bool:
    """Sends `<prefix>_subject.txt` / `<prefix>.txt`; False (and a log line) when it could not."""
    subject = " ".join(render_to_string(f"{template_prefix}_subject.txt", context).split())
    body = render_to_string(f"{template_prefix}.txt", context)
    try:
        send_mail(subject, body, None, [to])
    except SEND_ERRORS:
        logger.exception("could not send %s to %s", template_prefix, to)
        return False
    return True
