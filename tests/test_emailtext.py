"""mail/body.py on realistic mail: replies in several clients and languages, signatures,
and sentence splitting with abbreviations, numbers and bullets."""

from __future__ import annotations

import pytest

from mail.body import sentences, split_reply, split_signature

GMAIL = """Hi Priya,

Legal signed off on the MSA. Can we schedule the kickoff for the week of Jan. 12?

Thanks,
Ines

On Tue, Nov 18, 2026 at 10:12 AM Priya Raman <priya@acme-sales.example> wrote:
> Hi Ines,
>
> Attached is the MSA redline.
>
> On Mon, Nov 17, 2026 at 9:00 AM Ines Duarte <ines@borealis.example> wrote:
>> Please send the redline.
"""

GMAIL_WRAPPED = """Sounds good, Thursday at 2pm works.

On Wed, Dec 3, 2026 at 4:45 PM Tomas Berg via Borealis Procurement <
procurement@borealis.example> wrote:

> Can we move the call to Thursday?
"""

OUTLOOK = """Hello Priya,

Please find our PO attached. Invoices go to ap@borealis.example.

Kind regards,

Tomas Berg
Chief Financial Officer
Borealis Logistics AB | Kungsgatan 12, Stockholm
M: +46 70 123 45 67
www.borealis.example

________________________________
From: Priya Raman <priya@acme-sales.example>
Sent: Friday, November 21, 2026 3:02 PM
To: Tomas Berg <tomas@borealis.example>
Subject: RE: Order form

Tomas, the order form is ready for signature.
"""

ORIGINAL_MESSAGE = """Confirmed, we will renew for 24 months.

-----Original Message-----
From: Dana Manager [mailto:dana@acme-sales.example]
Sent: Thursday, November 20, 2026 11:00 AM
To: Eve <eve@zephyr.example>
Subject: Renewal terms

Here are the renewal terms we discussed.
"""

OUTLOOK_HEADERS_ONLY = """Works for me.

From: Eve East <eve@acme-sales.example>
Date: Monday, 24 November 2026 at 09:15
To: Lars <lars@zephyr.example>
Cc: Dana <dana@acme-sales.example>
Subject: Pilot scope

Can you confirm the pilot scope?
"""

GERMAN = """Hallo Priya,

die Freigabe vom Betriebsrat liegt vor. Wir können im Februar starten.

Viele Grüße
Jonas Keller
Leiter IT | Spedition Keller GmbH
Tel. +49 89 1234567

Am Di., 18. Nov. 2026 um 10:12 Uhr schrieb Priya Raman <priya@acme-sales.example>:
> Hallo Jonas,
> gibt es schon eine Freigabe?
"""

FRENCH = """Bonjour Priya,

Nous validons le devis, merci pour la remise de 8 %.

Cordialement,
Camille Martin
Directrice des achats

Le 18 nov. 2026 à 10:12, Priya Raman <priya@acme-sales.example> a écrit :

> Bonjour Camille,
> Voici le devis révisé.
"""

SPANISH = """Hola Priya,

Necesitamos la integración con SAP antes de marzo.

Saludos,
Lucía

El mar, 18 nov 2026 a las 10:12, Priya Raman (<priya@acme-sales.example>) escribió:
> Hola Lucía, ¿cuál es el plazo?
"""

DUTCH = """Hoi Priya,

Akkoord met de planning.

Met vriendelijke groet,
Sanne de Vries

Op di 18 nov. 2026 om 10:12 schreef Priya Raman <priya@acme-sales.example>:
> Hoi Sanne, past deze planning?
"""

INLINE = """Hi Priya, answers inline.

> How many drivers will use the app?
About 350 in the first phase.
> Do you need SSO?
Yes, through Okta.

Cheers,
Lars
"""


@pytest.mark.parametrize("mail, new, quoted_start", [
    (GMAIL, "Legal signed off on the MSA.", "On Tue, Nov 18, 2026 at 10:12 AM"),
    (GMAIL_WRAPPED, "Sounds good, Thursday at 2pm works.", "On Wed, Dec 3, 2026 at 4:45 PM"),
    (OUTLOOK, "Please find our PO attached.", "________________________________"),
    (ORIGINAL_MESSAGE, "Confirmed, we will renew for 24 months.", "-----Original Message-----"),
    (OUTLOOK_HEADERS_ONLY, "Works for me.", "From: Eve East"),
    (GERMAN, "die Freigabe vom Betriebsrat liegt vor.", "Am Di., 18. Nov. 2026 um 10:12 Uhr schrieb"),
    (FRENCH, "Nous validons le devis", "Le 18 nov. 2026 à 10:12, Priya Raman"),
    (SPANISH, "Necesitamos la integración con SAP", "El mar, 18 nov 2026 a las 10:12"),
    (DUTCH, "Akkoord met de planning.", "Op di 18 nov. 2026 om 10:12 schreef"),
])
def test_split_reply_separates_new_text_from_quoted_history(mail: str, new: str, quoted_start: str) -> None:
    got_new, quoted = split_reply(mail)
    assert new in got_new
    assert quoted.startswith(quoted_start)
    assert quoted_start not in got_new
    for line in got_new.splitlines():
        assert not line.startswith(">")


