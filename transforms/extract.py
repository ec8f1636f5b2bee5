"""Extract stage: metadata as a JSON object, by rules (the default backend).

Schema (every key always present; values are null or empty when not found):

    title        str | null     first title-like line near the top (a letterhead, labels and
                                reference lines skipped), else the first heading
    dates        [str]          every date found, ISO 8601 (YYYY-MM-DD), in order, unique, <= 20;
                                numeric dates are day first unless the document shows month first
    emails       [str]          lower-cased, unique, <= 20
    phones       [str]          E.164 (+41591234567), unique, <= 20
    urls         [str]          unique, <= 20
    amounts      [{value, currency}]  money amounts with a currency, <= 20
    word_count   int
    language     str | null     ISO 639-1, from the Convert stage
    fields       {..}           per category (below); absent keys mean "not applicable"

    invoice:          number, issue_date, due_date, total_amount, currency, issuer
    receipt:          number, issue_date, total_amount, currency, issuer
    contract:         title, parties [str], effective_date
    resume:           name, email
    scientific_paper: title, authors [str]
    letter:           date, sender
    report:           title, date
    form:             title, number

Dates are ISO strings, amounts are numbers, currencies ISO 4217 codes. Rules are regular
expressions and layout heuristics over the Markdown text (labels such as "Invoice no.", the
letterhead at the top, the name under a letter's closing, the names under a paper's title):
fast (a few milliseconds per document) and predictable. Labels tolerate the usual OCR
misreadings (i/l/1, o/0, a dropped "i"), since scans reach this stage as OCR text.
"""
from __future__ import annotations

import html
import re
from datetime import date, timedelta
from functools import lru_cache

from transforms.records import Document

LIMIT = 20

MONTHS = {m: i + 1 for i, m in enumerate(
    ["january", "february", "march", "april", "may", "june", "july", "august", "september",
     "october", "november", "december"])}
MONTHS = {name[:3]: num for name, num in MONTHS.items()}  # matched by their first three letters
_MONTH = r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sept?(?:ember)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?"

# A numeric date may run into the time in OCR text ("2023-06-0113:57"): _END allows that.
_END = r"(?:\b|(?=\d{2}:\d{2}))"
DATE_RE = re.compile(
    # Year first: "2024-05-11", "2024/05/11" and the dotted "2024.05.11" of Hungary, Korea and China.
    r"\b(?P<iso>(?P<iy>\d{4})(?P<isep>[-/.])(?P<im>\d{1,2})(?P=isep)(?P<id>\d{1,2}))" + _END +
    # Day, month, year: "22/11/2024", and with spaced separators "22 / 11 / 2024" or the Czech and
    # Slovak "5. 3. 2024" (the same separator twice, a space either side or not).
    r"|\b(?P<dmy>(?P<d1>\d{1,2}) ?(?P<sep>[./-]) ?(?P<m1>\d{1,2}) ?(?P=sep) ?(?P<y1>\d{4}))" + _END +
    r"|\b(?P<dmon>(?P<d2>\d{1,2})(?:st|nd|rd|th)?\.?(?: day)?(?: of)?[ -](?P<mon2>" + _MONTH + r")[ ,-]*(?P<y2>\d{4}))\b"
    r"|\b(?P<mond>(?P<mon3>" + _MONTH + r"),? (?P<d3>\d{1,2})(?:st|nd|rd|th)?,? (?P<y3>\d{4}))\b"
    # Chinese, Japanese and Korean: "2024年1月15日", "令和6年1月15日" (a Japanese era), "2024년 1월 15일".
    # Not \b: a CJK character before the digits is a word character too ("発行日2024年...").
    r"|(?<!\d)(?P<cjk>(?:(?P<era>令和|平成|昭和)\s*(?P<ey>\d{1,2}|元)|(?P<cy>\d{4}))\s*[年년]\s*"
    r"(?P<cm>\d{1,2})\s*[月월]\s*(?P<cd>\d{1,2})\s*[日일]?)(?!\d)",
    re.IGNORECASE,
)
# The first year of each Japanese era, less one: 令和1年 (元年) is 2019.
_ERA_YEAR_ZERO = {"令和": 2018, "平成": 1988, "昭和": 1925}
EMAIL_RE = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,24}\b")
URL_RE = re.compile(r"\bhttps?://[^\s<>()\[\]\"'|]+[^\s<>()\[\]\"'|.,;:]")

# Currency signs and the words printed for them. "¥" is also the yuan, "kr" four kroner: the document's
# language decides (_local_currency).
CURRENCY_SYMBOLS = {"€": "EUR", "$": "USD", "£": "GBP", "¥": "JPY", "￥": "JPY", "円": "JPY", "元": "CNY",
                    "US$": "USD", "CHF": "CHF", "Fr.": "CHF", "SFr.": "CHF", "CA$": "CAD", "C$": "CAD",
                    "A$": "AUD", "AU$": "AUD", "HK$": "HKD", "S$": "SGD", "NZ$": "NZD", "NT$": "TWD",
                    "R$": "BRL", "₹": "INR", "Rs.": "INR", "Rs": "INR", "₩": "KRW", "₽": "RUB", "руб.": "RUB",
                    "руб": "RUB", "zł": "PLN", "Kč": "CZK", "₫": "VND", "₺": "TRY", "₪": "ILS", "฿": "THB",
                    "₱": "PHP", "₴": "UAH", "kr": "SEK", "kr.": "SEK", "RMB": "CNY", "RM": "MYR", "Rp": "IDR",
                    "Rp.": "IDR", "₦": "NGN", "Ksh": "KES",
                    # a till's "USD$ 29.01": the code and the sign together
                    **{f"{code}$": code for code in ("USD", "CAD", "AUD", "NZD", "HKD", "SGD", "MXN")}}
CURRENCY_CODES = ("EUR", "USD", "GBP", "CHF", "JPY", "CAD", "AUD", "SEK", "NOK", "DKK", "PLN",
                  "CZK", "CNY", "INR", "BRL", "MXN", "RUB", "KRW", "HKD", "SGD", "NZD", "ZAR", "HUF", "RON",
                  "BGN", "ILS", "AED", "SAR", "QAR", "THB", "IDR", "MYR", "VND", "TWD", "ARS", "CLP",
                  "EGP", "NGN", "KES", "PKR", "LKR", "BDT", "UAH", "ISK", "RMB")   # not PEN, COP, TRY: words
_CUR_SIGNS = r"(?:USD|CAD|AUD|NZD|HKD|SGD|MXN)\$|US\$|CA\$|AU\$|HK\$|NZ\$|NT\$|C\$|A\$|S\$|R\$|[€$£¥￥₹₩₽₫₺₪฿₱₴₦円元]"
# Written with letters: not the end of a longer word ("Hours 40" holds no rupees).
_CUR_WORDS = (r"(?<![^\W\d_])(?:SFr\.|Fr\.|Rs\.?|руб\.?|zł|Kč|kr\.?|RM|Rp\.?|Ksh|" + "|".join(CURRENCY_CODES) + r")")
_CUR = r"(?:" + _CUR_SIGNS + "|" + _CUR_WORDS + r")"
# OCR may add a space after a thousands comma: "$9, 194.59".
_NUM = r"(?:\d{1,3}(?:(?:[,.' ]|, )\d{3})+|\d+)(?:[.,]\d{1,2})?"
AMOUNT_RE = re.compile(
    r"(?P<c1>" + _CUR + r")\s?(?P<n1>" + _NUM + r")(?!\d)|(?<![\d.,])(?P<n2>" + _NUM + r")\s?(?P<c2>" + _CUR + r")(?![A-Za-z])")
# A currency named on its own, e.g. in a column header "Price (CHF)": the fallback currency of a
# document whose amounts are bare numbers.
CURRENCY_MENTION_RE = re.compile(r"(?<![A-Za-z])(" + "|".join(CURRENCY_CODES) + r")(?![A-Za-z])|[€£¥₹₩₽₫₺₪฿₱₴]")


# -- value parsers -----------------------------------------------------------------------------

def _iso(year: int, month: int, day: int) -> str | None:
    try:
        return date(year, month, day).isoformat()
    except ValueError:
        return None


def _date_from_match(m: re.Match, month_first: bool = False) -> str | None:
    if m.group("iso"):
        return _iso(int(m.group("iy")), int(m.group("im")), int(m.group("id")))
    if m.group("dmy"):
        day, month = int(m.group("d1")), int(m.group("m1"))
        if month > 12 >= day or (month_first and day <= 12):  # US style, certain or per document
            day, month = month, day
        return _iso(int(m.group("y1")), month, day)
    if m.group("dmon"):
        return _iso(int(m.group("y2")), _month(m.group("mon2")), int(m.group("d2")))
    if m.group("cjk"):
        if m.group("era"):
            year = _ERA_YEAR_ZERO[m.group("era")] + (1 if m.group("ey") == "元" else int(m.group("ey")))
        else:
            year = int(m.group("cy"))
        return _iso(year, int(m.group("cm")), int(m.group("cd")))
    return _iso(int(m.group("y3")), _month(m.group("mon3")), int(m.group("d3")))


def _month(token: str) -> int:
    return MONTHS[token.lower()[:3]]


@lru_cache(maxsize=4)   # asked by several field rules about the same document
def numeric_dates_month_first(text: str) -> bool:
    """True when the document writes numeric dates month first (03/25/2024): decided by any date
    whose second number cannot be a month. Day first, the European and ISO habit, is the default."""
    for m in DATE_RE.finditer(text):
        if m.group("dmy") and int(m.group("m1")) > 12 >= int(m.group("d1")):
            return True
    return False


def parse_date(text: str, month_first: bool = False) -> str | None:
    """The first date in `text`, as ISO 8601."""
    for m in DATE_RE.finditer(text):
        iso = _date_from_match(m, month_first)
        if iso:
            return iso
    return None


def find_dates(text: str) -> list[str]:
    month_first = numeric_dates_month_first(text)
    return _unique(iso for iso in (_date_from_match(m, month_first) for m in DATE_RE.finditer(text)) if iso)


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


_PLUS_DIGIT_RE = re.compile(r"\+\s?\(?\d")


def find_phones(text: str) -> list[str]:
    import phonenumbers

    found = []
    # Region None: only numbers written in international form (+..) are certain; a default region
    # would turn order numbers into phone numbers. So only lines with a "+" need the (slow) matcher.
    candidates = "\n".join(line for line in text[:20000].splitlines() if _PLUS_DIGIT_RE.search(line))
    for match in phonenumbers.PhoneNumberMatcher(candidates, None):
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


# -- text preparation ---------------------------------------------------------------------------

# docling escapes Markdown specials ("maximilian\_kaiser") and HTML-escapes "&" ("Lee &amp; Co").
_MD_ESCAPE_RE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|<>&~])")
_RULE_RE = re.compile(r"^[\s|:=_*~-]*$")        # table separators, "=====" and "-----" underlines


def normalise_text(text: str) -> str:
    return html.unescape(_MD_ESCAPE_RE.sub(r"\1", text))


_TABLE_ROW = re.compile(r"^\s*\|.*\|\s*$")
_TABLE_SEPARATOR = re.compile(r"^\s*\|(?:\s*:?-{3,}:?\s*\|)+\s*$")


def _cells(row: str) -> list[str]:
    return [" ".join(c.replace("**", "").split()) for c in row.strip().strip("|").split("|")]


def horizontal_key_values(text: str) -> str:
    """A table of one header row of labels and one row of values ("| Invoice No | Due By | Total Due |"
    over "| 12345 | May 30th, 2024 | $1,320.00 |", an HTML invoice's summary box) written as
    "label: value" lines, as a label and its value are written anywhere else. Header cells with a
    digit are values themselves (a two-column list of amounts): such tables are left alone."""
    lines = text.split("\n")
    out, i = [], 0
    while i < len(lines):
        if (i + 2 < len(lines) and _TABLE_ROW.match(lines[i]) and _TABLE_SEPARATOR.match(lines[i + 1])
                and _TABLE_ROW.match(lines[i + 2]) and not (i + 3 < len(lines) and _TABLE_ROW.match(lines[i + 3]))):
            labels, values = _cells(lines[i]), _cells(lines[i + 2])
            if (len(labels) >= 2 and len(labels) == len(values)
                    and all(label and not any(ch.isdigit() for ch in label) for label in labels)):
                out.extend(f"{label}: {value}" for label, value in zip(labels, values) if value)
                i += 3
                continue
        out.append(lines[i])
        i += 1
    return "\n".join(out)


def _clean_line(line: str) -> str:
    """Markdown line -> plain text: drop heading marks, list bullets, table pipes, emphasis."""
    line = re.sub(r"^\s*(#+|[-*+•]\s|>)\s*", "", line)
    line = re.sub(r"</?(?:sup|sub|b|i|em|strong)>", "", line)
    line = line.replace("|", " ").replace("**", "").replace("__", "")
    return " ".join(line.split())


# A wide gap inside a line: three spaces, or an ideographic one (how Chinese and Japanese text sets
# fields apart: "发票代码：3300　　发票号码：01234567").
_WIDE_GAP = re.compile(r" {3,}|\t+|\u3000+")
# A label in bold followed by its value, several to a line: how an HTML e-mail or page that sets its
# fields in <strong> reads once converted ("**Order ID** 2392 **Shipping Address** Captain Price").
_BOLD_FIELD = re.compile(r"\*\*[^*\n]{1,40}?\*\*\s*[^*\s]")


