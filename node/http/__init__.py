"""HTTP plumbing shared by every API of the node: routing, request parsing, JSON errors."""
