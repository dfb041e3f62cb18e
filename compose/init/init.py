"""Creates what the services need in an AWS emulator: the package bucket, each queue with its
dead-letter queue and redrive policy, and the Benchling secret. Safe to run again: what exists
is updated, nothing is deleted.

Configured only by the environment (compose sets it; the end-to-end suite runs this script too):

  AWS_ENDPOINT_URL              the emulator, e.g. http://moto:5000 (required: never real AWS)
  AWS_REGION                    the region (default us-east-1)
  BUCKETS                       space-separated bucket names
  QUEUES                        space-separated queue names; a name ending in .fifo is a FIFO queue;
                                each gets a dead-letter queue <base>-dlq[.fifo]
  QUEUE_VISIBILITY_TIMEOUT_SECS space-separated NAME=SECONDS for queues whose visibility timeout
                                is not the default 60 (compose: export.fifo=120, as the stack)
  VISIBILITY_TIMEOUT_SECS       one visibility timeout for every queue (wins over the above)
  MAX_RECEIVE_COUNT             receives before a message is dead-lettered (default 5, as the stack)
  SECRET_NAME                   the secret's name (optional, with SECRET_STRING)
  SECRET_STRING                 the secret's JSON

The queues mirror the CloudFormation stack (infra/stack/src/environment.rs): 4 days' retention
(14 in a dead-letter queue, which has its queue's visibility timeout); FIFO queues with
content-based deduplication off (the services set a deduplication id on every job), and the
source queues deduplicating and throttling per message group, as ordering is per entry.
"""

import json
import os
import sys

import boto3
import botocore.exceptions

RETENTION_SECS = 4 * 24 * 3600
DEAD_LETTER_RETENTION_SECS = 14 * 24 * 3600
DEFAULT_VISIBILITY_SECS = 60
DEFAULT_MAX_RECEIVES = 5


def fail(message):
    sys.exit(f"init: {message}")


def setting(name, default=None):
    value = os.environ.get(name, "").strip()
    if not value and default is None:
        fail(f"{name} is not set")
    return value or default


def whole(name, raw):
    if not raw.isdigit() or int(raw) < 1:
        fail(f"{name} must be a positive whole number, not {raw!r}")
    return int(raw)


def visibility_timeouts(queues):
    """The visibility timeout of each queue: VISIBILITY_TIMEOUT_SECS for all, else the queue's
    entry in QUEUE_VISIBILITY_TIMEOUT_SECS, else the default."""
    overall = setting("VISIBILITY_TIMEOUT_SECS", "")
    if overall:
        return {name: whole("VISIBILITY_TIMEOUT_SECS", overall) for name in queues}
    timeouts = {name: DEFAULT_VISIBILITY_SECS for name in queues}
    for pair in setting("QUEUE_VISIBILITY_TIMEOUT_SECS", "").split():
        name, _, seconds = pair.partition("=")
        if name not in timeouts:
            fail(f"QUEUE_VISIBILITY_TIMEOUT_SECS names {name!r}, which is not in QUEUES")
        timeouts[name] = whole(f"QUEUE_VISIBILITY_TIMEOUT_SECS ({name})", seconds)
    return timeouts


def dead_letter_name(name):
    return name[: -len(".fifo")] + "-dlq.fifo" if name.endswith(".fifo") else name + "-dlq"


def ensure_bucket(s3, region, bucket):
    try:
        s3.head_bucket(Bucket=bucket)
        print(f"init: bucket {bucket} exists")
        return
    except botocore.exceptions.ClientError as error:
        if error.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket"):
            raise
    # Outside us-east-1, S3 wants the region named again.
    extra = {} if region == "us-east-1" else {
        "CreateBucketConfiguration": {"LocationConstraint": region}
    }
    s3.create_bucket(Bucket=bucket, **extra)
    print(f"init: created bucket {bucket}")


def ensure_queue(sqs, name, attributes):
    """Creates the queue, or sets its attributes when it exists; returns its URL."""
    if name.endswith(".fifo"):
        attributes = {**attributes, "FifoQueue": "true", "ContentBasedDeduplication": "false"}
    try:
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    except sqs.exceptions.QueueDoesNotExist:
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        print(f"init: created queue {name}: {url}")
        return url
    # FifoQueue is fixed at creation (and follows the name).
    settable = {k: v for k, v in attributes.items() if k != "FifoQueue"}
    sqs.set_queue_attributes(QueueUrl=url, Attributes=settable)
    print(f"init: queue {name} exists, attributes updated: {url}")
    return url


def ensure_secret(secrets, name, value):
    try:
        secrets.create_secret(Name=name, SecretString=value)
        print(f"init: created secret {name}")
    except secrets.exceptions.ResourceExistsException:
        secrets.put_secret_value(SecretId=name, SecretString=value)
        print(f"init: secret {name} exists, value updated")


def main():
    endpoint = setting("AWS_ENDPOINT_URL")
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    buckets = setting("BUCKETS", "").split()
    queues = setting("QUEUES", "").split()
    visibility = visibility_timeouts(queues)
    max_receives = whole(
        "MAX_RECEIVE_COUNT", setting("MAX_RECEIVE_COUNT", str(DEFAULT_MAX_RECEIVES))
    )
    secret_name = setting("SECRET_NAME", "")
    secret_string = setting("SECRET_STRING", "")
    if bool(secret_name) != bool(secret_string):
        fail("set both SECRET_NAME and SECRET_STRING, or neither")
    if secret_string:
        try:
            json.loads(secret_string)
        except ValueError as error:
            fail(f"SECRET_STRING is not JSON: {error}")

    session = boto3.session.Session(region_name=region)
    s3 = session.client("s3", endpoint_url=endpoint)
    sqs = session.client("sqs", endpoint_url=endpoint)
    secrets = session.client("secretsmanager", endpoint_url=endpoint)

    for bucket in buckets:
        ensure_bucket(s3, region, bucket)

    for name in queues:
        fifo = name.endswith(".fifo")
        seconds = str(visibility[name])
        dead_letter = ensure_queue(
            sqs,
            dead_letter_name(name),
            {
                "VisibilityTimeout": seconds,
                "MessageRetentionPeriod": str(DEAD_LETTER_RETENTION_SECS),
            },
        )
        dead_letter_arn = sqs.get_queue_attributes(
            QueueUrl=dead_letter, AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]
        attributes = {
            "VisibilityTimeout": seconds,
            "MessageRetentionPeriod": str(RETENTION_SECS),
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dead_letter_arn, "maxReceiveCount": max_receives}
            ),
        }
        if fifo:
            attributes["DeduplicationScope"] = "messageGroup"
            attributes["FifoThroughputLimit"] = "perMessageGroupId"
        ensure_queue(sqs, name, attributes)

    if secret_name:
        ensure_secret(secrets, secret_name, secret_string)


if __name__ == "__main__":
    try:
        main()
    except botocore.exceptions.EndpointConnectionError as error:
        fail(f"cannot reach the emulator at {os.environ.get('AWS_ENDPOINT_URL')}: {error}")
    except botocore.exceptions.BotoCoreError as error:
        fail(str(error))
    except botocore.exceptions.ClientError as error:
        fail(f"the emulator refused a request: {error}")
