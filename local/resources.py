"""The stack's AWS resources, made in moto from template.yaml: KMS keys, DynamoDB tables,
SQS queues, the event bus and its rules, S3 buckets, log groups, secrets and the state
machine (not the WAF, API Gateway's stage settings or Lambda's log routing), with
the physical ids the template's intrinsic functions resolve to."""

from __future__ import annotations

import json
import os
from typing import Any

from local.cfn import ROOT, STATE_MACHINE_TYPES, Resolver, resources_of

REGION = "us-east-1"
ACCOUNT = "123456789012"

# What the template's secrets hold locally, from the environment (see README).
SECRET_ENVIRONMENT = {
    "PartnerSecret": {
        "client_id": "WHOOP_PARTNER_CLIENT_ID",
        "client_secret": "WHOOP_PARTNER_CLIENT_SECRET",
    },
    "PartnerWebhookSecret": {"webhook_secret": "WHOOP_PARTNER_WEBHOOK_SECRET"},
    "MemberAppSecret": {
        "client_id": "WHOOP_MEMBER_CLIENT_ID",
        "client_secret": "WHOOP_MEMBER_CLIENT_SECRET",
    },
}


class Resources:
    """`create()` makes every resource of `template` in the running mock; `physical` maps a
    logical id to its physical id (table name, queue URL, ARN). `parameters` are the
    template's, `WhoopApiBaseUrl` included; `secrets` the values of secrets by logical id
    (default: from the environment, see SECRET_ENVIRONMENT)."""

    def __init__(
        self,
        template: dict[str, Any],
        *,
        parameters: dict[str, str],
        stack_name: str,
        secrets: dict[str, dict[str, str]] | None = None,
    ) -> None:
        self.template = template
        self.parameters = parameters
        self.stack_name = stack_name
        self.secret_values = secrets
        self.physical: dict[str, str] = {}

    def resolver(self) -> Resolver:
        return Resolver(
            self.template,
            self.parameters,
            self.physical,
            self.attribute,
            {
                "AWS::StackName": self.stack_name,
                "AWS::Region": REGION,
                "AWS::AccountId": ACCOUNT,
                "AWS::Partition": "aws",
                "AWS::URLSuffix": "amazonaws.com",
            },
        )

    def attribute(self, resource: str, attribute: str) -> str:
        kind = self.template["Resources"][resource]["Type"]
        physical = self.physical.get(resource, "")
        if kind == "AWS::Serverless::Function" and attribute == "Arn":
            return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.function_name(resource)}"
        if kind == "AWS::SQS::Queue":
            name = physical.rsplit("/", 1)[-1]
            return {"Arn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}", "QueueName": name, "QueueUrl": physical}[attribute]
        if kind in STATE_MACHINE_TYPES:
            return {"Arn": physical, "Name": physical.rsplit(":", 1)[-1]}[attribute]
        if kind == "AWS::KMS::Key" and attribute == "Arn":
            return physical
        if kind == "AWS::DynamoDB::Table" and attribute == "Arn":
            return f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{physical}"
        if kind == "AWS::S3::Bucket" and attribute == "Arn":
            return f"arn:aws:s3:::{physical}"
        if kind == "AWS::Logs::LogGroup" and attribute == "Arn":
            return f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{physical}:*"
        raise KeyError(f"!GetAtt {resource}.{attribute} is not emulated")

    def function_name(self, logical_id: str) -> str:
        spec = self.template["Resources"][logical_id]["Properties"]
        if "FunctionName" in spec:
            return str(self.resolver().resolve(spec["FunctionName"]))
        return f"{self.stack_name}-{logical_id}"

    def create(self) -> None:
        import boto3

        resolve = self.resolver().resolve
        kms = boto3.client("kms", region_name=REGION)
        for logical_id in resources_of(self.template, "AWS::KMS::Key"):
            self.physical[logical_id] = kms.create_key(Description=logical_id)["KeyMetadata"]["Arn"]

        dynamodb = boto3.client("dynamodb", region_name=REGION)
        for logical_id, spec in resources_of(self.template, "AWS::DynamoDB::Table").items():
            properties = spec["Properties"]
            name = f"{self.stack_name}-{logical_id}"
            table: dict[str, Any] = {
                "TableName": name,
                "AttributeDefinitions": properties["AttributeDefinitions"],
                "KeySchema": properties["KeySchema"],
                "BillingMode": properties.get("BillingMode", "PAY_PER_REQUEST"),
            }
            if properties.get("GlobalSecondaryIndexes"):
                table["GlobalSecondaryIndexes"] = properties["GlobalSecondaryIndexes"]
            dynamodb.create_table(**table)
            if properties.get("TimeToLiveSpecification"):
                dynamodb.update_time_to_live(
                    TableName=name, TimeToLiveSpecification=properties["TimeToLiveSpecification"]
                )
            self.physical[logical_id] = name

        sqs = boto3.client("sqs", region_name=REGION)
        queues = resources_of(self.template, "AWS::SQS::Queue")
        # Dead-letter queues first: the others' redrive policies point at them.
        for logical_id in sorted(queues, key=lambda name: "RedrivePolicy" in queues[name].get("Properties", {})):
            properties = resolve(queues[logical_id].get("Properties", {}))
            attributes = {"VisibilityTimeout": str(properties.get("VisibilityTimeout", 30))}
            if "RedrivePolicy" in properties:
                attributes["RedrivePolicy"] = json.dumps(properties["RedrivePolicy"])
            url = sqs.create_queue(QueueName=f"{self.stack_name}-{logical_id}", Attributes=attributes)["QueueUrl"]
            self.physical[logical_id] = url

        events = boto3.client("events", region_name=REGION)
        for logical_id, spec in resources_of(self.template, "AWS::Events::EventBus").items():
            name = resolve(spec["Properties"]["Name"])
            events.create_event_bus(Name=name)
            self.physical[logical_id] = name

        for logical_id, spec in resources_of(self.template, "AWS::Events::Rule").items():
            properties = resolve(spec["Properties"])
            name = f"{self.stack_name}-{logical_id}"
            bus = properties.get("EventBusName", "default")
            events.put_rule(Name=name, EventBusName=bus, EventPattern=json.dumps(properties["EventPattern"]))
            events.put_targets(
                Rule=name,
                EventBusName=bus,
                Targets=[{"Id": target["Id"], "Arn": target["Arn"]} for target in properties["Targets"]],
            )
            self.physical[logical_id] = name

        self._create_buckets(boto3.client("s3", region_name=REGION))
        self._create_log_groups(boto3.client("logs", region_name=REGION))

        secrets = boto3.client("secretsmanager", region_name=REGION)
        for logical_id, spec in resources_of(self.template, "AWS::SecretsManager::Secret").items():
            value = self._secret_value(logical_id, spec)
            arn = secrets.create_secret(Name=resolve(spec["Properties"]["Name"]), SecretString=json.dumps(value))["ARN"]
            self.physical[logical_id] = arn

        # Functions need names before the state machine's substitutions resolve.
        for logical_id in resources_of(self.template, "AWS::Serverless::Function"):
            self.physical[logical_id] = self.function_name(logical_id)

        stepfunctions = boto3.client("stepfunctions", region_name=REGION)
        # Step Functions' names (StateMachineName, ...) or SAM's (Name, ...); moto ignores
        # the EncryptionConfiguration, so it is not passed.
        for logical_id, spec in resources_of(self.template, *STATE_MACHINE_TYPES).items():
            properties = spec["Properties"]
            definition = (ROOT / properties.get("DefinitionS3Location", properties.get("DefinitionUri"))).read_text()
            for name, value in resolve(properties.get("DefinitionSubstitutions", {})).items():
                definition = definition.replace("${" + name + "}", str(value))
            arn = stepfunctions.create_state_machine(
                name=resolve(properties.get("StateMachineName", properties.get("Name", logical_id))),
                definition=definition,
                roleArn=f"arn:aws:iam::{ACCOUNT}:role/{logical_id}",
                type=properties.get("StateMachineType", properties.get("Type", "STANDARD")),
            )["stateMachineArn"]
            self.physical[logical_id] = arn

    def _create_buckets(self, s3: Any) -> None:
        """Each bucket with the template's encryption, versioning, public access block,
        ownership, lifecycle and policy (moto keeps them; it enforces none of them)."""
        resolve = self.resolver().resolve
        for logical_id, spec in resources_of(self.template, "AWS::S3::Bucket").items():
            properties = resolve(spec.get("Properties", {}))
            name = f"{self.stack_name}-{logical_id}".lower()
            s3.create_bucket(Bucket=name)
            self.physical[logical_id] = name
            if "BucketEncryption" in properties:
                rules = [
                    {
                        "ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"],
                        "BucketKeyEnabled": bool(rule.get("BucketKeyEnabled")),
                    }
                    for rule in properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]
                ]
                s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
            if "VersioningConfiguration" in properties:
                s3.put_bucket_versioning(Bucket=name, VersioningConfiguration=properties["VersioningConfiguration"])
            if "PublicAccessBlockConfiguration" in properties:
                s3.put_public_access_block(
                    Bucket=name, PublicAccessBlockConfiguration=properties["PublicAccessBlockConfiguration"]
                )
            if "OwnershipControls" in properties:
                s3.put_bucket_ownership_controls(Bucket=name, OwnershipControls=properties["OwnershipControls"])
            if "LifecycleConfiguration" in properties:
                s3.put_bucket_lifecycle_configuration(
                    Bucket=name,
                    LifecycleConfiguration={
                        "Rules": [_lifecycle_rule(rule) for rule in properties["LifecycleConfiguration"]["Rules"]]
                    },
                )
        for spec in resources_of(self.template, "AWS::S3::BucketPolicy").values():
            properties = resolve(spec["Properties"])
            document = properties["PolicyDocument"]
            # moto denies every request a conditional Deny names (the TLS-only statement
            # would refuse all): those are left to AWS.
            statements = [st for st in document["Statement"] if not (st.get("Effect") == "Deny" and "Condition" in st)]
            if statements:
                s3.put_bucket_policy(
                    Bucket=properties["Bucket"], Policy=json.dumps({**document, "Statement": statements})
                )

    def _create_log_groups(self, logs: Any) -> None:
        """The template's log groups (those whose condition holds), named as CloudFormation
        would (LogGroupName, else `<stack>-<logical id>`), with their retention: the API
        functions write the audit trail to one. Lambda's own LoggingConfig is not emulated."""
        resolver = self.resolver()
        for logical_id, spec in resources_of(self.template, "AWS::Logs::LogGroup").items():
            if "Condition" in spec and not resolver.condition(spec["Condition"]):
                continue
            properties = spec.get("Properties", {})
            name = str(resolver.resolve(properties.get("LogGroupName", f"{self.stack_name}-{logical_id}")))
            logs.create_log_group(logGroupName=name)
            if "RetentionInDays" in properties:
                logs.put_retention_policy(
                    logGroupName=name, retentionInDays=int(resolver.resolve(properties["RetentionInDays"]))
                )
            self.physical[logical_id] = name

    def _secret_value(self, logical_id: str, spec: dict[str, Any]) -> dict[str, str]:
        placeholder = json.loads(spec["Properties"]["SecretString"])
        if self.secret_values and logical_id in self.secret_values:
            return {**placeholder, **self.secret_values[logical_id]}
        names = SECRET_ENVIRONMENT.get(logical_id, {})
        # Unset variables keep the template's placeholder: the bridge then fails closed.
        return {key: os.environ.get(names.get(key, ""), value) for key, value in placeholder.items()}


def _lifecycle_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """A CloudFormation lifecycle rule in S3's API shape."""
    api: dict[str, Any] = {"ID": rule["Id"], "Status": rule["Status"], "Filter": {"Prefix": rule.get("Prefix", "")}}
    if "ExpirationInDays" in rule:
        api["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
    if "NoncurrentVersionExpiration" in rule:
        api["NoncurrentVersionExpiration"] = {
            "NoncurrentDays": int(rule["NoncurrentVersionExpiration"]["NoncurrentDays"])
        }
    if "AbortIncompleteMultipartUpload" in rule:
        api["AbortIncompleteMultipartUpload"] = {
            "DaysAfterInitiation": int(rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])
        }
    return api
