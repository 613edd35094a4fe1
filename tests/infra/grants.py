"""Reading IAM grants out of synthesized templates as (action, resource) pairs with readable resources."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_cdk.assertions import Template


def exports(templates: Mapping[str, Template]) -> dict[str, Any]:
    """Export name -> exported value, across every stack."""
    found: dict[str, Any] = {}
    for template in templates.values():
        for output in template.to_json().get("Outputs", {}).values():
            if "Export" in output:
                found[output["Export"]["Name"]] = output["Value"]
    return found


def render(value: Any, exported: Mapping[str, Any]) -> str:
    """A resource as text: ``${AWS::Region}`` for pseudo parameters, ``<LogicalId>.Arn`` for attributes."""
    if isinstance(value, str):
        return value
    if "Ref" in value:
        return "${" + value["Ref"] + "}" if value["Ref"].startswith("AWS::") else f"<{value['Ref']}>"
    if "Fn::GetAtt" in value:
        logical_id, attribute = value["Fn::GetAtt"]
        return f"<{logical_id}>.{attribute}"
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(render(part, exported) for part in parts)
    if "Fn::ImportValue" in value:
        return render(exported[value["Fn::ImportValue"]], exported)
    raise AssertionError(f"unexpected resource expression {value}")


def function_grants(template: Template, function_name: str, exported: Mapping[str, Any]) -> set[tuple[str, str]]:
    """Every (action, resource) the role of the function named ``function_name`` is allowed."""
    resources = template.to_json()["Resources"]
    (function,) = [
        body
        for body in resources.values()
        if body["Type"] == "AWS::Lambda::Function" and body["Properties"].get("FunctionName") == function_name
    ]
    role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
    return role_grants(template, role_id, exported)


def role_grants(template: Template, role_id: str, exported: Mapping[str, Any]) -> set[tuple[str, str]]:
    """Every (action, resource) the role with logical id ``role_id`` is allowed (it has no managed policy)."""
    resources = template.to_json()["Resources"]
    assert not resources[role_id]["Properties"].get("ManagedPolicyArns"), "roles carry no managed policy"
    grants: set[tuple[str, str]] = set()
    for body in resources.values():
        if body["Type"] != "AWS::IAM::Policy" or {"Ref": role_id} not in body["Properties"]["Roles"]:
            continue
        for statement in body["Properties"]["PolicyDocument"]["Statement"]:
            assert statement["Effect"] == "Allow"
            assert "Condition" not in statement
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            targets = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            grants |= {(action, render(target, exported)) for action in actions for target in targets}
    return grants
