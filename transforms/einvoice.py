"""Structured e-invoices: the exact fields of a Factur-X / ZUGFeRD / XRechnung (CII) or UBL invoice.

Such an invoice carries its data as XML, either inside a PDF (an embedded file named
`factur-x.xml`, `zugferd-invoice.xml`, `xrechnung.xml`, ...: mandatory for B2B invoicing in Germany
and France) or as a standalone `.xml` file. Reading that XML gives the invoice's number, dates,
total, currency and parties exactly, where reading the printed page only guesses; the extractor
records these values with `source: "e-invoice"`.

Both syntaxes of the European norm EN 16931 are read:
- CII (UN/CEFACT Cross Industry Invoice): Factur-X, ZUGFeRD 2.x, XRechnung-CII, and the older
  ZUGFeRD 1.0 (CrossIndustryDocument);
- UBL 2.1 (OASIS Universal Business Language): Invoice and CreditNote, XRechnung-UBL, Peppol.
And the older EDI one, still what retail, publishing and logistics exchange: a UN/EDIFACT INVOIC
message (plain text of segments such as `BGM+380+3375723'`; transforms.edifact).

XML is parsed with defusedxml: an invoice is untrusted input, and entity expansion ("billion
laughs") or external entities must not reach the parser.
"""
from __future__ import annotations

import re
from datetime import date

from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException

from transforms import edifact

# Names the standards give the embedded XML; any other attached .xml is tried too (some producers
# name it after the invoice), but these are looked at first.
KNOWN_ATTACHMENT_NAMES = ("factur-x.xml", "zugferd-invoice.xml", "zugferd_invoice.xml", "xrechnung.xml",
                          "order-x.xml")
MAX_XML_BYTES = 20 * 1024 * 1024   # a real invoice's XML is kilobytes; a bigger one is not read

# The fields an e-invoice gives, in the extractor's names (see transforms.extract).
FIELDS = ("number", "issue_date", "due_date", "total_amount", "currency", "issuer", "buyer")


class NotAnEInvoice(ValueError):
    """The XML is not a CII or UBL invoice (or cannot be parsed)."""


def _local(tag: str) -> str:
    """The element's name without its namespace: `{urn:...}ID` -> `ID`."""
    return tag.rsplit("}", 1)[-1]


def _child(node, *names):
    """The first descendant along a path of local names (namespaces differ between versions)."""
    for name in names:
        if node is None:
            return None
        node = next((c for c in node if _local(c.tag) == name), None)
    return node


def _text(node, *names) -> str | None:
    found = _child(node, *names)
    if found is None or found.text is None:
        return None
    value = " ".join(found.text.split())
    return value or None


def _amount(raw: str | None) -> float | None:
    if raw is None:
        return None
    try:
        return round(float(raw), 2)
    except ValueError:
        return None


def _cii_date(node) -> str | None:
    """A CII date: `<udt:DateTimeString format="102">20180605</...>` (format 102 = YYYYMMDD)."""
    if node is None:
        return None
    string = _child(node, "DateTimeString")
    raw = (string.text if string is not None else node.text) or ""
    digits = re.sub(r"\D", "", raw)
    if len(digits) >= 8:
        try:
            return date(int(digits[:4]), int(digits[4:6]), int(digits[6:8])).isoformat()
        except ValueError:
            return None
    return None


def _iso_date(raw: str | None) -> str | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(raw.strip()[:10]).isoformat()
    except ValueError:
        return None


def _cii(root) -> dict:
    header = _child(root, "ExchangedDocument")
    transaction = _child(root, "SupplyChainTradeTransaction")
    agreement = _child(transaction, "ApplicableHeaderTradeAgreement")
    settlement = _child(transaction, "ApplicableHeaderTradeSettlement")
    totals = _child(settlement, "SpecifiedTradeSettlementHeaderMonetarySummation")
    return _cii_fields(header, agreement, settlement, totals)


def _zugferd1(root) -> dict:
    """ZUGFeRD 1.0 (2014-2019, still in archives): the same data under older element names."""
    header = _child(root, "HeaderExchangedDocument")
    transaction = _child(root, "SpecifiedSupplyChainTradeTransaction")
    agreement = _child(transaction, "ApplicableSupplyChainTradeAgreement")
    settlement = _child(transaction, "ApplicableSupplyChainTradeSettlement")
    totals = _child(settlement, "SpecifiedTradeSettlementMonetarySummation")
    return _cii_fields(header, agreement, settlement, totals)


def _cii_fields(header, agreement, settlement, totals) -> dict:
    terms = _child(settlement, "SpecifiedTradePaymentTerms")
    # The invoice's total is its grand total (tax included); what remains to pay after prepayments
    # (DuePayableAmount) is what an invoice without a grand total states.
    total = _amount(_text(totals, "GrandTotalAmount")) if totals is not None else None
    if total is None and totals is not None:
        total = _amount(_text(totals, "DuePayableAmount"))
    return {
        "number": _text(header, "ID"),
        "issue_date": _cii_date(_child(header, "IssueDateTime")),
        "due_date": _cii_date(_child(terms, "DueDateDateTime")),
        "total_amount": total,
        "currency": _text(settlement, "InvoiceCurrencyCode"),
        "issuer": _text(agreement, "SellerTradeParty", "Name"),
        "buyer": _text(agreement, "BuyerTradeParty", "Name"),
    }


