"""Invoice fields in the six languages the rules read (Dutch, Spanish, Italian, French, German; English is
in test_extract.py): labels, dates with month names through dateparser, either decimal mark, the grand
total rather than the net amount or what is left to pay, the buyer after its label. Written for this test,
after the rules, in the shapes these countries' invoices take."""
from __future__ import annotations

import pytest

from transforms.extract import RulesExtractor, find_dates
from transforms.records import Document

INVOICES = {
"nl": ("""Bakkerij De Gouden Korst B.V.
Dorpsstraat 12, 3811 AB Amersfoort
KvK 12345678 · BTW NL001234567B01

FACTUUR

Factuurnummer: 2024-0317
Factuurdatum: 14 maart 2024
Vervaldatum: 13-04-2024

Klant:
Hotel Zonnehoek
Stationsplein 4
Utrecht

Omschrijving            Aantal   Prijs     Bedrag
Broodjes assorti        120      € 0,85    € 102,00
Taarten                 4        € 24,50   € 98,00
Subtotaal                                  € 200,00
BTW 9%                                     € 18,00
Totaal                                     € 218,00
""", {"number": "2024-0317", "issue_date": "2024-03-14", "due_date": "2024-04-13", "total_amount": 218.0, "currency": "EUR", "issuer": "Bakkerij De Gouden Korst B.V.", "buyer": "Hotel Zonnehoek"}),
"es": ("""Talleres Martínez S.L.
Calle Mayor 45, 28013 Madrid
CIF B12345678

Factura n.º: F-2023/118
Fecha de factura: 5 de octubre de 2023
Fecha de vencimiento: 04/11/2023
Cliente: Construcciones Pérez S.A.

Concepto                 Importe
Reparación maquinaria    1.250,00 €
IVA 21%                    262,50 €
Importe total            1.512,50 €
""", {"number": "F-2023/118", "issue_date": "2023-10-05", "due_date": "2023-11-04", "total_amount": 1512.5, "currency": "EUR", "issuer": "Talleres Martínez S.L.", "buyer": "Construcciones Pérez S.A."}),
"it": ("""Studio Rossi & Associati
Via Garibaldi 7, 20121 Milano
P.IVA 01234567890

FATTURA N. 57/2024
Data fattura: 02/02/2024
Scadenza: 03/03/2024
Cliente: Ferramenta Bianchi S.r.l.

Descrizione                 Importo
Consulenza fiscale          800,00 EUR
IVA 22%                     176,00 EUR
Totale documento            976,00 EUR
""", {"number": "57/2024", "issue_date": "2024-02-02", "due_date": "2024-03-03", "total_amount": 976.0, "currency": "EUR", "issuer": "Studio Rossi & Associati", "buyer": "Ferramenta Bianchi S.r.l."}),
"fr": ("""Menuiserie Dubois SARL
12 rue des Lilas, 69003 Lyon
SIRET 123 456 789 00012

FACTURE
N° de facture : FA-2024-0042
Date : 12 février 2024
Date d'échéance : 13/03/2024
Facturé à : Boulangerie Martin

Désignation          Qté   P.U. HT    Total HT
Étagères chêne       3     150,00 €   450,00 €
Total HT                              450,00 €
TVA 20 %                               90,00 €
Total TTC                             540,00 €
Net à payer                           540,00 €
""", {"number": "FA-2024-0042", "issue_date": "2024-02-12", "due_date": "2024-03-13", "total_amount": 540.0, "currency": "EUR", "issuer": "Menuiserie Dubois SARL", "buyer": "Boulangerie Martin"}),
"de": ("""Elektro Schulz GmbH · Hauptstraße 5 · 10115 Berlin

Rechnung

Rechnungsnr.: RE-88231
Datum: 3. Mai 2024
Zahlbar bis: 17.05.2024
Kunde: Gasthaus zur Linde

Pos  Beschreibung          Menge  Einzelpreis   Gesamt
1    Installation Herd     1      320,00 €      320,00 €
Nettobetrag                                     320,00 €
zzgl. 19 % MwSt.                                 60,80 €
Rechnungsbetrag                                 380,80 €
""", {"number": "RE-88231", "issue_date": "2024-05-03", "due_date": "2024-05-17", "total_amount": 380.8, "currency": "EUR", "issuer": "Elektro Schulz GmbH", "buyer": "Gasthaus zur Linde"}),
}


