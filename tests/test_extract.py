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
        "total_amount": 1428.0, "currency": "EUR", "issuer": "Northwind Traders GmbH",
        "buyer": "Contoso Ltd"}
    assert meta["word_count"] == len(docs.INVOICE_TEXT.split())


def test_contract_and_resume_fields():
    contract = extract(docs.CONTRACT_TEXT, "contract")["fields"]
    assert contract == {"title": "SERVICE AGREEMENT", "parties": ["Acme Corporation", "Globex Ltd"],
                        "effective_date": "2024-01-01"}
    resume = extract(docs.RESUME_TEXT, "resume")
    assert resume["fields"] == {"name": "Jane Doe", "email": "jane.doe@example.com"}
    assert resume["phones"] == ["+442079460958"]


def test_common_fields_always_present():
    meta = extract("", None)
    assert set(meta) == {"title", "dates", "emails", "phones", "urls", "amounts", "word_count", "language", "fields",
                         "field_sources", "e_invoice"}
    assert meta["fields"] == {} and meta["word_count"] == 0


# -- layouts and conventions the rules must handle (snippets written for these tests) -----------

US_INVOICE = """# Pinecrest Landscaping LLC

742 Evergreen Terrace, Springfield, OR 97477
billing@pinecrest-landscaping.com

## INVOICE

**Invoice #:** 10-4471
**Date:** 03/28/2024
**Terms:** Net 15

**Bill To:** Riverside Dental Group Inc.

| Description | Hours | Rate | Amount |
|---|---|---|---|
| Spring cleanup | 6 | $55.00 | $330.00 |
| Mulch installation | 4 | $55.00 | $220.00 |

**Subtotal** $550.00
**Sales tax (6%)** $33.00
**Balance Due** $583.00
"""

# Text as docling extracts it from a PDF: labels and values on separate lines, a wrapped date and
# a currency split from its number, HTML entities left in.
PDF_INVOICE = """Tax Invoice

Invoice number:

2024/0193

Date of issue:

5 February 2024

Payment due:

March 6,

2024

Seller

Berg &amp; Lund AB

Storgatan 12

Total before tax

SEK

8,000.00

VAT 25%

SEK

2,000.00

Total amount due

SEK

10,000.00
"""


def test_invoice_us_layout_month_first_dates_and_balance_due():
    fields = extract(US_INVOICE, "invoice")["fields"]
    assert fields == {"number": "10-4471", "issue_date": "2024-03-28", "due_date": "2024-04-12",
                      "total_amount": 583.0, "currency": "USD", "issuer": "Pinecrest Landscaping LLC",
                      "buyer": "Riverside Dental Group Inc."}


def test_invoice_values_under_their_labels():
    fields = extract(PDF_INVOICE, "invoice")["fields"]
    assert fields == {"number": "2024/0193", "issue_date": "2024-02-05", "due_date": "2024-03-06",
                      "total_amount": 10000.0, "currency": "SEK", "issuer": "Berg & Lund AB",
                      "buyer": None}


def test_receipt_merchant_at_the_top_and_total_over_tendered_cash():
    text = """Bäckerei Sommer
Hauptstrasse 4, 8001 Zürich
Beleg Nr. 2231-08
Datum 14.06.2024 07:42
2 x Gipfeli          4.40
Roggenbrot           5.20
TOTAL CHF            9.60
Bar CHF             20.00
Rückgeld CHF        10.40
MWST 2.6% inkl.      0.24
"""
    fields = extract(text, "receipt")["fields"]
    assert fields["issuer"] == "Bäckerei Sommer"
    assert fields["number"] == "2231-08"
    assert (fields["total_amount"], fields["currency"]) == (9.6, "CHF")


def test_contract_parties_with_descriptions_and_effective_date():
    text = """CONSULTING AGREEMENT

This Consulting Agreement is made and entered into as of April 2, 2023 by and between Halvorsen
Maritime AS, a Norwegian company with its registered office in Bergen (the "Company"), and
Dr. Ines Carvalho, residing in Porto, Portugal (the "Consultant").

1. Services. The Consultant shall advise the Company on vessel emissions reporting."""
    fields = extract(text, "contract")["fields"]
    assert fields == {"title": "CONSULTING AGREEMENT", "parties": ["Halvorsen Maritime AS", "Dr. Ines Carvalho"],
                      "effective_date": "2023-04-02"}


