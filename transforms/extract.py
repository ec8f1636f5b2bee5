"""Extract stage: metadata as a JSON object, by rules (the default backend).

Schema (every key always present; values are null or empty when not found):

    title        str | null     first heading, else the first short line
    dates        [str]          every date found, ISO 8601 (YYYY-MM-DD), in order, unique, <= 20
    emails       [str]          lower-cased, unique, <= 20
    phones       [str]          E.164 (+41591234567), unique, <= 20
    urls         [str]          unique, <= 20
    amounts      [{value, currency}]  money amounts with a currency, <= 20
    word_count   int
    language     str | null     ISO 639-1, from the Convert stage
    fields       {..}           per category (below); absent keys mean "not applicable"

    invoice:          number, issue_date, due_date, total_amount, currency, issuer
    receipt:          number, issue_date, total_amount, currency, issuer
    contract:         parties [str], effective_date
    resume:           name, email
    scientific_paper: title, authors [str]
    letter:           date, sender
    report:           title, date
    form:             title, number

Dates are ISO strings, amounts are numbers, currencies ISO 4217 codes. Rules are regular
expressions over the Markdown text: fast (about a millisecond per document) and predictable.
"""
from __future__ import annotations

import re
from datetime import date

from transforms.records import Document

LIMIT = 20

MONTHS = {m: i + 1 for i, m in enumerate(
    ["january", "february", "march", "april", "may", "june", "july", "august", "september",
     "october", "november", "december"])}
MONTHS = {name[:3]: num for name, num in MONTHS.items()}  # matched by their first three letters
_MONTH = r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sept?(?:ember)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?"

DATE_RE = re.compile(
    r"\b(?P<iso>(?P<iy>\d{4})-(?P<im>\d{1,2})-(?P<id>\d{1,2}))\b"
    r"|\b(?P<dmy>(?P<d1>\d{1,2})[./](?P<m1>\d{1,2})[./](?P<y1>\d{4}))\b"
    r"|\b(?P<dmon>(?P<d2>\d{1,2})(?:st|nd|rd|th)?[ -](?P<mon2>" + _MONTH + r")[ -,]*(?P<y2>\d{4}))\b"
    r"|\b(?P<mond>(?P<mon3>" + _MONTH + r") (?P<d3>\d{1,2})(?:st|nd|rd|th)?,? (?P<y3>\d{4}))\b",
    re.IGNORECASE,
)
EMAIL_RE = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,24}\b")
URL_RE = re.compile(r"\bhttps?://[^\s<>()\[\]\"'|]+[^\s<>()\[\]\"'|.,;:]")

CURRENCY_SYMBOLS = {"€": "EUR", "$": "USD", "£": "GBP", "¥": "JPY", "US$": "USD", "CHF": "CHF",
                    "Fr.": "CHF", "SFr.": "CHF"}
CURRENCY_CODES = ("EUR", "USD", "GBP", "CHF", "JPY", "CAD", "AUD", "SEK", "NOK", "DKK", "PLN",
                  "CZK", "CNY", "INR")
_CUR = r"(?:US\$|SFr\.|Fr\.|[€$£¥]|" + "|".join(CURRENCY_CODES) + r")"
_NUM = r"(?:\d{1,3}(?:[,.' ]\d{3})+|\d+)(?:[.,]\d{1,2})?"
AMOUNT_RE = re.compile(
    r"(?P<c1>" + _CUR + r")\s?(?P<n1>" + _NUM + r")(?!\d)|(?<![\d.,])(?P<n2>" + _NUM + r")\s?(?P<c2>" + _CUR + r")(?![A-Za-z])")


# -- value parsers -----------------------------------------------------------------------------

def _iso(year: int, month: int, day: int) -> str | None:
    try:
        return date(year, month, day).isoformat()
    except ValueError:
        return None


def _date_from_match(m: re.Match) -> str | None:
    if m.group("iso"):
        return _iso(int(m.group("iy")), int(m.group("im")), int(m.group("id")))
    if m.group("dmy"):
        day, month = int(m.group("d1")), int(m.group("m1"))
        if month > 12 >= day:  # unambiguously month-first (US style)
            day, month = month, day
        return _iso(int(m.group("y1")), month, day)
    if m.group("dmon"):
        return _iso(int(m.group("y2")), _month(m.group("mon2")), int(m.group("d2")))
    return _iso(int(m.group("y3")), _month(m.group("mon3")), int(m.group("d3")))


def _month(token: str) -> int:
    return MONTHS[token.lower()[:3]]


def parse_date(text: str) -> str | None:
    """The first date in `text`, as ISO 8601."""
    for m in DATE_RE.finditer(text):
        iso = _date_from_match(m)
        if iso:
            return iso
    return None


def find_dates(text: str) -> list[str]:
    return _unique(iso for iso in (_date_from_match(m) for m in DATE_RE.finditer(text)) if iso)