@pytest.mark.parametrize("language", sorted(INVOICES))
def test_invoice_fields_in_many_languages(language):
    text, truth = INVOICES[language]
    metadata = RulesExtractor().extract(Document(id="x", paths=["x"], text=text, category="invoice",
                                                 language=language))
    assert {k: metadata["fields"][k] for k in truth} == truth
    assert metadata["field_sources"]["number"] == {"source": "key-value", "confidence": 0.8}


def test_dates_are_read_whatever_the_documents_language_says():
    """A wrong or missing language still reads a month name of another language (all are tried)."""
    from transforms.extract import read_date

    assert read_date("11. Juli 2014", language=None) == "2014-07-11"
    assert read_date("3 mars 2021", language="de") == "2021-03-03"
    assert read_date("26.10.22") == "2022-10-26"
    assert read_date("10/18/18", month_first=True) == "2018-10-18"
    assert read_date("no date here") is None


def test_buyer_without_label_is_the_address_block_that_is_not_the_issuers():
    """European invoices print the recipient's address for a window envelope, with no label: the name
    over a street line and a postcode line that is not the issuer's."""
    text = """Schreinerei Holz & Co. KG
Werkstattweg 7
79098 Freiburg
Tel. 0761 123456
IBAN DE12 3456 7890 1234 5678 90
Gasthof Adler GmbH
z. Hd. Frau Berger
Marktplatz 3
79100 Freiburg
Rechnung Nr. 2024-55
Rechnungsdatum: 02.04.2024
Gesamtbetrag 1.190,00 EUR"""
    metadata = RulesExtractor().extract(Document(id="x", paths=["x"], text=text, category="invoice", language="de"))
    assert metadata["fields"]["issuer"] == "Schreinerei Holz & Co. KG"
    assert metadata["fields"]["buyer"] == "Gasthof Adler GmbH"
    assert metadata["field_sources"]["buyer"] == {"source": "layout", "confidence": 0.6}


def test_a_total_in_the_item_table_says_it_came_from_the_table():
    text = """Acme Ltd
Invoice No.: A-17

| Item | Amount |
|---|---|
| Widgets | 100.00 |
| VAT 20% | 20.00 |
| Total | GBP 120.00 |
"""
    metadata = RulesExtractor().extract(Document(id="x", paths=["x"], text=text, category="invoice"))
    assert metadata["fields"]["total_amount"] == 120.0 and metadata["fields"]["currency"] == "GBP"
    assert metadata["field_sources"]["total_amount"] == {"source": "table", "confidence": 0.75}


def test_net_a_payer_is_the_total_when_no_grand_total_is_printed():
    """A label that says "net" itself ("Net à payer") is not a net amount; "Total HT" beside it is."""
    text = "Plomberie Durand\nFacture N° 2024-12\nDate : 03/02/2024\nTotal HT 100,00 €\nTVA 20 % 20,00 €\nNet à payer 120,00 €"
    fields = RulesExtractor().extract(Document(id="x", paths=["x"], text=text, category="invoice", language="fr"))["fields"]
    assert (fields["total_amount"], fields["currency"], fields["issue_date"]) == (120.0, "EUR", "2024-02-03")


