"""The secrets stack: Keystone service credentials and the replication stores' keys, in Secrets Manager.

The values are never in the template: each secret is created with a random placeholder, and the operator writes
the real credentials once after the first deploy (docs/operators.md). A store whose configuration already names a
``secret_arn`` keeps that secret; the functions are granted read on it all the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from aws_cdk import Acknowledgment, Environment, RemovalPolicy, Stack, Validations
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.config import OperatorConfig


class SecretsStack(Stack):
    """Secrets Manager secrets the functions read at run time."""

    keystone_service: secretsmanager.ISecret
    stores: Mapping[str, secretsmanager.ISecret]

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
        self.keystone_service = secretsmanager.Secret(
            self,
            "KeystoneServicePassword",
            secret_name=f"sglance/{config.stage}/keystone-service",
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
                continue
            stores[store_id] = secretsmanager.Secret(
                self,
                f"Store-{store_id}",
                secret_name=f"sglance/{config.stage}/stores/{store_id}",
                description=f"Credentials of the {store.get('type', '?')} store {store_id!r} (JSON)",
                generate_secret_string=secretsmanager.SecretStringGenerator(
                    secret_string_template="{}", generate_string_key="placeholder", exclude_punctuation=True
                ),
                removal_policy=RemovalPolicy.RETAIN,
            )
        self.stores = MappingProxyType(stores)
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
