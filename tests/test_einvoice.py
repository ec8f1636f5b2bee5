"""E-invoices: the exact fields of CII (Factur-X/ZUGFeRD) and UBL XML, inside a PDF or on their own.

The XML below is written in the tests in the shape the standards define (EN 16931 CII and UBL 2.1);
the PDFs are made with fpdf2, which embeds the XML as a file attachment the way Factur-X does. The real
e-invoices of ../shared/corpus/labeled are checked against their truth files where that folder exists.
"""
from __future__ import annotations

import json
import os

import pytest

from transforms import einvoice
from transforms.config import StageConfig
from transforms.convert import Converter
from transforms.extract import RulesExtractor
from transforms.records import Document

CII = b"""<?xml version="1.0" encoding="UTF-8"?>
<rsm:CrossIndustryInvoice xmlns:rsm="urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
    xmlns:ram="urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
    xmlns:udt="urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100">
  <rsm:ExchangedDocument>
    <ram:ID>RE-2024-0815</ram:ID>
    <ram:TypeCode>380</ram:TypeCode>
    <ram:IssueDateTime><udt:DateTimeString format="102">20240305</udt:DateTimeString></ram:IssueDateTime>
  </rsm:ExchangedDocument>
  <rsm:SupplyChainTradeTransaction>
    <ram:IncludedSupplyChainTradeLineItem>
      <ram:SpecifiedTradeProduct><ram:Name>Beratung Datenschutz</ram:Name></ram:SpecifiedTradeProduct>
    </ram:IncludedSupplyChainTradeLineItem>
    <ram:ApplicableHeaderTradeAgreement>
      <ram:SellerTradeParty><ram:Name>Muster Software GmbH</ram:Name></ram:SellerTradeParty>
      <ram:BuyerTradeParty><ram:Name>Beispiel Handel AG</ram:Name></ram:BuyerTradeParty>
    </ram:ApplicableHeaderTradeAgreement>
    <ram:ApplicableHeaderTradeSettlement>
      <ram:InvoiceCurrencyCode>EUR</ram:InvoiceCurrencyCode>
      <ram:SpecifiedTradePaymentTerms>
        <ram:DueDateDateTime><udt:DateTimeString format="102">20240404</udt:DateTimeString></ram:DueDateDateTime>
      </ram:SpecifiedTradePaymentTerms>
      <ram:SpecifiedTradeSettlementHeaderMonetarySummation>
        <ram:TaxBasisTotalAmount>1000.00</ram:TaxBasisTotalAmount>
        <ram:GrandTotalAmount>1190.00</ram:GrandTotalAmount>
        <ram:TotalPrepaidAmount>190.00</ram:TotalPrepaidAmount>
        <ram:DuePayableAmount>1000.00</ram:DuePayableAmount>
      </ram:SpecifiedTradeSettlementHeaderMonetarySummation>
    </ram:ApplicableHeaderTradeSettlement>
  </rsm:SupplyChainTradeTransaction>
</rsm:CrossIndustryInvoice>"""

UBL = b"""<?xml version="1.0" encoding="UTF-8"?>
<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
    xmlns:cac="urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
    xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2">
  <cbc:ID>F-2024-117</cbc:ID>
  <cbc:IssueDate>2024-06-12</cbc:IssueDate>
  <cbc:DueDate>2024-07-12</cbc:DueDate>
  <cbc:DocumentCurrencyCode>eur</cbc:DocumentCurrencyCode>
  <cac:AccountingSupplierParty><cac:Party>
    <cac:PartyName><cbc:Name>Atelier Dupont</cbc:Name></cac:PartyName>
    <cac:PartyLegalEntity><cbc:RegistrationName>Atelier Dupont SARL</cbc:RegistrationName></cac:PartyLegalEntity>
  </cac:Party></cac:AccountingSupplierParty>
  <cac:AccountingCustomerParty><cac:Party>
    <cac:PartyName><cbc:Name>Client Exemple SA</cbc:Name></cac:PartyName>
  </cac:Party></cac:AccountingCustomerParty>
  <cac:LegalMonetaryTotal>
    <cbc:TaxExclusiveAmount currencyID="EUR">500.00</cbc:TaxExclusiveAmount>
    <cbc:TaxInclusiveAmount currencyID="EUR">600.00</cbc:TaxInclusiveAmount>
    <cbc:PayableAmount currencyID="EUR">600.00</cbc:PayableAmount>
  </cac:LegalMonetaryTotal>
</Invoice>"""