def test_a_polish_invoice_and_an_order_confirmation():
    """Polish labels (invoice2data's Orlen fixture, shortened), and a shop's order confirmation,
    whose order number and order date are the receipt's."""
    from transforms.extract import RulesExtractor
    from transforms.records import Document

    polish = ("Faktura nr: F 1234K20/1234/12        Data wystawienia: 2021-01-01\n"
              "Sprzedawca: Polski Koncern Naftowy ORLEN S.A.\nNIP: 774-00-01-454\n"
              "Nabywca:           GŁÓWNY URZĄD STATYSTYCZNY\n\nRazem:  257,59  59,24  316,83\n\n"
              "Należność ogółem: 316,83 PLN\n")
    fields = RulesExtractor().extract(Document(id="x", paths=["p"], text=polish, category="invoice",
                                               language="pl"))["fields"]
    assert fields["issue_date"] == "2021-01-01" and fields["number"] == "1234K20/1234/12"
    assert (fields["total_amount"], fields["currency"]) == (316.83, "PLN")
    assert fields["issuer"] == "Polski Koncern Naftowy ORLEN S.A."
    assert fields["buyer"] == "GŁÓWNY URZĄD STATYSTYCZNY"
    order = ("# Example.com - Order 166-7926740-5141621\n\nOrder Placed: February 7, 2016\n\n"
             "Example.com order number: 166-7926740-5141621\n\nGrand Total: $11.94\n")
    fields = RulesExtractor().extract(Document(id="x", paths=["p"], text=order, category="receipt",
                                               language="en"))["fields"]
    assert fields["number"] == "166-7926740-5141621" and fields["issue_date"] == "2016-02-07"


def test_a_row_of_reference_labels_over_a_row_of_values():
    from transforms.extract import RulesExtractor
    from transforms.records import Document

    text = ("# MUSTERHANDEL\n\n## RECHNUNG\n\nKD-Nr. Rechn.Nr. Datum Blatt\n780 033841 3804563 15.01.2026 1\n\n"
            "Gesamt: 151,20 EUR\n")
    fields = RulesExtractor().extract(Document(id="x", paths=["p"], text=text, category="invoice",
                                               language="de"))["fields"]
    assert (fields["number"], fields["issue_date"]) == ("3804563", "2026-01-15")
    assert fields["total_amount"] == 151.2


def test_a_japanese_invoice_dates_of_an_era_and_the_addressee_by_honorific():
    """Japanese invoices date by the era (令和6年 is 2024) or as 2024年1月15日, put the customer first with
    "御中", the issuer's company with its legal form (株式会社) and no label, and full-width colons.
    Written for this test, in the shape of such invoices."""
    text = ("請求書\n株式会社みなと商会 御中\n請求番号：A-2024-0042\n発行日：令和6年3月1日\n"
            "お支払期限：2024年3月31日\nさくら工業株式会社\n〒105-0011 東京都港区芝公園1-2-3\n"
            "品目：部品一式\n小計：¥100,000\n消費税(10%)：¥10,000\n合計：¥110,000\n")
    fields = RulesExtractor().extract(Document(id="x", paths=["p"], text=text, category="invoice",
                                               language="ja"))["fields"]
    assert fields == {"number": "A-2024-0042", "issue_date": "2024-03-01", "due_date": "2024-03-31",
                      "total_amount": 110000.0, "currency": "JPY", "issuer": "さくら工業株式会社",
                      "buyer": "株式会社みなと商会"}


def test_dates_written_with_year_month_day_characters():
    from transforms.extract import parse_date

    assert parse_date("开票日期：2023年 3月 7日") == "2023-03-07"
    assert parse_date("令和元年5月1日") == "2019-05-01"
    assert parse_date("平成31年4月30日") == "2019-04-30"
    assert parse_date("작성일자 2024년 1월 15일") == "2024-01-15"
    assert parse_date("2024年1月") is None   # a month, not a date


