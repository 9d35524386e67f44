"""Stand-ins for the Pulumi plugins the Go module proxy here does not serve.

The real engine (`pulumi`, built by `scripts/engine` from github.com/pulumi/pulumi/pkg/v3)
talks gRPC to a language host and to resource providers. The proxy our machines reach
serves the pkg and sdk modules, but not the modules of `pulumi-language-python`,
`pulumi-resource-command` or `pulumi-resource-cloudflare` in any version, so these three
are implemented here over the same gRPC protocol, with the stubs the `pulumi` Python SDK
ships. Each module's docstring says what it is faithful to and what it leaves out.
"""
