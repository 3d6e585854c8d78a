"""Calls in the registrant's language: read in a voice that speaks it, or, for a language
no provider voice speaks (Somali), in English and Spanish, saying so, with the message
sent to the same phone by text, once. Through the real worker, the provider simulator
over HTTP and the public service's callbacks."""

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from safevine.domain.contact_address import Channel
from tests.canaries import PUBLIC
from tests.notify.conftest import PIN, Delivery, heard_from_provider
from tests.notify.test_calls import NUMBER as LINE_NUMBER
from tests.notify.test_calls import Line

NUMBER = LINE_NUMBER  # the simulator scripts calls by number


@dataclass
class Spoken:
    line: Line

    def texts(self) -> list[str]:
        return [
            r["form"]["Body"]
            for r in self.line.delivery.provider.requests
            if r["kind"] == "Messages" and r["form"].get("To") == NUMBER
        ]


def _line(delivery: Delivery, language: str) -> Iterator[Line]:
    with heard_from_provider(delivery) as base:
        delivery.register(delivery.ref(PUBLIC.a_number), NUMBER, Channel.VOICE, language=language)
        delivery.dispatch()  # the confirmation code's call
        delivery.provider.wait_for_callbacks(1)
        yield Line(delivery, base)


@pytest.fixture
def french(delivery: Delivery) -> Iterator[Line]:
    yield from _line(delivery, "fr")


@pytest.fixture
def somali(delivery: Delivery) -> Iterator[Line]:
    yield from _line(delivery, "so")


def test_a_french_call_is_read_in_a_french_voice(french: Line) -> None:
    row = french.call(f"pin:{PIN}")
    assert (row.state, row.receipt) == ("acknowledged", "pin")
    provider = french.delivery.provider
    assert provider.voices and set(provider.voices) == {"fr-FR"}
    said = french.said()
    assert "code PIN" in said and PUBLIC.family in said
    assert "enter your 4-digit PIN" not in said


def test_a_somali_call_speaks_english_and_spanish_and_the_message_comes_by_text(
    somali: Line,
) -> None:
    provider = somali.delivery.provider
    sent = Spoken(somali)
    # The code's call said why it speaks English and Spanish; its code came by text.
    [code_text] = sent.texts()
    assert "STOP" in code_text
    row = somali.call("no-answer")
    assert row.state == "retrying"
    texts = sent.texts()
    assert len(texts) == 2 and PUBLIC.family in texts[1]
    # The message itself, in Somali, by text: not read out in a voice that cannot say it.
    assert "waxaa laga sii daayay" in texts[1], texts[1]  # "was released"
    provider.calls[NUMBER] = ["no-answer"]
    assert somali.again().state == "retrying"
    provider.calls[NUMBER] = [f"pin:{PIN}"]
    row = somali.again()
    assert (row.state, row.receipt) == ("acknowledged", "pin")
    # Sent once, with the first call, however often the call is repeated.
    assert len(sent.texts()) == 2
    assert set(provider.voices) == {"en-US", "es-MX"}
    said = somali.said()
    assert "We cannot read it in your language" in said
    assert "No podemos leerlo en su idioma" in said
    assert PUBLIC.family not in said  # the name is never read in a voice of another language