def test_a_shops_banner_naming_the_document_is_not_its_name():
    text = "WI FANSHOP - RECHNUNG\nDatum: 24.08.2026\nGESAMTSUMME 2,25 €\n"
    fields = RulesExtractor().extract(Document(id="x", paths=["p"], text=text, category="invoice",
                                               language="de"))["fields"]
    assert fields["issuer"] == "WI FANSHOP"


def _fields(text: str, category: str = "invoice", language: str = "en") -> dict:
    return RulesExtractor().extract(Document(id="x", paths=["p"], text=text, category=category,
                                             language=language))["fields"]


def test_a_us_till_slip_month_first_by_the_states_name_and_a_code_with_a_dollar_sign():
    text = ("Main Street Restaurant\n6332 Business Drive\nPalo Alto California 94301\nFri 04/07/2017 11:36 AM\n"
            "Sub Total\nUSD$ 25.23\nTip:\n3.78\nTotal\nUSD$ 29.01\nTHANK YOU\n")
    fields = _fields(text, "receipt")
    assert fields["issuer"] == "Main Street Restaurant"   # "Street" here is part of the name
    assert (fields["issue_date"], fields["total_amount"], fields["currency"]) == ("2017-04-07", 29.01, "USD")


def test_a_spanish_invoice_with_bill_to_and_ship_to_side_by_side_and_a_balance_due():
    """Odoo's Spanish layout: "COBRAR A" (bill to) and "ENVIE A" (ship to) head two columns; the
    subtotal is "TOTAL PARCIAL", the tax "TOTAL IMPUESTOS", the total "Saldo adeudado"."""
    text = ("FACTURA\nINV/2024/00005\nTALLERES SUR\nFECHA\n2024/07/05\nCOBRAR A\nENVIE A\nAnita Oliver\n"
            "Anita Oliver\nTOTAL PARCIAL\n1419.00\nTOTAL IMPUESTOS\n302.00\nSaldo adeudado\n1721.00\n")
    fields = _fields(text, language="es")
    assert (fields["buyer"], fields["total_amount"]) == ("Anita Oliver", 1721.0)


def test_a_french_bill_whose_issuer_is_named_only_in_its_legal_mention():
    text = ("Bonjour, voici votre facture du 2 novembre 2019 :\nDate de facture\n: 02/11/2019\n"
            "N° de facture\n: 11608848301659\nM DE LATTRE ALEXIS\nALEXINUX SARL\n35 B RUE MONTGOLFIER\n"
            "69100 VILLEURBANNE\nMontant TTC 12,99 €\n"
            "TELEPHONIE DU SUD - Société Anonyme au capital de 712 588 399,56 € - 75116 PARIS\n")
    fields = _fields(text, language="fr")
    assert fields["issuer"] == "TELEPHONIE DU SUD"
    assert fields["buyer"] == "ALEXINUX SARL"   # the company of the addressed block, not the person
    assert fields["number"] == "11608848301659"


def test_invoice_numbers_with_slashes_or_after_invoice_no_and_table_headers_are_no_name():
    fields = _fields("Invoice VT/2022/0001\nDescription\nQuantity\nUnit Price Taxes\nAmount\nTotal\n1,810.80 €\n")
    assert fields["number"] == "VT/2022/0001" and fields["issuer"] is None
    assert _fields("Invoice\nDATE: 01/01/1970\nINVOICE: NO. 001\nFROM: Company ABC\n")["number"] == "001"


def test_rupees_are_the_currency_of_the_country_printed():
    text = "Khileshwori Trading Pvt. Ltd.\nNarephat, Kathmandu\nBill No: SI37482-NKT-80/81\nTotal Rs. 185.00\n"
    fields = _fields(text, "receipt")
    assert (fields["currency"], fields["number"]) == ("NPR", "SI37482-NKT-80/81")
    assert _fields("Sharma Stores\nMumbai\nTotal Rs. 185.00\n", "receipt")["currency"] == "INR"