def _split_fields(line: str) -> list[str]:
    """A line of several "label: value" fields set apart by wide gaps, as plain-text and fixed-layout
    invoices print them, becomes one line per field, so that each label opens its line; so does each
    cell of a table row that holds a label and its value."""
    if line.lstrip().startswith("|"):
        # A table cell that is a box holding its label and value ("| Vencimento  19/10/2009 |", as
        # forms, boletos and HTML invoices draw fields) is also a line of its own after the row.
        boxes = []
        for cell in line.strip().strip("|").split("|"):
            cell = cell.strip()
            if re.search(r"[^\W\d_]\S*  +\S", cell) and cell not in boxes:
                boxes.append(cell)
        return [line] + boxes
    parts = [part for part in _WIDE_GAP.split(line) if part.strip()]
    if sum(1 for part in parts if re.search(r"\S\s*[:：]", part)) >= 2:
        return parts
    fields = [m.start() for m in _BOLD_FIELD.finditer(line)]
    if len(fields) >= 2 and fields[0] == 0:   # a line that opens with a label, not bold words in prose
        return [part for part in (line[a:b] for a, b in zip([0] + fields, fields + [len(line)])) if part.strip()]
    return [line]


def _lines(text: str) -> list[str]:
    return [c for c in (_clean_line(x) for raw in text.splitlines() for x in _split_fields(raw))
            if c and not c.startswith("<!--") and not _RULE_RE.match(c)]


def _headings(text: str) -> list[str]:
    """Markdown headings in order: ATX ("# Title") and setext (a line underlined by === or ---,
    which is how plain-text documents mark their title)."""
    out = []
    raw = text.splitlines()
    for i, line in enumerate(raw):
        if re.match(r"^\s*#{1,6}\s+\S", line):
            out.append(_clean_line(line))
        elif (i + 1 < len(raw) and line.strip() and not _RULE_RE.match(line)
              and re.match(r"^\s*(?:={3,}|-{3,})\s*$", raw[i + 1])):
            out.append(_clean_line(line))
    return [h for h in out if h]


# -- label-driven field finders -----------------------------------------------------------------

@lru_cache(maxsize=None)
def _ocr_tolerant(label: str) -> str:
    """Widen the letters OCR confuses in a label regex: i <-> l <-> 1 (and a dropped i, as in
    "Involce", "Emal", "Publshed"), o <-> 0. Escapes and character classes are left alone."""
    out, i, in_class = [], 0, False
    while i < len(label):
        ch = label[i]
        if ch == "\\":
            out.append(label[i:i + 2])
            i += 2
            continue
        if ch == "[":
            in_class = True
        elif ch == "]":
            in_class = False
        elif not in_class and ch in "iI":
            ch = "[il1|!]?"
        elif not in_class and ch in "lL":
            ch = "[li1|I]"
        elif not in_class and ch in "oO":
            ch = "[o0]"
        out.append(ch)
        i += 1
    return "".join(out)


@lru_cache(maxsize=None)
def _label_re(label: str, anchored: bool) -> re.Pattern:
    start = r"^(?:\d+[.)]\s*)?" if anchored else r"(?:^|(?<=\W))"
    # The label must end at a word boundary ("Date" is not "Dated"), unless it ends in a mark
    # ("Receipt #TXN123").
    return re.compile(start + r"(?:" + _ocr_tolerant(label) + r")(?:(?<![a-z])|(?![a-z]))\s*[:：#.\-–]*\s*(.*)$",
                      re.IGNORECASE)


def label_values(lines: list[str], label: str, anchored: bool = True):
    """Yield (line index, value) for each line carrying `label`: the text after the label, or
    the next line when the label stands alone (PDF and HTML layouts put values under labels)."""
    pattern = _label_re(label, anchored)
    for i, line in enumerate(lines):
        m = pattern.search(line)
        if not m:
            continue
        value = m.group(1).strip(" :|-–")
        if value:
            yield i, value
        elif i + 1 < len(lines):
            yield i + 1, lines[i + 1]


def _with_next(lines: list[str], i: int, value: str) -> str:
    """A value that PDF text extraction wrapped onto the next line ("December 5," / "2024")."""
    return f"{value} {lines[i + 1]}" if i + 1 < len(lines) and len(lines[i + 1]) <= 20 else value


def value_after(lines: list[str], label: str, max_len: int = 120, accept=None,
                anchored: bool = True) -> str | None:
    """The first value after `label` that `accept` (if given) agrees with."""
    for _, value in label_values(lines, label, anchored):
        value = value[:max_len]
        if accept is None or accept(value):
            return value
    return None


def _date_after(lines, label, month_first=False, anchored=True) -> str | None:
    for i, value in label_values(lines, label, anchored):
        iso = parse_date(value, month_first) or parse_date(_with_next(lines, i, value), month_first)
        if iso:
            return iso
    return None


# -- names and titles ---------------------------------------------------------------------------

# Lines above a paper's title that are not the title: preprint and journal banners.
_BANNER = re.compile(r"^(?:arxiv:|doi\b|preprint|working paper|accepted|submitted|published|proceedings|"
                     r"journal|vol\.|volume|under review|draft|technical report|in press|https?:|©|"
                     r"(?:strictly\s+)?confidential\b|for internal use)"
                     r"|\bVol(?:ume)?\.?\s*\d+.*\b(?:19|20)\d\d\b", re.IGNORECASE)
_FORM_NO_RE = re.compile(r"\bF[o0]rm\s+(?:No\.?\s*|Number\s*)?[:#]?\s*([A-Z]{1,6}[- ]?\d{1,6}[A-Z]?)\b")

# Legal forms that end a company name, across the usual jurisdictions.
LEGAL_FORMS = (r"(?:Ltd\.?|Limited|LLC|L\.L\.C\.|Inc\.?|GmbH|AG|SA|S\.A\.|SARL|Sàrl|Sarl|S\.à r\.l\.|BV|B\.V\.|"
               r"N\.V\.|NV|K\.K\.|KK|plc|PLC|Co\.|Corp\.?|Corporation|Company|KG|Oy|AB|S\.p\.A\.|SpA|S\.r\.l\.|Srl|"
               r"SAS|S\.A\.S\.|S\.L\.|SL|SE|LLP|LP|Pty|Pte|Group|ApS|A/S|AS|ASA|Sp\. z o\.o\.|s\.r\.o\.|UG|OHG|GbR|"
               r"e\.V\.|eG|KGaA|Ltda\.?|S\.L\.U\.|SRL|BVBA|Lda\.?)")
COMPANY_RE = re.compile(r"\b[A-Z][\w&.,' -]{1,60}?\b" + LEGAL_FORMS + r"(?![\w])")
# Chinese, Japanese and Korean legal forms stand before or after the name with no space:
# "株式会社サンプル", "サンプル株式会社", "北京某某科技有限公司", "주식회사 샘플".
_CJK_LEGAL_FORMS = r"(?:株式会社|有限会社|合同会社|[(（]株[)）]|有限公司|有限责任公司|股份有限公司|주식회사|[(（]주[)）])"
CJK_COMPANY_RE = re.compile(r"^(?:" + _CJK_LEGAL_FORMS + r"\s*[^\s:：、。,]{1,30}|[^\s:：、。,]{1,30}?\s*"
                            + _CJK_LEGAL_FORMS + r")$")
# The honorifics a Japanese document puts after its addressee: "株式会社クライアント 御中", "山田太郎 様".
_ADDRESSED_TO = re.compile(r"^(?P<name>\S.{0,40}?)\s*(?:御中|様|殿)$")
# Words that make a capitalised phrase an organisation or place rather than a person.
ORG_WORDS = re.compile(
    r"\b(?:University|Universit\w+|Institute|Institut|Department|Dept|School|College|Faculty|Laborator\w*|"
    r"Lab|Labs|Research|Centre|Center|Hospital|Clinic|Academy|Foundation|Society|Council|Ministry|"
    r"Agency|Office|Bank|Group|Team|Services|Association|Club|Committee|Board|Division|Unit|Inc|Ltd|"
    r"LLC|GmbH|Corp|Corporation|Company|Street|Road|Avenue|Str|Strasse|Straße)\b")
_PARTICLES = r"(?:van|von|de|der|den|del|della|di|da|dos|das|du|la|le|ter|ten|zu|y|bin|ibn|al|el)"
# Latin capitals and small letters, accented ones included (Émile, Søren, Łukasz, Żółć).
_UPPER, _LOWER = "A-ZÀ-ÖØ-ÞĀ-ſ", "a-zß-öø-ÿĀ-ſ"
# Anna, O'Brien, Jean-Luc, J.
_NAME_WORD = rf"(?:[{_UPPER}][{_LOWER}]*(?:['’-][{_UPPER}{_LOWER}]+)*\.?|[{_UPPER}]\.)"
PERSON_RE = re.compile(
    r"(?:(?:Dr|Prof|Mr|Mrs|Ms|Mx)\.?\s+)?" + r"(?:" + _PARTICLES + r"\s+)?" + _NAME_WORD
    + r"(?:\s+(?:" + _PARTICLES + r"\s+)*" + _NAME_WORD + r"){1,3}")
_DOC_TYPE_RE = re.compile(_ocr_tolerant(   # "Commercial Invoice", OCR'd as "Commerclal Involce"
    r"^(?:(?:commercial|tax|sales|proforma|pro-forma|vat|final|credit|payment|cash)\s+)?(?:invoice|receipt|bill|"
    r"credit note|quotation|statement)\b"
    # the same in other languages: "RECHNUNG" tops a German invoice, not its issuer's name
    r"|^(?:rechnung|gutschrift|quittung|kassenbon|lieferschein|angebot|facture|avoir|re[çc]u|devis|factura|recibo|"
    r"presupuesto|fattura|ricevuta|preventivo|factuur|offerte|fatura|faktura|paragon|[úu][čc]tenka|kvitto|"
    r"kvittering|lasku|kuitti|сч[её]т|квитанция|товарный\s+чек)\b"
    # Chinese, Japanese, Korean titles: "請求書" tops a Japanese invoice (no \b: no spaces between words)
    r"|^(?:請求書|領収書|領収証|納品書|見積書|御請求書|发票|發票|收据|收據|增值税专用发票|영수증|청구서|세금계산서)"
    r"\s*(?:[（(].{0,12}[)）])?\s*$"), re.IGNORECASE)
# A shop's banner that names the document after the shop: "WI FANSHOP - RECHNUNG", "ACME | Invoice".
_DOC_TYPE_AFTER_NAME = re.compile(
    r"\s+[-–|:·]\s+(?:(?:commercial|tax|sales)\s+)?(?:invoice|receipt|bill|rechnung|quittung|kassenbon|facture|"
    r"re[çc]u|factura|recibo|fattura|ricevuta|factuur|kwitantie|fatura|faktura|paragon|kvitto|lasku)\s*$",
    re.IGNORECASE)


def is_person_name(text: str) -> bool:
    """"Anna Müller", "Erik X. Andersson", "Pierre O'Brien", "Tom van Dijk": 2-4 capitalised
    words (particles allowed), no organisation word."""
    text = text.strip()
    return bool(PERSON_RE.fullmatch(text)) and not ORG_WORDS.search(text) and not COMPANY_RE.search(text)


def _strip_name_marks(piece: str) -> str:
    """Author lists mark affiliations and corresponding authors: "Anna Berg1,2*", "Li Wang†"."""
    return piece.strip(" *,;0123456789†‡§¶#^'’\"").strip()


# Nouns that name a kind of document: a line with one is a title even when it starts with a
# company name ("Acme AG Sustainability Report 2024").
TITLE_NOUNS = re.compile(
    r"\b(?:report|review|agreement|contract|form|application|request|notification|notice|mandate|"
    r"analysis|plan|policy|proposal|study|survey|statement|minutes|assessment|audit|evaluation|"
    r"declaration|claim|registration|certificate|memo|memorandum|guide|manual|specification|overview|"
    r"update|brief|briefing|questionnaire|checklist|consent|authori[sz]ation|enrol?ment|order|lease|"
    r"deed|terms|charter|licen[cs]e|paper)s?\b", re.IGNORECASE)
_REFERENCE_LINE = re.compile(r"\b(?:ref(?:erence)?|no|number|id|rev|version)\.?:?\s*[A-Z0-9][\w/.-]*\d[\w/.-]*\)?$",
                             re.IGNORECASE)


def _is_letterhead(line: str) -> bool:
    """A sender's name above the title: "Weber & Schmidt AG - People Team", "City of Bern -
    Citizens' Office", "Novafield Sports Club"."""
    if TITLE_NOUNS.search(line) and not re.search(r"\s[-–|·]\s", line):
        return False
    return bool(COMPANY_RE.search(line) or ORG_WORDS.search(line))


def _is_label_line(line: str) -> bool:
    """"Date: 3 May 2024", "Prepared by: ..." - a field, not a heading. A title may have a colon
    too ("Incident Review: Email Platform Outage"): capitalised words on both sides."""
    m = re.match(r"^([\w .()/'*-]{1,40})(?::(?:\s|$)|：)(.*)$", line)   # "：" the full-width colon of CJK text
    if not m:
        return False
    head, tail = m.group(1).split(), m.group(2).split()
    is_title = (len(head) >= 2 and all(w[:1].isupper() for w in head) and len(tail) >= 2
                and tail[0][:1].isupper() and not DATE_RE.search(m.group(2)))
    return not is_title


