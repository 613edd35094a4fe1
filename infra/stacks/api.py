"""The API stack: an HTTP API (API Gateway v2, HTTPS only) in front of the API Lambda (Mangum + FastAPI).

API Gateway invokes the function's ``live`` alias, which every deployment moves to the version it publishes; with
``api_snapstart`` (the default) those versions start from a SnapStart snapshot (docs/operators.md, "SnapStart").

Access logs go to their own log group as JSON; the default stage throttles every route; with a custom domain the
execute-api endpoint is switched off, so clients reach the service only through the domain's TLS 1.2 policy.
Keystone tokens are validated inside the function (docs/api.md says why not with an authorizer).
"""

from __future__ import annotations

import json

from aws_cdk import Acknowledgment, CfnOutput, Environment, RemovalPolicy, Stack, Validations
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.stacks import access
from infra.stacks.function import RETENTION, GlanceFunction, Publication, stack_code
from infra.stacks.props import ServiceProps

API_HANDLER = "functions.api.handler.handler"
# The alias API Gateway invokes: always the version the last deployment published.
API_ALIAS = "live"
# What one access log line holds ($context variables of HTTP APIs).
ACCESS_LOG_FORMAT = {
    "requestId": "$context.requestId",
    "ip": "$context.identity.sourceIp",
    "requestTime": "$context.requestTime",
    "httpMethod": "$context.httpMethod",
    "path": "$context.path",
    "routeKey": "$context.routeKey",
    "status": "$context.status",
    "protocol": "$context.protocol",
    "responseLength": "$context.responseLength",
    "integrationLatency": "$context.integrationLatency",
    "integrationError": "$context.integrationErrorMessage",
    "userAgent": "$context.identity.userAgent",
}


class ApiStack(Stack):
    """HTTP API, its access logs and stage throttling, and the API function with its grants."""

    api: GlanceFunction
    http_api: apigwv2.HttpApi
    access_logs: logs.LogGroup

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        props: ServiceProps,
        env: Environment | None = None,
        description: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id, env=env, description=description)
        config, code, environment = props.config, props.code, props.environment
        stateful, secrets, notifications = props.stateful, props.secrets, props.notifications
        # Grants name the table and bucket rather than import them; the order must still hold.
        self.add_stack_dependency(stateful)
        self.api = GlanceFunction(
            self,
            "Api",
            function_name=f"sglance-{config.stage}-api",
            handler=API_HANDLER,
            description="Serverless Glance: the Image API v2 (FastAPI behind Mangum)",
            package=stack_code(self, code, environment),
            sizing=config.api,
            publication=Publication(alias=API_ALIAS, snapstart=config.api_snapstart),
        )
        alias = self.api.alias
        assert alias is not None
        role = self.api.role
        access.grant_table(role, stateful.resources.table_name)
        access.grant_image_objects(role, stateful.resources.image_bucket, access.API_OBJECT_ACTIONS)
        access.grant_send(role, stateful.import_queue.queue)
        access.grant_send(role, stateful.store_sync_queue.queue)
        access.grant_put_events(role, notifications.bus)
        # The Keystone service password, and the stores' keys: downloads from S3-type stores are presigned here.
        access.grant_read_secrets(role, secrets.policy_arns.values())

        self.http_api = apigwv2.HttpApi(
            self,
            "HttpApi",
            api_name=f"sglance-{config.stage}",
            description="OpenStack Image API v2",
            default_integration=integrations.HttpLambdaIntegration("Lambda", alias),
            create_default_stage=False,
            # With the front door, CloudFront holds the domain and reaches the API at its execute-api endpoint.
            disable_execute_api_endpoint=config.domain_name is not None and not config.data_plane,
        )
        self.access_logs = logs.LogGroup(
            self,
            "AccessLogs",
            log_group_name=f"/aws/apigateway/sglance-{config.stage}",
            retention=RETENTION[config.log_retention_days],
            removal_policy=RemovalPolicy.RETAIN,
        )
        domain_mapping = None
        if config.domain_name and config.certificate_arn and not config.data_plane:
            domain = apigwv2.DomainName(
                self,
                "Domain",
                domain_name=config.domain_name,
                certificate=acm.Certificate.from_certificate_arn(self, "Certificate", config.certificate_arn),
                security_policy=apigwv2.SecurityPolicy.TLS_1_2,
            )
            domain_mapping = apigwv2.DomainMappingOptions(domain_name=domain)
            CfnOutput(self, "DomainTarget", value=domain.regional_domain_name, description="CNAME/alias target")
        stage = apigwv2.HttpStage(
            self,
            "Stage",
            http_api=self.http_api,
            stage_name="$default",
            auto_deploy=True,
            throttle=apigwv2.ThrottleSettings(
                rate_limit=config.throttle_rate_limit, burst_limit=config.throttle_burst_limit
            ),
            domain_mapping=domain_mapping,
        )
        cfn_stage = stage.node.default_child
        assert isinstance(cfn_stage, apigwv2.CfnStage)
        cfn_stage.access_log_settings = apigwv2.CfnStage.AccessLogSettingsProperty(
            destination_arn=self.access_logs.log_group_arn, format=json.dumps(ACCESS_LOG_FORMAT)
        )
        own_domain = config.domain_name and not config.data_plane
        endpoint = f"https://{config.domain_name}" if own_domain else self.http_api.api_endpoint
        CfnOutput(
            self,
            "Endpoint",
            value=endpoint,
            description=(
                "The HTTP API's endpoint (with the data plane on, clients use the front door's FrontDoorEndpoint)"
                if config.data_plane
                else "Image API endpoint (the Keystone catalog's image URL)"
            ),
        )
        CfnOutput(self, "HttpApiId", value=self.http_api.api_id)
        CfnOutput(self, "ApiFunctionAlias", value=alias.function_arn, description="What API Gateway invokes")
        Validations.of(self.http_api).acknowledge(
            Acknowledgment(
                id="AwsSolutions-APIG4",
                reason=(
                    "Every request is authenticated inside the API function: Keystone tokens are validated with "
                    "the service user and cached no longer than the token lives (docs/api.md explains why an "
                    "authorizer's fixed-time cache is not used); discovery routes are public as in Glance."
                ),
            )
        )
