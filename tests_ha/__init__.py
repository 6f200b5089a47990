"""Home Assistant tests of the sixtydb custom integration."""
