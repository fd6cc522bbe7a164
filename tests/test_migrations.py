from pathlib import Path

import psycopg
import pytest

from kb_core.db.migrations import MigrationError, applied_versions, apply_migrations, discover
from kb_core.settings import PROJECT_ROOT


def _copy_migrations(target: Path) -> Path:
    target.mkdir()
    for path in (PROJECT_ROOT / "sql").glob("*.sql"):
        (target / path.name).write_text(path.read_text("utf-8"), "utf-8")
    return target


def _tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        ).fetchall()
    return {r[0] for r in rows}


def test_first_run_applies_all_and_records_them(empty_db_url: str):
    applied = apply_migrations(empty_db_url, PROJECT_ROOT / "sql")
    assert [m.version for m in applied] == [m.version for m in discover(PROJECT_ROOT / "sql")]
    assert {"documents", "chunks", "schema_migrations"} <= _tables(empty_db_url)
    with psycopg.connect(empty_db_url) as conn:
        assert applied_versions(conn) == [m.version for m in applied]
        indexes = {r[0] for r in conn.execute("SELECT indexname FROM pg_indexes")}
    assert "chunks_tsv_gin" in indexes


def test_second_run_applies_nothing(empty_db_url: str):
    apply_migrations(empty_db_url, PROJECT_ROOT / "sql")
    assert apply_migrations(empty_db_url, PROJECT_ROOT / "sql") == []


def test_new_migration_is_applied_in_order(empty_db_url: str, tmp_path: Path):
    folder = _copy_migrations(tmp_path / "sql")
    apply_migrations(empty_db_url, folder)
    (folder / "9001_extra.sql").write_text("CREATE TABLE extra_b (id int);", "utf-8")
    (folder / "9000_first.sql").write_text("CREATE TABLE extra_a (id int);", "utf-8")
    applied = apply_migrations(empty_db_url, folder)
    assert [m.version for m in applied] == [9000, 9001]
    assert {"extra_a", "extra_b"} <= _tables(empty_db_url)


def test_failing_migration_is_rolled_back_and_not_recorded(empty_db_url: str, tmp_path: Path):
    folder = _copy_migrations(tmp_path / "sql")
    (folder / "9000_half.sql").write_text(
        "CREATE TABLE half_done (id int);\nSELECT * FROM no_such_table;", "utf-8"
    )
    with pytest.raises(psycopg.errors.UndefinedTable):
        apply_migrations(empty_db_url, folder)
    assert "half_done" not in _tables(empty_db_url)
    with psycopg.connect(empty_db_url) as conn:
        assert 9000 not in applied_versions(conn)
        assert 1 in applied_versions(conn)  # the good ones before it stay applied


def test_editing_an_applied_migration_is_refused(empty_db_url: str, tmp_path: Path):
    folder = _copy_migrations(tmp_path / "sql")
    apply_migrations(empty_db_url, folder)
    first = sorted(folder.glob("*.sql"))[0]
    first.write_text(first.read_text("utf-8") + "\n-- edited\n", "utf-8")
    with pytest.raises(MigrationError, match="changed after it was applied"):
        apply_migrations(empty_db_url, folder)


def test_database_newer_than_checkout_is_refused(empty_db_url: str, tmp_path: Path):
    folder = _copy_migrations(tmp_path / "sql")
    (folder / "9000_later.sql").write_text("SELECT 1;", "utf-8")
    apply_migrations(empty_db_url, folder)
    (folder / "9000_later.sql").unlink()
    with pytest.raises(MigrationError, match="not in"):
        apply_migrations(empty_db_url, folder)


@pytest.mark.parametrize("name", ["1_short.sql", "0002-dash.sql", "0003_UPPER.sql"])
def test_bad_file_names_are_rejected(tmp_path: Path, name: str):
    (tmp_path / name).write_text("SELECT 1;", "utf-8")
    with pytest.raises(MigrationError, match="bad migration file name"):
        discover(tmp_path)


def test_duplicate_numbers_are_rejected(tmp_path: Path):
    (tmp_path / "0001_a.sql").write_text("SELECT 1;", "utf-8")
    (tmp_path / "0001_b.sql").write_text("SELECT 1;", "utf-8")
    with pytest.raises(MigrationError, match="two migrations"):
        discover(tmp_path)


# Enum-like columns (0016): one wrong value per constrained column, each refused.
_WRONG_VALUES = [
    ("bot_interactions", "mode", "generative"),
    ("bot_interactions", "trigger", "webhook"),
    ("bot_interactions", "category_method", "guess"),
    ("ticket_outcomes", "outcome", "ignored"),
    ("ticket_outcomes", "category_source", "human"),
    ("ticket_outcomes", "bot_mode", "llm-v2"),
    ("console_feedback", "answer_mode", "rag"),
    ("eval_cases", "mode", "semantic"),
    ("source_events", "source", "jira"),
    ("source_events", "kind", "page_created"),
    ("audit_log", "action", "delete"),
    ("document_access", "origin", "ldap"),
]


def test_enum_like_columns_have_a_check_that_leaves_out_a_wrong_value(db_url: str):
    with psycopg.connect(db_url) as conn:
        constraints = {
            (table, column): name
            for table, column, name in conn.execute(
                """
                SELECT rel.relname, att.attname, con.conname
                FROM pg_constraint con
                JOIN pg_class rel ON rel.oid = con.conrelid
                JOIN pg_attribute att ON att.attrelid = con.conrelid
                                     AND att.attnum = ANY(con.conkey)
                WHERE con.contype = 'c'
                """
            )
        }
        for table, column, wrong in _WRONG_VALUES:
            name = constraints[(table, column)]
            # The constraint's own check on the value: the table needs no other row.
            definition = conn.execute(
                "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = %s",
                (name,),
            ).fetchone()[0]
            assert wrong not in definition, name


def test_a_wrong_value_is_refused_and_a_right_one_accepted(db_url: str):
    with psycopg.connect(db_url) as conn:
        insert = "INSERT INTO source_events (source, kind, external_id) VALUES (%s, %s, '1')"
        conn.execute(insert, ("pyrus", "ticket_closed"))
        with pytest.raises(psycopg.errors.CheckViolation, match="source_events_kind_check"):
            conn.execute(insert, ("pyrus", "ticket_opened"))
        conn.rollback()
        audit = "INSERT INTO audit_log (subject, action, status) VALUES ('s', %s, 200)"
        conn.execute(audit, ("search",))
        with pytest.raises(psycopg.errors.CheckViolation, match="audit_log_action_check"):
            conn.execute(audit, ("delete",))


def test_audit_actions_the_code_writes_are_all_allowed_by_the_check(db_url: str):
    """The constraint and ``kb_core.console.audit.ACTIONS`` must not drift apart."""
    from kb_core.console.audit import ACTIONS

    with psycopg.connect(db_url) as conn:
        definition = conn.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conname = 'audit_log_action_check'"
        ).fetchone()
    assert definition is not None
    for action in ACTIONS:
        assert f"'{action}'" in definition[0], action
