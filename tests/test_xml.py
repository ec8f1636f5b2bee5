"""XML documents (transforms/xml_text.py): JATS articles and USPTO patents through docling, any other
XML as the text of its elements, XML that is not well-formed as plain text; found by content, so an
XML file with a wrong extension is one too."""
import os

import pytest

from tests.docs import convert
from transforms import xml_text
from transforms.config import StageConfig
from transforms.convert import Converter, detect_format

SHARED_JATS = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "corpus", "real",
                           "jats__sources__elife-56337.txt")

# A small JATS article, as PubMed Central serves them (the DOCTYPE is what docling recognises).
JATS = b"""<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE article PUBLIC "-//NLM//DTD JATS (Z39.96) Journal Archiving and Interchange DTD v1.2 20190208//EN" "JATS-archivearticle1.dtd">
<article article-type="research-article"><front><article-meta>
<title-group><article-title>Zinc finger proteins in the murine lineage</article-title></title-group>
<contrib-group><contrib contrib-type="author"><name><surname>Wolf</surname><given-names>Gernot</given-names></name></contrib></contrib-group>
<abstract><p>We show that recently emerged zinc finger proteins bind transposable elements.</p></abstract>
</article-meta></front>
<body><sec><title>Results</title><p>Deleting five clusters de-represses their <italic>target</italic> elements.</p></sec></body>
</article>"""


@pytest.fixture(scope="module")
def converter():
    return Converter(StageConfig())


def test_the_text_of_elements_in_document_order():
    text = xml_text.element_text(b"<a>one <b>two</b> three<c>four</c>five</a>")
    assert text.split("\n") == ["one", "two", "three", "four", "five"]
    assert xml_text.element_text(b"<a><b>unclosed</a>") is None
    deep = b"<a>" * 5000 + b"x" + b"</a>" * 5000  # nesting deeper than Python's recursion limit
    assert xml_text.element_text(deep) == "x"


def test_entities_are_neither_fetched_nor_expanded():
    """An external entity (a local file) is not read and an entity bomb not expanded: the file is
    not taken as XML and stays plain text."""
    external = b'<?xml version="1.0"?><!DOCTYPE f [<!ENTITY x SYSTEM "file:///etc/passwd">]><f>&x;</f>'
    assert xml_text.element_text(external) is None
    entities = b"".join(b'<!ENTITY l%d "%s">' % (i, b"&l%d;" % (i - 1) * 10 if i else b"lol") for i in range(10))
    bomb = b'<?xml version="1.0"?><!DOCTYPE b [' + entities + b"]><b>&l9;</b>"
    assert xml_text.element_text(bomb) is None


def test_xml_is_found_by_content_whatever_its_name():
    assert detect_format(JATS, "article.txt")[0] == "jats"
    assert detect_format(b"<?xml version='1.0'?><root/>", "data.txt") == ("xml", "application/xml")
    assert detect_format(b"<root><item>x</item></root>", "data.xml")[0] == "xml"
    assert detect_format(b'<svg xmlns="http://www.w3.org/2000/svg"><text>Q3</text></svg>', "chart.svg")[0] == "xml"
    assert detect_format(b"<root> is how a note may start", "note.txt")[0] == "txt"  # no declaration
    assert detect_format(b"\xef\xbb\xbf  <?xml version='1.0'?><root/>", "bom.txt")[0] == "xml"
    patent = b'<?xml version="1.0"?>\n<!DOCTYPE us-patent-grant SYSTEM "us-patent-grant-v45-2014-04-03.dtd" [ ]>'
    assert detect_format(patent, "ipg.xml")[0] == "uspto"
    assert detect_format(b"<!DOCTYPE html><html><body>x</body></html>", "page.txt")[0] == "html"


def test_a_jats_article_is_read_by_docling(converter):
    doc = convert(converter, "article.txt", JATS)
    assert doc.converter == "docling" and doc.mime == "application/xml"
    assert doc.text.startswith("# Zinc finger proteins in the murine lineage")
    assert "Wolf" in doc.text and "transposable elements" in doc.text
    assert "*target* elements" in doc.text  # italics as Markdown
    assert "<" not in doc.text