CII_FIELDS = {"number": "RE-2024-0815", "issue_date": "2024-03-05", "due_date": "2024-04-04",
              "total_amount": 1190.0, "currency": "EUR", "issuer": "Muster Software GmbH",
              "buyer": "Beispiel Handel AG"}


def test_cii_fields_are_read_exactly():
    fields = einvoice.parse(CII)
    assert {k: fields[k] for k in CII_FIELDS} == CII_FIELDS   # the grand total, not what is left to pay
    assert fields["syntax"] == "cii"


def test_ubl_fields_are_read_exactly():
    fields = einvoice.parse(UBL)
    assert fields["number"] == "F-2024-117" and fields["issue_date"] == "2024-06-12"
    assert fields["due_date"] == "2024-07-12" and fields["total_amount"] == 600.0
    assert fields["currency"] == "EUR" and fields["issuer"] == "Atelier Dupont SARL"
    assert fields["buyer"] == "Client Exemple SA" and fields["syntax"] == "ubl"


@pytest.mark.parametrize("data", [b"<html><body>no</body></html>", b"<Invoice><ID>1</ID></Invoice>",
                                  b"<rsm:CrossIndustryInvoice", b"not xml at all"])
def test_other_xml_is_not_an_e_invoice(data):
    with pytest.raises(einvoice.NotAnEInvoice):
        einvoice.parse(data)


def test_hostile_xml_is_refused():
    bomb = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
            b'<rsm:CrossIndustryInvoice xmlns:rsm="x"><a>&lol2;</a></rsm:CrossIndustryInvoice>')
    with pytest.raises(einvoice.NotAnEInvoice):
        einvoice.parse(bomb)


def _pdf_with_attachment(xml: bytes, name: str, printed: str) -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=11)
    for line in printed.splitlines():
        pdf.cell(0, 6, line, new_x="LMARGIN", new_y="NEXT")
    pdf.embed_file(bytes=xml, basename=name)
    return bytes(pdf.output())


def _convert(data: bytes, filename: str) -> Document:
    doc = Document(id="x", paths=[filename], filename=filename)
    Converter(StageConfig()).convert(doc, data)
    return doc


def test_factur_x_pdf_gives_its_xml_fields_with_source_e_invoice():
    # The printed page says something else on purpose: the XML is what counts.
    printed = "Muster Software GmbH\nRechnung Nr. 999\nDatum: 01.01.2020\nGesamtbetrag 5,00 EUR"
    doc = _convert(_pdf_with_attachment(CII, "factur-x.xml", printed), "rechnung.pdf")
    assert doc.einvoice and doc.einvoice["attachment"] == "factur-x.xml"
    doc.category = "invoice"
    metadata = RulesExtractor().extract(doc)
    assert {k: metadata["fields"][k] for k in CII_FIELDS} == CII_FIELDS
    assert all(metadata["field_sources"][k] == {"source": "e-invoice", "confidence": 1.0} for k in CII_FIELDS)
    assert metadata["e_invoice"] == {"syntax": "cii", "attachment": "factur-x.xml"}


def test_an_e_invoice_gets_invoice_fields_whatever_its_category():
    doc = _convert(_pdf_with_attachment(UBL, "invoice.xml", "Atelier Dupont"), "scan.pdf")
    doc.category = "report"
    assert RulesExtractor().extract(doc)["fields"]["number"] == "F-2024-117"


def test_a_pdf_without_e_invoice_is_read_from_its_page():
    doc = _convert(_pdf_with_attachment(b"<notes>hello</notes>", "notes.xml",
                                        "ACME Ltd\nInvoice No.: A-17\nTotal: EUR 12.50"), "a.pdf")
    assert doc.einvoice is None
    doc.category = "invoice"
    metadata = RulesExtractor().extract(doc)
    assert metadata["fields"]["number"] == "A-17"
    assert metadata["field_sources"]["number"]["source"] == "key-value"
    assert metadata["e_invoice"] is None


def test_standalone_xml_invoice_is_a_document():
    doc = _convert(UBL, "F-2024-117.xml")
    assert doc.mime == "application/xml" and doc.converter == "e-invoice"
    assert "Atelier Dupont SARL" in doc.text and "F-2024-117" in doc.text
    doc.category = "invoice"
    assert RulesExtractor().extract(doc)["fields"]["total_amount"] == 600.0


LABELED = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "corpus", "labeled")


