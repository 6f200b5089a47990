"""Release checks: the package, its versions, the release workflow, the Raspberry Pi path."""