def test_a_whole_yen_total_under_its_label_and_bill_from_names_the_issuer():
    assert _fields("千鳥\n品名\n数量\n合計\n18,580\n", "receipt", "ja")["total_amount"] == 18580
    fields = _fields("Invoice\nBill To:\nJohn Doe\nAcme Corp\nBill From:\nBig Corp\n2 Flowers Streets, London\n")
    assert fields["issuer"] == "Big Corp"


def test_a_summary_table_of_labels_over_one_row_of_values_is_read_as_labelled_values():
    """An HTML invoice's summary box ("Payment Info | Due By | Total Due" over its values); a two-column
    list of amounts, whose first row docling makes the header, is left as it is."""
    from transforms.extract import horizontal_key_values

    text = ("# Facture\n\n### Numéro de Facture\n\n123456788\n\n"
            "| Payment Info | Due By | Total Due |\n|---|---|---|\n| Account No: 1235 | May 30th, 2024 | $1,320.00 |\n")
    fields = _fields(text, language="fr")
    assert (fields["number"], fields["due_date"], fields["total_amount"]) == ("123456788", "2024-05-30", 1320.0)
    amounts = "| Sous-total | $108.00 |\n|---|---|\n| Total | $120.00 |"
    assert horizontal_key_values(amounts) == amounts


def test_numbers_of_the_kind_word_with_a_hash_of_quotes_and_of_documents():
    """GnuCash prints "Fattura #000001" in Italian as "Invoice #000001" in English; a French quote
    "Devis n° 24"; a Latvian till "Dok. Nr.: 162/165393 Kase 0003"."""
    assert _fields("Fattura #000001\nData fattura: 04/11/2008\n", language="it")["number"] == "000001"
    assert _fields("Factura #000001\nData:\n19/04/2021\n", language="pt")["number"] == "000001"
    assert _fields("Entreprise\nDevis\nDate : 12 avril 2017\nDevis n° 24\n", language="fr")["number"] == "24"
    assert _fields("SIA PARAUGS\n22,94\nDok. Nr.: 162/165393 Kase 0003\n", "receipt")["number"] == "162/165393"


def test_amounts_due_and_dues_dates_of_more_languages():
    fields = _fields("Fattura #1\nSubtotale\n€ 575,00\nImposte\n€ 0,00\nImporto dovuto\n€ 575,00\n", language="it")
    assert fields["total_amount"] == 575.0
    fields = _fields("Factura #1\nData:\n19/04/2021\nData de vencimento:\n04/05/2021\n", language="pt")
    assert fields["due_date"] == "2021-05-04"
    fields = _fields("Devis n° 24\nDate : 12 avril 2017\nÀ payer avant : 12 mai 2017\n", language="fr")
    assert fields["due_date"] == "2017-05-12"
    assert _fields("Faktura\nCelková cena\n32\nCelkem s DPH: 29204.00 Kč\n", language="cs")["total_amount"] == 29204.0
    fields = _fields("BURGER SEIGNEUR\nBill No.:T2--126653\nSubTotal:\n530.00\nTotal Invoice Value:\n557\n")
    assert fields["total_amount"] == 557


def test_word_dates_with_hyphens_or_a_comma_after_the_month_and_alone_on_their_line():
    from transforms.extract import parse_date

    assert parse_date("13-June-2016") == "2016-06-13"
    assert parse_date("September, 23, 2016") == "2016-09-23"
    fields = _fields("Evil Corp.\n\nSetembro, 23, 2016\n\nTotal\n$ 50.00\n", language="pt")
    assert fields["issue_date"] == "2016-09-23"


