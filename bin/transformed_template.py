"""Write the CloudFormation that SAM's translator makes of template.yaml, for the scanners.

    .venv-sam/bin/python bin/transformed_template.py [OUT]   (default .aws-sam/transformed.json)

`sam build` copies template.yaml without transforming it; checkov and cfn-lint must see what
CloudFormation deploys: the roles, policies, permissions, event source mappings and stages that
SAM generates. This runs SAM's own translator (the one SAM CLI pins) offline:
  - managed policy names resolve through the map of AWS's managed policies that the
    translator bundles, instead of IAM's ListPolicies (which `sam validate` calls);
  - local CodeUri/ContentUri become placeholder S3 locations, as `sam validate` does, and the
    state machine's definition file is inlined, so its DefinitionSubstitutions are applied;
  - Metadata is passed through: SAM keeps a function's Metadata on its AWS::Lambda::Function
    anyway, and with passthrough it also copies it onto every resource generated from it (its
    role, event source mappings, permissions), so a suppression for a generated resource is
    written on the SAM resource it comes from, in template.yaml.
"""

import json
import logging
import os
import sys
from pathlib import Path

import yaml
from samtranslator.internal.managed_policies import get_bundled_managed_policy_map
from samtranslator.translator.transform import transform

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"
DEFAULT_OUT = ROOT / ".aws-sam" / "transformed.json"
LOCAL_CODE = {
    "AWS::Serverless::Function": "CodeUri",
    "AWS::Serverless::LayerVersion": "ContentUri",
}


class _Tag(yaml.SafeLoader):
    """Reads CloudFormation's short intrinsics (!Ref, !Sub, ...) as their long forms."""


def _intrinsic(loader, suffix, node):
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_Tag.add_multi_constructor("!", _intrinsic)


class StaticManagedPolicies:
    """SAM's managed policy loader, answered offline from the translator's bundled map."""

    def load(self):
        return get_bundled_managed_policy_map("aws") or {}


def sam_template():
    template = yaml.load(TEMPLATE.read_text(), Loader=_Tag)  # noqa: S506 - SafeLoader subclass
    for resource in template["Resources"].values():
        props = resource.get("Properties", {})
        key = LOCAL_CODE.get(resource["Type"])
        if key and isinstance(props.get(key), str) and not props[key].startswith("s3://"):
            props[key] = f"s3://local-build/{props[key].strip('/')}"
        if resource["Type"] == "AWS::Serverless::StateMachine" and "DefinitionUri" in props:
            props["Definition"] = json.loads((ROOT / props.pop("DefinitionUri")).read_text())
    return template


def main(argv):
    out = Path(argv[1]).resolve() if len(argv) > 1 else DEFAULT_OUT
    # The translator fills AWS::Region and the partition from the session: keep it offline.
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    # Without a feature toggle config it warns once per feature: nothing to act on.
    logging.getLogger("samtranslator.feature_toggle").setLevel(logging.ERROR)
    cfn = transform(sam_template(), {}, StaticManagedPolicies(), passthrough_metadata=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(cfn, indent=1, sort_keys=False) + "\n")
    print(f"{out.relative_to(ROOT)}: {len(cfn['Resources'])} resources")


if __name__ == "__main__":
    main(sys.argv)
