"""The registry, data plane and front door stacks: ECS Fargate (arm64), the internal balancer, CloudFront.

Built from the operator configuration of tests/infra/conftest.py (data plane on) and the same with it off.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack
from aws_cdk.assertions import Match

from infra.image import CODE_DIR
from infra.stacks import access
from infra.stacks.dataplane import DATA_PATH_PATTERNS, DATA_PLANE_PORT, HEALTHCHECK_PATH, STOP_TIMEOUT_S
from tests.infra.conftest import CEPH_SECRET_ARN, Synthesized
from tests.infra.grants import exports, role_grants

TABLE = "arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/qa-sglance-images"
OBJECTS = "arn:${AWS::Partition}:s3:::qa-sglance-image-bucket/images/*"
SECRETS = "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:sglance/qa"
KEYSTONE_SECRET = f"{SECRETS}/keystone-service-??????"
SWIFT_SECRET = f"{SECRETS}/stores/swift1-??????"
SEND = ("sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:SendMessage")


def _arn(stack: Stack, construct: Any) -> str:
    return f"<{stack.get_logical_id(construct.node.default_child)}>.Arn"


def _pairs(actions: tuple[str, ...] | list[str], *resources: str) -> set[tuple[str, str]]:
    return {(action, resource) for action in actions for resource in resources}


def _task_role_grants(synthesized: Synthesized, task: Any) -> set[tuple[str, str]]:
    d = synthesized.deployment
    role_id = d.dataplane.get_logical_id(task.task_role.node.default_child)
    return role_grants(synthesized.templates["dataplane"], role_id, exports(synthesized.templates))


def test_data_plane_task_role__allows_exactly_what_the_api_code_calls(synthesized: Synthesized) -> None:
    d = synthesized.deployment
    assert d.dataplane.service is not None
    task = d.dataplane.service.task_definition
    queue = {name: _arn(d.stateful, getattr(d.stateful, name).queue) for name in ("import_queue", "store_sync_queue")}

    granted = _task_role_grants(synthesized, task)

    assert granted == (
        _pairs(list(access.TABLE_ACTIONS), TABLE, f"{TABLE}/index/*")
        | _pairs(list(access.DATA_PLANE_OBJECT_ACTIONS), OBJECTS)
        | _pairs(SEND, queue["import_queue"], queue["store_sync_queue"])
        | {("events:PutEvents", _arn(d.notifications, d.notifications.bus))}
        | _pairs(["secretsmanager:GetSecretValue"], KEYSTONE_SECRET, SWIFT_SECRET, CEPH_SECRET_ARN)
    )


def test_job_task_role__allows_what_the_finaliser_import_worker_and_store_sync_call(synthesized: Synthesized) -> None:
    d = synthesized.deployment

    granted = _task_role_grants(synthesized, d.dataplane.jobs.task_definition)

    assert granted == (
        _pairs(list(access.TABLE_ACTIONS), TABLE, f"{TABLE}/index/*")
        | _pairs(list(access.JOB_OBJECT_ACTIONS), OBJECTS)
        | _pairs(SEND, _arn(d.stateful, d.stateful.store_sync_queue.queue))
        | {("events:PutEvents", _arn(d.notifications, d.notifications.bus))}
        | _pairs(["secretsmanager:GetSecretValue"], SWIFT_SECRET, CEPH_SECRET_ARN)
    )
    assert set(access.JOB_OBJECT_ACTIONS) == {
        *access.UPLOAD_COMPLETE_OBJECT_ACTIONS,
        *access.IMPORT_WORKER_OBJECT_ACTIONS,
        *access.STORE_SYNC_OBJECT_ACTIONS,
    }


def test_execution_roles__pull_only_the_repository_and_write_only_their_log_group(synthesized: Synthesized) -> None:
    d = synthesized.deployment
    assert d.dataplane.service is not None
    repository = _arn(d.registry, d.registry.repository)
    for task in (d.dataplane.service.task_definition, d.dataplane.jobs.task_definition):
        assert task.execution_role is not None
        role_id = d.dataplane.get_logical_id(task.execution_role.node.default_child)
        granted = role_grants(synthesized.templates["dataplane"], role_id, exports(synthesized.templates))
        resources = {resource for _, resource in granted}
        assert {action for action, resource in granted if resource == "*"} == {"ecr:GetAuthorizationToken"}
        assert {action for action, resource in granted if resource == repository} == {
            "ecr:BatchCheckLayerAvailability",
            "ecr:BatchGetImage",
            "ecr:GetDownloadUrlForLayer",
        }
        (log_group,) = resources - {"*", repository}
        assert {action for action, resource in granted if resource == log_group} == {
            "logs:CreateLogStream",
            "logs:PutLogEvents",
        }


def test_data_plane_service__runs_the_image_on_fargate_arm64_behind_the_balancer_only(
    synthesized: Synthesized,
) -> None:
    template = synthesized.templates["dataplane"]
    d = synthesized.deployment
    image = d.image

    template.has_resource_properties(
        "AWS::ECS::TaskDefinition",
        {
            "Family": "sglance-qa-data-plane",
            "Cpu": "1024",
            "Memory": "2048",
            "NetworkMode": "awsvpc",
            "RequiresCompatibilities": ["FARGATE"],
            "RuntimePlatform": {"CpuArchitecture": "ARM64", "OperatingSystemFamily": "LINUX"},
            "ContainerDefinitions": [
                Match.object_like(
                    {
                        "Name": "data-plane",
                        "Command": ["python", "-m", "functions.data_plane"],
                        "PortMappings": [Match.object_like({"ContainerPort": DATA_PLANE_PORT})],
                        "ReadonlyRootFilesystem": True,
                        "StopTimeout": STOP_TIMEOUT_S,
                        "MountPoints": [{"ContainerPath": "/tmp", "SourceVolume": "tmp", "ReadOnly": False}],
                        "LogConfiguration": Match.object_like({"LogDriver": "awslogs"}),
                    }
                )
            ],
        },
    )
    found = template.find_resources("AWS::ECS::TaskDefinition", {"Properties": {"Family": "sglance-qa-data-plane"}})
    (definition,) = found.values()
    image_ref = definition["Properties"]["ContainerDefinitions"][0]["Image"]
    assert f":{image.tag}" in str(image_ref)
    template.has_resource_properties(
        "AWS::ECS::Service",
        {
            "ServiceName": "sglance-qa-data-plane",
            "LaunchType": "FARGATE",
            "DesiredCount": 1,
            "DeploymentConfiguration": Match.object_like(
                {"DeploymentCircuitBreaker": {"Enable": True, "Rollback": True}, "MinimumHealthyPercent": 100}
            ),
            "NetworkConfiguration": {"AwsvpcConfiguration": Match.object_like({"AssignPublicIp": "ENABLED"})},
        },
    )
    # The tasks accept only the balancer, on the server's port.
    ingress = template.find_resources("AWS::EC2::SecurityGroupIngress")
    task_ingress = [
        body["Properties"] for body in ingress.values() if body["Properties"].get("FromPort") == DATA_PLANE_PORT
    ]
    assert len(task_ingress) == 1
    assert "SourceSecurityGroupId" in task_ingress[0]
    assert image.architecture == "arm64"
    assert CODE_DIR == "/opt/sglance/app"


def test_load_balancer__is_internal_routes_only_the_data_paths_and_logs_access(synthesized: Synthesized) -> None:
    template = synthesized.templates["dataplane"]

    (balancer,) = template.find_resources("AWS::ElasticLoadBalancingV2::LoadBalancer").values()
    attributes = {pair["Key"]: pair["Value"] for pair in balancer["Properties"]["LoadBalancerAttributes"]}
    d = synthesized.deployment

    assert balancer["Properties"]["Scheme"] == "internal"
    assert attributes["access_logs.s3.enabled"] == "true"
    assert attributes["access_logs.s3.bucket"] == {
        "Ref": d.dataplane.get_logical_id(d.dataplane.logs_bucket.node.default_child)
    }
    assert attributes["access_logs.s3.prefix"] == "alb"
    assert attributes["routing.http.drop_invalid_header_fields.enabled"] == "true"
    assert attributes["idle_timeout.timeout_seconds"] == "60"
    template.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::ListenerRule",
        {"Conditions": [{"Field": "path-pattern", "PathPatternConfig": {"Values": list(DATA_PATH_PATTERNS)}}]},
    )
    template.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::Listener",
        {"Port": 80, "DefaultActions": [Match.object_like({"Type": "fixed-response"})]},
    )
    template.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::TargetGroup",
        {
            "Port": DATA_PLANE_PORT,
            "TargetType": "ip",
            "HealthCheckPath": HEALTHCHECK_PATH,
            "TargetGroupAttributes": Match.array_with(
                [{"Key": "deregistration_delay.timeout_seconds", "Value": "110"}]
            ),
        },
    )


def test_network__has_no_nat_gateway_and_reaches_s3_and_dynamodb_through_gateway_endpoints(
    synthesized: Synthesized,
) -> None:
    template = synthesized.templates["dataplane"]

    template.resource_count_is("AWS::EC2::NatGateway", 0)
    endpoints = template.find_resources("AWS::EC2::VPCEndpoint")
    assert sorted(body["Properties"]["VpcEndpointType"] for body in endpoints.values()) == ["Gateway", "Gateway"]
    template.has_resource_properties("AWS::EC2::FlowLog", {"TrafficType": "REJECT"})


def test_registry__keeps_immutable_scanned_tags(synthesized: Synthesized) -> None:
    synthesized.templates["registry"].has_resource_properties(
        "AWS::ECR::Repository",
        {
            "RepositoryName": "sglance-qa-data-plane",
            "ImageTagMutability": "IMMUTABLE",
            "ImageScanningConfiguration": {"ScanOnPush": True},
        },
    )


def test_front_door__sends_the_data_paths_to_the_vpc_origin_and_the_rest_to_the_http_api(
    synthesized: Synthesized,
) -> None:
    template = synthesized.templates["frontdoor"]
    (distribution,) = template.find_resources("AWS::CloudFront::Distribution").values()
    config = distribution["Properties"]["DistributionConfig"]
    origins = {origin["Id"]: origin for origin in config["Origins"]}

    default_origin = origins[config["DefaultCacheBehavior"]["TargetOriginId"]]
    assert "execute-api" in str(default_origin["DomainName"])
    assert default_origin["CustomOriginConfig"]["OriginProtocolPolicy"] == "https-only"
    assert default_origin["CustomOriginConfig"]["OriginSSLProtocols"] == ["TLSv1.2"]
    behaviors = {behavior["PathPattern"]: behavior for behavior in config["CacheBehaviors"]}
    assert set(behaviors) == set(DATA_PATH_PATTERNS)
    for behavior in (config["DefaultCacheBehavior"], *behaviors.values()):
        assert behavior["ViewerProtocolPolicy"] == "https-only"
        assert len(behavior["AllowedMethods"]) == 7
        # CachingDisabled (an AWS-managed policy id).
        assert behavior["CachePolicyId"] == "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
    for behavior in behaviors.values():
        assert "VpcOriginConfig" in origins[behavior["TargetOriginId"]]
    assert config["Aliases"] == ["images.example.org"]
    assert config["ViewerCertificate"]["MinimumProtocolVersion"] == "TLSv1.2_2021"
    assert config["ViewerCertificate"]["SslSupportMethod"] == "sni-only"
    assert config["Logging"]["Prefix"] == "cloudfront/"
    template.resource_count_is("AWS::CloudFront::VpcOrigin", 1)
    # The API stack leaves the domain to CloudFront and keeps its execute-api endpoint as CloudFront's origin.
    api = synthesized.templates["api"]
    api.resource_count_is("AWS::ApiGatewayV2::DomainName", 0)
    api.has_resource_properties("AWS::ApiGatewayV2::Api", {"DisableExecuteApiEndpoint": False})


def test_data_plane_off__leaves_no_service_balancer_or_front_door_but_keeps_the_job_task(
    synthesized_off: Synthesized,
) -> None:
    d = synthesized_off.deployment
    template = synthesized_off.templates["dataplane"]

    assert d.frontdoor is None
    assert "frontdoor" not in synthesized_off.templates
    template.resource_count_is("AWS::ECS::Service", 0)
    template.resource_count_is("AWS::ElasticLoadBalancingV2::LoadBalancer", 0)
    template.has_resource_properties("AWS::ECS::TaskDefinition", {"Family": "sglance-qa-job"})
    template.resource_count_is("AWS::ECS::TaskDefinition", 1)
