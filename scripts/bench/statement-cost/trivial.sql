-- What one round trip costs PostgreSQL by itself: a statement that reads nothing.
-- make bench with BENCH_STATEMENT_COST=1 (docs/benchmarks.md, "where PostgreSQL's time goes").
SELECT 1;
