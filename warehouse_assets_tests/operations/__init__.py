"""Operations tests: schedules, backfills, retries, the run queue, alerts, instance config."""

# One incremental table; Env.config replaces {schema} ("prod" embedded, a fresh MariaDB database
# under services).
NPS_YAML = """
tables:
  - source: {schema}.nps
    target: raw_data.nps
    mode: incremental
    primary_key: [id]
    cursor: modified_at
    soft_delete: deleted
    start_date: "2023-04-20"
"""
