"""Operations: metrics served where Prometheus scrapes, counters kept in the database."""