def _looks_like_title(line: str) -> bool:
    if not 3 <= len(line) <= 150 or EMAIL_RE.search(line) or URL_RE.search(line):
        return False
    if _is_label_line(line) or _BANNER.search(line) or re.match(r"^page \d", line, re.IGNORECASE):
        return False
    if _REFERENCE_LINE.search(line) or _FORM_NO_RE.match(line):     # "Contract ref. HN-8969-662"
        return False
    if line.endswith(".") and len(line.split()) >= 4:               # a sentence
        return False
    if DATE_RE.search(line):                                        # "Prepared on 9 May 2024"
        return False
    letters = sum(ch.isalpha() for ch in line)
    return letters >= 3 and letters >= len(line) / 2


_OPEN_END = re.compile(r"(?:\b(?:of|in|for|with|and|or|the|a|an|on|to|from|via|by|under|at|towards?|through)|[:–-])$",
                       re.IGNORECASE)


def _wrapped_title(line: str, following: list[str]) -> bool:
    """PDF text wraps a long title in its large font: "Customer Portal Relaunch - Monthly Status"
    / "Report". The next line continues the title when the title stops mid-phrase, or when it is a
    short title-like fragment under a long line that is not followed by a paragraph (which would
    make it a section heading)."""
    if not following or not _looks_like_title(following[0]) or _is_letterhead(following[0]):
        return False
    if _OPEN_END.search(line):
        return True
    after = following[1] if len(following) > 1 else ""
    return (len(line) >= 35 and len(following[0].split()) <= 3 and following[0][:1].isupper()
            and len(after) < 60 and not DATE_RE.match(after))   # "As of" / "12 May 2024" is a field


def guess_title(lines: list[str], text: str) -> str | None:
    """The first line near the top that reads like a title (headings and plain lines alike: PDF
    text has no heading marks), skipping a letterhead above it; else the first heading."""
    headings = _headings(text)
    for i, line in enumerate(lines[:10]):
        label_above_value = i + 1 < len(lines) and len(line.split()) <= 3 and DATE_RE.match(lines[i + 1])
        if _looks_like_title(line) and not _is_letterhead(line) and not label_above_value:
            if line not in headings and _wrapped_title(line, lines[i + 1:i + 3]):
                line = f"{line} {lines[i + 1]}"
            return line[:200]
    headings = [h for h in headings if _looks_like_title(h)]
    if headings:
        return headings[0][:200]
    return next((line[:200] for line in lines[:5] if _looks_like_title(line)), None)


# -- where a field came from ----------------------------------------------------------------------

# How sure a value is, by how it was found: an e-invoice's XML states it; a value beside its label
# ("Invoice no.: 4711") is usually right; one inferred from the page's layout (the name at the top
# is the issuer) less often; a bare pattern least. These are priors, not calibrated probabilities:
# they order the sources so that a search filter or a reviewer can tell a fact from a guess.
SOURCE_CONFIDENCE = {"e-invoice": 1.0, "correction": 1.0, "key-value": 0.8, "table": 0.75, "model": 0.7,
                     "layout": 0.6, "pattern": 0.5, "derived": 0.5}


class Found(dict):
    """A category's fields (a plain dict to every caller) plus where each value came from."""

    def __init__(self):
        super().__init__()
        self.sources: dict[str, str] = {}

    def put(self, name: str, value, source: str | None) -> None:
        self[name] = value
        if value not in (None, [], "") and source:
            self.sources[name] = source


def field_sources(fields: dict) -> dict:
    """{field: {"source", "confidence"}} for every field with a value; a rule that does not say
    where a value came from found it by pattern."""
    known = getattr(fields, "sources", {})
    out = {}
    for name, value in fields.items():
        if value in (None, [], ""):
            continue
        source = known.get(name, "pattern")
        out[name] = {"source": source, "confidence": SOURCE_CONFIDENCE.get(source, 0.5)}
    return out


# -- dates written in any of the usual ways -------------------------------------------------------

# "26.10.22", "10/18/18": a two-digit year, only read where a label says a date follows.
_SHORT_DATE_RE = re.compile(r"\b(\d{1,2})([./-])(\d{1,2})\2(\d{2})\b(?![./-]?\d)")
# A day, a month written as a word in any language, a year: "11. Juli 2014", "3 mars 2021",
# "12 de marzo de 2023", "Sep 24, 2019". The word is checked by dateparser.
_WORD_DATE_RE = re.compile(r"\b\d{1,2}\.?\s+(?:de\s+)?[^\W\d_]{3,12}\.?,?\s+(?:de\s+)?\d{4}\b"
                           r"|\b[^\W\d_]{3,12}\.?,?\s+\d{1,2}(?:st|nd|rd|th)?\s?,?\s+\d{4}\b")
DATE_LANGUAGES = ("en", "de", "fr", "nl", "es", "it", "pt")
# Two-letter US state codes after a city, before a ZIP code: "Redmond, WA 98052"; or the state's
# name, as tills print it: "Palo Alto California 94301".
_US_STATES = ("Alabama|Alaska|Arizona|Arkansas|California|Colorado|Connecticut|Delaware|Florida|Georgia|Hawaii|"
              "Idaho|Illinois|Indiana|Iowa|Kansas|Kentucky|Louisiana|Maine|Maryland|Massachusetts|Michigan|"
              "Minnesota|Mississippi|Missouri|Montana|Nebraska|Nevada|New Hampshire|New Jersey|New Mexico|"
              "New York|North Carolina|North Dakota|Ohio|Oklahoma|Oregon|Pennsylvania|Rhode Island|"
              "South Carolina|South Dakota|Tennessee|Texas|Utah|Vermont|Virginia|Washington|West Virginia|"
              "Wisconsin|Wyoming")
_US_ADDRESS_RE = re.compile(
    r",\s*(?:A[KLRZ]|C[AOT]|D[CE]|FL|GA|HI|I[ADLN]|K[SY]|LA|M[ADEINOST]|N[CDEHJMVY]|O[HKR]|PA|RI|S[CD]|"
    r"T[NX]|UT|V[AT]|W[AIVY]),?\s+\d{5}(?:-\d{4})?\b"
    r"|\b(?:" + _US_STATES + r"),?\s+\d{5}(?:-\d{4})?\b")


# A North American phone number as it is written there ("+1 (650) 555-0111", "(212) 555-0199",
# "+1 650 555 0111"): the page is from where dates are written month first.
_NANP_PHONE_RE = re.compile(r"(?:\+1[\s.-]?)?\(\d{3}\)\s?\d{3}-\d{4}\b|\+1[\s.-]\d{3}[\s.-]\d{3}[\s.-]\d{4}\b")


@lru_cache(maxsize=4)
def date_order_month_first(text: str) -> bool:
    """Numeric dates month first? A date that can only be read one way decides (03/25/2024 or
    25/03/2024); without one, a US address or a North American phone number on the page says month
    first; else day first, the habit of most of the world."""
    for m in DATE_RE.finditer(text):
        if m.group("dmy"):
            first, second = int(m.group("d1")), int(m.group("m1"))
            if first > 12 >= second:
                return False
            if second > 12 >= first:
                return True
    for m in _SHORT_DATE_RE.finditer(text):
        first, second = int(m.group(1)), int(m.group(3))
        if first > 12 >= second:
            return False
        if second > 12 >= first:
            return True
    return bool(_US_ADDRESS_RE.search(text[:5000]) or _NANP_PHONE_RE.search(text[:5000]))


def _short_year_date(value: str, month_first: bool) -> str | None:
    m = _SHORT_DATE_RE.search(value)
    if not m:
        return None
    day, month, year = int(m.group(1)), int(m.group(3)), 2000 + int(m.group(4))
    if month_first:
        day, month = month, day
    return _iso(year, month, day)


@lru_cache(maxsize=1024)
def _word_date(candidate: str, language: str | None, month_first: bool) -> str | None:
    import dateparser

    # The document's language first (one language parses ~10x faster than seven); then all.
    tries = [[language, "en"]] if language in DATE_LANGUAGES and language != "en" else []
    tries.append(list(DATE_LANGUAGES))
    settings = {"DATE_ORDER": "MDY" if month_first else "DMY", "REQUIRE_PARTS": ["day", "month", "year"],
                "PREFER_DAY_OF_MONTH": "first"}
    for languages in tries:
        try:
            parsed = dateparser.parse(candidate, languages=languages, settings=settings)
        except Exception:   # dateparser raises on some odd inputs rather than answering None
            parsed = None
        if parsed is not None and 1900 <= parsed.year <= 2100:
            return parsed.date().isoformat()
    return None


def read_date(value: str, month_first: bool = False, language: str | None = None) -> str | None:
    """The first date in a short value (a label's value), in any of the usual forms and languages."""
    value = value[:80]
    iso = parse_date(value, month_first)
    if iso:
        return iso
    m = _WORD_DATE_RE.search(value)
    if m:
        iso = _word_date(m.group(0), language, month_first)
        if iso:
            return iso
    return _short_year_date(value, month_first)


def _last_dated_value(lines, label, month_first, language) -> str | None:
    """The latest date after any `label`: of "Zahlbar bis 29.01.2026 3% Skonto" and "Zahlbar bis
    14.02.2026 ohne Abzug", the date the whole amount is due (the earlier is a discount's)."""
    dates = [iso for i, value in label_values(lines, label)
             for iso in [_date_of_value(lines, i, value, month_first, language)] if iso]
    return max(dates) if dates else None


def _date_of_value(lines, i, value, month_first, language) -> str | None:
    """The date in a label's value at line i, or in it joined with a wrapped next line."""
    return (read_date(value, month_first, language)
            or read_date(_with_next(lines, i, value), month_first, language))


def _dated_value(lines, label, month_first, language, anchored=True, stop=None) -> str | None:
    """The first date after `label`; `stop` (a pattern) ends the value where another label begins."""
    for i, value in label_values(lines, label, anchored):
        if stop is not None:
            value = stop.split(value, maxsplit=1)[0]
        iso = _date_of_value(lines, i, value, month_first, language)
        if iso:
            return iso
    return None


# -- money documents (invoice, receipt) ---------------------------------------------------------

# Labels of the grand total (tax included), strongest first; then a bare "Total"; then what is
# left to pay, which differs from the total when something was paid before (a deposit, a
# previous balance): the invoice's total is its grand total.
_GRAND_TOTAL = (r"grand\s*total|invoice\s*total|total\s*invoice\s*(?:value|amount)|total\s*amount|final\s*amount|total\s*\(?incl\w*|total\s*(?:ttc|gross|brutto)|"
                r"total\s*de\s*la\s*factura|montant\s*(?:total\s*)?(?:ttc|toutes\s*taxes)|total\s*ttc|"
                r"gesamtbetrag|gesamtsumme|bruttosumme|bruttobetrag|rechnungssumme\s*brutto|rechnungsbetrag|"
                r"endbetrag|endsumme|summe\s*brutto|totaalbedrag|totaal\s*incl\w*|importe\s*total|"
                r"totale\s*(?:fattura|documento|complessivo)|importo\s*totale|valor\s*total|"
                # a Brazilian boleto's amount (a layout the banks' federation sets)
                r"valor\s*(?:do\s*)?documento|\(=\)\s*valor\s*cobrado|"
                r"nale[żz]no[śs][ćc]\s*og[óo][łl]em|warto[śs][ćc]\s*brutto|celkem\s*k\s*[úu]hrad[ěe]|"
                r"celkem\s*(?:s|v[čc]etn[ěe])\s*dph|celkov[áa]\s*[čc]\w*|"
                r"summa\s*att\s*betala|totalbelopp|i\s*alt\s*inkl\w*|totalt\s*inkl\w*|loppusumma|yhteens[äa]\s*(?:eur|€)?|"
                r"всего\s*к\s*оплате|итого\s*к\s*оплате|合計金額|ご請求金額|総額|价税合计|合计金额")
_PLAIN_TOTAL = r"(?<![\w-])(?:total|summe|gesamt|totaal|totale|montant|razem|celkem|totalt|summa|итого|合計|合计)"
_DUE_TOTAL = (r"tot\w*\s*(?:amount\s*)?due|amount\s*due|balance\s*due|total\s*payable|amount\s*payable|"
              r"total\s*to\s*pay|zahlbetrag|zu\s*zahlen|net\s*[àa]\s*payer|reste\s*[àa]\s*payer|"
              r"te\s*betalen|a\s*pagar|da\s*pagare|amount\s*paid|total\s*paid|pay[ée]|bezahlt|"
              r"saldo\s*(?:adeudado|pendiente|a\s*pagar)|importe\s*adeudado|solde\s*d[ûu]|"
              r"importo\s*dovuto|montante\s*devido|valor\s*devido|"
              r"do\s*zap[łl]aty|k\s*[úu]hrad[ěe]|att\s*betala|at\s*betale|[åa]\s*betale|maksettava|к\s*оплате")
# Headers of an item table's columns: a "Total" beside or under one heads the column of line totals.
_COLUMN_HEADER = r"description|d[ée]signation|bezeichnung|beschreibung|descripci[óo]n|descrizione|omschrijving"
_TOTAL_EXCLUDE = re.compile(
    r"sub-?\s?total|zwischensumme|sous-?\s?total|subtotaal|parcial|parziale|base\s*imponi|"
    r"before tax|excl|net amount|total net|net total|"
    r"netto|\bnet\b|\bht\b|w/o|without|ohne|tax\b.*%|items|quantity|qty|number of|units|discount|"
    r"paid so far|already paid|deposit|points|positionssumme|zuschl(?:ä|ae|a)ge|abschl(?:ä|ae|a)ge|" + _COLUMN_HEADER,
    re.IGNORECASE)
