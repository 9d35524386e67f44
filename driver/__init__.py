"""The CVM deploy driver that pulumi_command runs (standard library only)."""
