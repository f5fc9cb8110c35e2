"""Reads template.yaml the way CloudFormation would, enough for the local stack.

The local stack builds its resources, environment variables, routes and queue triggers
from the template itself, so the code and the template cannot drift apart.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"

_TAGS = (
    "Ref",
    "Sub",
    "GetAtt",
    "If",
    "Equals",
    "Not",
    "And",
    "Or",
    "FindInMap",
    "Join",
    "Select",
    "Split",
    "Base64",
    "GetAZs",
    "ImportValue",
    "Condition",
)


class _Loader(yaml.SafeLoader):
    """SafeLoader that reads CloudFormation's short tags (!Ref, !Sub, ...) as {Fn::X: ...}."""


def _construct(tag: str) -> Callable[[yaml.Loader, yaml.Node], dict[str, Any]]:
    key = "Ref" if tag == "Ref" else "Condition" if tag == "Condition" else f"Fn::{tag}"

    def build(loader: yaml.Loader, node: yaml.Node) -> dict[str, Any]:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if tag == "GetAtt":
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return {key: value}

    return build


for _tag in _TAGS:
    _Loader.add_constructor(f"!{_tag}", _construct(_tag))


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    """The template as plain data, intrinsic functions kept as {Fn::X: ...}."""
    return yaml.load(path.read_text(), Loader=_Loader)  # noqa: S506 - a SafeLoader subclass


class Resolver:
    """Evaluates intrinsic functions against parameter values and local physical ids."""

    def __init__(
        self,
        template: dict[str, Any],
        parameters: dict[str, str],
        physical: dict[str, str],
        attributes: Callable[[str, str], str],
        pseudo: dict[str, str],
    ) -> None:
        self.template = template
        self.parameters = parameters
        self.physical = physical
        self.attributes = attributes
        self.pseudo = pseudo

    def parameter_values(self) -> dict[str, str]:
        """Each template parameter's value: given, else its default."""
        values = {}
        for name, spec in self.template.get("Parameters", {}).items():
            values[name] = str(self.parameters.get(name, spec.get("Default", "")))
        return values

    def condition(self, name: str) -> bool:
        return bool(self.resolve(self.template.get("Conditions", {})[name]))

    def ref(self, name: str) -> Any:
        if name in self.pseudo:
            return self.pseudo[name]
        values = self.parameter_values()
        if name in values:
            return values[name]
        if name in self.physical:
            return self.physical[name]
        raise KeyError(f"!Ref {name}: not a parameter or a resource the local stack made")

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        if not isinstance(value, dict):
            return value
        if len(value) != 1:
            return {key: self.resolve(item) for key, item in value.items()}
        ((key, argument),) = value.items()
        if key == "Ref":
            return self.ref(argument)
        if key == "Fn::GetAtt":
            resource, attribute = argument
            return self.attributes(resource, attribute)
        if key == "Fn::Sub":
            return self._sub(argument)
        if key == "Fn::If":
            name, when_true, when_false = argument
            return self.resolve(when_true if self.condition(name) else when_false)
        if key == "Fn::Equals":
            left, right = self.resolve(argument)
            return str(left) == str(right)
        if key == "Fn::Not":
            return not self.resolve(argument[0])
        if key == "Fn::And":
            return all(self.resolve(item) for item in argument)
        if key == "Fn::Or":
            return any(self.resolve(item) for item in argument)
        if key == "Condition":
            return self.condition(argument)
        if key == "Fn::FindInMap":
            mapping, top, second = (self.resolve(item) for item in argument)
            return self.template["Mappings"][mapping][top][second]
        if key == "Fn::Join":
            separator, items = argument
            return separator.join(str(item) for item in self.resolve(items))
        if key == "Fn::Select":
            index, items = argument
            return self.resolve(items)[int(self.resolve(index))]
        if key == "Fn::Split":
            separator, text = argument
            return str(self.resolve(text)).split(separator)
        return {key: self.resolve(argument)}

    def _sub(self, argument: Any) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else (argument[0], argument[1])
        resolved = {name: self.resolve(item) for name, item in variables.items()}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in resolved:
                return str(resolved[name])
            if "." in name:
                resource, attribute = name.split(".", 1)
                return str(self.attributes(resource, attribute))
            return str(self.ref(name))

        return re.sub(r"\$\{([^}!]+)\}", replace, text)


# A state machine is SAM's or plain Step Functions' (which can be encrypted with a key).
STATE_MACHINE_TYPES = ("AWS::Serverless::StateMachine", "AWS::StepFunctions::StateMachine")


def resources_of(template: dict[str, Any], *kinds: str) -> dict[str, dict[str, Any]]:
    """The template's resources of the given types, by logical id."""
    return {name: spec for name, spec in template.get("Resources", {}).items() if spec.get("Type") in kinds}