# "Total tax", "VAT total": the tax, not the total (checked with the label itself).
_TAX_TOTAL = re.compile(r"total\s*(?:tax(?:es)?|vat|mwst|ust|tva|iva|btw|impuestos?|imposte|taxes|steuern?)\b|"
                        r"(?:tax|vat|mwst|tva|iva|btw)\s*total",
                        re.IGNORECASE)
# A bare "Total" that says "due"/"paid" is what is left to pay: the last tier.
_CJK_CHAR = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]")
_PLAIN_TOTAL_EXCLUDE = re.compile(r"total\s*(?:due|payable|to\s*pay|paid)", re.IGNORECASE)
_AMOUNT_ONLY = re.compile(r"^\s*[:=]?\s*(?:" + _CUR + r"\s?)?-?" + _NUM + r"(?:\s?" + _CUR + r")?\s*$")
_CENTS_RE = re.compile(r"\d[.,]\d{2}(?!\d)")


# A number standing alone, without a currency: not part of a word, a date or a longer number.
_BARE_NUMBER = re.compile(r"(?<![\w.,])" + _NUM + r"(?![\w.,]*\d)")


def _amount_in(text: str, strict: bool) -> tuple[float | None, str | None]:
    """The amount in a label's value. `strict` (a bare "Total" label, which also heads columns and
    counts "Total points: 3,247"): only an amount with a currency or with cents."""
    amounts = find_amounts(text)
    if amounts:
        return amounts[0]["value"], amounts[0]["currency"]
    # "TOTAL AMOUNT DUE ON August 3, 2014": the year is not the amount
    bare = _BARE_NUMBER.findall(_WORD_DATE_RE.sub(" ", DATE_RE.sub(" ", text)))
    if not bare or (strict and not _CENTS_RE.search(bare[-1])):
        return None, None
    return parse_number(bare[-1]), None


def _amount_below(lines: list[str], i: int, strict: bool) -> tuple[float | None, str | None]:
    """An amount alone on the line(s) under its label; PDF layouts may even split the currency
    from the number ("GBP" / "7,890.31")."""
    for joined in (lines[i:i + 1], lines[i:i + 2]):
        text = " ".join(joined)
        if joined and _AMOUNT_ONLY.match(text):
            value, currency = _amount_in(text, strict)
            if value is not None and currency is None and len(joined) == 1 and i + 1 < len(lines):
                # A table's totals row read a cell per line: "TOTAL" / "55.00" (hours) / "$4555.00".
                # The amount with a currency beside a bare number is the money.
                beside = lines[i + 1]
                if _AMOUNT_ONLY.match(beside) and find_amounts(beside):
                    return _amount_in(beside, strict)
            return value, currency
    return None, None


def _total(lines: list[str], labels: tuple[str, ...],
           table_rows: frozenset = frozenset()) -> tuple[float | None, str | None, str | None]:
    """(amount, currency, source) of the grand total. Labels are tried strongest first; within one,
    the last line wins (a total follows its subtotals). The amount is on the label's line or, in PDF
    and HTML layouts, alone on the next line. The source is "table" when the line is a row of a
    table (the totals block of an invoice's item table), else "key-value"."""
    for label in labels:
        pattern = re.compile(_ocr_tolerant(label), re.IGNORECASE)
        for i in reversed(range(len(lines))):
            line = lines[i]
            m = pattern.search(line)
            if not m:
                continue
            # A bare "Total" takes only an amount with a currency or cents; "合計" also a whole one:
            # yen and won have no cents.
            strict = label is _PLAIN_TOTAL and not _CJK_CHAR.search(m.group(0))
            # What stands around the label (not the label itself: "Net à payer" is a label) says
            # whether it is a subtotal, a net or a tax amount.
            around = f"{line[max(0, m.start() - 12):m.start()]} {line[m.end():m.end() + 12]}"
            window = line[max(0, m.start() - 12):m.end() + 12]
            if (_TOTAL_EXCLUDE.search(around) or _TAX_TOTAL.search(window)
                    or (strict and _PLAIN_TOTAL_EXCLUDE.search(window))):
                continue
            if strict and line.strip(" :") == m.group(0) and i > 0 and re.fullmatch(
                    _COLUMN_HEADER, lines[i - 1].strip(" :"), re.IGNORECASE):
                continue   # "Description" / "Total": OCR read a table's header row a word per line
            # A label inside a sentence ("überweisen Sie den Rechnungsbetrag innerhalb von 14 Tagen")
            # names an amount only with a currency or cents beside it, never one on the next line.
            in_sentence = m.start() > 0 and len(line.split()) > 6
            value, currency = _amount_in(line[m.end():], strict or in_sentence)
            if value is None and not in_sentence:
                value, currency = _amount_below(lines, i + 1, strict)
            if value is not None and value > 0:
                return _gross_of_vat_row(value, lines, i, line[m.end():]), currency, \
                    "table" if line in table_rows else "key-value"
    return None, None, None


def _gross_of_vat_row(value: float, lines: list[str], i: int, rest: str) -> float:
    """The gross amount when the total's label heads a row of net, tax and gross (a till receipt's
    VAT summary: "Gesamtbetrag 0,93 0,06 0,99", which OCR gives as one amount per line): the first
    amount is the net; the third is the total when net + tax make it, to the cent. Else `value`."""
    row = [parse_number(x) for x in _BARE_NUMBER.findall(rest)]
    below = i + 1
    while len(row) < 3 and below < len(lines) and _AMOUNT_ONLY.match(lines[below]):
        row.append(_amount_in(lines[below], False)[0])
        below += 1
    if len(row) >= 3 and None not in row[:3]:
        net, tax, gross = row[:3]
        if net == value and 0 < tax < net and abs(net + tax - gross) < 0.005:
            return gross
    return value


# "kr" is the krone of the document's language; "¥" in a Chinese document is the yuan.
_KRONE_BY_LANGUAGE = {"da": "DKK", "no": "NOK", "nb": "NOK", "nn": "NOK", "is": "ISK"}


_US_DOLLAR_NAMED = re.compile(r"US\$|\bUSD\b|U\.S\. dollars?", re.IGNORECASE)
_CANADA = re.compile(r"\b[ABCEGHJ-NPRSTVXY]\d[ABCEGHJ-NPRSTV-Z] ?\d[ABCEGHJ-NPRSTV-Z]\d\b|\b(?:HST|QST|TVQ|TPS)\b")   # not PST: Pacific time
_AUSTRALIA = re.compile(r"\bABN\b|\b(?:NSW|VIC|QLD|TAS|ACT)\s+\d{4}\b")
_RUPEE_BY_COUNTRY = {"nepal": "NPR", "kathmandu": "NPR", "pakistan": "PKR", "karachi": "PKR", "lahore": "PKR",
                     "islamabad": "PKR", "sri lanka": "LKR", "colombo": "LKR"}
_RUPEE_COUNTRY = re.compile(r"\b(?:" + "|".join(_RUPEE_BY_COUNTRY) + r")\b", re.IGNORECASE)


def _local_currency(code: str | None, text: str, language: str | None) -> str | None:
    """A currency read from an ambiguous sign, as the document's language has it; a code the text
    prints ("SEK", "JPY") stays."""
    if code == "SEK" and language in _KRONE_BY_LANGUAGE and "SEK" not in text:
        return _KRONE_BY_LANGUAGE[language]
    if code == "JPY" and language == "zh" and "JPY" not in text and "円" not in text:
        return "CNY"
    if code == "INR" and "INR" not in text and "₹" not in text:
        # "Rs." is also the rupee of Nepal, Pakistan and Sri Lanka: the country printed says which
        country = _RUPEE_COUNTRY.search(text)
        if country:
            return _RUPEE_BY_COUNTRY[country.group(0).lower()]
    if code == "USD" and not _US_DOLLAR_NAMED.search(text) and not _US_ADDRESS_RE.search(text):
        # "$" alone is the dollar of where the document was issued: a Canadian postcode or sales
        # tax, an Australian business number or state postcode
        if _CANADA.search(text):
            return "CAD"
        if _AUSTRALIA.search(text):
            return "AUD"
    return code


# The account an invoice asks to be paid into is kept in its country's money: the country of its IBAN
# names the currency of an invoice that prints none ("A payer au compte bancaire BE95 0011 8359 9858").
_IBAN_RE = re.compile(r"\b([A-Z]{2})\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b")
_IBAN_CURRENCY = {
    **{country: "EUR" for country in ("AT", "BE", "CY", "DE", "EE", "ES", "FI", "FR", "GR", "HR", "IE", "IT",
                                      "LT", "LU", "LV", "MT", "NL", "PT", "SI", "SK", "MC", "SM", "AD")},
    "GB": "GBP", "CH": "CHF", "LI": "CHF", "PL": "PLN", "SE": "SEK", "DK": "DKK", "NO": "NOK", "CZ": "CZK",
    "HU": "HUF", "RO": "RON", "BG": "BGN", "IS": "ISK", "TR": "TRY",
}


def _iban_currency(text: str) -> str | None:
    """The currency of the first IBAN of a known country in the text."""
    for m in _IBAN_RE.finditer(text):
        if m.group(1) in _IBAN_CURRENCY:
            return _IBAN_CURRENCY[m.group(1)]
    return None


# A currency named in words, as a document states what its bare numbers are in ("Amounts expressed in
# Euros", "Montants en euros", "Beträge in Euro"): only names that are one currency wherever they are
# printed ("dollars" and "francs" alone are several).
_CURRENCY_NAME_RE = re.compile(
    r"\b(?:(?P<EUR>euros?)|(?P<USD>u\.?s\.?\s*dollars?)|(?P<GBP>pounds?\s*sterling)|"
    r"(?P<CHF>swiss\s*francs?|francs?\s*suisses?|schweizer\s*franken)|(?P<JPY>japanese\s*yen))\b", re.IGNORECASE)


def _document_currency(text: str, amounts: list[dict]) -> str | None:
    """The currency most amounts carry; else the one most often named (a "Price (CHF)" header), by
    its code or sign, else by its name in words."""
    counts: dict[str, int] = {}
    for a in amounts:
        counts[a["currency"]] = counts.get(a["currency"], 0) + 1
    if not counts:
        for m in CURRENCY_MENTION_RE.finditer(text):
            code = _currency_code(m.group(0))
            counts[code] = counts.get(code, 0) + 1
    if not counts:
        for m in _CURRENCY_NAME_RE.finditer(text):
            counts[m.lastgroup] = counts.get(m.lastgroup, 0) + 1
    return max(counts, key=counts.get) if counts else None


# Where the goods go ("Ship to", "Shipping Address", Odoo's Spanish "ENVIE A"): a label, and the
# customer's name when nothing names whom it is billed to.
_SHIP_TO_LABEL = (r"ship(?:ping)?\s*(?:to|address)|deliver(?:y)?\s*(?:to|address)|lieferadresse|lieferanschrift|"
                  r"adresse\s*de\s*livraison|livr[ée]\s*[àa]|env[ií]e\s*a|enviar\s*a|direcci[óo]n\s*de\s*env[ií]o|"
                  r"indirizzo\s*di\s*spedizione|afleveradres|leveringsadres")
# Words that are labels, not names, when they stand alone on a line ("Company" / "Contoso LLC").
_LABEL_WORDS = re.compile(
    r"^(?:company|name|address|from|to|date|seller|buyer|customer|client|bill\s*to|nummer|number|"
    r"firma|kunde|adresse|nom|naam|nombre|nome|page|seite|tel\.?|phone|fax|e-?mail|web|"
    # an order's header row in office invoice templates
    r"sales\s*person|sales\s*rep|requisitioner|ship(?:ped)?\s*via|f\.?\s*o\.?\s*b\.?(?:\s*point)?|"
    r"p\.?\s*o\.?\s*(?:number|no\.?|#)|payment\s*terms|terms|"
    r"(?:endere[çc]o|direcci[óo]n|indirizzo)(?:\s+d[eoa]l?\s+\w+)?|"   # "Endereço do Beneficiário"
    r"cobrar\s*a|facturar\s*a|" + _SHIP_TO_LABEL + r")\s*:?$", re.IGNORECASE)
# The words of an item table's header row ("Description", "Unit Price Taxes"): not a name.
_COLUMN_WORDS = frozenset(
    "description item items article qty quantity unit units price prices rate amount amounts total totals tax "
    "taxes vat net gross discount no. no # désignation quantité prix montant bezeichnung menge preis betrag "
    "einzelpreis gesamtpreis descripción cantidad precio importe descrizione quantità prezzo importo "
    "omschrijving aantal prijs bedrag".split())


# What a stamp or watermark prints across a document, above or among its names: no party's name.
_STAMP_WORD = re.compile(r"(?:sample|specimen|sp[ée]cimen|copy|copie|kopie|copia|duplicate|duplicata|duplikat|draft|"
                         r"entwurf|brouillon|borrador|bozza|muster|exemplar|void|annul[ée]|storniert|paid|pay[ée]|"
                         r"bezahlt|pagado|pagato|original)", re.IGNORECASE)