def test_real_e_invoices_match_their_truth():
    """Every PDF of the labelled set that carries an e-invoice: its XML fields equal the truth file's."""
    import glob

    import pypdfium2 as pdfium

    truths = sorted(glob.glob(os.path.join(LABELED, "*.pdf.truth.json")))
    if not truths:
        pytest.skip(f"{LABELED} is absent: the real labelled documents are not on this machine")
    keys = {"invoice_number": "number", "issue_date": "issue_date", "due_date": "due_date",
            "total_amount": "total_amount", "currency": "currency", "issuer": "issuer", "buyer": "buyer"}
    checked = 0
    for truth_path in truths:
        pdf = pdfium.PdfDocument(truth_path[:-len(".truth.json")])
        try:
            fields = einvoice.from_pdf(pdf)
        finally:
            pdf.close()
        if fields is None:
            continue
        truth = json.load(open(truth_path, encoding="utf-8"))
        for key, name in keys.items():
            if truth.get(key) is not None:
                assert fields[name] == truth[key], (truth_path, name)
        checked += 1
    assert checked >= 5, "the labelled set holds Factur-X/ZUGFeRD PDFs; too few were found"


# An EDIFACT INVOIC interchange, written for the test in the shape the EANCOM D.96A guides give: a
# UNA that makes "," the decimal mark, a release character ("?+" is a plus in a name), parties with
# names and addresses, line items whose amounts are not the total, and the summary section's totals.
EDIFACT = ("UNA:+,? '\n"
           "UNB+UNOC:3+4012345000009:14+5412345000013:14+240305:1200+00042'\n"
           "UNH+1+INVOIC:D:96A:UN:EAN008'\n"
           "BGM+380+RE-2024-0815+9'\n"
           "DTM+137:20240305:102'\n"
           "DTM+13:20240404:102'\n"
           "NAD+SU+4012345000009::9++Buch ?+ Papier GmbH+Hauptstrasse 5+Berlin++10115+DE'\n"
           "NAD+BY+5412345000013::9++Stadtbibliothek Musterstadt+Marktplatz 1+Musterstadt++12345+DE'\n"
           "CUX+2:EUR:4'\n"
           "LIN+1++9780140374132:EN'\n"
           "IMD+F++:::Der kleine Prinz'\n"
           "MOA+203:12,50'\n"
           "MOA+77:99,00'\n"
           "UNS+S'\n"
           "MOA+79:250,00'\n"
           "MOA+77:297,50'\n"
           "MOA+9:297,50'\n"
           "UNT+15+1'\n"
           "UNZ+1+00042'\n").encode("latin-1")


def test_an_edifact_invoic_message_gives_its_fields():
    fields = einvoice.parse(EDIFACT)
    assert fields == {"number": "RE-2024-0815", "issue_date": "2024-03-05", "due_date": "2024-04-04",
                      "total_amount": 297.5, "currency": "EUR", "issuer": "Buch + Papier GmbH",
                      "buyer": "Stadtbibliothek Musterstadt", "syntax": "edifact"}
    # without UNA the standard's separators apply; a party known by its GLN only has no name
    bare = b"UNB+UNOC:3+1+2+010831:1200+7'UNH+1+INVOIC:D:96A:UN'BGM+380+SU445'DTM+137:010831:102'" \
           b"NAD+SU+4012345000094::9'UNS+S'MOA+86:67.39'UNT+6+1'UNZ+1+7'"
    assert einvoice.parse(bare) == {"number": "SU445", "issue_date": "2001-08-31", "due_date": None,
                                    "total_amount": 67.39, "currency": None, "issuer": None, "buyer": None,
                                    "syntax": "edifact"}


def test_an_edifact_invoice_is_a_document_whatever_its_name():
    """Found by content (EDI systems name the files ".CEI", ".edi" or nothing); its text says what it is
    and holds the parties and items for search; the extractor takes the message's fields exactly."""
    doc = _convert(EDIFACT, "INVOIC_00042.CEI")
    assert (doc.mime, doc.converter) == ("application/EDIFACT", "e-invoice")
    assert doc.text.startswith("# Invoice\n")
    assert "Supplier: Buch + Papier GmbH, Hauptstrasse 5, Berlin, 10115, DE (GLN 4012345000009)" in doc.text
    assert "Item: Der kleine Prinz" in doc.text
    metadata = RulesExtractor().extract(doc)
    assert metadata["fields"]["total_amount"] == 297.5
    assert metadata["field_sources"]["total_amount"]["source"] == "e-invoice"
    assert metadata["e_invoice"]["syntax"] == "edifact"
    # an interchange of another message type (an order) is not an invoice: it stays text
    orders = EDIFACT.replace(b"INVOIC:D:96A", b"ORDERS:D:96A")
    assert _convert(orders, "order.edi").converter == "text"
