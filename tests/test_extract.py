from tests import docs
from transforms.extract import RulesExtractor, find_amounts, find_dates, parse_number
from transforms.records import Document


def extract(text, category):
    return RulesExtractor().extract(Document(id="x", paths=["p"], text=text, category=category, language="en"))


def test_dates_in_many_formats_become_iso():
    text = "2024-03-15, 15 March 2024, March 16, 2024, 17/03/2024, 18.03.2024, 3rd Sep 2023, 31/02/2024"
    assert find_dates(text) == ["2024-03-15", "2024-03-16", "2024-03-17", "2024-03-18", "2023-09-03"]


def test_amounts_and_number_styles():
    assert parse_number("1.234,50") == 1234.5 and parse_number("1,234.50") == 1234.5
    assert parse_number("1'234") == 1234.0
    assert find_amounts("Total: $ 99.90 or 1 200 CHF") == [
        {"value": 99.9, "currency": "USD"}, {"value": 1200.0, "currency": "CHF"}]


def test_invoice_fields():
    meta = extract(docs.INVOICE_TEXT, "invoice")
    assert meta["fields"] == {
        "number": "INV-2024-0042", "issue_date": "2024-03-15", "due_date": "2024-04-14",
        "total_amount": 1428.0, "currency": "EUR", "issuer": "Northwind Traders GmbH"}
    assert meta["word_count"] == len(docs.INVOICE_TEXT.split())


def test_contract_and_resume_fields():
    contract = extract(docs.CONTRACT_TEXT, "contract")["fields"]
    assert contract == {"parties": ["Acme Corporation", "Globex Ltd"], "effective_date": "2024-01-01"}
    resume = extract(docs.RESUME_TEXT, "resume")
    assert resume["fields"] == {"name": "Jane Doe", "email": "jane.doe@example.com"}
    assert resume["phones"] == ["+442079460958"]


def test_common_fields_always_present():
    meta = extract("", None)
    assert set(meta) == {"title", "dates", "emails", "phones", "urls", "amounts", "word_count", "language", "fields"}
    assert meta["fields"] == {} and meta["word_count"] == 0
