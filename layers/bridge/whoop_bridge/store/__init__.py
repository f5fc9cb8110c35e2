"""DynamoDB access."""