def test_contract_parties_from_a_numbered_parties_section():
    text = """# Lease Agreement

## Parties

(1) Okafor Property Holdings Ltd, a company registered in England (No. 0812345), of 4 Mill Lane,
Leeds (the "Landlord"); and
(2) Tomás van der Berg, of 9 Canal Street, Manchester (the "Tenant").

The term starts on 1 July 2024."""
    fields = extract(text, "contract")["fields"]
    assert fields["parties"] == ["Okafor Property Holdings Ltd", "Tomás van der Berg"]
    assert fields["effective_date"] == "2024-07-01"


def test_letter_date_in_header_and_sender_under_closing():
    text = """Fjordline Travel GmbH
Am Hafen 3, 20457 Hamburg

Hamburg, 12.11.2023

Mr Paul Dupont
8 Rue des Lilas
69003 Lyon

Dear Mr Dupont,

your booking of 2 December 2023 is confirmed.

Best regards,

Katrin Vogel
Customer Service"""
    assert extract(text, "letter")["fields"] == {"date": "2023-11-12", "sender": "Katrin Vogel"}


def test_paper_wrapped_title_and_marked_authors():
    text = """Preprint. Under review.

Sparse Attention for Long Clinical Notes: A Study of

Discharge Summaries

Amara Okonkwo1, Jean-Luc Petit2,*, and Hana Sato1

1 Department of Informatics, University of Leeds

Abstract

We study sparse attention for long clinical documents."""
    fields = extract(text, "scientific_paper")["fields"]
    assert fields["title"] == "Sparse Attention for Long Clinical Notes: A Study of Discharge Summaries"
    assert fields["authors"] == ["Amara Okonkwo", "Jean-Luc Petit", "Hana Sato"]


def test_report_and_form_titles_skip_the_letterhead():
    report = """Nordlicht Energie GmbH - Controlling

Quarterly Risk Review: Q2 2024

Reporting date: 15 July 2024
Prepared by: Controlling team

1. Summary
Exposure to gas prices decreased."""
    assert extract(report, "report")["fields"] == {"title": "Quarterly Risk Review: Q2 2024", "date": "2024-07-15"}
    form = """Municipality of Esbjerg - Citizen Services

Form RES-21 (Rev. 03/2022)

Parking Permit Application
==========================

Full name: ..........................
Registration number: ................"""
    assert extract(form, "form")["fields"] == {"title": "Parking Permit Application", "number": "Form RES-21"}


def test_resume_name_and_escaped_email():
    text = """# Curriculum Vitae

**Name:** Aiyana Redcloud

**E-mail:** aiyana\\_redcloud@example.org

## Experience
2019 - today: Data Engineer, Lakeside Analytics"""
    assert extract(text, "resume")["fields"] == {"name": "Aiyana Redcloud", "email": "aiyana_redcloud@example.org"}


def test_ocr_misreadings_in_labels_and_values():
    # rapidocr reads "i" as "l" now and then; labels still match, and a value is repaired when
    # the document spells the word right elsewhere.
    text = """<!-- page 1 (OCR) -->
IT Securlty Audit Report
Publlshed:02.05.2024
Summary
The security audit covered all servers."""
    fields = RulesExtractor().extract(Document(id="x", paths=["p"], text=text, category="report",
                                               converter="docling-native+ocr"))["fields"]
    assert fields == {"title": "IT Security Audit Report", "date": "2024-05-02"}


def test_invoice_with_german_labels():
    text = """Schreinerei Brandt GmbH
Werkstattweg 7, 79098 Freiburg

Rechnung
Rechnungsnummer: 2024-117
Rechnungsdatum: 08.04.2024
Fällig bis: 22.04.2024

Einbauschrank Eiche        1   2.950,00 EUR
Montage (Stunden)          6     390,00 EUR
Nettobetrag                    3.340,00 EUR
MwSt. 19%                        634,60 EUR
Gesamtbetrag                   3.974,60 EUR"""
    assert extract(text, "invoice")["fields"] == {
        "number": "2024-117", "issue_date": "2024-04-08", "due_date": "2024-04-22",
        "total_amount": 3974.6, "currency": "EUR", "issuer": "Schreinerei Brandt GmbH",
        "buyer": None}