def test_a_name_with_its_mail_address_a_stamp_and_a_kind_word_under_the_name_are_handled():
    fields = _fields("Evil Corp.\nCobrança para:\nElliot Raque &lt;raque@gmail.com&gt;\nTotal $ 50.00\n", language="pt")
    assert fields["buyer"] == "Elliot Raque"
    # "SAMPLE" stamped over a till receipt is not the shop
    assert _fields("SAMPLE\nSIA PARAUGS\nJur. adrese: Parauga iela 1, Riga\n", "receipt", "lv")["issuer"] == "SIA PARAUGS"
    text = "Your Company Name\nINVOICE\n123 Your Street\nYour Town\n13-June-2016\nInvoice #2334889\n"
    fields = _fields(text)
    assert (fields["issuer"], fields["issue_date"], fields["number"]) == ("Your Company Name", "2016-06-13", "2334889")
    assert _fields("Invoice #: xxxxxxx1\nCreated: 14 January 2018\nTotal: RM 15\n")["currency"] == "MYR"


def test_an_e_invoices_party_takes_the_legal_form_the_page_prints_beside_its_name():
    text = ("Au bon moulin SARL - 1242 chemin de l'olive - 84340 Malaucène\nFacture FA-2017-0010\n"
            "Ma jolie boutique\n35 rue de la République\n")
    doc = Document(id="x", paths=["p"], text=text, category="invoice", language="fr",
                   einvoice={"issuer": "Au bon moulin", "buyer": "Ma jolie boutique", "number": "FA-2017-0010"})
    fields = RulesExtractor().extract(doc)["fields"]
    assert (fields["issuer"], fields["buyer"], fields["number"]) == ("Au bon moulin SARL", "Ma jolie boutique",
                                                                     "FA-2017-0010")


def test_the_buyer_is_the_second_address_block_when_its_city_line_has_a_region_code():
    text = ("Invoice #000001\nInvoice Date: 04/19/06\nMy Company\n9876 Second St.\nOthercity, SS 12345\n"
            "April 19, 2006\nABC Inc\n123 First Ave.\nSomecity, SS 12345\nReference: ABC Purchase Order # 12988\n")
    assert _fields(text)["buyer"] == "ABC Inc"
    text = ("Fattura #000001\nData fattura: 04/11/2008\nCittà del Mare Srl\nvia Secondo n° 9\nCittà, PR 12345\n"
            "novembre 4, 2008\nABC Inc\nvia Primo n° 123\nCittà, PR 12345\n")
    fields = _fields(text, language="it")
    assert (fields["issuer"], fields["buyer"]) == ("Città del Mare Srl", "ABC Inc")


def test_a_brazilian_danfe_names_its_parties_in_the_receipt_stub_and_numbers_itself_with_dots():
    text = ("RECEBEMOS DE Alimentos Ltda. OS PRODUTOS/SERVIÇOS CONSTANTES DA NOTA FISCAL INDICADA ABAIXO. "
            "EMISSÃO: 17/08/2018 VALOR TOTAL: 3.251,92 DESTINATARIO: COMERCIAL LTDA - RUA\nJUVENAL, 2, CENTRO\n"
            "DATA DE RECEBIMENTO\nNF-e\nNº000.047.686\nSÉRIE 1\nAlimentos Ltda.\nRua Fonseca, 2\n")
    fields = _fields(text, language="pt")
    assert (fields["issuer"], fields["buyer"], fields["number"]) == ("Alimentos Ltda.", "COMERCIAL LTDA", "000.047.686")
    # The stub's sentence wrapped over two lines, as another DANFE renderer prints it.
    wrapped = ("RECEBEMOS DE MOVEIS INDUSTRIA LTDA OS PRODUTOS E/OU SERVIÇOS CONSTANTES DA NOTA FISCAL ELETRÔNICA\n"
               "INDICADA ABAIXO. EMISSÃO: 01/01/2020 - VALOR TOTAL: 250.13 - DESTINATÁRIO: JANAINA DA SILVA - "
               "ENDEREÇO: AV. BRASIL\nDANFE\n")
    fields = _fields(wrapped, language="pt")
    assert (fields["issuer"], fields["buyer"]) == ("MOVEIS INDUSTRIA LTDA", "JANAINA DA SILVA")


