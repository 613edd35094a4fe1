"""The registry and data plane stacks: the container image's repository, and ECS Fargate (arm64) running it.

``RegistryStack`` holds the ECR repository the image is pushed to (``python -m infra.image push``, between the
registry stack and the rest; docs/operators.md). ``DataPlaneStack`` always holds the network and the cluster with
the **job** task definition (a worker whose deadline is too short hands its work to ``RunTask`` of it: the same
image running ``python -m functions.task_runner <job>``). With ``data_plane`` on it also holds the streaming
**service** (``python -m functions.data_plane``) behind an Application Load Balancer, which the front door
(infra/stacks/frontdoor.py) sends the data routes to.

Network, without a NAT gateway (none to pay for while idle): two public subnets for the tasks (a public IP each, to
reach Keystone, SQS, Secrets Manager, ECR and CloudWatch Logs through the internet gateway; S3 and DynamoDB
through free gateway endpoints, so image bytes never leave the AWS network) and two isolated subnets for the
internal load balancer, which CloudFront reaches through a VPC origin: the balancer has no public address, and the
tasks accept connections only from its security group. Flow logs record rejected traffic.

Every task has its own task role holding only what its code calls (infra/stacks/access.py), and an execution role
that may pull the image and write the task's log group. Task definitions carry settings only: the Keystone
service password and store keys stay in Secrets Manager and are read at run time, as in the functions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from aws_cdk import (
    Acknowledgment,
    Aws,
    CfnOutput,
    Duration,
    Environment,
    Fn,
    RemovalPolicy,
    Stack,
    Token,
    Validations,
)
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.config import OperatorConfig, TaskSizing
from infra.image import BuiltImage
from infra.stacks import access
from infra.stacks.function import RETENTION
from infra.stacks.props import ServiceProps

DATA_PLANE_CONTAINER = "data-plane"
JOB_CONTAINER = "job"
# Where the server listens (the image's SGLANCE_DATA_PLANE_PORT; shared.config's data_plane_port default).
DATA_PLANE_PORT = 8080
HEALTHCHECK_PATH = "/healthcheck"
DATA_PLANE_COMMAND = ["python", "-m", "functions.data_plane"]
JOB_COMMAND = ["python", "-m", "functions.task_runner"]
# Fargate's longest stop timeout: SIGTERM, then this long before SIGKILL. The server gives transfers under way
# data_plane_shutdown_grace_seconds (100 s) of it to finish.
STOP_TIMEOUT_S = 120
# The load balancer waits this long for a deregistered task's requests before it closes them: past the server's
# grace, within the stop timeout.
DEREGISTRATION_DELAY_S = 110
# The network's range, named once (security group rules use it without a lookup).
VPC_CIDR = "10.40.0.0/16"
# A connection that moves no byte for this long is closed (ALB idle timeout; the server's keep-alive is longer).
LOAD_BALANCER_IDLE_TIMEOUT_S = 60


@dataclass(frozen=True)
class JobLauncher:
    """What a launching function is given: the settings naming the job task, and the task definition to grant."""

    family: str
    task_definition: ecs.FargateTaskDefinition
    environment: Mapping[str, str]


class RegistryStack(Stack):
    """The ECR repository of the data plane's image (tags are content hashes, so they never move)."""

    repository: ecr.Repository

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: OperatorConfig,
        env: Environment | None = None,
        description: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id, env=env, description=description)
        self.repository = ecr.Repository(
            self,
            "Repository",
            repository_name=f"sglance-{config.stage}-data-plane",
            image_tag_mutability=ecr.TagMutability.IMMUTABLE,
            image_scan_on_push=True,
            encryption=ecr.RepositoryEncryption.AES_256,
            lifecycle_rules=[ecr.LifecycleRule(max_image_count=10, description="keep the ten newest images")],
            removal_policy=RemovalPolicy.RETAIN,
        )
        CfnOutput(self, "ImageRepositoryUri", value=self.repository.repository_uri, description="push the image here")