def test_numeric_dates_follow_the_documents_own_order():
    # One date that can only be month first (04/18) makes the whole document month first.
    assert find_dates("Shipped 04/05/2024, delivered 04/18/2024") == ["2024-04-05", "2024-04-18"]
    assert find_dates("Versand 04.05.2024, the 3rd of May 2024") == ["2024-05-04", "2024-05-03"]


def test_till_receipt_with_unlabelled_date():
    text = """SALES RECEIPT
Corner Books
45 Elm St, Burlington VT
Trans #: 000918
04/18/2024 3:42 PM
Paperback novel      $14.99
Tax                   $0.90
TOTAL                $15.89
VISA ****1234        $15.89"""
    assert extract(text, "receipt")["fields"] == {"number": "000918", "issue_date": "2024-04-18",
                                                  "total_amount": 15.89, "currency": "USD",
                                                  "issuer": "Corner Books"}


def test_a_point_of_sale_order_reference_is_the_receipts_number():
    """A point-of-sale till prints "Order <session>-<till>-<sequence>" where others print "Receipt
    No."; "Order 2 items" is no reference."""
    text = """03/28/2022 18:06:20 Order 00001-001-0002
Corner Books
Office Chair Black 1.000 $ 12.50
Total: $12.50
Cash (USD) $ 12.50"""
    assert extract(text, "receipt")["fields"]["number"] == "00001-001-0002"
    assert extract(text.replace("Order 00001-001-0002", "Order 2 items"), "receipt")["fields"].get("number") is None


def test_till_receipt_with_its_date_at_the_foot():
    """Many till receipts print the date under the totals; when it is the only date below the head,
    it is the date of issue. Two different dates there say nothing certain."""
    head = ["KORNKAMMER", "Bäckerei und Café", "Hauptstraße 12", "10115 Berlin", "Tel. 030 1234567",
            "Roggenbrot 750 g", "3,20", "Brezel", "0,90", "Kaffee groß", "2,80", "Apfelkuchen", "2,60",
            "Kakao", "2,40", "SUMME EUR 11,90"]
    foot = ["Bar", "20,00", "Rückgeld", "8,10", "MwSt 7 % 0,78", "Vielen Dank für Ihren Einkauf"]
    fields = extract("\n".join(head + foot + ["12.03.2024 08:14 Bon 4711"]), "receipt")["fields"]
    assert fields["issue_date"] == "2024-03-12"
    fields = extract("\n".join(head + foot + ["12.03.2024 08:14 Bon 4711", "Umtausch bis 12.04.2024"]), "receipt")["fields"]
    assert fields.get("issue_date") is None


def test_a_total_heading_a_vat_row_is_its_gross_amount():
    """A till receipt's VAT summary puts net, tax and gross after "Gesamtbetrag" (one amount per line
    once OCRed): the total is the gross, which net + tax make. Amounts that do not add up are left
    as they were."""
    head = "REWE\nBilker Allee 57\n40219 Düsseldorf\nSUPPENGRUEN 0,99 B\n"
    ocr = head + "Steuer %\nNetto\nSteuerm\nBrutto\nB= 7,0%\nGesamtbetrag\n0,93\n0,06\n0,99\n04.12.2014 11:26"
    assert extract(ocr, "receipt")["fields"]["total_amount"] == 0.99
    one_line = head + "Gesamtbetrag EUR 10,00 1,90 11,90\nVielen Dank"
    assert extract(one_line, "receipt")["fields"]["total_amount"] == 11.90
    unrelated = head + "Gesamtbetrag\n0,99\n20,00\n19,01\nRückgeld"
    assert extract(unrelated, "receipt")["fields"]["total_amount"] == 0.99


