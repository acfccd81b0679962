"""End-to-end encryption support: device and one-time keys, cross-signing, to-device
messages, device list updates and server-side key backups (client-server API
"End-to-End Encryption", https://spec.matrix.org/v1.16/client-server-api/#end-to-end-encryption)."""