# A template's place for the issuer's logo, printed as words ("Your logo", "LOGO HERE", "logo").
_LOGO_PLACEHOLDER = re.compile(r"\b(?:your|company|insert|ihr|votre)\s+logo\b|\blogo\s+(?:here|hier|ici)\b|^logo$",
                               re.IGNORECASE)


def _plausible_party(value: str) -> bool:
    value = value.strip()
    # three letters make a name; two Chinese, Japanese or Korean characters do ("张三")
    letters = sum(ch.isalpha() for ch in value)
    return ((letters >= 3 or (letters == 2 and len(_CJK_CHAR.findall(value)) == 2)) and not DATE_RE.search(value)
            and not _STAMP_WORD.fullmatch(value.strip(" *-_.!")) and not _LOGO_PLACEHOLDER.search(value)
            and not EMAIL_RE.search(value) and not _DOC_TYPE_RE.match(value)
            # a label, a note "(Not to be used for payment)", a footnote "† Usage charges ..."
            and not _LABEL_WORDS.match(value) and not value.startswith((":", "#", "(", "†"))
            and not set(value.lower().replace("/", " ").split()) <= _COLUMN_WORDS
            and not _FIELD_LABEL_LINE.fullmatch(value)   # "Date de facture", "N° de facture" alone
            and len(value.split()) <= 10   # a sentence, not a name
            and not _is_label_line(value)
            # an identifier ("INV03051", "GE2020211"), not a name
            and not (len(value.split()) == 1 and any(ch.isdigit() for ch in value)))


# "61 Maple Drive", "Limmatquai 101", "Via Roma 149a": a street line of an address.
_STREET_RE = re.compile(r"^(?:\d+(?:\s?[A-Za-z](?=\s))?,?\s+[^\W\d_]{2,}[^\d]*|[^\W\d_][\w .'°º-]+\s\d+[A-Za-z]?)$")
_STREET_WORD = (r"(?:[\w.'-]*(?:stra(?:ß|ss)e|str\.|street|road|avenue|weg|allee|gasse|platz|laan|straat|"
                r"lane|drive|blvd|boulevard)|rue|via|calle|place|avenida|viale|piazza|chemin)")
# Where a one-line letterhead's name ends: before its street ("weclapp.com Somestreet 42 ...",
# "Maison Jeanne d'Arc, Place de Gaulle") or before a number that starts the address
# ("Sparksuite, Inc. 12345 Sunny Road"). A street word with no comma before it and no number after
# it is part of the name: "Main Street Restaurant", "Park Avenue Dental".
_ADDRESS_START = re.compile(r",\s*(?=" + _STREET_WORD + r"\b)|\s+(?=" + _STREET_WORD + r"\b.*\d)|\s+(?=\d{2,}\b)|,\s*(?=\d)",
                            re.IGNORECASE)
_SALUTATION_RE = re.compile(r"^(?:dear|hello|hi|to whom)\b", re.IGNORECASE)


def _name_part(line: str) -> str:
    """The name in a line that may go on with its address: "Name · Street · City", "Name Street 4"."""
    name = re.split(r"\s+[·•|]\s+|\s+[-–]\s+(?=[^-–]*\d)", line)[0].strip()
    m = _ADDRESS_START.search(name)
    if m and m.start() > 0 and len(name[:m.start()].strip(" ,")) >= 3:
        name = name[:m.start()]
    name = _DOC_TYPE_AFTER_NAME.sub("", name)
    return name.strip(" ,;*")   # "***PENNY-MARKT": a till's decoration


def _letterhead(lines: list[str]) -> str | None:
    """The name at the very top ("Northwind Traders GmbH", "Café Rossi"), skipping document-type
    headings, labels and sentences (an HTML page's title). Lines skipped as a heading, a labelled
    field or a logo's placeholder do not count among the first four ("Invoice" / "Ref. : IN1710" /
    "logo" / "Invoice date : 08/10/2017" / "Dim Solution")."""
    counted = 0
    for i, line in enumerate(lines[:8]):
        if (_DOC_TYPE_RE.match(line) or _is_label_line(line) or _ADDRESSED_TO.match(line)
                or _LOGO_PLACEHOLDER.search(line)):
            continue
        counted += 1
        if counted > 4:
            break
        if re.match(r"^\d", line) or _SALUTATION_RE.match(line):   # an address, "Dear customer,"
            return None
        if DATE_RE.match(line):   # "August 28, 2025" under its label: a date, whose month is no name
            continue
        name = _name_part(line)
        if not _plausible_party(name):
            continue
        if len(name.split()) > 6 and not COMPANY_RE.search(name):    # a sentence, not a name
            continue
        # A narrow receipt wraps a long name: "HealthPlus Pharmacy" / "Kobayashi" / "Limmatquai 101".
        nxt, after = lines[i + 1:i + 2], lines[i + 2:i + 3]
        one_word = (nxt and re.fullmatch(rf"[{_UPPER}][^\W\d_]+", nxt[0]) and nxt[0] != name
                    and not _DOC_TYPE_RE.match(nxt[0]))
        if name == line and one_word and after and _STREET_RE.match(after[0]):
            name = f"{name} {nxt[0]}"
        return name
    return None


# "BOUYGUES TELECOM - Société Anonyme au capital de 712 588 399,56 €", "Dupont SARL au capital de 8 000 €"
_CAPITAL_MENTION = re.compile(
    r"^(?P<name>[^\W\d_][^,;:()]{1,60}?)\s*(?P<separator>[-–,]\s*)?(?P<form>soci[ée]t[ée]\s+(?:anonyme|par\s+actions\s+"
    r"simplifi[ée]e|[àa]\s+responsabilit[ée]\s+limit[ée]e)|SAS|SASU|SARL|EURL|SA|SNC|SCOP)\b[^.]{0,40}?\bau\s+capital\s+de\b",
    re.IGNORECASE)


def _capital_mention_name(m: re.Match) -> str:
    """The issuer's name of a capital mention, with its legal form where the name carries it
    ("Dupont SARL"), not where a separator sets the form apart ("BOUYGUES TELECOM - Société Anonyme")."""
    name = m.group("name").strip()
    form = m.group("form")
    return name if m.group("separator") or " " in form else f"{name} {form}"


_NAME_FIELD = re.compile(r"^(?:(?:company\s*)?name|company|firma|firmenname|nom|raison\s*sociale|naam|nombre|"
                         r"raz[óo]n\s*social|nome|ragione\s*sociale|nazwa)\s*:\s*(\S.*)$", re.IGNORECASE)


# A name followed by its e-mail address, as mail programs write it: "Jane Doe <jane@example.com>".
_WITH_ADDRESS = re.compile(r"\s*(?:<|&lt;|\()\s*" + EMAIL_RE.pattern + r"\s*(?:>|&gt;|\))\s*$")


def _party_after(lines: list[str], label: str) -> str | None:
    """The name that follows a party's label: on the label's line ("Seller: Acme GmbH") or on one
    of the next lines, skipping what sits between a label and the name in PDF layouts (a customer
    number, its own label, an identifier)."""
    pattern = _label_re(label, True)
    for i, line in enumerate(lines):
        m = pattern.search(line)
        if not m:
            continue
        value = m.group(1).strip(" :|-–")
        candidates = [value] if value else lines[i + 1:i + 5]
        for candidate in candidates:
            named = _NAME_FIELD.match(candidate)   # "Payee" / "Name: My Company"
            if named:
                candidate = named.group(1)
            candidate = _WITH_ADDRESS.sub("", candidate) or candidate   # "Elliot Raque <raque@example.com>"
            name = _name_part(candidate[:120]).strip(" ,;:")
            if _plausible_party(name) and not _is_label_line(candidate) and not DATE_RE.search(candidate):
                return name
    return None


_ISSUER_LABEL = (r"issued\s*by|seller|supplier|vendor|billed\s*by|bill(?:ed)?\s*from|sold\s*by|invoice\s*from|from|"
                 r"service\s*provider|payee|pay(?:able)?\s*to|"
                 r"verk(?:ä|ae|a)ufer|lieferant|rechnungssteller|leistungserbringer|dienstleister|fournisseur|prestataire|vendeur|"
                 r"[ée]metteur|benefici[áa]rio|"
                 r"fornitore|venditore|cedente|leverancier|verkoper|proveedor|emisor|vendedor|sprzedawca|"
                 r"wystawca|dodavatel|poskytovatel|prod[áa]vaj[íi]c[íi]|leverant[öo]r|s[äa]ljare|s[æe]lger|leverand[øo]r|myyj[äa]|"
                 r"продавец|поставщик|販売者|請求元|発行者|销售方(?:名称)?|销售单位|공급자")
# "To:" and "An:" (the addressee after a "From:") only with a colon or alone on their line: "To be
# paid within 30 days" names nobody.
_BUYER_LABEL = (r"customer\s*name|buyer|bill(?:ed)?\s*to|invoice\s*to|sold\s*to|issued\s*to|customer|client|payer|"
                r"(?:to|an)(?=\s*(?::|$))|"
                r"k(?:ä|ae|a)ufer|rechnungsempf(?:ä|ae|a)nger|kunde|adresse\s*du\s*client|factur[ée]\s*[àa]|acheteur|"
                r"cobrar\s*a|facturar\s*a|cobran[çc]a\s*para|fatura(?:r|do)?\s*para|pagador|sacado|"
                r"destinataire|klant|afnemer|cliente|comprador|destinatario|acquirente|committente|nabywca|"
                r"odbiorca|odb[ěe]ratel|kupuj[íi]c[íi]|k[öo]pare|kund|ostaja|покупатель|плательщик|購入者|ご?請求先|宛先|购买方(?:名称)?|购货单位|"
                r"공급받는자")


# Brazil's printed e-invoice (DANFE, a layout the law sets) opens with the receipt stub the carrier has
# signed: "RECEBEMOS DE <issuer> OS PRODUTOS/SERVIÇOS ... DESTINATARIO: <buyer> - <street>".
_DANFE_STUB = re.compile(r"\bRECEBEMOS\s+DE\s+(?P<issuer>\S.{1,80}?)\s+OS\s+PRODUTOS"
                         r"(?:.*?\bDESTINAT[ÁA]RIO:\s*(?P<buyer>\S[^\n]{1,80}?)\s+-\s)?", re.IGNORECASE)


def _danfe_party(lines: list[str], role: str) -> str | None:
    # The stub's sentence may be wrapped over two lines ("... ELETRÔNICA" / "INDICADA ABAIXO. ...").
    m = _DANFE_STUB.search(" ".join(lines[:3]))
    return m.group(role) if m else None


def _issuer(lines: list[str], label: str, letterhead_first: bool) -> tuple[str | None, str | None]:
    stub = _danfe_party(lines, "issuer")
    if stub:
        return stub, "key-value"
    finders = [(lambda: _party_after(lines, label), "key-value"), (lambda: _letterhead(lines), "layout")]
    if letterhead_first:   # a receipt: the shop's name tops it; "Store #0342" is a branch
        finders.reverse()
    for find, source in finders:
        issuer = find()
        if issuer:
            return issuer, source
    # The bank account of an invoice belongs to whoever issued it.
    holder = _party_after(lines, r"account\s*(?:holder|name)|beneficiary|payee|kontoinhaber|titulaire")
    if holder:
        return holder, "key-value"
    # French law has the issuer print its legal form and capital, often only in the footer: a surer
    # sign than the first company named near the top, which may be the customer's.
    mention = next((m for line in lines for m in [_CAPITAL_MENTION.match(line)] if m), None)
    if mention and _plausible_party(mention.group("name")):
        return _capital_mention_name(mention), "pattern"
    company = next((COMPANY_RE.search(line) for line in lines[:15] if COMPANY_RE.search(line)), None)
    if company:
        return company.group(0).strip(), "pattern"
    # A CJK company on a line of its own; one addressed with 御中/様 is the customer.
    company = next((line for line in lines[:15] if CJK_COMPANY_RE.match(line) and not _ADDRESSED_TO.match(line)), None)
    return (company, "pattern") if company else (None, None)


_ISSUE_DATE_LABEL = (r"invoice\s*date|date\s*of\s*(?:issue|invoice)|issue\s*date|issued(?:\s*on)?|created|"
                     r"tax\s*point|date\s*/\s*time|date(?!\s*(?:of\s*birth|due|limite|de\s*(?:livraison|d[ée]but|fin)|d['’]?\s*[ée]ch))|dated|"
                     r"rechnungsdatum|belegdatum|liefer-\s*und\s*rechnungsdatum|ausstellungsdatum|datum|"
                     r"date\s*de\s*(?:la\s*)?facture|data(?:\s*(?:della\s*)?fattura)?(?!\s*(?:de\s*|di\s*)?(?:vencimento|scadenza))|factuurdatum|"
                     r"fecha(?:\s*de\s*(?:la\s*)?factura)?|data\s*de\s*emiss[ãa]o|data\s*(?:do\s*)?documento|data\s*wystawienia|"
                     r"datum\s*vystaven[íi]|fakturadatum|fakturadato|dato|laskun\s*p[äa]iv[äa](?:m[äa][äa]r[äa])?|"
                     r"p[äa]iv[äa]ys|дата(?:\s*сч[её]та)?|発行日|請求日|日付|开票日期|日期")