def test_paper_authors_alternating_with_affiliations_and_cv_name_with_headline():
    paper = """Learning to Rank Legal Precedents

John Smith
University of Oxford
Jane Doe
Massachusetts Institute of Technology
{jsmith, jdoe}@example.edu

Abstract
We rank precedents."""
    assert extract(paper, "scientific_paper")["fields"]["authors"] == ["John Smith", "Jane Doe"]
    cv = """Mei-Ling Chen — Data Scientist
Vancouver, BC · meiling.chen@example.ca

Experience
2020 - today: Data Scientist, Pacific Freight"""
    assert extract(cv, "resume")["fields"] == {"name": "Mei-Ling Chen", "email": "meiling.chen@example.ca"}


# -- what invoices of other systems print (invoice2data's sample invoices showed each) ----------

def _fields(text, category="invoice", language="en"):
    doc = Document(id="x", paths=["p"], text=text, category=category, language=language)
    return RulesExtractor().extract(doc)["fields"]


def test_a_total_line_that_names_a_date_gives_the_amount_not_the_year():
    text = ("Amazon Web Services Invoice\n\nInvoice Number:\n\n42183017\n\nInvoice Date:\n\nAugust 3 , 2014\n\n"
            "TOTAL AMOUNT DUE ON August 3 , 2014\n\n$4.11\n")
    fields = _fields(text)
    assert fields["issue_date"] == "2014-08-03"          # "3 , 2014": a PDF's spaced-out glyph runs
    assert fields["total_amount"] == 4.11 and fields["currency"] == "USD"


def test_a_payment_deadline_is_not_the_date_of_issue():
    text = ("Free Service Abonné\n\nFacture n°562044387 du 02 Juillet 2015\n\n"
            "Date limite de paiement le 05 Juillet 2015\n\nTotal TTC 29.99 €\n")
    fields = _fields(text, language="fr")
    assert fields["issue_date"] == "2015-07-02" and fields["due_date"] == "2015-07-05"


def test_the_service_provider_is_the_issuer_and_a_note_is_not_a_name():
    text = ("** This is not a VAT invoice\n\nInvoice Number: 42\n\nService Provider:\n\n"
            "(Not to be used for payment remittance)\n\n"
            "Example Web Services, Inc.\n\n410 Terry Ave North\n\nTotal: $4.11\n")
    assert _fields(text)["issuer"] == "Example Web Services, Inc."


def test_currencies_beyond_the_big_ones():
    assert find_amounts("Grand Total Rs 1939") == [{"value": 1939.0, "currency": "INR"}]
    assert find_amounts("合計 1,000円") == [{"value": 1000.0, "currency": "JPY"}]
    assert find_amounts("Razem 100 zł, R$ 25,90, HK$ 12.00") == [
        {"value": 100.0, "currency": "PLN"}, {"value": 25.9, "currency": "BRL"}, {"value": 12.0, "currency": "HKD"}]
    assert find_amounts("Hours 40, BALL PEN 5") == []      # letters inside words, and words, are not currencies
    # "kr" is the krone of the document's language; "¥" in a Chinese document is the yuan
    assert _fields("Kvittering\n\nTotal 123,00 kr\n", "receipt", "da")["currency"] == "DKK"
    assert _fields("Kvitto\n\nTotalt 123,00 kr\n", "receipt", "sv")["currency"] == "SEK"
    assert _fields("发票\n\n合计 ¥300.00\n", "invoice", "zh")["currency"] == "CNY"
    assert _fields("領収書\n\n合計 ¥300\n", "receipt", "ja")["currency"] == "JPY"


def test_a_payment_receipt_heading_is_not_the_issuer():
    text = "PAYMENT RECEIPT\n\nOravel Stays Pvt. Ltd.\n\nGrand Total Rs 1939\n"
    assert _fields(text, "receipt")["issuer"] == "Oravel Stays Pvt. Ltd."


def test_a_till_receipts_short_date_store_number_and_decoration():
    text = ("***ACME-MARKT\n\nGmbH ***\n\nTAX INVOICE\n\nStore:298\n\nInv #:001036653\n\n6/26/19\n\n4:49 PM\n\n"
            "TOTAL $14.34\n")
    fields = _fields(text, "receipt")
    assert fields["issuer"] == "ACME-MARKT"
    assert fields["number"] == "001036653"            # not the store's number under the heading
    assert fields["issue_date"] == "2019-06-26"       # a short year alone on its line, month first


