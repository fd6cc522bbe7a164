from pathlib import Path

import pytest

from kb_core.sources.files import SourceError, iter_files


def test_titles_urls_and_ids(tmp_path: Path):
    (tmp_path / "guides").mkdir()
    (tmp_path / "guides" / "a.md").write_text(
        "---\ntitle: Из фронтматтера\nurl: https://wiki.example.local/a\nowner: support\n---\n"
        "# Другой\n\nТекст",
        "utf-8",
    )
    (tmp_path / "b.md").write_text("Вступление\n\n# Заголовок Б\n\nТекст", "utf-8")
    (tmp_path / "c.html").write_text("<h1>Страница В</h1><p>Текст</p>", "utf-8")
    (tmp_path / "no_title.md").write_text("просто текст", "utf-8")
    (tmp_path / ".hidden.md").write_text("# скрытый", "utf-8")
    (tmp_path / "image.png").write_bytes(b"\x89PNG")
    docs = {d.external_id: d for d in iter_files(tmp_path)}
    assert set(docs) == {"guides/a.md", "b.md", "c.html", "no_title.md"}
    assert docs["guides/a.md"].title == "Из фронтматтера"
    assert docs["guides/a.md"].url == "https://wiki.example.local/a"
    assert docs["guides/a.md"].metadata == {"owner": "support"}
    assert docs["b.md"].title == "Заголовок Б"
    assert docs["c.html"].title == "Страница В" and docs["c.html"].raw_format == "html"
    assert docs["no_title.md"].title == "no title"


def test_content_hash_changes_with_content(tmp_path: Path):
    path = tmp_path / "a.md"
    path.write_text("# A\n\none", "utf-8")
    before = next(iter_files(tmp_path)).content_hash
    path.write_text("# A\n\ntwo", "utf-8")
    assert next(iter_files(tmp_path)).content_hash != before


def test_missing_folder_and_bad_encoding_are_clear_errors(tmp_path: Path):
    with pytest.raises(SourceError, match="not found"):
        list(iter_files(tmp_path / "nope"))
    (tmp_path / "latin.md").write_bytes("# Caf\xe9".encode("latin-1"))
    with pytest.raises(SourceError, match="not UTF-8"):
        list(iter_files(tmp_path))