def parse_number(raw: str) -> float | None:
    """'1,234.50' / '1.234,50' / "1'234.50" / '1 234' -> float. The last separator followed by
    one or two digits is the decimal mark; every other separator groups thousands."""
    raw = raw.strip()
    m = re.match(r"^(.*?)([.,](\d{1,2}))?$", raw)
    whole, decimals = (m.group(1), m.group(3)) if m and m.group(2) else (raw, None)
    digits = re.sub(r"[^\d]", "", whole)
    if not digits:
        return None
    return float(f"{digits}.{decimals}") if decimals else float(digits)


def _currency_code(token: str) -> str:
    return CURRENCY_SYMBOLS.get(token, token.upper())


def find_amounts(text: str) -> list[dict]:
    out = []
    for m in AMOUNT_RE.finditer(text):
        cur, num = (m.group("c1"), m.group("n1")) if m.group("c1") else (m.group("c2"), m.group("n2"))
        value = parse_number(num)
        if value is not None:
            out.append({"value": value, "currency": _currency_code(cur)})
        if len(out) >= LIMIT:
            break
    return out


def find_phones(text: str) -> list[str]:
    import phonenumbers

    found = []
    # Region None: only numbers written in international form (+..) are certain; a default region
    # would turn order numbers into phone numbers.
    for match in phonenumbers.PhoneNumberMatcher(text[:20000], None):
        found.append(phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164))
        if len(found) >= LIMIT:
            break
    return _unique(found)


def _unique(items) -> list:
    seen, out = set(), []
    for item in items:
        if item not in seen:
            seen.add(item)
            out.append(item)
            if len(out) >= LIMIT:
                break
    return out


# -- label-driven field finders -----------------------------------------------------------------

def _clean_line(line: str) -> str:
    """Markdown line -> plain text: drop heading marks, table pipes, emphasis."""
    line = re.sub(r"^\s*(#+|[-*+]\s|>)\s*", "", line)
    line = line.replace("|", " ").replace("**", "").replace("__", "")
    return " ".join(line.split())


def _lines(text: str) -> list[str]:
    return [c for c in (_clean_line(x) for x in text.splitlines()) if c and not c.startswith("<!--")]


def value_after(lines: list[str], label: str, max_len: int = 120) -> str | None:
    """The text after a label on its line (or on the next line when the label stands alone)."""
    pattern = re.compile(r"(?:^|\b)(?:" + label + r")\s*[:#.\-–]*\s*(.*)$", re.IGNORECASE)
    for i, line in enumerate(lines):
        m = pattern.search(line)
        if not m:
            continue
        value = m.group(1).strip(" :|-–")
        if not value and i + 1 < len(lines):
            value = lines[i + 1]
        if value:
            return value[:max_len]
    return None


def _first_token(value: str | None) -> str | None:
    if not value:
        return None
    token = value.split()[0].strip(",;")
    return token if any(ch.isdigit() for ch in token) else None


def _date_after(lines, label) -> str | None:
    value = value_after(lines, label)
    return parse_date(value) if value else None


def _amount_after(lines: list[str], label: str) -> tuple[float | None, str | None]:
    """The amount on the last line carrying `label` (a total comes after its subtotals)."""
    pattern = re.compile(label, re.IGNORECASE)
    candidates = [i for i, line in enumerate(lines) if pattern.search(line)]
    for i in reversed(candidates):
        for line in (lines[i], lines[i + 1] if i + 1 < len(lines) else ""):
            tail = line[pattern.search(line).end():] if pattern.search(line) else line
            amounts = find_amounts(tail)
            if amounts:
                return amounts[0]["value"], amounts[0]["currency"]
            bare = re.search(_NUM, tail)
            if bare and line is lines[i]:
                return parse_number(bare.group(0)), None
    return None, None


def _dominant_currency(amounts: list[dict]) -> str | None:
    counts: dict[str, int] = {}
    for a in amounts:
        counts[a["currency"]] = counts.get(a["currency"], 0) + 1
    return max(counts, key=counts.get) if counts else None


COMPANY_RE = re.compile(
    r"\b[A-Z][\w&.,' -]{1,60}?\b(?:Ltd\.?|Limited|LLC|L\.L\.C\.|Inc\.?|GmbH|AG|SA|S\.A\.|SARL|BV|B\.V\.|"
    r"plc|PLC|Co\.|Corp\.?|Corporation|Company|KG|Oy|AB|S\.p\.A\.|SpA|SE|LLP|Group)(?![\w])")


def guess_title(lines: list[str], text: str) -> str | None:
    m = re.search(r"^\s*#{1,2}\s+(.+)$", text, re.MULTILINE)
    if m and len(_clean_line(m.group(1))) > 2:
        return _clean_line(m.group(1))[:200]
    for line in lines[:5]:
        if 3 <= len(line) <= 150 and not EMAIL_RE.search(line):
            return line[:200]
    return None


# -- per category -------------------------------------------------------------------------------

def _money_document(lines: list[str], amounts: list[dict], number_label: str, total_label: str,
                     issuer_label: str) -> dict:
    total, currency = _amount_after(lines, total_label)
    issuer = value_after(lines, issuer_label)
    if not issuer:
        company = next((COMPANY_RE.search(l) for l in lines[:15] if COMPANY_RE.search(l)), None)
        issuer = company.group(0).strip() if company else None
    return {
        "number": _first_token(value_after(lines, number_label)),
        "issue_date": _date_after(lines, r"invoice date|date of issue|issue date|issued(?: on)?|date"),
        "total_amount": total,
        "currency": currency or _dominant_currency(amounts),
        "issuer": issuer,
    }


