"""The DMP consent rules as a pure `decide(principal, action, dossier, document)`, dossier state, access
history and notifications. Empty until the consent issue: nothing here is used yet."""
