"""python -m bench.ocr_speed --corpus DIR --seed S [--real DIR] [--threads 1] [--runtime R] [--detector D] [--recognizer W] [--json OUT] [--baseline OLD.json]

Where the time of OCR goes, page by page, and whether the text stays right. Measures the
production code path of transforms/convert.py (render_page_for_ocr / load_image_for_ocr, then
Converter._run_ocr) on

- every scanned document of a generated corpus (`python -m bench.corpus --out DIR --docs 300
  --seed 7`: its PNG and image-only PDF files, per truth.jsonl; `--seed` must be the corpus's seed,
  it is used to rebuild each document's true text), and
- the images and text-less PDF pages of a folder of real files (`--real`, default
  /work/shared/corpus/real when it exists).

Per page it reports render/decode time, then the OCR call split into the ONNX time of text
detection, line-orientation classification and recognition (timed around each model session) and
the rest (Python: pre/post-processing, cropping, resizing), plus the number of text boxes and their
widths. Quoted as medians over the pages. Threads: `--threads 1` is what each of the pipeline's 2
worker processes uses on a 2-core machine (run.py: model_threads = cores / workers).

Accuracy, for the generated pages:
- word recall: share of the document's true words (multiset, case-insensitive, punctuation at the
  ends stripped) that appear in the OCR text;
- field values verbatim: ground-truth field values (list items counted one by one, amounts as
  1234.56 or 1,234.56) found in the whitespace-normalised, case-folded OCR text;
- field accuracy: the packaged rules extractor run on the OCR text (with the true category), scored
  exactly like bench.evaluate.
For the real pages (no ground truth) `--baseline` compares each page's words with the text an
earlier run of this script saved in its JSON (recall of the baseline's words).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import time
from collections import Counter
from functools import partial

from transforms.config import StageConfig
from transforms.convert import OCR_DETECTORS, OCR_RECOGNIZERS, OCR_RUNTIMES

REAL_DEFAULT = "/work/shared/corpus/real"
WORD_RE = re.compile(r"\S+")


class _TimedSession:
    """Stands in for a rapidocr model session: forwards calls and adds up their wall time and inputs."""

    def __init__(self, session):
        self._session = session
        self.seconds = self.cpu_seconds = 0.0
        self.shapes: list[tuple] = []

    def __call__(self, batch):
        start, cpu = time.perf_counter(), time.thread_time()
        try:
            return self._session(batch)
        finally:
            self.seconds += time.perf_counter() - start
            self.cpu_seconds += time.thread_time() - cpu
            self.shapes.append(tuple(batch.shape))

    def __getattr__(self, name):
        return getattr(self._session, name)

    def reset(self):
        self.seconds, self.cpu_seconds, self.shapes = 0.0, 0.0, []


def _words(text: str) -> Counter:
    return Counter(w.strip(".,;:()[]\"'!?").casefold() for w in WORD_RE.findall(text or "")) - Counter({"": 10**9})


def word_recall(reference: str, text: str) -> tuple[int, int]:
    """(reference words found in text, reference words), as multisets."""
    ref, got = _words(reference), _words(text)
    return sum(min(n, got[w]) for w, n in ref.items()), sum(ref.values())


def _true_text(index: int, seed: int) -> tuple[str, dict]:
    """Rebuild document `index` of the corpus for `seed` and return all the text it draws, and its fields."""
    import random

    from bench import corpus as c

    r = random.Random(f"{seed}:{index}")
    category = c.CATEGORIES[index % len(c.CATEGORIES)]
    r.random()  # the generator's first draw decided "scanned": replay it so the stream stays in step
    fmt = r.choice(c.SCANNED_FORMATS)
    charset = c.CHARSETS.get(fmt, "utf-8")
    doc = c.GENERATORS[category](c.Ctx(r, charset, short=True))
    if charset != "utf-8":
        fold = partial(c._fold, charset=charset)
        doc = c.Doc(fold(doc.name), c._map_strings(doc.blocks, fold), c._map_strings(doc.fields, fold), doc.narrow)
    strings: list[str] = []

    def collect(value):
        if isinstance(value, str):
            strings.append(value)
        elif isinstance(value, (list, tuple)):
            for item in value:
                collect(item)

    for block in doc.blocks:
        collect(list(block[1:]))
    # The aligns of tables ("lr") and of small print ("left"/"right") are layout, not text.
    text = " ".join(s for s in strings if s not in ("left", "right", "center") and not re.fullmatch(r"[lrc]+", s))
    return text, doc.fields


def _field_values(fields: dict) -> list[tuple[str, list[str]]]:
    out = []
    for name, value in fields.items():
        items = value if isinstance(value, list) else [value]
        for item in items:
            if item is None:
                continue
            if isinstance(item, (int, float)) and not isinstance(item, bool):
                out.append((name, [f"{item:.2f}", f"{item:,.2f}"]))
            else:
                out.append((name, [str(item)]))
    return out


def _flat(text: str) -> str:
    return re.sub(r"\s+", " ", text).casefold()


def collect_pages(corpus: str | None, real: str | None, converter_module):
    """[(name, kind, render() -> PIL image, info)]; kind is 'generated' or 'real'."""
    import pypdfium2 as pdfium

    pages = []

    def pdf_pages(path, name, kind, info, only_textless):
        pdf = pdfium.PdfDocument(path)
        for i in range(len(pdf)):
            page = pdf[i]
            chars = converter_module.text_layer_chars(page)
            page.close()
            # The pages the pipeline would OCR (Converter._ocr_textless_pages).
            if only_textless and chars >= StageConfig().ocr_min_chars_per_page:
                continue

            def render(path=path, i=i):
                doc = pdfium.PdfDocument(path)
                try:
                    p = doc[i]
                    image = converter_module.render_page_for_ocr(p)
                    p.close()
                    return image
                finally:
                    doc.close()
            pages.append((f"{name}#p{i + 1}", kind, render, info))
        pdf.close()

    def image_page(path, name, kind, info):
        def render(path=path):
            with open(path, "rb") as fh:
                return converter_module.load_image_for_ocr(fh.read())
        pages.append((name, kind, render, info))

    if corpus:
        with open(os.path.join(corpus, "truth.jsonl"), encoding="utf-8") as fh:
            for line in fh:
                row = json.loads(line)
                if row["format"] not in ("png", "scanned_pdf"):
                    continue
                path = os.path.join(corpus, row["file"])
                index = int(re.search(r"doc_(\d+)", row["file"]).group(1))
                info = {"index": index, "category": row["category"], "fields": row["fields"]}
                if row["format"] == "png":
                    image_page(path, row["file"], "generated", info)
                else:
                    pdf_pages(path, row["file"], "generated", info, only_textless=False)
    if real and os.path.isdir(real):
        for name in sorted(os.listdir(real)):
            path = os.path.join(real, name)
            low = name.lower()
            if low.endswith((".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")):
                image_page(path, name, "real", {})
            elif low.endswith(".pdf"):
                try:
                    pdf_pages(path, name, "real", {}, only_textless=True)
                except pdfium.PdfiumError:
                    continue  # encrypted or corrupt: the converter refuses it before OCR
    return pages


def _median(values):
    return round(statistics.median(values), 1) if values else None


def measure(pages, converter, seed: int | None, baseline: dict | None):
    """OCR every page with `converter` (a transforms.convert.Converter); one dict of figures per page."""
    from transforms.extract import RulesExtractor
    from transforms.records import Document

    from bench.evaluate import normalise

    engine = converter.ocr
    # Load the models and warm the sessions up on the first page (not counted), then time them. The
    # models are loaded explicitly (private methods of the pinned rapidocr): rapidocr loads each on
    # first use, and a first page that is blank would leave the detector's time in "other".
    converter._run_ocr(pages[0][2]())
    timers = {}
    for stage, load in (("det", engine._load_det_model), ("cls", engine._load_cls_model),
                        ("rec", engine._load_rec_model)):
        model = load()
        model.session = timers[stage] = _TimedSession(model.session)
    extractor = RulesExtractor()
    rows = []
    for name, kind, render, info in pages:
        for timer in timers.values():
            timer.reset()
        start = time.perf_counter()
        image = render()
        rendered, cpu = time.perf_counter(), time.process_time()
        text = converter._run_ocr(image)
        done, cpu = time.perf_counter(), time.process_time() - cpu
        onnx = {stage: timers[stage].seconds * 1000 if stage in timers else 0.0 for stage in ("det", "cls", "rec")}
        rec_shapes = timers["rec"].shapes if "rec" in timers else []
        row = {
            "page": name, "kind": kind, "size": list(image.size),
            "render_ms": round((rendered - start) * 1000, 1),
            "ocr_ms": round((done - rendered) * 1000, 1),
            **{f"{stage}_ms": round(ms, 1) for stage, ms in onnx.items()},
            "other_ms": round((done - rendered) * 1000 - sum(onnx.values()), 1),
            # CPU time resists other processes on a shared machine better than wall time does.
            "ocr_cpu_ms": round(cpu * 1000, 1),
            **{f"{stage}_cpu_ms": round(timers[stage].cpu_seconds * 1000 if stage in timers else 0.0, 1)
               for stage in ("det", "cls", "rec")},
            "lines": sum(s[0] for s in rec_shapes),
            "rec_batches": len(rec_shapes),
            "rec_input_widths": [s[3] for s in rec_shapes],
            "cls_batches": len(timers["cls"].shapes) if "cls" in timers else 0,
            "text": text,
        }
        if kind == "generated" and seed is not None:
            truth_text, fields = _true_text(info["index"], seed)
            row["words_found"], row["words"] = word_recall(truth_text, text)
            flat = _flat(text)
            values = _field_values({k: v for k, v in info["fields"].items() if v is not None})
            row["values_found"] = sum(any(_flat(f) in flat for f in forms) for _, forms in values)
            row["values"] = len(values)
            doc = Document(id="x", paths=[name], filename=name, text=text, converter="ocr",
                           category=info["category"])
            got = extractor.extract(doc)["fields"]
            scored = [(k, v) for k, v in info["fields"].items() if v is not None]
            row["fields_right"] = sum(normalise(got.get(k)) == normalise(v) for k, v in scored)
            row["fields"] = len(scored)
        if baseline and name in baseline:
            row["baseline_words_found"], row["baseline_words"] = word_recall(baseline[name], text)
        rows.append(row)
        print(f"  {name[-44:]:<44} {row['render_ms']:>7.0f} {row['ocr_ms']:>7.0f} {row['det_ms']:>7.0f} "
              f"{row['cls_ms']:>6.0f} {row['rec_ms']:>7.0f} {row['other_ms']:>6.0f} {row['lines']:>5}"
              + (f"  words {row['words_found']}/{row['words']}" if "words" in row else "")
              + (f"  vs baseline {row['baseline_words_found']}/{row['baseline_words']}"
                 if "baseline_words" in row else ""), file=sys.stderr)
    return rows


def summarise(rows) -> dict:
    summary = {}
    for kind in ("generated", "real", "all"):
        sel = [r for r in rows if kind == "all" or r["kind"] == kind]
        if not sel:
            continue
        s = {"pages": len(sel)}
        for key in ("render_ms", "ocr_ms", "det_ms", "cls_ms", "rec_ms", "other_ms", "ocr_cpu_ms",
                    "det_cpu_ms", "cls_cpu_ms", "rec_cpu_ms", "lines"):
            s[f"median_{key}"] = _median([r[key] for r in sel])
        s["median_page_ms"] = _median([r["render_ms"] + r["ocr_ms"] for r in sel])
        s["mean_page_ms"] = round(statistics.mean(r["render_ms"] + r["ocr_ms"] for r in sel), 1)
        widths = [w for r in sel for w in r["rec_input_widths"]]
        s["median_rec_input_width"] = _median(widths)
        for found, total in (("words_found", "words"), ("values_found", "values"), ("fields_right", "fields"),
                             ("baseline_words_found", "baseline_words")):
            if any(total in r for r in sel):
                s[found] = sum(r.get(found, 0) for r in sel)
                s[total] = sum(r.get(total, 0) for r in sel)
        summary[kind] = s
    return summary


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", help="folder written by `python -m bench.corpus`")
    parser.add_argument("--seed", type=int, help="the corpus's --seed (to rebuild each document's true text)")
    parser.add_argument("--real", default=REAL_DEFAULT if os.path.isdir(REAL_DEFAULT) else None,
                        help="folder of real files: its images and text-less PDF pages are OCRed too")
    parser.add_argument("--threads", type=int, default=1, help="ONNX intra-op threads (a worker's share)")
    parser.add_argument("--runtime", default="auto", choices=OCR_RUNTIMES,
                        help="what runs the recognizer (pipeline.run's --ocr-runtime); default: auto")
    parser.add_argument("--detector", default="auto", choices=OCR_DETECTORS,
                        help="the detector's weights (pipeline.run's --ocr-detector); default: auto")
    parser.add_argument("--recognizer", default="auto", choices=OCR_RECOGNIZERS,
                        help="the recognizer's weights (pipeline.run's --ocr-recognizer); default: auto")
    parser.add_argument("--json", help="write every page's figures and text here")
    parser.add_argument("--baseline", help="JSON of an earlier run: compare each page's words with its text")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transforms import convert as cv

    pages = collect_pages(args.corpus, args.real, cv)
    if not pages:
        parser.error("no pages to OCR (give --corpus and/or --real)")
    baseline = None
    if args.baseline:
        with open(args.baseline, encoding="utf-8") as fh:
            baseline = {r["page"]: r["text"] for r in json.load(fh)["pages"]}
    runtime, detector = cv.resolve_ocr_runtime(args.runtime, args.recognizer), cv.resolve_ocr_detector(args.detector)
    recognizer = cv.resolve_ocr_recognizer(args.recognizer, runtime)
    print(f"{len(pages)} pages, {args.threads} thread(s), recognizer {recognizer} on {runtime}, detector {detector}; "
          "ms per page:", file=sys.stderr)
    print(f"  {'page':<44} {'render':>7} {'ocr':>7} {'det':>7} {'cls':>6} {'rec':>7} {'other':>6} {'lines':>5}",
          file=sys.stderr)
    converter = cv.Converter(StageConfig(model_threads=args.threads, ocr_runtime=runtime, ocr_detector=detector,
                                         ocr_recognizer=recognizer))
    rows = measure(pages, converter, args.seed, baseline)
    summary = summarise(rows)
    print(json.dumps(summary, indent=2))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"threads": args.threads, "runtime": runtime, "recognizer": recognizer, "detector": detector,
                       "summary": summary, "pages": rows}, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