# German labels are matched as written with an umlaut and as systems that print ASCII only write it
# ("Faellig bis", "Rechnungsempfaenger", "Verkaeufer").
_DUE_LABEL = (r"date\s*d['’]?\s*[ée]ch[ée]ance|data\s*(?:di\s*)?scadenza|due\s*date|payment\s*due(?:\s*(?:by|on|date))?|due(?:\s*(?:by|on))?|pay(?:able)?\s*by|payment\s*date|"
              r"(?:payment\s*)?deadline|pay\s*before|[àa]\s*payer\s*avant(?:\s*le)?|payable\s*avant(?:\s*le)?|"
              r"(?:data\s*de\s*)?vencimento|"
              r"f(?:ä|ae|a)llig(?:keitsdatum|\s*am|\s*bis)?|zahlbar\s*bis|zahlungsziel|[ée]ch[ée]ance|date\s*limite|"
              r"scadenza|vervaldatum|vervaldag|vencimiento|fecha\s*de\s*vencimiento|termin\s*p[łl]atno[śs]ci|"
              r"datum\s*splatnosti|splatnost|f[öo]rfallodag(?:en)?|f[öo]rfallodatum|forfaldsdato|forfallsdato|"
              r"forfall|er[äa]p[äa]iv[äa]|срок\s*оплаты|支払期限|お支払期限|付款期限")
_DUE_STOP = re.compile(r"\b(?:" + _DUE_LABEL + r")", re.IGNORECASE)
# "Document No.", "Dok. Nr.": an invoice's or a till's own number.
_DOCUMENT_NUMBER_LABEL = r"(?:document|dokument|doc\.|dok\.)\s*(?:no\.?|number|nr\.?|#)"
_INVOICE_NUMBER_LABEL = (
    r"invoice\s*:?\s*(?:no\.?|number|num\.?|nr\.?|#|id|ref(?:erence)?\.?)|inv\.?\s*(?:no\.?|#)|"
    + _DOCUMENT_NUMBER_LABEL + r"|"
    r"bill\s*(?:no\.?|number)|invoice(?=\s*[:#]?\s+#?[A-Z0-9/.-]*\d)|"
    r"(?:handels)?rechnungs?[\s-]*(?:\(\d+\)\s*)?(?:nr\.?|nummer)|rechn\.\s*-?\s*nr\.?|rechnung(?=\s+[A-Z0-9/.-]*\d)|"
    r"(?:facture|fattura|factuur|factura|fatura)\s*(?:n[°ºo.]*|nr\.?|num[ée]ro|nummer|n[úu]mero|#)|"
    # a quote's or estimate's number is its document's number too ("Devis n° 24", "Estimate #17")
    r"(?:devis|quote|quotation|estimate|angebot|offerte|presupuesto|preventivo|or[çc]amento|pro-?\s*forma)"
    r"\s*(?:n[°ºo.]+|nr\.?|no\.?|num[ée]ro|number|nummer|n[úu]mero|#)|"
    r"n[úu]m[ée]ro\s*(?:de|di|da|do)?\s*(?:la\s*)?(?:facture|factura|fattura|fatura)|"
    r"faktura\s*(?:vat\s*)?(?:nr\.?|numer|nummer|no\.?|č\.?|[čc][íi]slo)|fakturanummer|fakturanr\.?|"
    r"[čc][íi]slo\s*faktury|laskun?\s*numero|laskunumero|сч[её]т(?:-фактура)?\s*№|請求書?番号|請求書?No\.?|发票号码|"
    r"n[°º]\s*(?:de\s*)?facture(?!\s*associ)|factuur(?=\s+[A-Z0-9/.-]*\d)|facture(?=\s+[A-Z0-9/.-]*\d)|"
    r"n[°º](?=\s*\d{3}\.\d{3}\.\d{3}\b)|"   # a Brazilian nota fiscal's "Nº 000.047.686"
    r"n(?:[°º.]|o\.?|[úu]mero)?\s*do\s*documento")   # a boleto's "Nº do Documento"
_RECEIPT_NUMBER_LABEL = (
    r"receipt\s*(?:no\.?|number|nr\.?|#|id)|rcpt\.?(?:\s*(?:no\.?|#))?|txn|"
    + _DOCUMENT_NUMBER_LABEL + r"|"
    r"trans(?:action|\.)?\s*(?:no\.?|number|#|id)|ticket\s*(?:no\.?|#)|bon[\s-]*(?:no\.?|nr\.?|#)|"
    r"beleg[\s-]*(?:nr\.?|#)|belegnummer|inv(?:oice)?\.?\s*(?:no\.?|#)|bill\s*(?:no\.?|number|#)|"
    # an order confirmation's number is its receipt's
    r"(?:[\w.]+\s+)?order\s*(?:no\.?|number|nr\.?|#|id)|bestell(?:nummer|nr\.?)|"
    # a till's "Order 00001-001-0002" (a point-of-sale's session-till-sequence reference)
    r"order(?=\s+\d{3,}[-/]\d+[-/]\d+\b)|num[ée]ro\s*de\s*commande|"
    r"n[°º]\s*de\s*commande|n[úu]mero\s*de\s*pedido|paragon\s*(?:fiskalny\s*)?nr\.?|kvitto\s*nr\.?")
# Dates an order confirmation is issued on.
_ORDER_DATE_LABEL = (r"order\s*(?:date|placed(?:\s*on)?)|ordered\s*on|date\s*ordered|bestelldatum|bestellt\s*am|"
                     r"date\s*de\s*(?:la\s*)?commande|command[ée]e?\s*le|fecha\s*(?:de(?:l)?\s*)?pedido")


# "Ref.", "Ref no", "Reference", "Réf.": a reference without a qualifier (only where nothing else names
# the document's number).
_OWN_REFERENCE_LABEL = (r"ref(?:erence)?\.?\s*(?:no\.?|nr\.?|number|#)?|r[ée]f[ée]rence|r[ée]f\.?|referenz|"
                        r"riferimento|referencia|refer[êe]ncia")


# A line that is only the label of a date or number field.
_FIELD_LABEL_LINE = re.compile(r"(?:" + "|".join((_ISSUE_DATE_LABEL, _DUE_LABEL, _INVOICE_NUMBER_LABEL,
                                                  _RECEIPT_NUMBER_LABEL)) + r")\s*[:：]?", re.IGNORECASE)

_MONEY_TOKEN = re.compile(r"^[$€£]?\d{1,3}(?:[.,']\d{3})*[.,]\d{2}[$€£]?$")   # "1,234.56": an amount


def _identifier(value: str | None) -> str | None:
    """A document number: the first token with a digit ("INV-2024-0042", "1819/3630", "#INV03051")."""
    if not value:
        return None
    for token in value.split()[:3]:
        token = token.strip(",;:()#")
        if any(ch.isdigit() for ch in token) and not DATE_RE.fullmatch(token) and not _MONEY_TOKEN.match(token):
            return token
    return None


_SHORT_DATE_LINE = re.compile(r"^\d{1,2}([./-])\d{1,2}\1\d{2}(?:\s+\d{1,2}:\d{2}(?::\d{2})?(?:\s*[AP]M)?)?$",
                              re.IGNORECASE)
_SHORT_DATE_AND_TIME = re.compile(r"^\d{1,2}([./-])\d{1,2}\1\d{2}(?![\d./-])\s.*\b\d{1,2}:\d{2}\b")
_LABELLED_VALUE = re.compile(r"^[^\W\d_]{2,}\s*[:=]")   # "Store:298": a store's number, not the document's


def _number_under_title(lines: list[str]) -> str | None:
    """"INVOICE" / "# 23413561D": a document-type heading with the number alone under it."""
    for i, line in enumerate(lines[:15]):
        if _DOC_TYPE_RE.fullmatch(line.strip()) and i + 1 < len(lines):
            nxt = lines[i + 1].strip()
            if len(nxt.split()) == 1 and not _LABELLED_VALUE.match(nxt):
                number = _identifier(nxt)
                if number and not DATE_RE.search(nxt):
                    return number
    return None


# What heads a column of an invoice's reference block: "KD-Nr. Rechn.Nr. Datum Blatt" over
# "780 033841 3804563 15.01.2026 1".
_REFERENCE_HEADER = re.compile(
    r"(?:" + "|".join((_INVOICE_NUMBER_LABEL, _ISSUE_DATE_LABEL, _DUE_LABEL,
                       r"k(?:un)?d(?:en)?\.?\s*-?\s*nr\.?|kundennummer|customer\s*(?:no\.?|number|id)|client\s*(?:no\.?|n[°º])|"
                       r"n[°º]\s*client|debitor|page|seite|blatt|feuille|order\s*(?:no\.?|number)|auftrags?\s*-?\s*nr\.?")) + r")",
    re.IGNORECASE)
_REFERENCE_ROW = re.compile(r"^(?:(?:" + _REFERENCE_HEADER.pattern + r")[\s.:|/]*){2,}$", re.IGNORECASE)


def _reference_rows(lines: list[str]) -> list[str]:
    """A row of labels over a row of their values becomes a "label: value" line each. The values
    are taken from the right (the first label gets what is left: a customer number may hold a
    space), a date counting as one value."""
    out, i = [], 0
    while i < len(lines):
        line = lines[i]
        if i + 1 < len(lines) and _REFERENCE_ROW.match(line):
            labels = [m.group(0).strip(" .:|/") or m.group(0) for m in _REFERENCE_HEADER.finditer(line)]
            values_line = lines[i + 1]
            dates = [m.group(0) for m in DATE_RE.finditer(values_line)]
            tokens = DATE_RE.sub("\x00", values_line).split()
            tokens = [dates.pop(0) if t == "\x00" and dates else t for t in tokens]
            if len(labels) >= 2 and len(tokens) >= len(labels) and not _REFERENCE_HEADER.search(values_line):
                cut = len(tokens) - len(labels) + 1
                values = [" ".join(tokens[:cut]), *tokens[cut:]]
                out.extend(f"{label}: {value}" for label, value in zip(labels, values))
                i += 2
                continue
        out.append(line)
        i += 1
    return out


def _money_document(lines, text, amounts, language, number_label, issuer_label, letterhead_first,
                    date_at_foot: bool = False, issue_label: str = _ISSUE_DATE_LABEL) -> Found:
    month_first = date_order_month_first(text)
    found = Found()
    lines = _reference_rows(lines)
    number = _identifier(value_after(lines, number_label, accept=_identifier))
    if not number and date_at_foot:
        # a till prints its number beside the date and time: "01.01.2022  12:34  Bon-Nr.:2345"
        number = _identifier(value_after(lines, number_label, accept=_identifier, anchored=False))
    source = "key-value" if number else None
    if not number:
        number, source = _number_under_title(lines), "layout"
    if not number:
        # A bare "Ref. : IN1710-00000" / "Ref no: #1721" opening its line is the document's own
        # reference when nothing names its number ("Your ref.", "Order ref." do not open the line).
        number, source = _identifier(value_after(lines, _OWN_REFERENCE_LABEL, accept=_identifier)), "key-value"
    found.put("number", number, source)
    issue = _dated_value(lines, issue_label, month_first, language)
    source = "key-value"
    if not issue:
        # "Rechnung Nr. 471102 vom 05.06.2018": the date of the number's line
        # ("Invoice #007612 Order ID: 4F3S8J Payment Due: 2/22/2014": not the due date)
        issue = _dated_value(lines, number_label, month_first, language, anchored=False, stop=_DUE_STOP)
    if not issue:
        # Unlabelled, a date on its own line near the top is the date of issue ("04/18/2024 3:42
        # PM" on a till receipt, "London, 3 May 2024"); a date inside a sentence is something else.
        issue = parse_date("\n".join(line for line in lines[:15] if len(line) <= 40), month_first)
        source = "layout"
    if not issue:
        # the same in the document's language: "Setembro, 23, 2016", "Paris, le 3 mars 2024"
        issue = next((iso for line in lines[:15] if len(line) <= 40 for m in [_WORD_DATE_RE.search(line)] if m
                      for iso in [_word_date(m.group(0), language, month_first)] if iso), None)
    if not issue:
        # A till's "6/26/19" or "15/03/19 16:56" on a line of its own near the top; a receipt's
        # "15/03/19 02/41501 zma/a 251432 16:56" (date, register, time) anywhere.
        issue = next((iso for line in (lines if date_at_foot else lines[:15])
                      if _SHORT_DATE_LINE.match(line) or (date_at_foot and _SHORT_DATE_AND_TIME.match(line))
                      for iso in [_short_year_date(line, month_first) or _short_year_date(line, not month_first)]
                      if iso), None)
    if not issue and date_at_foot:
        # A till receipt prints its date under the totals as often as at its head ("04.12.2014
        # 11:26 Bon-Nr.:1433" at the foot of a German one): a date on a short line further down is
        # the date of issue when it is the only one there.
        dates = {date for line in lines[15:] if len(line) <= 40 for date in [parse_date(line, month_first)] if date}
        if len(dates) == 1:
            issue = dates.pop()
    if issue and int(issue[:4]) > date.today().year + 1:
        issue = None   # "17.07.2078": an OCR misreading; nothing is issued decades ahead
    found.put("issue_date", issue, source)
    table_rows = frozenset(_clean_line(raw) for raw in text.splitlines() if raw.lstrip().startswith("|"))
    total, currency, source = _total(lines, (_GRAND_TOTAL, _PLAIN_TOTAL, _DUE_TOTAL), table_rows)
    found.put("total_amount", total, source)
    if currency:
        found.put("currency", _local_currency(currency, text, language), source)
    else:
        found.put("currency", _local_currency(_document_currency(text, amounts), text, language)
                  or _iban_currency(text), "pattern")
    issuer, source = _issuer(lines, issuer_label, letterhead_first)
    found.put("issuer", issuer, source)
    return found


