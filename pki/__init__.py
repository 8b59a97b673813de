"""Certificates, trust-chain and CRL validation, the IGC-Santé-like test PKI, VIHF build and verify, the
`Principal`. Empty until the security issue: nothing here is used yet."""
