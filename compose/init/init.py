"""Creates what the services need in an AWS emulator: the package bucket, each queue with its
dead-letter queue and redrive policy, and the Benchling secret. Safe to run again: what exists
is updated, nothing is deleted.

Configured only by the environment (compose sets it; the end-to-end suite runs this script too):

  AWS_ENDPOINT_URL         the emulator, e.g. http://moto:5000 (required: never real AWS)
  AWS_REGION               the region (default us-east-1)
  BUCKETS                  space-separated bucket names
  QUEUES                   space-separated queue names; a name ending in .fifo is a FIFO queue;
                           each gets a dead-letter queue <base>-dlq[.fifo]
  SECRET_NAME              the secret's name (optional, with SECRET_STRING)
  SECRET_STRING            the secret's JSON
  VISIBILITY_TIMEOUT_SECS  queue visibility timeout (default 60, as the stack's job queues)
  MAX_RECEIVE_COUNT        receives before a message is dead-lettered (default 5, as the stack)
"""

import json
import os
import sys

import boto3
import botocore.exceptions

RETENTION_SECS = 4 * 24 * 3600
DEAD_LETTER_RETENTION_SECS = 14 * 24 * 3600


def setting(name, default=None):
    value = os.environ.get(name, "").strip()
    if not value and default is None:
        sys.exit(f"init: {name} is not set")
    return value or default


def number(name, default):
    raw = setting(name, str(default))
    if not raw.isdigit() or int(raw) < 1:
        sys.exit(f"init: {name} must be a positive whole number, not {raw!r}")
    return int(raw)


def dead_letter_name(name):
    return name[: -len(".fifo")] + "-dlq.fifo" if name.endswith(".fifo") else name + "-dlq"


def ensure_queue(sqs, name, attributes):
    """Creates the queue, or sets its attributes when it exists; returns its URL."""
    fifo = name.endswith(".fifo")
    if fifo:
        # The services set a deduplication id on every job; content-based dedup would drop
        # legitimate repeats of the same body.
        attributes = {**attributes, "FifoQueue": "true", "ContentBasedDeduplication": "false"}
    try:
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    except sqs.exceptions.QueueDoesNotExist:
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        print(f"init: created queue {name}")
        return url
    settable = {k: v for k, v in attributes.items() if k != "FifoQueue"}
    sqs.set_queue_attributes(QueueUrl=url, Attributes=settable)
    print(f"init: queue {name} exists, attributes updated")
    return url


def main():
    endpoint = setting("AWS_ENDPOINT_URL")
    buckets = setting("BUCKETS", "").split()
    queues = setting("QUEUES", "").split()
    visibility = str(number("VISIBILITY_TIMEOUT_SECS", 60))
    max_receives = str(number("MAX_RECEIVE_COUNT", 5))
    secret_name = setting("SECRET_NAME", "")
    secret_string = setting("SECRET_STRING", "")
    if bool(secret_name) != bool(secret_string):
        sys.exit("init: set both SECRET_NAME and SECRET_STRING, or neither")
    if secret_string:
        try:
            json.loads(secret_string)
        except ValueError as error:
            sys.exit(f"init: SECRET_STRING is not JSON: {error}")

    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    session = boto3.session.Session(region_name=region)
    s3 = session.client("s3", endpoint_url=endpoint)
    sqs = session.client("sqs", endpoint_url=endpoint)
    secrets = session.client("secretsmanager", endpoint_url=endpoint)

    for bucket in buckets:
        try:
            s3.create_bucket(Bucket=bucket)
            print(f"init: bucket {bucket} ready")
        except (s3.exceptions.BucketAlreadyOwnedByYou, s3.exceptions.BucketAlreadyExists):
            print(f"init: bucket {bucket} exists")

    for name in queues:
        dead_letter = ensure_queue(
            sqs,
            dead_letter_name(name),
            {"MessageRetentionPeriod": str(DEAD_LETTER_RETENTION_SECS)},
        )
        dead_letter_arn = sqs.get_queue_attributes(
            QueueUrl=dead_letter, AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]
        redrive = {"deadLetterTargetArn": dead_letter_arn, "maxReceiveCount": max_receives}
        url = ensure_queue(
            sqs,
            name,
            {
                "VisibilityTimeout": visibility,
                "MessageRetentionPeriod": str(RETENTION_SECS),
                "RedrivePolicy": json.dumps(redrive),
            },
        )
        print(f"init: {url}")

    if secret_name:
        try:
            secrets.create_secret(Name=secret_name, SecretString=secret_string)
            print(f"init: created secret {secret_name}")
        except secrets.exceptions.ResourceExistsException:
            secrets.put_secret_value(SecretId=secret_name, SecretString=secret_string)
            print(f"init: secret {secret_name} exists, value updated")


if __name__ == "__main__":
    try:
        main()
    except botocore.exceptions.BotoCoreError as error:
        sys.exit(f"init: {error}")
    except botocore.exceptions.ClientError as error:
        sys.exit(f"init: the emulator refused a request: {error}")
