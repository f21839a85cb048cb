-- Net Promoter Score per day of response: % promoters (score 9-10) minus % detractors (0-6),
-- rounded to one decimal. COUNT(CASE ...) keeps the counts BIGINT on every engine, and the
-- NUMERIC(5,1) cast gives nps the same type on DuckDB, PostgreSQL and Redshift.
SELECT
  CAST(created_at AS DATE) AS day,
  COUNT(*) AS responses,
  COUNT(CASE WHEN score >= 9 THEN 1 END) AS promoters,
  COUNT(CASE WHEN score <= 6 THEN 1 END) AS detractors,
  CAST(ROUND(
    100.0 * (COUNT(CASE WHEN score >= 9 THEN 1 END) - COUNT(CASE WHEN score <= 6 THEN 1 END))
    / COUNT(*), 1
  ) AS NUMERIC(5, 1)) AS nps
FROM raw_data.nps
GROUP BY CAST(created_at AS DATE)
