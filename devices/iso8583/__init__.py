"""ISO 8583 messages: fields, MAC, corruption, and the fast codec beneath."""
