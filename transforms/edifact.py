"""UN/EDIFACT INVOIC messages: the invoice's fields from its segments.

EDIFACT is the EDI syntax that retail, book trade, automotive and logistics still exchange invoices
in: plain text of segments, each a tag and data elements, e.g.

    UNA:+.? '                      service string advice: the separators this message uses
    UNH+019371+INVOIC:D:96A:UN'    a message of type INVOIC
    BGM+380+3375723'               document 380 (an invoice) numbered 3375723
    DTM+137:20111124:102'          its date (137: document date; 102: CCYYMMDD)
    CUX+2:GBP:4'                   its currency
    NAD+SU+5013546027173::9'       the supplier (here by GLN only: no name printed)
    UNS+S'                         the summary section starts
    MOA+86:43.71'                  the message's total

Read as plain text a message classifies as nothing and gives no field; read here it gives what a
CII or UBL e-invoice gives (transforms.einvoice), from the qualifiers the standard defines. A party
named only by a number (a GLN) has no name to give.
"""
from __future__ import annotations

import re
from datetime import date

# An interchange opens with UNA (its separators) or UNB (its header); the message type is in UNH.
_START = re.compile(rb"^\s*(?:\xef\xbb\xbf)?(?:UNA.{6}\s*)?UNB.", re.DOTALL)
_INVOIC = re.compile(rb"UNH.{1,40}?INVOIC", re.DOTALL)
DEFAULT_SEPARATORS = ":+.? '"   # component, element, decimal mark, release, reserved, segment end

# BGM document codes: 380 commercial invoice, 381 credit note, 383 debit note, 384 corrected invoice,
# 386 prepayment invoice, 325 pro-forma; any is an invoice's number.
_ISSUE_DATE_QUALIFIERS = ("137", "3")          # document date, invoice date
_DUE_DATE_QUALIFIERS = ("13", "140")           # terms net due date, payment due date
# MOA qualifiers of the total, strongest first: invoice amount, message total, invoice total,
# amount due/payable, total amount.
_TOTAL_QUALIFIERS = ("77", "86", "39", "9", "129", "128")
_SELLER_QUALIFIERS = ("SU", "SE", "II")        # supplier, seller, invoice issuer
_BUYER_QUALIFIERS = ("BY", "IV")               # buyer, invoicee


class EdifactError(ValueError):
    """Not an INVOIC message, or one that names neither a number nor a total."""


def is_invoic(head: bytes) -> bool:
    """Whether a file's first bytes open an EDIFACT interchange holding an INVOIC message."""
    return bool(_START.match(head)) and bool(_INVOIC.search(head))


def _separators(data: bytes) -> tuple[str, str]:
    """(the six service characters of the interchange, its text after the UNA that states them):
    component, element, decimal mark, release, reserved, segment end; the standard's without a UNA."""
    text = data.decode("latin-1").lstrip("\ufeff\xef\xbb\xbf \r\n\t")
    if text.startswith("UNA") and len(text) >= 9:
        return text[3:9], text[9:]
    return DEFAULT_SEPARATORS, text


def segments(data: bytes) -> list[list[list[str]]]:
    """The message's segments, each a list of data elements, each a list of components, with the
    release character's escapes resolved ("?+" is a literal "+"). The tag is element 0."""
    seps, text = _separators(data)
    component, element, _decimal, release, _reserved, terminator = seps
    out: list[list[list[str]]] = []
    elements: list[list[str]] = []
    parts: list[str] = []
    current: list[str] = []
    escaped = False
    for ch in text:
        if escaped:
            current.append(ch)
            escaped = False
        elif ch == release:
            escaped = True
        elif ch == component:
            parts.append("".join(current))
            current = []
        elif ch == element:
            parts.append("".join(current))
            elements.append(parts)
            parts, current = [], []
        elif ch == terminator:
            parts.append("".join(current))
            elements.append(parts)
            elements[0] = [elements[0][0].strip()]   # the tag, without the line break before it
            out.append(elements)
            elements, parts, current = [], [], []
        elif ch not in "\r\n":
            current.append(ch)
    return out


def _get(segment: list[list[str]], element: int, component: int = 0) -> str:
    try:
        return segment[element][component].strip()
    except IndexError:
        return ""


def _date(value: str, fmt: str) -> str | None:
    """An EDIFACT date: format 102 CCYYMMDD, 101 YYMMDD, 203/204 CCYYMMDDHHMM[SS]. A six-digit
    value under 102 is read as YYMMDD, as some senders write it."""
    digits = re.sub(r"\D", "", value)
    if fmt == "101" or (fmt in ("102", "") and len(digits) == 6):
        digits = ("20" if int(digits[:2] or 0) < 70 else "19") + digits[:6]
    if len(digits) < 8:
        return None
    try:
        return date(int(digits[:4]), int(digits[4:6]), int(digits[6:8])).isoformat()
    except ValueError:
        return None