def test_quoted_history_is_all_of_the_earlier_thread() -> None:
    new, quoted = split_reply(GMAIL)
    assert new == "Hi Priya,\n\nLegal signed off on the MSA. Can we schedule the kickoff for the week of Jan. 12?" \
                  "\n\nThanks,\nInes"
    assert "Attached is the MSA redline." in quoted and "Please send the redline." in quoted
    _, quoted = split_reply(OUTLOOK)
    assert "the order form is ready for signature" in quoted


def test_an_inline_reply_keeps_the_answers_and_drops_the_quotes() -> None:
    new, quoted = split_reply(INLINE)
    assert "About 350 in the first phase." in new and "Yes, through Okta." in new
    assert "How many drivers" not in new
    assert quoted == "> How many drivers will use the app?\n> Do you need SSO?"


def test_plain_text_is_all_new() -> None:
    text = "On second thought, let's meet on Monday.\nI wrote: nothing yet."
    assert split_reply(text) == (text, "")
    assert split_reply("") == ("", "")
    # A sentence starting with "On" above the real attribution stays in the body.
    mail = "On our side, legal is reviewing.\n\nOn Tue, Nov 18, 2026 at 10:12 AM Ines <ines@b.example> wrote:\n> hi"
    new, quoted = split_reply(mail)
    assert new == "On our side, legal is reviewing." and quoted.startswith("On Tue")


@pytest.mark.parametrize("mail, body_end, signature", [
    (OUTLOOK, "Invoices go to ap@borealis.example.", "Kind regards,\n\nTomas Berg\nChief Financial Officer"),
    (GERMAN, "Wir können im Februar starten.", "Viele Grüße\nJonas Keller"),
    (FRENCH, "merci pour la remise de 8 %.", "Cordialement,\nCamille Martin"),
    (SPANISH, "Necesitamos la integración con SAP antes de marzo.", "Saludos,\nLucía"),
    (DUTCH, "Akkoord met de planning.", "Met vriendelijke groet,\nSanne de Vries"),
    (INLINE, "Yes, through Okta.", "Cheers,\nLars"),
])
def test_split_signature_after_a_sign_off(mail: str, body_end: str, signature: str) -> None:
    new, _ = split_reply(mail)
    body, sig = split_signature(new)
    assert body.endswith(body_end)
    assert sig.startswith(signature)


def test_signature_delimiter_and_mobile_boilerplate() -> None:
    mail = ("Sure, send the contract over and I'll countersign today.\n\n"
            "Sent from my iPhone\n\n-- \nRaj Patel | Account Executive\nAcme Sales | +1 415 555 0199\n")
    body, sig = split_signature(mail)
    assert body == "Sure, send the contract over and I'll countersign today."
    assert "Raj Patel | Account Executive" in sig and "Sent from my iPhone" in sig
    body, sig = split_signature("Approved.\n\nGet Outlook for iOS")
    assert (body, sig) == ("Approved.", "Get Outlook for iOS")
    body, sig = split_signature("Looks good to me.\n\nVon meinem iPhone gesendet")
    assert (body, sig) == ("Looks good to me.", "Von meinem iPhone gesendet")


def test_a_sign_off_word_inside_the_body_is_not_a_signature() -> None:
    text = ("Thanks for the quick turnaround on the proposal.\n\n"
            "Best,\n"
            "I think the next step is a call with our CFO, who has questions about the payment terms and "
            "wants to understand how the annual uplift is calculated before the board meeting.\n\n"
            "Ines")
    body, sig = split_signature(text)
    assert body.startswith("Thanks for the quick turnaround") and "annual uplift" in body
    assert sig == ""
    # A terse reply: the sign-off and the name are the signature.
    assert split_signature("Will do.\n\nThanks!\nInes") == ("Will do.", "Thanks!\nInes")
    assert split_signature("") == ("", "")


def test_sentences_handle_abbreviations_numbers_and_bullets() -> None:
    text = ("Thanks for the call on Dec. 5 with Dr. Weber. We are at 62.5k trucks/month, e.g. the northern "
            "routes, i.e. roughly 40% of volume! Pricing was $1.2M. Is that still right?\n\n"
            "Next steps:\n"
            "- Security questionnaire by Friday\n"
            "- SSO via Okta (must have)\n"
            "1. Pilot in Q1\n"
            "2. Rollout in Q2... then review.\n"
            "The U.S. team joins later. Mr. Berg agrees.")
    got = sentences(text)
    assert [s for _, s in got] == [
        "Thanks for the call on Dec. 5 with Dr. Weber.",
        "We are at 62.5k trucks/month, e.g. the northern routes, i.e. roughly 40% of volume!",
        "Pricing was $1.2M.",
        "Is that still right?",
        "Next steps:",
        "Security questionnaire by Friday",
        "SSO via Okta (must have)",
        "Pilot in Q1",
        "Rollout in Q2... then review.",
        "The U.S. team joins later.",
        "Mr. Berg agrees.",
    ]
    for offset, sentence in got:
        assert text[offset:offset + len(sentence)] == sentence


def test_sentences_join_hard_wrapped_lines_and_keep_offsets() -> None:
    text = "Our CFO wants the\nmulti-year discount in writing. She also asked\nabout payment terms."
    got = sentences(text)
    assert [s for _, s in got] == ["Our CFO wants the\nmulti-year discount in writing.",
                                   "She also asked\nabout payment terms."]
    assert got[1][0] == text.index("She")
    assert sentences("") == [] and sentences("   \n  ") == []
    assert sentences("Quote: \"We will sign.\" Then silence.") == [(0, "Quote: \"We will sign.\""),
                                                                   (23, "Then silence.")]
