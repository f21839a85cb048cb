"""S3 access configured as dagster-aws's S3Resource is, without importing dagster_aws until a
client is needed (its import cost ~0.7 s of every definitions load)."""

from __future__ import annotations

import json
from functools import cache

import dagster as dg
from pydantic import Field


@cache
def s3_client(config: str, endpoint: str | None = None):
    """One client per S3 configuration (a JSON of S3Resource's fields) and AWS_ENDPOINT_URL."""
    # Imported here, not at module level: dagster_aws's package import costs ~0.7 s of every
    # definitions load, and only a run or sensor that reaches S3 needs it.
    from dagster_aws.s3 import S3Resource

    fields = json.loads(config)
    fields["endpoint_url"] = fields.get("endpoint_url") or endpoint
    return S3Resource(**fields).get_client()


class S3Configuration(dg.ConfigurableResource):
    """dagster-aws's ResourceWithS3Configuration fields, declared here so that loading the
    definitions does not import dagster_aws (a test keeps the two field lists identical)."""

    use_unsigned_session: bool = Field(
        default=False, description="Specifies whether to use an unsigned S3 session."
    )
    region_name: str | None = Field(
        default=None, description="Specifies a custom region for the S3 session."
    )
    endpoint_url: str | None = Field(
        default=None, description="Specifies a custom endpoint for the S3 session."
    )
    max_attempts: int = Field(
        default=5,
        description=(
            "This provides Boto3's retry handler with a value of maximum retry attempts, where the"
            " initial call counts toward the max_attempts value that you provide."
        ),
    )
    profile_name: str | None = Field(
        default=None, description="Specifies a profile to connect that session."
    )
    use_ssl: bool = Field(
        default=True, description="Whether or not to use SSL. By default, SSL is used."
    )
    verify: bool | None = Field(
        default=None,
        description=(
            "Whether or not to verify SSL certificates. By default SSL certificates are verified."
        ),
    )
    aws_access_key_id: str | None = Field(
        default=None, description="AWS access key ID to use when creating the boto3 session."
    )
    aws_secret_access_key: str | None = Field(
        default=None, description="AWS secret access key to use when creating the boto3 session."
    )
    aws_session_token: str | None = Field(
        default=None, description="AWS session token to use when creating the boto3 session."
    )
