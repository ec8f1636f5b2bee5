"""Labelled synthetic document corpus for benchmarking the pipeline.

    python -m bench.corpus --out DIR --docs N --seed S [--scanned-share 0.1]

writes

    DIR/docs/<i // 100, 4 digits>/doc_<i, 7 digits>.<ext>   one file per document
    DIR/truth.jsonl    one JSON object per document, in index order:
                       {"file": "docs/0000/doc_0000003.pdf", "category": "resume",
                        "format": "pdf", "fields": {...}}
    DIR/manifest.txt   the absolute path of every document, one per line

File names carry no label: the category is only in truth.jsonl.

Ground-truth ``fields`` per category (every category also has "title": the document's
real title, or None where it has none):

    invoice           number, issue_date, due_date, total_amount, currency, issuer, title=None
    receipt           number, issue_date, total_amount, currency, issuer, title=None
    contract          parties (2 names), effective_date, title
    resume            name, email, title=None
    scientific_paper  title, authors (list of names)
    letter            date, sender (the person who signs), title=None
    report            title, date
    form              title, number (e.g. "Form HR-102")

Dates are ISO "YYYY-MM-DD"; total_amount is a float in major units (JPY has no minor
unit); currency is an ISO 4217 code. Strings are exactly as printed in the document.
PDFs use core fonts, so their text (and truth) is folded to latin-1; scans are rendered
with Pillow's bundled font, which only has ASCII glyphs, so theirs is folded to ASCII.

Document i depends only on (seed, i, scanned_share): each one has its own
random.Random(f"{seed}:{i}"), so a corpus can be extended, sliced or regenerated in
parallel, and documents are streamed to disk one at a time.

Amounts are printed in one style per document: see MONEY_STYLES.
"""

import argparse
import datetime as dt
import html
import io
import json
import random
import sys
import time
import unicodedata
import zipfile
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache, partial
from pathlib import Path

import docx
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.shared import Pt
from fpdf import FPDF
from PIL import Image, ImageDraw, ImageFont

CATEGORIES = ("invoice", "receipt", "contract", "resume", "letter", "report",
              "scientific_paper", "form")
# Mix of the born-digital formats, in percent.
FORMAT_WEIGHTS = {"pdf": 45, "docx": 20, "html": 20, "txt": 15}
SCANNED_FORMATS = ("png", "scanned_pdf")
EXTENSIONS = {"pdf": ".pdf", "docx": ".docx", "html": ".html", "txt": ".txt",
              "png": ".png", "scanned_pdf": ".pdf"}
# What each format can display; anything else is folded away before rendering.
CHARSETS = {"pdf": "latin-1", "png": "ascii", "scanned_pdf": "ascii"}
# Every timestamp embedded in a file (PDF creation date, DOCX zip entries) is pinned
# so that the bytes only depend on the seed.
FIXED_TIMESTAMP = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
# A4 at 150 dpi, the usual office-scanner setting.
SCAN_SIZE = (1240, 1754)

MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")
DATE_STYLES = {
    "iso": lambda d: d.isoformat(),                                   # 2024-03-15
    "dmy_long": lambda d: f"{d.day} {MONTHS[d.month - 1]} {d.year}",  # 15 March 2024
    "mdy_long": lambda d: f"{MONTHS[d.month - 1]} {d.day}, {d.year}",  # March 15, 2024
    "dmy_slash": lambda d: d.strftime("%d/%m/%Y"),                    # 15/03/2024
    "dmy_dot": lambda d: d.strftime("%d.%m.%Y"),                      # 15.03.2024
}


# --------------------------------------------------------------------------- word lists

FIRST_F = ("Anna", "Sophie", "Emma", "Léa", "Chloé", "Giulia", "Francesca", "Lucía",
           "Carmen", "Ingrid", "Freya", "Amelia", "Charlotte", "Isla", "Olivia", "Ava",
           "Mia", "Sarah", "Emily", "Hannah", "Yuki", "Sakura", "Aiko", "Mei", "Priya",
           "Ananya", "Fatima", "Layla", "Zeynep", "Katarzyna", "Nina", "Sofía",
           "Valentina", "Chiara", "Elif", "Astrid", "Niamh", "Aoife", "Grace", "Rachel",
           "Elena", "Marta", "Julia", "Clara", "Helena", "Maria", "Laura", "Nora", "Inês",
           "Amara")
FIRST_M = ("Lukas", "Jonas", "Maximilian", "Hugo", "Louis", "Marco", "Javier", "Sven",
           "Lars", "Oliver", "James", "Harry", "Liam", "Noah", "Ethan", "Daniel", "Michael",
           "David", "Haruto", "Kenji", "Wei", "Jian", "Arjun", "Rohan", "Omar", "Youssef",
           "Emre", "Piotr", "Tomás", "Mateo", "Thiago", "Matteo", "Björn", "Seán", "Samuel",
           "Victor", "Felix", "Paul", "Luca", "Andrés", "Mehmet", "Kwame", "Chidi", "Ravi",
           "Hiroshi", "Erik", "Jan", "Pierre", "Antoine", "George")
LAST = ("Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Becker", "Hoffmann",
        "Dubois", "Martin", "Bernard", "Lefèvre", "Moreau", "Rossi", "Russo", "Bianchi",
        "Romano", "Ferrari", "García", "Martínez", "López", "Sánchez", "Fernández", "Jansen",
        "de Vries", "van Dijk", "Bakker", "Visser", "Smith", "Jones", "Taylor", "Brown",
        "Williams", "Wilson", "Evans", "Thompson", "Johnson", "Miller", "Davis", "Anderson",
        "Clark", "Walker", "Harris", "Nakamura", "Tanaka", "Suzuki", "Watanabe", "Sato",
        "Kobayashi", "Wang", "Li", "Zhang", "Chen", "Liu", "Patel", "Sharma", "Gupta",
        "Iyer", "Khan", "Haddad", "Nasser", "Yildiz", "Kowalski", "Nowak", "Novak", "Horvat",
        "Andersson", "Johansson", "Nielsen", "Hansen", "Berg", "O'Brien", "Murphy", "Kelly",
        "Byrne", "Costa", "Silva", "Pereira", "Santos", "Oliveira", "Keller", "Brunner",
        "Huber", "Gruber", "Meier", "Baumann", "Zimmermann", "Kaiser", "Lang", "Wolf",
        "Hartmann", "Nguyen", "Kim", "Park", "Lee", "Cohen", "Levy", "Okafor", "Mensah")
NAME_PREFIX = ("Blue", "North", "Silver", "Green", "Bright", "Iron", "Clear", "Red", "Sun",
               "Oak", "Stone", "Swift", "Nova", "Alpen", "Pacific", "Harbor", "Summit",
               "Cedar", "Polar", "Urban", "Golden", "West", "High", "Maple")
NAME_ROOT = ("peak", "wind", "line", "field", "bridge", "gate", "wave", "stone", "works",
             "point", "path", "light", "brook", "leaf", "crest", "forge", "view", "port",
             "ridge", "vale")
INDUSTRY = ("Logistics", "Systems", "Consulting", "Solutions", "Engineering", "Software",
            "Trading", "Media", "Analytics", "Partners", "Foods", "Pharma", "Energy",
            "Robotics", "Design", "Textiles", "Holdings", "Labs", "Networks", "Instruments",
            "Print", "Architects", "Freight", "Medical", "Interiors", "Security")
EMAIL_PROVIDERS = ("mailbox.org", "fastmail.com", "posteo.de", "proton.me", "gmx.net",
                   "outlook.com", "gmail.com", "web.de", "icloud.com", "yahoo.co.uk")


@dataclass(frozen=True)
class Country:
    code: str
    name: str
    currency: str
    date_styles: tuple   # the date formats people there actually write
    cities: tuple        # (city, postcode pattern), for the US (city, state, ZIP pattern)
    streets: tuple
    suffixes: tuple      # legal forms of companies
    phones: tuple        # patterns: '#' any digit, '%' non-zero digit, '@' capital letter
    vat_id: str
    tax_label: str
    tax_rates: tuple


COUNTRIES = (
    Country("DE", "Germany", "EUR", ("dmy_dot", "dmy_dot", "dmy_long", "iso"),
            (("Berlin", "10###"), ("München", "80###"), ("Hamburg", "20###"),
             ("Köln", "50###"), ("Frankfurt am Main", "60###"), ("Leipzig", "04###"),
             ("Stuttgart", "70###")),
            ("Hauptstraße", "Bahnhofstraße", "Lindenallee", "Gartenweg", "Schillerstraße",
             "Goethestraße", "Industriestraße", "Am Markt"),
            ("GmbH", "GmbH", "AG", "GmbH & Co. KG", "UG"),
            ("+49 30 ########", "+49 89 #######", "+49 40 ### ####", "0221 #######"),
            "DE#########", "VAT", (19, 19, 19, 7)),
    Country("AT", "Austria", "EUR", ("dmy_dot", "dmy_long", "iso"),
            (("Wien", "1###"), ("Graz", "8###"), ("Linz", "4###"), ("Salzburg", "5###")),
            ("Mariahilfer Straße", "Ringstraße", "Landstraßer Hauptstraße", "Kärntner Straße"),
            ("GmbH", "AG", "KG"), ("+43 1 #######", "+43 316 ######"),
            "ATU########", "VAT", (20, 20, 10)),
    Country("CH", "Switzerland", "CHF", ("dmy_dot", "dmy_long", "iso"),
            (("Zürich", "8###"), ("Basel", "4###"), ("Bern", "3###"), ("Genève", "12##"),
             ("Lausanne", "10##")),
            ("Bahnhofstrasse", "Seestrasse", "Rue du Rhône", "Limmatquai", "Marktgasse"),
            ("AG", "GmbH", "SA", "Sàrl"),
            ("+41 44 ### ## ##", "+41 61 ### ## ##", "+41 22 ### ## ##"),
            "CHE-###.###.### MWST", "VAT", (8.1, 8.1, 2.6)),
    Country("FR", "France", "EUR", ("dmy_slash", "dmy_slash", "dmy_long", "iso"),
            (("Paris", "750##"), ("Lyon", "6900#"), ("Marseille", "130##"),
             ("Toulouse", "310##"), ("Nantes", "440##")),
            ("rue de la République", "avenue Victor Hugo", "boulevard Saint-Germain",
             "rue des Lilas", "place Bellecour"),
            ("SAS", "SARL", "S.A."), ("+33 1 ## ## ## ##", "+33 4 ## ## ## ##", "01 ## ## ## ##"),
            "FR###########", "VAT", (20, 20, 10, 5.5)),
    Country("NL", "Netherlands", "EUR", ("dmy_slash", "dmy_long", "iso"),
            (("Amsterdam", "10## @@"), ("Utrecht", "35## @@"), ("Rotterdam", "30## @@"),
             ("Eindhoven", "56## @@")),
            ("Keizersgracht", "Herengracht", "Stationsplein", "Prinsengracht", "Oudegracht"),
            ("B.V.", "N.V."), ("+31 20 ### ####", "+31 30 ### ####"),
            "NL#########B01", "VAT", (21, 21, 9)),
    Country("ES", "Spain", "EUR", ("dmy_slash", "dmy_long", "iso"),
            (("Madrid", "280##"), ("Barcelona", "080##"), ("Valencia", "460##"),
             ("Sevilla", "410##")),
            ("Calle Mayor", "Gran Vía", "Paseo de Gracia", "Calle de Alcalá"),
            ("S.L.", "S.A."), ("+34 91 ### ## ##", "+34 93 ### ## ##"),
            "ESB########", "IVA", (21, 21, 10)),
    Country("IT", "Italy", "EUR", ("dmy_slash", "dmy_long", "iso"),
            (("Milano", "201##"), ("Roma", "001##"), ("Torino", "101##"), ("Bologna", "401##")),
            ("Via Roma", "Corso Buenos Aires", "Via Garibaldi", "Via Dante"),
            ("S.r.l.", "S.p.A."), ("+39 02 #### ####", "+39 06 #### ####"),
            "IT###########", "IVA", (22, 22, 10)),
    Country("UK", "United Kingdom", "GBP", ("dmy_slash", "dmy_long", "dmy_long", "iso"),
            (("London", "@C# #@@"), ("Manchester", "M# #@@"), ("Leeds", "LS# #@@"),
             ("Bristol", "BS# #@@"), ("Edinburgh", "EH# #@@"), ("Cambridge", "CB# #@@")),
            ("High Street", "Station Road", "Church Lane", "Victoria Road", "King's Road",
             "Market Street", "Mill Lane"),
            ("Ltd", "Ltd.", "PLC", "LLP"), ("+44 20 #### ####", "+44 161 ### ####", "020 #### ####"),
            "GB ### #### ##", "VAT", (20, 20, 5)),
    Country("US", "United States", "USD", ("mdy_long", "mdy_long", "iso"),
            (("New York", "NY", "100##"), ("Austin", "TX", "787##"), ("Chicago", "IL", "606##"),
             ("Seattle", "WA", "981##"), ("Boston", "MA", "021##"), ("Denver", "CO", "802##"),
             ("San Francisco", "CA", "941##")),
            ("Main Street", "Oak Avenue", "Maple Drive", "Market Street", "Elm Street",
             "Broadway", "Lakeshore Boulevard"),
            ("Inc.", "LLC", "Corp.", "Co."), ("+1 (%##) 555-####", "(%##) 555-####", "+1 %##-555-####"),
            "EIN ##-#######", "Sales tax", (0, 6.25, 8.875, 7)),
    Country("JP", "Japan", "JPY", ("iso", "iso", "mdy_long"),
            (("Tokyo", "1##-####"), ("Osaka", "5##-####"), ("Yokohama", "2##-####"),
             ("Kyoto", "6##-####")),
            ("Shibuya-ku", "Minato-ku", "Chuo-ku", "Kita-ku", "Nakagyo-ku"),
            ("K.K.", "Co., Ltd."), ("+81 3-####-####", "+81 6-####-####", "03-####-####"),
            "T#############", "Consumption tax", (10, 10, 8)),
)
CURRENCIES = ("EUR", "USD", "GBP", "CHF", "JPY")
TLDS = {"DE": ".de", "AT": ".at", "CH": ".ch", "FR": ".fr", "NL": ".nl", "ES": ".es", "IT": ".it",
        "UK": ".co.uk", "US": ".com", "JP": ".jp"}

# Amount styles, all parseable (one currency marker; "." or "," as decimal separator
# followed by exactly two digits; JPY never has decimals):
#   plain "1234.50", comma "1,234.50", eu "1.234,50" (EUR only),
# with the currency as a symbol prefix ("$1,234.50", "€1,234.50", "£", "¥", "US$"),
# a code prefix ("EUR 1,234.50", "CHF 1234.50") or a suffix ("1.234,50 €", "1,234.50 CHF").
# Styles whose symbol the target charset lacks are skipped, so PDFs write "EUR".
MONEY_STYLES = {
    "USD": (("$", "", "comma"), ("US$", "", "comma"), ("USD ", "", "comma"), ("$", "", "plain")),
    "GBP": (("£", "", "comma"), ("GBP ", "", "comma"), ("£", "", "plain"), ("GBP ", "", "plain")),
    "EUR": (("€", "", "comma"), ("EUR ", "", "comma"), ("", " €", "eu"), ("", " EUR", "eu"),
            ("EUR ", "", "eu"), ("€ ", "", "plain"), ("EUR ", "", "plain")),
    "CHF": (("CHF ", "", "comma"), ("CHF ", "", "plain"), ("", " CHF", "comma")),
    "JPY": (("¥", "", "comma"), ("JPY ", "", "comma"), ("", " JPY", "comma"), ("¥", "", "plain")),
}
# Prices in the catalogues below are in "euro-sized" units; yen amounts are scaled.
CURRENCY_SCALE = {"EUR": 1, "USD": 1.1, "GBP": 0.85, "CHF": 0.95, "JPY": 160}
CURRENCY_NAMES = {"EUR": "euros", "USD": "US dollars", "GBP": "pounds sterling",
                  "CHF": "Swiss francs", "JPY": "Japanese yen"}

# Slots shared by every sentence template (see _Slots).
COMMON = {
    "pct": lambda r: f"{r.uniform(1.5, 38):.1f}",
    "pp": lambda r: f"{r.uniform(0.5, 9):.1f}",
    "n": lambda r: str(r.randint(3, 48)),
    "k": lambda r: str(r.randint(2, 9)),
    "big": lambda r: f"{r.randint(2, 950):,}",
    "days": ("7", "10", "14", "30", "30", "60"),
    "month": MONTHS,
    "weekday": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday"),
    "year": lambda r: str(r.randint(2018, 2025)),
}


# --------------------------------------------------------------------------- helpers

@dataclass
class Ctx:
    r: random.Random
    charset: str   # what the target format can display: "utf-8", "latin-1" or "ascii"
    short: bool    # scans must fit one page and stay cheap to OCR


@dataclass
class Doc:
    """A document before rendering.

    blocks is a layout-neutral list of tuples that every renderer understands:
      ("title", text)                big, first-level heading
      ("heading", text)              section heading ("3.1 ..." renders one level lower)
      ("para", text)                 paragraph; "\\n" forces a line break (addresses)
      ("small", text, align)         small print such as footers; align "left"/"right"
      ("kv", [(label, value)], align)  labelled values, label printed bold
      ("table", header|None, rows, aligns)  aligns is a string of "l"/"r" per column
      ("bullets", [text])
      ("rule",)                      horizontal separator
    """
    name: str       # HTML <title> and PDF/DOCX metadata title
    blocks: list
    fields: dict
    narrow: bool = False   # till-roll receipt: printed on a narrow page


