"""The vault: secrets sealed per organisation and owner under versioned master keys.

`vault.envelope` is the cryptographic core (pure Python, no Django); `vault.keys` loads the
master keys for the platform from the environment."""
