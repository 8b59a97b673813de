"""The patients' web space. Empty until the portal issue: nothing here is used yet."""