class _Slots:
    """format_map() mapping that draws a fresh value for every placeholder.

    A list/tuple value yields a random element, a callable is called with the rng and a
    string is used as is; results are expanded again, so templates nest. "{x_cap}"
    capitalises the first letter of {x} and "{x_t}" title-cases it."""

    def __init__(self, r, maps):
        self.r, self.maps = r, maps

    def __getitem__(self, key):
        if key.endswith("_cap"):
            v = self[key[:-4]]
            return v[:1].upper() + v[1:]
        if key.endswith("_t"):
            return _title_case(self[key[:-2]])
        for m in self.maps:
            if key in m:
                v = m[key]
                break
        else:
            raise KeyError(key)
        if callable(v):
            v = v(self.r)
        elif not isinstance(v, str):
            v = self.r.choice(v)
        return v.format_map(self) if "{" in v else v


def _say(r, template, *maps):
    """Expand one template (or a random one of a sequence of templates)."""
    if not isinstance(template, str):
        template = r.choice(template)
    return template.format_map(_Slots(r, maps + (COMMON,)))


def _sentences(r, templates, n, *maps):
    """n distinct templates, expanded and joined into a paragraph."""
    return " ".join(_say(r, t, *maps) for t in r.sample(templates, min(n, len(templates))))


_SMALL_WORDS = {"a", "an", "the", "of", "for", "in", "on", "with", "and", "to", "via",
                "from", "by", "at", "or", "under"}


def _title_case(text):
    words = text.split(" ")
    return " ".join(w if (i and w in _SMALL_WORDS) else w[:1].upper() + w[1:]
                    for i, w in enumerate(words))


def _fill(r, pattern):
    """Expand '#' (digit), '%' (non-zero digit) and '@' (capital letter) in a pattern."""
    out = []
    for ch in pattern:
        if ch == "#":
            out.append(str(r.randrange(10)))
        elif ch == "%":
            out.append(str(r.randint(1, 9)))
        elif ch == "@":
            out.append(chr(65 + r.randrange(26)))
        else:
            out.append(ch)
    return "".join(out)


# Characters that latin-1 (PDF core fonts) cannot show, and what to print instead.
_TO_LATIN1 = str.maketrans({"–": "-", "—": "-", "‘": "'", "’": "'", "“": '"', "”": '"',
                            "…": "...", "•": "-", "€": "EUR"})
# Further replacements for ASCII-only scans; accents are stripped with NFKD.
_TO_ASCII = str.maketrans({"ß": "ss", "æ": "ae", "Æ": "AE", "ø": "o", "Ø": "O",
                           "£": "GBP", "¥": "JPY", "·": "-", "×": "x", "§": "S"})


def _fold(text, charset):
    if charset == "utf-8":
        return text
    text = text.translate(_TO_LATIN1)
    if charset == "latin-1":
        return text.encode("latin-1", "replace").decode("latin-1")
    text = unicodedata.normalize("NFKD", text.translate(_TO_ASCII))
    return text.encode("ascii", "ignore").decode("ascii")


def _encodable(text, charset):
    try:
        text.encode(charset)
    except UnicodeEncodeError:
        return False
    return True


def _map_strings(obj, fn):
    if isinstance(obj, str):
        return fn(obj)
    if isinstance(obj, (list, tuple)):
        return type(obj)(_map_strings(x, fn) for x in obj)
    if isinstance(obj, dict):
        return {k: _map_strings(v, fn) for k, v in obj.items()}
    return obj


def _slug(text):
    """ASCII lower-case letters and digits only, for e-mail addresses and domains."""
    text = unicodedata.normalize("NFKD", text.translate(_TO_ASCII))
    return "".join(c for c in text.lower() if c.isascii() and c.isalnum())


def _rand_date(r, first=2019, last=2025):
    start = dt.date(first, 1, 1)
    return start + dt.timedelta(days=r.randrange((dt.date(last, 12, 31) - start).days))


def _date_fmt(r, country=None):
    """A date formatter, preferring the styles customary in the country."""
    styles = country.date_styles if country and r.random() < 0.85 else tuple(DATE_STYLES)
    return DATE_STYLES[r.choice(styles)]


def _country_for(r, currency):
    return r.choice([c for c in COUNTRIES if c.currency == currency])


def _person(r):
    """(first, last, title) with a matching courtesy title."""
    if r.random() < 0.5:
        return r.choice(FIRST_F), r.choice(LAST), "Ms."
    return r.choice(FIRST_M), r.choice(LAST), "Mr."


def _name(r, middle=0.12):
    first, last, _ = _person(r)
    if r.random() < middle:
        return f"{first} {chr(65 + r.randrange(26))}. {last}"
    return f"{first} {last}"


def _company(r, country):
    kind = r.randrange(4)
    if kind == 0:
        base = f"{r.choice(LAST)} {r.choice(INDUSTRY)}"
    elif kind == 1:
        base = f"{r.choice(LAST)} & {r.choice(LAST)}"
    elif kind == 2:
        base = f"{r.choice(NAME_PREFIX)}{r.choice(NAME_ROOT)} {r.choice(INDUSTRY)}"
    else:
        base = r.choice(NAME_PREFIX) + r.choice(NAME_ROOT)
    return f"{base} {r.choice(country.suffixes)}"


def _address(r, country, with_country=False, city=None):
    """Postal address lines in the country's usual order; city is an entry of country.cities."""
    city = city or r.choice(country.cities)
    street, no = r.choice(country.streets), r.randint(1, 220)
    if country.code == "US":
        line1 = f"{no} {street}" + (f", Suite {r.randint(100, 950)}" if r.random() < 0.3 else "")
        lines = [line1, f"{city[0]}, {city[1]} {_fill(r, city[2])}"]
    elif country.code == "UK":
        lines = [f"{no} {street}", city[0], _fill(r, city[1])]
    elif country.code == "JP":
        lines = [f"{r.randint(1, 5)}-{r.randint(1, 30)}-{r.randint(1, 20)} {street}",
                 f"{city[0]} {_fill(r, city[1])}"]
    elif country.code == "FR":
        lines = [f"{no} {street}", f"{_fill(r, city[1])} {city[0]}"]
    else:
        lines = [f"{street} {no}", f"{_fill(r, city[1])} {city[0]}"]
    return lines + [country.name] if with_country else lines


def _city(r, country):
    return r.choice(country.cities)[0]


def _phone(r, country):
    return _fill(r, r.choice(country.phones))


def _email(r, name, domain=None):
    parts = [_slug(p) for p in name.split() if len(p.rstrip(".")) > 1]   # initials are dropped
    if len(parts) == 1:
        local = parts[0]
    else:
        first, last = parts[0], parts[-1]
        local = r.choice((f"{first}.{last}", f"{first[0]}{last}", f"{first}{last}",
                          f"{first}_{last}", f"{last}.{first}"))
    if domain is None:
        domain = r.choice(EMAIL_PROVIDERS)
        if r.random() < 0.3:
            local += str(r.randint(1, 99))
    return f"{local}@{domain}"


def _company_domain(r, company, country):
    words = [w for w in company.split() if w[:1].isupper() and w.isalpha()] or company.split()
    tld = TLDS[country.code] if r.random() < 0.6 else r.choice((".com", ".eu", ".io", ".net"))
    return _slug(words[0] if r.random() < 0.6 else "".join(words[:2])) + tld


class Money:
    """Formats integer minor units in one style, fixed for the whole document."""

    def __init__(self, ctx, currency):
        options = [s for s in MONEY_STYLES[currency] if _encodable(s[0] + s[1], ctx.charset)]
        self.prefix, self.suffix, self.style = ctx.r.choice(options)
        self.currency = currency
        self.decimals = 0 if currency == "JPY" else 2

    def number(self, minor):
        if self.decimals:
            whole, cents = divmod(minor, 100)
            text = f"{whole:,}.{cents:02d}"
        else:
            text = f"{minor:,}"
        if self.style == "plain":
            return text.replace(",", "")
        if self.style == "eu":
            return text.translate(str.maketrans(",.", ".,"))
        return text

    def __call__(self, minor):
        return f"{self.prefix}{self.number(minor)}{self.suffix}"

    def value(self, minor):
        return round(minor / 100, 2) if self.decimals else float(minor)

    def minor(self, r, low, high, round_to=None):
        """Random price between low and high "euro-sized" units, in minor units."""
        scale = CURRENCY_SCALE[self.currency] * (100 if self.decimals else 1)
        amount = r.uniform(low, high) * scale
        step = round_to or (10 if not self.decimals else r.choice((1, 1, 5, 100)))
        return max(step, int(round(amount / step)) * step)


def _percent_of(minor, rate):
    return int(round(minor * rate / 100))


# --------------------------------------------------------------------------- invoices

INVOICE_ITEMS = (  # description, quantity range, unit price range
    ("Consulting services (hours)", 2, 40, 85, 220), ("Project management (hours)", 4, 30, 70, 160),
    ("Software development - sprint", 1, 3, 2500, 9500), ("Website maintenance, monthly fee", 1, 12, 90, 450),
    ("Cloud hosting plan (Pro)", 1, 12, 25, 320), ("Annual software licence", 1, 25, 120, 1500),
    ("Office chair ErgoPlus", 1, 12, 180, 640), ("Laser printer toner cartridge", 2, 20, 35, 120),
    ("Translation services (per 100 words)", 5, 60, 9, 18), ("Freight charges", 1, 1, 40, 900),
    ("Installation and commissioning", 1, 3, 300, 2200), ("Graphic design - logo package", 1, 1, 450, 2500),
    ("Training workshop (per participant)", 3, 25, 150, 600), ("Aluminium laptop stand", 1, 30, 25, 80),
    ("Catering for team event", 1, 1, 350, 3200), ("Legal advisory (hours)", 1, 20, 180, 420),
    ("Data migration service", 1, 1, 900, 6500), ("Spare parts kit, type B", 1, 10, 45, 380),
    ("Travel expenses as agreed", 1, 1, 60, 1400), ("Product photography session", 1, 4, 250, 900),
    ("SEO audit and report", 1, 1, 600, 2400), ("Stainless steel brackets (box of 50)", 1, 40, 18, 60),
    ("Copywriting (per article)", 1, 12, 80, 350), ("On-site technical support (days)", 1, 10, 450, 1200),
    ("Industrial cleaning service", 1, 4, 200, 1800), ("LED panel light 60x60", 4, 60, 28, 95),
    ("Security assessment", 1, 1, 1500, 9000), ("Pallet storage (per pallet per month)", 5, 80, 8, 25),
    ("Recruitment fee", 1, 1, 2500, 12000), ("Espresso machine service contract", 1, 1, 250, 900),
)
INVOICE_TERMS = (
    "Payment is due within {terms_days} days of the invoice date.",
    "Please quote the invoice number {number} with your payment.",
    "Late payments may incur interest at {late}% per month.",
    "All amounts are stated in {currency_name}.",
    "Goods remain our property until paid in full.",
    "Thank you for your business!",
    "If you have any questions about this invoice, please contact {contact} at {contact_email}.",
    "This invoice was issued electronically and is valid without a signature.",
    "Payment by bank transfer only; cheques are not accepted.",
    "A discount of 2% may be deducted if payment is received within 10 days.",
    "Please notify us of any discrepancies within {k} business days.",
    "We appreciate your prompt payment.",
)
INVOICE_CONDITIONS = (
    "Our general terms and conditions apply to all deliveries and services.",
    "Complaints regarding delivered goods must be made in writing within {days} days of receipt.",
    "Services are invoiced monthly in arrears on the basis of the hours actually worked.",
    "Travel time is charged at half the hourly rate unless otherwise agreed.",
    "In case of late payment, we reserve the right to suspend further deliveries.",
    "Reminder fees of {fee} may be charged for each payment reminder.",
    "The place of performance and jurisdiction is {city}.",
    "Prices are subject to change without notice for orders not yet confirmed.",
    "Warranty claims are limited to repair or replacement of the defective goods.",
    "Any set-off against counterclaims is excluded unless they are undisputed.",
)


def _invoice_number(r, issue, issuer):
    n = r.randint(1, 99999)
    initials = "".join(w[0] for w in issuer.split()[:2] if w[0].isalpha()).upper() or "IN"
    return r.choice((
        f"INV-{issue.year}-{n:05d}", f"{issue.year}/{n % 10000:04d}", f"F{issue.year % 100:02d}-{n:05d}",
        f"RE-{issue:%y%m%d}-{n % 100:02d}", f"{r.randint(100000, 999999)}", f"INV{n:06d}",
        f"{initials}-{n}", f"{issue.year}-{n % 1000:03d}",
    ))


def _bank_lines(r, country, holder):
    if country.code == "US":
        return [f"Bank: {r.choice(NAME_PREFIX)} National Bank", f"Account name: {holder}",
                f"Routing number: {_fill(r, '#########')}", f"Account number: {_fill(r, '##########')}"]
    if country.code == "JP":
        return [f"Bank: {r.choice(('Sakura', 'Hikari', 'Midori'))} Trust Bank, {_city(r, country)} Branch",
                f"Account (ordinary): {_fill(r, '#######')}", f"Account holder: {holder}"]
    cc = "GB" if country.code == "UK" else country.code
    iban = f"{cc}{_fill(r, '## #### #### #### #### ##')}"
    return [f"Bank: {r.choice(NAME_PREFIX)}{r.choice(('bank', ' Savings Bank', ' Credit'))}",
            f"IBAN: {iban}", f"BIC: {_fill(r, '@@@@' + cc + '@@')}", f"Account holder: {holder}"]


def gen_invoice(ctx):
    r = ctx.r
    currency = r.choice(CURRENCIES)
    seller = _country_for(r, currency)
    buyer_country = seller if r.random() < 0.75 else r.choice(COUNTRIES)
    issuer = _company(r, seller)
    money = Money(ctx, currency)
    fmt = _date_fmt(r, seller)
    issue = _rand_date(r)
    terms_days = r.choice((7, 10, 14, 14, 21, 30, 30, 30, 45, 60))
    due = issue + dt.timedelta(days=terms_days)
    number = _invoice_number(r, issue, issuer)
    rate = r.choice(seller.tax_rates)

    items = []
    for desc, qlo, qhi, plo, phi in r.sample(INVOICE_ITEMS, r.randint(1, 4) if ctx.short else r.randint(2, 12)):
        items.append((desc, r.randint(qlo, qhi), money.minor(r, plo, phi)))
    subtotal = sum(q * u for _, q, u in items)
    tax = _percent_of(subtotal, rate)
    total = subtotal + tax

    buyer = _company(r, buyer_country) if r.random() < 0.7 else _name(r)
    buyer_lines = [buyer, *_address(r, buyer_country, with_country=buyer_country is not seller)]
    issuer_address = _address(r, seller, with_country=r.random() < 0.4)
    contact = _name(r)
    contact_email = _email(r, contact, _company_domain(r, issuer, seller))
    vat = _fill(r, seller.vat_id)
    slots = {"number": number, "terms_days": str(terms_days), "late": ("1", "1.5", "2"),
             "currency_name": CURRENCY_NAMES[currency], "contact": contact,
             "contact_email": contact_email, "fee": money(money.minor(r, 5, 15, 100)),
             "city": _city(r, seller)}

    meta = [(r.choice(("Invoice No.:", "Invoice number:", "Invoice #:", "Invoice no.", "Invoice ID:")), number),
            (r.choice(("Invoice date:", "Date:", "Date of issue:", "Issue date:", "Issued:")), fmt(issue)),
            (r.choice(("Due date:", "Payment due:", "Due:", "Pay by:", "Payment due by:")), fmt(due))]
    if r.random() < 0.5:
        meta.insert(r.randint(1, 3), (r.choice(("Customer No.:", "Client ID:", "Account:")),
                                      _fill(r, r.choice(("C-#####", "K%####", "ACC-####")))))
    if r.random() < 0.35:
        meta.append((r.choice(("PO number:", "Your reference:", "Order ref.:")), _fill(r, "PO-%#####")))

    aligns, header = r.choice((("lrrr", ["Description", "Qty", "Unit price", "Amount"]),
                               ("lrrr", ["Item", "Quantity", "Rate", "Line total"]),
                               ("rlrrr", ["Pos.", "Description", "Qty", "Price", "Total"]),
                               ("lrrr", ["Service", "Units", f"Price ({currency})", f"Total ({currency})"])))
    cell = money.number if "(" in header[-1] or r.random() < 0.5 else money
    rows = []
    for pos, (desc, q, u) in enumerate(items, 1):
        row = [desc, str(q), cell(u), cell(q * u)]
        rows.append([str(pos)] + row if aligns == "rlrrr" else row)

    total_label = r.choice(("Total due", "Amount due", "TOTAL", "Total amount", "Balance due",
                            "Grand total", "Total (incl. tax)", "Invoice total"))
    totals = [(r.choice(("Subtotal", "Net amount", "Amount before tax")), money(subtotal))]
    if rate:
        totals.append((f"{seller.tax_label} {rate:g}%", money(tax)))
    totals.append((total_label + r.choice((":", ":", "")), money(total)))

    blocks = []
    layout = r.randrange(4)
    contact_line = f"Tel. {_phone(r, seller)} | {contact_email}"
    if layout == 0:    # letterhead, then the invoice heading
        blocks += [("title", issuer), ("para", "\n".join(issuer_address + [contact_line, f"VAT ID: {vat}"])),
                   ("heading", r.choice(("INVOICE", "Invoice", "Tax Invoice"))), ("kv", meta, "left"),
                   ("para", r.choice(("Bill to:", "Invoice to:", "Customer:")) + "\n" + "\n".join(buyer_lines))]
    elif layout == 1:  # invoice heading first, then From / Bill To
        blocks += [("title", r.choice(("INVOICE", "Invoice", "Commercial Invoice"))), ("kv", meta, "right"),
                   ("heading", r.choice(("From", "Seller"))),
                   ("para", "\n".join([issuer] + issuer_address + [contact_line])),
                   ("heading", r.choice(("Bill To", "Billed to", "Customer"))), ("para", "\n".join(buyer_lines))]
    elif layout == 2:  # business-letter style with a window-envelope address
        blocks += [("small", " · ".join([issuer] + issuer_address[:2]), "left"),
                   ("para", "\n".join(buyer_lines)), ("kv", meta, "right"),
                   ("heading", f"Invoice {number}"),
                   ("para", r.choice(("Dear Sir or Madam,", "Dear customer,", "Hello,"))
                    + "\n" + r.choice(("we hereby invoice you for the following items:",
                                       "thank you for your order. We are pleased to charge you as follows:",
                                       "for the services rendered we invoice the following amounts:")))]
    else:              # compact labelled header
        blocks += [("heading", r.choice(("Invoice", "Tax Invoice", "INVOICE"))),
                   ("kv", [(r.choice(("Supplier:", "Seller:", "Issued by:", "From:")), issuer),
                           ("Address:", ", ".join(issuer_address)), ("VAT ID:", vat),
                           (r.choice(("Customer:", "Bill to:", "Recipient:")), buyer),
                           ("Customer address:", ", ".join(buyer_lines[1:]))] + meta, "left")]
    blocks += [("table", header, rows, aligns), ("kv", totals, "right")]
    if layout == 2:
        blocks.append(("para", f"Please transfer the amount of {money(total)} by {fmt(due)} to the account below."))
    blocks.append(("para", _sentences(r, INVOICE_TERMS, r.randint(2, 3) if ctx.short else r.randint(2, 5), slots)))
    blocks.append(("para", "\n".join(_bank_lines(r, seller, issuer))))
    if not ctx.short and r.random() < 0.4:
        blocks += [("heading", r.choice(("Terms and Conditions", "Terms of payment and delivery"))),
                   ("para", _sentences(r, INVOICE_CONDITIONS, r.randint(4, 8), slots))]
    if layout == 2:
        blocks.append(("para", f"Kind regards\n{contact}\n{issuer}"))
    elif r.random() < 0.5:
        blocks.append(("small", f"{issuer} - Registered in {seller.name} - No. {_fill(r, '%#######')}", "left"))

    fields = {"number": number, "issue_date": issue.isoformat(), "due_date": due.isoformat(),
              "total_amount": money.value(total), "currency": currency, "issuer": issuer, "title": None}
    return Doc(r.choice((f"Invoice {number}", f"{issuer} - Invoice {number}")), blocks, fields)


