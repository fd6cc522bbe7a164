import itertools
import re

from kb_core.text.chunking import ChunkerConfig, chunk_markdown


def _paragraph(n: int, words: int = 40) -> str:
    return " ".join(f"слово{n}_{i}" for i in range(words)) + "."


def _non_blank_lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def test_small_document_is_one_chunk_with_its_heading_path():
    md = "# Печать\n\nПринтер не печатает.\n\n## Решение\n\nПерезапустите очередь.\n"
    chunks = chunk_markdown(md)
    assert len(chunks) == 1
    assert chunks[0].heading_path == ("Печать",)
    assert chunks[0].text == md.strip()


def test_sections_carry_their_heading_path():
    body = "\n\n".join(_paragraph(i) for i in range(6))
    md = f"# Гид\n\n## Почта\n\n{body}\n\n### IMAP\n\n{body}\n\n## Печать\n\n{body}\n"
    chunks = chunk_markdown(md, ChunkerConfig(size=1500, overlap=150))
    paths = {c.heading_path for c in chunks}
    assert ("Гид", "Почта") in paths
    assert ("Гид", "Почта", "IMAP") in paths
    assert ("Гид", "Печать") in paths
    assert all(c.ordinal == i for i, c in enumerate(chunks))


def test_chunks_respect_the_size_and_lose_no_text():
    md = "# Большой документ\n\n" + "\n\n".join(_paragraph(i) for i in range(60))
    config = ChunkerConfig(size=1000, overlap=100)
    chunks = chunk_markdown(md, config)
    assert len(chunks) > 5
    assert all(len(c.text) <= config.size for c in chunks)
    covered = {line for c in chunks for line in _non_blank_lines(c.text)}
    assert set(_non_blank_lines(md)) <= covered


def test_consecutive_chunks_of_a_section_overlap_by_whole_blocks():
    md = "\n\n".join(_paragraph(i, words=12) for i in range(30))
    chunks = chunk_markdown(md, ChunkerConfig(size=800, overlap=200))
    assert len(chunks) > 2
    for previous, current in itertools.pairwise(chunks):
        last_block = previous.text.split("\n\n")[-1]
        assert current.text.startswith(last_block)


def test_heading_inside_code_is_not_a_section():
    md = "# Скрипт\n\n```bash\n# это комментарий, не заголовок\necho 1\n```\n"
    chunks = chunk_markdown(md)
    assert [c.heading_path for c in chunks] == [("Скрипт",)]
    assert "# это комментарий" in chunks[0].text


def test_code_block_is_not_cut_when_it_fits():
    code = "```python\n" + "\n".join(f"x{i} = {i}" for i in range(30)) + "\n```"
    md = "# Код\n\n" + _paragraph(1, 100) + "\n\n" + code + "\n\n" + _paragraph(2, 100)
    chunks = chunk_markdown(md, ChunkerConfig(size=900, overlap=0))
    holders = [c for c in chunks if "x0 = 0" in c.text]
    assert len(holders) == 1 and code in holders[0].text


def test_long_code_block_is_split_into_fenced_pieces():
    code = "```sql\n" + "\n".join(f"SELECT {i} FROM t;" for i in range(300)) + "\n```"
    chunks = chunk_markdown("# SQL\n\n" + code, ChunkerConfig(size=1000, overlap=0))
    code_chunks = [c for c in chunks if "SELECT" in c.text]
    assert len(code_chunks) > 3
    for chunk in code_chunks:
        fences = re.findall(r"^```", chunk.text, flags=re.MULTILINE)
        assert len(fences) % 2 == 0, "every piece of code stays inside a closed fence"
    assert all(len(c.text) <= 1000 for c in chunks)
    joined = "\n".join(c.text for c in code_chunks)
    assert all(f"SELECT {i} FROM t;" in joined for i in range(300))


def test_unclosed_fence_keeps_its_text():
    chunks = chunk_markdown("# A\n\n```\nнезакрытый код\nстрока")
    assert "незакрытый код" in chunks[0].text and "строка" in chunks[0].text


def test_very_long_paragraph_is_split_at_word_boundaries():
    md = _paragraph(7, words=600)
    chunks = chunk_markdown(md, ChunkerConfig(size=500, overlap=0))
    assert len(chunks) > 5
    words = {w for c in chunks for w in c.text.split()}
    assert {w.strip(".") for w in md.split()} <= {w.strip(".") for w in words}


def test_signature_follows_the_config():
    assert ChunkerConfig(3000, 300).signature != ChunkerConfig(2000, 300).signature
    assert chunk_markdown("") == []