def _amount(value: str, decimal_mark: str) -> float | None:
    try:
        return round(float(value.replace(decimal_mark, ".")), 2)
    except ValueError:
        return None


def _party_name(segment: list[list[str]]) -> str | None:
    """NAD's party name (C080, element 4), else its unstructured name and address (C058, element 3);
    a party named only by an identifier (element 2, a GLN) has none."""
    for index in (4, 3):
        if len(segment) > index:
            name = " ".join(part.strip() for part in segment[index] if part.strip())
            if name:
                return name
    return None


def invoice_fields(data: bytes) -> dict:
    """The fields of the first INVOIC message: number, issue_date, due_date, total_amount, currency,
    issuer, buyer (None where the message does not state them) and syntax "edifact"."""
    decimal_mark = _separators(data[:4096])[0][2]
    fields = {"number": None, "issue_date": None, "due_date": None, "total_amount": None,
              "currency": None, "issuer": None, "buyer": None}
    in_message = in_lines = in_summary = False
    totals: dict[str, float] = {}
    for segment in segments(data):
        tag = segment[0][0]
        if tag == "UNH":
            if in_message:
                break   # only the first message of an interchange
            in_message = _get(segment, 2) == "INVOIC"
            continue
        if not in_message:
            continue
        if tag == "LIN":
            in_lines = True
        elif tag == "UNS":
            in_lines, in_summary = False, True
        elif tag == "UNT":
            break
        elif tag == "BGM" and fields["number"] is None:
            fields["number"] = _get(segment, 2) or None
        elif tag == "DTM" and not in_lines:
            qualifier, value, fmt = _get(segment, 1, 0), _get(segment, 1, 1), _get(segment, 1, 2)
            if qualifier in _ISSUE_DATE_QUALIFIERS and fields["issue_date"] is None:
                fields["issue_date"] = _date(value, fmt)
            elif qualifier in _DUE_DATE_QUALIFIERS and fields["due_date"] is None:
                fields["due_date"] = _date(value, fmt)
        elif tag == "CUX" and fields["currency"] is None:
            fields["currency"] = _get(segment, 1, 1).upper() or None
        elif tag == "NAD" and not in_lines:
            qualifier = _get(segment, 1)
            key = "issuer" if qualifier in _SELLER_QUALIFIERS else "buyer" if qualifier in _BUYER_QUALIFIERS else None
            if key and fields[key] is None:
                fields[key] = _party_name(segment)
        elif tag == "MOA" and not in_lines:
            qualifier, amount = _get(segment, 1, 0), _amount(_get(segment, 1, 1), decimal_mark)
            # the summary's totals win over the same qualifier in the header
            if qualifier in _TOTAL_QUALIFIERS and amount is not None and (in_summary or qualifier not in totals):
                totals[qualifier] = amount
    if not in_message and fields["number"] is None:
        raise EdifactError("no INVOIC message in the EDIFACT interchange")
    fields["total_amount"] = next((totals[q] for q in _TOTAL_QUALIFIERS if q in totals), None)
    if fields["number"] is None and fields["total_amount"] is None:
        raise EdifactError("the EDIFACT INVOIC message names no invoice number and no total")
    fields["syntax"] = "edifact"
    return fields


# Party roles of NAD segments, as a reader names them.
_ROLES = {"SU": "Supplier", "SE": "Seller", "II": "Issuer", "BY": "Buyer", "IV": "Invoicee", "DP": "Delivery to",
          "PE": "Payee", "PR": "Payer"}


def _words(element: list[str]) -> str:
    return " ".join(" ".join(part.split()) for part in element if part.strip())


def readable_lines(data: bytes, max_chars: int = 20000) -> list[str]:
    """The words of the message as lines, for the index and the classifier: parties with their
    addresses ("Supplier: Acme Ltd, 1 High St, London"; by GLN where no name is given), item
    descriptions ("Item: Dark angel"), free text and references; codes, quantities and prices stay
    in the fields and the file."""
    out, size = [], 0
    for segment in segments(data):
        tag = segment[0][0]
        if tag == "NAD":
            role = _ROLES.get(_get(segment, 1), _get(segment, 1))
            name = _party_name(segment)
            address = ", ".join(_words(e) for e in segment[5:10] if _words(e))
            party_id = _get(segment, 2)
            line = f"{role}: {name or party_id}" + (f", {address}" if address else "")
            line += f" (GLN {party_id})" if name and party_id and _get(segment, 2, 2) == "9" else ""
        elif tag == "IMD":
            line = "Item: " + _words(segment[3][3:]) if len(segment) > 3 else ""
        elif tag == "FTX":
            line = "Note: " + _words(segment[4]) if len(segment) > 4 else ""
        elif tag == "RFF":
            line = "Reference: " + _words(segment[1]) if len(segment) > 1 else ""
        else:
            continue
        if line.rstrip(": ") and not line.endswith(": ") and size < max_chars:
            out.append(line)
            size += len(line)
    return out
