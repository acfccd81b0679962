"""Storage: the database wrapper and one repository per domain (accounts, events, media...)."""
