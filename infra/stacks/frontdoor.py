"""The front door (data plane on): one CloudFront distribution, the one endpoint clients and the catalog know.

Two origins, routed by path only (CloudFront cannot route on the method):

- ``/v2*/images/*/file`` and ``/v2*/images/*/stage`` (``DATA_PATH_PATTERNS``: PUT and GET /file, PUT /stage) go
  to the data plane's internal load balancer through a CloudFront VPC origin (the balancer has no public address;
  CloudFront reaches it over the AWS network);
- everything else goes to the HTTP API (API Gateway -> the API Lambda) over HTTPS.

Nothing is cached (``CachingDisabled``): every response depends on the caller's token. Every viewer header, the
query string and cookies reach the origins (API Gateway without the viewer's ``Host``, which it routes on). Viewers
get HTTPS only (TLS 1.2 or newer with a custom domain; CloudFront's default certificate allows older clients),
HTTP/2 and HTTP/3; standard access logs go to the data plane stack's log bucket. docs/operators.md has the
limits this puts on requests (body, timeouts, header size) as AWS documents them.

On an emulator (``emulator_endpoint_url``) the data routes' origin is the balancer's DNS name over HTTP instead of a
VPC origin, which MiniStack's CloudFormation does not create.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, Aws, CfnOutput, Duration, Environment, Stack, Validations
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.config import OperatorConfig
from shared.data_routes import DATA_PATH_PATTERNS

# How long CloudFront waits for the first byte of a response (and between bytes); a default AWS quota allows 1-120.
ORIGIN_READ_TIMEOUT_S = 60
# How long CloudFront keeps an idle connection to an origin open for the next request.
ORIGIN_KEEPALIVE_TIMEOUT_S = 60


class FrontDoorStack(Stack):
    """The CloudFront distribution in front of the HTTP API and the data plane's load balancer."""

    distribution: cloudfront.Distribution
    endpoint: str

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: OperatorConfig,
        http_api_id: str,
        load_balancer: elbv2.IApplicationLoadBalancer,
        logs_bucket: s3.IBucket,
        env: Environment | None = None,
        description: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id, env=env, description=description)
        api_origin = origins.HttpOrigin(
            f"{http_api_id}.execute-api.{Aws.REGION}.{Aws.URL_SUFFIX}",
            protocol_policy=cloudfront.OriginProtocolPolicy.HTTPS_ONLY,
            origin_ssl_protocols=[cloudfront.OriginSslPolicy.TLS_V1_2],
            read_timeout=Duration.seconds(ORIGIN_READ_TIMEOUT_S),
            keepalive_timeout=Duration.seconds(ORIGIN_KEEPALIVE_TIMEOUT_S),
        )
        data_origin: cloudfront.IOrigin
        if config.emulator_endpoint_url:
            data_origin = origins.HttpOrigin(
                load_balancer.load_balancer_dns_name,
                protocol_policy=cloudfront.OriginProtocolPolicy.HTTP_ONLY,
                origin_ssl_protocols=[cloudfront.OriginSslPolicy.TLS_V1_2],
                read_timeout=Duration.seconds(ORIGIN_READ_TIMEOUT_S),
            )
        else:
            data_origin = origins.VpcOrigin.with_application_load_balancer(
                load_balancer,
                protocol_policy=cloudfront.OriginProtocolPolicy.HTTP_ONLY,
                read_timeout=Duration.seconds(ORIGIN_READ_TIMEOUT_S),
                keepalive_timeout=Duration.seconds(ORIGIN_KEEPALIVE_TIMEOUT_S),
                vpc_origin_name=f"sglance-{config.stage}-data-plane",
            )
        # Image bytes are passed through as they are (no compression); the data plane sees the viewer's Host.
        data_behavior = _uncached(data_origin, cloudfront.OriginRequestPolicy.ALL_VIEWER, compress=False)
        certificate = None
        if config.domain_name and config.certificate_arn:
            certificate = acm.Certificate.from_certificate_arn(self, "Certificate", config.certificate_arn)
        self.distribution = cloudfront.Distribution(
            self,
            "Distribution",
            comment=f"Serverless Glance ({config.stage}): the image endpoint",
            # API Gateway routes by its own host name, so the viewer's Host is not forwarded.
            default_behavior=_uncached(
                api_origin, cloudfront.OriginRequestPolicy.ALL_VIEWER_EXCEPT_HOST_HEADER, compress=True
            ),
            additional_behaviors=dict.fromkeys(DATA_PATH_PATTERNS, data_behavior),
            domain_names=[config.domain_name] if config.domain_name else None,
            certificate=certificate,
            minimum_protocol_version=cloudfront.SecurityPolicyProtocol.TLS_V1_2_2021,
            http_version=cloudfront.HttpVersion.HTTP2_AND_3,
            price_class=cloudfront.PriceClass.PRICE_CLASS_100,
            enable_logging=True,
            log_bucket=logs_bucket,
            log_file_prefix="cloudfront/",
        )
        self.endpoint = f"https://{config.domain_name or self.distribution.distribution_domain_name}"
        CfnOutput(
            self, "FrontDoorEndpoint", value=self.endpoint, description="The image endpoint: register it in Keystone"
        )
        CfnOutput(self, "DistributionDomain", value=self.distribution.distribution_domain_name)
        acknowledgments = [
            ("AwsSolutions-CFR1", "Images are served wherever Keystone lets a caller in; no country is excluded."),
            (
                "AwsSolutions-CFR2",
                "Every request is authenticated by Keystone in the API or the data plane; an operator who wants a WAF "
                "web ACL attaches one to the distribution (docs/operators.md lists the cost).",
            ),
        ]
        if config.emulator_endpoint_url:
            acknowledgments.append(
                (
                    "AwsSolutions-CFR5",
                    "Emulator deployments only: the emulated balancer is reached over plain HTTP on loopback (on "
                    "AWS the data origin is a VPC origin inside the VPC, and the API origin is TLS 1.2 only).",
                )
            )
        if certificate is None:
            acknowledgments.append(
                (
                    "AwsSolutions-CFR4",
                    "Without a custom domain the distribution uses CloudFront's default certificate, whose security "
                    "policy CloudFront fixes (TLSv1); with domain_name and certificate_arn it is TLSv1.2_2021.",
                )
            )
        for rule, reason in acknowledgments:
            Validations.of(self.distribution).acknowledge(Acknowledgment(id=rule, reason=reason))


def _uncached(
    origin: cloudfront.IOrigin, request_policy: cloudfront.IOriginRequestPolicy, *, compress: bool
) -> cloudfront.BehaviorOptions:
    """A behaviour that caches nothing and forwards every method over HTTPS only: the image API is never cached."""
    return cloudfront.BehaviorOptions(
        origin=origin,
        allowed_methods=cloudfront.AllowedMethods.ALLOW_ALL,
        cache_policy=cloudfront.CachePolicy.CACHING_DISABLED,
        origin_request_policy=request_policy,
        viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.HTTPS_ONLY,
        compress=compress,
    )
