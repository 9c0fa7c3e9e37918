"""The ACL APIs without an authorizer (authorizer.class.name unset), through kafka-python's and
confluent-kafka's admin clients: SECURITY_DISABLED, as Kafka answers them ("No Authorizer is
configured on the broker" for DescribeAcls, "No Authorizer is configured." for each creation and
filter). With an authorizer: tests/test_authorizer.py."""

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
)
from kafka import KafkaAdminClient
from kafka.admin import (
    ACL,
    ACLFilter,
    ACLOperation,
    ACLPermissionType,
    ACLResourcePatternType,
    ResourcePattern,
    ResourcePatternFilter,
)
from kafka.admin import ResourceType as KafkaResourceType
from kafka.errors import SecurityDisabledError


def test_acl_apis_answer_security_disabled(broker):
    client = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        pattern = ResourcePatternFilter(KafkaResourceType.ANY, None, ACLResourcePatternType.ANY)
        wanted = ACLFilter(None, None, ACLOperation.ANY, ACLPermissionType.ANY, pattern)
        with pytest.raises(
            SecurityDisabledError, match="No Authorizer is configured on the broker"
        ):
            client.describe_acls(wanted)
        topic = ResourcePattern(KafkaResourceType.TOPIC, "t", ACLResourcePatternType.LITERAL)
        acl = ACL("User:alice", "*", ACLOperation.READ, ACLPermissionType.ALLOW, topic)
        created = client.create_acls([acl])
        assert created == {"succeeded": [], "failed": [SecurityDisabledError]}
    finally:
        client.close()
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    any_acl = AclBindingFilter(
        ResourceType.ANY,
        None,
        ResourcePatternType.ANY,
        None,
        None,
        AclOperation.ANY,
        AclPermissionType.ANY,
    )
    binding = AclBinding(
        ResourceType.TOPIC,
        "t",
        ResourcePatternType.LITERAL,
        "User:alice",
        "*",
        AclOperation.READ,
        AclPermissionType.ALLOW,
    )
    # (librdkafka's describe_acls drops DescribeAcls' top-level error and answers [])
    for future in (admin.create_acls([binding])[binding], admin.delete_acls([any_acl])[any_acl]):
        with pytest.raises(KafkaException, match="SECURITY_DISABLED"):
            future.result(timeout=30)