# --------------------------------------------------------------------------- receipts

MERCHANTS = (  # name templates, items (name, low, high price)
    (("Café {last}", "The {prefix}{root} Coffee House", "{prefix} Bean Espresso Bar"),
     (("Cappuccino", 2.8, 4.6), ("Flat white", 3.0, 4.8), ("Espresso", 1.8, 3.0), ("Croissant", 1.6, 3.2),
      ("Blueberry muffin", 2.4, 3.8), ("Chai latte", 3.2, 4.9), ("Avocado toast", 7.5, 11.0),
      ("Orange juice", 3.0, 4.5), ("Bagel with cream cheese", 3.5, 5.5), ("Cheesecake slice", 3.9, 5.9))),
    (("{prefix}{root} Market", "Fresh Basket {city}", "{last}'s Grocery"),
     (("Bananas 1kg", 1.2, 2.5), ("Whole milk 1L", 0.9, 1.8), ("Sourdough bread", 2.5, 4.9),
      ("Free-range eggs x10", 2.9, 4.5), ("Cheddar 400g", 3.5, 6.0), ("Tomatoes 500g", 1.5, 3.2),
      ("Olive oil 750ml", 5.5, 11.0), ("Pasta 500g", 0.9, 2.4), ("Ground coffee 250g", 3.9, 7.5),
      ("Sparkling water 6x1.5L", 2.5, 5.0), ("Dish soap", 1.5, 3.5), ("Apples 1.5kg", 2.5, 4.5))),
    (("{last} Hardware", "{prefix}{root} DIY Centre", "Tool Depot {city}"),
     (("Wood screws 4x40 (200)", 4.5, 9.0), ("Cordless drill 18V", 59, 149), ("Paint roller set", 8, 18),
      ("Wall paint white 10L", 29, 69), ("Masking tape 50m", 2.5, 6.0), ("Spirit level 60cm", 12, 35),
      ("Extension cable 5m", 9, 22), ("Sandpaper assortment", 4, 11), ("Wall plugs 6mm (100)", 3, 7))),
    (("{root_cap} Books", "The Reading Room", "{last} & Sons Booksellers"),
     (("Paperback novel", 8.99, 14.99), ("Hardcover biography", 19.9, 32), ("Notebook A5 dotted", 6.5, 14),
      ("Children's picture book", 7.9, 16), ("Travel guide", 14, 26), ("Gift wrapping", 1, 3),
      ("Fountain pen cartridges", 2.5, 5.5), ("Cookbook", 18, 35), ("Bookmark", 1.5, 4))),
    (("{city} Pharmacy", "{prefix}{root} Apotheke", "HealthPlus Pharmacy {last}"),
     (("Ibuprofen 400mg x20", 3.5, 7.9), ("Vitamin D3 drops", 6, 14), ("Hand cream 75ml", 4.5, 11),
      ("Plasters assorted", 2.5, 5.5), ("Throat lozenges", 4, 8.5), ("Sunscreen SPF 50", 9, 19),
      ("Nasal spray", 3.9, 7.5), ("Digital thermometer", 8, 19))),
    (("Trattoria {first}", "Bistro {last}", "The {prefix} Fork"),
     (("Margherita pizza", 8.5, 13), ("Spaghetti carbonara", 11, 16), ("Caesar salad", 9, 14),
      ("Grilled salmon", 19, 28), ("House red wine 0.2L", 5, 8), ("Tiramisu", 6, 9),
      ("Sparkling water 0.75L", 4, 7), ("Beef burger with fries", 14, 21), ("Soup of the day", 5.5, 8.5),
      ("Espresso", 2, 3.2))),
    (("{prefix}{root} Electronics", "{last} Tech Store", "Gadget Corner {city}"),
     (("USB-C cable 2m", 9, 24), ("Wireless mouse", 19, 49), ("HDMI adapter", 12, 29),
      ("Power bank 10000mAh", 25, 59), ("Screen protector", 8, 19), ("AA batteries (8)", 5, 11),
      ("Bluetooth headphones", 39, 129), ("Memory card 128GB", 15, 35))),
)
RECEIPT_FOOTER = (
    "Thank you for your visit!", "Thank you for shopping with us.",
    "Please keep this receipt for returns within {days} days.",
    "Exchanges only with the original receipt.", "Prices include VAT where applicable.",
    "Join our loyalty programme and collect points on every purchase.",
    "We look forward to seeing you again soon.", "Opening hours: Mon-Sat 8:00-20:00.",
    "Rate your experience on our website and win a voucher.",
    "Goods sold remain our property until paid in full.", "This is your tax receipt.",
    "Free Wi-Fi for customers: ask at the counter.",
    "Gift vouchers are available at the till and make the perfect present.",
    "Refunds are made to the original method of payment.",
    "Sale items cannot be returned unless they are faulty.",
    "Please check your change before leaving the counter.",
    "Sign up for our newsletter and receive 10% off your next purchase.",
    "Have a nice day and see you soon!",
)
RECEIPT_SLOGANS = ("Quality you can trust since {year}", "Your local shop for everything you need",
                   "Fresh every day", "Family-run since {year}", "Open seven days a week")


