"""The API, workers, secrets, notifications and monitoring stacks: every property the deployment relies on.

Built from one operator configuration that uses every option (tests/infra/conftest.py), checked by cdk-nag.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import Stack
from aws_cdk.assertions import Match, Template

from infra.stacks import access
from infra.stacks.api import ACCESS_LOG_FORMAT
from infra.stacks.stateful import WorkQueue
from tests.infra.conftest import (
    CEPH_SECRET_ARN,
    JOB_CLUSTER,
    JOB_EXECUTION_ROLE,
    JOB_TASK_DEFINITION,
    JOB_TASK_ROLE,
    Synthesized,
)
from tests.infra.grants import exports, function_grants, render

TABLE = "arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/qa-sglance-images"
OBJECTS = "arn:${AWS::Partition}:s3:::qa-sglance-image-bucket/images/*"
SECRETS = "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:sglance/qa"
KEYSTONE_SECRET = f"{SECRETS}/keystone-service-??????"
SWIFT_SECRET = f"{SECRETS}/stores/swift1-??????"
CONSUME = ("sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl",
           "sqs:ReceiveMessage")  # fmt: skip
SEND = ("sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:SendMessage")
JOB_TASKS = "arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}:task-definition/sglance-qa-job:*"


def _arn(stack: Stack, construct: Any) -> str:
    return f"<{stack.get_logical_id(construct.node.default_child)}>.Arn"


def _pairs(actions: tuple[str, ...] | list[str], *resources: str) -> set[tuple[str, str]]:
    return {(action, resource) for action in actions for resource in resources}


def _expected_grants(synthesized: Synthesized, name: str) -> set[tuple[str, str]]:
    d = synthesized.deployment
    queues = {"upload": d.stateful.upload_queue, "import": d.stateful.import_queue, "sync": d.stateful.store_sync_queue}

    def queue(key: str) -> str:
        work: WorkQueue = queues[key]
        return _arn(d.stateful, work.queue)

    glance = {"api": d.api.api, "sweeper": d.workers.sweeper}.get(name) or d.workers.workers[name].function
    stack = d.api if name == "api" else d.workers
    common = _pairs(["logs:CreateLogStream", "logs:PutLogEvents"], _arn(stack, glance.log_group))
    common |= _pairs(["xray:PutTelemetryRecords", "xray:PutTraceSegments"], "*")
    common |= _pairs(list(access.TABLE_ACTIONS), TABLE, f"{TABLE}/index/*")
    common |= {("events:PutEvents", _arn(d.notifications, d.notifications.bus))}
    if name == "sweeper":
        return common | _pairs(["s3:AbortMultipartUpload", "s3:DeleteObject"], OBJECTS)
    if name != "api" and d.config.jobs is not None:
        # An operator-named job runner: its task definition and its two roles (and nothing else of ECS or IAM).
        common |= {("ecs:RunTask", JOB_TASK_DEFINITION)} | _pairs(["iam:PassRole"], JOB_EXECUTION_ROLE, JOB_TASK_ROLE)
    elif name != "api":
        # The deployment's own job task (data plane stack): every revision of its family, and its two roles.
        job = d.dataplane.jobs.task_definition
        common |= {("ecs:RunTask", JOB_TASKS)}
        common |= _pairs(["iam:PassRole"], _arn(d.dataplane, job.task_role), _arn(d.dataplane, job.execution_role))
    if name == "api":
        return (
            common
            | _pairs(list(access.API_OBJECT_ACTIONS), OBJECTS)
            | _pairs(SEND, queue("import"), queue("sync"))
            | _pairs(["secretsmanager:GetSecretValue"], KEYSTONE_SECRET, SWIFT_SECRET, CEPH_SECRET_ARN)
        )
    if name == "upload_complete":
        return (
            common
            | _pairs(list(access.UPLOAD_COMPLETE_OBJECT_ACTIONS), OBJECTS)
            | _pairs(CONSUME, queue("upload"))
            | _pairs(SEND, queue("sync"))
        )
    if name == "import_worker":
        return (
            common
            | _pairs(list(access.IMPORT_WORKER_OBJECT_ACTIONS), OBJECTS)
            | _pairs(CONSUME, queue("import"))
            | _pairs(SEND, queue("sync"))
        )
    return (
        common
        | _pairs(["s3:DeleteObject", "s3:GetObject"], OBJECTS)
        | _pairs(CONSUME, queue("sync"))
        | _pairs(SEND, queue("sync"))
        | _pairs(["secretsmanager:GetSecretValue"], SWIFT_SECRET, CEPH_SECRET_ARN)
    )


FUNCTIONS: dict[str, tuple[str, str]] = {
    "api": ("api", "sglance-qa-api"),
    "upload_complete": ("workers", "sglance-qa-upload-complete"),
    "import_worker": ("workers", "sglance-qa-import-worker"),
    "store_sync": ("workers", "sglance-qa-store-sync"),
    "sweeper": ("workers", "sglance-qa-sweeper"),
}


@pytest.mark.parametrize("name", FUNCTIONS)
def test_function_role__allows_exactly_what_its_code_calls(synthesized: Synthesized, name: str) -> None:
    stack, function_name = FUNCTIONS[name]
    granted = function_grants(synthesized.templates[stack], function_name, exports(synthesized.templates))

    assert granted == _expected_grants(synthesized, name)


@pytest.mark.parametrize("name", FUNCTIONS)
def test_function_role__with_an_operator_named_job_runner__may_start_only_that_one(
    synthesized_off: Synthesized, name: str
) -> None:
    stack, function_name = FUNCTIONS[name]
    granted = function_grants(synthesized_off.templates[stack], function_name, exports(synthesized_off.templates))

    assert granted == _expected_grants(synthesized_off, name)


def test_function_roles__only_xray_takes_every_resource(synthesized: Synthesized) -> None:
    exported = exports(synthesized.templates)
    for stack, function_name in FUNCTIONS.values():
        granted = function_grants(synthesized.templates[stack], function_name, exported)
        assert {action for action, resource in granted if resource == "*"} == {
            "xray:PutTraceSegments",
            "xray:PutTelemetryRecords",
        }


@pytest.mark.parametrize("name", FUNCTIONS)
def test_function__runs_the_handler_traced_with_json_logs_on_the_configured_architecture(
    synthesized: Synthesized, name: str
) -> None:
    stack, function_name = FUNCTIONS[name]
    template = synthesized.templates[stack]
    sizing = getattr(synthesized.deployment.config, name)

    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "FunctionName": function_name,
            "Handler": f"functions.{name}.handler.handler",
            "Runtime": "python3.13",
            "Architectures": ["arm64"],
            "MemorySize": sizing.memory_mb,
            "Timeout": sizing.timeout_s,
            "TracingConfig": {"Mode": "Active"},
            "LoggingConfig": Match.object_like(
                {"LogFormat": "JSON", "ApplicationLogLevel": "INFO", "SystemLogLevel": "WARN"}
            ),
            "Layers": [{"Ref": Match.string_like_regexp("^Dependencies")}],
        },
    )
    template.has_resource_properties(
        "AWS::Logs::LogGroup", {"LogGroupName": f"/aws/lambda/{function_name}", "RetentionInDays": 30}
    )


def _environment(template: Template, resource_type: str) -> list[dict[str, Any]]:
    if resource_type == "AWS::Lambda::Function":
        return [
            body["Properties"]["Environment"]["Variables"] for body in template.find_resources(resource_type).values()
        ]
    return [
        {pair["Name"]: pair["Value"] for pair in container.get("Environment", [])}
        for body in template.find_resources(resource_type).values()
        for container in body["Properties"]["ContainerDefinitions"]
    ]


def test_functions_and_tasks__share_one_environment_that_settings_read_back(synthesized: Synthesized) -> None:
    (api_env,) = _environment(synthesized.templates["api"], "AWS::Lambda::Function")
    workers = _environment(synthesized.templates["workers"], "AWS::Lambda::Function")
    tasks = _environment(synthesized.templates["dataplane"], "AWS::ECS::TaskDefinition")
    launcher = dict(synthesized.deployment.dataplane.jobs.environment)

    assert len(workers) == 4  # upload_complete, import_worker, store_sync, sweeper
    assert len(tasks) == 2
    # The API launches no job (SGLANCE_JOB_LAUNCHER=none); the workers name the deployment's own job task.
    assert api_env["SGLANCE_JOB_LAUNCHER"] == "none"
    shared = {k: v for k, v in api_env.items() if k not in launcher}
    for env in workers:
        assert set(env) == set(api_env) | set(launcher)
        assert {k: v for k, v in env.items() if k in shared} == shared
        assert env["SGLANCE_JOB_LAUNCHER"] == "ecs"
        assert env["SGLANCE_JOB_TASK_DEFINITION"] == "sglance-qa-job"
        assert env["SGLANCE_JOB_CONTAINER_NAME"] == "job"
    for env in tasks:
        assert {k: v for k, v in env.items() if k in api_env} == api_env
        assert set(env) - set(api_env) <= {"SGLANCE_DATA_PLANE_PORT"}
    env = api_env
    assert env["SGLANCE_AUTH_MODE"] == "keystone"
    assert env["SGLANCE_KEYSTONE_URL"] == "https://keystone.example.org/v3"
    assert env["SGLANCE_KEYSTONE_SERVICE_USERNAME"] == "glance-qa"
    secret_ref = render(env["SGLANCE_KEYSTONE_SERVICE_PASSWORD_SECRET_ARN"], exports(synthesized.templates))
    d = synthesized.deployment
    assert secret_ref == f"<{d.secrets.get_logical_id(d.secrets.keystone_service.node.default_child)}>"
    assert env["SGLANCE_AWS_REGION"] == {"Ref": "AWS::Region"}
    assert env["SGLANCE_TABLE_NAME"] == "qa-sglance-images"
    assert env["SGLANCE_IMAGE_BUCKET"] == "qa-sglance-image-bucket"
    assert env["SGLANCE_REPLICATE_TO"] == "swift1"
    assert env["SGLANCE_STORE_SYNC_MAX_ATTEMPTS"] == "7"
    assert env["SGLANCE_IMAGE_SIZE_CAP"] == str(10 * 1024**3)
    assert env["SGLANCE_IMAGE_TAG_QUOTA"] == "20"
    assert env["SGLANCE_HASHING_ALGORITHM"] == "sha256"
    assert env["SGLANCE_POLICY_FILE"] == "config/policy.yaml"
    assert env["SGLANCE_PUBLIC_ENDPOINT"] == "https://images.example.org"
    assert env["POWERTOOLS_SERVICE_NAME"] == "serverless-glance"
    assert "SGLANCE_AWS_ENDPOINT_URL" not in env
    assert not any("PASSWORD" in key and "SECRET_ARN" not in key for key in env)


def test_functions__with_an_operator_named_job_runner__all_carry_its_settings(synthesized_off: Synthesized) -> None:
    environments = [
        json.dumps(body["Properties"]["Environment"]["Variables"], sort_keys=True)
        for stack in ("api", "workers")
        for body in synthesized_off.templates[stack].find_resources("AWS::Lambda::Function").values()
    ]
    assert len(environments) == 5
    assert len(set(environments)) == 1
    env = json.loads(environments[0])
    assert env["SGLANCE_JOB_LAUNCHER"] == "ecs"
    assert env["SGLANCE_JOB_CLUSTER"] == JOB_CLUSTER
    assert env["SGLANCE_JOB_TASK_DEFINITION"] == JOB_TASK_DEFINITION
    assert env["SGLANCE_JOB_SUBNETS"] == "subnet-0a1b2c3d,subnet-4e5f6a7b"


def test_sweeper__runs_on_a_schedule_of_the_sweep_interval_with_no_retries(synthesized: Synthesized) -> None:
    d = synthesized.deployment
    function_id = d.workers.get_logical_id(d.workers.sweeper.function.node.default_child)
    rules = synthesized.templates["workers"].find_resources("AWS::Events::Rule")
    (rule,) = [body["Properties"] for body in rules.values()]

    assert rule["ScheduleExpression"] == "rate(5 minutes)"
    assert rule["State"] == "ENABLED"
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [function_id, "Arn"]}
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 0}
    synthesized.templates["workers"].has_resource_properties(
        "AWS::Lambda::Permission",
        {"Action": "lambda:InvokeFunction", "Principal": "events.amazonaws.com", "FunctionName": Match.any_value()},
    )


def test_store_sync_queue__gives_up_after_the_configured_attempts(synthesized: Synthesized) -> None:
    synthesized.templates["stateful"].has_resource_properties(
        "AWS::SQS::Queue", {"QueueName": "qa-store-sync", "RedrivePolicy": Match.object_like({"maxReceiveCount": 7})}
    )


@pytest.mark.parametrize(
    ("name", "queue"),
    [("upload_complete", "qa-upload"), ("import_worker", "qa-import"), ("store_sync", "qa-store-sync")],
)
def test_worker__is_fed_by_its_queue_with_partial_batch_failures_and_its_dlq_alarms(
    synthesized: Synthesized, name: str, queue: str
) -> None:
    d = synthesized.deployment
    worker = d.workers.workers[name]
    template = synthesized.templates["workers"]
    function_id = d.workers.get_logical_id(worker.function.function.node.default_child)
    queue_arn = f"<{d.stateful.get_logical_id(worker.queue.queue.node.default_child)}>.Arn"
    mapping = template.find_resources(
        "AWS::Lambda::EventSourceMapping", {"Properties": {"FunctionName": {"Ref": function_id}}}
    )
    (properties,) = [body["Properties"] for body in mapping.values()]

    assert properties["BatchSize"] == 10
    assert properties["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert render(properties["EventSourceArn"], exports(synthesized.templates)) == queue_arn
    assert worker.queue.queue.node.default_child.queue_name == queue  # type: ignore[union-attr]
    # AWS: a queue's visibility timeout at least six times the function's timeout.
    assert worker.queue.definition.visibility_timeout_s >= 6 * getattr(d.config, name).timeout_s
    alarm = template.find_resources(
        "AWS::CloudWatch::Alarm", {"Properties": {"AlarmName": f"sglance-qa-{name.replace('_', '-')}-dlq-not-empty"}}
    )
    (alarm_properties,) = [body["Properties"] for body in alarm.values()]
    assert alarm_properties["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert alarm_properties["Namespace"] == "AWS/SQS"
    assert alarm_properties["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm_properties["Threshold"] == 1
    assert alarm_properties["AlarmActions"] == ["arn:aws:sns:eu-west-1:111122223333:ops-alarms"]
    (dimension,) = alarm_properties["Dimensions"]
    dlq_id = d.stateful.get_logical_id(worker.queue.dlq.node.default_child)
    assert render(dimension["Value"], exports(synthesized.templates)) == f"<{dlq_id}>.QueueName"


def test_http_api__logs_access_throttles_and_serves_only_the_custom_domain_over_tls12(
    synthesized_off: Synthesized,
) -> None:
    template = synthesized_off.templates["api"]
    d = synthesized_off.deployment
    log_group_id = d.api.get_logical_id(d.api.access_logs.node.default_child)

    template.has_resource_properties(
        "AWS::ApiGatewayV2::Api", {"ProtocolType": "HTTP", "DisableExecuteApiEndpoint": True}
    )
    template.has_resource_properties(
        "AWS::ApiGatewayV2::Stage",
        {
            "StageName": "$default",
            "AutoDeploy": True,
            "DefaultRouteSettings": {"ThrottlingRateLimit": 200, "ThrottlingBurstLimit": 400},
            "AccessLogSettings": {
                "DestinationArn": {"Fn::GetAtt": [log_group_id, "Arn"]},
                "Format": json.dumps(ACCESS_LOG_FORMAT),
            },
        },
    )
    template.has_resource_properties(
        "AWS::ApiGatewayV2::DomainName",
        {
            "DomainName": "images.example.org",
            "DomainNameConfigurations": [Match.object_like({"SecurityPolicy": "TLS_1_2", "EndpointType": "REGIONAL"})],
        },
    )
    template.resource_count_is("AWS::ApiGatewayV2::ApiMapping", 1)
    template.has_resource_properties(
        "AWS::ApiGatewayV2::Integration", {"IntegrationType": "AWS_PROXY", "PayloadFormatVersion": "2.0"}
    )
    template.has_resource_properties("AWS::Logs::LogGroup", {"LogGroupName": "/aws/apigateway/sglance-qa"})


def test_secrets__hold_keystone_and_unconfigured_store_credentials_out_of_the_template(
    synthesized: Synthesized,
) -> None:
    template = synthesized.templates["secrets"]
    secrets = template.find_resources("AWS::SecretsManager::Secret")

    assert sorted(body["Properties"]["Name"] for body in secrets.values()) == [
        "sglance/qa/keystone-service",
        "sglance/qa/stores/swift1",
    ]
    for body in secrets.values():
        assert "SecretString" not in body["Properties"]
        assert "GenerateSecretString" in body["Properties"]
        assert body["DeletionPolicy"] == "Retain"


def test_notifications__bus_is_named_from_the_configuration(synthesized: Synthesized) -> None:
    template = synthesized.templates["notifications"]

    template.resource_count_is("AWS::Events::EventBus", 1)
    template.has_resource_properties("AWS::Events::EventBus", {"Name": "qa-events"})


def test_monitoring__dashboard_shows_api_functions_queues_alarms_and_table(synthesized: Synthesized) -> None:
    template: Template = synthesized.templates["monitoring"]
    (dashboard,) = template.find_resources("AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["Properties"]["DashboardBody"])

    assert dashboard["Properties"]["DashboardName"] == "sglance-qa"
    for title in ("API requests and errors", "API latency", "Work queues", "Dead-letter queues", "Images table"):
        assert title in body
    for name in ("api", "upload_complete", "import_worker", "store_sync"):
        assert f"{name}: invocations" in body
