"""Push notifications: push rules, their evaluation for every persisted event, notification
counts, ``GET /notifications``, pushers and delivery to push gateways (client-server API
"Push Notifications", https://spec.matrix.org/v1.16/client-server-api/#push-notifications)."""