def test_a_date_decades_ahead_is_a_misreading_not_the_date_of_issue():
    assert _fields("Quittung\n\n17.07.2078\n\nGesamtpreis 38,50 EUR\n", "receipt", "de")["issue_date"] is None


def test_a_document_headed_as_an_invoice_gets_money_fields_whatever_its_category():
    invoice = ("# Invoice\n\nInvoice ID: INV-2025-TAX Date: 2025-12-25\n\n## Payee\n\n- Name: My Company\n\n"
               "| Description | Amount |\n|---|---|\n| Web development | 1000.00 |\n"
               "| Total (including HST/GST) | 1130.00 |\n")
    fields = _fields(invoice, "spreadsheet")     # tables made the classifier say spreadsheet
    assert fields["number"] == "INV-2025-TAX" and fields["total_amount"] == 1130.0
    email = ("From: shop@example.com\nSubject: Your order #123-1234567\n\n> Order Confirmation\n>\n"
             "> Order #123-1234567\n> Order Total: $80.61\n")
    assert _fields(email, "email")["total_amount"] == 80.61
    # a contract that speaks of invoices in its clauses keeps its own fields only
    contract = ("SERVICE AGREEMENT\n\nThis Agreement is made between Acme Corporation and Globex Ltd.\n\n"
                "The Supplier shall invoice the Customer monthly. Total fees: $5,000.00\n")
    assert "total_amount" not in _fields(contract, "contract")


def test_a_bon_nr_with_a_hyphen_and_a_due_date_on_the_numbers_line():
    receipt = "REWE\n\nSUMME EUR 5,85\n\n01.01.2022     12:34     Bon-Nr.:2345\n"
    assert _fields(receipt, "receipt", "de")["number"] == "2345"
    invoice = ("AdminLTE, Inc.\n\nInvoice #007612 Order ID: 4F3S8J Payment Due: 2/22/2014\n\n"
               "Total: $151.19\n")
    fields = _fields(invoice)
    assert fields["number"] == "007612" and fields["due_date"] == "2014-02-22"
    assert fields["issue_date"] != "2014-02-22"     # the number's line names the due date, not the issue


def test_payee_and_payer_sections_name_the_parties():
    text = ("# Invoice\n\nInvoice ID: INV-1 Date: 2025-12-25\n\n## Payer\n\n- Name: Test Company\n"
            "- Address: 123 Main St\n\n## Payee\n\n- Name: My Company\n- Email: me@example.com\n\nTotal: $5.00\n")
    fields = _fields(text)
    assert (fields["issuer"], fields["buyer"]) == ("My Company", "Test Company")
    assert fields["issue_date"] == "2025-12-25"


def test_dollars_of_canada_and_australia_and_other_conventions():
    assert _fields("THE HOME DEPOT\n\n1 Main St, Edmonton AB T5J 0N3\n\nTOTAL $5.80\n", "receipt")["currency"] == "CAD"
    assert _fields("Post Shop\n\nABN:28 864 970 579\n\nTOTAL $58.85\n", "receipt")["currency"] == "AUD"
    assert _fields("Diner\n\n1 Main St, Redmond WA 98052\n\nTOTAL $5.80\n", "receipt")["currency"] == "USD"
    # a German invoice: its heading is not its issuer; "Gesamt" is its total; of two payment dates,
    # the one for the whole amount is the due date
    text = ("Sanitär Fischer GmbH\n\nRECHNUNG\n\nRechnungsnr.: 4711\n\nZahlbar bis 29.01.2026 3,00% Skonto\n\n"
            "Zahlbar bis 14.02.2026 ohne Abzug\n\nGesamt: 151,20 EUR\n")
    fields = _fields(text, language="de")
    assert fields["issuer"] == "Sanitär Fischer GmbH" and fields["total_amount"] == 151.2
    assert fields["due_date"] == "2026-02-14"
    receipt = "Maison Jeanne d'Arc\n\nREÇU\n\n11/12/2022\n\nDescription\n\nTotal\n\n6,00€\n\nEntrée\n\nPayé\n\n9,50€\n"
    assert _fields(receipt, "receipt", "fr")["total_amount"] == 9.5   # "Total" headed the column of prices


