"""The secrets stack: Keystone service credentials and the replication stores' keys, in Secrets Manager.

The values are never in the template: each secret is created with a random placeholder, and the operator writes
the real credentials once after the first deploy (docs/operators.md). A store whose configuration already names a
``secret_arn`` keeps that secret; the functions are granted read on it all the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from aws_cdk import Acknowledgment, Aws, Environment, RemovalPolicy, Stack, Validations
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.config import OperatorConfig


class SecretsStack(Stack):
    """Secrets Manager secrets the functions read at run time."""

    keystone_service: secretsmanager.ISecret
    stores: Mapping[str, secretsmanager.ISecret]
    # What IAM policies name for each secret: "keystone" or the store id -> ARN (pattern).
    policy_arns: Mapping[str, str]

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
        policy_arns: dict[str, str] = {}
        keystone_name = f"sglance/{config.stage}/keystone-service"
        policy_arns["keystone"] = secret_arn_pattern(keystone_name)
        self.keystone_service = secretsmanager.Secret(
            self,
            "KeystoneServicePassword",
            secret_name=keystone_name,
            description=(
                f"Password of the Keystone service user {config.keystone_service_username!r} that validates tokens "
                '(JSON {"password": "..."}); set it after the first deploy'
            ),
            generate_secret_string=secretsmanager.SecretStringGenerator(
                secret_string_template="{}", generate_string_key="password", exclude_punctuation=True
            ),
            removal_policy=RemovalPolicy.RETAIN,
        )
        stores: dict[str, secretsmanager.ISecret] = {}
        for store_id, store in config.stores.items():
            arn = store.get("secret_arn")
            if arn:
                stores[store_id] = secretsmanager.Secret.from_secret_complete_arn(self, f"Store-{store_id}", arn)
                policy_arns[store_id] = arn
                continue
            name = f"sglance/{config.stage}/stores/{store_id}"
            policy_arns[store_id] = secret_arn_pattern(name)
            stores[store_id] = secretsmanager.Secret(
                self,
                f"Store-{store_id}",
                secret_name=name,
                description=f"Credentials of the {store.get('type', '?')} store {store_id!r} (JSON)",
                generate_secret_string=secretsmanager.SecretStringGenerator(
                    secret_string_template="{}", generate_string_key="placeholder", exclude_punctuation=True
                ),
                removal_policy=RemovalPolicy.RETAIN,
            )
        self.stores = MappingProxyType(stores)
        self.policy_arns = MappingProxyType(policy_arns)
        Validations.of(self).acknowledge(
            Acknowledgment(
                id="AwsSolutions-SMG4",
                reason=(
                    "These are credentials issued by other systems (the Keystone service user, Swift/Ceph keys): "
                    "Secrets Manager cannot rotate them without an admin account on those systems, so their owners "
                    "rotate them and write the new value (docs/operators.md)."
                ),
            )
        )


def secret_arn_pattern(name: str) -> str:
    """The ARN of the secret named ``name`` in this account and region, whatever the 6 characters Secrets Manager
    appends (the pattern AWS documents for policies on secrets created by name)."""
    return f"arn:{Aws.PARTITION}:secretsmanager:{Aws.REGION}:{Aws.ACCOUNT_ID}:secret:{name}-??????"