def _ubl_party(party_holder) -> str | None:
    party = _child(party_holder, "Party")
    if party is None:
        return None
    return (_text(party, "PartyLegalEntity", "RegistrationName") or _text(party, "PartyName", "Name"))


def _ubl(root) -> dict:
    totals = _child(root, "LegalMonetaryTotal")
    total = None
    if totals is not None:
        total = _amount(_text(totals, "TaxInclusiveAmount")) or _amount(_text(totals, "PayableAmount"))
    due = _iso_date(_text(root, "DueDate")) or _iso_date(_text(root, "PaymentMeans", "PaymentDueDate"))
    return {
        "number": _text(root, "ID"),
        "issue_date": _iso_date(_text(root, "IssueDate")),
        "due_date": due,
        "total_amount": total,
        "currency": _text(root, "DocumentCurrencyCode"),
        "issuer": _ubl_party(_child(root, "AccountingSupplierParty")),
        "buyer": _ubl_party(_child(root, "AccountingCustomerParty")),
    }


def syntax_of(data: bytes) -> str | None:
    """"cii", "ubl" or None, from the root element only (cheap: used to sniff `.xml` files)."""
    head = data[:4096].decode("utf-8", "ignore")
    m = re.search(r"<(?:[\w.-]+:)?(CrossIndustryInvoice|CrossIndustryDocument|Invoice|CreditNote)\b", head)
    if not m:
        return None
    if m.group(1).startswith("CrossIndustry"):
        return "cii"
    return "ubl" if "urn:oasis:names:specification:ubl:schema:xsd" in head else None


def parse(data: bytes) -> dict:
    """The fields of a CII or UBL invoice, or of an EDIFACT INVOIC message: {number, issue_date, ...,
    syntax}. Missing ones are None.

    Raises NotAnEInvoice for XML that is neither (or is not well-formed, or is hostile)."""
    if len(data) > MAX_XML_BYTES:
        raise NotAnEInvoice(f"XML larger than {MAX_XML_BYTES} bytes")
    if edifact.is_invoic(data[:4096]):
        try:
            return edifact.invoice_fields(data)
        except edifact.EdifactError as exc:
            raise NotAnEInvoice(str(exc)) from exc
    try:
        root = ElementTree.fromstring(data)
    except (ElementTree.ParseError, DefusedXmlException, ValueError) as exc:
        raise NotAnEInvoice(f"not well-formed XML: {exc}") from exc
    kind = _local(root.tag)
    if kind == "CrossIndustryInvoice":
        fields, syntax = _cii(root), "cii"
    elif kind == "CrossIndustryDocument":
        fields, syntax = _zugferd1(root), "cii"
    elif kind in ("Invoice", "CreditNote") and "ubl" in root.tag.lower():
        fields, syntax = _ubl(root), "ubl"
    else:
        raise NotAnEInvoice(f"root element {kind!r} is not a CII or UBL invoice")
    if fields["currency"]:
        fields["currency"] = fields["currency"].upper()
    if not (fields["number"] or fields["total_amount"] is not None):
        raise NotAnEInvoice("the XML names no invoice number and no total")
    fields["syntax"] = syntax
    return fields


# Attachments looked at in one PDF: a Factur-X/ZUGFeRD/XRechnung PDF carries one XML and a few other
# files; a hostile one can carry 100,000s (~50 us each to name, ~50 us more to parse an .xml).
MAX_ATTACHMENTS = 1000


def from_pdf(pdf) -> dict | None:
    """The e-invoice embedded in an open pypdfium2 PdfDocument, or None. The standards' file names
    are tried first, then any other attached .xml, among the first MAX_ATTACHMENTS attachments."""
    try:
        count = pdf.count_attachments()
    except Exception:
        return None
    attachments = []
    for i in range(min(count, MAX_ATTACHMENTS)):
        try:
            attachment = pdf.get_attachment(i)
            name = (attachment.get_name() or "").strip()
        except Exception:
            continue
        if name.lower().endswith(".xml"):
            attachments.append((name.lower() not in KNOWN_ATTACHMENT_NAMES, name, attachment))
    for _, name, attachment in sorted(attachments, key=lambda a: (a[0], a[1])):
        try:
            data = bytes(attachment.get_data())
            fields = parse(data)
        except Exception:
            continue   # a broken or unrelated attachment: the printed page still gets read
        fields["attachment"] = name
        return fields
    return None


def describe(fields: dict, data: bytes, max_chars: int = 20000) -> str:
    """The text of a standalone e-invoice XML file: its key fields first, as labelled lines, then every
    text value of the XML in document order (addresses, item names, notes), so that the file is
    classified, embedded and found by search like a printed invoice."""
    labels = (("Invoice number", "number"), ("Issue date", "issue_date"), ("Due date", "due_date"),
              ("Seller", "issuer"), ("Buyer", "buyer"), ("Total", "total_amount"), ("Currency", "currency"))
    lines = ["# Invoice", ""]
    lines += [f"{label}: {fields[key]}" for label, key in labels if fields.get(key) is not None]
    lines.append("")
    if fields.get("syntax") == "edifact":   # the message's words: parties, items, notes, references
        return "\n".join(lines + edifact.readable_lines(data, max_chars))
    size = sum(len(line) for line in lines)
    for node in ElementTree.fromstring(data).iter():
        value = " ".join((node.text or "").split())
        if value and size < max_chars:
            lines.append(value)
            size += len(value)
    return "\n".join(lines)