def test_a_us_receipt_stamped_in_pacific_time_stays_in_us_dollars():
    text = "TECHMART\n\nSan Francisco, CA 94103\n\n11/23/2024 14:32:18 PST\n\nTOTAL $1,299.00\n"
    assert _fields(text, "receipt")["currency"] == "USD"


def test_a_receipts_short_date_with_its_register_and_time():
    text = "POST SHOP\n\nTOTAL $58.85\n\nTAX INVOICE\n\n15/03/19 02/41501 zma/a 251432 16:56\n"
    assert _fields(text, "receipt")["issue_date"] == "2019-03-15"


def test_the_currency_of_an_invoice_that_prints_none_is_its_iban_country_s():
    text = ("Facture 17\n\nTotal (A+B)\n\n3 557,03\n\n"
            "A payer au compte bancaire BE95 0011 8359 9858 avant le 1er mars 2024.")
    assert extract(text, "invoice")["fields"]["currency"] == "EUR"
    assert extract("Invoice 5\nTotal: 12.00\nIBAN GB29 NWBK 6016 1331 9268 19", "invoice")["fields"]["currency"] == "GBP"
    assert extract("Invoice 5\nTotal: 12.00 CHF\nIBAN DE89 3704 0044 0532 0130 00", "invoice")["fields"]["currency"] == "CHF"


def test_to_after_from_names_the_buyer_only_as_a_label():
    text = "Commercial Invoice\nFrom:\nThe Marmot Company\nSome Avenue\nTo:\nPaulo Cereda\nRua Bonita\nTotal: $40.00"
    fields = extract(text, "invoice")["fields"]
    assert fields["issuer"] == "The Marmot Company" and fields["buyer"] == "Paulo Cereda"
    assert extract("Invoice 7\nTo be paid within 30 days\nTotal: 5.00 EUR", "invoice")["fields"].get("buyer") != "be paid within 30 days"


def test_bold_labels_on_one_line_and_the_shipping_name_as_the_last_resort_buyer():
    """An HTML order confirmation sets its fields in <strong>, several to a line once converted; with
    no billing label, the name the goods are shipped to is the customer's."""
    text = ("# Thanks for your order.\n**Payment Method** Dubloons\n**Order ID** 239235983749636\n"
            "**Shipping Method** Boat (1-2 weeks) **Shipping Address** Captain Price  \n123 Maple Rd  \n"
            "Campbell, CA 95112\n| Item | Price |\n|---|---|\n| Cannon | $100 |\n| **Total:** | $100 |\n")
    assert extract(text, "invoice")["fields"]["buyer"] == "Captain Price"
    billed = text.replace("**Payment Method** Dubloons", "**Bill to** Jane Roe")
    assert extract(billed, "invoice")["fields"]["buyer"] == "Jane Roe"


def test_an_addressee_whose_city_line_names_a_country():
    text = ("Invoice #: 123\nCreated: 2018-5-14\nNext Step Webs, Inc.\n12345 Sunny Road\nSunnyville, TX 12345\n"
            "Acme Corp.\n16 Johnson Road\nParis, France 8060\nItem\nPrice\nWebsite design\n$ 300\nTotal: $300\n")
    assert extract(text, "invoice")["fields"]["buyer"] == "Acme Corp."


def test_an_order_header_row_is_no_party():
    """Office invoice templates print a header row (SALESPERSON, P.O. NUMBER, SHIPPED VIA, TERMS) over
    the order's details: labels, never the seller."""
    text = ("INVOICE\nINVOICE #398\nDATE: 4/1/2018\nSALESPERSON\nP.O. NUMBER\nREQUISITIONER\nSHIPPED VIA\n"
            "F.O.B. POINT\nTERMS\nTOTAL DUE\n693.86\n")
    issuer = extract(text, "invoice")["fields"].get("issuer")
    assert issuer not in ("SALESPERSON", "P.O. NUMBER", "REQUISITIONER", "SHIPPED VIA", "F.O.B. POINT", "TERMS")