class DataPlaneStack(Stack):
    """The network, the cluster, the job task definition, and (data plane on) the service behind its balancer."""

    vpc: ec2.Vpc
    cluster: ecs.Cluster
    jobs: JobLauncher
    job_security_group: ec2.SecurityGroup
    # Data plane on only.
    service: ecs.FargateService | None
    load_balancer: elbv2.ApplicationLoadBalancer | None
    logs_bucket: s3.Bucket

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        props: ServiceProps,
        repository: ecr.IRepository,
        image: BuiltImage,
        env: Environment | None = None,
        description: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id, env=env, description=description)
        config = props.config
        stage = config.stage
        self.add_stack_dependency(props.stateful)
        self._config = config
        self._container_image = ecs.ContainerImage.from_ecr_repository(repository, tag=image.tag)
        self._architecture = image.architecture

        self.vpc = ec2.Vpc(
            self,
            "Network",
            ip_addresses=ec2.IpAddresses.cidr(VPC_CIDR),
            max_azs=2,
            nat_gateways=0,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="tasks", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24),
                ec2.SubnetConfiguration(name="balancer", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=24),
            ],
            gateway_endpoints={
                "S3": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.S3),
                "DynamoDB": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.DYNAMODB),
            },
            restrict_default_security_group=False,
        )
        if config.emulator_endpoint_url is None:
            flow_logs = logs.LogGroup(
                self,
                "FlowLogs",
                log_group_name=f"/sglance/{stage}/vpc-flow-logs",
                retention=RETENTION[config.log_retention_days],
                removal_policy=RemovalPolicy.RETAIN,
            )
            self.vpc.add_flow_log(
                "RejectedTraffic",
                destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_logs),
                traffic_type=ec2.FlowLogTrafficType.REJECT,
            )
        else:
            # MiniStack's CloudFormation has no AWS::EC2::FlowLog (localstack/README.md); nothing flows there anyway.
            Validations.of(self.vpc).acknowledge(
                Acknowledgment(id="AwsSolutions-VPC7", reason="Emulator deployments only: no flow logs to create.")
            )
        self.cluster = ecs.Cluster(self, "Cluster", cluster_name=f"sglance-{stage}", vpc=self.vpc)
        Validations.of(self.cluster).acknowledge(
            Acknowledgment(
                id="AwsSolutions-ECS4",
                reason=(
                    "The service's CPU and memory come free in the AWS/ECS namespace and the balancer's requests, "
                    "errors and latency in AWS/ApplicationELB; Container Insights would bill per-task custom metrics "
                    "on top, for what the dashboard does not need."
                ),
            )
        )
        # The load balancer's access logs (and the front door's, frontdoor.py): private, TLS only, kept a year.
        self.logs_bucket = s3.Bucket(
            self,
            "EdgeLogs",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            # CloudFront's standard logs are written with an ACL, which BUCKET_OWNER_ENFORCED would refuse.
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(365))],
            removal_policy=RemovalPolicy.RETAIN,
        )
        Validations.of(self.logs_bucket).acknowledge(
            Acknowledgment(
                id="AwsSolutions-S1",
                reason="This bucket holds access logs (load balancer, CloudFront); logging its own access would loop.",
            )
        )

        self.job_security_group = ec2.SecurityGroup(
            self, "JobTasks", vpc=self.vpc, description="Job tasks: no inbound traffic; outbound to AWS and Keystone"
        )
        self.jobs = self._job_task(props)

        self.service = None
        self.load_balancer = None
        if config.data_plane:
            self.service, self.load_balancer = self._service(props)

        CfnOutput(self, "ClusterName", value=self.cluster.cluster_name)
        CfnOutput(self, "JobTaskDefinitionFamily", value=self.jobs.family)
        if self.load_balancer is not None:
            CfnOutput(self, "LoadBalancerDns", value=self.load_balancer.load_balancer_dns_name)

    # -- tasks ------------------------------------------------------------------------------------------------

    def _task_definition(self, construct_id: str, family: str, sizing: TaskSizing) -> ecs.FargateTaskDefinition:
        execution_role = iam.Role(
            self,
            f"{construct_id}ExecutionRole",
            assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
            description=f"{family}: pulls the image and writes the task's log group (ECS agent)",
        )
        task_role = iam.Role(
            self,
            f"{construct_id}TaskRole",
            assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
            description=f"{family}: what the task's code calls, nothing else",
        )
        task = ecs.FargateTaskDefinition(
            self,
            construct_id,
            family=family,
            cpu=sizing.cpu,
            memory_limit_mib=sizing.memory_mib,
            runtime_platform=ecs.RuntimePlatform(
                cpu_architecture=(
                    ecs.CpuArchitecture.ARM64 if self._architecture == "arm64" else ecs.CpuArchitecture.X86_64
                ),
                operating_system_family=ecs.OperatingSystemFamily.LINUX,
            ),
            execution_role=execution_role,
            task_role=task_role,
            volumes=[ecs.Volume(name="tmp")],
        )
        Validations.of(execution_role).acknowledge(
            Acknowledgment(
                id="AwsSolutions-IAM5[Resource::*]",
                reason=(
                    "ecr:GetAuthorizationToken, which the agent calls before it pulls the image, has no resource-level "
                    "permissions (ECR requires '*'); the pull itself is granted on the one repository."
                ),
            )
        )
        return task

    def _container(
        self,
        task: ecs.FargateTaskDefinition,
        name: str,
        command: list[str],
        environment: Mapping[str, str],
        log_group: logs.LogGroup,
        port: int | None,
    ) -> ecs.ContainerDefinition:
        container = task.add_container(
            name,
            container_name=name,
            image=self._container_image,
            command=command,
            environment=dict(environment),
            logging=ecs.LogDriver.aws_logs(stream_prefix=name, log_group=log_group),
            readonly_root_filesystem=True,
            stop_timeout=Duration.seconds(STOP_TIMEOUT_S),
            port_mappings=[ecs.PortMapping(container_port=port)] if port else None,
        )
        # The only writable path: the task's own scratch space (temporary files; nothing is kept).
        container.add_mount_points(ecs.MountPoint(container_path="/tmp", source_volume="tmp", read_only=False))
        Validations.of(task).acknowledge(
            Acknowledgment(
                id="AwsSolutions-ECS2",
                reason=(
                    "The environment holds settings only (resource names, the Keystone URL, quotas), the same as the "
                    "functions'; the Keystone service password and store keys are read from Secrets Manager at run "
                    "time by ARN, never put in the task definition."
                ),
            )
        )
        return container

    def _log_group(self, construct_id: str, name: str) -> logs.LogGroup:
        return logs.LogGroup(
            self,
            construct_id,
            log_group_name=f"/ecs/sglance-{self._config.stage}/{name}",
            retention=RETENTION[self._config.log_retention_days],
            removal_policy=RemovalPolicy.RETAIN,
        )

    def _job_task(self, props: ServiceProps) -> JobLauncher:
        config, stateful = props.config, props.stateful
        family = f"sglance-{config.stage}-job"
        task = self._task_definition("JobTask", family, config.job_task)
        self._container(
            task, JOB_CONTAINER, JOB_COMMAND, props.environment, self._log_group("JobLogs", "jobs"), port=None
        )
        role = task.task_role
        table, bucket = stateful.resources.table_name, stateful.resources.image_bucket
        access.grant_table(role, table)
        access.grant_image_objects(role, bucket, access.JOB_OBJECT_ACTIONS)
        access.grant_send(role, stateful.store_sync_queue.queue)
        access.grant_put_events(role, props.notifications.bus)
        # store_sync copies read the stores' keys.
        access.grant_read_secrets(role, [props.secrets.policy_arns[store] for store in props.secrets.stores])
        subnets = self.vpc.select_subnets(subnet_type=ec2.SubnetType.PUBLIC).subnet_ids
        environment = {
            "SGLANCE_JOB_LAUNCHER": "ecs",
            "SGLANCE_JOB_CLUSTER": self.cluster.cluster_name,
            "SGLANCE_JOB_TASK_DEFINITION": family,
            "SGLANCE_JOB_CONTAINER_NAME": JOB_CONTAINER,
            "SGLANCE_JOB_SUBNETS": Fn.join(",", subnets),
            "SGLANCE_JOB_SECURITY_GROUPS": self.job_security_group.security_group_id,
            # Public subnets without a NAT gateway: the task needs its own address to reach the AWS APIs.
            "SGLANCE_JOB_ASSIGN_PUBLIC_IP": "true",
        }
        return JobLauncher(family=family, task_definition=task, environment=environment)

    def _service(self, props: ServiceProps) -> tuple[ecs.FargateService, elbv2.ApplicationLoadBalancer]:
        config, stateful = props.config, props.stateful
        family = f"sglance-{config.stage}-data-plane"
        task = self._task_definition("DataPlaneTask", family, config.data_plane_task)
        environment = {**props.environment, "SGLANCE_DATA_PLANE_PORT": str(DATA_PLANE_PORT)}
        self._container(
            task,
            DATA_PLANE_CONTAINER,
            DATA_PLANE_COMMAND,
            environment,
            self._log_group("DataPlaneLogs", "data-plane"),
            port=DATA_PLANE_PORT,
        )
        role = task.task_role
        access.grant_table(role, stateful.resources.table_name)
        access.grant_image_objects(role, stateful.resources.image_bucket, access.DATA_PLANE_OBJECT_ACTIONS)
        access.grant_send(role, stateful.import_queue.queue)
        access.grant_send(role, stateful.store_sync_queue.queue)
        access.grant_put_events(role, props.notifications.bus)
        # Keystone validation, as in the API function; downloads from S3-type stores are presigned or streamed.
        access.grant_read_secrets(role, props.secrets.policy_arns.values())

        balancer_sg = ec2.SecurityGroup(
            self,
            "LoadBalancerSg",
            vpc=self.vpc,
            description="Data plane load balancer: HTTP from inside the network (the CloudFront VPC origin) only",
            allow_all_outbound=False,
        )
        balancer_sg.add_ingress_rule(
            ec2.Peer.ipv4(VPC_CIDR), ec2.Port.tcp(80), "CloudFront VPC origin endpoints in the VPC"
        )
        tasks_sg = ec2.SecurityGroup(
            self,
            "DataPlaneTasks",
            vpc=self.vpc,
            description="Data plane tasks: the load balancer only; outbound to AWS and Keystone",
        )
        if config.emulator_endpoint_url is None:
            tasks_sg.add_ingress_rule(balancer_sg, ec2.Port.tcp(DATA_PLANE_PORT), "from the load balancer")
            balancer_sg.add_egress_rule(tasks_sg, ec2.Port.tcp(DATA_PLANE_PORT), "to the data plane tasks")
        else:
            # MiniStack's CloudFormation has no AWS::EC2::SecurityGroupIngress/Egress, which rules naming another
            # group become; inline rules on the VPC's range instead (emulator deployments only).
            tasks_sg.add_ingress_rule(ec2.Peer.ipv4(VPC_CIDR), ec2.Port.tcp(DATA_PLANE_PORT), "from inside the network")
            balancer_sg.add_egress_rule(
                ec2.Peer.ipv4(VPC_CIDR), ec2.Port.tcp(DATA_PLANE_PORT), "to the data plane tasks"
            )
            Validations.of(tasks_sg).acknowledge(
                Acknowledgment(id="AwsSolutions-EC23", reason="Emulator deployments only: the VPC's own range.")
            )

        balancer = elbv2.ApplicationLoadBalancer(
            self,
            "LoadBalancer",
            load_balancer_name=f"sglance-{config.stage}-data-plane",
            vpc=self.vpc,
            internet_facing=False,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
            security_group=balancer_sg,
            idle_timeout=Duration.seconds(LOAD_BALANCER_IDLE_TIMEOUT_S),
            drop_invalid_header_fields=True,
        )
        self._log_access(balancer)
        service = ecs.FargateService(
            self,
            "DataPlane",
            service_name=f"sglance-{config.stage}-data-plane",
            cluster=self.cluster,
            task_definition=task,
            desired_count=config.data_plane_desired_count,
            assign_public_ip=True,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC),
            security_groups=[tasks_sg],
            circuit_breaker=ecs.DeploymentCircuitBreaker(rollback=True),
            min_healthy_percent=100,
            max_healthy_percent=200,
        )
        listener = balancer.add_listener(
            "Http",
            port=80,
            protocol=elbv2.ApplicationProtocol.HTTP,
            open=False,
            default_action=elbv2.ListenerAction.fixed_response(
                404, content_type="application/json", message_body='{"message": "not a data route"}'
            ),
        )
        target_group = elbv2.ApplicationTargetGroup(
            self,
            "DataPlaneTargets",
            vpc=self.vpc,
            port=DATA_PLANE_PORT,
            protocol=elbv2.ApplicationProtocol.HTTP,
            target_type=elbv2.TargetType.IP,
            # On AWS the service registers its tasks and CDK opens the balancer -> tasks rule between the groups.
            targets=[service] if config.emulator_endpoint_url is None else None,
            deregistration_delay=Duration.seconds(DEREGISTRATION_DELAY_S),
            health_check=elbv2.HealthCheck(
                path=HEALTHCHECK_PATH, healthy_http_codes="200", interval=Duration.seconds(15)
            ),
        )
        listener.add_action(
            "DataRoutes",
            priority=10,
            conditions=[elbv2.ListenerCondition.path_patterns(list(DATA_PATH_PATTERNS))],
            action=elbv2.ListenerAction.forward([target_group]),
        )
        if config.emulator_endpoint_url is not None:
            # The same registration without the group-to-group rules MiniStack cannot create (see above).
            cfn_service = service.node.default_child
            assert isinstance(cfn_service, ecs.CfnService)
            cfn_service.load_balancers = [
                ecs.CfnService.LoadBalancerProperty(
                    container_name=DATA_PLANE_CONTAINER,
                    container_port=DATA_PLANE_PORT,
                    target_group_arn=target_group.target_group_arn,
                )
            ]
            service.node.add_dependency(listener)
        Validations.of(balancer).acknowledge(
            Acknowledgment(
                id="AwsSolutions-ELB2",
                reason="Access logs go to the EdgeLogs bucket (log_access_logs, prefix alb/).",
            )
        )
        Validations.of(balancer_sg).acknowledge(
            Acknowledgment(
                id="AwsSolutions-EC23",
                reason="Ingress is the VPC's own CIDR on port 80 (an internal balancer in isolated subnets), not 0/0.",
            )
        )
        return service, balancer

    def _log_access(self, balancer: elbv2.ApplicationLoadBalancer) -> None:
        """Access logs to the edge log bucket under ``alb/``."""
        if not Token.is_unresolved(self.region):
            # A concrete Region (cdk deploy with a profile): CDK grants that Region's log delivery principal, the
            # Elastic Load Balancing account of Regions older than August 2022 included.
            balancer.log_access_logs(self.logs_bucket, prefix=ALB_LOG_PREFIX)
            return
        # Environment-agnostic templates: the log delivery service principal, which Regions opened since August 2022
        # require (docs/operators.md: deploy with a concrete Region for the older ones).
        self.logs_bucket.add_to_resource_policy(
            iam.PolicyStatement(
                actions=["s3:PutObject"],
                principals=[iam.ServicePrincipal("logdelivery.elasticloadbalancing.amazonaws.com")],
                resources=[self.logs_bucket.arn_for_objects(f"{ALB_LOG_PREFIX}/AWSLogs/{Aws.ACCOUNT_ID}/*")],
            )
        )
        balancer.set_attribute("access_logs.s3.enabled", "true")
        balancer.set_attribute("access_logs.s3.bucket", self.logs_bucket.bucket_name)
        balancer.set_attribute("access_logs.s3.prefix", ALB_LOG_PREFIX)
        balancer.node.add_dependency(self.logs_bucket)


ALB_LOG_PREFIX = "alb"
# The paths the front door and the balancer send to the data plane (CloudFront and ALB path-pattern syntax: '*'
# matches any run of characters, '/' included): PUT/GET /file and PUT /stage, on /v2 and the /v2.N prefixes.
DATA_PATH_PATTERNS = ("/v2*/images/*/file", "/v2*/images/*/stage")