def _invoice(lines, text, amounts, language=None):
    found = _money_document(lines, text, amounts, language, _INVOICE_NUMBER_LABEL, _ISSUER_LABEL,
                            letterhead_first=False)
    month_first = date_order_month_first(text)
    due, source = _last_dated_value(lines, _DUE_LABEL, month_first, language), "key-value"
    # "Invoice date: 05/01/2024   Due date: 04/02/2024" on one line
    due = due or _dated_value(lines, r"due\s*date|payment\s*due|due(?=\s*:)", month_first, language,
                               anchored=False)
    if not due:
        due, source = _due_from_sentence(lines, month_first), "pattern"
    if not due:
        due, source = _due_from_terms(text, found["issue_date"]), "derived"
    found.put("due_date", due, source)
    buyer, source = _danfe_party(lines, "buyer") or _party_after(lines, _BUYER_LABEL), "key-value"
    if not buyer:
        # Only where nothing names whom it is billed to: the name the goods are sent to (an order
        # confirmation's "Shipping Address", a delivery note's "Ship to") is the customer's.
        buyer = _party_after(lines, _SHIP_TO_LABEL)
    if not buyer:
        addressed = next((m for line in lines[:15] for m in [_ADDRESSED_TO.match(line)] if m), None)
        buyer, source = (addressed.group("name"), "layout") if addressed else (None, None)
    if not buyer:
        buyer, source = _addressee(lines, found["issuer"]), "layout"
    found.put("buyer", buyer, source)
    return found


# "12345 Berlin", "DE 80333 München", "75018 PARIS", "1234 AB Amsterdam": the postcode line of an address.
_POSTCODE_LINE = re.compile(rf"^(?:[A-Z]{{1,3}}[- ]?)?\d{{4,5}}(?:\s?[A-Z]{{2}})?\s+[{_UPPER}]")


# "Somecity, SS 12345", "Città, PR 12345", "Paris, France 75008": a city, a region's two letters or a
# region's or country's name, a postcode (the US way, Italy's province codes, template addresses).
_CITY_REGION_POSTCODE = re.compile(r"^[^\W\d_][\w .'-]*,\s*(?:[A-Z]{2}|[^\W\d_]{3,}(?: [^\W\d_]+)?)\s+\d{4,5}$")


def _addressee(lines: list[str], issuer: str | None) -> str | None:
    """The name over an address block (a street line, then a postcode line, each within a few lines)
    near the top that is not the issuer's: the window envelope's recipient of European invoices."""
    for i, line in enumerate(lines[:40]):
        if (not _plausible_party(line) or _STREET_RE.match(line) or _POSTCODE_LINE.match(line)
                or _WORD_DATE_RE.search(line)   # "novembre 4, 2008" over the block
                or re.search(r"\d{5,}", line)):   # an IBAN, a register or phone number
            continue
        if issuer and (issuer.lower() in line.lower() or line.lower() in issuer.lower()):
            continue
        street = next((j for j in range(i + 1, min(i + 4, len(lines))) if _STREET_RE.match(lines[j])), None)
        if street is not None and any(_POSTCODE_LINE.match(lines[k]) or _US_ADDRESS_RE.search(lines[k])
                                      or _CITY_REGION_POSTCODE.match(lines[k])
                                      for k in range(street + 1, min(street + 4, len(lines)))):
            # "M DE LATTRE ALEXIS" / "ALEXINUX SARL" / street: the company the person is reached at
            company = next((lines[j] for j in range(i + 1, street) if COMPANY_RE.search(lines[j])), None)
            name = _name_part(company or line)
            if issuer and name.lower() == issuer.lower():
                continue
            return name
    return None


_PAY_BY_RE = re.compile(
    r"\b(?:pay|transfer|remit|settle|überweisen|zahlen|begleichen|payer|régler|virer|pagar|abonar|pagare|versare|"
    r"saldare|betalen|overmaken)\w*\b(?:[^.]|\.(?=\d)){0,80}?"
    r"(?:\b(?:by|before|no later than|until|bis(?:\s+(?:zum|spätestens))?|spätestens(?:\s+(?:am|bis))?|"
    r"avant(?:\s+le)?|au plus tard le|antes del?|entro(?:\s+il)?|voor)|\bvóór)\s+", re.IGNORECASE)


def _due_from_sentence(lines: list[str], month_first: bool) -> str | None:
    """"Please transfer the amount of £1,200.00 by 15 June 2020 to the account below.", "Bitte
    überweisen Sie den Betrag bis zum 19.02.2014 auf unser Konto." """
    for line in lines:
        for m in _PAY_BY_RE.finditer(line):
            d = DATE_RE.match(line, m.end())
            iso = _date_from_match(d, month_first) if d else None
            if iso:
                return iso
    return None


def _due_from_terms(text: str, issue_date: str | None) -> str | None:
    """No due date printed: payment terms "Net 30" / "within 30 days of the invoice date" count
    from the issue date."""
    m = re.search(r"\bnet\s*(\d{1,3})\b(?:\s*days)?|within\s+(\d{1,3})\s+days\s+(?:of|from)\s+(?:the\s+)?"
                  r"(?:invoice|issue)\s*date", text, re.IGNORECASE)
    if not (m and issue_date):
        return None
    return (date.fromisoformat(issue_date) + timedelta(days=int(m.group(1) or m.group(2)))).isoformat()


def _receipt(lines, text, amounts, language=None):
    return _money_document(lines, text, amounts, language, _RECEIPT_NUMBER_LABEL,
                           issuer_label=r"merchant|store|shop|retailer|händler|magasin|commerçant|winkel|tienda|negozio",
                           letterhead_first=True, date_at_foot=True,
                           issue_label=_ISSUE_DATE_LABEL + "|" + _ORDER_DATE_LABEL)


# -- contracts ----------------------------------------------------------------------------------

_ROLE = (r"(?:the\s+)?(?:customer|client|supplier|contractor|consultant|company|landlord|tenant|lessor|"
         r"lessee|licensor|licensee|employer|employee|buyer|seller|purchaser|vendor|provider|service\s*provider|"
         r"disclosing\s*party|receiving\s*party|party\s*(?:a|b|1|2)|first\s*party|second\s*party|owner|agent|"
         r"principal|lender|borrower)")
# A word of a party's name: capitalised words, numbers, "&", name particles before a capitalised
# word ("van Dijk"), and the lower-case bits of some legal forms ("Sp. z o.o.", "s.r.o.").
_NAME_TOKEN = re.compile(rf"&|[{_UPPER}0-9][\w.'’&/-]*|" + _PARTICLES + r"|z|o\.o\.|s\.r\.o\.|[a-z]\.[a-z]\.")
_LEGAL_AFTER_COMMA = re.compile(r"^(?:Ltd|Inc|LLC|Limited|LLP|L\.P|S\.A|SA|AG|KG|GmbH|plc)\b")


_ABBREVIATIONS = re.compile(r"(?:Inc|Ltd|Co|Corp|Bros|Jr|Sr|Dr|Mr|Mrs|Ms|Prof|St|Cie|Lda|Ltda|Pty|Pte|Plc|Int|Intl|"
                            r"No|Nr|[A-Z]|(?:\w+\.)+\w+)", re.IGNORECASE)


def _abbreviation(word: str) -> bool:
    """"Inc", "Co", "J", "B.V", "S.p.A" (the final period removed)."""
    return bool(_ABBREVIATIONS.fullmatch(word))


def _ends_sentence(token: str) -> bool:
    return token.endswith("..") or (token.endswith(".") and not _abbreviation(token[:-1]))


def _particle_leads_to_name(rest: list[re.Match]) -> bool:
    """'van der Berg': particles count as part of a name when a capitalised word follows them."""
    for m in rest[:3]:
        token = m.group(0)
        if token[:1].isupper():
            return True
        if not re.fullmatch(_PARTICLES, token):
            return False
    return False


def _party_name(fragment: str) -> tuple[str | None, int]:
    """The name at the start of `fragment` and where it ends: capitalised words (with particles,
    "&" and legal forms like "S.p.A." or "Co., Ltd."), stopping at the first lower-case word,
    "and", a bracket or punctuation (where the party's description starts)."""
    tokens = list(re.finditer(r"\S+", fragment))
    end, count = 0, 0
    for k, m in enumerate(tokens):
        token = m.group(0)
        core = token.rstrip(",;:")
        if core.lower() == "and" or not _NAME_TOKEN.fullmatch(core):
            break
        if re.fullmatch(_PARTICLES, core) and not _particle_leads_to_name(tokens[k + 1:]):
            break
        if _ends_sentence(core):   # drop the full stop: "Globex B.V.. Parties", "Jane Hansen. The"
            end, count = m.start() + len(core) - 1, count + 1
            break
        end, count = m.start() + len(core), count + 1
        # A legal form ends the name ("Acme Inc. The parties ..."), unless more of it follows
        # ("GmbH & Co. KG", "Co., Ltd.").
        nxt = tokens[k + 1].group(0).rstrip(",;:.") if k + 1 < len(tokens) else ""
        if (count > 1 and re.fullmatch(LEGAL_FORMS, core) and nxt != "&" and not re.fullmatch(LEGAL_FORMS, nxt + ".")
                and not re.fullmatch(LEGAL_FORMS, nxt)):
            break
        if token != core:   # "Co., Ltd." goes on; any other comma ends the name
            if not (token.endswith(",") and k + 1 < len(tokens) and _LEGAL_AFTER_COMMA.match(tokens[k + 1].group(0))):
                break
    name = fragment[:end].strip(" ,;:")
    if count == 0 or not re.search(r"[A-Za-z]{2}", name) or name.split()[0] in ("&",):
        return None, 0
    return name, end


def _between_parties(flat: str) -> list[str]:
    """'... between X, a company ..., and Y ...' / 'made between X and Y.'"""
    for m in re.finditer(r"\bbetween:?\s+", flat, re.IGNORECASE):
        rest = flat[m.end():m.end() + 600]
        first, end = _party_name(rest)
        if not first:
            continue
        after = rest[end:]
        # The second party follows the "and" that closes the first party's description.
        sep = (re.match(r"\s+and\s+", after) or re.search(r"[),;]\s*and\s+", after)
               or re.search(r"\s+and\s+", after))
        if not sep:
            continue
        second, _ = _party_name(after[sep.end():])
        if second:
            return [first, second]
    return []


def _listed_parties(lines: list[str]) -> list[str]:
    """A 'Parties' section: '(1) X, a company ...' / '1. X, of ...' - an item 1 and the next item
    2 a few lines further (descriptions may wrap), each starting with a name."""
    item = re.compile(r"^(?:\((\d|[a-z])\)|(\d|[a-z])[.)])\s+(.*)$")
    for i, line in enumerate(lines):
        m = item.match(line)
        if not m or (m.group(1) or m.group(2)) not in ("1", "a"):
            continue
        first = _party_name(m.group(3))[0]
        for follow in lines[i + 1:i + 5]:
            n = item.match(follow)
            if n and (n.group(1) or n.group(2)) in ("2", "b"):
                second = _party_name(n.group(3))[0]
                if first and second and len(first.split()) >= 2 and len(second.split()) >= 2:
                    return [first, second]
                break
    return []


def _role_parties(lines: list[str]) -> list[str]:
    """'Customer: X' / 'Supplier: Y' at the top, or the signature blocks 'For the Client: X'."""
    parties = []
    pattern = re.compile(r"^(?:for\s+(?:and\s+on\s+behalf\s+of\s+)?)?" + _ROLE + r"\s*:\s*(.+)$", re.IGNORECASE)
    for line in lines:
        m = pattern.match(line)
        name = _party_name(m.group(1))[0] if m else None
        if name and name not in parties:
            parties.append(name)
    return parties[:2] if len(parties) >= 2 else []


# "entered into as of 2 April 2023", "takes effect on 01.05.2024", "made this 5th day of March 2024"
_EFFECTIVE_CUE = re.compile(r"\b(?:effective|takes\s+effect|commenc\w*|entered\s+into|made|dated)"
                            r"(?:\s+(?:as\s+of|on|from|this))?\s*[:,]?\s*(?:the\s+)?", re.IGNORECASE)


def _cued_date(flat: str, month_first: bool) -> str | None:
    for m in _EFFECTIVE_CUE.finditer(flat):
        d = DATE_RE.match(flat, m.end())
        iso = _date_from_match(d, month_first) if d else None
        if iso:
            return iso
    return None


def _contract(lines, text, amounts):
    flat = " ".join(lines)
    month_first = numeric_dates_month_first(text)
    parties = _between_parties(flat) or _listed_parties(lines) or _role_parties(lines)
    effective = (_date_after(lines, r"effective\s*(?:date|as\s*of|from)|commencement\s*date|start\s*date|"
                                    r"commenc\w*\s*(?:on|date)", month_first)
                 or _cued_date(flat, month_first)
                 or parse_date(flat[:2000], month_first))
    return {"title": guess_title(lines, text), "parties": parties, "effective_date": effective}


# -- resumes, letters ---------------------------------------------------------------------------

