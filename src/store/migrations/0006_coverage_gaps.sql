-- 0006: the coverage_gaps view: stretches of days no successful fetch covered.

CREATE VIEW coverage_gaps AS
SELECT provider, account, subject,
       date(previous_last_day, '+1 day') AS first_day,
       date(first_day, '-1 day') AS last_day,
       CAST(julianday(first_day) - julianday(previous_last_day) - 1 AS INTEGER) AS days
FROM (
    SELECT provider, account, subject, first_day,
           lag(last_day) OVER (PARTITION BY provider, account, subject ORDER BY first_day)
               AS previous_last_day
    FROM subject_coverage
)
WHERE previous_last_day IS NOT NULL;
