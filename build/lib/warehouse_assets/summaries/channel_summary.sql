-- Per user, the channel of the first and of the last session by session time (the seed's
-- Build_Summary query). Ties on ts are broken by sessionid so a rebuild never flips a value;
-- a session without a timestamp sorts last, as in the seed's LEFT JOIN on PostgreSQL/Redshift.
SELECT DISTINCT
  a.userid,
  FIRST_VALUE(a.channel) OVER (
    PARTITION BY a.userid ORDER BY b.ts ASC NULLS LAST, a.sessionid
    ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
  ) AS first_channel,
  LAST_VALUE(a.channel) OVER (
    PARTITION BY a.userid ORDER BY b.ts ASC NULLS LAST, a.sessionid
    ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
  ) AS last_channel
FROM raw_data.user_session_channel a
LEFT JOIN raw_data.session_timestamp b ON a.sessionid = b.sessionid
