#!/bin/sh
# Runs inside LocalStack once it is ready: what `cdk bootstrap` would create that `infra.emulator` relies on.
# (infra.emulator creates the same two things if they are missing; having them here lets `cdklocal deploy` work too.)
set -eu
awslocal s3 mb s3://cdk-hnb659fds-assets-000000000000-us-east-1 2>/dev/null || true
awslocal ssm put-parameter --name /cdk-bootstrap/hnb659fds/version --type String --value 30 --overwrite >/dev/null
echo "serverless-glance: CDK bootstrap bucket and version parameter ready"