def test_other_xml_is_the_text_of_its_elements(converter):
    doc = convert(converter, "order.xml", b'<?xml version="1.0"?><order id="7"><item>Invoice <b>42</b> due'
                                          b"</item><total currency='EUR'>10.00</total></order>")
    assert doc.converter == "xml" and doc.text == "Invoice\n42\ndue\n10.00"
    drawing = convert(converter, "flow.svg", b'<svg xmlns="http://www.w3.org/2000/svg"><path d="M 10 20 L 30 40"/>'
                                             b'<text x="5" y="9">Approve <tspan>order</tspan></text></svg>')
    assert drawing.text == "Approve\norder"   # the labels, not the path data
    broken = convert(converter, "broken.xml", b"<?xml version='1.0'?><order><item>Invoice 42</order>")
    assert broken.converter == "text" and "Invoice 42" in broken.text  # read as the text it is


@pytest.mark.skipif(not os.path.exists(SHARED_JATS), reason="../shared/corpus/real (the real JATS article) is absent")
def test_the_real_jats_article_named_txt(converter):
    """A PubMed Central article named .txt: half of its bytes are markup, none of it reaches the text."""
    with open(SHARED_JATS, "rb") as f:
        data = f.read()
    doc = convert(converter, os.path.basename(SHARED_JATS), data)
    assert doc.converter == "docling"
    assert "## Abstract" in doc.text and "<article" not in doc.text and "xlink" not in doc.text
    assert len(doc.text) < 0.6 * len(data)


# A Gnumeric workbook as Gnumeric 1.x saves it (cells <Cell><Content>, in no particular order), with
# a formula whose value the file does not hold, and a second sheet as later versions write cells.
GNUMERIC = b"""<?xml version="1.0" encoding="UTF-8"?>
<gmr:Workbook xmlns:gmr="http://www.gnome.org/gnumeric/v7">
<gmr:Sheets><gmr:Sheet><gmr:Name>Invoice</gmr:Name>
<gmr:Cells>
<gmr:Cell Col="12" Row="38"><gmr:Content>=sum(M36,M37)*(M38+1)</gmr:Content></gmr:Cell>
<gmr:Cell Col="12" Row="2"><gmr:Content>100</gmr:Content></gmr:Cell>
<gmr:Cell Col="3" Row="1"><gmr:Content>Company | Name</gmr:Content></gmr:Cell>
<gmr:Cell Col="11" Row="2"><gmr:Content>Invoice #</gmr:Content></gmr:Cell>
<gmr:Cell Col="11" Row="38"><gmr:Content>TOTAL</gmr:Content></gmr:Cell>
</gmr:Cells></gmr:Sheet>
<gmr:Sheet><gmr:Name>Notes</gmr:Name><gmr:Names><gmr:Name>not the sheet's name</gmr:Name></gmr:Names>
<gmr:Cells><gmr:Cell Row="0" Col="0" ValueType="60">=literally this text</gmr:Cell></gmr:Cells></gmr:Sheet>
</gmr:Sheets></gmr:Workbook>"""


def test_a_gnumeric_workbook_is_its_sheets_as_tables(converter):
    """Cells go back to their rows and columns, so "Invoice #" and its number share a row; a formula
    (its value unsaved) is left empty, a text that merely starts with "=" is kept."""
    import gzip

    from transforms.classify_model import format_group

    assert detect_format(GNUMERIC, "invoice.gnumeric")[0] == "gnumeric"
    doc = convert(converter, "invoice.gnumeric", gzip.compress(GNUMERIC))
    assert doc.converter == "gnumeric" and doc.mime == "application/x-gnumeric"
    assert format_group(doc.filename, doc.mime, doc.pages, doc.converter) == "sheet"   # for the classifier
    assert doc.text == ("## Invoice\n\n"
                        "| Company \\| Name |  |  |\n|---|---|---|\n"
                        "|  | Invoice # | 100 |\n"
                        "|  | TOTAL |  |\n\n"
                        "## Notes\n\n| =literally this text |\n|---|")
    broken = convert(converter, "broken.gnumeric", GNUMERIC[:-20])
    assert broken.converter == "text"   # not well-formed: read as the text it is
