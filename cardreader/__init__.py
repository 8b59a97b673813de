"""The CPS card middleware (PC/SC watcher, PKCS#11 token, PIN, VIHF signing with the card key, XDS
client, `cps` CLI). Empty until the card issue: nothing here is used yet."""