def test_dates_with_spaced_separators():
    """"22 / 11 / 2024" (a PDF template's spaced slashes) and the Czech and Slovak "5. 3. 2024"."""
    assert find_dates("Invoice date\n22 / 11 / 2024\nDatum vystavení: 5. 3. 2024") == ["2024-11-22", "2024-03-05"]
    assert find_dates("Version 1 . 2 - 2024") == []   # two separators that differ: no date


def test_german_labels_written_without_umlauts():
    """Systems that print ASCII only write "ä" as "ae": "Faellig bis", "Rechnungsempfaenger"."""
    text = ("Schreinerei Holz GmbH\nWerkstrasse 3, 80331 München\nRECHNUNG\nRechnungsnummer: RE-7\n"
            "Rechnungsdatum: 12.05.2026\nFaellig bis: 11.06.2026\nRechnungsempfaenger: Hotel Alpenblick AG\n"
            "Rechnungsbetrag: 3.474,80 EUR\n")
    fields = _fields(text, language="de")
    assert (fields["due_date"], fields["buyer"]) == ("2026-06-11", "Hotel Alpenblick AG")


def test_a_bare_reference_a_logo_placeholder_and_a_currency_named_in_words():
    """"Ref. :" under the title is the invoice's number when nothing else names it; the template's
    "logo" is no issuer and does not push the letterhead out of the first lines; "Amounts expressed
    in Euros" is the currency of bare numbers."""
    text = ("Invoice\nRef. : IN1710-00000\nlogo\nInvoice date : 08/10/2017\nDim Solution\n15 Rue Jean Jaures\n"
            "Amounts expressed in Euros\nTotal inc. VAT\n3863.00\n")
    fields = _fields(text)
    assert (fields["number"], fields["issuer"], fields["currency"]) == ("IN1710-00000", "Dim Solution", "EUR")
    # a qualified reference is somebody else's: "Your ref." does not open with the bare label
    assert _fields("Invoice\nYour ref.: PO-4471\nDim Solution\nTotal: 12.00 EUR\n")["number"] is None
    assert _fields("Invoice\nInvoice No.: 88\nRef no: #1721\nTotal: $5.00\n")["number"] == "88"   # a number label first


def test_a_brazilian_boleto_labels_its_number_dates_amount_and_parties():
    """A boleto's fields are named as the banks' federation sets them (old names too: Cedente, Sacado)."""
    text = ("BENEFICIÁRIO: EMPRESA FICTÍCIA LTDA\nNome do Pagador\nJOSÉ BONIFÁCIO DE ANDRADA\n"
            "Data de Vencimento\n04/02/2020\nNº do Documento\n1001\nData do Documento\n04/02/2019\n"
            "Valor do Documento\nR$ 110,00\n")
    fields = _fields(text, language="pt")
    assert (fields["number"], fields["issue_date"], fields["due_date"], fields["total_amount"], fields["currency"],
            fields["issuer"]) == ("1001", "2019-02-04", "2020-02-04", 110.0, "BRL", "EMPRESA FICTÍCIA LTDA")
    assert _fields("Sacado: Maria Souza\nN. do documento: 456\n", language="pt")["buyer"] == "Maria Souza"


def test_a_totals_row_read_a_cell_per_line_and_a_total_named_in_a_sentence():
    """"TOTAL" / "55.00" (the hours) / "$4555.00": the amount with a currency is the money; a label in
    a sentence ("den Rechnungsbetrag innerhalb von 14 Tagen") names no amount without a currency."""
    text = ("INVOICE\nInvoice #: 1001\nInvoice Date:\nAugust 28, 2025\nBill To:\nMock Client Inc.\n"
            "Pay To:\nMock Developer\nProject\nHours\nAmount\nTOTAL\n55.00\n$4555.00\n")
    fields = _fields(text)
    assert (fields["total_amount"], fields["issuer"], fields["buyer"]) == (4555.0, "Mock Developer", "Mock Client Inc.")
    text = ("Rechnung\nRechnungsnummer\nRE-26001\nRechnungsbetrag\n5'085.00 CHF\n"
            "Bitte überweisen Sie den Rechnungsbetrag innerhalb von 14 Tagen auf unser Konto.\n")
    assert _fields(text, language="de")["total_amount"] == 5085.0


