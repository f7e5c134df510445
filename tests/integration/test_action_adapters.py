"""The email and WhatsApp adapters against real servers: aiosmtpd, and a local server
speaking the WhatsApp Cloud API (Graph API) request and error shapes."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest

from libs.domain.channels import SmtpChannel, WhatsAppChannel
from services.executor.adapters.email import send_email
from services.executor.adapters.whatsapp import WhatsAppClient
from services.executor.errors import PermanentError, StepError, TransientError
from tests.support.graph_api import GraphApiServer, graph_api_server
from tests.support.smtp import SmtpRecorder, smtp_server

pytestmark = pytest.mark.integration

TOKEN = "EAAG-test-token"


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


# ---------------------------------------------------------------------------- email


@pytest.fixture
async def smtp() -> AsyncIterator[SmtpRecorder]:
    async with smtp_server() as server:
        yield server


def smtp_channel(host: str, port: int, **overrides: Any) -> SmtpChannel:
    channel = SmtpChannel(
        id="smtp-1",
        host=host,
        port=port,
        from_address="Hookline <noreply@example.com>",
        starttls=False,
        timeout_s=5.0,
    )
    return msgspec.structs.replace(channel, **overrides)


async def send(channel: SmtpChannel, to: str = "alice@example.com", **kw: Any) -> dict[str, Any]:
    args: dict[str, Any] = {"subject": "Welcome", "text": "Hi", "html": "", "message_id": "e1"}
    return await send_email(channel, to=to, **(args | kw))


async def test_text_and_html_email_arrives(smtp: SmtpRecorder) -> None:
    result = await send_email(
        smtp_channel(smtp.host, smtp.port),
        to="Alice Doe <alice@example.com>",
        subject="Welcome, Alice",
        text="Hello Alice",
        html="<p>Hello <b>Alice</b></p>",
        message_id="evt-42.step-1",
    )

    [mail] = await smtp.wait_for(1, timeout_s=5)
    assert mail.mail_from == "noreply@example.com"
    assert mail.rcpt_tos == ["alice@example.com"]
    message = mail.message
    assert message["Subject"] == "Welcome, Alice"
    assert message["From"] == "Hookline <noreply@example.com>"
    assert message["To"] == "Alice Doe <alice@example.com>"
    assert message["Message-ID"] == "<evt-42.step-1@example.com>"
    assert message["Date"] is not None
    assert message.get_content_type() == "multipart/alternative"
    plain, html = message.get_body(("plain",)), message.get_body(("html",))
    assert plain is not None and plain.get_content().strip() == "Hello Alice"
    assert html is not None and html.get_content().strip() == "<p>Hello <b>Alice</b></p>"
    assert result["to"] == ["alice@example.com"]
    assert result["message_id"] == "<evt-42.step-1@example.com>"
    assert "accepted" in result["response"]
    assert result["refused"] == {}


@pytest.mark.parametrize(
    ("text", "html", "content_type"),
    [
        ("plain only", "", "text/plain"),
        ("", "<p>html only</p>", "text/html"),
        ("", "", "text/plain"),
    ],
)
async def test_single_part_bodies(
    smtp: SmtpRecorder, text: str, html: str, content_type: str
) -> None:
    await send(smtp_channel(smtp.host, smtp.port), text=text, html=html)
    [mail] = await smtp.wait_for(1, timeout_s=5)
    assert mail.message.get_content_type() == content_type
    assert mail.message.get_content().strip() == (text or html)


async def test_several_recipients_deduplicated_and_subject_on_one_line(
    smtp: SmtpRecorder,
) -> None:
    result = await send(
        smtp_channel(smtp.host, smtp.port),
        to='alice@example.com, "Doe, Bob" <bob@example.org>, ALICE@example.com,',
        subject="Line one\r\nBcc: injected@example.com",
    )
    [mail] = await smtp.wait_for(1, timeout_s=5)
    assert mail.rcpt_tos == ["alice@example.com", "bob@example.org"]
    assert result["to"] == ["alice@example.com", "bob@example.org"]
    assert mail.message["Subject"] == "Line one Bcc: injected@example.com"
    assert mail.message["Bcc"] is None


async def test_a_retry_carries_the_same_message_id(smtp: SmtpRecorder) -> None:
    channel = smtp_channel(smtp.host, smtp.port)
    await send(channel, message_id="evt 7/step:2")
    await send(channel, message_id="evt 7/step:2")
    await send(channel, message_id="evt-8")
    first, retry, other = await smtp.wait_for(3, timeout_s=5)
    assert first.message["Message-ID"] == retry.message["Message-ID"]
    assert first.message["Message-ID"] == "<evt-7/step-2@example.com>"
    assert other.message["Message-ID"] != first.message["Message-ID"]


@pytest.mark.parametrize(
    "to",
    [
        "",
        "   ",
        "not-an-address",
        "alice@",
        "alice@example.com; bob@example.com",
        "a b@example.com",
        "alice@example.com, , bob@example.com",
    ],
)
async def test_invalid_recipient_is_permanent(smtp: SmtpRecorder, to: str) -> None:
    with pytest.raises(PermanentError, match="invalid recipient"):
        await send(smtp_channel(smtp.host, smtp.port), to=to)
    assert smtp.messages == []


@pytest.mark.parametrize(
    ("code", "kind"), [(550, PermanentError), (554, PermanentError), (451, TransientError)]
)
async def test_refused_recipient_is_classified_by_code(
    smtp: SmtpRecorder, code: int, kind: type[StepError]
) -> None:
    smtp.reject_next(1, code)
    with pytest.raises(StepError) as raised:
        await send(smtp_channel(smtp.host, smtp.port))
    assert type(raised.value) is kind
    assert f"alice@example.com: {code}" in str(raised.value)
    assert smtp.refused == [("alice@example.com", code)]
    assert smtp.messages == []


async def test_one_refused_recipient_of_two_is_reported_not_raised(smtp: SmtpRecorder) -> None:
    smtp.reject_next(1, 550)
    result = await send(smtp_channel(smtp.host, smtp.port), to="alice@example.com, bob@x.org")
    [mail] = await smtp.wait_for(1, timeout_s=5)
    assert mail.rcpt_tos == ["bob@x.org"]
    assert list(result["refused"]) == ["alice@example.com"]
    assert result["refused"]["alice@example.com"].startswith("550")


async def test_the_send_connects_to_the_address_checked_not_to_the_name_again(
    smtp: SmtpRecorder,
) -> None:
    """The guard resolves the name once and the send connects to what it checked: a
    name that would resolve elsewhere by now (here: not at all) is not asked again.
    Before, aiosmtplib resolved the name itself after the check."""
    result = await send(smtp_channel("mail.invalid", smtp.port), address=smtp.host)
    assert result["to"] == ["alice@example.com"]
    assert len(smtp.messages) == 1
    with pytest.raises(TransientError, match=r"SMTP mail\.invalid"):
        await send(smtp_channel("mail.invalid", smtp.port))  # the name alone: no address


async def test_smtp_connection_refused_is_transient() -> None:
    with pytest.raises(TransientError, match=r"SMTP 127\.0\.0\.1"):
        await send(smtp_channel("127.0.0.1", closed_port()))


async def test_server_that_never_greets_times_out_as_transient() -> None:
    accepted: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)  # says nothing; closed below

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(TransientError, match="Timeout"):
            await send(smtp_channel("127.0.0.1", port, timeout_s=0.3))
        assert len(accepted) == 1
    finally:
        server.close()
        for writer in accepted:
            writer.close()
        await server.wait_closed()


async def test_required_starttls_not_offered_is_permanent(smtp: SmtpRecorder) -> None:
    with pytest.raises(PermanentError, match="STARTTLS"):
        await send(smtp_channel(smtp.host, smtp.port, starttls=True))
    assert smtp.messages == []


async def test_login_with_the_right_password_sends_and_a_wrong_one_is_permanent() -> None:
    async with smtp_server(credentials=("hook", "s3cret")) as server:
        channel = smtp_channel(server.host, server.port, username="hook", password="s3cret")
        await send(channel)
        await server.wait_for(1, timeout_s=5)

        with pytest.raises(PermanentError, match="535"):
            await send(msgspec.structs.replace(channel, password="wrong"))
        with pytest.raises(PermanentError, match="530"):  # no AUTH at all: refused at MAIL
            await send(msgspec.structs.replace(channel, username=None, password=None))
        assert len(server.messages) == 1


async def test_credentials_for_a_server_without_auth_are_permanent(smtp: SmtpRecorder) -> None:
    channel = smtp_channel(smtp.host, smtp.port, username="hook", password="s3cret")
    with pytest.raises(PermanentError, match="AUTH"):
        await send(channel)
    assert smtp.messages == []


async def test_smtp_wait_for_fails_at_its_deadline(smtp: SmtpRecorder) -> None:
    with pytest.raises(AssertionError, match="0 of 1"):
        await smtp.wait_for(1, timeout_s=0.05)


# ------------------------------------------------------------------------- WhatsApp


@pytest.fixture
async def graph() -> AsyncIterator[GraphApiServer]:
    async with graph_api_server(token=TOKEN) as server:
        yield server


@pytest.fixture
async def whatsapp() -> AsyncIterator[WhatsAppClient]:
    client = WhatsAppClient(timeout_s=5.0)
    await client.start()
    yield client
    await client.close()


def wa_channel(api_base: str, **overrides: Any) -> WhatsAppChannel:
    channel = WhatsAppChannel(
        id="wa-1",
        phone_number_id="106540352242922",
        access_token=TOKEN,
        api_base=api_base,
        allow_private=True,
    )
    return msgspec.structs.replace(channel, **overrides)


async def send_text(
    client: WhatsAppClient, channel: WhatsAppChannel, to: str = "+14155550100", **kw: Any
) -> dict[str, Any]:
    args: dict[str, Any] = {
        "text": "Hello",
        "template_name": None,
        "template_language": "en_US",
        "template_params": [],
    }
    return await client.send(channel, to=to, **(args | kw))


async def test_text_message_has_the_cloud_api_shape(
    graph: GraphApiServer, whatsapp: WhatsAppClient
) -> None:
    result = await send_text(
        whatsapp, wa_channel(graph.base_url), to="(415) 555-0100", text="Your order shipped"
    )

    [recorded] = await graph.wait_for(1, timeout_s=5)
    assert recorded["phone_number_id"] == "106540352242922"
    assert recorded["body"] == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "14155550100",
        "type": "text",
        "text": {"preview_url": False, "body": "Your order shipped"},
    }
    assert result == {
        "to": "+14155550100",
        "wa_id": "14155550100",
        "message_id": recorded["id"],
        "status": 200,
    }
    assert result["message_id"].startswith("wamid.")


@pytest.mark.parametrize(
    ("to", "sent"),
    [
        ("+14155550100", "14155550100"),
        ("14155550100", "14155550100"),
        ("(415) 555-0100", "14155550100"),
        ("415.555.0100", "14155550100"),
        ("+44 7911 123456", "447911123456"),
        ("447911123456", "447911123456"),  # the wa_id form: digits of an international number
    ],
)
async def test_recipient_is_normalised_to_e164(
    graph: GraphApiServer, whatsapp: WhatsAppClient, to: str, sent: str
) -> None:
    result = await send_text(whatsapp, wa_channel(graph.base_url), to=to)
    assert graph.messages[-1]["body"]["to"] == sent
    assert result["to"] == "+" + sent


async def test_default_region_reads_national_numbers(
    graph: GraphApiServer, whatsapp: WhatsAppClient
) -> None:
    await send_text(
        whatsapp,
        wa_channel(graph.base_url),
        to="07911 123456",
        text="Hi",
        template_language="en_GB",
        default_region="GB",
    )
    assert graph.messages[-1]["body"]["to"] == "447911123456"


@pytest.mark.parametrize("to", ["", "12", "call me", "+1 555", "(415) 555-010"])
async def test_invalid_recipient_is_permanent_and_not_sent(
    graph: GraphApiServer, whatsapp: WhatsAppClient, to: str
) -> None:
    with pytest.raises(PermanentError, match="invalid WhatsApp recipient"):
        await send_text(whatsapp, wa_channel(graph.base_url), to=to)
    assert graph.requests == 0


async def test_template_message_with_params(
    graph: GraphApiServer, whatsapp: WhatsAppClient
) -> None:
    result = await whatsapp.send(
        wa_channel(graph.base_url),
        to="+14155550100",
        text="ignored when a template is named",
        template_name="order_shipped",
        template_language="pt_BR",
        template_params=["Ana", "#1042"],
    )
    assert graph.messages[-1]["body"] == {
        "messaging_product": "whatsapp",
        "to": "14155550100",
        "type": "template",
        "template": {
            "name": "order_shipped",
            "language": {"code": "pt_BR"},
            "components": [
                {
                    "type": "body",
                    "parameters": [
                        {"type": "text", "text": "Ana"},
                        {"type": "text", "text": "#1042"},
                    ],
                }
            ],
        },
    }
    assert result["message_id"] == graph.messages[-1]["id"]


async def test_template_without_params_has_no_components(
    graph: GraphApiServer, whatsapp: WhatsAppClient
) -> None:
    await send_text(whatsapp, wa_channel(graph.base_url), text=None, template_name="hello_world")
    assert graph.messages[-1]["body"]["template"] == {
        "name": "hello_world",
        "language": {"code": "en_US"},
    }


@pytest.mark.parametrize("text", ["", None, "x" * 4097])
async def test_unsendable_text_is_permanent(
    graph: GraphApiServer, whatsapp: WhatsAppClient, text: str | None
) -> None:
    with pytest.raises(PermanentError):
        await send_text(whatsapp, wa_channel(graph.base_url), text=text)
    assert graph.requests == 0


async def test_wrong_token_is_permanent_with_the_graph_message(
    graph: GraphApiServer, whatsapp: WhatsAppClient
) -> None:
    channel = wa_channel(graph.base_url, access_token="EAAG-wrong")
    with pytest.raises(PermanentError) as raised:
        await send_text(whatsapp, channel)
    text = str(raised.value)
    assert "401" in text
    assert "Invalid OAuth access token" in text
    assert "code 190" in text
    assert "EAAG-wrong" not in text
    assert graph.messages == []


async def test_invalid_parameter_is_permanent_with_the_graph_details(
    graph: GraphApiServer, whatsapp: WhatsAppClient
) -> None:
    with pytest.raises(PermanentError) as raised:
        await send_text(
            whatsapp,
            wa_channel(graph.base_url),
            text=None,
            template_name="hello",
            template_language="",
        )
    assert "400: (#100) Invalid parameter: template.language.code is required" in str(raised.value)
    assert isinstance(raised.value.output, dict)
    assert raised.value.output["body"]["error"]["code"] == 100


async def test_server_error_is_transient_then_the_retry_succeeds(
    graph: GraphApiServer, whatsapp: WhatsAppClient
) -> None:
    channel = wa_channel(graph.base_url)
    graph.fail_next(1, 500)
    with pytest.raises(TransientError, match="500") as raised:
        await send_text(whatsapp, channel)
    assert raised.value.retry_after_s is None
    assert graph.messages == []

    result = await send_text(whatsapp, channel)
    assert graph.requests == 2
    assert [m["id"] for m in graph.messages] == [result["message_id"]]


async def test_rate_limit_is_transient_with_retry_after(
    graph: GraphApiServer, whatsapp: WhatsAppClient
) -> None:
    graph.fail_next(1, 429, retry_after=3)
    with pytest.raises(TransientError, match="Rate limit hit") as raised:
        await send_text(whatsapp, wa_channel(graph.base_url))
    assert raised.value.retry_after_s == 3
    assert graph.messages == []


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_private_address_refused_unless_allowed(
    graph: GraphApiServer, whatsapp: WhatsAppClient, host: str
) -> None:
    port = graph.base_url.split(":")[2].split("/")[0]
    # https: a token never goes over plain http to a target that is not allowed private
    refused = wa_channel(f"https://{host}:{port}/v21.0", allow_private=False)
    with pytest.raises(PermanentError, match="private"):
        await send_text(whatsapp, refused)
    assert graph.requests == 0

    allowed = wa_channel(f"http://{host}:{port}/v21.0", allow_private=True)
    result = await send_text(whatsapp, allowed)
    assert [m["id"] for m in graph.messages] == [result["message_id"]]


async def test_plain_http_to_a_public_host_is_refused(whatsapp: WhatsAppClient) -> None:
    channel = wa_channel("http://graph.facebook.com/v21.0", allow_private=False)
    with pytest.raises(PermanentError, match="https"):
        await send_text(whatsapp, channel)


async def test_whatsapp_connection_refused_is_transient(whatsapp: WhatsAppClient) -> None:
    channel = wa_channel(f"http://127.0.0.1:{closed_port()}/v21.0")
    with pytest.raises(TransientError, match=r"POST http://127\.0\.0\.1"):
        await send_text(whatsapp, channel)


async def test_graph_wait_for_fails_at_its_deadline(graph: GraphApiServer) -> None:
    with pytest.raises(AssertionError, match="0 of 1"):
        await graph.wait_for(1, timeout_s=0.05)
