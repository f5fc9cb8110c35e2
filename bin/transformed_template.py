"""Write the CloudFormation that SAM's translator makes of template.yaml, for the scanners.

    .venv-sam/bin/python bin/transformed_template.py [OUT [TEMPLATE]]
        OUT: default .aws-sam/transformed.json; `-` prints the JSON instead.
        TEMPLATE: default template.yaml.

`sam build` copies template.yaml without transforming it; checkov and cfn-lint (`make scan`)
and the template tests (tests/template/sam_transform.py runs this file) must see what
CloudFormation deploys: the roles, policies, permissions, event source mappings and stages that
SAM generates. This runs SAM's own translator (the one SAM CLI pins, in `.venv-sam`) offline:
  - managed policy names resolve through the map of AWS's managed policies that the
    translator bundles, instead of IAM's ListPolicies (which `sam validate` calls);
  - local CodeUri/ContentUri/DefinitionUri (and a plain state machine's DefinitionS3Location)
    become S3 locations, as `sam validate` and `sam package` make them;
  - Metadata is passed through: SAM keeps a function's Metadata on its AWS::Lambda::Function
    anyway, and with passthrough it also copies it onto every resource generated from it (its
    role, event source mappings, permissions; an API's stage and deployment), so a suppression
    for a generated resource is written on the SAM resource it comes from, in template.yaml.
"""

import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from samtranslator.internal.managed_policies import get_bundled_managed_policy_map
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"
DEFAULT_OUT = ROOT / ".aws-sam" / "transformed.json"
LOCAL_URIS = ("CodeUri", "ContentUri", "DefinitionUri")


class BundledManagedPolicies:
    """SAM's managed policy loader, answered offline from the translator's bundled map."""

    def load(self) -> dict[str, str]:
        return get_bundled_managed_policy_map("aws") or {}


def transform_template(path: Path = TEMPLATE, passthrough_metadata: bool = True) -> dict[str, Any]:
    """The template at `path` as CloudFormation receives it (parameters at their defaults)."""
    # The translator fills AWS::Region and the partition from the session: keep it offline.
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    # Without a feature toggle config it warns once per feature: nothing to act on.
    logging.getLogger("samtranslator.feature_toggle").setLevel(logging.ERROR)
    template = yaml_parse(path.read_text())
    for resource in template["Resources"].values():
        properties = resource.get("Properties", {})
        for uri in LOCAL_URIS:
            if isinstance(properties.get(uri), str) and not properties[uri].startswith("s3://"):
                properties[uri] = f"s3://bucket/{properties[uri]}"
        location = properties.get("DefinitionS3Location")
        if resource.get("Type") == "AWS::StepFunctions::StateMachine" and isinstance(location, str):
            properties["DefinitionS3Location"] = {"Bucket": "bucket", "Key": location}
    return transform(template, {}, BundledManagedPolicies(), passthrough_metadata=passthrough_metadata)


def main(argv: list[str]) -> None:
    template = Path(argv[2]).resolve() if len(argv) > 2 else TEMPLATE
    cfn = transform_template(template)
    if len(argv) > 1 and argv[1] == "-":
        json.dump(cfn, sys.stdout, indent=1, default=str)
        return
    out = Path(argv[1]).resolve() if len(argv) > 1 else DEFAULT_OUT
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(cfn, indent=1, default=str) + "\n")
    print(f"{out.relative_to(ROOT)}: {len(cfn['Resources'])} resources")


if __name__ == "__main__":
    main(sys.argv)
