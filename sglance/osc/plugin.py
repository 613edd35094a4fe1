"""The ``openstack.cli.extension`` entry point: how python-openstackclient finds and builds this client.

The commands live in ``sglance.osc.commands`` (entry point group ``openstack.sglance.v1``). They reuse the CLI's
keystoneauth session and its image endpoint (the catalog's, or ``--os-image-endpoint-override``, or
``--os-endpoint`` with ``--os-auth-type none``), so they authenticate exactly as ``openstack image create`` does.
"""

from __future__ import annotations

import argparse
from typing import Any

from sglance.connection import ApiConnection

API_NAME = "sglance"
API_VERSION_OPTION = "os_sglance_api_version"
DEFAULT_API_VERSION = "1"
API_VERSIONS = {"1": "sglance.connection.ApiConnection"}


def make_client(instance: Any) -> ApiConnection:
    """An ``ApiConnection`` over the CLI's session to its image endpoint (``client_manager.sglance``)."""
    instance.setup_auth()
    endpoint = instance.get_endpoint_for_service_type(
        "image", region_name=instance.region_name, interface=instance.interface
    )
    interface = instance.interface if isinstance(instance.interface, str) else None
    return ApiConnection(instance.session, endpoint, interface=interface, region_name=instance.region_name or None)


def build_option_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The plugin's global option (its API version; there is one)."""
    parser.add_argument(
        "--os-sglance-api-version",
        metavar="<version>",
        default=DEFAULT_API_VERSION,
        help="Serverless Glance client API version (only 1)",
    )
    return parser
