"""The executor's side effects, behind the engine's ``Actions`` port.

Channels come from the channel registry (KV watch); a step names one statically
(``channel``) or takes its id from an attribute (``channel_from``, F8).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import yarl

from libs.domain import paths
from libs.domain.channels import Channel, HttpChannel, SmtpChannel, WhatsAppChannel
from libs.domain.connector import (
    AssignOwnerStep,
    EmailStep,
    HttpStep,
    UpdateContactStep,
    WhatsAppStep,
)
from libs.infra.mongo.contacts import Contacts
from libs.infra.mongo.store import Store
from libs.infra.nats.channel_registry import ChannelRegistry
from services.executor.adapters.email import send_email
from services.executor.adapters.http import HttpClient, is_public
from services.executor.adapters.whatsapp import WhatsAppClient
from services.executor.core.engine import ActionStep
from services.executor.errors import PermanentError, TransientError

C = TypeVar("C", bound=Channel)


@dataclass(frozen=True, slots=True)
class LiveActions:
    """The real adapters: HTTP, WhatsApp, SMTP, the contacts repository and the store."""

    http: HttpClient
    whatsapp: WhatsAppClient
    channels: ChannelRegistry
    contacts: Contacts
    store: Store

    def channel(
        self, kind: type[C], static: str | None, dynamic: str | None, context: Mapping[str, Any]
    ) -> C:
        """The step's channel: the attribute's value wins over the fixed id (F8)."""
        channel_id = static
        if dynamic:
            value = paths.resolve(context, dynamic)
            if value not in (None, ""):
                channel_id = str(value)
        if not channel_id:
            raise PermanentError("no channel: set `channel` or a `channel_from` attribute")
        found = self.channels.get(channel_id)
        if found is None:
            raise PermanentError(f"unknown channel id {channel_id!r}")
        if not isinstance(found, kind):
            raise PermanentError(
                f"channel {channel_id!r} is a {found.__struct_config__.tag} channel, "
                f"not {kind.__struct_config__.tag}"
            )
        return found

    async def run(
        self, step: ActionStep, rendered: Mapping[str, Any], context: Mapping[str, Any]
    ) -> Any:
        if isinstance(step, HttpStep):
            return await self._http(step, rendered, context)
        if isinstance(step, EmailStep):
            smtp = self.channel(SmtpChannel, step.channel, step.channel_from, context)
            address = None
            if not (smtp.allow_private or self.http.allows_private):
                address = await refuse_private_host(smtp.host, smtp.port)
            return await send_email(
                smtp,
                address=address,
                to=rendered["to"],
                subject=rendered["subject"],
                text=rendered["text"],
                html=rendered["html"],
                message_id=f"{context.get('event_id')}.{step.id}",
            )
        if isinstance(step, WhatsAppStep):
            wa = self.channel(WhatsAppChannel, step.channel, step.channel_from, context)
            return await self.whatsapp.send(
                wa,
                to=rendered["to"],
                text=rendered["text"] or None,
                template_name=rendered["template_name"] or None,
                template_language=step.template_language,
                template_params=list(rendered["template_params"]),
            )
        if isinstance(step, UpdateContactStep):
            contact = await self.contacts.update_fields(_contact_id(context), rendered["fields"])
            if contact is None:
                raise PermanentError("the event's contact no longer exists")
            return {"contact_id": contact["id"], "updated": sorted(rendered["fields"])}
        if isinstance(step, AssignOwnerStep):
            email = str(rendered["agent_email"]).strip().lower()
            if await self.store.find_one("agents", {"_id": email}) is None:
                raise PermanentError(f"unknown agent {email!r}")
            contact = await self.contacts.set_owner(_contact_id(context), email)
            if contact is None:
                raise PermanentError("the event's contact no longer exists")
            return {"contact_id": contact["id"], "owner": email}
        raise PermanentError(f"action type {type(step).__name__} is not available")

    async def _http(
        self, step: HttpStep, rendered: Mapping[str, Any], context: Mapping[str, Any]
    ) -> Any:
        url, headers, allow_private = rendered["url"], dict(rendered["headers"]), False
        if step.channel:
            channel = self.channel(HttpChannel, step.channel, None, context)
            if channel.base_url and not url.lower().startswith(("http://", "https://")):
                url = channel.base_url.rstrip("/") + "/" + url.lstrip("/")
            if channel.base_url:
                on_origin(url, channel.base_url, channel.id)
            headers = {**channel.headers, **headers}
            allow_private = channel.allow_private
        # The same key on every delivery of this event's step, so a receiver can drop the
        # repeat that a crash between sending and journaling can cause.
        if not any(k.lower() == "idempotency-key" for k in headers):
            headers["Idempotency-Key"] = f"{context.get('event_id', '')}:{step.id}"
        return await self.http.request(
            step.method,
            url,
            headers=headers,
            body=rendered["body"],
            timeout_s=step.timeout_s,
            allow_private=allow_private,
        )


async def refuse_private_host(host: str, port: int) -> str:
    """The HTTP actions' private-address guard for a mail server's host name: the
    address to connect to, checked.  The send connects to that address, not to the name
    again, so a DNS answer that changes between the check and the connect is harmless."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port)
    except OSError as exc:
        raise TransientError(f"cannot resolve mail server {host!r}: {exc}") from None
    addresses = {str(info[4][0]) for info in infos}
    if not addresses or not all(is_public(a) for a in addresses):
        raise PermanentError(
            f"refused: mail server {host} is a private or loopback address; "
            "allow it on the email channel (allow_private) to use it"
        )
    return str(infos[0][4][0])


def on_origin(url: str, base_url: str, channel_id: str) -> None:
    """A channel's headers (its credentials) go to the channel's origin only: the same
    scheme, host and port, and a path under the base URL's (after ``..`` is resolved),
    whatever URL a template made of a webhook's values."""
    try:
        target, base = yarl.URL(url), yarl.URL(base_url)
    except ValueError:
        raise PermanentError(f"invalid URL {url[:200]!r}") from None
    prefix = base.path.rstrip("/") + "/"
    same = (target.scheme, target.host, target.port) == (base.scheme, base.host, base.port)
    if not same or not (target.path + "/").startswith(prefix):
        raise PermanentError(
            f"refused: {target.scheme}://{target.host}{target.path[:100]} is outside channel "
            f"{channel_id!r} ({base_url}); its credentials go to that address only"
        )


def _contact_id(context: Mapping[str, Any]) -> str:
    contact_id = (context.get("system") or {}).get("contact_id")
    if not contact_id:
        raise PermanentError("the event has no contact: configure the field mapping")
    return str(contact_id)