def _resume(lines, text, amounts):
    emails = EMAIL_RE.findall(text)
    name = value_after(lines, r"(?:full\s*)?name", accept=is_person_name)
    if not name:   # the name heads a CV, alone or as "Jane Doe | Data Scientist"
        name = next((first for first in (re.split(r"\s+[|·•–—-]\s+|,\s*", line)[0] for line in lines[:8])
                     if is_person_name(first)), None)
    if not name:
        heading = guess_title(lines, text)
        name = heading if heading and not re.search(r"resume|résumé|curriculum|vitae|\bcv\b", heading, re.I) else (
            lines[1] if len(lines) > 1 else None)
    return {"name": name, "email": emails[0].lower() if emails else None}


_CLOSING_RE = re.compile(
    r"^(?:(?:yours\s+)?(?:sincerely|faithfully|truly|respectfully|cordially)(?:\s+yours)?|"
    r"(?:with\s+)?(?:kind|best|warm|warmest|kindest|many)?\s*(?:regards|wishes|thanks)|"
    r"(?:with\s+)?(?:best|kind)\s+regards|respectfully|cheers|thank\s+you|all\s+the\s+best|"
    r"mit\s+freundlichen\s+gr(?:ü|ue)ssen|cordialement|distinti\s+saluti)[,.!]?$", re.IGNORECASE)


def _signer(lines: list[str], start: int) -> str | None:
    """The name under a closing, skipping signature marks ("[signed]", "____", "p.p.")."""
    for line in lines[start:start + 4]:
        line = re.sub(r"^(?:(?:p\.?\s?p\.?|per|signed:?)\s+|/s/\s*)", "", line, flags=re.IGNORECASE).strip()
        if not line or re.fullmatch(r"[\[(]?(?:signed|signature)[\])]?|[_.\s-]+", line, re.IGNORECASE):
            continue
        if _is_label_line(line) or re.search(r"\d", line):   # "Enclosure: 1" - no signature
            return None
        return re.split(r",\s+|\s+[|–-]\s+", line)[0].strip()
    return None


def _letter(lines, text, amounts):
    month_first = numeric_dates_month_first(text)
    sender = None
    for i, line in enumerate(lines):
        if _CLOSING_RE.match(line):
            sender = _signer(lines, i + 1) or sender
    # The date is in the header, before the salutation: "Date: ...", or "London, 3 May 2024".
    salutation = next((i for i, line in enumerate(lines) if _SALUTATION_RE.match(line)),
                      len(lines))
    header = lines[:salutation]
    letter_date = (_date_after(header, r"date|dated", month_first)
                   or parse_date("\n".join(header), month_first)
                   or parse_date(text[:1500], month_first))
    return {"date": letter_date, "sender": sender}


# -- papers, reports, forms ---------------------------------------------------------------------

_PAPER_SECTION = re.compile(r"^(?:\d+\.?\s*|[IVX]+\.\s*)?(?:abstract|keywords|key words|introduction|summary)\b",
                            re.IGNORECASE)


def _author_names(line: str) -> list[str]:
    """Names leading an author line: "A B, C D and E F" or "A B, Institute of X, City"."""
    line = re.sub(r"\(.*?\)", "", line)
    names = []
    for piece in re.split(r",|;|\band\b|&|·", line):
        piece = _strip_name_marks(piece)
        if not piece:
            continue
        if not is_person_name(piece):
            break
        names.append(piece)
    return names


def _paper(lines, text, amounts):
    end = next((i for i, line in enumerate(lines) if _PAPER_SECTION.match(line)), min(len(lines), 25))
    header = [line for line in lines[:end] if not _BANNER.search(line)]
    headings = [h for h in _headings(text) if not _BANNER.search(h) and not _PAPER_SECTION.match(h)]
    title_lines: list[str] = []
    i = 0
    if headings and headings[0] in header:          # a real heading: the whole title on one line
        i = header.index(headings[0])
        title_lines, i = [headings[0]], i + 1
    else:                                            # plain text: the title may wrap over lines
        while i < len(header):
            line = header[i]
            if title_lines and _author_names(line) and not _title_continues(title_lines[-1], line, header[i + 1:]):
                break
            title_lines.append(line)
            i += 1
            if len(" ".join(title_lines)) > 250:
                break
    title = " ".join(title_lines).strip() or None
    return {"title": title, "authors": _authors(header[i:])}


def _authors(lines: list[str]) -> list[str]:
    """Names from the author lines under the title: "A B, C D and E F", one "Name, Affiliation"
    per line, or names and affiliation lines taking turns. Stops at the first line that is
    neither (an abstract, a place)."""
    authors: list[str] = []
    k = 0
    while k < len(lines):
        line = lines[k]
        # A wrapped author list: "..., Chidi Nasser, and Rohan" / "Evans"
        if k + 1 < len(lines) and re.search(r"(?:,|\band)\s+[A-Z][\w'’-]*$", line) and re.fullmatch(
                r"[A-Z][\w'’-]*\S*(?:,.*)?", lines[k + 1]):
            line, k = f"{line} {lines[k + 1]}", k + 1
        k += 1
        names = _author_names(line)
        if names:
            authors += [n for n in names if n not in authors]
        elif authors and (ORG_WORDS.search(line) or EMAIL_RE.search(line)):
            continue      # an affiliation or contact line between author lines
        elif authors:
            break
    return authors


def _title_continues(previous: str, line: str, following: list[str]) -> bool:
    """A wrapped title's second line can look like a name ("Speech Recognition"); it is a
    continuation when the title line was cut mid-phrase or the real author line follows."""
    if _OPEN_END.search(previous):
        return True
    names = _author_names(line)
    return (len(names) == 1 and len(line.split()) <= 3 and bool(following)
            and len(_author_names(following[0])) >= 1 and len(previous) >= 40)


_REPORT_DATE_LABEL = (r"(?:report(?:ing)?\s*)?date|dated|published(?:\s*on)?|issued(?:\s*on)?|prepared\s*on|"
                      r"as\s*(?:of|at)|date\s*of\s*(?:issue|report)|status\s*(?:date|as\s*of)")


def _report(lines, text, amounts):
    month_first = numeric_dates_month_first(text)
    return {"title": guess_title(lines, text),
            "date": _date_after(lines[:30], _REPORT_DATE_LABEL, month_first)
            or parse_date("\n".join(lines[:15]), month_first) or parse_date(text[:3000], month_first)}


def _form(lines, text, amounts):
    m = _FORM_NO_RE.search(text)
    return {"title": guess_title(lines, text), "number": f"Form {m.group(1)}" if m else None}


# -- OCR clean-up --------------------------------------------------------------------------------

_WORD_RE = re.compile(r"[^\W\d_]+")
OCR_REPAIRED = ("title", "issuer", "sender", "name", "authors", "parties")


def _word_counts(text: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for word in _WORD_RE.findall(text.lower()):
        counts[word] = counts.get(word, 0) + 1
    return counts


def repair_ocr_words(value: str, counts: dict[str, int]) -> str:
    """OCR reads "i" as "l" ("Securlty Audit", "Lucla Santos"). The same word is usually read
    right somewhere else in the document, so a word becomes its l->i variant when the document
    uses that variant at least as often."""
    def fix(m: re.Match) -> str:
        word = m.group(0)
        spots = [k for k, ch in enumerate(word) if ch == "l"][:3]
        best, best_count = word, counts.get(word.lower(), 0)
        for mask in range(1, 2 ** len(spots)):
            chars = list(word)
            for bit, k in enumerate(spots):
                if mask >> bit & 1:
                    chars[k] = "i"
            variant = "".join(chars)
            if counts.get(variant.lower(), 0) >= max(best_count, 1) and variant != best:
                best, best_count = variant, counts[variant.lower()]
        return best
    return _WORD_RE.sub(fix, value)


def _repair_fields(fields: dict, counts: dict[str, int]) -> dict:
    for key in OCR_REPAIRED:
        value = fields.get(key)
        if isinstance(value, str):
            fields[key] = repair_ocr_words(value, counts)
        elif isinstance(value, list):
            fields[key] = [repair_ocr_words(v, counts) for v in value]
    return fields


def is_ocr_text(doc: Document) -> bool:
    return "ocr" in (doc.converter or "") or "(OCR) -->" in (doc.text or "")


# What heads an invoice or a receipt, in the languages of the labels above. A document headed so
# that states a total gets the money fields whatever it was classified as: a Markdown invoice of
# tables taken for a spreadsheet, an order confirmation e-mail (an `email`), a receipt's OCR taken
# for a contract. Classification errors then cost the category, not every field.
_RECEIPT_HEADING = (r"receipt|order\s*confirmation|quittung|kassenbon|kassenbeleg|bestellbest(?:ä|ae|a)tigung|re[çc]u|"
                    r"ticket\s*de\s*caisse|recibo|ricevuta|scontrino|kwitantie|kassabon|paragon(?:\s*fiskalny)?|"
                    r"[úu][čc]tenka|kvitto|kvittering|kuitti|чек|квитанция|領収書|レシート|收据|小票")
_INVOICE_HEADING = (r"invoice|bill|rechnung|facture|factura|fattura|factuur|fatura|faktura(?:\s*vat)?|lasku|"
                    r"сч[её]т(?:-фактура)?|請求書|发票")
_MONEY_HEADING = re.compile(
    r"^(?:(?:commercial|tax|sales|proforma|pro-forma|vat|final|payment|cash|your)\s+)?(?:(?P<receipt>"
    + _RECEIPT_HEADING + r")|" + _INVOICE_HEADING + r")(?![^\W\d_])", re.IGNORECASE)
MONEY_HEADING_LINES = 20     # where the heading is looked for
MONEY_HEADING_WORDS = 8      # a heading, not a sentence that mentions an invoice


def money_rule_by_heading(lines: list[str]):
    """_invoice or _receipt for a document headed as one and stating a total; else None."""
    for line in lines[:MONEY_HEADING_LINES]:
        m = _MONEY_HEADING.match(line)
        if m and len(line.split()) <= MONEY_HEADING_WORDS:
            if _total(lines, (_GRAND_TOTAL, _PLAIN_TOTAL, _DUE_TOTAL))[0] is None:
                return None
            return _receipt if m.group("receipt") else _invoice
    return None


CATEGORY_RULES = {
    "invoice": _invoice, "receipt": _receipt, "contract": _contract, "resume": _resume,
    "scientific_paper": _paper, "letter": _letter, "report": _report, "form": _form,
}


# The fields a structured e-invoice states exactly (transforms.einvoice), by field name.
E_INVOICE_FIELDS = ("number", "issue_date", "due_date", "total_amount", "currency", "issuer", "buyer")


def _with_money_fields(fields: dict, money: Found) -> Found:
    """The category's own fields, and the money fields it does not have."""
    merged = Found()
    for name, value in fields.items():
        merged.put(name, value, getattr(fields, "sources", {}).get(name))
    for name, value in money.items():
        if merged.get(name) in (None, [], ""):
            merged.put(name, value, money.sources.get(name))
    return merged


def _printed_with_legal_form(name: str, text: str) -> str:
    """An e-invoice's party as the page prints it when the page adds the legal form the XML leaves
    out (XML "Au bon moulin", letterhead "Au bon moulin SARL - 1242 chemin de l'olive")."""
    m = re.search(re.escape(name) + r",?\s" + LEGAL_FORMS + r"(?![\w])", text)
    return m.group(0) if m else name


class RulesExtractor:
    name = "rules"

    def extract(self, doc: Document) -> dict:
        raw = doc.text or ""
        text = horizontal_key_values(normalise_text(raw))
        lines = _lines(text)
        amounts = find_amounts(text)
        category = doc.category or ""
        if doc.einvoice and category not in ("invoice", "receipt"):
            category = "invoice"   # the XML says what it is, whatever the page looked like
        rule = CATEGORY_RULES.get(category)
        if rule in (_invoice, _receipt):
            fields = rule(lines, text, amounts, doc.language)
        else:
            fields = rule(lines, text, amounts) if rule else {}
            money_rule = money_rule_by_heading(lines)
            if money_rule is not None:
                fields = _with_money_fields(fields, money_rule(lines, text, amounts, doc.language))
        title = guess_title(lines, text)
        if is_ocr_text(doc):
            counts = _word_counts(text)
            sources = getattr(fields, "sources", None)
            fields = _repair_fields(fields, counts)
            if sources is not None:
                fields.sources = sources
            title = repair_ocr_words(title, counts) if title else None
        sources = field_sources(fields)
        if doc.einvoice:
            for name in E_INVOICE_FIELDS:
                value = doc.einvoice.get(name)
                if name in fields and value is not None:
                    fields[name] = _printed_with_legal_form(value, text) if name in ("issuer", "buyer") else value
                    sources[name] = {"source": "e-invoice", "confidence": SOURCE_CONFIDENCE["e-invoice"]}
        return {
            "title": title,
            "dates": find_dates(text),
            "emails": _unique(e.lower() for e in EMAIL_RE.findall(text)),
            "phones": find_phones(text),
            "urls": _unique(URL_RE.findall(text)),
            "amounts": amounts,
            "word_count": len(raw.split()),
            "language": doc.language,
            "fields": dict(fields),
            "field_sources": sources,
            "e_invoice": ({"syntax": doc.einvoice.get("syntax"), "attachment": doc.einvoice.get("attachment")}
                          if doc.einvoice else None),
        }
