"""The inbox's parsing layer on real-world messages (tests/data/email, see its README.md):
MIME structure, charsets, forwards (inline and as attachment), attachments' text, HTML to text."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import re
import struct
from datetime import UTC, datetime, timedelta, timezone
from email.message import EmailMessage
from pathlib import Path

import pytest

from mail import MalformedEmail, parse_email
from mail import attachments as attachments_module
from mail.forwards import find_forward, parse_addresses, parse_date, strip_forward_prefix
from mail.html_text import html_to_text
from mail.mime import extract_text

DATA = Path(__file__).parent / "data" / "email"
FILES = sorted(p.name for p in DATA.glob("*.eml"))
MALFORMED = {
    "malformed_empty.eml": "empty message",
    "malformed_binary_garbage.eml": "does not start with header lines",
    "malformed_headers_only_no_from.eml": "no From header with an address",
}
UNSTRUCTURED_INSTALLED = importlib.util.find_spec("unstructured") is not None


def load(name: str):  # type: ignore[no-untyped-def]
    return parse_email((DATA / name).read_bytes())


def minimal_pdf(lines: list[str]) -> bytes:
    """A one-page PDF with a real text layer (Helvetica), written by hand (no PDF writer needed)."""
    def esc(s: str) -> str:
        return s.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    ops = ["BT", "/F1 12 Tf", "72 720 Td"]
    for i, line in enumerate(lines):
        ops += (["0 -18 Td"] if i else []) + [f"({esc(line)}) Tj"]
    stream = "\n".join(ops + ["ET"]).encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def docx_bytes() -> bytes:
    import docx

    document = docx.Document()
    document.add_heading("Pilot order form", level=1)
    document.add_paragraph("Customer: Borealis Logistics")
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "Depot", "Trucks"
    table.cell(1, 0).text, table.cell(1, 1).text = "Porto", "40"
    document.add_paragraph("Signed: Ines Duarte")
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


# -- every sample -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", FILES)
def test_every_sample_parses_or_says_what_to_fix(name: str) -> None:
    raw = (DATA / name).read_bytes()
    if name in MALFORMED:
        with pytest.raises(MalformedEmail) as caught:
            parse_email(raw)
        assert MALFORMED[name] in str(caught.value)
        assert "save it as .eml" in str(caught.value)  # what to do about it
        return
    parsed = parse_email(raw)
    assert "@" in parsed.from_.address and parsed.from_.address == parsed.from_.address.lower()
    assert re.fullmatch(r"<[^<>\s]+>", parsed.message_id)
    assert parsed.sent_at is None or parsed.sent_at.utcoffset() == timedelta(0)
    for attachment in parsed.attachments:  # text, or the reason there is none: never silently nothing
        assert (attachment.text is None) != (attachment.error is None), attachment.filename
        assert len(attachment.sha256) == 64
    if parsed.forwarded is not None:
        assert parsed.forwarded.sent_at is None or parsed.forwarded.sent_at.tzinfo is not None


def test_file_names_say_where_each_sample_came_from() -> None:
    readme = (DATA / "README.md").read_text()
    for name in FILES:
        assert name in readme, f"{name} is not described in tests/data/email/README.md"


def test_too_large_and_not_an_email_are_refused_with_what_to_do() -> None:
    raw = (DATA / "gmail_forward_with_pdf.eml").read_bytes()
    with pytest.raises(MalformedEmail, match=r"too large: .* over the 1,000-byte limit"):
        parse_email(raw, max_bytes=1000)
    with pytest.raises(MalformedEmail, match="does not start with header lines"):
        parse_email(b"Hello Priya, here is the quote.\n\nInes\n")
    with pytest.raises(MalformedEmail, match="empty message"):
        parse_email(b"\r\n\r\n")


# -- forwards -----------------------------------------------------------------------------------


def test_gmail_forward_recovers_the_customer_email_and_reads_the_pdf() -> None:
    parsed = load("gmail_forward_with_pdf.eml")
    original = parsed.forwarded
    assert parsed.from_.address == "priya@acme-sales.example"
    assert original is not None and original.from_ is not None
    assert (original.from_.address, original.from_.name) == ("ines@borealis.example", "Ines Duarte")
    assert [a.address for a in original.to] == ["priya@acme-sales.example"]
    assert [(a.address, a.name) for a in original.cc] == [("marco.rossi@borealis.example", "Marco Rossi")]
    # "Tue, Oct 14, 2025 at 9:12 AM" has no zone: read in the forward's own zone (+0200)
    assert original.sent_at == datetime(2025, 10, 14, 7, 12, tzinfo=UTC)
    assert original.subject == "Security questionnaire for the pilot"
    assert original.text.startswith("Hi Priya,\n\nPlease find attached our vendor security questionnaire.")
    assert "---------- Forwarded message" not in original.text
    assert parsed.forward_note == "FYI, security questionnaire from Borealis. They want it back by Friday the 24th."
    assert parsed.customer_message is original
    [pdf] = parsed.attachments
    assert (pdf.filename, pdf.content_type, pdf.error) == ("Borealis_Security_Questionnaire.pdf", "application/pdf",
                                                            None)
    assert "Do you encrypt customer data at rest? Answer: AES-256" in pdf.text
    assert "Please return by 24 October 2025" in pdf.text


def test_outlook_forward_in_windows_1252_with_mailto_addresses() -> None:
    parsed = load("outlook_forward_windows1252.eml")
    assert parsed.subject == "FW: Revised pricing \u2013 telematics module"  # RFC 2047, windows-1252 en dash
    original = parsed.forwarded
    assert original is not None and original.from_ is not None
    assert (original.from_.address, original.from_.name) == ("ines@borealis.example", "Ines Duarte")
    assert [(a.address, a.name) for a in original.cc] == [("marco.rossi@borealis.example", "Rossi, Marco"),
                                                          ("jonas.berg@borealis.example", "Jonas Berg")]
    assert original.sent_at == datetime(2025, 10, 15, 16, 5, tzinfo=UTC)  # "4:05 PM", Date header in +0000
    assert original.subject == "Revised pricing \u2013 telematics module"
    assert "We\u2019d like the pilot to start in January" in original.text
    assert "\u20ac62,000" in original.text
    assert parsed.forward_note == "Marco, see below \u2013 can you confirm the 62k?\n\nPriya"


def test_html_only_outlook_forward_without_separator_and_its_inline_logo() -> None:
    parsed = load("outlook_forward_html_only_inline_logo.eml")
    assert parsed.html is not None and "divRplyFwdMsg" in parsed.html
    original = parsed.forwarded
    assert original is not None and original.from_ is not None
    assert original.from_.address == "marco.rossi@borealis.example"
    assert [a.address for a in original.cc] == ["ines@borealis.example"]
    assert original.sent_at == datetime(2025, 10, 16, 10, 30, tzinfo=UTC)
    assert original.subject == "Pilot kickoff agenda"
    assert "1. Scope & success criteria\n2. Telematics integration (see the API notes " \
           "(https://borealis.example/docs/telematics))\n3. Timeline" in original.text
    assert parsed.forward_note.startswith("Adding this to Borealis \u2013 kickoff agenda")
    [logo] = parsed.attachments
    assert logo.filename == "image001.png" and logo.text is None
    assert logo.error is not None and logo.error.startswith("inline image")


def test_apple_mail_forward_quoted_with_greater_than_signs() -> None:
    parsed = load("apple_mail_forward_quoted.eml")
    original = parsed.forwarded
    assert original is not None and original.from_ is not None
    assert original.from_.address == "jonas.berg@borealis.example"
    assert [(a.address, a.name) for a in original.cc] == [("ines@borealis.example", "Ines Duarte"),
                                                          ("lena.mueller@borealis.example", "Lena M\u00fcller")]
    assert original.sent_at == datetime(2025, 10, 14, 15, 45, 3, tzinfo=UTC)  # "17:45:03 CEST"
    assert original.subject == "Re: SOC 2 report"
    assert original.text == ("Hi Priya,\n\nThanks for the SOC 2 report. Our review is done; one open point: "
                             "data residency (EU only).\n\nJonas")
    assert parsed.forward_note == "Priya \u2013 for the Borealis file.\n\nSent from my iPhone"


def test_thunderbird_forward_and_format_flowed() -> None:
    parsed = load("thunderbird_forward_flowed.eml")
    original = parsed.forwarded
    assert original is not None and original.from_ is not None
    assert original.from_.address == "marco.rossi@borealis.example"
    assert original.sent_at == datetime(2025, 10, 16, 6, 45, 10, tzinfo=UTC)
    assert original.subject == "Re: Pilot scope"
    # the flowed line break ("the \ntelematics") is undone
    assert "40 trucks in the Porto depot, the telematics module included, start in January." in original.text
    assert parsed.in_reply_to == "<a1b2c3d4-e5f6-4a5b-9c8d-7e6f5a4b3c2d@borealis.example>"
    assert parsed.references == ["<a1b2c3d4-e5f6-4a5b-9c8d-7e6f5a4b3c2d@borealis.example>"]


def test_german_gmail_forward() -> None:
    parsed = load("gmail_forward_german.eml")
    assert parsed.subject == "WG: Sicherheitsfragebogen f\u00fcr das Pilotprojekt"
    assert parsed.from_.name == "J\u00fcrgen Wei\u00df"
    original = parsed.forwarded
    assert original is not None and original.from_ is not None
    assert (original.from_.address, original.from_.name) == ("lena.mueller@borealis.example", "Lena M\u00fcller")
    assert original.sent_at == datetime(2025, 10, 14, 7, 12, tzinfo=UTC)  # "Di., 14. Okt. 2025 um 09:12 Uhr"
    assert original.subject == "Sicherheitsfragebogen f\u00fcr das Pilotprojekt"
    assert "Bitte schicken Sie ihn bis zum 24. Oktober zur\u00fcck." in original.text
    assert parsed.forward_note == "Hallo zusammen, zur Info."


def test_french_outlook_forward_in_latin_1() -> None:
    parsed = load("outlook_forward_french_latin1.eml")
    original = parsed.forwarded
    assert original is not None and original.from_ is not None
    assert (original.from_.address, original.from_.name) == ("claire.dubois@lumiere.example", "Claire Dubois")
    assert [a.address for a in original.to] == ["priya@acme-sales.example"]
    assert [a.address for a in original.cc] == ["hugo.martin@lumiere.example"]
    assert original.sent_at == datetime(2025, 10, 14, 15, 5, tzinfo=UTC)  # "mardi 14 octobre 2025 17:05", +0200
    assert original.subject == "Questionnaire de s\u00e9curit\u00e9"
    assert "Merci de nous le renvoyer avant le 24 octobre." in original.text
    assert strip_forward_prefix(parsed.subject) == "Questionnaire de s\u00e9curit\u00e9"


def test_forward_as_attachment_keeps_the_original_message_id_and_its_attachments() -> None:
    parsed = load("forward_as_attachment_rfc822.eml")
    original = parsed.forwarded
    assert original is not None and original.from_ is not None
    assert original.message_id == "<CAOriginal-redlines-42@mail.borealis.example>"
    assert original.from_.address == "ines@borealis.example"
    assert [a.address for a in original.cc] == ["legal@borealis.example"]
    assert original.sent_at == datetime(2025, 10, 20, 14, 30, tzinfo=UTC)
    assert original.subject == "Contract redlines"
    assert original.text == "Priya, our redlines: liability cap at 12 months of fees, and the volumes below."
    assert parsed.forward_note == "Redlines from Borealis legal, see the attached email."
    [csv] = parsed.attachments
    assert (csv.filename, csv.text) == ("volumes.csv", "depot,trucks\nPorto,40\nLisbon,25\n")


def test_an_email_with_an_old_email_attached_is_about_itself() -> None:
    raw = (DATA / "forward_as_attachment_rfc822.eml").read_bytes()
    for subject in (b"Subject: Our counter-proposal", b"Subject: Re: Contract redlines"):
        parsed = parse_email(raw.replace(b"Subject: Fwd: Contract redlines", subject))
        assert parsed.forwarded is None
        assert [a.filename for a in parsed.attachments] == ["Contract redlines.eml"]
        assert "liability cap at 12 months" in (parsed.attachments[0].text or "")
    # the attached email's own subject (no "Fwd:") still reads as a forward
    same = parse_email(raw.replace(b"Subject: Fwd: Contract redlines", b"Subject: Contract redlines"))
    assert same.forwarded is not None and same.forwarded.message_id == "<CAOriginal-redlines-42@mail.borealis.example>"


def test_a_delivery_report_is_not_mistaken_for_a_forward() -> None:
    parsed = load("cpython_msg_16_delivery_status_report.eml")
    assert parsed.forwarded is None
    assert [a.content_type for a in parsed.attachments] == ["message/delivery-status", "message/rfc822"]
    status, bounced = parsed.attachments
    assert "Status: 5.0.0 (recipient reached disk quota)" in (status.text or "")
    assert "I always love to find more Ian's" in (bounced.text or "")
    assert parsed.text.startswith("This report relates to a message you sent")


def test_a_plain_email_is_its_own_customer_message() -> None:
    parsed = load("koi8r_russian.eml")
    assert parsed.forwarded is None and parsed.forward_note == ""
    view = parsed.customer_message
    assert (view.from_, view.subject, view.text, view.message_id) == (
        parsed.from_, parsed.subject, parsed.text, parsed.message_id)


@pytest.mark.parametrize(("text", "sender", "subject", "sent_at"), [
    ("Ver abajo.\n\n---------- Mensaje reenviado ---------\nDe: Ana Ruiz <ana@sol.example>\n"
     "Date: mar., 14 oct. 2025 a las 9:12\nSubject: Presupuesto\nTo: Priya <priya@acme-sales.example>\n\n\nHola",
     "ana@sol.example", "Presupuesto", datetime(2025, 10, 14, 9, 12, tzinfo=UTC)),
    ("-----Mensaje original-----\nDe: Ana Ruiz [mailto:ana@sol.example]\nEnviado el: martes, 14 de octubre de 2025 "
     "9:12\nPara: Priya Shah\nAsunto: Presupuesto\n\nHola", "ana@sol.example", "Presupuesto", None),
    ("Zie hieronder.\n\n---------- Doorgestuurd bericht ---------\nVan: Daan de Vries <daan@tulp.example>\n"
     "Datum: di 14 okt. 2025 om 09:12\nOnderwerp: Offerte\nAan: Priya <priya@acme-sales.example>\n\nHoi",
     "daan@tulp.example", "Offerte", datetime(2025, 10, 14, 9, 12, tzinfo=UTC)),
    ("---------- Mensagem encaminhada ---------\nDe: Ana Sousa <ana.sousa@mar-azul.example>\n"
     "Data: ter., 14 de out. de 2025 \u00e0s 09:12\nAssunto: Proposta\nPara: <priya@acme-sales.example>\n\nOl\u00e1",
     "ana.sousa@mar-azul.example", "Proposta", datetime(2025, 10, 14, 9, 12, tzinfo=UTC)),
    ("---------- Messaggio inoltrato ---------\nDa: Luca Bianchi <luca@vela.example>\n"
     "Data: mar 14 ott 2025 alle ore 09:12\nOggetto: Preventivo\nA: Priya <priya@acme-sales.example>\n\nCiao",
     "luca@vela.example", "Preventivo", datetime(2025, 10, 14, 9, 12, tzinfo=UTC)),
    ("Pour info\n\n---------- Message transf\u00e9r\u00e9 ---------\nDe : Claire Dubois <claire@lumiere.example>\n"
     "Date : mar. 14 oct. 2025 \u00e0 09:12\nObjet : Devis\n\u00c0 : Priya <priya@acme-sales.example>\n\nBonjour",
     "claire@lumiere.example", "Devis", datetime(2025, 10, 14, 9, 12, tzinfo=UTC)),
    ("See below\n\n________________________________\nFrom: Ines Duarte <ines@borealis.example>\n"
     "Sent: Tuesday, October 14, 2025 9:12 PM\nTo: Priya Shah <priya@acme-sales.example>\nSubject: Quote\n\nHi",
     "ines@borealis.example", "Quote", datetime(2025, 10, 14, 21, 12, tzinfo=UTC)),
])
def test_localized_and_outlook_inline_forwards(text: str, sender: str, subject: str, sent_at: datetime | None) -> None:
    found = find_forward(text)
    assert found is not None and found.original.from_ is not None
    assert (found.original.from_.address, found.original.subject) == (sender, subject)
    if sent_at is not None:
        assert found.original.sent_at == sent_at
    assert found.original.text.split("\n")[0] in ("Hola", "Hoi", "Ol\u00e1", "Ciao", "Bonjour", "Hi")


def test_nested_forwards_take_the_first_block_unless_the_forwarder_wrote_it() -> None:
    text = ("FYI\n\n---------- Forwarded message ---------\nFrom: Ines Duarte <ines@borealis.example>\n"
            "Date: Tue, 14 Oct 2025 09:12:00 +0200\nSubject: Fwd: Quote\nTo: Priya <priya@acme-sales.example>\n\n"
            "See what Marco wrote.\n\n---------- Forwarded message ---------\n"
            "From: Marco Rossi <marco.rossi@borealis.example>\nDate: Mon, 13 Oct 2025 18:00:00 +0200\n"
            "Subject: Quote\nTo: Ines <ines@borealis.example>\n\nThe quote is fine.")
    first = find_forward(text, forwarder="priya@acme-sales.example")
    assert first is not None and first.original.from_ is not None
    assert first.original.from_.address == "ines@borealis.example"  # the message the rep forwarded
    assert "The quote is fine." in first.original.text  # its own forward stays inside it
    assert first.note == "FYI"
    # Ines forwarding her own forward: the message she forwarded is Marco's
    again = find_forward(text, forwarder="ines@borealis.example")
    assert again is not None and again.original.from_ is not None
    assert again.original.from_.address == "marco.rossi@borealis.example"
    assert again.original.text == "The quote is fine."


def test_a_reply_bccd_to_the_inbox_is_the_reply_not_a_forward() -> None:
    reply = (b"From: Priya Shah <priya@acme-sales.example>\r\nTo: Ines Duarte <ines@borealis.example>\r\n"
             b"Bcc: inbox@crm.localhost\r\nSubject: RE: Revised pricing\r\n"
             b"Date: Thu, 16 Oct 2025 08:00:00 +0000\r\nMessage-ID: <reply-1@acme-sales.example>\r\n\r\n"
             b"Ines, yes: 62k with the telematics module.\r\n\r\n-----Original Message-----\r\n"
             b"From: Ines Duarte [mailto:ines@borealis.example]\r\nSent: Wednesday, October 15, 2025 4:05 PM\r\n"
             b"To: Priya Shah <priya@acme-sales.example>\r\nSubject: Revised pricing\r\n\r\nIs 62k right?\r\n")
    parsed = parse_email(reply)
    assert parsed.forwarded is None and parsed.forward_note == ""
    assert parsed.customer_message.text.startswith("Ines, yes: 62k")
    # the same quoted block under a forward subject is a forward
    forwarded = parse_email(reply.replace(b"Subject: RE: Revised", b"Subject: FW: Revised"))
    assert forwarded.forwarded is not None and forwarded.forwarded.text == "Is 62k right?"
    # and a reply that forwards explicitly ("Forwarded message") is still read as a forward
    explicit = find_forward("See below\n\n---------- Forwarded message ---------\nFrom: A <a@b.example>\n\nHi",
                            reply=True)
    assert explicit is not None and explicit.original.text == "Hi"


def test_text_without_a_forward_is_not_one() -> None:
    assert find_forward("Hi Priya,\nFrom: the depot team\nDate: tomorrow\nThanks") is None
    assert find_forward("") is None
    parsed = parse_email(b"From: Priya <priya@acme-sales.example>\nSubject: Fwd: hello\n\nno headers here\n")
    assert parsed.forwarded is None
    assert any("no forwarded message was found" in w for w in parsed.warnings)


def test_addresses_dates_and_subject_prefixes_in_forwarded_headers() -> None:
    found = parse_addresses("Ines Duarte [mailto:Ines@Borealis.example]; \"Rossi, Marco\" <marco@b.example>, "
                            "<jonas@b.example>, Lena <mailto:lena@b.example>")
    assert [(a.address, a.name) for a in found] == [("ines@borealis.example", "Ines Duarte"),
                                                    ("marco@b.example", "Rossi, Marco"),
                                                    ("jonas@b.example", None), ("lena@b.example", "Lena")]
    assert parse_addresses("Priya Shah") == []
    assert parse_date("Tue, 14 Oct 2025 09:12:33 +0200") == datetime(2025, 10, 14, 7, 12, 33, tzinfo=UTC)
    assert parse_date("Fri, 1 Aug 2014 16:45:32 -04:00") == datetime(2014, 8, 1, 20, 45, 32, tzinfo=UTC)
    assert parse_date("Tuesday, October 14, 2025 9:12 PM", timezone(timedelta(hours=-4))) == \
        datetime(2025, 10, 15, 1, 12, tzinfo=UTC)
    for junk in ("", "yesterday-ish", "Tue, 06 Jun 2017 27:39:33 +0600", "99/99/99 99:99"):
        assert parse_date(junk) is None
    assert strip_forward_prefix("Fwd: WG: TR: RV: Doorst: FW: Re: Quote") == "Re: Quote"


# -- charsets, structure ------------------------------------------------------------------------


def test_iso_2022_jp() -> None:
    parsed = load("iso2022jp_japanese.eml")
    assert parsed.subject == "\u898b\u7a4d\u66f8\u306e\u304a\u9858\u3044"  # 見積書のお願い
    assert parsed.from_.name == "\u7530\u4e2d \u592a\u90ce"  # 田中 太郎
    assert "\u898b\u7a4d\u66f8\u3092\u91d1\u66dc\u65e5\u307e\u3067\u306b\u304a\u9001\u308a\u304f\u3060\u3055\u3044" \
           in parsed.text  # 見積書を金曜日までにお送りください
    assert parsed.sent_at == datetime(2025, 10, 15, 1, 0, tzinfo=UTC)
    assert parsed.warnings == []


def test_koi8_r() -> None:
    parsed = load("koi8r_russian.eml")
    assert parsed.subject == "\u041a\u043e\u043c\u043c\u0435\u0440\u0447\u0435\u0441\u043a\u043e\u0435 " \
                             "\u043f\u0440\u0435\u0434\u043b\u043e\u0436\u0435\u043d\u0438\u0435"
    assert parsed.text.startswith("\u0414\u043e\u0431\u0440\u044b\u0439 \u0434\u0435\u043d\u044c, "
                                  "\u041f\u0440\u0438\u044f!")  # Добрый день, Прия!
    assert parsed.from_.name == "\u0418\u0432\u0430\u043d \u041f\u0435\u0442\u0440\u043e\u0432"


def test_unknown_and_wrong_charsets_fall_back_with_a_warning() -> None:
    unknown = load("unknown_charset_label.eml")
    assert unknown.text == "Ol\u00e1 Priya, a proposta est\u00e1 aprovada. Obrigada!"
    assert unknown.warnings == ["charset 'x-unknown' not known; decoded as UTF-8"]
    wrong = load("wrong_charset_declared.eml")
    assert wrong.text == "Hej Priya, vi \u00e4r klara. Pris: 48 000 \u20ac \u2013 inklusive moms."
    assert wrong.warnings == ["text declared as 'utf-8' is not valid utf-8; decoded as windows-1252"]


def test_latin_1_quoted_printable_flowed_and_base64_parts() -> None:
    google = load("unstructured_email-no-utf8-2014-03-17.111517.eml")  # ISO-8859-1, format=flowed delsp=yes
    assert "slava.Gxyzxyz@gmail.com - was recently changed." in google.text
    assert google.sent_at == datetime(2014, 3, 17, 11, 15, 4, tzinfo=UTC)
    assert [a.filename for a in google.attachments] == ["google.png", "profilephoto.png"]
    assert all(a.text is None and "image" in (a.error or "") for a in google.attachments)
    lyrics = load("cpython_msg_10_mixed_transfer_encodings.eml")  # 7bit, base64, no CTE: all inline text
    assert lyrics.text == ("This is a 7bit encoded message.\n\nThis is a Base64 encoded message.\n\n"
                           "This is a Base64 encoded message.\n\nThis has no Content-Transfer-Encoding: header.")
    assert lyrics.html == "\u00a1This is a Quoted Printable encoded message!\n"


def test_signed_messages_read_the_signed_content_and_skip_the_signature() -> None:
    smime = load("smime_signed_outlook.eml")
    assert smime.text.startswith("Priya,\n\nOur legal team accepts the DPA with two changes")
    assert smime.attachments == []
    pgp = load("cpython_msg_48_pgp_signed.eml")
    assert (pgp.text, pgp.attachments) == ("This is the signed contents.", [])
    with_attachment = load("unstructured_mime-signed-with-attachment.eml")
    assert with_attachment.text == "This is a PGP signed email with an attachment."
    assert [(a.filename, a.text) for a in with_attachment.attachments] == [("note.txt", "This is a text attachment.\n")]


def test_encrypted_message_says_it_cannot_be_read() -> None:
    parsed = load("unstructured_fake-encrypted.eml")
    assert parsed.text == "" and parsed.attachments == []
    assert any("encrypted" in w and "cannot be read" in w for w in parsed.warnings)


def test_html_only_email_becomes_readable_text() -> None:
    parsed = load("html_only_customer_email.eml")
    assert parsed.text == (
        "Pilot proposal \u2013 next steps\n\nHi Priya,\n\nThanks for the call. To move forward we need:\n\n"
        "- the revised quote (62 000 \u20ac)\n"
        "- the security questionnaire (https://borealis.example/security) back\n"
        "- a start date <= January 15\n"
        "Depot Trucks\nPorto 40\nLisbon 25\n\n"
        "Best,\nInes\nines@borealis.example")
    assert "trackOpen" not in parsed.text and "color" not in parsed.text
    assert [a.address for a in parsed.cc] == ["inbox+deal-42@crm.localhost"]


def test_an_empty_text_alternative_falls_back_to_the_html() -> None:
    msg = EmailMessage()
    msg["From"], msg["Subject"] = "Ines <ines@borealis.example>", "Hi"
    msg.set_content("\n")
    msg.add_alternative("<p>The <b>real</b> message.</p>", subtype="html")
    assert parse_email(msg.as_bytes()).text == "The real message."


def test_apple_mail_body_split_around_an_inline_attachment() -> None:
    parsed = load("unstructured_mime-html-split-by-inline-attachment.eml")
    assert parsed.text == "Here is the report.\n\n<report.pdf>\n\nLet me know what you think."
    assert parsed.html is not None and "Let me know what you think." in parsed.html
    [pdf] = parsed.attachments
    assert pdf.filename == "report.pdf" and pdf.text is None
    assert pdf.error is not None and pdf.error.startswith("could not read the PDF")


def test_winmail_dat_is_listed_with_the_reason_it_cannot_be_read() -> None:
    parsed = load("outlook_winmail_dat.eml")
    assert parsed.text == "Priya, the updated volumes are attached.\n\nMarco"
    [tnef] = parsed.attachments
    assert (tnef.filename, tnef.content_type, tnef.text) == ("winmail.dat", "application/ms-tnef", None)
    assert tnef.error is not None and "winmail.dat" in tnef.error and "HTML or plain text" in tnef.error


def winmail_dat(files: list[tuple[str, bytes]], body: str | None = None) -> bytes:
    """A winmail.dat written as MS-OXTNEF lays it out (tnefparse has no writer): the signature and a
    key, then attributes of (level, id, type, length, data, checksum); an attachment starts at its
    attAttachRendData and takes its name from attAttachTitle and its bytes from attAttachData."""
    def attribute(level: int, name: int, kind: int, data: bytes) -> bytes:
        return struct.pack("<BHHI", level, name, kind, len(data)) + data + struct.pack("<H", sum(data) & 0xFFFF)

    out = struct.pack("<IH", 0x223E9F78, 0x0001)
    out += attribute(1, 0x9006, 0x0008, struct.pack("<I", 0x00010000))  # attTnefVersion
    out += attribute(1, 0x9007, 0x0006, struct.pack("<II", 1252, 0))  # attOemCodepage
    if body is not None:
        out += attribute(1, 0x800C, 0x0002, body.encode("cp1252"))  # attBody
    for name, data in files:
        out += attribute(2, 0x9002, 0x0006, bytes(14))  # attAttachRendData
        out += attribute(2, 0x8010, 0x0001, name.encode("cp1252") + b"\0")  # attAttachTitle
        out += attribute(2, 0x800F, 0x0006, data)  # attAttachData
    return out


def test_the_files_inside_winmail_dat_are_read_like_any_attachment() -> None:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "Marco <marco@borealis.example>", "priya@acme.example", "Volumes"
    msg.set_content("Priya, the updated volumes are attached.")
    tnef = winmail_dat([("volumes.csv", b"depot,trucks\nPorto,40\n"), ("notes.txt", b"Caf\xe9 at 10h")])
    msg.add_attachment(tnef, maintype="application", subtype="ms-tnef", filename="winmail.dat")
    parsed = parse_email(msg.as_bytes())
    assert parsed.text == "Priya, the updated volumes are attached."
    wrapper, csv, notes = parsed.attachments
    assert (wrapper.filename, wrapper.content_type, wrapper.text) == ("winmail.dat", "application/ms-tnef", None)
    assert wrapper.error is not None and "(volumes.csv, notes.txt) are listed as attachments" in wrapper.error
    assert (csv.filename, csv.content_type, csv.text, csv.error) == ("volumes.csv", "text/csv",
                                                                     "depot,trucks\nPorto,40\n", None)
    assert (notes.filename, notes.text) == ("notes.txt", "Caf\u00e9 at 10h")  # Windows-1252, as any text file
    assert csv.sha256 == hashlib.sha256(b"depot,trucks\nPorto,40\n").hexdigest()

    # Outlook's rich-text body inside the wrapper (when it sent no text/plain part) is the wrapper's text.
    assert extract_text("winmail.dat", "application/ms-tnef", winmail_dat([], body="Budget approved.")) == (
        "Budget approved.", None)


def test_damaged_messages_are_read_as_far_as_they_go() -> None:
    truncated = load("malformed_truncated_multipart.eml")
    assert truncated.text == "The numbers are in the attached sheet."
    assert [(a.filename, a.text) for a in truncated.attachments] == [("numbers.csv", "depot,trucks\nPorto,40")]
    assert any("cut short" in w for w in truncated.warnings)
    broken = load("cpython_msg_15_outlook_express_mac_broken_nesting.eml")
    assert "Some removed test." in broken.text
    assert any("no address" in w for w in broken.warnings)  # "To: XX"
    no_separator = load("cpython_msg_35_no_header_body_separator.eml")
    assert no_separator.subject == "here's something interesting"
    bad_date = load("cpython_msg_47_invalid_date.eml")
    assert bad_date.sent_at is None
    assert any("Date header" in w and "could not be read" in w for w in bad_date.warnings)


def test_duplicate_headers_missing_id_and_date() -> None:
    raw = (DATA / "duplicate_headers_no_id_no_date.eml").read_bytes()
    parsed = parse_email(raw)
    assert parsed.from_.address == "marco.rossi@borealis.example" and parsed.subject == "First subject"
    assert [a.address for a in parsed.to] == ["priya@acme-sales.example", "inbox@crm.localhost"]
    assert parsed.sent_at is None
    assert re.fullmatch(r"<[0-9a-f]{64}@no-message-id\.agent-crm>", parsed.message_id)
    assert parse_email(raw).message_id == parsed.message_id  # stable: the same bytes are the same email
    assert parse_email(raw.replace(b"\n", b"\r\n")).message_id == parsed.message_id  # by SMTP, CRLF
    assert {"2 From headers; the first is used", "2 Subject headers; the first is used",
            "no Date header; the sent time is unknown"} <= set(parsed.warnings)


def test_bare_lf_and_crlf_line_endings_read_the_same() -> None:
    lf = (DATA / "gmail_forward_with_pdf.eml").read_bytes()
    assert b"\r\n" not in lf
    a, b = parse_email(lf), parse_email(lf.replace(b"\n", b"\r\n"))
    assert (a.text, a.forwarded, a.attachments[0].sha256) == (b.text, b.forwarded, b.attachments[0].sha256)


def test_docx_attachment_paragraphs_and_tables() -> None:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "Ines Duarte <ines@borealis.example>", "inbox@crm.localhost", "Order form"
    msg.set_content("Signed order form attached.")
    msg.add_attachment(docx_bytes(), maintype="application",
                       subtype="vnd.openxmlformats-officedocument.wordprocessingml.document", filename="order.docx")
    [attachment] = parse_email(msg.as_bytes()).attachments
    assert attachment.error is None
    assert attachment.text == ("Pilot order form\nCustomer: Borealis Logistics\nDepot | Trucks\nPorto | 40\n"
                               "Signed: Ines Duarte")


# -- attachments on their own -------------------------------------------------------------------


def test_pdf_variants() -> None:
    from pypdf import PdfWriter

    text, error = extract_text("q.pdf", "application/octet-stream", minimal_pdf(["Scope: 40 trucks"]))
    assert (text, error) == ("Scope: 40 trucks", None)  # found by extension, not the generic content type
    blank = PdfWriter()
    blank.add_blank_page(612, 792)
    buffer = io.BytesIO()
    blank.write(buffer)
    text, error = extract_text("scan.pdf", "application/pdf", buffer.getvalue())
    assert text is None and error is not None
    if not UNSTRUCTURED_INSTALLED:
        assert error == "no text layer (a scanned PDF?); OCR needs the unstructured extra: " \
                        "pip install 'agent-crm[unstructured]'"
    locked = PdfWriter()
    locked.add_blank_page(612, 792)
    locked.encrypt(user_password="secret", algorithm="RC4-128")
    buffer = io.BytesIO()
    locked.write(buffer)
    text, error = extract_text("locked.pdf", "application/pdf", buffer.getvalue())
    assert text is None and error is not None and "encrypted" in error and "password" in error
    text, error = extract_text("broken.pdf", "application/pdf", b"%PDF-1.4\nnot really")
    assert text is None and error is not None and error.startswith("could not read the PDF")


def test_text_like_attachments() -> None:
    assert extract_text("v.csv", "text/csv", b"depot,trucks\nPorto,40\n") == ("depot,trucks\nPorto,40\n", None)
    assert extract_text("n.txt", "text/plain; charset=iso-8859-1", b"D\xe9p\xf4t") == ("D\u00e9p\u00f4t", None)
    assert extract_text("d.json", "application/json", b'{"trucks": 40}') == ('{\n  "trucks": 40\n}', None)
    assert extract_text("notes.md", "application/octet-stream", b"# Pilot\n- Porto") == ("# Pilot\n- Porto", None)
    assert extract_text("p.html", "text/html", b"<p>Hi <b>Priya</b></p><script>x</script>") == ("Hi Priya", None)
    eml = (DATA / "koi8r_russian.eml").read_bytes()
    text, error = extract_text("fwd.eml", "message/rfc822", eml)
    assert error is None and text is not None
    assert text.startswith("From: \u0418\u0432\u0430\u043d \u041f\u0435\u0442\u0440\u043e\u0432 "
                           "<ivan.petrov@volga-trans.example>")
    assert extract_text("empty.txt", "text/plain", b"") == (None, "empty file (0 bytes)")


def test_other_formats_name_the_optional_extra_and_never_raise() -> None:
    text, error = extract_text("deck.pptx", "application/vnd.openxmlformats-officedocument.presentationml."
                               "presentation", b"PK\x03\x04 not really a deck")
    assert text is None and error is not None
    if not UNSTRUCTURED_INSTALLED:
        assert error == ("no built-in reader for .pptx; install the optional extra: "
                         "pip install 'agent-crm[unstructured]'")
    text, error = extract_text("order.docx", "application/octet-stream", b"this is no zip")
    assert text is None and error is not None and "not a readable .docx" in error
    text, error = extract_text("photo.jpg", "image/jpeg", b"\xff\xd8\xff\xe0 jpeg bytes")
    assert text is None and error is not None and "image" in error


def test_unstructured_mode_falls_back_to_the_builtin_readers() -> None:
    text, error = extract_text("q.pdf", "application/pdf", minimal_pdf(["Budget: 62,000 EUR"]), mode="unstructured")
    if not UNSTRUCTURED_INSTALLED:
        assert (text, error) == ("Budget: 62,000 EUR", None)
    else:
        assert text is not None and "62,000" in text


def test_long_text_is_cut_with_a_note(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(attachments_module, "MAX_TEXT_CHARS", 10)
    text, error = extract_text("long.txt", "text/plain", b"0123456789abcdef")
    assert error is None and text == "0123456789\n\n[text cut: 16 characters, the first 10 kept]"


# -- HTML to text -------------------------------------------------------------------------------


def test_html_to_text_rules() -> None:
    html = ("<html><head><style>p{}</style><title>t</title></head><body>"
            "<div>Hi<br></div><div><br></div><div>next</div>"
            "<p>See <a href='https://acme.example/pricing'>pricing</a>, <a href='https://acme.example'>acme.example</a>"
            " and <a href='mailto:priya@acme-sales.example'>priya@acme-sales.example</a>.</p>"
            "<ol><li>one</li><li>two</li></ol><ul><li>a &amp; b</li></ul>"
            "<!--[if mso]><p>outlook only</p><![endif]--><script>alert(1)</script>"
            "<table><tr><th>Subject:</th><td>Re: Pilot</td></tr></table></body></html>")
    assert html_to_text(html) == ("Hi\n\nnext\n\nSee pricing (https://acme.example/pricing), acme.example and "
                                  "priya@acme-sales.example.\n\n1. one\n2. two\n- a & b\nSubject: Re: Pilot")
    assert html_to_text("<p>unclosed <b>bold <i>text") == "unclosed bold text"
    assert html_to_text("") == ""
