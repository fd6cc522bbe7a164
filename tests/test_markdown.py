import pytest

from kb_core.text.formats import UnsupportedFormatError, to_markdown
from kb_core.text.markdown import html_to_markdown


def test_html_structure_is_kept():
    html = """<html><head><title>t</title><style>p{color:red}</style></head><body>
    <h1>Печать</h1><p>Текст <b>важный</b> и snake_case_name.</p>
    <h2>Шаги</h2><ol><li>Открыть</li><li>Нажать<ul><li>вложенный</li></ul></li></ol>
    <pre><code class="language-python">def f():
    return 1
</code></pre>
    <table><tr><th>Код</th><th>Смысл</th></tr><tr><td>429</td><td>лимит</td></tr></table>
    <script>alert("x")</script></body></html>"""
    md = html_to_markdown(html)
    assert "# Печать" in md
    assert "## Шаги" in md
    assert "1. Открыть" in md
    assert "  - вложенный" in md
    assert "```python\ndef f():\n    return 1\n```" in md
    assert "| Код | Смысл |" in md and "| 429 | лимит |" in md
    assert "snake_case_name" in md  # underscores are not escaped into noise
    assert "alert" not in md and "color:red" not in md


def test_markdown_is_normalised_but_code_untouched():
    raw = "---\ntitle: X\n---\n# Заголовок   \n\n\n\nАбзац\n\n```\nкод  \n\n\n\nещё\n```\n"
    md = to_markdown("markdown", raw)
    assert md.startswith("# Заголовок\n\nАбзац")
    assert "title: X" not in md
    assert "код  \n\n\n\nещё" in md


def test_unknown_format_is_an_error():
    with pytest.raises(UnsupportedFormatError):
        to_markdown("docx", "...")