def test_fields_set_apart_by_wide_gaps_on_one_line_and_a_two_character_chinese_name():
    """A Chinese VAT invoice sets its fields apart with ideographic spaces ("发票代码：…　　发票号码：…"),
    plain-text invoices with runs of spaces: each field is read as if on its own line. "张三" is a
    name of two characters; the seller's stamp line ("销售方（章）：") names no seller."""
    text = ("增值税专用发票\n发票代码：3300xxxxxxxx　　发票号码：01234567\n开票日期：2026年4月5日\n"
            "购买方名称：张三\n销售方名称：示例商贸有限公司\n价税合计（大写）：壹万元整　　（小写）￥10,000.00\n"
            "销售方（章）：示例商贸有限公司发票专用章\n")
    fields = _fields(text, language="zh")
    assert (fields["number"], fields["buyer"], fields["issuer"]) == ("01234567", "张三", "示例商贸有限公司")
    assert _fields("Customer No.: 4471     Invoice No.: 2024-118\nTotal: 10.00 EUR\n")["number"] == "2024-118"


def test_table_cells_that_hold_a_label_and_its_value_are_fields():
    """A boleto drawn as an HTML table: each cell a box with its label and value ("Vencimento  19/10/2009");
    a merged cell repeated across the row is read once."""
    text = ("# Boleto bancário\n\n"
            "| Cedente | Agência/Código Cedente  0293/01328-1 | Vencimento  19/10/2009 |\n"
            "|---|---|---|\n"
            "| Sacado  Maria Souza | N. do documento  456 | Valor Documento  29,80 |\n"
            "| Local de pagamento  Até o vencimento | Local de pagamento  Até o vencimento | Data do documento  12/10/2009 |\n")
    fields = _fields(text, language="pt")
    assert (fields["number"], fields["due_date"], fields["issue_date"], fields["total_amount"]) == (
        "456", "2009-10-19", "2009-10-12", 29.8)


def test_a_north_american_phone_number_reads_numeric_dates_month_first():
    """"10/05/2021" on a till receipt whose shop prints "+1 (650) 555-0111" is October 5; without such
    a sign, day first, as most of the world writes it."""
    from transforms.extract import date_order_month_first

    assert date_order_month_first("My Company (San Francisco)\nTel:+1 (650) 555-0111\n10/05/2021 09:36")
    assert date_order_month_first("Call (212) 555-0199\nDate: 03/04/2024")
    assert not date_order_month_first("Tel. +33 1 42 68 53 00\nDate: 03/04/2024")


def test_dotted_year_first_dates_issued_to_and_a_german_pay_by_sentence():
    """"2024.05.11" (year first with dots, as Hungary, Korea and China write it); "Issued to:" names
    the customer; "Bitte überweisen Sie den Betrag bis zum ..." gives the due date."""
    text = ("JANE DOE\nGraphic Designer\nISSUED TO:\nJohn Doe\nINVOICE NO: INV-2025-001\n"
            "ISSUE DATE: 2024.05.11\nTOTAL\n472.00 EUR\n")
    fields = _fields(text)
    assert (fields["issue_date"], fields["buyer"]) == ("2024-05-11", "John Doe")
    text = ("Mustermann AG\nRechnung Nr. 4711\nDatum 05.02.2014\nGesamtbetrag: 155,50 EUR\n"
            "Bitte überweisen Sie den Betrag bis zum 19.02.2014 auf unser Konto.\n")
    assert _fields(text, language="de")["due_date"] == "2014-02-19"
