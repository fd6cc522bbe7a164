-- Runs once, when the PostgreSQL volume is first initialised (as the POSTGRES_USER, kb).
-- Dagster's run, event and schedule storage lives in its own database on the same server,
-- so one pg_dump pair backs up everything (deploy/README.md, "Backup and restore").
-- The knowledge base's own schema (database kb) is created by `kb db migrate`.
CREATE DATABASE dagster OWNER kb;