def gen_receipt(ctx):
    r = ctx.r
    currency = r.choice(CURRENCIES)
    country = _country_for(r, currency)
    names, catalogue = r.choice(MERCHANTS)
    first, last, _ = _person(r)
    city = r.choice(country.cities)
    merchant = _say(r, names, {"last": last, "first": first, "prefix": NAME_PREFIX,
                               "root": NAME_ROOT, "city": city[0]})
    money = Money(ctx, currency)
    fmt = _date_fmt(r, country)
    day = _rand_date(r)
    clock = f"{r.randint(7, 21):02d}:{r.randrange(60):02d}"
    number = _fill(r, r.choice(("######", "R-%####", "%##-0#-#####", "TXN%#######", "%###/####")))
    rate = r.choice(country.tax_rates)

    lines = []
    for name, lo, hi in r.sample(catalogue, r.randint(3, 6) if ctx.short else r.randint(4, len(catalogue))):
        q = 1 if r.random() < 0.7 else r.randint(2, 4)
        lines.append((name, q, money.minor(r, lo, hi)))
    total = sum(q * u for _, q, u in lines)
    tax = total - int(round(total * 100 / (100 + rate)))  # prices are gross: tax is included

    blocks = [("title" if r.random() < 0.5 else "heading", merchant)]
    if r.random() < 0.3:
        blocks.append(("para", _say(r, RECEIPT_SLOGANS)))
    head = _address(r, country, city=city) + [r.choice(("Tel. ", "Phone: ", "")) + _phone(r, country)]
    if r.random() < 0.5:
        head.append(f"www.{_company_domain(r, merchant, country)}")
    blocks.append(("para", "\n".join(head)))
    number_label = r.choice(("Receipt No.:", "Receipt #", "Receipt number:", "Trans. #:", "Bon No.:", "Rcpt:"))
    meta = [(number_label, number), (r.choice(("Date:", "Date/Time:", "Date")), f"{fmt(day)} {clock}")]
    if r.random() < 0.5:
        meta.append((r.choice(("Cashier:", "Served by:", "Operator:")), r.choice(FIRST_F + FIRST_M)))
    if r.random() < 0.4:
        meta.append((r.choice(("Register:", "Till:", "POS:")), str(r.randint(1, 12))))
    r.shuffle(meta)
    blocks.append(("kv", meta, "left"))
    if r.random() < 0.5:
        rows = [[f"{q} x {n}" if q > 1 else n, money.number(q * u)] for n, q, u in lines]
        blocks.append(("table", None, rows, "lr"))
    else:
        rows = [[n, str(q), money.number(u), money.number(q * u)] for n, q, u in lines]
        blocks.append(("table", ["Item", "Qty", "Price", "Amount"], rows, "lrrr"))
    blocks.append(("rule",))
    totals = [(r.choice(("TOTAL", "Total", "AMOUNT DUE", "Total to pay", "GRAND TOTAL")), money(total))]
    if rate:
        totals.append((f"incl. {country.tax_label} {rate:g}%", money(tax)))
    if r.random() < 0.55:
        card = r.choice(("VISA", "Mastercard", "Maestro", "AMEX", "Debit card"))
        totals.append((r.choice(("Paid by", "Payment:", "Card")), f"{card} **** {_fill(r, '####')}"))
        if r.random() < 0.5:
            totals.append(("Auth. code:", _fill(r, "%#####")))
    else:
        step = 1000 if not money.decimals else 500
        tendered = (total // step + 1) * step
        totals += [("Cash", money(tendered)), ("Change", money(tendered - total))]
    blocks.append(("kv", totals, "right"))
    blocks.append(("para", f"Number of items: {sum(q for _, q, _ in lines)}"))
    if r.random() < 0.4:
        blocks.append(("kv", [("Loyalty card:", f"**** {_fill(r, '####')}"),
                              ("Points earned:", str(r.randint(1, 60))),
                              ("Points balance:", str(r.randint(60, 2400)))], "left"))
    blocks.append(("para", _sentences(r, RECEIPT_FOOTER, r.randint(2, 3) if ctx.short else r.randint(3, 6), {})))
    if r.random() < 0.5:
        blocks.append(("small", f"VAT No. {_fill(r, country.vat_id)}", "left"))

    fields = {"number": number, "issue_date": day.isoformat(), "total_amount": money.value(total),
              "currency": currency, "issuer": merchant, "title": None}
    return Doc(f"Receipt {number} - {merchant}", blocks, fields, narrow=r.random() < 0.5)


# --------------------------------------------------------------------------- contracts

CONTRACT_TYPES = (  # titles, kinds of party A and B, roles of A and B, specific clauses
    (("Service Agreement", "Services Agreement"), "cc", ("Client", "Service Provider"), ("services", "fees")),
    (("Master Services Agreement",), "cc", ("Customer", "Supplier"), ("services", "fees", "warranties")),
    (("Consulting Agreement", "Independent Contractor Agreement"), "cp", ("Company", "Consultant"),
     ("services", "fees", "ip")),
    (("Non-Disclosure Agreement", "Mutual Non-Disclosure Agreement", "Confidentiality Agreement"), "cc",
     ("Disclosing Party", "Receiving Party"), ("nda",)),
    (("Employment Contract", "Employment Agreement"), "cp", ("Employer", "Employee"), ("employment",)),
    (("Residential Lease Agreement", "Tenancy Agreement"), "pp", ("Landlord", "Tenant"), ("lease",)),
    (("Software License Agreement", "Licence Agreement"), "cc", ("Licensor", "Licensee"), ("license", "fees")),
    (("Supply Agreement", "Framework Supply Agreement"), "cc", ("Buyer", "Supplier"), ("supply", "warranties")),
)
CLAUSES = {
    "services": ("Scope of Services", (
        "The {b} shall provide the services described in Schedule {k} (the \"Services\") with reasonable skill and care.",
        "The {b} shall assign suitably qualified personnel to perform the Services.",
        "Any change to the scope of the Services must be agreed in writing by both parties.",
        "The {a} shall give the {b} timely access to the information, premises and staff reasonably required.",
        "The {b} shall report on the progress of the Services at least once every {k} weeks.")),
    "fees": ("Fees and Payment", (
        "In consideration of the Services, the {a} shall pay the {b} a fee of {amount} per {period}.",
        "Invoices are payable within {days} days of receipt.",
        "All fees are exclusive of value added tax, which shall be added at the applicable rate.",
        "Late payments shall bear interest at {k}% per annum above the base rate.",
        "The {b} may suspend performance if an undisputed invoice remains unpaid for more than {days} days.")),
    "warranties": ("Warranties", (
        "Each party warrants that it has full power and authority to enter into this Agreement.",
        "The {b} warrants that all deliverables will conform to the agreed specifications for {months} months.",
        "Except as expressly stated, all other warranties, express or implied, are excluded to the fullest extent permitted by law.")),
    "ip": ("Intellectual Property", (
        "All intellectual property rights in the deliverables shall vest in the {a} upon full payment.",
        "The {b} retains ownership of its pre-existing materials and grants the {a} a non-exclusive licence to use them.",
        "Neither party shall use the other party's trademarks without prior written consent.")),
    "nda": ("Obligations of the Receiving Party", (
        "The {b} shall keep the Confidential Information strictly confidential and use it solely for the Purpose.",
        "The {b} shall not disclose the Confidential Information to any third party without the prior written consent of the {a}.",
        "These obligations do not apply to information that is or becomes publicly available through no fault of the {b}.",
        "Upon request, the {b} shall promptly return or destroy all documents containing Confidential Information.",
        "The obligations under this clause survive for {years} years after the end of this Agreement.")),
    "employment": ("Position, Remuneration and Working Hours", (
        "The {b} is employed as {job} and reports to the {boss}.",
        "The {b} shall receive a gross annual salary of {amount}, payable in twelve monthly instalments.",
        "The normal working time is {hours} hours per week, Monday to Friday.",
        "The {b} is entitled to {leave} working days of paid annual leave per calendar year.",
        "The first {k} months of employment constitute a probationary period.",
        "Overtime is compensated in accordance with the company's overtime policy.")),
    "lease": ("Rent and Use of the Premises", (
        "The {a} lets to the {b} the apartment located at {premises} (the \"Premises\").",
        "The monthly rent is {amount}, payable in advance on the first day of each month.",
        "The {b} shall pay a security deposit equal to {k} months' rent before moving in.",
        "The {b} shall use the Premises solely as a private residence and shall not sublet them without consent.",
        "The {b} shall keep the Premises in good and clean condition and report any damage without delay.",
        "Minor repairs up to {small} per incident are borne by the {b}.")),
    "license": ("Grant of Licence", (
        "The {a} grants the {b} a non-exclusive, non-transferable licence to use the Software for its internal business purposes.",
        "The licence covers up to {n} named users.",
        "The {b} shall not reverse engineer, decompile or modify the Software except as permitted by law.",
        "The {a} shall provide updates and support during the term of this Agreement.")),
    "supply": ("Orders and Delivery", (
        "The {a} may place orders for the products listed in Schedule {k} at the prices stated therein.",
        "The {b} shall deliver the products within {days} days of receiving an order.",
        "Risk passes to the {a} upon delivery to the agreed delivery address.",
        "The {a} shall inspect the products upon delivery and notify the {b} of visible defects within {k} business days.")),
}
GENERAL_CLAUSES = (
    ("Term and Termination", (
        "This Agreement commences on the Effective Date and continues for an initial term of {months} months.",
        "Thereafter it renews automatically for successive periods of twelve months unless terminated in accordance with this clause.",
        "Either party may terminate this Agreement by giving not less than {notice} days' written notice.",
        "Either party may terminate this Agreement with immediate effect if the other party commits a material breach which is not remedied within {days} days.",
        "Termination shall not affect any rights or obligations accrued before the date of termination.")),
    ("Confidentiality", (
        "Each party shall keep confidential all information received from the other party in connection with this Agreement.",
        "This obligation does not apply to information that is already public or that must be disclosed by law.",
        "The obligations in this clause survive termination of this Agreement for {years} years.")),
    ("Limitation of Liability", (
        "Neither party excludes or limits liability for death or personal injury caused by its negligence, or for fraud.",
        "Subject to the foregoing, neither party shall be liable for any indirect or consequential loss.",
        "Each party's total liability under this Agreement shall not exceed the amounts paid in the {months} months preceding the claim.")),
    ("Data Protection", (
        "Each party shall comply with all applicable data protection laws.",
        "Where one party processes personal data on behalf of the other, the parties shall enter into a separate data processing agreement.",
        "Personal data shall be deleted once it is no longer required for the purposes of this Agreement.")),
    ("Force Majeure", (
        "Neither party shall be liable for any delay or failure to perform caused by events beyond its reasonable control.",
        "The affected party shall notify the other party without undue delay and use reasonable efforts to mitigate the effects.",
        "If such an event continues for more than {days} days, either party may terminate this Agreement by written notice.")),
    ("Notices", (
        "Notices under this Agreement shall be given in writing and delivered by hand, by registered post or by e-mail.",
        "Notices are deemed received on the second business day after posting.",
        "Each party shall notify the other of any change of its address for notices.")),
    ("Assignment", (
        "Neither party may assign or transfer its rights or obligations under this Agreement without the prior written consent of the other party.",
        "Such consent shall not be unreasonably withheld or delayed.")),
    ("Entire Agreement", (
        "This Agreement constitutes the entire agreement between the parties and supersedes all prior negotiations and understandings.",
        "Amendments to this Agreement are only valid if made in writing and signed by both parties.",
        "If any provision of this Agreement is held invalid, the remaining provisions remain in full force and effect.")),
    ("Governing Law and Jurisdiction", (
        "This Agreement shall be governed by and construed in accordance with the laws of {law}.",
        "The courts of {court} shall have exclusive jurisdiction over any dispute arising out of or in connection with this Agreement.",
        "The parties shall first attempt to resolve any dispute amicably through good-faith negotiations.")),
)
DEFINITIONS_CLAUSE = ("Definitions and Interpretation", (
    "In this Agreement, capitalised terms have the meanings given to them in this clause.",
    "\"Business Day\" means a day other than a Saturday, Sunday or public holiday in {court}.",
    "\"Confidential Information\" means all information of a confidential nature disclosed by one party to the other.",
    "References to clauses and schedules are to the clauses of and schedules to this Agreement.",
    "Headings are for convenience only and do not affect the interpretation of this Agreement."))
GOVERNING_LAW = {"US": ("the State of New York", "the State of Delaware", "the State of California"),
                 "UK": ("England and Wales", "Scotland"), "NL": ("the Netherlands",)}
JOB_TITLES = ("Senior Accountant", "Software Engineer", "Marketing Manager", "Project Coordinator",
              "Sales Representative", "Data Analyst", "Office Manager", "Mechanical Engineer",
              "Customer Success Manager", "HR Business Partner", "Product Designer", "Nurse")


def _party_description(r, kind, country):
    if kind == "c":
        return r.choice((
            f"a company incorporated in {country.name} under registration number {_fill(r, '%#######')}, "
            f"having its registered office at {', '.join(_address(r, country))}",
            f"a {country.name} company with its principal place of business at {', '.join(_address(r, country))}",
            f"with offices at {', '.join(_address(r, country))}"))
    return r.choice((f"residing at {', '.join(_address(r, country))}",
                     f"of {', '.join(_address(r, country))}",
                     f"an individual resident in {_city(r, country)}"))


def gen_contract(ctx):
    r = ctx.r
    titles, kinds, roles, specific = r.choice(CONTRACT_TYPES)
    title = r.choice(titles)
    country = r.choice(COUNTRIES)
    money = Money(ctx, country.currency)
    fmt = _date_fmt(r, country)
    effective = _rand_date(r)
    parties = [_company(r, country) if k == "c" else _name(r, middle=0.05) for k in kinds]
    a, b = roles
    slots = {"a": a, "b": b, "period": ("month", "calendar month", "quarter"),
             "months": ("6", "12", "12", "24", "36"), "notice": ("30", "60", "90"),
             "years": ("2", "3", "5"), "law": GOVERNING_LAW.get(country.code, (country.name,)),
             "court": _city(r, country),
             "job": JOB_TITLES, "boss": ("Head of Operations", "Managing Director", "Chief Technology Officer",
                                          "Head of Finance"),
             "hours": ("37.5", "38", "40", "35"), "leave": ("25", "28", "30", "20"),
             "premises": ", ".join(_address(r, country)),
             "amount": money(money.minor(r, 900, 9000, 100 if money.decimals else 1000)
                             * (12 if "employment" in specific else 1)),
             "small": money(money.minor(r, 80, 150, 100 if money.decimals else 1000))}

    descs = [_party_description(r, k, country) for k in kinds]
    date_s = fmt(effective)
    opening = r.randrange(4)
    blocks = []
    if opening == 3:
        blocks.append(("small", f"Contract ref. {_fill(r, '@@-####-###')}", "right"))
    blocks.append(("title", title))
    if opening == 0:
        blocks.append(("para", f"This {title} (the \"Agreement\") is entered into as of {date_s} (the \"Effective Date\") "
                               f"by and between {parties[0]}, {descs[0]} (the \"{a}\"), and {parties[1]}, {descs[1]} "
                               f"(the \"{b}\")."))
    elif opening == 1:
        blocks += [("kv", [("Effective Date:", date_s)], "left"),
                   ("para", f"This Agreement is made between {parties[0]} and {parties[1]}."),
                   ("heading", "Parties"),
                   ("para", f"(1) {parties[0]}, {descs[0]} (the \"{a}\"); and\n(2) {parties[1]}, {descs[1]} (the \"{b}\")."),
                   ("para", "The parties agree as follows:")]
    elif opening == 2:
        blocks += [("para", f"THIS AGREEMENT is dated {date_s}."),
                   ("heading", "PARTIES"),
                   ("para", f"1. {parties[0]}, {descs[0]} (\"{a}\").\n2. {parties[1]}, {descs[1]} (\"{b}\")."),
                   ("para", f"This Agreement is concluded between {parties[0]} and {parties[1]} and takes effect on "
                            f"{date_s} (the \"Effective Date\").")]
    else:
        blocks += [("kv", [(f"{a}:", parties[0]), (f"{b}:", parties[1]),
                           (r.choice(("Effective Date:", "Commencement date:", "Effective as of:")), date_s)], "left"),
                   ("para", f"The {a} and the {b} (together the \"Parties\") enter into this {title} between "
                            f"{parties[0]} and {parties[1]} on the following terms.")]
    if not ctx.short and r.random() < 0.6:
        blocks += [("heading", r.choice(("Background", "Recitals", "WHEREAS"))),
                   ("para", r.choice((
                       f"The {a} wishes to engage the {b} on the terms set out below, and the {b} has agreed to this engagement.",
                       "The parties have discussed a possible cooperation and wish to record the terms on which they will work together.",
                       f"The {b} has the expertise required by the {a}, and both parties wish to set out their rights and obligations in writing.")))]

    chosen = ([DEFINITIONS_CLAUSE] if not ctx.short and r.random() < 0.5 else []) + [CLAUSES[k] for k in specific]
    general = r.sample(GENERAL_CLAUSES, 2 if ctx.short else r.randint(5, len(GENERAL_CLAUSES)))
    chosen += [c for c in GENERAL_CLAUSES if c in general]   # keep the conventional order
    numbering = r.randrange(3)
    for no, (heading, sentences) in enumerate(chosen[:3] if ctx.short else chosen, 1):
        blocks.append(("heading", (f"{no}. {heading}", f"Clause {no} - {heading}", f"ARTICLE {no}: {heading.upper()}")[numbering]))
        n = min(len(sentences), r.randint(1, 3) if ctx.short else r.randint(3, 5))
        picked = [sentences[k] for k in sorted(r.sample(range(len(sentences)), n))]   # keep their order
        if numbering == 0 and not ctx.short:
            blocks.append(("para", "\n".join(f"{no}.{k} {_say(r, s, slots)}" for k, s in enumerate(picked, 1))))
        else:
            blocks.append(("para", " ".join(_say(r, s, slots) for s in picked)))

    blocks.append(("para", r.choice((
        "IN WITNESS WHEREOF, the parties have executed this Agreement as of the Effective Date.",
        "Signed by the duly authorised representatives of the parties.",
        f"Signed in two counterparts in {_city(r, country)}."))))
    for role, kind, party in zip(roles, kinds, parties):
        signer = party if kind == "p" else _name(r)
        rows = [(f"For the {role}:", party)] if kind == "c" else [(f"{role}:", party)]
        rows += [("Signature:", "______________________")]
        if kind == "c":
            rows += [("Name:", signer), ("Title:", r.choice(("Managing Director", "CEO", "Director",
                                                             "Authorised Signatory", "Head of Legal")))]
        rows.append(("Date:", "______________"))
        blocks.append(("kv", rows, "left"))

    fields = {"parties": parties, "effective_date": effective.isoformat(), "title": title}
    return Doc(title, blocks, fields)


# --------------------------------------------------------------------------- resumes

PROFESSIONS = (
    {"titles": ("Software Engineer", "Senior Backend Developer", "Full-Stack Developer", "Engineering Team Lead",
                "DevOps Engineer"),
     "bullets": ("Designed and implemented {system} serving {big} daily users",
                 "Reduced {tech_metric} by {pct}% by {tech_how}",
                 "Led a team of {k} engineers to deliver {system} on schedule",
                 "Migrated {system} from {old} to {new} with zero downtime",
                 "Introduced {practice}, cutting release cycle time from {k} weeks to days",
                 "Mentored {k} junior developers and ran internal workshops on {skill}"),
     "slots": {"system": ("the order management platform", "a real-time pricing service", "the public REST API",
                          "an internal data pipeline", "the customer portal", "a mobile banking backend"),
               "tech_metric": ("API latency", "cloud costs", "build times", "error rates", "page load time"),
               "tech_how": ("introducing caching", "rewriting hot paths in Go", "rightsizing instances",
                            "parallelising the test suite", "adding observability"),
               "old": ("a monolith", "on-premise servers", "Python 2", "a legacy Oracle database"),
               "new": ("microservices", "Kubernetes", "AWS", "PostgreSQL"),
               "practice": ("continuous delivery", "trunk-based development", "automated canary releases")},
     "skills": ("Python", "Go", "Java", "TypeScript", "PostgreSQL", "Kubernetes", "Docker", "AWS", "Terraform",
                "React", "Kafka", "CI/CD", "gRPC", "Linux", "Redis"),
     "degrees": ("BSc Computer Science", "MSc Software Engineering", "BEng Electrical Engineering"),
     "certs": ("AWS Certified Solutions Architect", "Certified Kubernetes Administrator", "Oracle Certified Java Programmer")},
    {"titles": ("Data Scientist", "Senior Data Analyst", "Machine Learning Engineer", "Analytics Lead"),
     "bullets": ("Built {model} that improved {biz_metric} by {pct}%",
                 "Automated the {report} saving {k} analyst days per month",
                 "Designed A/B tests for {area} and presented results to senior management",
                 "Developed dashboards tracking {biz_metric} across {k} markets",
                 "Cleaned and integrated {big} records from {k} source systems",
                 "Deployed {model} to production using {skill}"),
     "slots": {"model": ("a churn prediction model", "a demand forecasting model", "a recommendation engine",
                         "a fraud detection classifier"),
               "biz_metric": ("conversion", "retention", "forecast accuracy", "average basket size"),
               "report": ("weekly sales report", "monthly KPI pack", "quarterly board report"),
               "area": ("the checkout flow", "pricing", "email campaigns", "onboarding")},
     "skills": ("Python", "SQL", "pandas", "scikit-learn", "PyTorch", "Spark", "Tableau", "Power BI",
                "statistics", "Airflow", "dbt", "R"),
     "degrees": ("MSc Data Science", "MSc Statistics", "PhD Physics", "BSc Mathematics"),
     "certs": ("Google Professional Data Engineer", "Databricks Certified Associate", "Tableau Desktop Specialist")},
    {"titles": ("Marketing Manager", "Digital Marketing Specialist", "Brand Manager", "Content Strategist"),
     "bullets": ("Planned and executed {campaign} reaching {big} people",
                 "Grew organic traffic by {pct}% within {k} months",
                 "Managed an annual budget of {budget} across {k} channels",
                 "Launched {product} in {k} European markets",
                 "Coordinated agencies and freelancers for {campaign}",
                 "Increased newsletter open rates from {k}% to {n}%"),
     "slots": {"campaign": ("a national TV campaign", "the spring product launch", "a social media campaign",
                            "the rebranding project"),
               "product": ("a new product line", "the premium subscription", "a loyalty app"),
               "budget": ("EUR 1.2 million", "USD 800,000", "GBP 450,000")},
     "skills": ("SEO", "Google Analytics", "HubSpot", "copywriting", "campaign planning", "Adobe Creative Suite",
                "social media", "market research", "budgeting", "CRM"),
     "degrees": ("BA Marketing", "MA Communication", "BSc Business Administration"),
     "certs": ("Google Ads Certification", "HubSpot Inbound Marketing", "CIM Diploma in Professional Marketing")},
    {"titles": ("Accountant", "Senior Financial Analyst", "Finance Manager", "Controller"),
     "bullets": ("Prepared monthly and annual financial statements under {standard}",
                 "Reduced the month-end close from {n} to {k} days",
                 "Supported the annual audit and liaised with external auditors",
                 "Managed accounts payable for {k} subsidiaries",
                 "Built a rolling forecast model used by the executive team",
                 "Implemented {erp} across the finance department"),
     "slots": {"standard": ("IFRS", "US GAAP", "HGB", "UK GAAP"), "erp": ("SAP S/4HANA", "Oracle NetSuite", "Microsoft Dynamics")},
     "skills": ("IFRS", "Excel", "SAP", "financial modelling", "VAT compliance", "budgeting", "consolidation",
                "audit preparation", "Power BI"),
     "degrees": ("BSc Accounting and Finance", "MSc Finance", "ACCA qualification", "BA Economics"),
     "certs": ("ACCA", "CPA", "CFA Level II", "SAP FI Certification")},
    {"titles": ("Registered Nurse", "Senior Staff Nurse", "Clinical Nurse Specialist", "Ward Manager"),
     "bullets": ("Provided care for up to {k} patients per shift on a {ward} ward",
                 "Trained {n} new staff members in {procedure}",
                 "Coordinated discharge planning with social services and families",
                 "Introduced a checklist that reduced medication errors by {pct}%",
                 "Led infection prevention audits for the {ward} department"),
     "slots": {"ward": ("surgical", "cardiology", "paediatric", "emergency", "oncology"),
               "procedure": ("wound care", "IV therapy", "patient handling", "triage")},
     "skills": ("patient assessment", "medication administration", "wound care", "electronic health records",
                "triage", "infection control", "team leadership", "BLS/ALS certified"),
     "degrees": ("BSc Nursing", "MSc Advanced Clinical Practice", "Diploma in Nursing"),
     "certs": ("Advanced Life Support (ALS)", "Mentorship in Practice", "Infection Prevention Link Nurse")},
    {"titles": ("Mechanical Engineer", "Design Engineer", "Production Engineer", "Project Engineer"),
     "bullets": ("Designed {part} using {cad}, from concept to series production",
                 "Cut material costs by {pct}% through design for manufacturing",
                 "Ran FEA simulations to validate {part}",
                 "Supervised the commissioning of {k} production lines",
                 "Managed supplier qualification for {part}"),
     "slots": {"part": ("a hydraulic valve assembly", "gearbox housings", "a battery cooling plate",
                        "packaging machinery"), "cad": ("SolidWorks", "CATIA", "Siemens NX")},
     "skills": ("SolidWorks", "CATIA", "FEA", "GD&T", "lean manufacturing", "Six Sigma", "MATLAB", "project management"),
     "degrees": ("BEng Mechanical Engineering", "MSc Mechanical Engineering", "Dipl.-Ing. Maschinenbau"),
     "certs": ("Six Sigma Green Belt", "Certified SolidWorks Professional", "Chartered Engineer (CEng)")},
    {"titles": ("Project Manager", "Senior Programme Manager", "Operations Manager", "Scrum Master"),
     "bullets": ("Delivered {project} on time and {pct}% under budget",
                 "Managed a cross-functional team of {n} people in {k} countries",
                 "Introduced agile practices across {k} delivery teams",
                 "Negotiated contracts with suppliers worth {budget}",
                 "Reported progress and risks to the steering committee every month"),
     "slots": {"project": ("an ERP rollout", "the warehouse automation project", "a site relocation",
                           "the customer portal relaunch"),
               "budget": ("EUR 3 million", "USD 2.5 million", "GBP 900,000")},
     "skills": ("PRINCE2", "Scrum", "risk management", "stakeholder management", "MS Project", "Jira",
                "budget control", "change management"),
     "degrees": ("MBA", "BSc Business Administration", "MSc Industrial Engineering"),
     "certs": ("PRINCE2 Practitioner", "PMP", "Certified ScrumMaster")},
)
RESUME_SUMMARY = (
    "{adj_cap} {role} with {years} years of experience in {domain}.",
    "Proven track record of delivering results in fast-paced, international environments.",
    "Known for clear communication and a structured, hands-on approach.",
    "Looking for a new challenge in a growing, mission-driven organisation.",
    "Passionate about continuous improvement and mentoring others.",
    "Comfortable working with stakeholders at every level of the organisation.",
)


MONTH_YEAR = (lambda d: f"{MONTHS[d.month - 1][:3]} {d.year}", lambda d: f"{d.month:02d}/{d.year}",
              lambda d: f"{MONTHS[d.month - 1]} {d.year}")


def gen_resume(ctx):
    r = ctx.r
    prof = r.choice(PROFESSIONS)
    country = r.choice(COUNTRIES)
    name = _name(r, middle=0.1)
    email = _email(r, name)
    phone = _phone(r, country)
    city = _city(r, country)
    role = r.choice(prof["titles"])
    years = r.randint(3, 22)
    slots = dict(prof["slots"], skill=prof["skills"], adj=("results-driven", "experienced", "versatile",
                 "detail-oriented", "motivated"), role=role.lower() if role[1:].islower() else role,
                 years=str(years), domain=("B2B software", "retail", "healthcare", "manufacturing",
                                           "financial services", "the public sector", "logistics"))

    blocks = []
    email_label = r.choice(("Email:", "E-mail:", "Mail:"))
    header = r.randrange(3)
    if header == 0:
        blocks += [("title", name), ("para", role),
                   ("kv", [(email_label, email), (r.choice(("Phone:", "Tel.:", "Mobile:")), phone),
                           ("Location:", f"{city}, {country.name}")], "left")]
    elif header == 1:
        blocks += [("title", name), ("para", f"{email} | {phone} | {city}, {country.name}")]
    else:
        blocks += [("title", r.choice(("Curriculum Vitae", "CURRICULUM VITAE", "Résumé"))),
                   ("kv", [("Name:", name), (email_label, email), ("Phone:", phone),
                           ("Address:", ", ".join(_address(r, country, with_country=True)))], "left")]
    if r.random() < 0.3:
        blocks.append(("small", f"linkedin.com/in/{_slug(name)}", "left"))

    blocks += [("heading", r.choice(("Profile", "Summary", "About me", "Professional Summary"))),
               ("para", _sentences(r, RESUME_SUMMARY, 2 if ctx.short else r.randint(3, 5), slots))]
    blocks.append(("heading", r.choice(("Experience", "Work Experience", "Professional Experience",
                                        "Employment History"))))
    end = _rand_date(r, 2023, 2025)
    month_year = r.choice(MONTH_YEAR)
    job_kind = r.choice(("heading", "para"))
    job_line = r.choice(("{title}, {company}", "{title} at {company}", "{company} - {title}"))
    bullets = []
    for job in range(2 if ctx.short else r.randint(2, 4)):
        start = end - dt.timedelta(days=r.randint(400, 1800))
        until = "Present" if job == 0 else month_year(end)
        company = _company(r, r.choice(COUNTRIES))
        title = role if job == 0 else r.choice(prof["titles"])
        blocks.append((job_kind, job_line.format(title=title, company=company) + f" ({month_year(start)} – {until})"))
        n = 2 if ctx.short else r.randint(3, 5)
        if len(bullets) < n:   # draw achievements without repeats until the pool runs dry
            bullets = r.sample(prof["bullets"], len(prof["bullets"]))
        blocks.append(("bullets", [_say(r, b, slots) for b in bullets[:n]]))
        bullets = bullets[n:]
        end = start - dt.timedelta(days=r.randint(0, 120))
    blocks.append(("heading", "Education"))
    grad = end.year - r.randint(0, 2)
    for degree_name in r.sample(prof["degrees"], 1 if ctx.short else r.randint(1, 2)):
        degree = (f"{degree_name}, University of {_city(r, r.choice(COUNTRIES))}, "
                  f"{grad - r.randint(2, 4)}–{grad}")
        if not ctx.short and r.random() < 0.5:
            degree += "\n" + r.choice(("Graduated with distinction.", "Final grade: 1.3 (very good).",
                                        "First-class honours.", "Thesis on " + _say(r, "{skill}", slots)
                                        + " in practice.", "Exchange semester abroad."))
        blocks.append(("para", degree))
        grad -= r.randint(2, 4)
    blocks += [("heading", r.choice(("Skills", "Core Competencies", "Key Skills"))),
               ("para", ", ".join(r.sample(prof["skills"], r.randint(5, min(10, len(prof["skills"]))))))]
    if not ctx.short:
        if r.random() < 0.6:
            blocks += [("heading", "Certifications"),
                       ("bullets", r.sample(prof["certs"], r.randint(1, len(prof["certs"]))))]
        langs = r.sample(("English (fluent)", "German (native)", "French (B2)", "Spanish (conversational)",
                          "Italian (C1)", "Japanese (N2)", "Dutch (native)", "Mandarin (basic)"), r.randint(2, 3))
        blocks += [("heading", "Languages"), ("para", ", ".join(langs))]
        if r.random() < 0.5:
            blocks += [("heading", r.choice(("Interests", "Volunteering"))),
                       ("para", r.choice(("Marathon running, photography and cooking.",
                                          "Volunteer coach for a youth football team since 2019.",
                                          "Hiking, chess and contributing to open-source projects.",
                                          "Member of the local choir; enjoys travelling and languages.")))]
        if r.random() < 0.4:
            blocks.append(("para", "References available on request."))
    fields = {"name": name, "email": email, "title": None}
    return Doc(r.choice((f"{name} - CV", f"CV {name}", f"Resume of {name}")), blocks, fields)


# --------------------------------------------------------------------------- letters

LETTER_TYPES = (  # subject templates, body sentences in reading order
    (("Complaint regarding order {ref}", "Defective delivery - order {ref}"), (
        "I am writing to complain about the delivery we received on {weekday} under order {ref}.",
        "Several items were damaged on arrival and the packaging was clearly inadequate.",
        "In addition, two cartons were missing although the delivery note lists them as shipped.",
        "This is the second time this year that we have experienced such problems.",
        "We have been a loyal customer for more than {k} years and expect this matter to be resolved promptly.",
        "Photographs of the damaged items are enclosed for your reference.",
        "We would ask you to replace the damaged goods free of charge within {days} days.",
        "Please also let us know what steps you will take to prevent a recurrence.",
        "If we do not hear from you by the end of the month, we will have to reconsider our business relationship.")),
    (("Reference for {candidate}", "Letter of recommendation"), (
        "It is my pleasure to recommend {candidate}, who worked in my team for {k} years.",
        "{candidate} joined us as a junior colleague and quickly took on responsibility for key accounts.",
        "During this time {candidate} consistently delivered work of the highest quality.",
        "{candidate} is reliable, well organised and quick to learn new skills.",
        "Colleagues and clients alike valued the friendly and professional manner in which tasks were handled.",
        "I was particularly impressed by the way {candidate} led our office move last year.",
        "I have no doubt that {candidate} will be an asset to any organisation.",
        "Please do not hesitate to contact me should you require any further information.")),
    (("Application for the position of {job}", "Application: {job}"), (
        "I am writing to apply for the position of {job} advertised on your website.",
        "With {k} years of relevant experience, I am confident that I can make a valuable contribution to your team.",
        "In my current role I am responsible for planning, budgeting and coordinating a team of {n} people.",
        "Before that, I gained broad experience in customer-facing roles in an international environment.",
        "I am particularly attracted by your company's commitment to quality and innovation.",
        "I enjoy solving problems together with colleagues from different backgrounds.",
        "My CV is enclosed, and I would welcome the opportunity to discuss my application in an interview.",
        "I am available to start after a notice period of {k} months.")),
    (("Adjustment of our prices from {month} {year}", "Price change notification"), (
        "We would like to inform you that our prices will increase by {pct}% from the beginning of {month}.",
        "This step has become necessary due to rising energy, material and transport costs.",
        "We have absorbed these increases for as long as possible.",
        "At the same time, we continue to invest in product quality and faster delivery.",
        "Orders placed before the end of this month will still be invoiced at the current prices.",
        "The updated price list is enclosed with this letter.",
        "Your account manager will be happy to discuss volume discounts with you.",
        "We thank you for your understanding and your continued trust.")),
    (("Notice of termination - contract {ref}", "Termination of our agreement"), (
        "We hereby give notice to terminate contract {ref} with effect from the next possible date.",
        "This decision follows an internal review of our suppliers and is not a reflection on your staff.",
        "Please confirm the termination and the exact end date in writing.",
        "We kindly ask you to cancel all direct debits after the final invoice.",
        "Any outstanding credit should be transferred to our usual bank account.",
        "Equipment provided by you can be collected from our premises by arrangement.",
        "We would like to thank you for the good cooperation over the past years.")),
    (("Thank you for your donation", "Your support for {project}"), (
        "On behalf of everyone at our organisation, thank you for your generous donation.",
        "Your contribution will help us to fund {project} over the coming year.",
        "Last year, gifts like yours allowed us to support more than {big} families.",
        "Our volunteers have also been able to extend their work to two further districts.",
        "We will keep you informed about the progress of the project through our newsletter.",
        "You are warmly invited to visit us and see the project for yourself.",
        "This letter also serves as confirmation of your donation for tax purposes.")),
    (("Request for quotation - {goods}", "Enquiry about {goods}"), (
        "We are interested in purchasing {goods} and would be grateful for a quotation.",
        "We require approximately {big} units, delivered in {k} instalments.",
        "The goods should be delivered to our central warehouse, preferably on pallets.",
        "Please include your delivery times, payment terms and any volume discounts.",
        "Samples would be appreciated so that our quality department can assess the product.",
        "If your offer is competitive, we would consider a framework agreement for the coming years.",
        "We would need your offer by {weekday} of next week at the latest.")),
    (("Invitation: {event}", "You are invited to {event}"), (
        "We are delighted to invite you to {event}, which will take place in our offices.",
        "The event begins at {clock} with a welcome address by our managing director.",
        "The programme includes short talks, a guided tour and time for informal discussion.",
        "Drinks and a light lunch will be provided.",
        "Please let us know by {weekday} whether you will be able to attend.",
        "Colleagues are of course welcome to join you.",
        "We very much look forward to welcoming you.")),
    (("Confirmation of your appointment", "Your appointment on {weekday}"), (
        "We are pleased to confirm your appointment with {candidate} on {weekday} at {clock}.",
        "Please arrive ten minutes early and bring a valid form of identification.",
        "The appointment is expected to last about one hour.",
        "If you are unable to attend, please let us know at least 24 hours in advance.",
        "Parking is available in the car park behind the building.",
        "Should you have any questions beforehand, our team will be happy to help.")),
)
LETTER_OPENERS = (
    "I hope this letter finds you well.", "Thank you for your letter of last week.",
    "Further to our recent telephone conversation, I would like to follow up in writing.",
    "Please allow me to explain the matter briefly.", "I am writing to you on behalf of our team.",
)
LETTER_CLOSERS = (
    "Thank you in advance for your help.", "I look forward to hearing from you.",
    "Please do not hesitate to contact me if you have any questions.",
    "Thank you for your time and attention.", "I would be grateful for a prompt reply.",
    "You can reach me at the telephone number above during normal office hours.",
)
LETTER_SLOTS = {
    "ref": lambda r: _fill(r, r.choice(("%####", "PO-%#####", "C-####/##"))),
    "job": JOB_TITLES,
    "project": ("the new community kitchen", "our school meals programme", "the river clean-up project",
                "free legal advice for families"),
    "goods": ("office furniture", "industrial fasteners", "recycled packaging", "LED lighting", "safety shoes"),
    "event": ("our annual customer day", "the opening of our new laboratory", "our summer reception",
              "a workshop on sustainable logistics"),
    "clock": ("9:30", "10:00", "11:15", "14:00", "15:45"),
}
CLOSINGS = ("Yours sincerely,", "Yours faithfully,", "Kind regards,", "Best regards,", "Sincerely,",
            "With best wishes,")


def gen_letter(ctx):
    r = ctx.r
    subjects, body = r.choice(LETTER_TYPES)
    country = r.choice(COUNTRIES)
    sender = _name(r, middle=0.05)
    company = _company(r, country) if r.random() < 0.6 else None
    recipient_first, recipient_last, courtesy = _person(r)
    recipient = f"{courtesy} {recipient_first} {recipient_last}" if r.random() < 0.6 else f"{recipient_first} {recipient_last}"
    rcountry = country if r.random() < 0.8 else r.choice(COUNTRIES)
    date = _rand_date(r)
    fmt = _date_fmt(r, country)
    # Drawn once, so the subject and the body name the same order, person or event.
    slots = {key: _say(r, f"{{{key}}}", LETTER_SLOTS) for key in LETTER_SLOTS}
    slots["candidate"] = _name(r)
    subject = _say(r, subjects, slots)

    blocks = [("title", company or sender),
              ("para", "\n".join(_address(r, country) + [_phone(r, country)] +
                                 ([_email(r, sender, _company_domain(r, company, country) if company else None)]
                                  if r.random() < 0.6 else [])))]
    rec_lines = [recipient] + ([_company(r, rcountry)] if r.random() < 0.5 else []) + _address(r, rcountry)
    date_line = r.choice((fmt(date), f"{_city(r, country)}, {fmt(date)}", f"Dated: {fmt(date)}", f"Date: {fmt(date)}"))
    if r.random() < 0.5:
        blocks += [("para", "\n".join(rec_lines)), ("para", date_line)]
    else:
        blocks += [("para", date_line), ("para", "\n".join(rec_lines))]
    if r.random() < 0.35:
        blocks.append(("kv", [("Your ref.:", _fill(r, "@@/%###")), ("Our ref.:", _fill(r, "@@@-%##"))], "left"))
    blocks.append(("heading" if r.random() < 0.5 else "para",
                   r.choice(("Re: ", "Subject: ", "")) + subject))
    salutation = r.choice((f"Dear {courtesy} {recipient_last},", f"Dear {recipient_first},",
                           "Dear Sir or Madam,", f"Dear {recipient_first} {recipient_last},"))
    blocks.append(("para", salutation))
    if not ctx.short and r.random() < 0.7:
        blocks.append(("para", r.choice(LETTER_OPENERS)))
    # Keep the first sentence (it states the purpose) and a random, ordered subset of the rest.
    keep = [body[0]] + [s for s in body[1:] if r.random() < (0.5 if ctx.short else 0.9)]
    keep = keep[:4] if ctx.short else keep
    while keep:
        size = r.randint(2, 3)
        blocks.append(("para", " ".join(_say(r, s, slots) for s in keep[:size])))
        keep = keep[size:]
    blocks.append(("para", _sentences(r, LETTER_CLOSERS, 1 if ctx.short else r.randint(2, 3), {})))
    signature = [r.choice(CLOSINGS), "", sender]
    if company:
        signature += [r.choice(("Managing Director", "Head of Customer Relations", "Purchasing Manager",
                                "Office Manager", "Director of Operations")), company]
    blocks.append(("para", "\n".join(signature)))
    if r.random() < 0.3:
        blocks.append(("small", r.choice(("Enclosure: 1", "Enclosures: copy of order, photographs",
                                          f"cc: {_name(r)}")), "left"))
    fields = {"date": date.isoformat(), "sender": sender, "title": None}
    return Doc(subject, blocks, fields)


# --------------------------------------------------------------------------- reports

REPORT_TYPES = (  # title templates, section headings, sentences specific to the kind of report
    (("Quarterly Sales Report Q{q} {year}", "Sales Performance Review - Q{q} {year}"),
     ("Sales Overview", "Regional Performance", "Product Mix", "Pipeline and Outlook"),
     ("Net sales reached {big} thousand units in the quarter.",
      "The sales pipeline for the next quarter is {pct}% larger than a year ago.",
      "Key account business accounted for roughly half of total revenue.",
      "Discounting was reduced in line with the new pricing guidelines.")),
    (("Annual Sustainability Report {year}", "{company} Sustainability Report {year}"),
     ("Energy and Emissions", "Waste and Recycling", "Supply Chain", "Employees and Community"),
     ("Scope 1 and 2 emissions fell by {pct}% compared with the base year.",
      "The share of renewable electricity rose to {n}% of total consumption.",
      "All strategic suppliers signed the updated supplier code of conduct.",
      "Employees volunteered more than {big} hours in local community projects.")),
    (("IT Security Audit Report", "Information Security Assessment {year}"),
     ("Scope and Approach", "Access Management", "Network Security", "Incident Response"),
     ("The audit covered {n} applications and {k} data centres.",
      "Privileged accounts without multi-factor authentication were identified on {k} systems.",
      "Patch levels on servers were generally adequate, with some exceptions in legacy environments.",
      "The incident response plan has not been tested in the last twelve months.")),
    (("Market Analysis: {market} in {region}", "{market} Market Report {year}"),
     ("Market Size and Growth", "Competitive Landscape", "Customer Segments", "Risks and Opportunities"),
     ("The market is expected to grow at an annual rate of {pp}% until the end of the decade.",
      "The five largest suppliers together hold about {n}% of the market.",
      "Price sensitivity is highest among younger customers in urban areas.",
      "New entrants are competing mainly through online channels.")),
    (("Project Status Report: {project}", "{project} - Monthly Status Report"),
     ("Progress Against Milestones", "Budget", "Risks and Issues", "Next Steps"),
     ("{k} of the {n} milestones planned for this phase have been completed.",
      "The project is currently rated amber because of delays in testing.",
      "Spending to date amounts to {n}% of the approved budget.",
      "The go-live date remains unchanged, subject to the outcome of the user acceptance tests.")),
    (("Customer Satisfaction Survey {year} - Results", "Customer Experience Report {year}"),
     ("Survey Design", "Overall Satisfaction", "Drivers of Satisfaction", "Verbatim Feedback"),
     ("The survey was sent to {big} customers and achieved a response rate of {n}%.",
      "Overall satisfaction scored {k}.{k} on a ten-point scale.",
      "Delivery speed and the friendliness of staff were the strongest drivers of satisfaction.",
      "Several customers asked for clearer invoices and better online tracking.")),
    (("Incident Review: {system} Outage", "Post-Incident Report - {system}"),
     ("Timeline", "Root Cause", "Impact", "Corrective Actions"),
     ("The outage lasted {n} minutes and affected customers in {region}.",
      "The root cause was an expired certificate on an internal load balancer.",
      "Monitoring alerts were raised but not escalated in time.",
      "No customer data was lost or exposed during the incident.")),
    (("Workforce Report {year}", "HR Annual Report {year}"),
     ("Headcount", "Recruitment", "Turnover and Retention", "Training and Development"),
     ("Headcount grew to {big} full-time equivalents at year end.",
      "The average time to fill a vacancy was {n} days.",
      "Voluntary turnover decreased to {pp}%.",
      "Each employee completed on average {k} days of training.")),
)
REPORT_SLOTS = {
    "metric": ("revenue", "operating margin", "customer churn", "average order value", "employee turnover",
               "energy consumption", "the on-time delivery rate", "the net promoter score", "inventory turnover",
               "the first-contact resolution rate", "the cost per acquisition", "the website conversion rate",
               "CO2 emissions per unit", "absenteeism", "the ticket backlog"),
    "region": ("the DACH region", "Northern Europe", "the UK and Ireland", "North America", "Southern Europe",
               "Asia-Pacific", "the Benelux countries"),
    "change": ("increased by {pct}%", "decreased by {pct}%", "rose {pct}% year on year",
               "fell {pct}% compared with the previous period", "remained broadly stable",
               "improved by {pp} percentage points", "declined slightly", "grew faster than expected"),
    "cause": ("higher demand from existing customers", "the launch of the new product line",
              "supply chain disruptions", "seasonal effects", "price increases implemented in {month}",
              "lower raw material costs", "the migration to the new ERP system", "staff shortages in the warehouse",
              "a stronger marketing push", "currency effects", "the consolidation of two sites",
              "delays in the approval process"),
    "team": ("the finance team", "the project steering committee", "the operations department",
             "the customer service team", "our external auditors", "the sustainability working group",
             "regional sales managers", "the IT security team"),
    "action": ("review the pricing model", "expand the pilot to further sites", "renegotiate the logistics contracts",
               "introduce quarterly training sessions", "automate the monthly reconciliation",
               "strengthen access controls", "reduce the number of suppliers", "invest in predictive maintenance",
               "simplify the approval workflow", "hire two additional analysts"),
    "risk": ("rising interest rates", "the tight labour market", "regulatory changes", "dependence on a single supplier",
             "cyber threats", "volatile energy prices"),
}
REPORT_SENTENCES = (
    "In {region}, {metric} {change}, mainly due to {cause}.",
    "Overall, {metric} {change} over the reporting period.",
    "The data show that {metric} {change} in {region}.",
    "According to {team}, {metric} {change} because of {cause}.",
    "This development was largely attributable to {cause}.",
    "The breakdown by region shows a similar pattern.",
    "Further analysis by {team} indicates that the effect is likely to persist into next year.",
    "Risks remain, in particular {risk}.",
    "Compared with the budget, costs were {pct}% lower than planned.",
    "Compared with the budget, costs were {pct}% higher than planned.",
    "We recommend that management {action} before the end of the year.",
    "Work has already started to {action}.",
    "Despite {cause}, {metric} {change}.",
    "The results are based on data from {big} transactions and {n} interviews.",
    "Management considers the current level of {metric} acceptable but not yet satisfactory.",
    "Benchmarks from comparable organisations suggest further room for improvement.",
    "The impact of {risk} has been assessed as moderate.",
    "Progress will be reviewed by {team} at the next quarterly meeting.",
    "Targets for the coming year have been adjusted to reflect {cause}.",
    "Several initiatives launched last year have started to show measurable results.",
    "The figures for {region} should be interpreted with caution because of the small sample size.",
    "Most of the improvement was achieved in the second half of the period.",
    "Interviews with {n} managers confirmed this picture.",
    "No material issues were identified in this area.",
    "The previous year's recommendations have largely been implemented.",
    "This remains a priority for the coming year.",
    "Detailed figures are available from {team} on request.",
    "The methodology is unchanged from the previous report, which ensures comparability.",
)


def gen_report(ctx):
    r = ctx.r
    titles, sections, specific = r.choice(REPORT_TYPES)
    country = r.choice(COUNTRIES)
    company = _company(r, country)
    date = _rand_date(r)
    fmt = _date_fmt(r, country)
    title = _say(r, titles, {"q": str((date.month - 1) // 3 + 1), "year": str(date.year), "company": company,
                             "market": ("Electric Bikes", "Plant-Based Foods", "Cloud Storage", "Home Solar",
                                        "Pet Insurance", "Smart Thermostats"),
                             "region": ("Europe", "North America", "Germany", "the Nordics", "Japan"),
                             "project": ("ERP Migration", "Warehouse Automation", "Project Atlas",
                                         "Customer Portal Relaunch", "Site Consolidation"),
                             "system": ("Payment Service", "Email Platform", "Order API", "Data Warehouse")})
    author = _name(r)
    slots = REPORT_SLOTS

    blocks = []
    if r.random() < 0.5:
        blocks.append(("small", company if r.random() < 0.6
                       else f"{company} - {r.choice(('Internal', 'Confidential', 'For internal use only'))}", "left"))
    blocks.append(("title", title))
    date_label = r.choice(("Date:", "Report date:", "Published:", "Prepared on", "Reporting date:", "As of"))
    meta = [(date_label, fmt(date)), (r.choice(("Prepared by:", "Author:", "Compiled by:")), author)]
    if r.random() < 0.5:
        meta.append(("Prepared for:", r.choice(("Board of Directors", "Executive Committee", "All staff",
                                                 "Supervisory Board", "Steering Committee"))))
    if r.random() < 0.3:
        meta.append(("Version:", f"{r.randint(1, 3)}.{r.randint(0, 9)}"))
    blocks.append(("kv", meta, "left"))
    blocks += [("heading", r.choice(("Executive Summary", "Summary", "Management Summary", "Key Findings"))),
               ("para", _say(r, specific, slots) + " "
                + _sentences(r, REPORT_SENTENCES, r.randint(2, 3) if ctx.short else r.randint(4, 7), slots))]
    if ctx.short:
        picked = ["Findings", "Recommendations"]
    else:
        picked = ["Introduction"] + list(sections[:r.randint(3, 4)]) + ["Recommendations", "Conclusion"]
    pool = REPORT_SENTENCES + specific
    table_at = r.randint(2, max(2, len(picked) - 1))
    numbering = r.choice(("{}. {}", "{}. {}", "{} {}"))
    for no, heading in enumerate(picked, 1):
        blocks.append(("heading", numbering.format(no, heading)))
        if heading == "Recommendations":
            blocks.append(("bullets", [_say(r, "{action_cap}.", slots)
                                       for _ in range(2 if ctx.short else r.randint(3, 5))]))
            continue
        n_par = 1 if ctx.short else r.randint(1, 3)
        subsections = r.sample(("Overview", "Details", "Analysis", "Observations", "Context", "Results"), n_par)
        numbered = n_par > 1 and r.random() < 0.5
        for p in range(n_par):
            if numbered:
                blocks.append(("heading", f"{no}.{p + 1} {subsections[p]}"))
            blocks.append(("para", _sentences(r, pool, 3 if ctx.short else r.randint(4, 7), slots)))
        if no == table_at and not ctx.short:
            metrics = r.sample(REPORT_SLOTS["metric"], r.randint(3, 6))
            rows = []
            for m in metrics:
                prev = r.uniform(5, 500)
                cur = prev * r.uniform(0.8, 1.25)
                rows.append([m[:1].upper() + m[1:], f"{prev:.1f}", f"{cur:.1f}", f"{(cur / prev - 1) * 100:+.1f}%"])
            blocks.append(("table", ["Indicator", "Previous", "Current", "Change"], rows, "lrrr"))
    if not ctx.short and r.random() < 0.4:
        blocks.append(("small", f"Contact: {author}, {_email(r, author, _company_domain(r, company, country))}", "left"))
    fields = {"title": title, "date": date.isoformat()}
    return Doc(title, blocks, fields)


# --------------------------------------------------------------------------- scientific papers

PAPER_DOMAINS = (
    {"task": ("image segmentation", "named entity recognition", "time-series forecasting", "graph classification",
              "speech recognition", "anomaly detection", "document layout analysis", "machine translation"),
     "technique": ("contrastive pre-training", "sparse attention", "graph neural networks", "knowledge distillation",
                   "diffusion models", "low-rank adaptation", "Bayesian optimisation", "mixture-of-experts layers"),
     "data": ("three public benchmarks", "a corpus of {big} thousand documents", "ImageNet-1k", "CoNLL-2003",
              "LibriSpeech", "a proprietary industrial dataset"),
     "metric": ("F1 score", "top-1 accuracy", "mean absolute error", "word error rate", "AUROC", "BLEU"),
     "field": "Computer Science", "tag": "cs.LG",
     "venue": ("Proceedings of NeurIPS", "Proceedings of ICML", "Transactions on Machine Learning Research",
               "Proceedings of ACL", "IEEE Transactions on Pattern Analysis and Machine Intelligence")},
    {"task": ("thermal conductivity prediction", "corrosion resistance", "crystal structure determination",
              "battery electrode degradation", "perovskite solar cell stability"),
     "technique": ("density functional theory", "high-throughput screening", "in situ X-ray diffraction",
                   "molecular dynamics simulations", "machine-learned interatomic potentials"),
     "data": ("{n} synthesised samples", "the Materials Project database", "a series of annealing experiments",
              "operando measurements"),
     "metric": ("capacity retention", "band gap", "yield strength", "power conversion efficiency"),
     "field": "Materials Science", "tag": "cond-mat.mtrl-sci",
     "venue": ("Acta Materialia", "Journal of Materials Chemistry A", "Physical Review Materials",
               "Advanced Energy Materials")},
    {"task": ("pollinator decline", "species distribution modelling", "forest regeneration",
              "urban biodiversity", "freshwater invertebrate monitoring"),
     "technique": ("occupancy models", "passive acoustic monitoring", "camera traps", "remote sensing",
                   "environmental DNA sampling"),
     "data": ("field surveys in {n} plots", "{big} camera-trap images", "a ten-year monitoring dataset",
              "citizen-science observations"),
     "metric": ("species richness", "detection probability", "AIC", "effective population size"),
     "field": "Ecology", "tag": "q-bio.PE",
     "venue": ("Journal of Ecology", "Ecology Letters", "Methods in Ecology and Evolution", "Biological Conservation")},
    {"task": ("minimum wage effects", "household consumption", "inflation expectations", "regional labour mobility",
              "small business lending"),
     "technique": ("difference-in-differences estimation", "structural vector autoregressions",
                   "panel regressions with fixed effects", "regression discontinuity designs",
                   "synthetic control methods"),
     "data": ("administrative data on {big} firms", "household survey data", "monthly data from {n} countries",
              "matched employer-employee records"),
     "metric": ("elasticity", "R-squared", "average treatment effect", "root mean squared forecast error"),
     "field": "Economics", "tag": "econ.GN",
     "venue": ("Journal of Labor Economics", "European Economic Review", "Journal of Monetary Economics",
               "Review of Economic Studies")},
    {"task": ("early sepsis detection", "post-operative recovery", "type 2 diabetes management",
              "antibiotic resistance surveillance", "stroke rehabilitation"),
     "technique": ("a randomised controlled trial", "a retrospective cohort study", "survival analysis",
                   "wearable sensor monitoring", "multivariable logistic regression"),
     "data": ("{big} patients from four hospitals", "electronic health records", "a national registry",
              "data from {n} primary care practices"),
     "metric": ("hazard ratio", "sensitivity", "specificity", "odds ratio", "length of stay"),
     "field": "Medicine", "tag": "q-bio.QM",
     "venue": ("BMJ Open", "The Lancet Digital Health", "Journal of Clinical Medicine", "PLOS Medicine")},
)
PAPER_TITLES = (  # {base} is the paper's own technique, {task} its problem
    "{method}: {adj_t} {base_t} for {task_t}",
    "Towards {adj_t} {task_t} with {base_t}",
    "On the Role of {base_t} in {task_t}",
    "{task_t} Revisited: Evidence from {base_t}",
    "Improving {task_t} through {base_t}",
    "{adj_t} {task_t} Using {base_t}",
)
PAPER_SLOTS = {
    "adj": ("simple", "scalable", "robust", "data-efficient", "interpretable", "unified", "lightweight",
            "probabilistic", "reproducible"),
    "component": ("the auxiliary loss", "the data augmentation strategy", "the pre-training stage",
                  "the calibration step", "the hierarchical encoder", "the sampling scheme"),
    "limitation": ("our sample is restricted to a single region", "we do not model long-term effects",
                   "the annotation was performed by a small number of experts",
                   "the computational cost grows quadratically with input size"),
    "future": ("extensions to multilingual settings", "the use of additional covariates",
               "longer observation periods", "applications in clinical practice", "theoretical guarantees"),
    "p": ("01", "05", "001"),
}
PAPER_SENTENCES = {   # per section, in a plausible reading order
    "intro": (
        "{task_cap} has received considerable attention in recent years [{ref}].",
        "Understanding {task} is important for both research and practice [{refs}].",
        "Existing approaches based on {technique} achieve strong results but remain costly to apply at scale [{ref}].",
        "Related problems such as {other_task} have been studied extensively [{ref}].",
        "Despite this progress, several open questions remain.",
        "In particular, little is known about how {component} affects the reliability of the results.",
        "In this paper, we propose {method}, a new approach to {task} that builds on {base}.",
        "Unlike previous work, {method} does not require manual tuning for each new setting.",
        "We show that a careful combination of {base} and {component} leads to consistent gains.",
        "Our contributions are threefold: a new formulation, an efficient estimation procedure and an extensive evaluation.",
        "We evaluate our approach on {data}.",
        "The remainder of this paper is organised as follows."),
    "related": (
        "Previous studies have examined {task} using {technique} [{ref}].",
        "A second line of work relies on {technique} [{refs}].",
        "Early work on {other_task} introduced many of the ideas used today [{ref}].",
        "These findings are consistent with earlier reports [{ref}].",
        "Closest to our work is the study in [{ref}], which however does not consider {component}.",
        "Surveys of the field are given in [{ref}] and [{ref}].",
        "More recently, several authors have combined {technique} with {technique} [{ref}].",
        "Benchmarks for {task} have been proposed in [{ref}], but they cover only a few settings.",
        "Our work differs from these approaches in that it treats {component} explicitly.",
        "A comprehensive comparison of these methods is still missing."),
    "method": (
        "We formalise the problem as follows.",
        "{method} consists of three stages: preprocessing, estimation and validation.",
        "In the first stage, the raw data are cleaned and normalised.",
        "We combine {base} with {component} to reduce the variance of the estimates.",
        "The second stage estimates the model parameters by maximising the likelihood of the observed data.",
        "All hyperparameters were selected on a held-out validation set.",
        "The full procedure is summarised in Algorithm 1.",
        "For comparability, we follow the protocol of [{ref}].",
        "Missing values were imputed using the median of the training data.",
        "The computational cost of the procedure grows linearly with the number of observations.",
        "Implementation details are provided in the supplementary material."),
    "results": (
        "We evaluate {method} on {data} and report the {metric} as the primary outcome.",
        "Each experiment was repeated {k} times with different random seeds.",
        "Table 1 summarises the main results.",
        "Our results show that {method} improves the {metric} by {pct}% relative to the strongest baseline.",
        "The difference is statistically significant (p < 0.{p}).",
        "Baselines based on {technique} perform well on small inputs but fall behind on larger ones.",
        "We observe the largest gains in the most difficult settings.",
        "Ablation studies indicate that {component} accounts for most of the improvement.",
        "Removing {component} reduces the {metric} noticeably.",
        "Performance degrades gracefully when the amount of data is reduced.",
        "Results were stable across all {k} folds of the cross-validation."),
    "discussion": (
        "The results suggest that {base} is a promising direction for {task}.",
        "These observations have practical implications for practitioners working on {task}.",
        "Our findings also raise questions about the evaluation practices commonly used in the field.",
        "We expect similar gains for related problems such as {other_task}.",
        "A limitation of this study is that {limitation}.",
        "Future work will investigate {future}.",
        "Overall, the evidence supports the use of {base} in routine applications."),
    "conclusion": (
        "This paper introduced {method} for {task}.",
        "Experiments on {data} showed consistent improvements in the {metric}.",
        "The approach is easy to implement and requires few assumptions.",
        "We hope that this work will encourage further research on {task}.",
        "Code and data will be made available upon publication."),
}
PAPER_SECTIONS = (("Introduction", "intro"), ("Related Work", "related"), ("Methods", "method"),
                  ("Experiments", "results"), ("Discussion", "discussion"), ("Conclusion", "conclusion"))
METHOD_PARTS = (("Graph", "Deep", "Sparse", "Hyper", "Meta", "Flow", "Trans", "Bayes", "Multi", "Geo"),
                ("Mix", "Fuse", "Net", "Loc", "Former", "Scope", "Bench", "Prop", "Lens", "Cast"))
ROMAN = ("I", "II", "III", "IV", "V", "VI")


def _author(r, initials):
    """An author name as printed: "Anna Müller", "Anna K. Müller" or "A. K. Müller"."""
    first, last, _ = _person(r)
    middle = f" {chr(65 + r.randrange(26))}." if r.random() < 0.15 else ""
    return f"{first[0]}.{middle} {last}" if initials else f"{first}{middle} {last}"


def _reference(r, k, domain, style):
    names = [_person(r) for _ in range(r.randint(1, 4))]
    year = r.randint(1998, 2024)
    title = _say(r, PAPER_TITLES, domain, PAPER_SLOTS,
                 {"method": r.choice(METHOD_PARTS[0]) + r.choice(METHOD_PARTS[1]), "base": domain["technique"]})
    venue = r.choice(domain["venue"])
    p1 = r.randint(1, 900)
    if style == 0:
        authors = ", ".join(f"{last}, {first[0]}." for first, last, _ in names)
        return f"[{k}] {authors} ({year}). {title}. {venue}, {r.randint(1, 60)}({r.randint(1, 12)}), {p1}-{p1 + r.randint(5, 20)}."
    authors = ", ".join(f"{first[0]}. {last}" for first, last, _ in names)
    return f"[{k}] {authors}, \"{title},\" {venue}, vol. {r.randint(1, 60)}, pp. {p1}-{p1 + r.randint(5, 20)}, {year}."


def gen_paper(ctx):
    r = ctx.r
    domain = r.choice(PAPER_DOMAINS)
    n_refs = r.randint(3, 4) if ctx.short else r.randint(6, 14)
    method = r.choice(METHOD_PARTS[0]) + r.choice(METHOD_PARTS[1])
    task, base = r.choice(domain["task"]), r.choice(domain["technique"])
    # One problem, technique, metric and dataset per paper; other techniques vary (related work, baselines).
    paper = {"method": method, "task": task, "base": base, "metric": r.choice(domain["metric"]),
             "data": _say(r, domain["data"]), "ref": lambda rr: str(rr.randint(1, n_refs)),
             "refs": lambda rr: ", ".join(map(str, sorted(rr.sample(range(1, n_refs + 1), 2)))),
             "other_task": [t for t in domain["task"] if t != task],
             "technique": [t for t in domain["technique"] if t != base]}
    maps = (paper, PAPER_SLOTS)
    title = _say(r, PAPER_TITLES, *maps)
    date = _rand_date(r)
    initials = r.random() < 0.25
    authors = [_author(r, initials) for _ in range(r.randint(2, 4 if ctx.short else 6))]
    affiliations = [r.choice((f"Department of {domain['field']}, University of {_city(r, c)}, {c.name}",
                              f"Institute for {domain['field']}, {_city(r, c)}, {c.name}",
                              f"{_company(r, c)} Research, {_city(r, c)}"))
                    for c in r.sample(COUNTRIES, r.randint(1, 3))]

    blocks = []
    header = r.randrange(4)
    if header == 0:
        blocks.append(("small", f"arXiv:{date:%y%m}.{r.randint(1000, 29999):05d}v{r.randint(1, 3)} "
                                f"[{domain['tag']}] {date.day} {MONTHS[date.month - 1][:3]} {date.year}", "left"))
    elif header == 1:
        blocks.append(("small", f"{r.choice(domain['venue'])}, Vol. {r.randint(1, 60)}, No. {r.randint(1, 12)}, "
                                f"{date.year}", "left"))
    elif header == 2:
        blocks.append(("small", r.choice(("Preprint. Under review.", "Accepted manuscript", "Working paper")), "left"))
    blocks.append(("title", title))
    if r.random() < 0.5:
        joined = ", ".join(authors[:-1]) + r.choice((" and ", ", and ", ", ")) + authors[-1]
        blocks += [("para", joined), ("small", "\n".join(affiliations), "left")]
    else:
        blocks.append(("para", "\n".join(f"{a}, {r.choice(affiliations)}" for a in authors)))
    if r.random() < 0.5:
        domain_name = f"uni-{_slug(_city(r, r.choice(COUNTRIES)))}.edu"
        blocks.append(("small", f"Correspondence: {_email(r, authors[0], domain_name)}", "left"))

    abstract = (r.choice(PAPER_SENTENCES["intro"][:2]), PAPER_SENTENCES["intro"][6], PAPER_SENTENCES["results"][0],
                PAPER_SENTENCES["results"][3], r.choice(PAPER_SENTENCES["discussion"]))
    blocks += [("heading", r.choice(("Abstract", "ABSTRACT"))), ("para", " ".join(_say(r, s, *maps) for s in abstract))]
    if r.random() < 0.6:
        keywords = [task, base] + r.sample(paper["other_task"] + paper["technique"], 2)
        blocks.append(("kv", [("Keywords:", "; ".join(keywords))], "left"))
    sections = (PAPER_SECTIONS[0], PAPER_SECTIONS[-1]) if ctx.short else PAPER_SECTIONS
    numbering = r.randrange(3)
    for no, (heading, pool) in enumerate(sections, 1):
        blocks.append(("heading", (f"{no} {heading}", f"{no}. {heading}", f"{ROMAN[no - 1]}. {heading.upper()}")[numbering]))
        # An ordered subset of the section's sentences, cut into paragraphs of 3 to 5.
        sentences = PAPER_SENTENCES[pool]
        keep = sorted(r.sample(range(len(sentences)), 2 if ctx.short else r.randint(len(sentences) * 2 // 3, len(sentences))))
        sub = 0
        while keep:
            size = r.randint(3, 5)
            if pool == "method" and sub and numbering < 2:
                blocks.append(("heading", f"{no}.{sub} " + ("Model", "Estimation", "Implementation")[min(sub, 3) - 1]))
            blocks.append(("para", " ".join(_say(r, sentences[k], *maps) for k in keep[:size])))
            keep, sub = keep[size:], sub + 1
        if pool == "results" and not ctx.short:
            rows = [[b[:1].upper() + b[1:], f"{r.uniform(40, 90):.1f}", f"{r.uniform(0.1, 2.5):.2f}"]
                    for b in r.sample(paper["technique"], min(3, len(paper["technique"])))]
            rows.append([f"{method} (ours)", f"{r.uniform(70, 95):.1f}", f"{r.uniform(0.1, 2.5):.2f}"])
            blocks.append(("table", ["Method", paper["metric"][:1].upper() + paper["metric"][1:], "Std."], rows, "lrr"))
    if not ctx.short and r.random() < 0.5:
        blocks += [("heading", "Acknowledgements"),
                   ("para", f"We thank the anonymous reviewers for their helpful comments. This work was supported by "
                            f"grant {_fill(r, '@@-####-##')}.")]
    ref_style = r.randrange(2)
    blocks += [("heading", r.choice(("References", "REFERENCES", "Bibliography"))),
               ("para", "\n".join(_reference(r, k, domain, ref_style) for k in range(1, n_refs + 1)))]
    fields = {"title": title, "authors": authors}
    return Doc(title, blocks, fields)


# --------------------------------------------------------------------------- forms

FORM_TYPES = (  # title, department code, issuing body, sections (heading, labels), checkbox questions
    ("Employee Onboarding Form", "HR", "{company} Human Resources",
     (("Personal details", ("Surname", "First name(s)", "Date of birth", "Home address", "Email", "Phone")),
      ("Employment details", ("Job title", "Department", "Start date", "Line manager")),
      ("Bank details", ("Account holder", "IBAN", "Tax identification number"))),
     (("Employment type", ("Full-time", "Part-time", "Fixed-term", "Contractor")),)),
    ("Leave Request Form", "HR", "{company} - People Team",
     (("Employee", ("Employee name", "Employee ID", "Department")),
      ("Leave details", ("First day of leave", "Last day of leave", "Number of working days", "Reason (optional)"))),
     (("Type of leave", ("Annual leave", "Sick leave", "Parental leave", "Unpaid leave")),
      ("Handover arranged?", ("Yes", "No")))),
    ("Expense Reimbursement Claim", "FIN", "{company} Finance Department",
     (("Claimant", ("Full name", "Employee ID", "Cost centre")),
      ("Expenses", ("Purpose of trip", "Travel dates", "Total amount claimed", "Number of receipts attached"))),
     (("Payment method", ("Bank transfer", "Payroll")), ("Receipts attached?", ("Yes", "No")))),
    ("Change of Address Notification", "ADM", "City of {city} - Citizens' Office",
     (("Applicant", ("Surname", "First name(s)", "Date of birth", "Email")),
      ("Old address", ("Street and number", "Postcode and town")),
      ("New address", ("Street and number", "Postcode and town", "Date of move"))),
     (("Household members moving with you?", ("Yes", "No")),)),
    ("Patient Registration Form", "MED", "{city} Medical Centre",
     (("Patient information", ("Full name", "Date of birth", "Address", "Phone", "Insurance number")),
      ("Medical history", ("Current medications", "Known allergies", "Name of previous doctor"))),
     (("Do you smoke?", ("Yes", "No", "Former smoker")), ("Preferred contact", ("Phone", "Email", "Post")))),
    ("Membership Application", "MBR", "{prefix}{root} Sports Club",
     (("Applicant", ("Full name", "Date of birth", "Address", "Email", "Phone")),
      ("Membership", ("Start date", "Emergency contact"))),
     (("Membership type", ("Adult", "Student", "Family", "Senior")), ("Payment", ("Monthly", "Annually")))),
    ("IT Equipment Request", "IT", "{company} IT Service Desk",
     (("Requester", ("Name", "Department", "Cost centre", "Email")),
      ("Request", ("Equipment required", "Business justification", "Required by (date)"))),
     (("Request type", ("New hire", "Replacement", "Additional equipment")),)),
    ("Vehicle Registration Application", "VR", "Department of Motor Vehicles - {city}",
     (("Owner", ("Full name", "Address", "Date of birth", "Driving licence number")),
      ("Vehicle", ("Make and model", "Vehicle identification number (VIN)", "Year of manufacture", "Colour"))),
     (("Application type", ("New registration", "Transfer of ownership", "Renewal")), ("Fuel type", ("Petrol", "Diesel", "Electric", "Hybrid")))),
    ("Customer Complaint Form", "QA", "{company} Quality Assurance",
     (("Customer", ("Name", "Customer number", "Email", "Phone")),
      ("Complaint", ("Product or service concerned", "Order number", "Date of incident", "Description of the problem"))),
     (("Preferred resolution", ("Refund", "Replacement", "Repair", "Other")),)),
    ("Direct Debit Mandate", "BNK", "{company}",
     (("Account holder", ("Name of account holder", "Address", "IBAN", "BIC")),
      ("Mandate", ("Mandate reference", "Creditor identifier"))),
     (("Type of payment", ("Recurrent", "One-off")),)),
)
FORM_INSTRUCTIONS = (
    "Please complete all sections in BLOCK CAPITALS using black ink.",
    "Fields marked with an asterisk (*) are mandatory.",
    "Incomplete forms will be returned to the applicant.",
    "Return the completed form to the address shown above or by email.",
    "Attach copies of all supporting documents.",
    "Please allow up to {days} working days for processing.",
    "Tick the boxes that apply.",
    "If you need help completing this form, please contact our office.",
    "The information you provide will be processed in accordance with applicable data protection law.",
    "Use a separate form for each person.",
    "Do not staple documents to this form.",
    "Keep a copy of the completed form for your records.",
)
FORM_PRIVACY = (
    "The personal data collected on this form is used solely to process your request.",
    "It is stored for {k} years and deleted afterwards.",
    "You have the right to access, correct and delete your data at any time.",
    "Your data will not be passed on to third parties without your consent.",
    "Providing the information marked as mandatory is necessary to process your request.",
)


def _form_value(r, label, country):
    """A plausible filled-in value for a labelled field, or None to leave it blank."""
    low = label.lower()
    if low == "surname":
        return r.choice(LAST)
    if low.startswith("first name"):
        return r.choice(FIRST_F + FIRST_M)
    if "name" in low and "previous" not in low and "account holder" not in low:
        return _name(r)
    if "date" in low or "day of" in low:
        return DATE_STYLES[r.choice(country.date_styles)](_rand_date(r))
    if "email" in low:
        return _email(r, _name(r))
    if "phone" in low:
        return _phone(r, country)
    if "address" in low or "street" in low:
        return _address(r, country)[0]
    if "postcode" in low:
        return _address(r, country)[-1]
    if "number of" in low:
        return str(r.randint(1, 15))
    if "iban" in low:
        return _fill(r, "DE## #### #### #### #### ##")
    if "id" in low or "number" in low:
        return _fill(r, "%######")
    return None


def gen_form(ctx):
    r = ctx.r
    title, dept, issuer_t, sections, checks = r.choice(FORM_TYPES)
    country = r.choice(COUNTRIES)
    issuer = _say(r, issuer_t, {"company": _company(r, country), "city": _city(r, country),
                                "prefix": NAME_PREFIX, "root": NAME_ROOT})
    number = f"Form {dept}-{r.randint(1, 999):03d}" + ("" if r.random() < 0.8 else r.choice("ABC"))
    rev = f"Rev. {r.randint(1, 12):02d}/{r.randint(2015, 2024)}"
    filled = r.random() < 0.5
    blank = r.choice(("____________________________", "............................................", "[                    ]"))
    box, ticked = r.choice((("[ ]", "[X]"), ("( )", "(x)"), ("[ ]", "[x]")))

    blocks = [("para", issuer) if r.random() < 0.5 else ("small", issuer, "left")]
    placement = r.randrange(3)
    if placement == 0:
        blocks.append(("small", f"{number} ({rev})", "right"))
    blocks.append(("title", title))
    if placement == 1:
        blocks.append(("para", f"{number} - {rev}"))
    if r.random() < 0.4:
        blocks.append(("heading", r.choice(("Instructions", "Notes", "How to complete this form"))))
    blocks.append(("para", _sentences(r, FORM_INSTRUCTIONS, r.randint(1, 2) if ctx.short else r.randint(2, 5), {})))
    marker = r.randrange(3)
    for s, (heading, labels) in enumerate(sections[:2] if ctx.short else sections):
        blocks.append(("heading", (f"Section {chr(65 + s)}: {heading}", f"Part {s + 1} - {heading}", heading)[marker]))
        rows = []
        for label in labels:
            value = _form_value(r, label, country) if filled and r.random() < 0.75 else None
            rows.append((label + (" *" if r.random() < 0.3 else "") + ":", value or blank))
        blocks.append(("kv", rows, "left"))
    for question, options in checks:
        chosen = r.randrange(len(options)) if filled else -1
        blocks.append(("para", f"{question}  " + "   ".join(
            f"{ticked if k == chosen else box} {o}" for k, o in enumerate(options))))
    blocks += [("heading", r.choice(("Declaration", "Signature", "Confirmation"))),
               ("para", r.choice((
                   "I declare that the information given in this form is true and complete to the best of my knowledge.",
                   "I confirm that the above details are correct and I agree to the terms and conditions.",
                   "By signing this form I consent to the processing of my personal data for the purpose stated above."))),
               ("kv", [("Signature:", blank), ("Date:", blank)], "left")]
    if not ctx.short and r.random() < 0.6:
        blocks += [("heading", "For office use only"),
                   ("kv", [("Received by:", blank), ("Date received:", blank), ("Reference no.:", blank),
                           ("Approved:", f"{box} Yes   {box} No")], "left")]
    if not ctx.short and r.random() < 0.5:
        blocks.append(("small", "Data protection notice: " + _sentences(r, FORM_PRIVACY, r.randint(2, 4), {}), "left"))
    if r.random() < 0.5:
        contact = _email(r, r.choice(LAST), _company_domain(r, issuer, country))
        blocks.append(("small", f"Questions? Call {_phone(r, country)} or write to {contact}.", "left"))
    if placement == 2:
        blocks.append(("small", f"{number} | {rev} | Page 1 of 1", "left"))
    fields = {"title": title, "number": number}
    return Doc(f"{title} ({number})", blocks, fields)


GENERATORS = {"invoice": gen_invoice, "receipt": gen_receipt, "contract": gen_contract, "resume": gen_resume,
              "letter": gen_letter, "report": gen_report, "scientific_paper": gen_paper, "form": gen_form}


# --------------------------------------------------------------------------- layout (PDF and scans)

class _Flow:
    """Greedy line-by-line layout of blocks onto fixed-size pages.

    fpdf2's own multi_cell() re-measures every line character by character and costs
    about 30 ms per page; measuring each word once here is over 10x faster. The same flow
    also lays out the scanned images, so both share the reading order. Units are the
    backend's (mm for PDF, px for images); measure(text, bold, size) returns a width and
    `unit` converts a font size to those units."""

    def __init__(self, measure, page_w, page_h, margin_x, margin_y, size, unit, title_center):
        self._measure, self._cache = measure, {}
        self.left, self.right = margin_x, page_w - margin_x
        self.top, self.bottom = margin_y, page_h - margin_y
        self.size, self.unit, self.title_center = size, unit, title_center
        self.pages = [[]]   # per page: ("text", x, y_top, text, bold, size) | ("line", x1, y1, x2, y2)
        self.y = self.top

    def width(self, text, bold, size):
        key = (text, bold, size)
        if key not in self._cache:
            self._cache[key] = self._measure(text, bold, size)
        return self._cache[key]

    def _lh(self, size):
        return size * self.unit * 1.3

    def _room(self, h):
        if self.y + h > self.bottom and self.y > self.top:
            self.pages.append([])
            self.y = self.top

    def _wrap(self, text, width, bold, size):
        space = self.width(" ", bold, size)
        lines = []
        for raw in text.split("\n"):
            words, line, line_w = raw.split(), [], 0.0
            for word in words:
                w = self.width(word, bold, size)
                if line and line_w + space + w > width:
                    lines.append(" ".join(line))
                    line, line_w = [word], w
                else:
                    line_w += (space if line else 0) + w
                    line.append(word)
            lines.append(" ".join(line))
        return lines

    def _lines(self, text, bold=False, size=None, align="left", indent=0.0, gap=0.5):
        size = size or self.size
        lh = self._lh(size)
        for line in self._wrap(text, self.right - self.left - indent, bold, size):
            self._room(lh)
            w = self.width(line, bold, size)
            x = {"left": self.left + indent, "right": self.right - w,
                 "center": (self.left + self.right - w) / 2}[align]
            if line:
                self.pages[-1].append(("text", x, self.y, line, bold, size))
            self.y += lh
        self.y += lh * gap

    def run(self, blocks):
        for block in blocks:
            kind = block[0]
            if kind == "title":
                self._lines(block[1], True, self.size * 1.6, "center" if self.title_center else "left", gap=0.4)
            elif kind == "heading":
                self.y += self._lh(self.size) * 0.3
                self._lines(block[1], True, self.size * 1.15, gap=0.2)
            elif kind == "para":
                self._lines(block[1])
            elif kind == "small":
                self._lines(block[1], size=self.size * 0.85, align=block[2])
            elif kind == "bullets":
                for item in block[1]:
                    self._lines("- " + item, indent=self._lh(self.size), gap=0.1)
                self.y += self._lh(self.size) * 0.4
            elif kind == "kv":
                self._kv(block[1], block[2])
            elif kind == "table":
                self._table(*block[1:])
            elif kind == "rule":
                self._room(self._lh(self.size))
                mid = self.y + self._lh(self.size) / 2
                self.pages[-1].append(("line", self.left, mid, self.right, mid))
                self.y += self._lh(self.size)
        return self.pages

    def _kv(self, pairs, align):
        size, lh = self.size, self._lh(self.size)
        gap = self.width("  ", False, size)
        label_w = max(self.width(label, True, size) for label, _ in pairs)
        avail = self.right - self.left
        if align == "right":
            value_w = max(self.width(value, False, size) for _, value in pairs)
            x0 = max(self.left, self.right - label_w - gap - value_w)
        elif label_w < avail * 0.4:
            x0 = self.left
        else:   # very long labels: fall back to "label value" paragraphs
            for label, value in pairs:
                self._lines(f"{label} {value}", gap=0)
            self.y += lh * 0.5
            return
        vx = x0 + label_w + gap
        for label, value in pairs:
            lines = self._wrap(value, self.right - vx, False, size)
            self._room(lh * len(lines))
            self.pages[-1].append(("text", x0, self.y, label, True, size))
            for line in lines:
                x = self.right - self.width(line, False, size) if align == "right" else vx
                self.pages[-1].append(("text", x, self.y, line, False, size))
                self.y += lh
        self.y += lh * 0.5

    def _table(self, header, rows, aligns):
        size = self.size * 0.95
        lh, pad = self._lh(size), self._lh(size) * 0.3
        body = ([header] if header else []) + rows
        natural = [max(self.width(row[c], header is not None and r == 0, size) for r, row in enumerate(body)) + 2 * pad
                   for c in range(len(aligns))]
        avail = self.right - self.left
        if sum(natural) > avail:   # squeeze the widest (description) column; it wraps
            widest = natural.index(max(natural))
            natural[widest] = max(avail - (sum(natural) - natural[widest]), avail * 0.25)
            if sum(natural) > avail:
                natural = [w * avail / sum(natural) for w in natural]
        xs = [self.left + sum(natural[:c]) for c in range(len(natural))]
        for r, row in enumerate(body):
            bold = header is not None and r == 0
            cells = [self._wrap(text, natural[c] - 2 * pad, bold, size) for c, text in enumerate(row)]
            height = lh * max(len(c) for c in cells)
            self._room(height + lh * 0.2)
            for c, lines in enumerate(cells):
                for k, line in enumerate(lines):
                    x = (xs[c] + natural[c] - pad - self.width(line, bold, size)) if aligns[c] == "r" else xs[c] + pad
                    self.pages[-1].append(("text", x, self.y + k * lh, line, bold, size))
            self.y += height + lh * 0.2
            if bold:
                self.pages[-1].append(("line", self.left, self.y - lh * 0.1, xs[-1] + natural[-1], self.y - lh * 0.1))
        self.pages[-1].append(("line", self.left, self.y, xs[-1] + natural[-1], self.y))
        self.y += lh * 0.6


# --------------------------------------------------------------------------- renderers

def render_txt(doc, r):
    underline = r.random() < 0.5
    out = []
    for block in doc.blocks:
        kind = block[0]
        if kind == "title":
            out += [block[1], "=" * len(block[1]) if underline else "", ""][:3 if underline else 2]
        elif kind == "heading":
            out += [block[1], "-" * len(block[1]) if underline else ""][:2 if underline else 1]
        elif kind in ("para", "small"):
            out += [block[1], ""]
        elif kind == "kv":
            lines = [f"{label} {value}" for label, value in block[1]]
            if block[2] == "right":
                lines = [line.rjust(72) for line in lines]
            out += lines + [""]
        elif kind == "table":
            header, rows, aligns = block[1:]
            body = ([header] if header else []) + rows
            widths = [max(len(row[c]) for row in body) for c in range(len(aligns))]
            for k, row in enumerate(body):
                out.append("  ".join(cell.rjust(w) if a == "r" else cell.ljust(w)
                                     for cell, w, a in zip(row, widths, aligns)).rstrip())
                if header and k == 0:
                    out.append("-" * (sum(widths) + 2 * (len(widths) - 1)))
            out.append("")
        elif kind == "bullets":
            out += [f"* {item}" for item in block[1]] + [""]
        elif kind == "rule":
            out.append("-" * 40)
    return ("\n".join(out).rstrip() + "\n").encode("utf-8")


def render_html(doc, r):
    esc = html.escape
    dl = r.random() < 0.5
    out = ['<!DOCTYPE html>', '<html lang="en">', '<head>', '<meta charset="utf-8">', f'<title>{esc(doc.name)}</title>']
    if r.random() < 0.5:
        out.append('<style>body{font-family:Arial,sans-serif;max-width:52em;margin:2em auto}'
                   'table{border-collapse:collapse}td,th{border:1px solid #999;padding:2px 6px}'
                   '.right{text-align:right}</style>')
    out += ['</head>', '<body>', '<main>']
    for block in doc.blocks:
        kind = block[0]
        if kind == "title":
            out.append(f"<h1>{esc(block[1])}</h1>")
        elif kind == "heading":
            level = 3 if block[1][:1].isdigit() and "." in block[1].split(" ")[0].strip(".") else 2
            out.append(f"<h{level}>{esc(block[1])}</h{level}>")
        elif kind == "para":
            out.append("<p>" + "<br>\n".join(esc(line) for line in block[1].split("\n")) + "</p>")
        elif kind == "small":
            cls = ' class="right"' if block[2] == "right" else ""
            out.append(f"<p{cls}><small>" + "<br>\n".join(esc(x) for x in block[1].split("\n")) + "</small></p>")
        elif kind == "kv":
            cls = ' class="right"' if block[2] == "right" else ""
            if dl:
                out.append(f"<dl{cls}>" + "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in block[1]) + "</dl>")
            else:
                out += [f"<p{cls}><strong>{esc(k)}</strong> {esc(v)}</p>" for k, v in block[1]]
        elif kind == "table":
            header, rows, aligns = block[1:]
            out.append("<table>")
            if header:
                out.append("<thead><tr>" + "".join(f"<th>{esc(c)}</th>" for c in header) + "</tr></thead>")
            out.append("<tbody>")
            for row in rows:
                out.append("<tr>" + "".join(f'<td class="right">{esc(c)}</td>' if a == "r" else f"<td>{esc(c)}</td>"
                                            for c, a in zip(row, aligns)) + "</tr>")
            out.append("</tbody></table>")
        elif kind == "bullets":
            out.append("<ul>" + "".join(f"<li>{esc(item)}</li>" for item in block[1]) + "</ul>")
        elif kind == "rule":
            out.append("<hr>")
    out += ["</main>", "</body>", "</html>", ""]
    return "\n".join(out).encode("utf-8")


def _pinned_zip(data):
    """Re-pack a zip with fixed entry timestamps (python-docx stamps the current time)."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            entry = zipfile.ZipInfo(info.filename, date_time=FIXED_TIMESTAMP.timetuple()[:6])
            entry.compress_type = zipfile.ZIP_DEFLATED
            dst.writestr(entry, src.read(info.filename))
    return out.getvalue()


@lru_cache(maxsize=1)
def _docx_template():
    return docx.Document()


def render_docx(doc, r):
    # Opening python-docx's template costs ~9 ms, so one Document is reused: its body
    # is emptied (keeping the section properties) before each document.
    d = _docx_template()
    body = d.element.body
    for child in list(body):
        if not child.tag.endswith("}sectPr"):
            body.remove(child)
    d.core_properties.title = doc.name

    # Styles are set by id on the XML element (as python-docx's own setters do): the
    # public setters look the default style up again on every call, ~1.5 ms each.
    def paragraph(text="", style=None):
        p = d.add_paragraph(text)
        if style:
            p._p.style = style
        return p

    title_level = r.choice((0, 1))
    heading_ids = ("Title", "Heading1", "Heading2", "Heading3")
    for block in doc.blocks:
        kind = block[0]
        if kind == "title":
            paragraph(block[1], heading_ids[title_level])
        elif kind == "heading":
            sub = block[1][:1].isdigit() and "." in block[1].split(" ")[0].strip(".")
            paragraph(block[1], heading_ids[min(3, title_level + 1 + sub)])
        elif kind == "para":
            paragraph(block[1])
        elif kind == "small":
            p = paragraph()
            p.add_run(block[1]).font.size = Pt(8)
            if block[2] == "right":
                p.alignment = WD_ALIGN_PARAGRAPH.RIGHT
        elif kind == "kv":
            for label, value in block[1]:
                p = paragraph()
                p.add_run(label).bold = True
                p.add_run(" " + value)
                if block[2] == "right":
                    p.alignment = WD_ALIGN_PARAGRAPH.RIGHT
        elif kind == "table":
            header, rows, aligns = block[1:]
            body_rows = ([header] if header else []) + rows
            table = d.add_table(rows=len(body_rows), cols=len(aligns))
            table._tbl.tblStyle_val = "TableGrid"
            for k, (row, values) in enumerate(zip(table.rows, body_rows)):
                for cell, value, a in zip(row.cells, values, aligns):
                    p = cell.paragraphs[0]
                    p.add_run(value).bold = bool(header) and k == 0
                    if a == "r":
                        p.alignment = WD_ALIGN_PARAGRAPH.RIGHT
        elif kind == "bullets":
            for item in block[1]:
                paragraph(item, "ListBullet")
        elif kind == "rule":
            paragraph()
    buf = io.BytesIO()
    d.save(buf)
    return _pinned_zip(buf.getvalue())


def _new_pdf(title=None):
    pdf = FPDF(unit="mm")
    pdf.set_creation_date(FIXED_TIMESTAMP)
    pdf.set_auto_page_break(False)
    if title:
        pdf.set_title(title)
    return pdf


def render_pdf(doc, r):
    pdf = _new_pdf(doc.name)
    family = r.choice(("helvetica", "helvetica", "helvetica", "times", "times", "courier"))
    if doc.narrow:
        page, size, margin_x, margin_y = (80, 1000), 8.0, 5.0, 8.0
    else:
        page = r.choice(((210, 297), (210, 297), (215.9, 279.4)))   # A4, A4, US Letter
        size = r.choice((9.5, 10.0, 10.0, 10.5, 11.0))
        margin_x, margin_y = r.uniform(15, 25), r.uniform(14, 22)
    widths = {}
    for bold in (False, True):
        pdf.set_font(family, "B" if bold else "")
        widths[bold] = pdf.current_font.cw
    pt = 25.4 / 72

    def measure(text, bold, sz):
        cw = widths[bold]
        return sum(cw[c] for c in text) * sz * pt / 1000

    flow = _Flow(measure, *page, margin_x, margin_y, size, pt, r.random() < 0.4)
    pages = flow.run(doc.blocks)
    if doc.narrow:   # a till roll is cut where the text ends
        page = (page[0], flow.y + margin_y)
    numbered = len(pages) > 1 and r.random() < 0.7
    for n, ops in enumerate(pages, 1):
        pdf.add_page(format=page)
        current = None
        for op in ops:
            if op[0] == "line":
                pdf.line(*op[1:])
                continue
            _, x, y, text, bold, sz = op
            if current != (bold, sz):
                pdf.set_font(family, "B" if bold else "", sz)
                current = (bold, sz)
            pdf.text(x, y + sz * pt * 0.95, text)   # y is the line top; text() wants the baseline
        if numbered:
            pdf.set_font(family, "", size * 0.8)
            pdf.text(page[0] / 2 - 8, page[1] - margin_y / 2, f"Page {n} of {len(pages)}")
    return bytes(pdf.output())


@lru_cache(maxsize=None)
def _scan_font(size):
    return ImageFont.load_default(size=size)


def _scan_image(doc, r):
    """The document as a one-page 150 dpi greyscale scan (white paper, black text)."""
    width, height = SCAN_SIZE
    margin_x = 370 if doc.narrow else r.randint(90, 140)   # a till roll lies in the middle of the glass
    margin_y, center = r.randint(90, 130), r.random() < 0.4
    for size in (22, 20, 18, 16, 14):   # the text must fit one page: shrink until it does
        pages = _Flow(lambda text, bold, sz: _scan_font(int(sz)).getlength(text), width, height,
                      margin_x, margin_y, size, 1.0, center).run(doc.blocks)
        if len(pages) == 1:
            break
    else:
        raise ValueError(f"scanned document does not fit one page: {doc.name!r}")
    img = Image.new("L", SCAN_SIZE, 255)
    draw = ImageDraw.Draw(img)
    for op in pages[0]:
        if op[0] == "line":
            draw.line(op[1:], fill=0, width=2)
        else:
            _, x, y, text, bold, sz = op
            # Pillow's bundled font has no bold face; a thin stroke stands in for it.
            draw.text((x, y), text, font=_scan_font(int(sz)), fill=0, stroke_width=1 if bold else 0, stroke_fill=0)
    return img


def render_png(doc, r):
    buf = io.BytesIO()
    _scan_image(doc, r).save(buf, "PNG", dpi=(150, 150))
    return buf.getvalue()


def render_scanned_pdf(doc, r):
    img = _scan_image(doc, r)
    pdf = _new_pdf()
    pdf.set_producer(r.choice(("ScanSnap Manager", "Scan to PDF", "Canon iR-ADV C5535", "HP Digital Sending",
                               "Xerox WorkCentre")))
    pdf.add_page(format="A4")
    pdf.image(img, x=0, y=0, w=210, h=297)   # image only: no text layer
    return bytes(pdf.output())


RENDERERS = {"pdf": render_pdf, "docx": render_docx, "html": render_html, "txt": render_txt,
             "png": render_png, "scanned_pdf": render_scanned_pdf}


# --------------------------------------------------------------------------- corpus

def generate_document(i, seed, scanned_share=0.1):
    """Document i of the corpus for `seed`: (path relative to the corpus dir, bytes, truth row)."""
    r = random.Random(f"{seed}:{i}")
    category = CATEGORIES[i % len(CATEGORIES)]
    if r.random() < scanned_share:
        fmt = r.choice(SCANNED_FORMATS)
    else:
        fmt = r.choices(tuple(FORMAT_WEIGHTS), weights=tuple(FORMAT_WEIGHTS.values()))[0]
    charset = CHARSETS.get(fmt, "utf-8")
    doc = GENERATORS[category](Ctx(r, charset, short=fmt in SCANNED_FORMATS))
    if charset != "utf-8":   # fold text and truth alike, so truth stays verbatim
        fold = partial(_fold, charset=charset)
        doc = Doc(fold(doc.name), _map_strings(doc.blocks, fold), _map_strings(doc.fields, fold), doc.narrow)
    data = RENDERERS[fmt](doc, r)
    rel = f"docs/{i // 100:04d}/doc_{i:07d}{EXTENSIONS[fmt]}"
    return rel, data, {"file": rel, "category": category, "format": fmt, "fields": doc.fields}


def write_corpus(out, docs, seed, scanned_share=0.1, log=None):
    """Stream `docs` documents to `out` with truth.jsonl and manifest.txt; returns the counts.

    Progress goes to `log` (default: stderr)."""
    log = log or sys.stderr
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    categories, formats = Counter(), Counter()
    digital_n, digital_s = 0, 0.0
    start = time.perf_counter()
    with open(out / "truth.jsonl", "w", encoding="utf-8") as truth, \
            open(out / "manifest.txt", "w", encoding="utf-8") as manifest:
        folder = None
        for i in range(docs):
            t = time.perf_counter()
            rel, data, row = generate_document(i, seed, scanned_share)
            path = out / rel
            if path.parent != folder:
                folder = path.parent
                folder.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            truth.write(json.dumps(row, ensure_ascii=False) + "\n")
            manifest.write(f"{path}\n")
            categories[row["category"]] += 1
            formats[row["format"]] += 1
            if row["format"] not in SCANNED_FORMATS:
                digital_n += 1
                digital_s += time.perf_counter() - t
            if (i + 1) % 1000 == 0:
                elapsed = time.perf_counter() - start
                print(f"[corpus] {i + 1}/{docs} docs, {elapsed:.0f}s, {(i + 1) / elapsed:.0f} docs/s",
                      file=log, flush=True)
    elapsed = time.perf_counter() - start
    stats = {"docs": docs, "seconds": round(elapsed, 2), "categories": dict(categories), "formats": dict(formats),
             "non_scanned_docs_per_s": round(digital_n / digital_s, 1) if digital_s else None}
    print(f"[corpus] wrote {docs} docs to {out} in {elapsed:.1f}s "
          f"(non-scanned: {stats['non_scanned_docs_per_s']} docs/s); "
          f"categories: {', '.join(f'{k}={categories[k]}' for k in CATEGORIES if categories[k])}; "
          f"formats: {', '.join(f'{k}={v}' for k, v in sorted(formats.items()))}", file=log, flush=True)
    return stats


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.corpus", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--docs", type=int, required=True, help="number of documents")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scanned-share", type=float, default=0.1,
                        help="share of documents rendered as image-only scans (PNG or PDF)")
    args = parser.parse_args(argv)
    if args.docs < 0 or not 0 <= args.scanned_share <= 1:
        parser.error("--docs must be >= 0 and --scanned-share within [0, 1]")
    write_corpus(args.out, args.docs, args.seed, args.scanned_share)
    return 0


if __name__ == "__main__":
    sys.exit(main())
