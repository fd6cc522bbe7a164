"""Benchmark: candidate attachment libraries, speed and text fidelity (docs/sources.md).

Converts a generated one-page Cyrillic PDF and a DOCX (heading, 200 paragraphs, a table)
20 times with each candidate and prints the median time and the share of lines
recovered. pdfminer.six and python-docx are not project dependencies: install them into
a scratch venv to compare (`pip install pdfminer.six==20260107 python-docx==1.2.0`);
a missing candidate is reported as such.

    .venv/bin/python -m bench.attachment_libraries
"""

import io
import statistics
import time

from kb_fakes.documents import docx_bytes, pdf_bytes

lines = [
    f"Строка {i}: настройка маршрута согласования, тариф «Бизнес» — {i * 1000} рублей."
    for i in range(45)
]
pdf = pdf_bytes(lines)
paras = [
    f"Абзац {i}: дежурный инженер перезванивает за 15 минут, эскалация через 30."
    for i in range(200)
]
table = [["Приоритет", "Срок"]] + [[f"P{i}", f"{i} ч"] for i in range(50)]
docx = docx_bytes("Регламент", paras, table)


def bench(fn, data, n=20):
    t = []
    for _ in range(n):
        s = time.perf_counter()
        out = fn(data)
        t.append(time.perf_counter() - s)
    return statistics.median(t) * 1000, out


def pypdf_text(d):
    from pypdf import PdfReader

    return "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(d)).pages)


def pdfminer_text(d):
    from pdfminer.high_level import extract_text

    return extract_text(io.BytesIO(d))


def mammoth_md(d):
    import mammoth

    from kb_core.text.markdown import html_to_markdown

    return html_to_markdown(mammoth.convert_to_html(io.BytesIO(d)).value)


def pydocx_text(d):
    import docx

    doc = docx.Document(io.BytesIO(d))
    out = [p.text for p in doc.paragraphs]
    for t in doc.tables:
        out += [" | ".join(c.text for c in r.cells) for r in t.rows]
    return "\n".join(out)


def recall(text, expected):
    norm = " ".join(text.split())
    return sum(1 for e in expected if e in norm) / len(expected)


print(
    f"pdf {len(pdf)} bytes, {len(lines)} lines; "
    f"docx {len(docx)} bytes, {len(paras)} paragraphs + 51-row table"
)
for name, fn, data, exp in [
    ("pypdf", pypdf_text, pdf, lines),
    ("pdfminer.six", pdfminer_text, pdf, lines),
    ("mammoth+markdownify", mammoth_md, docx, paras),
    ("python-docx", pydocx_text, docx, paras),
]:
    try:
        ms, out = bench(fn, data)
    except ImportError as exc:
        print(f"{name:22s} not installed ({exc.name})")
        continue
    extra = ""
    if "docx" in name or "mammoth" in name:
        heading, table = "# Регламент" in out, "| P3 | 3 ч |" in out
        extra = f"; heading kept as '# ': {heading}; table as Markdown: {table}"
    print(f"{name:22s} median {ms:7.1f} ms/file, lines recovered {recall(out, exp):.0%}{extra}")
