"""The data contract: table schemas, file I/O and validation with quarantine."""
