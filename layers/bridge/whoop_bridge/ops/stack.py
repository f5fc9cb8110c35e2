"""Where the operator command finds a stack: its outputs, its resources (logical id, type,
physical id) and the AWS clients to reach them.

- A deployed stack: CloudFormation's DescribeStacks (outputs) and ListStackResources, with
  the standard credential chain (`--profile`, environment, SSO, instance role) and region.
- The local stack (`python -m local serve`): `GET {url}/_local/stack` answers the same
  description and the endpoint of moto's server in that process, which holds its queues.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import boto3
import requests
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError, ProfileNotFound

from whoop_bridge.ops.errors import UNREACHABLE, OpsError

TIMEOUT_SECONDS = 30


@dataclass(frozen=True)
class Resource:
    logical_id: str
    type: str
    physical_id: str


@dataclass
class Stack:
    """A stack as the commands use it. `endpoint_url` is set for the local stack (moto's
    server); `signed` says whether API calls are signed with SigV4 (not locally)."""

    name: str
    region: str
    outputs: dict[str, str]
    resources: list[Resource]
    session: Any
    endpoint_url: str | None = None
    signed: bool = True

    def client(self, service: str) -> Any:
        return self.session.client(service, region_name=self.region, endpoint_url=self.endpoint_url)

    def physical_ids(self, resource_type: str) -> dict[str, str]:
        """Physical ids (a queue's URL) by logical id, of every resource of `resource_type`."""
        return {
            resource.logical_id: resource.physical_id for resource in self.resources if resource.type == resource_type
        }

    @property
    def api_url(self) -> str:
        """The API's base URL (the `ApiUrl` output, with its stage)."""
        if "ApiUrl" not in self.outputs:
            raise OpsError(f"stack {self.name} has no ApiUrl output", UNREACHABLE)
        return self.outputs["ApiUrl"].rstrip("/")


def from_cloudformation(name: str, region: str | None = None, profile: str | None = None) -> Stack:
    """The deployed stack `name`; OpsError (exit 3) when there are no credentials or region,
    or no such stack."""
    try:
        session = boto3.Session(profile_name=profile, region_name=region)
        cloudformation = session.client("cloudformation")
        region = cloudformation.meta.region_name
        described = cloudformation.describe_stacks(StackName=name)["Stacks"][0]
        pages = cloudformation.get_paginator("list_stack_resources").paginate(StackName=name)
        resources = [
            Resource(summary["LogicalResourceId"], summary["ResourceType"], summary.get("PhysicalResourceId", ""))
            for page in pages
            for summary in page["StackResourceSummaries"]
        ]
    except ProfileNotFound as error:
        raise OpsError(f"no AWS profile {error.kwargs.get('profile')!r}", UNREACHABLE) from None
    except NoRegionError:
        raise OpsError("no AWS region: give --region or set AWS_REGION", UNREACHABLE) from None
    except NoCredentialsError:
        raise OpsError("no AWS credentials: give --profile or configure the credential chain", UNREACHABLE) from None
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code == "ValidationError":
            raise OpsError(f"stack {name} not found in {region}", UNREACHABLE) from None
        raise OpsError(f"CloudFormation refused: {code}", UNREACHABLE) from None
    except BotoCoreError as error:
        raise OpsError(f"AWS could not be reached: {type(error).__name__}", UNREACHABLE) from None
    outputs = {output["OutputKey"]: output["OutputValue"] for output in described.get("Outputs", [])}
    return Stack(name=name, region=region, outputs=outputs, resources=resources, session=session)


def from_local(url: str) -> Stack:
    """The stack `python -m local serve` runs at `url`; OpsError (exit 3) when nothing
    answers there or it is not a local stack."""
    url = url.rstrip("/")
    try:
        answer = requests.get(f"{url}/_local/stack", timeout=TIMEOUT_SECONDS)
    except requests.RequestException:
        raise OpsError(f"nothing answers at {url}: is `python -m local serve` running?", UNREACHABLE) from None
    if answer.status_code != 200:
        raise OpsError(f"{url} is not a local stack (GET /_local/stack answered {answer.status_code})", UNREACHABLE)
    description = answer.json()
    if not description.get("aws_endpoint"):
        raise OpsError(f"the local stack at {url} exposes no AWS endpoint", UNREACHABLE)
    session = boto3.Session(aws_access_key_id="local", aws_secret_access_key="local", region_name=description["region"])
    return Stack(
        name=description["stack_name"],
        region=description["region"],
        outputs=description["outputs"],
        resources=[
            Resource(item["logical_id"], item["type"], item["physical_id"]) for item in description["resources"]
        ],
        session=session,
        endpoint_url=description["aws_endpoint"],
        signed=False,
    )