def _invoice(lines, text, amounts):
    fields = _money_document(
        lines, amounts,
        number_label=r"invoice\s*(?:no\.?|number|num\.?|#|id)|inv\.?\s*(?:no\.?|#)|bill\s*(?:no\.?|number)",
        total_label=r"total\s*(?:amount\s*)?due|amount\s*due|balance\s*due|grand\s*total|total\s*payable|invoice\s*total|(?<!sub)(?<!sub-)total",
        issuer_label=r"issued\s*by|seller|supplier|vendor|billed\s*by|from",
    )
    fields["due_date"] = _date_after(lines, r"due\s*date|payment\s*due|due\s*(?:by|on)|pay(?:able)?\s*by")
    return fields


def _receipt(lines, text, amounts):
    return _money_document(
        lines, amounts,
        number_label=r"receipt\s*(?:no\.?|number|#|id)|transaction\s*(?:no\.?|number|#|id)|ticket\s*(?:no\.?|#)",
        total_label=r"total\s*paid|amount\s*paid|grand\s*total|(?<!sub)(?<!sub-)total",
        issuer_label=r"merchant|store|shop",
    )


def _contract(lines, text, amounts):
    flat = " ".join(lines)
    parties = []
    m = re.search(r"\bbetween:?\s+(.{3,120}?)(?:\s*\([^)]*\))?,?\s+and\s+(.{3,120}?)(?:\s*\(|[,.;]|\s+hereinafter|$)",
                  flat, re.IGNORECASE)
    if m:
        parties = [re.sub(r"\s*\(.*$", "", p).strip(" ,.;\"'") for p in m.groups()]
    return {
        "parties": [p for p in parties if p],
        "effective_date": _date_after(lines, r"effective\s*(?:date|as\s*of|from)|commenc\w*\s*(?:on|date)")
        or parse_date(flat[:2000]),
    }


def _resume(lines, text, amounts):
    emails = EMAIL_RE.findall(text)
    name = value_after(lines, r"name")
    if not name:
        heading = guess_title(lines, text)
        name = heading if heading and not re.search(r"resume|curriculum|vitae|\bcv\b", heading, re.I) else (
            lines[1] if len(lines) > 1 else None)
    return {"name": name, "email": emails[0].lower() if emails else None}


def _paper(lines, text, amounts):
    title = guess_title(lines, text)
    authors: list[str] = []
    if title:
        try:
            start = lines.index(title) + 1
        except ValueError:
            start = 1
        for line in lines[start:start + 3]:
            if re.match(r"(?i)abstract", line):
                break
            names = [n.strip(" *,0123456789†‡") for n in re.split(r",|\band\b|;|&", line)]
            names = [n for n in names if re.fullmatch(r"[A-Z][\w.'-]*(?: [A-Z][\w.'-]*){1,3}", n)]
            if names:
                authors = names
                break
    return {"title": title, "authors": authors}


def _letter(lines, text, amounts):
    sender = None
    closing = re.compile(r"^(?:yours (?:sincerely|faithfully|truly)|sincerely(?: yours)?|kind regards|"
                         r"best regards|warm regards|regards|best wishes|respectfully|with best regards),?$",
                         re.IGNORECASE)
    for i, line in enumerate(lines):
        if closing.match(line) and i + 1 < len(lines):
            sender = lines[i + 1]
    return {"date": _date_after(lines, r"date|dated") or parse_date(text[:1500]), "sender": sender}


def _report(lines, text, amounts):
    return {"title": guess_title(lines, text),
            "date": _date_after(lines, r"date|dated|published|as\s*of") or parse_date(text[:3000])}


def _form(lines, text, amounts):
    m = re.search(r"\bForm\s+(?:No\.?\s*|Number\s*)?[:#]?\s*([A-Z]{1,6}[- ]?\d{1,6}[A-Z]?)\b", text)
    return {"title": guess_title(lines, text), "number": f"Form {m.group(1)}" if m else None}


CATEGORY_RULES = {
    "invoice": _invoice, "receipt": _receipt, "contract": _contract, "resume": _resume,
    "scientific_paper": _paper, "letter": _letter, "report": _report, "form": _form,
}


class RulesExtractor:
    name = "rules"

    def extract(self, doc: Document) -> dict:
        text = doc.text or ""
        lines = _lines(text)
        amounts = find_amounts(text)
        rule = CATEGORY_RULES.get(doc.category or "")
        return {
            "title": guess_title(lines, text),
            "dates": find_dates(text),
            "emails": _unique(e.lower() for e in EMAIL_RE.findall(text)),
            "phones": find_phones(text),
            "urls": _unique(URL_RE.findall(text)),
            "amounts": amounts,
            "word_count": len(text.split()),
            "language": doc.language,
            "fields": rule(lines, text, amounts) if rule else {},
        }
